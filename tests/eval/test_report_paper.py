"""Published-results files given with ``tpru report --compare paper --paper-results``: every
way such a file can be wrong ends in one line naming the file, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from report_fixtures import tpru_run

from tpru.cli import main
from tpru.diagnostics import InputError
from tpru.eval.report_paper import PAPER_RESULTS, load_paper_results

SHIPPED = Path(__file__).parents[2] / "src" / "tpru" / "eval" / PAPER_RESULTS

BROKEN: dict[str, tuple[bytes | None, str]] = {
    "missing": (None, "cannot read the published results (No such file or directory)"),
    "unterminated list": (b"models: [\n", "not valid YAML (expected the node content, but "
                                          "found '<stream end>', line 2, column 1)"),
    "not UTF-8": (b"\xff\xfe source: x\n", "not a UTF-8 text file"),
    "a list": (b"- 1\n- 2\n", "not a table of published results (expected 'source' and "
                              "'benchmarks'"),
    "no benchmarks": (b"source: x\n", "not a table of published results"),
    "a benchmark without columns": (b"source: x\nbenchmarks:\n  muir:\n    rows: {m: [1]}\n",
                                    "benchmark 'muir': missing 'columns'"),
    "a benchmark that is a list": (b"source: x\nbenchmarks:\n  muir: [1, 2]\n",
                                   "benchmark 'muir': not a table of published results"),
    "a number that is text": (b"source: x\nbenchmarks:\n  muir:\n    columns: [a, overall]\n"
                              b"    rows: {m: [1, two]}\n",
                              "benchmark 'muir': not a table of published results (could not "
                              "convert string to float: 'two')"),
    "a short row": (b"source: x\nbenchmarks:\n  muir:\n    columns: [a, overall]\n"
                    b"    rows: {m: [1]}\n", "muir, m: 1 numbers for 2 columns"),
}


def _write(tmp_path: Path, case: str) -> Path:
    content, _ = BROKEN[case]
    path = tmp_path / "paper.yaml"
    if content is not None:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_file_gives_one_line_naming_it(case: str, tmp_path: Path) -> None:
    path = _write(tmp_path, case)
    with pytest.raises(InputError) as error:
        load_paper_results(path)
    message = str(error.value)
    assert message.startswith(f"{path}: "), message
    assert BROKEN[case][1] in message
    assert "\n" not in message and "Error(" not in message  # no Python reprs


def test_a_folder_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"^{tmp_path}: cannot read the published results"):
        load_paper_results(tmp_path)


def test_a_copy_of_the_shipped_file_loads_like_the_shipped_one(tmp_path: Path) -> None:
    copy = tmp_path / "copy.yaml"
    copy.write_text(SHIPPED.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_paper_results(copy) == load_paper_results()
    raw = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    assert set(load_paper_results(copy).benchmarks) == set(raw["benchmarks"])


@pytest.mark.parametrize("case", ["unterminated list", "not UTF-8", "missing"])
def test_report_stops_with_one_line_on_a_broken_file(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tpru_run(tmp_path / "runs" / "qwen7b")
    path = _write(tmp_path, case)
    status = main(["report", "-q", str(run), "--compare", "paper", "--paper-results",
                   str(path)])
    captured = capsys.readouterr()
    assert status == 1
    assert "Traceback" not in captured.err
    assert captured.err == f"tpru report: error: {path}: {BROKEN[case][1]}\n"


@pytest.mark.parametrize("flag", [["--paper-results", "paper.yaml"],
                                  ["--paper-model", "TPRU-7B"]])
def test_paper_options_need_compare_paper(flag: list[str], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    run = tpru_run(tmp_path / "runs" / "qwen7b")
    assert main(["report", "-q", str(run), *flag]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"tpru report: error: {flag[0]} needs --compare paper\n"
    assert captured.out == ""
