"""An audit's ``audit.json``: its settings, every group's numbers, the failures, the verdict."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from tpru.records._fields import Fields, load_object


@dataclass(frozen=True)
class AuditGroup:
    """One control's numbers on one group of items (fractions 0-1): a row of audit.json.

    Attributes:
        control: ``blind``, ``shuffled`` or ``full``.
        by: the grouping: ``overall``, ``task``, ``scenario`` or ``negative``.
        group: the group's name (``overall``, ``next_frame``, ``robot``, ``negative``...).
        n: items in the group; correct: how many the control answered right.
        accuracy: correct / n; chance: the mean chance of the group's items.
        lift: accuracy - chance.
        low, high: the 95% bootstrap interval of the accuracy.
    """

    control: str
    by: str
    group: str
    n: int
    correct: int
    accuracy: float
    chance: float
    lift: float
    low: float
    high: float

    @classmethod
    def from_dict(cls, data: Any, where: str) -> AuditGroup:
        row = Fields(data, where)
        return cls(control=row.get("control", str), by=row.get("by", str),
                   group=row.get("group", str), n=row.get("n", int),
                   correct=row.get("correct", int), accuracy=row.number("accuracy"),
                   chance=row.number("chance"), lift=row.number("lift"),
                   low=row.number("low"), high=row.number("high"))


@dataclass(frozen=True)
class AuditRecord:
    """An audit folder's ``audit.json``, written by `tpru.eval.audit.run_audit`.

    Every field is required when reading except those that may be null
    (``split``, ``limit``, ``prompt``, ``threshold``, ``tpru_version``):
    audit.json has carried all of them since its version 1.

    Attributes:
        tpru_version: the tpru that ran it.
        model: the backend spec audited; dataset: the dataset folder (resolved).
        controls: the controls run, in order.
        split: the split audited, None for every split; limit: the item limit.
        items: items per control; seed: the runs', shuffling's and bootstrap's.
        prompt: the prompt name, None for the dataset's own.
        max_new_tokens: the generation budget.
        threshold: the maximum lift checked (``max_lift``), None when unchecked.
        min_samples: groups with fewer items never fail.
        runs: per control, its run folder (``path``), ``items`` and ``errors``.
        probes: the dataset's model-free probes (`tpru.builder.probes`).
        groups: every control x group; failures: those above the threshold.
        passed: no group failed.
    """

    SCHEMA_VERSION: ClassVar[int] = 1
    """Written as ``schema_version``; audit.json has carried it from the start."""

    model: str
    dataset: str
    controls: tuple[str, ...]
    items: int
    seed: int
    max_new_tokens: int
    min_samples: int
    passed: bool
    tpru_version: str | None = None
    split: str | None = None
    limit: int | None = None
    prompt: str | None = None
    threshold: float | None = None
    runs: Mapping[str, Any] = field(default_factory=dict)
    probes: Mapping[str, Any] = field(default_factory=dict)
    groups: tuple[AuditGroup, ...] = ()
    failures: tuple[AuditGroup, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, keys in the order the audit has always written them."""
        return {
            "schema_version": self.SCHEMA_VERSION, "tpru_version": self.tpru_version,
            "model": self.model, "dataset": self.dataset, "controls": list(self.controls),
            "split": self.split, "limit": self.limit, "items": self.items, "seed": self.seed,
            "prompt": self.prompt, "max_new_tokens": self.max_new_tokens,
            "threshold": self.threshold, "min_samples": self.min_samples,
            "runs": dict(self.runs), "probes": dict(self.probes),
            "groups": [asdict(g) for g in self.groups],
            "failures": [asdict(g) for g in self.failures], "passed": self.passed,
        }

    def dumps(self) -> str:
        """The file's text: indented JSON and a final newline."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AuditRecord:
        """Read an ``audit.json``; any error names the file (`InputError`)."""
        data, where = load_object(path)
        return cls.from_dict(data, where)

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> AuditRecord:
        """Read a decoded ``audit.json``; `where` (its path) starts any error's message."""
        audit = Fields(data, where)
        audit.check_version("audit.json", cls.SCHEMA_VERSION)
        return cls(
            tpru_version=audit.get("tpru_version", str, None),
            model=audit.get("model", str), dataset=audit.get("dataset", str),
            controls=audit.texts("controls"), split=audit.get("split", str, None),
            limit=audit.get("limit", int, None), items=audit.get("items", int),
            seed=audit.get("seed", int), prompt=audit.get("prompt", str, None),
            max_new_tokens=audit.get("max_new_tokens", int),
            threshold=audit.number("threshold", None),
            min_samples=audit.get("min_samples", int), runs=audit.get("runs", dict),
            probes=audit.get("probes", dict), groups=_groups(audit, "groups"),
            failures=_groups(audit, "failures"), passed=audit.get("passed", bool))


def _groups(audit: Fields, key: str) -> tuple[AuditGroup, ...]:
    prefix = f"{audit.where}: " if audit.where else ""
    return tuple(AuditGroup.from_dict(row, f"{prefix}{key}[{i}]")
                 for i, row in enumerate(audit.get(key, list)))
