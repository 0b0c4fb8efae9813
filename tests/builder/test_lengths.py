"""Sequence lengths and candidate counts: the config forms, the draws, and what a build
records of them (``meta.frames``, ``meta.difficulty``)."""

from __future__ import annotations

import doctest
import random
from collections import Counter
from pathlib import Path

import pytest
import yaml
from episode_files import write_episode

from tpru.builder import difficulty, lengths
from tpru.builder.config import BuildConfig
from tpru.builder.difficulty import difficulty_record, difficulty_score
from tpru.builder.drafts import choose_windows
from tpru.builder.inputs import config_fingerprint
from tpru.builder.lengths import candidate_counts, length_weights, window_lengths
from tpru.builder.pipeline import build
from tpru.cli import main
from tpru.config import ConfigError, apply_overrides, load, read_yaml, to_dict
from tpru.dataset import Dataset

TASKS = ("ordering", "next_frame", "prev_frame")


# ---------------------------------------------------------------- the config forms


def test_the_three_forms_of_frames_per_sample() -> None:
    assert length_weights(4) == {4: 1.0}
    assert length_weights((8, 3, 5)) == {3: 1.0, 5: 1.0, 8: 1.0}
    assert length_weights({8: 1, 3: 1, 4: 2, 6: 1}) == {3: 1.0, 4: 2.0, 6: 1.0, 8: 1.0}
    assert length_weights([16]) == {16: 1.0}


