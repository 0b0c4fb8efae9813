"""Fixtures for the evaluation tests: benchmark files in their published formats
(written by `bench_files`) and a dataset built by ``tpru build`` (the tiny
Qwen2.5-VL model is tests/conftest.py's `tiny_model_dir`)."""

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


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"
