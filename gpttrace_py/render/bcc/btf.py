"""The kernel's BTF, read just enough to know how many arguments each kernel function takes (for kfunc and
kretfunc probes, whose C function must declare them all)."""

from __future__ import annotations

import struct
from functools import lru_cache


@lru_cache(maxsize=1)
def _btf_functions(path: str = "/sys/kernel/btf/vmlinux") -> dict[str, int]:
    """Kernel function name → number of arguments, read from the kernel's BTF."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return {}
    if len(data) < 24 or struct.unpack_from("<H", data, 0)[0] != 0xEB9F:
        return {}
    hdr_len, type_off, type_len, str_off, _str_len = struct.unpack_from("<IIIII", data, 4)
    types_at = hdr_len + type_off
    strings_at = hdr_len + str_off
    extra = {1: 4, 3: 12, 14: 4, 17: 4}  # kind → fixed bytes after the common header
    per_member = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}  # kind → bytes per vlen entry
    protos: dict[int, int] = {}
    funcs: list[tuple[int, int]] = []
    pos, end, tid = types_at, types_at + type_len, 1
    unpack = struct.Struct("<III").unpack_from
    while pos + 12 <= end:
        name_off, info, size_type = unpack(data, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        pos += 12
        if kind == 13:
            # a trailing parameter of type 0 marks a variadic function; it is not an argument
            protos[tid] = vlen - (1 if vlen and struct.unpack_from("<I", data, pos + 8 * (vlen - 1) + 4)[0] == 0 else 0)
        elif kind == 12:
            funcs.append((name_off, size_type))
        pos += extra.get(kind, 0) + per_member.get(kind, 0) * vlen
        tid += 1
    out: dict[str, int] = {}
    for name_off, proto in funcs:
        if proto in protos:
            s = strings_at + name_off
            out.setdefault(data[s:data.index(b"\0", s)].decode("ascii", "replace"), protos[proto])
    return out


def btf_func_arg_count(name: str) -> int | None:
    return _btf_functions().get(name)
