"""OpenAIBackend with a list of base URLs: requests spread over real servers on 127.0.0.1."""

from __future__ import annotations

import logging
import socket

import pytest
from test_openai_backend import Echo, ask, fast

from tpru.diagnostics import InputError
from tpru.models.openai import OpenAIBackend
from tpru.models.openai_pool import DROP_AFTER
from tpru.models.serve import serve


def dead_url() -> str:
    """The URL of a port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/v1"


def test_requests_are_spread_over_the_servers_and_answered_in_order() -> None:
    with serve(Echo(delay=0.05)) as one, serve(Echo(delay=0.05)) as two:
        responses = fast([one.url, two.url], concurrency=2).generate(ask(8))
        assert [r.text for r in responses] == [f"question {i} [0]" for i in range(8)]
        assert [r.id for r in responses] == [f"q{i}" for i in range(8)]
        assert one.stats.calls > 0 and two.stats.calls > 0
        assert one.stats.calls + two.stats.calls == 8
        # `concurrency` is per server.
        assert one.stats.max_in_flight <= 2 and two.stats.max_in_flight <= 2


def test_a_failed_attempt_is_retried_on_another_server() -> None:
    with serve(Echo(), faults=["503"]) as one, serve(Echo()) as two:
        [response] = fast([one.url, two.url]).generate(ask())
        assert response.text == "question 0 [0]"
        assert response.usage["attempts"] == 2
        assert (one.stats.calls, two.stats.calls) == (1, 1)


def test_a_server_that_keeps_failing_is_dropped_for_good(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with serve(Echo(), faults=lambda call: "500") as bad, serve(Echo()) as good:
        backend = fast([bad.url, good.url], concurrency=2)
        responses = backend.generate(ask(10))
        assert [r.text for r in responses] == [f"question {i} [0]" for i in range(10)]
        # Attempts already in flight when it is dropped fail too.
        assert DROP_AFTER <= bad.stats.calls < DROP_AFTER + 2
        assert f"dropping the server {bad.url} after {DROP_AFTER} failed attempts" \
            in caplog.text
        seen = bad.stats.calls
        assert all(r.error is None for r in backend.generate(ask(4)))
        assert bad.stats.calls == seen


def test_a_server_nobody_answers_at_is_dropped_and_the_others_answer() -> None:
    with serve(Echo()) as good:
        responses = fast([dead_url(), good.url]).generate(ask(6))
    assert all(r.error is None for r in responses)


def test_every_server_down_is_an_input_error_naming_each() -> None:
    urls = [dead_url(), dead_url()]
    backend = fast(urls)
    with pytest.raises(InputError, match="every server failed 3 attempts in a row") as error:
        backend.generate(ask(4))
    assert all(f"{url}: connection failed" in str(error.value) for url in urls)
    with pytest.raises(InputError, match="every server failed"):
        backend.generate(ask(1))  # no second round of attempts


def test_a_bad_request_is_the_requests_fault_not_the_servers() -> None:
    with serve(Echo(), faults=lambda call: "400") as one, \
            serve(Echo(), faults=lambda call: "400") as two:
        responses = fast([one.url, two.url]).generate(ask(8))
        assert all(r.error is not None and "HTTP 400" in r.error for r in responses)
        assert one.stats.calls + two.stats.calls == 8  # not retried, no server dropped


def test_base_url_lists_are_checked() -> None:
    for urls, message in (([], "empty list"), (["http://a/v1", "ftp://b/v1"], "'ftp://b/v1'"),
                          (["http://a/v1", "http://a/v1/"], "lists 'http://a/v1' twice"),
                          (["http://a/v1", 8000], "8000 is not an http")):
        with pytest.raises(InputError, match=message):
            OpenAIBackend("m", base_url=urls)  # type: ignore[arg-type]
    backend = OpenAIBackend("m", base_url=["http://a/v1/", "http://b/v1"])
    assert backend.base_urls == ("http://a/v1", "http://b/v1")
    assert "['http://a/v1', 'http://b/v1']" in repr(backend)
