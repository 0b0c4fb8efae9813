"""Benchmark loaders on files in each benchmark's published format."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bench_files import (
    EXPECTED_LEGO,
    EXPECTED_TPRU,
    IMG,
    LETTER_PROBLEM,
    NONE,
    ORDERING_PROBLEM,
    muirbench_rows,
    png_bytes,
    write_muirbench,
    write_tpru_test,
)
from PIL import Image

from tpru.dataset import Dataset
from tpru.diagnostics import InputError, Skips
from tpru.eval.benchmarks import BENCHMARKS, load_benchmark
from tpru.eval.benchmarks.tpru_test import split_options
from tpru.eval.items import Item


def _items(spec: str | Path, cache_dir: Path, split: str | None = None) -> tuple[list[Item], Skips]:
    skips = Skips()
    items = list(load_benchmark(spec, cache_dir=cache_dir, split=split).items(skips))
    return items, skips


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check_images(items: list[Item]) -> None:
    for item in items:
        placeholders = item.question.count(IMG) + sum(o.count(IMG) for o in item.options or ())
        assert placeholders == len(item.images), item.id
        for path in item.images:
            assert Path(path).is_absolute() and Path(path).is_file()
            with Image.open(path) as image:
                image.verify()


def test_table_names_the_three_benchmarks() -> None:
    assert set(BENCHMARKS) == {"tpru-test", "muirbench", "lego-puzzles"}


# --------------------------------------------------------------------- MuirBench


def test_muirbench_parquet_gives_pairs_with_twins(muirbench_file: Path, cache_dir: Path) -> None:
    items, skips = _items(f"muirbench:{muirbench_file}", cache_dir)
    rows = muirbench_rows(3)
    assert [i.id for i in items] == [r["idx"] for r in rows]
    assert skips.counts == {"bad_row": 1}
    assert "test_bad" in skips.examples["bad_row"][0]
    assert str(muirbench_file) in skips.examples["bad_row"][0]
    _check_images(items)
    by_id = {i.id: i for i in items}
    for item, row in zip(items, rows, strict=True):
        assert item.benchmark == "muirbench"
        assert item.task == row["task"]
        assert item.category == row["image_relation"] and item.scenario == row["image_type"]
        assert item.answer == row["answer"] and item.options == tuple(row["options"])
        assert item.negative is None
        # the twin is unanswerable: its gold is the None option
        gold = item.options[ord(item.answer) - ord("A")] if item.options else None
        assert item.answerable is (gold != NONE)
        assert item.answerable is (int(item.id.split("_")[1]) % 2 == 0)
        assert by_id[item.counterpart].counterpart == item.id
        # images are the published bytes, stored once under their content hash
        expected = [hashlib.sha256(s["bytes"]).hexdigest() for s in row["image_list"]]
        assert [_digest(p) for p in item.images] == expected
        assert all(Path(p).parent.parent == cache_dir for p in item.images)
        assert all(Path(p).stem == d[:32] for p, d in zip(item.images, expected, strict=True))


def test_muirbench_image_options_follow_the_question_images(muirbench_file: Path,
                                                            cache_dir: Path) -> None:
    items, _ = _items(f"muirbench:{muirbench_file}", cache_dir)
    retrieval = next(i for i in items if i.task == "Visual Retrieval")
    assert retrieval.options == (IMG, IMG, NONE)
    assert len(retrieval.question_images) == 1 and len(retrieval.images) == 3
    assert retrieval.answer_form == "choice"


def test_images_are_written_once_and_reused(muirbench_file: Path, cache_dir: Path) -> None:
    first, _ = _items(f"muirbench:{muirbench_file}", cache_dir)
    files = sorted(cache_dir.rglob("*.png"))
    stamps = [f.stat().st_mtime_ns for f in files]
    second, _ = _items(f"muirbench:{muirbench_file}", cache_dir)
    assert [i.images for i in first] == [i.images for i in second]
    assert sorted(cache_dir.rglob("*.png")) == files
    assert [f.stat().st_mtime_ns for f in files] == stamps


def test_muirbench_hub_snapshot_folder_picks_the_split(muirbench_file: Path, tmp_path: Path,
                                                       cache_dir: Path) -> None:
    snapshot = tmp_path / "MUIRBENCH"
    (snapshot / "data").mkdir(parents=True)
    shutil.copy(muirbench_file, snapshot / "data" / "test-00000-of-00001.parquet")
    write_muirbench(snapshot / "data" / "validation-00000-of-00001.parquet", pairs=1, bad=False)
    test_items, _ = _items(f"muirbench:{snapshot}", cache_dir, split="test")
    assert len(test_items) == 6
    all_items, _ = _items(f"muirbench:{snapshot}", cache_dir)
    assert len(all_items) == 6 + 2
    with pytest.raises(InputError, match="no parquet files for split 'train'"):
        _items(f"muirbench:{snapshot}", cache_dir, split="train")


def test_save_to_disk_folder_reads_like_parquet(muirbench_file: Path, tmp_path: Path,
                                                cache_dir: Path) -> None:
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "saved"
    loaded = datasets.load_dataset("parquet", data_files={"test": str(muirbench_file)},
                                   cache_dir=str(tmp_path / "hf-cache"))
    loaded.save_to_disk(str(folder))
    from_disk, skips = _items(f"muirbench:{folder}", cache_dir, split="test")
    from_parquet, _ = _items(f"muirbench:{muirbench_file}", cache_dir)
    assert from_disk == from_parquet
    assert skips.counts == {"bad_row": 1}
    with pytest.raises(InputError, match="no split 'dev'"):
        _items(f"muirbench:{folder}", cache_dir, split="dev")


# ------------------------------------------------------------------ LEGO-Puzzles


def test_lego_tsv_items(lego_file: Path, cache_dir: Path) -> None:
    items, skips = _items(f"lego-puzzles:{lego_file}", cache_dir)
    assert [i.id for i in items] == list(EXPECTED_LEGO)
    assert skips.counts == {"bad_row": 1} and "row 6" in skips.examples["bad_row"][0]
    _check_images(items)
    for item in items:
        task, answer, options, count, first = EXPECTED_LEGO[item.id]
        assert (item.task, item.answer, item.options, len(item.images)) == \
            (task, answer, options, count)
        assert item.meta["images_first"] is first
        assert "<image " not in item.question
    levels = {i.id: i.category for i in items}
    assert levels["0"] == "spatial understanding" and levels["1"] == "single-step reasoning"
    assert levels["2"] == "multi-step reasoning"


def test_lego_markers_place_images_in_prompt_order(lego_file: Path, cache_dir: Path) -> None:
    items, _ = _items(f"lego-puzzles:{lego_file}", cache_dir)
    by_id = {i.id: i for i in items}
    from bench_files import png_bytes as png

    # row 1: "<image 2>" comes before "<image 1>", then the options' images 3, 4, 5
    expected = [hashlib.sha256(png(110 + k)).hexdigest() for k in (1, 0, 2, 3, 4)]
    assert [_digest(p) for p in by_id["1"].images] == expected
    # row 4 names row 3's index: the same image file
    assert by_id["4"].images == by_id["3"].images
    assert by_id["3"].question.startswith(IMG + "\n")


def test_lego_sort_item_is_a_letter_sequence(lego_file: Path, cache_dir: Path) -> None:
    items, _ = _items(f"lego-puzzles:{lego_file}", cache_dir)
    sort = next(i for i in items if i.meta["question_type"] == "sort")
    assert sort.answer == "BDAC" and sort.answer_form == "sequence"
    assert sort.sequence_length == 4


# --------------------------------------------------------------------- TPRU-Test


def _check_tpru(items: list[Item]) -> None:
    assert [i.id for i in items] == list(EXPECTED_TPRU)
    _check_images(items)
    for item in items:
        answer, options, count, task, negative = EXPECTED_TPRU[item.id]
        assert (item.answer, item.options, len(item.images), item.task, item.negative) == \
            (answer, options, count, task, negative)
        assert item.meta["problem"].count(IMG) == count


def test_tpru_test_parquet_parses_options_out_of_the_problem(tpru_test_file: Path,
                                                             cache_dir: Path) -> None:
    items, skips = _items(f"tpru-test:{tpru_test_file}", cache_dir)
    _check_tpru(items)
    assert skips.counts == {"bad_row": 1}
    assert "no options found" in skips.examples["bad_row"][0]
    ordering = items[0]
    assert ordering.question == ORDERING_PROBLEM.split("\nA.")[0]
    assert ordering.meta["problem"] == ORDERING_PROBLEM
    letters = items[2]
    assert letters.question == LETTER_PROBLEM and letters.sequence_length == 4


@pytest.mark.parametrize("rename", [
    {"problem": "question", "images": "image", "answer": "solution"},
    {"problem": "prompt", "images": "image_list", "answer": "ground_truth"},
])
def test_tpru_test_accepts_column_variants(tmp_path: Path, cache_dir: Path,
                                           rename: dict[str, str]) -> None:
    path = write_tpru_test(tmp_path / "variant.parquet", rename=rename)
    items, _ = _items(f"tpru-test:{path}", cache_dir)
    _check_tpru(items)


def test_tpru_test_jsonl_with_image_paths(tmp_path: Path, cache_dir: Path) -> None:
    path = write_tpru_test(tmp_path / "tpru" / "test.jsonl")
    items, _ = _items(f"tpru-test:{path}", cache_dir)
    _check_tpru(items)
    # paths are kept where they are, resolved against the file's folder
    assert all(Path(p).parent == (tmp_path / "tpru" / "images").resolve()
               for i in items for p in i.images)
    assert not cache_dir.exists()


@pytest.mark.parametrize(("drop", "named"), [("answer", "answer"), ("images", "images"),
                                             ("problem", "question")])
def test_missing_column_is_named_with_the_columns_found(tmp_path: Path, cache_dir: Path,
                                                       drop: str, named: str) -> None:
    path = write_tpru_test(tmp_path / "broken.parquet", drop=drop)
    bench = load_benchmark(f"tpru-test:{path}", cache_dir=cache_dir)
    with pytest.raises(InputError) as caught:
        list(bench.items())
    message = str(caught.value)
    assert str(path) in message and f"no {named} column" in message
    kept = [c for c in ("id", "problem", "answer", "images") if c != drop]
    assert f"columns found: {', '.join(kept)}" in message
    assert "\n" not in message


def test_split_options_forms() -> None:
    assert split_options(f"Q {IMG}\n(A) one\n(B) two") == (f"Q {IMG}", ("one", "two"))
    assert split_options(f"Q {IMG}\nA) one\nB) two\nAnswer briefly.") == \
        (f"Q {IMG}\nAnswer briefly.", ("one", "two"))
    # a stray line that looks like an option above the block is not part of it
    assert split_options(f"C. is a constant\nQ {IMG}\nA. x\nB. y") == \
        (f"C. is a constant\nQ {IMG}", ("x", "y"))
    # options followed by a question image are not a trailing block: left alone
    assert split_options(f"A. x\nB. y\nThen {IMG}") == (f"A. x\nB. y\nThen {IMG}", None)
    assert split_options("No options here.") == ("No options here.", None)
    assert split_options("Pick: A. red; B. blue, C. green") == \
        ("Pick:", ("red", "blue", "green"))


# ------------------------------------------------------------ tpru dataset folder


def test_tpru_dataset_folder_items_match_its_samples(tpru_dataset: Path,
                                                     cache_dir: Path) -> None:
    dataset = Dataset.open(tpru_dataset)
    samples = list(dataset.samples())
    for spec in (str(tpru_dataset), f"dataset:{tpru_dataset}"):
        items, skips = _items(spec, cache_dir, split="all")
        assert not skips.counts
        assert [i.id for i in items] == [s.id for s in samples]
    _check_images(items)
    for item, sample in zip(items, samples, strict=True):
        assert (item.task, item.scenario, item.negative, item.question, item.options,
                item.answer) == (sample.task, sample.scenario, sample.negative, sample.question,
                                 sample.options, sample.answer)
        assert item.images == tuple(str(dataset.image_path(p).resolve()) for p in sample.images)
        assert item.category == (sample.meta.get("negative_kind") if sample.negative else None)
        assert item.benchmark == "tpru-dataset"
    assert not cache_dir.exists()  # the dataset's own image files are used


def test_tpru_dataset_split_is_selectable(tpru_dataset: Path, cache_dir: Path) -> None:
    dataset = Dataset.open(tpru_dataset)
    items, _ = _items(tpru_dataset, cache_dir, split="test")
    assert [i.id for i in items] == [s.id for s in dataset.samples("test")]
    assert {i.meta["split"] for i in items} == {"test"}
    with pytest.raises(InputError, match="no split 'dev'"):
        load_benchmark(tpru_dataset, cache_dir=cache_dir, split="dev")


def test_tpru_dataset_missing_image_is_a_counted_skip(tpru_dataset: Path, tmp_path: Path,
                                                      cache_dir: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tpru_dataset, copy)
    first = next(Dataset.open(copy).samples())
    (copy / first.images[0]).unlink()
    items, skips = _items(copy, cache_dir, split="all")
    assert first.id not in {i.id for i in items}
    assert skips.counts["missing_image"] >= 1


# -------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("spec", "message"), [
    ("mmmu", "unknown benchmark 'mmmu'"),
    ("muirbench:/no/such/file.parquet", "no such file or folder"),
])
def test_unknown_benchmarks_are_refused(spec: str, message: str, cache_dir: Path) -> None:
    with pytest.raises(InputError, match=message):
        list(load_benchmark(spec, cache_dir=cache_dir).items())


def test_a_folder_that_is_no_dataset_asks_for_the_format(tmp_path: Path,
                                                         cache_dir: Path) -> None:
    with pytest.raises(InputError, match="name the benchmark format as NAME:"):
        load_benchmark(tmp_path, cache_dir=cache_dir)


def test_not_an_image_is_a_counted_skip(tmp_path: Path, cache_dir: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = muirbench_rows(1)
    rows[0]["image_list"][0] = {"bytes": b"not an image at all", "path": "x.png"}
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    items, skips = _items(f"muirbench:{path}", cache_dir)
    assert [i.id for i in items] == ["test_1"]
    assert "not an image" in skips.examples["bad_row"][0]
    assert png_bytes(0) != png_bytes(1)


@pytest.mark.slow
def test_a_hub_id_offline_fails_in_one_line(tmp_path: Path) -> None:
    code = ("from tpru.eval.benchmarks import load_benchmark\n"
            "from tpru.diagnostics import InputError\n"
            "try:\n"
            f"    list(load_benchmark('muirbench:nobody/nothing', cache_dir={str(tmp_path)!r})"
            ".items())\n"
            "except InputError as err:\n"
            "    print(err)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.startswith("nobody/nothing: no such local file or folder, and cannot "
                                  "load it from the hub (")
    assert done.stdout.count("\n") == 1


def test_store_image_reads_every_published_form(tmp_path: Path, cache_dir: Path) -> None:
    import base64
    import io

    from tpru.eval.benchmarks.common import RowError
    from tpru.eval.benchmarks.images import store_image

    data = png_bytes(7)
    from_bytes = store_image(data, cache_dir, None)
    assert Path(from_bytes).read_bytes() == data and from_bytes.endswith(".png")
    encoded = base64.b64encode(data).decode()
    assert store_image(encoded, cache_dir, None) == from_bytes
    assert store_image("data:image/png;base64," + encoded, cache_dir, None) == from_bytes
    assert store_image({"bytes": data, "path": None}, cache_dir, None) == from_bytes
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.png").write_bytes(data)
    assert store_image({"bytes": None, "path": "pics/a.png"}, cache_dir, tmp_path) == \
        str((tmp_path / "pics" / "a.png").resolve())
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        from_pil = store_image(image, cache_dir, None)
    with Image.open(from_pil) as stored, Image.open(io.BytesIO(data)) as original:
        assert stored.tobytes() == original.convert(stored.mode).tobytes()
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(jpeg, format="JPEG")
    assert store_image(jpeg.getvalue(), cache_dir, None).endswith(".jpg")
    for bad in ("missing.png", b"\x00" * 64, {"path": None}, 3.5):
        with pytest.raises(RowError):
            store_image(bad, cache_dir, tmp_path)


def test_tpru_test_options_column_is_used(tmp_path: Path, cache_dir: Path) -> None:
    import json

    for k in range(2):
        (tmp_path / f"f{k}.png").write_bytes(png_bytes(300 + k))
    row = {"id": "c1", "problem": f"Order the frames: {IMG}{IMG}", "choices": ["1 2", "2 1"],
           "solution": "B", "frames": ["f0.png", "f1.png"], "scenario": "robot"}
    path = tmp_path / "cols.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    (item,), _ = _items(f"tpru-test:{path}", cache_dir)
    assert (item.options, item.answer, item.task, item.scenario, item.negative) == \
        (("1 2", "2 1"), "B", "ordering", "robot", False)
    assert item.question == row["problem"]


def _lego_tsv(path: Path, rows: list[list[str]], *, question_type: bool = True) -> Path:
    header = ["index", "image", "question", "A", "B", "C", "D", "E", "answer", "category"]
    header += ["question_type"] if question_type else []
    path.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


def test_lego_rows_that_cannot_be_scored_are_counted_skips(tmp_path: Path,
                                                           cache_dir: Path) -> None:
    import base64

    image = base64.b64encode(png_bytes(400)).decode()
    (tmp_path / "notes.txt").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "frame.png").write_bytes(png_bytes(401))
    five = ["p", "q", "r", "s", "t"]
    rows = [
        ["0", image, "Is it taller?", "yes", "no", "", "", "", "A", "Height", "single"],
        ["1", "notes.txt", "Is it taller?", "yes", "no", "", "", "", "A", "Height", "single"],
        ["2", image, "Is it taller?", "yes", "", "", "", "", "A", "Height", "single"],
        ["3", image, "Which one?", *five, "AB", "Position", "single"],
        ["4", image, "Which one?", *five, "F", "Position", "single"],
        ["5", image, "Order them.", "w", "x", "y", "z", "", "BDAC", "Ordering", "sort"],
        ["6", "frame.png", "Is it taller?", "yes", "no", "", "", "", "B", "Height", "single"],
        ["7", image, "Is it taller?", "yes", "no", "", "", "", "", "Height", "single"],
    ]
    items, skips = _items(f"lego-puzzles:{_lego_tsv(tmp_path / 'l.tsv', rows)}", cache_dir)
    assert [i.id for i in items] == ["0", "5", "6"]
    reasons = skips.examples["bad_row"]
    assert skips.counts["bad_row"] == 5 and len(reasons) == 5
    assert f"row 2: image '{tmp_path / 'notes.txt'}' is a file but not an image" in reasons[0]
    assert "row 3: item 2: only option A is given; an item needs at least two" in reasons[1]
    assert "row 4: item 3: answer 'AB' has several letters but the question_type is " \
           "'single', not sort" in reasons[2]
    assert "row 5: item 4: answer 'F' is not one of 5 options" in reasons[3]
    assert "row 8: the answer is empty" in reasons[4]


def test_lego_without_question_type_reads_orderings_of_all_options(tmp_path: Path,
                                                                   cache_dir: Path) -> None:
    """tpru's VLMEvalKit export writes no question_type column."""
    import base64

    image = base64.b64encode(png_bytes(402)).decode()
    rows = [["0", image, "Which one?", "p", "q", "r", "s", "t", "AB", "Position"],
            ["1", image, "Order them.", "w", "x", "y", "z", "", "BDAC", "Ordering"],
            ["2", repr([image, image]), "Order: <image 1> <image 2>", "", "", "", "", "",
             "BA", "Ordering"]]
    path = _lego_tsv(tmp_path / "l.tsv", rows, question_type=False)
    items, skips = _items(f"lego-puzzles:{path}", cache_dir)
    assert [(i.id, i.answer_form) for i in items] == [("1", "sequence"), ("2", "sequence")]
    assert "answer 'AB' has several letters but is not an order of all 5 options" in \
        skips.examples["bad_row"][0]


def test_tpru_test_one_option_or_an_answer_past_the_options_is_skipped(
        tmp_path: Path, cache_dir: Path) -> None:
    import json

    (tmp_path / "f.png").write_bytes(png_bytes(410))
    rows = [{"id": "one", "problem": f"Pick: {IMG}", "options": ["x"], "answer": "A",
             "images": ["f.png"]},
            {"id": "past", "problem": f"Order: {IMG}", "options": ["1 2", "2 1"],
             "answer": "AC", "images": ["f.png"]},
            {"id": "ok", "problem": f"Pick: {IMG}", "options": ["x", "y"], "answer": "B",
             "images": ["f.png"]}]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    items, skips = _items(f"tpru-test:{path}", cache_dir)
    assert [i.id for i in items] == ["ok"]
    first, second = skips.examples["bad_row"]
    assert "item one: 1 option; an item needs at least two" in first
    assert "item past: answer 'AC' is not an order of 2 options" in second


def test_a_broken_jsonl_line_names_the_column(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "a", "problem": "tab\there"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"t.jsonl: line 1: not valid JSON \(Invalid control "
                                         r"character at column 28\)$"):
        _items(f"tpru-test:{path}", cache_dir)
