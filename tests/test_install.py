"""The programs the tests run are installed by install.sh (or come with every Debian system), and the tests find
them on PATH: a fresh machine set up by ``sudo ./install.sh`` passes the suite (tests/test_endings.py once
called /usr/sbin/bpftool, which install.sh did not install)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import ROOT

# every external program a test runs (subprocess argv, workloads given to -c, tools read from PATH), and the
# Debian package that has it; None: an Essential package, on every Debian system
TOOLS: dict[str, str | None] = {
    "bpftrace": "bpftrace",  # the tracer (kernel tests; tests/test_injection.py runs bpftrace -d)
    "bpftool": "bpftool",  # tests/test_endings.py counts loaded BPF programs
    "tmux": "tmux",  # tests/test_chat.py drives the REPL in a real terminal
    "tc": "iproute2",  # tests/test_bcc.py: a tc program is detached
    "ip": "iproute2",  # tests/test_bcc.py: an XDP program is detached
    "python3": "python3-bpfcc",  # BCC's interpreter, and workloads (python3 -c ...); python3-bpfcc pulls it in
    "setpriv": None,  # util-linux: tests/test_safety.py drops root's capabilities
    "sh": None, "cat": None, "dd": None, "head": None, "ls": None, "sleep": None, "timeout": None, "true": None,
    "touch": None, "rm": None, "mv": None, "mkdir": None, "chmod": None, "chown": None, "echo": None,  # coreutils, dash
}
PYTHON_MODULES = {"bcc": "python3-bpfcc", "pyroute2": "python3-pyroute2"}  # imported by BCC's /usr/bin/python3
PATH_TOOLS = {"*-bpfcc": "bpfcc-tools", "*.bt": "bpftrace"}  # read by tests/test_explain.py from PATH


def apt_packages() -> set[str]:
    text = (ROOT / "install.sh").read_text()
    m = re.search(r"apt-get install -y[^\n]*?((?:[^\n]*\\\n)*[^\n]*)", text)
    assert m, "install.sh has no apt-get install line"
    line = m.group(0).replace("\\\n", " ").split(">", 1)[0]  # up to a redirection
    return set(re.findall(r"(?<![\w-])[a-z0-9][a-z0-9.+-]+", line)) - {"apt-get", "install"}


def test_install_sh_installs_every_package_the_tests_need() -> None:
    wanted = {p for p in [*TOOLS.values(), *PYTHON_MODULES.values(), *PATH_TOOLS.values()] if p}
    assert wanted <= apt_packages(), f"install.sh does not install {sorted(wanted - apt_packages())}"


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_each_tool_is_on_path(tool: str) -> None:
    assert shutil.which(tool), f"{tool} is not on PATH: sudo ./install.sh installs it ({TOOLS[tool] or 'Essential'})"


def test_tests_find_programs_through_path() -> None:
    """No test runs a program by a fixed path, nor falls back to one when PATH has none."""
    pattern = re.compile(r"""\[\s*["'](?:/usr)?/s?bin/|which\([^)]*\)\s+or\s+["']/""")
    found = [f"{path.name}:{n}" for path in sorted(Path(ROOT / "tests").glob("test_*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, found
