"""OpenAIBackend against a real server on 127.0.0.1 (tpru.models.serve), faults injected."""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import socket
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
from PIL import Image

from tpru.diagnostics import InputError
from tpru.models.base import Request, Response
from tpru.models.openai import OpenAIBackend, chat_messages, retry_after_seconds
from tpru.models.serve import Call, Fault, serve

KEY_ENV = "TPRU_TEST_OPENAI_KEY"
KEY = "sk-tpru-LEAKCANARY-9f3b2c7d1e"


class Echo:
    """Answers each request with its id and prompt, after `delay` seconds."""

    name = "echo"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        time.sleep(self.delay)
        return [Response(id=r.id, text=f"{r.prompt} [{len(r.images)}]",
                         usage={"prompt_tokens": 5, "completion_tokens": 2}) for r in requests]


def fast(url: str, **options: object) -> OpenAIBackend:
    """A client with tiny waits, so retries cost milliseconds in tests."""
    settings: dict[str, object] = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 5.0,
                                   "rng": random.Random(0), "api_key_env": KEY_ENV}
    settings.update(options)
    return OpenAIBackend("echo", base_url=url, **settings)  # type: ignore[arg-type]


def ask(n: int = 1) -> list[Request]:
    return [Request(id=f"q{i}", prompt=f"question {i}") for i in range(n)]


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "frame.jpg"
    Image.new("RGB", (16, 12), "green").save(path, format="PNG")  # a PNG named .jpg
    return path


def test_messages_interleave_text_and_images(image: Path) -> None:
    request = Request(id="1", prompt="<image> before <image> after", images=(str(image),) * 2,
                      system="Be brief.")
    system, user = chat_messages(request)
    assert system == {"role": "system", "content": "Be brief."}
    kinds = [part["type"] for part in user["content"]]
    assert kinds == ["image_url", "text", "image_url", "text"]
    url = user["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")  # sniffed, not taken from ".jpg"
    assert base64.b64decode(url.split(",", 1)[1]) == image.read_bytes()


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    when = datetime(2030, 1, 1, tzinfo=timezone.utc)
    now = (when - timedelta(seconds=20)).timestamp()
    assert retry_after_seconds({"Retry-After": format_datetime(when, usegmt=True)},
                               now=now) == pytest.approx(20.0)
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({"Retry-After": "-1"}) is None
    assert retry_after_seconds({}) is None


def test_answers_arrive_in_request_order_with_usage(image: Path) -> None:
    requests = [Request(id="a", prompt="look <image>", images=(str(image),)), *ask(3)]
    with serve(Echo()) as server:
        responses = fast(server.url).generate(requests)
    assert [r.id for r in responses] == ["a", "q0", "q1", "q2"]
    assert [r.text for r in responses] == ["look <image> [1]", "question 0 [0]",
                                           "question 1 [0]", "question 2 [0]"]
    assert all(r.error is None for r in responses)
    assert responses[0].usage["prompt_tokens"] == 5
    assert responses[0].usage["total_tokens"] == 7
    assert responses[0].usage["attempts"] == 1


@pytest.mark.parametrize("fault", ["429", "500", "503"])
def test_transient_errors_are_retried(fault: str) -> None:
    with serve(Echo(), faults=[fault, fault, fault]) as server:
        [response] = fast(server.url).generate(ask())
        assert response.error is None and response.text == "question 0 [0]"
        assert server.stats.calls == 4
        assert server.stats.statuses[int(fault)] == 3
    assert response.usage["attempts"] == 4


def test_timeouts_are_retried() -> None:
    with serve(Echo(), faults=["stall", "stall"], stall_seconds=20) as server:
        started = time.monotonic()
        [response] = fast(server.url, timeout=0.3).generate(ask())
        elapsed = time.monotonic() - started
        assert response.error is None
        assert server.stats.calls == 3
    assert response.usage["attempts"] == 3
    assert elapsed < 5


def test_retry_after_is_honoured() -> None:
    seen: list[float] = []

    def plan(call: Call) -> Fault | None:
        seen.append(time.monotonic())
        return Fault(429, retry_after="1") if call.index == 0 else None

    with serve(Echo(), faults=plan) as server:
        [response] = fast(server.url, max_backoff=5).generate(ask())
    assert response.error is None
    assert seen[1] - seen[0] >= 0.95


