"""Episode groups: which episodes share frames, the groups the join rule makes, and the
split each group goes to.

`tpru.builder.split` finds the frame pairs (identical or near-duplicate images
of different episodes); here they become episode pairs (`link_episodes`),
groups (`group_episodes`) and, stratified by scenario, splits (`assign_splits`).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> bool:
        """Join the sets of a and b (the smaller root stays); False if they were one."""
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)
        return ra != rb


@dataclass(frozen=True)
class EpisodeLinks:
    """Episode pairs (``first < second``) with identical or near-duplicate frames.

    ``first_frames[i]`` counts the distinct frames of ``first[i]`` that have an
    identical or near-duplicate frame in ``second[i]``, and ``second_frames``
    the other way round; a pair *shares* the smaller of the two.
    """

    first: np.ndarray
    second: np.ndarray
    first_frames: np.ndarray
    second_frames: np.ndarray

    @property
    def shared(self) -> np.ndarray:
        return np.asarray(np.minimum(self.first_frames, self.second_frames))

    def joined(self, min_frames: int) -> np.ndarray:
        """Which pairs the rule joins: at least `min_frames` frames of each side."""
        return self.shared >= min_frames


def link_episodes(frame_episode: np.ndarray, pairs: np.ndarray) -> EpisodeLinks:
    """Count, per episode pair, the distinct frames of each side in the frame `pairs`."""
    episode_of = np.asarray(frame_episode, dtype=np.int64)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    ea, eb = episode_of[pairs[:, 0]], episode_of[pairs[:, 1]]
    swap = ea > eb
    key = (np.minimum(ea, eb) << 32) | np.maximum(ea, eb)

    def distinct(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.lexsort((frames, key))
        k, f = key[order], frames[order]
        first = np.ones(len(k), dtype=bool)
        first[1:] = (k[1:] != k[:-1]) | (f[1:] != f[:-1])
        keys, counts = np.unique(k[first], return_counts=True)
        return keys, np.asarray(counts, dtype=np.int64)

    keys, first_frames = distinct(np.where(swap, pairs[:, 1], pairs[:, 0]))
    _, second_frames = distinct(np.where(swap, pairs[:, 0], pairs[:, 1]))
    return EpisodeLinks(keys >> 32, keys & 0xFFFFFFFF, first_frames, second_frames)


def group_episodes(links: EpisodeLinks, n_episodes: int, min_frames: int) -> list[int]:
    """Group id (the smallest episode index in it) for each episode, joined by the rule."""
    groups = UnionFind(n_episodes)
    joined = links.joined(min_frames)
    for a, b in zip(links.first[joined].tolist(), links.second[joined].tolist(), strict=True):
        groups.union(a, b)
    return [groups.find(e) for e in range(n_episodes)]


def group_scenarios(group_of: Sequence[int], scenarios: Sequence[str]) -> dict[int, str]:
    """Each group's scenario: the most common among its episodes, ties by name."""
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for group, scenario in zip(group_of, scenarios, strict=True):
        counts[group][scenario] += 1
    return {g: min(c.items(), key=lambda item: (-item[1], item[0]))[0]
            for g, c in counts.items()}


def assign_splits(group_of: Sequence[int], episode_ids: Sequence[str],
                  ratios: Mapping[str, float], seed: int,
                  scenarios: Sequence[str] | None = None) -> list[str]:
    """Split name per episode: whole groups, stratified by scenario, in a seeded order.

    Each scenario's groups are dealt out in an order drawn from the seed (see
    `_deal`), so every scenario is split in about the ratios and which groups
    land where is random. A scenario with at least as many groups as there are
    splits with a share above 0 gives each of them at least one group: a
    scenario of a few episodes still reaches a 10% test split. Splits are
    ordered by share and name, so the mapping's order (YAML, JSON, overrides)
    does not matter.
    """
    names = sorted(n for n in ratios if ratios[n] > 0)
    share = {n: ratios[n] / sum(ratios[m] for m in names) for n in names}
    members: dict[int, list[int]] = defaultdict(list)
    for episode, group in enumerate(group_of):
        members[group].append(episode)
    of_group = group_scenarios(group_of, scenarios or [""] * len(group_of))
    strata: dict[str, list[int]] = defaultdict(list)
    for group in members:
        strata[of_group[group]].append(group)

    def rank(group: int) -> str:
        first = episode_ids[min(members[group])]
        return hashlib.sha256(f"{seed}:{first}".encode()).hexdigest()

    result = [""] * len(group_of)
    overall: Counter[str] = Counter()
    for scenario in sorted(strata):
        groups = sorted(strata[scenario], key=rank)
        size = {g: len(members[g]) for g in groups}
        for group, name in _deal(groups, size, share, overall).items():
            for episode in members[group]:
                result[episode] = name
    return result


def _deal(groups: list[int], size: Mapping[int, int], share: Mapping[str, float],
          overall: Counter[str]) -> dict[int, str]:
    """One scenario's `groups` (in seeded order) to splits; adds their episodes to `overall`.

    The smaller splits, smallest first, take each group in turn that brings them
    closer to their share; the largest split takes the rest. A split's share
    counts all scenarios dealt so far, so rounding in one scenario is made up
    in the next (four scenarios of 6 episodes at 25% give 6 test episodes, not 8).
    """
    names = sorted(share, key=lambda n: (share[n], n))
    done = sum(overall.values()) + sum(size.values())
    chosen: dict[int, str] = {}
    for name in names[:-1]:
        target = share[name] * done - overall[name]
        got = 0
        for group in groups:
            if group not in chosen and abs(got + size[group] - target) < abs(got - target):
                chosen[group] = name
                got += size[group]
    for group in groups:
        chosen.setdefault(group, names[-1])
    if len(groups) >= len(names):
        position = {g: i for i, g in enumerate(groups)}
        for name in names:
            if name not in chosen.values():  # too small for any group: it gets the smallest
                count = Counter(chosen.values())
                donor = max(names, key=lambda n: (count[n], share[n], n))
                group = min((g for g in groups if chosen[g] == donor),
                            key=lambda g: (size[g], position[g]))
                chosen[group] = name
    for group, name in chosen.items():
        overall[name] += size[group]
    return chosen
