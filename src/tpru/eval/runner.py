"""The evaluation runner: a backend answers a benchmark's items; every answer is kept.

A run is a folder:

- ``run.json`` (`tpru.records.RunRecord`): its ``schema_version``, what was
  run (tpru version, model, backend spec and options,
  benchmark name, source and split: the split scored, a name or ``all``,
  null in a run.json from a tpru that did not record it; prompt, seed,
  limit, generation budget),
  when (``started``, one timestamp per ``--resume`` in ``resumed``,
  ``finished``) and the counts so far. Written before the first request and
  rewritten at the end.
- ``results.jsonl`` (`tpru.records.ResultLine`): one JSON object per
  answered item, appended and flushed
  after every batch, so a run killed at any moment loses at most the batch in
  flight. Fields: ``schema_version, id, benchmark, task, category, scenario,
  negative, answerable, counterpart, answer, prediction, rule, correct,
  response, error, question, options, images, usage`` (lines without
  ``schema_version``, from an older tpru, are version 1). ``counterpart`` is the item's
  twin (MuirBench's counterpart, a tpru dataset sample's ``meta["twin"]``)
  or null. ``prediction`` and ``rule``
  come from `tpru.score.extract.extract_answer`; ``correct`` is ``prediction ==
  answer``. A backend failure is recorded with ``error`` set and ``correct``
  false.
- ``eval.yaml`` (`tpru.eval.config.EvalConfig`): the settings the run was
  called with, defaults filled in, written with the first ``run.json`` and
  again on every resume; ``tpru eval RUN/eval.yaml --model ... --bench ...
  --out NEW`` repeats the run.

Order and limit: items run in the benchmark's own order; ``limit`` takes the
first N of that order (rows skipped as bad input do not count), so the same
limit always means the same items.

Resume: the items already recorded without an error are skipped; those
recorded with an error are run again and their new line is appended (a
reader takes the last line per id). A half-written last line (the process
killed mid-write) is cut off first; a line that is JSON but not a result
``tpru report`` can read is dropped (counted in a warning) and its item runs
again. A run folder whose ``run.json`` names a different model, benchmark,
split, prompt, seed or generation budget is refused, and so is one whose
benchmark changed: ``run.json`` keeps the benchmark's resolved location and
a `tpru.eval.items.items_fingerprint` of the items it covered, and a resume
compares the fingerprint, not the path (another spelling of the same folder,
or the same files moved, resume). So a resumed run ends with exactly the
results of one that was never interrupted. The limit may change on resume
(to extend a run); the fingerprint always covers the most items any part of
the run read, so results kept from a longer limit are checked too. These checks and
the files' names are in `tpru.eval.run_folder`.

A dead or misconfigured backend (a wrong URL or key, a server that is down)
fails every item: the run stops with `BackendFailing` once
``stop_after_failures`` items in a row (`STOP_AFTER_FAILURES` unless the
config says otherwise; at least one whole batch) failed,
instead of grinding through the whole benchmark; what was answered is kept.

Determinism: each request carries the seed ``crc32("{seed}:{item id}")``, so
a sampling backend draws the same answer for an item whatever batch or
resume it falls in.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from tpru import __version__
from tpru.diagnostics import InputError, Skips
from tpru.eval.config import STOP_AFTER_FAILURES, EvalConfig, write_eval_config
from tpru.eval.items import ALL_SPLITS, Benchmark, Item, items_fingerprint
from tpru.eval.prompts import PROMPTS, render_prompt
from tpru.eval.report import RESULTS_FILE, RUN_FILE
from tpru.eval.run_folder import (
    IDENTITY,
    SETTINGS,
    check_benchmark,
    check_identity,
    earlier_run,
    read_items,
    read_results,
    source_location,
)
from tpru.files import write_text_atomic
from tpru.models.base import Backend, Request, Response
from tpru.progress import progress_bar
from tpru.records import BenchmarkFingerprint, ResultLine, RunRecord
from tpru.score.extract import extract_answer

log = logging.getLogger("tpru.eval")

__all__ = ["IDENTITY", "RESULTS_FILE", "RUN_FILE", "STOP_AFTER_FAILURES", "BackendFailing",
           "EvalConfig", "RunPlan", "RunSummary", "plan_run", "read_results", "request_seed",
           "result_record", "run_eval", "source_location"]

class BackendFailing(InputError):
    """The backend failed so many items in a row that the rest would most likely fail too."""


@dataclass(frozen=True)
class RunSummary:
    """The state of a run folder after `run_eval`.

    Attributes:
        path: the run folder.
        items: items in the run (the first `limit` of the benchmark).
        answered: items whose latest result has no error.
        errors: items whose latest result has an error (run them again with resume).
        correct: items answered correctly.
        generated: requests sent to the backend by this call.
        kept: items whose earlier result was kept (resume).
        skipped: benchmark rows skipped as bad input, by reason.
        last_error: the last backend error of this call, or None.
    """

    path: Path
    items: int
    answered: int
    errors: int
    correct: int
    generated: int
    kept: int
    skipped: Mapping[str, int] = field(default_factory=dict)
    last_error: str | None = None

    @property
    def accuracy(self) -> float:
        """Correct over all items of the run (an item with an error counts as wrong)."""
        return self.correct / self.items if self.items else 0.0


def request_seed(seed: int, item_id: str) -> int:
    """The seed of one item's request: stable across batches, resumes and processes."""
    return zlib.crc32(f"{seed}:{item_id}".encode())


