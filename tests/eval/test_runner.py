"""The runner end to end: real backends on benchmark files, run folders read back.

The random baseline runs every benchmark format quickly; the tiny Qwen2.5-VL
model runs each format through the Hugging Face backend; a run killed with
SIGKILL in a subprocess is resumed and compared with one never interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from bench_files import muirbench_rows, write_muirbench, write_tpru_test

from tpru.commands.eval import add_arguments, eval_command
from tpru.config import ConfigError
from tpru.diagnostics import InputError
from tpru.eval.benchmarks import load_benchmark
from tpru.eval.config import EvalConfig
from tpru.eval.items import Benchmark
from tpru.eval.report import load_run
from tpru.eval.runner import RESULTS_FILE, RUN_FILE, RunSummary, run_eval
from tpru.models import open_backend
from tpru.models.base import Backend, Request, Response
from tpru.score.extract import extract_answer

FIELDS = {"schema_version", "id", "benchmark", "task", "category", "scenario", "negative",
          "answerable", "counterpart", "answer", "prediction", "rule", "correct", "response",
          "error", "question", "options", "images", "usage"}


def _lines(run: Path) -> list[dict[str, Any]]:
    text = (run / RESULTS_FILE).read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def _latest(run: Path) -> dict[str, dict[str, Any]]:
    """The last line per id, without timing (the only thing that may differ between runs)."""
    latest = {}
    for line in _lines(run):
        line["usage"] = {k: v for k, v in line["usage"].items()
                         if not any(t in k for t in ("time", "second", "latency"))}
        latest[line["id"]] = line
    return latest


def _run(backend: Backend, bench: Benchmark, out: Path, *, resume: bool = False,
         backend_spec: str | None = None, backend_options: dict[str, Any] | None = None,
         **settings: Any) -> RunSummary:
    config = EvalConfig(**{"batch_size": 3, "max_new_tokens": 16, **settings})
    return run_eval(backend, bench, out, config, resume=resume, show_progress=False,
                    backend_spec=backend_spec, backend_options=backend_options)


def _benchmarks(muirbench_file: Path, lego_file: Path, tpru_test_file: Path,
                tpru_dataset: Path) -> dict[str, str]:
    return {"muirbench": f"muirbench:{muirbench_file}", "lego-puzzles": f"lego-puzzles:{lego_file}",
            "tpru-test": f"tpru-test:{tpru_test_file}", "tpru-dataset": str(tpru_dataset)}


class FailingFor:
    """A backend that answers through `inner` except for `ids`, which get an error response
    (as a server that fails for some requests would)."""

    def __init__(self, inner: Backend, ids: set[str]) -> None:
        self.inner, self.ids, self.name = inner, ids, inner.name

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        answered = iter(self.inner.generate([r for r in requests if r.id not in self.ids]))
        return [Response(r.id, "", error="HTTP 503: overloaded") if r.id in self.ids
                else next(answered) for r in requests]


# ------------------------------------------------------------ end to end, random


def test_random_backend_on_every_benchmark(muirbench_file: Path, lego_file: Path,
                                           tpru_test_file: Path, tpru_dataset: Path,
                                           cache_dir: Path, tmp_path: Path) -> None:
    specs = _benchmarks(muirbench_file, lego_file, tpru_test_file, tpru_dataset)
    for name, spec in specs.items():
        bench = load_benchmark(spec, cache_dir=cache_dir)
        items = list(bench.items())
        out = tmp_path / name
        summary = _run(open_backend("random", seed=0), bench, out,
                       backend_spec="random", backend_options={"seed": 0})
        lines = _lines(out)
        assert [line["id"] for line in lines] == [i.id for i in items]
        # The random baseline reads lettered option lines; TPRU-Test's t4 writes its options
        # inline ("A. 1 2 3; B. ..."), kept verbatim by the tpru prompt: a backend error.
        failed = {"t4"} if name == "tpru-test" else set()
        assert {line["id"] for line in lines if line["error"]} == failed
        for line, item in zip(lines, items, strict=True):
            # frames and difficulty are written only where the benchmark records them
            assert FIELDS <= set(line) <= FIELDS | {"frames", "difficulty"}
            assert ("frames" in line) == (name == "tpru-dataset")
            assert line["benchmark"] == name and line["answer"] == item.answer
            assert line["images"] == list(item.images)
            if line["error"]:
                assert (line["prediction"], line["rule"], line["correct"]) == (None, "none", False)
                continue
            form = (item.options, None) if item.answer_form == "choice" else \
                (None, item.sequence_length)
            extraction = extract_answer(line["response"], *form)
            assert (line["prediction"], line["rule"]) == (extraction.answer, extraction.rule)
            assert line["correct"] is (line["prediction"] == item.answer)
        info = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
        assert info["benchmark"] == name and info["benchmark_source"] == bench.source
        assert info["backend"] == "random" and info["backend_options"] == {"seed": 0}
        assert info["prompt"] == bench.default_prompt and info["limit"] is None
        # local files have no splits (all of each is scored); a dataset folder: its test split
        assert info["split"] == ("test" if name == "tpru-dataset" else "all")
        assert info["finished"] and info["started"]
        correct = sum(line["correct"] for line in lines)
        assert info["counts"] == {"items": len(items), "answered": len(items) - len(failed),
                                  "errors": len(failed), "correct": correct,
                                  "skipped": sum(summary.skipped.values())}
        assert (summary.items, summary.correct, summary.errors, summary.generated,
                summary.kept) == (len(items), correct, len(failed), len(items), 0)
        # the report reads the run folder back
        run = load_run(out)
        assert (run.model, run.benchmark, len(run.results)) == ("random", name, len(items))
        assert sum(r.correct for r in run.results) == correct


def test_same_seed_same_results(muirbench_file: Path, cache_dir: Path, tmp_path: Path) -> None:
    bench = load_benchmark(f"muirbench:{muirbench_file}", cache_dir=cache_dir)
    _run(open_backend("random", seed=0), bench, tmp_path / "a", batch_size=1)
    _run(open_backend("random", seed=0), bench, tmp_path / "b", batch_size=4)
    assert _latest(tmp_path / "a") == _latest(tmp_path / "b")


def test_limit_takes_the_first_items_in_order(muirbench_file: Path, cache_dir: Path,
                                              tmp_path: Path) -> None:
    bench = load_benchmark(f"muirbench:{muirbench_file}", cache_dir=cache_dir)
    first = [i.id for i in bench.items()][:4]
    summary = _run(open_backend("random", seed=0), bench, tmp_path / "run", limit=4)
    assert [line["id"] for line in _lines(tmp_path / "run")] == first
    assert summary.items == 4
    # a resumed run may extend the limit: only the new items are generated
    summary = _run(open_backend("random", seed=0), bench, tmp_path / "run", resume=True)
    assert (summary.generated, summary.kept, summary.items) == (2, 4, 6)
    _run(open_backend("random", seed=0), bench, tmp_path / "whole")
    assert _latest(tmp_path / "run") == _latest(tmp_path / "whole")


def test_other_prompt_is_recorded(tpru_test_file: Path, cache_dir: Path, tmp_path: Path) -> None:
    bench = load_benchmark(f"tpru-test:{tpru_test_file}", cache_dir=cache_dir)
    _run(open_backend("random", seed=0), bench, tmp_path / "run", prompt="default")
    info = json.loads((tmp_path / "run" / RUN_FILE).read_text(encoding="utf-8"))
    assert info["prompt"] == "default"
    with pytest.raises(ConfigError, match="unknown prompt 'mmmu'"):  # EvalConfig refuses it
        _run(open_backend("random", seed=0), bench, tmp_path / "other", prompt="mmmu")
    assert not (tmp_path / "other").exists()


# --------------------------------------------------------------------- resuming


def test_existing_run_needs_resume_and_the_same_settings(muirbench_file: Path, cache_dir: Path,
                                                         tmp_path: Path) -> None:
    bench = load_benchmark(f"muirbench:{muirbench_file}", cache_dir=cache_dir)
    out = tmp_path / "run"
    _run(open_backend("random", seed=0), bench, out, limit=2)
    before = (out / RESULTS_FILE).read_bytes()
    with pytest.raises(InputError, match="already holds a run; continue it with --resume"):
        _run(open_backend("random", seed=0), bench, out)
    with pytest.raises(InputError, match="cannot resume: the run used prompt 'muirbench'"):
        _run(open_backend("random", seed=0), bench, out, resume=True, prompt="tpru")
    with pytest.raises(InputError, match="the run used seed 0 \\(now 1\\)"):
        _run(open_backend("random", seed=0), bench, out, resume=True, seed=1)
    blind = open_backend("blind:random", seed=0)
    with pytest.raises(InputError, match="the run used model 'random'"):
        _run(blind, bench, out, resume=True)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(muirbench_rows(3)[1:]), tmp_path / "m.parquet")
    other = load_benchmark(f"muirbench:{tmp_path / 'm.parquet'}", cache_dir=cache_dir)
    with pytest.raises(InputError, match="the benchmark changed since the run began"):
        _run(open_backend("random", seed=0), other, out, resume=True)
    assert (out / RESULTS_FILE).read_bytes() == before
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    with pytest.raises(InputError, match="is not a run folder"):
        _run(open_backend("random", seed=0), bench, tmp_path / "notes")


def test_resume_reruns_items_that_failed(muirbench_file: Path, cache_dir: Path,
                                         tmp_path: Path) -> None:
    bench = load_benchmark(f"muirbench:{muirbench_file}", cache_dir=cache_dir)
    out = tmp_path / "run"
    failing = FailingFor(open_backend("random", seed=0), {"test_1", "test_4"})
    summary = _run(failing, bench, out)
    assert (summary.errors, summary.answered) == (2, 4)
    failed = {k: v for k, v in _latest(out).items() if v["error"]}
    assert set(failed) == {"test_1", "test_4"}
    assert all(v["correct"] is False and v["prediction"] is None for v in failed.values())
    info = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
    assert info["counts"]["errors"] == 2

    summary = _run(open_backend("random", seed=0), bench, out, resume=True)
    assert (summary.generated, summary.kept, summary.errors) == (2, 4, 0)
    assert len(_lines(out)) == 8  # the failed lines stay; the retries come after them
    _run(open_backend("random", seed=0), bench, tmp_path / "whole")
    assert _latest(out) == _latest(tmp_path / "whole")
    info = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
    assert info["counts"]["errors"] == 0 and len(info["resumed"]) == 1


def test_half_written_last_line_is_dropped_on_resume(muirbench_file: Path, cache_dir: Path,
                                                     tmp_path: Path) -> None:
    bench = load_benchmark(f"muirbench:{muirbench_file}", cache_dir=cache_dir)
    whole, out = tmp_path / "whole", tmp_path / "run"
    _run(open_backend("random", seed=0), bench, whole)
    _run(open_backend("random", seed=0), bench, out)
    lines = (out / RESULTS_FILE).read_bytes().splitlines(keepends=True)
    (out / RESULTS_FILE).write_bytes(b"".join(lines[:3]) + lines[3][:40])
    summary = _run(open_backend("random", seed=0), bench, out, resume=True)
    assert (summary.kept, summary.generated) == (3, 3)
    assert len(_lines(out)) == 6
    assert _latest(out) == _latest(whole)


def test_a_broken_line_in_the_middle_is_an_error(muirbench_file: Path, cache_dir: Path,
                                                 tmp_path: Path) -> None:
    bench = load_benchmark(f"muirbench:{muirbench_file}", cache_dir=cache_dir)
    out = tmp_path / "run"
    _run(open_backend("random", seed=0), bench, out)
    lines = (out / RESULTS_FILE).read_bytes().splitlines(keepends=True)
    lines[1] = b"{not json\n"
    (out / RESULTS_FILE).write_bytes(b"".join(lines))
    with pytest.raises(InputError, match="line 2: not a valid result line"):
        _run(open_backend("random", seed=0), bench, out, resume=True)


SCRIPT = """
import sys, time
from tpru.eval.benchmarks import load_benchmark
from tpru.eval.runner import EvalConfig, run_eval
from tpru.models import open_backend

