"""The LLM planner against a real HTTP server that speaks the chat-completions protocol.

The real ``openai`` client talks to ``tests/fake_openai.py`` on 127.0.0.1 (``OPENAI_BASE_URL``); nothing is
patched. The end-to-end tests run the real CLI and check real kernel events on stdout.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import time
import uuid

import jsonschema
import pytest
from conftest import run_cli
from fake_openai import FakeOpenAI, free_port, refusal, reply, spec_reply, status

from gpttrace_py import config
from gpttrace_py.errors import ExitCode, GpttraceError
from gpttrace_py.kernel.catalog import Catalog
from gpttrace_py.planning import llm
from gpttrace_py.planning.base import PlanContext
from gpttrace_py.planning.llm import LLMPlanner
from gpttrace_py.planning.llm_prompt import REQUEST_BUDGET
from gpttrace_py.planning.plan import make_plan
from gpttrace_py.run.failure import LoadFailure
from gpttrace_py.spec import ProgramSpec
from gpttrace_py.ui import UI

kernel = pytest.mark.kernel
INTENT = "trace files opened by cat"


def opens_spec(**changes):
    spec = {
        "title": "Opens by cat",
        "rationale": "sys_enter_openat carries the path of every file a process opens.",
        "probes": ["tracepoint:syscalls:sys_enter_openat"],
        "filter": {"comm": "cat"},
        "print": [{"expr": "pid", "label": "PID"}, {"expr": "args.filename", "label": "PATH"}],
    }
    spec.update(changes)
    return spec


INVALID = {"title": "Opens", "probes": ["tracepont:syscalls:sys_enter_openat"], "print": [{"expr": "pid"}]}
MISSING_TP = opens_spec(probes=["tracepoint:syscalls:sys_enter_openatt"])
LOAD_FAILS = opens_spec(filter={"comm": "cat", "expr": "comm == 5"})  # a string compared with a number


@pytest.fixture
def server():
    with FakeOpenAI() as s:
        yield s


@pytest.fixture(scope="module")
def catalog():
    return Catalog()


@pytest.fixture
def env(server, monkeypatch):
    values = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "test", "GPTTRACE_MODEL": "test-model",
              "GPTTRACE_LLM_BACKOFF": "0.01"}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def make_planner(server, retries=3, **settings):
    err = io.StringIO()
    s = {"api_key": "test", "base_url": server.base_url, "model": "test-model", "timeout": 10, "max_retries": 2}
    s.update(settings)
    planner = LLMPlanner(settings=s, ui=UI(stdout=io.StringIO(), stderr=err), retries=retries)
    return planner, err


def target(tmp_path):
    f = tmp_path / f"llm-{uuid.uuid4().hex[:8]}.txt"
    f.write_text("hello\n")
    return f


def trace_cli(f, *extra, intent=INTENT):
    return run_cli("-y", *extra, "-c", f"cat {f}", intent, timeout=90)


# -- the request ------------------------------------------------------------------------------------------------
def test_good_spec_first_time_and_what_the_request_carries(server, catalog, monkeypatch):
    monkeypatch.setenv("GPTTRACE_LLM_BACKOFF", "0.01")
    server.add(spec_reply(opens_spec()))
    planner, err = make_planner(server)
    spec = planner.plan(INTENT, PlanContext(catalog=catalog))
    assert spec.title == "Opens by cat"
    assert planner.take_rejected() == []
    assert len(server.requests) == 1
    req = server.requests[0]
    body = req["body"]
    assert req["headers"].get("authorization") == "Bearer test"
    assert body["model"] == "test-model"
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "ProgramSpec"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["required"] == list(schema["properties"]) and "title" in schema["required"]
    assert body["max_tokens"] == config.DEFAULT_MAX_TOKENS and body["temperature"] <= 0.3
    system, user = body["messages"][0]["content"], body["messages"][1]["content"]
    # field docs from the pydantic schema, and this machine's facts
    assert "rationale: string" in system and "why these probes" in system
    assert "bpftrace v" in system and "kprobe/kretprobe:" in system and "kfunc/kretfunc" in system
    # the intent, candidate probes with fields, corpus examples, the offline guess
    assert INTENT in user
    assert re.search(r"tracepoint:syscalls:sys_enter_openat: .*filename", user)
    assert "Worked examples" in user and "spec: {" in user
    assert "offline planner's best guess" in user
    assert req["size"] < REQUEST_BUDGET
    assert err.getvalue() == ""


@pytest.mark.parametrize("intent", [INTENT, "count read() calls by process", "histogram of block io latency",
                                    "show tcp connections with ports", "which processes get killed by signals",
                                    "x" * 1900])
def test_requests_stay_under_16k(server, catalog, intent):
    # A revision carries all a first request does (context, examples, offline guess) and more: the failed spec,
    # a huge log, then an invalid reply and its error.
    server.add(spec_reply(INVALID), spec_reply(opens_spec()))
    planner, _ = make_planner(server)
    ctx = PlanContext(catalog=catalog)
    spec = ProgramSpec.model_validate(opens_spec(title="Opens by cat, failed"))
    huge = LoadFailure(backend="bpftrace", stage="semantic", message="bad", log="ERROR: " + "x" * 40000)
    assert planner.revise(intent, spec, huge, ctx).title == "Opens by cat"
    sizes = [r["size"] for r in server.requests]
    print(f"request sizes for {intent[:40]!r}: {sizes}")
    assert all(s < REQUEST_BUDGET for s in sizes), sizes


def test_invalid_reply_goes_back_with_the_error(server, catalog):
    server.add(reply("Sure! Here is a spec: not json"), spec_reply(INVALID), spec_reply(opens_spec()))
    planner, err = make_planner(server)
    spec = planner.plan(INTENT, PlanContext(catalog=catalog))
    assert spec.title == "Opens by cat"
    assert "is not JSON" in server.messages_text(1)
    assert "unknown probe kind 'tracepont'" in server.messages_text(2)
    assert "Sure! Here is a spec" not in server.messages_text(2)  # only the last bad reply is echoed
    assert "is not JSON" in server.messages_text(2)  # ... but earlier errors are listed
    out = err.getvalue()
    assert "attempt 1/4 failed: model reply error: the reply is not JSON" in out
    assert "attempt 2/4 failed: model reply error" in out and "tracepont" in out
    assert len(planner.take_rejected()) == 2


def test_exhausted_in_plan_uses_the_offline_plan(server, catalog):
    server.add(spec_reply(INVALID), reply("{}"))
    planner, err = make_planner(server, retries=1)
    ctx = PlanContext(catalog=catalog)
    spec = planner.plan(INTENT, ctx)
    assert any("openat" in p.text for p in spec.all_probes) and ctx.source.startswith("corpus:")
    said = err.getvalue()
    assert "the model gave no usable spec in 2 replies (last: model reply error: the spec is invalid" in said
    assert "using the offline planner's plan instead" in said
    assert planner.name == "offline (model test-model gave no usable spec)"
    assert len(server.requests) == 2
    # the next request asks the model again
    server.add(spec_reply(opens_spec()))
    assert planner.plan(INTENT, ctx).title == "Opens by cat" and planner.name == "model test-model"


def test_exhausted_in_plan_without_fallback(server, catalog):
    server.add(spec_reply(INVALID), reply("{}"))
    planner, _ = make_planner(server, retries=1)
    planner.fallback = False
    with pytest.raises(GpttraceError) as info:
        planner.plan(INTENT, PlanContext(catalog=catalog))
    assert info.value.code == ExitCode.TRACE_FAILED
    assert "after 2 attempt(s)" in info.value.message
    assert "1. model reply error" in info.value.message and "2. model reply error" in info.value.message
    assert len(server.requests) == 2


def test_spec_that_leaves_the_subject_out_goes_back_to_the_model(server, catalog):
    """The coverage check of planning/plan.py applies to the model's spec: a miss is fed back, not run."""
    intent = "count tcp retransmits by process"
    retrans = {"title": "TCP retransmits by process", "probes": ["tracepoint:tcp:tcp_retransmit_skb"],
               "aggregates": [{"func": "count", "keys": [{"expr": "comm", "label": "COMM"}]}]}
    server.add(spec_reply(opens_spec()), spec_reply(retrans))
    planner, err = make_planner(server)
    ctx = PlanContext(catalog=catalog)
    plan = make_plan(planner, intent, ctx)
    assert plan.spec.title == "TCP retransmits by process" and plan.source == "llm"
    assert "tcp_retransmit_skb" in plan.understood()
    assert "does not trace what was asked" in server.messages_text(1)
    assert "attempt 1/4 failed: model reply error: the spec does not trace what was asked" in err.getvalue()


