"""Prompt builders: each protocol's exact text, and one placeholder per image in order."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_files import IMG, NONE, ORDERING_PROBLEM

from tpru.dataset import Dataset
from tpru.eval.benchmarks import load_benchmark
from tpru.eval.items import Item
from tpru.eval.prompts import PROMPTS, render_prompt
from tpru.export.common import (
    BUILTIN_FORMAT_PROMPT,
    formatted_prompt,
    load_format_prompt,
    make_formatter,
)

THINK = ("\n\nFirst reason about the images step by step inside <think> </think> tags, then "
         "give your final answer inside <answer> </answer> tags.")


def _item(**fields: object) -> Item:
    base: dict[str, object] = {
        "id": "q1", "benchmark": "muirbench", "question": f"{IMG} Which image matches?",
        "options": (IMG, IMG, NONE), "answer": "B", "images": ("q.png", "a.png", "b.png"),
        "task": "Visual Retrieval"}
    base.update(fields)
    return Item(**base)  # type: ignore[arg-type]


def test_muirbench_protocol_text() -> None:
    expected = (f"{IMG} Which image matches?\nA. {IMG}\nB. {IMG}\nC. {NONE}\n"
                "Answer with the option's letter from the given choices directly.")
    assert render_prompt(_item(), "muirbench") == expected
    assert render_prompt(_item(), "default") == expected


def test_muirbench_authors_protocol_text() -> None:
    """MuirBench's own ``create_prompt`` (hint on), on the item VLMEvalKit's test renders."""
    assert render_prompt(_item(), "muirbench-authors") == (
        f"Question: {IMG} Which image matches?\nChoices:\n(A) {IMG}\n(B) {IMG}\n(C) {NONE}\n"
        "Hint: Please provide the correct option letter, such as A, B, C, D, directly.\n"
        "Answer:")


def test_muirbench_authors_protocol_for_the_letter_form() -> None:
    item = _item(question=f"A {IMG} B {IMG}. Order them. ", options=None, answer="BA",
                 images=("a", "b"))
    assert render_prompt(item, "muirbench-authors") == (
        f"Question: A {IMG} B {IMG}. Order them. \nHint: Answer with the sequence of letters "
        "in the correct order directly, for example CABD.\nAnswer:")


def test_direct_prompt_for_the_letter_form_asks_for_letters() -> None:
    item = _item(question=f"A {IMG} B {IMG} C {IMG}. Order them.", options=None, answer="CAB",
                 images=("a", "b", "c"))
    assert render_prompt(item, "default") == (
        f"A {IMG} B {IMG} C {IMG}. Order them.\nAnswer with the sequence of letters in the "
        "correct order directly, for example CABD.")


def test_lego_protocol_choice_with_hint() -> None:
    item = _item(benchmark="lego-puzzles", question=f"Is {IMG} higher than {IMG}?",
                 options=("Yes", "No"), answer="A", images=("a", "b"),
                 meta={"hint": "Look at the red brick.", "images_first": False})
    assert render_prompt(item, "lego") == (
        f"Hint: Look at the red brick.\nQuestion: Is {IMG} higher than {IMG}?\nOptions:\n"
        "A. Yes\nB. No\nPlease select the correct answer from the options above. \n")


def test_lego_protocol_sort_and_images_first() -> None:
    sort = _item(benchmark="lego-puzzles", question=f"Build {IMG} in order.",
                 options=(IMG, IMG, IMG, IMG), answer="BDAC", images=tuple("abcde"), meta={})
    assert render_prompt(sort, "lego") == (
        f"Question: Build {IMG} in order.\nOptions:\nA. {IMG}\nB. {IMG}\nC. {IMG}\nD. {IMG}\n"
        "Please respond with only the sequence of letters (e.g., 'BDAC') that correctly "
        "orders the steps.\n")
    first = _item(benchmark="lego-puzzles", question=f"{IMG}{IMG}\nHow far was it rotated?",
                  options=("0", "90"), answer="B", images=("a", "b"),
                  meta={"images_first": True})
    assert render_prompt(first, "lego") == (
        f"{IMG}{IMG}Question: How far was it rotated?\nOptions:\nA. 0\nB. 90\n"
        "Please select the correct answer from the options above. \n")


def test_tpru_prompt_is_the_training_prompt_of_a_dataset_sample(tpru_dataset: Path,
                                                                cache_dir: Path) -> None:
    formatter = make_formatter(load_format_prompt(BUILTIN_FORMAT_PROMPT))
    samples = {s.id: s for s in Dataset.open(tpru_dataset).samples()}
    items = list(load_benchmark(tpru_dataset, cache_dir=cache_dir).items())
    forms = set()
    for item in items:
        assert render_prompt(item, "tpru") == formatted_prompt(samples[item.id], formatter)
        forms.add(item.answer_form)
    assert forms == {"choice", "sequence"}  # both forms of ordering are built


def test_tpru_prompt_keeps_the_published_problem(tpru_test_file: Path, cache_dir: Path) -> None:
    items = list(load_benchmark(f"tpru-test:{tpru_test_file}", cache_dir=cache_dir).items())
    prompt = render_prompt(items[0], "tpru")
    assert prompt.startswith(ORDERING_PROBLEM + THINK)
    assert prompt.endswith("for example <answer>CABD</answer>.")


def test_every_prompt_on_every_benchmark_has_one_placeholder_per_image(
        muirbench_file: Path, lego_file: Path, tpru_test_file: Path, tpru_dataset: Path,
        cache_dir: Path) -> None:
    specs = [f"muirbench:{muirbench_file}", f"lego-puzzles:{lego_file}",
             f"tpru-test:{tpru_test_file}", str(tpru_dataset)]
    for spec in specs:
        bench = load_benchmark(spec, cache_dir=cache_dir)
        assert bench.default_prompt in PROMPTS
        for item in bench.items():
            for name in PROMPTS:
                text = render_prompt(item, name)
                assert text.count(IMG) == len(item.images)
                # the question's placeholders come first, as in item.images
                assert item.question.split(IMG)[0].strip() in text


def test_a_prompt_with_a_stray_placeholder_is_refused() -> None:
    item = _item(benchmark="lego-puzzles", options=("Yes", "No"), answer="A", images=("q",),
                 question=f"{IMG} Higher?", meta={"hint": f"Compare with {IMG}"})
    with pytest.raises(ValueError, match="2 <image> placeholders for 1 images"):
        render_prompt(item, "lego")
    with pytest.raises(KeyError):
        render_prompt(item, "mmmu")
