"""Run folders written by hand in the runner's format, for the report tests.

A run folder is ``run.json`` and ``results.jsonl`` (one scored item per
line). These writers do not use the runner, so the report is tested against
the format, not against the runner's behaviour. Item images are real PNGs
written beside the run (relative paths) or elsewhere (absolute paths).

Three runs, with their expected numbers worked out by hand in the docstrings:
`tpru_run` (TPRU-Test), `muirbench_run` (answerable/unanswerable twins) and
`lego_run` (LEGO-Puzzles' 11 categories, in the ``task`` field as the loader
writes them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

NONE = "None of the choices provided"
IMG = "<image>"


def write_image(path: Path, index: int) -> str:
    """A distinct, saturated 64x48 PNG at `path`; returns `path` as text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (64, 48), ((index * 67) % 256, (index * 131 + 90) % 256, 40))
    draw = ImageDraw.Draw(image)
    draw.rectangle((6 + index % 5 * 6, 8, 30 + index % 5 * 6, 40), fill=(240, 240, 250))
    draw.text((3, 3), str(index), fill=(0, 0, 0))
    image.save(path, format="PNG")
    return str(path)


def record(item_id: str, *, correct: bool, task: str, answer: str = "A",
           prediction: str | None = None, rule: str = "answer_tag",
           **fields: Any) -> dict[str, Any]:
    """One ``results.jsonl`` line with every field of the format; `fields` override."""
    if prediction is None and correct:
        prediction = answer
    line: dict[str, Any] = {
        "id": item_id, "benchmark": "tpru-test", "task": task, "category": None,
        "scenario": None, "negative": None, "answerable": None, "counterpart": None,
        "answer": answer, "prediction": prediction, "rule": rule if prediction else "none",
        "correct": correct,
        "response": f"<think>looking at the frames</think><answer>{prediction or '?'}</answer>",
        "error": None, "question": "Which is it?", "options": ["x", "y", NONE],
        "images": [], "usage": {"prompt_tokens": 120, "completion_tokens": 14}}
    line.update(fields)
    return line


