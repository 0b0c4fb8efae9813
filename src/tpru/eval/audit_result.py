"""What an audit found (`AuditResult`), which of its groups are checked and failed, and
``audit.md`` (`render_markdown`); `tpru.eval.audit` runs the audit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpru.builder.probes import probes_markdown
from tpru.records import AuditGroup

SHORTCUT_CONTROLS = ("blind", "shuffled")
"""The controls a model should be at chance under; only these are checked against max_lift."""


@dataclass(frozen=True)
class AuditResult:
    """What `run_audit` found.

    Attributes:
        path: the audit folder.
        groups: every control x group, controls in the order run.
        max_lift: the threshold the groups were checked against (None: not checked).
        min_samples: groups with fewer items are never failures (too noisy).
        failures: shortcut-control groups with ``n >= min_samples`` and
            ``lift > max_lift``, the largest lift first.
    """

    path: Path
    groups: tuple[AuditGroup, ...]
    max_lift: float | None
    min_samples: int
    failures: tuple[AuditGroup, ...]

    @property
    def passed(self) -> bool:
        """No group failed (always true when no threshold was given)."""
        return not self.failures

    @property
    def checked(self) -> tuple[AuditGroup, ...]:
        """The groups held against `max_lift`: those of a blind or shuffled control with
        at least `min_samples` items (none when no threshold was given). Empty with a
        threshold, the audit passed without checking anything: too few items."""
        if self.max_lift is None:
            return ()
        return checked_groups(self.groups, self.min_samples)


def checked_groups(groups: Iterable[AuditGroup], min_samples: int) -> tuple[AuditGroup, ...]:
    """The groups of a shortcut control with at least `min_samples` items."""
    return tuple(g for g in groups if g.control in SHORTCUT_CONTROLS and g.n >= min_samples)


def failures_of(groups: Iterable[AuditGroup], max_lift: float | None,
              min_samples: int) -> tuple[AuditGroup, ...]:
    """The checked groups whose lift is above `max_lift`, the largest first (none when
    `max_lift` is None)."""
    if max_lift is None:
        return ()
    # A margin for rounding: 0.35 - 0.2 is 0.15000000000000002, not above 0.15.
    failed = [g for g in checked_groups(groups, min_samples) if g.lift > max_lift + 1e-9]
    return tuple(sorted(failed, key=lambda g: -g.lift))


def unchecked_message(result: AuditResult) -> str | None:
    """Why an audit with a threshold checked nothing (no blind or shuffled group had
    `min_samples` items), or None when it checked something or had no threshold."""
    if result.max_lift is None or result.checked:
        return None
    largest = max((g.n for g in result.groups if g.control in SHORTCUT_CONTROLS), default=0)
    return (f"nothing was checked against max_lift {result.max_lift:g}: no blind or shuffled "
            f"group has min_samples {result.min_samples} items (the largest has {largest}); "
            "audit more items or lower min_samples")


def describe(group: AuditGroup, max_lift: float | None = None) -> str:
    """One group in words, e.g. "blind gets 41.0% on task next_frame (chance 20.0%, ...)"."""
    where = {"overall": "all items", "task": f"task {group.group}",
             "scenario": f"scenario {group.group}",
             "negative": f"{group.group} samples"}.get(group.by, f"{group.by} {group.group}")
    limit = f" > {100 * max_lift:.1f}" if max_lift is not None else ""
    return (f"{group.control} gets {100 * group.accuracy:.1f}% on {where} "
            f"(chance {100 * group.chance:.1f}%, lift {100 * group.lift:.1f} points{limit}, "
            f"n={group.n})")


def render_markdown(result: AuditResult, settings: Mapping[str, Any]) -> str:
    """``audit.md``: the settings, the failures, then one table per control (percent)."""
    split = settings.get("split") or "every split"
    lines = [f"# Audit of {settings['dataset']}", "",
             f"Model `{settings['model']}`; {split}; {settings['items']} items"
             f"{' (limit)' if settings.get('limit') is not None else ''}; seed {settings['seed']}.",
             "", "Lift is accuracy minus chance, in points. Chance per item is 1/options for a "
             "choice and 1/k! for a letter order of k images; a group's chance is the mean "
             "over its items. Blind: every image removed; shuffled: each item's images in a "
             "random order; full: the model as it is (never checked).", ""]
    if result.max_lift is None:
        lines += ["No threshold was given: nothing was checked.", ""]
    else:
        rule = (f"lift above {100 * result.max_lift:.1f} points in a group of at least "
                f"{result.min_samples} items")
        lines += ["## Failures", ""]
        unchecked = unchecked_message(result)
        lines += ([f"- {describe(g, result.max_lift)}" for g in result.failures]
                  or [f"None, but {unchecked}." if unchecked
                      else f"None: no group has a {rule}."])
        if result.failures:
            lines += ["", f"A failure is a {rule}."]
        lines.append("")
    for control in dict.fromkeys(g.control for g in result.groups):
        lines += [f"## {control}", "", f"Run folder: `{control}/`", "",
                  "| grouping | group | n | accuracy | chance | lift | 95% interval |",
                  "|---|---|---:|---:|---:|---:|---|"]
        lines += [f"| {g.by} | {g.group} | {g.n} | {100 * g.accuracy:.1f}% | "
                  f"{100 * g.chance:.1f}% | {100 * g.lift:+.1f} | "
                  f"{100 * g.low:.1f}-{100 * g.high:.1f}% |"
                  for g in result.groups if g.control == control]
        lines.append("")
    probes = settings.get("probes")
    if isinstance(probes, dict):
        lines += ["## Model-free probes", "",
                  "Rules that never see an image, on every choice sample of the dataset "
                  "(docs/building.md, 'Data that needs the images'); chance is what their "
                  "answers would score if texts and provenance said nothing.", "",
                  probes_markdown(probes)]
    return "\n".join(lines)
