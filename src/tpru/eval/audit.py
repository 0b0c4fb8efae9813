"""The audit: how far a model gets above chance on a built dataset without looking.

A dataset built by ``tpru build`` should not be answerable from its text:
the negatives and distractors were designed so that the question, the
option wording and the answer letters give nothing away. The audit measures
that with controls, each a run of `tpru.eval.runner.run_eval`:

- ``blind``: the model with every image removed (`BlindBackend`);
- ``shuffled``: the model with each item's images in a seeded random order
  (one permutation of all of them, question and option images together,
  never the identity), so that the images no longer match the question;
- ``full``: the model as it is, for reference (never checked against the
  threshold: it is meant to be above chance).

A model that reads the images falls to chance under both shortcut controls;
whatever stays above chance comes from the text, the options or the answer
priors. Per item, chance is ``1/len(options)`` for a choice item and
``1/k!`` for a letter-sequence item of k images; a group's chance is the mean
over its items, and its **lift** is accuracy minus chance (fractions 0-1).

An audit is a folder::

    OUT/
      blind/        run folders (run.json, results.jsonl), resumable
      shuffled/
      audit.json    settings, every group's numbers, the failures, passed (`AuditRecord`)
      audit.md      a table per control, failures first
      audit.yaml    the settings it ran with (`AuditRunConfig`): ``tpru audit DATASET
                    OUT/audit.yaml --model MODEL --out NEW`` repeats it

Example:
    >>> config = AuditConfig(model="hf:Qwen/Qwen2.5-VL-7B-Instruct", split="test",
    ...                      max_lift=0.15)
    >>> result = run_audit("data/mine", config, "data/mine/audit")           # doctest: +SKIP
    >>> result.passed, [g.group for g in result.failures]                   # doctest: +SKIP
    (False, ['next_frame'])
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from tpru import __version__
from tpru.builder.config import ProbeConfig
from tpru.builder.probe_rules import ProbeItem
from tpru.builder.probes import leak_message, run_probes
from tpru.dataset import Dataset
from tpru.diagnostics import InputError, Skips
from tpru.eval import baselines
from tpru.eval.audit_config import AuditConfig, AuditRunConfig, write_audit_config
from tpru.eval.audit_result import AuditResult, failures_of, render_markdown
from tpru.eval.benchmarks import load_benchmark
from tpru.eval.config import EvalConfig
from tpru.eval.items import ALL_SPLITS, Benchmark, Item
from tpru.eval.report import bootstrap_intervals, load_run
from tpru.eval.runner import RUN_FILE, plan_run, run_eval
from tpru.files import write_text_atomic
from tpru.models import open_backend
from tpru.models.base import Backend
from tpru.models.baselines import BlindBackend
from tpru.paths import IMAGES_CACHE, cache_dir
from tpru.records import AuditGroup as AuditGroup  # a row of audit.json, defined with it
from tpru.records import AuditRecord, ResultLine

log = logging.getLogger("tpru.eval")

CONTROLS = ("blind", "shuffled", "full")
DEFAULT_CONTROLS = ("blind", "shuffled")

GROUPINGS = ("overall", "task", "scenario", "negative")
"""How a control's items are grouped, in report order (``negative``: positive vs negative)."""

AUDIT_FILE = "audit.json"
REPORT_FILE = "audit.md"
BOOTSTRAP_RESAMPLES = 1000


def chance(item: Item) -> float:
    """The accuracy of a uniform random answer to `item`.

    ``1/len(options)`` for a choice item (the None option counts as one);
    ``1/k!`` for a letter-sequence item whose answer orders k letters.
    """
    level = baselines.chance(item.options, item.answer, item.question)
    if level is None:
        raise ValueError(f"item {item.id!r}: a one-letter answer and no options: no chance level")
    return level


def shuffle_images(item: Item, seed: int) -> Item:
    """`item` with all its images in a random order drawn from (`seed`, item id).

    Question and option images are permuted together; with two or more
    images the permutation is never the identity (drawn uniformly among the
    others), so every such item shows its images in another order. The gold
    answer stays as it was.
    """
    order = list(range(len(item.images)))
    if len(order) < 2:
        return item
    rng = random.Random(hashlib.sha256(repr((seed, "shuffled", item.id)).encode()).digest())
    identity = list(order)
    while order == identity:
        rng.shuffle(order)
    return replace(item, images=tuple(item.images[i] for i in order))


