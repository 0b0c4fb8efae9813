"""What every exporter shares: the prompt text, the format prompt, splits, images
and the staged, atomic output folder.

Nothing here imports pyarrow or datasets, so the rendering can be used (and
tested) without the ``export`` extra.

Example:
    >>> from tpru.schema import Sample
    >>> s = Sample(id="s1", task="next_frame", scenario="robot", episode_id="e1",
    ...            question="Step 1 <image>. Which is step 2?",
    ...            options=("<image>", "None of the choices provided"), answer="A",
    ...            images=("images/a.jpg", "images/b.jpg"))
    >>> print(problem_text(s))
    Step 1 <image>. Which is step 2?
    A. <image>
    B. None of the choices provided
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tpru.curriculum import ordered_samples
from tpru.dataset import Dataset
from tpru.diagnostics import InputError
from tpru.files import check_output_folder, mark_output, remove_stale_temps
from tpru.schema import IMAGE_PLACEHOLDER, Sample, option_letter

log = logging.getLogger("tpru.export")

BUILTIN_FORMAT_PROMPT = "builtin"
"""Value of the ``format_prompt`` option that picks tpru's packaged template."""

EXPORT_KIND = "export"
"""The kind `staged_output` marks an export folder with (see `tpru.files`)."""

FORMAT_PROMPT_FILE = "format_prompt.jinja"
"""Name of the packaged think/answer template (and of its copy in an EasyR1 export)."""


def problem_text(sample: Sample) -> str:
    """The text a model sees for `sample`: the question, then one line per option.

    It is EasyR1's ``problem`` and the ``{{ content }}`` of a format prompt
    (`formatted_prompt`); `tpru.eval.prompts.render_prompt` is something else:
    an evaluation protocol's whole prompt for a benchmark item.

    An image option keeps its ``<image>`` placeholder ("A. <image>"), so the
    placeholders appear in the same order as ``sample.images``: the question's
    images first, then the option images. The letter form of ordering
    (``options`` is None) is the question alone.
    """
    text = sample.question.rstrip()
    if sample.options is not None:
        lines = [f"{option_letter(i)}. {option}" for i, option in enumerate(sample.options)]
        text = text + "\n" + "\n".join(lines)
    check_placeholders(text, len(sample.images), sample.id)
    return text


def check_placeholders(text: str, n_images: int, sample_id: str) -> None:
    """Fail loudly when `text` does not hold exactly one ``<image>`` per image.

    Trainers split the prompt on the literal placeholder; a mismatch would
    pair text with the wrong image or crash the trainer far from the cause.
    """
    found = text.count(IMAGE_PLACEHOLDER)
    if found != n_images:
        raise AssertionError(f"sample {sample_id!r}: {found} {IMAGE_PLACEHOLDER} placeholders "
                             f"for {n_images} images")


def load_format_prompt(source: str | os.PathLike[str] | None) -> str | None:
    """The text of a format prompt template.

    Args:
        source: `BUILTIN_FORMAT_PROMPT` for tpru's think/answer template, the
            path of a jinja file with ``{{ content }}``, or None for none.
    """
    if source is None:
        return None
    if str(source) == BUILTIN_FORMAT_PROMPT:
        resource = importlib.resources.files("tpru") / "templates" / FORMAT_PROMPT_FILE
        return resource.read_text(encoding="utf-8")
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{path}: format prompt template not found")
    text = path.read_text(encoding="utf-8")
    if "content" not in text:
        raise InputError(f"{path}: format prompt template never uses {{{{ content }}}}")
    return text


_SIMPLE_SLOT = re.compile(r"\{\{\s*content\s*(\|\s*trim\s*)?\}\}")


def make_formatter(template: str | None) -> Callable[[str], str]:
    """A function that puts a prompt into `template` (identity when None).

    Renders with jinja2, as EasyR1 does. Without jinja2 installed, a template
    whose only jinja is ``{{ content }}`` or ``{{ content | trim }}`` still
    works; anything richer asks for jinja2.
    """
    if template is None:
        return lambda content: content
    try:
        import jinja2
    except ImportError:
        if "{%" in _SIMPLE_SLOT.sub("", template) or "{{" in _SIMPLE_SLOT.sub("", template):
            raise InputError("this format prompt template needs jinja2; "
                             "install it with: pip install jinja2") from None

        def substitute(content: str) -> str:
            def fill(match: re.Match[str]) -> str:
                return content.strip() if match.group(1) else content
            # jinja drops one trailing newline of the template by default; match it.
            return _SIMPLE_SLOT.sub(fill, template.removesuffix("\n"))
        return substitute
    compiled = jinja2.Template(template)
    return lambda content: compiled.render(content=content)


