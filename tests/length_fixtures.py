"""A hand-written dataset of mixed sequence lengths (3, 5, 8 and 16 frames).

Each sample carries what the builder records for mixed lengths: ``meta.frames``
and ``meta.difficulty`` (``score`` in [0, 1]); `make_mixed_dataset` can leave the
difficulty out (a dataset built before scores existed). Images are real
PNGs, content-addressed under ``images/`` as ``tpru build`` stores them.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

from PIL import Image

from tpru.schema import IMAGE_OPTION, NONE_OPTION, SCHEMA_VERSION, Sample, write_jsonl

IMG = "<image>"

LENGTHS = (3, 5, 8, 16)

SCORES = {"ord-3": 0.5, "ord-5": 0.1, "ord-8": 0.5, "ord-16": 0.9,
          "next-3": 0.2, "next-5": 0.5, "next-8-neg": 0.7, "next-16": 0.9,
          "prev-3": 0.1, "prev-5": 0.4, "prev-8": 0.8, "prev-16": 0.95}
"""Difficulty scores by sample id: ties at 0.5 (three) and 0.9 (two) in the train split."""


def image_count(sample_id: str) -> int:
    """How many images the sample of `sample_id` has (question images, then image options)."""
    n = int(sample_id.split("-")[1])
    return n if sample_id.startswith("ord") else n - 1 + 3


def _image(root: Path, index: int) -> str:
    buffer = io.BytesIO()
    size = (16 + index % 3 * 8, 12 + index % 2 * 8)  # a few sizes, as real frames vary
    Image.new("RGB", size, ((index * 47) % 256, (index * 91) % 256, (index * 13) % 256)).save(
        buffer, format="PNG")
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    relative = f"images/{digest[:2]}/{digest}.png"
    root.mkdir(parents=True, exist_ok=True)
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    (root / relative).write_bytes(data)
    return relative


def _meta(sample_id: str, n: int, negative: str | None, scores: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"frames": n}
    if scores:
        meta["difficulty"] = {"frames": n, "negative": negative, "distractor_similarity": 0.4,
                              "gap": None, "score": SCORES[sample_id]}
    if negative:
        meta["negative_kind"] = negative
    return meta


def ordering(n: int, frames: list[str], scores: bool) -> Sample:
    """An ordering sample of `n` frames in the option form ("1 3 2 ...")."""
    shown = list(reversed(frames[:n]))  # image k shows frame n - k
    truth = " ".join(str(n - k) for k in range(n))
    wrong = " ".join(str(k + 1) for k in range(n))
    question = (f"These {n} images show a process out of order. "
                + " ".join(f"Image {k + 1}: {IMG}" for k in range(n))
                + " Which order is chronological?")
    return Sample(id=f"ord-{n}", task="ordering", scenario="robot", episode_id=f"ep{n}",
                  question=question, options=(wrong, truth), answer="B", images=tuple(shown),
                  meta=_meta(f"ord-{n}", n, None, scores))


def choice(task: str, n: int, frames: list[str], distractors: list[str], scores: bool,
           negative: bool = False) -> Sample:
    """A next- or previous-frame sample over `n` frames: n - 1 shown, 3 image options."""
    missing = n // 2 if task == "next_frame" else 0
    shown = [f for k, f in enumerate(frames[:n]) if k != missing]
    truth = distractors[0] if negative else frames[missing]
    steps = ", ".join(f"step {k + 1} {IMG}" for k in range(n) if k != missing)
    question = f"Given {steps}, which frame is step {missing + 1}?"
    sample_id = f"{'next' if task == 'next_frame' else 'prev'}-{n}" + ("-neg" if negative else "")
    return Sample(id=sample_id, task=task, scenario="gui", episode_id=f"ep{n}",
                  question=question,
                  options=(IMAGE_OPTION, IMAGE_OPTION, NONE_OPTION, IMAGE_OPTION),
                  answer="C" if negative else "B",
                  images=(*shown, distractors[1], truth, distractors[2]), negative=negative,
                  meta=_meta(sample_id, n, "missing" if negative else None, scores))


def make_mixed_dataset(root: Path, *, scores: bool = True) -> Path:
    """Write the dataset into `root`: train (ordering and next-frame samples of 3, 5, 8 and
    16 frames, one of them negative) and test (previous-frame samples of each length)."""
    frames = frame_images(root, range(16))
    distractors = frame_images(root, range(100, 103))
    train: list[Sample] = []
    for n in LENGTHS:
        train += [ordering(n, frames, scores),
                  choice("next_frame", n, frames, distractors, scores, negative=n == 8)]
    test = [choice("prev_frame", n, frames, distractors, scores) for n in LENGTHS]
    return write_dataset(root, {"train": train, "test": test})


def frame_images(root: Path, indexes: range) -> list[str]:
    """Write one distinct image per index into `root`'s images/; their relative paths."""
    return [_image(root, i) for i in indexes]


def write_dataset(root: Path, by_split: dict[str, list[Sample]]) -> Path:
    """Write `by_split` as a finished dataset folder at `root` (images already there)."""
    root.mkdir(parents=True, exist_ok=True)
    counts = {split: write_jsonl(root / f"{split}.jsonl", samples)
              for split, samples in by_split.items()}
    build = {"splits": list(by_split), "seed": 0, "schema_version": SCHEMA_VERSION,
             "counts": counts, "config": {"source": "hand-written mixed-length fixture"}}
    (root / "build.json").write_text(json.dumps(build), encoding="utf-8")
    return root
