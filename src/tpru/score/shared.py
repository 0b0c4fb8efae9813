"""What the scorer shares with the rest of tpru, defined here so the package copies alone.

`tpru.schema` (the option texts) and `tpru.diagnostics` (`InputError`)
import these names from here; an EasyR1 run folder's copy of the package
has its own, so it needs no tpru.
"""

from __future__ import annotations

NONE_OPTION = "None of the choices provided"
"""The option that is gold in negative samples."""

IMAGE_OPTION = "<image>"
"""An option that is an image (its image follows the question's in `Sample.images`)."""


class InputError(Exception):
    """Bad input that stops a command; the message is one line naming the file."""