@dataclass(frozen=True)
class RunPlan:
    """What `plan_run` checked and read before a model is loaded.

    Attributes:
        folder: the run folder; earlier: its run.json when resuming, else None.
        config: the run's settings; prompt: the prompt's name, resolved.
        location: where the benchmark is read from (`source_location`).
        items: the run's items; checked: the items its fingerprint covers.
        skips: the benchmark rows skipped as bad input.
    """

    folder: Path
    config: EvalConfig
    prompt: str
    location: str
    earlier: RunRecord | None
    items: list[Item]
    checked: list[Item]
    skips: Skips


def plan_run(benchmark: Benchmark, out: str | os.PathLike[str],
             config: EvalConfig | None = None, *, resume: bool = False,
             backend_spec: str | None = None) -> RunPlan:
    """Every check of a run that needs no model: the prompt, the run folder, and on
    ``resume`` the settings and benchmark fingerprint in its run.json (`SETTINGS`).

    A command calls it before it loads the model, so a resume whose settings do
    not match fails in a second, not after minutes of loading a model that would
    not be used; `run_eval` checks the model's own name once it is loaded.

    Args:
        backend_spec: the backend as the user named it (``hf:...``), compared
            with the one run.json recorded; None: not compared here.

    Raises:
        InputError: as `run_eval`, but never about the model's name.
    """
    config = config or EvalConfig()
    prompt_name = config.prompt or benchmark.default_prompt
    if prompt_name not in PROMPTS:
        raise InputError(f"unknown prompt {prompt_name!r} (prompts: {', '.join(PROMPTS)})")
    folder = Path(out)
    location = source_location(benchmark.source)
    settings = _record(benchmark, config, prompt_name, location, model=None,
                       backend=backend_spec)
    earlier = earlier_run(folder, settings, resume, keys=SETTINGS)
    skips = Skips()
    items, checked = read_items(benchmark, config.limit, earlier, skips)
    if earlier is not None:
        check_benchmark(folder, earlier, location, checked)
    if not items:
        raise InputError(_no_items(benchmark, skips))
    return RunPlan(folder, config, prompt_name, location, earlier, items, checked, skips)


def run_eval(backend: Backend, benchmark: Benchmark, out: str | os.PathLike[str],
             config: EvalConfig | None = None, *, resume: bool = False,
             show_progress: bool = True, backend_spec: str | None = None,
             backend_options: Mapping[str, Any] | None = None,
             plan: RunPlan | None = None) -> RunSummary:
    """Run `backend` on `benchmark` into the run folder `out` (see the module docstring).

    Args:
        config: the run's settings (`EvalConfig`; None: the defaults). Its
            ``split`` is the benchmark's to read with, not the runner's: the
            run scores `benchmark` as given and records its split.
        resume: continue the run already in `out`; without it an existing run is refused.
        show_progress: show a progress bar.
        backend_spec, backend_options: how the backend was opened, for run.json.
        plan: what `plan_run` already checked for these arguments (before the
            model was loaded); None: checked here.

    Raises:
        InputError: a benchmark whose own prompt is unknown, a run folder that
            does not match, a benchmark that changed since the run began, one
            with duplicate ids or with no items.
        BackendFailing: the backend failed ``config.stop_after_failures`` items
            in a row; run.json and the results so far are written, and the run
            can be resumed.
    """
    if plan is None:
        plan = plan_run(benchmark, out, config, resume=resume, backend_spec=backend_spec)
    config, folder, earlier, items, skips = (plan.config, plan.folder, plan.earlier, plan.items,
                                             plan.skips)
    info = replace(_record(benchmark, config, plan.prompt, plan.location, model=backend.name,
                           backend=backend_spec or backend.name),
                   backend_options=dict(backend_options or {}))
    if earlier is not None:
        check_identity(folder, earlier, info, IDENTITY)
    prompt_name, checked = plan.prompt, plan.checked
    done = read_results(folder / RESULTS_FILE) if earlier is not None else {}
    pending = [item for item in items if item.id not in done or done[item.id].error]
    now = _now()
    info = replace(info, benchmark_fingerprint=BenchmarkFingerprint(len(checked),
                                                                     items_fingerprint(checked)),
                   started=(earlier.started or now) if earlier else now,
                   resumed=(*earlier.resumed, now) if earlier else ())
    folder.mkdir(parents=True, exist_ok=True)
    _write_info(folder, info, items, done, skips)
    write_eval_config(folder, config)
    if done:
        log.info("resuming %s: %d of %d items to run", folder, len(pending), len(items))

    stop_after = (None if config.stop_after_failures is None
                  else max(config.stop_after_failures, config.batch_size))
    generated, in_a_row, last_error, finished = 0, 0, None, None
    try:
        with (folder / RESULTS_FILE).open("a", encoding="utf-8") as handle, \
                progress_bar(f"{benchmark.name} · {backend.name}", show=show_progress,
                             unit="samples", total=len(pending)) as bar:
            for batch in _batches(pending, config.batch_size):
                requests = [Request(id=item.id, prompt=render_prompt(item, prompt_name),
                                    images=item.images, max_new_tokens=config.max_new_tokens,
                                    temperature=config.temperature,
                                    seed=request_seed(config.seed, item.id))
                            for item in batch]
                responses = backend.generate(requests)
                _check_responses(backend, requests, responses)
                records = [result_record(i, r) for i, r in zip(batch, responses, strict=True)]
                _append(handle, records, done)
                generated += len(batch)
                bar.advance(len(batch))
                for response in responses:
                    in_a_row = in_a_row + 1 if response.error else 0
                    last_error = response.error or last_error
                if stop_after is not None and in_a_row >= stop_after:
                    raise BackendFailing(
                        f"stopped after {in_a_row} items in a row failed in the backend "
                        f"{backend.name}; the last error: {last_error}. Check the model name, "
                        f"the server (--base-url) and its API key; the answers so far are kept "
                        f"in {folder}, and --resume continues the run")
        finished = _now()
    finally:
        counts = _write_info(folder, replace(info, finished=finished), items, done, skips)
    return RunSummary(path=folder, items=len(items), answered=counts["answered"],
                      errors=counts["errors"], correct=counts["correct"], generated=generated,
                      kept=len(items) - len(pending), skipped=dict(skips.counts),
                      last_error=last_error)


