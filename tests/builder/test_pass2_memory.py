"""Pass 2 with flat memory: what it keeps on disk gives exactly what memory gave.

The probe items are streamed to a `ProbeLog` and scored from it, the neighbour
indexes are on disk and the per-frame columns memory-mapped; each is checked
here against the in-memory reference on random data, exact equality.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hidden_imports import hide_module

import tpru.builder.candidates as candidates
import tpru.builder.split as split
from tpru.builder.candidates import FrameTable, NeighbourIndex
from tpru.builder.describe import DescriptionPool, normalise_text
from tpru.builder.drafts import KeptEpisode
from tpru.builder.embed import normalise_rows
from tpru.builder.episode_notes import EpisodeNotes
from tpru.builder.episodes import EpisodeUse, EpisodeWriter
from tpru.builder.probes import (
    PROBES,
    ProbeItem,
    ProbeLog,
    Rule,
    _prior,
    _TaskStats,
    run_probes,
    total_variation,
    wilson,
)
from tpru.builder.split import (
    JoinRule,
    LeakageError,
    SharedImages,
    check_leakage,
    frame_links,
    plan_splits,
)
from tpru.schema import NONE_OPTION

# ---------------------------------------------------------------- probes


def _random_items(rng: random.Random, n: int, splits: Sequence[str]) -> list[ProbeItem]:
    items = []
    for i in range(n):
        task = rng.choice(["ordering", "next_frame", "prev_frame"])
        episode = f"e{rng.randrange(n // 3 + 1)}"
        if task == "ordering":
            orders = {" ".join(rng.sample("1234", 4)) for _ in range(4)}
            options = [*orders, NONE_OPTION]
            candidates = None
        else:
            options = ["<image>"] * 4 + [NONE_OPTION]
            candidates = tuple(
                None if o == NONE_OPTION else
                {"episode": rng.choice([episode, f"e{rng.randrange(9)}"]),
                 "frame": rng.randrange(20), "scenario": rng.choice(["a", "b"])}
                for o in options)
        rng.shuffle(options)
        gold = rng.randrange(len(options))
        items.append(ProbeItem(f"{episode}/{i}/{task}", rng.choice(splits), task, episode,
                               rng.choice(["a", "b"]), tuple(options), gold,
                               candidates))
    return items


def _reference(items: list[ProbeItem], max_lift: float, min_samples: int) -> dict[str, Any]:
    """The probes over items held in a list: each probe's folds in turn, as before."""

    def folds(task_items: list[ProbeItem]) -> list[tuple[list[ProbeItem], list[ProbeItem]]]:
        train = [i for i in task_items if i.split == "train"]
        rest = [i for i in task_items if i.split != "train"]
        if train and rest:
            return [(train, rest)]
        halves: tuple[list[ProbeItem], list[ProbeItem]] = ([], [])
        for item in task_items:
            halves[hashlib.sha256(item.episode_id.encode()).digest()[0] % 2].append(item)
        return [(halves[0], halves[1]), (halves[1], halves[0])]

    def fit(probe: Any, fit_on: list[ProbeItem]) -> Rule:
        if probe.rule is not None:
            return probe.rule  # type: ignore[no-any-return]
        learner = probe.learner()
        for item in fit_on:
            learner.add(item)
        return learner.rule()  # type: ignore[no-any-return]

    tasks: dict[str, Any] = {}
    leaks = []
    for task in sorted({i.task for i in items}):
        task_items = [i for i in items if i.task == task]
        with_none = [i for i in task_items if i.none is not None]
        share = sum(i.negative for i in with_none) / len(with_none) if with_none else 0.0
        report: dict[str, Any] = {"n": len(task_items), "negative_share": round(share, 4),
                                  "probes": {}}
        own = _TaskStats()
        for item in task_items:
            own.add(item)
        if own.own[True] or own.own[False]:
            report["own_episode_tv"] = round(total_variation(own.own[True], own.own[False]), 4)
        for probe in PROBES:
            pairs = folds(task_items) if probe.learned else [(task_items, task_items)]
            n, right, chance = 0, 0.0, 0.0
            for fit_on, answer_on in pairs:
                rule = fit(probe, fit_on)
                for item in answer_on:
                    picked = rule(item)
                    if picked:
                        n += 1
                        right += (item.gold in picked) / len(picked)
                        chance += sum(_prior(item, i, share) for i in picked) / len(picked)
            if n == 0:
                continue
            low, high = wilson(right, n)
            result: dict[str, Any] = {
                "n": n, "accuracy": round(right / n, 4), "chance": round(chance / n, 4),
                "low": round(low, 4), "high": round(high, 4),
                "lift": round(right / n - chance / n, 4), "within": low <= chance / n,
                "reads": probe.reads, "reference": probe.reference}
            result["leaks"] = bool(not probe.reference and len(task_items) >= min_samples
                                   and round(right / n - chance / n, 4) > max_lift
                                   and not low <= chance / n)
            if result["leaks"]:
                leaks.append(f"{task}/{probe.name}")
            report["probes"][probe.name] = result
        tasks[task] = report
    return {"max_lift": max_lift, "min_samples": min_samples, "leaks": leaks, "tasks": tasks}


