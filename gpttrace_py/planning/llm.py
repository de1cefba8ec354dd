"""The LLM planner: a model fills the ProgramSpec through the OpenAI chat-completions API.

Works with OpenAI and with OpenAI-compatible servers (llama.cpp, vLLM, ollama): ``OPENAI_BASE_URL`` or
``gpttrace config set base_url ...``. The reply format is asked for as a JSON schema in the shape OpenAI's strict
mode accepts (``llm_prompt.response_schema``) and checked by pydantic here. A server whose error says it cannot
take that ``response_format`` (a 4xx or a 5xx) gets JSON mode, and one that rejects that too gets plain
instructions; every reply is validated the same way. Every request carries ``max_tokens`` and a low temperature.

Every reply that is not a valid spec, leaves the request's subject out (planning/plan.py), names a probe or field
this kernel lacks, or fails to load goes back to the model with the error text, within one budget of
``retries + 1`` replies per request (``--retries``). Replies rejected here are shown at once and handed to the
pipeline through ``take_rejected()``, so its attempt numbers and final list include them.

The SDK never retries (a generation abandoned on timeout would pile up on a local server); 429 and other 5xx
get ``max_retries`` tries of ours, with waits of ``GPTTRACE_LLM_BACKOFF`` (seconds, default 1) doubling, and the
server's own words shown. While a reply is awaited, stderr says so every few seconds (not under ``--json``).
A service that cannot be reached, times out or keeps failing, and a model whose every reply was unusable, hand
the request to the offline planner with a message saying why, unless ``fallback`` is off (``--no-fallback``):
then the request fails (exit 1). A refusal is an error (exit 2).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from ..errors import ExitCode, GpttraceError, UsageError
from ..run.failure import LoadFailure
from ..spec import ProgramSpec
from . import llm_prompt as P
from .base import PlanContext, PlannerBase, ReplySettings
from .llm_client import (
    MAX_REPLY_BYTES,
    ServiceDown,
    about_response_format,
    api_message,
    cause,
    error_code,
    make_client,
    reply_too_large,
    retry_after,
)
from .llm_reply import ReplyError, parse_reply

if TYPE_CHECKING:
    from ..ui import UI
    from .offline import OfflinePlanner

Level = tuple[int, int, int, int, bool]  # how much of the context a prompt carries (llm_prompt.LEVELS)
MakeMessages = Callable[[Level], list[dict[str, str]]]

MODES = ("json_schema", "json_object", "text")
TEMPERATURE = 0.2  # low: a spec is an answer, not prose; not 0, so a retry after an error can differ
MAX_WAIT = 10.0  # seconds: the longest wait before retrying a busy service (a Retry-After of minutes is cut)
PROGRESS_FIRST, PROGRESS_EVERY = 2.0, 10.0  # seconds of waiting before the first progress line, and between lines
MAX_SERVER_ECHO = 300  # characters of a server's error message shown
MAX_REPLY_ECHO = 3000  # characters of an invalid reply sent back to the model
MAX_LOG_ECHO = 2500  # characters of a load error log sent back
MAX_PROGRAM_ECHO = 2500

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


class LLMPlanner(PlannerBase):
    """Plans with a chat model; see the module docstring. ``client`` may be any object with the OpenAI
    client's ``chat.completions`` interface."""

    def __init__(self, model: str | None = None, *, settings: dict[str, Any] | None = None, client: Any = None,
                 ui: UI | None = None, retries: int = 3, fallback: bool = True) -> None:
        from .. import config

        s = settings if settings is not None else config.settings({"model": model})
        self.model: str = model or s.get("model") or config.DEFAULT_MODEL
        self.api_key: str | None = s.get("api_key")
        self.base_url: str | None = s.get("base_url")
        self.timeout = float(s.get("timeout") or config.DEFAULT_TIMEOUT)
        max_retries = s.get("max_retries")
        self.max_retries = int(max_retries if max_retries is not None else config.DEFAULT_MAX_RETRIES)
        self.max_tokens = int(s.get("max_tokens") or config.DEFAULT_MAX_TOKENS)
        self.retries = retries
        self.fallback = fallback  # plan offline when the model cannot give a usable spec (--no-fallback: False)
        self.progress = True  # say on stderr that a reply is awaited (the pipeline turns it off under --json)
        self.mode = "json_schema"
        self.limit_key = "max_tokens"  # or max_completion_tokens, for services that want that name
        self.temperature: float | None = TEMPERATURE  # None for services that refuse to set it
        self.request_sizes: list[int] = []  # bytes of every request body sent, for diagnostics and tests
        self._client = client
        self._ui = ui
        # the offline planner: for good, once the service was found down; for the current request only, when the
        # replies were unusable
        self._fallback: OfflinePlanner | None = None
        self._offline_now: OfflinePlanner | None = None
        self._thread: _Thread | None = None
        self._rejected: list[LoadFailure] = []

    @property
    def name(self) -> str:
        """Where the current plan comes from, as shown with the program (and checked by the chat REPL)."""
        if self._fallback is not None:
            return "offline"
        if self._offline_now is not None:
            return f"offline (model {self.model} gave no usable spec)"
        return f"model {self.model}"

    # -- Planner protocol ----------------------------------------------------------------------------------
    def plan(self, intent: str, ctx: PlanContext) -> ProgramSpec:
        if self._fallback is not None:
            return self._fallback.plan(intent, ctx)
        text = _check_intent(intent)
        self._rejected = []
        self._offline_now = None
        thread = self._start(text, ctx)
        try:
            spec = self._ask(thread, ctx, lambda level: self._plan_messages(thread, ctx, level), covers=intent)
        except ServiceDown as exc:
            return self._go_offline(exc).plan(intent, ctx)
        if spec is None:
            return self._offline_for_request(thread).plan(intent, ctx)
        ctx.source = "llm"
        return spec

    def refine(self, request: str, spec: ProgramSpec, ctx: PlanContext) -> ProgramSpec:
        if self._fallback is not None:
            return self._fallback.refine(request, spec, ctx)
        self._offline_now = None
        text = _check_intent(request)
        rc = P.gather(text, ctx, with_examples=False, current=spec, limit=10)
        thread = _Thread(text, rc, tried={P.spec_json(spec)})
        history = [" ".join(i.split())[:200] for i in ctx.conversation.intents[-4:]]
        errors = [P.shorten(f.summary(), 300) for f in ctx.conversation.failures[-3:]]

        def messages(level: Level) -> list[dict[str, str]]:
            user = P.refine_prompt(text, spec, rc, ctx.catalog, history, errors, level)
            return [{"role": "system", "content": P.system_prompt(ctx.catalog)}, {"role": "user", "content": user}]

        try:
            new = self._ask(thread, ctx, messages)
        except ServiceDown as exc:
            return self._go_offline(exc).refine(request, spec, ctx)
        finally:
            self._rejected = []  # shown already; a refinement is not an attempt of the pipeline's next trace
        if new is None:
            return self._offline_for_request(thread).refine(request, spec, ctx)
        # The refined spec is attempt 1 of whatever runs it next; a load failure continues this thread.
        thread.base = messages(P.LEVELS[2])
        thread.replies, thread.failures = 1, []
        self._thread = thread
        return new

    def revise(self, intent: str, spec: ProgramSpec, failure: LoadFailure, ctx: PlanContext) -> ProgramSpec | None:
        offline = self._fallback or self._offline_now
        if offline is not None:
            return offline.revise(intent, spec, failure, ctx)
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

        def messages(level: Level) -> list[dict[str, str]]:
            return [*self._base(thread, ctx, level), {"role": "assistant", "content": failed},
                    {"role": "user", "content": self._feedback(feedback, level)}]

        try:
            return self._ask(thread, ctx, messages)
        except ServiceDown as exc:
            offline = self._go_offline(exc)
            return offline.revise(intent, spec, failure, ctx) or _offline_plan(offline, intent, ctx)

    # -- the trace service's view: its settings, and replies rejected here -----------------------------------
    def prepare(self, settings: ReplySettings) -> None:
        self.retries = settings.retries
        self.ui = settings.ui
        self.progress = settings.progress

    def take_rejected(self) -> list[LoadFailure]:
        """Replies rejected (and shown) since the last call, oldest first."""
        out, self._rejected = self._rejected, []
        return out

    # -- conversation ------------------------------------------------------------------------------------------
    def _start(self, text: str, ctx: PlanContext) -> _Thread:
        thread = _Thread(text, P.gather(text, ctx))
        self._thread = thread
        return thread

    def _base(self, thread: _Thread, ctx: PlanContext, level: Level) -> list[dict[str, str]]:
        if thread.base:
            return thread.base
        return [{"role": "system", "content": P.system_prompt(ctx.catalog)},
                {"role": "user", "content": P.user_prompt(thread.context, ctx.catalog, level)}]

    def _plan_messages(self, thread: _Thread, ctx: PlanContext, level: Level
                       ) -> list[dict[str, str]]:
        return self._base(thread, ctx, level)

    @staticmethod
    def _feedback(feedback: dict[str, Any], level: Level) -> str:
        # Deeper levels also cut the echoed program and log.
        scale = {0: 1.0, 1: 1.0, 2: 0.8, 3: 0.6, 4: 0.5, 5: 0.4, 6: 0.3, 7: 0.2}.get(P.LEVELS.index(level), 0.2)
        values = dict(feedback)
        values["log"] = P.clip(values.get("log", ""), int(MAX_LOG_ECHO * scale))
        values["message"] = P.clip(values.get("message", ""), int(MAX_LOG_ECHO * scale))
        values["program"] = P.clip(values.get("program", ""), int(MAX_PROGRAM_ECHO * scale)) if scale >= 0.5 else ""
        return P.feedback_prompt(**values)

    def _fit(self, make: MakeMessages) -> list[dict[str, str]]:
        """The richest messages that fit the request budget."""
        fmt = P.response_format(self.mode)
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

    def _ask(self, thread: _Thread, ctx: PlanContext, make: MakeMessages, covers: str | None = None
             ) -> ProgramSpec | None:
        """Ask until a reply is a valid spec or the budget is spent (None). Rejections go back with their error.
        With ``covers`` (the request), a spec must also account for the request's subject (planning/plan.py)."""
        total = max(1, self.retries + 1)
        extra: list[dict[str, str]] = []
        while thread.replies < total:
            messages = self._fit(partial(_with_extra, make, extra))
            thread.replies += 1
            content = ""
            try:
                content = self._complete(messages, thread.replies, total)
                spec = parse_reply(content)
                text = P.spec_json(spec)
                if text in thread.tried:
                    raise ReplyError("the same spec as an attempt that already failed")
                if covers is not None:
                    _check_coverage(covers, spec, ctx)
            except ReplyError as exc:
                failure = LoadFailure(backend="model", stage="reply", message=_first_line(str(exc)), log=str(exc))
                thread.failures.append(failure)
                self._rejected.append(failure)
                self.ui.attempt_failed(thread.replies, total, failure)
                earlier = [P.shorten(f.summary(), 200) for f in thread.failures[:-1]][-4:]
                same = str(exc).startswith("the same spec")
                said = content or exc.reply or "(empty)"
                reply = {"role": "assistant", "content": P.clip(said, MAX_REPLY_ECHO)}
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

    def _offline_for_request(self, thread: _Thread) -> OfflinePlanner:
        """The offline planner for this request, after every reply of the model was unusable (or an error)."""
        last = thread.failures[-1].summary() if thread.failures else "no reply"
        if not self.fallback:
            raise self._exhausted(thread)
        from .offline import OfflinePlanner

        self.ui.warn(f"gpttrace: the model gave no usable spec in {len(thread.failures)} "
                     f"{'reply' if len(thread.failures) == 1 else 'replies'} (last: {P.shorten(last, 200)}); "
                     "using the offline planner's plan instead")
        self._offline_now = OfflinePlanner()
        self._rejected = []  # shown already; the offline plan gets the whole attempt budget of its own
        return self._offline_now

    def _exhausted(self, thread: _Thread) -> GpttraceError:
        listing = "\n".join(f"  {i}. {f.summary()}" for i, f in enumerate(thread.failures, 1))
        return GpttraceError(f"the model gave no usable spec after {len(thread.failures)} attempt(s):\n{listing}",
                             "try rephrasing, raise --retries, try another -m/--model, or drop --no-fallback "
                             "to use the offline plan", ExitCode.TRACE_FAILED)

    def _go_offline(self, exc: ServiceDown) -> OfflinePlanner:
        if not self.fallback:
            raise GpttraceError(f"{exc}; not planning offline (--no-fallback)",
                                f"check that the model service at {self.where} is up, or drop --no-fallback",
                                ExitCode.TRACE_FAILED) from None
        from .offline import OfflinePlanner

        self.ui.warn(f"gpttrace: {exc}; planning offline instead")
        self._fallback = OfflinePlanner()
        return self._fallback

    # -- talking to the service -------------------------------------------------------------------------------
    @property
    def ui(self) -> UI:
        if self._ui is None:
            from ..ui import UI

            self._ui = UI()
        ui: UI = self._ui
        return ui

    @ui.setter
    def ui(self, value: UI | None) -> None:
        """Where rejected replies and warnings go (the pipeline and the chat REPL pass theirs)."""
        self._ui = value

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.api_key, self.base_url, self.timeout)
        return self._client

    @property
    def where(self) -> str:
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"

    def _complete(self, messages: list[dict[str, str]], attempt: int = 1, total: int = 1) -> str:
        """The text of one reply, with the API key taken out wherever the server echoed it (in the reply and in
        the messages of errors), so that it is never printed or logged."""
        try:
            return self._redact(self._complete_raw(messages, attempt, total))
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

    def _complete_raw(self, messages: list[dict[str, str]], attempt: int = 1, total: int = 1) -> str:
        """The text of one reply. Raises ReplyError, ServiceDown, or GpttraceError for what retrying cannot fix."""
        try:
            import openai
        except ImportError:
            raise ServiceDown("the openai package is not installed (pip install openai)") from None

        busy = 0
        while True:
            body = self._body(messages)
            self.request_sizes.append(len(json.dumps(body).encode()))
            try:
                with self._waiting(attempt, total):
                    completion = self.client.chat.completions.create(**body)
            except reply_too_large():
                raise GpttraceError(f"the model service at {self.where} sent more than "
                                    f"{MAX_REPLY_BYTES >> 20} MiB: not read further",
                                    "check base_url and -m/--model, or use --offline") from None
            except openai.APITimeoutError:
                self._drop_client()  # the abandoned request's connection is closed, not reused
                raise ServiceDown(f"the model service at {self.where} gave no answer within {self.timeout:g} s "
                                  "(raise `gpttrace config set timeout`, or lower max_tokens)") from None
            except openai.APIConnectionError as exc:
                raise ServiceDown(f"cannot reach the model service at {self.where} ({cause(exc)})") from None
            except openai.APIStatusError as exc:
                if self._adapt(exc):
                    continue
                busy = self._status_error(exc, busy)
                continue
            return self._content(completion)

    def _body(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, self.limit_key: self.max_tokens}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        fmt = P.response_format(self.mode)
        if fmt is not None:
            body["response_format"] = fmt
        return body

    def _adapt(self, exc: Any) -> bool:
        """Change the request as the server's error asks, once per kind of change; whether to send it again."""
        said = api_message(exc)
        if about_response_format(exc) and self.mode != MODES[-1]:
            old, self.mode = self.mode, MODES[MODES.index(self.mode) + 1]
            self.ui.talk(f"(the model service does not take {old} replies: HTTP {exc.status_code}: "
                         f"{P.shorten(said, MAX_SERVER_ECHO)}; asking for {self.mode} instead)")
            return True
        text = said.lower()
        if exc.status_code == 400 and self.limit_key == "max_tokens" and "max_completion_tokens" in text:
            self.limit_key = "max_completion_tokens"
            return True
        if exc.status_code == 400 and self.temperature is not None and "temperature" in text:
            self.temperature = None
            return True
        return False

    def _status_error(self, exc: Any, busy: int) -> int:
        """Raise what an HTTP error means for the user; for a busy service, wait and return the new try count."""
        said = api_message(exc)
        code = exc.status_code
        if code == 401:
            raise UsageError(f"the model service at {self.where} refused the API key: {said}",
                             "set OPENAI_API_KEY or `gpttrace config set api_key`, or use --offline")
        if code == 403:
            raise UsageError(f"the model service refused access: {said}",
                             f"check the key's permissions for model {self.model}, or use --offline")
        if code == 404:
            raise UsageError(f"the model service has no model {self.model!r} (or {self.where} is not an "
                             f"OpenAI-compatible endpoint): {said}",
                             "pick another -m/--model; OpenAI-compatible base URLs usually end in /v1")
        if code == 429 and error_code(exc) == "insufficient_quota":
            raise GpttraceError(f"the model service says the quota is used up: {said}",
                                "check the account's billing, or use --offline")
        if code == 429 or code >= 500:
            return self._wait_busy(busy, f"HTTP {code}: {P.shorten(said, MAX_SERVER_ECHO)}", retry_after(exc))
        if code == 400:
            raise GpttraceError(f"the model service rejected the request: {said}",
                                f"check -m/--model ({self.model}) and base_url ({self.where})")
        raise GpttraceError(f"the model service answered HTTP {code}: {said}",
                            f"check base_url ({self.where}) and -m/--model ({self.model})")

    def _wait_busy(self, tries: int, reason: str, asked: float | None) -> int:
        if tries >= self.max_retries:
            raise ServiceDown(f"the model service at {self.where} keeps failing ({reason})")
        wait = min(MAX_WAIT, asked if asked is not None else backoff_base() * (2 ** tries))
        self.ui.warn(f"(model service busy: {reason}; retrying in {wait:.1f} s, {tries + 1} of {self.max_retries})")
        time.sleep(wait)
        return tries + 1

    @contextmanager
    def _waiting(self, attempt: int, total: int) -> Iterator[None]:
        """Progress on stderr while a reply is awaited: after PROGRESS_FIRST seconds, then every PROGRESS_EVERY."""
        if not self.progress:
            yield
            return
        done = threading.Event()
        began = time.monotonic()
        said: list[float] = []

        def tick() -> None:
            delay = PROGRESS_FIRST
            while not done.wait(delay):
                said.append(time.monotonic() - began)
                self.ui.talk(f"(waiting for model {self.model} at {self.where}: attempt {attempt} of {total}, "
                             f"{said[-1]:.0f} s)")
                delay = PROGRESS_EVERY

        ticker = threading.Thread(target=tick, name="gpttrace-llm-progress", daemon=True)
        ticker.start()
        try:
            yield
        finally:
            done.set()
            ticker.join()
            if said:
                self.ui.talk(f"(model {self.model} answered after {time.monotonic() - began:.1f} s)")

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        close = getattr(client, "close", None)
        if close is not None:
            close()

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
        finish = getattr(choice, "finish_reason", None)
        if finish == "length":
            raise ReplyError(f"the reply was cut off at {self.max_tokens} tokens; return a smaller spec "
                             "(leave optional fields out)", reply=message.content or "")
        if finish == "content_filter":
            raise GpttraceError("the model service's content filter stopped the reply",
                                "rephrase the request, or use --offline", ExitCode.USAGE)
        content = message.content
        if not content or not content.strip():
            raise ReplyError("the reply was empty")
        return str(content)


