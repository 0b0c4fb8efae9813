"""``tpru train easyr1``: the run folder, checked the way EasyR1 reads it.

EasyR1 is not on the package index, so its config is checked against
`EASYR1_FIELDS`: the fields of EasyR1's config dataclasses (verl/trainer/config.py,
verl/workers/{actor,rollout,reward}/config.py in hiyouga/EasyR1), those present both in
v0.3.2 and in the master of November 2025, with their types. Where EasyR1 itself is
installed, `test_easyr1_loads_the_config` loads the config with its own classes. The
run folder's reward (reward.py and tpru_score/) is tested in test_easyr1_reward.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

import tpru.train
from helpers import make_dataset
from tpru.commands.train import add_easyr1_arguments, easyr1_command
from tpru.dataset import Dataset
from tpru.diagnostics import InputError
from tpru.export.common import load_format_prompt, make_formatter, problem_text
from tpru.files import OUTPUT_MARKER
from tpru.train.easyr1 import LIMIT_IMAGES, write_easyr1_run
from tpru.train.easyr1_reward import PACKAGE, score_files
from tpru.train.prompt_budget import image_tokens, measure_prompts
from tpru.train.recipes import (
    RECIPES,
    check_batches,
    check_run_files,
    load_recipe,
    top_level_names,
)

OPTIONAL_INT = (int, type(None))
OPTIONAL_STR = (str, type(None))
EASYR1_FIELDS: dict[str, type | tuple[type, ...]] = {
    **{f"data.{k}": str for k in ("train_files", "val_files", "prompt_key", "answer_key",
                                  "image_key", "video_key")},
    **{f"data.{k}": OPTIONAL_STR for k in ("image_dir", "format_prompt",
                                           "override_chat_template")},
    **{f"data.{k}": int for k in ("max_prompt_length", "max_response_length",
                                  "rollout_batch_size", "val_batch_size", "seed",
                                  "filter_overlong_prompts_workers")},
    **{f"data.{k}": OPTIONAL_INT for k in ("mini_rollout_batch_size", "min_pixels",
                                           "max_pixels")},
    "data.video_fps": float, "data.shuffle": bool, "data.filter_overlong_prompts": bool,
    **{f"algorithm.{k}": float for k in ("gamma", "lam", "kl_coef", "kl_horizon", "kl_target",
                                         "filter_low", "filter_high")},
    **{f"algorithm.{k}": str for k in ("adv_estimator", "kl_penalty", "kl_type", "filter_key")},
    **{f"algorithm.{k}": bool for k in ("disable_kl", "use_kl_loss", "online_filtering")},
    "worker.hybrid_engine": bool,
    "worker.actor.strategy": str, "worker.actor.loss_avg_mode": str,
    **{f"worker.actor.{k}": int for k in ("global_batch_size", "ppo_epochs", "ulysses_size",
                                          "micro_batch_size_per_device_for_update",
                                          "micro_batch_size_per_device_for_experience")},
    **{f"worker.actor.{k}": float for k in ("max_grad_norm", "clip_ratio_low",
                                            "clip_ratio_high", "clip_ratio_dual")},
    **{f"worker.actor.{k}": bool for k in ("padding_free", "dynamic_batching",
                                           "use_torch_compile")},
    "worker.actor.model.model_path": OPTIONAL_STR,
    "worker.actor.model.tokenizer_path": OPTIONAL_STR,
    "worker.actor.model.override_config": dict,
    **{f"worker.actor.model.{k}": bool for k in ("enable_gradient_checkpointing",
                                                 "trust_remote_code", "freeze_vision_tower")},
    "worker.actor.optim.lr": float, "worker.actor.optim.betas": list,
    "worker.actor.optim.weight_decay": float, "worker.actor.optim.strategy": str,
    "worker.actor.optim.lr_warmup_ratio": float,
    "worker.actor.optim.lr_warmup_steps": OPTIONAL_INT,
    "worker.actor.optim.min_lr_ratio": (float, type(None)),
    **{f"worker.{role}.fsdp.{k}": bool for role in ("actor", "ref")
       for k in ("enable_full_shard", "enable_cpu_offload", "enable_rank0_init",
                 "use_orig_params")},
    **{f"worker.{role}.fsdp.{k}": str for role in ("actor", "ref")
       for k in ("mp_param_dtype", "mp_reduce_dtype", "mp_buffer_dtype")},
    **{f"worker.{role}.fsdp.fsdp_size": int for role in ("actor", "ref")},
    **{f"worker.{role}.fsdp.torch_dtype": OPTIONAL_STR for role in ("actor", "ref")},
    **{f"worker.{role}.offload.{k}": bool for role in ("actor", "ref")
       for k in ("offload_params", "offload_optimizer")},
    "worker.ref.strategy": str,
    **{f"worker.rollout.{k}": str for k in ("name", "dtype")},
    **{f"worker.rollout.{k}": int for k in ("n", "top_k", "seed", "limit_images",
                                            "tensor_parallel_size", "max_num_batched_tokens")},
    **{f"worker.rollout.{k}": float for k in ("temperature", "top_p", "gpu_memory_utilization")},
    **{f"worker.rollout.{k}": bool for k in ("ignore_eos", "enforce_eager",
                                             "enable_chunked_prefill", "disable_log_stats",
                                             "disable_tqdm")},
    "worker.rollout.max_model_len": OPTIONAL_INT, "worker.rollout.val_override_config": dict,
    "worker.reward.reward_function": OPTIONAL_STR, "worker.reward.reward_function_kwargs": dict,
    "worker.reward.skip_special_tokens": bool, "worker.reward.num_cpus": int,
    **{f"trainer.{k}": int for k in ("total_epochs", "nnodes", "n_gpus_per_node",
                                     "max_try_make_batch", "critic_warmup", "val_freq",
                                     "val_generations_to_log", "save_freq", "save_limit")},
    **{f"trainer.{k}": str for k in ("project_name", "experiment_name")},
    **{f"trainer.{k}": OPTIONAL_STR for k in ("save_checkpoint_path", "load_checkpoint_path",
                                              "ray_timeline")},
    **{f"trainer.{k}": bool for k in ("val_before_train", "val_only", "save_model_only",
                                      "find_last_checkpoint")},
    "trainer.max_steps": OPTIONAL_INT, "trainer.logger": list,
}
"""EasyR1 config field -> type(s) its YAML value may have (a float field takes an int)."""

PAPER = {
    "data.max_prompt_length": 7000, "data.max_response_length": 1024,
    "data.min_pixels": 16384, "data.max_pixels": 36864, "data.rollout_batch_size": 256,
    "worker.rollout.n": 5, "worker.rollout.temperature": 1.0, "worker.rollout.top_p": 0.99,
    "worker.rollout.val_override_config.temperature": 0.5, "worker.rollout.limit_images": 7,
    "algorithm.use_kl_loss": True, "algorithm.kl_penalty": "low_var_kl",
    "algorithm.kl_coef": 0.01, "worker.actor.global_batch_size": 128,
    "worker.actor.optim.lr": 1e-6, "worker.actor.optim.weight_decay": 0.01,
    "worker.actor.optim.lr_warmup_ratio": 0.0, "worker.actor.model.freeze_vision_tower": False,
    "worker.actor.clip_ratio_low": 0.2, "worker.actor.clip_ratio_high": 0.3,
    "trainer.total_epochs": 2,
}
"""The release's GRPO settings (PROTOCOLS.md), by EasyR1 key."""

