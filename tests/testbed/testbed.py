# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The test bench CLI (Python standard library only; run as root): python3 tests/testbed/testbed.py ...

  image [--force]                     build the host image (cached by recipe hash; a no-op when current)
  up NAME [NAME...] --kind nspawn|qemu [--address A] [--extra-address IP]...
        [--nvme-disk SERIAL:SIZE]... [--loop-disk NAME:SIZE]... [--memory-mb N]
  up-many SPEC.json|-                 start hosts described as Molecule platforms, in parallel
  down NAME [NAME...] | down-all      remove hosts and everything they left behind
  list [--json] | ssh NAME [CMD] | leftovers NAME
Molecule's create/destroy playbooks, lab.sh and humans all use this one CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tb_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
