"""Rewards: the release's semantics written out, partial credit, and every trainer adapter."""

from __future__ import annotations

import importlib.util
import itertools
import string
import sys
from collections import defaultdict
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tpru.score.rewards as rewards
from tpru.diagnostics import InputError
from tpru.schema import NONE_OPTION
from tpru.score.rewards import (
    REWARDS,
    binary_format,
    compute_score,
    extracted,
    get_reward,
    length_penalty,
    ordering_credit,
    ordering_partial,
    tpru,
    trl_reward,
)

# (response, ground truth, overall, format, accuracy) under the release's reward.
RELEASE_CASES = [
    ("<think>B comes first.</think><answer>B</answer>", "B", 0.92, 0.2, 1.0),
    ("<think>r</think>\n<answer>B</answer>\n", "B", 0.92, 0.2, 1.0),
    ("  <think>multi\nline\n</think>\n\n<answer>\nB\n</answer>", "B", 0.92, 0.2, 1.0),
    ("< think >r</ think >< answer >B</ answer >", "B", 0.92, 0.2, 1.0),
    ("<think>r</think><answer> B </answer>", "B", 0.92, 0.2, 1.0),
    ("<think>1 / 2 < 3 > 0</think><answer>B</answer>", "B", 0.92, 0.2, 1.0),
    ("<think>r</think><answer>A</answer>", "B", 0.02, 0.2, 0.0),
    ("<think>r</think><answer>'B'</answer>", "B", 0.9, 0.0, 1.0),   # quotes: accurate, bad format
    ('<think>r</think><answer>"B"</answer>', "B", 0.9, 0.0, 1.0),
    ("<think>r</think><answer> ' B ' </answer>", "B", 0.9, 0.0, 1.0),
    ("<think>r</think><answer>b</answer>", "B", 0.0, 0.0, 0.0),     # lowercase: neither
    ("<answer>B</answer>", "B", 0.9, 0.0, 1.0),                      # no think block
    ("The answer is <answer>B</answer>.", "B", 0.9, 0.0, 1.0),
    ("<think>unclosed <answer>B</answer>", "B", 0.9, 0.0, 1.0),
    ("<think>r</think> So: <answer>B</answer>", "B", 0.9, 0.0, 1.0),  # text between blocks
    ("<think>r</think><answer>B</answer> Hope this helps", "B", 0.9, 0.0, 1.0),  # text after
    ("<think>r</think><answer>A</answer><answer>B</answer>", "B", 0.0, 0.0, 0.0),  # first counts
    ("<think>r</think><answer>B</answer><answer>A</answer>", "B", 0.9, 0.0, 1.0),
    ("<think>r</think><answer>B.</answer>", "B", 0.0, 0.0, 0.0),
    ("<think>r</think><answer>(B)</answer>", "B", 0.0, 0.0, 0.0),
    ("<think>r</think><answer></answer>", "B", 0.0, 0.0, 0.0),
    ("<THINK>r</THINK><ANSWER>B</ANSWER>", "B", 0.0, 0.0, 0.0),     # tags are case-sensitive
    ("The answer is B", "B", 0.0, 0.0, 0.0),
    ("B", "B", 0.0, 0.0, 0.0),
    ("", "B", 0.0, 0.0, 0.0),
    ("<think>r</think><answer>CABD</answer>", "CABD", 0.92, 0.2, 1.0),
    ("<think>r</think><answer>CBAD</answer>", "CABD", 0.02, 0.2, 0.0),
    ("<think>r</think><answer>C A B D</answer>", "CABD", 0.0, 0.0, 0.0),
    ("<think>r</think><answer>C,A,B,D</answer>", "CABD", 0.0, 0.0, 0.0),
    ("<think>r</think><answer>cabd</answer>", "CABD", 0.0, 0.0, 0.0),
]


@pytest.mark.parametrize(("response", "gold", "overall", "fmt", "accuracy"), RELEASE_CASES)
def test_release_reward(response: str, gold: str, overall: float, fmt: float,
                        accuracy: float) -> None:
    score = tpru(response, gold)
    assert score == {"overall": pytest.approx(overall), "format": fmt, "accuracy": accuracy}
    assert set(score) == {"overall", "format", "accuracy"}


def test_release_batch_interface_and_format_weight() -> None:
    responses = [case[0] for case in RELEASE_CASES]
    golds = [case[1] for case in RELEASE_CASES]
    scores = compute_score(responses, golds)
    assert [s["overall"] for s in scores] == pytest.approx([case[2] for case in RELEASE_CASES])
    half = compute_score(["<think>r</think><answer>B</answer>"], ["B"], format_weight=0.5)
    assert half == [{"overall": pytest.approx(0.6), "format": 0.2, "accuracy": 1.0}]
    with pytest.raises(ValueError, match="2 responses for 1 ground truths"):
        compute_score(["a", "b"], ["B"])


