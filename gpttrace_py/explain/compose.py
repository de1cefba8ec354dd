"""Turn what the scanners found into the explanation: probes, walkthrough, filters, maps, names, output,
overhead and lessons to read next."""

from __future__ import annotations

import re

from ..kernel.catalog import Catalog
from . import lessons
from .bt import printf_pairs
from .doc import Code, Document, Item, Para, Section, Table
from .glossary import Entry, Glossary
from .model import MapInfo, Probe, ProgramModel
from .probes import KERNEL_FUNCTION_KINDS, RATE_ORDER, ProbeFacts, facts, field_hint, stable_alternatives
from .source import split_logical, split_top, strip_parens

HIGH = {"high", "very high"}
KEY_REASONS = {
    "tid": "the start and the end of one operation happen on the same thread, and several threads can be in the "
    "middle of the same operation at once",
    "pid": "one entry per process",
    "cpu": "the two events of a pair happen on the same CPU (an interrupt cannot move)",
}


def compose(
    model: ProgramModel, catalog: Catalog, g: Glossary, *, path: str | None = None, listing: bool = True
) -> Document:
    c = _Composer(model, catalog, g, path)
    return c.document(listing)


class _Composer:
    def __init__(self, model: ProgramModel, catalog: Catalog, g: Glossary, path: str | None) -> None:
        self.m = model
        self.catalog = catalog
        self.g = g
        self.path = path
        self.facts: list[ProbeFacts] = []
        for p in model.probes:
            used = model.blocks[p.block].fields_used if p.block is not None and p.block < len(model.blocks) else []
            self.facts.append(facts(p, catalog, g, used))
        self.suggested: list[str] = []

    # -- helpers -------------------------------------------------------------------------------------
    @property
    def bt(self) -> bool:
        return self.m.backend == "bpftrace"

    def block_label(self, index: int | None) -> str:
        if index is None or index >= len(self.m.blocks):
            return "?"
        b = self.m.blocks[index]
        if b.function == "__outside__":
            return "code spliced in by the Python"
        if b.function:
            return f"{b.function}()"
        return b.label if len(b.label) < 70 else b.label[:67] + "..."

    def probes_of(self, index: int | None) -> str:
        if index is None or index >= len(self.m.blocks):
            return "?"
        texts = [self.m.probes[i].text for i in self.m.blocks[index].probes]
        return ", ".join(texts) if texts else self.block_label(index)

    def is_event_block(self, index: int | None) -> bool:
        if index is None or index >= len(self.m.blocks):
            return False
        kinds = {self.m.probes[i].kind for i in self.m.blocks[index].probes}
        return bool(kinds) and not kinds <= {"BEGIN", "END", "interval"}

    def block_kinds(self, index: int | None) -> set[str]:
        if index is None or index >= len(self.m.blocks):
            return set()
        return {self.m.probes[i].kind for i in self.m.blocks[index].probes}

    # -- the document --------------------------------------------------------------------------------
    def document(self, listing: bool) -> Document:
        m = self.m
        what = ("bpftrace script" if self.bt else "libbpf program (C for the kernel side)" if m.libbpf
                else "BCC program (Python with embedded C)")
        title = f"How this {what} works"
        if m.title:
            title += ": " + " ".join(m.title.split())
        doc = Document(title)
        doc.intro = self.intro()
        if listing:
            doc.sections.append(
                Section("program", "Program", [Code(m.text.rstrip("\n"), "c" if self.bt else "python")])
            )
        doc.sections.append(self.probes_section())
        doc.sections.append(self.walkthrough())
        doc.sections.append(self.filters_section())
        doc.sections.append(self.maps_section())
        doc.sections.append(self.names_section())
        doc.sections.append(self.output_section())
        doc.sections.append(self.overhead_section())
        doc.sections.append(self.next_section())
        return doc

    # -- intro ---------------------------------------------------------------------------------------
    def intro(self) -> list:
        m = self.m
        out: list = []
        kinds: dict[str, int] = {}
        for p in m.probes:
            if p.kind not in ("BEGIN", "END"):
                kinds[p.kind] = kinds.get(p.kind, 0) + 1
        counted = ", ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in kinds.items()) or "no event probes"
        does = self.summary_actions()
        lang = "bpftrace script" if self.bt else "libbpf program" if m.libbpf else "BCC program"
        out.append(Para(f"This {lang} attaches to {counted}. {does}"))
        if m.libbpf:
            out.append(
                Para(
                    "This is the kernel side of a libbpf (CO-RE) tool: clang compiles it to a BPF object, and a "
                    "loader (C on libbpf's skeleton, or Go on cilium/ebpf) loads it, attaches each function at "
                    "the place its SEC() names, and reads its maps."
                )
            )
        elif not self.bt:
            out.append(
                Para(
                    "A BCC program has two halves: C code that BCC compiles with clang and loads into the "
                    "kernel, where it runs at each probe, and Python that loads it, attaches it and reads "
                    "its results." + (f" Here {m.python.source_note}." if m.python and m.python.source_note else "")
                )
            )
        if not m.probes:
            out.append(
                Para(
                    "No probe was found: this does not look like a complete bpftrace script or BCC "
                    "program (use --backend to say which it is).",
                    "warn",
                )
            )
        missing = [f for f in self.facts if f.available is False]
        if missing:
            names = ", ".join(sorted({f.probe.text for f in missing}))
            out.append(
                Para(
                    f"Warning: {len(missing)} probe(s) are NOT AVAILABLE on this kernel ({names}); "
                    "see Probes for why and what to use instead.",
                    "warn",
                )
            )
        own = lessons.same_program(m)
        if own is not None:
            lesson = f", tutorial lesson {own.lesson}" if own.lesson else ""
            out.append(
                Para(
                    f"This is the corpus example {own.id} ({own.title}{lesson}); "
                    f"run it with `gpttrace examples run {own.id}`."
                )
            )
        out.append(Para(self.how_to_run(), "dim"))
        for note in m.notes:
            out.append(Para(note, "dim"))
        return out

    def summary_actions(self) -> str:
        m = self.m
        parts = []
        per_event = [b for i, b in enumerate(m.blocks) if b.prints and self.is_event_block(i)]
        aggs = sorted({a.func for mp in m.maps.values() for a in mp.accesses if a.op == "aggregate" and a.func})
        starts = [mp.name for mp in m.maps.values() if self.map_role(mp)[0] == "start"]
        if starts:
            parts.append(f"It remembers a start time in {', '.join(starts)} and measures how long each operation takes")
        if per_event and self.bt:
            parts.append("it prints one line per event")
        if aggs:
            parts.append("it aggregates in the kernel with " + ", ".join(f"{a}()" for a in aggs))
        if not self.bt:
            counts = [mp.name for mp in m.maps.values() if "increment" in mp.ops()]
            if counts:
                parts.append(f"it counts in the kernel in {', '.join(counts)}")
            subs = [mp.name for mp in m.maps.values() if "submit" in mp.ops()]
            if subs:
                parts.append(f"it sends a record per event to user space through {', '.join(subs)}")
            if "bpf_trace_printk" in m.uses:
                parts.append("it writes messages to the kernel trace pipe")
        if not parts:
            return "It runs the blocks described below."
        s = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
        s = s[0].upper() + s[1:] + "."
        if self.bt and aggs:
            s += " The aggregates are printed when you stop it (Ctrl-C)."
        return s

    def how_to_run(self) -> str:
        f = self.catalog.features
        name = self.path if self.path and self.path != "-" else "PROGRAM"
        if self.bt:
            if f.bpftrace:
                return (
                    f"Run it with `sudo bpftrace {name}` (bpftrace {f.bpftrace_version or '?'} is at {f.bpftrace}), "
                    "or through gpttrace; stop it with Ctrl-C."
                )
            return "bpftrace is not installed here; install it to run this script."
        if self.m.libbpf:
            return ("Build it with `make` in its project directory (clang, bpftool and libbpf, or Go with bpf2go), "
                    "then run the tool it builds as root; stop it with Ctrl-C.")
        from ..kernel.features import find_bcc_python

        py = f.bcc_python or find_bcc_python()
        if py:
            return f"Run it with `sudo {py} {name}` ({py} can import bcc); stop it with Ctrl-C."
        return "No Python on this machine can import bcc (install python3-bpfcc or bcc's Python module) to run it."

    # -- probes ----------------------------------------------------------------------------------------
    def probes_section(self) -> Section:
        s = Section("probes", "Probes")
        if not self.m.probes:
            s.blocks.append(
                Para(
                    "No probe found: nothing attaches this program to an event."
                    + (
                        ""
                        if self.bt
                        else " (BCC attaches functions named kprobe__*, tracepoint__*, "
                        "TRACEPOINT_PROBE(), or the ones passed to attach_*() calls.)"
                    )
                )
            )
            return s
        kinds_seen: list[str] = []
        for p in self.m.probes:
            if p.kind not in kinds_seen:
                kinds_seen.append(p.kind)
        intro = []
        for k in kinds_seen:
            e = self.g.probe_kind(k)
            if e:
                intro.append(Item(k, e.text + (f" Stability: {e.get('stability')}." if e.get("stability") else "")))
            else:
                intro.append(Item(k, "a probe kind not in the glossary", style="warn"))
        s.blocks.append(Para("Kinds of probes used:"))
        s.blocks.extend(intro)
        s.blocks.append(Para(""))
        done: set[str] = set()
        for f in self.facts:
            key = f"{f.probe.text}@{f.probe.block}"
            if key in done:
                continue
            done.add(key)
            s.blocks.append(self.probe_item(f))
        return s

    def probe_item(self, f: ProbeFacts) -> Item:
        p = f.probe
        head = p.text
        if self.bt and p.canonical != p.text and not p.wildcard and p.kind not in ("BEGIN", "END"):
            head += f" (= {p.canonical})"
        it = Item(head, f"line {p.line}", style="warn" if f.available is False else "")
        it.sub.append(f"Fires {f.fires}.")
        stable = f.stability
        it.sub.append(f"Stability: {stable} ({p.kind}).")
        if p.via:
            runs = (
                f", runs the C function {p.handler}"
                if p.handler and not p.via.endswith("attached by BCC itself")
                else ""
            )
            it.sub.append(f"Attached by: {p.via}{runs}.")
        if p.block is not None and p.block < len(self.m.blocks):
            b = self.m.blocks[p.block]
            it.sub.append(
                f"Runs: {'the block' if self.bt else 'the function ' + (b.function or '?') + '()'} at lines "
                f"{b.start_line}-{b.end_line}."
            )
        elif not self.bt and p.handler:
            it.sub.append(f"Runs: {p.handler}() (its definition was not found in the C text).")
        if f.resolved:
            it.sub.append(f"Binary: {p.target} is {f.resolved} here.")
        if f.available is True:
            it.sub.append("On this kernel: available.")
        elif f.available is None:
            it.sub.append("On this kernel: cannot tell before it runs" + (f" ({f.reason})" if f.reason else "") + ".")
        else:
            it.sub.append(Item("NOT AVAILABLE on this kernel", (f.reason or "unknown reason") + ".", style="warn"))
        alts, note = list(f.alternatives), f.alternative_note
        if p.kind in KERNEL_FUNCTION_KINDS | {"lsm"}:
            more, note2 = stable_alternatives(p, self.catalog, self.g)
            alts = [a for a in more if a not in alts] + alts
            note = note2 or note
        if alts:
            self.suggested += [a for a in alts if a not in self.suggested]
            label = "Use instead" if f.available is False else "Stable alternative"
            text = ", ".join(f"`{a}`" for a in alts)
            if note:
                text += f" ({note})"
            if p.kind == "lsm":
                text += ". A tracepoint only observes; it cannot refuse the operation like an LSM hook"
            it.sub.append(Item(label, text + ".", style="ok"))
        elif f.available is False and p.kind in KERNEL_FUNCTION_KINDS | {"lsm"}:
            words = sorted(re.findall(r"[a-z]{3,}", (p.name or "").lower()), key=len, reverse=True)
            word = words[0] if words else "NAME"
            it.sub.append(
                Item(
                    "Use instead",
                    "no tracepoint here matches this function; look for one with "
                    f"`bpftrace -l 'tracepoint:*{word}*'` or `gpttrace \"...\"` in plain words.",
                    style="ok",
                )
            )
        if f.matches:
            shown = ", ".join(f.matches[:8]) + (", ..." if len(f.matches) > 8 else "")
            it.sub.append(f"Matches {len(f.matches)} tracepoint(s) here: {shown}.")
        tp = f.tracepoint
        if tp is not None:
            used = (
                set(self.m.blocks[p.block].fields_used)
                if p.block is not None and p.block < len(self.m.blocks)
                else set()
            )
            rows = []
            for fld in tp.user_fields:
                t = fld.ctype + (f"[{fld.array}]" if fld.array else "")
                if fld.data_loc:
                    t = f"__data_loc {t}"
                hint = field_hint(fld)
                sym = tp.symbols.get(fld.name)
                if sym:
                    hint += (
                        "; values: "
                        + ", ".join(f"{k}={v}" for k, v in list(sorted(sym.items()))[:6])
                        + (", ..." if len(sym) > 6 else "")
                    )
                rows.append([("*" if fld.name in used else " ") + fld.name, t, hint])
            where = f" (from {f.format_path})" if f.format_path else ""
            if rows:
                it.sub.append(
                    Table(
                        ["field", "type", "how to use it"], rows, f"Fields, read as args->NAME{where}; * = used here:"
                    )
                )
            else:
                it.sub.append(f"Fields: none besides the common header{where}.")
        if (
            self.bt
            and p.kind in ("kprobe", "kretprobe", "uprobe", "uretprobe")
            and p.block is not None
            and p.block < len(self.m.blocks)
            and self.m.blocks[p.block].fields_used
        ):
            it.sub.append(
                Item(
                    "Problem",
                    f"the block reads args->{self.m.blocks[p.block].fields_used[0]}, but a "
                    f"{p.kind} has no args in bpftrace {self.catalog.features.bpftrace_version or ''}: "
                    "use arg0, arg1, ... (or retval in a return probe).",
                    style="warn",
                )
            )
        for name in f.missing_fields:
            have = ", ".join(x.name for x in tp.user_fields) if tp else ""
            it.sub.append(
                Item(
                    "Problem",
                    f"the program reads args->{name}, which this tracepoint does not have (it has: {have}).",
                    style="warn",
                )
            )
        if f.rate in HIGH:
            it.sub.append(f"Rate: {f.rate}" + (f" ({f.rate_note})" if f.rate_note else "") + ".")
        return it

    # -- walkthrough -------------------------------------------------------------------------------------
    def walkthrough(self) -> Section:
        s = Section("walkthrough", "Walkthrough")
        m = self.m
        for i, b in enumerate(m.blocks):
            label = b.label if self.bt or len(b.label) < 90 else f"{b.function}(...)"
            head = f"lines {b.start_line}-{b.end_line}: {label}"
            it = Item(head)
            if not self.bt:
                attached = [m.probes[k].text for k in b.probes]
                if attached:
                    it.sub.append("Runs at: " + ", ".join(attached) + ".")
                elif b.function == "__outside__" and m.libbpf:
                    it.sub.append("Declarations outside the functions (the license the kernel checks, globals).")
                elif b.function == "__outside__":
                    it.sub.append(
                        "These statements are pieces of C text the Python code inserts into the functions "
                        "(at placeholders) before compiling."
                    )
                else:
                    it.sub.append("Not attached directly: called by other functions, or attached by code not found.")
                if b.context and b.context in CONTEXTS:
                    it.sub.append(f"Its context `struct {b.context} *` is {CONTEXTS[b.context]}.")
                elif b.context and b.context.startswith("tracepoint__"):
                    it.sub.append(
                        f"Its argument `struct {b.context} *args` is the tracepoint's record: BCC builds "
                        "the struct from the tracepoint's format file, so args->FIELD reads a field."
                    )
                extra = [x.strip() for x in split_top(b.params or "")[1:] if x.strip()]
                if extra and b.context == "pt_regs":
                    it.sub.append(
                        "The parameters after ctx (" + ", ".join(extra) + ") are the probed function's "
                        "arguments; BCC fills them from the registers."
                    )
            if b.predicate:
                it.sub.append(f"Predicate /{b.predicate}/: the block runs only when {self.cond(b.predicate)}.")
            for st in b.statements:
                gloss = self.gloss(st.text, i)
                pad = "  " * st.depth
                it.sub.append(f"line {st.line}: {pad}`{_short(st.text)}`" + (f" - {gloss}" if gloss else ""))
            if not b.statements:
                it.sub.append("(empty)")
            s.blocks.append(it)
        if not m.blocks:
            s.blocks.append(Para("No probe blocks or BPF functions were found."))
        if m.structs:
            rows = [[name, "; ".join(fields)] for name, fields in m.structs.items()]
            s.blocks.append(Table(["type", "fields"], rows, "Types the program defines:"))
        return s

    # -- statement glosses -------------------------------------------------------------------------------
    def gloss(self, text: str, block: int) -> str:
        return self.gloss_bt(text, block) if self.bt else self.gloss_c(text, block)

    def gloss_bt(self, t: str, block: int) -> str:
        mm = re.match(r"(else if|if|while)\s*\((.*)\)$", t, re.S)
        if mm:
            word = {"if": "if", "else if": "otherwise, if", "while": "while"}[mm.group(1)]
            return f"{word} {self.cond(mm.group(2))}:"
        if t == "else":
            return "otherwise:"
        if t.startswith("unroll"):
            return "repeat the next block a fixed number of times (unrolled by the compiler)"
        mm = re.match(r"(@\w*)\s*(?:\[(.*)\])?\s*=\s*(\w+)\s*\((.*)\)$", t, re.S)
        if mm and self.g.bt_function(mm.group(3)) and self.g.bt_function(mm.group(3)).kind == "aggregate":
            mp, key, fn, arg = mm.groups()
            per = f", one per {self.keys(key)}" if key else ""
            return {
                "count": f"count this event in {mp}{per}",
                "sum": f"add {self.expr(arg)} to the total in {mp}{per}",
                "avg": f"average {self.expr(arg)} in {mp}{per}",
                "min": f"keep the smallest {self.expr(arg)} in {mp}{per}",
                "max": f"keep the largest {self.expr(arg)} in {mp}{per}",
                "stats": f"keep count/average/total of {self.expr(arg)} in {mp}{per}",
                "hist": f"add {self.expr(arg)} to the power-of-two histogram {mp}{per}",
                "lhist": f"add {self.expr(split_top(arg)[0])} to the linear histogram {mp}{per}",
            }.get(fn, "")
        mm = re.match(r"(@\w*)\s*(?:\[(.*)\])?\s*(\+\+|--|\+=|-=)\s*(.*)$", t, re.S)
        if mm:
            mp, key, op, val = mm.groups()
            what = (
                "add one to"
                if op == "++"
                else "subtract one from"
                if op == "--"
                else (f"add {self.expr(val)} to" if op == "+=" else f"subtract {self.expr(val)} from")
            )
            return f"{what} {mp}" + (f" for {self.keys(key)}" if key else "")
        mm = re.match(r"(@\w*)\s*(?:\[(.*)\])?\s*=\s*(.*)$", t, re.S)
        if mm:
            mp, key, val = mm.groups()
            if re.fullmatch(r"nsecs|elapsed", val.strip()):
                return f"remember the time now in {mp}" + (f", under {self.keys(key)}" if key else "")
            return f"save {self.expr(val)} in {mp}" + (f" under {self.keys(key)}" if key else "")
        mm = re.match(r"(\$\w+)\s*=\s*(.*)$", t, re.S)
        if mm:
            var, val = mm.groups()
            if re.search(r"nsecs\s*-\s*@", val):
                return f"{var} = the time since the start saved in the map (a duration in ns)"
            return f"{var} = {self.expr(val)}, for the rest of this block"
        mm = re.match(r"(delete|clear|print|zero)\s*\((.*)\)$", t, re.S)
        if mm:
            fn, arg = mm.groups()
            am = re.match(r"(@\w*)\s*(?:\[(.*)\])?", arg.strip())
            mp = am.group(1) if am else arg
            if fn == "delete":
                return f"forget the entry of {mp}" + (f" for {self.keys(am.group(2))}" if am and am.group(2) else "")
            if fn == "clear":
                return f"empty {mp}" + (
                    " (so it is not printed again at exit)" if self.block_kinds(block) & {"END"} else ""
                )
            if fn == "zero":
                return f"reset the values of {mp} to zero"
            return f"print {mp} now"
        pp = printf_pairs(t)
        if pp:
            _fmt, pairs = pp
            desc = ", ".join(f"{conv} = {self.expr(arg)}" for conv, arg in pairs)
            where = "a header line" if self.block_kinds(block) <= {"BEGIN"} and self.block_kinds(block) else "a line"
            marks = ("; a number between \\x1e marks is replaced by its name by gpttrace (there are too many "
                     "names to load into the program)") if "\\x1e" in _fmt else ""
            return f"print {where}" + (f" ({desc})" if desc else "") + marks
        mm = re.match(r"(\w+)\s*\(", t)
        if mm:
            fn = mm.group(1)
            if fn == "exit":
                return "stop tracing (END still runs)"
            if fn == "time":
                return "print the current time"
            if fn == "join":
                return "print the strings of the array on one line"
            if fn == "system":
                return "run a shell command (changes the system)"
            e = self.g.bt_function(fn)
            if e:
                return _first_sentence(e.text)
        return ""

    def gloss_c(self, t: str, block: int) -> str:
        mm = re.match(r"(else if|if|while|for|switch)\s*\((.*)\)$", t, re.S)
        if mm:
            if mm.group(1) in ("if", "else if"):
                return ("otherwise, if " if mm.group(1) == "else if" else "if ") + self.cond(mm.group(2)) + ":"
            if mm.group(1) == "for":
                return "a loop (bounded, so the verifier can prove it ends)"
            return ""
        if t == "else":
            return "otherwise:"
        mm = re.match(r"return\b\s*(.*)$", t, re.S)
        if mm:
            val = mm.group(1).strip()
            kinds = self.block_kinds(block)
            if val.startswith("XDP_") or val.startswith("TC_ACT_"):
                e = self.g.bcc(val)
                return f"hand the packet back with the verdict {val}" + (
                    f" ({_first_sentence(e.text).split(' - ')[-1]})" if e else ""
                )
            if (
                kinds & {"kprobe", "kretprobe", "tracepoint", "uprobe", "uretprobe", "rawtracepoint", "perf_event"}
                or not kinds
            ):
                return "leave the function (for tracing programs the return value is ignored)"
            return f"return {val}"
        mm = re.search(r"\b(\w+)\s*\.\s*(\w+)\s*\((.*)\)", t, re.S)
        if mm and mm.group(1) in self.m.maps:
            mp, meth, args = mm.groups()
            a = split_top(args)
            return {
                "increment": f"count one more in {mp} for key {a[0] if a else '?'}"
                + (f" (adding {a[1]})" if len(a) > 1 else ""),
                "atomic_increment": f"count one more in {mp} for key {a[0] if a else '?'}",
                "update": f"save {a[1] if len(a) > 1 else '?'} in {mp} under {a[0] if a else '?'}",
                "insert": f"save {a[1] if len(a) > 1 else '?'} in {mp} under {a[0] if a else '?'} unless already there",
                "lookup": f"look up {a[0] if a else '?'} in {mp} (NULL when absent)",
                "lookup_or_init": f"find or create the entry {a[0] if a else '?'} of {mp}",
                "lookup_or_try_init": f"find or create the entry {a[0] if a else '?'} of {mp}",
                "delete": f"remove {a[0] if a else '?'} from {mp}",
                "perf_submit": f"send {a[1] if len(a) > 1 else 'the record'} to user space through {mp} (one event)",
                "ringbuf_output": f"send {a[0] if a else 'the record'} to user space through {mp} (one event)",
                "ringbuf_reserve": f"reserve a record in {mp}",
                "ringbuf_submit": f"send the reserved record through {mp} (one event)",
                "ringbuf_discard": f"give back the reserved record of {mp}",
                "get_stackid": f"store the current stack in {mp}; the id identifies it",
            }.get(meth, "")
        if "bpf_get_current_pid_tgid()" in t:
            lhs = re.match(r"(?:[\w\s\*]+?\s)?\**([\w.>-]+?)\s*=(?!=)", t)
            name = f"{lhs.group(1)} = " if lhs else ""
            if re.search(r"bpf_get_current_pid_tgid\(\)\s*\)?\s*>>\s*32", t):
                return name + "the process id (the upper 32 bits of bpf_get_current_pid_tgid())"
            if re.match(r"\s*(u32|__u32|pid_t|int|u32\s+\w+)\b", t) or "(u32)" in t:
                return name + "the thread id (u32 keeps the lower 32 bits of bpf_get_current_pid_tgid())"
        calls = [c for c in re.findall(r"\b(\w+)\s*\(", t) if self.g.bcc(c)]
        if calls:
            e = self.g.bcc(calls[0])
            assert e is not None
            short = e.get("short") or _first_sentence(e.text)
            lhs = re.match(r"(?:[\w\s\*]+?\s)?\**([\w.>-]+?)\s*=(?!=)\s*", t)
            return (f"{lhs.group(1)} = " if lhs else "") + _lower(short)
        return ""

    # -- expressions in words -------------------------------------------------------------------------------
    def expr(self, e: str) -> str:
        e = strip_parens(e.strip())
        if self.bt:
            b = self.g.bt_builtin(e)
            if b and b.noun and re.fullmatch(r"\w+|\$\d+", e):
                return f"{e} ({b.noun})"
            mm = re.fullmatch(r"args(?:->|\.)(\w+)", e)
            if mm:
                return f"the {mm.group(1)} field"
            mm = re.fullmatch(r"str\((.*)\)", e)
            if mm:
                return f"{self.expr(split_top(mm.group(1))[0])} as text"
            mm = re.fullmatch(r"(ntop|ksym|usym)\((.*)\)", e)
            if mm:
                what = {"ntop": "as an IP address", "ksym": "as a kernel function name", "usym": "as a function name"}
                return f"{self.expr(mm.group(2))} {what[mm.group(1)]}"
            mm = re.fullmatch(r"(@\w*)\[(.*)\]", e)
            if mm:
                return f"{mm.group(1)}'s entry for {self.keys(mm.group(2))}"
            mm = re.fullmatch(r"(.+?)\s*/\s*(1000|1000000|1000000000)", e)
            if mm and re.search(r"nsecs|\$\w+|delta", mm.group(1)):
                unit = {"1000": "microseconds", "1000000": "milliseconds", "1000000000": "seconds"}[mm.group(2)]
                return f"`{e}` (in {unit})"
        return f"`{e}`"

    def keys(self, key: str | None) -> str:
        if not key:
            return "no key"
        parts = split_top(key)
        return " and ".join(self.expr(k) for k in parts)

    def cond(self, c: str) -> str:
        pieces = []
        for joiner, atom in split_logical(c):
            pieces.append((f"{joiner} " if joiner else "") + self.atom(atom))
        return " ".join(pieces)

    def atom(self, a: str) -> str:
        a = strip_parens(a)
        if a.startswith("!") and not a.startswith("!="):
            inner = strip_parens(a[1:])
            if re.fullmatch(r"@\w*\[.*\]", inner) or re.fullmatch(r"\w+", inner):
                return f"`{inner}` is zero or missing"
            return f"not ({self.atom(inner)})"
        op = _top_comparison(a)
        if op:
            left, sym, right = op
            lw, rw = left.strip(), right.strip()
            prefix = re.fullmatch(r'strncmp\((.+), ("[^"]*"), \d+\)', lw)
            if prefix and rw == "0" and sym in ("==", "!="):
                starts = "starts" if sym == "==" else "does not start"
                return f"{self.expr(prefix.group(1))} {starts} with {prefix.group(2)}"
            if sym == "<" and rw == "0" and re.search(r"ret|retval|PT_REGS_RC", lw):
                return f"{self.expr(lw)} is negative (the call failed)"
            if rw in ("0", "NULL") and sym in ("==", "!=") and not self.bt:
                return f"`{lw}` is {'NULL/zero' if sym == '==' else 'set (not NULL/zero)'}"
            if "%" in rw and not self.bt:
                rw_desc = f"`{rw}` (a value the Python code fills in)"
            else:
                rw_desc = self.expr(rw) if not re.fullmatch(r"-?\d+|\"[^\"]*\"|0x[0-9a-fA-F]+", rw) else rw
            word = {
                "==": "is",
                "!=": "is not",
                "<": "is less than",
                "<=": "is at most",
                ">": "is more than",
                ">=": "is at least",
            }[sym]
            return f"{self.expr(lw)} {word} {rw_desc}"
        if self.bt and re.fullmatch(r"@\w*\[.*\]", a):
            mm = re.fullmatch(r"(@\w*)\[(.*)\]", a)
            assert mm is not None
            return (
                f"{mm.group(1)} has an entry for {self.keys(mm.group(2))} (saved earlier by another probe, so "
                "the start of this operation was seen)"
            )
        if re.fullmatch(r"\$\w+", a):
            return f"{a} is not zero"
        return f"`{a}` is true (non-zero)"

    # -- filters --------------------------------------------------------------------------------------
    def filters_section(self) -> Section:
        s = Section("filters", "Filters")
        m = self.m
        for f in m.filters:
            where = self.probes_of(f.block) if self.bt else self.block_label(f.block)
            if f.kind == "predicate":
                s.blocks.append(
                    Item(
                        f"line {f.line}, predicate /{f.cond}/",
                        f"on {where}: the block runs only when {self.cond(f.cond)}. Events that fail it "
                        "cost almost nothing: the check runs in the kernel.",
                    )
                )
            elif f.kind == "early-return":
                s.blocks.append(
                    Item(
                        f"line {f.line}, `if ({f.cond}) return`",
                        f"in {where}: stops early, recording nothing, when {self.cond(f.cond)}.",
                    )
                )
            else:
                s.blocks.append(
                    Item(
                        f"line {f.line}, `if ({f.cond})`",
                        f"in {where}: the statements under it run only when {self.cond(f.cond)}.",
                    )
                )
        if m.python:
            for line, placeholder, repl in m.python.placeholders:
                shown = repl if len(repl) < 90 else repl[:87] + "..."
                s.blocks.append(
                    Item(
                        f"line {line}, placeholder {placeholder}",
                        f"the Python code replaces {placeholder} in the C text with `{' '.join(shown.split())}` "
                        "before compiling: options become code, so unused filters cost nothing.",
                    )
                )
        if not s.blocks:
            s.blocks.append(
                Para(
                    "No filter: every event of every probe is handled (all processes, system-wide). "
                    + (
                        'Add a predicate like /comm == "nginx"/ or /pid == 1234/ after a probe to narrow it.'
                        if self.bt
                        else "An early `if (...) return 0;` in the C function narrows it."
                    )
                )
            )
        return s

    # -- maps -----------------------------------------------------------------------------------------
    def map_role(self, mp: MapInfo) -> tuple[str, str]:
        """(role, sentence) for a map."""
        acc = mp.accesses
        ops = mp.ops()
        if self.bt:
            aggs = [a for a in acc if a.op == "aggregate"]
            key = next((a.key for a in acc if a.key and a.op in ("aggregate", "assign", "increment")), None)
            keyed = f"keyed by {self.keys(key)}" if key else "with a single value (no key)"
            if aggs:
                fn = aggs[0].func
                why = {
                    "count": "Counting happens in the kernel (per CPU), so only the totals cross to user space: "
                    "cheap even for frequent events.",
                    "hist": "A histogram keeps the whole distribution, tail included, in a few dozen counters "
                    "instead of one line per event.",
                    "lhist": "A linear histogram shows the distribution in equal-width buckets.",
                    "sum": "The sum is kept in the kernel per CPU and added up when printed.",
                    "avg": "The average is kept in the kernel (sum and count) and computed when printed.",
                    "min": "The kernel keeps only the extreme value.",
                    "max": "The kernel keeps only the extreme value.",
                    "stats": "Count, average and total in one entry.",
                }.get(fn or "", "")
                name = {
                    "count": "a count map",
                    "hist": "a power-of-two histogram",
                    "lhist": "a linear histogram",
                    "sum": "a running total",
                    "avg": "a running average",
                    "min": "a minimum",
                    "max": "a maximum",
                    "stats": "running statistics",
                }.get(fn or "", "an aggregation")
                return "aggregate", f"{name} {keyed}. {why}"
            assigns = [a for a in acc if a.op == "assign"]
            timed = [a for a in assigns if a.value and re.search(r"\b(nsecs|elapsed)\b", a.value)]
            reads = [a for a in acc if a.op == "read"]
            begin_only = assigns and all(self.block_kinds(a.block) <= {"BEGIN"} for a in assigns)
            if timed and (reads or "delete" in ops):
                k = timed[0].key or ""
                reason = KEY_REASONS.get(k.strip(), "the start and the end events both know this key")
                return "start", (
                    f"a start map keyed by {self.keys(timed[0].key)} for latency: it remembers when "
                    f"something began ({self.probes_of(timed[0].block)}), so that a later probe can "
                    f"compute how long it took. Keyed by {k or 'nothing'} because {reason}."
                )
            if begin_only and assigns and all(a.key for a in assigns):
                return "table", (
                    "a lookup table filled in BEGIN (it turns numbers into names when printing); it "
                    "never changes while tracing."
                )
            if assigns and (reads or "delete" in ops) and assigns[0].key:
                return "saved", (
                    f"saves {self.expr(assigns[0].value or '?')} {keyed} at "
                    f"{self.probes_of(assigns[0].block)}, for a later probe to use; the same "
                    "start/end pattern as a latency map."
                )
            if "increment" in ops:
                return "counter", (
                    f"a counter {keyed}, updated with ++/+=. Unlike count() it is not kept per CPU, "
                    "so simultaneous updates on different CPUs can be lost; count() is the safe way."
                )
            if assigns and not assigns[0].key:
                return "global", "a global variable (one value) shared by all probes."
            if assigns:
                return "assoc", f"an associative array {keyed}, written by the program."
            return "read", "only read here (never written by this program)."
        # BCC
        t = mp.map_type or "?"
        e = self.g.bcc(mp.macro or "")
        decl = f"{mp.macro}({mp.name})" if mp.macro else mp.name
        key = f"key type {mp.key_type}" if mp.key_type else ""
        val = f"value type {mp.value_type}" if mp.value_type else ""
        kv = ", ".join(x for x in (key, val, f"up to {mp.size} entries" if mp.size else "") if x)
        if "submit" in ops or t in ("perf_event_array", "ringbuf"):
            rec = next((a.value for a in mp.accesses if a.op == "submit" and a.value), None)
            cb = [c for c, tb in (self.m.python.callbacks.items() if self.m.python else []) if tb == mp.name]
            return "events", (
                f"an event channel to user space ({decl}): each record"
                + (f" ({rec})" if rec else "")
                + " sent from the kernel"
                + (f" reaches the Python callback {', '.join(cb)}()" if cb
                   else " is read by the loader" if self.m.libbpf else " is read by Python")
                + ". One record per event: the output is as frequent as the events."
            )
        if t == "histogram" or (mp.macro == "BPF_HISTOGRAM"):
            log2 = any(a.key and "log2" in a.key for a in mp.accesses)
            return "hist", (
                f"a {'power-of-two ' if log2 else ''}histogram ({decl}, {kv}): the kernel adds one to "
                "the bucket of each value; Python prints the buckets as a bar chart."
            )
        if t == "stack_trace":
            return "stacks", (
                f"a stack store ({decl}): get_stackid() saves each distinct stack once and returns an "
                "id, which other maps use as a key; Python turns ids back into function names."
            )
        if "increment" in ops:
            k = next((a.key for a in mp.accesses if a.op == "increment"), None)
            return "count", (
                f"a count map ({decl}, {kv}) keyed by {k}: counting happens in the kernel, and only "
                "the totals are read by Python."
            )
        updates = [a for a in mp.accesses if a.op == "update"]
        if updates and ({"lookup", "delete"} & ops):
            k = updates[0].key or "?"
            clock = self.m.uses.get("bpf_ktime_get_ns")
            timed = any(a.value and re.search(r"ts|time|start", a.value) for a in updates) or bool(
                clock and any(a.block in clock.blocks for a in updates)
            )
            fields = self.m.structs.get(mp.key_type or "", [])
            key_desc = f"{k}, a {mp.key_type} holding {'; '.join(fields)}" if fields else k
            reason = (
                "keyed per thread: the start and end of one operation happen on the same thread"
                if re.search(r"tid|pid|\bid\b", key_desc)
                else f"keyed by {key_desc}"
            )
            if fields and "keyed per thread" in reason:
                reason += f" (the key {mp.key_type} holds {'; '.join(fields)})"
            what = "a start map for latency: it remembers when" if timed else "a map that saves a value when"
            return "start", (
                f"{what} something began ({decl}, {kv}) so that a later probe can find it with "
                f"lookup() and delete() it afterwards; {reason}."
            )
        base = _first_sentence(e.text) if e else f"a {t} map"
        return "other", f"{base} ({decl}" + (f", {kv}" if kv else "") + ")."

    def maps_section(self) -> Section:
        s = Section("maps", "Maps")
        m = self.m
        if not m.maps:
            s.blocks.append(
                Para(
                    "No maps: the program keeps no state between events"
                    + (" and prints as it goes." if self.bt else ".")
                )
            )
            return s
        if self.bt:
            s.blocks.append(
                Para(
                    "Maps (the @names) live in the kernel and keep their values between events; "
                    "every probe can read and write them. Local $variables live only while one block runs."
                )
            )
        elif m.libbpf:
            s.blocks.append(
                Para(
                    'Maps are declared as structs placed in the ".maps" section; they live in the kernel, keep '
                    "values between events, and the loader reads them through their file descriptors."
                )
            )
        else:
            s.blocks.append(
                Para(
                    "Maps are declared in the C text with BPF_* macros; they live in the kernel, keep "
                    'values between events, and Python reads them as b["name"].'
                )
            )
        for mp in m.maps.values():
            role, sentence = self.map_role(mp)
            it = Item(mp.name, sentence)
            by_op: dict[str, list[str]] = {}
            for a in mp.accesses:
                where = self.probes_of(a.block) if self.bt else self.block_label(a.block)
                by_op.setdefault(a.op, [])
                label = f"line {a.line} ({where})"
                if label not in by_op[a.op]:
                    by_op[a.op].append(label)
            names = {
                "assign": "written",
                "aggregate": "updated",
                "increment": "incremented",
                "read": "read",
                "lookup": "looked up",
                "update": "written",
                "delete": "deleted",
                "clear": "cleared",
                "print": "printed",
                "zero": "zeroed",
                "submit": "sent to user space",
                "stackid": "stacks stored",
                "reserve": "reserved",
            }
            for op, where in by_op.items():
                it.sub.append(f"{names.get(op, op)}: {', '.join(where[:4])}" + (" ..." if len(where) > 4 else ""))
            if self.bt:
                it.sub.append(self.bt_map_fate(mp))
            elif m.python:
                reads = [(ln, meth) for ln, tb, meth in m.python.table_reads if tb == mp.name]
                if reads:
                    it.sub.append("read from Python: " + ", ".join(f"{meth}() on line {ln}" for ln, meth in reads))
            if role == "start" and "delete" not in mp.ops() and "clear" not in mp.ops():
                it.sub.append(
                    Item("Note", "entries are never deleted, so the map keeps growing until it is full.", style="warn")
                )
            s.blocks.append(it)
        if self.bt and m.variables:
            rows = [[v.name, f"line {v.line}", self.block_label(v.block), v.value or ""] for v in m.variables.values()]
            s.blocks.append(
                Table(
                    ["variable", "first set", "block", "value"],
                    rows,
                    "Scratch $variables (local to one run of one block):",
                )
            )
        return s

    def bt_map_fate(self, mp: MapInfo) -> str:
        end_ops = {a.op for a in mp.accesses if self.block_kinds(a.block) & {"END"}}
        if "print" in end_ops and "clear" in end_ops:
            return "At exit: printed by print() in END, then cleared so bpftrace does not print it twice."
        if "clear" in end_ops:
            return "At exit: cleared in END, so bpftrace does not print it (it is working state, not a result)."
        if "print" in {a.op for a in mp.accesses}:
            return "Printed by print(); whatever is left at exit is printed again automatically."
        return "At exit: bpftrace prints it automatically (every map that still has entries)."

    # -- names ----------------------------------------------------------------------------------------
    def names_section(self) -> Section:
        s = Section("names", "Builtins, functions and helpers" if not self.bt else "Builtins and functions")
        groups: dict[str, list[Item]] = {}
        order = (
            ["builtin", "function", "constant", "macro", "unknown"]
            if self.bt
            else ["helper", "macro", "map_method", "c_builtin", "python", "unknown"]
        )
        titles = {
            "builtin": "Builtins (values bpftrace provides at each event)",
            "function": "Functions",
            "constant": "Constants",
            "macro": "Macros and constants" if not self.bt else "Macros",
            "helper": "BPF helpers (kernel functions the C code may call)",
            "map_method": "Map methods (BCC's shorthand for map helpers)",
            "c_builtin": "C builtins",
            "python": "BCC Python API",
            "unknown": "Not in the glossary",
        }
        for name, use in self.m.uses.items():
            entry = self.entry(name, use.category)
            lines = ", ".join(str(x) for x in sorted(use.lines)[:6]) + (" ..." if len(use.lines) > 6 else "")
            shown = name if use.category != "function" else f"{name}()"
            if use.category in ("helper", "c_builtin") or (use.category == "macro" and name.startswith("PT_REGS")):
                shown = f"{name}()"
            if use.category == "map_method":
                shown = f"{name}()"
            if name == "$N":
                shown = "$1, $2, ... (positional parameters)"
            if entry is None or use.category == "unknown":
                text = "not in the glossary" + (f"; {use.note}" if use.note else "") + f" (line {lines})"
                groups.setdefault("unknown", []).append(Item(shown, text, style="warn"))
                continue
            text = entry.text
            if entry.cost:
                text += f" Cost: {entry.cost}"
            if entry.needs == "ringbuf" and not self.catalog.features.ringbuf:
                text += " This kernel is older than 5.8: no ring buffers here."
            text += f" (line {lines})"
            groups.setdefault(use.category if use.category in order else "function", []).append(Item(shown, text))
        for key in order:
            if key in groups:
                s.blocks.append(Para(titles[key] + ":"))
                s.blocks.extend(groups[key])
                s.blocks.append(Para(""))
        if self.bt and self.m.variables:
            names = sorted(self.m.variables)
            s.blocks.append(
                Para(
                    "Variables: "
                    + ", ".join(names)
                    + (" are" if len(names) > 1 else " is a")
                    + " $variable"
                    + ("s" if len(names) > 1 else "")
                    + ": scratch values local to one "
                    "run of the block that sets them (see Maps)."
                )
            )
        if not self.m.uses:
            s.blocks.append(Para("No builtins or functions are used."))
        return s

    def entry(self, name: str, category: str) -> Entry | None:
        g = self.g
        if category == "builtin":
            return g.bt_builtin(name) if name != "$N" else g.bt_builtin("$1")
        if category == "function":
            return g.bt_function(name)
        if category in ("helper", "macro", "c_builtin", "constant"):
            return g.bcc(name) or g.bt_function(name)
        if category == "map_method":
            return g.map_method(name.lstrip("."))
        if category == "python":
            return g.python_api(name)
        return None

    # -- output --------------------------------------------------------------------------------------------
    def output_section(self) -> Section:
        s = Section("output", "Output")
        m = self.m
        if self.bt:
            for i, b in enumerate(m.blocks):
                kinds = self.block_kinds(i)
                if not b.prints:
                    continue
                calls = sorted({fn for _, fn in b.prints})
                lines = ", ".join(str(ln) for ln, _ in b.prints[:5])
                if kinds <= {"BEGIN"}:
                    s.blocks.append(
                        Item(
                            "At start (BEGIN)", f"{', '.join(calls)} on line {lines}: a banner and the column headers."
                        )
                    )
                elif kinds <= {"END"}:
                    s.blocks.append(
                        Item("When tracing stops (END)", f"{', '.join(calls)} on line {lines}: the final results.")
                    )
                elif kinds <= {"interval"}:
                    s.blocks.append(
                        Item(
                            "Periodically (interval)",
                            f"{', '.join(calls)} on line {lines}: results so "
                            "far, then usually cleared for the next period.",
                        )
                    )
                else:
                    fmt = self.printf_columns(b)
                    s.blocks.append(
                        Item(
                            f"Per event ({self.probes_of(i)})",
                            f"{', '.join(calls)} on line {lines} prints as each event happens"
                            + (f": {fmt}" if fmt else "")
                            + ".",
                        )
                    )
            auto = [
                mp.name
                for mp in m.maps.values()
                if not ({a.op for a in mp.accesses if self.block_kinds(a.block) & {"END"}} & {"clear"})
                and any(a.op in ("aggregate", "assign", "increment") for a in mp.accesses)
            ]
            if auto:
                s.blocks.append(
                    Item(
                        "At exit, automatically",
                        "bpftrace prints every map that still has entries: " + ", ".join(auto) + ".",
                    )
                )
            if not s.blocks:
                s.blocks.append(Para("Nothing is printed."))
            per_event = any(b.prints and self.is_event_block(i) for i, b in enumerate(m.blocks))
            if not per_event and m.maps:
                s.blocks.append(
                    Para(
                        "Nothing is printed per event: results are aggregated in the kernel and shown "
                        "at the end, so the output stays small however busy the system is."
                    )
                )
            return s
        py = m.python
        subs = [mp for mp in m.maps.values() if "submit" in mp.ops()]
        for mp in subs:
            cbs = [c for c, tb in (py.callbacks.items() if py else []) if tb == mp.name]
            prints = any(py.callback_prints.get(c) for c in cbs) if py else False
            s.blocks.append(
                Item(
                    f"Per event, through {mp.name}",
                    "the C code sends one record per event (perf_submit/ringbuf); "
                    + ("the loader " if m.libbpf else "Python ")
                    + (f"receives it in {', '.join(cbs)}()" if cbs else "reads it")
                    + (" and prints a line for it" if prints else "")
                    + ".",
                )
            )
        if "bpf_trace_printk" in m.uses:
            s.blocks.append(
                Item(
                    "Per event, through the trace pipe",
                    "bpf_trace_printk() writes a line to /sys/kernel/tracing/trace_pipe; Python prints "
                    "those lines with trace_print()/trace_fields(). Other programs' messages appear there too.",
                )
            )
        if py and py.polls:
            s.blocks.append(
                Item(
                    "Event loop",
                    ", ".join(f"{meth}() on line {ln}" for ln, meth in py.polls[:3])
                    + ": waits for events and runs the callbacks, until Ctrl-C.",
                )
            )
        if py and py.table_reads:
            reads = [(ln, tb, meth) for ln, tb, meth in py.table_reads if meth not in ("event",)]
            if reads:
                when = "after sleeping" if py.sleeps else "at the end"
                if py.handles_interrupt:
                    when += " (or when you press Ctrl-C)"
                s.blocks.append(
                    Item(
                        "Aggregates read from Python",
                        ", ".join(f"{tb}.{meth}() on line {ln}" for ln, tb, meth in reads[:6])
                        + f": the maps' contents are copied out and printed {when}.",
                    )
                )
        if not s.blocks:
            s.blocks.append(Para("No output path was found (no perf/ring buffer, trace pipe or map read)."))
        return s

    def printf_columns(self, b) -> str:
        for st in b.statements:
            pp = printf_pairs(st.text)
            if pp and pp[1]:
                return "one line with " + ", ".join(self.expr(arg) for _, arg in pp[1])
        return ""

    # -- overhead ---------------------------------------------------------------------------------------------
    def overhead_section(self) -> Section:
        s = Section("overhead", "Overhead")
        m = self.m
        notes: list[Item] = []
        worst = "low"
        per_event_blocks = [i for i, b in enumerate(m.blocks) if b.prints and self.is_event_block(i)]
        for f in self.facts:
            if f.rate in HIGH:
                printing = f.probe.block in per_event_blocks
                text = (
                    f"fires {'very often' if f.rate == 'very high' else 'often'}"
                    + (f" ({f.rate_note})" if f.rate_note else "")
                    + "."
                )
                if printing:
                    text += (
                        " It prints per event, so every hit crosses to user space: expect CPU use and lost "
                        "events on a busy system. Aggregate instead (count()/hist()), or filter first."
                    )
                    worst = "high"
                else:
                    text += " The work per hit is small and stays in the kernel."
                    worst = _max(worst, "moderate")
                notes.append(Item(f.probe.text, text))
            elif f.probe.kind in ("uprobe", "uretprobe"):
                notes.append(
                    Item(f.probe.text, f.rate_note or "each call traps into the kernel (about a microsecond).")
                )
                worst = _max(worst, "moderate" if f.rate not in HIGH else "high")
            elif f.probe.kind == "profile":
                notes.append(
                    Item(
                        f.probe.text,
                        f"samples at a fixed rate: {f.rate_note or 'see the rate'}; the cost "
                        "does not depend on the workload.",
                    )
                )
            if f.matches and len(f.matches) > 20:
                notes.append(
                    Item(
                        f.probe.text,
                        f"a wildcard that attaches {len(f.matches)} tracepoints: start-up "
                        "takes longer and every one of them fires.",
                    )
                )
                worst = _max(worst, "moderate")
        if per_event_blocks and not notes:
            notes.append(
                Item(
                    "Per-event output",
                    "each event is copied to user space and formatted there; fine "
                    "for rare events (exec, exit, open failures), costly for frequent ones.",
                )
            )
            worst = _max(worst, "moderate")
        aggs = [mp.name for mp in m.maps.values() if self.map_role(mp)[0] in ("aggregate", "count", "hist")]
        if aggs:
            notes.append(
                Item(
                    "In-kernel aggregation",
                    f"{', '.join(aggs)} {'are' if len(aggs) > 1 else 'is'} updated in the kernel (a map update "
                    "per event, well under a microsecond) and copied out once at the end.",
                )
            )
        if "str" in m.uses:
            notes.append(Item("str()", "copies up to 64 bytes per call into the event."))
        for name in ("kstack", "ustack", "bpf_get_stackid", ".get_stackid"):
            if name in m.uses:
                notes.append(
                    Item(name.lstrip("."), "walks a stack for each event (microseconds); keep it to moderate rates.")
                )
                worst = _max(worst, "moderate")
                break
        if "bpf_trace_printk" in m.uses:
            notes.append(Item("bpf_trace_printk()", "slow and shared system-wide: for debugging, not for production."))
            worst = _max(worst, "moderate")
        if not self.bt and not m.libbpf:
            notes.append(
                Item(
                    "Start-up",
                    "BCC compiles the C text with clang each time it starts: a second or more of "
                    "CPU and some hundred MB of memory before tracing begins.",
                )
            )
        if any(mp.name and self.map_role(mp)[0] == "start" for mp in m.maps.values()):
            notes.append(
                Item(
                    "Start/end maps",
                    "one entry per operation in flight; deleting each entry once used keeps the map small.",
                )
            )
        s.blocks.append(Para(f"Expected overhead: {worst}."))
        s.blocks.extend(notes)
        return s

    # -- next -----------------------------------------------------------------------------------------------
    def next_section(self) -> Section:
        s = Section("next", "Read next")
        sugg = lessons.suggest(self.m, self.suggested)
        if not sugg:
            s.blocks.append(Para("No related lesson found in the examples corpus (`gpttrace examples` lists them)."))
            return s
        for x in sugg:
            head = f"lesson {x.lesson}: {x.title}" if x.lesson else x.title
            s.blocks.append(Item(head, f"corpus example `{x.id}` ({x.reason})"))
        return s


