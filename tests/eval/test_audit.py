"""The audit: controls run for real (random, a rule-based model over HTTP, the tiny model)."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tpru.builder.config import BuildConfig
from tpru.builder.pipeline import build
from tpru.cli import main
from tpru.config import load
from tpru.dataset import Dataset
from tpru.diagnostics import InputError
from tpru.eval.audit import (
    AUDIT_FILE,
    REPORT_FILE,
    AuditGroup,
    run_audit,
    shuffle_images,
)
from tpru.eval.audit_config import AuditConfig
from tpru.eval.benchmarks import load_benchmark
from tpru.eval.items import Item
from tpru.eval.runner import RESULTS_FILE, RUN_FILE
from tpru.models.base import Request, Response
from tpru.models.baselines import parse_options
from tpru.models.serve import serve
from tpru.schema import Sample
from tpru.sources.synthetic import write_synthetic_episodes

NONE = "None of the choices provided"
NO_KEY = "TPRU_AUDIT_TEST_NO_KEY"  # an unset variable: the local server needs no key


def _lines(run: Path) -> list[dict[str, Any]]:
    text = (run / RESULTS_FILE).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def _group(groups: Sequence[AuditGroup], control: str, by: str, name: str) -> AuditGroup:
    [group] = [g for g in groups if (g.control, g.by, g.group) == (control, by, name)]
    return group


def _samples(dataset: Path) -> list[Sample]:
    return list(Dataset.open(dataset).samples())


def _chance_by_hand(sample: Sample) -> float:
    """1/options, or 1/k! for a letter ordering of the sample's k images."""
    if sample.options is not None:
        return 1 / len(sample.options)
    return 1 / math.factorial(len(sample.images))


# ------------------------------------------------------------- the random model


