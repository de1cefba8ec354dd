"""The names section: each builtin, function, helper, macro and map method, from the glossary."""

from __future__ import annotations

from ..context import Context
from ..doc import Item, Para, Section
from ..glossary import Entry


def names_section(ctx: Context) -> Section:
    s = Section("names", "Builtins, functions and helpers" if not ctx.bt else "Builtins and functions")
    groups: dict[str, list[Item]] = {}
    order = (
        ["builtin", "function", "constant", "macro", "unknown"]
        if ctx.bt
        else ["helper", "macro", "map_method", "c_builtin", "python", "unknown"]
    )
    titles = {
        "builtin": "Builtins (values bpftrace provides at each event)",
        "function": "Functions",
        "constant": "Constants",
        "macro": "Macros and constants" if not ctx.bt else "Macros",
        "helper": "BPF helpers (kernel functions the C code may call)",
        "map_method": "Map methods (BCC's shorthand for map helpers)",
        "c_builtin": "C builtins",
        "python": "BCC Python API",
        "unknown": "Not in the glossary",
    }
    for name, use in ctx.model.uses.items():
        entry = glossary_entry(ctx, name, use.category)
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
        if entry.needs == "ringbuf" and not ctx.catalog.features.ringbuf:
            text += " This kernel is older than 5.8: no ring buffers here."
        text += f" (line {lines})"
        groups.setdefault(use.category if use.category in order else "function", []).append(Item(shown, text))
    for key in order:
        if key in groups:
            s.blocks.append(Para(titles[key] + ":"))
            s.blocks.extend(groups[key])
            s.blocks.append(Para(""))
    if ctx.bt and ctx.model.variables:
        names = sorted(ctx.model.variables)
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
    if not ctx.model.uses:
        s.blocks.append(Para("No builtins or functions are used."))
    return s


def glossary_entry(ctx: Context, name: str, category: str) -> Entry | None:
    g = ctx.glossary
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
