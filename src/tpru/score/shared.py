"""What the scorer shares with the rest of tpru, defined here so the package copies alone.

`tpru.schema` (the option texts and the image placeholder) and
`tpru.diagnostics` (`InputError`) import these names from here; an EasyR1
run folder's copy of the package has its own, so it needs no tpru.
"""

from __future__ import annotations

NONE_OPTION = "None of the choices provided"
"""The option that is gold in negative samples."""

IMAGE_PLACEHOLDER = "<image>"
"""Where an image goes in a question or a prompt: one per image, in the order of the images."""

IMAGE_OPTION = IMAGE_PLACEHOLDER
"""An option that is an image (its image follows the question's in `Sample.images`).

It is the placeholder itself, so an option line "A. <image>" holds its image's placeholder
and a prompt keeps one per image."""


class InputError(Exception):
    """Bad input that stops a command; the message is one line naming the file."""