def test_cut_off_reply_is_retried(server, catalog):
    server.add(reply('{"title": "Opens', finish_reason="length"), spec_reply(opens_spec()))
    planner, err = make_planner(server)
    assert planner.plan(INTENT, PlanContext(catalog=catalog)).title == "Opens by cat"
    assert "cut off at 1536 tokens" in err.getvalue()
    assert server.bodies()[1]["messages"][-2] == {"role": "assistant", "content": '{"title": "Opens'}


def test_429_then_success(server, catalog):
    server.add(status(429, "Rate limit reached", err_type="requests", headers={"retry-after-ms": "20"}),
               spec_reply(opens_spec()))
    planner, err = make_planner(server)
    assert planner.plan(INTENT, PlanContext(catalog=catalog)).title == "Opens by cat"
    assert len(server.requests) == 2
    assert server.requests[1]["headers"].get("x-stainless-retry-count") == "0"  # the SDK never retries by itself
    assert "(model service busy: HTTP 429: Rate limit reached; retrying in 0.0 s, 1 of 2)" in err.getvalue()


def test_5xx_beyond_the_sdk_retries_gets_bounded_backoff(server, catalog, monkeypatch):
    monkeypatch.setenv("GPTTRACE_LLM_BACKOFF", "0.01")
    server.add(status(503, "overloaded", err_type="server_error"), status(503, "overloaded", err_type="server_error"),
               spec_reply(opens_spec()))
    planner, err = make_planner(server, max_retries=2)
    assert planner.plan(INTENT, PlanContext(catalog=catalog)).title == "Opens by cat"
    assert len(server.requests) == 3
    assert "(model service busy: HTTP 503: overloaded; retrying in 0.0 s, 1 of 2)" in err.getvalue()
    assert "retrying in 0.0 s, 2 of 2)" in err.getvalue()


