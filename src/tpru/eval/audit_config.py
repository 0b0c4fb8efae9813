"""The settings of an audit: `AuditConfig`, and `AuditRunConfig` for ``tpru audit``.

`AuditConfig` is the ``audit:`` section of a build config (docs/building.md,
"Auditing the result"). The build command (`tpru.commands.build`) loads it
and runs the audit (`tpru.eval.audit.run_audit`) once the build is done; the
builder only records the section, resolved, in ``build.json``. Off by default.

`AuditRunConfig` is what ``tpru audit DATASET [CONFIG.yaml] [key=value ...]``
loads, and what every audit writes as ``audit.yaml`` in its folder: the same
``audit:`` section, and beside it the settings a build takes from its own
config (``seed``, and ``batch_size`` from ``model.batch_size``), so the keys
read as in a build config (``audit.max_lift=0.15 seed=1``). So that::

    tpru audit DATASET AUDIT/audit.yaml --model MODEL --out NEW_AUDIT

repeats an audit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
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


AUDIT_CONFIG_FILE = "audit.yaml"
"""An audit's `AuditRunConfig`, written into its folder."""


@dataclass(frozen=True)
class AuditRunConfig:
    """The settings of ``tpru audit``: an `AuditConfig` and the runs' generation settings.

    A build's audit takes the last three from the build config (``seed``,
    ``model.batch_size``, the dataset's own prompt); they stay out of
    `AuditConfig` so that a build config, its ``build.json`` and its
    ``--resume`` fingerprint are what they were.

    Attributes:
        audit: what is audited and how it is judged (``audit.model`` is
            ``tpru audit --model``'s, and its options the backend options).
        seed: the runs' seed, the image shuffling's and the bootstrap's.
        batch_size: requests per backend call and per flush of results.
        prompt: a name in `tpru.eval.prompts.PROMPTS`; None: the dataset's own (``tpru``).
    """

    audit: AuditConfig = field(default_factory=AuditConfig)
    seed: int = 0
    batch_size: int = 8
    prompt: str | None = None

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError(f"seed must be 0 or more, got {self.seed}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be 1 or more, got {self.batch_size}")


def write_audit_config(folder: Path, config: AuditRunConfig) -> Path:
    """Write `config` as `AUDIT_CONFIG_FILE` in the audit folder `folder`; return its path."""
    import yaml

    from tpru.config import to_dict
    from tpru.files import write_text_atomic

    path = folder / AUDIT_CONFIG_FILE
    header = ("# The settings of this audit (tpru audit). Repeat it with:\n"
              f"#   tpru audit DATASET AUDIT/{AUDIT_CONFIG_FILE} --model MODEL --out NEW_AUDIT\n")
    write_text_atomic(path, header + yaml.safe_dump(to_dict(config), sort_keys=False))
    return path
