"""Export for VLMEvalKit: one custom multiple-choice TSV per split.

Layout: ``OUT/<name>_<split>.tsv`` (name ``TPRU_custom`` by default). Copy a
file to ``$LMUData/`` and run VLMEvalKit with ``--data <name>_<split>``; a TSV
with ``A``, ``B`` columns and images loads as a custom MCQ set.

Columns: ``index`` (unique int across the exported splits), ``image``,
``question``, ``A``, ``B``, ... (empty where a sample has fewer options),
``answer``, ``category`` (the task), ``l2-category`` (the scenario), ``split``,
``id`` (the tpru sample id, to trace a row back).

How images and their references are written, and why:

- ``image``: one image is a base64 string; several are a Python list literal
  of base64 strings, as VLMEvalKit writes multi-image rows. The list holds the
  question's images, then the option images, as in `Sample.images`.
- VLMEvalKit's MCQ prompt puts every image first, in list order, and the
  text after them; it does not place images at ``<image>``. So the question's
  k-th ``<image>`` becomes the marker ``<image k>`` (1-based position in the
  list), the convention of VLMEvalKit's multi-image sets such as
  LEGO-Puzzles and MMMU, which models that interleave images also recognise.
- Options are text in VLMEvalKit. An image option is written ``Image k``
  (k its position in the list) and the question ends with one sentence saying
  that an option "Image k" is the k-th image (`IMAGE_OPTION_NOTE`). A model that answers
  with the option text ("Image 5") is still matched by VLMEvalKit.
- Text keeps its words; line breaks are normalised to ``\\n`` so every reader
  of TSV splits rows alike.

VLMEvalKit's answer matcher looks for a single letter; it cannot score the
letter-sequence form of ordering ("CABD"). Those samples are skipped (and
counted in the log) unless ``include_ordering_letters=True``, which writes
them with no option columns filled.
"""

from __future__ import annotations

import ast
import base64
import csv
import re
from collections.abc import Sequence
from pathlib import Path

from tpru.curriculum import check_order
from tpru.dataset import Dataset
from tpru.diagnostics import InputError
from tpru.export.common import image_bytes, log, select_splits, split_samples, staged_output
from tpru.schema import IMAGE_OPTION, IMAGE_PLACEHOLDER, Sample, option_letter

DEFAULT_NAME = "TPRU_custom"

IMAGE_OPTION_NOTE = ('The images are numbered in the order they are given; '
                     'an option "Image k" is the k-th image.')
"""Appended to a question whose options are images. It names no marker, so a model
that places images at ``<image k>`` markers does not see an option image twice."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def image_marker(k: int) -> str:
    """The marker of the k-th image (1-based) in question text: ``<image k>``."""
    return f"<image {k}>"


def question_text(sample: Sample) -> str:
    """The question with numbered image markers, and a note when options are images."""
    pieces = sample.question.split(IMAGE_PLACEHOLDER)
    text = pieces[0] + "".join(image_marker(k) + piece for k, piece in enumerate(pieces[1:], 1))
    if sample.options is not None and IMAGE_OPTION in sample.options:
        text = text.rstrip() + "\n" + IMAGE_OPTION_NOTE
    return _one_line_ending(text)


def option_texts(sample: Sample) -> list[str]:
    """The options as VLMEvalKit text: an image option becomes ``Image k``."""
    if sample.options is None:
        return []
    texts = []
    k = sample.question.count(IMAGE_PLACEHOLDER)
    for option in sample.options:
        if option == IMAGE_OPTION:
            k += 1
            texts.append(f"Image {k}")
        else:
            texts.append(_one_line_ending(option))
    return texts


def image_cell(encoded: Sequence[str]) -> str:
    """The ``image`` cell: one base64 string, or a list literal of several."""
    if len(encoded) == 1:
        return encoded[0]
    literal = repr(list(encoded))
    assert ast.literal_eval(literal) == list(encoded)
    return literal


def _one_line_ending(text: str) -> str:
    # csv quotes fields with "\n" but not a lone "\r", which pandas then reads as a row break.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _encode(dataset: Dataset, relative: str) -> str:
    return base64.b64encode(image_bytes(dataset, relative)).decode("ascii")


def _max_options(dataset: Dataset, split: str) -> int:
    return max((len(s.options or ()) for s in dataset.samples(split)), default=0)


def _write_split(path: Path, dataset: Dataset, split: str, first_index: int,
                 include_ordering_letters: bool, order: str,
                 seed: int) -> tuple[int, int]:
    """Write one split's TSV; return (rows written, letter-form samples skipped)."""
    letters = [option_letter(i) for i in range(_max_options(dataset, split))]
    header = ["index", "image", "question", *letters, "answer", "category", "l2-category",
              "split", "id"]
    written = skipped = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        for sample in split_samples(dataset, split, order, seed):
            if sample.options is None and not include_ordering_letters:
                skipped += 1
                continue
            options = option_texts(sample)
            options += [""] * (len(letters) - len(options))
            writer.writerow([
                first_index + written,
                image_cell([_encode(dataset, rel) for rel in sample.images]),
                question_text(sample),
                *options,
                sample.answer,
                sample.task,
                sample.scenario,
                split,
                sample.id,
            ])
            written += 1
    return written, skipped


def export(dataset: Dataset, out: Path, *, splits: Sequence[str] | None = None,
           overwrite: bool = False, name: str = DEFAULT_NAME,
           include_ordering_letters: bool = False, order: str = "dataset",
           seed: int = 0) -> list[Path]:
    """Write `dataset` as VLMEvalKit custom MCQ TSV files under `out`.

    Args:
        splits: the splits to write (default: all).
        overwrite: replace an earlier export at `out` (never a folder tpru did not write).
        name: the file name prefix, which is also the VLMEvalKit dataset name
            with ``_<split>`` appended.
        include_ordering_letters: also write letter-sequence ordering samples,
            which VLMEvalKit's matcher cannot score.
        order: the order of each split's rows: ``dataset`` (as stored; the
            default), ``shuffled`` or ``curriculum`` (easy to hard by
            ``meta.difficulty.score``); see `tpru.curriculum`.
        seed: seeds ``shuffled`` and the order of ``curriculum`` ties.

    Returns:
        the files written.
    """
    check_order(order)
    if not _NAME.match(name):
        raise InputError(f"VLMEvalKit dataset name {name!r}: use letters, digits, '_', '.', '-'")
    chosen = select_splits(dataset, splits)
    with staged_output(out, overwrite=overwrite, inputs=[dataset.root]) as stage:
        index = 0
        for split in chosen:
            written, skipped = _write_split(stage.path / f"{name}_{split}.tsv", dataset, split,
                                            index, include_ordering_letters, order, seed)
            index += written
            log.info("vlmevalkit: %s: %d samples", split, written)
            if skipped:
                log.warning("vlmevalkit: %s: skipped %d letter-sequence ordering samples "
                            "(VLMEvalKit's matcher cannot score them; "
                            "include_ordering_letters=True keeps them)", split, skipped)
    return stage.written

