"""Model backends behind one protocol (see base.py), named ``KIND:NAME`` on the command line.

Specs:
    ``hf:PATH_OR_HUB_ID``      a transformers model (`tpru.models.hf.HFBackend`)
    ``vllm:PATH_OR_HUB_ID``    a vLLM engine (GPU machines only)
    ``openai:MODEL``           an OpenAI-compatible server (option ``base_url``, ...)
    ``random``                 a random valid answer per request (option ``seed``)
    ``blind:<another spec>``   that backend with every image removed from the prompts

The table maps a kind to ``"module:class"``, loaded through `tpru.registry`:
the module is imported only when that kind is used, so a missing optional
dependency matters only to the user who picks it, and the error says which
extra to install.

Example:
    >>> backend = open_backend("random", seed=1)
    >>> backend.name
    'random(seed=1)'
    >>> open_backend("blind:random").name
    'blind:random'
"""

from __future__ import annotations

from typing import Any

from tpru.diagnostics import InputError
from tpru.models.base import Backend, Request, Response
from tpru.registry import check_options, install_hint, load

__all__ = ["BACKENDS", "Backend", "Request", "Response", "check_backend", "open_backend"]

BACKENDS: dict[str, str] = {
    "hf": "tpru.models.hf:HFBackend",
    "vllm": "tpru.models.vllm:VLLMBackend",
    "openai": "tpru.models.openai:OpenAIBackend",
    "random": "tpru.models.baselines:RandomBackend",
    "blind": "tpru.models.baselines:BlindBackend",
}

EXTRAS: dict[str, str] = {"hf": "eval", "openai": "eval", "vllm": "vllm"}
"""Which extra of tpru a backend kind needs, for the install hint."""

_NO_NAME = frozenset({"random"})
"""Kinds written without a ``:NAME``."""


def open_backend(spec: str, **options: Any) -> Backend:
    """The backend named by `spec`, constructed with `options`.

    Args:
        spec: ``hf:PATH_OR_HUB_ID``, ``vllm:PATH_OR_HUB_ID``, ``openai:MODEL``,
            ``random`` or ``blind:<another spec>``.
        options: keyword options of the backend class (for ``blind:``, of the
            wrapped backend), e.g. ``batch_size=4`` for ``hf``; an option the
            class does not take is refused, naming the ones it does.

    Raises:
        InputError: an unknown kind, a malformed spec, an unknown option, or a
            missing optional dependency (with the command that installs it).
    """
    kind, name, factory = _resolve(spec, options)
    if kind == "blind":
        blind: Backend = factory(open_backend(name, **options))
        return blind
    # Backends import their heavy dependencies (transformers, vllm) when built.
    with install_hint(f"backend {kind!r}", extra=EXTRAS.get(kind)):
        backend: Backend = factory(**options) if kind in _NO_NAME else factory(name, **options)
    return backend


def check_backend(spec: str, **options: Any) -> None:
    """Everything `open_backend` checks before it loads a model: the spec's form, the
    options' names and that the backend's module imports. Cheap: nothing is loaded.

    Raises:
        InputError: as `open_backend`.
    """
    _resolve(spec, options)


def _resolve(spec: str, options: dict[str, Any]) -> tuple[str, str, Any]:
    """The kind, name and class of `spec`, with its form and `options` checked."""
    kind, sep, name = spec.partition(":")
    kinds = ", ".join(sorted(BACKENDS))
    if kind not in BACKENDS:
        raise InputError(f"unknown backend kind {kind!r} in {spec!r} (kinds: {kinds})")
    if kind in _NO_NAME:
        if sep:
            raise InputError(f"backend {spec!r}: {kind!r} takes no name (write just {kind!r})")
    elif not name:
        form = "blind:<another backend>" if kind == "blind" else f"{kind}:NAME"
        raise InputError(f"backend {spec!r} is not of the form {form}")
    if kind == "blind":
        _resolve(name, options)
        return kind, name, _load(kind)
    factory = _load(kind)
    # A backend's first argument is its NAME (none for kinds written without one).
    check_options(factory, options, what=f"backend {kind!r}",
                  leading=0 if kind in _NO_NAME else 1)
    return kind, name, factory


def _load(kind: str) -> Any:
    return load(BACKENDS[kind], what=f"backend {kind!r}", extra=EXTRAS.get(kind))