@pytest.mark.parametrize(("response", "overall", "fmt"), [
    ("<think>r</think><answer>B</answer>", 1.0, 1.0),
    ("<think>r</think><answer>A</answer>", 0.1, 1.0),
    ("<answer>B</answer>", 0.9, 0.0),
    ("nothing", 0.0, 0.0),
])
def test_binary_format(response: str, overall: float, fmt: float) -> None:
    score = binary_format(response, "B")
    assert score["overall"] == pytest.approx(overall)
    assert score["format"] == fmt


@pytest.mark.parametrize(("predicted", "gold", "displacement", "position", "kendall"), [
    ("ABCD", "ABCD", 1.0, 1.0, 1.0),
    ("ACBD", "ABCD", 0.75, 0.5, 5 / 6),
    ("BADC", "ABCD", 0.5, 0.0, 4 / 6),
    ("DCBA", "ABCD", 0.0, 0.0, 0.0),
    ("BACDE", "ABCDE", 1 - 2 / 12, 3 / 5, 9 / 10),
    ("CAB", "ABC", 1 - 4 / 4, 0.0, 1 / 3),
    ("ABCE", "ABCD", 0.0, 0.0, 0.0),   # not a permutation of the gold letters
    ("ABC", "ABCD", 0.0, 0.0, 0.0),
    ("AABC", "ABCD", 0.0, 0.0, 0.0),
    (None, "ABCD", 0.0, 0.0, 0.0),
    ("B", "B", 1.0, 1.0, 1.0),         # a choice letter: exact match
    ("C", "B", 0.0, 0.0, 0.0),
])
def test_ordering_credit(predicted: str | None, gold: str, displacement: float, position: float,
                         kendall: float) -> None:
    assert ordering_credit(predicted, gold) == pytest.approx(displacement)
    assert ordering_credit(predicted, gold, "position") == pytest.approx(position)
    assert ordering_credit(predicted, gold, "kendall") == pytest.approx(kendall)


@given(st.integers(2, 9), st.data())
def test_ordering_credit_bounds(n: int, data: st.DataObject) -> None:
    gold = "".join(data.draw(st.permutations(string.ascii_uppercase[:n])))
    predicted = "".join(data.draw(st.permutations(gold)))
    for method in rewards.ORDERING_METHODS:
        credit = ordering_credit(predicted, gold, method)
        assert 0.0 <= credit <= 1.0
        assert (credit == 1.0) == (predicted == gold)
        assert ordering_credit(gold[::-1], gold, method) == 0.0 or method == "position"


def test_ordering_partial_rewards() -> None:
    response = "<think>r</think><answer>ACBD</answer>"
    assert ordering_partial(response, "ABCD") == {
        "overall": pytest.approx(0.9 * 0.75 + 0.02), "format": 0.2, "accuracy": 0.75,
        "exact": 0.0}
    assert REWARDS["ordering_position"](response, "ABCD")["accuracy"] == 0.5
    assert REWARDS["ordering_kendall"](response, "ABCD")["accuracy"] == pytest.approx(5 / 6)
    right = ordering_partial("<think>r</think><answer>ABCD</answer>", "ABCD")
    assert right["overall"] == pytest.approx(0.92) and right["exact"] == 1.0
    with pytest.raises(InputError, match="unknown ordering credit 'spearman'"):
        ordering_partial(response, "ABCD", method="spearman")


@pytest.mark.parametrize(("length", "cut"), [
    (500, 0.0), (768, 0.0), (896, 0.25), (1024, 0.5), (5000, 0.5)])
def test_length_penalty_by_token_count(length: int, cut: float) -> None:
    score = length_penalty("<think>r</think><answer>B</answer>", "B", response_length=length)
    assert score["length_penalty"] == pytest.approx(cut)
    assert score["overall"] == pytest.approx(0.92 - cut)
    assert score["accuracy"] == 1.0


def test_length_penalty_estimates_tokens_and_takes_a_base() -> None:
    long = "<think>" + "x" * 3967 + "</think><answer>B</answer>"  # 4000 characters: 1000 tokens
    score = length_penalty(long, "B", base="binary_format", penalty=1.0)
    assert score["length_penalty"] == pytest.approx((1000 - 768) / 256)
    assert score["overall"] == pytest.approx(1.0 - (1000 - 768) / 256)
    with pytest.raises(InputError, match="cannot use itself"):
        length_penalty("x", "B", base="length_penalty")


