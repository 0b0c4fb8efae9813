"""A dataset's ``build.json``: how it was built and what the build found."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tpru.records._fields import Fields, load_object
from tpru.schema import SCHEMA_VERSION as SAMPLE_SCHEMA_VERSION


@dataclass(frozen=True)
class BuildRecord:
    """A dataset folder's ``build.json``, written last by `tpru.builder.pipeline`.

    The stable top-level fields are typed; the reports inside (``config``,
    ``counts``, ``split_report``, ``probes``, ``drops``, ``model_stages``)
    grow with the builder and stay plain JSON objects, described where they
    are made. Every field reads as empty (or None) where the file lacks it:
    a small build.json written by hand still opens as a dataset.

    Attributes:
        tpru_version: the tpru that built it.
        seed: the seed of every random choice.
        config: the resolved `tpru.builder.config.BuildConfig`, without the
            settings that do not change the output (workers, ...).
        splits: split names in the order written (one ``SPLIT.jsonl`` each).
        counts: episodes, frames, images and samples kept and dropped.
        split_report: episodes per scenario and split, joined groups, images
            shared across splits (`tpru.builder.split_report`).
        probes: the model-free shortcut probes (`tpru.builder.probes`).
        drops: dropped inputs, frames, episodes and samples, by reason.
        drop_examples: a few messages per drop reason.
        warnings: one line per kind of input used with a warning.
        model_stages: what the model stages decided; None without them (and
            then not written).
        engine: where pass 1 ran when not on this machine's processes: the Ray
            engine's ``name``, ``address``, ``cpus`` and ``nodes`` (episodes and
            frames each node measured); None for the local engine (and then not
            written, so a local build's build.json is as it always was).
        content_hash: SHA-256 over the split files and image names
            (`tpru.builder.pipeline.content_hash`); None only before the build
            is finished (and then not written).
    """

    SCHEMA_VERSION: ClassVar[int] = SAMPLE_SCHEMA_VERSION
    """A dataset folder has one version, for its samples and its build.json
    (`tpru.schema.SCHEMA_VERSION`): it is the ``schema_version`` build.json has
    always carried. A build.json without one is version 1."""

    tpru_version: str | None = None
    seed: int | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    splits: tuple[str, ...] = ()
    counts: Mapping[str, Any] = field(default_factory=dict)
    split_report: Mapping[str, Any] = field(default_factory=dict)
    probes: Mapping[str, Any] = field(default_factory=dict)
    drops: Mapping[str, Any] = field(default_factory=dict)
    drop_examples: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    model_stages: Mapping[str, Any] | None = None
    engine: Mapping[str, Any] | None = None
    content_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (`dumps` sorts its keys)."""
        data: dict[str, Any] = {
            "schema_version": self.SCHEMA_VERSION, "tpru_version": self.tpru_version,
            "seed": self.seed, "config": dict(self.config), "splits": list(self.splits),
            "counts": dict(self.counts), "split_report": dict(self.split_report),
            "probes": dict(self.probes), "drops": dict(self.drops),
            "drop_examples": dict(self.drop_examples), "warnings": list(self.warnings),
        }
        if self.model_stages is not None:
            data["model_stages"] = dict(self.model_stages)
        if self.engine is not None:
            data["engine"] = dict(self.engine)
        if self.content_hash is not None:
            data["content_hash"] = self.content_hash
        return data

    def dumps(self) -> str:
        """The file's text: indented JSON, keys sorted, and a final newline."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BuildRecord:
        """Read a ``build.json``; any error names the file (`InputError`)."""
        data, where = load_object(path)
        return cls.from_dict(data, where)

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> BuildRecord:
        """Read a decoded ``build.json``; `where` (its path) starts any error's message."""
        build = Fields(data, where)
        build.check_version("build.json", cls.SCHEMA_VERSION)
        return cls(
            tpru_version=build.get("tpru_version", str, None),
            seed=build.get("seed", int, None), config=build.get("config", dict, {}),
            splits=build.texts("splits", ()), counts=build.get("counts", dict, {}),
            split_report=build.get("split_report", dict, {}),
            probes=build.get("probes", dict, {}), drops=build.get("drops", dict, {}),
            drop_examples=build.get("drop_examples", dict, {}),
            warnings=build.texts("warnings", ()),
            model_stages=build.get("model_stages", dict, None),
            engine=build.get("engine", dict, None),
            content_hash=build.get("content_hash", str, None))
