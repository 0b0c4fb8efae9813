"""Small hand-built datasets for tests that read a built dataset folder.

`make_dataset` writes what `tpru build` writes (``build.json``, one JSONL file
per split, content-addressed images) without running the builder, so tests of
readers (stats, viewer, exports) do not depend on the builder's behaviour.
The fixture is tiny and fixed; the expected counts are in `EXPECTED`.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

from PIL import Image, ImageDraw

from tpru.schema import IMAGE_OPTION, NONE_OPTION, SCHEMA_VERSION, Sample, write_jsonl

IMG = "<image>"

EXPECTED = {
    "samples": 7,
    "splits": {"train": 4, "test": 3},
    "tasks": {"ordering": 3, "next_frame": 2, "prev_frame": 2},
    "scenarios": {"gui": 2, "lego": 2, "robot": 3},
    "negative": {"positive": 4, "negative": 3},
    "negative_kinds": {"missing": 1, "mismatch": 2},
    "ordering_forms": {"options": 2, "letters": 1},
}
"""Counts of the dataset `make_dataset` writes, for tests to compare against."""


def _frame_bytes(index: int) -> bytes:
    """A distinct, non-uniform 48x32 JPEG for frame `index`."""
    image = Image.new("RGB", (48, 32), ((index * 53) % 256, (index * 97) % 256, 180))
    draw = ImageDraw.Draw(image)
    draw.rectangle((4 + index % 8 * 4, 6, 20 + index % 8 * 4, 26), fill=(250, 250, 250))
    draw.text((2, 2), str(index), fill=(0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _write_image(root: Path, index: int) -> str:
    """Store frame `index` content-addressed; return its path inside the dataset."""
    data = _frame_bytes(index)
    digest = hashlib.sha256(data).hexdigest()[:32]
    relative = f"images/{digest[:2]}/{digest}.jpg"
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return relative


def _samples(img: list[str]) -> dict[str, list[Sample]]:
    """The fixture's samples by split; `img` maps a frame number to its path."""
    four = " ".join(f"Image {n}: {IMG}" for n in range(1, 5))
    lettered = " ".join(f"Image {c}: {IMG}" for c in "ABCD")
    train = [
        Sample(id="ord-opt-1", task="ordering", scenario="robot", episode_id="robot-ep1",
               question=f"Put the frames of the robot's task in order. {four}",
               options=("1 2 3 4", "2 1 4 3", "3 1 2 4", "4 3 2 1"), answer="C",
               images=(img[3], img[1], img[2], img[4]),
               meta={"split": "train"}),
        Sample(id="ord-let-1", task="ordering", scenario="lego", episode_id="lego-ep1",
               question=f"Give the letters in the order the steps happened. {lettered}",
               options=None, answer="CABD",
               images=(img[6], img[7], img[5], img[8]), meta={"split": "train"}),
        Sample(id="next-1", task="next_frame", scenario="robot", episode_id="robot-ep1",
               question=f"Steps 1, 2 and 4: {IMG} {IMG} {IMG}. Which frame is step 3?",
               options=(IMAGE_OPTION, IMAGE_OPTION, IMAGE_OPTION, NONE_OPTION), answer="A",
               images=(img[1], img[2], img[4], img[3], img[9], img[10]),
               meta={"split": "train"}),
        Sample(id="prev-neg-missing", task="prev_frame", scenario="gui", episode_id="gui-ep1",
               question=f"Steps 2, 3 and 4: {IMG} {IMG} {IMG}. Which frame is step 1?",
               options=(IMAGE_OPTION, NONE_OPTION, IMAGE_OPTION, IMAGE_OPTION), answer="B",
               images=(img[12], img[13], img[14], img[15], img[16], img[17]),
               negative=True, meta={"split": "train", "negative_kind": "missing"}),
    ]
    test = [
        Sample(id="next-neg-mismatch", task="next_frame", scenario="lego", episode_id="lego-ep2",
               question=(f"Building a red tower & a <blue> bridge. Steps 1, 2 and 4: "
                         f"{IMG} {IMG} {IMG}. Which frame is step 3?"),
               options=(IMAGE_OPTION, IMAGE_OPTION, IMAGE_OPTION, NONE_OPTION), answer="D",
               images=(img[18], img[19], img[20], img[21], img[22], img[23]),
               negative=True, meta={"split": "test", "negative_kind": "mismatch"}),
        Sample(id="prev-1", task="prev_frame", scenario="gui", episode_id="gui-ep2",
               question=f"Steps 2, 3 and 4: {IMG} {IMG} {IMG}. Which frame is step 1?",
               options=(IMAGE_OPTION, NONE_OPTION, IMAGE_OPTION, IMAGE_OPTION), answer="C",
               images=(img[24], img[25], img[26], img[27], img[11], img[28]),
               meta={"split": "test"}),
        Sample(id="ord-neg-mismatch", task="ordering", scenario="robot", episode_id="robot-ep2",
               question=f"Folding a towel. Put the frames in order. {four}",
               options=("1 3 2 4", NONE_OPTION, "4 1 2 3", "2 4 1 3"), answer="B",
               images=(img[29], img[30], img[31], img[32]),
               negative=True, meta={"split": "test", "negative_kind": "mismatch"}),
    ]
    return {"train": train, "test": test}


def make_dataset(root: Path) -> Path:
    """Write a small finished dataset into `root` (created) and return `root`.

    Seven samples over two splits: every task, both ordering forms, image and
    text options, and negatives of both kinds ("missing", "mismatch"). Images
    are real JPEGs stored as ``images/xx/<sha256[:32]>.jpg``.
    """
    root.mkdir(parents=True, exist_ok=True)
    img = [_write_image(root, i) for i in range(33)]
    by_split = _samples(img)
    for split, samples in by_split.items():
        write_jsonl(root / f"{split}.jsonl", samples)
    info = {
        "splits": list(by_split),
        "schema_version": SCHEMA_VERSION,
        "seed": 0,
        "config": {"source": "hand-written test fixture"},
        "counts": {split: len(samples) for split, samples in by_split.items()},
    }
    (root / "build.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return root


def folder_bytes(root: Path) -> dict[str, bytes]:
    """Every file under `root` by relative path (``/``-separated), with its bytes: two
    folders compare equal when they hold the same files with the same bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}