def test_service_that_stays_down_with_5xx_falls_back(server, catalog, monkeypatch):
    monkeypatch.setenv("GPTTRACE_LLM_BACKOFF", "0.01")
    server.add(*[status(500, "boom", err_type="server_error")] * 3)
    planner, err = make_planner(server, max_retries=2)
    spec = planner.plan(INTENT, PlanContext(catalog=catalog))
    assert spec.probes  # the offline planner's program
    assert "keeps failing (HTTP 500: boom); planning offline instead" in err.getvalue()
    assert planner.name == "offline"
    assert len(server.requests) == 3


def test_dead_server_falls_back_to_offline(catalog, monkeypatch):
    monkeypatch.setenv("GPTTRACE_LLM_BACKOFF", "0.01")
    err = io.StringIO()
    planner = LLMPlanner(settings={"base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "m", "timeout": 5,
                                   "max_retries": 0}, ui=UI(stdout=io.StringIO(), stderr=err))
    spec = planner.plan(INTENT, PlanContext(catalog=catalog))
    assert any("openat" in p.text for p in spec.all_probes)
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and "connection refused" in lines[0] and "planning offline instead" in lines[0]


def test_timeout_falls_back_to_offline_and_closes_the_request(server, catalog):
    server.add(reply(json.dumps(opens_spec()), delay=3))
    planner, err = make_planner(server, timeout=0.3, max_retries=2)
    spec = planner.plan(INTENT, PlanContext(catalog=catalog))
    assert spec.title != "Opens by cat"  # the offline planner's
    assert "gave no answer within 0.3 s" in err.getvalue() and "planning offline instead" in err.getvalue()
    assert len(server.requests) == 1  # a timed-out generation is not sent again
    deadline = time.monotonic() + 5
    while server.abandoned < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.abandoned == 1  # the connection was closed, so a server can cancel the generation


