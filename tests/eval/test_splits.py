"""Which split a run scores, and what a report does with runs of different splits.

End to end through the command line with the random model on the hand-built
dataset of tests/helpers.py (train: 4 samples, test: 3): ``tpru eval`` scores
the test split unless told otherwise and records the split in run.json;
``--resume`` keeps to it; ``tpru report`` names every run's split and refuses
runs of one benchmark that scored different splits without ``--mixed-splits``.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from report_fixtures import record, run_info, write_run

from helpers import make_dataset
from tpru.cli import main
from tpru.commands.eval import EXIT_BACKEND_ERRORS
from tpru.dataset import Dataset
from tpru.eval.report import load_run, summarise
from tpru.eval.report_splits import mixed_splits
from tpru.eval.runner import RESULTS_FILE, RUN_FILE

TEST_IDS = ["next-neg-mismatch", "prev-1", "ord-neg-mismatch"]
TRAIN_IDS = ["ord-opt-1", "ord-let-1", "next-1", "prev-neg-missing"]
DONE = (0, EXIT_BACKEND_ERRORS)
"""Exit statuses of a finished run: the random model cannot answer ord-let-1 (a letter
ordering with no option lines to pick from), an error in the backend."""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("splits") / "ds")


def _eval(dataset: Path, out: Path, *extra: str) -> int:
    return main(["eval", "-q", "--model", "random", "--bench", str(dataset), "--out", str(out),
                 "--cache-dir", str(out.parent / "cache"), *extra])


def _ids(run: Path) -> list[str]:
    lines = (run / RESULTS_FILE).read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["id"] for line in lines]


def _info(run: Path) -> dict[str, object]:
    info: dict[str, object] = json.loads((run / RUN_FILE).read_text(encoding="utf-8"))
    return info


def _one_line_error(capsys: pytest.CaptureFixture[str], command: str) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    last = captured.err.rstrip("\n").split("\n")[-1]
    assert last.startswith(f"tpru {command}: error: ")
    return last


# ---------------------------------------------------------------- tpru eval


def test_eval_scores_the_test_split_by_default(dataset: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert _eval(dataset, tmp_path / "run") == 0
    assert _ids(tmp_path / "run") == TEST_IDS
    assert _info(tmp_path / "run")["split"] == "test"
    assert "split test" in capsys.readouterr().out


@pytest.mark.parametrize(("split", "expected"), [("train", TRAIN_IDS),
                                                 ("all", TRAIN_IDS + TEST_IDS)])
def test_eval_scores_the_split_named(split: str, expected: list[str], dataset: Path,
                                     tmp_path: Path) -> None:
    assert _eval(dataset, tmp_path / "run", "--split", split) in DONE
    assert _ids(tmp_path / "run") == expected
    assert _info(tmp_path / "run")["split"] == split


def test_a_dataset_without_a_test_split_names_its_splits(
        dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    (copy / "test.jsonl").rename(copy / "val.jsonl")
    info = json.loads((copy / "build.json").read_text(encoding="utf-8"))
    info["splits"] = ["train", "val"]
    (copy / "build.json").write_text(json.dumps(info), encoding="utf-8")
    assert Dataset.open(copy).splits == ["train", "val"]
    assert _eval(copy, tmp_path / "run") == 1
    error = _one_line_error(capsys, "eval")
    assert "no split 'test' to score by default (splits: train, val)" in error
    assert "pass --split NAME, or --split all for every split" in error
    assert not (tmp_path / "run").exists()
    assert _eval(copy, tmp_path / "run", "--split", "dev") == 1
    assert "no split 'dev' (splits: train, val)" in _one_line_error(capsys, "eval")
    assert _eval(copy, tmp_path / "run", "--split", "val") in DONE


def test_help_says_which_split_is_scored(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "a dataset folder's 'test' split by default" in text
    assert "'all' for every split" in text
    assert "hub benchmark reads its own default" in text


def test_resume_refuses_another_split(dataset: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert _eval(dataset, run, "--limit", "2") == 0
    assert _eval(dataset, run, "--resume", "--split", "all") == 1
    error = _one_line_error(capsys, "eval")
    assert "cannot resume: the run used split 'test' (now 'all')" in error
    assert "pass --split test to continue it" in error
    assert _ids(run) == TEST_IDS[:2]
    assert _eval(dataset, run, "--resume") == 0  # the same split: continued
    assert _ids(run) == TEST_IDS


def test_a_run_json_without_a_split_resumes_by_its_fingerprint(
        dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run written before tpru recorded the split ("split": null, every split of the
    folder): its content decides, so the split it really scored continues it."""
    run = tmp_path / "run"
    assert _eval(dataset, run, "--split", "all", "--limit", "5") in DONE
    info = _info(run)
    info["split"] = None
    (run / RUN_FILE).write_text(json.dumps(info), encoding="utf-8")
    assert _eval(dataset, run, "--resume") == 1  # the test split: other items
    error = _one_line_error(capsys, "eval")
    assert "the benchmark changed since the run began" in error
    assert "pass the --split it scored, e.g. --split all" in error
    assert _eval(dataset, run, "--resume", "--split", "all") in DONE
    assert list(dict.fromkeys(_ids(run))) == TRAIN_IDS + TEST_IDS  # ord-let-1 retried
    assert _info(run)["split"] == "all"


