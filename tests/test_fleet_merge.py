"""gpttrace merge on real bpftrace output: the exported container command run here as four nodes at once,
each node with its own workload, and the merged result checked against the sum of the four."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import GPTTRACE
from test_fleet_k8s import container_argv

NODES = 4
READS = 300  # reads (and writes) each node's workload makes
SECONDS = 8  # the run time the manifests give the program


def block_size(node: int) -> int:
    return 512 << node  # node 0 reads 512 bytes at a time, node 3 reads 4096: one log2 bucket each


def gpttrace(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([GPTTRACE, *args], capture_output=True, text=True, timeout=120, input=stdin,
                       stdin=None if stdin is not None else subprocess.DEVNULL)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def run_as_nodes(manifest: str, out: Path) -> list[Path]:
    """Start the manifest's container command as NODES processes at once, give each node its own workload
    once all have attached (BEGIN printed its line; bpftrace says "attached_probes" before attaching), and
    wait for them to end by themselves (the program's time bound)."""
    argv, env = container_argv([d for d in yaml.safe_load_all(manifest) if d])
    files = [out / f"node-{i}.json" for i in range(NODES)]
    procs = []
    for path in files:
        with open(path, "w") as fh:  # stdout and stderr in one log, as a pod's
            procs.append(subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **env}))
    deadline = time.monotonic() + 60
    while not all('"printf"' in p.read_text() for p in files):  # BEGIN's line: every probe is attached
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [p.read_text() for p in files]
        time.sleep(0.1)
    for i in range(NODES):
        subprocess.run(["dd", "if=/dev/zero", "of=/dev/null", f"bs={block_size(i)}", f"count={READS}"],
                       check=True, capture_output=True)
    for p in procs:
        assert p.wait(timeout=SECONDS + 60) == 0
    return files


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Two exported programs (a count and a histogram), each run as four nodes."""
    out = {}
    for kind, request, extra in (("counts", "count syscalls by process", ["--kind", "daemonset"]),
                                 ("hists", "histogram of read sizes", ["--kind", "job", "--node", "node-0"])):
        manifest = gpttrace("export", "k8s", "--offline", "--seconds", str(SECONDS), *extra, request).stdout
        where = tmp_path_factory.mktemp(kind)
        (where / "fleet.yaml").write_text(manifest)
        out[kind] = (where / "fleet.yaml", run_as_nodes(manifest, where))
    return out


def aggregates(path: Path) -> dict[str, object]:
    """One node's printed aggregates, read here without gpttrace: name -> value."""
    found: dict[str, object] = {}
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record["type"] in ("map", "hist", "stats") and record["data"]:
                found.update({k: v for k, v in record["data"].items() if v})
    return found


def merged(*args: str, stdin: str | None = None) -> dict[str, object]:
    r = gpttrace("merge", "--json", *args, stdin=stdin)
    return {name: value for line in r.stdout.splitlines() for record in [json.loads(line)]
            if record["type"] in ("map", "hist", "stats") and "node" not in record
            for name, value in record["data"].items()}


def hist_counts(buckets: list[dict[str, int]]) -> dict[tuple[int | None, int | None], int]:
    """Bucket -> count (an lhist's buckets below and above its range lack min or max)."""
    return {(b.get("min"), b.get("max")): b["count"] for b in buckets if b["count"]}


@pytest.mark.kernel
@pytest.mark.slow
def test_merged_counts_are_the_sum_of_the_nodes(fleet):
    manifest, files = fleet["counts"]
    nodes = [aggregates(f)["@count"] for f in files]
    for counts in nodes:  # each node saw every node's workload: READS reads and READS writes each
        assert counts["dd"] >= NODES * 2 * READS
    result = merged("--program", str(manifest), *map(str, files))["@count"]
    keys = set().union(*nodes)
    assert set(result) == keys
    for key in keys:
        assert result[key] == sum(n.get(key, 0) for n in nodes), key
    assert sum(result.values()) == sum(sum(n.values()) for n in nodes)


