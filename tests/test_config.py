"""Config loading: YAML, overrides, validation with dotted key names."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tpru.builder.config import BuildConfig
from tpru.commands.build import load_build_config
from tpru.config import ConfigError, apply_overrides, load, read_yaml, to_dict
from tpru.eval.audit_config import AuditConfig

ROOT = Path(__file__).resolve().parents[1]


def test_default_yaml_documents_every_default() -> None:
    data = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    # Loaded as tpru build loads it: its audit section is the command's (AuditConfig).
    assert to_dict(load_build_config(data)[0]) == to_dict(load_build_config({})[0])
    assert to_dict(load_build_config(data)[1]) == to_dict(AuditConfig())


def test_overrides_are_yaml_values() -> None:
    data = apply_overrides({"tasks": {"candidates": 3}},
                           ["tasks.frames_per_sample=5", "tasks.tasks=[ordering]",
                            "split.ratios={train: 0.5, test: 0.5}", "strict=true"])
    config = load(BuildConfig, data)
    assert config.tasks.frames_per_sample == 5 and config.tasks.candidates == 3
    assert config.tasks.tasks == ("ordering",) and config.strict is True
    assert config.split.ratios == {"train": 0.5, "test": 0.5}
    assert load(BuildConfig, to_dict(config)) == config


@pytest.mark.parametrize(("data", "message"), [
    ({"tasks": {"frames_per_sample": "two"}}, "tasks.frames_per_sample: expected an integer"),
    ({"tasks": {"frames_per_sample": 17}}, "between 3 and 16"),
    ({"filtr": {}}, "unknown key filtr"),
    ({"filter": {"blur": 3}}, "unknown key filter.blur"),
    ({"image": {"format": "gif"}}, "image.format: 'gif' is not one of"),
    ({"tasks": {"tasks": ["sorting"]}}, "tasks.tasks"),
    ({"strict": "yes"}, "strict: expected true or false"),
    ({"tasks": {"candidates": 6, "frames_per_sample": 3}}, "wrong orders"),
])
def test_bad_values_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(BuildConfig, data)


def test_bad_override_and_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="key.sub=value"):
        apply_overrides({}, ["novalue"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        read_yaml(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        read_yaml(listed)
    with pytest.raises(ConfigError, match="cannot read"):
        read_yaml(tmp_path / "absent.yaml")
