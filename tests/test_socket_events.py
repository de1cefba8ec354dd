"""Socket programs print what happened: the source port a connect got, the names of every family and protocol."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import run_cli

from gpttrace_py.kernel.tracefs import parse_format

kernel = pytest.mark.kernel

# sock:sock_send_length's print format on 6.x kernels: its tables name the families and protocols the
# tracepoint was written for, yet it fires for every socket
SEND_FORMAT = """name: sock_send_length
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:void * sk;\toffset:8;\tsize:8;\tsigned:0;
\tfield:__u16 family;\toffset:16;\tsize:2;\tsigned:0;
\tfield:__u16 protocol;\toffset:18;\tsize:2;\tsigned:0;
\tfield:int ret;\toffset:20;\tsize:4;\tsigned:1;
\tfield:int flags;\toffset:24;\tsize:4;\tsigned:1;

print fmt: "sk address = %p, family = %s protocol = %s, length = %d, error = %d, flags = 0x%x", REC->sk, \
__print_symbolic(REC->family, { 2, "AF_INET" }, { 10, "AF_INET6" }), __print_symbolic(REC->protocol, \
{ 6, "IPPROTO_TCP" }, { 132, "IPPROTO_SCTP" }, { 262, "IPPROTO_MPTCP" }), REC->ret, REC->ret, REC->flags
"""


def test_socket_name_tables_name_unix_and_udp() -> None:
    tp = parse_format("sock", "sock_send_length", SEND_FORMAT)
    family, protocol = tp.symbols["family"], tp.symbols["protocol"]
    assert family[1] == "AF_UNIX" and family[2] == "AF_INET" and family[16] == "AF_NETLINK"
    assert protocol[17] == "IPPROTO_UDP" and protocol[1] == "IPPROTO_ICMP" and protocol[6] == "IPPROTO_TCP"
    assert 0 not in protocol  # a Unix socket's protocol 0 is its family's default, not IP


@kernel
def test_socket_sends_name_unix_and_udp() -> None:
    script = ("import socket; u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b'x', ('127.0.0.1', 9));"
              " a, b = socket.socketpair(); a.send(b'hello')")
    r = run_cli("-y", "--offline", "-c", f'python3 -c "{script}"', "trace socket sends", timeout=90)
    assert r.returncode in (0, 130), r.stderr[-1500:]
    assert re.search(r"^\d+\s+python3\s+AF_INET\s+IPPROTO_UDP\s+1$", r.stdout, re.M), r.stdout[-1500:]
    assert re.search(r"^\d+\s+python3\s+AF_UNIX\s+5$", r.stdout, re.M), r.stdout[-1500:]


@kernel
def test_a_tcp_connect_shows_the_source_port_it_got(tmp_path: Path) -> None:
    """The SYN_SENT transition comes before the kernel picks the port: printed there, every sport was 0."""
    got = tmp_path / "sport"
    script = ("import socket; l = socket.socket(); l.bind(('127.0.0.1', 47211)); l.listen();"
              f" c = socket.create_connection(('127.0.0.1', 47211)); open('{got}', 'w').write(str(c.getsockname()[1]))")
    r = run_cli("-y", "--offline", "-c", f'python3 -c "{script}"', "trace TCP connects", timeout=90)
    assert r.returncode in (0, 130), r.stderr[-1500:]
    sport = got.read_text()
    line = re.search(r"^\d+\s+python3\s+127\.0\.0\.1\s+(\d+)\s+127\.0\.0\.1\s+47211\b.*$", r.stdout, re.M)
    assert line, r.stdout[-1500:]
    assert line.group(1) == sport != "0", line.group(0)
