"""The LLM planner: a model fills the ProgramSpec through the OpenAI chat-completions API.

Works with OpenAI and with OpenAI-compatible servers (vLLM, ollama, llama.cpp): ``OPENAI_BASE_URL`` or
``gpttrace config set base_url ...``. The reply format is asked for as a JSON schema (``chat.completions.parse``
with a non-strict ``json_schema``: strict mode cannot express the spec, see ``llm_prompt.response_schema``) and
checked by pydantic here. A server that rejects ``json_schema`` gets JSON mode, and one that rejects that too
gets plain instructions; every reply is validated the same way.

Every reply that is not a valid spec, names a probe or field this kernel lacks, or fails to load goes back
to the model with the error text, within one budget of ``retries + 1`` replies per request (the pipeline sets
``retries`` from ``--retries``). Replies rejected here are shown at once and handed to the pipeline through
``take_rejected()``, so its attempt numbers and final list include them.

Rate limits, 5xx answers and timeouts are retried by the SDK (``max_retries``, its waits capped here); 429
and 5xx then get ``OWN_RETRIES`` more tries with waits of ``GPTTRACE_LLM_BACKOFF`` (seconds, default 1)
doubling. A service that cannot be reached, times out or keeps failing hands over to the offline planner
with a one-line warning. A refusal is an error (exit 2).
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..errors import ExitCode, GpttraceError, UsageError
from ..run.failure import LoadFailure
from ..spec import ProgramSpec
from . import llm_prompt as P
from .base import PlanContext

OWN_RETRIES = 2  # tries of ours after the SDK's own retries gave up on a 429/5xx/timeout
MODES = ("json_schema", "json_object", "text")
MAX_REPLY_ECHO = 3000  # characters of an invalid reply sent back to the model
MAX_LOG_ECHO = 2500  # characters of a load error log sent back
MAX_PROGRAM_ECHO = 2500
MAX_REPLY_BYTES = 1 << 20  # a reply (or error body) larger than this is not read further


@functools.lru_cache(maxsize=1)
def _reply_too_large() -> type[Exception]:
    """The error of a response body over MAX_REPLY_BYTES: an openai.OpenAIError, which the SDK passes on without
    retrying (made on first use: importing openai takes a while)."""
    import openai

    return type("ReplyTooLarge", (openai.OpenAIError,), {})


class ReplyError(Exception):
    """A reply that is not a usable spec: the message goes back to the model."""


class ServiceDown(Exception):
    """The model service cannot be reached or keeps failing; the offline planner takes over."""


@dataclass
class _Thread:
    """One request (an intent, or a chat refinement) and its replies so far."""

    intent: str
    context: P.RequestContext
    replies: int = 0
    failures: list[LoadFailure] = field(default_factory=list)
    tried: set[str] = field(default_factory=set)
    base: list[dict[str, str]] = field(default_factory=list)  # system + first user message


def backoff_base() -> float:
    try:
        return max(0.0, float(os.environ.get("GPTTRACE_LLM_BACKOFF", "1")))
    except ValueError:
        return 1.0


class LLMPlanner:
    """Plans with a chat model; see the module docstring. ``client`` may be any object with the OpenAI
    client's ``chat.completions`` interface."""

    def __init__(self, model: str | None = None, *, settings: dict[str, Any] | None = None, client: Any = None,
                 ui: Any = None, retries: int = 3) -> None:
        from .. import config

        s = settings if settings is not None else config.settings({"model": model})
        self.model: str = model or s.get("model") or config.DEFAULT_MODEL
        self.api_key: str | None = s.get("api_key")
        self.base_url: str | None = s.get("base_url")
        self.timeout = float(s.get("timeout") or config.DEFAULT_TIMEOUT)
        self.max_retries = int(s.get("max_retries") if s.get("max_retries") is not None else config.DEFAULT_MAX_RETRIES)
        self.retries = retries
        self.name = f"model {self.model}"
        self.mode = "json_schema"
        self.request_sizes: list[int] = []  # bytes of every request body sent, for diagnostics and tests
        self._client = client
        self._ui = ui
        self._fallback: Any = None
        self._thread: _Thread | None = None
        self._rejected: list[LoadFailure] = []

    # -- Planner protocol ----------------------------------------------------------------------------------
    def plan(self, intent: str, ctx: PlanContext) -> ProgramSpec:
        if self._fallback is not None:
            return self._fallback.plan(intent, ctx)
        text = _check_intent(intent)
        self._rejected = []
        thread = self._start(text, ctx)
        try:
            spec = self._ask(thread, ctx, lambda level: self._plan_messages(thread, ctx, level))
        except ServiceDown as exc:
            return self._go_offline(exc).plan(intent, ctx)
        if spec is None:
            raise self._exhausted(thread)
        return spec

    def refine(self, request: str, spec: ProgramSpec, ctx: PlanContext) -> ProgramSpec:
        if self._fallback is not None:
            return self._fallback.refine(request, spec, ctx)
        text = _check_intent(request)
        rc = P.gather(text, ctx, with_examples=False, current=spec, limit=10)
        thread = _Thread(text, rc, tried={P.spec_json(spec)})
        history = [" ".join(i.split())[:200] for i in ctx.conversation.intents[-4:]]
        errors = [P.shorten(f.summary(), 300) for f in ctx.conversation.failures[-3:]]

        def messages(level: tuple[int, int, int, int, bool]) -> list[dict[str, str]]:
            user = P.refine_prompt(text, spec, rc, ctx.catalog, history, errors, level)
            return [{"role": "system", "content": P.system_prompt(ctx.catalog)}, {"role": "user", "content": user}]

        try:
            new = self._ask(thread, ctx, messages)
        except ServiceDown as exc:
            return self._go_offline(exc).refine(request, spec, ctx)
        finally:
            self._rejected = []  # shown already; a refinement is not an attempt of the pipeline's next trace
        if new is None:
            raise self._exhausted(thread)
        # The refined spec is attempt 1 of whatever runs it next; a load failure continues this thread.
        thread.base = messages(P.LEVELS[2])
        thread.replies, thread.failures = 1, []
        self._thread = thread
        return new

    def revise(self, intent: str, spec: ProgramSpec, failure: LoadFailure, ctx: PlanContext) -> ProgramSpec | None:
        if self._fallback is not None:
            return self._fallback.revise(intent, spec, failure, ctx)
        thread = self._thread
        if thread is None or thread.intent != " ".join(intent.split()):
            thread = self._start(_check_intent(intent), ctx)
            thread.replies = 1  # the spec that failed was the first attempt
        thread.failures.append(failure)
        failed = P.spec_json(spec)
        thread.tried.add(failed)
        program = ""
        if ctx.conversation.attempts and ctx.conversation.attempts[-1].program and failure.stage not in (
                "catalog", "render"):
            program = ctx.conversation.attempts[-1].program or ""
        kind = "catalog" if failure.stage == "catalog" else "load"
        earlier = [P.shorten(f.summary(), 200) for f in thread.failures[:-1]][-4:]
        feedback = dict(kind=kind, message=failure.message if kind == "catalog" else "",
                        log=failure.log or failure.message, backend=failure.backend, stage=failure.stage,
                        program=program, earlier=earlier)

        def messages(level: tuple[int, int, int, int, bool]) -> list[dict[str, str]]:
            return [*self._base(thread, ctx, level), {"role": "assistant", "content": failed},
                    {"role": "user", "content": self._feedback(feedback, level)}]

        try:
            return self._ask(thread, ctx, messages)
        except ServiceDown as exc:
            offline = self._go_offline(exc)
            return offline.revise(intent, spec, failure, ctx) or _offline_plan(offline, intent, ctx)

    # -- the pipeline's view of replies rejected here --------------------------------------------------------
    def take_rejected(self) -> list[LoadFailure]:
        """Replies rejected (and shown) since the last call, oldest first."""
        out, self._rejected = self._rejected, []
        return out

    # -- conversation ------------------------------------------------------------------------------------------
    def _start(self, text: str, ctx: PlanContext) -> _Thread:
        thread = _Thread(text, P.gather(text, ctx))
        self._thread = thread
        return thread

    def _base(self, thread: _Thread, ctx: PlanContext, level: tuple[int, int, int, int, bool]) -> list[dict[str, str]]:
        if thread.base:
            return thread.base
        return [{"role": "system", "content": P.system_prompt(ctx.catalog)},
                {"role": "user", "content": P.user_prompt(thread.context, ctx.catalog, level)}]

    def _plan_messages(self, thread: _Thread, ctx: PlanContext, level: tuple[int, int, int, int, bool]
                       ) -> list[dict[str, str]]:
        return self._base(thread, ctx, level)

    @staticmethod
    def _feedback(feedback: dict[str, Any], level: tuple[int, int, int, int, bool]) -> str:
        # Deeper levels also cut the echoed program and log.
        scale = {0: 1.0, 1: 1.0, 2: 0.8, 3: 0.6, 4: 0.5, 5: 0.4, 6: 0.3, 7: 0.2}.get(P.LEVELS.index(level), 0.2)
        values = dict(feedback)
        values["log"] = P.clip(values.get("log", ""), int(MAX_LOG_ECHO * scale))
        values["message"] = P.clip(values.get("message", ""), int(MAX_LOG_ECHO * scale))
        values["program"] = P.clip(values.get("program", ""), int(MAX_PROGRAM_ECHO * scale)) if scale >= 0.5 else ""
        return P.feedback_prompt(**values)

    def _fit(self, make: Any) -> list[dict[str, str]]:
        """The richest messages that fit the request budget."""
        fmt = P.response_format() if self.mode == "json_schema" else None
        messages: list[dict[str, str]] = []
        for level in P.LEVELS:
            messages = make(level)
            if P.request_size(self.model, messages, fmt) <= P.REQUEST_BUDGET:
                return messages
        # Still too big (a huge error log): cut the last message.
        over = P.request_size(self.model, messages, fmt) - P.REQUEST_BUDGET
        last = messages[-1]["content"]
        messages[-1] = {**messages[-1], "content": P.clip(last, max(400, len(last) - over - 200))}
        return messages

    def _ask(self, thread: _Thread, ctx: PlanContext, make: Any) -> ProgramSpec | None:
        """Ask until a reply is a valid spec or the budget is spent (None). Rejections go back with their error."""
        total = max(1, self.retries + 1)
        extra: list[dict[str, str]] = []
        while thread.replies < total:
            messages = self._fit(lambda level, extra=extra: make(level) + extra)
            thread.replies += 1
            content = ""
            try:
                content = self._complete(messages)
                spec = parse_reply(content)
                text = P.spec_json(spec)
                if text in thread.tried:
                    raise ReplyError("the same spec as an attempt that already failed")
            except ReplyError as exc:
                failure = LoadFailure(backend="model", stage="reply", message=_first_line(str(exc)), log=str(exc))
                thread.failures.append(failure)
                self._rejected.append(failure)
                self.ui.attempt_failed(thread.replies, total, failure)
                earlier = [P.shorten(f.summary(), 200) for f in thread.failures[:-1]][-4:]
                same = str(exc).startswith("the same spec")
                reply = {"role": "assistant", "content": P.clip(content or "(empty)", MAX_REPLY_ECHO)}
                fb = P.feedback_prompt("same" if same else "reply", message=P.clip(str(exc), MAX_LOG_ECHO),
                                       earlier=earlier)
                extra = [reply, {"role": "user", "content": fb}]
                continue
            thread.tried.add(text)
            if ctx.backend in ("bpftrace", "bcc") and spec.backend != ctx.backend:
                from . import edits

                spec = edits.set_backend(spec, ctx.backend)
            return spec
        return None

    def _exhausted(self, thread: _Thread) -> GpttraceError:
        listing = "\n".join(f"  {i}. {f.summary()}" for i, f in enumerate(thread.failures, 1))
        return GpttraceError(f"the model gave no usable spec after {len(thread.failures)} attempt(s):\n{listing}",
                             "try rephrasing, raise --retries, try another -m/--model, or --offline",
                             ExitCode.TRACE_FAILED)

    def _go_offline(self, exc: ServiceDown) -> Any:
        from .offline import OfflinePlanner

        self.ui.warn(f"gpttrace: {exc}; planning offline instead")
        self._fallback = OfflinePlanner()
        self.name = "offline"  # what the chat REPL checks to refine without a model
        return self._fallback

    # -- talking to the service -------------------------------------------------------------------------------
    @property
    def ui(self) -> Any:
        if self._ui is None:
            from ..ui import UI

            self._ui = UI()
        return self._ui

    @ui.setter
    def ui(self, value: Any) -> None:
        """Where rejected replies and warnings go (the pipeline and the chat REPL pass theirs)."""
        self._ui = value

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.api_key, self.base_url, self.timeout, self.max_retries)
        return self._client

    @property
    def where(self) -> str:
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"

    def _complete(self, messages: list[dict[str, str]]) -> str:
        """The text of one reply, with the API key taken out wherever the server echoed it (in the reply and in
        the messages of errors), so that it is never printed or logged."""
        try:
            return self._redact(self._complete_raw(messages))
        except GpttraceError as exc:
            exc.message, exc.hint = self._redact(exc.message), self._redact(exc.hint) if exc.hint else exc.hint
            exc.args = (exc.message,)
            raise
        except (ReplyError, ServiceDown) as exc:
            exc.args = tuple(self._redact(str(a)) for a in exc.args)
            raise

    def _redact(self, text: str) -> str:
        key = self.api_key or ""
        return text.replace(key, "[the API key]") if len(key) >= 8 and key in text else text

    def _complete_raw(self, messages: list[dict[str, str]]) -> str:
        """The text of one reply. Raises ReplyError, ServiceDown, or GpttraceError for what retrying cannot fix."""
        try:
            import openai
        except ImportError:
            raise ServiceDown("the openai package is not installed (pip install openai)") from None

        busy = 0
        while True:
            self.request_sizes.append(P.request_size(self.model, messages,
                                                     P.response_format() if self.mode == "json_schema" else None))
            try:
                completion = self._send(messages)
            except _reply_too_large():
                raise GpttraceError(f"the model service at {self.where} sent more than "
                                    f"{MAX_REPLY_BYTES >> 20} MiB: not read further",
                                    "check base_url and -m/--model, or use --offline") from None
            except openai.LengthFinishReasonError:
                raise ReplyError("the reply was cut off at the model's output limit; return a smaller spec") from None
            except openai.ContentFilterFinishReasonError:
                raise GpttraceError("the model service's content filter stopped the reply",
                                    "rephrase the request, or use --offline", ExitCode.USAGE) from None
            except openai.BadRequestError as exc:
                if _about_response_format(exc) and self.mode != MODES[-1]:
                    old, self.mode = self.mode, MODES[MODES.index(self.mode) + 1]
                    self.ui.talk(f"(the model service does not take {old} replies; asking for {self.mode} instead)")
                    continue
                raise GpttraceError(f"the model service rejected the request: {_api_message(exc)}",
                                    f"check -m/--model ({self.model}) and base_url ({self.where})") from None
            except openai.AuthenticationError as exc:
                raise UsageError(f"the model service at {self.where} refused the API key: {_api_message(exc)}",
                                 "set OPENAI_API_KEY or `gpttrace config set api_key`, or use --offline") from None
            except openai.PermissionDeniedError as exc:
                raise UsageError(f"the model service refused access: {_api_message(exc)}",
                                 f"check the key's permissions for model {self.model}, or use --offline") from None
            except openai.NotFoundError as exc:
                raise UsageError(f"the model service has no model {self.model!r} (or {self.where} is not an "
                                 f"OpenAI-compatible endpoint): {_api_message(exc)}",
                                 "pick another -m/--model; OpenAI-compatible base URLs usually end in /v1") from None
            except openai.RateLimitError as exc:
                if _code(exc) == "insufficient_quota":
                    raise GpttraceError(f"the model service says the quota is used up: {_api_message(exc)}",
                                        "check the account's billing, or use --offline") from None
                busy = self._wait_busy(busy, "HTTP 429, rate limited")
                continue
            except openai.APITimeoutError:
                # The SDK already waited max_retries more times: another minute of silence helps nobody.
                tries = self.max_retries + 1
                raise ServiceDown(f"the model service at {self.where} gave no answer within {self.timeout:g} s "
                                  f"({tries} {'try' if tries == 1 else 'tries'})") from None
            except openai.APIConnectionError as exc:
                raise ServiceDown(f"cannot reach the model service at {self.where} ({_cause(exc)})") from None
            except openai.APIStatusError as exc:
                if exc.status_code >= 500:
                    busy = self._wait_busy(busy, f"HTTP {exc.status_code}")
                    continue
                raise GpttraceError(f"the model service answered HTTP {exc.status_code}: {_api_message(exc)}",
                                    f"check base_url ({self.where}) and -m/--model ({self.model})") from None
            return self._content(completion)

    def _wait_busy(self, tries: int, reason: str) -> int:
        if tries >= OWN_RETRIES:
            raise ServiceDown(f"the model service at {self.where} keeps failing ({reason})")
        wait = min(10.0, backoff_base() * (2 ** tries))
        self.ui.warn(f"(model service busy: {reason}; retrying in {wait:.1f} s)")
        time.sleep(wait)
        return tries + 1

    def _send(self, messages: list[dict[str, str]]) -> Any:
        completions = self.client.chat.completions
        if self.mode == "json_schema":
            parse = getattr(completions, "parse", None)
            if parse is None:  # openai < 1.92 has it under client.beta
                parse = self.client.beta.chat.completions.parse
            return parse(model=self.model, messages=messages, response_format=P.response_format())
        extra = {"response_format": {"type": "json_object"}} if self.mode == "json_object" else {}
        return completions.create(model=self.model, messages=messages, **extra)

    def _content(self, completion: Any) -> str:
        if not getattr(completion, "choices", None):
            raise ReplyError("the reply had no choices")
        choice = completion.choices[0]
        message = choice.message
        refusal = getattr(message, "refusal", None)
        if refusal:
            raise GpttraceError(f"the model refused: {' '.join(str(refusal).split())[:300]}",
                                "rephrase the request (say what to observe, read-only), or use --offline",
                                ExitCode.USAGE)
        if getattr(choice, "finish_reason", None) == "length":
            raise ReplyError("the reply was cut off at the model's output limit; return a smaller spec")
        content = message.content
        if not content or not content.strip():
            raise ReplyError("the reply was empty")
        return content


