# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The error of the mail DNS builders. PRIVATE to the collection."""

from __future__ import annotations


class RecordBuildError(ValueError):
    """Inputs cannot make valid records; the message names the input and the fix."""
