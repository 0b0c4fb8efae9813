"""Model stages spread over several servers at once (``model.options.base_url: [...]``).

Every server is a process of its own on a loopback port (`rule_server`, the
rule-based vision model behind `tpru.models.serve`), so one can be killed
mid-stage; the build must write the same bytes as with one server.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_model_stages import BAD, GOOD, run, write_recordings

from helpers import folder_bytes
from tpru.builder.pipeline import BuildResult
from tpru.cli import main
from tpru.diagnostics import InputError
from tpru.models.openai_pool import DROP_AFTER

SERVER_SCRIPT = Path(__file__).with_name("rule_server.py")

STAGES: dict[str, Any] = {"judge": {"enabled": True},
                          "describe": {"mode": "always", "paraphrases": 2},
                          "tasks": {"negative_rate": 0.6, "negative_kinds": ["mismatch"]},
                          "text": {"paraphrase_rate": 0.5}}
"""Every model stage: judge, descriptions, negatives and paraphrases."""

ASKED = {"judge": GOOD + BAD, "describe": GOOD, "negative": GOOD, "paraphrase": 3}
"""What a build with `STAGES` asks (paraphrases: one per distinct description)."""


def requests_served(url: str) -> int:
    """The chat completions a ``tpru.models.serve`` server has received, from its /metrics."""
    metrics = httpx.get(url.removesuffix("/v1") + "/metrics", timeout=10).text
    found = re.search(r"^tpru_serve_requests_total (\d+)$", metrics, re.MULTILINE)
    assert found, metrics
    return int(found.group(1))


class RuleServer:
    """A `rule_server` process; `requests` reads its ``/metrics``."""

    def __init__(self, log: Path, delay: float = 0.0) -> None:
        self.log = log
        with log.open("w") as handle:
            self.process = subprocess.Popen(
                [sys.executable, str(SERVER_SCRIPT), "--delay", str(delay)],
                stdout=subprocess.DEVNULL, stderr=handle)
        deadline = time.monotonic() + 60
        while "Serving rule at " not in log.read_text():
            assert self.process.poll() is None, f"the server exited: {log.read_text()}"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        self.url = log.read_text().split("Serving rule at ", 1)[1].split()[0]

    def requests(self) -> int:
        return requests_served(self.url)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Any]:
    started: list[RuleServer] = []

    def start(delay: float = 0.0) -> RuleServer:
        server = RuleServer(tmp_path / f"server{len(started)}.log", delay)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("recordings")
    write_recordings(root)
    return root


@pytest.fixture(scope="module")
def one_server_build(recordings: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dataset built with every stage asking a single server."""
    folder = tmp_path_factory.mktemp("one-server")
    server = RuleServer(folder / "server.log")
    try:
        result = run(recordings, folder / "data", folder / "cache", model=section(server.url),
                     **STAGES)
    finally:
        server.kill()
    assert asked(result) == ASKED
    return result.path


def section(base_url: str | list[str]) -> dict[str, Any]:
    return {"name": "openai:rule", "batch_size": 6,
            "options": {"base_url": base_url, "concurrency": 2, "backoff": 0.05}}


def dataset_files(root: Path) -> dict[str, bytes]:
    """Every file of a dataset by relative path; build.json without its config (which
    holds the servers' URLs)."""
    files = folder_bytes(root)
    info = json.loads(files.pop("build.json"))
    info.pop("config")
    files["build.json"] = json.dumps(info, sort_keys=True).encode()
    return files


def asked(result: BuildResult) -> dict[str, int]:
    """The questions each stage sent to the model; none may have failed."""
    assert all(counts["errors"] == 0 for counts in result.calls.values()), result.calls
    return {stage: counts["asked"] for stage, counts in result.calls.items()}


