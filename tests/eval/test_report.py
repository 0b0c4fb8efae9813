"""Reports of evaluation runs: numbers, intervals, formats, the paper, charts, HTML."""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from report_fixtures import (
    LEGO_CATEGORIES,
    MUIR_FAILED,
    lego_run,
    muirbench_run,
    record,
    run_info,
    tpru_run,
    write_run,
)

from helpers import make_dataset
from tpru.commands.report import EPILOG, add_arguments, report_command
from tpru.diagnostics import InputError
from tpru.eval.benchmarks import load_benchmark
from tpru.eval.plots import overall_chart, png_bytes, radar_chart, write_plots
from tpru.eval.report import Run, bootstrap_intervals, load_run, summarise
from tpru.eval.report_formats import CSV_COLUMNS, render, to_markdown
from tpru.eval.report_html import write_html_report
from tpru.eval.report_paper import compare_to_paper, load_paper_results, match_model
from tpru.eval.runner import run_eval
from tpru.models import open_backend

TPRU_FAILED = ("ord-3", "next-3", "prev-2")


@pytest.fixture
def tpru(tmp_path: Path) -> Run:
    return load_run(tpru_run(tmp_path / "runs" / "qwen7b"))


@pytest.fixture
def muir(tmp_path: Path) -> Run:
    return load_run(muirbench_run(tmp_path / "runs" / "muir"))


def _accuracies(cells: dict[str, object]) -> dict[str, tuple[int, int]]:
    return {name: (cell.correct, cell.n) for name, cell in cells.items()}  # type: ignore[attr-defined]


# ---------------------------------------------------------------- reading and counting


def test_exact_numbers_overall_and_by_group(tpru: Run) -> None:
    assert tpru.replaced == 1 and tpru.truncated
    assert [r.id for r in tpru.results][-1] == "prev-3"
    run = summarise([tpru], bootstrap=200).runs[0]
    assert (run.overall.correct, run.overall.n, run.overall.accuracy) == (7, 10, 70.0)
    assert run.overall.errors == 1
    assert _accuracies(run.groups["task"]) == {
        "next_frame": (2, 3), "ordering": (3, 4), "prev_frame": (2, 3)}
    assert _accuracies(run.groups["scenario"]) == {
        "gui": (0, 2), "lego": (2, 3), "nav": (2, 2), "robot": (3, 3)}
    assert _accuracies(run.groups["negative"]) == {"negative": (1, 3), "positive": (6, 7)}
    assert run.groups["task"]["ordering"].accuracy == 75.0
    assert run.groups["task"]["next_frame"].errors == 1
    assert "category" not in run.groups and "answerable" not in run.groups
    assert run.model == "Qwen/Qwen2.5-VL-7B-Instruct" and run.benchmark == "tpru-test"
    assert run.rules == {"answer_tag": 7, "bare_letter": 1, "letter_sequence": 1, "none": 1}


def test_muirbench_answerable_and_pairs(muir: Run) -> None:
    run = summarise([muir], bootstrap=200).runs[0]
    assert (run.overall.correct, run.overall.n) == (7, 9)
    assert _accuracies(run.groups["answerable"]) == {"answerable": (4, 5),
                                                     "unanswerable": (3, 4)}
    assert _accuracies(run.groups["pairs"]) == {"both twins right": (2, 4)}
    assert run.unpaired == 1
    assert _accuracies(run.groups["task"]) == {
        "Counting": (2, 3), "Ordering": (4, 4), "Visual Retrieval": (1, 2)}
    assert run.benchmark == "muirbench"  # read from {"name": ..., "source": ...}


def test_a_pair_counts_once_and_a_wrong_twin_breaks_it(tmp_path: Path) -> None:
    lines = [record("a", correct=True, task="t", answerable=True, counterpart="b"),
             record("b", correct=True, task="t", answerable=False, counterpart="a"),
             record("c", correct=True, task="t", answerable=True, counterpart="d"),
             record("d", correct=False, task="t", answerable=False, counterpart="c")]
    run = load_run(write_run(tmp_path / "r", run_info("m", "random", "muirbench"), lines))
    assert _accuracies(summarise([run], bootstrap=0).runs[0].groups["pairs"]) == {
        "both twins right": (1, 2)}