def test_service_down_without_fallback_fails(server, catalog):
    server.add(*[status(503, "loading model", err_type="unavailable_error")] * 2)
    planner, _ = make_planner(server, max_retries=1)
    planner.fallback = False
    with pytest.raises(GpttraceError) as info:
        planner.plan(INTENT, PlanContext(catalog=catalog))
    assert info.value.code == ExitCode.TRACE_FAILED
    assert "keeps failing (HTTP 503: loading model); not planning offline (--no-fallback)" in info.value.message


def test_progress_while_waiting(server, catalog, monkeypatch):
    monkeypatch.setattr(llm, "PROGRESS_FIRST", 0.2)
    monkeypatch.setattr(llm, "PROGRESS_EVERY", 0.3)
    server.add(reply(json.dumps(opens_spec()), delay=1.0))
    planner, err = make_planner(server)
    assert planner.plan(INTENT, PlanContext(catalog=catalog)).title == "Opens by cat"
    lines = err.getvalue().splitlines()
    waiting = [ln for ln in lines if ln.startswith("(waiting for model test-model at http://127.0.0.1:")]
    assert len(waiting) >= 2 and all("attempt 1 of 4, " in ln and ln.endswith(" s)") for ln in waiting)
    assert re.fullmatch(r"\(model test-model answered after 1\.\d s\)", lines[-1])
    # and quiet when told (--json)
    server.add(reply(json.dumps(opens_spec(title="Quiet")), delay=0.6))
    quiet, err = make_planner(server)
    quiet.progress = False
    assert quiet.plan(INTENT, PlanContext(catalog=catalog)).title == "Quiet"
    assert err.getvalue() == ""


def test_refusal_is_an_error(server, catalog):
    server.add(refusal("I can't help with that."))
    planner, _ = make_planner(server)
    with pytest.raises(GpttraceError) as info:
        planner.plan(INTENT, PlanContext(catalog=catalog))
    assert info.value.code == ExitCode.USAGE
    assert "the model refused: I can't help with that." in info.value.message


def test_llama_cpp_python_500_for_json_schema_uses_json_mode(server, catalog):
    """llama-cpp-python's server answers response_format json_schema with HTTP 500 and its validation text."""
    said = ("1 validation error for CreateChatCompletionRequest\nresponse_format.type\n  Input should be 'text' or "
            "'json_object' [type=literal_error, input_value='json_schema', input_type=str]")
    server.add(status(500, said, err_type="internal_server_error"), spec_reply(opens_spec()))
    planner, err = make_planner(server)
    assert planner.plan(INTENT, PlanContext(catalog=catalog)).title == "Opens by cat"
    assert [b.get("response_format", {}).get("type") for b in server.bodies()] == ["json_schema", "json_object"]
    assert "(the model service does not take json_schema replies: HTTP 500: 1 validation error" in err.getvalue()
    assert "busy" not in err.getvalue() and len(server.requests) == 2


