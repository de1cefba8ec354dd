"""The prompt_toolkit REPL around a ChatSession.

History lives in the XDG data dir (``chat_history``), suggestions come from it, Tab completes slash-commands
and probe names (tracepoints read lazily from tracefs). Esc-Enter, or a line ending in a backslash, adds a
new line. Ctrl-C clears the line, or stops a running trace when the line is empty; it never ends the session.
Ctrl-D on an empty line leaves. While a trace runs its events are printed above the prompt
(``patch_stdout``), so the user can keep typing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter, ThreadedCompleter
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.patch_stdout import patch_stdout

from ..paths import data_home
from . import commands
from .session import ChatSession

PROMPT = "gpttrace> "
CONTINUATION = "........> "
MAX_PROBE_COMPLETIONS = 60


class ChatCompleter(Completer):
    """Slash-commands and their arguments; tracepoint names in free text (``sched:sched_sw`` → ``sched_switch``)."""

    def __init__(self, probe_names: Callable[[], list[str]], lessons: Callable[[], list[str]]) -> None:
        self._probe_names = probe_names
        self._lessons = lessons
        self._names: list[str] | None = None
        self._paths = PathCompleter(expanduser=True)

    def names(self) -> list[str]:
        if self._names is None:
            try:
                self._names = self._probe_names()
            except Exception:
                self._names = []
        return self._names

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        if text.startswith("/"):
            name, space, arg = text[1:].partition(" ")
            if not space:
                for c in commands.COMMANDS:
                    for n in (c.name, *c.aliases):
                        if n.startswith(name.lower()) and (n == c.name or name):
                            yield Completion(f"/{n}", start_position=-len(text), display_meta=c.help[:60])
                return
            cmd = commands.lookup(name)
            if cmd is None:
                return
            if cmd.name == "backend":
                for b in commands.BACKENDS:
                    if b.startswith(arg):
                        yield Completion(b, start_position=-len(arg))
            elif cmd.name == "lesson":
                for n in self._lessons():
                    if n.startswith(arg):
                        yield Completion(n, start_position=-len(arg))
            elif cmd.name == "save":
                sub = Document(arg, len(arg))
                yield from self._paths.get_completions(sub, complete_event)
            return
        word = document.get_word_before_cursor(WORD=True)
        yield from self.probe_completions(word)

    def probe_completions(self, word: str) -> Iterable[Completion]:
        if len(word) < 3 or not (":" in word or "_" in word):
            return
        prefix = word.removeprefix("tracepoint:").removeprefix("t:")
        n = 0
        for full in self.names():
            _, _, name = full.partition(":")
            if full.startswith(prefix) or (":" not in prefix and name.startswith(prefix)):
                text = f"tracepoint:{full}" if word.startswith(("tracepoint:", "t:")) else full
                yield Completion(text, start_position=-len(word), display_meta="tracepoint")
                n += 1
                if n >= MAX_PROBE_COMPLETIONS:
                    return


def _probe_names(session: ChatSession) -> Callable[[], list[str]]:
    def names() -> list[str]:
        return [f"{c}:{n}" for c, n in session.catalog.tracepoints.all_names()]

    return names


def _lessons() -> list[str]:
    try:
        from ..corpus import load

        return sorted({e.lesson for e in load() if e.lesson}, key=int)
    except Exception:
        return []


def history() -> History:
    """The chat history file, opened once through safefs and then held by descriptor (prompt_toolkit's
    FileHistory opens it by path for each line: a symlink swapped in would make root append to any file)."""
    from .. import safefs

    path = data_home() / "chat_history"
    try:
        with safefs.TrustedDir(path.parent, create=True) as d:
            return HeldHistory(d.open_append(path.name), str(path))
    except OSError:
        return InMemoryHistory()


class HeldHistory(FileHistory):
    """FileHistory's format, read and appended through one descriptor."""

    MAX_BYTES = 16 << 20

    def __init__(self, fd: int, filename: str) -> None:
        self.fd = fd
        super().__init__(filename)

    def load_history_strings(self) -> Iterable[str]:
        import os

        data = os.pread(self.fd, self.MAX_BYTES, 0).decode("utf-8", errors="replace")
        strings: list[str] = []
        lines: list[str] = []
        for line in data.splitlines(keepends=True):
            if line.startswith("+"):
                lines.append(line[1:])
            else:
                if lines:
                    strings.append("".join(lines)[:-1])
                lines = []
        if lines:
            strings.append("".join(lines)[:-1])
        return reversed(strings)

    def store_string(self, string: str) -> None:
        import datetime
        import os

        text = f"\n# {datetime.datetime.now()}\n" + "".join(f"+{line}\n" for line in string.split("\n"))
        try:
            os.write(self.fd, text.encode("utf-8", errors="replace"))
        except OSError:
            pass