@pytest.mark.parametrize("splits", [("train", "test"), ("test",), ("train", "val", "test")])
@pytest.mark.parametrize("seed", [0, 1])
def test_probes_read_back_from_the_log_score_exactly_as_in_memory(
        tmp_path: Path, splits: tuple[str, ...], seed: int) -> None:
    items = _random_items(random.Random(seed), 900, splits)
    with ProbeLog(tmp_path / "probes.jsonl") as log:
        for item in items:
            log.add(item)
    assert list(log) == items
    streamed = run_probes(log, max_lift=0.0, min_samples=10)
    assert streamed == _reference(items, 0.0, 10)
    assert run_probes(iter(items), max_lift=0.0, min_samples=10) == streamed
    assert streamed["tasks"]  # the comparison saw every task
    assert all(len(t["probes"]) >= 4 for t in streamed["tasks"].values())


# ---------------------------------------------------------------- neighbour index




@pytest.mark.parametrize("with_faiss", [True, False])
def test_an_index_on_disk_finds_exactly_what_the_index_in_memory_finds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_faiss: bool) -> None:
    if with_faiss:
        pytest.importorskip("faiss")
    else:
        hide_module(monkeypatch, "faiss")
    rng = np.random.default_rng(3)
    # Many exact copies, so equal scores (ties) are common.
    base = normalise_rows(rng.normal(size=(60, 24)))
    table = base[rng.integers(0, 60, size=3000)]
    table[::5] = normalise_rows(rng.normal(size=(600, 24)))
    ranges = [range(0, 700), range(900, 1850), range(2000, 2999)]
    rows = np.concatenate([np.arange(r.start, r.stop) for r in ranges])
    in_memory = NeighbourIndex(table[rows], rows.astype(np.int64))
    mapped = np.lib.format.open_memmap(tmp_path / "emb.npy", "w+", np.float32, table.shape)
    mapped[:] = table
    on_disk = NeighbourIndex.on_disk(tmp_path / "shard", mapped, ranges)
    assert len(on_disk) == len(in_memory) == len(rows)
    for q in range(0, 3000, 23):
        k = int(rng.integers(1, 80))
        found = on_disk.search(table[q], k)
        assert found == in_memory.search(table[q], k)
        assert len(found) == k and set(found) <= set(rows.tolist())


# ---------------------------------------------------------------- the memory-mapped table


