"""One trace, end to end, for every way gpttrace runs one: the one-shot command, chat, ``examples run``, MCP.

``trace.TraceService``: plan → check → render → show/ask → run → remember, with retries after a load failure.
``options``: what a trace is asked to do (TraceOptions, holding the runner's RunOptions) and what it gives back.
``backends``: which backend a spec runs on, and its rendering. ``remember``: programs remembered by request,
as a planner wrapper (RememberingPlanner).
"""
