"""The C generator: expression trees compiled to C inside one probe function (integers, text, stored values)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...kernel.tracefs import TpField
from ...spec import expr as E
from ...spec.kinds import PACKET_KINDS
from .. import lower
from ..escape import ident
from ..lower import Context
from .ctext import COMM_LEN, JOIN_ARG_LEN, JOIN_ARGS, PT_REGS_ARGS, TASK_BUILTINS, RenderError, wrap
from .probes import ProbeFn
from .slots import Slot

if TYPE_CHECKING:
    from .builder import Builder


def _c_char(b: int) -> str:
    c = chr(b)
    return f"'{c}'" if " " <= c <= "~" and c not in "'\\" else str(b)


class CGen:
    """Compiles expression trees to C inside one probe function.

    ``value`` gives an integer C expression; ``fill`` gives statements that store a value into a struct
    member. Text values are read into buffers first: those statements collect in ``pre`` and the caller
    places them before the code that uses the expression."""

    def __init__(self, builder: Builder, fn: ProbeFn, ctx: Context, saved: dict[str, Slot] | None = None,
                 in_end: bool = False) -> None:
        self.b = builder
        self.fn = fn
        self.ctx = ctx
        self.saved = saved or {}
        self.in_end = in_end  # an end probe of a pair: delta and start.NAME exist
        self.pre: list[str] = []
        self.top: dict[str, list[str]] = {}  # statements at the top of the function (packet parsing, usdt args)
        self.ntemp = 0

    def top_lines(self) -> list[str]:
        """The statements collected for the top of the function, in the order they were first needed."""
        out: list[str] = []
        for lines in self.top.values():
            out += lines
        return out

    def take_pre(self) -> list[str]:
        out, self.pre = self.pre, []
        return out

    def temp(self, prefix: str = "t") -> str:
        self.ntemp += 1
        return f"{prefix}{self.ntemp}"

    # -- fields ---------------------------------------------------------------------------------------
    def tp_field(self, name: str) -> TpField:
        if self.fn.kind != "tracepoint":
            raise RenderError(f"args.{name}: only tracepoints have named fields; at {self.fn.probe.text} use "
                              "arg0..arg9 or retval")
        f = self.b.catalog.field(self.fn.probe, name)
        if f is None:
            tp = self.b.catalog.tracepoint(self.fn.probe)
            have = ", ".join(x.name for x in tp.user_fields) if tp else "(tracepoint not found)"
            raise RenderError(f"{self.fn.probe.text} has no field {name!r}; fields: {have}")
        return f

    # -- integers -------------------------------------------------------------------------------------
    def value(self, node: E.Node) -> tuple[str, bool]:
        """(C expression, signed) of an integer value."""
        if isinstance(node, E.Num):
            if node.value >= 1 << 64:
                raise RenderError(f"{node.value} does not fit in 64 bits")
            return (f"{node.value}ULL" if node.value >= 1 << 63 else str(node.value)), False
        if isinstance(node, E.Str):
            raise RenderError(f'the text "{node.value[:40]}" can only be compared (== or !=) with a text value')
        if isinstance(node, E.Builtin):
            return self.builtin(node.name)
        if isinstance(node, E.Field):
            f = self.tp_field(node.name)
            kind = f.kind
            if kind == "int":
                return f"args->{ident(f.name)}", f.signed
            if kind in ("ptr", "ptr_str"):
                return f"(u64)args->{ident(f.name)}", False
            if kind == "str":
                raise RenderError(f"args.{f.name} is text: compare it with == \"...\" or print it")
            raise RenderError(f"args.{f.name} is an array: use args.{f.name}[i] or ntop(args.{f.name})")
        if isinstance(node, E.Saved):
            slot = self.saved_slot(node.name)
            if not slot.is_number and slot.kind != "names":
                raise RenderError(f"start.{node.name} is not a number here: compare it with == \"...\" or print it")
            return f"st->{slot.member}", slot.signed
        if isinstance(node, E.Call):
            if node.fn == "strncmp":
                return self.prefix_differs(node), False
            raise RenderError(f"{node.fn}() gives text or a stack, not a number")
        if isinstance(node, E.Unary):
            inner, signed = self.value(node.operand)
            if node.op == "!":
                return f"!{wrap(inner)}", False
            if node.op == "-":
                return f"-(s64){wrap(inner)}", True
            return f"~{wrap(inner)}", signed
        if isinstance(node, E.Binary):
            if node.op in ("==", "!=") and (self.is_text(node.left) or self.is_text(node.right)):
                return self.text_compare(node), False
            left, ls = self.value(node.left)
            right, rs = self.value(node.right)
            if node.op in ("/", "%"):
                # BPF divides unsigned 64-bit numbers only
                return f"((u64){wrap(left)} {node.op} (u64){wrap(right)})", False
            if node.op in ("<", "<=", ">", ">="):
                cast = "(s64)" if ls or rs else "(u64)"
                return f"({cast}{wrap(left)} {node.op} {cast}{wrap(right)})", False
            if node.op in ("==", "!=", "&&", "||"):
                return f"({left} {node.op} {right})", False
            return f"({left} {node.op} {right})", ls or rs
        if isinstance(node, E.Ternary):
            if self.is_text(node.then) or self.is_text(node.other):
                raise RenderError("choosing between texts with ?: is not supported by the BCC backend")
            c, _ = self.value(node.cond)
            a, sa = self.value(node.then)
            o, so = self.value(node.other)
            return f"({c} ? {a} : {o})", sa or so
        if isinstance(node, E.Index):
            if not isinstance(node.base, E.Field):
                raise RenderError("only a tracepoint array field can be indexed (args.FIELD[i])")
            f = self.tp_field(node.base.name)
            if f.array is not None and node.index >= f.array:
                raise RenderError(f"args.{f.name} has {f.array} elements; [{node.index}] is outside it")
            if "*" in f.ctype and not f.array:  # a pointer to an array in user or kernel memory
                t = self.temp()
                self.pre += [f"u64 {t} = 0;",
                             f"bpf_probe_read_{self.space}(&{t}, sizeof({t}), &args->{ident(f.name)}[{node.index}]);"]
                return t, False
            return f"args->{ident(f.name)}[{node.index}]", f.signed
        raise TypeError(node)

    @property
    def space(self) -> str:
        return "user" if self.fn.user else "kernel"

    def builtin(self, name: str) -> tuple[str, bool]:
        k = self.fn.kind
        if k in PACKET_KINDS and name in TASK_BUILTINS:
            raise RenderError(f"{name} is not available at {self.fn.probe.text}: xdp/tc programs run for packets, "
                              "not in a process; use pkt_len, ip_proto, ip_src, src_port, ... or cpu")
        if name in E.PACKET_BUILTINS:
            if k not in PACKET_KINDS:
                raise RenderError(f"{name} is a packet value, only at xdp:IFACE or tc:IFACE:DIRECTION probes")
            self.top["packet"] = self.b.packet_parse(self.fn)
            return name, False
        simple = {
            "pid": ("(bpf_get_current_pid_tgid() >> 32)", False),
            "tid": ("(u32)bpf_get_current_pid_tgid()", False),
            "uid": ("(u32)bpf_get_current_uid_gid()", False),
            "gid": ("(bpf_get_current_uid_gid() >> 32)", False),
            "cpu": ("bpf_get_smp_processor_id()", False),
            "nsecs": ("bpf_ktime_get_ns()", False),
            "cgroup": ("bpf_get_current_cgroup_id()", False),
        }
        if name in simple:
            return simple[name]
        if name == "delta":
            if not self.in_end:
                raise RenderError("delta exists only at the end probes of a start/end pair")
            return "delta", False
        if name == "retval":
            if k in ("kretprobe", "uretprobe"):
                return "PT_REGS_RC(ctx)", True
            if k == "kretfunc":
                return "ret", True
            hint = "; at a syscall exit tracepoint use args.ret" if k == "tracepoint" else ""
            raise RenderError(f"retval is only set at return probes (uretprobe, kretprobe, kretfunc){hint}")
        if name.startswith("arg") and name[3:].isdigit():
            n = int(name[3:])
            if k in ("kprobe", "uprobe"):
                if n >= PT_REGS_ARGS:
                    raise RenderError(f"{name}: only the first {PT_REGS_ARGS} arguments (arg0..arg5) are in registers")
                return f"PT_REGS_PARM{n + 1}(ctx)", False
            if k in ("kfunc", "kretfunc", "lsm"):
                return name, False
            if k == "rawtracepoint":
                return f"ctx->args[{n}]", False
            if k == "usdt":
                var = f"usdt_arg{n}"
                self.top[var] = [f"u64 {var} = 0;", f"bpf_usdt_readarg({n + 1}, ctx, &{var});"]
                return var, True
            if k == "tracepoint":
                raise RenderError(f"{name}: tracepoints have named fields; use args.FIELD")
            raise RenderError(f"{name} is not available at {self.fn.probe.text}")
        if name in ("comm", "func", "probe"):
            raise RenderError(f"{name} is text: compare it with == \"...\" or print it")
        if name in ("kstack", "ustack"):
            raise RenderError(f"{name} is a stack: use it as a map key or a printed column")
        raise RenderError(f"unknown builtin {name}")

    def saved_slot(self, name: str) -> Slot:
        if not self.in_end or name not in self.saved:
            raise RenderError(f"start.{name} is only available at the end probes of a start/end pair")
        return self.saved[name]

    # -- text -----------------------------------------------------------------------------------------
    def is_text(self, node: E.Node) -> bool:
        if isinstance(node, E.Saved) and self.in_end and node.name in self.saved:
            return self.saved[node.name].kind == "str"
        if isinstance(node, E.Builtin) and node.name in ("func", "probe"):
            return True
        return lower.infer(node, self.ctx) in ("str", "ptr_str") or (
            isinstance(node, E.Call) and node.fn == "str")

    def read_str(self, node: E.Node, dst: str, size: int) -> list[str]:
        """Statements that put the text of ``node`` into the char array ``dst`` of ``size`` bytes."""
        if isinstance(node, E.Builtin) and node.name == "comm":
            if self.fn.kind in PACKET_KINDS:
                self.builtin("comm")
            return [f"bpf_get_current_comm(&{dst}, {min(size, COMM_LEN)});"]
        if isinstance(node, E.Str):
            data = node.value.encode("utf-8", "replace")[: size - 1] + b"\0"
            return [" ".join(f"{dst}[{i}] = {_c_char(c)};" for i, c in enumerate(data))]
        if isinstance(node, E.Saved):
            slot = self.saved_slot(node.name)
            if slot.kind != "str":
                raise RenderError(f"start.{node.name} is not text")
            return [f"bpf_probe_read_kernel_str(&{dst}, {min(size, slot.size)}, st->{slot.member});"]
        if isinstance(node, E.Field):
            f = self.tp_field(node.name)
            name = ident(f.name)
            if f.data_loc:
                return [f"bpf_probe_read_kernel_str(&{dst}, {size}, (char *)args + (args->data_loc_{name} & 0xFFFF));"]
            if f.kind == "str":
                return [f"bpf_probe_read_kernel_str(&{dst}, {size}, args->{name});"]
            if f.kind in ("ptr_str", "ptr", "int"):
                return [f"bpf_probe_read_{self.space}_str(&{dst}, {size}, (void *)args->{name});"]
            raise RenderError(f"args.{f.name} is not text")
        if isinstance(node, E.Call) and node.fn == "str":
            limit = size
            if len(node.args) == 2:
                n = node.args[1]
                assert isinstance(n, E.Num)
                if n.value < 1:
                    raise RenderError("str(x, n) needs n >= 1")
                limit = min(size, n.value)
            inner = node.args[0]
            if self.is_text(inner):
                return self.read_str(inner, dst, limit)
            ptr, _ = self.value(inner)
            return [*self.take_pre(), f"bpf_probe_read_{self.space}_str(&{dst}, {limit}, (void *)({ptr}));"]
        if isinstance(node, E.Index) and isinstance(node.base, E.Field):
            f = self.tp_field(node.base.name)
            p = self.temp("p")
            return [f"const char *{p} = NULL;",
                    f"bpf_probe_read_{self.space}(&{p}, sizeof({p}), &args->{ident(f.name)}[{node.index}]);",
                    f"bpf_probe_read_{self.space}_str(&{dst}, {size}, {p});"]
        if isinstance(node, E.Builtin) and node.name in ("func", "probe"):
            return self.read_str(E.Str(self.b.probe_label(self.fn, node.name)), dst, size)
        raise RenderError("this value is not text")

    def text_ref(self, node: E.Node, need: int | None = None) -> tuple[str, int]:
        """A char array holding the text of ``node``, read into a temporary if needed (of ``need`` bytes at
        most: the BPF stack has 512)."""
        if isinstance(node, E.Saved):
            slot = self.saved_slot(node.name)
            return f"st->{slot.member}", slot.size
        size = self.b.text_size(node, self.ctx)
        if need is not None:
            size = min(size, need)
        t = self.temp()
        self.pre += [f"char {t}[{size}];", *self.read_str(node, t, size)]
        return t, size

    def text_compare(self, node: E.Binary) -> str:
        left, right = node.left, node.right
        if isinstance(left, E.Str) and not isinstance(right, E.Str):
            left, right = right, left
        if isinstance(right, E.Str):
            if isinstance(left, E.Str):
                same = left.value == right.value
            elif isinstance(left, E.Builtin) and left.name in ("func", "probe"):
                same = self.b.probe_label(self.fn, left.name) == right.value
            else:
                if not self.is_text(left):
                    raise RenderError(f'"{right.value[:40]}" is text; the other side of {node.op} is a number')
                data = right.value.encode("utf-8", "replace")
                # one byte more than the literal and its NUL: a longer text cannot look equal when cut short
                buf, size = self.text_ref(left, len(data) + 2)
                if len(data) >= size:
                    eq = "0"  # longer than the text can be
                else:
                    eq = "(" + " && ".join(f"{buf}[{i}] == {_c_char(c)}" for i, c in enumerate(data + b"\0")) + ")"
                return f"!{eq}" if node.op == "!=" else eq
            return "1" if same == (node.op == "==") else "0"
        if not (self.is_text(left) and self.is_text(right)):
            raise RenderError(f"{node.op} compares a text with a number")
        a, sa = self.text_ref(left)
        c, sc = self.text_ref(right)
        n = min(sa, sc)
        self.b.need_streq(n)
        eq = f"str_eq_{n}({a}, {c})"
        return f"!{eq}" if node.op == "!=" else eq

    def prefix_differs(self, node: E.Call) -> str:
        """strncmp(x, "text", n) as bpftrace has it: 0 when the first n characters agree (a shorter x ends with
        its NUL where "text" goes on, and differs)."""
        text, literal, n = node.args
        assert isinstance(literal, E.Str) and isinstance(n, E.Num)
        if not self.is_text(text):
            raise RenderError("strncmp() compares a text with a literal")
        data = (literal.value.encode("utf-8", "replace") + b"\0")[: n.value]
        buf, size = self.text_ref(text, len(data) + 1)
        if len(data) > size:
            return "1"  # the text cannot hold that many characters
        return "!(" + " && ".join(f"{buf}[{i}] == {_c_char(c)}" for i, c in enumerate(data)) + ")"

    def cond(self, text: str) -> str:
        c, _ = self.value(E.parse(text))
        return c

    def agg_prelude(self, map_name: str, keyed: bool, slots: list[Slot], value: str | None) -> tuple[list[str], str]:
        """Statements that fill an aggregate's key struct ``k`` (when keyed) and compute its value; the value's C
        expression ("" without one)."""
        body: list[str] = []
        if keyed:
            body += [f"struct {map_name}_key_t k;", "__builtin_memset(&k, 0, sizeof(k));"]
            for s in slots:
                body += self.fill(s, "k.")
        val = ""
        if value:
            val, _ = self.value(E.parse(value))
            body += self.take_pre()
        return body, val

    # -- storing values -------------------------------------------------------------------------------
    def fill(self, slot: Slot, dst: str, node: E.Node | None = None) -> list[str]:
        """Statements storing the slot's value into ``dst.<member>`` (dst like 'e->' or 'k.')."""
        node = node if node is not None else slot.node
        assert node is not None
        m = f"{dst}{slot.member}"
        k = slot.kind
        if isinstance(node, E.Saved) and k not in ("int", "hex", "oct", "names", "str"):
            src = self.saved_slot(node.name)
            if src.kind != k:
                raise RenderError(f"start.{node.name} cannot be shown as {k}")
            extra = [f"{m}_pid = st->{src.member}_pid;"] if k in ("ustack", "usym") else []
            if k in ("ip4", "ip6"):
                return [f"__builtin_memcpy({m}, st->{src.member}, sizeof({m}));"]
            return [f"{m} = st->{src.member};", *extra]
        if k in ("int", "hex", "oct", "names"):
            v, _ = self.value(node)
            return [*self.take_pre(), f"{m} = {v};"]
        if k == "str":
            return [*self.take_pre(), *self.read_str(node, m, slot.size)]
        if k in ("ip4", "ip6"):
            inner = node.args[0] if isinstance(node, E.Call) and node.fn == "ntop" else node
            if isinstance(inner, E.Field):
                f = self.tp_field(inner.name)
                return [f"bpf_probe_read_kernel(&{m}, sizeof({m}), args->{ident(f.name)});"]
            raise RenderError("an IPv4/IPv6 address array must be a tracepoint field")
        if k == "ip4int":
            inner = node.args[0] if isinstance(node, E.Call) and node.fn == "ntop" else node
            v, _ = self.value(inner)
            return [*self.take_pre(), f"{m} = (u32)({v});"]
        if k in ("kstack", "ustack"):
            if self.fn.kind in PACKET_KINDS:
                self.builtin(k)
            self.b.need_stacks()
            if k == "kstack":
                return [f"{m} = stacks.get_stackid({self.fn.ctx}, 0);"]
            return [f"{m} = stacks.get_stackid({self.fn.ctx}, BPF_F_USER_STACK);",
                    f"{m}_pid = bpf_get_current_pid_tgid() >> 32;"]
        if k in ("ksym", "usym"):
            inner = node.args[0] if isinstance(node, E.Call) and node.fn in ("ksym", "usym") else node
            v, _ = self.value(inner)
            out = [*self.take_pre(), f"{m} = {v};"]
            if k == "usym":
                out.append(f"{m}_pid = bpf_get_current_pid_tgid() >> 32;")
            return out
        if k in ("probe", "func"):
            return [f"{m} = {self.fn.index};"]
        if k == "join":
            inner = node.args[0] if isinstance(node, E.Call) else node
            if not isinstance(inner, E.Field):
                raise RenderError("join() takes an argv field of a tracepoint, e.g. join(args.argv)")
            f = self.tp_field(inner.name)
            return [
                "#pragma unroll",
                f"for (int i = 0; i < {JOIN_ARGS}; i++)",
                f"    {m}[i][0] = 0;",
                "#pragma unroll",
                f"for (int i = 0; i < {JOIN_ARGS}; i++) {{",
                "    const char *arg = NULL;",
                f"    bpf_probe_read_{self.space}(&arg, sizeof(arg), &args->{ident(f.name)}[i]);",
                "    if (!arg)",
                "        break;",
                f"    bpf_probe_read_{self.space}_str(&{m}[i], {JOIN_ARG_LEN}, arg);",
                "}",
            ]
        raise AssertionError(k)