@pytest.mark.parametrize(("spec", "message"), [
    (2, "between 3 and 16, got 2"),
    (17, "between 3 and 16, got 17"),
    ((3, 17), "got 17"),
    ((3, 3), "lists a length twice"),
    ((), "empty"),
    ({}, "empty"),
    ({3: 0}, "weight of 3 frames must be a positive number"),
    ({3: -1.0}, "positive"),
    ({3: float("nan")}, "positive"),
    ({3.5: 1}, "not a whole number"),
    ("four", "must be a number, a list"),
])
def test_bad_lengths_are_refused(spec: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        length_weights(spec)


def test_candidates_per_task() -> None:
    assert candidate_counts(4, TASKS, TASKS) == dict.fromkeys(TASKS, 4)
    mapping = {"ordering": 4, "next_frame": 6, "prev_frame": 6}
    assert candidate_counts(mapping, TASKS, TASKS) == mapping
    # A mapping may name a task the build does not make.
    assert candidate_counts(mapping, ("next_frame",), TASKS) == {"next_frame": 6}
    with pytest.raises(ValueError, match="no count for prev_frame"):
        candidate_counts({"ordering": 4, "next_frame": 6}, TASKS, TASKS)
    with pytest.raises(ValueError, match="unknown task 'sorting'"):
        candidate_counts({**mapping, "sorting": 3}, TASKS, TASKS)
    with pytest.raises(ValueError, match=r"between 2 and 8 \(for next_frame\), got 9"):
        candidate_counts({**mapping, "next_frame": 9}, TASKS, TASKS)
    with pytest.raises(ValueError, match="between 2 and 8, got 1"):
        candidate_counts(1, TASKS, TASKS)


def test_yaml_and_overrides_give_both_forms(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("tasks:\n  frames_per_sample: {3: 1, 4: 2, 6: 1, 8: 1}\n"
                      "  candidates: {ordering: 4, next_frame: 6, prev_frame: 6}\n",
                      encoding="utf-8")
    config = load(BuildConfig, read_yaml(recipe))
    assert config.tasks.length_weights == {3: 1.0, 4: 2.0, 6: 1.0, 8: 1.0}
    assert config.tasks.candidate_counts == {"ordering": 4, "next_frame": 6, "prev_frame": 6}
    assert config.min_frames == 3
    overridden = load(BuildConfig, apply_overrides(read_yaml(recipe), [
        "tasks.frames_per_sample=[3,5,8,12,16]", "tasks.candidates={ordering: 5, "
        "next_frame: 3, prev_frame: 8}"]))
    assert overridden.tasks.frames_per_sample == (3, 5, 8, 12, 16)
    assert overridden.tasks.candidate_counts == {"ordering": 5, "next_frame": 3,
                                                 "prev_frame": 8}
    plain = load(BuildConfig, apply_overrides(read_yaml(recipe), [
        "tasks.frames_per_sample=5", "tasks.candidates=3"]))
    assert (plain.tasks.frames_per_sample, plain.tasks.candidates) == (5, 3)
    # What build.json and --print-config write loads back as the same config (their
    # mapping keys are text: "3").
    for each in (config, overridden, plain):
        assert load(BuildConfig, yaml.safe_load(yaml.safe_dump(to_dict(each)))) == each


@pytest.mark.parametrize(("override", "message"), [
    ("tasks.frames_per_sample=two", "tasks.frames_per_sample: expected an integer, a list "
                                    "or a mapping, got 'two'"),
    ("tasks.frames_per_sample={3: many}", "tasks.frames_per_sample.3: expected a number"),
    ("tasks.frames_per_sample=[3, 20]", "between 3 and 16, got 20"),
    ("tasks.candidates={ordering: 4}", "no count for next_frame, prev_frame"),
    ("tasks.candidates=[4, 6]", "tasks.candidates: expected an integer or a mapping"),
])
def test_bad_values_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(BuildConfig, apply_overrides({}, [override]))


def test_ordering_candidates_fit_the_shortest_length() -> None:
    # 3 frames have 5 wrong orders: enough for 5 choices, not 6.
    load(BuildConfig, {"tasks": {"frames_per_sample": [3, 8], "candidates": 5}})
    with pytest.raises(ConfigError, match="candidates=6 for ordering needs more wrong orders "
                                          r"than 3 frames have \(5\)"):
        load(BuildConfig, {"tasks": {"frames_per_sample": {3: 1, 8: 5}, "candidates": 6}})
    # Only ordering's count is bound by it; without ordering nothing is.
    load(BuildConfig, {"tasks": {"frames_per_sample": [3, 8], "candidates":
                                 {"ordering": 5, "next_frame": 8, "prev_frame": 8}}})
    load(BuildConfig, {"tasks": {"frames_per_sample": 3, "candidates": 8,
                                 "tasks": ["next_frame", "prev_frame"]}})


def test_print_config_shows_the_forms(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--print-config", "tasks.frames_per_sample={3: 1, 4: 2}",
                 "tasks.candidates={ordering: 4, next_frame: 6, prev_frame: 6}"]) == 0
    tasks = yaml.safe_load(capsys.readouterr().out)["tasks"]
    assert tasks["frames_per_sample"] == {"3": 1.0, "4": 2.0}
    assert tasks["candidates"] == {"ordering": 4, "next_frame": 6, "prev_frame": 6}


def test_the_fingerprint_follows_lengths_and_candidates() -> None:
    def stamp(**tasks: object) -> str:
        return config_fingerprint(load(BuildConfig, {"sources": ["frames:x"],
                                                     "tasks": tasks}))

    stamps = [stamp(), stamp(frames_per_sample=5), stamp(frames_per_sample=[4, 5]),
              stamp(frames_per_sample={4: 1, 5: 2}), stamp(frames_per_sample={4: 2, 5: 1}),
              stamp(candidates={"ordering": 4, "next_frame": 6, "prev_frame": 6}),
              stamp(candidates={"ordering": 4, "next_frame": 6, "prev_frame": 5})]
    assert len(set(stamps)) == len(stamps)
    assert stamp(frames_per_sample=4, candidates=4) == stamps[0]
    # The order of a mapping's keys changes nothing: neither the draws nor the stamp.
    assert stamp(frames_per_sample={5: 2, 4: 1}) == stamps[3]


# ---------------------------------------------------------------- the draws


def test_one_length_draws_nothing() -> None:
    rng = random.Random(3)
    state = rng.getstate()
    assert window_lengths({4: 1.0}, 10, 3, rng) == ([4, 4, 4], False)
    assert window_lengths({4: 1.0}, 3, 3, rng) == ([], False)
    assert rng.getstate() == state


def test_lengths_follow_their_weights_and_the_episode() -> None:
    weights = length_weights({3: 1, 4: 2, 8: 1})
    drawn, limited = window_lengths(weights, 20, 4000, random.Random(0))
    counts = Counter(drawn)
    assert not limited and set(counts) == {3, 4, 8}
    assert 0.45 < counts[4] / 4000 < 0.55 and 0.2 < counts[3] / 4000 < 0.3
    # A 5-frame episode cannot hold 8: it draws among 3 and 4, by their weights.
    drawn, limited = window_lengths(weights, 5, 3000, random.Random(1))
    counts = Counter(drawn)
    assert limited and set(counts) == {3, 4} and 0.6 < counts[4] / 3000 < 0.73
    assert window_lengths(weights, 2, 5, random.Random(2)) == ([], False)
    # The same generator, the same lengths.
    assert window_lengths(weights, 20, 50, random.Random(9)) == \
        window_lengths(weights, 20, 50, random.Random(9))


def test_windows_have_their_lengths() -> None:
    windows = choose_windows(20, [16, 3, 8], random.Random(0))
    assert [len(w) for w in windows] == [16, 3, 8]
    assert windows[0][0] == 0 and windows[0][-1] == 19  # the first spans the episode
    assert all(w == sorted(set(w)) and w[0] >= 0 and w[-1] < 20 for w in windows)
    assert choose_windows(5, [3, 8], random.Random(0)) == []


# ---------------------------------------------------------------- the difficulty record


def test_the_score_is_a_weighted_mean_in_zero_to_one() -> None:
    assert difficulty_score(16, "missing", 1.0, gap=1.0) == 1.0
    assert difficulty_score(16, "mismatch", None, gap=1.0) == 1.0
    # 3 frames far apart, a positive, nothing alike: nearly 0 (the gap term never is).
    assert difficulty_score(3, None, 0.0, gap=1000.0) == 0.0002
    # Longer, more alike, negative and closer together: each one is harder.
    base = difficulty_score(5, None, 0.5, gap=3.0)
    assert difficulty_score(9, None, 0.5, gap=3.0) > base
    assert difficulty_score(5, None, 0.9, gap=3.0) > base
    assert difficulty_score(5, "missing", 0.5, gap=3.0) > base
    assert difficulty_score(5, "mismatch", 0.5, gap=3.0) > base
    assert difficulty_score(5, None, 0.5, gap=1.5) > base
    # Out-of-range similarities are clipped, not extrapolated.
    assert difficulty_score(5, None, -0.4, gap=3.0) == difficulty_score(5, None, 0.0, gap=3.0)
    # Without a similarity (ordering) the other weights share its part: 0.4 / 0.75.
    assert difficulty_score(16, None, None, gap=1e9) == round(0.4 / 0.75, 4)


def test_the_record() -> None:
    # Frames 2, 4, 9: steps of 2 and 5, a mean gap of 3.5 source frames.
    record = difficulty_record([2, 4, 9], "missing", 0.81234)
    assert record == {"frames": 3, "negative": "missing", "distractor_similarity": 0.8123,
                      "gap": 3.5, "score": difficulty_score(3, "missing", 0.81234, 3.5)}
    adjacent = difficulty_record(list(range(5, 21)), None, None)
    assert adjacent["gap"] == 1.0 and adjacent["score"] == round((0.4 + 0.2) / 0.75, 4)


def test_the_docstring_examples_hold() -> None:
    for module in (lengths, difficulty):
        assert doctest.testmod(module).failed == 0, module.__name__


# ---------------------------------------------------------------- a build


@pytest.fixture(scope="module")
def episodes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 episodes of 5 to 12 frames, four scenarios."""
    root = tmp_path_factory.mktemp("lengths")
    for e in range(16):
        write_episode(root / f"ep{e:02d}", 500 + e, frames=5 + e % 8,
                      scenario=("robot", "lego", "gui", "nav")[e % 4],
                      description=f"moving the white square, take {e}")
    return root


def _build(episodes: Path, out: Path, **tasks: object) -> Path:
    config = load(BuildConfig, {"sources": [f"frames:{episodes}"], "out": str(out), "seed": 2,
                                "tasks": {"windows_per_episode": 2, **tasks},
                                "split": {"ratios": {"train": 1.0}},
                                "probes": {"max_lift": None}})
    return build(config, show_progress=False).path


def test_mixed_lengths_are_recorded_and_repeatable(episodes: Path, tmp_path: Path) -> None:
    weights = {3: 1, 6: 1, 10: 1}
    counts = {"ordering": 3, "next_frame": 5, "prev_frame": 2}
    first = _build(episodes, tmp_path / "a", frames_per_sample=weights, candidates=counts)
    again = _build(episodes, tmp_path / "b", frames_per_sample=weights, candidates=counts)
    assert (first / "train.jsonl").read_bytes() == (again / "train.jsonl").read_bytes()
    dataset = Dataset.open(first)
    kept = {e: 5 + int(e[2:]) % 8 for e in (f"ep{i:02d}" for i in range(16))}
    lengths: Counter[int] = Counter()
    for sample in dataset.samples():
        n = sample.meta["frames"]
        lengths[n] += 1
        assert n == len(sample.meta["window"]) <= kept[sample.episode_id]
        assert len(sample.question_images) == (n if sample.task == "ordering" else n - 1)
        if sample.options is not None:
            assert len(sample.options) == counts[sample.task] + 1
        record = sample.meta["difficulty"]
        assert set(record) == {"frames", "negative", "distractor_similarity", "gap", "score"}
        assert record["frames"] == n and record["negative"] == sample.meta["negative_kind"]
        assert (record["distractor_similarity"] is None) == (sample.task == "ordering")
        assert 0.0 <= record["score"] <= 1.0 and record["gap"] >= 1
        assert "difficulty" not in sample.question
    assert set(lengths) == {3, 6, 10}
    built = dataset.info.counts
    assert sum(built["windows_by_frames"].values()) == 32
    # Episodes of 5 to 9 frames cannot hold 10: their windows were limited, and counted.
    assert built["windows_lengths_limited"] == 2 * sum(1 for n in kept.values() if n < 10)


def test_a_plain_number_is_a_list_or_mapping_of_one(episodes: Path, tmp_path: Path) -> None:
    plain = _build(episodes, tmp_path / "plain", frames_per_sample=5)
    listed = _build(episodes, tmp_path / "listed", frames_per_sample=[5])
    weighted = _build(episodes, tmp_path / "weighted", frames_per_sample={5: 3})
    data = (plain / "train.jsonl").read_bytes()
    assert data == (listed / "train.jsonl").read_bytes() == \
        (weighted / "train.jsonl").read_bytes()
    assert {s.meta["frames"] for s in Dataset.open(plain).samples()} == {5}
