"""The random and blind baselines, and `open_backend`'s parsing of backend specs."""

from __future__ import annotations

import random
import re
import sys
from collections import Counter
from collections.abc import Sequence
from importlib.util import find_spec

import pytest

from tpru.builder.tasks import Header, next_frame, ordering_letters, ordering_options
from tpru.diagnostics import InputError
from tpru.export.common import problem_text
from tpru.models import BACKENDS, open_backend
from tpru.models.base import Request, Response
from tpru.models.baselines import (
    BlindBackend,
    RandomBackend,
    parse_labels,
    parse_options,
    strip_images,
)
from tpru.schema import NONE_OPTION, Sample

FORMAT_PROMPT = ("\n\nFirst reason about the images step by step inside <think> </think> tags, "
                 "then give your final answer inside <answer> </answer> tags.")


def _request(sample: Sample, suffix: str = "") -> Request:
    return Request(sample.id, problem_text(sample) + suffix, sample.images)


def _samples(count: int) -> list[Sample]:
    """Real prompts from tpru's builder: ordering with options, letters, and next frame."""
    rng = random.Random(0)
    frames = [f"images/f{i}.jpg" for i in range(5)]
    distractors = [f"images/d{i}.jpg" for i in range(4)]
    samples = []
    for i in range(count):
        header = Header(id=f"s{i}", scenario="robot", episode_id=f"e{i}")
        kind = i % 3
        if kind == 0:
            samples.append(ordering_options(header, frames[:4], "", candidates=4, gold=i % 5,
                                            negative_kind=None, rng=rng))
        elif kind == 1:
            samples.append(ordering_letters(header, frames[: 3 + i % 3], "", rng=rng))
        else:
            samples.append(next_frame(header, frames, distractors, "", candidates=4, gold=i % 5,
                                      negative_kind=None, rng=rng))
    return samples


def _answer(response: Response) -> str:
    match = re.fullmatch(r"<answer>([A-Z]+)</answer>", response.text)
    assert match, response.text
    return match.group(1)


def test_options_are_read_from_builder_and_benchmark_prompts() -> None:
    sample = _samples(3)[2]  # next frame: 4 image options and the None option
    assert parse_options(problem_text(sample)) == list(sample.options or ())
    muir = ("Which image shows the next step? <image>\nA. <image>\nB. a cat\nC. "
            f"{NONE_OPTION}\nAnswer with the option's letter from the given choices directly.")
    assert parse_options(muir) == ["<image>", "a cat", NONE_OPTION]
    lego = "Question: Which?\nOptions:\nA. 1\nB. 2\nC. 3\nD. 4\nPlease select the answer. \n"
    assert parse_options(lego) == ["1", "2", "3", "4"]
    assert parse_options("(A) left\n(B) right") == ["left", "right"]
    assert parse_options("A. only one option") == []
    assert parse_options("Answer A. or B.") == []
    # The last lettered run counts: an example list in the question does not.
    assert parse_options("e.g.\nA. x\nB. y\nNow choose:\nA. p\nB. q\nC. r") == ["p", "q", "r"]


def test_labels_are_read_from_letter_ordering_prompts() -> None:
    sample = _samples(2)[1]
    assert parse_labels(problem_text(sample)) == len(sample.images)
    assert parse_labels("Put the images labeled as A, B, C, and D in order.") == 4
    assert parse_labels("Image A: \nImage B: \n") == 2
    assert parse_labels("What is the answer?") == 0


def test_random_answers_are_valid() -> None:
    samples = _samples(60)
    backend = RandomBackend(seed=0)
    responses = backend.generate([_request(s, FORMAT_PROMPT) for s in samples])
    assert [r.id for r in responses] == [s.id for s in samples]
    for sample, response in zip(samples, responses, strict=True):
        answer = _answer(response)
        if sample.options is None:
            assert sorted(answer) == [chr(ord("A") + i) for i in range(len(sample.images))]
        else:
            assert len(answer) == 1 and ord(answer) - ord("A") < len(sample.options)


def test_random_is_reproducible_and_independent_of_order() -> None:
    requests = [_request(s) for s in _samples(30)]
    first = RandomBackend(seed=3).generate(requests)
    again = RandomBackend(seed=3).generate(list(reversed(requests)))
    assert [r.text for r in first] == [r.text for r in reversed(again)]
    one_by_one = [RandomBackend(seed=3).generate([r])[0] for r in requests]
    assert first == one_by_one
    other = RandomBackend(seed=4).generate(requests)
    assert [r.text for r in first] != [r.text for r in other]


def test_random_covers_every_choice_evenly() -> None:
    prompt = "Which?\n" + "\n".join(f"{chr(65 + i)}. option {i}" for i in range(5))
    responses = RandomBackend().generate([Request(f"q{i}", prompt) for i in range(1000)])
    counts = Counter(_answer(r) for r in responses)
    assert set(counts) == set("ABCDE")
    assert all(150 <= count <= 250 for count in counts.values()), counts


