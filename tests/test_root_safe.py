"""Root-safe by construction (issue 23): attacks by another local user, a hostile model server and hostile
traced data, each of which worked on 253ebf3.

The attacks run as a real second user created here (useradd) through ``runuser``, and are cleaned up after.
"""

from __future__ import annotations

import json
import os
import pickle
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

kernel = pytest.mark.kernel
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (to create a second user)")


# -- a second local user -------------------------------------------------------------------------------------
class User:
    def __init__(self, name: str) -> None:
        self.name = name
        import pwd

        entry = pwd.getpwnam(name)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid

    def run(self, *argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["runuser", "-u", self.name, "--", *argv], capture_output=True, text=True,
                              check=check, timeout=60, **kw)

    def popen(self, *argv: str) -> subprocess.Popen[str]:
        return subprocess.Popen(["runuser", "-u", self.name, "--", *argv], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, text=True, start_new_session=True)


@pytest.fixture
def attacker():
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("runuser"):
        pytest.skip("needs root, useradd and runuser (install.sh installs passwd and util-linux)")
    name = f"gptatk{uuid.uuid4().hex[:6]}"
    subprocess.run(["useradd", "-M", "-N", "-s", "/usr/sbin/nologin", name], check=True, capture_output=True)
    try:
        yield User(name)
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
        subprocess.run(["userdel", "-f", name], capture_output=True)


@pytest.fixture
def shared_tmp():
    """A folder like /tmp (sticky, anyone can create files in it), not under pytest's 0700 root folder."""
    path = Path(tempfile.mkdtemp(prefix="gpts-", dir="/tmp"))
    path.chmod(0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _evil_pickle(marker: Path) -> bytes:
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {shlex.quote(str(marker))}",))

    return pickle.dumps(Evil(), protocol=2)


# -- 1. the template cache: no unpickling of what another user could write ---------------------------------
_RENDER = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
from gpttrace_py.render import escape
env = escape.environment("bpftrace")
open(sys.argv[2], "w").write("ready")
while not os.path.exists(sys.argv[3]):
    pass
for name in ("events.bt.j2", "pair.bt.j2", "_base.bt.j2"):
    env.get_template(name)
"""


def _evil_cache_dir(attacker: User, where: Path, marker: Path) -> Path:
    """A folder of the attacker's with a poisoned Jinja bytecode file for every bpftrace template."""
    import jinja2

    evil = where / "evil"
    attacker.run("mkdir", "-p", str(evil))
    payload = where / "payload"
    payload.write_bytes(jinja2.bccache.bc_magic + _evil_pickle(marker))
    payload.chmod(0o644)
    templates = ROOT / "templates" / "bpftrace"
    cache = jinja2.FileSystemBytecodeCache()
    for t in templates.iterdir():
        key = cache.get_cache_key(t.name, str(t))
        attacker.run("cp", str(payload), str(evil / f"__jinja2_{key}.cache"))
    return evil


@needs_root
def test_template_cache_swapped_for_a_symlink_between_check_and_load(attacker, shared_tmp):
    """GPTTRACE_HOME in a shared place: the attacker owns the cache folder and swaps root's template cache for a
    symlink to poisoned bytecode after gpttrace checked it (chat: between two messages). No code runs."""
    home = shared_tmp / "home"
    attacker.run("mkdir", "-p", str(home / "cache"))
    marker = shared_tmp / "pwned"
    evil = _evil_cache_dir(attacker, shared_tmp, marker)
    ready, go = shared_tmp / "ready", shared_tmp / "go"
    env = {**os.environ, "GPTTRACE_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-c", _RENDER, str(ROOT), str(ready), str(go)], env=env)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        templates = home / "cache" / "templates"
        if templates.exists():  # the attacker owns cache/: the checked folder can be renamed away
            attacker.run("mv", str(templates), str(home / "cache" / "old"))
        attacker.run("ln", "-s", str(evil), str(templates))
        go.write_text("go")
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert not marker.exists(), "root unpickled a bytecode file the other user wrote"