def write_run(folder: Path, info: dict[str, Any], lines: list[dict[str, Any]], *,
              tail: str = "") -> Path:
    """Write ``run.json`` and ``results.jsonl`` (plus `tail`, e.g. a half-written line)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    text = "".join(json.dumps(line) + "\n" for line in lines) + tail
    (folder / "results.jsonl").write_text(text, encoding="utf-8")
    return folder


def run_info(model: str, backend: str, benchmark: Any, **extra: Any) -> dict[str, Any]:
    info = {"tpru_version": "0.1.0", "model": model, "backend": backend,
            "backend_options": {"max_new_tokens": 256}, "benchmark": benchmark,
            "benchmark_source": "local", "prompt": "tpru", "seed": 0, "limit": None,
            "started": "2026-01-01T00:00:00+00:00", "counts": {}}
    info.update(extra)
    return info


def _ordering(folder: Path, item_id: str, first: int, *, correct: bool, prediction: str,
              scenario: str, negative: bool) -> dict[str, Any]:
    images = [f"images/{item_id}-{k}.png" for k in range(4)]
    for k, relative in enumerate(images):
        write_image(folder / relative, first + k)
    question = "Put the frames in order. " + " ".join(f"Image {n}: {IMG}" for n in range(1, 5))
    answer = "D" if negative else "C"
    return record(item_id, correct=correct, task="ordering", answer=answer,
                  prediction=prediction, scenario=scenario, negative=negative,
                  question=question, options=["1 2 3 4", "2 1 4 3", "3 1 2 4", NONE],
                  images=images)


def _frame_choice(folder: Path, item_id: str, task: str, first: int, *, correct: bool,
                  prediction: str | None, scenario: str, negative: bool,
                  image_dir: Path | None = None, **fields: Any) -> dict[str, Any]:
    where = image_dir if image_dir is not None else folder / "images"
    paths = [write_image(where / f"{item_id}-{k}.png", first + k) for k in range(6)]
    images = paths if image_dir is not None else [f"images/{Path(p).name}" for p in paths]
    step = "3" if task == "next_frame" else "1"
    question = f"Steps shown: {IMG} {IMG} {IMG}. Which frame is step {step}?"
    answer = "D" if negative else "B"
    return record(item_id, correct=correct, task=task, answer=answer, prediction=prediction,
                  scenario=scenario, negative=negative, question=question,
                  options=[IMG, IMG, IMG, NONE], images=images, **fields)


def tpru_run(folder: Path, *, model: str = "Qwen/Qwen2.5-VL-7B-Instruct",
             shared_images: Path | None = None) -> Path:
    """A TPRU-Test run: 10 items, 7 right.

    By task: ordering 3/4, next_frame 2/3, prev_frame 2/3. By scenario: robot
    3/3, lego 2/3, gui 0/2, nav 2/2. Negative 1/3, positive 6/7. One backend
    error (next-3). Failed: ord-3, next-3, prev-2. Also in the file: an
    earlier errored line for next-1 (retried with --resume, so superseded)
    and a half-written last line.
    """
    shared = shared_images if shared_images is not None else folder.parent / "shared-images"
    letters = ["Image A: <image>", "Image B: <image>", "Image C: <image>", "Image D: <image>"]
    seq_images = [f"images/ord-let-{k}.png" for k in range(4)]
    for k, relative in enumerate(seq_images):
        write_image(folder / relative, 40 + k)
    retried = _frame_choice(folder, "next-1", "next_frame", 10, correct=False, prediction=None,
                            scenario="robot", negative=False, error="HTTP 503: overloaded",
                            response="")
    lines = [
        _ordering(folder, "ord-1", 0, correct=True, prediction="C", scenario="robot",
                  negative=False),
        retried,
        _ordering(folder, "ord-2", 4, correct=True, prediction="C", scenario="lego",
                  negative=False),
        _ordering(folder, "ord-3", 8, correct=False, prediction="A", scenario="gui",
                  negative=True),
        record("ord-let", correct=True, task="ordering", answer="CABD", rule="letter_sequence",
               scenario="nav", negative=False, options=None, images=seq_images,
               question="Order the lettered frames. " + " ".join(letters)),
        _frame_choice(folder, "next-1", "next_frame", 10, correct=True, prediction="B",
                      scenario="robot", negative=False),
        _frame_choice(folder, "next-2", "next_frame", 16, correct=True, prediction="D",
                      scenario="lego", negative=True, image_dir=shared),
        _frame_choice(folder, "next-3", "next_frame", 22, correct=False, prediction=None,
                      scenario="gui", negative=False, error="timeout after 60 s", response=""),
        _frame_choice(folder, "prev-1", "prev_frame", 28, correct=True, prediction="B",
                      scenario="robot", negative=False),
        _frame_choice(folder, "prev-2", "prev_frame", 34, correct=False, prediction="A",
                      scenario="lego", negative=True, rule="bare_letter",
                      response="I think it is A & not <b>B</b>."),
        _frame_choice(folder, "prev-3", "prev_frame", 46, correct=True, prediction="B",
                      scenario="nav", negative=False),
    ]
    half = json.dumps(record("prev-4", correct=True, task="prev_frame"))[:40]
    return write_run(folder, run_info(model, f"hf:{model}", "tpru-test"), lines, tail=half)


MUIR_FAILED = ("mb-2u", "mb-3")


def muirbench_run(folder: Path, *, model: str = "Qwen2.5-VL-3B-Instruct") -> Path:
    """A MuirBench run: 9 items, 7 right; 4 twin pairs, 2 with both right.

    Answerable 4/5, unanswerable 3/4. Tasks: Ordering 4/4, Counting 2/3,
    Visual Retrieval 1/2. Pairs are linked in both directions (mb-1, mb-4),
    answerable to twin only (mb-2), twin to answerable only (mb-3); mb-5 names
    a twin that is not in the run (unpaired 1).
    """
    def item(item_id: str, task: str, correct: bool, answerable: bool,
             counterpart: str | None, first: int) -> dict[str, Any]:
        images = [write_image(folder / "img" / f"{item_id}-{k}.png", first + k)
                  for k in range(2)]
        answer = "A" if answerable else "C"
        return record(item_id, correct=correct, task=task, answer=answer,
                      prediction=answer if correct else "B", benchmark="muirbench",
                      category="temporal", scenario="photo", answerable=answerable,
                      counterpart=counterpart, question=f"Look at {IMG} and {IMG}.",
                      options=["first", "second", NONE], images=images)

    lines = [
        item("mb-1", "Ordering", True, True, "mb-1u", 0),
        item("mb-1u", "Ordering", True, False, "mb-1", 2),
        item("mb-2", "Counting", True, True, "mb-2u", 4),
        item("mb-2u", "Counting", False, False, None, 6),
        item("mb-3", "Visual Retrieval", False, True, None, 8),
        item("mb-3u", "Visual Retrieval", True, False, "mb-3", 10),
        item("mb-4", "Ordering", True, True, "mb-4u", 12),
        item("mb-4u", "Ordering", True, False, "mb-4", 14),
        item("mb-5", "Counting", True, True, "mb-99", 16),
    ]
    info = run_info(model, f"vllm:/models/{model}", {"name": "muirbench",
                                                     "source": "MUIRBENCH/MUIRBENCH"})
    return write_run(folder, info, lines)


LEGO_CATEGORIES = ("Height", "Adjacency", "Rotation", "Multiview", "Next-Step", "Dependency",
                   "Rotation_Status", "Position", "Backwards", "Ordering", "Outlier")


def lego_run(folder: Path, *, model: str = "gpt-4o-2024-08-06", field: str = "task") -> Path:
    """A LEGO-Puzzles run: 2 items per category; category number i (0-based, in
    `LEGO_CATEGORIES` order) has ``i % 3`` of them right: 10 right of 22.

    The category names are in `field` ("task" as the loader writes them, or
    "category"); the other field holds "spatial".
    """
    lines = []
    for index, name in enumerate(LEGO_CATEGORIES):
        right = index % 3
        for k in range(2):
            image = write_image(folder / "img" / f"lego-{index}-{k}.png", 50 + index * 2 + k)
            groups = {"task": name, "category": "spatial"} if field == "task" else \
                {"task": "spatial", "category": name}
            lines.append(record(f"lego-{index}-{k}", correct=k < right, benchmark="lego-puzzles",
                                prediction="A" if k < right else "C", answer="A",
                                question=f"Which brick is highest? {IMG}",
                                options=["red", "blue", "green", "yellow"], images=[image],
                                **groups))
    return write_run(folder, run_info(model, f"openai:{model}", "LEGO-Puzzles"), lines)
