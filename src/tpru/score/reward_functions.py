"""The reward functions: the TPRU release's reward, named alternatives, and their table.

A reward function takes one response and its gold answer and returns a
`Score`: a dict of floats with ``overall`` (what the trainer optimises) and
named parts (``format``, ``accuracy``, ...) that trainers log. Every function
in `REWARDS` has the shape ``fn(response, ground_truth, *, **config)``; it
declares the trainer context it needs (``response_length``, ``options``,
``n_images``) as keywords, and `score_response` passes it only to those that
do. The trainer adapters that call these are in `tpru.score.rewards`.

``tpru`` (the default) reproduces the reward of the TPRU release exactly:

1. whitespace around ``<``, ``>`` and ``/`` is removed from the response;
2. format: 0.2 if the whole response is ``<think>...</think>`` followed by
   ``<answer>`` one or more capital letters ``</answer>`` (dot matches
   newlines), else 0;
3. accuracy: the content of the first ``<answer>...</answer>``, stripped of
   whitespace and quotes, equals the ground truth exactly: 1, else 0 (the
   format is not required);
4. overall = 0.9 * accuracy + 0.1 * format, so the best score is 0.92.

Details the release leaves open are decided here: the answer tag is searched
with dot matching newlines too, and whitespace and both quote characters are
stripped together (``" 'B' "`` gives ``B``). The ground truth is compared as
given.

Example:
    >>> tpru("<think>C happens first.</think> <answer>CABD</answer>", "CABD")
    {'overall': 0.92, 'format': 0.2, 'accuracy': 1.0}
    >>> tpru("The answer is <answer>B</answer>.", "B")["overall"]
    0.9
"""

from __future__ import annotations

import inspect
import math
import re
import string
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache, partial
from typing import Any

from .extract import LETTERS, extract_answer, extract_choice, extract_sequence
from .shared import InputError

Score = dict[str, float]
"""``overall`` and named parts, all floats (trainers average every key)."""

RewardFn = Callable[..., Score]
"""``fn(response, ground_truth, **config_and_context) -> Score``."""

CONTEXT_KEYS = ("response_length", "options", "n_images")
"""What a trainer may know about a response besides its text, passed to rewards that ask."""

ORDERING_METHODS = ("displacement", "position", "kendall")

_TAG_SPACE = re.compile(r"\s*(<|>|/)\s*")
_FORMAT = re.compile(r"<think>.*</think><answer>[A-Z]+</answer>", re.S)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
_STRIP = string.whitespace + "'\""
_CHARS_PER_TOKEN = 4


# --- the release's reward -----------------------------------------------------------------

def squeeze_tags(response: str) -> str:
    """Remove whitespace around ``<``, ``>`` and ``/``, as the release does first."""
    return _TAG_SPACE.sub(r"\1", response)


def release_format(response: str) -> bool:
    """Whether the (squeezed) response is ``<think>...</think><answer>LETTERS</answer>``."""
    return _FORMAT.fullmatch(response) is not None


def first_answer(response: str) -> str | None:
    """The first ``<answer>`` content of a (squeezed) response, stripped of space and quotes."""
    match = _ANSWER.search(response)
    return match.group(1).strip(_STRIP) if match else None


def tpru(response: str, ground_truth: str, *, format_weight: float = 0.1) -> Score:
    """The TPRU release's reward: 0.9 * exact accuracy + 0.1 * a format score of 0.2."""
    text = squeeze_tags(response)
    fmt = 0.2 if release_format(text) else 0.0
    accuracy = 1.0 if first_answer(text) == ground_truth else 0.0
    return {"overall": (1 - format_weight) * accuracy + format_weight * fmt,
            "format": fmt, "accuracy": accuracy}


# --- alternatives -------------------------------------------------------------------------

def binary_format(response: str, ground_truth: str, *, format_weight: float = 0.1) -> Score:
    """As `tpru`, but the format score is 1 rather than 0.2, so the best score is 1.0.

    With the release's 0.2 the format term is worth at most 0.02, too little
    to teach the format; this is the usual EasyR1 weighting.
    """
    text = squeeze_tags(response)
    fmt = 1.0 if release_format(text) else 0.0
    accuracy = 1.0 if first_answer(text) == ground_truth else 0.0
    return {"overall": (1 - format_weight) * accuracy + format_weight * fmt,
            "format": fmt, "accuracy": accuracy}


