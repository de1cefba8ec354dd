"""gpttrace export k8s: manifests valid against Kubernetes' own schemas, values escaped by the YAML emitter."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
import yaml

from gpttrace_py.fleet import k8s
from gpttrace_py.fleet.program import bounded

pytestmark = pytest.mark.kernel  # planning reads this kernel's tracepoint catalog

K8S_VERSION = kubernetes_validate.latest_version()
REQUEST = "count syscalls by process"


def kubelet_expand(arg: str, env: dict[str, str]) -> str:
    """What the kubelet makes of a container's command or args: $(NAME) becomes the variable NAME when the
    container defines it (else it stays), $$ becomes $, any other $ stays."""
    out, i = [], 0
    while i < len(arg):
        if arg.startswith("$$", i):
            out.append("$")
            i += 2
        elif arg.startswith("$(", i) and ")" in arg[i:]:
            name = arg[i + 2 : arg.index(")", i)]
            out.append(env[name] if name in env else arg[i : arg.index(")", i) + 1])
            i = arg.index(")", i) + 1
        else:
            out.append(arg[i])
            i += 1
    return "".join(out)


def container_argv(docs) -> tuple[list[str], dict[str, str]]:
    """The trace container's command line and environment, as the kubelet starts it."""
    trace = k8s.trace_container(docs)
    env = {e["name"]: e["value"] for e in trace.get("env", [])}
    return [kubelet_expand(a, env) for a in trace["command"] + trace["args"]], env


def export(cli, *args: str):
    r = cli("export", "k8s", "--offline", "--no-check", *args)
    return r, [d for d in yaml.safe_load_all(r.stdout) if d is not None] if r.returncode == 0 else []


