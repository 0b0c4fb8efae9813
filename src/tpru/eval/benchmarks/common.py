"""What every benchmark loader shares: reading rows, finding columns, reading answers.

Rows come from one of:

- the Hugging Face hub, given an id ``owner/name`` that is not a local path
  (``datasets.load_dataset``; needs network or the hub cache);
- a local parquet file, or a folder of them (a hub snapshot: files whose name
  or folder starts with the split are picked when a split is given);
- a folder written by ``datasets.save_to_disk`` (a dataset or a dict of splits);
- a JSONL file (one object per line) or a JSON file holding a list;
- a TSV file (VLMEvalKit's format: LEGO-Puzzles, VLMEvalKit's ``MUIRBench.tsv``).

VLMEvalKit's layout puts the options in columns ``A``, ``B``, ... and may
let a row reuse another row's images; `option_columns` and `SharedImages`
read both for every loader that accepts it.
"""

from __future__ import annotations

import ast
import csv
import json
import logging
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpru.diagnostics import InputError, Skips, json_problem
from tpru.eval.items import ALL_SPLITS, Item
from tpru.registry import load

log = logging.getLogger("tpru.eval")

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class RowError(ValueError):
    """One row that cannot become an item; the loader counts it as a skip."""


@dataclass(frozen=True)
class SourceTable:
    """Rows of one benchmark source.

    Attributes:
        where: the file, folder or hub id, for messages.
        columns: the column names, to check before reading.
        rows: the rows as plain dicts, read lazily.
        base_dir: the folder relative image paths are resolved against.
    """

    where: str
    columns: tuple[str, ...]
    rows: Iterable[dict[str, Any]]
    base_dir: Path | None


def require(module: str, what: str) -> Any:
    """Import `module`, or fail with a one-line install hint naming `what` needs it."""
    return load(module, what=what, extra="eval")


def is_hub_id(source: str) -> bool:
    """True for ``owner/name`` that names no local file or folder."""
    return bool(_HUB_ID.match(source)) and not Path(source).exists()


def open_table(source: str, *, split: str | None, default_split: str | None = None) -> SourceTable:
    """Open `source` (a hub id or a local file/folder) as a `SourceTable`.

    Args:
        source: see the module docstring for the forms read.
        split: the split to read; None reads `default_split` from the hub, and
            every split (in order) from a local folder; `ALL_SPLITS` reads
            every split from either.
        default_split: the hub split read when `split` is None.
    """
    path = Path(source).expanduser()
    if split == ALL_SPLITS:
        split, default_split = None, None
    if not path.exists():
        if is_hub_id(source):
            return _hub_table(source, split or default_split)
        raise InputError(f"{source}: no such file or folder (nor a hub id owner/name)")
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            return _disk_table(path, split)
        files = _parquet_files(path, split)
        return _parquet_table(files, str(path), path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _parquet_table([path], str(path), path.parent)
    if suffix in (".jsonl", ".json"):
        return _json_table(path)
    if suffix == ".tsv":
        return read_tsv(path)
    raise InputError(f"{path}: unknown benchmark file type {suffix or '(none)'!r} "
                     "(expected .parquet, .jsonl, .json, .tsv, or a folder)")


def scored_split(source: str, split: str | None, default_split: str | None) -> str:
    """The split `open_table` reads, as run.json records it: `split` when named, else
    `default_split` from the hub, else `ALL_SPLITS` (every split, or a whole file)."""
    if split is not None:
        return split
    return (default_split if is_hub_id(source) else None) or ALL_SPLITS


def _parquet_files(folder: Path, split: str | None) -> list[Path]:
    files = sorted(folder.rglob("*.parquet"))
    if split is not None:
        files = [f for f in files
                 if f.name.startswith(split) or split in f.relative_to(folder).parts[:-1]]
    if not files:
        which = f" for split {split!r}" if split else ""
        raise InputError(f"{folder}: no parquet files{which} (and not a save_to_disk folder)")
    return files


def _parquet_table(files: Sequence[Path], where: str, base_dir: Path) -> SourceTable:
    pq = require("pyarrow.parquet", "reading parquet benchmarks")
    try:
        columns = tuple(pq.read_schema(files[0]).names)
    except Exception as err:  # pyarrow raises several types for a file that is not parquet
        raise InputError(f"{files[0]}: not a readable parquet file ({err})") from None

    def rows() -> Iterator[dict[str, Any]]:
        for file in files:
            try:
                for batch in pq.ParquetFile(file).iter_batches(batch_size=64):
                    yield from batch.to_pylist()
            except Exception as err:  # pyarrow's errors for a truncated or corrupt file
                raise InputError(f"{file}: not a readable parquet file ({err})") from None
    return SourceTable(where, columns, rows(), base_dir)


def _arrow_rows(dataset: Any) -> Iterator[dict[str, Any]]:
    # The arrow view keeps image columns as raw {"bytes", "path"} structs, so the
    # bytes are stored as published rather than decoded and re-encoded via PIL.
    arrow = dataset.with_format("arrow")
    for start in range(0, len(dataset), 64):
        yield from arrow[start:start + 64].to_pylist()


def _datasets_table(loaded: Any, where: str, split: str | None) -> SourceTable:
    if isinstance(getattr(loaded, "column_names", None), dict):  # a DatasetDict
        names = list(loaded.keys())
        chosen = [split] if split is not None else names
        missing = [s for s in chosen if s not in names]
        if missing:
            raise InputError(f"{where}: no split {missing[0]!r} (splits: {', '.join(names)})")
        parts = [loaded[s] for s in chosen]
    else:
        parts = [loaded]
    columns = tuple(parts[0].column_names)

    def rows() -> Iterator[dict[str, Any]]:
        for part in parts:
            yield from _arrow_rows(part)
    return SourceTable(where, columns, rows(), None)


def _disk_table(folder: Path, split: str | None) -> SourceTable:
    datasets = require("datasets", "reading a save_to_disk benchmark folder")
    try:
        loaded = datasets.load_from_disk(str(folder))
    except Exception as err:  # corrupt or foreign folder
        raise InputError(f"{folder}: not a readable save_to_disk folder ({err})") from None
    return _datasets_table(loaded, str(folder), split)


def _hub_table(hub_id: str, split: str | None) -> SourceTable:
    datasets = require("datasets", f"loading {hub_id} from the hub")
    try:
        loaded = datasets.load_dataset(hub_id, split=split)
    except Exception as err:  # offline, gated, unknown split: all reach the user as one line
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{hub_id}: no such local file or folder, and cannot load it from "
                         f"the hub ({first})") from None
    return _datasets_table(loaded, hub_id, None)


