"""EasyR1 export, read back the way EasyR1 reads it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import datasets
import jinja2
import pytest
from PIL import Image

from tpru.export import export_dataset
from tpru.schema import Sample


def _open(image: Any) -> Image.Image:
    """What EasyR1 accepts: a path, or a dict with bytes."""
    if isinstance(image, str):
        assert Path(image).is_absolute()
        return Image.open(image)
    return Image.open(io.BytesIO(image["bytes"]))


@pytest.mark.parametrize("embed_images", [False, True])
def test_easyr1_round_trip(dataset_dir: Path, tmp_path: Path, samples: dict[str, Sample],
                           embed_images: bool) -> None:
    out = tmp_path / "easyr1"
    written = export_dataset(dataset_dir, "easyr1", out, embed_images=embed_images)
    assert sorted(p.name for p in written) == ["format_prompt.jinja", "test.parquet",
                                               "train.parquet"]
    template = jinja2.Template((out / "format_prompt.jinja").read_text(encoding="utf-8").strip())

    loaded = datasets.load_dataset(
        "parquet", data_files={"train": str(out / "train.parquet"),
                               "test": str(out / "test.parquet")},
        cache_dir=str(tmp_path / "cache"))
    assert set(loaded["train"].column_names) == {"problem", "answer", "images", "task",
                                                 "scenario", "negative", "id"}
    seen = []
    for split in ("train", "test"):
        for row in loaded[split]:
            sample = samples[row["id"]]
            seen.append(row["id"])
            prompt = template.render(content=row["problem"])
            assert "<think>" in prompt and "<answer>" in prompt
            assert len(prompt.split("<image>")) - 1 == len(row["images"]) == len(sample.images)
            assert row["answer"] == sample.answer
            assert (row["task"], row["scenario"], row["negative"]) == (
                sample.task, sample.scenario, sample.negative)
            for image in row["images"]:
                with _open(image) as opened:
                    assert opened.convert("RGB").size == (16, 12)
    assert sorted(seen) == sorted(samples)
    letters = next(r for r in loaded["train"] if r["id"] == "ord-letters")
    assert letters["answer"] == "CABD"
    assert letters["problem"] == samples["ord-letters"].question


def test_easyr1_custom_template_is_copied(dataset_dir: Path, tmp_path: Path) -> None:
    custom = tmp_path / "mine.jinja"
    custom.write_text("{{ content }}\nAnswer in <answer></answer>.", encoding="utf-8")
    export_dataset(dataset_dir, "easyr1", tmp_path / "out", splits=["test"],
                   format_prompt=custom)
    assert (tmp_path / "out" / "format_prompt.jinja").read_text() == custom.read_text()
    assert not (tmp_path / "out" / "train.parquet").exists()