def formatted_prompt(sample: Sample, formatter: Callable[[str], str]) -> str:
    """`problem_text` put through `formatter`, still one placeholder per image."""
    text = formatter(problem_text(sample))
    if text.count(IMAGE_PLACEHOLDER) != len(sample.images):
        raise InputError(f"the format prompt template adds or removes {IMAGE_PLACEHOLDER} "
                         f"placeholders (sample {sample.id!r}); it must use {{{{ content }}}} "
                         "once and contain no placeholder of its own")
    return text


def select_splits(dataset: Dataset, splits: Sequence[str] | None) -> list[str]:
    """The splits to export: all of the dataset's by default; unknown names are refused."""
    available = dataset.splits
    chosen = available if splits is None else list(dict.fromkeys(splits))
    if not chosen:
        raise InputError(f"{dataset.root}: no splits to export")
    unknown = [s for s in chosen if s not in available]
    if unknown:
        raise InputError(f"{dataset.root}: no split {', '.join(map(repr, unknown))} "
                         f"(splits: {', '.join(available) or 'none'})")
    return chosen


def split_samples(dataset: Dataset, split: str, order: str = "dataset",
                  seed: int = 0) -> Iterable[Sample]:
    """The samples of `split` in `order` (`tpru.curriculum.ORDERS`), drawn with `seed`.

    ``dataset`` (every exporter's default) streams them as the dataset stores
    them; ``shuffled`` and ``curriculum`` read the split's records first (the
    images are still read one sample at a time).
    """
    return ordered_samples(dataset.samples(split), order, seed=seed,
                           where=str(dataset.split_path(split)))


def image_bytes(dataset: Dataset, relative: str) -> bytes:
    """The file content of one of the dataset's images, with a one-line error if missing."""
    path = dataset.image_path(relative)
    try:
        return path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read image ({err.strerror or err})") from None


def absolute_image_path(dataset: Dataset, relative: str) -> str:
    """The absolute path of an image, as text, for formats that store paths.

    The file is opened once, so a missing or unreadable image fails the export
    with the same one-line error as `image_bytes` instead of leaving a row that
    points at nothing.
    """
    path = dataset.image_path(relative)
    try:
        path.open("rb").close()
    except OSError as err:
        raise InputError(f"{path}: cannot read image ({err.strerror or err})") from None
    return str(path.resolve())


@dataclass
class Stage:
    """A temporary folder beside the output; `written` is filled in on commit."""

    path: Path
    written: list[Path] = field(default_factory=list)


@contextmanager
def staged_output(out: str | os.PathLike[str], *, overwrite: bool = False,
                  inputs: Sequence[str | os.PathLike[str]] = (),
                  kind: str = EXPORT_KIND) -> Iterator[Stage]:
    """Write an export into a temporary folder beside `out`, then move it into place.

    A reader never sees a half-written export: the folder is renamed over
    `out` (``os.replace``) only when every file is complete, and removed when
    the export fails. `out` may not be, contain or lie inside one of
    `inputs`. An existing non-empty `out` is replaced only with `overwrite`,
    and only when tpru wrote it: it carries the `tpru.files.OUTPUT_MARKER` of
    `kind`, which every staged output leaves (and which ``written`` does not
    list). The old folder is moved aside and deleted after the new one is in
    place. Temporary folders that a killed earlier write to `out` left are
    removed first.

    Yields:
        a `Stage` whose ``path`` is the folder to write to; after the block,
        ``written`` lists the files at their final paths under `out`.
    """
    target = Path(out)
    check_output_folder(target, kind=kind, overwrite=overwrite, inputs=inputs)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    stage = Stage(Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp",
                                        dir=target.parent)))
    try:
        yield stage
        stage.path.chmod(0o755)  # mkdtemp makes it private; an export is shared
        files = sorted(p.relative_to(stage.path) for p in stage.path.rglob("*") if p.is_file())
        mark_output(stage.path, kind)
        _move_into_place(stage.path, target)
    except BaseException:
        shutil.rmtree(stage.path, ignore_errors=True)
        raise
    stage.written = [target / f for f in files]
    log.info("wrote %d files to %s", len(files), target)


def _move_into_place(stage: Path, target: Path) -> None:
    if target.is_dir() and any(target.iterdir()):
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        os.replace(target, old / target.name)
        os.replace(stage, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        if target.is_dir():
            target.rmdir()  # empty: replacing a directory is not portable
        os.replace(stage, target)
