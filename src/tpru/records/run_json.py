"""An evaluation run's ``run.json``: what was run, when, and the counts so far."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tpru.records._fields import Fields, load_object


@dataclass(frozen=True)
class BenchmarkFingerprint:
    """What a run's benchmark held: a `tpru.eval.items.items_fingerprint` of its first `items`
    items, compared on resume so that a changed benchmark is refused."""

    items: int
    sha256: str


@dataclass(frozen=True)
class RunRecord:
    """A run folder's ``run.json`` (see `tpru.eval.runner` for how a run uses it).

    Every field reads as None (or empty) where the file does not have it: a
    run.json from an older tpru, or written by hand. The runner writes all of
    them. For run.json written by other tools, ``model``, ``backend`` and
    ``benchmark`` may also be objects with a ``name`` (or ``spec``), and are
    also read from ``model_name``, ``backend_spec``/``spec`` and
    ``benchmark_name``; what is kept is the text.

    Attributes:
        tpru_version: the tpru that ran it.
        model: the backend's model name; backend: the spec it was opened with
            (``hf:...``, ``random``); backend_options: the options it was given.
        benchmark: the benchmark's name; benchmark_source: where it was read
            (a local path resolved, a hub id as it is).
        split: the split scored (a name or ``all``); None where not recorded.
        prompt, seed, limit, max_new_tokens, temperature, batch_size: the
            run's settings.
        benchmark_fingerprint: the items covered, for a resume to compare.
        started: when the run began; resumed: one timestamp per ``--resume``;
            finished: when it ended, None while it runs or after it stopped early.
        counts: ``items, answered, errors, correct, skipped``.
        skipped: benchmark rows skipped as bad input: ``counts`` and
            ``examples`` by reason.
    """

    SCHEMA_VERSION: ClassVar[int] = 1
    """Written as ``schema_version``; a run.json without one is version 1."""

    tpru_version: str | None = None
    model: str | None = None
    backend: str | None = None
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    benchmark: str | None = None
    benchmark_source: str | None = None
    split: str | None = None
    prompt: str | None = None
    seed: int | None = None
    limit: int | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None
    batch_size: int | None = None
    benchmark_fingerprint: BenchmarkFingerprint | None = None
    started: str | None = None
    resumed: tuple[str, ...] = ()
    finished: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    skipped: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, keys in the order the runner has always written them."""
        fingerprint = self.benchmark_fingerprint
        return {
            "schema_version": self.SCHEMA_VERSION,
            "tpru_version": self.tpru_version, "model": self.model, "backend": self.backend,
            "backend_options": dict(self.backend_options), "benchmark": self.benchmark,
            "benchmark_source": self.benchmark_source, "split": self.split,
            "prompt": self.prompt, "seed": self.seed, "limit": self.limit,
            "max_new_tokens": self.max_new_tokens, "temperature": self.temperature,
            "batch_size": self.batch_size,
            "benchmark_fingerprint": None if fingerprint is None else
            {"items": fingerprint.items, "sha256": fingerprint.sha256},
            "started": self.started, "resumed": list(self.resumed), "finished": self.finished,
            "counts": dict(self.counts), "skipped": dict(self.skipped),
        }

    def dumps(self) -> str:
        """The file's text: indented JSON and a final newline."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RunRecord:
        """Read a ``run.json``; any error names the file (`InputError`)."""
        data, where = load_object(path)
        return cls.from_dict(data, where)

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> RunRecord:
        """Read a decoded ``run.json``; `where` (its path) starts any error's message."""
        run = Fields(data, where)
        run.check_version("run.json", cls.SCHEMA_VERSION)
        return cls(
            tpru_version=run.get("tpru_version", str, None),
            model=_name(run, "model", "model_name"),
            backend=_name(run, "backend", "backend_spec", "spec"),
            backend_options=run.get("backend_options", dict, {}),
            benchmark=_name(run, "benchmark", "benchmark_name"),
            benchmark_source=run.get("benchmark_source", str, None),
            split=run.get("split", str, None), prompt=run.get("prompt", str, None),
            seed=run.get("seed", int, None), limit=run.get("limit", int, None),
            max_new_tokens=run.get("max_new_tokens", int, None),
            temperature=run.number("temperature", None),
            batch_size=run.get("batch_size", int, None),
            benchmark_fingerprint=_fingerprint(run),
            started=run.get("started", str, None), resumed=run.texts("resumed", ()),
            finished=run.get("finished", str, None), counts=run.get("counts", dict, {}),
            skipped=run.get("skipped", dict, {}))


def _name(run: Fields, *keys: str) -> str | None:
    """The first of `keys` that holds text, or an object's ``name`` (or ``spec``)."""
    for key in keys:
        value = run.get(key, (str, dict), None)
        if isinstance(value, dict):
            value = value.get("name") or value.get("spec")
        if isinstance(value, str) and value:
            return value
    return None


def _fingerprint(run: Fields) -> BenchmarkFingerprint | None:
    value = run.get("benchmark_fingerprint", dict, None)
    if value is None:
        return None
    items, digest = value.get("items"), value.get("sha256")
    if isinstance(items, bool) or not isinstance(items, int) or not isinstance(digest, str):
        raise run.error("field 'benchmark_fingerprint': expected "
                        '{"items": N, "sha256": HEX}')
    return BenchmarkFingerprint(items, digest)
