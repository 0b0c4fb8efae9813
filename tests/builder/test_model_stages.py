"""The model-in-the-loop stages of a build: judge, descriptions, the answer cache.

Models are real and reached the real way: a rule-based vision model
(`rule_model.RuleModel`, which reads the pixels) served over HTTP by
`tpru.models.serve` and called through the ``openai:`` backend, and the tiny
offline Qwen2.5-VL through ``hf:`` and through the same server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from episode_files import frame_image, write_image
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from rule_model import COLOURS, RuleModel

from tpru.builder.config import BuildConfig
from tpru.builder.model_answers import (
    parse_description,
    parse_negative,
    parse_paraphrases,
    parse_verdict,
    word_overlap,
)
from tpru.builder.model_calls import fill_prompt
from tpru.builder.pipeline import BuildResult, build
from tpru.cli import main
from tpru.config import ConfigError, load
from tpru.dataset import Dataset
from tpru.diagnostics import InputError
from tpru.models.serve import Fault, Server, serve
from tpru.schema import Sample, read_jsonl
from tpru.stats import compute_stats, render_stats

GOOD = 12
BAD = 4


def tinted(seed: int, step: int, colour: str) -> Image.Image:
    """`episode_files.frame_image` with the background pushed towards `colour`."""
    pixels = np.asarray(frame_image(seed, step)).copy()
    channel = COLOURS.index(colour)
    pixels[..., channel] = 128 + pixels[..., channel] // 2
    return Image.fromarray(pixels)


def write_recordings(root: Path) -> dict[str, str]:
    """GOOD episodes in order and BAD with their frames shuffled; returns id -> colour."""
    colours = {}
    for e in range(GOOD + BAD):
        episode = f"ep{e:02d}"
        colour = COLOURS[e % 3]
        colours[episode] = colour
        order = list(range(6)) if e < GOOD else [3, 0, 5, 1, 4, 2]
        for k, step in enumerate(order):
            write_image(root / episode / f"{k:03d}.jpg", tinted(100 + e, step, colour))
        (root / episode / "episode.json").write_text(json.dumps(
            {"scenario": "robot", "description": f"moving a square in recording {e}"}))
    return colours


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("recordings")
    return root, write_recordings(root)


@pytest.fixture
def rule_server() -> Iterator[tuple[Server, RuleModel]]:
    model = RuleModel()
    with serve(model, model_name="rule") as server:
        yield server, model


def run(source: Path, out: Path, cache: Path, **sections: Any) -> BuildResult:
    data: dict[str, Any] = {"sources": [f"frames:{source}"], "out": str(out),
                            "split": {"ratios": {"train": 0.5, "test": 0.5}},
                            "model": {"cache": str(cache), "batch_size": 4}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return build(load(BuildConfig, data), overwrite=True, show_progress=False)


def rule_model_section(server: Server) -> dict[str, Any]:
    return {"name": "openai:rule", "options": {"base_url": server.url, "concurrency": 2}}


def samples(out: Path) -> list[Sample]:
    info = json.loads((out / "build.json").read_text())
    return [s for split in info["splits"] for s in read_jsonl(out / f"{split}.jsonl", Sample)]


# ---------------------------------------------------------------- the judge


def test_the_judge_drops_shuffled_episodes_and_a_rebuild_asks_nothing(
        recordings: tuple[Path, dict[str, str]], rule_server: tuple[Server, RuleModel],
        tmp_path: Path) -> None:
    source, _ = recordings
    server, _ = rule_server
    result = run(source, tmp_path / "data", tmp_path / "cache",
                 model=rule_model_section(server), judge={"enabled": True})
    info = result.info
    assert info["drops"]["episodes"] == {"judge_rejected": BAD}
    assert info["model_stages"]["judge"] == {"kept": GOOD, "rejected": BAD}
    assert any("the judge said 'No.'" in m for m in info["drop_examples"]["judge_rejected"])
    assert {s.episode_id for s in samples(result.path)} == {f"ep{e:02d}" for e in range(GOOD)}
    assert result.calls == {"judge": {"asked": GOOD + BAD, "cached": 0, "errors": 0}}
    assert server.stats.calls == GOOD + BAD

    again = run(source, tmp_path / "data", tmp_path / "cache",
                model=rule_model_section(server), judge={"enabled": True})
    assert server.stats.calls == GOOD + BAD  # nothing asked twice
    assert again.calls == {"judge": {"asked": 0, "cached": GOOD + BAD, "errors": 0}}
    assert again.info["content_hash"] == info["content_hash"]
    assert again.info == info


def test_a_changed_prompt_asks_again_and_a_bad_prompt_fails_before_any_work(
        recordings: tuple[Path, dict[str, str]], rule_server: tuple[Server, RuleModel],
        tmp_path: Path) -> None:
    source, _ = recordings
    server, _ = rule_server
    prompt = tmp_path / "judge.txt"
    prompt.write_text("Recording of {scenario}:\n{images}\nIs this a clear process? "
                      "Say yes or no.")
    result = run(source, tmp_path / "data", tmp_path / "cache",
                 model=rule_model_section(server), judge={"enabled": True, "prompt": str(prompt)})
    assert result.calls["judge"]["asked"] == GOOD + BAD
    assert result.info["model_stages"]["judge"] == {"kept": GOOD, "rejected": BAD}

    for text, message in (("Is {what} clear? {images}", "unknown placeholder {what}"),
                          ("Is this clear? yes or no", "must say where the frames go"),
                          ("Frames: <image>", "write {images} where the frames go")):
        prompt.write_text(text)
        with pytest.raises(InputError, match=message):
            run(source, tmp_path / "bad", tmp_path / "cache", model=rule_model_section(server),
                judge={"enabled": True, "prompt": str(prompt)})
        assert not (tmp_path / "bad.partial").exists()
    with pytest.raises(InputError, match="cannot read the prompt file"):
        run(source, tmp_path / "bad", tmp_path / "cache", model=rule_model_section(server),
            judge={"enabled": True, "prompt": str(tmp_path / "missing.txt")})


def test_unclear_answers_are_kept_or_dropped_and_counted(
        recordings: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    source, colours = recordings
    blue = sum(1 for c in colours.values() if c == "blue")
    blue_good = sum(1 for e, c in colours.items() if c == "blue" and int(e[2:]) < GOOD)
    model = RuleModel(unclear=frozenset({"blue"}))
    with serve(model, model_name="rule") as server:
        kept = run(source, tmp_path / "keep", tmp_path / "cache",
                   model=rule_model_section(server), judge={"enabled": True})
        dropped = run(source, tmp_path / "drop", tmp_path / "cache",
                      model=rule_model_section(server),
                      judge={"enabled": True, "on_unclear": "drop"})
    assert kept.info["model_stages"]["judge"]["unclear"] == blue
    assert kept.info["counts"]["episodes_kept"] == GOOD - blue_good + blue
    assert dropped.info["drops"]["episodes"]["judge_unclear"] == blue
    assert dropped.info["counts"]["episodes_kept"] == GOOD - blue_good
    assert dropped.calls["judge"]["asked"] == 0  # the same questions: all cached


def test_failed_requests_are_counted_not_cached_and_a_dead_model_stops_the_build(
        recordings: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    source, _ = recordings
    model = RuleModel()
    with serve(model, model_name="rule", faults=["400", "400"]) as server:
        section = {**rule_model_section(server), "options": {
            "base_url": server.url, "concurrency": 1, "max_retries": 0}}
        first = run(source, tmp_path / "data", tmp_path / "cache", model=section,
                    judge={"enabled": True})
        assert first.calls["judge"] == {"asked": GOOD + BAD, "cached": 0, "errors": 2}
        assert first.info["model_stages"]["judge"]["errors"] == 2
        second = run(source, tmp_path / "data", tmp_path / "cache", model=section,
                     judge={"enabled": True})
        assert second.calls["judge"] == {"asked": 2, "cached": GOOD + BAD - 2, "errors": 0}
        assert second.info["model_stages"]["judge"] == {"kept": GOOD, "rejected": BAD}
    with serve(model, model_name="rule", faults=lambda call: "400") as server:
        section = {"name": "openai:rule", "options": {"base_url": server.url,
                                                      "max_retries": 0}}
        with pytest.raises(InputError, match="every request of the judge stage failed"):
            run(source, tmp_path / "dead", tmp_path / "cache2", model=section,
                judge={"enabled": True})


# ---------------------------------------------------------------- descriptions


def test_model_descriptions_captions_negatives_and_paraphrases(
        recordings: tuple[Path, dict[str, str]], rule_server: tuple[Server, RuleModel],
        tmp_path: Path) -> None:
    source, colours = recordings
    server, model = rule_server
    result = run(source, tmp_path / "data", tmp_path / "cache",
                 model=rule_model_section(server), judge={"enabled": True},
                 describe={"mode": "always", "paraphrases": 2},
                 tasks={"negative_rate": 0.6, "negative_kinds": ["mismatch"]},
                 text={"paraphrase_rate": 0.5})
    kept = [e for e in colours if int(e[2:]) < GOOD]
    green = sum(1 for e in kept if colours[e] == "green")
    assert result.info["model_stages"]["describe"] == {
        "described": GOOD, "captions": 6 * GOOD, "negatives": GOOD - green,
        "negatives_too_close": green, "paraphrases": 2 * GOOD}
    # Paraphrase prompts are text only: one per distinct description (three colours).
    assert model.asked == {"judge": GOOD + BAD, "describe": GOOD, "negative": GOOD,
                           "paraphrase": len(COLOURS)}
    assert result.calls["paraphrase"] == {"asked": 3, "cached": GOOD - 3, "errors": 0}

    written = samples(result.path)
    for sample in written:
        colour = colours[sample.episode_id]
        own = f"sliding the white square to the right over the {colour} background"
        # Captions, in chronological order of the window's frames.
        assert len(sample.meta["captions"]) == len(sample.meta["window"])
        assert all(c.startswith("the white square at x=") for c in sample.meta["captions"])
        xs = [int(c.rsplit("=", 1)[1]) for c in sample.meta["captions"]]
        assert xs == sorted(xs)
        if sample.meta.get("negative_kind") == "mismatch":
            shown = sample.meta["shown_description"]
            if sample.meta.get("negative_source") == "model":
                assert colour != "green"
                assert shown == f"stacking {colour} cups on a shelf"
            else:  # green: the model's negative was too close; another episode's is used
                assert colour == "green"
                assert "white square" in shown and colour not in shown
        elif sample.meta.get("description_template") is not None:
            paraphrase = sample.meta.get("description_paraphrase")
            expected = own if paraphrase is None else (
                "pushing the white square rightwards",
                "moving the white square towards the right edge")[paraphrase]
            assert expected in sample.question
    assert any(s.meta.get("negative_source") == "model" for s in written)
    # tpru stats counts what the model wrote.
    stats = compute_stats(Dataset.open(result.path))
    assert stats["model_text"] == {
        "negative description": sum(s.meta.get("negative_source") == "model" for s in written),
        "paraphrased description": sum(s.meta.get("description_paraphrase") is not None
                                       for s in written),
        "step captions": len(written)}
    assert any(t.title == "By model-written text" for t in render_stats(stats).renderables)
    assert any(s.meta.get("description_paraphrase") is not None for s in written)
    assert any(s.meta.get("description_paraphrase") is None
               and s.meta.get("description_template") is not None for s in written)


def test_missing_mode_describes_only_episodes_without_text(tmp_path: Path) -> None:
    source = tmp_path / "recordings"
    for e in range(8):
        for step in range(5):
            write_image(source / f"ep{e}" / f"{step:03d}.jpg", tinted(e, step, "red"))
        if e % 2:
            (source / f"ep{e}" / "episode.json").write_text(
                json.dumps({"description": f"sorting parcel number {e}"}))
    model = RuleModel()
    with serve(model, model_name="rule") as server:
        result = run(source, tmp_path / "data", tmp_path / "cache",
                     model=rule_model_section(server),
                     describe={"mode": "missing", "negatives": False, "captions": False},
                     text={"require_description": True})
    assert result.info["model_stages"]["describe"] == {"described": 4, "kept_source": 4}
    assert model.asked == {"describe": 4}
    for sample in samples(result.path):
        assert "captions" not in sample.meta
        odd = int(sample.episode_id[2:]) % 2
        if sample.meta.get("description_template") is not None and not sample.negative:
            text = f"sorting parcel number {sample.episode_id[2:]}" if odd \
                else "sliding the white square to the right over the red background"
            assert text in sample.question


def test_require_description_drops_what_the_model_could_not_describe(tmp_path: Path,
                                                                     tiny_model_dir: Path
                                                                     ) -> None:
    source = tmp_path / "recordings"
    for e in range(6):
        for step in range(4):
            write_image(source / f"ep{e}" / f"{step:03d}.jpg", tinted(e, step, "blue"))
        if e >= 4:
            (source / f"ep{e}" / "episode.json").write_text(
                json.dumps({"description": f"sorting parcel number {e}"}))
    result = run(source, tmp_path / "data", tmp_path / "cache",
                 model={"name": f"hf:{tiny_model_dir}", "max_new_tokens": 4},
                 describe={"mode": "missing", "negatives": False},
                 text={"require_description": True})
    # The tiny model's four random tokens are never a description.
    assert result.info["model_stages"]["describe"] == {"unparsed": 4, "kept_source": 2}
    assert result.info["drops"]["episodes"] == {"no_description": 4}
    assert {s.episode_id for s in samples(result.path)} == {"ep4", "ep5"}


# ---------------------------------------------------------------- the tiny model


def test_tiny_model_through_hf_and_through_the_openai_server(tmp_path: Path,
                                                            tiny_model_dir: Path) -> None:
    from tpru.models.hf import HFBackend

    source = tmp_path / "recordings"
    for e in range(6):
        for step in range(4):
            write_image(source / f"ep{e}" / f"{step:03d}.jpg", tinted(e, step, COLOURS[e % 3]))
        (source / f"ep{e}" / "episode.json").write_text(
            json.dumps({"description": f"moving a square in recording {e}"}))
    stages = {"judge": {"enabled": True}, "describe": {"mode": "always"}}
    direct = run(source, tmp_path / "direct", tmp_path / "cache",
                 model={"name": f"hf:{tiny_model_dir}", "max_new_tokens": 6,
                        "options": {"batch_size": 4}}, **stages)
    judged = direct.info["model_stages"]["judge"]
    assert sum(judged.values()) == 6
    assert direct.calls["judge"] == {"asked": 6, "cached": 0, "errors": 0}
    assert direct.calls["describe"]["asked"] == 6
    # Unparsed descriptions keep the source's: nothing is lost.
    assert direct.info["counts"]["episodes_kept"] == 6 - judged.get("rejected", 0)

    with serve(HFBackend(str(tiny_model_dir), batch_size=4), model_name="tiny") as server:
        served = run(source, tmp_path / "served", tmp_path / "cache",
                     model={"name": "openai:tiny", "max_new_tokens": 6,
                            "options": {"base_url": server.url}}, **stages)
        assert server.stats.calls == sum(c["asked"] for c in served.calls.values())
        assert served.calls["judge"]["asked"] == 6
        again = run(source, tmp_path / "served", tmp_path / "cache",
                    model={"name": "openai:tiny", "max_new_tokens": 6,
                           "options": {"base_url": server.url}}, **stages)
        assert all(c["asked"] == 0 for c in again.calls.values())
    assert sum(served.info["model_stages"]["judge"].values()) == 6
    assert again.info == served.info


# ---------------------------------------------------------------- config and CLI


def test_model_stages_need_a_model_and_a_valid_backend(tmp_path: Path) -> None:
    source = tmp_path / "frames"
    source.mkdir()
    with pytest.raises((ConfigError, ValueError), match="needs a model"):
        load(BuildConfig, {"judge": {"enabled": True}})
    with pytest.raises((ConfigError, ValueError), match="audit.split 'val' is not one of"):
        load(BuildConfig, {"audit": {"model": "random", "split": "val"}})
    with pytest.raises(InputError, match="unknown backend kind"):
        build(load(BuildConfig, {"sources": [f"frames:{source}"], "out": str(tmp_path / "o"),
                                 "model": {"name": "nope:x"}, "judge": {"enabled": True}}),
              show_progress=False)
    with pytest.raises(InputError, match="has no option 'colour'"):
        build(load(BuildConfig, {"sources": [f"frames:{source}"], "out": str(tmp_path / "o"),
                                 "model": {"name": "openai:m", "options": {"colour": 1}},
                                 "describe": {"mode": "always"}}), show_progress=False)


def test_cli_build_with_a_judge_prints_the_stages_and_calls(
        recordings: tuple[Path, dict[str, str]], rule_server: tuple[Server, RuleModel],
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, _ = recordings
    server, _ = rule_server
    status = main(["build", "-q", "--source", f"frames:{source}", "--out", str(tmp_path / "d"),
                   "model.name=openai:rule", f"model.options={{base_url: '{server.url}'}}",
                   f"model.cache={tmp_path / 'cache'}", "judge.enabled=true"])
    assert status == 0
    out = capsys.readouterr().out
    assert f"judge (openai:rule): kept {GOOD}, rejected {BAD}" in out
    assert f"model calls, judge: {GOOD + BAD} asked, 0 from the cache, 0 failed" in out
    assert "judge_rejected 4" in out
    assert main(["view", "-q", str(tmp_path / "d")]) == 0
    page = (tmp_path / "d" / "view.html").read_text()
    assert f"Model stage judge (openai:rule): kept {GOOD}, rejected {BAD}." in page


# ---------------------------------------------------------------- parsing


def test_parsers_read_what_models_write() -> None:
    assert parse_verdict("<think>hm, no doubt</think><answer>Yes</answer>") is True
    assert parse_verdict("NO - the frames repeat") is False
    assert parse_verdict("Nothing changes.") is None  # "no" only as a word
    assert parse_description("**Process:** Pouring water into the glass.\n\n"
                             "Step 1 - an empty glass\nStep 2: water flows") == (
        "pouring water into the glass", {1: "an empty glass", 2: "water flows"})
    assert parse_description("Opening the top drawer") == (None, {})  # no label
    assert parse_description("Description: Opening the top drawer.") == (
        "opening the top drawer", {})
    assert parse_description("I cannot see anything.\nSorry.") == (None, {})
    assert parse_negative("Wrong process: closing the laptop lid") == "closing the laptop lid"
    assert parse_negative("Sure!\nHere it is.") is None
    assert parse_negative("closing the laptop lid") is None  # no label
    assert parse_paraphrases("Sure, here they are:\n1. placing the cup\n2) putting the cup "
                             "down\n- setting the cup down\n3. <image> x") == [
        "placing the cup", "putting the cup down", "setting the cup down"]
    assert word_overlap("stacking the red block", "stacking a red block") == 1.0
    assert word_overlap("stacking the red block", "folding a towel") == 0.0
    assert fill_prompt("{a} {b} {}", {"a": "1", "b": "{a}"}, where="t") == "1 {a} {}"


@given(st.text())
def test_parsers_are_total(text: str) -> None:
    parse_verdict(text)
    description, captions = parse_description(text)
    assert description is None or description.strip() == description
    assert all(k >= 0 for k in captions)
    parse_negative(text)
    parse_paraphrases(text)


# ---------------------------------------------------------------- the audit after a build


def test_build_audits_its_dataset_and_fails_above_the_threshold(
        recordings: tuple[Path, dict[str, str]], rule_server: tuple[Server, RuleModel],
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, _ = recordings
    server, model = rule_server
    argv = ["tasks.negative_rate=0.9",
            "audit.model=openai:rule", "audit.controls=[blind]", "audit.min_samples=5",
            f"audit.options={{base_url: '{server.url}'}}", "audit.max_new_tokens=16"]
    # The rule model answers "None of the choices provided" whatever it sees, which
    # the blind control exposes on a dataset of mostly negative samples.
    assert main(["build", "-q", "--source", f"frames:{source}", "--out", str(tmp_path / "strict"),
                 *argv, "audit.max_lift=0.2"]) == 1
    err = capsys.readouterr().err
    assert "audit failed: blind gets" in err and "negative" in err
    audit = json.loads((tmp_path / "strict" / "audit" / "audit.json").read_text())
    assert audit["passed"] is False and audit["controls"] == ["blind"]
    assert model.asked["question"] > 0
    # The dataset is kept, whole, beside its report.
    assert (tmp_path / "strict" / "build.json").is_file()
    assert samples(tmp_path / "strict")

    assert main(["build", "-q", "--source", f"frames:{source}", "--out", str(tmp_path / "lenient"),
                 *argv, "audit.max_lift=1.0"]) == 0
    out = capsys.readouterr().out
    assert "audit of openai:rule" in out
    lenient = json.loads((tmp_path / "lenient" / "build.json").read_text())
    strict = json.loads((tmp_path / "strict" / "build.json").read_text())
    assert lenient["content_hash"] == strict["content_hash"]


def test_a_build_killed_in_the_model_stage_resumes_asking_only_what_is_not_cached(
        recordings: tuple[Path, dict[str, str]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    source, _ = recordings
    cache, out = tmp_path / "cache", tmp_path / "data"
    answers = cache / "judge.jsonl"
    # Each answer takes a quarter of a second, so the build can be killed mid-stage.
    with serve(RuleModel(), model_name="rule", faults=lambda call: Fault(stall=0.25)) as server:
        args = ["build", "-q", "--source", f"frames:{source}", "--out", str(out),
                "model.name=openai:rule", f"model.options={{base_url: '{server.url}', "
                "concurrency: 1}", f"model.cache={cache}", "model.batch_size=2",
                "judge.enabled=true"]
        process = subprocess.Popen([sys.executable, "-m", "tpru.cli", *args],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None and not (
                answers.is_file() and answers.read_text().count("\n") >= 4):
            time.sleep(0.05)
        process.kill()
        process.wait()
        done = answers.read_text().count("\n")
        assert 4 <= done < GOOD + BAD, "the build was not killed in the model stage"
        assert not out.exists() and (tmp_path / "data.partial").is_dir()

        capsys.readouterr()
        assert main([*args, "--resume"]) == 0
        # Only the questions without a cached answer are asked again (the server's own
        # count could still include a request of the killed build in flight).
        assert (f"model calls, judge: {GOOD + BAD - done} asked, {done} from the cache"
                in capsys.readouterr().out)
    info = json.loads((out / "build.json").read_text())
    assert info["model_stages"]["judge"] == {"kept": GOOD, "rejected": BAD}
