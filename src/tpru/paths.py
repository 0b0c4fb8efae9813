"""Where tpru keeps what it can make again: one cache folder, ``$TPRU_CACHE`` or
``~/.cache/tpru``, with a subfolder per kind of content.

Example:
    >>> cache_dir(IMAGES_CACHE).name
    'images'
"""

from __future__ import annotations

import os
from pathlib import Path

IMAGES_CACHE = "images"
"""Benchmark images written by content (``tpru eval``, ``tpru audit``)."""

MODEL_CALLS_CACHE = "model-calls"
"""The answers of the build's model stages, so a rebuild never asks twice."""


def cache_dir(name: str) -> Path:
    """The cache subfolder `name`: ``$TPRU_CACHE/<name>``, else ``~/.cache/tpru/<name>``."""
    root = os.environ.get("TPRU_CACHE") or Path.home() / ".cache" / "tpru"
    return Path(root) / name
