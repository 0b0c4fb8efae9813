"""Shared test settings, and the tiny offline Qwen2.5-VL every model test uses."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# CI machines are small and shared: judge properties on their inputs, not on timing.
settings.register_profile("tpru", deadline=None, max_examples=200)
settings.load_profile("tpru")


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Run torch on one thread in these tests when torch is loaded.

    The tiny model's operations are too small to share out: on a busy two-core
    machine a second thread mostly spins, and a generation takes ten times longer.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2.5-VL model folder (random weights, real tokenizer, processor and
    chat template), built once per session by `make_tiny_qwen25_vl` with seed 0."""
    from tpru.models.tiny import make_tiny_qwen25_vl

    return make_tiny_qwen25_vl(tmp_path_factory.mktemp("tiny-qwen25-vl") / "model")
