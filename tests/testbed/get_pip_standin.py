# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stand-in for ansible-test's get-pip bootstrap script.

ansible-test --venv downloads get-pip.py from ci-files.testing.ansible.com, which this machine
cannot reach, and says the script may be saved to ~/.ansible/test/cache/ by hand. This file is
saved there instead: it installs Python's bundled pip (ensurepip) into the new virtual
environment, then lets that pip install the requested pip/setuptools/wheel versions from PyPI.
It takes the same arguments as get-pip.py.
"""

import ensurepip
import os
import subprocess
import sys

# ensurepip clears PIP_* and sets PIP_CONFIG_FILE=/dev/null; the real install needs the
# machine's pip configuration (CA bundle, index), so keep the environment as it was.
environment = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args], env=environment))
