"""The evaluation runner: a backend answers a benchmark's items; every answer is kept.

A run is a folder:

- ``run.json``: what was run (tpru version, model, backend spec and options,
  benchmark name, source and split, prompt, seed, limit, generation budget),
  when (``started``, one timestamp per ``--resume`` in ``resumed``,
  ``finished``) and the counts so far. Written before the first request and
  rewritten at the end.
- ``results.jsonl``: one JSON object per answered item, appended and flushed
  after every batch, so a run killed at any moment loses at most the batch in
  flight. Fields: ``id, benchmark, task, category, scenario, negative,
  answerable, counterpart, answer, prediction, rule, correct, response,
  error, question, options, images, usage``. ``prediction`` and ``rule``
  come from `tpru.extract.extract_answer`; ``correct`` is ``prediction ==
  answer``. A backend failure is recorded with ``error`` set and ``correct``
  false.

Order and limit: items run in the benchmark's own order; ``limit`` takes the
first N of that order (rows skipped as bad input do not count), so the same
limit always means the same items.

Resume: the items already recorded without an error are skipped; those
recorded with an error are run again and their new line is appended (a
reader takes the last line per id). A half-written last line (the process
killed mid-write) is cut off first. A run folder whose ``run.json`` names a
different model, benchmark, source, split, prompt, seed or generation budget
is refused, so a resumed run ends with exactly the results of one that was
never interrupted. The limit may change on resume (to extend a run).

Determinism: each request carries the seed ``crc32("{seed}:{item id}")``, so
a sampling backend draws the same answer for an item whatever batch or
resume it falls in.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import IO, Any

from tpru import __version__
from tpru.diagnostics import InputError, Skips
from tpru.eval.items import Benchmark, Item
from tpru.eval.prompts import PROMPTS, render_prompt
from tpru.extract import extract_answer
from tpru.files import write_text_atomic
from tpru.models.base import Backend, Request, Response
from tpru.progress import progress_bar

log = logging.getLogger("tpru.eval")

RUN_FILE = "run.json"
RESULTS_FILE = "results.jsonl"

IDENTITY = ("model", "benchmark", "benchmark_source", "split", "prompt", "seed",
            "max_new_tokens", "temperature")
"""run.json fields a resumed run must match: anything that changes an answer."""


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
    """

    path: Path
    items: int
    answered: int
    errors: int
    correct: int
    generated: int
    kept: int
    skipped: Mapping[str, int] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        """Correct over all items of the run (an item with an error counts as wrong)."""
        return self.correct / self.items if self.items else 0.0


def request_seed(seed: int, item_id: str) -> int:
    """The seed of one item's request: stable across batches, resumes and processes."""
    return zlib.crc32(f"{seed}:{item_id}".encode())


def run_eval(backend: Backend, benchmark: Benchmark, out: str | os.PathLike[str], *,
             prompt: str | None = None, limit: int | None = None, resume: bool = False,
             batch_size: int = 8, seed: int = 0, max_new_tokens: int = 1024,
             temperature: float = 0.0, show_progress: bool = True,
             backend_spec: str | None = None,
             backend_options: Mapping[str, Any] | None = None) -> RunSummary:
    """Run `backend` on `benchmark` into the run folder `out` (see the module docstring).

    Args:
        prompt: a name in `tpru.eval.prompts.PROMPTS`; None: the benchmark's own.
        limit: run only the first `limit` items (benchmark order).
        resume: continue the run already in `out`; without it an existing run is refused.
        batch_size: requests per `Backend.generate` call, and per flush.
        backend_spec, backend_options: how the backend was opened, for run.json.

    Raises:
        InputError: a bad argument, a run folder that does not match, a
            benchmark with duplicate ids.
    """
    prompt_name = prompt or benchmark.default_prompt
    if prompt_name not in PROMPTS:
        raise InputError(f"unknown prompt {prompt_name!r} (prompts: {', '.join(PROMPTS)})")
    if limit is not None and limit < 0:
        raise InputError(f"limit must be 0 or more, got {limit}")
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    folder = Path(out)
    info: dict[str, Any] = {
        "tpru_version": __version__, "model": backend.name,
        "backend": backend_spec or backend.name, "backend_options": dict(backend_options or {}),
        "benchmark": benchmark.name, "benchmark_source": benchmark.source,
        "split": benchmark.split, "prompt": prompt_name, "seed": seed, "limit": limit,
        "max_new_tokens": max_new_tokens, "temperature": temperature, "batch_size": batch_size,
    }
    earlier = _earlier_run(folder, info, resume)
    done = read_results(folder / RESULTS_FILE) if earlier is not None else {}

    skips = Skips()
    items = _unique(list(islice(benchmark.items(skips), limit)), benchmark)
    pending = [item for item in items if item.id not in done or done[item.id].get("error")]
    now = _now()
    info["started"] = earlier.get("started", now) if earlier else now
    info["resumed"] = [*earlier.get("resumed", []), now] if earlier else []
    info["finished"] = None
    folder.mkdir(parents=True, exist_ok=True)
    _write_info(folder, info, items, done, skips)
    if done:
        log.info("resuming %s: %d of %d items to run", folder, len(pending), len(items))

    generated = 0
    try:
        with (folder / RESULTS_FILE).open("a", encoding="utf-8") as handle, \
                progress_bar(f"{benchmark.name} · {backend.name}", show=show_progress,
                             unit="samples", total=len(pending)) as bar:
            for batch in _batches(pending, batch_size):
                requests = [Request(id=item.id, prompt=render_prompt(item, prompt_name),
                                    images=item.images, max_new_tokens=max_new_tokens,
                                    temperature=temperature, seed=request_seed(seed, item.id))
                            for item in batch]
                responses = backend.generate(requests)
                _check_responses(backend, requests, responses)
                records = [result_record(i, r) for i, r in zip(batch, responses, strict=True)]
                _append(handle, records, done)
                generated += len(batch)
                bar.advance(len(batch))
        info["finished"] = _now()
    finally:
        counts = _write_info(folder, info, items, done, skips)
    return RunSummary(path=folder, items=len(items), answered=counts["answered"],
                      errors=counts["errors"], correct=counts["correct"], generated=generated,
                      kept=len(items) - len(pending), skipped=dict(skips.counts))