@pytest.mark.parametrize(("response", "gold", "options", "accuracy"), [
    ("The correct answer is (B).", "B", None, 1.0),
    ("\\boxed{B}", "B", None, 1.0),
    ("<answer>(C)</answer>", "C", None, 1.0),
    ("I think A.", "B", None, 0.0),
    ("C -> A -> B -> D", "CABD", None, 1.0),
    ("<answer>c, a, b, d</answer>", "CABD", None, 1.0),
    ("None of the choices provided.", "C", ["<image>", "<image>", NONE_OPTION], 1.0),
    ("None of the choices provided.", "C", None, 0.0),   # without options no letter to map to
    ("the order is 1 3 4 2", "A", ["1 3 4 2", "2 1 3 4", NONE_OPTION], 1.0),
])
def test_extracted_reward(response: str, gold: str, options: list[str] | None,
                          accuracy: float) -> None:
    score = extracted(response, gold, options=options)
    assert score == {"overall": accuracy, "format": 0.0, "accuracy": accuracy}


def test_extracted_format_weight() -> None:
    score = extracted("<think>r</think><answer>B</answer>", "B", format_weight=0.1)
    assert score == {"overall": pytest.approx(1.0), "format": 1.0, "accuracy": 1.0}


def test_name_table() -> None:
    assert set(REWARDS) >= {"tpru", "binary_format", "ordering_partial", "length_penalty",
                            "extracted"}
    assert get_reward("tpru") is tpru
    with pytest.raises(InputError, match="unknown reward 'nope'.*tpru"):
        get_reward("nope")
    for name, fn in REWARDS.items():
        score = fn("<think>r</think><answer>B</answer>", "B")
        assert {"overall", "format", "accuracy"} <= set(score), name
        assert all(isinstance(v, float) for v in score.values()), name


# --- trainer adapters ---------------------------------------------------------------------

def _load_like_a_trainer() -> ModuleType:
    """Load rewards.py from its file under another name, as EasyR1 and verl do."""
    spec = importlib.util.spec_from_file_location("custom_reward_fn", Path(rewards.__file__))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_reward_fn"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["custom_reward_fn"]
    return module


GOOD = "<think>C first.</think>\n<answer>CABD</answer>"
CLOSE = "<think>r</think><answer>CBAD</answer>"


def _metrics(scores: list[dict[str, float]]) -> dict[str, list[float]]:
    """What EasyR1's reward manager does with the scores: one list per key."""
    metrics: dict[str, list[float]] = defaultdict(list)
    for score in scores:
        for key, value in score.items():
            metrics[key].append(value)
    assert len({len(v) for v in metrics.values()}) == 1  # every score has the same keys
    return metrics


def test_easyr1_new_interface_batch_and_sequential() -> None:
    module = _load_like_a_trainer()
    assert module.REWARD_TYPE == "batch" and module.REWARD_NAME == "tpru"
    fn = partial(module.easyr1_reward_inputs, **{})  # reward_function_kwargs
    inputs = [{"response": GOOD, "response_length": np.int64(12), "ground_truth": "CABD"},
              {"response": CLOSE, "response_length": 9, "ground_truth": "CABD"}]
    metrics = _metrics(fn(inputs))
    assert metrics["overall"] == pytest.approx([0.92, 0.02])
    assert fn(inputs[0]) == {"overall": pytest.approx(0.92), "format": 0.2, "accuracy": 1.0}
    partial_credit = partial(module.easyr1_reward_inputs, reward="ordering_partial",
                             method="kendall")
    assert partial_credit(inputs)[1]["accuracy"] == pytest.approx(5 / 6)
    penalised = partial(module.easyr1_reward_inputs, reward="length_penalty", max_length=10,
                        buffer=4)
    assert [s["length_penalty"] for s in penalised(inputs)] == pytest.approx([0.5, 0.375])


