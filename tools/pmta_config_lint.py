# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check a PowerMTA config file: pmta-config-lint [--format text|pmta|json] FILE ...

Runs from a checkout or an installed collection with nothing but Python 3:
it imports plugins/module_utils/_pmta_config by path. See docs/config-lint.md.
"""

import os
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "plugins", "module_utils"))

from _pmta_config.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