# ---------------------------------------------------------------- tpru report


@pytest.fixture(scope="module")
def runs(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Runs of the random model on the test split, on every split, and one whose run.json
    predates the split record (the test run with "split" null)."""
    root = tmp_path_factory.mktemp("runs")
    made = {"test": root / "test", "all": root / "all", "unknown": root / "unknown"}
    assert _eval(dataset, made["test"]) == 0
    assert _eval(dataset, made["all"], "--split", "all") in DONE
    shutil.copytree(made["test"], made["unknown"])
    info = _info(made["unknown"])
    del info["split"]
    (made["unknown"] / RUN_FILE).write_text(json.dumps(info), encoding="utf-8")
    return made


@pytest.mark.parametrize(("pair", "named"), [
    (("test", "all"), "random (test): test, random (all): all"),
    (("test", "unknown"), "random (test): test, random (unknown): unknown"),
])
def test_report_refuses_mixed_splits_without_the_flag(
        pair: tuple[str, str], named: str, runs: dict[str, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(runs[name]) for name in pair]
    assert main(["report", *paths, "--bootstrap", "0"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    error = captured.err.rstrip("\n").split("\n")[-1]
    assert error == (f"tpru report: error: runs of tpru-dataset scored different splits "
                     f"({named}): their numbers are not comparable; score the same split "
                     "(tpru eval --split) or pass --mixed-splits to report them side by side")
    warning = " ".join(captured.err.rsplit("\n", 2)[0].split())
    assert f"scored different splits ({named})" in warning


def test_report_with_mixed_splits_says_so_in_every_format(
        runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(runs["test"]), str(runs["all"]), str(runs["unknown"])]
    note = ("runs of tpru-dataset scored different splits (random (test): test, "
            "random (all): all, random (unknown): unknown)")
    html = tmp_path / "report.html"
    assert main(["report", *paths, "--mixed-splits", "--bootstrap", "0", "--html",
                 str(html)]) == 0
    captured = capsys.readouterr()
    assert note in " ".join(captured.err.split())  # the warning is printed all the same
    markdown = captured.out
    assert f"- Warning: {note}." in markdown
    assert "| random (test) | tpru-dataset | test | 3 |" in markdown
    assert "| random (all) | tpru-dataset | all | 7 |" in markdown
    assert "| random (unknown) | tpru-dataset | unknown | 3 |" in markdown
    assert "; split test" in markdown and "; split unknown" in markdown
    page = html.read_text(encoding="utf-8")
    assert "<td>unknown</td>" in page and "<td>all</td>" in page
    assert f"Warning: {note}." in page

    assert main(["report", *paths, "--mixed-splits", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["run"]: r["split"] for r in rows} == {
        "random (test)": "test", "random (all)": "all", "random (unknown)": "unknown"}

    assert main(["report", *paths, "--mixed-splits", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["split"] for r in data["runs"]] == ["test", "all", None]
    assert data["mixed_splits"] == [note]


def test_runs_of_one_split_report_without_a_warning(
        runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    again = tmp_path / "again"
    shutil.copytree(runs["test"], again)
    assert main(["report", str(runs["test"]), str(again), "--bootstrap", "0"]) == 0
    captured = capsys.readouterr()
    assert "different splits" not in captured.err + captured.out


def test_splits_are_compared_within_a_benchmark(tmp_path: Path) -> None:
    """A MuirBench run (test) beside a dataset run of another split is not a mix: the
    two benchmarks' numbers are not put against each other."""
    def run(name: str, benchmark: str, split: str | None) -> Path:
        info = run_info("random", "random", benchmark, split=split)
        return write_run(tmp_path / name, info, [record("q1", correct=True, task="t")])

    reports = summarise([load_run(run("muir", "muirbench", "test")),
                         load_run(run("ds", "tpru-dataset", "all")),
                         load_run(run("lego", "lego-puzzles", None))], bootstrap=0).runs
    assert mixed_splits(reports) == []
    assert [r.split for r in reports] == ["test", "all", None]
