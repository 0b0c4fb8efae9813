"""Remote files (``gs://``, ``s3://``, ``memory://``, ...) read through fsspec.

A source that takes a folder may be given a URL instead: `RemotePath` is the
part of `pathlib.Path` such a source uses (join, name, parent, is_file,
read_text, glob, rglob), over an fsspec filesystem, and its ``str`` is the full
URL, so a frame reference built from it opens on any machine that has the
protocol's package (``gcsfs`` for ``gs://``, ``s3fs`` for ``s3://``) and
credentials. Local paths never come here: they are read with plain ``open()``.

Example:
    >>> is_url("gs://bucket/data"), is_url("/data/bridge")
    (True, False)
"""

from __future__ import annotations

import fnmatch
import os
from functools import total_ordering
from pathlib import PurePosixPath
from typing import IO, Any

from tpru.diagnostics import InputError, first_line


def is_url(path: object) -> bool:
    """Whether `path` is a URL (``protocol://...``) rather than a local path."""
    return isinstance(path, RemotePath) or (isinstance(path, str) and "://" in path)


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem of `url` and the path within it.

    Raises:
        InputError: fsspec, or the package of the URL's protocol, is not installed, or the
            protocol is unknown; one line naming what to install.
    """
    try:
        import fsspec
    except ImportError:
        raise InputError(f"{url}: reading a URL needs the fsspec package (the rlds extra: "
                         "pip install 'tpru[rlds]')") from None
    protocol = url.split("://", 1)[0]
    try:
        fs = fsspec.filesystem(protocol)
    except ImportError as err:
        raise InputError(f"{url}: {protocol}:// needs a package fsspec names: "
                         f"{first_line(err)}") from None
    except ValueError as err:
        raise InputError(f"{url}: {first_line(err)} (fsspec has no {protocol}:// "
                         "filesystem)") from None
    return fs, fs._strip_protocol(url)


def open_remote(url: str | RemotePath, **options: Any) -> tuple[IO[bytes], int]:
    """`url` opened for reading, and its size in bytes (`options` go to fsspec's open).

    Raises:
        OSError: the file cannot be opened (FileNotFoundError if it is not there), or its
            protocol cannot be read here (the message names the package).
    """
    if isinstance(url, RemotePath):
        fs, path = url.fs, url.path
    else:
        try:
            fs, path = filesystem(url)
        except InputError as err:
            raise OSError(str(err)) from None
    size = int(fs.size(path))
    return fs.open(path, "rb", **options), size


@total_ordering
class RemotePath:
    """A file or folder at a URL; the operations of `pathlib.Path` a dataset reader uses.

    Raises (constructing it):
        InputError: see `filesystem`.
    """

    def __init__(self, url: str, *, fs: Any = None) -> None:
        if fs is None:
            fs, url = filesystem(url)
        self.fs = fs
        self.path = url.rstrip("/") or "/"

    def _child(self, path: str) -> RemotePath:
        return RemotePath(path, fs=self.fs)

    def __str__(self) -> str:
        return str(self.fs.unstrip_protocol(self.path))

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and str(self) == str(other)

    def __lt__(self, other: RemotePath) -> bool:
        return self.path < other.path

    def __hash__(self) -> int:
        return hash(str(self))

    def __truediv__(self, name: str | os.PathLike[str]) -> RemotePath:
        return self._child(f"{self.path.rstrip('/')}/{os.fspath(name).lstrip('/')}")

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rpartition("/")[2]

    @property
    def parent(self) -> RemotePath:
        head = self.path.rstrip("/").rpartition("/")[0]
        return self._child(head or "/") if head or self.path.startswith("/") else self

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(p for p in self.path.split("/") if p)

    def relative_to(self, other: RemotePath) -> PurePosixPath:
        prefix = other.path.rstrip("/") + "/"
        if not self.path.startswith(prefix):
            raise ValueError(f"{self} is not under {other}")
        return PurePosixPath(self.path[len(prefix):])

    def is_file(self) -> bool:
        return bool(self.fs.isfile(self.path))

    def is_dir(self) -> bool:
        return bool(self.fs.isdir(self.path))

    def read_text(self, encoding: str = "utf-8") -> str:
        with self.fs.open(self.path, "rb") as file:
            return bytes(file.read()).decode(encoding)

    def glob(self, pattern: str) -> list[RemotePath]:
        """The files and folders matching `pattern` (relative to this folder)."""
        return [self._child(p) for p in sorted(self.fs.glob(f"{self.path}/{pattern}"))]

    def rglob(self, pattern: str) -> list[RemotePath]:
        """The files below this folder, at any depth, whose name matches `pattern`."""
        return [self._child(p) for p in sorted(self.fs.find(self.path))
                if fnmatch.fnmatchcase(p.rpartition("/")[2], pattern)]
