"""Start a BCC program, reusing the bytecode of an identical earlier compile.

Runs inside the interpreter that has BCC (``/usr/bin/python3``), not inside gpttrace:

    python3 bcc_cache.py --cache-dir DIR PROGRAM.py [PROGRAM ARGS...]

BCC compiles its C text with clang every time a program starts: 0.3-1 s of CPU even for a tiny program
(clang parses BCC's helper headers and the kernel headers, and BCC reads /proc/kallsyms). This launcher
replaces ``bcc.BPF`` with a subclass and then runs the program unchanged. The subclass compiles as usual
the first time and saves what the compile produced: each function's instructions (with the places that
refer to a map) and each map's definition. When the same C text starts again on the same kernel with the
same BCC, it creates the maps, patches their file descriptors into the instructions and loads the functions
without clang. The kernel verifier still checks every function on every load.

Anything unusual (USDT, cflags, debug flags, functions BCC attaches by name such as kfunc__/lsm__,
instructions that refer to anything but a map) is not cached, and any problem with a cache entry falls
back to compiling. Entries live in DIR (mode 0700) and are only used when they belong to this user and are
not writable by others, since what they hold is loaded into the kernel.
"""

from __future__ import annotations

import base64
import ctypes as ct
import hashlib
import json
import os
import runpy
import sys
import time
from types import ModuleType
from typing import TypedDict, cast

FORMAT = 1
MAX_ENTRIES = 200  # cache files kept (the oldest are removed)
AUTOLOAD_PREFIXES = (b"kprobe__", b"kretprobe__", b"tracepoint__", b"raw_tracepoint__", b"kfunc__",
                     b"kretfunc__", b"kmod_ret__", b"lsm__", b"bpf_iter__")
BPF_LD_IMM64 = 0x18
BPF_PSEUDO_MAP_FD = 1


class TableMeta(TypedDict):
    """A map, as the compile defined it."""

    id: int
    name: str
    type: int
    key_size: int
    leaf_size: int
    max_entries: int
    flags: int
    key_desc: str
    leaf_desc: str


class FunctionCode(TypedDict):
    insns: str  # base64 of the instructions
    relocs: list[list[int]]  # [instruction index, table id]: where a map's file descriptor goes


class Entry(TypedDict):
    """What one compile produced (a cache file)."""

    format: int
    key: str
    bcc: str
    kernel: str
    license: str
    kern_version: int
    tables: list[TableMeta]
    functions: dict[str, FunctionCode]


def _timing(message: str) -> None:
    if os.environ.get("GPTTRACE_BCC_TIMING"):
        sys.stderr.write(f"gpttrace-bcc-cache: {message}\n")


def _possible_cpus() -> str:
    try:
        with open("/sys/devices/system/cpu/possible") as fh:
            return fh.read().strip()
    except OSError:
        return str(os.cpu_count())


def cache_key(text: bytes, bcc_version: str) -> str:
    u = os.uname()
    h = hashlib.sha256()
    for part in (str(FORMAT), bcc_version, u.release, u.version, u.machine, _possible_cpus()):
        h.update(part.encode() + b"\0")
    h.update(text)
    return h.hexdigest()


