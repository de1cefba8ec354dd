"""``gpttrace chat``: a REPL that plans, refines, shows, explains and runs tracing programs turn by turn."""

from __future__ import annotations

from .session import ChatSession, ChatUI, explain_spec

__all__ = ["ChatSession", "ChatUI", "explain_spec"]