SMALL = ("data.rollout_batch_size=4", "worker.actor.global_batch_size=4",
         "worker.actor.micro_batch_size_per_device_for_experience=4")
"""Batch sizes the four-sample train split of the fixture fills, on 2 GPUs."""

def leaves(config: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted key and value of every setting; dict-typed EasyR1 fields are settings."""
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and EASYR1_FIELDS.get(dotted) is not dict:
            yield from leaves(value, dotted + ".")
        else:
            yield dotted, value


def value_at(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node[part]
    return node


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("easyr1") / "dataset")


@pytest.fixture(scope="module")
def run_dir(dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_easyr1_run(dataset_dir, tmp_path_factory.mktemp("runs") / "run",
                            overrides=SMALL, gpus_per_node=2)


@pytest.fixture(scope="module")
def config(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((run_dir / "config.yaml").read_text())
    return data


def test_run_folder_holds_everything(run_dir: Path, dataset_dir: Path) -> None:
    files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())
    assert files == sorted([OUTPUT_MARKER, "README.md", "config.yaml", "data/test.parquet",
                            "data/train.parquet", "format_prompt.jinja", "launch.sh",
                            "reward.py", *(f"{PACKAGE}/{name}" for name in score_files()),
                            "tpru.json"])
    assert os.access(run_dir / "launch.sh", os.X_OK)
    assert (run_dir / "format_prompt.jinja").read_text() == load_format_prompt("builtin")
    facts = json.loads((run_dir / "tpru.json").read_text())
    assert facts["samples"] == {"train": 4, "validation": 3}
    assert facts["overrides"] == list(SMALL)
    assert facts["prompt_budget"]["sample_id"] == "next-neg-mismatch"
    readme = (run_dir / "README.md").read_text()
    assert "bash launch.sh" in readme and "next-neg-mismatch" in readme
    assert "@@" not in readme + (run_dir / "launch.sh").read_text()


def test_config_has_only_easyr1_fields_of_the_right_types(config: dict[str, Any]) -> None:
    found = dict(leaves(config))
    unknown = sorted(set(found) - set(EASYR1_FIELDS))
    assert not unknown, f"not EasyR1 fields: {unknown}"
    for key, value in found.items():
        expected = EASYR1_FIELDS[key]
        allowed = (expected,) if isinstance(expected, type) else expected
        if float in allowed:
            allowed = (*allowed, int)
        assert isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed
                                                   ), f"{key}: {value!r} is not {expected}"
    assert set(config) == {"data", "algorithm", "worker", "trainer"}


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_recipes_hold_the_papers_settings(recipe: str) -> None:
    data = load_recipe(recipe)
    for key, expected in PAPER.items():
        assert value_at(data, key) == expected, key
    model = value_at(data, "worker.actor.model.model_path")
    assert model == f"Qwen/Qwen2.5-VL-{recipe.upper()}-Instruct"
    assert dict(leaves(data)).keys() <= EASYR1_FIELDS.keys()


def test_run_config_is_the_recipe_with_the_runs_paths(config: dict[str, Any],
                                                     run_dir: Path) -> None:
    for key, expected in PAPER.items():
        if not any(item.startswith(key + "=") for item in SMALL) and key != LIMIT_IMAGES:
            assert value_at(config, key) == expected, key
    # vLLM's images per prompt: the fixture's most images in one sample, not the recipe's 7
    assert value_at(config, LIMIT_IMAGES) == 6
    assert config["data"]["train_files"] == "./data/train.parquet"
    assert config["data"]["val_files"] == "./data/test.parquet"
    assert (config["trainer"]["nnodes"], config["trainer"]["n_gpus_per_node"]) == (1, 2)
    check_run_files(config, run_dir)


def test_the_release_defects_cannot_occur(config: dict[str, Any], run_dir: Path) -> None:
    prompt = config["data"]["format_prompt"]
    reward = config["worker"]["reward"]["reward_function"]
    assert prompt.endswith(".jinja") and (run_dir / prompt).is_file()
    path, _, function = reward.partition(":")
    assert path.endswith(".py") and function == "easyr1_reward_inputs"
    assert function in top_level_names(run_dir / path)

    def broken(**changes: str) -> dict[str, Any]:
        copy: dict[str, Any] = json.loads(json.dumps(config))
        for key, value in changes.items():
            section, name = key.split("__")
            (copy["data"] if section == "data" else copy["worker"]["reward"])[name] = value
        return copy

    swapped = broken(data__format_prompt="./reward.py:compute_score",
                     reward__reward_function="./format_prompt.jinja")
    with pytest.raises(InputError, match="swapped"):
        check_run_files(swapped, run_dir)
    with pytest.raises(InputError, match="format-prompt.jinja does not exist"):
        check_run_files(broken(data__format_prompt="./format-prompt.jinja"), run_dir)
    with pytest.raises(InputError, match="calls a function named main"):
        check_run_files(broken(reward__reward_function="./reward.py"), run_dir)
    with pytest.raises(InputError, match="no function 'score'"):
        check_run_files(broken(reward__reward_function="./reward.py:score"), run_dir)


@pytest.mark.parametrize("override, message", [
    ("worker.reward.reward_function=./reward.py", "calls a function named main"),
    ("data.format_prompt=./format-prompt.jinja", "does not exist"),
    ("worker.reward.reward_function_kwargs.reward=nope", "unknown reward 'nope'"),
    ("data.max_prompt_length=300", "sample 'next-neg-mismatch' .* needs about 379 prompt"),
    ("worker.rollout.limit_images=5", "'next-1' has 6 images"),
    ("worker.rollout.n=1", "GRPO needs worker.rollout.n > 1"),
    ("worker.actor.global_batch_size=3", "not a multiple of worker.actor.global_batch_size"),
    ("data.rollout_batch_size=8", "fewer than one batch of 8"),
])
def test_bad_runs_are_refused_before_writing(dataset_dir: Path, tmp_path: Path, override: str,
                                             message: str) -> None:
    out = tmp_path / "run"
    with pytest.raises(InputError, match=message):
        write_easyr1_run(dataset_dir, out, overrides=[*SMALL, override], gpus_per_node=2)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_batch_rules_follow_easyr1() -> None:
    paper = load_recipe("7b")
    paper["trainer"] = {"nnodes": 1, "n_gpus_per_node": 8}
    check_batches(paper, train_samples=24750)
    paper["trainer"]["n_gpus_per_node"] = 3
    with pytest.raises(InputError, match="3 GPUs do not divide"):
        check_batches(paper, train_samples=24750)
    paper["trainer"] = {"nnodes": 2, "n_gpus_per_node": 8}
    paper["worker"]["actor"]["micro_batch_size_per_device_for_update"] = 3
    with pytest.raises(InputError, match="40 samples per GPU .* not a multiple"):
        check_batches(paper, train_samples=24750)


@pytest.mark.parametrize(("samples", "gpus", "micro_update", "suggested"), [
    (200, 8, 1, {"data.rollout_batch_size": 128}),  # the update batch of 128 kept
    (100, 8, 1, {"data.rollout_batch_size": 100, "worker.actor.global_batch_size": 100}),
    (300, 6, 5, {"data.rollout_batch_size": 254, "worker.actor.global_batch_size": 127}),
    (24750, 8, 1, {}),
])
def test_a_small_split_is_refused_once_with_batch_sizes_that_fit_it(
        samples: int, gpus: int, micro_update: int, suggested: dict[str, int]) -> None:
    """Issue 12, 16: a split smaller than the recipe's batch was refused ("fewer than
    one batch of 256"), then the next guess for another rule ("not a multiple of 128"):
    the first refusal names sizes that pass every rule."""
    paper = load_recipe("7b")
    paper["trainer"] = {"nnodes": 1, "n_gpus_per_node": gpus}
    paper["worker"]["actor"]["micro_batch_size_per_device_for_update"] = micro_update
    if not suggested:
        check_batches(paper, train_samples=samples)
        return
    with pytest.raises(InputError) as refused:
        check_batches(paper, train_samples=samples)
    message = str(refused.value)
    assert "fewer than one batch of 256" in message or "not a multiple" in message
    overrides = " ".join(f"{k}={v}" for k, v in suggested.items())
    assert message.endswith(f". Batch sizes that fit {samples} train samples on {gpus} GPUs: "
                            f"{overrides}"), message
    for key, value in suggested.items():
        section, *rest = key.split(".")
        node = paper[section]
        for part in rest[:-1]:
            node = node[part]
        node[rest[-1]] = value
    check_batches(paper, train_samples=samples)  # the suggestion passes every rule


def test_the_run_command_suggests_sizes_for_the_dataset(dataset_dir: Path,
                                                        tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"fewer than one batch of 256 .* Batch sizes that fit "
                                         r"4 train samples on 2 GPUs: data.rollout_batch_size=4 "
                                         r"worker.actor.global_batch_size=4$"):
        write_easyr1_run(dataset_dir, tmp_path / "run", gpus_per_node=2)
    write_easyr1_run(dataset_dir, tmp_path / "run", gpus_per_node=2, overrides=[
        "data.rollout_batch_size=4", "worker.actor.global_batch_size=4"])


def _recorder(tmp_path: Path) -> Path:
    """A stand-in interpreter that records how launch.sh started it, for the launcher test."""
    path = tmp_path / "python-recorder"
    path.write_text("#!/bin/sh\nprintf '%s\\n' \"$PWD\" \"${WANDB_MODE:-}\" \"$@\" > "
                    f"{tmp_path / 'argv.txt'}\n")
    path.chmod(0o755)
    return path


def test_launch_sh_runs_easyr1_from_the_run_folder(run_dir: Path, tmp_path: Path) -> None:
    assert subprocess.run(["bash", "-n", str(run_dir / "launch.sh")], check=False).returncode == 0
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHON": str(_recorder(tmp_path))}
    subprocess.run(["bash", str(run_dir / "launch.sh"), "trainer.total_epochs=1"], env=env,
                   cwd=tmp_path, check=True, capture_output=True)
    cwd, wandb_mode, *argv = (tmp_path / "argv.txt").read_text().splitlines()
    assert Path(cwd) == run_dir.resolve() and wandb_mode == "offline"
    assert argv == ["-m", "verl.trainer.main", "config=config.yaml",
                    f"data.train_files={run_dir.resolve()}/data/train.parquet",
                    f"data.val_files={run_dir.resolve()}/data/test.parquet",
                    "trainer.nnodes=1", "trainer.n_gpus_per_node=2", "trainer.total_epochs=1"]


def test_launch_sh_multi_node_needs_ray(run_dir: Path, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHON": str(_recorder(tmp_path))}
    worker = subprocess.run(["bash", str(run_dir / "launch.sh"), "worker"], env=env,
                            capture_output=True, text=True, check=False)
    assert worker.returncode != 0 and "set RAY_HEAD" in worker.stderr
    several = subprocess.run(["bash", str(run_dir / "launch.sh")], env={**env, "NNODES": "2"},
                             capture_output=True, text=True, check=False)
    assert several.returncode == 1 and "no Ray cluster is running" in several.stderr
    assert not (tmp_path / "argv.txt").exists()


def test_command_line(dataset_dir: Path, tmp_path: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_easyr1_arguments(parser)
    out = tmp_path / "run"
    args = parser.parse_args([str(dataset_dir), SMALL[0], "--out", str(out), "--recipe", "3b",
                              "--gpus-per-node", "2", "--image-paths", *SMALL[1:]])
    assert args.overrides == list(SMALL)
    assert easyr1_command(args) == 0
    assert f"bash {out / 'launch.sh'}" in capsys.readouterr().out
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["worker"]["actor"]["model"]["model_path"] == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert config["worker"]["rollout"]["tensor_parallel_size"] == 1
    assert not json.loads((out / "tpru.json").read_text())["embed_images"]
    with pytest.raises(InputError, match="EasyR1 run folder is already there; pass --overwrite"):
        easyr1_command(args)
    again = parser.parse_args(["--out", str(out), "--overwrite", str(dataset_dir),
                               "other-dataset", *SMALL])
    with pytest.raises(InputError, match="'other-dataset' is not key=value"):
        easyr1_command(again)


@pytest.mark.parametrize("where", ["dataset", "dataset/images", ".", "model", "model/sub"])
def test_the_run_folder_may_not_overlap_the_dataset_or_the_model(
        dataset_dir: Path, tmp_path: Path, where: str) -> None:
    dataset = shutil.copytree(dataset_dir, tmp_path / "dataset")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    with pytest.raises(InputError, match=r"(is|lies inside|contains) the input .*choose "
                                         r"another --out"):
        write_easyr1_run(dataset, tmp_path / where, model=str(model), overrides=SMALL,
                         gpus_per_node=2, overwrite=True)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


def test_overwrite_replaces_only_a_run_folder_tpru_wrote(dataset_dir: Path,
                                                         tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="is not an EasyR1 run folder tpru wrote"):
        write_easyr1_run(dataset_dir, mine, overrides=SMALL, gpus_per_node=2, overwrite=True)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    run = write_easyr1_run(dataset_dir, tmp_path / "run", overrides=SMALL, gpus_per_node=2)
    (run / "launch.sh").write_text("edited")
    write_easyr1_run(dataset_dir, run, overrides=SMALL, gpus_per_node=2, overwrite=True)
    assert (run / "launch.sh").read_text() != "edited"


def test_without_a_validation_split(dataset_dir: Path, tmp_path: Path) -> None:
    only_train = tmp_path / "dataset"
    shutil.copytree(dataset_dir, only_train)
    (only_train / "test.jsonl").unlink()
    info = json.loads((only_train / "build.json").read_text())
    (only_train / "build.json").write_text(json.dumps({**info, "splits": ["train"]}))
    run = write_easyr1_run(only_train, tmp_path / "run", overrides=SMALL, gpus_per_node=2)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["data"]["val_files"] == "./data/train.parquet"
    assert (config["trainer"]["val_freq"], config["trainer"]["val_before_train"]) == (-1, False)


def test_recipe_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="neither a recipe name"):
        load_recipe("13b")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {}\nmodel: x\n")
    with pytest.raises(InputError, match="unknown section 'model'"):
        load_recipe(bad)
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"worker": {"rollout": {"n": 8}}}))
    assert load_recipe(mine) == {"worker": {"rollout": {"n": 8}}}


@pytest.mark.parametrize("size", [(48, 32), (640, 480), (1920, 1080), (28, 2000), (200, 200),
                                  (300, 50)])
def test_image_tokens(size: tuple[int, int]) -> None:
    """Qwen2.5-VL's rule by hand: EasyR1's resize, sides rounded to 28, a token per 28x28."""
    width, height = size
    if width * height > 36864:
        scale = math.sqrt(36864 / (width * height))
        width, height = int(width * scale), int(height * scale)
    if width * height < 16384:
        scale = math.sqrt(16384 / (width * height))
        width, height = int(width * scale), int(height * scale)
    expected = max(1, round(width / 28)) * max(1, round(height / 28)) + 2
    assert image_tokens(*size, 16384, 36864) == expected


def test_name_table() -> None:
    assert tpru.train.write_easyr1_run is write_easyr1_run
    assert tpru.train.load_recipe is load_recipe
    for target in tpru.train.EXPORTS.values():
        assert importlib.util.find_spec(target.partition(":")[0]) is not None, target
    with pytest.raises(AttributeError):
        _ = tpru.train.no_such_thing


def test_easyr1_loads_the_config(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where EasyR1 is installed: its own config classes, merged as verl.trainer.main does."""
    trainer_config = pytest.importorskip("verl.trainer.config")
    omegaconf = pytest.importorskip("omegaconf")
    if not hasattr(trainer_config, "PPOConfig"):
        pytest.skip("this verl is not EasyR1's")
    monkeypatch.chdir(run_dir)
    merged = omegaconf.OmegaConf.merge(omegaconf.OmegaConf.structured(trainer_config.PPOConfig()),
                                       omegaconf.OmegaConf.load("config.yaml"))
    loaded = omegaconf.OmegaConf.to_object(merged)
    loaded.deep_post_init()
    assert loaded.data.format_prompt == str(run_dir.resolve() / "format_prompt.jinja")
    assert loaded.worker.reward.reward_function_name == "easyr1_reward_inputs"


@pytest.mark.slow
def test_prompt_length_is_exact_with_the_models_tokenizer(dataset_dir: Path,
                                                          tmp_path: Path) -> None:
    """Against the tiny Qwen2.5-VL's processor, fed as EasyR1 feeds it."""
    from tpru.models._torchvision import import_transformers
    from tpru.models.tiny import make_tiny_qwen25_vl

    model = make_tiny_qwen25_vl(tmp_path / "model")
    config = load_recipe("7b")
    config["worker"]["actor"]["model"]["model_path"] = str(model)
    template = load_format_prompt("builtin")
    assert template is not None
    dataset = Dataset.open(dataset_dir)
    budget = measure_prompts(dataset, ["train", "test"], template, config)
    assert budget.counter == f"the tokenizer of {model}"

    processor = import_transformers().AutoProcessor.from_pretrained(model)
    formatter = make_formatter(template.strip())
    lengths = {}
    for sample in dataset.samples():
        content: list[dict[str, str]] = []
        for i, piece in enumerate(formatter(problem_text(sample)).split("<image>")):
            content += [{"type": "image"}] * (i > 0) + [{"type": "text", "text": piece}] * bool(
                piece)
        prompt = processor.apply_chat_template([{"role": "user", "content": content}],
                                               add_generation_prompt=True, tokenize=False)
        images = []
        for relative in sample.images:  # the fixture's images are small: EasyR1 scales them up
            with Image.open(dataset.image_path(relative)) as image:
                scale = math.sqrt(16384 / (image.width * image.height))
                images.append(image.resize((int(image.width * scale),
                                            int(image.height * scale))).convert("RGB"))
        ids = processor(images=images, text=[prompt], add_special_tokens=False)["input_ids"][0]
        lengths[sample.id] = len(ids)
    longest = max(lengths, key=lambda key: lengths[key])
    assert (budget.sample_id, budget.longest) == (longest, lengths[longest])
