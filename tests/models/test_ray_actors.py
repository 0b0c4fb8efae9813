"""``ray:<spec>``: a backend on Ray actors answers what the backend answers in this process.

Every backend the actors hold is real: the seeded random baseline, the tiny
offline Qwen2.5-VL (``hf:``), and an ``openai:`` backend to the rule-based
vision model of the builder's tests served over HTTP, for a whole build with
every model stage. One local Ray (2 CPUs) serves the module, started on its
own (``address="local"``: a bare ``ray.init()`` would join the newest cluster
on this machine, which may be another test file's).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import folder_bytes
from tpru.diagnostics import InputError
from tpru.models import answer_identity, check_backend, open_backend
from tpru.models.base import Request
from tpru.models.baselines import RandomBackend

ray = pytest.importorskip("ray")  # the ray extra, in dev: CI has it

BUILDER_TESTS = Path(__file__).parents[1] / "builder"

QUESTIONS = [Request(f"q{i}", f"Which comes next?\nA. left\nB. right\nC. up {i}\nD. down")
             for i in range(5)] + \
            [Request(f"o{i}", "Order the images.\nImage A:\nImage B:\nImage C:\nImage D:")
             for i in range(5)]
"""Ten requests: five multiple-choice questions and five letter-sequence orderings."""


def _start_ray() -> None:
    ray.init(address="local", num_cpus=2, include_dashboard=False,
             logging_level=logging.WARNING, log_to_driver=False)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    _start_ray()
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def ray_up(local_ray: None) -> None:
    """The module's Ray, started again if a test shut it down."""
    if not ray.is_initialized():
        _start_ray()


def test_actors_answer_what_the_backend_answers_here_in_order(ray_up: None) -> None:
    expected = RandomBackend(seed=3).generate(QUESTIONS)
    with open_backend("ray:random", actors=2, seed=3) as backend:
        assert backend.name == "ray(2x random(seed=3))"
        assert backend.generate(QUESTIONS) == expected
        assert backend.served() == [5, 5]  # a contiguous slice each
        assert backend.generate(QUESTIONS[:3]) == expected[:3]
        assert backend.generate([]) == []
        assert sum(backend.served()) == 13


@pytest.mark.slow
def test_two_actors_holding_the_tiny_hf_model_answer_what_it_answers_here(
        ray_up: None, tiny_model_dir: Path, images: list[str]) -> None:
    """Greedy tokens of the tiny Qwen2.5-VL, from images the actors read from their paths.
    Each actor's slice of 4 is one batch of 4, as here: the same left padding."""
    from tpru.models.hf import HFBackend

    requests = [Request(f"r{i}", "A <image>\nB <image>\nWhich came first, A or B?",
                        (images[i % 7], images[(i + 3) % 7]), max_new_tokens=6)
                for i in range(8)]
    options = {"device": "cpu", "dtype": "float32", "batch_size": 4}
    expected = HFBackend(str(tiny_model_dir), **options).generate(requests)
    with open_backend(f"ray:hf:{tiny_model_dir}", actors=2, **options) as backend:
        assert backend.name == f"ray(2x hf:{tiny_model_dir})"
        assert backend.generate(requests) == expected
        assert backend.served() == [4, 4]
    assert all(response.text and response.error is None for response in expected)


def _kill(actor: Any) -> None:
    """Kill `actor` and wait until it is dead (`ray.kill` returns before it is)."""
    ray.kill(actor, no_restart=True)
    while True:
        try:
            ray.get(actor.count.remote(), timeout=30)
        except ray.exceptions.RayActorError:
            return


def test_a_dead_actors_slice_goes_to_the_others_and_all_dead_is_one_line(
        ray_up: None) -> None:
    expected = RandomBackend(seed=5).generate(QUESTIONS)
    with open_backend("ray:random", actors=2, seed=5) as backend:
        _kill(backend.handles[0])
        assert backend.generate(QUESTIONS) == expected
        assert backend.served() == [10]  # only the live actor answered, its slice and the other
        assert backend.generate(QUESTIONS[::-1]) == expected[::-1]
        _kill(backend.handles[1])
        with pytest.raises(InputError, match=r"every actor has died") as caught:
            backend.generate(QUESTIONS)
        assert "\n" not in str(caught.value)


