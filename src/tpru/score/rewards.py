"""Rewards for GRPO, as each trainer calls them: EasyR1, verl and TRL.

The reward functions themselves are in `tpru.score.reward_functions` and
are importable from here too: ``tpru`` (the default) reproduces the TPRU
release's reward exactly, and `REWARDS` names the alternatives
(``binary_format``, ``ordering_partial``, ``length_penalty``, ``extracted``,
...). Each returns a `Score`, a dict of floats with ``overall`` and named
parts that trainers log. This module adapts them to the trainers, which
load a reward from a file: this file (where tpru is installed), or the
reward.py of an EasyR1 run folder, which imports this module from the copy
of `tpru.score` beside it (`tpru.train.easyr1_reward`).

- EasyR1, older: ``reward_function=.../rewards.py:easyr1_batch`` (called as
  ``fn(responses, ground_truths)``) or ``:easyr1_sequential``
  (``fn(response, ground_truth)``); ``:compute_score`` is the release's own
  batch function.
- EasyR1, newer: ``reward_function=.../rewards.py:easyr1_reward_inputs``
  (``fn(reward_inputs)``, dicts of ``response``, ``response_length``,
  ``ground_truth``); this module declares ``REWARD_TYPE = "batch"`` and
  ``REWARD_NAME``. A config naming the file without ``:function`` reaches
  `main`, which accepts every one of these shapes.
- verl: ``custom_reward_function.path=.../rewards.py``, ``.name=verl_compute_score``.
- TRL: ``GRPOTrainer(reward_funcs=[trl_reward("tpru")], ...)``.

Every adapter takes ``reward="NAME"`` and the reward's config as keywords
(EasyR1's ``reward_function_kwargs``, verl's ``reward_kwargs``).

Example:
    >>> easyr1_reward_inputs([{"response": "<think>C first.</think><answer>CABD</answer>",
    ...                        "response_length": 12, "ground_truth": "CABD"}])
    [{'overall': 0.92, 'format': 0.2, 'accuracy': 1.0}]
    >>> tpru("The answer is <answer>B</answer>.", "B")["overall"]
    0.9
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, overload

try:
    from .reward_functions import (
        CONTEXT_KEYS,
        ORDERING_METHODS,
        REWARDS,
        RewardFn,
        Score,
        binary_format,
        extracted,
        first_answer,
        get_reward,
        length_penalty,
        ordering_credit,
        ordering_partial,
        release_format,
        score_response,
        squeeze_tags,
        tpru,
    )
    from .shared import InputError
except ImportError:  # loaded by path, as EasyR1 and verl load a reward file: no package
    # to import from relatively, so this file's own package, from an installed tpru.
    from tpru.score.reward_functions import (
        CONTEXT_KEYS,
        ORDERING_METHODS,
        REWARDS,
        RewardFn,
        Score,
        binary_format,
        extracted,
        first_answer,
        get_reward,
        length_penalty,
        ordering_credit,
        ordering_partial,
        release_format,
        score_response,
        squeeze_tags,
        tpru,
    )
    from tpru.score.shared import InputError

__all__ = [
    "CONTEXT_KEYS", "ORDERING_METHODS", "REWARDS", "REWARD_NAME", "REWARD_TYPE", "RewardFn",
    "Score", "binary_format", "completion_text", "compute_score", "easyr1_batch",
    "easyr1_reward_inputs", "easyr1_sequential", "extracted", "first_answer", "get_reward",
    "length_penalty", "main", "ordering_credit", "ordering_partial", "release_format",
    "score_response", "squeeze_tags", "tpru", "trl_reward", "verl_compute_score",
]

REWARD_NAME = "tpru"
"""EasyR1's name for this module's reward (newer EasyR1 reads it)."""

REWARD_TYPE = "batch"
"""EasyR1 calls the named function with a list of reward inputs (newer EasyR1 reads it)."""


# --- trainer adapters ---------------------------------------------------------------------

def _same_length(responses: Sequence[Any], ground_truths: Sequence[Any]) -> None:
    if len(responses) != len(ground_truths):
        raise ValueError(f"{len(responses)} responses for {len(ground_truths)} ground truths")


def compute_score(predicts: list[str], ground_truths: list[str],
                  format_weight: float = 0.1) -> list[Score]:
    """The release's batch interface (older EasyR1 batch rewards): `tpru` per response."""
    _same_length(predicts, ground_truths)
    return [tpru(predict, truth, format_weight=format_weight)
            for predict, truth in zip(predicts, ground_truths, strict=True)]


def easyr1_batch(responses: list[str], ground_truths: list[str], *, reward: str = "tpru",
                 **config: Any) -> list[Score]:
    """Older EasyR1, batch reward type: ``fn(responses, ground_truths) -> [Score]``."""
    _same_length(responses, ground_truths)
    return [score_response(reward, response, truth, **config)
            for response, truth in zip(responses, ground_truths, strict=True)]


def easyr1_sequential(response: str, ground_truth: str, *, reward: str = "tpru",
                      **config: Any) -> Score:
    """Older EasyR1, sequential reward type: ``fn(response, ground_truth) -> Score``."""
    return score_response(reward, response, ground_truth, **config)


