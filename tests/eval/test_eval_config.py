"""`EvalConfig` and `AuditRunConfig`: loaded from YAML and ``key=value`` like the build's
config, the options over them, and written beside every run (``eval.yaml``, ``audit.yaml``)
so that the run can be repeated from the file."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from tpru.cli import main
from tpru.commands import make_parser
from tpru.commands.audit import audit_config
from tpru.commands.common import load_config_arguments
from tpru.commands.eval import eval_config
from tpru.config import ConfigError, load, to_dict
from tpru.eval.audit import AUDIT_FILE
from tpru.eval.audit_config import AUDIT_CONFIG_FILE, AuditConfig, AuditRunConfig
from tpru.eval.config import CONFIG_FILE, STOP_AFTER_FAILURES, EvalConfig
from tpru.eval.runner import RESULTS_FILE, RUN_FILE


def _parse(argv: list[str]) -> argparse.Namespace:
    return make_parser().parse_args(argv)


def _write(path: Path, data: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _error(capsys: pytest.CaptureFixture[str], command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"tpru {command}: error: ") and err.count("\n") == 1, err
    return err


# --------------------------------------------------------------------------- eval


def test_eval_config_defaults_are_the_runners() -> None:
    config = EvalConfig()
    assert (config.prompt, config.split, config.limit, config.batch_size, config.seed,
            config.max_new_tokens, config.temperature) == (None, None, None, 8, 0, 1024, 0.0)
    assert config.stop_after_failures == STOP_AFTER_FAILURES
    assert load(EvalConfig, to_dict(config)) == config


def test_a_yaml_config_with_overrides_equals_the_options(tmp_path: Path) -> None:
    base = ["eval", "--model", "random", "--bench", "tpru-test", "--out", str(tmp_path / "r")]
    flags = _parse([*base, "--limit", "3", "--batch-size", "2", "--seed", "4",
                    "--max-new-tokens", "16", "--prompt", "default", "--split", "all",
                    "--temperature", "0.5"])
    config = _write(tmp_path / "eval.yaml", {"limit": 3, "batch_size": 2, "seed": 1,
                                             "max_new_tokens": 16, "prompt": "default"})
    # The file, an override over it, and options anywhere among them (parsed intermixed).
    from_file = _parse([*base, str(config), "seed=4", "--split", "all", "temperature=0.5"])
    assert from_file.config == [str(config), "seed=4", "temperature=0.5"]
    assert eval_config(from_file) == eval_config(flags) == EvalConfig(
        prompt="default", split="all", limit=3, batch_size=2, seed=4, max_new_tokens=16,
        temperature=0.5)
    # An option overrides the file; a key no option sets comes from the file.
    mixed = _parse([*base, str(config), "stop_after_failures=null", "--seed", "9"])
    assert eval_config(mixed) == EvalConfig(prompt="default", limit=3, batch_size=2, seed=9,
                                            max_new_tokens=16, stop_after_failures=None)
    # Without a file, the options alone: the invocations of before parse as they did.
    assert _parse(base).config == [] and eval_config(_parse(base)) == EvalConfig()


def _results(run: Path) -> list[str]:
    return (run / RESULTS_FILE).read_text(encoding="utf-8").splitlines()


def test_eval_yaml_reloads_and_repeats_the_run(muirbench_file: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    bench = ["--model", "random", "--bench", f"muirbench:{muirbench_file}",
             "--cache-dir", str(tmp_path / "cache")]
    first = tmp_path / "first"
    argv = ["eval", "-q", *bench, "--out", str(first), "--limit", "5", "--batch-size", "2",
            "--seed", "3", "--max-new-tokens", "16", "--temperature", "0.7"]
    assert main(argv) == 0
    saved = first / CONFIG_FILE
    assert saved.read_text(encoding="utf-8").startswith("# The settings of this run")
    assert load_config_arguments(EvalConfig, [str(saved)]) == eval_config(_parse(argv))

    again = tmp_path / "again"
    assert main(["eval", "-q", str(saved), *bench, "--out", str(again)]) == 0
    assert _results(again) == _results(first) and len(_results(first)) == 5
    assert (again / CONFIG_FILE).read_bytes() == saved.read_bytes()
    runs = [json.loads((run / RUN_FILE).read_text(encoding="utf-8")) for run in (first, again)]
    for key in ("model", "backend_options", "split", "prompt", "seed", "limit",
                "max_new_tokens", "temperature", "batch_size", "counts"):
        assert runs[0][key] == runs[1][key], key

    # The run folder with its eval.yaml still resumes, reports and is never written over.
    assert main(["eval", "-q", str(saved), "limit=6", *bench, "--out", str(first),
                 "--resume"]) == 0
    assert len(_results(first)) == 6 and "limit: 6" in saved.read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["report", str(first), str(again)]) == 0
    assert "# Evaluation report" in capsys.readouterr().out
    assert main(["report", str(first), "--out", str(saved)]) == 1
    assert "eval.yaml" in _error(capsys, "report")
    assert saved.read_text(encoding="utf-8").startswith("# The settings of this run")


def test_a_bad_key_or_value_names_its_file_or_override(
        muirbench_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    base = ["eval", "--model", "random", "--bench", f"muirbench:{muirbench_file}",
            "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    typo = _write(tmp_path / "typo.yaml", {"limt": 3})
    assert main([*base, str(typo)]) == 1
    err = _error(capsys, "eval")
    assert f"{typo}: unknown key limt (known: batch_size, limit, max_new_tokens, " in err
    bad = _write(tmp_path / "bad.yaml", {"limit": 0})
    assert main([*base, str(bad)]) == 1
    assert f"{bad}: limit must be 1 or more, got 0" in _error(capsys, "eval")
    assert main([*base, "seed=-1"]) == 1
    assert "command line: seed must be 0 or more, got -1" in _error(capsys, "eval")
    assert main([*base, "sed=1"]) == 1
    assert "override 'sed=1': unknown key sed (known: " in _error(capsys, "eval")
    assert main([*base, str(tmp_path / "missing.yaml")]) == 1
    assert "missing.yaml: cannot read" in _error(capsys, "eval")
    assert main([*base, "--prompt", "mmmu"]) == 1  # as before: the message of the runner
    assert "unknown prompt 'mmmu' (prompts: " in _error(capsys, "eval")
    assert not out.exists()


def test_eval_config_refuses_what_cannot_run() -> None:
    for settings, message in (({"limit": 0}, "limit must be 1 or more"),
                              ({"batch_size": 0}, "batch size and max new tokens"),
                              ({"seed": -1}, "seed must be 0 or more"),
                              ({"temperature": -1.0}, "temperature must be 0 or more"),
                              ({"stop_after_failures": 0}, "stop_after_failures must be"),
                              ({"prompt": "mmmu"}, "unknown prompt 'mmmu'")):
        with pytest.raises(ConfigError, match=message):
            EvalConfig(**settings)  # type: ignore[arg-type]


# -------------------------------------------------------------------------- audit


def test_an_audit_yaml_with_overrides_equals_the_options(tpru_dataset: Path,
                                                         tmp_path: Path) -> None:
    base = ["audit", str(tpru_dataset), "--model", "random", "--out", str(tmp_path / "a")]
    flags = _parse([*base, "--controls", "blind,full", "--split", "test", "--limit", "4",
                    "--max-lift", "0.4", "--min-samples", "3", "--max-new-tokens", "16",
                    "--seed", "2", "--batch-size", "3", "--prompt", "default",
                    "--option", "note=x"])
    config = _write(tmp_path / "audit.yaml", {
        "audit": {"controls": ["blind", "full"], "split": "test", "limit": 4, "max_lift": 0.4,
                  "min_samples": 3, "options": {"note": "x"}},
        "seed": 5, "batch_size": 3, "prompt": "default"})
    from_file = _parse([*base, str(config), "audit.max_new_tokens=16", "--seed", "2"])
    assert from_file.dataset == str(tpru_dataset)
    assert from_file.config == [str(config), "audit.max_new_tokens=16"]
    expected = AuditRunConfig(
        audit=AuditConfig(model="random", options={"note": "x", "seed": 2},
                          controls=("blind", "full"), split="test", limit=4, max_lift=0.4,
                          min_samples=3, max_new_tokens=16),
        seed=2, batch_size=3, prompt="default")
    assert audit_config(from_file) == audit_config(flags) == expected
    plain = audit_config(_parse(base))
    assert plain == AuditRunConfig(audit=AuditConfig(model="random", options={"seed": 0}))


def test_audit_yaml_reloads_and_repeats_the_audit(tpru_dataset: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    first = tmp_path / "first"
    argv = ["audit", "-q", str(tpru_dataset), "--model", "random", "--out", str(first),
            "--limit", "6", "--seed", "1", "--controls", "shuffled,blind",
            "--max-new-tokens", "16", "--min-samples", "2", "--max-lift", "1.0"]
    assert main(argv) == 0
    saved = first / AUDIT_CONFIG_FILE
    reloaded = load_config_arguments(AuditRunConfig, [str(saved)])
    assert reloaded == audit_config(_parse(argv))
    assert reloaded.audit.controls == ("shuffled", "blind") and reloaded.seed == 1

    again = tmp_path / "again"
    assert main(["audit", "-q", str(tpru_dataset), str(saved), "--model", "random",
                 "--out", str(again)]) == 0
    for control in ("shuffled", "blind"):
        assert _results(again / control) == _results(first / control)
    audits = [json.loads((a / AUDIT_FILE).read_text(encoding="utf-8")) for a in (first, again)]
    assert audits[0]["groups"] == audits[1]["groups"] and audits[0]["seed"] == 1
    assert (again / AUDIT_CONFIG_FILE).read_bytes() == saved.read_bytes()
    capsys.readouterr()
    # An audit folder with its audit.yaml is still an audit: resumed, refused without --resume.
    assert main(["audit", "-q", str(tpru_dataset), str(saved), "--model", "random",
                 "--out", str(again), "--resume"]) == 0
    assert main(["audit", "-q", str(tpru_dataset), "--model", "random",
                 "--out", str(again)]) == 1
    assert "already holds an audit" in _error(capsys, "audit")


def test_a_bad_audit_key_names_its_file_and_the_right_keys(
        tpru_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "audit"
    base = ["audit", str(tpru_dataset), "--model", "random", "--out", str(out)]
    typo = _write(tmp_path / "typo.yaml", {"audit": {"max_lfit": 0.2}})
    assert main([*base, str(typo)]) == 1
    err = _error(capsys, "audit")
    assert f"{typo}: unknown key audit.max_lfit (known: controls, limit, max_lift, " in err
    top = _write(tmp_path / "top.yaml", {"sed": 1})
    assert main([*base, str(top)]) == 1
    assert f"{top}: unknown key sed (known: audit, batch_size, prompt, seed)" in _error(
        capsys, "audit")
    bad = _write(tmp_path / "bad.yaml", {"audit": {"max_lift": 15}})
    assert main([*base, str(bad)]) == 1
    assert f"{bad}: audit: audit.max_lift must be between 0 and 1" in _error(capsys, "audit")
    assert main([*base, "audit.controls=[blind,bogus]"]) == 1
    assert "command line: audit: audit.controls must name" in _error(capsys, "audit")
    assert main([*base, "--max-lift", "15"]) == 1  # an option: the message of before
    assert "fraction between 0 and 1" in _error(capsys, "audit")
    assert not out.exists()


def test_run_audit_needs_a_model(tpru_dataset: Path, tmp_path: Path) -> None:
    from tpru.diagnostics import InputError
    from tpru.eval.audit import run_audit

    with pytest.raises(InputError, match="no model to audit with"):
        run_audit(tpru_dataset, AuditConfig(), tmp_path / "audit")
    with pytest.raises(ConfigError, match="unknown prompt"):
        run_audit(tpru_dataset, AuditConfig(model="random"), tmp_path / "audit", prompt="x")
    assert not (tmp_path / "audit").exists()
    assert replace(AuditRunConfig(), seed=3).audit == AuditConfig()
