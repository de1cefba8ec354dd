"""The model service: an OpenAI client that never retries by itself and reads at most MAX_REPLY_BYTES of a
reply, and what the service's errors say (its message, its code, how long it asks to wait, whether it is about
the reply format, the cause of a connection error)."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from ..errors import UsageError

MAX_REPLY_BYTES = 1 << 20  # a reply (or error body) larger than this is not read further


@functools.lru_cache(maxsize=1)
def reply_too_large() -> type[Exception]:
    """The error of a response body over MAX_REPLY_BYTES: an openai.OpenAIError, which the SDK passes on without
    retrying (made on first use: importing openai takes a while)."""
    import openai

    return type("ReplyTooLarge", (openai.OpenAIError,), {})


class ServiceDown(Exception):
    """The model service cannot be reached or keeps failing; the offline planner takes over (unless told not to)."""


def make_client(api_key: str | None, base_url: str | None, timeout: float) -> Any:
    """An OpenAI client that never retries by itself: the planner's own loop retries what is worth retrying, and
    shows it."""
    import openai

    class _Capped(openai.DefaultHttpxClient):
        """Reads a response body up to MAX_REPLY_BYTES (after decompression), then gives up."""

        def send(self, request: Any, *, stream: bool = False, **kw: Any) -> Any:
            response = super().send(request, stream=True, **kw)
            if stream:
                return response
            body = bytearray()
            try:
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_REPLY_BYTES:
                        raise reply_too_large()(f"the reply is larger than {MAX_REPLY_BYTES} bytes")
            finally:
                response.close()
            response._content = bytes(body)  # what Response.read() returns
            return response

    kwargs: dict[str, Any] = {"api_key": api_key or "not-needed", "timeout": timeout, "max_retries": 0,
                              "http_client": _Capped()}
    if base_url:
        kwargs["base_url"] = base_url
    try:
        return openai.OpenAI(**kwargs)
    except openai.OpenAIError as exc:
        raise UsageError(f"cannot set up the model client: {exc}", "check `gpttrace config`") from None


def api_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return " ".join(str(err["message"]).split())[:300]
        if isinstance(err, str):
            return " ".join(err.split())[:300]
    return " ".join(str(getattr(exc, "message", exc)).split())[:300]


def error_code(exc: Any) -> str | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return err.get("code") or err.get("type")
    return getattr(exc, "code", None)


def retry_after(exc: Any) -> float | None:
    """Seconds a 429/503 asks to wait (retry-after-ms or retry-after in seconds), when it says."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    for key, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return max(0.0, float(headers[key]) * scale)
        except (KeyError, TypeError, ValueError):
            continue
    return None


def about_response_format(exc: Any) -> bool:
    """An error (4xx or 5xx) whose words are about response_format / schemas: a server without structured output
    (llama-cpp-python answers json_schema with HTTP 500), or one whose grammar converter refused the schema."""
    parts = [str(exc), api_message(exc)]
    body = getattr(exc, "body", None)
    if body is not None:
        try:
            parts.append(json.dumps(body))
        except (TypeError, ValueError):
            parts.append(str(body))
    text = " ".join(parts).lower()
    return any(w in text for w in ("response_format", "response format", "json_schema", "json schema", "json_object",
                                   "structured output", "guided_json", "grammar"))


def cause(exc: BaseException) -> str:
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    text = str(seen) or type(seen).__name__
    m = re.search(r"\[Errno \d+\] ([^'\]\)]+)", text)
    if m:
        return m.group(1).strip().lower()
    return " ".join(text.split())[:120] or "connection error"