def hub_file(hub_id: str, suffix: str) -> Path | None:
    """Download the dataset repo's first file ending in `suffix` (e.g. a TSV).

    None when the repo has no such file or cannot be listed (offline): the
    caller then goes through ``datasets``, which reads its own cache offline
    and reports what went wrong.
    """
    hub = require("huggingface_hub", f"loading {hub_id} from the hub")
    try:
        names = sorted(n for n in hub.list_repo_files(hub_id, repo_type="dataset")
                       if n.lower().endswith(suffix))
        return Path(hub.hf_hub_download(hub_id, names[0], repo_type="dataset")) if names else None
    except Exception as err:  # offline, gated, unknown repo
        log.info("%s: no %s file from the hub (%s)", hub_id, suffix, err)
        return None


def _json_table(path: Path) -> SourceTable:
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise InputError(f"{path}: not readable JSON ({err})") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise InputError(f"{path}: expected a JSON list of objects")
        return SourceTable(str(path), _keys(data[:50]), iter(data), path.parent)
    head: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                head.append(_json_line(path, number, line))
            if len(head) >= 50:
                break

    def rows() -> Iterator[dict[str, Any]]:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield _json_line(path, number, line)
    return SourceTable(str(path), _keys(head), rows(), path.parent)


def _json_line(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: line {number}: not valid JSON "
                         f"({json_problem(err, line=False)})") from None
    if not isinstance(row, dict):
        raise InputError(f"{path}: line {number}: expected an object")
    return row


def _keys(rows: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(k for row in rows for k in row))


def read_tsv(path: Path) -> SourceTable:
    """A VLMEvalKit TSV: a header row, then one row per item; empty cells are None.

    The whole file is read at once: a row may reuse another row's image by
    naming its index, and that row may come later.
    """
    # Base64 image cells are far longer than csv's default field limit of 128 KiB.
    csv.field_size_limit(sys.maxsize)
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, delimiter="\t")
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path}: empty TSV file")
            rows = []
            for number, cells in enumerate(reader, start=2):
                if not any(cells):
                    continue
                if len(cells) != len(header):
                    raise InputError(f"{path}: line {number}: {len(cells)} cells for "
                                     f"{len(header)} columns")
                rows.append({k: v or None for k, v in zip(header, cells, strict=True)})
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"{path}: not a readable TSV file ({err})") from None
    return SourceTable(str(path), tuple(header), rows, path.parent)


