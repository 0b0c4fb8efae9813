"""The OpenAI-compatible server: real HTTP on 127.0.0.1, any Backend behind it."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tpru.diagnostics import InputError
from tpru.models.base import Request, Response
from tpru.models.serve import Call, Fault, Server, main, serve


class Recorder:
    """A backend that answers with a description of what it received, and keeps the requests.

    Image files are read while the request is being served (the server deletes
    them afterwards), so tests can compare them byte for byte.
    """

    name = "recorder"

    def __init__(self, delay: float = 0.0, error: str | None = None,
                 crash: bool = False) -> None:
        self.delay = delay
        self.error = error
        self.crash = crash
        self.requests: list[Request] = []
        self.image_bytes: list[list[bytes]] = []
        self.lock = threading.Lock()

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        if self.crash:
            raise RuntimeError("the model fell over")
        time.sleep(self.delay)
        out = []
        for request in requests:
            with self.lock:
                self.requests.append(request)
                self.image_bytes.append([Path(p).read_bytes() for p in request.images])
            out.append(Response(id=request.id, text=f"saw {len(request.images)} images",
                                error=self.error,
                                usage={"prompt_tokens": 7, "completion_tokens": 3}))
        return out


def data_url(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


@pytest.fixture
def frames(tmp_path: Path) -> list[Path]:
    paths = []
    for index, (color, suffix) in enumerate([("red", ".png"), ("blue", ".jpg")]):
        path = tmp_path / f"frame{index}{suffix}"
        Image.new("RGB", (24 + index, 16), color).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def server(recorder: Recorder) -> Iterator[Server]:
    with serve(recorder, model_name="tiny-test") as running:
        yield running


def chat(url: str, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{url}/chat/completions", json=body, timeout=10, headers=headers)


def test_models_lists_the_served_model(server: Server) -> None:
    reply = httpx.get(f"{server.url}/models", timeout=10)
    assert reply.status_code == 200
    assert [m["id"] for m in reply.json()["data"]] == ["tiny-test"]
    assert server.url.startswith("http://127.0.0.1:")


def test_metrics_count_requests_and_answers_by_status(recorder: Recorder) -> None:
    message = {"messages": [{"role": "user", "content": "x"}]}
    with serve(recorder, faults=[None, "503", None]) as running:
        for _ in range(3):
            chat(running.url, message)
        reply = httpx.get(running.url.removesuffix("/v1") + "/metrics", timeout=10)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = reply.text.splitlines()
    assert "tpru_serve_requests_total 3" in lines
    assert 'tpru_serve_responses_total{status="200"} 2' in lines
    assert 'tpru_serve_responses_total{status="503"} 1' in lines
    assert "tpru_serve_requests_in_flight 0" in lines
    assert running.stats.calls == 3  # reading the metrics is not a request counted


def test_chat_turns_parts_back_into_the_same_request(server: Server, recorder: Recorder,
                                                     frames: list[Path]) -> None:
    body = {
        "model": "tiny-test",
        "messages": [
            {"role": "system", "content": "Answer with a letter."},
            {"role": "user", "content": [
                {"type": "text", "text": "First "},
                {"type": "image_url", "image_url": {"url": data_url(frames[0], "image/png")}},
                {"type": "text", "text": " then "},
                {"type": "image_url", "image_url": {"url": data_url(frames[1], "image/jpeg")}},
                {"type": "text", "text": "?"},
            ]},
        ],
        "max_tokens": 17, "temperature": 0, "seed": 5,
    }
    reply = chat(server.url, body)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "saw 2 images"}
    assert answer["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    [request] = recorder.requests
    assert request.prompt == "First <image> then <image>?"
    assert request.system == "Answer with a letter."
    assert (request.max_new_tokens, request.temperature, request.seed) == (17, 0.0, 5)
    assert recorder.image_bytes[0] == [frames[0].read_bytes(), frames[1].read_bytes()]
    assert [Path(p).suffix for p in request.images] == [".png", ".jpg"]
    assert not any(Path(p).exists() for p in request.images), "temporary images are removed"
    assert server.stats.calls == 1 and server.stats.statuses[200] == 1


def test_plain_text_and_max_completion_tokens(server: Server, recorder: Recorder) -> None:
    reply = chat(server.url, {"messages": [{"role": "user", "content": "Hello"}],
                              "max_completion_tokens": 3})
    assert reply.status_code == 200
    assert recorder.requests[0].prompt == "Hello"
    assert recorder.requests[0].max_new_tokens == 3
    assert recorder.requests[0].images == ()


@pytest.mark.parametrize(("body", "message"), [
    ({"messages": []}, "non-empty list"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]},
     "only base64 data: URLs"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]},
     "not valid base64"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
     "single-turn"),
    ({"messages": [{"role": "user", "content": "a"}], "stream": True}, "streaming"),
    ({"messages": [{"role": "user", "content": "a"}], "n": 2}, "n=1"),
    ({"messages": [{"role": "user", "content": "a"}], "max_tokens": 0}, "max_tokens"),
    ({"messages": [{"role": "user", "content": "look: <image>"}]}, "send images as image_url"),
    ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "unsupported part"),
])
def test_bad_requests_get_400_with_a_reason(server: Server, recorder: Recorder,
                                            body: dict[str, object], message: str) -> None:
    reply = chat(server.url, body)
    assert reply.status_code == 400
    assert message in reply.json()["error"]["message"]
    assert recorder.requests == []


def test_not_json_and_unknown_routes(server: Server) -> None:
    reply = httpx.post(f"{server.url}/chat/completions", content=b"{nope", timeout=10)
    assert reply.status_code == 400
    assert httpx.get(f"{server.url}/nothing", timeout=10).status_code == 404
    assert httpx.post(f"{server.url}/completions", json={}, timeout=10).status_code == 404


def test_a_body_of_unknown_length_is_refused(server: Server) -> None:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: lots\r\n\r\n")
        status_line = sock.makefile("rb").readline()
    assert status_line.split()[1] == b"413"


def test_backend_errors_become_500() -> None:
    message = {"messages": [{"role": "user", "content": "x"}]}
    with serve(Recorder(error="out of memory")) as running:
        reply = chat(running.url, message)
        assert reply.status_code == 500
        assert "out of memory" in reply.json()["error"]["message"]
    with serve(Recorder(crash=True)) as running:
        reply = chat(running.url, message)
        assert reply.status_code == 500
        assert "the model fell over" in reply.json()["error"]["message"]
        # the server survives a crashing backend
        assert chat(running.url, message).status_code == 500


def test_api_key_is_required_when_set(recorder: Recorder) -> None:
    message = {"messages": [{"role": "user", "content": "x"}]}
    with serve(recorder, api_key="local-secret") as running:
        assert chat(running.url, message).status_code == 401
        wrong = chat(running.url, message, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert "nope" not in wrong.text
        good = chat(running.url, message, headers={"Authorization": "Bearer local-secret"})
        assert good.status_code == 200


def test_fault_list_is_applied_in_order(recorder: Recorder) -> None:
    message = {"messages": [{"role": "user", "content": "x"}]}
    plan: list[Fault | str | None] = ["429", None, "500", "503", "400",
                                      Fault(418, message="teapot")]
    with serve(recorder, faults=plan) as running:
        replies = [chat(running.url, message) for _ in range(len(plan) + 1)]
        assert [r.status_code for r in replies] == [429, 200, 500, 503, 400, 418, 200]
        assert replies[0].headers["Retry-After"] == "0"
        assert replies[5].json()["error"]["message"] == "teapot"
        assert running.stats.calls == 7
        assert running.stats.statuses == {200: 2, 429: 1, 500: 1, 503: 1, 400: 1, 418: 1}
    assert len(recorder.requests) == 2


def test_fault_function_sees_each_call(recorder: Recorder) -> None:
    seen: list[Call] = []

    def plan(call: Call) -> str | None:
        seen.append(call)
        return "500" if call.body and call.body.get("model") == "bad" else None

    with serve(recorder, faults=plan) as running:
        good = chat(running.url, {"model": "ok", "messages": [{"role": "user", "content": "x"}]})
        bad = chat(running.url, {"model": "bad", "messages": [{"role": "user", "content": "x"}]})
    assert (good.status_code, bad.status_code) == (200, 500)
    assert [call.index for call in seen] == [0, 1]
    assert seen[0].headers["Content-Type"] == "application/json"


def test_an_unknown_fault_name_is_a_500_naming_it(recorder: Recorder) -> None:
    with serve(recorder, faults=["teapot"]) as running:
        reply = chat(running.url, {"messages": [{"role": "user", "content": "x"}]})
    assert reply.status_code == 500
    assert "unknown fault 'teapot'" in reply.json()["error"]["message"]


def test_stall_outlasts_a_client_timeout_and_close_ends_it(recorder: Recorder) -> None:
    message = {"messages": [{"role": "user", "content": "x"}]}
    with serve(recorder, faults=["stall"], stall_seconds=30) as running:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{running.url}/chat/completions", json=message, timeout=0.3)
        assert chat(running.url, message).status_code == 200
        assert running.stats.max_in_flight == 2
    # close() cut the 30 s stall short
    assert time.monotonic() - started < 10


def test_requests_are_handled_concurrently() -> None:
    """Four requests must be inside the backend at once to pass its barrier."""
    barrier = threading.Barrier(4, timeout=20)

    class Meeting(Recorder):
        def generate(self, requests: Sequence[Request]) -> list[Response]:
            barrier.wait()
            return super().generate(requests)

    message = {"messages": [{"role": "user", "content": "x"}]}
    replies: list[int] = []
    with serve(Meeting(), serialize=False) as running:
        threads = [threading.Thread(target=lambda: replies.append(
            chat(running.url, message).status_code)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert running.stats.max_in_flight == 4
    assert replies == [200] * 4


def _default_sigint() -> None:
    # pytest-xdist workers ignore SIGINT, and an ignored signal stays ignored across exec:
    # give the server the disposition a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "tpru.models.serve", *args], env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)


def test_cli_refuses_an_unknown_backend_in_one_line() -> None:
    process = _cli("--model", "nosuchkind:x", "--port", "0")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert err.strip().startswith("error:") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_cli_refuses_a_port_out_of_range_at_parsing(
        port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--model", "random", f"--port={port}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --port:" in err and "Traceback" not in err
    assert ("between 0 and 65535" if port != "http" else "expected a port number") in err


def test_serve_refuses_a_port_out_of_range(recorder: Recorder) -> None:
    with pytest.raises(InputError, match="port must be between 0 and 65535, got 65536"):
        serve(recorder, port=65536)


@pytest.mark.slow
def test_cli_serves_a_local_model_until_interrupted(tiny_model_dir: Path) -> None:
    process = _cli("--model", f"hf:{tiny_model_dir}", "--port", "0", "--name", "tiny")
    try:
        assert process.stderr is not None
        line = ""
        while "Serving" not in line:  # loading the model may log first
            line = process.stderr.readline()
            assert line, "the server exited before serving"
        assert "at http://127.0.0.1:" in line, line
        url = line.split(" at ")[1].split()[0]
        models = httpx.get(f"{url}/models", timeout=10).json()
        assert models["data"][0]["id"] == "tiny"
        reply = chat(url, {"model": "tiny", "max_tokens": 4,
                           "messages": [{"role": "user", "content": "Pick one: A or B?"}]})
        assert reply.status_code == 200, reply.text
        assert json.loads(reply.text)["usage"]["completion_tokens"] <= 4
    finally:
        process.send_signal(signal.SIGINT)  # as Ctrl-C
        # communicate drains the pipes, so a chatty server never blocks on a full one.
        process.communicate(timeout=90)
    assert process.returncode == 0
