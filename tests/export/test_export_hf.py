"""Hugging Face export: loadable with load_dataset (parquet + card) and load_from_disk."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
from PIL import Image

from tpru.export import export_dataset
from tpru.schema import Sample


def _check(split: datasets.Dataset, samples: dict[str, Sample]) -> None:
    for row in split:
        sample = samples[row["id"]]
        assert row["question"] == sample.question
        assert row["options"] == list(sample.options or ())
        assert row["answer"] == sample.answer
        assert (row["task"], row["scenario"], row["episode_id"], row["negative"]) == (
            sample.task, sample.scenario, sample.episode_id, sample.negative)
        assert json.loads(row["meta"]) == dict(sample.meta)
        assert len(row["images"]) == len(sample.images)
        assert all(isinstance(image, Image.Image) for image in row["images"])


def test_hf_loads_both_ways(dataset_dir: Path, tmp_path: Path,
                            samples: dict[str, Sample]) -> None:
    out = tmp_path / "hf"
    written = export_dataset(dataset_dir, "hf", out)
    names = {str(p.relative_to(out)) for p in written}
    assert {"README.md", "dataset_dict.json", "data/train-00000-of-00001.parquet",
            "data/test-00000-of-00001.parquet"} <= names
    assert (out / "README.md").read_text().startswith("---\nconfigs:")

    from_hub_layout = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    from_disk = datasets.load_from_disk(str(out))
    assert isinstance(from_disk, datasets.DatasetDict)
    for loaded in (from_hub_layout, from_disk):
        assert set(loaded) == {"train", "test"}
        assert loaded["train"].num_rows == 4 and loaded["test"].num_rows == 2
        assert isinstance(loaded["train"].features["images"].feature, datasets.Image)
        _check(loaded["train"], samples)
        _check(loaded["test"], samples)
    letters = next(r for r in from_disk["train"] if r["id"] == "ord-letters")
    assert letters["options"] == [] and letters["answer"] == "CABD"