def test_random_model_is_near_chance_with_every_group_and_chance_counted_by_hand(
        tpru_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit"
    result = run_audit(tpru_dataset, AuditConfig(model="random", max_lift=0.5, min_samples=5),
                       out, show_progress=False)
    samples = _samples(tpru_dataset)
    assert result.passed and result.failures == () and result.path == out
    expected = {("overall", "overall")} | {("task", s.task) for s in samples} \
        | {("scenario", s.scenario) for s in samples} \
        | {("negative", "negative" if s.negative else "positive") for s in samples}
    assert {s.negative for s in samples} == {True, False}
    for control in ("blind", "shuffled"):
        groups = [g for g in result.groups if g.control == control]
        assert {(g.by, g.group) for g in groups} == expected
        answers = {line["id"]: line["correct"] for line in _lines(out / control)}
        assert len(answers) == len(samples)
        for group in groups:
            members = [s for s in samples if group.by == "overall"
                       or (group.by == "task" and s.task == group.group)
                       or (group.by == "scenario" and s.scenario == group.group)
                       or (group.by == "negative" and s.negative == (group.group == "negative"))]
            assert group.n == len(members)
            assert group.correct == sum(answers[s.id] for s in members)
            assert group.accuracy == pytest.approx(group.correct / group.n)
            assert group.chance == pytest.approx(sum(map(_chance_by_hand, members)) / group.n)
            assert group.lift == pytest.approx(group.accuracy - group.chance)
            assert 0 <= group.low <= group.accuracy <= group.high <= 1
        overall = _group(groups, control, "overall", "overall")
        assert abs(overall.lift) < 0.15
    # the letter orderings of 4 images make ordering's chance far below next_frame's
    assert _group(result.groups, "blind", "task", "ordering").chance \
        < _group(result.groups, "blind", "task", "next_frame").chance

    saved = json.loads((out / AUDIT_FILE).read_text(encoding="utf-8"))
    assert saved["passed"] is True and saved["failures"] == []
    assert saved["controls"] == ["blind", "shuffled"] and saved["threshold"] == 0.5
    assert saved["model"] == "random" and saved["min_samples"] == 5
    assert [AuditGroup(**g) for g in saved["groups"]] == list(result.groups)
    report = (out / REPORT_FILE).read_text(encoding="utf-8")
    assert "## blind" in report and "## shuffled" in report and "None: no group" in report
    assert "| task | ordering |" in report
    assert not list(out.glob(".*.tmp"))


def test_the_default_out_inside_the_dataset_leaves_it_readable(
        tpru_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = tmp_path / "dataset"
    shutil.copytree(tpru_dataset, dataset)
    before = Dataset.open(dataset)
    splits, samples = before.splits, _samples(dataset)
    assert main(["audit", "-q", str(dataset), "--model", "random"]) == 0
    printed = capsys.readouterr().out
    assert "blind" in printed and "shuffled" in printed
    assert str(dataset / "audit" / REPORT_FILE) in printed
    assert (dataset / "audit" / AUDIT_FILE).is_file()
    assert Dataset.open(dataset).splits == splits and _samples(dataset) == samples
    assert main(["stats", "--json", str(dataset)]) == 0
    assert json.loads(capsys.readouterr().out)
    # the same command again must not overwrite the audit silently
    assert main(["audit", "-q", str(dataset), "--model", "random"]) == 1
    assert "already holds an audit" in capsys.readouterr().err


# ------------------------------------------------- a model that answers "None"


class NonePicker:
    """Answers the letter of the "None of the choices provided" option, else "A"."""

    name = "none-picker"

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        responses = []
        for request in requests:
            options = parse_options(request.prompt)
            letter = chr(ord("A") + options.index(NONE)) if NONE in options else "A"
            responses.append(Response(request.id, f"<answer>{letter}</answer>"))
        return responses


@pytest.fixture(scope="module")
def negative_heavy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset where 90% of the multiple-choice samples are negatives (no positive twins)."""
    root = tmp_path_factory.mktemp("negative-heavy")
    write_synthetic_episodes(root / "episodes", episodes=2, frames=5, seed=0, size=(96, 72))
    config = load(BuildConfig, {"sources": [f"frames:{root / 'episodes'}"],
                                "out": str(root / "dataset"), "seed": 0,
                                "tasks": {"negative_rate": 0.9, "twins": []}})
    return build(config, show_progress=False).path


def test_a_model_that_always_answers_none_fails_the_audit_on_negatives(
        negative_heavy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples = _samples(negative_heavy)
    negatives = sum(bool(s.negative) for s in samples)
    assert negatives > len(samples) / 2
    with serve(NonePicker()) as server:
        options = {"base_url": server.url, "api_key_env": NO_KEY}
        config = AuditConfig(model="openai:none-picker", options=options,
                             controls=("blind", "shuffled", "full"), max_lift=0.3,
                             min_samples=5)
        result = run_audit(negative_heavy, config, tmp_path / "audit", show_progress=False)
        for control in ("blind", "shuffled", "full"):
            negative = _group(result.groups, control, "negative", "negative")
            assert (negative.n, negative.correct) == (negatives, negatives)
            assert negative.lift > 0.5
            assert _group(result.groups, control, "negative", "positive").correct == 0
        assert not result.passed
        assert {g.control for g in result.failures} == {"blind", "shuffled"}  # full: reference
        assert all(g.n >= 5 and g.lift > 0.3 for g in result.failures)
        assert ("blind", "negative", "negative") in {(g.control, g.by, g.group)
                                                     for g in result.failures}
        assert [g.lift for g in result.failures] == sorted((g.lift for g in result.failures),
                                                           reverse=True)
        saved = json.loads((tmp_path / "audit" / AUDIT_FILE).read_text(encoding="utf-8"))
        assert saved["passed"] is False and len(saved["failures"]) == len(result.failures)
        assert "## Failures" in (tmp_path / "audit" / REPORT_FILE).read_text(encoding="utf-8")
        # The model-free probes ride along, on every choice sample of the dataset.
        probes = saved["probes"]
        choice = sum(1 for s in samples if s.options)
        assert sum(t["n"] for t in probes["tasks"].values()) == choice
        assert probes["tasks"]["next_frame"]["probes"]["always_none"]["reference"]
        assert "## Model-free probes" in (tmp_path / "audit" / REPORT_FILE).read_text(
            encoding="utf-8")

        # groups smaller than min_samples are never failures
        larger = run_audit(negative_heavy, replace(config, controls=("blind",),
                                                   min_samples=len(samples) + 1),
                           tmp_path / "few", show_progress=False)
        assert larger.passed

        base = ["audit", "-q", str(negative_heavy), "--model", "openai:none-picker",
                "--base-url", server.url, "--option", f"api_key_env={NO_KEY}",
                "--min-samples", "5"]
        assert main([*base, "--out", str(tmp_path / "strict"), "--max-lift", "0.3"]) == 1
        err = capsys.readouterr().err.strip()
        # The largest lift first: negatives, or a task whose samples all came out negative.
        assert err.startswith("audit failed: blind gets 100.0% on ")
        assert "(chance 20.0%" in err
        assert "points > 30.0" in err and str(tmp_path / "strict" / REPORT_FILE) in err
        assert "\n" not in err
        assert main([*base, "--out", str(tmp_path / "lenient"), "--max-lift", "0.95",
                     "--controls", "blind"]) == 0
        assert main([*base, "--out", str(tmp_path / "unchecked"), "--controls", "blind"]) == 0


def test_an_audit_that_checked_nothing_says_so_and_fails_under_strict(
        tpru_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 12, 13: with --max-lift and every group below --min-samples, the audit
    exited 0 as if it had passed a check it never made."""
    base = ["audit", "-q", str(tpru_dataset), "--model", "random", "--controls", "blind",
            "--max-lift", "0.15", "--min-samples", "100000"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    items = json.loads((tmp_path / "a" / AUDIT_FILE).read_text(encoding="utf-8"))["items"]
    unchecked = (f"nothing was checked against max_lift 0.15: no blind or shuffled group has "
                 f"min_samples 100000 items (the largest has {items}); audit more items or "
                 "lower min_samples")
    assert err == f"audit passed, but {unchecked}\n"
    assert f"None, but {unchecked}." in (tmp_path / "a" / REPORT_FILE).read_text(
        encoding="utf-8")
    assert main([*base, "--out", str(tmp_path / "a"), "--resume", "--strict"]) == 1
    assert capsys.readouterr().err == f"audit failed, but {unchecked}\n"
    # Something checked, nothing above the threshold: --strict passes.
    assert main([*base[:-1], "1", "--out", str(tmp_path / "b"), "--strict",
                 "--max-lift", "1"]) == 0
    assert capsys.readouterr().err == ""
    assert main([*base[:-4], "--out", str(tmp_path / "c"), "--strict"]) == 1
    assert "--strict needs --max-lift" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


# ----------------------------------------------------------- the shuffled control


def test_shuffled_control_permutes_every_items_images_by_seed(tpru_dataset: Path,
                                                             tmp_path: Path) -> None:
    items = {item.id: item for item in load_benchmark(tpru_dataset, cache_dir=tmp_path,
                                                      split="all").items()}

    def orders(seed: int, name: str) -> dict[str, list[str]]:
        run_audit(tpru_dataset, AuditConfig(model="random", controls=("shuffled",)),
                  tmp_path / name, seed=seed, show_progress=False)
        return {line["id"]: line["images"] for line in _lines(tmp_path / name / "shuffled")}

    first = orders(0, "a")
    assert first.keys() == items.keys()
    for item_id, images in first.items():
        original = list(items[item_id].images)
        assert len(original) >= 2
        assert sorted(images) == sorted(original) and images != original
    assert orders(0, "b") == first
    assert orders(1, "c") != first
    info = json.loads((tmp_path / "a" / "shuffled" / RUN_FILE).read_text(encoding="utf-8"))
    assert info["benchmark"].endswith("shuffled-images") and info["backend"] == "random"


def test_shuffle_images_never_leaves_two_images_in_place() -> None:
    for index in range(50):
        item = Item(id=f"q{index}", benchmark="demo", question="<image> or <image>?",
                    options=("yes", "no"), answer="A", images=("a.png", "b.png"), task="t")
        assert shuffle_images(item, seed=index).images == ("b.png", "a.png")
        assert shuffle_images(item, seed=index).answer == "A"


# ------------------------------------------------------------------- the tiny model


def test_tiny_model_end_to_end_and_a_resumed_audit_equals_a_fresh_one(
        tiny_model_dir: Path, tpru_dataset: Path, tmp_path: Path) -> None:
    model = f"hf:{tiny_model_dir}"
    cpu = ["--option", "device=cpu", "--option", "dtype=float32"]
    fresh = tmp_path / "fresh"
    assert main(["audit", "-q", str(tpru_dataset), "--model", model, *cpu, "--limit", "4",
                 "--max-new-tokens", "8", "--batch-size", "2", "--out", str(fresh)]) == 0
    blind = json.loads((fresh / "blind" / RUN_FILE).read_text(encoding="utf-8"))
    assert blind["backend"] == f"blind:{model}" and blind["model"] == f"blind:{model}"
    assert blind["counts"]["answered"] == 4
    for line in _lines(fresh / "blind"):
        assert line["error"] is None and line["usage"]["image_tokens"] == 0
    for line in _lines(fresh / "shuffled"):
        assert line["error"] is None and line["usage"]["image_tokens"] >= len(line["images"])
    saved = json.loads((fresh / AUDIT_FILE).read_text(encoding="utf-8"))
    assert saved["items"] == 4 and {g["control"] for g in saved["groups"]} == {"blind",
                                                                                "shuffled"}

    config = AuditConfig(model=model, options={"device": "cpu", "dtype": "float32"},
                         max_new_tokens=8, limit=2)
    resumed = tmp_path / "resumed"
    run_audit(tpru_dataset, config, resumed, batch_size=2, show_progress=False)
    result = run_audit(tpru_dataset, replace(config, limit=4), resumed, batch_size=2,
                       resume=True, show_progress=False)
    assert [AuditGroup(**g) for g in saved["groups"]] == list(result.groups)
    assert sum(1 for _ in _lines(resumed / "shuffled")) == 4


# -------------------------------------------------------------------------- the CLI


def test_help_explains_the_controls(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["audit", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "blind" in text and "shuffled" in text and "--max-lift" in text
    assert "--min-samples" in text and "chance" in text and "--split test" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--controls", "blind,bogus"], "unknown control 'bogus'"),
    (["--max-lift", "15"], "fraction between 0 and 1"),
    (["--limit", "0"], "limit must be 1 or more"),
    (["--model", "blind:random"], "the blind control removes the images"),
])
def test_bad_arguments_exit_1_with_one_line(
        tpru_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        args: list[str], message: str) -> None:
    out = tmp_path / "audit"
    assert main(["audit", str(tpru_dataset), "--model", "random", "--out", str(out),
                 *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tpru audit: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_a_negative_seed_is_refused_before_any_control_runs(
        tpru_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "audit"
    with pytest.raises(SystemExit) as exit_:
        main(["audit", str(tpru_dataset), "--model", "random", "--out", str(out),
              "--seed", "-1"])
    assert exit_.value.code == 2
    assert "argument --seed: must be 0 or more, got -1" in capsys.readouterr().err
    # The bootstrap's numpy generator refuses a negative seed; before, the controls ran first.
    with pytest.raises(InputError, match="seed must be 0 or more, got -1"):
        run_audit(tpru_dataset, AuditConfig(model="random"), out, seed=-1)
    assert not out.exists()


def test_a_missing_dataset_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(tmp_path / "nowhere"), "--model", "random", "--out",
                 str(tmp_path / "audit")]) == 1
    err = capsys.readouterr().err
    assert "no such dataset folder" in err and err.count("\n") == 1


def test_a_resume_that_cannot_go_on_fails_before_the_model_loads(
        tpru_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A resumed audit with a changed setting is refused from its run folders alone: the
    model (here one that cannot be opened at all) is never loaded."""
    out = str(tmp_path / "a")
    base = ["audit", "-q", str(tpru_dataset), "--controls", "blind", "--out", out]
    assert main([*base, "--model", "random"]) == 0
    capsys.readouterr()
    assert main([*base, "--model", "random", "--seed", "7", "--resume"]) == 1
    assert "cannot resume: the run used seed 0 (now 7)" in capsys.readouterr().err
    assert main([*base, "--model", "hf:/no/such/model", "--resume"]) == 1
    err = capsys.readouterr().err
    assert "cannot resume" in err and "/no/such/model" in err


def test_eval_spreads_its_requests_over_every_base_url(
        negative_heavy: Path, tmp_path: Path) -> None:
    """``--base-url`` repeated: one run over two servers, each answering a share."""
    import httpx

    def served(url: str) -> int:
        metrics = httpx.get(url.removesuffix("/v1") + "/metrics", timeout=10).text
        return int(next(line.split()[1] for line in metrics.splitlines()
                        if line.startswith("tpru_serve_requests_total ")))

    with serve(NonePicker()) as first, serve(NonePicker()) as second:
        out = tmp_path / "run"
        assert main(["eval", "-q", "--model", "openai:none-picker", "--bench",
                     f"dataset:{negative_heavy}", "--split", "all", "--out", str(out),
                     "--base-url", first.url, "--base-url", second.url,
                     "--concurrency", "1", "--batch-size", "4",
                     "--option", f"api_key_env={NO_KEY}"]) == 0
        run = json.loads((out / "run.json").read_text(encoding="utf-8"))
        assert run["backend_options"]["base_url"] == [first.url, second.url]
        assert run["counts"]["errors"] == 0
        assert served(first.url) > 0 and served(second.url) > 0
        assert served(first.url) + served(second.url) == run["counts"]["items"]
