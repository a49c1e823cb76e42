#!/usr/bin/env python3
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The test bench CLI (Python standard library only; run as root).

  testbed.py image [--force]                    build the host image (cached by recipe hash)
  testbed.py up NAME [NAME...] --kind nspawn|qemu [--address A] [--extra-address IP]...
             [--nvme-disk SERIAL:SIZE]... [--loop-disk NAME:SIZE]... [--memory-mb N]
  testbed.py up-many SPEC.json                  start hosts described as Molecule platforms, in parallel
  testbed.py down NAME [NAME...] | down-all     remove hosts and everything they left behind
  testbed.py list [--json]                      running hosts
Molecule's create/destroy playbooks, lab.sh and humans all use this one CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tb_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