def test_a_permanent_400_fails_fast_with_an_error_response() -> None:
    with serve(Echo(), faults=lambda call: "400") as server:
        responses = fast(server.url, backoff=1.0).generate(ask(3))
        assert server.stats.calls == 3  # one attempt each, no retries
    for response in responses:
        assert response.text == ""
        assert response.error is not None and response.error.startswith("HTTP 400:")
        assert "bad request (injected)" in response.error


@pytest.mark.parametrize("status", [401, 403, 404, 422])
def test_other_client_errors_are_not_retried(status: int) -> None:
    """A wrong key, model or URL fails the same way every time: one attempt, not seven."""
    with serve(Echo(), faults=lambda call: Fault(status, message="refused (injected)")) as server:
        responses = fast(server.url, backoff=1.0).generate(ask(2))
        assert server.stats.calls == 2
    for response in responses:
        assert response.error is not None
        assert response.error.startswith(f"HTTP {status}: refused (injected) (after 1 attempt "
                                         f"to {server.url}/chat/completions)")
        assert response.usage["attempts"] == 1


def test_giving_up_after_the_last_retry_returns_errors_not_exceptions() -> None:
    plan = ["500"] * 3 + [None] * 10
    with serve(Echo(), faults=plan) as server:
        first, second = fast(server.url, max_retries=2, concurrency=1).generate(ask(2))
        assert server.stats.calls == 4
    assert first.error is not None and "HTTP 500" in first.error and "3 attempts" in first.error
    assert first.usage["attempts"] == 3
    assert second.error is None


def test_connection_errors_are_retried_then_reported() -> None:
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    [response] = fast(f"http://127.0.0.1:{port}/v1", max_retries=2).generate(ask())
    assert response.error is not None and "connection failed" in response.error
    assert response.usage["attempts"] == 3


def test_missing_image_is_an_error_without_a_call(tmp_path: Path) -> None:
    request = Request(id="m", prompt="<image>", images=(str(tmp_path / "gone.png"),))
    with serve(Echo()) as server:
        [response] = fast(server.url).generate([request])
        assert server.stats.calls == 0
    assert response.error is not None and "gone.png" in response.error


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_limit_is_respected(concurrency: int) -> None:
    with serve(Echo(delay=0.2), serialize=False) as server:
        responses = fast(server.url, concurrency=concurrency).generate(ask(9))
        assert server.stats.max_in_flight == concurrency
    assert [r.text for r in responses] == [f"question {i} [0]" for i in range(9)]


def test_generate_works_inside_a_running_event_loop() -> None:
    with serve(Echo()) as server:
        backend = fast(server.url)

        async def caller() -> list[Response]:
            return backend.generate(ask(2))

        responses = asyncio.run(caller())
    assert [r.text for r in responses] == ["question 0 [0]", "question 1 [0]"]


def test_options_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(InputError, match="OPENAI_API_KEY"):
        OpenAIBackend("gpt-4o")
    with pytest.raises(InputError, match="not an http"):
        OpenAIBackend("m", base_url="ftp://x/v1")
    with pytest.raises(InputError, match="concurrency"):
        OpenAIBackend("m", base_url="http://127.0.0.1:1/v1", concurrency=0)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    backend = OpenAIBackend("m")
    assert backend.base_url == "http://127.0.0.1:9/v1"
    assert backend.name == "openai:m"


