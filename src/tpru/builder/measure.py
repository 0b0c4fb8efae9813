"""Pass 1: read every frame of an episode once, filter, measure, stage its images.

Runs in worker processes. For one episode it decodes each frame, drops the
unusable ones (each drop counted by reason), writes the kept frames' stored
images into the staging folder (content-addressed, so writing twice is
harmless) and returns an `EpisodeResult`: a JSON-able record plus the
thumbnails and embeddings of the kept frames. Frames are decoded one by
one and hashed and embedded a chunk at a time, so long episodes (hours of
video) keep the worker's memory flat.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tpru.builder.config import BuildConfig, FilterConfig
from tpru.builder.embed import normalise_rows, resolve_embedding, thumb_embedding, thumb_features
from tpru.builder.images import (
    THUMB_SIDE,
    FrameError,
    FrameMeasure,
    add_hashes,
    decode_frame,
    frame_change,
    hamming,
)
from tpru.diagnostics import InputError
from tpru.schema import Episode
from tpru.sources.base import LoadedFrame, load_frames

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


CHUNK = 32
"""Frames decoded before their hashes and embeddings are computed together."""


@dataclass
class _Kept:
    index: int
    digest: str
    ext: str
    phash: int
    thumb: np.ndarray
    colour: np.ndarray

    @property
    def look(self) -> tuple[np.ndarray, np.ndarray]:
        return self.thumb, self.colour


class _EpisodeFilter:
    """The per-frame checks of one episode, fed frames in order, a chunk at a time.

    Only light facts about kept frames stay in memory; their images go to the
    stage as soon as they are kept, so long episodes do not grow the worker.
    """

    def __init__(self, episode: Episode, config: BuildConfig, stage_dir: Path) -> None:
        self.episode = episode
        self.config = config
        self.stage_dir = stage_dir
        self.embed = resolve_embedding(config.embed.name)
        self.drops: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self.kept: list[_Kept] = []
        self.thumbs: list[np.ndarray] = []
        self.embeddings: list[np.ndarray] = []
        self.usable = 0  # frames that passed every check but the near-duplicate one
        self.first: tuple[np.ndarray, np.ndarray] | None = None
        self.usable_change = 0.0
        self._pending: list[tuple[int, str, FrameMeasure]] = []

    def drop(self, reason: str, message: str) -> None:
        if self.config.strict and reason in INPUT_ERRORS:
            raise InputError(f"{message} (--strict stops at the first bad input)")
        self.drops[reason] += 1
        kept_examples = self.examples.setdefault(reason, [])
        if len(kept_examples) < 3:
            kept_examples.append(message)

    def add(self, index: int, loaded: LoadedFrame) -> None:
        fcfg = self.config.filter
        try:
            m = decode_frame(loaded, self.config.image)
        except FrameError as err:
            self.drop(err.reason, str(err))
            return
        if min(m.width, m.height) < fcfg.min_side:
            self.drop("too_small", f"{loaded.ref}: {m.width}x{m.height} is below "
                                   f"filter.min_side={fcfg.min_side}")
            return
        if fcfg.blur_threshold > 0 and m.sharpness < fcfg.blur_threshold:
            self.drop("blurred", f"{loaded.ref}: sharpness {m.sharpness:.1f} is below "
                                 f"filter.blur_threshold={fcfg.blur_threshold}")
            return
        self._pending.append((index, loaded.ref, m))
        if len(self._pending) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        """Hash, de-duplicate, stage and embed the pending frames."""
        if not self._pending:
            return
        fcfg = self.config.filter
        add_hashes([m for _, _, m in self._pending])
        chosen: list[FrameMeasure] = []
        for index, ref, m in self._pending:
            self.usable += 1
            self.first = m.look if self.first is None else self.first
            self.usable_change = max(self.usable_change, frame_change(self.first, m.look))
            if self.kept:
                prev = self.kept[-1]
                if hamming(prev.phash, m.phash) <= fcfg.dup_hamming and \
                        frame_change(prev.look, m.look) <= fcfg.dup_pixel_diff:
                    self.drop("near_duplicate", f"{ref}: near-duplicate of the frame before")
                    continue
            self.kept.append(_Kept(index, m.digest, m.ext, m.phash, m.thumb, m.colour))
            write_once(stage_path(self.stage_dir, m.digest, m.ext), m.stored)
            chosen.append(m)
        self._pending = []
        if chosen:
            self.thumbs.append(np.stack([m.thumb for m in chosen]))
            self.embeddings.append(self._embed(chosen))

    def _embed(self, frames: list[FrameMeasure]) -> np.ndarray:
        if self.embed is thumb_embedding:  # the built-in one works from the 32x32 images
            return thumb_features(np.stack([m.small for m in frames]))
        vectors = normalise_rows(self.embed([m.analysis for m in frames]))
        if vectors.shape[0] != len(frames):
            raise InputError(f"embedding {self.config.embed.name!r} returned "
                             f"{vectors.shape[0]} rows for {len(frames)} images")
        return vectors


def measure_episode(episode: Episode, ordinal: int, config: BuildConfig,
                    stage_dir: Path) -> EpisodeResult:
    """Filter and measure one episode (see the module docstring)."""
    fcfg = config.filter
    # With a describe stage the model may still write the description (checked in pass 2).
    if config.text.require_description and config.describe.mode == "never" \
            and not (episode.description or "").strip():
        return EpisodeResult({**_record(episode, ordinal, Counter(), {}),
                              "dropped": "no_description",
                              "message": f"episode {episode.id}: no description "
                                         "(text.require_description is on)"})
    state = _EpisodeFilter(episode, config, stage_dir)
    for index, loaded in enumerate(load_frames(episode.frames)):
        state.add(index, loaded)
    state.flush()
    kept = state.kept
    record = _record(episode, ordinal, state.drops, state.examples)
    if len(kept) < config.min_frames <= state.usable and state.usable_change < fcfg.min_change:
        # Enough frames, but all alike: they went as near-duplicates of the first.
        return EpisodeResult({**record, "dropped": "static",
                              "message": _static_message(episode, state.usable_change, fcfg)})
    if len(kept) < config.min_frames:
        record["dropped"] = "too_few_frames"
        record["message"] = (f"episode {episode.id}: {len(kept)} usable frames of "
                             f"{len(episode.frames)}, {config.min_frames} needed")
        return EpisodeResult(record)
    change = max(frame_change(kept[0].look, k.look) for k in kept[1:])
    if change < fcfg.min_change:
        record["dropped"] = "static"
        record["message"] = _static_message(episode, change, fcfg)
        return EpisodeResult(record)
    record["frames"] = [{"index": k.index, "digest": k.digest, "ext": k.ext, "phash": k.phash}
                        for k in kept]
    return EpisodeResult(record, thumbs=np.concatenate(state.thumbs),
                         embeddings=np.concatenate(state.embeddings))


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