def result_record(item: Item, response: Response) -> dict[str, Any]:
    """One line of ``results.jsonl`` for `item` answered by `response`."""
    prediction, rule = None, "none"
    if response.error is None:
        # a sequence item is read as letters in order, even where it lists options (LEGO sort)
        options = item.options if item.answer_form == "choice" else None
        extraction = extract_answer(response.text, options, item.sequence_length)
        prediction, rule = extraction.answer, extraction.rule
    return {
        "id": item.id, "benchmark": item.benchmark, "task": item.task,
        "category": item.category, "scenario": item.scenario, "negative": item.negative,
        "answerable": item.answerable, "counterpart": item.counterpart, "answer": item.answer,
        "prediction": prediction, "rule": rule,
        "correct": response.error is None and prediction == item.answer,
        "response": response.text, "error": response.error, "question": item.question,
        "options": None if item.options is None else list(item.options),
        "images": list(item.images), "usage": dict(response.usage),
    }


def read_results(path: Path) -> dict[str, dict[str, Any]]:
    """The latest result per item id in ``results.jsonl``; a half-written last line is cut off.

    A line that is not valid JSON is tolerated only at the end of the file
    (the process was killed while writing it): the file is truncated to the
    last complete line. Anywhere else it is an error naming the line.
    """
    if not path.is_file():
        return {}
    data = path.read_bytes()
    latest: dict[str, dict[str, Any]] = {}
    offset = 0
    for number, line in enumerate(data.splitlines(keepends=True), start=1):
        end = offset + len(line)
        try:
            record = json.loads(line) if line.strip() else None
            if record is not None and not (isinstance(record, dict) and "id" in record):
                raise ValueError("not a result object")
            complete = line.endswith(b"\n")
        except ValueError:  # json.JSONDecodeError, a bad encoding, not an object
            record, complete = None, False
        if record is None and not line.strip():
            offset = end
            continue
        if not complete:
            if end != len(data):
                raise InputError(f"{path}: line {number}: not a valid result line")
            log.warning("%s: line %d was half-written when the run stopped; dropped",
                        path, number)
            with path.open("r+b") as handle:
                handle.truncate(offset)
            break
        assert record is not None
        latest[str(record["id"])] = record
        offset = end
    return latest


def _earlier_run(folder: Path, info: Mapping[str, Any], resume: bool) -> dict[str, Any] | None:
    """The run.json already in `folder` when resuming it; refuse anything else there."""
    run_file = folder / RUN_FILE
    if not run_file.is_file():
        if folder.is_dir() and any(folder.iterdir()):
            raise InputError(f"{folder}: exists and is not a run folder (no {RUN_FILE}); "
                             "choose another --out")
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{folder}: exists and is not a folder")
        return None
    if not resume:
        raise InputError(f"{folder}: already holds a run; continue it with --resume, "
                         "or choose another --out")
    try:
        earlier = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{run_file}: not readable JSON ({err})") from None
    if not isinstance(earlier, dict):
        raise InputError(f"{run_file}: expected a JSON object")
    differ = [f"{key} {earlier.get(key)!r} (now {info[key]!r})" for key in IDENTITY
              if earlier.get(key) != info[key]]
    if differ:
        raise InputError(f"{folder}: cannot resume: the run used {'; '.join(differ)}")
    return earlier


def _unique(items: list[Item], benchmark: Benchmark) -> list[Item]:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise InputError(f"{benchmark.source}: item id {item.id!r} appears twice; "
                             "results are kept by id")
        seen.add(item.id)
    return items


def _batches(items: Sequence[Item], size: int) -> Iterator[Sequence[Item]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _check_responses(backend: Backend, requests: Sequence[Request],
                     responses: Sequence[Response]) -> None:
    got = [r.id for r in responses]
    if got != [r.id for r in requests]:
        raise RuntimeError(f"backend {backend.name} answered ids {got[:5]}... for requests "
                           f"{[r.id for r in requests][:5]}...: the protocol keeps the order")


def _append(handle: IO[str], records: Sequence[dict[str, Any]],
            done: dict[str, dict[str, Any]]) -> None:
    """Write a batch of lines in one call and flush, so a kill leaves at most one partial line."""
    lines = (json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)
    handle.write("".join(lines))
    handle.flush()
    for record in records:
        done[record["id"]] = record


def _write_info(folder: Path, info: dict[str, Any], items: Sequence[Item],
                done: Mapping[str, Mapping[str, Any]], skips: Skips) -> dict[str, int]:
    """Rewrite run.json (atomically) with the counts over the run's items; return the counts."""
    latest = [done[item.id] for item in items if item.id in done]
    counts = {
        "items": len(items),
        "answered": sum(1 for r in latest if not r.get("error")),
        "errors": sum(1 for r in latest if r.get("error")),
        "correct": sum(1 for r in latest if r.get("correct") is True),
        "skipped": sum(skips.counts.values()),
    }
    info["counts"] = counts
    info["skipped"] = skips.as_dict()
    write_text_atomic(folder / RUN_FILE, json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return counts


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