def test_the_key_is_sent_but_never_leaked(monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A server that echoes the Authorization header in its errors; the key must not escape."""
    monkeypatch.setenv(KEY_ENV, KEY)
    caplog.set_level(logging.DEBUG)
    received: list[str] = []
    lock = threading.Lock()

    def echo_key(call: Call) -> Fault | str | None:
        header = call.headers.get("Authorization", "")
        with lock:
            received.append(header)
        kind = call.body.get("model") if call.body else None
        if kind == "unauthorised":
            return Fault(401, message=f"Incorrect API key provided: {header}")
        if kind == "flaky":
            return Fault(500, message=f"upstream rejected {header}")
        if kind == "slow":
            return "stall"
        return None

    outputs: list[str] = []
    with serve(Echo(), faults=echo_key, stall_seconds=20) as server:
        for model in ("unauthorised", "flaky", "slow", "fine"):
            backend = OpenAIBackend(model, base_url=server.url, api_key_env=KEY_ENV,
                                    max_retries=1, backoff=0.01, timeout=0.3)
            outputs.append(repr(backend))
            outputs.append(repr(vars(backend)))
            outputs.extend(repr(r) for r in backend.generate(ask(2)))
    assert received and all(header == f"Bearer {KEY}" for header in received)
    assert any("Incorrect API key provided: Bearer [redacted]" in o for o in outputs)
    assert any("upstream rejected Bearer [redacted]" in o for o in outputs)
    assert any("timed out" in o for o in outputs)
    assert any("question 1 [0]" in o for o in outputs)
    with pytest.raises(InputError) as raised:
        OpenAIBackend("x", base_url="nonsense", api_key_env=KEY_ENV)
    outputs.append(str(raised.value))
    captured = capsys.readouterr()
    everything = "\n".join([*outputs, caplog.text, captured.out, captured.err])
    assert KEY not in everything
    assert KEY[8:20] not in everything


def test_tiny_model_served_answers_like_the_model_itself(tiny_model_dir: Path,
                                                         tmp_path: Path) -> None:
    """hf:tiny served over HTTP and queried by OpenAIBackend = hf:tiny called directly (greedy)."""
    from tpru.models.hf import HFBackend

    frames = []
    for index, color in enumerate(["red", "navy", "gold"]):
        path = tmp_path / f"step{index}.png"
        Image.new("RGB", (64 + 8 * index, 48), color).save(path)
        frames.append(str(path))
    requests = [
        Request(id="order", prompt="Order the steps: <image> <image> <image>",
                images=tuple(frames), max_new_tokens=12),
        Request(id="next", prompt="Step 1 <image>, step 3 <image>. Which is step 2?",
                images=(frames[0], frames[2]), max_new_tokens=12, system="Answer briefly."),
        Request(id="text", prompt="Which letter comes first, A or B?", max_new_tokens=12),
    ]
    model = HFBackend(str(tiny_model_dir), batch_size=1)
    direct = [model.generate([request])[0] for request in requests]
    assert all(r.error is None for r in direct)
    with serve(model, model_name="tiny") as server:
        client = OpenAIBackend("tiny", base_url=server.url, api_key_env=KEY_ENV, concurrency=2)
        served = client.generate(requests)
    assert [r.error for r in served] == [None, None, None]
    assert [r.text for r in served] == [r.text for r in direct]
    for via_http, itself in zip(served, direct, strict=True):
        assert via_http.usage["prompt_tokens"] == itself.usage["prompt_tokens"]
        assert via_http.usage["completion_tokens"] == itself.usage["completion_tokens"]


# vLLM speaks the same message format offline (with file:// URLs instead of data URLs).
# vLLM itself needs a CUDA GPU, so only its plain-data side is tested here.


def test_vllm_messages_interleave_file_urls(image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tpru.models.vllm import sampling_options, vllm_messages

    monkeypatch.chdir(image.parent)
    request = Request(id="v", prompt="First <image>, then <image>.",
                      images=(image.name, str(image)), system="Be brief.", seed=3,
                      max_new_tokens=9)
    system, user = vllm_messages(request)
    assert system == {"role": "system", "content": "Be brief."}
    assert user["content"] == [
        {"type": "text", "text": "First "},
        {"type": "image_url", "image_url": {"url": image.absolute().as_uri()}},
        {"type": "text", "text": ", then "},
        {"type": "image_url", "image_url": {"url": image.absolute().as_uri()}},
        {"type": "text", "text": "."},
    ]
    assert sampling_options(request) == {"temperature": 0.0, "max_tokens": 9, "seed": 3}
    assert "seed" not in sampling_options(Request(id="x", prompt="p"))


def test_vllm_engine_options() -> None:
    from tpru.models.vllm import engine_options

    options = engine_options("Qwen/Qwen2.5-VL-7B-Instruct", limit_images=7,
                             max_pixels=36864, max_model_len=8192)
    assert options["limit_mm_per_prompt"] == {"image": 7}
    assert options["mm_processor_kwargs"] == {"max_pixels": 36864}
    assert options["max_model_len"] == 8192
    assert options["dtype"] == "auto" and options["tensor_parallel_size"] == 1
    assert "mm_processor_kwargs" not in engine_options("m")


def test_vllm_missing_is_an_input_error_with_the_install_hint() -> None:
    import importlib.util

    from tpru.models.vllm import VLLMBackend

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    with pytest.raises(InputError, match=r"pip install 'tpru\[vllm\]' on a machine with a CUDA"):
        VLLMBackend("Qwen/Qwen2.5-VL-7B-Instruct")
    with pytest.raises(InputError, match="limit_images"):
        VLLMBackend("m", limit_images=0)
