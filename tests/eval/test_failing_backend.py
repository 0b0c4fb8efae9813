"""A run against a backend that fails: a wrong key, a wrong URL, a server that is down
or answers something else than the chat API. Real HTTP servers on 127.0.0.1.

The run must stop early with the URL and the error, keep what it wrote, resume once
the server is right, and ``tpru eval`` must exit non-zero when items failed."""

from __future__ import annotations

import argparse
import json
import logging
import random
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from bench_files import write_muirbench

from tpru.commands.eval import EXIT_BACKEND_ERRORS, add_arguments, eval_command
from tpru.diagnostics import InputError
from tpru.eval.benchmarks import load_benchmark
from tpru.eval.config import EvalConfig
from tpru.eval.items import Benchmark
from tpru.eval.report import load_run
from tpru.eval.runner import RESULTS_FILE, RUN_FILE, BackendFailing, run_eval
from tpru.models import open_backend
from tpru.models.base import Backend, Request, Response
from tpru.models.openai import OpenAIBackend
from tpru.models.serve import serve

KEY_ENV = "TPRU_TEST_FAILING_KEY"


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MuirBench with 24 items: more than a run may fail in a row."""
    return write_muirbench(tmp_path_factory.mktemp("muir") / "muir.parquet", pairs=12, bad=False)


@pytest.fixture
def bench(bench_file: Path, cache_dir: Path) -> Benchmark:
    return load_benchmark(f"muirbench:{bench_file}", cache_dir=cache_dir)


def client(url: str, **options: Any) -> OpenAIBackend:
    """An openai: client with millisecond waits between retries."""
    settings: dict[str, Any] = {"backoff": 0.01, "max_backoff": 0.02, "timeout": 5.0,
                                "rng": random.Random(0), "api_key_env": KEY_ENV}
    settings.update(options)
    return OpenAIBackend("m", base_url=url, **settings)


def _lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / RESULTS_FILE).read_text().splitlines()]


def _dead_url() -> str:
    with socket.socket() as sock:  # a port with nothing listening once closed
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@contextmanager
def not_an_api() -> Iterator[str]:
    """A server that answers every POST with 200 and an HTML page (a web server, not the API)."""

    class Page(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"<html><body>Welcome</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


# ----------------------------------------------------------------------- the runner


def test_a_wrong_key_stops_the_run_and_a_right_one_resumes_it(
        bench: Benchmark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    monkeypatch.setenv(KEY_ENV, "wrong")
    with serve(open_backend("random", seed=0), api_key="right") as server:
        with pytest.raises(BackendFailing) as raised:
            run_eval(client(server.url), bench, out, EvalConfig(batch_size=4), show_progress=False)
        assert server.stats.calls == 16  # 401 is not retried; 4 batches of 4, then a stop
        message = str(raised.value)
        assert "16 items in a row failed in the backend openai:m" in message
        assert "HTTP 401: invalid or missing API key" in message
        assert f"{server.url}/chat/completions" in message
        assert "--base-url" in message and "--resume continues the run" in message
        info = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
        assert info["finished"] is None and info["counts"]["errors"] == 16
        assert len(_lines(out)) == 16

        monkeypatch.setenv(KEY_ENV, "right")
        summary = run_eval(client(server.url), bench, out, EvalConfig(batch_size=4),
                           resume=True, show_progress=False)
    assert (summary.items, summary.answered, summary.errors, summary.generated) == (24, 24, 0, 24)
    assert len(load_run(out).results) == 24


@pytest.mark.parametrize("where", ["dead", "no /v1", "not an API"])
def test_a_wrong_or_dead_server_stops_after_a_run_of_failures(
        where: str, bench: Benchmark, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with serve(open_backend("random", seed=0)) as server, not_an_api() as page:
        url = {"dead": _dead_url(), "no /v1": server.url.removesuffix("/v1"),
               "not an API": page}[where]
        with pytest.raises(BackendFailing) as raised:
            run_eval(client(url, max_retries=1), bench, out, EvalConfig(batch_size=8),
                     show_progress=False)
        assert server.stats.calls == 0
    expected = {"dead": "connection failed", "no /v1": "HTTP 404",
                "not an API": "HTTP 200 without a chat completion"}[where]
    message = str(raised.value)
    assert expected in message and f"{url}/chat/completions" in message
    assert len(_lines(out)) == 16  # two batches of 8, not all 24 items


class FailEveryOther:
    """A backend whose every other request fails: flaky, not dead."""

    name = "flaky"

    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        answered = self.inner.generate(requests)
        return [Response(r.id, "", error="HTTP 503: overloaded") if index % 2 else r
                for index, r in enumerate(answered)]


def test_scattered_failures_do_not_stop_a_run(bench: Benchmark, tmp_path: Path) -> None:
    summary = run_eval(FailEveryOther(open_backend("random", seed=0)), bench, tmp_path / "run",
                       EvalConfig(batch_size=4), show_progress=False)
    assert (summary.items, summary.errors) == (24, 12)
    assert summary.last_error == "HTTP 503: overloaded"


def test_no_stop_when_disabled(bench: Benchmark, tmp_path: Path) -> None:
    with serve(open_backend("random", seed=0), api_key="right") as server:
        summary = run_eval(client(server.url), bench, tmp_path / "run",
                           EvalConfig(batch_size=4, stop_after_failures=None),
                           show_progress=False)
    assert (summary.items, summary.errors) == (24, 24)


# -------------------------------------------------------------------------- the CLI


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tpru eval")
    parser.add_argument("-q", "--quiet", action="store_true")
    add_arguments(parser)
    return parser.parse_args(argv)


def _argv(bench_file: Path, tmp_path: Path, url: str, *more: str) -> list[str]:
    return ["-q", "--model", "openai:m", "--base-url", url, "--bench",
            f"muirbench:{bench_file}", "--out", str(tmp_path / "run"), "--cache-dir",
            str(tmp_path / "cache"), "--option", "backoff=0.01", "--option",
            f"api_key_env={KEY_ENV}", *more]


def test_eval_exits_3_when_items_failed_and_says_how_to_retry(
        bench_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tpru.eval")
    with serve(open_backend("random", seed=0),
               faults=lambda call: "400" if call.index % 3 == 0 else None) as server:
        status = eval_command(_parse(_argv(bench_file, tmp_path, server.url, "--limit", "6",
                                           "--concurrency", "1")))
    assert status == EXIT_BACKEND_ERRORS == 3
    assert "2 items failed in the backend; run again with --resume" in caplog.text


def test_eval_says_to_check_the_url_and_key_when_every_item_failed(
        bench_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tpru.eval")
    with serve(open_backend("random", seed=0), api_key="right") as server:
        status = eval_command(_parse(_argv(bench_file, tmp_path, server.url, "--limit", "5")))
    assert status == 3
    assert "every item failed in the backend (the last error: HTTP 401" in caplog.text
    assert "check --model, --base-url and the API key" in caplog.text


def test_eval_stops_on_a_dead_server_with_an_error(bench_file: Path, tmp_path: Path) -> None:
    url = _dead_url()
    with pytest.raises(InputError, match=f"16 items in a row failed.*{url}/chat/completions"):
        eval_command(_parse(_argv(bench_file, tmp_path, url, "--option", "max_retries=0")))
    assert len(_lines(tmp_path / "run")) == 16
