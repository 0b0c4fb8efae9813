"""Small benchmark files in each benchmark's published format, written offline.

- `write_muirbench`: MuirBench's parquet (``idx``, ``task``, ``image_relation``,
  ``image_type``, ``question``, ``options``, ``answer``, ``image_list`` as
  ``{"bytes", "path"}`` structs, ``counterpart_idx``), answerable items
  paired with unanswerable twins, image options included.
- `write_muirbench_tsv`: the same MuirBench items in VLMEvalKit's
  ``MUIRBench.tsv`` layout (options in columns ``A``.., base64 ``image``
  lists, ``category`` for the task).
- `write_lego_released`: LEGO-Puzzles' TSV with the 12 ``category`` labels of
  the release (``1_Adjacency`` ... ``12_rotate_composition``).
- `write_lego_tsv`: LEGO-Puzzles in VLMEvalKit's TSV (``index``, ``image``
  as a base64 list literal, one base64 string or another row's index,
  ``question`` with ``<image k>`` markers, ``A``..``D``, ``answer``,
  ``category``, ``question_type`` with a ``sort`` item).
- `write_tpru_test`: a TPRU-Test-like parquet (``problem`` with ``<image>``
  and option lines, ``answer``, ``images``), columns renamable.
- `build_tpru_dataset`: a dataset built by ``tpru build`` from synthetic episodes.

Each writer's docstring says what the loader must make of it; the
``EXPECTED_*`` tables hold those numbers for the tests.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

NONE = "None of the choices provided"
IMG = "<image>"


def png_bytes(index: int) -> bytes:
    """A distinct 40x30 PNG for `index` (different bytes for every index)."""
    image = Image.new("RGB", (40, 30), ((index * 67) % 256, (index * 131 + 90) % 256, 40))
    draw = ImageDraw.Draw(image)
    draw.rectangle((4 + index % 6 * 4, 6, 18 + index % 6 * 4, 24), fill=(240, 240, 250))
    draw.text((2, 2), str(index % 100), fill=(0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _struct(index: int) -> dict[str, Any]:
    return {"bytes": png_bytes(index), "path": f"img_{index}.png"}


_IMAGE_LIST = pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))

# --------------------------------------------------------------------- MuirBench

MUIR_PATTERNS = ("Visual Retrieval", "Ordering", "Image-Text Matching")


def _muir_pair(k: int, first_image: int) -> tuple[list[dict[str, Any]], int]:
    """Item 2k (answerable) and 2k+1 (its unanswerable twin) of pattern k % 3."""
    a, b = f"test_{2 * k}", f"test_{2 * k + 1}"
    pattern = MUIR_PATTERNS[k % 3]
    n = first_image
    if pattern == "Visual Retrieval":  # 1 question image, 2 image options
        question = f"{IMG} Which image shows the same building?"
        options, gold = [IMG, IMG, NONE], "B"
        count = 3
    elif pattern == "Ordering":  # 3 question images, text options
        question = f"Put the frames in order: {IMG} {IMG} {IMG}"
        options, gold = ["1 2 3", "3 2 1", "2 1 3", NONE], "C"
        count = 3
    else:  # 2 question images, text options
        question = f"{IMG} {IMG} Which caption fits both images?"
        options, gold = ["a red square", "a blue circle", NONE], "A"
        count = 2
    rows = []
    for idx, twin, answer in ((a, b, gold), (b, a, "ABCDEFG"[len(options) - 1])):
        rows.append({
            "idx": idx, "task": pattern, "image_relation": "temporal" if k % 2 else "complementary",
            "image_type": "photo" if k % 3 else "drawing", "question": question,
            "options": options, "answer": answer,
            "image_list": [_struct(i) for i in range(n, n + count)], "counterpart_idx": twin,
        })
        n += count  # the twin shows other images (it is unanswerable)
    return rows, n


def muirbench_rows(pairs: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    n = 0
    for k in range(pairs):
        pair, n = _muir_pair(k, n)
        rows.extend(pair)
    return rows


def write_muirbench(path: Path, *, pairs: int = 3, bad: bool = True) -> Path:
    """MuirBench's parquet: `pairs` answerable/unanswerable pairs (2 * pairs items).

    The twin of each pair has the None option as gold, so ``answerable`` is
    True for even ``idx`` and False for odd. With `bad`, one more row whose
    image list is one short of its placeholders: a counted skip.
    """
    rows = muirbench_rows(pairs)
    if bad:
        broken = dict(rows[0], idx="test_bad", counterpart_idx="")
        broken["image_list"] = rows[0]["image_list"][:-1]
        rows.append(broken)
    schema = pa.schema([("idx", pa.string()), ("task", pa.string()),
                        ("image_relation", pa.string()), ("image_type", pa.string()),
                        ("question", pa.string()), ("options", pa.list_(pa.string())),
                        ("answer", pa.string()), ("image_list", _IMAGE_LIST),
                        ("counterpart_idx", pa.string())])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def write_muirbench_tsv(path: Path, rows: list[dict[str, Any]], *,
                        extra_columns: bool = False) -> Path:
    """`rows` (from `muirbench_rows`) in VLMEvalKit's ``MUIRBench.tsv`` layout.

    Columns ``index``, ``question``, ``A``.. (as many as the longest option
    list; shorter rows leave the rest empty), ``answer``, ``image`` (a list
    literal of base64 PNGs; one bare base64 string for a one-image row) and
    ``category`` (the task). With `extra_columns`, also ``image_relation``,
    ``image_type`` and ``counterpart_idx``, which VLMEvalKit's file may lack.
    """
    letters = "ABCDEFG"[:max(len(r["options"]) for r in rows)]
    extra = ["image_relation", "image_type", "counterpart_idx"] if extra_columns else []
    header = ["index", "question", *letters, "answer", "image", "category", *extra]
    lines = ["\t".join(header)]
    for row in rows:
        encoded = [base64.b64encode(i["bytes"]).decode("ascii") for i in row["image_list"]]
        options = list(row["options"]) + [""] * (len(letters) - len(row["options"]))
        cells = [row["idx"], row["question"], *options, row["answer"],
                 encoded[0] if len(encoded) == 1 else repr(encoded), row["task"],
                 *(str(row[k]) for k in extra)]
        lines.append("\t".join(cells))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------ LEGO-Puzzles

LEGO_LABELS = {
    # released category label: (the paper's task, its ability level)
    "1_Adjacency": ("Adjacency", "spatial understanding"),
    "2_Dependency": ("Dependency", "single-step reasoning"),
    "3_Error": ("Outlier", "multi-step reasoning"),
    "4_Height": ("Height", "spatial understanding"),
    "5_Multi_view": ("Multiview", "spatial understanding"),
    "6_Next_step": ("Next-Step", "single-step reasoning"),
    "7_Ordering": ("Ordering", "multi-step reasoning"),
    "8_Position": ("Position", "single-step reasoning"),
    "9_reverse": ("Backwards", "multi-step reasoning"),
    "10_rotate_1": ("Rotation", "spatial understanding"),
    "11_rotate_2": ("Rotation", "spatial understanding"),
    "12_rotate_composition": ("Rotation Status", "single-step reasoning"),
}
"""The 12 labels of the release, and what the loader must make of each."""


def write_lego_released(path: Path, *, per_label: int = 2) -> Path:
    """LEGO-Puzzles as released: `per_label` rows for each of `LEGO_LABELS`.

    Columns ``index, image, question, A, B, C, D, answer, category,
    question_type``; ``7_Ordering`` rows are ``sort`` items over four image
    options (answer ``BDAC``), the rest choose among three texts (D empty).
    """
    header = ["index", "image", "question", "A", "B", "C", "D", "answer", "category",
              "question_type"]
    lines = ["\t".join(header)]
    n = 0
    for number, label in enumerate(LEGO_LABELS):
        for k in range(per_label):
            if label == "7_Ordering":
                cells = [repr([_b64(300 + n + i) for i in range(5)]),
                         "The model <image 1>. Put the steps in building order.",
                         "<image 2>", "<image 3>", "<image 4>", "<image 5>", "BDAC", "sort"]
            else:
                cells = [repr([_b64(300 + n), _b64(301 + n)]),
                         "Which brick is higher? <image 1> <image 2>", "left", "right",
                         "same", "", "ABC"[(number + k) % 3], "choice"]
            n += 5
            lines.append("\t".join([str(len(lines) - 1), *cells[:7], label, cells[7]]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


EXPECTED_LEGO = {
    # id: (task, answer, options, image count, question starts with images)
    "0": ("Height", "A", ("Yes", "No"), 2, False),
    "1": ("Next-Step", "B", (IMG, IMG, IMG), 5, False),
    "2": ("Ordering", "BDAC", (IMG, IMG, IMG, IMG), 5, False),
    "3": ("Rotation", "C", ("0", "90", "180", "270"), 1, True),
    "4": ("Rotation", "A", ("0", "90", "180", "270"), 1, True),
}
"""What the loader makes of `write_lego_tsv`'s rows (row 5 is skipped)."""


