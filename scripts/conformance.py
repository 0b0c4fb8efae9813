"""Run tpru's adapters on files from the public releases, and print what each read.

    python scripts/conformance.py ../shared/fixtures [--only habitat,sharerobot]

The unit tests read small files the project writes in each release's layout;
this script reads the fetched files themselves (``real/``: files from public
releases, ``derived/``: assembled from formats confirmed in public code; each
folder's SOURCES.md says which is which), to find where the adapters and the
releases disagree. It is not part of the test suite: the fixtures live
outside the repository.

`CHECKS` maps a fixture to the adapter that reads it, with its options. Some
releases leave out what tpru needs (VLN-CE ships no frames, the ShareRobot
README entry names a placeholder image, the GUI Odyssey probe has no
screenshots); a check's `prepare` lays the fixture out in a scratch folder and
writes stand-in images there, and the report says so. Per check it prints
what was read (episodes, frames, the first episode's id and description),
the skips by reason with an example, the log lines the adapter wrote, and
whether a ``--strict`` read passes; an adapter that refuses its input prints
its one-line error. Adapters with no fixture and fixtures no check reads are
listed at the end.

Benchmark loaders run with ``runner="benchmark"``: per fixture, the items
read, the tasks and categories they fall in (LEGO-Puzzles: each released
``category`` label and the paper's task and ability level it maps to), the
first item's prompt in the benchmark's own protocol, and the skips. To add
another kind of adapter, write a runner ``(check, path, options) ->
list[str]`` and add it to `RUNNERS`, then add rows with ``runner="<its
name>"`` to `CHECKS`.

Exit status: 0, or 1 when an adapter failed with anything but its one-line
error (`InputError`): a crash is a bug, refused input is a result.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tpru.diagnostics import InputError, Skips, first_line
from tpru.eval.benchmarks import BENCHMARKS
from tpru.sources import SOURCES, open_source

SHOWN = 5
"""Log lines shown per check (the rest are counted)."""
WIDTH = 400
"""Longest text printed on one line."""


@dataclass(frozen=True)
class Prepared:
    """A fixture laid out for reading: the path to give the adapter, options, and what
    was added to the release's files (printed, so no one mistakes it for the release)."""

    path: Path
    options: dict[str, Any] = field(default_factory=dict)
    added: str = ""


Prepare = Callable[[Path, Path], Prepared]
"""``prepare(fixture, scratch) -> Prepared``: lay `fixture` out under `scratch`."""


@dataclass(frozen=True)
class Check:
    """One adapter on one fixture.

    Attributes:
        target: the adapter's name in its table (a source kind for ``runner="source"``).
        fixture: the file or folder, relative to the fixtures folder.
        what: what the fixture is, for the report.
        runner: which of `RUNNERS` runs it.
        options: the adapter's options.
        prepare: lays the fixture out in a scratch folder first (see `Prepared`).
    """

    target: str
    fixture: str
    what: str
    runner: str = "source"
    options: dict[str, Any] = field(default_factory=dict)
    prepare: Prepare | None = None


# ---------------------------------------------------------------- stand-in files


def stand_in_image(path: Path, seed: int) -> Path:
    """A small, sharp PNG at `path` (distinct per `seed`), standing in for a real frame."""
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    Image.fromarray(blocks).resize((96, 72), Image.Resampling.NEAREST).save(path, "PNG")
    return path


def _link(source: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, path)
    except OSError:
        shutil.copyfile(source, path)


def habitat_rendered(fixture: Path, scratch: Path) -> Prepared:
    """val_seen with one stand-in frame per ground-truth action in ``frames_dir``, as a
    replay of each episode's actions in habitat-sim would give."""
    split = fixture / "val_seen"
    with gzip.open(split / "val_seen_gt.json.gz", "rt", encoding="utf-8") as handle:
        truth = json.load(handle)
    pool = [stand_in_image(scratch / "pool" / f"{i}.png", i) for i in range(16)]
    frames_dir = scratch / "frames"
    for n, (episode_id, entry) in enumerate(truth.items()):
        for step in range(len(entry["actions"])):
            _link(pool[(n + step) % len(pool)],
                  frames_dir / "val_seen" / episode_id / f"{step:03d}.png")
    return Prepared(split, {"frames_dir": str(frames_dir)},
                    f"stand-in frames for {len(truth)} episodes (one per ground-truth action)")


def sharerobot_hub_layout(fixture: Path, scratch: Path) -> Prepared:
    """The README entry as the hub lays out planning annotations: ``planning/train/``
    and ``planning/jsons/`` (train and test again), with a stand-in for its image."""
    planning = scratch / "planning"
    for folder in ("train", "jsons"):
        (planning / folder).mkdir(parents=True)
        shutil.copyfile(fixture, planning / folder / "future_prediction_task.json")
    (planning / "test").mkdir()
    (planning / "test" / "future_prediction_task.json").write_text("[]", encoding="utf-8")
    images = set()
    for entry in json.loads(fixture.read_text(encoding="utf-8")):
        images.update(entry["image"])
    for n, image in enumerate(sorted(images)):
        stand_in_image(planning / "images" / image.lstrip("/"), n)
    return Prepared(planning, {"image_root": str(planning / "images")},
                    "hub layout planning/{train,test,jsons}/ (jsons repeats train); "
                    f"stand-ins for {len(images)} image path(s)")