def _first_line(text: str) -> str:
    lines = [ln.lstrip("- ") for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return lines[0] + " " + "; ".join(lines[1:3]) + (" ..." if len(lines) > 3 else "")
    return lines[0] if lines else text


def _check_intent(intent: str) -> str:
    from .intent import checked_text

    return checked_text(" ".join("".join(c if c.isprintable() or c in "\t\n" else " " for c in checked_text(intent))
                                 .split()))


def _check_coverage(request: str, spec: ProgramSpec, ctx: PlanContext) -> None:
    """The check every plan gets (planning/plan.py), made here so that a miss goes back to the model."""
    from ..errors import UnmappableIntent
    from .plan import check_plan

    ctx.source = "llm"
    try:
        check_plan(request, spec, ctx)
    except UnmappableIntent as exc:
        raise ReplyError(f"the spec does not trace what was asked: {exc.message}; use probes and fields that "
                         "observe every part of the request") from None


def _offline_plan(offline: OfflinePlanner, intent: str, ctx: PlanContext) -> ProgramSpec | None:
    try:
        return offline.plan(intent, ctx)
    except GpttraceError:
        return None


def _with_extra(make: MakeMessages, extra: list[dict[str, str]], level: Level) -> list[dict[str, str]]:
    return make(level) + extra
