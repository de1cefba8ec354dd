"""A model's reply read as a spec: JSON (possibly fenced, possibly wrapped), in wire form, validated by pydantic;
what is wrong with one, in words the model can act on."""

from __future__ import annotations

import json
import re

from pydantic import ValidationError

from ..spec import ProgramSpec
from . import llm_prompt as P


class ReplyError(Exception):
    """A reply that is not a usable spec: the message goes back to the model (with ``reply``, its text, when the
    text was not returned: a reply cut off at max_tokens)."""

    def __init__(self, message: str, reply: str = "") -> None:
        super().__init__(message)
        self.reply = reply


WRAPPERS = ("spec", "programspec", "program_spec")  # keys some models wrap the spec in


def parse_reply(content: str) -> ProgramSpec:
    """A spec from a reply's text: JSON (possibly fenced, possibly wrapped in {"spec": ...}) in wire form,
    validated by pydantic."""
    text = content.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fenced:
        text = fenced.group(1).strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        start, end = text.find("{"), text.rfind("}")
        try:
            if start < 0 or end <= start:
                raise ValueError
            data = json.loads(text[start:end + 1])
        except ValueError:
            raise ReplyError(f"the reply is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                             "reply with the spec as one JSON object") from None
    if not isinstance(data, dict):
        raise ReplyError(f"the reply is a JSON {type(data).__name__}, not an object with the spec's fields")
    wrapped = [k for k, v in data.items() if k.lower() in WRAPPERS and isinstance(v, dict)]
    if wrapped and "probes" not in data:
        if len(data) > 1:
            others = ", ".join(repr(k) for k in data if k != wrapped[0])
            raise ReplyError(f"the reply wraps the spec in {wrapped[0]!r} and adds {others}: reply with the spec's "
                             "fields (title, probes, ...) at the top level of one JSON object, nothing else")
        data = data[wrapped[0]]
    for hidden in P.HIDDEN_FIELDS:
        data.pop(hidden, None)
    try:
        return ProgramSpec.model_validate(P.from_wire(data))
    except ValidationError as exc:
        raise ReplyError(validation_text(exc)) from None


def validation_text(exc: ValidationError, limit: int = 8) -> str:
    errors = exc.errors(include_url=False)
    lines = []
    for err in errors[:limit]:
        loc = ".".join(str(x) for x in err.get("loc", ())) or "(the spec)"
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        got = err.get("input")
        shown = ""
        if isinstance(got, (str, int, float)) and not isinstance(got, bool) and err.get("type") != "missing":
            shown = f" (got {json.dumps(got)[:80]})"
        lines.append(f"{loc}: {msg}{shown}")
    if len(errors) > limit:
        lines.append(f"... and {len(errors) - limit} more")
    return "the spec is invalid: " + "; ".join(lines) if len(lines) == 1 else \
        "the spec is invalid:\n" + "\n".join(f"- {ln}" for ln in lines)