def run_audit(dataset: str | os.PathLike[str], config: AuditConfig,
              out: str | os.PathLike[str], *, batch_size: int = 8, seed: int = 0,
              prompt: str | None = None, resume: bool = False, show_progress: bool = True,
              backend: Backend | None = None) -> AuditResult:
    """Run the controls of ``config.model`` on `dataset` into `out`; write the audit (module
    docstring). The backend, ``open_backend(config.model, **config.options)``, is opened
    once and shared by every control, so a large model is loaded once.

    Args:
        dataset: a dataset folder written by ``tpru build``.
        config: the audit's settings (`tpru.eval.audit_config.AuditConfig`): ``model``
            is a backend spec, not ``blind:`` (the blind control adds it); ``controls``
            run in their order; ``limit`` takes the same first items in every control.
        out: the audit folder; an existing one is refused unless `resume`.
        batch_size, prompt: as for `tpru.eval.runner.run_eval` (generation is greedy).
        seed: the runs' seed, the shuffling's and the bootstrap's.
        resume: continue the controls' runs already in `out`.
        show_progress: show a progress bar per control.
        backend: the model ``config.model`` names, already open (``tpru build``
            passes the one its model stages used); None opens it.

    Raises:
        InputError: a bad setting, a missing dataset or split, an `out`
            that holds something else, or a run that cannot be resumed.
    """
    if config.model is None:
        raise InputError("no model to audit with: set audit.model (tpru audit --model)")
    model = config.model
    chosen = check_settings(model, config.controls, config.limit, batch_size,
                            config.max_new_tokens, config.max_lift, config.min_samples, seed)
    saved = AuditRunConfig(audit=config, seed=seed, batch_size=batch_size, prompt=prompt)
    settings = EvalConfig(prompt=prompt, split=config.split, limit=config.limit,
                          batch_size=batch_size, seed=seed,
                          max_new_tokens=config.max_new_tokens)
    folder = Path(out)
    _check_folder(folder, resume)
    opened = Dataset.open(dataset)
    root = opened.root
    base = load_benchmark(f"dataset:{root}", cache_dir=cache_dir(IMAGES_CACHE),
                          split=config.split or ALL_SPLITS)
    skips = Skips()
    items = list(islice(base.items(skips), config.limit))
    if not items:
        raise InputError(f"{root}: no items to audit"
                         + (f" in split {config.split!r}" if config.split is not None else ""))

    options = dict(config.options)
    specs = {control: f"blind:{model}" if control == "blind" else model for control in chosen}
    # Every control's run folder is checked before the model loads: a resume that cannot
    # go on fails in a second, not after minutes of loading.
    plans = {control: plan_run(_control_benchmark(base, control, items, skips, seed),
                               folder / control, settings, resume=resume,
                               backend_spec=specs[control])
             for control in chosen}
    inner = backend if backend is not None else open_backend(model, **options)
    backends = {"blind": BlindBackend(inner), "shuffled": inner, "full": inner}
    groups: list[AuditGroup] = []
    runs: dict[str, dict[str, Any]] = {}
    for control in chosen:
        benchmark = _control_benchmark(base, control, items, skips, seed)
        summary = run_eval(backends[control], benchmark, folder / control, settings,
                           resume=resume, show_progress=show_progress,
                           backend_spec=specs[control], backend_options=options,
                           plan=plans[control])
        if summary.errors:
            log.warning("audit: %d items of the %s control failed in the backend and count as "
                        "wrong; run again with --resume to retry them", summary.errors, control)
        runs[control] = {"path": control, "items": summary.items, "errors": summary.errors}
        results = load_run(folder / control).results
        groups.extend(audit_groups(control, items, results, seed=seed))

    max_lift, min_samples = config.max_lift, config.min_samples
    failures = failures_of(groups, max_lift, min_samples)
    result = AuditResult(folder, tuple(groups), max_lift, min_samples, failures)
    probes = dataset_probes(opened)
    if probes["leaks"]:
        log.warning("audit: %s", leak_message(probes))
    record = AuditRecord(
        tpru_version=__version__, model=model, dataset=str(root.resolve()), controls=chosen,
        split=config.split, limit=config.limit, items=len(items), seed=seed, prompt=prompt,
        max_new_tokens=config.max_new_tokens, threshold=max_lift, min_samples=min_samples,
        runs=runs, probes=probes, groups=result.groups, failures=failures,
        passed=result.passed)
    write_text_atomic(folder / AUDIT_FILE, record.dumps())
    write_text_atomic(folder / REPORT_FILE, render_markdown(result, record.to_dict()))
    write_audit_config(folder, saved)
    return result