@needs_root
def test_template_cache_symlink_swap_race(attacker, shared_tmp):
    """The race, many times: the attacker swaps cache/templates between root's own folder and a symlink to
    poisoned bytecode in a tight loop while root renders programs in fresh processes."""
    home = shared_tmp / "home"
    attacker.run("mkdir", "-p", str(home / "cache" / "mine"))
    marker = shared_tmp / "pwned"
    evil = _evil_cache_dir(attacker, shared_tmp, marker)
    link = shared_tmp / "link"
    attacker.run("ln", "-s", str(evil), str(link))
    swapper = (f"cd {shlex.quote(str(home / 'cache'))}; while true; do mv -T templates real 2>/dev/null; "
               f"cp -P {shlex.quote(str(link))} templates 2>/dev/null; rm -f templates; mv -T real templates "
               "2>/dev/null; done")
    loop = attacker.popen("sh", "-c", swapper)
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\nfrom gpttrace_py.render import escape\n"
              "for _ in range(25):\n    escape.environment.cache_clear()\n    env = escape.environment('bpftrace')\n"
              "    [env.get_template(n) for n in ('events.bt.j2', 'pair.bt.j2', '_base.bt.j2')]\n")
    try:
        for _ in range(8):  # 8 processes x 25 fresh environments
            subprocess.run([sys.executable, "-c", script], env={**os.environ, "GPTTRACE_HOME": str(home)},
                           capture_output=True, timeout=60)
            if marker.exists():
                break
    finally:
        os.killpg(loop.pid, signal.SIGKILL)
        loop.wait()
    assert not marker.exists(), "root unpickled a bytecode file the other user wrote"


def test_template_cache_still_works_in_a_trusted_folder(tmp_path, monkeypatch):
    from gpttrace_py.render import escape

    monkeypatch.setenv("GPTTRACE_HOME", str(tmp_path / "h"))
    escape.environment.cache_clear()
    try:
        escape.environment("bpftrace").get_template("events.bt.j2")
    finally:
        escape.environment.cache_clear()
    files = list((tmp_path / "h" / "cache" / "templates").glob("__jinja2_*.cache"))
    assert files and all(f.stat().st_mode & 0o077 == 0 for f in files)


# -- 2. -o and /save ------------------------------------------------------------------------------------------
@needs_root
@kernel
def test_output_file_through_a_planted_symlink(attacker, shared_tmp):
    """The other user's folder holds a symlink named like root's -o file, pointing at a root-only file: the
    file is not overwritten (the folder is refused: other users can write it)."""
    victim = Path(tempfile.mkdtemp(prefix="gptv-")) / "victim"
    victim.write_text("precious\n")
    folder = shared_tmp / "out"
    attacker.run("mkdir", str(folder))
    attacker.run("ln", "-s", str(victim), str(folder / "prog.bt"))
    try:
        r = run_cli("-y", "--offline", "--dry-run", "-o", str(folder / "prog.bt"), "trace files opened by cat")
        assert victim.read_text() == "precious\n"
        assert r.returncode == 2 and "not writing" in r.stderr and "uid" in r.stderr, r.stderr
    finally:
        shutil.rmtree(victim.parent)


@needs_root
@kernel
def test_output_file_in_sticky_tmp_is_refused(attacker, shared_tmp):
    victim = Path(tempfile.mkdtemp(prefix="gptv-")) / "victim"
    victim.write_text("precious\n")
    planted = Path("/tmp") / f"gpt-out-{uuid.uuid4().hex[:6]}.bt"
    attacker.run("ln", "-s", str(victim), str(planted))
    try:
        r = run_cli("-y", "--offline", "--dry-run", "-o", str(planted), "trace files opened by cat")
        assert victim.read_text() == "precious\n"
        assert r.returncode == 2 and "other users can write it" in r.stderr, r.stderr
    finally:
        planted.unlink(missing_ok=True)
        shutil.rmtree(victim.parent)


