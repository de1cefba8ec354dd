"""Eight requests through gpttrace against a real local model server; prints a Markdown table.

    sudo .venv/bin/python bench/llm_real.py [--retries N] [--max-tokens N] [--base-url URL]

Without --base-url it starts llama-cpp-python's server with Gemma 3 270M (tests/llama_server.py) and stops it at
the end. A recording proxy between gpttrace and the server counts the requests and their answers. Each run is
``gpttrace -y --dry-run`` (plan, load, attach, detach), bounded by a timeout.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fake_openai import FakeOpenAI  # noqa: E402
from llama_server import MODEL_ALIAS, LlamaServer, assemble_model  # noqa: E402

REQUESTS = [
    "trace files opened by cat",
    "count read() calls by process",
    "show new processes with their arguments",
    "histogram of block io latency",
    "which processes get killed by signals",
    "count tcp retransmits by process",
    "trace failed openat calls with the error",
    "sum bytes written per process every 5 seconds",
]


def outcome(code: int, stderr: str) -> str:
    if "gave no usable spec" in stderr and "using the offline planner's plan" in stderr:
        where = "offline fallback"
    elif "planning offline instead" in stderr:
        where = "service down → offline"
    elif "(planned from model" in stderr:
        where = "model's plan"
    else:
        where = "no plan"
    return f"{where}, exit {code}"


def run(base_url: str, retries: int, max_tokens: int, timeout: float, label: str) -> list[str]:
    rows = []
    for intent in REQUESTS:
        with FakeOpenAI(upstream=base_url.removesuffix("/v1"), upstream_timeout=timeout + 30) as proxy, \
                tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "OPENAI_BASE_URL": proxy.base_url, "OPENAI_API_KEY": "local",
                   "GPTTRACE_MODEL": MODEL_ALIAS, "GPTTRACE_LLM_MAX_TOKENS": str(max_tokens),
                   "GPTTRACE_LLM_TIMEOUT": str(timeout), "GPTTRACE_HOME": home}
            began = time.monotonic()
            try:
                r = subprocess.run([str(ROOT / ".venv/bin/gpttrace"), "-y", "--dry-run", "--retries", str(retries),
                                    intent], capture_output=True, text=True, env=env,
                                   timeout=(retries + 2) * (timeout + 10) + 60, stdin=subprocess.DEVNULL)
                code, stderr = r.returncode, r.stderr
            except subprocess.TimeoutExpired:
                code, stderr = -1, "timed out"
            seconds = time.monotonic() - began
            statuses = [str(rec.get("status")) for rec in proxy.requests]
            tokens = [rec["reply"]["usage"]["completion_tokens"] for rec in proxy.requests
                      if rec.get("status") == 200 and "usage" in rec.get("reply", {})]
            rejected = stderr.count("failed: model reply error")
            rows.append(f"| {label} | {intent} | {len(proxy.requests)} ({' '.join(statuses)}) | "
                        f"{rejected} | {max(tokens, default=0)} | {seconds:.0f} s | {outcome(code, stderr)} |")
            print(rows[-1], flush=True)
            if os.environ.get("LLM_BENCH_VERBOSE"):
                print(stderr[-4000:], file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--retries", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=1536)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--base-url", help="an already running server (its /v1 URL)")
    parser.add_argument("--label", default="llama-cpp-python server, Gemma 3 270M Q4_K_M")
    args = parser.parse_args()
    print("| server | request | HTTP requests (status) | replies rejected | longest reply, tokens | time | "
          "outcome |")
    print("| --- | --- | --- | --- | --- | --- | --- |", flush=True)
    if args.base_url:
        run(args.base_url, args.retries, args.max_tokens, args.timeout, args.label)
        return
    with tempfile.TemporaryDirectory() as work:
        server = LlamaServer(assemble_model(Path(work)), Path(work) / "server.log")
        with server:
            run(server.base_url, args.retries, args.max_tokens, args.timeout, args.label)


if __name__ == "__main__":
    main()
