"""gpttrace for agents: the planner, the safety gates and the runner as MCP tools (``gpttrace mcp``).

* ``bounds.py``: what a client gets back is bounded and free of control characters;
* ``client_program.py``: a program written by the client, checked like any other before it runs;
* ``tools.py``: the tools as plain functions with typed results (no MCP import: testable alone);
* ``library.py``: the tutorial lessons and worked examples as text, for MCP resources;
* ``server.py``: the MCP server (the ``mcp`` SDK), its transports, and runs that always detach.
"""
