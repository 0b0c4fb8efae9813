"""Image embeddings for finding distractors among similar scenes.

The default, ``thumb``, is a compact 64-dimensional feature computed on CPU
from the small analysis image the builder already has: the mean colour of a
4x4 grid (48 values) and the mean edge strength of the same grid (16
values), centred and L2-normalised, so cosine similarity finds frames with
the same layout and colours. Any other embedding plugs in by name as
``module:function``: a function taking a list of PIL images and returning an
(n, d) float32 array (e.g. a CLIP or SigLIP model wrapped by the user).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from tpru.diagnostics import InputError
from tpru.registry import load

EmbedFn = Callable[[Sequence[Image.Image]], np.ndarray]

GRID = 4


def thumb_embedding(images: Sequence[Image.Image]) -> np.ndarray:
    """The default 64-d colour-layout and edge feature, one row per image."""
    side = GRID * 8
    smalls = [np.asarray(image.convert("RGB").resize((side, side), Image.Resampling.BILINEAR,
                                                      reducing_gap=2.0)) for image in images]
    if not smalls:
        return np.zeros((0, GRID * GRID * 4), dtype=np.float32)
    return thumb_features(np.stack(smalls))


def thumb_features(smalls: np.ndarray) -> np.ndarray:
    """`thumb_embedding` of (n, 32, 32, 3) uint8 images, computed for all at once."""
    n = len(smalls)
    rgb = smalls.astype(np.float32) / 255.0
    colour = rgb.reshape(n, GRID, 8, GRID, 8, 3).mean(axis=(2, 4)).reshape(n, -1)
    grey = rgb.mean(axis=3)
    gx = np.abs(np.diff(grey, axis=2, append=grey[:, :, -1:]))
    gy = np.abs(np.diff(grey, axis=1, append=grey[:, -1:, :]))
    edges = (gx + gy).reshape(n, GRID, 8, GRID, 8).mean(axis=(2, 4)).reshape(n, -1) * 4.0
    features = np.concatenate([colour - colour.mean(axis=1, keepdims=True),
                               edges - edges.mean(axis=1, keepdims=True)], axis=1)
    return normalise_rows(features)


def resolve_embedding(name: str) -> EmbedFn:
    """The embedding function named ``thumb`` or ``module:function``."""
    if name == "thumb":
        return thumb_embedding
    if ":" not in name:
        raise InputError(f"embedding {name!r} must be 'thumb' or 'module:function'")
    fn = load(name, what=f"embedding {name!r}")
    if not callable(fn):
        raise InputError(f"embedding {name!r} is not a function")
    return fn  # type: ignore[no-any-return]


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """float32 rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise InputError(f"an embedding must return a 2-d array, got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    result: np.ndarray = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return result
