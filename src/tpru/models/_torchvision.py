"""Make torchvision importable on a CPU-only torch (a workaround, kept here alone).

The torchvision wheel on the package index is a CUDA build. On the CPU torch
wheel its compiled operators do not load, and ``import torchvision`` then fails
in its fake-tensor registrations with "operator torchvision::nms does not
exist". The Qwen2-VL image and video processors need only torchvision's
pure-torch transforms, so declaring the two operator schemas it looks up at
import (``nms`` and ``qnms``) is enough: the transforms work, and calling
``torchvision.ops.nms`` would still fail (it has no kernel), which nothing in
tpru does.

The workaround is applied only when that exact failure happens; with a
matching torchvision build the import succeeds first time and nothing is
declared.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import torch

log = logging.getLogger("tpru.models")

FAILURE = "operator torchvision::nms does not exist"
"""The message of the import failure this module works around."""

SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
"""The operator schemas torchvision's import registers fake kernels for (as in its C++)."""

_library: torch.library.Library | None = None
"""Holds the declared schemas: they are withdrawn when the Library is garbage collected."""


def ensure_torchvision() -> None:
    """Import torchvision, declaring its missing operator schemas if (only if) that fails.

    Raises:
        ImportError: torchvision is not installed (the caller turns it into an install hint).
        RuntimeError: any other failure of the import, unchanged.
    """
    global _library
    try:
        importlib.import_module("torchvision")
        return
    except RuntimeError as err:
        if FAILURE not in str(err):
            raise
    # The failed import leaves half-initialised submodules behind; drop them so
    # the second import starts clean.
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    if _library is None:
        _library = torch.library.Library("torchvision", "FRAGMENT")  # type: ignore[no-untyped-call]
        for schema in SCHEMAS:
            _library.define(schema)  # type: ignore[no-untyped-call]
    log.info("torchvision's compiled operators did not load (CPU torch with a CUDA "
             "torchvision); declared nms/qnms so its pure-torch transforms can be used")
    importlib.import_module("torchvision")


def import_transformers() -> Any:
    """The ``transformers`` module, imported after `ensure_torchvision`.

    Typed as Any on purpose: its auto classes are resolved at run time, and
    the static types it declares (e.g. for ``generate``) do not describe them.
    """
    ensure_torchvision()
    return importlib.import_module("transformers")
