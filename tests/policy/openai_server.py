"""A real OpenAI-compatible HTTP server on 127.0.0.1, for tests that need an API.

It serves ``POST /v1/chat/completions`` from a background thread (stdlib
``ThreadingHTTPServer``, one thread per connection, so hundreds of concurrent
requests are fine) and answers through a *handler*: a function of the recorded
request that returns a :class:`Reply`. Handlers for the usual cases are built by
the functions below (fixed answers, sequences, fault storms).

Every request is recorded with its arrival time (``time.monotonic()``), its
headers (``Authorization`` included), its JSON body, a *key* that identifies the
logical request across retries (the ``X-Request-Key`` header, else the last user
message) and the attempt number for that key.

Usage::

    with OpenAIServer(fixed(ok("hello"))) as server:
        ...  # model "openai/test", api_base=server.url
        assert server.requests[0].authorization == "Bearer sk-test"

Run ``python tests/policy/openai_server.py --port 8765`` to serve an echo model
by hand.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "Handler",
    "OpenAIServer",
    "RecordedRequest",
    "Reply",
    "chat_completion",
    "context_length_error",
    "echo",
    "empty_choices",
    "error",
    "fixed",
    "logprobs_block",
    "ok",
    "sequence",
    "storm",
    "tool_call",
]


@dataclass
class RecordedRequest:
    """One HTTP request as the server received it."""

    index: int
    key: str
    attempt: int
    arrival: float
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int = 0

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class Reply:
    """What the server answers: a status, a JSON (or raw text) body, headers, an optional delay."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


Handler = Callable[[RecordedRequest], Reply]


# -- response builders -------------------------------------------------------------


def tool_call(name: str, arguments: str | dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    """An OpenAI ``tool_calls`` entry; a ``str`` ``arguments`` is sent verbatim (malformed JSON too)."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def logprobs_block(tokens: Sequence[tuple[str, float, Sequence[tuple[str, float]]]]) -> dict[str, Any]:
    """A choice's ``logprobs`` from ``(token, logprob, [(alt_token, alt_logprob), ...])`` triples."""
    return {
        "content": [
            {
                "token": tok,
                "logprob": lp,
                "bytes": list(tok.encode()),
                "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in alts],
            }
            for tok, lp, alts in tokens
        ]
    }


def chat_completion(
    text: str | None = "",
    *,
    tool_calls: Sequence[dict[str, Any]] | None = None,
    finish_reason: str = "stop",
    logprobs: dict[str, Any] | None = None,
    model: str = "test-model",
    prompt_tokens: int = 11,
    completion_tokens: int = 7,
) -> dict[str, Any]:
    """A ``chat.completion`` body with one choice."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": logprobs}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def ok(text: str | None = "", **kwargs: Any) -> Reply:
    """A 200 answer with one choice (keyword arguments go to :func:`chat_completion`)."""
    return Reply(body=chat_completion(text, **kwargs))


def empty_choices() -> Reply:
    """A 200 answer whose ``choices`` list is empty."""
    body = chat_completion("")
    body["choices"] = []
    return Reply(body=body)


def error(status: int, message: str, *, headers: dict[str, str] | None = None, code: str | None = None) -> Reply:
    """An OpenAI-style error body with ``status``."""
    kind = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error"}.get(status, "api_error")
    return Reply(status=status, body={"error": {"message": message, "type": kind, "param": None, "code": code}}, headers=headers or {})


def context_length_error() -> Reply:
    """The 400 OpenAI sends when the prompt does not fit the context window."""
    return error(
        400,
        "This model's maximum context length is 128 tokens. However, your messages resulted in 999 tokens.",
        code="context_length_exceeded",
    )


# -- handlers ----------------------------------------------------------------------


def fixed(reply: Reply) -> Handler:
    """Answer every request with ``reply``."""
    return lambda request: reply


def sequence(replies: Sequence[Reply]) -> Handler:
    """Answer the n-th request (over all keys) with ``replies[n]``; the last one repeats."""
    items = list(replies)
    return lambda request: items[min(request.index, len(items) - 1)]


def echo(request: RecordedRequest) -> Reply:
    """Answer ``echo: <key>``: each logical request gets its own, checkable answer."""
    return ok(f"echo: {request.key}")


def storm(
    *,
    retry_after: str | None = "1",
    error_rate: float = 0.1,
    error_status: int = 500,
    seed: int = 0,
    answer: Handler = echo,
) -> Handler:
    """A fault storm: the first attempt of every request gets 429 (with ``Retry-After``
    when given), later attempts fail with ``error_status`` at ``error_rate``.

    Which attempts fail is a function of ``(seed, key, attempt)`` only, so the storm
    is the same whatever order concurrent requests arrive in.
    """

    def handler(request: RecordedRequest) -> Reply:
        if request.attempt == 1:
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return error(429, "Rate limit reached, slow down.", headers=headers)
        if random.Random(f"{seed}:{request.key}:{request.attempt}").random() < error_rate:
            return error(error_status, "The server had an error while processing your request.")
        return answer(request)

    return handler


# -- the server --------------------------------------------------------------------


def _request_key(headers: dict[str, str], body: dict[str, Any]) -> str:
    if "x-request-key" in headers:
        return headers["x-request-key"]
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
            return str(content)
    return ""


class _HTTPServer(ThreadingHTTPServer):
    # A listen backlog of 5 (the socketserver default) drops connections when
    # hundreds of clients connect at once.
    request_queue_size = 512
    daemon_threads = True


class OpenAIServer:
    """An OpenAI-compatible server on a loopback port, run in a background thread.

    Args:
        handler: Decides each answer (default: :func:`echo`). May be replaced between requests.
        port: The port to listen on; 0 picks a free one.
    """

    def __init__(self, handler: Handler = echo, *, port: int = 0) -> None:
        self.handler = handler
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}
        self._httpd = _HTTPServer(("127.0.0.1", port), _make_request_handler(self))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The ``api_base`` to give a client."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> OpenAIServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="openai-test-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def attempts(self, key: str) -> list[RecordedRequest]:
        """The recorded attempts of the logical request ``key``, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.key == key]

    def by_key(self) -> dict[str, list[RecordedRequest]]:
        """All recorded attempts grouped by key."""
        groups: dict[str, list[RecordedRequest]] = {}
        with self._lock:
            for r in self.requests:
                groups.setdefault(r.key, []).append(r)
        return groups

    def _record(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[RecordedRequest, Reply]:
        arrival = time.monotonic()
        with self._lock:
            key = _request_key(headers, body)
            self._attempts[key] = self._attempts.get(key, 0) + 1
            request = RecordedRequest(
                index=len(self.requests), key=key, attempt=self._attempts[key], arrival=arrival,
                path=path, headers=headers, body=body,
            )
            self.requests.append(request)
            reply = self.handler(request)
            request.status = reply.status
        return request, reply


def _make_request_handler(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            headers = {k.lower(): v for k, v in self.headers.items()}
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(error(404, f"no route {self.path}"))
                return
            _, reply = server._record(self.path, headers, body if isinstance(body, dict) else {})
            if reply.delay_s:
                time.sleep(reply.delay_s)
            self._send(reply)

        def do_GET(self) -> None:
            self._send(Reply(body={"object": "list", "data": [{"id": "test-model", "object": "model"}]}))

        def _send(self, reply: Reply) -> None:
            payload = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
            data = payload.encode("utf-8")
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test): nothing to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # tests read server.requests, not stderr

    return _Handler


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the echo model until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with OpenAIServer(port=args.port) as server:
        print(f"serving on {server.url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