def ordering_credit(predicted: str | None, gold: str, method: str = "displacement") -> float:
    """Partial credit in [0, 1] for a letter-sequence ordering against the gold one.

    Methods:
        displacement: 1 - sum |pos_pred(x) - pos_gold(x)| / floor(n^2 / 2), the
            published alternative (the denominator is the largest total
            displacement, that of the reversed order).
        position: the fraction of positions holding the right letter.
        kendall: the fraction of letter pairs in the right relative order,
            (tau + 1) / 2 for Kendall's tau.

    A prediction that is not a permutation of the gold letters scores 0; a
    gold answer that is not a sequence of distinct letters (a single choice
    letter) gets exact-match credit. Any length of order is scored (16 images,
    A..P, included): kendall counts the n(n-1)/2 pairs, the others are linear.

    Example:
        >>> ordering_credit("ACBD", "ABCD"), ordering_credit("ACBD", "ABCD", "position")
        (0.75, 0.5)
    """
    if method not in ORDERING_METHODS:
        raise InputError(f"unknown ordering credit {method!r} "
                         f"(methods: {', '.join(ORDERING_METHODS)})")
    if predicted is None:
        return 0.0
    n = len(gold)
    if n < 2 or len(set(gold)) != n or not gold.isalpha():
        return 1.0 if predicted == gold else 0.0
    if len(predicted) != n or sorted(predicted) != sorted(gold):
        return 0.0
    if method == "position":
        return sum(p == g for p, g in zip(predicted, gold, strict=True)) / n
    where = {letter: i for i, letter in enumerate(predicted)}
    ranks = [where[letter] for letter in gold]
    if method == "kendall":
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        return sum(ranks[i] < ranks[j] for i, j in pairs) / len(pairs)
    return 1.0 - sum(abs(rank - i) for i, rank in enumerate(ranks)) / (n * n // 2)


def ordering_partial(response: str, ground_truth: str, *, method: str = "displacement",
                     format_weight: float = 0.1) -> Score:
    """As `tpru`, with partial credit for letter-sequence orderings (see `ordering_credit`).

    All-or-nothing accuracy gives no learning signal on orderings a model
    never gets fully right; this one rewards getting closer. ``exact`` keeps
    the all-or-nothing accuracy for logging.
    """
    text = squeeze_tags(response)
    fmt = 0.2 if release_format(text) else 0.0
    answer = first_answer(text)
    credit = ordering_credit(answer, ground_truth, method)
    return {"overall": (1 - format_weight) * credit + format_weight * fmt, "format": fmt,
            "accuracy": credit, "exact": 1.0 if answer == ground_truth else 0.0}


def length_penalty(response: str, ground_truth: str, *, response_length: int | None = None,
                   max_length: int = 1024, buffer: int = 256, penalty: float = 0.5,
                   base: str = "tpru", **base_config: Any) -> Score:
    """Another reward (`base`) minus a penalty for over-long responses.

    The penalty is 0 up to ``max_length - buffer`` tokens, grows linearly over
    the buffer and is `penalty` from ``max_length`` on (the overlong shaping
    of DAPO). The length is `response_length` in tokens when the trainer gives
    it, else estimated as characters / 4.

    Example:
        >>> length_penalty("<answer>B</answer>", "B", response_length=896)["length_penalty"]
        0.25
    """
    if base == "length_penalty":
        raise InputError("length_penalty cannot use itself as its base reward")
    context = {key: base_config.pop(key) for key in CONTEXT_KEYS if key in base_config}
    context["response_length"] = response_length
    score = score_response(get_reward(base), response, ground_truth, context, **base_config)
    length = (response_length if response_length is not None
              else math.ceil(len(response) / _CHARS_PER_TOKEN))
    start = max_length - buffer
    if length <= start:
        cut = 0.0
    elif buffer <= 0 or length >= max_length:
        cut = penalty
    else:
        cut = penalty * (length - start) / buffer
    return {**score, "overall": score["overall"] - cut, "length_penalty": cut}


def extracted(response: str, ground_truth: str, *, options: Sequence[str] | None = None,
              n_images: int | None = None, format_weight: float = 0.0) -> Score:
    """Accuracy read leniently with `tpru.score.extract`, the way evaluation reads answers.

    Any shape the extractor knows counts ("The answer is (B)", ``\\boxed{B}``,
    "C -> A -> B -> D"). With `options` (the option texts) an answer written
    as an option's text or as "None of the choices provided" counts too;
    without them a single-letter gold is read as a choice among A..Z and a
    longer one as a letter sequence. The format (1 or 0, the release's
    pattern) only counts with a `format_weight`.
    """
    gold = ground_truth.strip()
    if options is not None:
        answer = extract_answer(response, options, n_images).answer
    elif len(gold) == 1 and gold in LETTERS:
        answer = extract_choice(response, ("<image>",) * len(LETTERS)).answer
    elif len(gold) > 1 and gold.isalpha() and gold.isupper():
        answer = extract_sequence(response, n_images or len(gold)).answer
    else:
        answer = first_answer(squeeze_tags(response))
    fmt = 1.0 if release_format(squeeze_tags(response)) else 0.0
    accuracy = 1.0 if answer == gold else 0.0
    return {"overall": (1 - format_weight) * accuracy + format_weight * fmt,
            "format": fmt, "accuracy": accuracy}


# --- the name table -----------------------------------------------------------------------

REWARDS: dict[str, RewardFn] = {
    "tpru": tpru,
    "binary_format": binary_format,
    "ordering_partial": ordering_partial,
    "ordering_position": partial(ordering_partial, method="position"),
    "ordering_kendall": partial(ordering_partial, method="kendall"),
    "length_penalty": length_penalty,
    "extracted": extracted,
}
"""Reward name -> function; ``tpru`` is the release's reward and the default."""


def get_reward(name: str) -> RewardFn:
    """The reward function called `name`; `InputError` listing the names if unknown."""
    if name not in REWARDS:
        raise InputError(f"unknown reward {name!r} (rewards: {', '.join(REWARDS)})")
    return REWARDS[name]


@lru_cache(maxsize=64)
def _accepted_context(fn: RewardFn) -> frozenset[str]:
    parameters = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return frozenset(CONTEXT_KEYS)
    return frozenset(CONTEXT_KEYS) & parameters.keys()


def score_response(reward: str | RewardFn, response: str, ground_truth: str,
                   context: Mapping[str, Any] | None = None, **config: Any) -> Score:
    """Score one response with a reward (a name or a function).

    `context` (keys in `CONTEXT_KEYS`) is passed only to a reward that takes
    it, so adapters can hand every reward what the trainer knows; `config`
    is passed as given, so a misspelt option fails loudly.
    """
    fn = get_reward(reward) if isinstance(reward, str) else reward
    accepted = _accepted_context(fn)
    extra = {k: v for k, v in (context or {}).items() if k in accepted and v is not None}
    return fn(str(response), str(ground_truth), **extra, **config)
