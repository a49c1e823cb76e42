# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA.

A stand-in for PowerMTA that the mailops.powermta test suite builds itself
(``tests/pmta_test_double/build.sh``) so roles can be tested without the
proprietary product. It reads the config as the v5.0 User's Guide describes it
(reusing only the collection's parser), accepts SMTP on the configured
listeners, delivers by MX over real SMTP and writes PowerMTA's accounting
records. See README.md.
"""

VERSION = "5.0r0-test-double"
PRODUCT = "PowerMTA TEST DOUBLE (not PowerMTA)"