def test_bad_input_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="run.json: no such file"):
        load_run(tmp_path)
    folder = write_run(tmp_path / "bad", run_info("m", "random", "x"),
                       [record("a", correct=True, task="t")])
    results = folder / "results.jsonl"
    results.write_text(results.read_text() + "{oops\n" + json.dumps(record(
        "b", correct=True, task="t")) + "\n")
    with pytest.raises(InputError, match=r"results.jsonl, line 2: not valid JSON"):
        load_run(folder)
    results.write_text(json.dumps({"id": "a", "answer": "A", "correct": "yes"}) + "\n")
    with pytest.raises(InputError, match=r"line 1: field 'correct': expected bool, got str"):
        load_run(folder)
    results.write_text("")
    with pytest.raises(InputError, match="no results yet"):
        load_run(folder)


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_contains_the_estimate_and_shrinks_with_n() -> None:
    sizes = [10, 40, 160, 640, 2560]
    correct = [round(0.7 * n) for n in sizes]
    low, high = bootstrap_intervals(correct, sizes, resamples=1000,
                                    rng=np.random.default_rng(0))
    points = 100.0 * np.array(correct) / np.array(sizes)
    assert np.all(low <= points) and np.all(points <= high)
    widths = high - low
    assert np.all(np.diff(widths) < 0), widths
    # The normal approximation of a 95% interval: about 3.92 standard errors wide.
    expected = 3.92 * 100 * np.sqrt(0.7 * 0.3 / np.array(sizes))
    assert np.allclose(widths[1:], expected[1:], rtol=0.2), (widths, expected)
    edge_low, edge_high = bootstrap_intervals([0, 5], [5, 5], resamples=100,
                                              rng=np.random.default_rng(0))
    assert list(edge_low) == [0.0, 100.0] and list(edge_high) == [0.0, 100.0]


def test_bootstrap_counts_match_resampling_items() -> None:
    """Drawing the right count from a binomial is the same as resampling the items."""
    outcomes = np.array([1] * 31 + [0] * 19)
    rng = np.random.default_rng(1)
    resampled = outcomes[rng.integers(0, outcomes.size, size=(20000, outcomes.size))]
    direct = np.quantile(100 * resampled.mean(axis=1), [0.025, 0.975])
    low, high = bootstrap_intervals([31], [50], resamples=20000, rng=np.random.default_rng(2))
    assert abs(low[0] - direct[0]) <= 2.0 and abs(high[0] - direct[1]) <= 2.0


def test_summary_intervals_are_seeded(tpru: Run, muir: Run) -> None:
    first = summarise([tpru, muir], bootstrap=500, seed=3)
    again = summarise([tpru, muir], bootstrap=500, seed=3)
    alone = summarise([tpru], bootstrap=500, seed=3)
    assert first == again
    assert first.runs[0] == alone.runs[0]  # a run's intervals do not depend on the others
    cells = [c for g in first.runs[0].groups.values() for c in g.values()]
    draws = [tuple(float(bound[0]) for bound in bootstrap_intervals(
        [700], [1000], resamples=200, rng=np.random.default_rng(s))) for s in (3, 3, 4)]
    assert draws[0] == draws[1] and draws[0] != draws[2]
    for cell in [first.runs[0].overall, *cells]:
        assert cell.low is not None and cell.high is not None
        assert cell.low <= cell.accuracy <= cell.high
    none = summarise([tpru], bootstrap=0).runs[0].overall
    assert none.low is None and none.high is None


# ---------------------------------------------------------------- formats


