"""The command line end to end: build a dataset from tpru's synthetic episodes, then
read it back with stats, view and export; and every kind of bad input ends in one
line on standard error and exit status 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from tpru.builder.pipeline import content_hash
from tpru.cli import main
from tpru.schema import SCHEMA_VERSION, Sample, read_jsonl
from tpru.sources.synthetic import write_synthetic_episodes

MAX_SIDE = 200
"""Smaller than the synthetic frames (320x240), so every stored image is re-encoded."""


@pytest.fixture(scope="module")
def episodes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("episodes")
    write_synthetic_episodes(root, episodes=3, frames=6, seed=0)
    return root


@pytest.fixture(scope="module")
def dataset(episodes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("built") / "data"
    status = main(["build", "-q", "--source", f"frames:{episodes}", "--out", str(out),
                   "--seed", "5", f"image.max_side={MAX_SIDE}",
                   "split.ratios={train: 0.7, test: 0.3}"])
    assert status == 0
    return out


def test_build_writes_a_complete_dataset(dataset: Path) -> None:
    info = json.loads((dataset / "build.json").read_text(encoding="utf-8"))
    for key in ("config", "seed", "schema_version", "counts", "drops", "content_hash"):
        assert key in info, key
    assert info["seed"] == 5
    assert info["schema_version"] == SCHEMA_VERSION
    assert info["config"]["image"]["max_side"] == MAX_SIDE
    assert "out" not in info["config"] and "workers" not in info["config"]
    assert info["content_hash"] == content_hash(dataset)

    assert info["splits"] == ["train", "test"]
    assert sorted(p.name for p in dataset.glob("*.jsonl")) == ["test.jsonl", "train.jsonl"]
    referenced: set[str] = set()
    for split in info["splits"]:
        samples = list(read_jsonl(dataset / f"{split}.jsonl", Sample))
        assert len(samples) == sum(info["counts"]["samples"][split].values())
        for sample in samples:
            referenced.update(sample.images)
    assert sum(1 for split in info["splits"]
               for _ in read_jsonl(dataset / f"{split}.jsonl", Sample)) == \
        info["counts"]["samples_total"]
    stored = {p.relative_to(dataset).as_posix() for p in (dataset / "images").rglob("*")
              if p.is_file()}
    assert stored == referenced
    assert len(stored) == info["counts"]["images"]
    for relative in stored:
        with Image.open(dataset / relative) as image:
            assert max(image.size) <= MAX_SIDE, relative
            assert image.format == "JPEG"
    assert not (dataset.parent / "data.partial").exists()


def test_stats_view_and_export_read_the_dataset(
        dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = json.loads((dataset / "build.json").read_text(encoding="utf-8"))
    capsys.readouterr()
    assert main(["stats", str(dataset), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["samples"] == info["counts"]["samples_total"]
    assert stats["splits"] == {split: sum(by_task.values())
                               for split, by_task in info["counts"]["samples"].items()}

    assert main(["stats", str(dataset)]) == 0
    assert "Split" in capsys.readouterr().out

    page = tmp_path / "view.html"
    assert main(["view", str(dataset), "--out", str(page)]) == 0
    assert page.read_text(encoding="utf-8").count("<img") > 0

    export = pytest.importorskip("tpru.export", reason="tpru.export is not written yet")
    if not hasattr(export, "export_dataset"):
        pytest.skip("tpru.export.export_dataset is not written yet")
    pytest.importorskip("pyarrow", reason="the easyr1 export needs the export extra")
    capsys.readouterr()
    assert main(["export", str(dataset), "--to", "easyr1", "--out", str(tmp_path / "x")]) == 0
    written = [Path(line) for line in capsys.readouterr().out.splitlines()]
    assert written and all(path.is_file() for path in written)
    assert {p.name for p in written} >= {"train.parquet", "test.parquet"}


def test_print_config_shows_every_resolved_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--print-config", "tasks.frames_per_sample=5", "--seed", "3"]) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["seed"] == 3
    assert config["tasks"]["frames_per_sample"] == 5
    assert {"filter", "image", "text", "tasks", "embed", "split"} <= set(config)


def test_config_file_overrides_and_flags_combine(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "recipe.yaml"
    config.write_text("sources: [frames:a]\nout: data\nseed: 1\n"
                      "tasks:\n  negative_rate: 0.25\n", encoding="utf-8")
    assert main(["build", str(config), "tasks.candidates=3", "--source", "frames:b",
                 "--seed", "2", "--print-config"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["sources"] == ["frames:a", "frames:b"]
    assert resolved["seed"] == 2
    assert resolved["tasks"]["negative_rate"] == 0.25
    assert resolved["tasks"]["candidates"] == 3


def test_demo_builds_and_views(tmp_path: Path) -> None:
    assert main(["demo", "-q", "--out", str(tmp_path / "demo"), "--episodes", "2",
                 "--synthetic"]) == 0
    assert (tmp_path / "demo" / "dataset" / "build.json").is_file()
    assert (tmp_path / "demo" / "view.html").is_file()


@pytest.mark.slow
def test_demo_renders_every_installed_simulator(tmp_path: Path) -> None:
    from tpru.diagnostics import InputError
    from tpru.sources.sim import SIMULATORS, load_simulator

    installed = []
    for name in SIMULATORS:
        try:
            load_simulator(name)
        except InputError:
            continue
        installed.append(name)
    if not installed:
        pytest.skip("no simulator engine is installed (scripts/setup-system.sh, tpru[sim])")
    assert main(["demo", "-q", "--out", str(tmp_path / "demo"), "--episodes", "2"]) == 0
    info = json.loads((tmp_path / "demo" / "dataset" / "build.json").read_text())
    assert info["config"]["sources"] == [f"sim:{name}" for name in installed]
    scenarios = set()
    for split in info["splits"]:
        for line in (tmp_path / "demo" / "dataset" / f"{split}.jsonl").read_text().splitlines():
            scenarios.add(json.loads(line)["scenario"])
    assert scenarios == set(installed)


BAD = {
    "unknown source kind": (["build", "--source", "pictures:{episodes}", "--out", "{out}"],
                            "unknown source kind 'pictures'"),
    "missing source folder": (["build", "--source", "frames:{tmp}/nowhere", "--out", "{out}"],
                              "nowhere"),
    "missing manifest": (["build", "--source", "manifest:{tmp}/nowhere.jsonl", "--out",
                          "{out}"], "nowhere.jsonl"),
    "no source": (["build", "--out", "{out}"], "no sources given"),
    "bad override value": (["build", "--source", "frames:{episodes}", "--out", "{out}",
                            "tasks.frames_per_sample=two"], "tasks.frames_per_sample"),
    "value out of range": (["build", "--source", "frames:{episodes}", "--out", "{out}",
                            "tasks.frames_per_sample=17"], "between 3 and 16"),
    "unknown config key": (["build", "--source", "frames:{episodes}", "--out", "{out}",
                            "tasks.colour=red"], "unknown key tasks.colour"),
    "missing config file": (["build", "{tmp}/nowhere.yaml", "--out", "{out}"],
                            "nowhere.yaml"),
    "out is the source": (["build", "--source", "frames:{episodes}", "--out", "{episodes}",
                           "--overwrite"], "is the input"),
    "out inside the source": (["build", "--source", "frames:{episodes}", "--out",
                               "{episodes}/dataset"], "lies inside the input"),
    "stats of nothing": (["stats", "{tmp}/nowhere"], "no such dataset folder"),
    "view of nothing": (["view", "{tmp}/nowhere"], "no such dataset folder"),
    "export of nothing": (["export", "{tmp}/nowhere", "--to", "easyr1", "--out", "{tmp}/x"],
                          "nowhere"),
    "not a dataset": (["stats", "{tmp}"], "{tmp}: not a tpru dataset (no build.json); give a "
                                          "folder written by tpru build"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gives_one_line_and_status_1(
        case: str, episodes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv, expected = BAD[case]
    out = tmp_path / "out"
    names = {"episodes": str(episodes), "tmp": str(tmp_path), "out": str(out)}
    assert main([arg.format(**names) for arg in argv]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "Traceback" not in captured.err + captured.out
    assert err.count("\n") == 0, err
    command = argv[0]
    assert err.startswith(f"tpru {command}: error: ")
    assert expected.format(**names) in err
    # A build refused on bad input leaves nothing behind, and its sources untouched.
    assert not out.exists()
    assert not (tmp_path / "out.partial").exists()
    assert (episodes / "robot" / "ep000" / "000.jpg").is_file()


def test_a_folder_that_is_not_a_dataset_is_told_apart_from_an_unfinished_build(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 12, 14: stats and audit asked "was the build interrupted?" of any folder;
    only a build's own folder (OUT.partial, or one holding its work files) is one."""
    plain, partial = tmp_path / "photos", tmp_path / "data.partial"
    plain.mkdir()
    (plain / "a.jpg").write_bytes(b"jpeg")
    (partial / "work").mkdir(parents=True)
    moved = tmp_path / "moved"  # an unfinished build renamed: known by its work files
    moved.mkdir()
    (moved / "state.json").write_text("{}")
    resume = ("; continue it with the same tpru build command and --resume, or delete that "
              "folder\n")
    for command in (["stats"], ["audit", "--model", "random"]):
        for folder, message in [
                (plain, f"{plain}: not a tpru dataset (no build.json); give a folder written "
                        "by tpru build\n"),
                (partial, f"{partial}: not a finished tpru dataset (no build.json); the "
                          f"unfinished build is kept in {partial}{resume}"),
                (moved, f"{moved}: not a finished tpru dataset (no build.json); the "
                        f"unfinished build is kept in {moved}{resume}"),
                (tmp_path / "data", f"{tmp_path / 'data'}: no such dataset folder; the "
                                    f"unfinished build is kept in {partial}{resume}")]:
            assert main([command[0], str(folder), *command[1:]]) == 1
            err = capsys.readouterr().err
            assert err == f"tpru {command[0]}: error: {message}", err
            assert "interrupted?" not in err
    assert not (plain / "audit").exists()


