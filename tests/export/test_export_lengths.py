"""Mixed sequence lengths (3, 5, 8, 16 frames) through every export, and the export orders.

Each export is read back the way its consumer reads it (pyarrow, datasets,
VLMEvalKit's TSV cell) and every row must carry its sample's images: the
question's n or n - 1 frames, then the image options.
"""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import yaml

from length_fixtures import LENGTHS, SCORES, image_count, make_mixed_dataset
from tpru.cli import main
from tpru.diagnostics import InputError
from tpru.export import export_dataset
from tpru.train.easyr1 import write_easyr1_run


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mixed_dataset(tmp_path_factory.mktemp("mixed") / "dataset")


@pytest.fixture(scope="module")
def unscored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same samples as built before difficulty scores existed."""
    return make_mixed_dataset(tmp_path_factory.mktemp("unscored") / "dataset", scores=False)


def _file_order(dataset: Path, split: str) -> list[str]:
    lines = (dataset / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["id"] for line in lines]


def _check_counts(ids: list[str], counts: list[int]) -> None:
    assert counts == [image_count(i) for i in ids]
    assert {image_count(i) for i in ids} >= {3, 5, 8, 16, 18}


def test_easyr1_rows_carry_every_image(mixed: Path, tmp_path: Path) -> None:
    export_dataset(mixed, "easyr1", tmp_path / "out", embed_images=True)
    for split in ("train", "test"):
        table = pq.read_table(tmp_path / "out" / f"{split}.parquet").to_pylist()
        assert [len(row["images"]) for row in table] == [image_count(r["id"]) for r in table]
        for row in table:
            assert row["problem"].count("<image>") == len(row["images"]) == image_count(row["id"])
            assert all(image["bytes"] for image in row["images"])


def test_verl_rows_carry_every_image(mixed: Path, tmp_path: Path) -> None:
    export_dataset(mixed, "verl", tmp_path / "out")
    rows = pq.read_table(tmp_path / "out" / "train.parquet").to_pylist()
    _check_counts([r["extra_info"]["id"] for r in rows], [len(r["images"]) for r in rows])
    for row in rows:
        assert row["prompt"][0]["content"].count("<image>") == len(row["images"])


def test_trl_rows_carry_every_image_frames_and_difficulty(mixed: Path, tmp_path: Path) -> None:
    export_dataset(mixed, "trl", tmp_path / "out")
    loaded = datasets.load_from_disk(str(tmp_path / "out"))
    train = loaded["train"]
    _check_counts(train["id"], [len(images) for images in train["images"]])
    for row in train:
        parts = row["prompt"][0]["content"]
        assert sum(p["type"] == "image" for p in parts) == len(row["images"])
        assert row["frames"] == int(row["id"].split("-")[1])
        assert row["difficulty"] == pytest.approx(SCORES[row["id"]])
        assert all(image.size[0] >= 16 for image in row["images"])  # decoded to PIL


def test_trl_difficulty_is_null_without_scores(unscored: Path, tmp_path: Path) -> None:
    export_dataset(unscored, "trl", tmp_path / "out", splits=["test"])
    test = datasets.load_from_disk(str(tmp_path / "out"))["test"]
    assert test["difficulty"] == [None] * 4 and test["frames"] == list(LENGTHS)


def test_vlmevalkit_image_cells_hold_every_image(mixed: Path, tmp_path: Path) -> None:
    export_dataset(mixed, "vlmevalkit", tmp_path / "out")
    with (tmp_path / "out" / "TPRU_custom_train.tsv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    ids = [row["id"] for row in rows]
    _check_counts(ids, [len(ast.literal_eval(row["image"])) for row in rows])
    sixteen = next(row for row in rows if row["id"] == "next-16")
    assert "<image 15>" in sixteen["question"] and sixteen["D"] == "Image 18"


def test_hf_rows_carry_every_image_and_the_meta(mixed: Path, tmp_path: Path) -> None:
    export_dataset(mixed, "hf", tmp_path / "out")
    on_disk = datasets.load_from_disk(str(tmp_path / "out"))["train"]
    from_parquet = datasets.load_dataset(str(tmp_path / "out"), split="train",
                                         cache_dir=str(tmp_path / "cache"))
    for part in (on_disk, from_parquet):
        _check_counts(part["id"], [len(images) for images in part["images"]])
    meta = {row["id"]: json.loads(row["meta"]) for row in on_disk}
    assert meta["next-16"]["frames"] == 16 and meta["next-16"]["difficulty"]["score"] == 0.9


# ---------------------------------------------------------------- orders


def test_the_default_order_is_the_datasets_own_and_unchanged(mixed: Path,
                                                             tmp_path: Path) -> None:
    export_dataset(mixed, "easyr1", tmp_path / "default")
    export_dataset(mixed, "easyr1", tmp_path / "dataset", order="dataset", seed=7)
    for split in ("train", "test"):
        default = (tmp_path / "default" / f"{split}.parquet").read_bytes()
        assert default == (tmp_path / "dataset" / f"{split}.parquet").read_bytes()
        ids = pq.read_table(tmp_path / "default" / f"{split}.parquet")["id"].to_pylist()
        assert ids == _file_order(mixed, split)


def _ids(out: Path, split: str = "train") -> list[str]:
    return list(pq.read_table(out / f"{split}.parquet")["id"].to_pylist())


def test_curriculum_goes_from_easy_to_hard_ties_seeded(mixed: Path, tmp_path: Path) -> None:
    export_dataset(mixed, "easyr1", tmp_path / "a", order="curriculum", seed=0)
    export_dataset(mixed, "easyr1", tmp_path / "b", order="curriculum", seed=0)
    ids = _ids(tmp_path / "a")
    scores = [SCORES[i] for i in ids]
    assert scores == sorted(scores) and sorted(ids) == sorted(_file_order(mixed, "train"))
    assert (tmp_path / "a" / "train.parquet").read_bytes() == \
        (tmp_path / "b" / "train.parquet").read_bytes()
    # the three samples scored 0.5 come in an order the seed picks
    ties = {tuple(i for i in _ids(_export(mixed, tmp_path / f"s{seed}", seed))
                  if SCORES[i] == 0.5) for seed in range(8)}
    assert len(ties) > 1 and all(sorted(t) == ["next-5", "ord-3", "ord-8"] for t in ties)


def _export(dataset: Path, out: Path, seed: int) -> Path:
    export_dataset(dataset, "easyr1", out, splits=["train"], order="curriculum", seed=seed)
    return out


def test_shuffled_is_a_seeded_permutation(mixed: Path, tmp_path: Path) -> None:
    orders = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        export_dataset(mixed, "vlmevalkit", tmp_path / name, order="shuffled", seed=seed)
        text = (tmp_path / name / "TPRU_custom_train.tsv").read_text(encoding="utf-8")
        orders.append([row["id"] for row in csv.DictReader(text.splitlines(), delimiter="\t")])
    assert orders[0] == orders[1] != orders[2]
    assert sorted(orders[0]) == sorted(_file_order(mixed, "train")) != orders[0]


def test_curriculum_without_scores_names_the_dataset(unscored: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"train\.jsonl: 8 of 8 samples have no difficulty "
                                         r"score \(the first: sample 'ord-3'\)"):
        export_dataset(unscored, "trl", tmp_path / "out", order="curriculum")
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())
    with pytest.raises(InputError, match="unknown order 'hardest'"):
        export_dataset(unscored, "hf", tmp_path / "out", order="hardest")


def test_the_command_line_orders_exports(mixed: Path, unscored: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(mixed), "--to", "easyr1", "--out", str(tmp_path / "cli"),
                 "--order", "curriculum", "--seed", "0"]) == 0
    export_dataset(mixed, "easyr1", tmp_path / "api", order="curriculum", seed=0)
    assert (tmp_path / "cli" / "train.parquet").read_bytes() == \
        (tmp_path / "api" / "train.parquet").read_bytes()
    capsys.readouterr()
    assert main(["export", str(unscored), "--to", "verl", "--out", str(tmp_path / "old"),
                 "--order", "curriculum"]) != 0
    err = capsys.readouterr().err
    assert f"{unscored / 'train.jsonl'}: 8 of 8 samples have no difficulty score" in err
    assert "Traceback" not in err and not (tmp_path / "old").exists()


# ---------------------------------------------------------------- EasyR1 run folders


SMALL = ("data.rollout_batch_size=4", "worker.actor.global_batch_size=4",
         "worker.actor.micro_batch_size_per_device_for_experience=4")


def test_easyr1_run_sets_limit_images_to_the_most_images(mixed: Path, tmp_path: Path) -> None:
    run = write_easyr1_run(mixed, tmp_path / "run", overrides=SMALL, gpus_per_node=2)
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert config["worker"]["rollout"]["limit_images"] == 18  # next-16: 15 frames + 3 options
    facts = json.loads((run / "tpru.json").read_text(encoding="utf-8"))["prompt_budget"]
    assert (facts["max_images"], facts["max_images_id"]) == (18, "next-16")
    assert facts["images"] == 18 and facts["samples"] == 12 and facts["over_limit"] == 0
    rows = pq.read_table(run / "data" / "train.parquet").to_pylist()
    assert [len(r["images"]) for r in rows] == [image_count(r["id"]) for r in rows]


def test_easyr1_run_checks_an_explicit_limit_and_every_prompt(mixed: Path,
                                                              tmp_path: Path) -> None:
    with pytest.raises(InputError, match="'next-16' has 18 images but "
                                         "worker.rollout.limit_images is 16"):
        write_easyr1_run(mixed, tmp_path / "a", gpus_per_node=2,
                         overrides=[*SMALL, "worker.rollout.limit_images=16"])
    # the 16-frame samples are the only ones over a budget that the 8-frame ones fit
    with pytest.raises(InputError, match=r"^3 of 12 samples are over the prompt budget; "
                                         r"sample 'next-16' \(train\)"):
        write_easyr1_run(mixed, tmp_path / "b", gpus_per_node=2,
                         overrides=[*SMALL, "data.max_prompt_length=500"])
    assert not list(tmp_path.iterdir())


def test_easyr1_run_in_curriculum_order_keeps_it(mixed: Path, tmp_path: Path) -> None:
    run = write_easyr1_run(mixed, tmp_path / "run", overrides=SMALL, gpus_per_node=2,
                           order="curriculum", seed=3)
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert config["data"]["shuffle"] is False
    ids = [r["id"] for r in pq.read_table(run / "data" / "train.parquet").to_pylist()]
    scores = [SCORES[i] for i in ids]
    assert scores == sorted(scores) and len(ids) == len(_file_order(mixed, "train"))
    exported = export_dataset(mixed, "easyr1", tmp_path / "export", splits=["train"],
                              order="curriculum", seed=3)
    parquet = next(p for p in exported if p.name == "train.parquet")
    assert [r["id"] for r in pq.read_table(parquet).to_pylist()] == ids
    facts = json.loads((run / "tpru.json").read_text(encoding="utf-8"))
    assert facts["order"] == {"name": "curriculum", "seed": 3}
    with pytest.raises(InputError, match="--order curriculum needs data.shuffle=false"):
        write_easyr1_run(mixed, tmp_path / "shuffled", gpus_per_node=2, order="curriculum",
                         overrides=[*SMALL, "data.shuffle=true"])
    assert main(["train", "easyr1", str(mixed), "--out", str(tmp_path / "cli"), "--order",
                 "curriculum", "--seed", "3", "--gpus-per-node", "2", *SMALL]) == 0
    assert (tmp_path / "cli" / "data" / "train.parquet").read_bytes() == \
        (run / "data" / "train.parquet").read_bytes()
