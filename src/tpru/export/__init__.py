"""Exports of a built dataset to the formats trainers and evaluators read.

The table maps a target name to ``"module:function"``, loaded through
`tpru.registry`: the module is imported only when that target is used, so a
missing optional dependency (pyarrow, datasets, pandas: the ``export`` extra)
matters only to the user who exports.
Every exporter is called as ``export(dataset, out, *, splits=None, overwrite=False,
**options)`` and returns the files it wrote. Each writes into a temporary
folder beside ``out`` and moves it into place when complete. It refuses an
``out`` that is, contains or lies inside the dataset, and a non-empty ``out``
unless it is an earlier export (marked by tpru, see `tpru.files`) and
``overwrite=True``.

Example:
    >>> export_dataset("runs/demo", to="easyr1", out="exports/easyr1")  # doctest: +SKIP
    [PosixPath('exports/easyr1/format_prompt.jinja'), PosixPath('exports/easyr1/test.parquet'), ...]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tpru.dataset import Dataset
from tpru.diagnostics import InputError
from tpru.registry import check_options, load

EXPORTERS: dict[str, str] = {
    "easyr1": "tpru.export.easyr1:export",
    "verl": "tpru.export.verl:export",
    "trl": "tpru.export.trl:export",
    "vlmevalkit": "tpru.export.vlmevalkit:export",
    "hf": "tpru.export.hf:export",
}

Exporter = Callable[..., list[Path]]


def load_exporter(to: str) -> Exporter:
    """The export function named `to`, imported now; one-line errors for the user."""
    if to not in EXPORTERS:
        raise InputError(f"unknown export target {to!r} (targets: {', '.join(sorted(EXPORTERS))})")
    exporter: Exporter = load(EXPORTERS[to], what=f"export to {to!r}", extra="export")
    return exporter


def export_dataset(dataset_path: str | os.PathLike[str], to: str,
                   out: str | os.PathLike[str], splits: Sequence[str] | None = None,
                   **options: Any) -> list[Path]:
    """Export the dataset folder at `dataset_path` to target `to`, written at `out`.

    Args:
        dataset_path: a folder written by ``tpru build``.
        to: a name in `EXPORTERS`.
        out: the output folder (created; must be empty or missing, or an
            earlier export with ``overwrite=True`` among `options`).
        splits: the splits to export (default: all).
        options: the exporter's keyword options, e.g. ``embed_images=True``;
            an option it does not take is refused, naming the ones it does.

    Returns:
        the files written, at their final paths.
    """
    exporter = load_exporter(to)
    check_options(exporter, options, what=f"export to {to!r}", leading=2, fixed=["splits"])
    dataset = Dataset.open(dataset_path)
    return exporter(dataset, Path(out), splits=splits, **options)