@pytest.mark.kernel
@pytest.mark.slow
def test_merged_histogram_is_the_sum_of_the_nodes_bucket_by_bucket(fleet):
    manifest, files = fleet["hists"]
    nodes = [hist_counts(aggregates(f)["@hist"]) for f in files]
    for counts in nodes:  # every node's bucket of each block size holds at least its READS reads
        for i in range(NODES):
            assert counts[(block_size(i), 2 * block_size(i) - 1)] >= READS
    for args in (["--program", str(manifest)], []):  # a histogram says what it is: no program needed
        result = merged(*args, *map(str, files))["@hist"]
        buckets = set().union(*nodes)
        assert hist_counts(result) == {b: sum(n.get(b, 0) for n in nodes) for b in buckets}
        lows = [b["min"] for b in result]
        assert lows == sorted(lows) and all(b["max"] + 1 == c["min"] for b, c in itertools.pairwise(result))


@pytest.mark.kernel
@pytest.mark.slow
def test_a_node_that_failed_or_printed_nothing_is_reported_not_fatal(fleet, tmp_path):
    manifest, files = fleet["counts"]
    empty = tmp_path / "node-empty.json"
    empty.write_text("")
    failed = tmp_path / "node-failed.log"
    failed.write_text("ERROR: Could not resolve symbol: /proc/self/exe:BEGIN_trigger\n")
    r = gpttrace("merge", "--json", "--program", str(manifest), *map(str, files), str(empty), str(failed))
    assert "left out node-empty: printed nothing" in r.stderr
    assert "left out node-failed: printed no bpftrace JSON: ERROR: Could not resolve symbol" in r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert records[0] == {"type": "nodes", "data": {"merged": [f"node-{i}" for i in range(NODES)],
                                                     "left_out": {"node-empty": records[0]["data"]["left_out"]
                                                                  ["node-empty"],
                                                                  "node-failed": records[0]["data"]["left_out"]
                                                                  ["node-failed"]}}}
    result = next(rec["data"]["@count"] for rec in records if rec["type"] == "map")
    nodes = [aggregates(f)["@count"] for f in files]
    assert result == {k: sum(n.get(k, 0) for n in nodes) for k in set().union(*nodes)}
    # a node that stopped before END (killed) is left out too, and says so
    cut = tmp_path / "node-cut.json"
    cut.write_text("\n".join(line for line in files[0].read_text().splitlines() if '"map"' not in line))
    r = gpttrace("merge", "--program", str(manifest), str(files[1]), str(cut))
    assert "left out node-cut: ended before printing its aggregates" in r.stderr
    # nothing to merge at all: exit 1
    r = gpttrace("merge", str(empty), str(failed), check=False)
    assert r.returncode == 1 and "no node's output could be merged" in r.stderr


@pytest.mark.kernel
@pytest.mark.slow
def test_one_kubectl_logs_prefix_stream_is_split_by_pod(fleet):
    manifest, files = fleet["counts"]
    streams = [[f"[pod/gpttrace-abc-{i}/trace] {line}" for line in f.read_text().splitlines()]
               for i, f in enumerate(files)]
    interleaved = [line for group in zip(*streams) for line in group]  # kubectl interleaves the pods' lines
    longest = max(streams, key=len)
    interleaved += longest[min(map(len, streams)):]
    interleaved += [s for stream in streams if stream is not longest for s in stream[min(map(len, streams)):]]
    from_stream = merged("--program", str(manifest), "-", stdin="\n".join(interleaved) + "\n")
    assert from_stream == merged("--program", str(manifest), *map(str, files))


