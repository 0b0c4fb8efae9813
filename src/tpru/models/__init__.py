"""Model backends behind one protocol (see base.py), named ``KIND:NAME`` on the command line.

Specs:
    ``hf:PATH_OR_HUB_ID``      a transformers model (`tpru.models.hf.HFBackend`)
    ``vllm:PATH_OR_HUB_ID``    a vLLM engine (GPU machines only)
    ``openai:MODEL``           an OpenAI-compatible server (option ``base_url``, ...)
    ``random``                 a random valid answer per request (option ``seed``)
    ``blind:<another spec>``   that backend with every image removed from the prompts
    ``ray:<another spec>``     that backend on Ray actors, one copy per actor (options
                               ``actors``, ``gpus_per_actor``, ``cpus_per_actor``,
                               ``ray_address``; `tpru.models.ray_actors`)

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

from collections.abc import Mapping
from typing import Any

from tpru.diagnostics import InputError
from tpru.models.base import Backend, Request, Response
from tpru.registry import check_options, install_hint, load

__all__ = ["BACKENDS", "Backend", "Request", "Response", "answer_identity", "check_backend",
           "open_backend"]

BACKENDS: dict[str, str] = {
    "hf": "tpru.models.hf:HFBackend",
    "vllm": "tpru.models.vllm:VLLMBackend",
    "openai": "tpru.models.openai:OpenAIBackend",
    "random": "tpru.models.baselines:RandomBackend",
    "blind": "tpru.models.baselines:BlindBackend",
    "ray": "tpru.models.ray_actors:RayActorsBackend",
}

EXTRAS: dict[str, str] = {"hf": "eval", "openai": "eval", "vllm": "vllm", "ray": "ray"}
"""Which extra of tpru a backend kind needs, for the install hint."""

_NO_NAME = frozenset({"random"})
"""Kinds written without a ``:NAME``."""

_WRAPPERS = frozenset({"blind", "ray"})
"""Kinds whose NAME is another spec."""

RAY_OPTIONS = frozenset({"actors", "gpus_per_actor", "cpus_per_actor", "ray_address"})
"""The options of ``ray:`` itself; every other option goes to the backend it wraps."""


def open_backend(spec: str, **options: Any) -> Backend:
    """The backend named by `spec`, constructed with `options`.

    Args:
        spec: ``hf:PATH_OR_HUB_ID``, ``vllm:PATH_OR_HUB_ID``, ``openai:MODEL``,
            ``random``, ``blind:<another spec>`` or ``ray:<another spec>``.
        options: keyword options of the backend class (for ``blind:``, of the
            wrapped backend; for ``ray:``, its own options and the wrapped
            backend's), e.g. ``batch_size=4`` for ``hf``; an option the class
            does not take is refused, naming the ones it does.

    Raises:
        InputError: an unknown kind, a malformed spec, an unknown option, or a
            missing optional dependency (with the command that installs it).
    """
    kind, name, factory = _resolve(spec, options)
    if kind == "blind":
        blind: Backend = factory(open_backend(name, **options))
        return blind
    if kind == "ray":
        own, inner = _split(options)
        actors: Backend = factory(name, inner, **own)
        return actors
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
        form = f"{kind}:<another backend>" if kind in _WRAPPERS else f"{kind}:NAME"
        raise InputError(f"backend {spec!r} is not of the form {form}")
    if kind == "blind":
        _resolve(name, options)
        return kind, name, _load(kind)
    if kind == "ray":
        if name.partition(":")[0] == "ray":
            raise InputError(f"backend {spec!r}: a ray: backend cannot hold another")
        factory = _load(kind)
        _resolve(name, _split(options)[1])
        return kind, name, factory
    factory = _load(kind)
    # A backend's first argument is its NAME (none for kinds written without one).
    check_options(factory, options, what=f"backend {kind!r}",
                  leading=0 if kind in _NO_NAME else 1)
    return kind, name, factory


def answer_identity(spec: str, options: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The spec and options that decide what a backend answers, for a cache key: those of
    the backend a ``ray:`` spec wraps (where a model runs does not change its answers).

    Example:
        >>> answer_identity("blind:ray:hf:m", {"actors": 2, "dtype": "bfloat16"})
        ('blind:hf:m', {'dtype': 'bfloat16'})
    """
    kept: list[str] = []
    result = dict(options)
    while True:
        kind, sep, name = spec.partition(":")
        if kind not in _WRAPPERS or not sep:
            return "".join(kept) + spec, result
        if kind == "ray":
            result = {k: v for k, v in result.items() if k not in RAY_OPTIONS}
        else:
            kept.append(f"{kind}:")
        spec = name


def _split(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ``ray:`` backend's own options, and the rest (the wrapped backend's)."""
    own = {k: v for k, v in options.items() if k in RAY_OPTIONS}
    return own, {k: v for k, v in options.items() if k not in RAY_OPTIONS}


def _load(kind: str) -> Any:
    return load(BACKENDS[kind], what=f"backend {kind!r}", extra=EXTRAS.get(kind))