def make_client(api_key: str | None, base_url: str | None, timeout: float, max_retries: int) -> Any:
    """An OpenAI client whose retry waits are bounded (a Retry-After of minutes is not honoured in full)."""
    import openai

    cap = 8.0 * backoff_base()

    class _Client(openai.OpenAI):
        def _calculate_retry_timeout(self, *args: Any, **kwargs: Any) -> float:  # SDK internal; unused if renamed
            return min(float(super()._calculate_retry_timeout(*args, **kwargs)), cap)

    class _Capped(openai.DefaultHttpxClient):  # type: ignore[misc,valid-type]
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
                        raise _reply_too_large()(f"the reply is larger than {MAX_REPLY_BYTES} bytes")
            finally:
                response.close()
            response._content = bytes(body)  # what Response.read() returns
            return response

    kwargs: dict[str, Any] = {"api_key": api_key or "not-needed", "timeout": timeout, "max_retries": max_retries,
                              "http_client": _Capped()}
    if base_url:
        kwargs["base_url"] = base_url
    try:
        return _Client(**kwargs)
    except openai.OpenAIError as exc:
        raise UsageError(f"cannot set up the model client: {exc}", "check `gpttrace config`") from None


# -- replies ------------------------------------------------------------------------------------------------------
def parse_reply(content: str) -> ProgramSpec:
    """A spec from a reply's text: JSON (possibly fenced, possibly wrapped in {"spec": ...}) validated by pydantic."""
    text = content.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fenced:
        text = fenced.group(1).strip()
    try:
        data = json.loads(text)
    except ValueError as exc:
        start, end = text.find("{"), text.rfind("}")
        try:
            if start < 0 or end <= start:
                raise ValueError
            data = json.loads(text[start:end + 1])
        except ValueError:
            raise ReplyError(f"the reply is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                             "reply with the spec as one JSON object") from None
    if isinstance(data, dict) and len(data) == 1:
        (key, inner), = data.items()
        if key.lower() in ("spec", "programspec", "program_spec") and isinstance(inner, dict):
            data = inner
    if not isinstance(data, dict):
        raise ReplyError(f"the reply is a JSON {type(data).__name__}, not an object with the spec's fields")
    for hidden in P.HIDDEN_FIELDS:
        data.pop(hidden, None)
    try:
        return ProgramSpec.model_validate(data)
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


def _first_line(text: str) -> str:
    lines = [ln.lstrip("- ") for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return lines[0] + " " + "; ".join(lines[1:3]) + (" ..." if len(lines) > 3 else "")
    return lines[0] if lines else text


def _check_intent(intent: str) -> str:
    from .intent import MAX_INTENT

    text = " ".join("".join(c if c.isprintable() or c in "\t\n" else " " for c in intent).split())
    if not text:
        raise UsageError("the intent is empty", 'say what to trace, e.g. gpttrace "trace files opened by nginx"')
    if len(text) > MAX_INTENT:
        raise UsageError(f"the intent is {len(text)} characters long; the limit is {MAX_INTENT}",
                         "say what to trace in a sentence or two")
    return text


def _offline_plan(offline: Any, intent: str, ctx: PlanContext) -> ProgramSpec | None:
    try:
        return offline.plan(intent, ctx)
    except GpttraceError:
        return None


# -- API errors ------------------------------------------------------------------------------------------------------
def _api_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return " ".join(str(err["message"]).split())[:300]
        if isinstance(err, str):
            return " ".join(err.split())[:300]
    return " ".join(str(getattr(exc, "message", exc)).split())[:300]


def _code(exc: Any) -> str | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return err.get("code") or err.get("type")
    return getattr(exc, "code", None)


def _about_response_format(exc: Any) -> bool:
    """A 400 that complains about response_format / json_schema (servers without structured output)."""
    parts = [str(exc), _api_message(exc)]
    body = getattr(exc, "body", None)
    if body is not None:
        try:
            parts.append(json.dumps(body))
        except (TypeError, ValueError):
            parts.append(str(body))
    text = " ".join(parts).lower()
    return any(w in text for w in ("response_format", "response format", "json_schema", "json schema", "json_object",
                                   "structured output", "guided_json", "grammar"))


def _cause(exc: BaseException) -> str:
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    text = str(seen) or type(seen).__name__
    m = re.search(r"\[Errno \d+\] ([^'\]\)]+)", text)
    if m:
        return m.group(1).strip().lower()
    return " ".join(text.split())[:120] or "connection error"
