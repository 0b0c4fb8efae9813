"""verl export, read back with pyarrow and datasets."""

from __future__ import annotations

import io
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tpru.export import export_dataset
from tpru.schema import Sample


@pytest.mark.parametrize("embed_images", [True, False])
def test_verl_rows(dataset_dir: Path, tmp_path: Path, samples: dict[str, Sample],
                   embed_images: bool) -> None:
    out = tmp_path / "verl"
    written = export_dataset(dataset_dir, "verl", out, embed_images=embed_images)
    assert sorted(p.name for p in written) == ["test.parquet", "train.parquet"]

    rows = pq.read_table(out / "train.parquet").to_pylist()
    assert [r["extra_info"]["index"] for r in rows] == list(range(len(rows)))
    for split in ("train", "test"):
        for row in pq.read_table(out / f"{split}.parquet").to_pylist():
            info = row["extra_info"]
            sample = samples[info["id"]]
            assert info["split"] == split
            assert (info["task"], info["scenario"], info["negative"]) == (
                sample.task, sample.scenario, sample.negative)
            assert row["data_source"] == "tpru"
            assert row["ability"] == "temporal_reasoning"
            assert row["reward_model"] == {"style": "rule", "ground_truth": sample.answer}
            [message] = row["prompt"]
            assert message["role"] == "user"
            content = message["content"]
            assert content.startswith(sample.question)
            assert "<answer>" in content  # the format prompt is applied
            assert content.count("<image>") == len(row["images"]) == len(sample.images)
            for image in row["images"]:
                source = io.BytesIO(image["bytes"]) if embed_images else image["image"]
                with Image.open(source) as opened:
                    opened.load()

    loaded = datasets.load_dataset("parquet", data_files=str(out / "test.parquet"),
                                   cache_dir=str(tmp_path / "cache"))["train"]
    assert loaded.num_rows == 2
    assert loaded[0]["prompt"][0]["role"] == "user"


def test_verl_without_format_prompt(dataset_dir: Path, tmp_path: Path,
                                    samples: dict[str, Sample]) -> None:
    out = tmp_path / "verl"
    export_dataset(dataset_dir, "verl", out, splits=["train"], format_prompt=None)
    row = next(r for r in pq.read_table(out / "train.parquet").to_pylist()
               if r["extra_info"]["id"] == "ord-letters")
    assert row["prompt"][0]["content"] == samples["ord-letters"].question
