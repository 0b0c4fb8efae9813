"""The shared prompt rendering, the name table and the staged, atomic output."""

from __future__ import annotations

import builtins
import importlib
import shutil
from pathlib import Path
from typing import Any

import pytest

from tpru.dataset import Dataset
from tpru.diagnostics import InputError
from tpru.export import EXPORTERS, export_dataset, load_exporter
from tpru.export.common import (
    BUILTIN_FORMAT_PROMPT,
    formatted_prompt,
    load_format_prompt,
    make_formatter,
    problem_text,
    select_splits,
    staged_output,
)
from tpru.files import OUTPUT_MARKER
from tpru.schema import NONE_OPTION, Sample


def test_render_multiple_choice_lists_options_with_placeholders(samples: dict[str, Sample]) -> None:
    text = problem_text(samples["next"])
    lines = text.splitlines()
    assert lines[0] == samples["next"].question
    assert lines[1:] == ["A. <image>", "B. <image>", f"C. {NONE_OPTION}", "D. <image>",
                         "E. <image>"]
    assert text.count("<image>") == len(samples["next"].images) == 7


def test_render_letter_ordering_is_the_question_alone(samples: dict[str, Sample]) -> None:
    sample = samples["ord-letters"]
    assert problem_text(sample) == sample.question.rstrip()


def test_render_text_options(samples: dict[str, Sample]) -> None:
    lines = problem_text(samples["ord-opt"]).splitlines()
    assert lines[-5:] == ["A. 1 3 4 2", "B. 4 3 2 1", "C. 3 2 1 4", "D. 4 2 3 1",
                          f"E. {NONE_OPTION}"]


def test_builtin_format_prompt_asks_for_think_and_answer(samples: dict[str, Sample]) -> None:
    template = load_format_prompt(BUILTIN_FORMAT_PROMPT)
    assert template is not None and "{{ content | trim }}" in template
    text = formatted_prompt(samples["next"], make_formatter(template))
    assert text.startswith(samples["next"].question)
    assert "<think>" in text and "<answer>" in text and "CABD" in text
    assert text.count("<image>") == 7


def test_formatter_without_jinja_handles_simple_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_jinja(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "jinja2":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_jinja)
    assert make_formatter("Q: {{ content | trim }}\n")("  hi  ") == "Q: hi"
    with pytest.raises(InputError, match="jinja2"):
        make_formatter("{% if content %}{{ content }}{% endif %}")


def test_template_that_adds_a_placeholder_is_refused(samples: dict[str, Sample]) -> None:
    with pytest.raises(InputError, match="placeholder"):
        formatted_prompt(samples["next"], make_formatter("<image>{{ content }}"))


def test_unknown_split_is_refused(dataset: Dataset) -> None:
    assert select_splits(dataset, None) == ["train", "test"]
    with pytest.raises(InputError, match="valid"):
        select_splits(dataset, ["valid"])


def test_unknown_exporter_names_the_known_ones(dataset_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"unknown export target 'parquet'.*easyr1"):
        export_dataset(dataset_dir, "parquet", tmp_path / "out")