def gui_odyssey_screenshots(fixture: Path, scratch: Path) -> Prepared:
    """The derived annotation with stand-in screenshots in ``screenshots/part1/``, as on
    the hub before preprocessing.py flattens them (derived/SOURCES.md)."""
    data = scratch / "data"
    shutil.copytree(fixture / "data", data, copy_function=shutil.copyfile)
    for folder in (data, *data.rglob("*")):  # copied read-only, like the fixtures
        if folder.is_dir():
            folder.chmod(0o755)
    count = 0
    for annotation in sorted((data / "annotations").glob("*.json")):
        for step in json.loads(annotation.read_text(encoding="utf-8"))["steps"]:
            stand_in_image(data / "screenshots" / "part1" / step["screenshot"], count)
            count += 1
    return Prepared(data, {"split_file": "random_split.json", "split": "train"},
                    f"{count} stand-in screenshots in screenshots/part1/")


# ---------------------------------------------------------------- the table

CHECKS: tuple[Check, ...] = (
    Check("habitat", "real/vln-ce/R2R_VLNCE_v1-3_preprocessed",
          "VLN-CE R2R release as published (no frames; embeddings.json.gz at the root)"),
    Check("habitat", "real/vln-ce/R2R_VLNCE_v1-3_preprocessed",
          "VLN-CE R2R val_seen, frames rendered", prepare=habitat_rendered),
    Check("sharerobot", "real/sharerobot/planning_readme_entry.json",
          "ShareRobot README planning entry as published (placeholder image path)"),
    Check("sharerobot", "real/sharerobot/planning_readme_entry.json",
          "ShareRobot README planning entry in the hub layout",
          prepare=sharerobot_hub_layout),
    Check("gui-odyssey", "derived/gui-odyssey",
          "GUI Odyssey annotation and split file (derived), train side",
          prepare=gui_odyssey_screenshots),
    Check("muirbench", "derived/muirbench/test-00000-of-00001.parquet",
          "MuirBench hub parquet layout (derived)", runner="benchmark"),
    Check("muirbench", "derived/muirbench/MUIRBench_vlmeval_layout.tsv",
          "MuirBench in VLMEvalKit's MUIRBench.tsv layout (derived)", runner="benchmark"),
    Check("lego-puzzles", "derived/lego-puzzles/lego_vlmeval_layout.tsv",
          "LEGO-Puzzles VLMEvalKit TSV with the 12 released category labels (derived)",
          runner="benchmark"),
)


# ---------------------------------------------------------------- runners


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """The messages logged to ``tpru`` meanwhile (not shown on the terminal)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(f"{record.levelname} {record.getMessage()}")

    logger = logging.getLogger("tpru")
    handler, level, propagate = Collect(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def run_source(check: Check, path: Path, options: dict[str, Any]) -> list[str]:
    """Read every episode of a source, then again with ``--strict``; a report."""
    spec = f"{check.target}:{path}"
    skips = Skips()
    with captured_logs() as logged:
        try:
            episodes = list(open_source(spec, skips=skips,
                                        options={check.target: options}).iter_episodes())
        except InputError as err:
            return [f"error: {first_line(err)}"]
    frames = sum(len(e.frames) for e in episodes)
    lines = [f"episodes {len(episodes):,}, frames {frames:,}"]
    if episodes:
        first = episodes[0]
        lines.append(f"first: {first.id!r}, {len(first.frames)} frames, "
                     f"description {first.description!r}")
        if first.steps:
            more = " ..." if len(first.steps) > 3 else ""
            lines.append(f"  steps: {list(first.steps[:3])}{more}")
        lines.append(f"  meta: {json.dumps(first.meta, default=str)}")
    for reason, count in sorted(skips.counts.items()):
        lines.append(f"skipped {reason}: {count:,} (e.g. {skips.examples[reason][0]})")
    for summary in skips.warning_summary():
        lines.append(f"warning: {summary}")
    lines.append(f"log lines: {len(logged)}")
    lines.extend(f"  | {line}" for line in logged[:SHOWN])
    if len(logged) > SHOWN:
        lines.append(f"  | ... {len(logged) - SHOWN} more")
    with captured_logs():
        try:
            for _ in open_source(spec, skips=Skips(strict=True),
                                 options={check.target: options}).iter_episodes():
                pass
            lines.append("strict: passes")
        except InputError as err:
            lines.append(f"strict: stops: {first_line(err)}")
    return lines


def run_benchmark(check: Check, path: Path, options: dict[str, Any]) -> list[str]:
    """Read every item of a benchmark file with tpru's loader; a report of what it made of
    the file: items, tasks and categories (with each released label's mapping, where the
    loader keeps it in ``meta["label"]``), the first item's prompt, and the skips."""
    from collections import Counter

    from tpru.eval.benchmarks import load_benchmark
    from tpru.eval.benchmarks.lego_puzzles import paper_task
    from tpru.eval.prompts import render_prompt

    skips = Skips()
    with captured_logs() as logged, tempfile.TemporaryDirectory() as cache:
        try:
            bench = load_benchmark(f"{check.target}:{path}", cache_dir=cache)
            items = list(bench.items(skips))
        except InputError as err:
            return [f"error: {first_line(err)}"]
        prompt = render_prompt(items[0], bench.default_prompt) if items else ""
    lines = [f"items {len(items):,}, split {bench.split}, images "
             f"{sum(len(i.images) for i in items):,}, prompt {bench.default_prompt!r}"]
    tasks = Counter(item.task for item in items)
    lines.append("tasks: " + ", ".join(f"{t} {n}" for t, n in sorted(tasks.items())))
    categories = Counter(str(item.category) for item in items)
    lines.append("categories: " + ", ".join(f"{c} {n}" for c, n in sorted(categories.items())))
    labels = {str(i.meta["label"]): (i.task, i.category) for i in items if "label" in i.meta}
    for label, (task, category) in labels.items():
        mapped = f"-> {task} ({category})" if paper_task(label) else "unmapped: kept as the task"
        lines.append(f"  label {label} {mapped}")
    if items:
        first = items[0]
        lines.append(f"first: {first.id!r}, {first.answer_form}, {len(first.images)} images, "
                     f"answer {first.answer}, answerable {first.answerable}, "
                     f"counterpart {first.counterpart}")
        lines.append(f"  prompt: {prompt!r}")
    for reason, count in sorted(skips.counts.items()):
        lines.append(f"skipped {reason}: {count:,} (e.g. {skips.examples[reason][0]})")
    lines.append(f"log lines: {len(logged)}")
    lines.extend(f"  | {line}" for line in logged[:SHOWN])
    return lines


