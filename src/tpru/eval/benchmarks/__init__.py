"""Benchmarks the evaluation runner reads, named on the command line.

The table maps a name to ``"module:load"``, loaded through `tpru.registry`:
the module is imported only when that benchmark is used. Every loader is
called as ``load(source, *, cache_dir, split)`` with `source` a hub id or
local path (None: the benchmark's hub id) and returns a
`tpru.eval.items.Benchmark`.

Names accepted by `load_benchmark` (``--bench``):

- ``muirbench``, ``lego-puzzles``, ``tpru-test``: read from the hub;
- ``NAME:PATH`` or ``NAME:OWNER/REPO``: the same format from a local file or
  folder (parquet, ``save_to_disk``, JSONL, TSV), or another hub repo;
- ``dataset:PATH``, or a bare ``PATH`` holding ``build.json``: a dataset
  folder written by ``tpru build``.

Example:
    >>> bench = load_benchmark("dataset:demo/dataset", cache_dir="cache")  # doctest: +SKIP
    >>> next(bench.items()).task  # doctest: +SKIP
    'ordering'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from tpru.dataset import BUILD_FILE
from tpru.diagnostics import InputError
from tpru.eval.items import Benchmark
from tpru.registry import load

BENCHMARKS: dict[str, str] = {
    "tpru-test": "tpru.eval.benchmarks.tpru_test:load",
    "muirbench": "tpru.eval.benchmarks.muirbench:load",
    "lego-puzzles": "tpru.eval.benchmarks.lego_puzzles:load",
}

DATASET_LOADER = "tpru.eval.benchmarks.tpru_dataset:load"
"""The loader of a dataset folder written by ``tpru build`` (``dataset:PATH``)."""

Loader = Callable[..., Benchmark]


def _import(target: str, name: str) -> Loader:
    loader: Loader = load(target, what=f"benchmark {name!r}", extra="eval")
    return loader


def load_benchmark(name_or_path: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str],
                   split: str | None = None) -> Benchmark:
    """The benchmark named `name_or_path` (see the module docstring for the forms).

    Args:
        name_or_path: ``NAME``, ``NAME:SOURCE``, ``dataset:PATH`` or a dataset folder.
        cache_dir: where images that arrive as bytes are written, named by
            content hash; shared by every benchmark and run.
        split: the split to read, or ``all`` (`tpru.eval.items.ALL_SPLITS`)
            for every split. None is the benchmark's default: its own split
            from the hub (``test``), every split of a local file or folder in
            a benchmark's format, and the ``test`` split of a dataset folder
            (an error where it has none). The `Benchmark` names the split read.

    Raises:
        InputError: an unknown name, or a path that is not a dataset folder.
    """
    spec = os.fspath(name_or_path)
    name, sep, source = spec.partition(":")
    cache = Path(cache_dir)
    if sep and name == "dataset":
        return _import(DATASET_LOADER, name)(source, cache_dir=cache, split=split)
    if name in BENCHMARKS:
        return _import(BENCHMARKS[name], name)(source or None, cache_dir=cache, split=split)
    if (Path(spec) / BUILD_FILE).is_file():
        return _import(DATASET_LOADER, "dataset")(spec, cache_dir=cache, split=split)
    names = ", ".join(sorted(BENCHMARKS))
    if Path(spec).exists():
        raise InputError(f"{spec}: not a tpru dataset folder (no {BUILD_FILE}); name the "
                         f"benchmark format as NAME:{spec} (NAME one of {names})")
    raise InputError(f"unknown benchmark {spec!r} (benchmarks: {names}; or NAME:PATH, "
                     "dataset:PATH, or a dataset folder)")