def test_easyr1_old_interfaces_and_main() -> None:
    module = _load_like_a_trainer()
    responses, golds = [GOOD, CLOSE, "B"], ["CABD", "CABD", "B"]
    expected = [0.92, 0.02, 0.0]
    assert [s["overall"] for s in module.compute_score(responses, golds)] == pytest.approx(expected)
    assert [s["overall"] for s in module.easyr1_batch(responses, golds)] == pytest.approx(expected)
    assert module.easyr1_sequential(GOOD, "CABD")["overall"] == pytest.approx(0.92)
    binary = module.easyr1_batch(responses, golds, reward="binary_format")
    assert [s["overall"] for s in binary] == pytest.approx([1.0, 0.1, 0.0])
    # `main`, for configs that name the file without ":function", takes every shape.
    inputs = [{"response": r, "response_length": 5, "ground_truth": g}
              for r, g in zip(responses, golds, strict=True)]
    for result in (module.main(inputs), module.main(responses, golds)):
        assert [s["overall"] for s in result] == pytest.approx(expected)
    assert module.main(GOOD, "CABD")["overall"] == pytest.approx(0.92)
    assert module.main(inputs[0])["overall"] == pytest.approx(0.92)
    with pytest.raises(TypeError):
        module.main()
    with pytest.raises(TypeError):
        module.easyr1_batch(responses, golds, format_wieght=0.5)  # a misspelt option fails


def test_verl_compute_score() -> None:
    module = _load_like_a_trainer()
    fn = partial(module.verl_compute_score, **{})  # custom_reward_function.reward_kwargs
    extra = {"split": "train", "index": 0, "id": "s1", "task": "ordering", "scenario": "robot",
             "negative": False}
    score = fn(data_source="tpru", solution_str=GOOD, ground_truth="CABD", extra_info=extra)
    assert score == {"score": pytest.approx(0.92), "format": 0.2, "accuracy": 1.0}
    assert fn("tpru", CLOSE, "CABD", None, return_dict=False) == pytest.approx(0.02)
    # verl's newer reward loop passes its reward-model plumbing as well.
    looped = fn(data_source="tpru", solution_str=GOOD, ground_truth="CABD", extra_info=extra,
                reward_router_address=None, reward_model_tokenizer=None)
    assert looped["score"] == pytest.approx(0.92)
    with_options = {"options": ["<image>", "<image>", NONE_OPTION]}
    lenient = fn("tpru", "None of the choices provided", "C", with_options, reward="extracted")
    assert lenient["score"] == 1.0


def test_trl_reward_shapes() -> None:
    reward = trl_reward("tpru")
    assert reward.__name__ == "tpru"
    prompts = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q"}]}]]
    # Standard (string) completions, gold in `answer`, with the other columns TRL passes.
    scores = reward(prompts=prompts * 3, completions=[GOOD, CLOSE, "no"],
                    completion_ids=[[1, 2], [3], [4]], answer=["CABD", "CABD", "CABD"],
                    solution=["CABD"] * 3, task=["ordering"] * 3, trainer_state=None)
    assert scores == pytest.approx([0.92, 0.02, 0.0])
    # Conversational completions, text or content parts, gold in `solution` only.
    conversational = [[{"role": "assistant", "content": GOOD}],
                      [{"role": "assistant", "content": [{"type": "text", "text": CLOSE}]}]]
    assert reward(completions=conversational, solution=["CABD", "CABD"]) == pytest.approx(
        [0.92, 0.02])
    assert reward(completions=[GOOD, GOOD], answer=["CABD", None]) == [pytest.approx(0.92), None]
    with pytest.raises(InputError, match="no 'answer' or 'solution' column.*task"):
        reward(completions=[GOOD], task=["ordering"])


def test_trl_reward_passes_lengths_and_config() -> None:
    reward = trl_reward("length_penalty", max_length=4, buffer=2, penalty=1.0)
    assert reward.__name__ == "length_penalty"
    scores = reward(completions=[GOOD, GOOD], completion_ids=[[0] * 2, [0] * 3],
                    answer=["CABD", "CABD"])
    assert scores == pytest.approx([0.92, 0.42])
    with pytest.raises(InputError, match="unknown reward"):
        trl_reward("nope")


def test_adapters_agree_with_the_reward_on_many_responses() -> None:
    letters = ["A", "B", "CABD", "cabd", "'B'"]
    shapes = ["<think>r</think><answer>{}</answer>", "<answer>{}</answer>", "{}",
              "< think >r</ think > < answer > {} </ answer >"]
    responses = [shape.format(x) for shape, x in itertools.product(shapes, letters)]
    golds = ["B" if len(r) % 2 else "CABD" for r in responses]
    direct = [tpru(r, g)["overall"] for r, g in zip(responses, golds, strict=True)]
    inputs: list[dict[str, Any]] = [{"response": r, "response_length": 1, "ground_truth": g}
                                    for r, g in zip(responses, golds, strict=True)]
    assert [s["overall"] for s in rewards.easyr1_reward_inputs(inputs)] == direct
    assert [rewards.verl_compute_score("tpru", r, g, return_dict=False)
            for r, g in zip(responses, golds, strict=True)] == direct
    assert trl_reward()(completions=responses, answer=golds) == direct