RUNNERS: dict[str, Callable[[Check, Path, dict[str, Any]], list[str]]] = {
    "source": run_source,
    "benchmark": run_benchmark,
}
"""How to run a check, by `Check.runner`."""


# ---------------------------------------------------------------- main


def clip(text: str, paths: dict[str, str]) -> str:
    """`text` on one line, its long paths shortened to the names in `paths`."""
    for path, name in paths.items():
        text = text.replace(path, name)
    return text if len(text) <= WIDTH else text[:WIDTH - 3] + "..."


def run(check: Check, root: Path) -> tuple[list[str], bool]:
    """The report of one check, and whether it crashed."""
    fixture = root / check.fixture
    with tempfile.TemporaryDirectory(prefix="tpru-conformance-") as scratch:
        paths = {str(Path(scratch).resolve()): "<scratch>", scratch: "<scratch>",
                 str(root.resolve()): "<fixtures>"}
        try:
            prepared = check.prepare(fixture, Path(scratch)) if check.prepare \
                else Prepared(fixture)
            lines = [f"prepared: {prepared.added}"] if prepared.added else []
            lines += RUNNERS[check.runner](check, prepared.path,
                                           {**check.options, **prepared.options})
            crashed = False
        except Exception as err:  # a crash is what this script is here to show
            where = traceback.extract_tb(err.__traceback__)[-1]
            lines = [f"CRASH: {type(err).__name__}: {first_line(err)} "
                     f"({Path(where.filename).name}:{where.lineno})"]
            crashed = True
        return [clip(line, paths) for line in lines], crashed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fixtures", type=Path, help="the fixtures folder (real/, derived/)")
    parser.add_argument("--only", default="", help="comma-separated adapter names to run")
    args = parser.parse_args(argv)
    root: Path = args.fixtures.absolute()
    if not root.is_dir():
        parser.error(f"{root}: no such folder")
    only = {name for name in args.only.split(",") if name}
    crashed = False
    checked: set[str] = set()
    for check in CHECKS:
        if only and check.target not in only:
            continue
        print(f"== {check.target}: {check.fixture} ({check.what})")
        if not (root / check.fixture).exists():
            print("   no such fixture")
            continue
        checked.add(check.target)
        lines, crash = run(check, root)
        crashed |= crash
        for line in lines:
            print("   " + line)
    missing = sorted(name for name in (*SOURCES, *BENCHMARKS) if name not in checked
                     and (not only or name in only))
    if missing:
        print(f"== adapters with no fixture here: {', '.join(missing)}")
    mapped = [root / check.fixture for check in CHECKS]
    unread = sorted(str(path.relative_to(root)) for path in root.rglob("*")
                    if path.is_file() and path.name != "SOURCES.md"
                    and not any(path == m or m in path.parents for m in mapped))
    if unread and not only:
        print(f"== fixtures no check reads: {', '.join(unread)}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
