"""Streaming rows into parquet files and Hugging Face datasets.

Rows are written in batches, so an export of tens of thousands of samples
with embedded images never holds more than one batch in memory. Hugging Face
datasets are built from an Arrow file written here and memory-mapped, rather
than through ``datasets``' own cache, so an export leaves nothing behind in
``~/.cache`` and cannot pick up a stale cached copy.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_BATCH_SIZE = 128
"""Rows per batch (and per parquet row group): about 900 images when embedded."""


def _batches(rows: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def write_parquet(path: Path, rows: Iterable[Mapping[str, Any]], schema: pa.Schema, *,
                  batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Write `rows` (dicts matching `schema`) to a parquet file; return the row count."""
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        for batch in _batches(rows, batch_size):
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
        if count == 0:
            writer.write_table(schema.empty_table())
    return count


def build_hf_dataset(rows: Iterable[Mapping[str, Any]], features: datasets.Features,
                     arrow_path: Path, *, split: str,
                     batch_size: int = DEFAULT_BATCH_SIZE) -> datasets.Dataset:
    """A `datasets.Dataset` of `rows`, backed by an Arrow file written at `arrow_path`.

    Each row is encoded by `features` (an image given as ``{"bytes", "path"}``
    is stored as is). The caller deletes `arrow_path` once the dataset has been
    saved elsewhere.
    """
    schema = features.arrow_schema
    with pa.OSFile(str(arrow_path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for batch in _batches(rows, batch_size):
            encoded = [features.encode_example(dict(row)) for row in batch]
            writer.write_table(pa.Table.from_pylist(encoded, schema=schema))
    return datasets.Dataset.from_file(str(arrow_path), split=datasets.NamedSplit(split))


@contextmanager
def quiet_progress() -> Iterator[None]:
    """Silence ``datasets``' progress bars for the block; tpru reports progress itself."""
    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()