def test_unknown_option_names_the_accepted_ones(dataset_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no option 'embed'.*embed_images"):
        export_dataset(dataset_dir, "easyr1", tmp_path / "out", embed=True)


def test_every_exporter_in_the_table_imports() -> None:
    for name in EXPORTERS:
        assert callable(load_exporter(name))


def test_missing_dependency_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import_module = importlib.import_module

    def without_pyarrow(name: str, package: str | None = None) -> Any:
        if name == "tpru.export.verl":
            raise ModuleNotFoundError("No module named 'pyarrow'", name="pyarrow")
        return real_import_module(name, package)

    monkeypatch.setattr(importlib, "import_module", without_pyarrow)
    with pytest.raises(InputError, match=r"needs pyarrow.*pip install 'tpru\[export\]'"):
        load_exporter("verl")


def test_staged_output_replaces_only_an_earlier_export_and_only_with_overwrite(
        tmp_path: Path) -> None:
    out = tmp_path / "out"
    with staged_output(out) as stage:
        (stage.path / "old.txt").write_text("old")
    assert stage.written == [out / "old.txt"]  # the marker is not listed
    with pytest.raises(InputError, match="an export is already there; pass --overwrite"), \
            staged_output(out):
        pass
    assert (out / "old.txt").read_text() == "old"
    with staged_output(out, overwrite=True) as stage:
        (stage.path / "new.txt").write_text("new")
    assert stage.written == [out / "new.txt"]
    assert sorted(p.name for p in out.iterdir()) == [OUTPUT_MARKER, "new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left


def test_staged_output_never_replaces_a_folder_tpru_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(InputError, match="is not an export tpru wrote.*choose another --out"), \
                staged_output(out, overwrite=overwrite):
            pass
    assert (out / "notes.txt").read_text() == "mine" and (out / "sub").is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]


def test_staged_output_removes_temporary_folders_a_killed_export_left(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out"
    stale = tmp_path / ".out.ab_cd123.tmp"  # what kill -9 during an export leaves
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "half.parquet").write_text("half")
    moved_aside = tmp_path / ".out.zz9yy8xx.old"
    moved_aside.mkdir()
    other = tmp_path / ".outer.ab_cd123.tmp"  # another output's: kept
    other.mkdir()
    with caplog.at_level("WARNING"), staged_output(out) as stage:
        (stage.path / "a.txt").write_text("a")
    assert not stale.exists() and not moved_aside.exists() and other.is_dir()
    assert "left by an interrupted write" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == [".outer.ab_cd123.tmp", "out"]


def test_failed_export_leaves_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), staged_output(out) as stage:
        (stage.path / "half.parquet").write_text("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_empty_existing_folder_is_used(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with staged_output(out) as stage:
        (stage.path / "a.txt").write_text("a")
    assert (out / "a.txt").read_text() == "a"


@pytest.mark.parametrize("to", sorted(EXPORTERS))
def test_every_exporter_refuses_to_overwrite(dataset_dir: Path, tmp_path: Path, to: str) -> None:
    out = tmp_path / to
    first = export_dataset(dataset_dir, to, out, splits=["test"])
    with pytest.raises(InputError, match="pass --overwrite"):
        export_dataset(dataset_dir, to, out, splits=["test"])
    assert all(p.is_file() for p in first)
    written = export_dataset(dataset_dir, to, out, splits=["test"], overwrite=True)
    assert written and all(p.is_file() and out in p.parents for p in written)
    mine = tmp_path / f"{to}-mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not an export tpru wrote"):
        export_dataset(dataset_dir, to, mine, splits=["test"], overwrite=True)
    assert (mine / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("inside", [".", "images", ".."], ids=["itself", "images", "parent"])
@pytest.mark.parametrize("to", sorted(EXPORTERS))
def test_every_exporter_refuses_its_own_dataset_as_output(
        dataset_dir: Path, tmp_path: Path, to: str, inside: str) -> None:
    copy = shutil.copytree(dataset_dir, tmp_path / "ds")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    with pytest.raises(InputError, match=r"(is|lies inside|contains) the input .*choose "
                                         r"another --out"):
        export_dataset(copy, to, copy / inside, splits=["test"], overwrite=True)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("to", ["easyr1", "verl"])
def test_exports_with_image_paths_refuse_a_missing_image(dataset_dir: Path, tmp_path: Path,
                                                         to: str) -> None:
    dataset = Dataset.open(shutil.copytree(dataset_dir, tmp_path / "ds"))
    missing = dataset.image_path(next(iter(dataset.samples("test"))).images[0])
    missing.unlink()
    with pytest.raises(InputError, match=f"{missing}: cannot read image"):
        export_dataset(dataset.root, to, tmp_path / "out", embed_images=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # nothing written