def _safefs() -> ModuleType:
    """gpttrace's safefs module, loaded by path (this runs in BCC's interpreter, without gpttrace's package)."""
    import importlib.util

    mod = sys.modules.get("gpttrace_safefs")
    if mod is None:
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "safefs.py")
        spec = importlib.util.spec_from_file_location("gpttrace_safefs", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        mod = importlib.util.module_from_spec(spec)
        sys.modules["gpttrace_safefs"] = mod
        spec.loader.exec_module(mod)
    return mod


def _read_entry(cache_dir: str, key: str) -> Entry | None:
    """The entry for ``key``, read through safefs (the directory's whole path and the file are root's or this
    user's, writable by nobody else, opened by descriptor without following symlinks)."""
    d = _safefs().trusted(cache_dir)
    if d is None:
        return None
    with d:
        blob = d.get_bytes(key + ".json")
        if blob is None:
            return None
        try:
            entry = json.loads(blob)
        except ValueError:
            return None
        if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry.get("key") != key:
            return None
        d.touch(key + ".json")  # most recently used
    return cast(Entry, entry)


def _write_entry(cache_dir: str, key: str, entry: Entry) -> None:
    with _safefs().TrustedDir(cache_dir, create=True) as d:
        d.write_text(key + ".json", json.dumps(entry))
        try:
            files = [f for f in d.names() if f.endswith(".json") and not f.startswith(".")]
            if len(files) > MAX_ENTRIES:
                files.sort(key=lambda f: d.lstat(f).st_mtime)
                for f in files[: len(files) - MAX_ENTRIES]:
                    d.unlink(f)
        except OSError:
            pass


def install(cache_dir: str) -> None:
    """Replace bcc.BPF with the caching subclass (before the program imports it)."""
    import bcc
    from bcc import table as bcc_table
    from bcc.libbcc import lib

    sig = {
        "bpf_num_functions": (ct.c_ulonglong, [ct.c_void_p]),
        "bpf_num_tables": (ct.c_ulonglong, [ct.c_void_p]),
        "bpf_table_name": (ct.c_char_p, [ct.c_void_p, ct.c_ulonglong]),
        "bpf_table_fd_id": (ct.c_int, [ct.c_void_p, ct.c_ulonglong]),
        "bpf_table_key_size_id": (ct.c_size_t, [ct.c_void_p, ct.c_ulonglong]),
        "bpf_table_leaf_size_id": (ct.c_size_t, [ct.c_void_p, ct.c_ulonglong]),
        "bpf_table_key_desc_id": (ct.c_char_p, [ct.c_void_p, ct.c_ulonglong]),
        "bpf_table_leaf_desc_id": (ct.c_char_p, [ct.c_void_p, ct.c_ulonglong]),
        "bcc_create_map": (ct.c_int, [ct.c_int, ct.c_char_p, ct.c_int, ct.c_int, ct.c_int, ct.c_int]),
        "bcc_prog_load": (ct.c_int, [ct.c_int, ct.c_char_p, ct.c_void_p, ct.c_int, ct.c_char_p, ct.c_uint, ct.c_int,
                                     ct.c_char_p, ct.c_uint]),
    }
    for name, (restype, argtypes) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    version = getattr(bcc, "__version__", "") or ""
    Base = bcc.BPF

    class _TableQueries:
        """Stands in for libbcc in bcc.table while a table object is built: the three questions it asks the
        (absent) compiled module are answered from the cache entry."""

        def __init__(self, meta: TableMeta) -> None:
            self._meta = meta

        def bpf_table_type_id(self, module: object, map_id: int) -> int:
            return self._meta["type"]

        def bpf_table_flags_id(self, module: object, map_id: int) -> int:
            return self._meta["flags"]

        def bpf_table_max_entries_id(self, module: object, map_id: int) -> int:
            return self._meta["max_entries"]

        def __getattr__(self, name: str) -> object:
            return getattr(lib, name)

    class CachingBPF(Base):  # type: ignore[misc,valid-type]  # bcc has no type information: BPF is Any
        def __init__(self, src_file: bytes | str = b"", hdr_file: bytes | str = b"", text: bytes | str | None = None,
                     debug: int = 0, cflags: list[str] | None = None, usdt_contexts: list[object] | None = None,
                     allow_rlimit: bool = True, device: str | None = None,
                     attach_usdt_ignore_pid: bool = False) -> None:
            cflags = cflags or []
            usdt_contexts = usdt_contexts or []
            self._cached: Entry | None = None
            key = None
            data = text.encode() if isinstance(text, str) else text
            if data and not src_file and not hdr_file and not debug and not cflags and not usdt_contexts \
                    and device is None and allow_rlimit:
                key = cache_key(data, version)
                entry = _read_entry(cache_dir, key)
                if entry is not None:
                    started = time.monotonic()
                    try:
                        self._init_cached(entry)
                        _timing(f"cached object: maps created in {time.monotonic() - started:.3f} s (no compile)")
                        return
                    except Exception as exc:  # a stale or broken entry: compile instead
                        _timing(f"cached object unusable ({exc}); compiling")
                        self._release_maps()
                        self._cached = None
            started = time.monotonic()
            super().__init__(src_file=src_file, hdr_file=hdr_file, text=text, debug=debug, cflags=cflags,
                             usdt_contexts=usdt_contexts, allow_rlimit=allow_rlimit, device=device,
                             attach_usdt_ignore_pid=attach_usdt_ignore_pid)
            _timing(f"compiled in {time.monotonic() - started:.3f} s")
            if key is not None:
                try:
                    entry = self._snapshot(key)
                    if entry is not None:
                        _write_entry(cache_dir, key, entry)
                except Exception as exc:
                    _timing(f"not cached: {exc}")

        # -- saving ---------------------------------------------------------------------------------
        def _snapshot(self, key: str) -> Entry | None:
            module = self.module
            tables: list[TableMeta] = []
            by_fd: dict[int, int] = {}
            for i in range(lib.bpf_num_tables(module)):
                fd = lib.bpf_table_fd_id(module, i)
                by_fd[fd] = i
                tables.append({
                    "id": i,
                    "name": lib.bpf_table_name(module, i).decode(),
                    "type": lib.bpf_table_type_id(module, i),
                    "key_size": lib.bpf_table_key_size_id(module, i),
                    "leaf_size": lib.bpf_table_leaf_size_id(module, i),
                    "max_entries": lib.bpf_table_max_entries_id(module, i),
                    "flags": lib.bpf_table_flags_id(module, i),
                    "key_desc": (lib.bpf_table_key_desc_id(module, i) or b"").decode(),
                    "leaf_desc": (lib.bpf_table_leaf_desc_id(module, i) or b"").decode(),
                })
            functions: dict[str, FunctionCode] = {}
            for i in range(lib.bpf_num_functions(module)):
                name = lib.bpf_function_name(module, i)
                if name.startswith(AUTOLOAD_PREFIXES):
                    return None  # BCC attaches these itself while compiling
                start = lib.bpf_function_start(module, name)
                size = lib.bpf_function_size(module, name)
                insns = ct.string_at(start, size)
                relocs: list[list[int]] = []
                j = 0
                while j < len(insns) // 8:
                    code, regs = insns[8 * j], insns[8 * j + 1]
                    if code == BPF_LD_IMM64:
                        src = regs >> 4
                        if src == BPF_PSEUDO_MAP_FD:
                            fd = int.from_bytes(insns[8 * j + 4: 8 * j + 8], "little", signed=True)
                            if fd not in by_fd:
                                return None
                            relocs.append([j, by_fd[fd]])
                        elif src != 0:
                            return None  # map values, BTF ids...: not something this cache rebuilds
                        j += 2
                        continue
                    j += 1
                functions[name.decode()] = {"insns": base64.b64encode(insns).decode(), "relocs": relocs}
            return {
                "format": FORMAT,
                "key": key,
                "bcc": version,
                "kernel": os.uname().release,
                "license": (lib.bpf_module_license(module) or b"GPL").decode(),
                "kern_version": lib.bpf_module_kern_version(module),
                "tables": tables,
                "functions": functions,
            }

        # -- loading --------------------------------------------------------------------------------
        def _init_cached(self, entry: Entry) -> None:
            # The attributes BPF.__init__ sets, without a compiled module.
            self.kprobe_fds: dict[object, object] = {}
            self.uprobe_fds: dict[object, object] = {}
            self.tracepoint_fds: dict[object, object] = {}
            self.raw_tracepoint_fds: dict[object, object] = {}
            self.kfunc_entry_fds: dict[object, object] = {}
            self.kfunc_exit_fds: dict[object, object] = {}
            self.lsm_fds: dict[object, object] = {}
            self.perf_buffers: dict[object, object] = {}
            self.open_perf_events: dict[object, object] = {}
            self._ringbuf_manager = None
            self.tracefile = None
            self.debug = 0
            self.funcs: dict[bytes, object] = {}
            self.tables: dict[bytes, object] = {}
            self.module = None
            self._map_fds: dict[int, int] = {}
            for t in entry["tables"]:
                fd = lib.bcc_create_map(t["type"], t["name"].encode(), t["key_size"], t["leaf_size"],
                                        t["max_entries"], t["flags"])
                if fd < 0:
                    raise OSError(ct.get_errno(), f"cannot create map {t['name']}: {os.strerror(ct.get_errno())}")
                self._map_fds[t["id"]] = fd
            self._code: dict[bytes, bytes] = {}
            for name, fn in entry["functions"].items():
                insns = bytearray(base64.b64decode(fn["insns"]))
                for j, table in fn["relocs"]:
                    insns[8 * j + 4: 8 * j + 8] = self._map_fds[table].to_bytes(4, "little", signed=True)
                self._code[name.encode()] = bytes(insns)
            self._cached = entry
            import atexit

            atexit.register(self.cleanup)

        def _release_maps(self) -> None:
            for fd in getattr(self, "_map_fds", {}).values():
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._map_fds = {}

        def load_func(self, func_name: bytes | str, prog_type: int, device: str | None = None,
                      attach_type: int = -1) -> object:
            if self._cached is None:
                return super().load_func(func_name, prog_type, device, attach_type)
            name = func_name.encode() if isinstance(func_name, str) else func_name
            if name in self.funcs:
                return self.funcs[name]
            if name not in self._code:
                raise Exception(f"Unknown program {name!r}")
            code = self._code[name]
            buf = ct.create_string_buffer(code, len(code))
            license = self._cached["license"].encode()
            fd = lib.bcc_prog_load(prog_type, name, buf, len(code), license, self._cached["kern_version"], 0,
                                   None, 0)
            if fd < 0:
                err = ct.get_errno()
                size = 1 << 22
                log = ct.create_string_buffer(size)
                again = lib.bcc_prog_load(prog_type, name, buf, len(code), license, self._cached["kern_version"], 1,
                                          log, size)
                if again >= 0:
                    fd = again
                else:
                    sys.stderr.write("bpf: Failed to load program: {}\n{}\n".format(
                        os.strerror(err), log.value.decode("utf-8", "replace")))
                    raise Exception(f"Failed to load BPF program {name!r}: {os.strerror(err)}")
            fn = Base.Function(self, name, fd)
            self.funcs[name] = fn
            return fn

        def get_table(self, name: bytes | str, keytype: object = None, leaftype: object = None,
                      reducer: object = None) -> object:
            if self._cached is None:
                return super().get_table(name, keytype, leaftype, reducer)
            name = name.encode() if isinstance(name, str) else name
            meta = next((t for t in self._cached["tables"] if t["name"].encode() == name), None)
            if meta is None:
                raise KeyError(name)
            if keytype is None:
                keytype = Base._decode_table_type(json.loads(meta["key_desc"]))
            if leaftype is None:
                leaftype = Base._decode_table_type(json.loads(meta["leaf_desc"]))
            saved = bcc_table.lib
            bcc_table.lib = _TableQueries(meta)
            try:
                return bcc_table.Table(self, meta["id"], self._map_fds[meta["id"]], keytype, leaftype, name,
                                       reducer=reducer)
            finally:
                bcc_table.lib = saved

        def cleanup(self) -> None:
            super().cleanup()
            if self._cached is not None:
                self._release_maps()

    bcc.BPF = CachingBPF


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] != "--cache-dir":
        sys.stderr.write("usage: bcc_cache.py --cache-dir DIR PROGRAM.py [ARGS...]\n")
        return 2
    cache_dir, program, args = argv[1], argv[2], argv[3:]
    try:
        install(cache_dir)
    except Exception as exc:  # no usable BCC internals: run the program as it is
        _timing(f"cache disabled: {exc}")
    sys.argv = [program, *args]
    runpy.run_path(program, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
