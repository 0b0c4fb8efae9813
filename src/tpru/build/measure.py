"""Pass 1: read every frame of an episode once, filter, measure, stage its images.

Runs in worker processes. For one episode it decodes each frame, drops the
unusable ones (each drop counted by reason), writes the kept frames' stored
images into the staging folder (content-addressed, so writing twice is
harmless) and returns an `EpisodeResult`: a JSON-able record plus the
thumbnails and embeddings of the kept frames.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tpru.build.config import BuildConfig, FilterConfig
from tpru.build.embed import normalise_rows, resolve_embedding, thumb_embedding
from tpru.build.images import (
    THUMB_SIDE,
    FrameError,
    FrameMeasure,
    hamming,
    measure_frame,
    thumb_diff,
)
from tpru.diagnostics import InputError
from tpru.schema import Episode
from tpru.sources.base import load_frames

INPUT_ERRORS = frozenset({"missing_file", "unreadable_file", "unreadable_image",
                          "truncated_image", "unreadable_video"})
"""Frame drops that are bad input (they stop a ``--strict`` build), not quality filters."""


@dataclass
class EpisodeResult:
    """What pass 1 learned about one episode."""

    record: dict[str, Any]
    thumbs: np.ndarray = field(default_factory=lambda: np.zeros((0, THUMB_SIDE ** 2), np.uint8))
    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))


def stage_path(stage_dir: Path, digest: str, ext: str) -> Path:
    """Where a staged image lives: ``<stage>/ab/abcdef....jpg``."""
    return stage_dir / digest[:2] / f"{digest}.{ext}"


def write_once(path: Path, data: bytes) -> None:
    """Write `data` to `path` unless it exists; atomic, so a crash leaves no half file."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def measure_episode(episode: Episode, ordinal: int, config: BuildConfig,
                    stage_dir: Path) -> EpisodeResult:
    """Filter and measure one episode (see the module docstring)."""
    drops: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    kept: list[tuple[int, FrameMeasure]] = []
    fcfg = config.filter

    def drop(reason: str, message: str) -> None:
        if config.strict and reason in INPUT_ERRORS:
            raise InputError(f"{message} (--strict stops at the first bad input)")
        drops[reason] += 1
        kept_examples = examples.setdefault(reason, [])
        if len(kept_examples) < 3:
            kept_examples.append(message)

    if config.text.require_description and not (episode.description or "").strip():
        return EpisodeResult({**_record(episode, ordinal, drops, examples),
                              "dropped": "no_description",
                              "message": f"episode {episode.id}: no description "
                                         "(text.require_description is on)"})
    usable = 0  # frames that passed every check but the near-duplicate one
    first: np.ndarray | None = None
    usable_change = 0.0
    for index, loaded in enumerate(load_frames(episode.frames)):
        try:
            m = measure_frame(loaded, config.image)
        except FrameError as err:
            drop(err.reason, str(err))
            continue
        if min(m.width, m.height) < fcfg.min_side:
            drop("too_small", f"{loaded.ref}: {m.width}x{m.height} is below "
                              f"filter.min_side={fcfg.min_side}")
            continue
        if fcfg.blur_threshold > 0 and m.sharpness < fcfg.blur_threshold:
            drop("blurred", f"{loaded.ref}: sharpness {m.sharpness:.1f} is below "
                            f"filter.blur_threshold={fcfg.blur_threshold}")
            continue
        usable += 1
        first = m.thumb if first is None else first
        usable_change = max(usable_change, thumb_diff(first, m.thumb))
        if kept:
            prev = kept[-1][1]
            if hamming(prev.phash, m.phash) <= fcfg.dup_hamming and \
                    thumb_diff(prev.thumb, m.thumb) <= fcfg.dup_pixel_diff:
                drop("near_duplicate", f"{loaded.ref}: near-duplicate of the frame before")
                continue
        kept.append((index, m))

    record = _record(episode, ordinal, drops, examples)
    if len(kept) < config.min_frames <= usable and usable_change < fcfg.min_change:
        # Enough frames, but all alike: they went as near-duplicates of the first.
        return EpisodeResult({**record, "dropped": "static",
                              "message": _static_message(episode, usable_change, fcfg)})
    if len(kept) < config.min_frames:
        record["dropped"] = "too_few_frames"
        record["message"] = (f"episode {episode.id}: {len(kept)} usable frames of "
                             f"{len(episode.frames)}, {config.min_frames} needed")
        return EpisodeResult(record)
    change = max(thumb_diff(kept[0][1].thumb, m.thumb) for _, m in kept[1:])
    if change < fcfg.min_change:
        record["dropped"] = "static"
        record["message"] = _static_message(episode, change, fcfg)
        return EpisodeResult(record)

    for _, m in kept:
        write_once(stage_path(stage_dir, m.digest, m.ext), m.stored)
    embed = resolve_embedding(config.embed.name)
    # The built-in embedding works from the 32x32 image the measurement already made.
    inputs = [m.small if embed is thumb_embedding else m.analysis for _, m in kept]
    vectors = normalise_rows(embed(inputs))
    if vectors.shape[0] != len(kept):
        raise InputError(f"embedding {config.embed.name!r} returned {vectors.shape[0]} rows "
                         f"for {len(kept)} images")
    record["frames"] = [{"index": i, "digest": m.digest, "ext": m.ext, "phash": m.phash}
                        for i, m in kept]
    return EpisodeResult(record, thumbs=np.stack([m.thumb.ravel() for _, m in kept]),
                         embeddings=vectors)


def _static_message(episode: Episode, change: float, fcfg: FilterConfig) -> str:
    return (f"episode {episode.id}: no frame differs from the first by more than "
            f"{change:.4f}, below filter.min_change={fcfg.min_change}")


def _record(episode: Episode, ordinal: int, drops: Counter[str],
            examples: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "ordinal": ordinal,
        "episode": episode.to_dict(),
        "frames_read": len(episode.frames),
        "drops": dict(sorted(drops.items())),
        "examples": examples,
        "dropped": None,
        "frames": [],
    }
