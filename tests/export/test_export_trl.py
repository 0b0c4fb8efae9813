"""TRL export, read back with datasets.load_from_disk as GRPOTrainer gets it."""

from __future__ import annotations

from pathlib import Path

import datasets
from PIL import Image

from tpru.export import export_dataset
from tpru.export.trl import content_parts
from tpru.schema import Sample


def test_content_parts_interleave_in_order() -> None:
    assert content_parts("<image><image>Which?") == [
        {"type": "image", "text": None}, {"type": "image", "text": None},
        {"type": "text", "text": "Which?"}]
    assert content_parts("no images") == [{"type": "text", "text": "no images"}]


def test_trl_round_trip(dataset_dir: Path, tmp_path: Path, samples: dict[str, Sample]) -> None:
    out = tmp_path / "trl"
    export_dataset(dataset_dir, "trl", out)
    loaded = datasets.load_from_disk(str(out))
    assert isinstance(loaded, datasets.DatasetDict)
    assert set(loaded) == {"train", "test"}
    assert {"prompt", "images", "answer", "solution", "task", "scenario",
            "negative"} <= set(loaded["train"].column_names)

    for split in ("train", "test"):
        for row in loaded[split]:
            sample = samples[row["id"]]
            [message] = row["prompt"]
            assert message["role"] == "user"
            parts = message["content"]
            kinds = [p["type"] for p in parts]
            assert kinds.count("image") == len(row["images"]) == len(sample.images)
            assert set(kinds) <= {"image", "text"}
            # Text pieces with the images back in place give the rendered prompt.
            rebuilt = "".join("<image>" if p["type"] == "image" else p["text"] for p in parts)
            assert rebuilt.startswith(sample.question)
            assert "<answer>" in rebuilt
            assert row["answer"] == row["solution"] == sample.answer
            assert row["negative"] == sample.negative
            for image in row["images"]:
                assert isinstance(image, Image.Image)
                assert image.size == (16, 12)