def test_three_servers_build_what_one_builds_and_a_rebuild_asks_none(
        recordings: Path, one_server_build: Path, start_server: Any, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    servers = [start_server() for _ in range(3)]
    urls = [server.url for server in servers]
    result = run(recordings, tmp_path / "data", tmp_path / "cache", model=section(urls),
                 **STAGES)
    assert asked(result) == ASKED
    assert dataset_files(result.path) == dataset_files(one_server_build)
    # The answers were cached in the same order, whichever server gave them.
    for stage in ASKED:
        assert (tmp_path / "cache" / f"{stage}.jsonl").read_bytes() == (
            one_server_build.parent / "cache" / f"{stage}.jsonl").read_bytes()
    got = [server.requests() for server in servers]
    assert all(n > 0 for n in got), got
    assert sum(got) == sum(ASKED.values())

    # Through the command line, the list as YAML: every answer comes from the cache.
    status = main(["build", "-q", "--overwrite", "--source", f"frames:{recordings}",
                   "--out", str(tmp_path / "again"), "split.ratios={train: 0.5, test: 0.5}",
                   "model.name=openai:rule", f"model.options={{base_url: [{', '.join(urls)}]}}",
                   f"model.cache={tmp_path / 'cache'}", "model.batch_size=6",
                   *(f"{part}.{key}={json.dumps(value)}"
                     for part, values in STAGES.items() for key, value in values.items())])
    assert status == 0
    assert f"model calls, judge: 0 asked, {GOOD + BAD} from the cache" in capsys.readouterr().out
    assert [server.requests() for server in servers] == got
    assert dataset_files(tmp_path / "again") == dataset_files(one_server_build)


def test_a_server_killed_mid_stage_leaves_the_build_unchanged(
        recordings: Path, one_server_build: Path, start_server: Any, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    victim, *others = [start_server(delay=0.1) for _ in range(3)]
    results: list[BuildResult] = []
    errors: list[BaseException] = []

    def build_in_background() -> None:
        try:
            results.append(run(recordings, tmp_path / "data", tmp_path / "cache",
                               model=section([victim.url] + [s.url for s in others]),
                               **STAGES))
        except BaseException as err:  # re-raised by the test below
            errors.append(err)

    builder = threading.Thread(target=build_in_background)
    builder.start()
    deadline = time.monotonic() + 120
    while victim.requests() < 2:
        assert builder.is_alive() and time.monotonic() < deadline, \
            "the build ended before the server could be killed"
        time.sleep(0.01)
    victim.kill()
    builder.join(timeout=300)
    assert not builder.is_alive()
    if errors:
        raise errors[0]
    result = results[0]
    assert dataset_files(result.path) == dataset_files(one_server_build)
    assert asked(result) == ASKED
    assert f"dropping the server {victim.url} after {DROP_AFTER} failed attempts" in caplog.text
    assert all(server.requests() > 0 for server in others)


def test_every_server_down_stops_the_build_naming_each(recordings: Path,
                                                       tmp_path: Path) -> None:
    urls = []
    for _ in range(2):  # ports nobody listens on
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            urls.append(f"http://127.0.0.1:{probe.getsockname()[1]}/v1")
    model = section(urls)
    model["options"]["backoff"] = 0.01
    with pytest.raises(InputError, match="every server failed 3 attempts in a row") as error:
        run(recordings, tmp_path / "data", tmp_path / "cache", model=model,
            judge={"enabled": True})
    assert all(f"{url}: connection failed" in str(error.value) for url in urls)
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_two_tiny_model_servers_build_what_one_builds(recordings: Path, tiny_model_dir: Path,
                                                      tmp_path: Path) -> None:
    """The real command, ``python -m tpru.models.serve``, with a real (tiny) model."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    logs = [tmp_path / f"server{i}.log" for i in range(2)]
    processes = []
    for log in logs:
        with log.open("w") as handle:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "tpru.models.serve", "--model", f"hf:{tiny_model_dir}",
                 "--name", "tiny", "--port", "0"], env=env, stdout=subprocess.DEVNULL,
                stderr=handle))
    try:
        urls = []
        for log, process in zip(logs, processes, strict=True):
            deadline = time.monotonic() + 300
            while "Serving " not in log.read_text():
                assert process.poll() is None, f"the server exited: {log.read_text()}"
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
            urls.append(log.read_text().split(" at ", 1)[1].split()[0])
        stages: dict[str, Any] = {"judge": {"enabled": True},
                                  "describe": {"mode": "always", "negatives": False}}
        results = [run(recordings, tmp_path / name, tmp_path / f"cache-{name}",
                       model={"name": "openai:tiny", "max_new_tokens": 6, "batch_size": 4,
                              "options": {"base_url": base_url, "concurrency": 2}}, **stages)
                   for name, base_url in (("one", urls[0]), ("two", urls))]
        served = [requests_served(url) for url in urls]
    finally:
        for process in processes:
            process.kill()
            process.wait()
    one, two = results
    assert asked(one) == asked(two) == {"judge": GOOD + BAD, "describe": GOOD + BAD
                                        - one.info["drops"]["episodes"].get("judge_rejected", 0)}
    assert dataset_files(two.path) == dataset_files(one.path)
    # The second server answered part of the two-server build, and nothing else.
    assert 0 < served[1] < sum(asked(two).values())
    assert sum(served) == sum(asked(one).values()) + sum(asked(two).values())