def test_reply_limits_the_service_refuses_are_adapted(server, catalog):
    server.add(status(400, "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                           "'max_completion_tokens' instead.", param="max_tokens"),
               status(400, "Unsupported value: 'temperature' does not support 0.2 with this model.",
                      param="temperature"),
               spec_reply(opens_spec()))
    planner, _ = make_planner(server)
    assert planner.plan(INTENT, PlanContext(catalog=catalog)).title == "Opens by cat"
    last = server.bodies()[-1]
    assert last["max_completion_tokens"] == config.DEFAULT_MAX_TOKENS and "max_tokens" not in last
    assert "temperature" not in last


def test_json_schema_rejected_falls_back_to_json_mode(server, catalog):
    server.add(status(400, "Invalid parameter: 'response_format' of type 'json_schema' is not supported with "
                           "this model.", param="response_format"),
               spec_reply(opens_spec()))
    planner, err = make_planner(server)
    assert planner.plan(INTENT, PlanContext(catalog=catalog)).title == "Opens by cat"
    assert "asking for json_object instead" in err.getvalue()
    assert server.bodies()[0]["response_format"]["type"] == "json_schema"
    assert server.bodies()[1]["response_format"] == {"type": "json_object"}
    assert planner.mode == "json_object"
    # and a server that takes neither gets plain instructions
    server.add(status(400, "response_format json_object is not supported"), spec_reply(opens_spec(title="Again")))
    assert planner.plan(INTENT, PlanContext(catalog=catalog)).title == "Again"
    assert "response_format" not in server.bodies()[-1]


def test_other_400_is_an_error(server, catalog):
    server.add(status(400, "This model's maximum context length is 4096 tokens."))
    planner, _ = make_planner(server)
    with pytest.raises(GpttraceError) as info:
        planner.plan(INTENT, PlanContext(catalog=catalog))
    assert "maximum context length" in info.value.message
    assert len(server.requests) == 1


def test_bad_key_is_a_usage_error(server, catalog):
    server.add(status(401, "Incorrect API key provided", err_type="invalid_request_error"))
    planner, _ = make_planner(server)
    with pytest.raises(GpttraceError) as info:
        planner.plan(INTENT, PlanContext(catalog=catalog))
    assert info.value.code == ExitCode.USAGE and "refused the API key" in info.value.message


def test_revise_sends_the_failure_and_rejects_a_repeat(server, catalog):
    planner, err = make_planner(server)
    ctx = PlanContext(catalog=catalog)
    server.add(spec_reply(LOAD_FAILS))
    spec = planner.plan(INTENT, ctx)
    failure = LoadFailure(backend="bpftrace", stage="semantic", line=13, column=1,
                          message="Type mismatch for '==': comparing 'string[16]' with 'int64'",
                          log="/tmp/x.bt:13:1-12: ERROR: Type mismatch for '==': comparing 'string[16]' with 'int64'")
    ctx.conversation.record(spec, failure, "tracepoint:syscalls:sys_enter_openat /comm == 5/ { }")
    server.add(spec_reply(LOAD_FAILS), spec_reply(opens_spec()))
    revised = planner.revise(INTENT, spec, failure, ctx)
    assert revised is not None and revised.filter.expr is None
    text = server.messages_text(1)
    assert "Type mismatch for '=='" in text and "/comm == 5/" in text
    assert "same spec that already failed" in server.messages_text(2)
    assert "attempt 2/4 failed: model reply error: the same spec" in err.getvalue()


def test_refine_sends_the_current_spec(server, catalog):
    planner, _ = make_planner(server)
    ctx = PlanContext(catalog=catalog)
    ctx.conversation.intents.append(INTENT)
    current = ProgramSpec.model_validate(opens_spec())
    server.add(spec_reply(opens_spec(filter={"pid": 42})))
    new = planner.refine("only pid 42", current, ctx)
    assert new.filter.pid == 42
    user = server.bodies()[0]["messages"][-1]["content"]
    assert "only pid 42" in user and '"comm":"cat"' in user and INTENT in user


# -- configuration -------------------------------------------------------------------------------------------------
def test_config_set_show_unset(isolated_home):
    r = run_cli("config", "set", "api_key", "sk-test-0123456789abcd")
    assert r.returncode == 0, r.stderr
    path = isolated_home / "config" / "config.toml"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "0123456789abcd" not in r.stderr
    r = run_cli("config", "set", "model", "gpt-4o")
    shown = run_cli("config")
    assert shown.returncode == 0
    assert str(path) in shown.stdout
    assert "sk-...abcd" in shown.stdout and "0123456789" not in shown.stdout
    assert re.search(r"model\s+gpt-4o\s+\[config\]", shown.stdout)
    as_json = json.loads(run_cli("config", "--json").stdout)
    assert as_json["settings"]["api_key"]["value"] == "sk-...abcd" and as_json["planner"] == "llm"
    assert run_cli("config", "unset", "api_key").returncode == 0
    assert "api_key" not in path.read_text()
    assert run_cli("config", "set", "timeout", "soon").returncode == 2
    assert run_cli("config", "set", "nonsense", "1").returncode == 2


def test_planner_choice(isolated_home, monkeypatch):
    from gpttrace_py import config
    from gpttrace_py.planning.offline import OfflinePlanner
    from gpttrace_py.planning.select import get_planner

    assert isinstance(get_planner(), OfflinePlanner)  # no key, no base URL: offline, silently
    config.set_value("base_url", "http://127.0.0.1:9/v1")
    planner = get_planner(model="llama3")
    assert isinstance(planner, LLMPlanner) and planner.model == "llama3"
    assert isinstance(get_planner(offline=True), OfflinePlanner)
    monkeypatch.setenv("GPTTRACE_MODEL", "from-env")
    assert get_planner().model == "from-env"


# -- end to end: the real CLI, the real kernel ---------------------------------------------------------------------
@kernel
def test_e2e_good_spec_streams_events(server, env, tmp_path):
    server.add(spec_reply(opens_spec()))
    f = target(tmp_path)
    r = trace_cli(f)
    assert r.returncode == 0, r.stderr
    assert str(f) in r.stdout
    err = r.stderr
    assert "# Opens by cat: sys_enter_openat carries the path" in err  # the rationale, above the program
    assert err.index("# Opens by cat:") < err.index("#!/usr/bin/env bpftrace")
    assert "(planned from model test-model; backend bpftrace)" in err
    assert len(server.requests) == 1 and server.requests[0]["size"] < REQUEST_BUDGET


@kernel
def test_e2e_invalid_reply_then_good(server, env, tmp_path):
    server.add(spec_reply(INVALID), spec_reply(opens_spec()))
    f = target(tmp_path)
    r = trace_cli(f)
    assert r.returncode == 0, r.stderr
    assert str(f) in r.stdout
    assert "attempt 1/4 failed: model reply error" in r.stderr
    assert "unknown probe kind 'tracepont'" in server.messages_text(1)


@kernel
def test_e2e_missing_tracepoint_then_good(server, env, tmp_path):
    server.add(spec_reply(MISSING_TP), spec_reply(opens_spec()))
    f = target(tmp_path)
    r = trace_cli(f)
    assert r.returncode == 0, r.stderr
    assert str(f) in r.stdout
    assert "attempt 1/4 failed: bpftrace catalog error" in r.stderr
    sent = server.messages_text(1)
    assert "sys_enter_openatt: no such tracepoint on this kernel" in sent


@kernel
def test_e2e_kernel_load_failure_then_good(server, env, tmp_path):
    server.add(spec_reply(LOAD_FAILS), spec_reply(opens_spec()))
    f = target(tmp_path)
    r = trace_cli(f)
    assert r.returncode == 0, r.stderr
    assert str(f) in r.stdout
    assert "attempt 1/4 failed: bpftrace semantic error" in r.stderr
    sent = server.messages_text(1)
    assert "Type mismatch for '=='" in sent  # bpftrace's own words went back to the model
    assert "string[16]" in sent and "comm == 5" in sent


@kernel
def test_e2e_retries_exhausted_lists_every_attempt(server, env, tmp_path):
    server.add(spec_reply(INVALID), spec_reply(MISSING_TP), spec_reply(LOAD_FAILS))
    f = target(tmp_path)
    r = trace_cli(f, "--retries", "2")
    assert r.returncode == 1, r.stderr
    err = r.stderr
    for n, what in ((1, "model reply error"), (2, "bpftrace catalog error"), (3, "bpftrace semantic error")):
        assert f"attempt {n}/3 failed: {what}" in err
        assert f"  {n}. {what}" in err
    assert "no program loaded after 3 attempt(s)" in err
    assert len(server.requests) == 3


@kernel
def test_e2e_dead_server_falls_back_to_offline(env, tmp_path, monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    f = target(tmp_path)
    r = run_cli("-y", "-c", f"cat {f}", "trace new processes executed", timeout=90,
                env={"OPENAI_BASE_URL": dead, "GPTTRACE_LLM_MAX_RETRIES": "0"})
    assert r.returncode == 0, r.stderr
    assert "cat" in r.stdout
    warnings = [ln for ln in r.stderr.splitlines() if "planning offline instead" in ln]
    assert len(warnings) == 1 and "connection refused" in warnings[0]
    assert "(planned from offline" in r.stderr


@kernel
def test_e2e_refusal_exits_2(server, env, tmp_path):
    server.add(refusal("I can't help with that."))
    r = trace_cli(target(tmp_path))
    assert r.returncode == 2
    assert "the model refused: I can't help with that." in r.stderr


@kernel
def test_e2e_429_then_json_mode_fallback(server, env, tmp_path):
    server.add(status(429, "Rate limit", headers={"retry-after-ms": "10"}),
               status(400, "response_format json_schema is not supported", param="response_format"),
               spec_reply(opens_spec()))
    f = target(tmp_path)
    r = trace_cli(f)
    assert r.returncode == 0, r.stderr
    assert str(f) in r.stdout
    assert server.bodies()[2]["response_format"] == {"type": "json_object"}


def _shown_spec(stderr: str) -> str:
    m = re.search(r"^\{\n.*?^\}$", stderr, re.M | re.S)
    assert m, stderr
    return m.group(0)


def _shown_program(stderr: str) -> str:
    start = stderr.index("#!/usr/bin/env bpftrace")
    end = stderr.index("(planned from", start)
    return stderr[start:end]


@kernel
def test_e2e_show_spec_round_trip(server, env, tmp_path):
    spec = opens_spec(title="Opens and results",
                      probes=["tracepoint:syscalls:sys_exit_openat"],
                      start={"probes": ["tracepoint:syscalls:sys_enter_openat"], "save": [
                          {"name": "path", "expr": "args.filename"}]},
                      print=[{"expr": "pid", "label": "PID"}, {"expr": "args.ret", "label": "FD"},
                             {"expr": "start.path", "label": "PATH"}])
    server.add(spec_reply(spec))
    first = run_cli("-y", "--dry-run", "--show-spec", INTENT, timeout=90)
    assert first.returncode == 0, first.stderr
    shown = _shown_spec(first.stderr)
    assert json.loads(shown)["title"] == "Opens and results"
    server.add(spec_reply(shown))
    second = run_cli("-y", "--dry-run", "--show-spec", INTENT, timeout=90)
    assert second.returncode == 0, second.stderr
    assert _shown_program(second.stderr) == _shown_program(first.stderr)
    assert _shown_spec(second.stderr) == shown


LLAMA_CPP_PYTHON_500 = ("1 validation error for CreateChatCompletionRequest\nresponse_format.type\n  Input should be "
                        "'text' or 'json_object' [type=literal_error, input_value='json_schema', input_type=str]")


@kernel
def test_e2e_server_like_llama_cpp_python_plan_is_used(server, env, tmp_path):
    """A server that answers json_schema with HTTP 500 (llama-cpp-python's): JSON mode, and the model's plan runs."""
    server.add(status(500, LLAMA_CPP_PYTHON_500, err_type="internal_server_error"), spec_reply(opens_spec()))
    f = target(tmp_path)
    r = trace_cli(f)
    assert r.returncode == 0, r.stderr
    assert str(f) in r.stdout
    assert "(the model service does not take json_schema replies: HTTP 500: 1 validation error" in r.stderr
    assert "busy" not in r.stderr and "offline" not in r.stderr
    assert "understood: " in r.stderr and "(planned from model test-model; backend bpftrace)" in r.stderr
    first, second = server.bodies()
    assert first["response_format"]["json_schema"]["strict"] is True
    jsonschema.Draft202012Validator.check_schema(first["response_format"]["json_schema"]["schema"])
    assert second["response_format"] == {"type": "json_object"}
    assert first["max_tokens"] == second["max_tokens"] == config.DEFAULT_MAX_TOKENS


@kernel
def test_e2e_unusable_replies_fall_back_to_the_offline_plan(server, env, tmp_path):
    server.add(spec_reply(INVALID), reply("I think you should use opensnoop."))
    f = target(tmp_path)
    r = trace_cli(f, "--retries", "1")
    assert r.returncode == 0, r.stderr
    assert str(f) in r.stdout  # the offline plan ran
    err = r.stderr
    assert "attempt 1/2 failed: model reply error" in err and "attempt 2/2 failed: model reply error" in err
    assert "the model gave no usable spec in 2 replies (last: model reply error: the reply is not JSON" in err
    assert "using the offline planner's plan instead" in err
    assert "(planned from offline (model test-model gave no usable spec); backend bpftrace)" in err
    # each error once: the summary line is not repeated below it
    assert err.count("unknown probe kind 'tracepont'") == 1


@kernel
def test_e2e_no_fallback_exits_1(server, env, tmp_path):
    server.add(spec_reply(INVALID), reply("I think you should use opensnoop."))
    r = trace_cli(target(tmp_path), "--retries", "1", "--no-fallback")
    assert r.returncode == 1, r.stderr
    assert "the model gave no usable spec after 2 attempt(s):" in r.stderr
    assert "drop --no-fallback" in r.stderr and "#!/usr/bin/env bpftrace" not in r.stderr


@kernel
def test_e2e_model_spec_that_misses_the_subject_is_fed_back(server, env, tmp_path):
    """"trace files opened by cat" answered with a program about new processes: not run, sent back."""
    execs = {"title": "New processes", "probes": ["tracepoint:sched:sched_process_exec"],
             "print": [{"expr": "comm", "label": "COMM"}]}
    server.add(spec_reply(execs), spec_reply(opens_spec()))
    f = target(tmp_path)
    r = trace_cli(f)
    assert r.returncode == 0, r.stderr
    assert str(f) in r.stdout
    assert "attempt 1/4 failed: model reply error: the spec does not trace what was asked" in r.stderr
    assert "does not trace what was asked" in server.messages_text(1)


@kernel
def test_e2e_progress_on_stderr_but_not_with_json(server, env, tmp_path):
    f = target(tmp_path)
    server.add(reply(json.dumps(opens_spec()), delay=2.6))
    r = trace_cli(f)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^\(waiting for model test-model at http://127\.0\.0\.1:\d+/v1: attempt 1 of 4, 2 s\)$",
                     r.stderr, re.M)
    server.add(reply(json.dumps(opens_spec()), delay=2.6))
    r = trace_cli(f, "--json")
    assert r.returncode == 0, r.stderr
    assert "waiting for model" not in r.stderr and "answered after" not in r.stderr
    assert json.loads(r.stdout.splitlines()[0])["type"] == "plan"
