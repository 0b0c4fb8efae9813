"""Fixtures for the evaluation tests: benchmark files in their published formats
(written by `bench_files`), a dataset built by ``tpru build``, and a tiny
Qwen2.5-VL model built offline."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_files import (
    build_tpru_dataset,
    write_lego_tsv,
    write_muirbench,
    write_tpru_test,
)


@pytest.fixture(scope="session")
def muirbench_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_muirbench(tmp_path_factory.mktemp("muirbench") / "test-00000-of-00001.parquet")


@pytest.fixture(scope="session")
def lego_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lego_tsv(tmp_path_factory.mktemp("lego") / "LEGO.tsv")


@pytest.fixture(scope="session")
def tpru_test_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tpru_test(tmp_path_factory.mktemp("tpru-test") / "test.parquet")


@pytest.fixture(scope="session")
def tpru_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tpru_dataset(tmp_path_factory.mktemp("tpru-dataset"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2.5-VL folder (random weights, real tokenizer and processor)."""
    from tpru.models.tiny import make_tiny_qwen25_vl

    return make_tiny_qwen25_vl(tmp_path_factory.mktemp("tiny-qwen") / "model")


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"