CONTEXTS = {
    "pt_regs": "the saved CPU registers of the probed code: PT_REGS_PARM1(ctx).. give the arguments, "
    "PT_REGS_RC(ctx) the return value",
    "xdp_md": "the packet as XDP sees it: the bytes between data and data_end may be read, after a bounds check",
    "__sk_buff": "the kernel's socket buffer: the packet with its metadata (length, protocol, interface)",
    "bpf_perf_event_data": "the perf sample, with the registers of the interrupted code",
    "bpf_raw_tracepoint_args": "the raw tracepoint arguments, ctx->args[0], ctx->args[1], ...",
}


def _top_comparison(a: str) -> tuple[str, str, str] | None:
    depth = 0
    i = 0
    while i < len(a):
        ch = a[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0:
            for op in ("==", "!=", "<=", ">=", "<", ">"):
                if a.startswith(op, i):
                    if op in ("<", ">") and (a[i + 1 : i + 2] in ("<", ">", "=") or a[i - 1 : i] in ("<", ">", "-")):
                        break
                    return a[:i], op, a[i + len(op) :]
        i += 1
    return None


def _short(text: str, n: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    return (m.group(1) if m else text).rstrip(".")


def _lower(s: str) -> str:
    return s[:1].lower() + s[1:] if s and not s[:2].isupper() else s


def _max(a: str, b: str) -> str:
    order = ["low", "moderate", "high"]
    return a if order.index(a) >= order.index(b) else b


__all__ = ["RATE_ORDER", "Probe", "compose"]
