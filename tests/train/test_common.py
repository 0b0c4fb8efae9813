"""The run folder of ``tpru train grpo/sft``: never mixed into, or wiped from, what tpru did
not write (a dataset, the model, any other folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import make_dataset
from tpru.cli import main
from tpru.diagnostics import InputError
from tpru.files import OUTPUT_MARKER
from tpru.train.common import RUN_KIND, check_run_dir, clear_run_dir, is_run_dir
from tpru.train.config import CONFIG_FILE, GRPOTrainConfig, load_train_config

RECIPE = Path(__file__).parents[2] / "configs" / "train" / "grpo_tiny.yaml"


def config(out: Path, data: Path, model: Path) -> GRPOTrainConfig:
    return load_train_config(GRPOTrainConfig, RECIPE, [
        f"model.name={model}", f"data.path={data}", f"train.output_dir={out}"])


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "ds")


@pytest.mark.parametrize("where", ["ds", "ds/images", ".", "model", "model/sub"])
@pytest.mark.parametrize("flags", [{}, {"overwrite": True}, {"resume": True}],
                         ids=["plain", "overwrite", "resume"])
def test_the_run_folder_may_not_overlap_the_data_or_the_model(
        tmp_path: Path, dataset: Path, where: str, flags: dict[str, bool]) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    before = listing(tmp_path)
    with pytest.raises(InputError, match=r"(is|lies inside|contains) the input .*choose "
                                         r"another train\.output_dir"):
        check_run_dir(config(tmp_path / where, dataset, model),
                      resume=flags.get("resume", False), overwrite=flags.get("overwrite", False))
    assert listing(tmp_path) == before


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_that_is_not_a_run_is_refused_with_or_without_overwrite(
        tmp_path: Path, dataset: Path, overwrite: bool) -> None:
    other = tmp_path / "wipe"
    (other / "sub").mkdir(parents=True)
    (other / "notes.txt").write_text("mine")
    (other / "sub" / "y").write_text("mine")
    with pytest.raises(InputError, match="is not a training run tpru wrote"):
        check_run_dir(config(other, dataset, tmp_path / "model"), resume=False,
                      overwrite=overwrite)
    with pytest.raises(InputError, match="is not a training run tpru wrote"):
        clear_run_dir(other, overwrite=True)
    assert listing(other) == ["notes.txt", "sub", "sub/y"]


def test_another_dataset_is_refused_as_the_run_folder(tmp_path: Path, dataset: Path) -> None:
    other = make_dataset(tmp_path / "other")
    before = listing(other)
    with pytest.raises(InputError, match="is not a training run tpru wrote"):
        check_run_dir(config(other, dataset, tmp_path / "model"), resume=False, overwrite=False)
    assert listing(other) == before


def test_a_run_folder_is_marked_and_replaced_only_with_overwrite(tmp_path: Path,
                                                                 dataset: Path) -> None:
    run = tmp_path / "run"
    settings = config(run, dataset, tmp_path / "model")
    assert check_run_dir(settings, resume=False, overwrite=False) == run
    clear_run_dir(run, overwrite=False)
    assert (run / OUTPUT_MARKER).read_text().strip() == RUN_KIND and is_run_dir(run)
    (run / "checkpoint-1").mkdir()
    (run / "data").mkdir()  # the TRL export: kept
    with pytest.raises(InputError, match="already holds a training run"):
        check_run_dir(settings, resume=False, overwrite=False)
    check_run_dir(settings, resume=False, overwrite=True)
    clear_run_dir(run, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == [OUTPUT_MARKER, "data"]


def test_a_run_from_before_the_marker_is_known_by_its_config(tmp_path: Path,
                                                             dataset: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / CONFIG_FILE).write_text("model: {}\n")
    (run / "model.safetensors").write_text("weights")
    check_run_dir(config(run, dataset, tmp_path / "model"), resume=False, overwrite=True)
    clear_run_dir(run, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == [OUTPUT_MARKER]


def test_train_grpo_overwrite_onto_its_dataset_keeps_the_dataset(
        tmp_path: Path, dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("trl")
    before = listing(dataset)
    status = main(["train", "grpo", str(RECIPE), f"model.name={tmp_path / 'model'}",
                   f"data.path={dataset}", f"train.output_dir={dataset}", "--overwrite"])
    assert status != 0
    assert "is the input" in capsys.readouterr().err
    assert listing(dataset) == before