@pytest.mark.parametrize("argv", [["build", "--workers", "two"], ["export", "x", "--out", "y"],
                                  ["frobnicate"], ["train", "easyr1", "--out", "y"],
                                  ["train", "grpo", "--overwrite"]])
def test_usage_errors_are_one_line_too(argv: list[str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "error:" in err and "--help" in err


# ---------------------------------------------------------------- one rule for every command

REPO = Path(__file__).parents[1]


@pytest.mark.parametrize("argv", [
    ["build", "--source", "frames:{episodes}", "--out", "{out}", "--seed", "-1"],
    ["demo", "--synthetic", "--out", "{out}", "--seed", "-1"],
    ["audit", "{out}", "--model", "random", "--seed", "-1"],
    ["report", "{out}", "--seed", "-1"],
    ["demo", "--synthetic", "--out", "{out}", "--episodes", "0"],
    ["demo", "--synthetic", "--out", "{out}", "--workers", "0"],
    ["view", "{out}", "--limit", "-1"],
], ids=lambda argv: f"{argv[0]} {argv[-2]} {argv[-1]}")
def test_out_of_range_numbers_are_refused_at_parsing(
        argv: list[str], episodes: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main([arg.format(episodes=episodes, out=out) for arg in argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    minimum = 1 if argv[-2] in ("--episodes", "--workers") else 0
    assert err.startswith(f"tpru {argv[0]}: error: argument {argv[-2]}: must be {minimum} or "
                          f"more, got {argv[-1]} ("), err
    assert err.count("\n") == 0
    assert not out.exists()


def test_a_negative_seed_in_an_override_stops_the_build_before_it_writes(
        episodes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    # With an audit, numpy used to refuse the seed after the dataset was written.
    assert main(["build", "-q", "--source", f"frames:{episodes}", "--out", str(out),
                 "seed=-5", "audit.model=random"]) == 1
    assert capsys.readouterr().err == "tpru build: error: seed must be 0 or more, got -5\n"
    assert not out.exists() and not (tmp_path / "out.partial").exists()


def test_an_unknown_key_names_the_file_or_the_override_it_came_from(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "unk.yaml"
    recipe.write_text("sources: [frames:a]\ntasks:\n  bogus: 1\n", encoding="utf-8")
    assert main(["build", str(recipe), "--print-config"]) == 1
    assert capsys.readouterr().err.startswith(
        f"tpru build: error: {recipe}: unknown key tasks.bogus (known: candidates, ")
    assert main(["build", "--source", "frames:a", "tasks.bogus=1", "--print-config"]) == 1
    assert capsys.readouterr().err.startswith(
        "tpru build: error: override 'tasks.bogus=1': unknown key tasks.bogus (known: ")
    assert main(["train", "grpo", str(REPO / "configs/train/grpo_tiny.yaml"), "bogus=1",
                 "--print-config"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tpru train: error: override 'bogus=1': unknown key bogus"), err
    assert "grpo_tiny.yaml" not in err


def test_overrides_may_follow_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--seed", "3", "tasks.frames_per_sample=5", "--source", "frames:a",
                 "tasks.candidates=3", "--print-config"]) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert (config["seed"], config["sources"]) == (3, ["frames:a"])
    assert (config["tasks"]["frames_per_sample"], config["tasks"]["candidates"]) == (5, 3)
    for flag in ("--overwrite", "--resume"):
        assert main(["train", "grpo", str(REPO / "configs/train/grpo_tiny.yaml"), flag,
                     "train.max_steps=2", "--print-config", "rollout.num_generations=4"]) == 0
        config = yaml.safe_load(capsys.readouterr().out)
        assert config["train"]["max_steps"] == 2
        assert config["rollout"]["num_generations"] == 4


@pytest.fixture
def run(tmp_path: Path) -> Path:
    assert main(["eval", "-q", "--model", "random", "--bench", f"{_tiny_dataset(tmp_path)}",
                 "--out", str(tmp_path / "run")]) == 0
    return tmp_path / "run"


def _tiny_dataset(tmp_path: Path) -> Path:
    episodes = tmp_path / "episodes"
    write_synthetic_episodes(episodes, episodes=2, frames=6, seed=0)
    out = tmp_path / "data"
    assert main(["build", "-q", "--source", f"frames:{episodes}", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize(("options", "message"), [
    (["--embed"], "--embed needs --html (it inlines the HTML report's images)"),
    (["--html", "{tmp}"], "--html {tmp}: is a folder; give the HTML file to write, "
                          "e.g. {tmp}/report.html"),
])
def test_report_checks_its_options_before_printing(
        options: list[str], message: str, run: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["report", str(run), *(o.format(tmp=tmp_path) for o in options)]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"tpru report: error: {message.format(tmp=tmp_path)}\n"
    assert captured.out == ""


def test_the_readme_build_with_a_config_file_runs(episodes: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    use = readme.split("## Use", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    command = next(line for line in use.replace("\\\n", " ").splitlines()
                   if line.startswith("tpru build configs/default.yaml"))
    argv = command.split("#", 1)[0].split()[1:]
    argv = [arg.replace("recordings/", str(episodes)) for arg in argv]
    monkeypatch.chdir(REPO)
    out = tmp_path / "five"
    argv[argv.index("--out") + 1] = str(out)
    assert main([*argv, "-q"]) == 0
    info = json.loads((out / "build.json").read_text(encoding="utf-8"))
    assert info["config"]["tasks"]["frames_per_sample"] == 5


def test_the_grpo_help_example_names_a_model_folder_it_says_how_to_make(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "grpo", "--help"])
    text = capsys.readouterr().out
    example = next(line for line in text.splitlines() if "model.name=" in line)
    model = example.split("model.name=", 1)[1].split()[0]
    assert f"python -m tpru.models.tiny {model}" in text


def test_a_file_given_as_a_folder_is_named_as_such(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["stats", str(afile)]) == 1
    assert "is a file, not a dataset folder" in capsys.readouterr().err
    (tmp_path / "man").mkdir()
    assert main(["build", "--source", f"manifest:{tmp_path / 'man'}", "--out",
                 str(tmp_path / "o")]) == 1
    assert "is a folder, not a manifest file" in capsys.readouterr().err
    assert main(["eval", "--model", "random", "--bench", str(tmp_path), "--out",
                 str(tmp_path / "run"), "--cache-dir", str(afile)]) == 1
    assert "--cache-dir" in capsys.readouterr().err
