# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA.

A stand-in for PowerMTA that the mailops.powermta test suite builds itself
(``tests/pmta_test_double/build.sh``) so roles can be tested without the
proprietary product. It reads the config with the collection's own grammar,
accepts SMTP on the configured listeners and "delivers" only into the
accounting files: it never opens an outbound connection.
"""

VERSION = "5.0r0-test-double"
PRODUCT = "PowerMTA TEST DOUBLE (not PowerMTA)"
