"""Training configs: an error names where the bad value came from, the recipe file or the
command line's override; seeds are 0 or more."""

from __future__ import annotations

from pathlib import Path

import pytest

from tpru.config import ConfigError, check_keys
from tpru.train.config import (
    GRPOTrainConfig,
    SFTTrainConfig,
    TrainerSettings,
    load_train_config,
)

RECIPES = Path(__file__).parents[2] / "configs" / "train"


def _recipe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text("model:\n  name: m\ndata:\n  path: d\ntrain:\n  output_dir: r\n" + text,
                    encoding="utf-8")
    return path


def test_an_unknown_key_on_the_command_line_blames_the_override_not_the_file() -> None:
    with pytest.raises(ConfigError) as error:
        load_train_config(GRPOTrainConfig, RECIPES / "grpo_tiny.yaml",
                          ["train.max_steps=2", "bogus=1"])
    message = str(error.value)
    assert message.startswith("override 'bogus=1': unknown key bogus (known: beta, "), message
    assert "grpo_tiny.yaml" not in message


def test_an_unknown_nested_key_in_the_file_names_the_file(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, "rollout:\n  num_generation: 4\n")
    with pytest.raises(ConfigError) as error:
        load_train_config(GRPOTrainConfig, recipe, ["train.max_steps=2"])
    assert str(error.value).startswith(f"{recipe}: unknown key rollout.num_generation (known: ")


def test_a_bad_value_is_blamed_on_its_source(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, "")
    with pytest.raises(ConfigError, match=r"^command line: train.max_steps: expected an "
                                          r"integer, got 'two'$"):
        load_train_config(GRPOTrainConfig, recipe, ["train.max_steps=two"])
    bad = _recipe(tmp_path, "beta: high\n")
    with pytest.raises(ConfigError, match=rf"^{bad}: beta: expected a number, got 'high'$"):
        load_train_config(GRPOTrainConfig, bad, ["train.max_steps=2"])
    with pytest.raises(ConfigError, match=rf"^{bad}: beta: expected a number"):
        load_train_config(GRPOTrainConfig, bad)


def test_keys_of_the_other_trainer_are_unknown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^override 'beta=0.1': unknown key beta"):
        load_train_config(SFTTrainConfig, _recipe(tmp_path, ""), ["beta=0.1"])


def test_a_mapping_field_takes_any_key() -> None:
    # Reward options are the reward's to check (at load_reward), not the config's.
    config = load_train_config(GRPOTrainConfig, RECIPES / "grpo_tiny.yaml",
                               ["rewards=[{name: tpru, options: {format_weight: 0.2}}]"])
    assert config.rewards[0].options == {"format_weight": 0.2}
    check_keys(TrainerSettings, {"seed": 1, "report_to": ["wandb"]}, source="x")


def test_a_negative_seed_is_refused(tmp_path: Path) -> None:
    # Seeds reach numpy, which refuses negative ones; every tpru command refuses them first.
    with pytest.raises(ConfigError, match=r"^command line: train: seed must be 0 or more, "
                                          r"not -1$"):
        load_train_config(GRPOTrainConfig, _recipe(tmp_path, ""), ["train.seed=-1"])
    recipe = tmp_path / "seeded.yaml"
    recipe.write_text("model: {name: m}\ndata: {path: d}\ntrain: {output_dir: r, seed: -1}\n",
                      encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{recipe}: train: seed must be 0 or more"):
        load_train_config(GRPOTrainConfig, recipe)