class Slow:
    def __init__(self, inner, delay):
        self.inner, self.delay, self.name = inner, delay, inner.name
    def generate(self, requests):
        time.sleep(self.delay * len(requests))
        return self.inner.generate(requests)

bench = load_benchmark(sys.argv[1], cache_dir=sys.argv[2])
run_eval(Slow(open_backend("random", seed=0), float(sys.argv[4])), bench, sys.argv[3],
         EvalConfig(batch_size=2, max_new_tokens=16), resume=sys.argv[5] == "1",
         show_progress=False)
"""


def _kill_after(command: list[str], results: Path, lines: int) -> None:
    """Run `command` and SIGKILL it once `results` holds `lines` lines."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if results.exists() and results.read_bytes().count(b"\n") >= lines:
                os.killpg(process.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        else:
            error = process.stderr.read().decode() if process.stderr else ""
            pytest.fail(f"the run ended (status {process.poll()}) before it was killed: {error}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if process.stderr:
            process.stderr.close()


@pytest.mark.slow
def test_killed_run_resumes_to_the_results_of_an_uninterrupted_one(tmp_path: Path,
                                                                   cache_dir: Path) -> None:
    bench_file = write_muirbench(tmp_path / "muir.parquet", pairs=12, bad=False)
    spec = f"muirbench:{bench_file}"
    out, whole = tmp_path / "killed", tmp_path / "whole"
    command = [sys.executable, "-c", SCRIPT, spec, str(cache_dir), str(out), "0.15", "0"]
    _kill_after(command, out / RESULTS_FILE, lines=6)
    done = (out / RESULTS_FILE).read_bytes().count(b"\n")
    assert 6 <= done < 24
    info = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
    assert info["finished"] is None  # killed: run.json was never completed

    subprocess.run([sys.executable, "-c", SCRIPT, spec, str(cache_dir), str(out), "0", "1"],
                   check=True, timeout=120)
    bench = load_benchmark(spec, cache_dir=cache_dir)
    _run(open_backend("random", seed=0), bench, whole, batch_size=2)
    assert _latest(out) == _latest(whole)
    assert len(_lines(out)) == 24  # nothing ran twice
    info = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
    assert info["finished"] and info["counts"]["answered"] == 24


def test_duplicate_ids_are_refused(tmp_path: Path, cache_dir: Path) -> None:
    path = write_tpru_test(tmp_path / "dup.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([*lines, lines[0]]) + "\n", encoding="utf-8")
    bench = load_benchmark(f"tpru-test:{path}", cache_dir=cache_dir)
    with pytest.raises(InputError, match="item id 't1' appears twice"):
        _run(open_backend("random", seed=0), bench, tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------- the tiny real model


@pytest.mark.slow
def test_tiny_model_through_the_hf_backend_on_every_format(
        tiny_model_dir: Path, muirbench_file: Path, lego_file: Path, tpru_test_file: Path,
        tpru_dataset: Path, cache_dir: Path, tmp_path: Path) -> None:
    backend = open_backend(f"hf:{tiny_model_dir}", device="cpu", dtype="float32")
    specs = _benchmarks(muirbench_file, lego_file, tpru_test_file, tpru_dataset)
    for name, spec in specs.items():
        bench = load_benchmark(spec, cache_dir=cache_dir)
        items = list(bench.items())[:3]
        summary = _run(backend, bench, tmp_path / name, limit=3, max_new_tokens=6)
        assert (summary.items, summary.errors, summary.generated) == (3, 0, 3)
        for line, item in zip(_lines(tmp_path / name), items, strict=True):
            assert line["error"] is None and line["id"] == item.id
            usage = line["usage"]
            assert usage["prompt_tokens"] > 0 and 0 < usage["completion_tokens"] <= 6
            # every image reached the model: image tokens grow with the image count
            assert usage["image_tokens"] >= len(item.images)


# -------------------------------------------------------------------- the CLI


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tpru eval")
    parser.add_argument("-q", "--quiet", action="store_true")
    add_arguments(parser)
    return parser.parse_args(argv)


def test_eval_command_runs_and_resumes(muirbench_file: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    base = ["-q", "--model", "random", "--bench", f"muirbench:{muirbench_file}", "--out",
            str(out), "--cache-dir", str(tmp_path / "cache"), "--batch-size", "2"]
    argv = [*base, "--limit", "4"]
    assert eval_command(_parse(argv)) == 0
    printed = capsys.readouterr().out
    assert "muirbench:" in printed and "/4 correct" in printed and "skipped" not in printed
    info = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
    assert info["backend"] == "random" and info["backend_options"] == {"seed": 0}
    with pytest.raises(InputError, match="--resume"):
        eval_command(_parse(argv))
    assert eval_command(_parse([*base, "--resume"])) == 0
    assert len(_lines(out)) == 6
    printed = capsys.readouterr().out
    assert "2 generated now, 4 kept" in printed and "bad_row 1" in printed  # the 7th row
    for limit in ("-1", "0"):  # as tpru audit: a run of no items is a mistake
        with pytest.raises(InputError, match=f"--limit must be 1 or more, got {limit}"):
            eval_command(_parse([*argv, "--limit", limit]))


def test_eval_refuses_arguments_that_cannot_work(muirbench_file: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    base = ["-q", "--model", "random", "--bench", f"muirbench:{muirbench_file}", "--out",
            str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")]
    with pytest.raises(InputError, match="--temperature must be 0 or more .*got -1"):
        eval_command(_parse([*base, "--temperature", "-1"]))
    with pytest.raises(InputError, match="--option 'foo' is not of the form KEY=VALUE"):
        eval_command(_parse([*base, "--option", "foo"]))
    for flag, value in (("--seed", "-1"), ("--concurrency", "0"), ("--seed", "x")):
        with pytest.raises(SystemExit):  # refused while parsing, before anything runs
            _parse([*base, flag, value])
        error = capsys.readouterr().err
        assert f"argument {flag}" in error and ("or more" in error or "integer" in error)
    assert not (tmp_path / "run").exists()
    bench = load_benchmark(f"muirbench:{muirbench_file}", cache_dir=tmp_path / "cache")
    for options, message in (({"limit": 0}, "limit must be 1 or more"),
                             ({"temperature": -0.5}, "temperature must be 0 or more")):
        with pytest.raises(ConfigError, match=message):  # EvalConfig refuses it
            _run(open_backend("random", seed=0), bench, tmp_path / "run", **options)
    assert not (tmp_path / "run").exists()


def test_a_benchmark_without_items_is_an_error(tmp_path: Path, cache_dir: Path) -> None:
    empty = tmp_path / "empty.tsv"
    empty.write_text("index\timage\tquestion\tA\tB\tanswer\n", encoding="utf-8")
    bench = load_benchmark(f"lego-puzzles:{empty}", cache_dir=cache_dir)
    with pytest.raises(InputError, match="empty.tsv: no items to evaluate \\(benchmark "
                                         "lego-puzzles\\)$"):
        _run(open_backend("random", seed=0), bench, tmp_path / "run")
    bad = tmp_path / "bad.tsv"
    bad.write_text("index\timage\tquestion\tA\tB\tanswer\n0\tmissing.png\tWhich?\tx\ty\tA\n",
                   encoding="utf-8")
    bench = load_benchmark(f"lego-puzzles:{bad}", cache_dir=cache_dir)
    with pytest.raises(InputError, match="no items to evaluate .*every row was skipped "
                                         "\\(bad_row 1; the first: .*missing.png"):
        _run(open_backend("random", seed=0), bench, tmp_path / "run")
    assert not (tmp_path / "run").exists()