def _b64(index: int) -> str:
    return base64.b64encode(png_bytes(index)).decode("ascii")


def write_lego_tsv(path: Path) -> Path:
    """LEGO-Puzzles in VLMEvalKit's TSV: 6 rows, 5 good.

    Row 1 places image 2 before image 1 (markers name images out of order);
    row 2 is a sort item over 4 image options; row 3 has one base64 image
    and no markers; row 4 reuses row 3's image by naming its index; row 5
    has a marker for an image it does not have (a counted skip).
    """
    header = ["index", "image", "question", "A", "B", "C", "D", "answer", "category",
              "question_type"]
    rows = [
        ["0", repr([_b64(100), _b64(101)]),
         "<image 1> <image 2> Is the red brick higher than the blue one in the second view?",
         "Yes", "No", "", "", "A", "Height", "single"],
        ["1", repr([_b64(110 + i) for i in range(5)]),
         "Current state: <image 2>. Piece to add: <image 1>. What is the next state?",
         "<image 3>", "<image 4>", "<image 5>", "", "B", "Next-Step", "single"],
        ["2", repr([_b64(120 + i) for i in range(5)]),
         "The finished model is <image 1>. Put the steps A-D in building order.",
         "<image 2>", "<image 3>", "<image 4>", "<image 5>", "BDAC", "Ordering", "sort"],
        ["3", _b64(130), "How many degrees was the model rotated?", "0", "90", "180", "270",
         "C", "Rotation", "single"],
        ["4", "3", "How many degrees must it turn back?", "0", "90", "180", "270", "A",
         "Rotation", "single"],
        ["5", repr([_b64(140)]), "Compare <image 1> and <image 2>.", "Same", "Different", "",
         "", "B", "Multiview", "single"],
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(header)] + ["\t".join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------- TPRU-Test

ORDERING_PROBLEM = (
    "These photos show the process of stacking a red cube on a blue one. Below are 4 images "
    "in random order, labeled as 1, 2, 3, and 4. What is the correct sequence of these "
    f"images? {IMG}{IMG}{IMG}{IMG}\nA. 1 3 4 2\nB. 4 3 2 1\nC. 3 2 1 4\nD. 4 2 3 1\nE. {NONE}")
NEXT_PROBLEM = (
    f"The 1st step is {IMG}, followed by step 2 {IMG}. Select the correct option of step 3, "
    f"which can reach the final step 4 {IMG}.\nA. {IMG}\nB. {IMG}\nC. {NONE}\nD. {IMG}\n"
    f"E. {IMG}")
LETTER_PROBLEM = (
    "Below are 4 images in random order, labelled as A, B, C and D.\n"
    f"Image A: {IMG}\nImage B: {IMG}\nImage C: {IMG}\nImage D: {IMG}\n"
    "Give the letters in chronological order.")
INLINE_PROBLEM = (
    f"Folding a towel: {IMG}{IMG}{IMG} What is the correct order? Options: A. 1 2 3; "
    f"B. 3 2 1; C. {NONE}")

EXPECTED_TPRU = {
    # id: (answer, options, images, task, negative)
    "t1": ("A", ("1 3 4 2", "4 3 2 1", "3 2 1 4", "4 2 3 1", NONE), 4, "ordering", False),
    "t2": ("C", (IMG, IMG, NONE, IMG, IMG), 7, "choice", True),
    "t3": ("CABD", None, 4, "ordering", False),
    "t4": ("B", ("1 2 3", "3 2 1", NONE), 3, "ordering", False),
}
"""What the loader makes of `write_tpru_test`'s rows (t5 is skipped)."""


def tpru_rows() -> list[dict[str, Any]]:
    problems = [("t1", ORDERING_PROBLEM, "A"), ("t2", NEXT_PROBLEM, "C"),
                ("t3", LETTER_PROBLEM, "CABD"), ("t4", INLINE_PROBLEM, "<answer>B</answer>"),
                ("t5", f"Which one? {IMG}", "B")]  # a letter answer and no options: skipped
    rows = []
    n = 200
    for item_id, problem, answer in problems:
        count = problem.count(IMG)
        rows.append({"id": item_id, "problem": problem, "answer": answer,
                     "images": [_struct(i) for i in range(n, n + count)]})
        n += count
    return rows


def write_tpru_test(path: Path, *, rename: dict[str, str] | None = None,
                    drop: str | None = None) -> Path:
    """A TPRU-Test-like file: parquet (``.parquet``) or JSONL with image paths (``.jsonl``).

    Args:
        rename: column renames, e.g. ``{"problem": "question"}``.
        drop: a column to leave out (to test the missing-column error).
    """
    rows = tpru_rows()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        folder = path.parent / "images"
        folder.mkdir(exist_ok=True)
        for row in rows:
            names = []
            for image in row["images"]:
                (folder / image["path"]).write_bytes(image["bytes"])
                names.append(f"images/{image['path']}")
            row["images"] = names
    renamed = [{(rename or {}).get(k, k): v for k, v in row.items() if k != drop} for row in rows]
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in renamed), encoding="utf-8")
    else:
        pq.write_table(pa.Table.from_pylist(renamed), path)
    return path


# ------------------------------------------------------------------ tpru dataset


def build_tpru_dataset(root: Path) -> Path:
    """A dataset built by ``tpru build`` from 2 synthetic episodes per scenario."""
    from tpru.cli import main
    from tpru.sources.synthetic import write_synthetic_episodes

    episodes = root / "episodes"
    write_synthetic_episodes(episodes, episodes=2, frames=5, seed=0, size=(96, 72))
    out = root / "dataset"
    status = main(["build", "-q", "--source", f"frames:{episodes}", "--out", str(out),
                   "--seed", "0"])
    assert status == 0
    return out
