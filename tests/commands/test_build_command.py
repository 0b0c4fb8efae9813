"""``tpru build``'s own steps around the builder: the ``audit:`` section, loaded by the
command into the evaluation's `AuditConfig` and recorded resolved in the build's config,
and the audit run after the build on the model the build already opened."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

import tpru.builder.pipeline as pipeline
import tpru.eval.audit as audit_module
from tpru.cli import main
from tpru.commands.build import load_build_config
from tpru.config import ConfigError, to_dict
from tpru.eval.audit_config import AuditConfig
from tpru.models import Backend
from tpru.models.base import Request, Response
from tpru.sources.synthetic import write_synthetic_episodes


class _Agreeable:
    """A model that says yes to everything: the judge keeps every episode."""

    def __init__(self, name: str) -> None:
        self.name = name

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return [Response(id=request.id, text="Yes.") for request in requests]


@pytest.fixture(scope="module")
def episodes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("episodes")
    write_synthetic_episodes(root, episodes=3, frames=6, seed=0)
    return root


def test_the_audit_section_is_checked_by_the_command_and_recorded_resolved() -> None:
    config, audit = load_build_config({"audit": {"model": "random", "controls": ["blind"]}})
    assert audit == AuditConfig(model="random", controls=("blind",))
    # Defaults filled in, as build.json and the resume fingerprint have always held them.
    assert config.audit == to_dict(audit) and config.audit["min_samples"] == 20
    config, audit = load_build_config({})
    assert audit == AuditConfig() and config.audit == to_dict(AuditConfig())
    with pytest.raises(ConfigError, match=r"^audit: audit.max_lift must be between 0 and 1$"):
        load_build_config({"audit": {"max_lift": 2}})
    with pytest.raises(ConfigError, match=r"^unknown key audit.modle \(known: controls, "):
        load_build_config({"audit": {"modle": "random"}})
    with pytest.raises(ConfigError, match=r"^audit: expected a mapping, got int$"):
        load_build_config({"audit": 3})
    with pytest.raises(ConfigError, match=r"^audit.split 'val' is not one of the build's"):
        load_build_config({"audit": {"split": "val"}})


def test_the_audit_after_a_build_reuses_the_model_stages_backend(
        episodes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    opened: list[Backend] = []

    def counted(spec: str, **options: object) -> Backend:
        opened.append(_Agreeable(spec))
        return opened[-1]

    def refused(spec: str, **options: object) -> Backend:
        raise AssertionError(f"the audit opened {spec} again")

    monkeypatch.setattr(pipeline, "open_backend", counted)
    monkeypatch.setattr(audit_module, "open_backend", refused)
    out = tmp_path / "data"
    assert main(["build", "-q", "--source", f"frames:{episodes}", "--out", str(out),
                 "model.name=random", f"model.cache={tmp_path / 'cache'}", "judge.enabled=true",
                 "audit.model=random", "audit.controls=[blind]"]) == 0
    assert len(opened) == 1
    assert "audit of random" in capsys.readouterr().out
    report = json.loads((out / "audit" / "audit.json").read_text(encoding="utf-8"))
    assert report["controls"] == ["blind"]
    recorded = json.loads((out / "build.json").read_text(encoding="utf-8"))["config"]["audit"]
    assert recorded == to_dict(AuditConfig(model="random", controls=("blind",)))


# ---------------------------------------------------------------- a build that stops

UNFINISHED = "the unfinished build is kept in {}; continue it with the same tpru build command " \
             "and --resume, or delete that folder"


def test_a_failed_build_says_where_its_unfinished_folder_is(
        episodes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 12, 11: a build that failed half-way left OUT.partial/ without a word."""
    source = tmp_path / "episodes"
    write_synthetic_episodes(source, episodes=3, frames=6, seed=0)
    frame = sorted(source.rglob("*.jpg"))[-1]  # read after the first episodes were measured
    frame.write_bytes(b"not a picture")
    out = tmp_path / "data"
    argv = ["build", "-q", "--source", f"frames:{source}", "--out", str(out), "--strict"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tpru build: error: ")
    assert frame.name in err and err.endswith(UNFINISHED.format(tmp_path / "data.partial") + "\n")
    assert not out.exists() and (tmp_path / "data.partial").is_dir()

    # Refused before anything was written: no folder, so not a word of one.
    assert main([*argv, "tasks.frames_per_sample=17"]) == 1
    assert "unfinished" not in capsys.readouterr().err


def test_an_interrupted_build_says_where_its_folder_is_instead_of_a_bare_hint(
        episodes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_finish", interrupted)
    assert main(["build", "-q", "--source", f"frames:{episodes}", "--out",
                 str(tmp_path / "data")]) == 130
    assert capsys.readouterr().err == "tpru build: interrupted; " + UNFINISHED.format(
        tmp_path / "data.partial") + "\n"
