"""Writing outputs safely: never half a file, never over what tpru did not write.

Every command that writes a folder or a file checks its target here first:

- An output may not be, contain, or lie inside one of the command's inputs
  (`check_separate`): exporting a dataset into its own ``images/`` folder
  would delete the images it points at.
- ``--overwrite`` replaces only a folder tpru wrote (`check_output_folder`).
  A folder counts as tpru's when it is empty or carries the mark of its kind:
  a dataset its ``build.json``; an export, a training run or a demo folder
  the small file `OUTPUT_MARKER`, whose text names the kind ("export",
  "training run", ...), written inside it when it is made (`mark_output`).
  Anything else is refused, with or without ``--overwrite``.
- A single-file output (an HTML page, a report table) replaces an existing
  file only when that file starts the way tpru writes files of its kind
  (`check_output_file`), and is never written inside a dataset, export or
  run folder except under a name the command owns there (``view.html``). It is written
  atomically (`write_text_atomic`).

Example:
    >>> check_output_folder("exports/easyr1", kind="export", overwrite=True,
    ...                     inputs=["data/tpru"])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

from tpru.dataset import BUILD_FILE
from tpru.diagnostics import InputError

log = logging.getLogger("tpru.files")

OUTPUT_MARKER = ".tpru-output"
"""The hidden file that marks a folder tpru wrote; its text is the folder's kind."""

SIGNATURE_CHARS = 4096
"""How much of an existing file `check_output_file` reads to recognise it."""

PathLike = str | os.PathLike[str]


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to a hidden temporary file beside `path`, then rename it
    into place: a crash leaves the old file or the new one, never a part."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)


def mark_output(folder: Path, kind: str) -> None:
    """Leave the `OUTPUT_MARKER` of a `kind` output in `folder` (which must exist)."""
    (folder / OUTPUT_MARKER).write_text(kind + "\n", encoding="utf-8")


def is_marked(folder: Path, kind: str) -> bool:
    """Whether `folder` holds the `OUTPUT_MARKER` of a `kind` output."""
    try:
        return (folder / OUTPUT_MARKER).read_text(encoding="utf-8").strip() == kind
    except (OSError, UnicodeDecodeError):
        return False


def check_separate(out: PathLike, inputs: Iterable[PathLike], *, option: str = "--out") -> None:
    """Refuse an output that is, contains, or lies inside one of `inputs`.

    Paths are compared resolved (symlinks followed), so ``./ds`` and
    ``/abs/ds`` are the same folder. An input that does not exist is skipped.
    """
    target = Path(out).resolve()
    for given in inputs:
        source = Path(given)
        if not source.exists():
            continue
        resolved = source.resolve()
        if target == resolved:
            where = "is"
        elif resolved in target.parents:
            where = "lies inside"
        elif target in resolved.parents:
            where = "contains"
        else:
            continue
        raise InputError(f"{out}: {where} the input {source}; writing there would destroy "
                         f"it; choose another {option}")


def check_output_folder(out: PathLike, *, kind: str, overwrite: bool,
                        inputs: Iterable[PathLike] = (),
                        written_by: Callable[[Path], bool] | None = None,
                        option: str = "--out") -> bool:
    """Check that a command may write the folder `out`, before it writes anything.

    Args:
        out: the output folder.
        kind: what the command writes, as the marker and the messages name it
            ("export", "training run").
        overwrite: whether ``--overwrite`` was given.
        inputs: the command's input files and folders; `out` may not be,
            contain, or lie inside one (`check_separate`).
        written_by: how to recognise a folder of this kind that tpru wrote
            (default: it holds the `OUTPUT_MARKER` of `kind`; a dataset passes
            ``lambda p: (p / "build.json").is_file()``).
        option: the option that named `out`, for the messages.

    Returns:
        whether `out` holds an earlier `kind` output that will be replaced.

    Raises:
        InputError: `out` is an input or overlaps one, is a file, holds
            something tpru did not write as a `kind`, or holds an earlier
            output and `overwrite` is not set.
    """
    target = Path(out)
    check_separate(target, inputs, option=option)
    if not holds_files(target):
        return False
    recognise = written_by or (lambda folder: is_marked(folder, kind))
    if not target.is_dir() or not recognise(target):
        # --overwrite must never delete what tpru did not write.
        raise InputError(f"{target}: is not {_a(kind)} tpru wrote (and not empty); "
                         f"choose another {option}")
    if not overwrite:
        raise InputError(f"{target}: {_a(kind)} is already there; pass --overwrite to "
                         "replace it")
    return True


def holds_files(path: Path) -> bool:
    """Whether `path` is a file, or a folder with anything in it."""
    if not path.exists() and not path.is_symlink():
        return False
    return not path.is_dir() or any(path.iterdir())


def check_output_file(path: PathLike, *, kind: str, signature: str,
                      inputs: Iterable[PathLike] = (), owned_names: Collection[str] = (),
                      option: str = "--out") -> None:
    """Check that a command may write the single file `path` (an HTML page, a table).

    Args:
        path: the file to write.
        kind: what it is, for the messages ("report page").
        signature: text every file of this kind that tpru writes holds in its
            first `SIGNATURE_CHARS` characters (e.g. its ``<title>``); an
            existing file without it was not written by tpru and is kept.
        inputs: the command's input files; `path` may not be one of them, nor lie
            inside one (`check_separate`).
        owned_names: file names the command may write directly inside a
            folder tpru wrote (``view.html`` in a dataset or demo folder);
            anywhere else inside a dataset, export or run is refused.
        option: the option that named `path`, for the messages.

    Raises:
        InputError: `path` is a folder or an input, lies inside a dataset or
            another folder tpru wrote under a name the command does not own,
            or is an existing file tpru did not write as a `kind`.
    """
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{target}: is a folder; {option} takes a file name")
    check_separate(target, inputs, option=option)
    folder = output_around(target)
    if folder is not None and not (folder == target.resolve().parent
                                   and target.name in owned_names):
        raise InputError(f"{target}: lies inside {folder}, a folder tpru wrote (a dataset, "
                         f"export or run); choose another {option}")
    if target.exists() and signature not in _head(target):
        raise InputError(f"{target}: is not {_a(kind)} tpru wrote; choose another {option}")


def output_around(path: PathLike) -> Path | None:
    """The nearest folder above `path` (resolved) that tpru wrote, a dataset (its
    ``build.json``) or a marked output (`OUTPUT_MARKER`); None when there is none.
    Writing there would mix a new file into a dataset, an export or a run."""
    for folder in Path(path).resolve().parents:
        if (folder / BUILD_FILE).is_file() or (folder / OUTPUT_MARKER).is_file():
            return folder
    return None


def remove_stale_temps(target: Path) -> None:
    """Delete the temporary folders an interrupted write to `target` left beside it.

    `tpru.export.common.staged_output` writes into ``.NAME.XXXXXXXX.tmp`` beside
    ``NAME`` and moves an old folder aside into ``.NAME.XXXXXXXX.old``; a
    process killed outright (``kill -9``) cannot remove them. Only folders of
    exactly that pattern are removed.
    """
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[A-Za-z0-9_]{{8}}\.(tmp|old)")
    if not target.parent.is_dir():
        return
    for entry in target.parent.iterdir():
        if pattern.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
            log.warning("removing %s, left by an interrupted write to %s", entry, target)
            shutil.rmtree(entry, ignore_errors=True)


def _head(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return handle.read(SIGNATURE_CHARS).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _a(kind: str) -> str:
    return ("an " if kind[:1].lower() in "aeiou" else "a ") + kind
