"""A small built dataset, written by hand, with every task and form the exporters meet."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from tpru.dataset import Dataset
from tpru.schema import NONE_OPTION, Sample, write_jsonl

IMG = "<image>"


def _image(root: Path, colour: tuple[int, int, int], fmt: str) -> str:
    """Write a small image content-addressed under images/; return its relative path."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), colour).save(buffer, format=fmt)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    suffix = "jpg" if fmt == "JPEG" else "png"
    relative = f"images/{digest[:2]}/{digest}.{suffix}"
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    (root / relative).write_bytes(data)
    return relative


def _samples(images: list[str]) -> dict[str, list[Sample]]:
    a, b, c, d, e, f, g, h = images
    ordering_q = ("These photos show the process of stacking the red cube on the blue one. "
                  "Below are 4 images in random order, labeled as 1, 2, 3, and 4. "
                  f"What is the correct sequence of these images? {IMG}{IMG}{IMG}{IMG}")
    next_q = (f"The 1st step is {IMG}, followed by step 2 {IMG}. Select the correct option "
              f"of step 3, which can reach the final step 4 {IMG}.")
    prev_q = (f"The 2nd screen is step 2 {IMG}, followed by step 3 {IMG}, and the final "
              f"screen is step 4 {IMG}. Please select the option of step 1.")
    train = [
        Sample(id="ord-opt", task="ordering", scenario="robot", episode_id="ep1",
               question=ordering_q,
               options=("1 3 4 2", "4 3 2 1", "3 2 1 4", "4 2 3 1", NONE_OPTION),
               answer="A", images=(a, c, d, b), meta={"frames": [0, 2, 3, 1]}),
        Sample(id="ord-letters", task="ordering", scenario="lego", episode_id="ep2",
               question=("These photos show the process of building a wall. The images are "
                         f"labelled A, B, C and D.\nA: {IMG}\nB: {IMG}\nC: {IMG}\nD: {IMG}\n"
                         "Give the labels in chronological order."),
               options=None, answer="CABD", images=(e, f, g, h)),
        Sample(id="next", task="next_frame", scenario="gui", episode_id="ep3",
               question=next_q, options=(IMG, IMG, NONE_OPTION, IMG, IMG), answer="B",
               images=(a, b, d, e, c, f, g), meta={"distractors": {"same_episode": 2}}),
        Sample(id="next-neg", task="next_frame", scenario="gui", episode_id="ep3",
               question=next_q, options=(IMG, IMG, NONE_OPTION, IMG, IMG), answer="C",
               images=(a, b, d, e, f, g, h), negative=True,
               meta={"negative_kind": "truth_removed"}),
    ]
    test = [
        Sample(id="prev", task="prev_frame", scenario="nav", episode_id="ep4",
               question=prev_q, options=(IMG, IMG, IMG, IMG, NONE_OPTION), answer="D",
               images=(b, c, d, e, f, g, a)),
        Sample(id="ord-neg", task="ordering", scenario="robot", episode_id="ep5",
               question=ordering_q.replace("stacking the red cube on the blue one",
                                           "pouring water into a cup"),
               options=("1 2 3 4", "2 1 4 3", "4 3 1 2", "3 1 2 4", NONE_OPTION),
               answer="E", images=(h, g, f, e), negative=True,
               meta={"negative_kind": "text_mismatch"}),
    ]
    return {"train": train, "test": test}


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished dataset folder: train.jsonl, test.jsonl, images/, build.json."""
    root = tmp_path_factory.mktemp("dataset")
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30),
               (30, 200, 200), (200, 30, 200), (90, 90, 90), (240, 240, 240)]
    images = [_image(root, colour, "PNG" if i % 3 == 0 else "JPEG")
              for i, colour in enumerate(colours)]
    counts = {}
    for split, samples in _samples(images).items():
        counts[split] = write_jsonl(root / f"{split}.jsonl", samples)
    build = {"splits": ["train", "test"], "seed": 0, "schema_version": 1, "counts": counts}
    (root / "build.json").write_text(json.dumps(build), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def dataset(dataset_dir: Path) -> Dataset:
    return Dataset.open(dataset_dir)


@pytest.fixture(scope="session")
def samples(dataset: Dataset) -> dict[str, Sample]:
    """Every sample of the fixture dataset by id."""
    return {s.id: s for s in dataset.samples()}