@pytest.mark.parametrize("kind,extra", [
    ("daemonset", []),
    ("daemonset", ["--node-selector", "kubernetes.io/os=linux", "--node-selector", "example.com/pool=trace-1"]),
    ("job", ["--node", "worker-1.example.internal"]),
    ("job", ["--node-selector", "kubernetes.io/hostname=worker-2"]),
])
def test_manifests_are_valid_kubernetes_objects(cli, kind, extra):
    r, docs = export(cli, "--kind", kind, "--seconds", "30", *extra, REQUEST)
    assert r.returncode == 0, r.stderr
    assert len(docs) == 1 and docs[0]["kind"] == {"daemonset": "DaemonSet", "job": "Job"}[kind]
    obj = docs[0]
    assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True)  # raises on any field the schema lacks
    pod = obj["spec"]["template"]["spec"]
    trace = k8s.trace_container(docs)
    assert trace["command"] == ["bpftrace"] and trace["args"][:2] == ["-f", "json"] and trace["args"][-2] == "-e"
    assert "interval:s:30\n{\n\texit();\n}" in trace["args"][-1]
    assert trace["securityContext"]["privileged"] is True and pod["hostPID"] is True
    mounts = {m["mountPath"]: m["readOnly"] for m in trace["volumeMounts"]}
    assert mounts == {"/sys/kernel/debug": False, "/sys/kernel/tracing": False, "/sys/fs/bpf": True,
                      "/lib/modules": True, "/usr/src": True}
    labels = obj["spec"]["template"]["metadata"]["labels"]
    assert labels[k8s.INSTANCE_LABEL] == obj["metadata"]["name"]
    selector = dict(s.split("=", 1) for s in extra[1::2] if "=" in s)
    assert pod.get("nodeSelector", {}) == selector
    if kind == "daemonset":
        assert obj["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pod["initContainers"] == [trace]  # runs once per pod; the pause container keeps the pod up
    else:
        assert pod["restartPolicy"] == "Never" and obj["spec"]["backoffLimit"] == 0
        assert obj["spec"]["activeDeadlineSeconds"] > 30
        assert pod.get("nodeName") == ("worker-1.example.internal" if "--node" in extra else None)
    assert obj["metadata"]["annotations"]["gpttrace.io/request"] == REQUEST
    assert "kubectl trace run node/" in r.stderr and "--deadline 90" in r.stderr


def test_the_schema_check_catches_what_kubernetes_would_refuse(cli):
    _, docs = export(cli, REQUEST)
    for path, value in ((("spec", "template", "spec", "hostPid"), True),  # a misspelt field
                        (("spec", "template", "spec", "hostPID"), "yes")):  # a wrong type
        bad = copy.deepcopy(docs[0])
        holder = bad
        for part in path[:-1]:
            holder = holder[part]
        holder[path[-1]] = value
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_a_saved_program_goes_into_yaml_exactly_as_written(cli, tmp_path):
    hostile = ('tracepoint:syscalls:sys_enter_openat\n{\n\t$n = 1;\n'
               '\tprintf("x\\n---\\napiVersion: v1\\nkind: Secret: {{ a }} \'q\' #c %s %d\\n", comm, $n);\n}\n'
               "// ---\n// kind: Secret\n// é ✓ ${HOME} `id` $(id) $(BPFTRACE_STRLEN) $$(x) $\n")
    path = tmp_path / "prog.bt"
    path.write_text(hostile)
    r, docs = export(cli, "--program", str(path), "--seconds", "5", "--name", "hostile-test")
    assert r.returncode == 0, r.stderr
    assert [d["kind"] for d in docs] == ["DaemonSet"]
    argv, _ = container_argv(docs)
    assert argv[-1] == bounded(hostile, 5)  # what bpftrace gets, after the kubelet's $(VAR) expansion
    assert "annotations" not in docs[0]["metadata"]  # no request
    kubernetes_validate.validate(docs[0], K8S_VERSION, strict=True)


@pytest.mark.parametrize("args,says", [
    (["--name", "Bad_Name", REQUEST], "--name"),
    (["--namespace", "a\nb", REQUEST], "--namespace"),
    (["--node-selector", "noequals", REQUEST], "--node-selector"),
    (["--node-selector", "k=v\nkind: Secret", REQUEST], "--node-selector"),
    (["--kind", "job", "--node", "Worker 1", REQUEST], "--node"),
    (["--node", "worker-1", REQUEST], "--node pins a job"),
    (["--kind", "job", REQUEST], "a job runs on one node"),
    (["--image", "img:1 --privileged", REQUEST], "--image"),
    ([], "give a REQUEST or --program"),
])
def test_bad_values_are_usage_errors_before_any_yaml(cli, args, says):
    r, _ = export(cli, *args)
    assert r.returncode == 2 and r.stdout == "" and says in r.stderr


def test_a_refused_request_prints_no_manifest(cli):
    r, _ = export(cli, "reboot the machine")
    assert r.returncode == 2 and r.stdout == "", r.stderr


def test_a_program_that_changes_the_system_needs_unsafe(cli, tmp_path):
    path = tmp_path / "kill.bt"
    path.write_text('tracepoint:syscalls:sys_enter_kill { signal("KILL"); }\n')
    r, _ = export(cli, "--program", str(path))
    assert r.returncode == 2 and r.stdout == "" and "--unsafe" in r.stderr
    r, docs = export(cli, "--program", str(path), "--unsafe")
    assert r.returncode == 0 and "--unsafe" in k8s.trace_container(docs)["args"]


def test_a_duration_in_words_sets_the_run_time(cli):
    r, docs = export(cli, "count syscalls by process for 7 seconds")
    assert r.returncode == 0, r.stderr
    assert "interval:s:7\n" in k8s.trace_container(docs)["args"][-1]


def test_the_program_is_loaded_here_first(cli):
    r = cli("export", "k8s", "--offline", "--seconds", "2", "histogram of read sizes")
    assert r.returncode == 0, r.stderr
    assert "loads and attaches on this machine" in r.stderr


def test_a_saved_program_that_does_not_load_here_is_refused(cli, tmp_path):
    path = tmp_path / "bad.bt"
    path.write_text("tracepoint:syscalls:sys_enter_openat { @[args->no_such_field] = count(); }\n")
    r = cli("export", "k8s", "--program", str(path))
    assert r.returncode == 1 and r.stdout == "" and "does not load on this machine" in r.stderr
    path.write_text("tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }\n")  # no BEGIN of its own
    r = cli("export", "k8s", "--program", str(path), "--seconds", "600")
    assert r.returncode == 0 and "loads and attaches on this machine" in r.stderr