def _record(benchmark: Benchmark, config: EvalConfig, prompt: str, location: str, *,
            model: str | None, backend: str | None) -> RunRecord:
    """run.json's account of what is run, before its fingerprint, times and counts."""
    return RunRecord(
        tpru_version=__version__, model=model, backend=backend, benchmark=benchmark.name,
        benchmark_source=location, split=benchmark.split, prompt=prompt, seed=config.seed,
        limit=config.limit, max_new_tokens=config.max_new_tokens,
        temperature=config.temperature, batch_size=config.batch_size)


def result_record(item: Item, response: Response) -> ResultLine:
    """One line of ``results.jsonl`` for `item` answered by `response`."""
    prediction, rule = None, "none"
    if response.error is None:
        # a sequence item is read as letters in order, even where it lists options (LEGO sort)
        options = item.options if item.answer_form == "choice" else None
        extraction = extract_answer(response.text, options, item.sequence_length)
        prediction, rule = extraction.answer, extraction.rule
    return ResultLine(
        id=item.id, benchmark=item.benchmark, task=item.task, category=item.category,
        scenario=item.scenario, negative=item.negative, answerable=item.answerable,
        counterpart=item.counterpart, frames=item.frames, difficulty=item.difficulty,
        answer=item.answer, prediction=prediction, rule=rule,
        correct=response.error is None and prediction == item.answer,
        response=response.text, error=response.error, question=item.question,
        options=item.options, images=item.images, usage=dict(response.usage))


def _no_items(benchmark: Benchmark, skips: Skips) -> str:
    """Why there is nothing to run: the benchmark (or split) is empty, or every row was bad."""
    split = f", split {benchmark.split!r}" if benchmark.split not in (None, ALL_SPLITS) else ""
    message = f"{benchmark.source}: no items to evaluate (benchmark {benchmark.name}{split})"
    if skips.counts:
        reasons = ", ".join(f"{reason} {count}" for reason, count in skips.counts.items())
        first = next(iter(skips.examples.values()))[0]
        message += f"; every row was skipped ({reasons}; the first: {first})"
    return message


def _batches(items: Sequence[Item], size: int) -> Iterator[Sequence[Item]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _check_responses(backend: Backend, requests: Sequence[Request],
                     responses: Sequence[Response]) -> None:
    got = [r.id for r in responses]
    if got != [r.id for r in requests]:
        raise RuntimeError(f"backend {backend.name} answered ids {got[:5]}... for requests "
                           f"{[r.id for r in requests][:5]}...: the protocol keeps the order")


def _append(handle: IO[str], records: Sequence[ResultLine],
            done: dict[str, ResultLine]) -> None:
    """Write a batch of lines in one call and flush, so a kill leaves at most one partial line."""
    handle.write("".join(record.dumps() + "\n" for record in records))
    handle.flush()
    for record in records:
        done[record.id] = record


def _write_info(folder: Path, info: RunRecord, items: Sequence[Item],
                done: Mapping[str, ResultLine], skips: Skips) -> dict[str, int]:
    """Rewrite run.json (atomically) with the counts over the run's items; return the counts."""
    latest = [done[item.id] for item in items if item.id in done]
    counts = {
        "items": len(items),
        "answered": sum(1 for r in latest if not r.error),
        "errors": sum(1 for r in latest if r.error),
        "correct": sum(1 for r in latest if r.correct),
        "skipped": sum(skips.counts.values()),
    }
    info = replace(info, counts=counts, skipped=skips.as_dict())
    write_text_atomic(folder / RUN_FILE, info.dumps())
    return counts


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
