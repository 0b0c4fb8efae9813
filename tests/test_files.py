"""The output guard (tpru.files) and the commands that write single files or a demo folder:
nothing tpru did not write is replaced, and no output lands on or inside an input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import make_dataset
from tpru.cli import main
from tpru.diagnostics import InputError
from tpru.files import (
    OUTPUT_MARKER,
    check_output_file,
    check_output_folder,
    check_separate,
    mark_output,
)


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_check_separate_compares_real_paths(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (tmp_path / "link").symlink_to(data)
    for out, where in [(tmp_path / "link", "is"), (tmp_path / "link" / "images", "lies inside"),
                       (tmp_path, "contains")]:
        with pytest.raises(InputError, match=f"{where} the input {data}"):
            check_separate(out, [data])
    check_separate(tmp_path / "other", [data, tmp_path / "missing"])


def test_check_output_folder_replaces_only_its_own_kind(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert check_output_folder(out, kind="export", overwrite=False) is False
    out.mkdir()
    assert check_output_folder(out, kind="export", overwrite=False) is False  # empty
    mark_output(out, "training run")
    with pytest.raises(InputError, match="is not an export tpru wrote"):
        check_output_folder(out, kind="export", overwrite=True)
    mark_output(out, "export")
    with pytest.raises(InputError, match="an export is already there; pass --overwrite"):
        check_output_folder(out, kind="export", overwrite=False)
    assert check_output_folder(out, kind="export", overwrite=True) is True
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(InputError, match="is not an export tpru wrote"):
        check_output_folder(afile, kind="export", overwrite=True)


def test_check_output_file(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "ds")
    with pytest.raises(InputError, match="lies inside .*ds, a folder tpru wrote"):
        check_output_file(dataset / "train.jsonl", kind="page", signature="<title>tpru")
    with pytest.raises(InputError, match="lies inside"):
        check_output_file(dataset / "view.html", kind="page", signature="<title>tpru")
    check_output_file(dataset / "view.html", kind="page", signature="<title>tpru",
                      owned_names=["view.html"])
    mine = tmp_path / "notes.txt"
    mine.write_text("my notes")
    with pytest.raises(InputError, match="is the input"):
        check_output_file(mine, kind="page", signature="my", inputs=[mine])
    with pytest.raises(InputError, match="is not a page tpru wrote; choose another --html"):
        check_output_file(mine, kind="page", signature="<title>tpru", option="--html")
    check_output_file(mine, kind="page", signature="my notes")
    check_output_file(tmp_path / "new.txt", kind="page", signature="<title>tpru")


# --- report --out / --html ------------------------------------------------------------------

@pytest.fixture
def run(tmp_path: Path) -> Path:
    dataset = make_dataset(tmp_path / "ds")
    out = tmp_path / "ev"
    assert main(["eval", "-q", "--model", "random", "--bench", str(dataset), "--split", "test",
                 "--out", str(out)]) == 0
    return out


def test_report_never_writes_over_a_file_it_did_not_write(
        run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keep = tmp_path / "keep.txt"
    keep.write_text("mine")
    results = (run / "results.jsonl").read_text()
    for args, message in [(["--out", str(keep)], "is not a report table (md) tpru wrote"),
                          (["--html", str(keep)], "is not a report page tpru wrote"),
                          (["--out", str(run / "results.jsonl")], "is the input"),
                          (["--html", str(tmp_path / "ds" / "test.jsonl")], "lies inside"),
                          (["--html", str(tmp_path)], "is a folder"),
                          (["--out", str(tmp_path / "t.md"), "--html", str(keep)],
                           "not a report page")]:
        assert main(["report", str(run), "--bootstrap", "0", *args]) != 0, args
        assert message in capsys.readouterr().err, args
    assert keep.read_text() == "mine" and (run / "results.jsonl").read_text() == results
    assert not (tmp_path / "t.md").exists()  # refused before anything was written


@pytest.mark.parametrize("fmt", ["md", "csv", "json"])
def test_report_replaces_its_own_files(run: Path, tmp_path: Path, fmt: str) -> None:
    table, page = tmp_path / f"report.{fmt}", tmp_path / "report.html"
    for _ in range(2):
        assert main(["report", str(run), "--bootstrap", "0", "--format", fmt, "--out", str(table),
                     "--html", str(page)]) == 0
    assert table.stat().st_size > 0 and page.read_text().startswith("<!DOCTYPE html>")
    other = "md" if fmt != "md" else "csv"  # a table of another format is not replaced
    assert main(["report", str(run), "--bootstrap", "0", "--format", other, "--out",
                 str(table)]) != 0


def test_report_plots_go_only_into_a_folder_tpru_wrote_or_a_new_one(
        run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 12, 9: --plots used to write its PNGs over a user's files of the same name
    and into a dataset's images/; it is refused like --out and --html."""
    pytest.importorskip("matplotlib")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "overall.png").write_bytes(b"my chart")
    dataset = tmp_path / "ds"
    images = sorted((dataset / "images").rglob("*"))
    table = tmp_path / "t.md"
    for folder, message in [(mine, f"{mine}: is not a plots folder tpru wrote (and not empty); "
                                   "choose another --plots"),
                            (dataset / "images", "is not a plots folder tpru wrote"),
                            (dataset / "plots", f"lies inside {dataset}, a folder tpru wrote"),
                            (run, "contains the input"),
                            (tmp_path / "t.md", "is not a plots folder tpru wrote")]:
        if folder == table:
            table.write_text("a file")
        assert main(["report", str(run), "--bootstrap", "0", "--out", str(tmp_path / "r.md"),
                     "--plots", str(folder)]) != 0, folder
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert (mine / "overall.png").read_bytes() == b"my chart"
    assert sorted((dataset / "images").rglob("*")) == images
    assert not (dataset / "plots").exists() and not (tmp_path / "r.md").exists()

    plots = tmp_path / "plots"  # new: written and marked; a second report replaces it
    for _ in range(2):
        assert main(["report", str(run), "--bootstrap", "0", "--out", str(tmp_path / "r.md"),
                     "--plots", str(plots)]) == 0
    assert (plots / "overall.png").is_file()
    assert (plots / OUTPUT_MARKER).read_text().strip() == "plots folder"
    stale = plots / "radar-old-task.png"  # a radar this report does not draw is removed
    stale.write_bytes(b"png")
    assert main(["report", str(run), "--bootstrap", "0", "--plots", str(plots)]) == 0
    assert not stale.exists()
    (tmp_path / "empty").mkdir()
    assert main(["report", str(run), "--bootstrap", "0", "--plots",
                 str(tmp_path / "empty")]) == 0


