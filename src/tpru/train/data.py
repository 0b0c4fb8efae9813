"""The samples TRL trains on: loaded, completed for SFT, and checked against the token budget.

`open_train_dataset` returns one split as a `datasets.Dataset` in the columns of
tpru's TRL export (`tpru.export.trl`): ``prompt`` (one user turn whose content
interleaves text parts and ``{"type": "image"}`` parts), ``images`` (decoded to
PIL on access, paired with the image parts in order) and ``answer``. It reads:

- a dataset folder written by ``tpru build``: exported for TRL into
  ``<run>/data`` first, and reused while the dataset, split and format prompt
  stay the same (``data.json`` beside it records them);
- a TRL export (``tpru export --to trl``) or any folder saved with
  ``save_to_disk``;
- a data folder or file that ``datasets.load_dataset`` reads (parquet, JSON
  lines), or a hub dataset id. Rows with a ``problem`` text holding one
  ``<image>`` per image (the TPRU release's columns) get their ``prompt``
  built here, through the format prompt.

`check_prompt_lengths` renders every prompt as TRL will (its own chat-template
and multimodal helpers) and runs the model's processor on it with the images,
so the count includes the image tokens at the configured pixel bounds. A
sample over the budget stops training with its id, before any image token
can be cut off ("image features and image tokens do not match").
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from tpru import __version__
from tpru.curriculum import curriculum_positions
from tpru.dataset import BUILD_FILE, Dataset
from tpru.diagnostics import InputError, first_line
from tpru.export.common import BUILTIN_FORMAT_PROMPT, load_format_prompt, make_formatter
from tpru.export.trl import content_parts
from tpru.export.trl import features as trl_features
from tpru.progress import progress_bar
from tpru.schema import IMAGE_PLACEHOLDER
from tpru.train.config import DataConfig

log = logging.getLogger("tpru.train")

EXPORT_DIR = "data"
"""Where a tpru dataset folder is exported for TRL, inside the run folder."""

STAMP_FILE = "data.json"
"""Beside the export: what it was made from, so a changed dataset is exported again."""

_SAVED_MARKERS = ("dataset_dict.json", "state.json")
_FILE_BUILDERS = {".parquet": "parquet", ".json": "json", ".jsonl": "json"}


def open_train_dataset(config: DataConfig, run_dir: Path, *,
                       seed: int = 0) -> datasets.Dataset:
    """The split `config.split` of `config.path`, in the TRL export's columns.

    Args:
        config: where the samples are, how their prompts are rendered, and
            their order (``curriculum``: sorted here, easy to hard).
        run_dir: the run folder; a tpru dataset folder is exported into it.
        seed: seeds the order of samples of equal difficulty in a curriculum.

    Raises:
        InputError: the path or split does not exist, cannot be read, or
            lacks the columns (one line naming the path).
    """
    local = Path(config.path)
    if (local / BUILD_FILE).is_file():
        dataset = _exported_split(config, local, run_dir)
    elif local.exists():
        dataset = _load_local(config, local)
    else:
        dataset = _load_hub(config)
    dataset = _with_prompt(dataset, config)
    if config.order == "curriculum":
        dataset = curriculum_order(dataset, seed=seed,
                                   where=f"{config.path} (split {config.split})")
    if config.limit is not None:
        dataset = dataset.select(range(min(config.limit, dataset.num_rows)))
    if dataset.num_rows == 0:
        raise InputError(f"{config.path}: split {config.split!r} has no samples")
    log.info("training data: %s, split %s: %d samples", config.path, config.split,
             dataset.num_rows)
    return dataset


def curriculum_order(dataset: datasets.Dataset, *, seed: int, where: str) -> datasets.Dataset:
    """`dataset`'s rows easy to hard by their ``difficulty`` column; ties in a seeded order.

    Raises:
        InputError: no ``difficulty`` column, or a row without a score (one
            line naming `where`).
    """
    if "difficulty" not in dataset.column_names:
        raise InputError(f"{where}: data.order=curriculum needs a difficulty column (a TRL "
                         "export of a dataset built with difficulty scores, or a tpru dataset "
                         "folder); this data has none")
    scores = [None if score is None else float(score) for score in dataset["difficulty"]]
    ids = [str(i) for i in dataset["id"]] if "id" in dataset.column_names else None
    return dataset.select(curriculum_positions(scores, seed=seed, where=where, ids=ids))


def _exported_split(config: DataConfig, folder: Path, run_dir: Path) -> datasets.Dataset:
    """Export a tpru dataset folder for TRL into the run folder (or reuse the export)."""
    from tpru.export.trl import export

    out = run_dir / EXPORT_DIR
    stamp = {"tpru": __version__, "dataset": str(folder.resolve()),
             "build": _sha256((folder / BUILD_FILE).read_bytes()), "split": config.split,
             "format_prompt": config.format_prompt, "columns": sorted(trl_features())}
    if config.format_prompt not in (None, BUILTIN_FORMAT_PROMPT):
        stamp["format_prompt_text"] = load_format_prompt(config.format_prompt)
    stamp_path = run_dir / STAMP_FILE
    previous = _read_json(stamp_path)
    if previous != stamp or not (out / "dataset_dict.json").is_file():
        export(Dataset.open(folder), out, splits=[config.split], overwrite=True,
               format_prompt=config.format_prompt)
        stamp_path.write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    else:
        log.info("reusing the TRL export in %s", out)
    loaded = datasets.load_from_disk(str(out))
    assert isinstance(loaded, datasets.DatasetDict)
    return loaded[config.split]


def _load_local(config: DataConfig, path: Path) -> datasets.Dataset:
    """A folder saved with ``save_to_disk``, or data files ``load_dataset`` reads."""
    try:
        if path.is_dir() and any((path / marker).is_file() for marker in _SAVED_MARKERS):
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.Dataset):
                return loaded
            if config.split not in loaded:
                raise InputError(f"{path}: no split {config.split!r} "
                                 f"(splits: {', '.join(loaded) or 'none'})")
            return loaded[config.split]
        if path.is_file():
            builder = _FILE_BUILDERS.get(path.suffix.lower())
            if builder is None:
                raise InputError(f"{path}: cannot read {path.suffix or 'this'} files "
                                 f"(use {', '.join(_FILE_BUILDERS)}, or a dataset folder)")
            return _load(builder, data_files={config.split: str(path)}, split=config.split)
        return _load(str(path), split=config.split)
    except InputError:
        raise
    except (OSError, ValueError, datasets.exceptions.DatasetGenerationError) as err:
        raise InputError(f"{path}: cannot load as a dataset ({first_line(err)})") from None


def _load_hub(config: DataConfig) -> datasets.Dataset:
    if config.path.count("/") != 1 or config.path.startswith((".", "/")):
        raise InputError(f"{config.path}: no such dataset folder or file (a hub dataset id "
                         "reads OWNER/NAME)")
    try:
        return _load(config.path, split=config.split)
    except (OSError, ValueError, ConnectionError, datasets.exceptions.DatasetGenerationError) \
            as err:
        raise InputError(f"{config.path}: cannot load from the hub ({first_line(err)})") from None


def _load(path: str, **kwargs: Any) -> datasets.Dataset:
    loaded = datasets.load_dataset(path, **kwargs)
    assert isinstance(loaded, datasets.Dataset)
    return loaded


def _with_prompt(dataset: datasets.Dataset, config: DataConfig) -> datasets.Dataset:
    """Check the columns; build ``prompt`` from a ``problem`` text when that is what is there."""
    columns = set(dataset.column_names)
    where = f"{config.path} (split {config.split})"
    if "prompt" not in columns and "problem" in columns:
        formatter = make_formatter(load_format_prompt(config.format_prompt))
        prompts = [[{"role": "user", "content": content_parts(formatter(str(problem)))}]
                   for problem in dataset["problem"]]
        dataset = dataset.add_column("prompt", prompts)
        columns.add("prompt")
    missing = [c for c in ("prompt", "images") if c not in columns]
    if missing or not columns & {"answer", "solution"}:
        needed = ", ".join([*missing, *([] if columns & {"answer", "solution"} else ["answer"])])
        raise InputError(f"{where}: missing column(s) {needed} (columns: "
                         f"{', '.join(sorted(columns))}); expected a TRL export: prompt, "
                         "images, answer")
    if "answer" not in columns:
        dataset = dataset.add_column("answer", list(dataset["solution"]))
    images = dataset.features["images"]
    inner = getattr(images, "feature", None)
    if isinstance(inner, datasets.Value) and inner.dtype in ("string", "large_string"):
        dataset = dataset.cast_column("images", datasets.List(datasets.Image()))
    return dataset


# --- SFT targets ----------------------------------------------------------------------------

_REASONS = {
    "ordering": "Following the process from its first state to its last, the images' "
                "chronological order is the one answered.",
    "next_frame": "The candidate that follows the earlier steps and leads to the final step "
                  "is the one answered.",
    "prev_frame": "The candidate that comes just before the given steps is the one answered.",
}
_NEGATIVE_REASON = ("The description does not match the images, or the true step is not "
                    "among the candidates, so none of the choices fits.")


def sft_target(answer: str, *, task: str | None = None, negative: bool = False,
               target: str = "answer") -> str:
    """The text SFT teaches for one sample: the answer tag, after a short reasoning if asked.

    Example:
        >>> sft_target("C")
        '<answer>C</answer>'
        >>> sft_target("B", task="next_frame", target="reasoning")[:31]
        '<think>The candidate that follow'
    """
    tag = f"<answer>{answer}</answer>"
    if target == "answer":
        return tag
    if target != "reasoning":
        raise InputError(f"unknown SFT target {target!r} (targets: answer, reasoning)")
    reason = _NEGATIVE_REASON if negative else _REASONS.get(task or "", "The answer follows "
                                                                          "from the images.")
    return f"<think>{reason}</think>{tag}"


def with_sft_completions(dataset: datasets.Dataset, target: str) -> datasets.Dataset:
    """`dataset` with a ``completion`` column: one assistant turn holding `sft_target`.

    The images are not read or rewritten: only the text columns are touched.
    """
    answers = list(dataset["answer"])
    tasks = list(dataset["task"]) if "task" in dataset.column_names else [None] * len(answers)
    negatives = (list(dataset["negative"]) if "negative" in dataset.column_names
                 else [False] * len(answers))
    completions = [[{"role": "assistant", "content": [
        {"type": "text", "text": sft_target(str(a), task=t, negative=bool(n), target=target)}]}]
        for a, t, n in zip(answers, tasks, negatives, strict=True)]
    if "completion" in dataset.column_names:
        dataset = dataset.remove_columns("completion")
    return dataset.add_column("completion", completions)


# --- the token budget -----------------------------------------------------------------------

@dataclass(frozen=True)
class LengthReport:
    """Prompt (and completion) lengths in tokens, image tokens included.

    Attributes:
        samples: samples measured.
        longest_id, longest: the sample with the longest prompt and its length.
        mean: the mean prompt length.
        longest_completion: the longest completion (SFT targets), 0 if none.
    """

    samples: int
    longest_id: str
    longest: int
    mean: float
    longest_completion: int = 0


def prompt_lengths(dataset: datasets.Dataset, processor: Any, *, batch_size: int = 16,
                   show_progress: bool = True) -> tuple[list[str], list[int], list[int]]:
    """Ids, prompt lengths and completion lengths (0 without a ``completion`` column).

    Each prompt goes through the steps TRL takes: `prepare_multimodal_messages`
    puts the images into the image parts, `apply_chat_template` renders the
    turn with the generation prompt, and the processor expands every image
    into its tokens at the configured pixel bounds.
    """
    from trl.data_utils import apply_chat_template, prepare_multimodal_messages

    ids: list[str] = []
    prompts: list[int] = []
    completions: list[int] = []
    has_ids = "id" in dataset.column_names
    has_completion = "completion" in dataset.column_names
    with progress_bar("checking prompt lengths", show=show_progress, unit="samples",
                      total=dataset.num_rows) as bar:
        for start, batch in enumerate(dataset.iter(batch_size=batch_size)):
            rows = len(batch["prompt"])
            texts, images, ends = [], [], []
            for i in range(rows):
                row_id = str(batch["id"][i]) if has_ids else str(start * batch_size + i)
                row_images = list(batch["images"][i] or [])
                _check_image_parts(batch["prompt"][i], len(row_images), row_id)
                example: dict[str, Any] = {"prompt": prepare_multimodal_messages(
                    batch["prompt"][i], images=row_images)}
                if has_completion:
                    example["completion"] = prepare_multimodal_messages(batch["completion"][i])
                rendered = apply_chat_template(example, processor)
                ids.append(row_id)
                texts.append(rendered["prompt"])
                ends.append(rendered.get("completion", ""))
                images.extend(row_images)
            encoded = processor(text=texts, images=images or None, padding=True,
                                return_tensors="pt")
            prompts.extend(int(n) for n in encoded["attention_mask"].sum(dim=-1))
            if has_completion:
                tokens = processor.tokenizer(ends, add_special_tokens=False)["input_ids"]
                completions.extend(len(t) for t in tokens)
            else:
                completions.extend([0] * rows)
            bar.advance(rows)
    return ids, prompts, completions


def _check_image_parts(prompt: Sequence[dict[str, Any]], n_images: int, row_id: str) -> None:
    parts = sum(1 for message in prompt if isinstance(message.get("content"), list)
                for part in message["content"] if part.get("type") == "image")
    text = "".join(str(part.get("text") or "") for message in prompt
                   if isinstance(message.get("content"), list) for part in message["content"])
    if parts != n_images or IMAGE_PLACEHOLDER in text:
        raise InputError(f"sample {row_id!r}: {parts} image parts in the prompt for {n_images} "
                         "images (each image needs one {'type': 'image'} part, and no "
                         f"{IMAGE_PLACEHOLDER} may be left in the text)")


def check_prompt_lengths(dataset: datasets.Dataset, processor: Any, *, max_prompt_length: int,
                         max_completion_length: int | None = None, where: str = "data",
                         show_progress: bool = True) -> LengthReport:
    """Fail unless every prompt (and completion, when given) fits its budget in tokens.

    Under ``accelerate launch`` each process measures its share of the samples
    (about 45 ms a sample of five 640x480 images on one core) and all of them
    see every length, so they fail or go on together.

    Raises:
        InputError: naming how many samples are too long, the longest one, its
            length and what to change.
    """
    from accelerate import PartialState
    from accelerate.utils import gather_object

    state = PartialState()
    with state.split_between_processes(list(range(dataset.num_rows))) as share:
        measured = prompt_lengths(dataset.select(share), processor,
                                  show_progress=show_progress and state.is_main_process)
    ids, prompts, completions = (list(gather_object(part)) for part in measured)
    longest = max(range(len(ids)), key=prompts.__getitem__)
    over = [i for i, n in enumerate(prompts) if n > max_prompt_length]
    if over:
        raise InputError(
            f"{where}: {len(over)} of {len(ids)} prompts exceed max_prompt_length="
            f"{max_prompt_length} tokens (image tokens included); the longest is sample "
            f"{ids[longest]!r} with {prompts[longest]} tokens. Raise max_prompt_length, lower "
            "model.max_pixels, or leave those samples out")
    if max_completion_length is not None:
        worst = max(range(len(ids)), key=completions.__getitem__)
        if completions[worst] > max_completion_length:
            raise InputError(f"{where}: the target of sample {ids[worst]!r} takes "
                             f"{completions[worst]} tokens, over max_completion_length="
                             f"{max_completion_length}")
    report = LengthReport(samples=len(ids), longest_id=ids[longest], longest=prompts[longest],
                          mean=sum(prompts) / len(prompts), longest_completion=max(completions))
    log.info("prompt lengths fit: %d samples, longest %d tokens (sample %s), mean %.0f, "
             "budget %d", report.samples, report.longest, report.longest_id, report.mean,
             max_prompt_length)
    return report


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