def _one_input(item: Mapping[str, Any], reward: str, config: Mapping[str, Any]) -> Score:
    length = item.get("response_length")
    context = {"response_length": None if length is None else int(length),
               "options": item.get("options"), "n_images": item.get("n_images")}
    return score_response(reward, item["response"], item["ground_truth"], context, **config)


@overload
def easyr1_reward_inputs(reward_inputs: list[dict[str, Any]], *, reward: str = ...,
                         **config: Any) -> list[Score]: ...


@overload
def easyr1_reward_inputs(reward_inputs: dict[str, Any], *, reward: str = ...,
                         **config: Any) -> Score: ...


def easyr1_reward_inputs(reward_inputs: list[dict[str, Any]] | dict[str, Any], *,
                         reward: str = "tpru", **config: Any) -> list[Score] | Score:
    """Newer EasyR1: ``fn(reward_inputs)``, dicts of response, response_length, ground_truth.

    A list (``REWARD_TYPE = "batch"``) gives a list of scores; a single dict
    (a config overriding the type to sequential) gives one score.
    """
    if isinstance(reward_inputs, Mapping):
        return _one_input(reward_inputs, reward, config)
    return [_one_input(item, reward, config) for item in reward_inputs]


def main(*args: Any, **kwargs: Any) -> list[Score] | Score:
    """The function EasyR1 calls when its config names this file without ``:function``.

    Accepts every EasyR1 shape: ``(reward_inputs)`` as a list or one dict,
    ``(responses, ground_truths)`` lists, or ``(response, ground_truth)``.
    """
    if len(args) == 1:
        inputs: list[dict[str, Any]] | dict[str, Any] = args[0]
        return easyr1_reward_inputs(inputs, **kwargs)
    if len(args) == 2 and isinstance(args[0], str):
        return easyr1_sequential(args[0], args[1], **kwargs)
    if len(args) == 2:
        return easyr1_batch(list(args[0]), list(args[1]), **kwargs)
    raise TypeError(f"main() takes reward inputs or (responses, ground_truths), got {len(args)} "
                    "positional arguments")


def verl_compute_score(data_source: str, solution_str: str, ground_truth: str,
                       extra_info: Mapping[str, Any] | None = None, *, reward: str = "tpru",
                       return_dict: bool = True, reward_router_address: Any = None,
                       reward_model_tokenizer: Any = None, **config: Any) -> float | Score:
    """verl's custom reward: ``compute_score(data_source, solution_str, ground_truth, extra_info)``.

    Returns ``{"score": overall, <parts>}`` (verl takes ``score`` and logs the
    rest), or the bare overall float with ``return_dict=False`` for verl
    versions that expect a number. ``options`` and ``n_images`` in
    `extra_info` reach rewards that use them. verl's reward loop also passes
    ``reward_router_address`` and ``reward_model_tokenizer`` (for model-based
    rewards); these rule-based rewards ignore them.
    """
    context = {key: (extra_info or {}).get(key) for key in ("options", "n_images")}
    score = score_response(reward, solution_str, ground_truth, context, **config)
    if not return_dict:
        return score["overall"]
    parts = {key: value for key, value in score.items() if key != "overall"}
    return {"score": score["overall"], **parts}


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or chat messages whose content is text or parts."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    texts = []
    for message in completion or []:
        content = message.get("content") if isinstance(message, Mapping) else message
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, Sequence):
            texts.extend(str(part.get("text") or "") for part in content
                         if isinstance(part, Mapping) and part.get("type", "text") == "text")
    return "".join(texts)


def trl_reward(name: str = "tpru", **config: Any) -> Callable[..., list[float | None]]:
    """A TRL reward function ``f(completions, **columns) -> [float | None]`` for reward `name`.

    The gold answer comes from the dataset's ``answer`` column (or
    ``solution``); a row whose gold is missing gets None, which TRL skips.
    ``completion_ids`` gives the length in tokens, and ``options`` and
    ``n_images`` columns reach rewards that use them. The function's
    ``__name__`` is `name`, which TRL logs the reward under.
    """
    fn = get_reward(name)

    def reward_fn(completions: Sequence[Any], **columns: Any) -> list[float | None]:
        golds = columns.get("answer", columns.get("solution"))
        if golds is None:
            raise InputError(f"reward {name!r}: the dataset has no 'answer' or 'solution' column "
                             f"(columns given: {', '.join(sorted(columns)) or 'none'})")
        _same_length(completions, golds)
        scores: list[float | None] = []
        for i, completion in enumerate(completions):
            if golds[i] is None:
                scores.append(None)
                continue
            context = {key: columns[key][i] for key in ("options", "n_images")
                       if columns.get(key) is not None}
            if columns.get("completion_ids") is not None:
                context["response_length"] = len(columns["completion_ids"][i])
            text = completion_text(completion)
            scores.append(score_response(fn, text, golds[i], context, **config)["overall"])
        return scores

    reward_fn.__name__ = reward_fn.__qualname__ = name
    return reward_fn