def find_column(table: SourceTable, variants: Sequence[str], what: str, *,
                required: bool = True) -> str | None:
    """The first of `variants` (case-insensitive) among the table's columns.

    Raises `InputError` naming the file, what was looked for and the columns
    found, when `required` and none is present.
    """
    lowered = {c.lower(): c for c in table.columns}
    for name in variants:
        if name.lower() in lowered:
            return lowered[name.lower()]
    if required:
        raise InputError(f"{table.where}: no {what} column (looked for {', '.join(variants)}); "
                         f"columns found: {', '.join(table.columns) or 'none'}")
    return None


def text(value: Any) -> str | None:
    """A cell as stripped text; None for a missing or empty cell (and pandas' NaN)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    out = str(value).strip()
    return out or None


def as_list(value: Any) -> list[Any]:
    """A list cell: a list, a tuple, a JSON/Python list literal in text, or one value."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            try:
                parsed = ast.literal_eval(stripped)
            except (ValueError, SyntaxError):
                parsed = None
            if isinstance(parsed, (list, tuple)):
                return list(parsed)
        return [value]
    return [value]


OPTION_COLUMNS = "ABCDEFGHIJ"
"""The option columns of a VLMEvalKit multiple-choice TSV, in letter order."""


def option_columns(row: Mapping[str, Any], item_id: str) -> tuple[str, ...]:
    """The options of a VLMEvalKit row: columns A, B, ... up to the first empty one.

    Raises:
        RowError: a later column is filled after an empty one (a gap would shift
            every letter after it), or only option A is given (nothing to choose).
    """
    values = [text(row.get(letter)) for letter in OPTION_COLUMNS]
    count = next((i for i, v in enumerate(values) if v is None), len(values))
    if any(v is not None for v in values[count:]):
        raise RowError(f"item {item_id}: option {OPTION_COLUMNS[count]} is empty but a later "
                       "one is not")
    if count == 1:
        raise RowError(f"item {item_id}: only option A is given; an item needs at least two")
    return tuple(v for v in values[:count] if v is not None)


def has_option_columns(table: SourceTable) -> bool:
    """True for VLMEvalKit's layout: options in columns ``A`` and ``B`` (not one list)."""
    return {"A", "B"} <= set(table.columns)


class SharedImages:
    """VLMEvalKit's image reuse: a short ``image`` cell names the row whose images it shows.

    The whole table is indexed once (a TSV is read whole for this reason);
    a lazily read table (parquet, hub) cannot refer back and is left as is.
    """

    def __init__(self, table: SourceTable, id_column: str | None,
                 image_column: str | None) -> None:
        self._cells: dict[str, Any] = {}
        if isinstance(table.rows, list) and id_column and image_column:
            self._cells = {str(row.get(id_column)): row.get(image_column) for row in table.rows}

    def resolve(self, cell: Any) -> Any:
        """`cell`, or the images of the row it names (a short text equal to a row index)."""
        if isinstance(cell, str) and len(cell.strip()) < 16 and cell.strip() in self._cells:
            return self._cells[cell.strip()]
        return cell


_ANSWER_WRAPPING = re.compile(r"</?answer>|[\s\"'().\[\]]", re.IGNORECASE)


def gold_letters(value: Any) -> str:
    """The gold answer as capital letters ("C", "BDAC"), accepting "(c)", "<answer>C</answer>"."""
    raw = text(value)
    if raw is None:
        raise RowError("the answer is empty")
    letters = _ANSWER_WRAPPING.sub("", raw).upper()
    if not letters or not letters.isascii() or not letters.isalpha():
        raise RowError(f"answer {raw!r} is not option letters")
    return letters


def convert_rows(table: SourceTable, convert: Callable[[dict[str, Any], int], Item],
                 skips: Skips) -> Iterator[Item]:
    """`convert` each row (numbered from 1) into an item; a bad row is a counted skip."""
    for number, row in enumerate(table.rows, start=1):
        try:
            yield convert(row, number)
        except ValueError as err:  # RowError, or an Item that fails its own checks
            skips.skip("bad_row", f"{table.where}: row {number}: {err}")
