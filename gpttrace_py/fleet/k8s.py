"""Kubernetes manifests that run a bpftrace program on nodes, as plain objects, and their YAML.

Each value from outside (names, labels, the image) is checked against Kubernetes' own syntax before it is
placed; the program and the request go in as string values, and the YAML emitter quotes them: nothing is
ever joined into YAML text by hand.

A DaemonSet's pods must restart whatever their container does when it ends, so the program runs in an init
container (``trace``), which runs once per pod, and a pause container keeps the pod up afterwards without
running it again. A Job runs it in its one container (``trace``) and does not retry. Both print bpftrace's
``-f json`` lines on the ``trace`` container's log, and label their pods with
``app.kubernetes.io/instance: NAME`` to collect the logs by.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import UsageError
from ..run.bpftrace import PROGRAM_ENV

DEFAULT_IMAGE = "quay.io/iovisor/bpftrace:latest"  # bpftrace's own image; /usr/bin/bpftrace in it
PAUSE_IMAGE = "registry.k8s.io/pause:3.9"
CONTAINER = "trace"  # the container whose log holds the program's output
INSTANCE_LABEL = "app.kubernetes.io/instance"
START_GRACE_S = 600  # a Job's deadline beyond the run time: pulling the image, starting bpftrace, END

# (host path, read-only): what bpftrace needs of the node. The tracing file systems stay writable for the
# kernels where bpftrace creates kprobe and uprobe events through them.
HOST_PATHS = (
    ("/sys/kernel/debug", False),
    ("/sys/kernel/tracing", False),
    ("/sys/fs/bpf", True),
    ("/lib/modules", True),
    ("/usr/src", True),
)

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\Z")
_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/:@-]*[a-zA-Z0-9_.:@-]*\Z")


def name_of(text: str, what: str) -> str:
    """``text`` as an object name (a DNS label of at most 52 characters: the DaemonSet's pods add to it)."""
    if len(text) > 52 or not _DNS_LABEL.match(text):
        raise UsageError(f"{what} {text!r} is not a Kubernetes name",
                         "lower-case letters, digits and '-', at most 52 characters, starting and ending alnum")
    return text


def node_name(text: str) -> str:
    if len(text) > 253 or not _DNS_SUBDOMAIN.match(text):
        raise UsageError(f"--node {text!r} is not a node name", "as `kubectl get nodes` lists it")
    return text


def label(pair: str) -> tuple[str, str]:
    """``KEY=VALUE`` as a label selector term, checked against Kubernetes' label syntax."""
    key, sep, value = pair.partition("=")
    prefix, slash, name = key.rpartition("/")
    ok = (sep and len(name) <= 63 and _LABEL_NAME.match(name)
          and (not slash or (len(prefix) <= 253 and _DNS_SUBDOMAIN.match(prefix)))
          and (value == "" or (len(value) <= 63 and _LABEL_NAME.match(value))))
    if not ok:
        raise UsageError(f"--node-selector {pair!r} is not a label KEY=VALUE",
                         "e.g. --node-selector kubernetes.io/os=linux")
    return key, value


def image(text: str) -> str:
    if len(text) > 512 or not _IMAGE.match(text):
        raise UsageError(f"--image {text!r} is not an image reference", f"e.g. {DEFAULT_IMAGE}")
    return text


@dataclass
class Target:
    """Where and how the program runs: every node (a DaemonSet) or one (a Job)."""

    kind: Literal["daemonset", "job"] = "daemonset"
    name: str = ""
    namespace: str | None = None
    node: str | None = None  # a Job's node
    node_selector: dict[str, str] = field(default_factory=dict)
    image: str = DEFAULT_IMAGE
    unsafe: bool = False  # bpftrace --unsafe: the user allowed a program that changes the system


def default_name(program_text: str) -> str:
    return "gpttrace-" + hashlib.sha256(program_text.encode()).hexdigest()[:10]


def command(program_text: str, unsafe: bool) -> list[str]:
    """The container's command as bpftrace gets it: JSON lines on stdout, the program given whole."""
    return ["bpftrace", "-f", "json", *(["--unsafe"] if unsafe else []), "-e", program_text]


def unexpanded(arg: str) -> str:
    """``arg`` as a container's command or args hold it: Kubernetes replaces ``$(NAME)`` there with the
    variable NAME and ``$$`` with ``$``, so each ``$`` (bpftrace's $1 and $var) is written ``$$``."""
    return arg.replace("$", "$$")


def manifests(program_text: str, seconds: int, target: Target, request: str | None = None) -> list[dict[str, Any]]:
    """The objects to apply: a DaemonSet, or a Job pinned to ``target.node`` (and/or a node selector)."""
    name = target.name or default_name(program_text)
    labels = {"app.kubernetes.io/name": "gpttrace", INSTANCE_LABEL: name, "app.kubernetes.io/managed-by": "gpttrace"}
    metadata: dict[str, Any] = {"name": name, "labels": dict(labels)}
    if target.namespace:
        metadata["namespace"] = target.namespace
    if request is not None:
        metadata["annotations"] = {"gpttrace.io/request": request}
    trace = _trace_container(program_text, target.image, target.unsafe)
    pod: dict[str, Any] = {
        "hostPID": True,
        "tolerations": [{"operator": "Exists"}],  # tainted nodes too: the question is about every node
        "volumes": [{"name": _volume(path), "hostPath": {"path": path}} for path, _ in HOST_PATHS],
    }
    if target.node_selector:
        pod["nodeSelector"] = dict(target.node_selector)
    if target.kind == "daemonset":
        pod["initContainers"] = [trace]
        pod["containers"] = [{"name": "idle", "image": PAUSE_IMAGE,
                              "resources": {"requests": {"cpu": "1m", "memory": "8Mi"}}}]
        return [{"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": metadata,
                 "spec": {"selector": {"matchLabels": {INSTANCE_LABEL: name}},
                          "template": {"metadata": {"labels": dict(labels)}, "spec": pod}}}]
    if target.node:
        pod["nodeName"] = target.node
    pod["restartPolicy"] = "Never"
    pod["containers"] = [trace]
    return [{"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
             "spec": {"backoffLimit": 0, "activeDeadlineSeconds": seconds + START_GRACE_S,
                      "ttlSecondsAfterFinished": 3600,
                      "template": {"metadata": {"labels": dict(labels)}, "spec": pod}}}]


def _volume(path: str) -> str:
    return path.strip("/").replace("/", "-").replace("_", "-")


def _trace_container(program_text: str, image_ref: str, unsafe: bool) -> dict[str, Any]:
    argv = [unexpanded(arg) for arg in command(program_text, unsafe)]
    return {
        "name": CONTAINER,
        "image": image_ref,
        "command": argv[:1],
        "args": argv[1:],
        "env": [{"name": k, "value": v} for k, v in PROGRAM_ENV.items()],
        "securityContext": {"privileged": True},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "volumeMounts": [{"name": _volume(path), "mountPath": path, "readOnly": ro} for path, ro in HOST_PATHS],
    }


def trace_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The container that runs the program, in the objects ``manifests`` made (its command and args
    as written: see ``unexpanded``)."""
    pod = objects[0]["spec"]["template"]["spec"]
    return next(c for c in pod.get("initContainers", []) + pod["containers"] if c["name"] == CONTAINER)


def to_yaml(objects: list[dict[str, Any]]) -> str:
    """One YAML document per object; multi-line strings (the program) as literal blocks when YAML allows."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump_all(objects, Dumper=Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                         width=1 << 16)


def kubectl_trace(program_text: str, seconds: int, node: str | None) -> str:
    """The same run with kubectl-trace (one node per run; its logs are bpftrace's text, not JSON)."""
    return shlex.join(["kubectl", "trace", "run", f"node/{node or 'NODE'}", "--deadline", str(seconds + 60),
                       "-e", program_text])