def key_bindings(session: ChatSession, say: Callable[[str], None]) -> KeyBindings:
    kb = KeyBindings()

    @kb.add("c-c")
    def _(event: KeyPressEvent) -> None:
        buf = event.current_buffer
        if buf.text:
            buf.reset()  # cancel the line
        elif session.running:
            session.stop(wait=False)
            say("(stopping the trace...)")
        else:
            say("(Ctrl-D or /quit leaves)")

    @kb.add("escape", "enter")
    def _(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    @kb.add("enter")
    def _(event: KeyPressEvent) -> None:
        buf = event.current_buffer
        state = buf.complete_state
        if state is not None and state.current_completion is not None:
            buf.apply_completion(state.current_completion)
            return
        if buf.document.text_before_cursor.endswith("\\") and buf.document.is_cursor_at_the_end:
            buf.delete_before_cursor(1)
            buf.insert_text("\n")
            return
        buf.validate_and_handle()

    return kb


class Repl:
    def __init__(self, session: ChatSession) -> None:
        self.session = session
        self.prompt: PromptSession[str] | None = None

    def say(self, text: str) -> None:
        """Print a line above the prompt (sys.stderr is patch_stdout's proxy while the REPL runs)."""
        print(text, file=sys.stderr, flush=True)

    def ask(self, question: str) -> bool:
        """A yes/no question with its own one-line prompt (Ctrl-C or Ctrl-D mean no)."""
        assert self.prompt is not None
        try:
            answer = PromptSession[str]().prompt(f"{question} [y/N] ")
        except (KeyboardInterrupt, EOFError):
            return False
        return answer.strip().lower() in ("y", "yes")

    def toolbar(self) -> str:
        return " " + self.session.status()

    def run(self) -> int:
        s = self.session
        self.prompt = PromptSession(
            message=PROMPT,
            history=history(),
            auto_suggest=AutoSuggestFromHistory(),
            completer=ThreadedCompleter(ChatCompleter(_probe_names(s), _lessons)),
            complete_while_typing=True,
            key_bindings=key_bindings(s, self.say),
            multiline=True,  # Enter is bound above: it accepts unless the line ends in a backslash
            prompt_continuation=lambda width, line_number, wrap_count: CONTINUATION[:width].rjust(width),
            bottom_toolbar=self.toolbar,
            refresh_interval=1.0,
            enable_history_search=False,
        )
        s.confirm = self.ask

        def redraw() -> None:
            app = self.prompt.app if self.prompt else None
            if app is not None and app.is_running:
                app.invalidate()

        s.on_change = redraw
        with patch_stdout(raw=True):
            # Events and messages go through the proxy that prints above the prompt.
            s.ui.stdout = sys.stdout
            s.ui.stderr = sys.stderr
            s.ui.talk(f"gpttrace chat ({s.planner.name} planner, backend {s.backend}"
                      f"{', runs without asking' if s.yes else ''}). Say what to trace; /help lists the commands; "
                      "Ctrl-D leaves.")
            while not s.done:
                try:
                    line = self.prompt.prompt()
                    if not s.handle(line):
                        break
                except KeyboardInterrupt:  # Ctrl-C between two prompts: never the end of the session
                    continue
                except EOFError:
                    s.quit()
                    break
        s.ui.stdout, s.ui.stderr = sys.stdout, sys.stderr  # the proxy is gone: write straight to the terminal
        return 0


def run_repl(session: ChatSession) -> int:
    return Repl(session).run()


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (ValueError, AttributeError):
        return False


def run_lines(session: ChatSession, lines: Iterable[str]) -> int:
    """Without a terminal (piped input): one line per turn, no prompt; waits for a running trace at the end."""
    for line in lines:
        if not session.handle(line.rstrip("\n")):
            break
    if session.running and session.duration:
        t = session._thread
        if t is not None:
            t.join()
    session.quit()
    return 0


__all__ = ["ChatCompleter", "Repl", "run_lines", "run_repl", "stdin_is_terminal"]
