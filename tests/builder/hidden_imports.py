"""Tests that run code as it runs where an optional package is not installed."""

from __future__ import annotations

import builtins

import pytest


def hide_module(monkeypatch: pytest.MonkeyPatch, hidden: str) -> None:
    """Make ``import <hidden>`` raise ImportError until `monkeypatch` is undone."""
    real_import = builtins.__import__

    def without(name: str, *args: object, **kwargs: object) -> object:
        if name == hidden:
            raise ImportError(f"no {hidden}")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", without)
