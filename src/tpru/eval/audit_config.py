"""The settings of an audit that ``tpru build`` runs on the dataset it finished.

The ``audit:`` section of a build config (docs/building.md, "Auditing the
result"). The build command (`tpru.commands.build`) loads it and runs the
audit (`tpru.eval.audit.run_audit`) once the build is done; the builder only
records the section, resolved, in ``build.json``. Off by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AuditConfig:
    """An audit of the finished dataset for text-only shortcuts (``tpru audit``).

    Attributes:
        model: the backend spec to audit with; None: no audit. When it equals
            ``model.name``, the model stages' open backend is used again.
        options: backend options for `model`; empty: ``model.options`` when
            `model` equals ``model.name``, else none.
        controls: ``blind`` (no images), ``shuffled`` (each sample's images in a
            random order) and/or ``full`` (the model as is, for reference).
        split: the split audited; None: every split.
        limit: audit only the first N samples of each control.
        max_lift: fail the build (exit status 1; the dataset is kept, with its
            ``audit/`` report) when a control's accuracy in a task, scenario or
            positive/negative group is more than this above chance (0-1).
            None: report only.
        min_samples: groups with fewer samples never fail the build (too noisy).
        max_new_tokens: generation budget per answer (the dataset's think/answer
            prompt asks for reasoning first).
    """

    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    controls: tuple[str, ...] = ("blind", "shuffled")
    split: str | None = None
    limit: int | None = None
    max_lift: float | None = None
    min_samples: int = 20
    max_new_tokens: int = 1024

    def __post_init__(self) -> None:
        if self.max_lift is not None and not 0.0 <= self.max_lift <= 1.0:
            raise ValueError("audit.max_lift must be between 0 and 1")
        unknown = [c for c in self.controls if c not in ("blind", "shuffled", "full")]
        if unknown or not self.controls:
            raise ValueError("audit.controls must name blind, shuffled and/or full")
        if self.limit is not None and self.limit < 1:
            raise ValueError("audit.limit must be at least 1")
