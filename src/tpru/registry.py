"""The one lazy loader behind every name table (sources, backends, exporters, benchmarks, ...).

Each package's table maps a name to ``"module:attr"``. `load` imports the
module only when that name is used, so a missing optional dependency matters
only to the user who picks it, and the error says which extra to install.
`check_options` refuses keyword options the loaded callable does not take,
naming the ones it does, before anything expensive is built.

One rule decides what a failed import means. A module outside tpru that
cannot be imported (``ModuleNotFoundError`` for ``pyarrow``, say) is a
missing dependency: the user gets a one-line `InputError` with the install
hint. An ``ImportError`` about tpru's own modules, or one that names no
module, is a bug in tpru: it propagates unchanged, with its real message,
instead of sending the user to reinstall an extra that would not help.

Example:
    >>> load("json:dumps", what="the json encoder")([1])
    '[1]'
    >>> try:
    ...     load("no_such_module:thing", what="source kind 'x'", extra="data")
    ... except InputError as err:
    ...     print(err)
    source kind 'x' needs no_such_module; install it with: pip install 'tpru[data]'
    >>> def video(path, *, skips, fps=1.0): ...
    >>> try:
    ...     check_options(video, {"fsp": 2}, what="source kind 'video'", leading=1,
    ...                   fixed=["skips"])
    ... except InputError as err:
    ...     print(err)
    source kind 'video' has no option 'fsp' (options: fps)
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from tpru.diagnostics import InputError

__all__ = ["check_options", "install_hint", "load"]

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def load(target: str, *, what: str, extra: str | None = None, needs: str | None = None) -> Any:
    """The object `target` names (``"module:attr"``), its module imported now.

    Args:
        target: ``"package.module:attr"``, or a bare ``"package.module"`` for
            the module itself (an optional third-party dependency).
        what: who needs it, as the error starts, e.g. ``"backend 'hf'"``.
        extra: the extra of tpru that installs the dependency (``pip install
            'tpru[EXTRA]'``), or None for no hint (a user's own module).
        needs: what to install, in words, where the missing module's name
            alone would not say (e.g. a system library beside the package).

    Raises:
        InputError: a module outside tpru is missing (see `install_hint`), or
            the module has no attribute `attr`.
        ImportError: tpru's own code failed to import: a bug, not a missing extra.
    """
    module_name, sep, attr = target.partition(":")
    with install_hint(what, extra=extra, needs=needs):
        module = importlib.import_module(module_name)
    if not sep:
        return module
    try:
        return getattr(module, attr)
    except AttributeError:
        raise InputError(f"{what}: {module_name} has no attribute {attr!r}") from None


@contextmanager
def install_hint(what: str, *, extra: str | None = None,
                 needs: str | None = None) -> Iterator[None]:
    """Turn a missing third-party module, imported inside the block, into a one-line error.

    For code that imports its dependencies when it runs rather than when its
    module is loaded (a backend that loads transformers when built, a trainer
    that imports TRL). The arguments mean what they mean for `load`; the
    message is ``{what} needs {module}; install it with: pip install 'tpru[{extra}]'``.

    Raises:
        InputError: an ImportError naming a module outside tpru.
        ImportError: any other, unchanged (tpru's own modules, or no module named).
    """
    try:
        yield
    except ImportError as err:
        if not err.name or err.name.split(".")[0] == "tpru":
            raise
        needed = f"{needs} ({err.name} is missing)" if needs else err.name
        hint = f"; install it with: pip install 'tpru[{extra}]'" if extra else ""
        raise InputError(f"{what} needs {needed}{hint}") from None


def check_options(factory: Callable[..., Any], options: Mapping[str, Any], *, what: str,
                  leading: int = 0, fixed: Collection[str] = ()) -> None:
    """Refuse keyword `options` that `factory` does not take, naming the ones it does.

    Checked against the signature, before the call, so that a bad option is
    the user's one-line error and a TypeError raised inside the call stays a bug.
    A factory that takes ``**kwargs`` accepts any option.

    Args:
        factory: a class or function, as loaded from a table.
        options: the keyword options the user gave.
        what: who takes them, as the error starts, e.g. ``"export to 'hf'"``.
        leading: how many positional arguments the caller passes itself
            (a source's PATH, a backend's NAME); they are not options.
        fixed: keyword arguments the caller passes itself (``skips``,
            ``splits``); not options either.

    Raises:
        InputError: ``{what} has no option 'x' (options: a, b)``.
    """
    parameters = list(inspect.signature(factory).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    positional = [p.name for p in parameters if p.kind in _POSITIONAL]
    taken = {*positional[:leading], *fixed}
    accepted = [p.name for p in parameters if p.kind in _NAMED and p.name not in taken]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InputError(f"{what} has no option {', '.join(map(repr, unknown))} "
                         f"(options: {', '.join(accepted) or 'none'})")