def test_random_orders_lettered_options_when_asked_for_a_sequence() -> None:
    prompt = ("Question: Sort the steps.\nOptions:\nA. <image>\nB. <image>\nC. <image>\n"
              "D. <image>\nPlease respond with only the sequence of letters (e.g., 'BDAC') "
              "that correctly orders the steps.\n")
    request = Request("lego-1", prompt, ("a", "b", "c", "d"))
    assert sorted(_answer(RandomBackend().generate([request])[0])) == list("ABCD")


def test_random_without_options_or_labels_is_an_error_response() -> None:
    [response] = RandomBackend().generate([Request("free", "Describe the weather.")])
    assert response.text == "" and response.error is not None
    assert "no lettered option lines" in response.error


class _CountImages:
    """A backend that reports what it was sent: the images and placeholders per request."""

    name = "count"

    def __init__(self) -> None:
        self.seen: list[Request] = []

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        self.seen.extend(requests)
        return [Response(r.id, f"{len(r.images)} {r.prompt.count('<image>')}") for r in requests]


def test_blind_removes_every_image_and_placeholder() -> None:
    inner = _CountImages()
    blind = BlindBackend(inner)
    assert blind.name == "blind:count"
    request = Request("q", "Step 1 <image>, step 2 <image>.\nA. <image>\nB. None",
                      ("a.png", "b.png", "c.png"), max_new_tokens=7, temperature=0.5, seed=9,
                      system="sys")
    [response] = blind.generate([request])
    assert response.text == "0 0"
    [sent] = inner.seen
    assert sent == Request("q", "Step 1 , step 2 .\nA. \nB. None", (), 7, 0.5, 9, "sys")
    assert strip_images(request) == sent


def test_blind_random_answers_like_random_on_the_same_text() -> None:
    requests = [_request(s) for s in _samples(9)]
    assert [r.text for r in BlindBackend(RandomBackend()).generate(requests)] == \
        [r.text for r in RandomBackend().generate(requests)]


def test_open_backend_parses_every_kind() -> None:
    assert set(BACKENDS) == {"hf", "vllm", "openai", "random", "blind", "ray"}
    plain = open_backend("random")
    assert isinstance(plain, RandomBackend) and plain.name == "random" and plain.seed == 0
    seeded = open_backend("random", seed=5)
    assert isinstance(seeded, RandomBackend) and seeded.seed == 5
    blind = open_backend("blind:random", seed=2)
    assert isinstance(blind, BlindBackend) and blind.name == "blind:random(seed=2)"
    assert isinstance(blind.inner, RandomBackend) and blind.inner.seed == 2
    nested = open_backend("blind:blind:random")
    assert isinstance(nested, BlindBackend) and isinstance(nested.inner, BlindBackend)


@pytest.mark.parametrize(("spec", "message"), [
    ("", "unknown backend kind ''"),
    ("gpt4", "unknown backend kind 'gpt4'.*kinds: blind, hf, openai, random, ray, vllm"),
    ("llama:foo", "unknown backend kind 'llama'"),
    ("random:3", "'random' takes no name"),
    ("hf", "not of the form hf:NAME"),
    ("hf:", "not of the form hf:NAME"),
    ("openai:", "not of the form openai:NAME"),
    ("blind", "not of the form blind:<another backend>"),
    ("blind:", "not of the form blind:<another backend>"),
    ("blind:nope", "unknown backend kind 'nope'"),
])
def test_open_backend_refuses_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        open_backend(spec)


def test_open_backend_refuses_unknown_options() -> None:
    with pytest.raises(InputError, match=r"'random' has no option 'temperature' \(options: seed\)"):
        open_backend("random", temperature=1.0)
    with pytest.raises(InputError, match="no option 'bogus'"):
        open_backend("blind:random", bogus=1)


def test_a_missing_dependency_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # Import of transformers (or of torch, for a fresh process) fails as if not installed.
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(InputError, match=r"backend 'hf' needs .*pip install 'tpru\[eval\]'"):
        open_backend("hf:some/model")
    monkeypatch.delitem(sys.modules, "tpru.models.hf", raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(InputError, match=r"backend 'hf' needs torch; install it with: pip"):
        open_backend("hf:some/model")


@pytest.mark.skipif(find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_without_vllm_fails_with_an_install_hint() -> None:
    with pytest.raises(InputError, match="vllm"):
        open_backend("vllm:some/model")


@pytest.mark.skipif(find_spec("tpru.models.openai") is None or find_spec("httpx") is None,
                    reason="the openai backend or httpx is not here")
def test_open_backend_builds_openai_with_its_options() -> None:
    backend = open_backend("openai:tiny", base_url="http://127.0.0.1:8000/v1", concurrency=2)
    assert backend.name == "openai:tiny"
    assert open_backend("blind:openai:tiny", base_url="http://127.0.0.1:8000/v1").name == \
        "blind:openai:tiny"
    with pytest.raises(InputError, match="no option 'batch_size'"):
        open_backend("openai:tiny", batch_size=4)
