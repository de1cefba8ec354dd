"""The response schema the LLM planner sends: valid, satisfiable, in the shape OpenAI's strict mode accepts,
and what a grammar-enforcing server can constrain (the grammar test with a real converter is in
tests/test_real_llm.py)."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from gpttrace_py import config
from gpttrace_py.corpus import load
from gpttrace_py.planning import llm_prompt as P
from gpttrace_py.planning.llm_reply import ReplyError, parse_reply
from gpttrace_py.spec import ProgramSpec
from gpttrace_py.spec.kinds import SPEC_KINDS


def schemas(node, path="$"):
    """Every schema in a schema (not keyword values such as an enum's list), with where it is."""
    yield path, node
    for key in ("properties", "$defs"):
        for name, sub in node.get(key, {}).items():
            yield from schemas(sub, f"{path}.{key}.{name}")
    if isinstance(node.get("items"), dict):
        yield from schemas(node["items"], f"{path}.items")
    for i, sub in enumerate(node.get("anyOf", [])):
        yield from schemas(sub, f"{path}.anyOf[{i}]")


def keywords(node):
    return set(node) - {"properties", "$defs"}


def wire_full(spec: ProgramSpec) -> dict:
    """A spec as a strict-mode reply writes it: every field present (null where unset), names as pairs."""
    data = spec.model_dump(mode="json")
    for hidden in P.HIDDEN_FIELDS:
        data.pop(hidden, None)
    return P.to_wire(data)


def test_schema_walk_strict_shape():
    schema = P.response_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "title" in schema["properties"] and "title" in schema["required"]  # a field named title is kept
    refs = set()
    seen = 0
    for path, node in schemas(schema):
        seen += 1
        assert keywords(node) <= P.STRICT_KEYWORDS - {"description"}, (path, keywords(node) - P.STRICT_KEYWORDS)
        if "$ref" in node:
            refs.add(node["$ref"].rsplit("/", 1)[1])
        if node.get("type") == "object":
            # every required field is a property, every property is required, nothing else is allowed
            assert node.get("additionalProperties") is False, path
            assert list(node["properties"]) == node["required"], path
        if node.get("type") == "array":
            assert isinstance(node.get("maxItems"), int) and node["maxItems"] <= 64, path
    assert seen > 60
    assert refs <= set(schema["$defs"]) and "ProbeRef" in refs
    for name, node in schema["$defs"].items():
        if node.get("type") == "object":
            assert set(node["required"]) == set(node["properties"]), name


def test_probe_pattern_takes_probes_and_refuses_bare_kinds():
    pattern = re.compile(P.response_schema()["$defs"]["ProbeRef"]["pattern"])
    for good in ("tracepoint:syscalls:sys_enter_openat", "BEGIN", "uprobe:/usr/bin/bash:readline",
                 "software:page-faults:1", "profile:hz:99", "interval:s:1", "tc:eth0:ingress"):
        assert pattern.search(good), good
    for bad in (*SPEC_KINDS[:13], "syscalls:sys_enter_openat", "tracepoint:sys_enter_openat", "openat",
                "tracepoint:syscalls:sys_enter_openat extra"):
        if bad in ("BEGIN", "END"):
            continue
        assert not pattern.search(bad), bad


def test_every_corpus_spec_satisfies_the_schema_and_reads_back():
    """Satisfiable: 116 real specs written as a strict-mode reply validate, and parse back to the same spec."""
    validator = jsonschema.Draft202012Validator(P.response_schema())
    examples = load()
    assert len(examples) >= 100
    for example in examples:
        reply = wire_full(example.spec)
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(reply)]
        assert not errors, (example.id, errors[:3])
        again = parse_reply(json.dumps(reply))
        assert P.spec_json(again) == P.spec_json(example.spec), example.id


def test_value_names_travel_as_pairs():
    spec = ProgramSpec.model_validate({"title": "Signals", "probes": ["tracepoint:signal:signal_generate"],
                                       "print": [{"expr": "args.sig", "format": "names", "names": {9: "KILL"}}]})
    shown = json.loads(P.spec_json(spec))
    assert shown["print"][0]["names"] == [{"value": 9, "name": "KILL"}]
    assert parse_reply(json.dumps(shown)).print[0].names == {9: "KILL"}
    bad = {**shown, "print": [{"expr": "args.sig", "names": [{"value": "nine", "name": "KILL"}]}]}
    with pytest.raises(ReplyError, match="names"):
        parse_reply(json.dumps(bad))


def test_max_tokens_fits_the_longest_corpus_spec():
    """The default reply limit is sized to the spec: the longest corpus spec with every field written out, at a
    pessimistic 2 characters per token, fits."""
    longest = max(len(json.dumps(wire_full(e.spec))) for e in load())
    assert longest / 2 <= config.DEFAULT_MAX_TOKENS < longest * 2, longest


def test_wrapped_spec_with_extra_keys_is_explained():
    inner = {"title": "Opens", "probes": ["tracepoint:syscalls:sys_enter_openat"], "print": [{"expr": "pid"}]}
    assert parse_reply(json.dumps({"programSpec": inner})).title == "Opens"
    with pytest.raises(ReplyError) as info:
        parse_reply(json.dumps({"programSpec": inner, "explanation": "this traces opens"}))
    assert "wraps the spec in 'programSpec' and adds 'explanation'" in str(info.value)
    assert "at the top level" in str(info.value)