@kernel
def test_output_file_replaces_a_symlink_in_roots_folder_and_only_after_yes(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "prog.bt"
    out.symlink_to(victim)
    r = run_cli("--offline", "-o", str(out), "trace files opened by cat")  # no -y, no terminal: declined
    assert r.returncode == 2 and out.is_symlink()
    r = run_cli("-y", "--offline", "--dry-run", "-o", str(out), "trace files opened by cat")
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "precious\n" and not out.is_symlink() and "bpftrace" in out.read_text()


def test_save_in_chat_replaces_a_symlink_and_refuses_shared_folders(tmp_path):
    from gpttrace_py import safefs

    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "x.bt"
    out.symlink_to(victim)
    safefs.write_output(out, "#!/usr/bin/env bpftrace\n", 0o755)
    assert victim.read_text() == "precious\n" and out.stat().st_mode & 0o111 and not out.is_symlink()
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(safefs.UnsafePath):
        safefs.write_output(shared / "x.bt", "text")


# -- 5. config and session log -----------------------------------------------------------------------------
@needs_root
@pytest.mark.parametrize("how", ["owned by the other user", "in a folder anyone can write"])
def test_planted_config_file_is_not_used(attacker, shared_tmp, how):
    """A config.toml the other user planted would send root's API key to the planter's server."""
    home = shared_tmp / "home"
    home.mkdir()
    config = home / "config"
    if how == "owned by the other user":
        home.chmod(0o777)
        attacker.run("mkdir", str(config))
    else:
        config.mkdir()
        config.chmod(0o777)
    planted = shlex.quote(str(config / 'config.toml'))
    attacker.run("sh", "-c", f"echo 'base_url = \"http://127.0.0.1:9/v1\"' > {planted}")
    r = run_cli("config", "show", "--json", env={"GPTTRACE_HOME": str(home), "OPENAI_API_KEY": "sk-test-123456789"})
    assert "127.0.0.1:9" not in r.stdout, r.stdout
    assert "ignoring the config file" in r.stderr


def test_config_of_root_is_used(tmp_path):
    home = tmp_path / "home"
    r = run_cli("config", "set", "base_url", "http://127.0.0.1:8/v1", env={"GPTTRACE_HOME": str(home)})
    assert r.returncode == 0, r.stderr
    r = run_cli("config", "show", "--json", env={"GPTTRACE_HOME": str(home)})
    assert "127.0.0.1:8" in r.stdout and "ignoring" not in r.stderr


def test_session_log_is_held_by_descriptor(tmp_path):
    """A symlink swapped in for the log after it was created changes nothing: the log is never re-opened."""
    from gpttrace_py.sessionlog import SessionLog

    other = tmp_path / "other"
    other.write_text("")
    log = SessionLog(mode="trace", directory=tmp_path / "s")
    log.event("first")
    assert log.path is not None
    log.path.rename(tmp_path / "moved.jsonl")
    log.path.symlink_to(other)
    log.event("second", text="x")
    log.close()
    assert other.read_text() == ""
    assert "second" in (tmp_path / "moved.jsonl").read_text()


# -- 4. traced data is data -------------------------------------------------------------------------------
_APP = r"""
import ctypes, sys
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME
for path in sys.argv[2:]:
    try:
        open(path).close()
    except OSError:
        pass
"""


def _trace_opens(folder: Path, comm: str, name: str, *flags: str) -> subprocess.CompletedProcess[str]:
    app = folder / "app.py"
    app.write_text(_APP)
    cmd = f"/usr/bin/python3 {shlex.quote(str(app))} {shlex.quote(comm)} {shlex.quote(name)}"
    return run_cli("-y", "--offline", *flags, "-c", cmd, "trace files opened")


@pytest.fixture
def short_tmp():
    path = Path(tempfile.mkdtemp(prefix="g", dir="/tmp"))  # bpftrace reads 64 bytes of a string
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


FORGED = "a\n4242    sshd             /etc/shadow\x1b]0;pwned\x07\x1b[2J"


@kernel
def test_a_newline_and_escapes_in_a_file_name_in_json(short_tmp):
    name = str(short_tmp / FORGED)
    r = _trace_opens(short_tmp, "opener", name, "--json")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert not [e for e in events if e.get("fields") and e["fields"].get("PID") == 4242]  # no forged event
    mine = [e for e in events if e.get("fields") and e["fields"].get("COMM") == "opener"]
    assert name in [e["fields"]["PATH"] for e in mine]  # exact


@kernel
def test_a_newline_and_escapes_in_a_file_name_in_text(short_tmp):
    name = str(short_tmp / FORGED)
    r = _trace_opens(short_tmp, "opener", name)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert not [ln for ln in r.stdout.splitlines() if ln.startswith("4242")]
    line = next(ln for ln in r.stdout.splitlines() if "opener" in ln and str(short_tmp) in ln)
    assert "a\\n4242" in line and "\\x1b]0;pwned\\x07\\x1b[2J" in line


@kernel
def test_a_comm_with_a_space_is_one_json_field(short_tmp):
    """Issue 14, item 3: fields come from the separator the renderer prints, not from spaces."""
    name = str(short_tmp / "f")
    Path(name).write_text("")
    r = _trace_opens(short_tmp, "my app", name, "--json")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    mine = [e["fields"] for e in events if e.get("fields") and e["fields"].get("PATH") == name]
    assert mine and mine[0]["COMM"] == "my app"


def test_one_printf_record_is_one_event():
    from gpttrace_py.render.program import ProgramLayout
    from gpttrace_py.run.records import Printer

    layout = ProgramLayout(columns=["PID", "COMM", "PATH"], widths=[7, 16, 0])
    out: list[str] = []
    printer = Printer(layout, out.append, json_mode=True)
    printer.handle({"type": "printf", "data": "1\x1fcat\x1f/x\n4242 sshd /etc/shadow\n"})
    printer.handle({"type": "printf", "data": "2\x1fmy\x1fapp\x1f/y\n"})  # a value with the separator
    assert printer.events == 2
    first, second = (json.loads(x) for x in out)
    assert first["fields"] == {"PID": 1, "COMM": "cat", "PATH": "/x\n4242 sshd /etc/shadow"}
    assert second["fields"] is None and second["ambiguous"] is True


def test_escape_shows_controls_c1_and_bidi():
    from gpttrace_py.terminal import escape

    assert escape("a\x1b[31mb\nc\x9b\u202ed\u2066") == "a\\x1b[31mb\\nc\\x9b\\u202ed\\u2066"
    assert escape("line1\nline2\x1b", keep_newlines=True) == "line1\nline2\\x1b"
    assert escape("plain text, é and 日本") == "plain text, é and 日本"


# -- 3. XDP and tc detach even when the tracer is SIGKILLed ------------------------------------------------
@pytest.fixture
def veth_netns():
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("bpftool"):
        pytest.skip("needs root, ip and bpftool")
    ns = f"gptns{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        ip = ["ip", "-n", ns]
        subprocess.run([*ip, "link", "add", "gv0", "type", "veth", "peer", "name", "gv1"], check=True)
        subprocess.run([*ip, "link", "set", "gv0", "up"], check=True)
        subprocess.run([*ip, "link", "set", "gv1", "up"], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _bpf_links() -> dict[int, object]:
    out = subprocess.run(["bpftool", "-j", "link", "show"], capture_output=True, text=True).stdout
    return {link["id"]: link.get("type") for link in json.loads(out or "[]")}


def _attached_in(ns: str) -> list[dict]:
    out = subprocess.run(["ip", "netns", "exec", ns, "bpftool", "-j", "net", "show"], capture_output=True,
                         text=True, check=True).stdout
    return [entry for section in json.loads(out) for kind in ("xdp", "tc") for entry in section.get(kind, [])]


@kernel
@pytest.mark.bcc
@pytest.mark.parametrize("probe", ["xdp:gv0", "tc:gv0:ingress", "tc:gv0:egress"])
def test_packet_programs_detach_when_the_tracer_is_killed(veth_netns, tmp_path, probe):
    from gpttrace_py.kernel.catalog import Catalog
    from gpttrace_py.kernel.features import find_bcc_python
    from gpttrace_py.render.bcc import program as bcc
    from gpttrace_py.spec import ProgramSpec

    python = find_bcc_python()
    if python is None:
        pytest.skip("no BCC")
    spec = ProgramSpec.model_validate({"title": "packets", "probes": [probe], "backend": "bcc",
                                       "aggregates": [{"func": "count"}]})
    program = tmp_path / "prog.py"
    program.write_text(bcc.render(spec, Catalog()).text)
    links_before = _bpf_links()
    tracer = subprocess.Popen(["ip", "netns", "exec", veth_netns, python, "-I", str(program), "--records"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert tracer.stdout is not None
        for line in tracer.stdout:
            if "Tracing" in line:
                break
        else:
            pytest.fail(f"the program did not attach: {tracer.stderr.read() if tracer.stderr else ''}")
        attached = _attached_in(veth_netns)
        ours = {i: t for i, t in _bpf_links().items() if i not in links_before}
        assert attached or ours, "nothing was attached"
    finally:
        tracer.send_signal(signal.SIGKILL)  # ip netns exec execs the program: this is the tracer itself
        tracer.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (_attached_in(veth_netns) or set(ours) & set(_bpf_links())):
        time.sleep(0.2)  # a link is released when the killed process's descriptors are closed
    assert _attached_in(veth_netns) == [], "a program stayed attached to the interface (bpftool net)"
    assert not set(ours) & set(_bpf_links()), "a bpf link stayed (bpftool link)"


# -- 6. a hostile model server -------------------------------------------------------------------------------
@pytest.fixture
def model_server():
    from fake_openai import FakeOpenAI

    with FakeOpenAI() as s:
        yield s


def _llm_env(server, key: str, home: Path) -> dict[str, str]:
    return {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": key, "GPTTRACE_MODEL": "test-model",
            "GPTTRACE_LLM_BACKOFF": "0.01", "GPTTRACE_HOME": str(home)}


def _everything_under(home: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in home.rglob("*") if p.is_file())


@kernel
@pytest.mark.parametrize("kind", ["refusal", "error body", "spec title"])
def test_hostile_server_text_is_escaped_and_the_key_never_shown(model_server, tmp_path, kind):
    from fake_openai import refusal, spec_reply, status

    key = f"sk-test-{uuid.uuid4().hex}"
    hostile = f"no\x1b]0;owned\x07 \x9b31m \u202eevil\u202c {key}"
    if kind == "refusal":
        model_server.add(refusal(hostile))
    elif kind == "error body":
        model_server.add(status(400, hostile))
    else:
        model_server.add(spec_reply({"title": hostile, "probes": ["tracepoint:syscalls:sys_enter_openat"],
                                     "filter": {"comm": "cat"}, "print": [{"expr": "pid"}]}))
    home = tmp_path / "home"
    r = run_cli("-y", "--dry-run", "trace files opened by cat", env=_llm_env(model_server, key, home))
    shown = r.stdout + r.stderr
    assert key not in shown and key not in _everything_under(home), "the API key was printed or logged"
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in shown
    if kind != "spec title":  # a title only reaches program text as printable ASCII
        assert "\\x1b]0;owned\\x07" in shown and "\\u202eevil" in shown


def test_model_reply_is_capped_in_bytes(model_server):
    import io

    from fake_openai import reply

    from gpttrace_py.errors import GpttraceError
    from gpttrace_py.kernel.catalog import Catalog
    from gpttrace_py.planning import llm
    from gpttrace_py.planning.base import PlanContext
    from gpttrace_py.ui import UI

    model_server.add(reply("x" * (getattr(llm, "MAX_REPLY_BYTES", 1 << 20) + 10)))
    settings = {"api_key": "test", "base_url": model_server.base_url, "model": "test-model", "timeout": 10,
                "max_retries": 2}
    planner = llm.LLMPlanner(settings=settings, ui=UI(stdout=io.StringIO(), stderr=io.StringIO()), retries=1)
    with pytest.raises(GpttraceError, match="MiB: not read further"):
        planner.plan("trace files opened by cat", PlanContext(catalog=Catalog()))
    assert len(model_server.requests) == 1  # not retried


# -- 6. the BCC check is an allowlist ---------------------------------------------------------------------
def _a_bcc_program() -> str:
    from gpttrace_py.kernel.catalog import Catalog
    from gpttrace_py.render.bcc import program as bcc
    from gpttrace_py.spec import ProgramSpec

    spec = ProgramSpec.model_validate({"title": "t", "probes": ["tracepoint:syscalls:sys_enter_openat"],
                                       "backend": "bcc", "print": [{"expr": "pid"}, {"expr": "comm"}]})
    return bcc.render(spec, Catalog()).text


@pytest.mark.parametrize("python", [
    '__import__("os").system("id")',
    'ct.CDLL("libc.so.6").system(b"id")',
    "x = os\nx.system('id')",
    "getattr(os, 'sys' + 'tem')('id')",
    "import shutil\nshutil.rmtree('/tmp/x')",
    "print(().__class__.__bases__[0].__subclasses__())",
    "os.unlink('/etc/passwd')",
])
def test_bcc_python_outside_the_allowlist_is_refused(python):
    from gpttrace_py import safety

    text = _a_bcc_program().replace("\nif __name__", f"\n{python}\nif __name__")
    assert safety.unsafe_uses(text, "bcc"), python
    with pytest.raises(Exception, match="refusing to run a program"):
        safety.check(text, "bcc", allow_unsafe=False)


@pytest.mark.parametrize("c", [
    "static long (*sig)(int) = (void *) 109;",  # bpf_send_signal by number
    "int f(void *c) { return ((long (*)(int))109)(9); }",
    "int f(void *c) { return bpf_sys_bpf(0, 0, 0); }",
    "BPF_PROG_ARRAY(jump, 4);",
])
def test_bcc_c_outside_the_allowlist_is_refused(c):
    from gpttrace_py import safety

    text = _a_bcc_program().replace('BPF_TEXT = r"""', f'BPF_TEXT = r"""\n{c}\n')
    assert safety.unsafe_uses(text, "bcc"), c


def test_every_bcc_program_of_the_corpus_is_inside_the_allowlist():
    from gpttrace_py import corpus, safety
    from gpttrace_py.kernel.catalog import Catalog
    from gpttrace_py.render.bcc import program as bcc
    from gpttrace_py.spec import ProgramSpec

    catalog, rendered = Catalog(), 0
    extra = [{"title": "x", "probes": ["xdp:lo"], "aggregates": [{"func": "count"}]},
             {"title": "x", "probes": ["tc:lo:egress"], "aggregates": [{"func": "count"}]}]
    for data in [d for e in corpus.load() for d in [e.spec_data, *e.alternatives_data]] + extra:
        try:
            program = bcc.render(ProgramSpec.model_validate({**data, "backend": "bcc"}), catalog)
        except Exception:
            continue
        rendered += 1
        assert safety.outside_bcc_allowlist(program.text) == [], data.get("title")
    assert rendered > 50


# -- 6. inputs bounded ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e400"])
def test_duration_must_be_finite(value):
    r = run_cli("-y", "--offline", "-d", value, "count syscalls by process", timeout=30)
    assert r.returncode == 2 and "not a number of seconds" in r.stderr


def test_explain_refuses_fifos_and_deep_nesting(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = run_cli("explain", str(fifo), timeout=30)
    assert r.returncode == 2 and "not a regular file" in r.stderr
    deep = tmp_path / "deep.bt"
    deep.write_text("BEGIN { $x = " + "(" * 3000 + "1" + ")" * 3000 + "; }\n")
    started = time.monotonic()
    r = run_cli("explain", str(deep), timeout=30)
    assert r.returncode == 2 and "nests brackets 3001 deep" in r.stderr and time.monotonic() - started < 10


def test_explain_refuses_dev_zero_and_huge_files(tmp_path):
    r = run_cli("explain", "/dev/zero", timeout=30)
    assert r.returncode == 2 and "not a regular file" in r.stderr
    big = tmp_path / "big.bt"
    with open(big, "w") as fh:
        fh.truncate(3 << 20)
    r = run_cli("explain", str(big), timeout=30)
    assert r.returncode == 2 and "larger than" in r.stderr


def test_explain_and_log_show_escape(tmp_path):
    script = tmp_path / "x.bt"
    script.write_text('BEGIN { printf("hi\\n"); } // \x1b]0;owned\x07 \u202eevil\n')
    r = run_cli("explain", "--no-color", str(script), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\u202e" not in r.stdout and "\\x1b]0;owned" in r.stdout
    from gpttrace_py.sessionlog import SessionLog

    home = tmp_path / "home"
    log = SessionLog(mode="trace", directory=home / "state" / "sessions")
    log.output("1234  cat  /tmp/a\x1b[2J\u202eb")
    log.close()
    r = run_cli("log", "show", "last", env={"GPTTRACE_HOME": str(home)})
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\u202e" not in r.stdout and "/tmp/a\\x1b[2J\\u202eb" in r.stdout


def test_uprobe_targets_one_error_whatever_the_reason(tmp_path):
    """A missing file, a root-only ELF file, a FIFO, a device and a text file get the same answer (a model
    cannot learn whether a root-only file exists)."""
    from gpttrace_py.kernel.catalog import Catalog
    from gpttrace_py.spec.model import parse_probe

    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    elf = private / "secret.so"
    shutil.copy("/bin/true", elf)
    elf.chmod(0o700)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    catalog = Catalog()
    answers = set()
    for target in (str(private / "missing.so"), str(elf), str(fifo), "/dev/zero", str(text)):
        reason = catalog.check_probe(parse_probe(f"uprobe:{target}:main"))
        assert reason is not None
        answers.add(reason.replace(target, "T"))
    assert len(answers) == 1, answers


def test_uprobe_symbols_are_read_through_section_headers(tmp_path):
    """A large target is not read whole: only its headers and symbol tables."""
    import tracemalloc

    from gpttrace_py.kernel import uprobes

    big = tmp_path / "big"
    with open("/bin/true", "rb") as src, open(big, "wb") as dst:
        data = src.read()
        dst.write(data)
        dst.truncate(300 << 20)  # sparse: 300 MiB
    big.chmod(0o755)
    uprobes.function_symbols.cache_clear()
    tracemalloc.start()
    try:
        uprobes.function_symbols(str(big))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20, f"{peak >> 20} MiB read"


def test_a_library_path_that_could_change_the_program_is_refused(monkeypatch):
    from gpttrace_py.kernel.catalog import Catalog
    from gpttrace_py.render.bpftrace import render
    from gpttrace_py.spec import ProgramSpec

    catalog = Catalog()
    monkeypatch.setattr(catalog, "uprobe_path", lambda target: '/tmp/x:f { system("id"); }\nuprobe:/bin/true')
    monkeypatch.setattr(catalog, "check_probe", lambda probe: None)
    spec = ProgramSpec.model_validate({"title": "t", "probes": ["uprobe:libfoo:f"], "backend": "bpftrace",
                                       "aggregates": [{"func": "count"}]})
    with pytest.raises(ValueError, match="cannot use the file"):
        render(spec, catalog)


# -- 7 (of the list of what to build): non-root messages --------------------------------------------
@needs_root
@pytest.mark.parametrize("argv", [["examples", "run", "bashreadline", "-y"], ["-y", "--offline", "count syscalls"],
                                  ["examples", "show", "bashreadline"]])
def test_non_root_is_told_it_needs_root(attacker, shared_tmp, argv):
    from conftest import GPTTRACE

    r = attacker.run("env", f"GPTTRACE_HOME={shared_tmp / 'h'}", GPTTRACE, *argv, check=False)
    out = r.stdout + r.stderr
    assert "not mounted" not in out and "has no uprobes" not in out, out
    assert "root" in out, out
