"""Syscall tables per architecture: the numbers of this machine's, none where they are unknown."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from gpttrace_py.kernel import syscalls


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Set the machine name os.uname() reports: machine(name)."""
    real = os.uname()

    def set_machine(name: str) -> None:
        fake = os.uname_result((real.sysname, real.nodename, real.release, real.version, name))
        monkeypatch.setattr(syscalls.os, "uname", lambda: fake)
        syscalls.table.cache_clear()

    yield set_machine
    syscalls.table.cache_clear()


def test_x86_64(machine) -> None:
    machine("x86_64")
    names = syscalls.number_to_name()
    assert names[0] == "read" and names[2] == "open" and names[257] == "openat" and names[59] == "execve"
    assert syscalls.canonical("newstat") == "stat"


@pytest.mark.parametrize("name", ["aarch64", "arm64"])
def test_arm64_has_the_generic_table(machine, name: str) -> None:
    machine(name)
    names = syscalls.number_to_name()
    assert names[63] == "read" and names[56] == "openat" and names[221] == "execve" and names[435] == "clone3"
    assert 2 not in names or names[2] != "open"  # no open(): arm64 has only openat
    assert not syscalls.is_syscall("open") and syscalls.is_syscall("openat")
    assert syscalls.canonical("newfstat") == "fstat" and syscalls.canonical("fadvise64_64") == "fadvise64"
    assert syscalls.table().arch == "aarch64"


def test_an_unknown_architecture_names_no_numbers(machine) -> None:
    machine("riscv64")
    assert syscalls.number_to_name() == {}  # never another architecture's names
    assert syscalls.table().arch is None
    assert syscalls.is_syscall("openat") and syscalls.is_syscall("open")  # names are known, numbers are not


def test_the_numbers_from_424_on_agree() -> None:
    x86, arm = syscalls.table("x86_64").numbers, syscalls.table("aarch64").numbers
    shared = [n for n, v in x86.items() if v >= 424 and n in arm]
    assert shared and all(x86[n] == arm[n] for n in shared)