def audit_groups(control: str, items: Sequence[Item], results: Iterable[ResultLine], *,
                 seed: int = 0) -> list[AuditGroup]:
    """One control's `AuditGroup`s over `items`, scored by their `results`.

    Results of items not in `items` (an earlier run with a larger limit) are
    left out; an item without a result counts as wrong. Groups come in
    `GROUPINGS` order, sorted by name within a grouping; the intervals draw
    from a generator seeded with `seed`.
    """
    correct_ids = {r.id for r in results if r.correct}
    members: dict[tuple[str, str], list[Item]] = {}
    for item in items:
        for key in _cells(item):
            members.setdefault(key, []).append(item)
    keys = sorted(members, key=lambda key: (GROUPINGS.index(key[0]), key[1]))
    sizes = [len(members[key]) for key in keys]
    correct = [sum(item.id in correct_ids for item in members[key]) for key in keys]
    low, high = bootstrap_intervals(correct, sizes, resamples=BOOTSTRAP_RESAMPLES,
                                    rng=np.random.default_rng(seed))
    groups = []
    for index, (by, name) in enumerate(keys):
        accuracy = correct[index] / sizes[index]
        level = sum(chance(item) for item in members[(by, name)]) / sizes[index]
        groups.append(AuditGroup(control, by, name, sizes[index], correct[index], accuracy,
                                 level, accuracy - level, float(low[index]) / 100,
                                 float(high[index]) / 100))
    return groups


def dataset_probes(dataset: Dataset) -> dict[str, Any]:
    """The model-free probes (`tpru.builder.probes`) on every choice sample of `dataset`,
    with the thresholds its build used (the defaults for an older dataset)."""
    config = dataset.info.config.get("probes") or {}
    defaults = ProbeConfig()
    items = [item for split in dataset.splits for sample in dataset.samples(split)
             if (item := ProbeItem.from_sample(sample, split)) is not None]
    return run_probes(items, max_lift=config.get("max_lift", defaults.max_lift),
                      min_samples=config.get("min_samples", defaults.min_samples))


def check_settings(model: str, controls: Sequence[str] | str, limit: int | None,
                   batch_size: int, max_new_tokens: int, max_lift: float | None,
                   min_samples: int, seed: int) -> tuple[str, ...]:
    """The controls to run, without repeats; refuse any setting that cannot work.

    ``tpru audit`` checks its options with it before building its config, so
    a bad option is refused with these messages (`AuditConfig` has its own).

    Raises:
        InputError: the first setting that cannot work, in one line.
    """
    if isinstance(controls, str):
        controls = controls.split(",")
    chosen = tuple(dict.fromkeys(c.strip() for c in controls))
    unknown = [c for c in chosen if c not in CONTROLS]
    if unknown or not chosen:
        raise InputError(f"unknown control {', '.join(map(repr, unknown)) or 'none given'} "
                         f"(controls: {', '.join(CONTROLS)})")
    if model.partition(":")[0] == "blind":
        raise InputError(f"model {model!r}: name the model itself; the blind control "
                         "removes the images")
    if limit is not None and limit < 1:
        raise InputError(f"the limit must be 1 or more, got {limit}")
    if batch_size < 1 or max_new_tokens < 1:
        raise InputError(f"the batch size and max new tokens must be 1 or more, got "
                         f"{batch_size} and {max_new_tokens}")
    if max_lift is not None and not 0.0 <= max_lift <= 1.0:
        raise InputError(f"the maximum lift is a fraction between 0 and 1 (0.15 for 15 "
                         f"points), got {max_lift}")
    if min_samples < 0:
        raise InputError(f"min samples must be 0 or more, got {min_samples}")
    if seed < 0:  # numpy's bootstrap refuses it, after every control has run
        raise InputError(f"the seed must be 0 or more, got {seed}")
    return chosen


def _check_folder(folder: Path, resume: bool) -> None:
    """Refuse an `out` that holds anything but an audit, or an audit when not resuming."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder")
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    is_audit = (folder / AUDIT_FILE).is_file() or any(
        (folder / control / RUN_FILE).is_file() for control in CONTROLS)
    if not is_audit:
        raise InputError(f"{folder}: exists and is not an audit folder; choose another --out")
    if not resume:
        raise InputError(f"{folder}: already holds an audit; continue it with --resume, "
                         "or choose another --out")


def _control_benchmark(base: Benchmark, control: str, items: Sequence[Item], skips: Skips,
                       seed: int) -> Benchmark:
    """The items already read, as the benchmark one control runs (shuffled: permuted)."""

    def read(run_skips: Skips) -> Iterator[Item]:
        run_skips.add(skips.counts, skips.examples)  # the rows skipped when they were read
        for item in items:
            yield shuffle_images(item, seed) if control == "shuffled" else item

    name = f"{base.name}+shuffled-images" if control == "shuffled" else base.name
    return Benchmark(name=name, source=base.source, split=base.split,
                     default_prompt=base.default_prompt, read=read)


def _cells(item: Item) -> list[tuple[str, str]]:
    """The (grouping, group) pairs one item counts in."""
    cells = [("overall", "overall"), ("task", item.task)]
    if item.scenario:
        cells.append(("scenario", item.scenario))
    if item.negative is not None:
        cells.append(("negative", "negative" if item.negative else "positive"))
    return cells
