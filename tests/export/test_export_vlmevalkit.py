"""VLMEvalKit export, read back with pandas as VLMEvalKit loads a custom TSV."""

from __future__ import annotations

import ast
import base64
import io
import logging
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from tpru.diagnostics import InputError
from tpru.export import export_dataset
from tpru.export.vlmevalkit import IMAGE_OPTION_NOTE, image_cell, option_texts, question_text
from tpru.schema import NONE_OPTION, Sample


def _images(cell: str) -> list[Image.Image]:
    encoded = ast.literal_eval(cell) if cell.startswith("[") else [cell]
    return [Image.open(io.BytesIO(base64.b64decode(item))) for item in encoded]


def test_question_markers_and_image_options(samples: dict[str, Sample]) -> None:
    sample = samples["next"]
    text = question_text(sample)
    assert "<image>" not in text
    assert "step 2 <image 2>" in text and "final step 4 <image 3>" in text
    assert text.endswith("\n" + IMAGE_OPTION_NOTE)
    assert option_texts(sample) == ["Image 4", "Image 5", NONE_OPTION, "Image 6", "Image 7"]
    assert option_texts(samples["ord-opt"])[0] == "1 3 4 2"
    assert IMAGE_OPTION_NOTE not in question_text(samples["ord-opt"])


def test_vlmevalkit_tsv(dataset_dir: Path, tmp_path: Path, samples: dict[str, Sample],
                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tpru")  # other tests may leave the root at ERROR
    out = tmp_path / "vlmeval"
    written = export_dataset(dataset_dir, "vlmevalkit", out)
    assert sorted(p.name for p in written) == ["TPRU_custom_test.tsv", "TPRU_custom_train.tsv"]
    assert "skipped 1 letter-sequence" in caplog.text

    frames = {s: pd.read_csv(out / f"TPRU_custom_{s}.tsv", sep="\t") for s in ("train", "test")}
    indices = [i for frame in frames.values() for i in frame["index"]]
    assert len(set(indices)) == len(indices) == 5
    for split, frame in frames.items():
        assert {"index", "image", "question", "A", "B", "answer", "category", "l2-category",
                "split"} <= set(frame.columns)
        for _, row in frame.iterrows():
            sample = samples[row["id"]]
            assert row["split"] == split
            assert (row["category"], row["l2-category"]) == (sample.task, sample.scenario)
            images = _images(row["image"])
            assert len(images) == len(sample.images)
            for image in images:
                assert image.size == (16, 12)
            assert sample.options is not None
            letters = [c for c in "ABCDEFGH" if c in frame.columns and pd.notna(row[c])]
            assert letters == list("ABCDE")[: len(sample.options)]
            assert row["answer"] in letters
            assert str(row["question"]).count("<image ") == sample.question.count("<image>")
    prev = frames["test"].set_index("id").loc["prev"]
    assert prev["D"] == "Image 7" and prev["E"] == NONE_OPTION and prev["answer"] == "D"


def test_vlmevalkit_can_include_letter_ordering(dataset_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "vlmeval"
    export_dataset(dataset_dir, "vlmevalkit", out, splits=["train"], name="TPRU_letters",
                   include_ordering_letters=True)
    frame = pd.read_csv(out / "TPRU_letters_train.tsv", sep="\t")
    row = frame.set_index("id").loc["ord-letters"]
    assert row["answer"] == "CABD"
    assert pd.isna(row["A"])
    assert "\nA: <image 1>\n" in row["question"]


def test_vlmevalkit_single_image_is_a_plain_base64_cell() -> None:
    assert image_cell(["QUJD"]) == "QUJD"
    assert ast.literal_eval(image_cell(["QUJD", "REVG"])) == ["QUJD", "REVG"]


def test_vlmevalkit_refuses_odd_names(dataset_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="name"):
        export_dataset(dataset_dir, "vlmevalkit", tmp_path / "o", name="../evil")