def test_letting_go_of_the_table_keeps_every_row_readable(tmp_path: Path) -> None:
    n = 5000
    rng = np.random.default_rng(0)
    arrays: dict[str, np.ndarray] = {
        "episode": np.repeat(np.arange(n // 10, dtype=np.int32), 10),
        "position": np.tile(np.arange(10, dtype=np.int32), n // 10),
        "phash": rng.integers(0, 2 ** 63, n).astype(np.uint64),
        "thumbs": rng.integers(0, 256, (n, 256)).astype(np.uint8),
        "embeddings": normalise_rows(rng.normal(size=(n, 8))),
        "digest": np.array([f"{i:032x}".encode() for i in range(n)], dtype="S32"),
        "ext": np.array([b"jpg"] * n, dtype="S4")}
    mapped: dict[str, np.ndarray] = {}
    for name, array in arrays.items():
        array.tofile(tmp_path / name)
        mapped[name] = np.memmap(tmp_path / name, dtype=array.dtype, mode="r",
                                 shape=array.shape)
    table = FrameTable(**mapped)
    reads: Callable[[], list[object]] = lambda: [  # noqa: E731
        table.image(r) for r in range(0, n, 7)] + [table.phash[r] for r in range(0, n, 3)]
    before = reads()
    table.release()
    assert reads() == before
    for name, array in arrays.items():
        assert np.array_equal(getattr(table, name), array)
    assert Counter(table.episode.tolist())[0] == 10


# ---------------------------------------------------------------- grouping in partitions


def _duplicated_table(n: int, seed: int) -> FrameTable:
    """Frames of 10-frame episodes, a third of them copies or near-duplicates of others
    (hash 2 bits apart, thumbnail the same), some copied many times (a start screen)."""
    rng = np.random.default_rng(seed)
    phash = rng.integers(0, 2 ** 63, n).astype(np.uint64)
    thumb = rng.integers(0, 256, (n, 256)).astype(np.uint8)
    digest = np.array([rng.bytes(16).hex().encode() for _ in range(n)], "S32")
    for i in rng.choice(n, n // 3, replace=False).tolist():
        j = int(rng.integers(n)) if rng.random() < 0.8 else 0  # frame 0: the start screen
        thumb[i] = thumb[j]
        if rng.random() < 0.5:
            phash[i], digest[i] = phash[j], digest[j]
        else:
            phash[i] = phash[j] ^ np.uint64(0b11 << int(rng.integers(60)))
    return FrameTable(episode=np.arange(n, dtype=np.int32) // 10,
                      position=np.arange(n, dtype=np.int32) % 10, phash=phash, thumbs=thumb,
                      embeddings=np.zeros((n, 1), np.float32), digest=digest,
                      ext=np.full(n, b"jpg", dtype="S4"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grouping_in_partitions_finds_exactly_the_pairs_of_one_pass(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    table = _duplicated_table(3000, seed)
    rule = JoinRule(max_hamming=4, max_pixel_diff=0.01, min_frames=2)
    whole = frame_links(table.episode, table.digest, table.phash, table.thumbs, rule)
    plan = plan_splits(table, [f"e{e}" for e in range(300)], ["a", "b"] * 150,
                       {"train": 0.7, "test": 0.3}, seed, rule)
    monkeypatch.setattr(split, "PARTITION_ROWS", 128)  # 24 partitions, spilled to files
    parts = frame_links(table.episode, table.digest, table.phash, table.thumbs, rule,
                        scratch=tmp_path)
    assert len(whole) > 500 and np.array_equal(parts, whole)
    again = plan_splits(table, [f"e{e}" for e in range(300)], ["a", "b"] * 150,
                        {"train": 0.7, "test": 0.3}, seed, rule, scratch=tmp_path)
    assert (again.group_of, again.split_of) == (plan.group_of, plan.split_of)
    assert len(set(plan.group_of)) > 1 and len(set(plan.split_of)) == 2
    assert list(tmp_path.iterdir()) == []  # the partition files are gone


def _image_masks(table: FrameTable, ids: list[str], images: np.ndarray,
                 episodes: dict[str, set[str]]) -> dict[str, np.ndarray]:
    """Per split, which of `images` its episodes' frames are."""
    return {s: np.isin(images, table.digest[np.isin(table.episode,
                                                    [ids.index(e) for e in members])])
            for s, members in episodes.items()}


def test_the_leakage_check_in_partitions_reports_what_one_pass_reports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = _duplicated_table(2000, 5)
    rule = JoinRule(max_hamming=4, max_pixel_diff=0.01, min_frames=50)  # none are joined
    ids = [f"e{e}" for e in range(200)]
    images = np.unique(table.digest)
    # Episodes 0-59 train, 60-99 test, the rest in no split (their frames take no part).
    episodes = {"train": set(ids[:60]), "test": set(ids[60:100])}
    masks = _image_masks(table, ids, images, episodes)

    def run() -> SharedImages:
        return check_leakage(episodes, masks, images, table, ids, rule, scratch=tmp_path)

    whole = run()
    monkeypatch.setattr(split, "PARTITION_ROWS", 100)
    assert whole.images > 0 and run() == whole
    only = [d for d, c in Counter(table.digest[:600].tolist()).items()
            if c == 1 and d not in set(table.digest[600:].tolist())]
    masks["test"][np.searchsorted(images, only[0])] = True  # an image of train's alone
    with pytest.raises(LeakageError, match="no frame of its episodes"):
        run()


@pytest.mark.parametrize("partition_rows", [1 << 16, 50])
def test_distinct_images_in_partitions_are_numpys_unique(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, partition_rows: int) -> None:
    monkeypatch.setattr(split, "PARTITION_ROWS", partition_rows)
    table = _duplicated_table(2000, 7)
    found = split.distinct_images(table.digest, tmp_path / "images.S32", scratch=tmp_path)
    expected = np.unique(table.digest)
    assert len(expected) < 2000 and np.array_equal(np.asarray(found), expected)
    assert [p.name for p in tmp_path.iterdir()] == ["images.S32"]


# ---------------------------------------------------------------- per-episode state in files


class _ListPool:
    """The description pool as it was, in dicts and lists: the reference for its draws."""

    def __init__(self) -> None:
        self.texts: dict[tuple[str, str], dict[str, str]] = {}

    def add(self, split: str, scenario: str, description: str) -> None:
        key = normalise_text(description)
        if key:
            self.texts.setdefault((split, scenario), {}).setdefault(key, description)

    def negative_for(self, split: str, scenario: str, description: str | None,
                     rng: random.Random) -> str | None:
        own = normalise_text(description or "")

        def choices(s: str, sc: str) -> list[str]:
            texts = self.texts.get((s, sc), {})
            return [texts[key] for key in sorted(texts) if key != own]

        same = choices(split, scenario)
        if same:
            return rng.choice(same)
        others = [text for (s, sc), _ in sorted(self.texts.items())
                  if s == split and sc != scenario for text in choices(s, sc)]
        return rng.choice(others) if others else None


@pytest.mark.parametrize("on_disk", [True, False])
def test_the_description_pool_in_sqlite_draws_what_the_lists_drew(
        tmp_path: Path, on_disk: bool) -> None:
    rng = random.Random(11)
    words = ["stack", "Push", "the", "red", "blue", "block", "cup", "ünïcode", "drawer", "ball"]
    # Scenarios of very different sizes; one with a single text (its own: draws elsewhere).
    items = [(rng.choice(["train", "test", "val"]), rng.choice(["a", "b", "c"]),
              " ".join(rng.choices(words, k=rng.randint(1, 3))) + rng.choice(["", ".", "!"]))
             for _ in range(600)]
    items += [("test", "lonely", "one lonely task"), ("val", "b", "...")]
    reference, pool = _ListPool(), DescriptionPool(tmp_path / "pool.sqlite" if on_disk
                                                   else None)
    for item in items[:300]:
        reference.add(*item)
    pool.extend(items[:300])
    asks = [(s, sc, d) for s, sc, d in rng.sample(items, 200)] + [
        ("test", "lonely", "one lonely task"), ("val", "nowhere", None), ("none", "a", "x")]
    for part in (items[300:], []):  # added after draws: the pool is numbered again
        for name, scenario, own in asks:
            a, b = random.Random(len(own or "")), random.Random(len(own or ""))
            assert pool.negative_for(name, scenario, own, a) == \
                reference.negative_for(name, scenario, own, b)
            assert a.getstate() == b.getstate()
        for item in part:
            reference.add(*item)
            pool.add(*item)
    drawn = {pool.negative_for(s, sc, d, rng) for s, sc, d in asks}
    assert len(drawn) > 50 and None in drawn  # many texts drawn, and a split without any


def test_episodes_written_to_columns_read_back_as_kept_episodes(tmp_path: Path) -> None:
    rng = random.Random(4)
    notes = {"ep3": EpisodeNotes(captions={0: "a cup"}, negative="not this",
                                 paraphrases=("p",))}
    expected: list[KeptEpisode] = []
    writer = EpisodeWriter(tmp_path)
    start = 0
    for e in range(500):
        episode_id = f"ep{e}" if e % 7 else f"källa/ep{e}"
        scenario = rng.choice(["kitchen", "office", "lab"])
        description = rng.choice([None, f"task {e} ✓", "stack the cup"])
        frames = rng.randint(1, 30)
        writer.add(episode_id, scenario, description, frames)
        note = notes.get(episode_id, EpisodeNotes())
        expected.append(KeptEpisode(episode_id, scenario, description,
                                    range(start, start + frames), captions=note.captions,
                                    negative=note.negative, paraphrases=note.paraphrases))
        start += frames
    table = writer.finish(notes)
    assert len(table) == 500
    assert [table[e] for e in range(500)] == expected
    assert list(table.ids) == [e.id for e in expected]
    assert list(table.scenarios) == [e.scenario for e in expected]
    assert table.scenarios[10:20] == [e.scenario for e in expected[10:20]]
    table.release()
    assert all(table.index(e.id) == i for i, e in enumerate(expected))
    assert table.index("ep0") is None and table.index("nope") is None
    (tmp_path / "empty").mkdir()
    nothing = EpisodeWriter(tmp_path / "empty").finish({})
    assert len(nothing) == 0 and nothing.index("ep0") is None and list(nothing.ids) == []


def test_the_leakage_check_from_episode_masks_is_the_check_from_id_sets(
        tmp_path: Path) -> None:
    table = _duplicated_table(2000, 6)
    rule = JoinRule(max_hamming=4, max_pixel_diff=0.01, min_frames=50)
    ids = [f"e{e}" for e in range(200)]
    images = np.unique(table.digest)
    episodes = {"train": set(ids[:70]), "test": set(ids[70:110])}
    masks = _image_masks(table, ids, images, episodes)
    use = EpisodeUse(["train", "test"], len(ids))
    for name, members in episodes.items():
        for episode in sorted(members):
            use.mark(name, ids.index(episode), episode)
    from_sets = check_leakage(episodes, masks, images, table, ids, rule, scratch=tmp_path)
    assert from_sets.images > 0
    assert check_leakage(use, masks, images, table, ids, rule, scratch=tmp_path) == from_sets
    use.mark("test", 3, "e3")  # a train episode in test too
    use.mark("test", None, "stranger")
    with pytest.raises(LeakageError, match="episode stranger in test is not one of the build's"
                                           ".*episode e3 is in both test and train"):
        check_leakage(use, masks, images, table, ids, rule, scratch=tmp_path)


@pytest.mark.parametrize("span", [1 << 20, 300])
def test_gathering_rows_from_a_map_a_span_at_a_time_reads_what_indexing_reads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, span: int) -> None:
    monkeypatch.setattr(candidates, "GATHER_SPAN", span)
    rng = np.random.default_rng(9)
    for name, array in {"thumbs": rng.integers(0, 256, (3000, 256)).astype(np.uint8),
                        "digest": np.array([rng.bytes(16).hex().encode() for _ in range(3000)],
                                           "S32"),
                        "phash": rng.integers(0, 2 ** 63, 3000).astype(np.uint64)}.items():
        array.tofile(tmp_path / name)
        mapped = np.memmap(tmp_path / name, dtype=array.dtype, mode="r", shape=array.shape)
        for rows in (rng.integers(0, 3000, 700), np.arange(5, 2900, 3), np.zeros(0, np.int64),
                     np.array([2999, 0, 2999, 17])):
            assert np.array_equal(candidates.gather(mapped, rows), array[rows])
        assert np.array_equal(candidates.gather(array, rows), array[rows])  # not a map
