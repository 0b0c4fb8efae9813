"""Issue 17's bar, end to end on the command line: a build of mixed sequence lengths, exported
to every target, trained with GRPO on the tiny model, evaluated and reported by length.

Nothing here is written by hand: the dataset is `tpru build`'s, the exports are
`tpru export`'s, and the run is `tpru eval`'s.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tpru.cli import main
from tpru.dataset import Dataset
from tpru.sources.synthetic import write_synthetic_episodes
from tpru.train.config import GRPOTrainConfig, load_train_config
from tpru.train.grpo import train_grpo

RECIPES = Path(__file__).resolve().parents[2] / "configs" / "train"
LENGTHS = {3: 1, 5: 1, 8: 1}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mixed-e2e")
    write_synthetic_episodes(root / "episodes", episodes=12, frames=10, seed=3, size=(96, 72))
    config = root / "build.yaml"
    config.write_text(json.dumps({
        "sources": [f"frames:{root / 'episodes'}"], "out": str(root / "dataset"), "seed": 1,
        "tasks": {"frames_per_sample": LENGTHS, "windows_per_episode": 2,
                  "candidates": {"ordering": 3, "next_frame": 4, "prev_frame": 4}},
        "split": {"ratios": {"train": 0.7, "test": 0.3}}}), encoding="utf-8")
    assert main(["build", "-q", str(config)]) == 0
    return root / "dataset"


def test_the_build_mixes_lengths_and_scores_every_sample(mixed: Path) -> None:
    samples = list(Dataset.open(mixed).samples())
    assert {s.meta["frames"] for s in samples} == set(LENGTHS)
    assert all(0.0 <= s.meta["difficulty"]["score"] <= 1.0 for s in samples)
    info = json.loads((mixed / "build.json").read_text(encoding="utf-8"))
    assert info["probes"]["leaks"] == []


@pytest.mark.parametrize("target", ["easyr1", "verl", "trl", "vlmevalkit", "hf"])
def test_every_export_keeps_every_sample_and_its_images(mixed: Path, tmp_path: Path,
                                                        target: str) -> None:
    out = tmp_path / target
    assert main(["export", "-q", str(mixed), "--to", target, "--out", str(out),
                 "--order", "curriculum"]) == 0
    train = list(Dataset.open(mixed).samples("train"))
    written = sorted(p for p in out.rglob("*") if p.is_file())
    assert written, target
    if target in ("easyr1", "verl"):
        table = pq.read_table(next(p for p in written if p.name.startswith("train")
                                   and p.suffix == ".parquet"))
        assert table.num_rows == len(train)
        assert Counter(len(row) for row in table.column("images").to_pylist()) == \
            Counter(len(s.images) for s in train)


@pytest.mark.slow
def test_grpo_eval_and_report_by_length(mixed: Path, tiny_model_dir: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = load_train_config(GRPOTrainConfig, RECIPES / "grpo_tiny.yaml", [
        f"model.name={tiny_model_dir}", f"data.path={mixed}", "data.limit=6",
        "data.order=curriculum", f"train.output_dir={tmp_path / 'grpo'}", "train.max_steps=2",
        "train.per_device_batch_size=6", "model.max_pixels=6272"])
    result = train_grpo(config, show_progress=False)
    assert result.steps == 2
    assert all(math.isfinite(e["loss"]) for e in result.log_history if "loss" in e)

    run = tmp_path / "eval"
    assert main(["eval", "-q", "--model", "random", "--bench", f"dataset:{mixed}",
                 "--out", str(run)]) == 0
    plots = tmp_path / "plots"
    assert main(["report", str(run), "--format", "json", "--out", str(tmp_path / "r.json"),
                 "--plots", str(plots)]) == 0
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    groups = report["runs"][0]["groups"]
    test = list(Dataset.open(mixed).samples("test"))
    assert {int(n): g["n"] for n, g in groups["frames"].items()} == \
        dict(Counter(s.meta["frames"] for s in test))
    assert sum(g["n"] for g in groups["difficulty"].values()) == len(test)
    assert set(groups["frames_by_task"]) == {f"{s.task} / {s.meta['frames']}" for s in test}
    assert any(p.name.startswith("length-") and p.suffix == ".png" for p in plots.iterdir())
