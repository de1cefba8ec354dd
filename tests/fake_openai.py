"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for tests.

Real HTTP (stdlib ``http.server`` in a thread, a free port): the real ``openai`` client talks to it through
``OPENAI_BASE_URL``. Each POST to ``/v1/chat/completions`` takes the next entry of the script and records the
request (JSON body, lower-cased headers, size)::

    server = FakeOpenAI([spec_reply(spec), status(429), ...])
    with server:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "test"}

Script entries are dicts made by the helpers below: ``reply(content)``, ``spec_reply(obj)``, ``refusal(text)``,
``status(code, message)``. A callable entry gets the request body and returns an entry. When the script runs
out, the server answers 400 "script exhausted" (no retry), so a test sees surplus requests at once.

With ``upstream`` (the base URL of a real server, e.g. ``http://127.0.0.1:8080``) there is no script: every
POST is passed on as it is and the answer passed back, and both are recorded (``status``, ``reply``,
``seconds``): a recording proxy in front of a real model server.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Entry = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]


def reply(content: str | None, finish_reason: str = "stop", delay: float = 0) -> dict[str, Any]:
    """An answer; ``delay`` seconds before it (to make a client time out: a client that closes the connection
    meanwhile is counted in ``FakeOpenAI.abandoned`` and gets no answer)."""
    return {"kind": "reply", "content": content, "finish_reason": finish_reason, "delay": delay}


def spec_reply(spec: dict[str, Any] | str) -> dict[str, Any]:
    return reply(spec if isinstance(spec, str) else json.dumps(spec))


def refusal(text: str) -> dict[str, Any]:
    return {"kind": "refusal", "refusal": text}


def status(code: int, message: str = "error", *, param: str | None = None, err_type: str | None = None,
           headers: dict[str, str] | None = None, code_name: str | None = None) -> dict[str, Any]:
    return {"kind": "status", "status": code, "message": message, "param": param, "type": err_type,
            "headers": headers or {}, "code": code_name}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeOpenAI:
    def __init__(self, script: list[Entry] | None = None, model: str = "test-model", upstream: str | None = None,
                 upstream_timeout: float = 300.0) -> None:
        self.script: list[Entry] = list(script or [])
        self.model = model
        self.upstream = upstream.rstrip("/") if upstream else None
        self.upstream_timeout = upstream_timeout
        self.requests: list[dict[str, Any]] = []  # {"path", "headers", "body", "size"}
        self.abandoned = 0  # delayed replies whose client closed the connection before the answer
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": fake.model, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                if fake.upstream is not None:
                    self._relay(raw, body)
                    return
                with fake._lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    fake.requests.append({"path": self.path, "headers": headers, "body": body, "size": len(raw)})
                    entry: Entry | None = fake.script.pop(0) if fake.script else None
                if callable(entry):
                    entry = entry(body)
                if entry is not None and entry.get("delay") and self._client_left(entry["delay"]):
                    with fake._lock:
                        fake.abandoned += 1
                    return
                if entry is None:
                    self._send(400, {"error": {"message": "fake server: script exhausted", "type": "test_error"}},
                               {"x-should-retry": "false"})
                    return
                if entry["kind"] == "status":
                    err = {"message": entry["message"], "type": entry.get("type") or "invalid_request_error",
                           "param": entry.get("param"), "code": entry.get("code")}
                    self._send(entry["status"], {"error": err}, entry.get("headers"))
                    return
                message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
                finish = "stop"
                if entry["kind"] == "refusal":
                    message["refusal"] = entry["refusal"]
                else:
                    message["content"] = entry["content"]
                    finish = entry.get("finish_reason", "stop")
                self._send(200, {
                    "id": f"chatcmpl-test{len(fake.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", fake.model),
                    "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                    "usage": {"prompt_tokens": len(raw) // 4, "completion_tokens": 100,
                              "total_tokens": len(raw) // 4 + 100},
                })

            def _relay(self, raw: bytes, body: dict[str, Any]) -> None:
                """Pass the request to the upstream server, record both sides, answer with its answer."""
                import urllib.error
                import urllib.request

                headers = {k.lower(): v for k, v in self.headers.items()}
                record: dict[str, Any] = {"path": self.path, "headers": headers, "body": body, "size": len(raw)}
                with fake._lock:
                    fake.requests.append(record)
                request = urllib.request.Request(fake.upstream + self.path, data=raw, method="POST",
                                                 headers={"content-type": "application/json"})
                began = time.monotonic()
                try:
                    with urllib.request.urlopen(request, timeout=fake.upstream_timeout) as answer:
                        code, data = answer.status, answer.read()
                except urllib.error.HTTPError as exc:
                    code, data = exc.code, exc.read()
                record["seconds"] = time.monotonic() - began
                record["status"] = code
                try:
                    record["reply"] = json.loads(data)
                except ValueError:
                    record["reply"] = {"_raw": data.decode("utf-8", "replace")}
                try:
                    self.send_response(code)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up meanwhile
                    record["abandoned"] = True

            def _client_left(self, seconds: float) -> bool:
                """Wait ``seconds`` like a slow model; True when the client closed the connection meanwhile."""
                deadline = time.monotonic() + seconds
                while (left := deadline - time.monotonic()) > 0:
                    readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
                    if readable and self.connection.recv(1, socket.MSG_PEEK) == b"":
                        return True
                return False

            def _send(self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAI:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- what tests read -------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def add(self, *entries: Entry) -> None:
        with self._lock:
            self.script.extend(entries)

    def bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests]

    def messages_text(self, index: int) -> str:
        """Every message of request ``index`` joined, to search for error text the planner sent back."""
        return "\n".join(str(m.get("content") or "") for m in self.requests[index]["body"].get("messages", []))
