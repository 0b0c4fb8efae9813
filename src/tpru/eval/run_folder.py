"""A run folder's files, and the checks that let a run resume only where it would end
with exactly the results of an uninterrupted one (see `tpru.eval.runner`).

- `earlier_run`: the run.json already in the folder, refused unless it
  names the same model, benchmark, split, prompt, seed and generation budget
  (`IDENTITY`; before the model is loaded, `SETTINGS`, with the backend spec
  for the model's name). A run.json from a tpru that did not record its split
  (``split`` null) is matched on its fingerprint instead.
- `read_items` and `check_benchmark`: the benchmark's items, and a
  `tpru.eval.items.items_fingerprint` of them compared with the one run.json
  recorded, so a benchmark that changed since the run began is refused and
  the same files under another path are accepted.
- `read_results`: the latest result per item, the file repaired (a
  half-written last line cut off, unreadable lines dropped and counted).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from itertools import islice
from pathlib import Path

from tpru.diagnostics import InputError, Skips
from tpru.eval.items import Benchmark, Item, items_fingerprint
from tpru.eval.report import RUN_FILE
from tpru.files import write_text_atomic
from tpru.records import ResultLine, RunRecord, SchemaVersionError

log = logging.getLogger("tpru.eval")

IDENTITY = ("model", "benchmark", "split", "prompt", "seed", "max_new_tokens", "temperature")
"""run.json fields a resumed run must match: anything that changes an answer (the
benchmark's content is compared by its fingerprint)."""

SETTINGS = ("backend", *(key for key in IDENTITY if key != "model"))
"""The `IDENTITY` fields known before the model is loaded: the backend as the user named
it stands for the model's name (``hf:PATH``, ``random``), which only the loaded backend
gives (``random(seed=1)``)."""


def source_location(source: str) -> str:
    """Where a benchmark is read from, as run.json keeps it: a local path resolved and
    absolute (the same folder under any spelling), a hub id as it is."""
    path = Path(source).expanduser()
    try:
        return str(path.resolve()) if path.exists() else source
    except OSError:  # a path too long or unreadable: keep it as given
        return source


def read_results(path: Path) -> dict[str, ResultLine]:
    """The latest result per item id in ``results.jsonl``, the file repaired for a resume.

    A line that is not valid JSON is tolerated only at the end of the file
    (the process was killed while writing it): the file is truncated to the
    last complete line. Anywhere else it is an error naming the line. A JSON
    line that ``tpru report`` could not read as a result (a required field
    missing, a field of the wrong type) is dropped with a warning that counts
    such lines, and the file is rewritten without it: its item runs again,
    and the finished run can always be reported. A line from a newer tpru
    (`SchemaVersionError`) is never dropped: the resume is refused.
    """
    if not path.is_file():
        return {}
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    latest: dict[str, ResultLine] = {}
    kept: list[str] = []
    dropped: list[str] = []
    end = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            end += len(line)
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except ValueError:  # json.JSONDecodeError, UnicodeDecodeError
            if number != len(lines):
                raise InputError(f"{path}: line {number}: not a valid result line") from None
            break  # half-written: cut off below
        if not line.endswith(b"\n"):
            break  # the last line, complete JSON but its newline never written: cut off too
        end += len(line)
        try:
            result = ResultLine.from_dict(record, f"line {number}")
        except SchemaVersionError as err:
            raise SchemaVersionError(f"{path}, {err}") from None
        except InputError as err:
            dropped.append(str(err))
            continue
        kept.append(line.decode("utf-8"))
        latest[result.id] = result
    if dropped:
        log.warning("%s: %d line%s not a readable result and dropped, so %s again "
                    "(the first: %s)", path, len(dropped),
                    " is" if len(dropped) == 1 else "s are",
                    "its item runs" if len(dropped) == 1 else "their items run", dropped[0])
        write_text_atomic(path, "".join(kept))
    elif end != len(data):
        log.warning("%s: line %d was half-written when the run stopped; dropped",
                    path, len(lines))
        with path.open("r+b") as handle:
            handle.truncate(end)
    return latest


def read_items(benchmark: Benchmark, limit: int | None, earlier: RunRecord | None,
                skips: Skips) -> tuple[list[Item], list[Item]]:
    """The run's items (the first `limit`), and the items to fingerprint.

    Those are the run's items, or more when an earlier part of the run read
    more (a longer limit): results kept from then are checked too. The
    extra items are read with skips of their own, not the run's.
    """
    items = unique_ids(list(islice(benchmark.items(skips), limit)), benchmark)
    recorded = earlier.benchmark_fingerprint if earlier else None
    covered = recorded.items if recorded else None
    if limit is None or len(items) < limit or covered is None or covered <= limit:
        return items, items
    return items, unique_ids(list(islice(benchmark.items(Skips()), covered)), benchmark)


def check_benchmark(folder: Path, earlier: RunRecord, location: str,
                     checked: Sequence[Item]) -> None:
    """Refuse a resume whose benchmark is not the one the run began on (by content)."""
    then = earlier.benchmark_source
    recorded = earlier.benchmark_fingerprint
    if recorded is None:  # written by a tpru before fingerprints: only the place can be compared
        if then is None or source_location(then) != location:
            raise InputError(f"{folder}: cannot resume: the run used benchmark_source {then!r} "
                             f"(now {location!r}), and its run.json, from an older tpru, has "
                             "no fingerprint to compare the content with; resume from the "
                             "folder the run was started in, or start a new --out")
        log.warning("%s: run.json (from an older tpru) has no benchmark fingerprint: the "
                    "results kept cannot be checked against the benchmark's content", folder)
        return
    covered = recorded.items
    if len(checked) < covered or items_fingerprint(checked[:covered]) != recorded.sha256:
        now = (f"it has {len(checked)} items, the run covered {covered}"
               if len(checked) < covered else f"its first {covered} items are not the same")
        unknown = ("; the run's split is not recorded (an older tpru): pass the --split it "
                   "scored, e.g. --split all for every split of a dataset folder"
                   if earlier.split is None else "")
        raise InputError(f"{folder}: cannot resume: the benchmark changed since the run began "
                         f"({now}; read from {location}){unknown}; start a new --out")
    if then != location:
        log.info("%s: the benchmark is read from %s now (the run began with %s); same content",
                 folder, location, then)


def earlier_run(folder: Path, info: RunRecord, resume: bool,
                keys: Sequence[str] = IDENTITY) -> RunRecord | None:
    """The run.json already in `folder` when resuming it, matching `info` on `keys`
    (`check_identity`); refuse anything else there."""
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
    earlier = RunRecord.load(run_file)
    check_identity(folder, earlier, info, keys)
    return earlier


def check_identity(folder: Path, earlier: RunRecord, info: RunRecord,
                   keys: Sequence[str]) -> None:
    """Refuse a resume whose run.json (`earlier`) differs from `info` on one of `keys`.

    ``backend`` is compared only where both name one (run.json from an older
    tpru may not), and a split that run.json did not record is left to the
    benchmark fingerprint (`_split_unrecorded`).
    """
    differ = [f"{key} {getattr(earlier, key)!r} (now {getattr(info, key)!r})"
              for key in keys
              if getattr(earlier, key) != getattr(info, key)
              and not _split_unrecorded(key, earlier)
              and not (key == "backend" and None in (earlier.backend, info.backend))]
    if differ:
        hint = (f"; pass --split {earlier.split} to continue it"
                if earlier.split not in (None, info.split) else "")
        raise InputError(f"{folder}: cannot resume: the run used {'; '.join(differ)}{hint}")


def _split_unrecorded(key: str, earlier: RunRecord) -> bool:
    """A run.json from a tpru that did not record which split it scored (``split`` null:
    a dataset folder's every split, or a hub benchmark's default). Its split is unknown,
    so the benchmark fingerprint, which covers every item and its split, decides."""
    return key == "split" and earlier.split is None \
        and earlier.benchmark_fingerprint is not None


def unique_ids(items: list[Item], benchmark: Benchmark) -> list[Item]:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise InputError(f"{benchmark.source}: item id {item.id!r} appears twice; "
                             "results are kept by id")
        seen.add(item.id)
    return items