def _markdown_tables(text: str) -> dict[str, list[dict[str, str]]]:
    tables: dict[str, list[dict[str, str]]] = {}
    title, header = "", None
    for line in text.splitlines():
        if line.startswith("## "):
            title, header = line[3:], None
        elif line.startswith("|") and header is None:
            header = [c.strip() for c in line.strip("|").split("|")]
        elif line.startswith("|") and not set(line) <= set("|-: "):
            cells = [c.strip() for c in line.strip("|").split("|")]
            tables.setdefault(title, []).append(dict(zip(header or [], cells, strict=True)))
    return tables


def test_markdown_parses_back(tpru: Run, muir: Run) -> None:
    summary = summarise([tpru, muir], bootstrap=200)
    tables = _markdown_tables(to_markdown(summary))
    overall = {row["run"]: row for row in tables["Overall"]}
    assert overall["Qwen/Qwen2.5-VL-7B-Instruct"]["accuracy"] == "70.00"
    assert overall["Qwen/Qwen2.5-VL-7B-Instruct"]["errors"] == "1"
    assert overall["Qwen2.5-VL-3B-Instruct"]["correct"] == "7"
    low, high = json.loads(overall["Qwen/Qwen2.5-VL-7B-Instruct"]["95% CI"])
    assert low <= 70.0 <= high
    by_task = {(r["run"], r["task"]): r["accuracy"] for r in tables["By task"]}
    assert by_task[("Qwen/Qwen2.5-VL-7B-Instruct", "ordering")] == "75.00"
    assert by_task[("Qwen2.5-VL-3B-Instruct", "Counting")] == "66.67"
    pairs = tables["Twin pairs where both items are right"]
    assert [(r["group"], r["n"], r["accuracy"]) for r in pairs] == [
        ("both twins right", "4", "50.00")]