def test_after_ray_is_shut_down_the_next_call_starts_new_actors(ray_up: None) -> None:
    """As after ``tpru build --engine ray``, whose Ray ends before the audit asks again."""
    expected = RandomBackend(seed=1).generate(QUESTIONS)
    backend = open_backend("ray:random", actors=1, seed=1)
    ray.shutdown()
    try:
        assert backend.generate(QUESTIONS) == expected
        assert ray.is_initialized() and backend.served() == [10]
    finally:
        backend.close()  # the Ray it started itself: shut down
    assert not ray.is_initialized()


def test_a_closed_backend_starts_new_actors_when_asked_again(ray_up: None) -> None:
    expected = RandomBackend(seed=2).generate(QUESTIONS)
    with open_backend("ray:random", actors=2, seed=2) as backend:
        assert backend.generate(QUESTIONS) == expected
        backend.close()
        assert backend.handles == []
        assert backend.generate(QUESTIONS) == expected
        assert backend.served() == [5, 5]  # new actors: the closed ones had answered 5 each


@pytest.mark.slow
def test_after_the_engine_leaves_its_cluster_the_actors_start_there_again(
        ray_up: None) -> None:
    """``tpru build --engine ray --ray-address ...`` joins a cluster and leaves it (shutting
    its own Ray down) before the audit asks the model stages' backend again."""
    from ray.cluster_utils import Cluster

    expected = RandomBackend(seed=4).generate(QUESTIONS)
    ray.shutdown()  # the module's Ray: `ray_up` starts it again for the next test
    nodes = Cluster(initialize_head=True,
                    head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        ray.init(address=nodes.address, logging_level=logging.WARNING, log_to_driver=False)
        backend = open_backend("ray:random", actors=1, seed=4)
        ray.shutdown()  # as the engine does
        try:
            assert backend.generate(QUESTIONS) == expected
            assert ray.get_runtime_context().gcs_address == nodes.address
        finally:
            backend.close()
        assert not ray.is_initialized()
    finally:
        ray.shutdown()
        nodes.shutdown()


def test_a_wrapped_backends_error_is_the_users_one_line(ray_up: None,
                                                         tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no such local model folder"):
        open_backend(f"ray:hf:{tmp_path / 'missing'}", actors=1)


def test_more_gpus_than_the_cluster_has_is_an_error_not_a_wait(ray_up: None) -> None:
    with pytest.raises(InputError, match=r"2 actors of 1 GPU need 2 GPUs; the Ray cluster "
                                         r"has 0 \(fewer actors, a lower gpus_per_actor"):
        open_backend("ray:random", actors=2, gpus_per_actor=1)


@pytest.mark.parametrize(("spec", "options", "message"), [
    ("ray:random", {"sead": 1}, r"backend 'random' has no option 'sead'"),
    ("ray:", {}, r"backend 'ray:' is not of the form ray:<another backend>"),
    ("ray:ray:random", {}, r"a ray: backend cannot hold another"),
    ("ray:nope:x", {}, r"unknown backend kind 'nope'"),
])
def test_specs_and_options_are_checked_before_ray_starts(spec: str, options: dict[str, Any],
                                                         message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_backend(spec, **options)
    with pytest.raises(InputError, match=message):
        open_backend(spec, **options)


@pytest.mark.parametrize(("options", "message"), [
    ({"actors": 0}, r"actors must be a whole number of at least 1, not 0"),
    ({"actors": "2"}, r"actors must be a whole number of at least 1, not '2'"),
    ({"cpus_per_actor": -1}, r"cpus_per_actor must be a number of at least 0, not -1"),
])
def test_bad_values_of_its_own_options_are_refused(options: dict[str, Any],
                                                   message: str) -> None:
    with pytest.raises(InputError, match=message):
        open_backend("ray:random", **options)


def test_without_ray_the_error_says_which_extra_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails, as when missing
    monkeypatch.delitem(sys.modules, "tpru.models.ray_actors", raising=False)
    with pytest.raises(InputError, match=r"^backend 'ray' needs ray; install it with: "
                                         r"pip install 'tpru\[ray\]'$"):
        check_backend("ray:random")


def test_the_answers_identity_is_the_wrapped_backends() -> None:
    options = {"actors": 4, "gpus_per_actor": 1, "ray_address": "head:6379", "dtype": "bf16"}
    assert answer_identity("ray:hf:m", options) == ("hf:m", {"dtype": "bf16"})
    assert answer_identity("hf:m", {"dtype": "bf16"}) == ("hf:m", {"dtype": "bf16"})
    assert answer_identity("blind:ray:random", {"actors": 2}) == ("blind:random", {})
    assert answer_identity("random", {"actors": 2}) == ("random", {"actors": 2})


def _finished_within(seconds: float, work: Callable[[], Any]) -> Any:
    """`work()`'s result, run in a thread: a test failure rather than a hung test run if it
    takes longer than `seconds`."""
    done: list[Any] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            done.append(work())
        except BaseException as err:  # handed to the test
            failed.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if failed:
        raise failed[0]
    assert done, f"still running after {seconds} s"
    return done[0]


def test_a_build_through_two_actors_is_the_build_through_the_backend_itself(
        ray_up: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Judge, descriptions, negatives and paraphrases by the rule-based vision model over
    HTTP: asked from this process (``openai:rule``) and from two Ray actors each holding
    that backend (``ray:openai:rule``), with separate caches: the same dataset."""
    monkeypatch.syspath_prepend(str(BUILDER_TESTS))
    from rule_model import RuleModel, write_recordings

    import tpru.builder.pipeline as pipeline
    from tpru.builder.config import BuildConfig
    from tpru.config import load
    from tpru.models.serve import serve

    source = tmp_path / "recordings"
    write_recordings(source)
    model = RuleModel()
    with serve(model, model_name="rule") as server:
        def build(out: Path, name: str, cache: Path | None = None, engine: str = "local",
                  **options: Any) -> Any:
            data: dict[str, Any] = {
                "sources": [f"frames:{source}"], "out": str(out), "engine": engine,
                "split": {"ratios": {"train": 0.5, "test": 0.5}},
                "model": {"name": name, "cache": str(cache or str(out) + "-cache"),
                          "batch_size": 8,
                          "options": {"base_url": server.url, **options}},
                "judge": {"enabled": True},
                "describe": {"mode": "always", "paraphrases": 2},
                "tasks": {"negative_rate": 0.6, "negative_kinds": ["mismatch"]},
                "text": {"paraphrase_rate": 0.5}}
            return pipeline.build(load(BuildConfig, data), show_progress=False)

        direct = build(tmp_path / "direct", "openai:rule")
        asked = sum(model.asked.values())
        spread = build(tmp_path / "actors", "ray:openai:rule", actors=2)
        asked_spread = sum(model.asked.values())
        try:
            served = spread.backend.served()
        finally:
            spread.backend.close()
        # The cache is the model's, wherever it runs: through one actor with the direct
        # build's cache, nothing is asked again.
        again = build(tmp_path / "again", "ray:openai:rule", tmp_path / "direct-cache",
                      actors=1)
        again.backend.close()
        asked_again = sum(model.asked.values()) - asked_spread
        # Under --engine ray on this 2-CPU Ray, two actors of 1 CPU leave none for pass 2's
        # tasks: the samples are made in this process instead of waiting for ever.
        crowded = _finished_within(240, lambda: build(
            tmp_path / "crowded", "ray:openai:rule", tmp_path / "crowded-cache", "ray",
            actors=2))
        crowded.backend.close()
    crowded_files = folder_bytes(tmp_path / "crowded")
    assert json.loads(crowded_files.pop("build.json"))["engine"]["name"] == "ray"
    assert crowded_files == {k: v for k, v in folder_bytes(tmp_path / "direct").items()
                             if k != "build.json"}
    assert asked_again == 0
    assert all(stage["asked"] == 0 and stage["cached"] > 0 for stage in again.calls.values())
    assert folder_bytes(tmp_path / "again").keys() == folder_bytes(tmp_path / "direct").keys()
    assert spread.backend.name == "ray(2x openai:rule)"
    # Every question was asked again, through the actors, and both actors answered some.
    assert asked_spread == 2 * asked and sum(served) == asked
    assert all(count > 0 for count in served)
    assert spread.calls == direct.calls
    written, expected = folder_bytes(tmp_path / "actors"), folder_bytes(tmp_path / "direct")
    info, info_direct = (json.loads(files.pop("build.json")) for files in (written, expected))
    assert written == expected  # the samples and images, byte for byte
    assert info["model_stages"]["judge"] == {"kept": 10, "rejected": 3}
    # build.json differs only where it names the model and the cache the config gave.
    assert info["model_stages"].pop("model") == "ray:openai:rule"
    assert info_direct["model_stages"].pop("model") == "openai:rule"
    for record in (info, info_direct):
        del record["config"]["model"]
    assert info == info_direct