@pytest.mark.kernel
@pytest.mark.slow
def test_text_and_by_node(fleet):
    manifest, files = fleet["counts"]
    r = gpttrace("merge", "--by-node", "--program", str(manifest), *map(str, files))
    assert "Count by comm" in r.stdout and "COMM" in r.stdout
    assert "-- all 4 nodes" in r.stdout and all(f"-- node-{i}" in r.stdout for i in range(NODES))
    r = gpttrace("merge", "--json", "--by-node", "--program", str(manifest), *map(str, files))
    per_node = {rec["node"]: rec["data"]["@count"] for line in r.stdout.splitlines()
                for rec in [json.loads(line)] if rec["type"] == "map" and "node" in rec}
    assert per_node == {f"node-{i}": aggregates(f)["@count"] for i, f in enumerate(files)}


@pytest.mark.kernel
def test_plain_maps_need_the_program(fleet):
    _, files = fleet["counts"]
    r = gpttrace("merge", *map(str, files), check=False)
    assert r.returncode == 2 and "--program" in r.stderr and r.stdout == ""


EVERY_KIND = """\
BEGIN
{
	printf("every kind of aggregate\\n");
}

tracepoint:syscalls:sys_enter_write
/comm == "dd"/
{
	@c[comm] = count();
	@s = sum(args->count);
	@mi[comm] = min(args->count);
	@ma = max(args->count);
	@a = avg(args->count);
	@st[comm] = stats(args->count);
	@l = lhist(args->count, 0, 5000, 1000);
	@k[comm, pid] = count();
	@i++;
}

interval:s:1
{
	print(@i);
	clear(@i);
}
"""


def prints(path: Path, name: str) -> list[object]:
    return [r["data"][name] for line in path.read_text().splitlines() if line.startswith("{")
            for r in [json.loads(line)] if r["type"] in ("map", "hist", "stats") and r["data"].get(name)]


@pytest.mark.kernel
@pytest.mark.slow
def test_every_kind_of_aggregate_combines_by_its_own_rule(tmp_path):
    program = tmp_path / "every.bt"
    program.write_text(EVERY_KIND)
    manifest = gpttrace("export", "k8s", "--program", str(program), "--seconds", "4").stdout
    (tmp_path / "fleet.yaml").write_text(manifest)
    files = run_as_nodes(manifest, tmp_path)
    nodes = [aggregates(f) for f in files]
    result = merged("--program", str(tmp_path / "fleet.yaml"), *map(str, files))
    keys = lambda name: set().union(*(n[name] for n in nodes))  # noqa: E731
    assert result["@c"] == {"dd": sum(n["@c"]["dd"] for n in nodes)} and result["@c"]["dd"] >= NODES * NODES * READS
    assert result["@s"] == sum(n["@s"] for n in nodes)
    assert result["@mi"] == {"dd": min(n["@mi"]["dd"] for n in nodes)}
    assert result["@ma"] == max(n["@ma"] for n in nodes) >= block_size(NODES - 1)
    assert result["@k"] == {k: sum(n["@k"].get(k, 0) for n in nodes) for k in keys("@k")}
    count = sum(n["@st"]["dd"]["count"] for n in nodes)
    total = sum(n["@st"]["dd"]["total"] for n in nodes)
    assert result["@st"] == {"dd": {"count": count, "average": total // count, "total": total}}
    assert hist_counts(result["@l"]) == {b: sum(hist_counts(n["@l"]).get(b, 0) for n in nodes)
                                         for b in set().union(*(hist_counts(n["@l"]) for n in nodes))}
    # printed and cleared every second: each print is an interval, and a node's prints add up
    assert result["@i"] == sum(sum(prints(f, "@i")) for f in files) == sum(n["@c"]["dd"] for n in nodes)
    # an average without its count is not combined: each node's is shown, and why
    assert "@a" not in result
    r = gpttrace("merge", "--json", "--program", str(program), *map(str, files))
    assert "@a: avg() prints no count" in r.stderr
    shown = {rec["node"]: rec["data"]["@a"] for line in r.stdout.splitlines() for rec in [json.loads(line)]
             if "@a" in rec.get("data", {})}
    assert shown == {f"node-{i}": n["@a"] for i, n in enumerate(nodes)}