def test_csv_parses_back(tpru: Run) -> None:
    summary = summarise([tpru], bootstrap=200)
    rows = list(csv.DictReader(io.StringIO(render(summary, None, "csv"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    keyed = {(r["breakdown"], r["group"]): r for r in rows}
    assert keyed[("overall", "overall")]["accuracy"] == "70.0"
    assert keyed[("task", "prev_frame")]["correct"] == "2"
    assert float(keyed[("task", "prev_frame")]["accuracy"]) == pytest.approx(200 / 3, abs=1e-4)
    assert keyed[("negative", "positive")]["n"] == "7"
    assert keyed[("overall", "overall")]["paper"] == ""
    assert (keyed[("frames", "4")]["n"], keyed[("frames", "4")]["correct"]) == ("4", "3")
    assert keyed[("frames_by_task", "next_frame / 3")]["n"] == "3"
    # overall, tasks, scenarios, positive/negative, frames 3 and 4, frames per task
    assert len(rows) == 1 + 3 + 4 + 2 + 2 + 3


def test_json_parses_back(tpru: Run, muir: Run) -> None:
    summary = summarise([tpru, muir], bootstrap=200)
    comparison = compare_to_paper(summary)
    data = json.loads(render(summary, comparison, "json"))
    assert data["unit"] == "percent" and data["bootstrap"] == 200
    first = data["runs"][0]
    assert first["overall"]["accuracy"] == 70.0 and first["overall"]["n"] == 10
    assert first["groups"]["task"]["ordering"] == {
        **first["groups"]["task"]["ordering"], "n": 4, "correct": 3, "accuracy": 75.0}
    assert data["runs"][1]["groups"]["pairs"]["both twins right"]["correct"] == 2
    assert data["comparison"]["source"] == "TPRU (ICLR 2026), figures; transcribed"


# ---------------------------------------------------------------- the paper


def test_paper_results_are_consistent() -> None:
    paper = load_paper_results()
    muir = paper.benchmarks["muirbench"]
    raw = yaml.safe_load((Path(__file__).parents[2] / "src/tpru/eval/paper_results.yaml")
                         .read_text())
    sizes = raw["benchmarks"]["muirbench"]["sizes"]
    assert sum(sizes.values()) == 2600 and len(muir.columns) == 13
    for model, row in muir.rows.items():  # each figure is k/n of the task's n items
        counts = [round(v * sizes[c] / 100) for c, v in zip(muir.columns, row[:-1], strict=False)]
        for count, column, value in zip(counts, muir.columns, row, strict=False):
            assert abs(100 * count / sizes[column] - value) < 0.006, (model, column)
        assert abs(100 * sum(counts) / 2600 - row[-1]) < 0.006, model
    lego = paper.benchmarks["lego-puzzles"]
    for model, row in lego.rows.items():
        assert abs(sum(row[:-1]) / 11 - row[-1]) < 0.05, model
    assert len(paper.benchmarks["tpru-test"].rows) == 15
    assert paper.benchmarks["tpru-test"].value("TPRU-7B", "overall") == 75.70


@pytest.mark.parametrize(("name", "expected"), [
    ("Qwen/Qwen2.5-VL-7B-Instruct", "Qwen2.5-VL-7B"),
    ("/models/qwen2_5_vl_32b", "Qwen2.5-VL-32B"),
    ("Qwen2.5-VL-3B", "Qwen2.5-VL-3B"),
    ("gpt-4o-mini-2024-07-18", "GPT-4o-mini"),
    ("openai:gpt-4o", "GPT-4o"),
    ("OpenGVLab/InternVL3-8B", "InternVL3-8B"),
    ("OpenGVLab/InternVL3-38B", "InternVL3-38B"),
    ("tpru-3b", "TPRU-3B"),
    ("llava-onevision-7b", None),
    ("Qwen2.5-VL-320B", None),
])
def test_match_model(name: str, expected: str | None) -> None:
    assert match_model(name, load_paper_results().benchmarks["tpru-test"].rows) == expected


def test_compare_tpru_test_overall(tpru: Run) -> None:
    comparison = compare_to_paper(summarise([tpru], bootstrap=0))
    (row,) = comparison.rows
    assert (row.benchmark, row.paper_model, row.group, row.paper) == (
        "TPRU-Test", "Qwen2.5-VL-7B", "overall", 50.33)
    assert row.difference == pytest.approx(70.0 - 50.33)
    forced = compare_to_paper(summarise([tpru], bootstrap=0), models=["tpru-7b"])
    assert forced.rows[0].paper_model == "TPRU-7B" and forced.rows[0].paper == 75.70


def test_compare_muirbench_per_task(muir: Run) -> None:
    summary = summarise([muir], bootstrap=0)
    comparison = compare_to_paper(summary)
    rows = {row.group: row for row in comparison.rows}
    assert len(rows) == 13 and {r.paper_model for r in rows.values()} == {"Qwen2.5-VL-3B"}
    assert rows["Ordering"].paper == 9.38 and rows["Ordering"].ours is not None
    assert rows["Ordering"].difference == pytest.approx(100.0 - 9.38)
    assert rows["Counting"].paper == 32.91 and rows["Counting"].breakdown == "task"
    assert rows["Visual Retrieval"].difference == pytest.approx(50.0 - 38.70)
    assert rows["Geographic Understanding"].ours is None  # not in this run
    assert rows["overall"].paper == 46.62
    csv_rows = {r["group"]: r for r in csv.DictReader(io.StringIO(
        render(summary, comparison, "csv"))) if r["breakdown"] != "pairs_by_task"}
    assert csv_rows["Ordering"]["paper"] == "9.38"
    assert csv_rows["Ordering"]["paper_model"] == "Qwen2.5-VL-3B"
    assert csv_rows["answerable"]["paper"] == ""


@pytest.mark.parametrize("field", ["task", "category"])
def test_compare_lego_by_category(tmp_path: Path, field: str) -> None:
    run = load_run(lego_run(tmp_path / "lego", field=field))
    rows = {row.group: row for row in compare_to_paper(summarise([run], bootstrap=0)).rows}
    assert rows["rotation status"].run_group == "Rotation_Status"
    assert (rows["rotation status"].paper, rows["rotation status"].ours.accuracy) == (51, 0.0)
    assert (rows["next-step"].paper, rows["next-step"].ours.accuracy) == (65, 50.0)
    assert rows["height"].paper_model == "GPT-4o" and rows["height"].breakdown == field
    assert rows["overall"].paper == 57.7 and rows["overall"].ours.correct == 10
    assert all(row.ours is not None for row in rows.values())
    assert len(LEGO_CATEGORIES) + 1 == len(rows)


def test_compare_notes_and_bad_paper_model(tpru: Run, muir: Run, tmp_path: Path) -> None:
    other = load_run(write_run(tmp_path / "other", run_info("m", "random", "blink"),
                               [record("a", correct=True, task="t")]))
    summary = summarise([tpru, muir, other], bootstrap=0)
    comparison = compare_to_paper(summary)
    assert {r.run for r in comparison.rows} == {tpru.model, muir.model}
    assert any("no numbers for benchmark 'blink'" in note for note in comparison.notes)
    unknown = compare_to_paper(summary, models=["Llama-9"])
    assert not unknown.rows and sum("--paper-model 'Llama-9'" in n for n in unknown.notes) == 2
    with pytest.raises(InputError, match="--paper-model given 2 times for 3 runs"):
        compare_to_paper(summary, models=["a", "b"])
    text = to_markdown(summary, comparison)
    assert "## Compared with the paper" in text and "TPRU (ICLR 2026), figures" in text


# ---------------------------------------------------------------- charts


def _check_png(data: bytes | Path, size: tuple[int, int] | None = None) -> None:
    with Image.open(data if isinstance(data, Path) else io.BytesIO(data)) as image:
        assert image.format == "PNG"
        if size is not None:
            assert image.size == size
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    assert pixels.var() > 100
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    assert (saturation > 60).mean() > 0.002  # coloured bars or lines, not just black text


@pytest.mark.slow
def test_plots_are_written_and_not_blank(tmp_path: Path, tpru: Run, muir: Run) -> None:
    runs = [tpru, muir, load_run(lego_run(tmp_path / "lego", field="category"))]
    summary = summarise(runs, bootstrap=200)
    written = write_plots(summary, tmp_path / "plots", compare_to_paper(summary))
    names = [p.name for p in written]
    assert names == ["overall.png", "radar-tpru-test-task.png", "radar-tpru-test-scenario.png",
                     "radar-muirbench-task.png", "radar-lego-puzzles-category.png",
                     "length-tpru-test.png"]  # TPRU-Test's items show 3 and 4 frames
    for path in written:
        _check_png(path)
    _check_png(png_bytes(overall_chart(summary)))


def test_radar_compares_several_runs_and_needs_three_groups(tmp_path: Path) -> None:
    first = load_run(lego_run(tmp_path / "a", model="gpt-4o"))
    second = load_run(lego_run(tmp_path / "b", model="Qwen2.5-VL-72B"))
    summary = summarise([first, second], bootstrap=0)
    with_paper = png_bytes(radar_chart(summary, "task", compare_to_paper(summary)))
    plain = png_bytes(radar_chart(summary, "task"))
    _check_png(with_paper, (750, 700))
    assert with_paper != plain  # the published polygons are drawn
    with pytest.raises(InputError, match="at least 3 groups"):
        radar_chart(summary, "category")


# ---------------------------------------------------------------- command


def _command(*argv: str) -> int:
    parser = argparse.ArgumentParser(epilog=EPILOG)
    add_arguments(parser)
    return report_command(parser.parse_args(argv))


def test_command_writes_every_output(tmp_path: Path, tpru: Run, muir: Run,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert _command(str(tpru.path), str(muir.path / "run.json"), "--compare", "paper",
                    "--format", "json", "--out", str(out / "summary.json"), "--plots",
                    str(out / "plots"), "--html", str(out / "report.html"),
                    "--bootstrap", "100", "--paper-model", "TPRU-7B", "--paper-model",
                    "Qwen2.5-VL-72B") == 0
    data = json.loads((out / "summary.json").read_text())
    assert [r["overall"]["correct"] for r in data["runs"]] == [7, 7]
    paper = {(r["run"], r["group"]): r for r in data["comparison"]["rows"]}
    assert paper[(tpru.model, "overall")]["paper"] == 75.70
    assert paper[(muir.model, "Ordering")]["paper_model"] == "Qwen2.5-VL-72B"
    assert paper[(muir.model, "Ordering")]["paper"] == 40.63
    assert (out / "plots" / "overall.png").is_file()
    # The HTML links the charts written into --plots instead of drawing them again.
    assert 'src="plots/overall.png"' in (out / "report.html").read_text(encoding="utf-8")
    assert capsys.readouterr().out == ""
    assert _command(str(tpru.path), "--format", "csv") == 0
    assert capsys.readouterr().out.startswith(",".join(CSV_COLUMNS))
    with pytest.raises(InputError, match="--paper-model needs --compare paper"):
        _command(str(tpru.path), "--paper-model", "GPT-4o")
    with pytest.raises(InputError, match="no such file"):
        _command(str(tmp_path / "nowhere"))


# ---------------------------------------------------------------- HTML


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str | None] = {}
        self.failures: list[dict[str, str | None]] = []
        self.images: list[str] = []
        self.filters: dict[str, list[str]] = {}
        self.text: list[str] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "article":
            self.failures.append(a)
        elif tag == "img":
            self.images.append(a.get("src") or "")
        elif tag == "select":
            self._select = a.get("data-filter")
            self.filters[self._select or ""] = []
        elif tag == "option" and self._select and a.get("value"):
            self.filters[self._select].append(a["value"] or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(markup: str) -> _Page:
    page = _Page()
    page.feed(markup)
    return page


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One HTML report of the TPRU-Test and MuirBench runs, shared by the tests that
    only read it (drawing its charts takes a few seconds)."""
    root = tmp_path_factory.mktemp("html")
    runs = [load_run(tpru_run(root / "runs" / "qwen7b")),
            load_run(muirbench_run(root / "runs" / "muir"))]
    summary = summarise(runs, bootstrap=100)
    return write_html_report(runs, summary, root / "html" / "report.html",
                             comparison=compare_to_paper(summary))


def test_html_lists_every_failed_sample(report: Path) -> None:
    markup = report.read_text(encoding="utf-8")
    page = _parse(markup)
    text = "".join(page.text)
    assert [f["data-run"] for f in page.failures].count("Qwen2.5-VL-3B-Instruct") == 2
    assert sorted(f"{f['data-run']}/{f['data-task']}" for f in page.failures) == sorted(
        ["Qwen/Qwen2.5-VL-7B-Instruct/ordering", "Qwen/Qwen2.5-VL-7B-Instruct/next_frame",
         "Qwen/Qwen2.5-VL-7B-Instruct/prev_frame", "Qwen2.5-VL-3B-Instruct/Counting",
         "Qwen2.5-VL-3B-Instruct/Visual Retrieval"])
    for item_id in (*TPRU_FAILED, *MUIR_FAILED):
        assert item_id in text
    assert "I think it is A &amp; not &lt;b&gt;B&lt;/b&gt;." in markup  # escaped output
    assert "Backend error: timeout after 60 s" in text and "rule: bare_letter" in text
    assert page.filters["task"] == ["Counting", "Visual Retrieval", "next_frame", "ordering",
                                    "prev_frame"]
    assert page.filters["category"] == ["temporal"]
    assert "Compared with the paper" in text and "Showing 5 of 5 failed samples" in text
    # 3 failed TPRU items of 4 + 6 + 6 images, 2 MuirBench items of 2, 5 charts (overall;
    # radars of TPRU-Test by task and scenario, of MuirBench by task; TPRU-Test's accuracy
    # against sequence length)
    assert len(page.images) == 16 + 4 + 5
    for src in page.images:
        if not src.startswith("data:image/png;base64,"):
            assert not src.startswith(("/", "file:", "http")), src
            assert (report.parent / src).is_file(), src


def test_html_max_failures_and_missing_image(tmp_path: Path, tpru: Run) -> None:
    (tpru.path / "images" / "ord-3-0.png").unlink()
    out = write_html_report([tpru], summarise([tpru], bootstrap=0), tmp_path / "r.html",
                            max_failures=1, plots=False)
    markup = out.read_text(encoding="utf-8")
    page = _parse(markup)
    assert [f["data-task"] for f in page.failures] == ["ordering"]
    assert "[missing image images/ord-3-0.png]" in markup and len(page.images) == 3


CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found")


def _chromium(page: Path, profile: Path, *flags: str) -> subprocess.CompletedProcess[bytes]:
    profile.mkdir()
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", *flags, page.resolve().as_uri()]
    result = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result


@pytest.mark.browser
@needs_chromium
def test_browser_renders_failures_and_loads_every_image(report: Path, tmp_path: Path) -> None:
    result = _chromium(report, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom")
    page = _parse(result.stdout.decode("utf-8"))
    text = "".join(page.text)
    for item_id in (*TPRU_FAILED, *MUIR_FAILED):
        assert item_id in text
    assert len(page.images) == 25
    assert page.body.get("data-loaded-images") == "25", page.body
    assert "5 shown" in text  # the filter script ran


@pytest.mark.browser
@needs_chromium
def test_browser_embedded_report_stands_alone(tmp_path: Path, tpru: Run) -> None:
    out = write_html_report([tpru], summarise([tpru], bootstrap=0), tmp_path / "e" / "r.html",
                            embed=True, plots=False)
    page = _parse(out.read_text(encoding="utf-8"))
    assert page.images and all(src.startswith("data:image/png;base64,") for src in page.images)
    result = _chromium(out, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom")
    assert _parse(result.stdout.decode("utf-8")).body.get("data-loaded-images") == "16"


@pytest.mark.browser
@needs_chromium
def test_browser_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    _chromium(report, tmp_path / "profile", f"--screenshot={png}", "--window-size=1200,2400")
    _check_png(png, (1200, 2400))


def test_report_reads_a_folder_the_runner_wrote(tmp_path: Path) -> None:
    """The real runner with the random backend on a small dataset: its run folder reads
    back with the same counts the runner reports."""
    bench = load_benchmark(f"dataset:{make_dataset(tmp_path / 'ds')}",
                           cache_dir=tmp_path / "cache")
    done = run_eval(open_backend("random", seed=1), bench, tmp_path / "run",
                    backend_spec="random", show_progress=False)
    run = load_run(tmp_path / "run")
    summary = summarise([run], bootstrap=100).runs[0]
    assert (summary.overall.n, summary.overall.correct) == (done.items, done.correct)
    assert summary.overall.errors == done.errors and summary.benchmark == bench.name
    assert summary.groups["task"].keys() == {"ordering", "next_frame", "prev_frame"}
    out = write_html_report([run], summarise([run], bootstrap=0), tmp_path / "r.html",
                            plots=False)
    page = _parse(out.read_text(encoding="utf-8"))
    assert len(page.failures) == done.items - done.correct
    for src in page.images:
        assert (out.parent / src).is_file(), src


def test_labels_of_runs_that_share_a_model_are_numbered_in_order(tmp_path: Path) -> None:
    """Three runs of one model on three benchmarks, then two on one benchmark."""
    runs = []
    for name in ("tpru-test", "muirbench", "lego-puzzles"):
        lines = [record("q1", correct=True, task="ordering", benchmark=name)]
        runs.append(load_run(write_run(tmp_path / name, run_info("random", "random", name),
                                       lines)))
    labels = [r.label for r in summarise(runs, bootstrap=10).runs]
    assert labels == ["random #1", "random #2", "random #3"]
    again = load_run(write_run(tmp_path / "again", run_info("random", "random", "muirbench"),
                               [record("q1", correct=False, task="ordering")]))
    labels = [r.label for r in summarise([*runs, again], bootstrap=10).runs]
    assert labels == ["random #1", "random (muirbench)", "random #2", "random (again)"]