# --- demo --out ---------------------------------------------------------------------------

def test_demo_into_an_earlier_demo_starts_its_episodes_afresh(tmp_path: Path) -> None:
    out = tmp_path / "dm"
    assert main(["demo", "-q", "--synthetic", "--episodes", "3", "--out", str(out)]) == 0
    assert main(["demo", "-q", "--synthetic", "--episodes", "1", "--out", str(out)]) == 0
    episodes = [p for p in (out / "episodes").iterdir() if p.is_dir()]
    assert episodes and all(len([e for e in s.iterdir() if e.is_dir()]) == 1 for s in episodes)
    info = json.loads((out / "dataset" / "build.json").read_text())
    assert info["counts"]["episodes_kept"] + info["counts"]["episodes_dropped"] == len(episodes)
    assert (out / OUTPUT_MARKER).is_file()


def test_demo_refuses_a_folder_it_did_not_write(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "mine"
    (mine / "episodes").mkdir(parents=True)
    (mine / "episodes" / "my-recording.txt").write_text("mine")
    assert main(["demo", "-q", "--synthetic", "--episodes", "1", "--out", str(mine)]) != 0
    assert "is not a demo folder tpru wrote" in capsys.readouterr().err
    assert listing(mine) == ["episodes", "episodes/my-recording.txt"]
