"""What the split grouping joined, and the warning when a scenario misses a split.

`split_report` is ``build.json``'s ``split_report``: episodes per scenario and
split, the groups the join rule made (the largest with the frames that hold
them together) and the images shared across splits without a leak. When a
split with a share above 0 gets no episode of a scenario (or none at all),
`warn_missing_scenarios` says why and what changes it: more episodes when the
scenario has too few, or the ``split.join_min_frames`` that keeps its
episodes apart when they are joined into too few groups. With ``--strict``
it is an error instead.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from tpru.builder.groups import UnionFind, group_episodes, group_scenarios
from tpru.builder.split import SharedImages, SplitPlan
from tpru.diagnostics import InputError, Skips

LARGEST_SHOWN = 3
"""Groups listed in the report, largest first."""

EPISODES_SHOWN = 10
"""Episode ids listed per group."""


def split_report(plan: SplitPlan, shared: SharedImages) -> dict[str, Any]:
    """The ``split_report`` entry of ``build.json`` (see the module docstring)."""
    by_scenario = {s: dict.fromkeys(plan.ratios, 0) for s in sorted(set(plan.scenarios))}
    for scenario, split in zip(plan.scenarios, plan.split_of, strict=True):
        by_scenario[scenario][split] += 1
    members = _members(plan.group_of)
    joined = [g for g in members if len(members[g]) > 1]
    apart_at = _apart_at(plan)
    pairs: Counter[int] = Counter()
    most: dict[int, int] = {}
    mask = plan.links.joined(plan.rule.min_frames)
    for a, n in zip(plan.links.first[mask].tolist(), plan.links.shared[mask].tolist(),
                    strict=True):
        group = plan.group_of[a]
        pairs[group] += 1
        most[group] = max(most.get(group, 0), n)
    scenario_of = group_scenarios(plan.group_of, plan.scenarios)
    largest = sorted(joined, key=lambda g: (-len(members[g]), g))[:LARGEST_SHOWN]
    return {
        "join_min_frames": plan.rule.min_frames,
        "episodes_by_scenario": by_scenario,
        "joined_groups": len(joined),
        "episodes_in_joined_groups": sum(len(members[g]) for g in joined),
        "largest_groups": [{
            "size": len(members[g]),
            "scenario": scenario_of[g],
            "split": plan.split_of[g],
            "episodes": [plan.episode_ids[e] for e in members[g][:EPISODES_SHOWN]],
            "joined_pairs": pairs[g],
            "most_shared_frames": most[g],
            "apart_at_join_min_frames": apart_at[g],
        } for g in largest],
        "shared_across_splits": {"images": shared.images, "examples": shared.examples},
    }


def warn_missing_scenarios(plan: SplitPlan, skips: Skips) -> None:
    """Warn about each split with a share above 0 that a scenario (or every one) misses.

    Raises:
        InputError: instead of warning, when `skips` is strict.
    """
    names = sorted(n for n, r in plan.ratios.items() if r > 0)
    present = set(zip(plan.scenarios, plan.split_of, strict=True))
    scenarios = sorted(set(plan.scenarios))
    if all((s, n) in present for s in scenarios for n in names):
        return
    fixes = _join_min_frames_fixes(plan, len(names))
    for split in names:
        head = f"split {split!r} (split.ratios {plan.ratios[split]:g})"
        if split not in plan.split_of:
            _warn(skips, f"empty split {split}",
                  f"{head} has no episodes: {_why_empty(plan, len(names), fixes)}")
            continue
        for scenario in scenarios:
            if (scenario, split) not in present:
                _warn(skips, f"scenario {scenario} missing from {split}",
                      f"scenario {scenario!r} has no episodes in {head}: "
                      f"{_why_missing(plan, scenario, len(names), fixes)}")


def _warn(skips: Skips, key: str, message: str) -> None:
    if skips.strict:
        raise InputError(f"{message} (--strict stops when a split misses a scenario)")
    skips.warn(key, message)


def _why_empty(plan: SplitPlan, needed: int, fixes: dict[str, int]) -> str:
    counts = Counter(plan.scenarios)
    able = [s for s in sorted(counts) if counts[s] >= needed]
    if not able:
        return (f"the {len(plan.scenarios)} episodes are too few: no scenario has the {needed} "
                f"episodes needed to reach each of the {needed} splits with a share above 0; "
                "add episodes")
    # Every such scenario is joined into too few groups: advise on the easiest to part.
    easiest = min(able, key=lambda s: (fixes.get(s, 1 << 30), s))
    return f"for scenario {easiest!r}, {_why_missing(plan, easiest, needed, fixes)}"


def _why_missing(plan: SplitPlan, scenario: str, needed: int, fixes: dict[str, int]) -> str:
    episodes = [e for e, s in enumerate(plan.scenarios) if s == scenario]
    if len(episodes) < needed:
        return (f"it has {len(episodes)} episode(s), and at least {needed} are needed to reach "
                f"each of the {needed} splits with a share above 0; add episodes of {scenario!r}")
    members = _members(plan.group_of)
    groups = sorted({plan.group_of[e] for e in episodes}, key=lambda g: (-len(members[g]), g))
    largest = groups[0]
    until = _apart_at(plan).get(largest)
    held = (f", held together by pairs that share {until - 1} or more frames of each"
            if until else "")
    advice = f"add episodes of {scenario!r}"
    threshold = fixes.get(scenario)
    if threshold is not None:
        advice = (f"set split.join_min_frames={threshold} so that only episodes sharing at "
                  f"least {threshold} frames are joined, or {advice}")
    return (f"its {len(episodes)} episodes are joined into {len(groups)} group(s) of episodes "
            f"that share identical or near-duplicate frames (the largest holds "
            f"{len(members[largest])}{held}), and a group goes to one split whole; {advice}")


def _members(group_of: Sequence[int]) -> dict[int, list[int]]:
    members: dict[int, list[int]] = defaultdict(list)
    for episode, group in enumerate(group_of):
        members[group].append(episode)
    return members


def _apart_at(plan: SplitPlan) -> dict[int, int]:
    """Per joined group, the least ``split.join_min_frames`` that no longer keeps it whole.

    Joining the strongest pairs first (Kruskal), the last join that completes
    a group is its weakest necessary link; one frame more breaks it.
    """
    links = plan.links
    joined = np.flatnonzero(links.joined(plan.rule.min_frames))
    order = joined[np.argsort(-links.shared[joined], kind="stable")]
    groups = UnionFind(len(plan.group_of))
    weakest: list[tuple[int, int]] = []
    for p in order.tolist():
        a, b, shared = int(links.first[p]), int(links.second[p]), int(links.shared[p])
        if groups.union(a, b):
            weakest.append((a, shared))
    apart: dict[int, int] = {}
    for a, shared in weakest:
        root = groups.find(a)
        apart[root] = min(apart.get(root, shared + 1), shared + 1)
    return apart


def _join_min_frames_fixes(plan: SplitPlan, needed: int) -> dict[str, int]:
    """Per scenario with `needed` episodes or more, the least ``split.join_min_frames``
    that gives it `needed` groups of its own (see `group_scenarios`)."""
    counts = Counter(plan.scenarios)
    wanted = {s for s, n in counts.items() if n >= needed}
    fixes: dict[str, int] = {}
    shared = plan.links.shared[plan.links.joined(plan.rule.min_frames)]
    for threshold in sorted({int(n) + 1 for n in shared.tolist()}):
        if wanted <= fixes.keys():
            break
        groups = group_episodes(plan.links, len(plan.group_of), threshold)
        owned = Counter(group_scenarios(groups, plan.scenarios).values())
        for scenario in sorted(wanted - fixes.keys()):
            if owned[scenario] >= needed:
                fixes[scenario] = threshold
    return fixes
