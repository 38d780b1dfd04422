"""Graph -> readable PyTorch source. This code is the single source of truth for the model:
the trainer builds its model by executing it (see `build_model`).

A chain becomes one nn.Sequential; a graph with branches or skips gets one attribute per layer
and an explicit forward. Every forward line carries the shape it produces.

Names: block names become identifiers through `identifier()`, which keeps only [a-z0-9_] (so a
name can never inject code) and steers clear of RESERVED: nn.Module's own attributes (`self.half`
would be the method, not the layer), Python keywords and builtins, and the names the generated code
uses itself. Where the identifier differs from the user's name, the name stays in a comment.

In place: a block with inplace=True overwrites its input tensor. `_inplace_plan` keeps that only
where nothing else can still need the old value; elsewhere the block is written out of place with
a comment saying why, so the code always computes what was drawn.
"""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from .blocks import get_spec
from .blocks.base import OUTPUT_SIZE, PAD4, PADDING, PAIR, SIZES, fmt_shape
from .graph import Graph
from .shapes import Analysis, Problem, analyze, fmt_outputs

# Public attributes of torch.nn.Module (class and instance), across torch 2.x. A test checks this
# against the installed torch; `instantiate` refuses code whose names a newer torch has taken.
MODULE_ATTRS = frozenset({
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu",
    "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state",
    "get_parameter", "get_submodule", "half", "hpu", "ipu", "load_state_dict", "modules", "mps", "mtia",
    "named_buffers", "named_children", "named_modules", "named_parameters", "parameters", "register_backward_hook",
    "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook",
    "register_module", "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
    "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train",
    "training", "type", "xpu", "zero_grad",
})
# Names the generated file itself uses: imports, the forward's input, the Sequential, the demo.
OWN_NAMES = frozenset({"torch", "nn", "F", "self", "x", "layers", "forward", "model"})
# Names ruff objects to: E741/E742 (l, I, O look like digits) and UP005 (`self.assert_` is unittest's old alias).
LINT_NAMES = frozenset({"l", "I", "O", "assert_"})
RESERVED = (frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins)) | MODULE_ATTRS
            | OWN_NAMES | LINT_NAMES)
MAX_IDENT = 40
LINE = 120  # the line length the generated file keeps (ruff's, as the project uses)
_ONE_FOR_ALL = (PAIR, PADDING, OUTPUT_SIZE, PAD4)  # kinds whose value may be one number for every side


class CodegenError(Exception):
    """The graph has problems; code is only generated for a graph that works."""

    def __init__(self, analysis: Analysis | None = None, problem: Problem | None = None):
        if problem is not None:  # one block the code cannot serve
            self.problems = [problem]
            super().__init__(f"{problem.node_id}: {problem.message}")
            return
        self.problems = analysis.problems
        lines = [p.message if p.node_id is None else f"{p.node_id}: {p.message}" for p in analysis.problems[:10]]
        super().__init__("cannot generate code while the graph has problems:\n  " + "\n  ".join(lines))


def identifier(text: str, fallback: str = "layer") -> str:
    """A lowercase ASCII identifier for a name: accents dropped (Ünïcödé -> unicode), anything else
    that is not a letter or digit becomes `_`; empty falls back, digits first get the fallback in
    front, reserved names get a trailing `_`."""
    ident = re.sub(r"[^0-9a-zA-Z]+", "_", _ascii(text)).strip("_").lower()[:MAX_IDENT].rstrip("_")
    if not ident:
        ident = fallback
    if ident[0].isdigit():
        ident = f"{fallback}_{ident}"[:MAX_IDENT].rstrip("_")
    if ident in RESERVED:
        ident += "_"
        if ident in RESERVED:
            ident = ident[:-1] + "_layer"
    return ident


def _unique(base: str, taken: set[str]) -> str:
    """`base`, else base_2, base_3, ...: never taken, never reserved."""
    name, k = base, 2
    while name in taken or name in RESERVED:
        suffix = f"_{k}"
        name, k = base[:MAX_IDENT - len(suffix)].rstrip("_") + suffix, k + 1
    return name


def display_name(text: str, limit: int = 40) -> str:
    """A user's name as it may appear in a comment: printable characters only (no line or
    paragraph separators, no bidi controls, no surrogates), at most `limit` columns wide."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else "?" for c in text)
    return _clip(text.strip(), limit)


def _clip(text: str, limit: int) -> str:
    if _width(text) <= limit:
        return text
    while _width(text) > limit - 2:  # the ellipsis counts two
        text = text[:-1]
    return text.rstrip() + "…"


def _width(text: str) -> int:
    # Comments may hold wide characters; counting every non-ASCII one as two columns errs on the safe side.
    if text.isascii():  # nearly every line: no need to look at each character
        return len(text)
    return sum(1 if ord(c) < 128 else 2 for c in text)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def class_identifier(text: str) -> str:
    """CamelCase from the words of a name; "Net" in front where it would start with a digit or
    shadow a builtin (`class Exception`)."""
    words = re.findall(r"[0-9a-zA-Z]+", _ascii(text))
    name = "".join(w[:1].upper() + w[1:] for w in words)[:60]
    if not name or name[0].isdigit() or name in RESERVED:
        name = "Net" + name
    return name


def literal(value: Any, kind: str | None = None) -> str:
    """A Python literal for a checked param value (ints, floats, bools, None, choice strings).
    Pairs and paddings whose sides are equal are written as one number, as torch takes them; a
    list of sizes (LayerNorm's normalized_shape (4, 4), Split's sections) is always written whole."""
    if isinstance(value, tuple):
        if kind in _ONE_FOR_ALL and len(set(value)) == 1 and value[0] is not None:
            return literal(value[0])
        if kind == SIZES:
            return "[" + ", ".join(literal(v) for v in value) + "]"
        return "(" + ", ".join(literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, str):
        if not re.fullmatch(r"[a-z_\-]+", value):  # only choice strings reach here
            raise ValueError(f"unexpected string parameter {value!r}")
        return f'"{value}"'
    if isinstance(value, (bool, int, float)) or value is None:
        return repr(value)
    raise ValueError(f"cannot write {value!r} as a literal")  # pragma: no cover


def module_expr(type_name: str, resolved: dict[str, Any]) -> str:
    """`nn.Conv2d(1, 16, kernel_size=5, padding=2)`: positional for the sizes, keywords for the
    rest, and only the values that differ from torch's defaults."""
    return f"nn.{type_name}({', '.join(module_args(type_name, resolved))})"


def module_args(type_name: str, resolved: dict[str, Any]) -> list[str]:
    spec = get_spec(type_name)
    args: list[str] = []
    for p in spec.params:
        if not p.ctor:
            continue
        value = resolved[p.name]
        if p.positional:
            if p.inferred or p.required or _differs(value, p.default):
                args.append(literal(value, p.kind))
            continue
        if p.required or _differs(value, p.default):
            args.append(f"{p.name}={literal(value, p.kind)}")
    return args


def _differs(value: Any, default: Any) -> bool:
    if isinstance(default, tuple) and isinstance(value, int):
        return (value, value) != default
    return value != default or type(value) is not type(default)


@dataclass
class Generated:
    code: str
    class_name: str
    attr_of: dict[str, str]  # node id -> attribute name (or Sequential index path)
    lines_of: dict[str, list[int]]  # node id -> 1-based line numbers that belong to it
    not_in_place: dict[str, str] = field(default_factory=dict)  # node id -> why its inplace=True was not kept


# Why a block may be written in place after another (checked against torch by tests/core/test_codegen_fuzz.py).
# Blocks whose output is a fresh tensor their backward does not read:
FRESH_OUTPUT = frozenset({"Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
                          "AdaptiveMaxPool2d", "LeakyReLU", "ELU", "GELU", "SiLU", "BatchNorm2d", "BatchNorm1d",
                          "GroupNorm", "LayerNorm", "Linear", "Upsample", "Add", "Concat", "Mul", "ReLU6",
                          "Hardtanh", "Hardswish", "Hardsigmoid", "Mish", "PReLU", "ZeroPad2d", "LocalResponseNorm",
                          "ChannelShuffle"})
# Blocks that may return their input itself or a view of it (Dropout does in eval mode):
PASS_THROUGH = frozenset({"Identity", "Flatten", "Dropout", "Dropout2d", "Unflatten"})
# Blocks whose outputs are views made by one call: autograd refuses an in-place change to any of them.
MULTI_VIEWS = frozenset({"Split", "Chunk"})
# In-place blocks whose backward does not read the tensor they overwrote (ReLU, LeakyReLU, ELU do):
INPLACE_UNREAD = frozenset({"SiLU", "Dropout", "Dropout2d", "ReLU6", "Hardtanh", "Hardswish", "Hardsigmoid", "Mish"})


def _inplace_plan(graph: Graph, a: Analysis, name: dict[str, str]) -> dict[str, str]:
    """Node id -> why its inplace=True must not be kept. Overwriting is safe only when the tensor
    (and every alias of it back to the block that made it) has no other reader, is not the model's
    input, and is not needed by an earlier block's backward."""
    why: dict[str, str] = {}
    kept: set[str] = set()
    nodes, inputs, outputs = graph._nodes, graph._inputs, graph._outputs
    for nid in a.order:
        if not a.nodes[nid].resolved.get("inplace"):
            continue
        reason, reader, cur = None, nid, inputs[nid][0]
        while True:  # back through the blocks that hand on the same tensor, to the one that made it
            t = nodes[cur].type
            others = [r for r in outputs[cur] if r != reader]
            if t == "Input":
                reason = "its input is the model's input"
            elif t in MULTI_VIEWS:
                reason = f"{name[cur]}'s outputs are views of one tensor, which PyTorch does not let be overwritten"
            elif others:
                reason = f"{name[cur]}'s output is also read by {name[others[0]]}"
            elif cur in kept and t not in INPLACE_UNREAD:
                reason = f"{name[cur]} (in place) needs its output for gradients"
            elif cur not in kept and t not in PASS_THROUGH and t not in FRESH_OUTPUT:
                reason = f"{name[cur]} ({t}) needs its output for gradients"
            if reason is not None or (cur not in kept and t in FRESH_OUTPUT):
                break
            reader, cur = cur, inputs[cur][0]
        if reason is None:
            kept.add(nid)
        else:
            why[nid] = reason
    return why


class _Writer:
    """Lines of the file, each remembered with the block it belongs to, laid out as ruff format
    would lay them out (so the file stays ruff-clean whatever the names)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.owner: dict[int, str] = {}

    def emit(self, text: str, nid: str | None = None) -> None:
        self.lines.append(text.rstrip())
        if nid is not None:
            self.owner[len(self.lines)] = nid

    def statement(self, indent: int, head: str, parts: list[str], close: str, comment: str = "",
                  nid: str | None = None, op: str = "") -> None:
        """`head` + parts joined + `close`: a call (parts are its arguments) or, with `op`, a chain
        of binary operators. Too long for one line, it is split the way ruff format splits it, and
        a comment that does not fit after the code goes on a line of its own above it."""
        pad, inner = " " * indent, " " * (indent + 4)
        joined = (f" {op} " if op else ", ").join(parts)
        if _width(pad + head + joined + close) <= LINE:
            out = [pad + head + joined + close]
        elif op:  # `a = (` / `    b + c` / `)`, or one operand a line when even that is too long
            body = [inner + joined] if _width(inner + joined) <= LINE else \
                [inner + parts[0]] + [f"{inner}{op} {p}" for p in parts[1:]]
            out = [pad + head + "(", *body, pad + ")" + close]
        elif _width(inner + joined) <= LINE:  # the arguments together on a line of their own
            out = [pad + head, inner + joined, pad + close]
        else:  # a magic trailing comma keeps one argument a line
            out = [pad + head, *(f"{inner}{p}," for p in parts), pad + close]
        if comment:
            if _width(f"{out[-1]}  # {comment}") <= LINE:
                out[-1] += f"  # {comment}"
            else:
                out.insert(0, f"{pad}# {comment}")
        for line in out:
            self.emit(line, nid)


def generate(graph: Graph, class_name: str = "Net", title: str = "", analysis: Analysis | None = None) -> Generated:
    a = analysis or analyze(graph)
    if not a.ok:
        raise CodegenError(a)
    cls = class_identifier(class_name)
    order = [nid for nid in a.order if nid != a.input_id]
    nodes = {n.id: n for n in graph}
    in_shape = a.input_shape
    out_shape = a.output_shape

    # Attribute names, unique, from user names (or the block type's short name).
    attr: dict[str, str] = {}
    used: set[str] = set()
    for nid in order:
        n = nodes[nid]
        attr[nid] = _unique(identifier(n.name or n.spec.short, n.spec.short), used)
        used.add(attr[nid])
    shown = {nid: display_name(n.name) or attr.get(nid, n.spec.short) for nid, n in nodes.items()}
    short = {nid: display_name(s, 20) for nid, s in shown.items()}  # for reasons: two names fit a line
    not_in_place = _inplace_plan(graph, a, short)

    def ctor_args(nid: str) -> tuple[str, list[str]]:
        n, info = nodes[nid], a.nodes[nid]
        resolved = {**info.resolved, "inplace": False} if nid in not_in_place else info.resolved
        return f"nn.{n.type}(", module_args(n.type, resolved)

    def named(nid: str, text: str) -> str:
        """The user's name in front of a comment where the code does not show it as written."""
        return f"{shown[nid]}: {text}" if shown[nid] != attr[nid] else text

    is_chain = _is_chain(graph, a)
    w = _Writer()
    emit = w.emit

    doc_title = _clip(re.sub(r"[^\w \-.,()/+]", "", title).strip(), 80) or cls
    emit(f'"""{doc_title}: generated by cnnbuilder.')
    emit("")
    emit(f"Input: N×{fmt_shape(in_shape)}. Output: N×{fmt_shape(out_shape)}. "
         f"Trainable parameters: {a.total_params:,}.")
    emit('"""')
    emit("")
    emit("import torch")
    emit("from torch import nn")
    emit("")
    emit("")
    emit(f"class {cls}(nn.Module):")
    emit("    def __init__(self) -> None:")
    emit("        super().__init__()")
    if is_chain:
        emit("        self.layers = nn.Sequential(")
        for nid in order:
            if nid in not_in_place:
                emit(f"            # not in place: {not_in_place[nid]}", nid)
            head, args = ctor_args(nid)
            w.statement(12, head, args, "),", f"{shown[nid]}: {fmt_shape(a.nodes[nid].shape)}", nid)
        emit("        )")
        emit("")
        emit("    def forward(self, x: torch.Tensor) -> torch.Tensor:")
        emit(f"        return self.layers(x)  # {fmt_shape(in_shape)} -> {fmt_shape(out_shape)}")
        attr = {nid: f"layers.{i}" for i, nid in enumerate(order)}
    else:
        for nid in order:
            if nodes[nid].spec.module:
                if nid in not_in_place:
                    emit(f"        # not in place: {not_in_place[nid]}", nid)
                head, args = ctor_args(nid)
                comment = f"block {shown[nid]}" if shown[nid] != attr[nid] else ""
                w.statement(8, f"self.{attr[nid]} = {head}", args, ")", comment, nid)
        emit("")
        emit("    def forward(self, x: torch.Tensor) -> torch.Tensor:")
        _forward(graph, a, order, attr, named, w)
    emit("")
    emit("")
    emit('if __name__ == "__main__":')
    emit(f"    model = {cls}()")
    emit(f"    x = torch.randn(1, {', '.join(str(d) for d in in_shape)})")
    emit(f"    print(model(x).shape)  # torch.Size([1, {', '.join(str(d) for d in out_shape)}])")
    code = "\n".join(w.lines) + "\n"
    lines_of: dict[str, list[int]] = {}
    for ln, nid in sorted(w.owner.items()):
        lines_of.setdefault(nid, []).append(ln)
    return Generated(code, cls, attr, lines_of, not_in_place)


def _forward(graph: Graph, a: Analysis, order: list[str], attr: dict[str, str], named, w: _Writer) -> None:
    """The forward of a graph with branches: one line per block. A value's variable is reused
    once its last reader has run; otherwise the value gets a name of its own. Values are keyed by
    (block, output port): a Split's parts are separate values, unpacked from one call."""
    inputs, ports = graph._inputs, graph._ports
    var = {(a.input_id, 0): "x"}
    last_use: dict[tuple[str, int], int] = {}
    for i, nid in enumerate(order):
        for src in inputs[nid]:
            last_use[(src, ports[(src, nid)])] = i
    live: set[str] = {"x"}
    for i, nid in enumerate(order):
        n, info = graph._nodes[nid], a.nodes[nid]
        reads = [(s, ports[(s, nid)]) for s in inputs[nid]]
        args = [var[r] for r in reads]
        dying = [var[r] for r in reads if last_use[r] == i]
        live.difference_update(dying)
        free = ["x"] if "x" in dying else dying[:1]  # a name the block's result may take over
        targets = []
        for k in range(len(info.outputs)):
            if (nid, k) not in last_use and nid != a.output_id:
                targets.append("_")  # a part nothing reads
                continue
            if free:
                target = free.pop()
            else:
                base = attr[nid] if len(info.outputs) == 1 else f"{attr[nid]}_{k}"
                target = base if base not in live and base not in RESERVED else _unique(f"{base}_out", live)
            live.add(target)
            var[(nid, k)] = target
            targets.append(target)
        target = ", ".join(targets)
        comment = fmt_outputs(info).replace(" | ", ", ")
        if n.type in ("Add", "Mul"):
            w.statement(8, f"{target} = ", args, "", named(nid, comment), nid, op="+" if n.type == "Add" else "*")
        elif n.type == "Concat":
            dim = info.resolved["dim"]
            listed = f"[{', '.join(args)}]"
            if _width(f"            {listed},") <= LINE:
                w.statement(8, f"{target} = torch.cat(", [listed, f"dim={dim}"], ")",
                            named(nid, comment), nid)
            else:  # ruff's layout of a call whose list does not fit: both exploded, trailing commas
                w.emit(f"        {target} = torch.cat(", nid)
                w.emit("            [", nid)
                for arg in args:
                    w.emit(f"                {arg},", nid)
                w.emit("            ],", nid)
                w.emit(f"            dim={dim},", nid)
                w.emit(f"        )  # {named(nid, comment)}", nid)
        elif n.type in ("Split", "Chunk"):
            how = info.resolved["split_size_or_sections" if n.type == "Split" else "chunks"]
            call = f"torch.{n.type.lower()}("
            w.statement(8, f"{target} = {call}", [args[0], literal(how, SIZES), f"dim={info.resolved['dim']}"], ")",
                        named(nid, comment), nid)
        else:
            w.statement(8, f"{target} = self.{attr[nid]}(", args, ")", comment, nid)
    w.emit(f"        return {var[(a.output_id, 0)]}")


def _is_chain(graph: Graph, a: Analysis) -> bool:
    for nid in a.order:
        n = graph._nodes[nid]
        if nid != a.input_id and not n.spec.module:
            return False
        if len(graph._outputs[nid]) > 1 or len(graph._inputs[nid]) > 1:
            return False
    return True


def build_model(graph: Graph, analysis: Analysis | None = None):
    """Instantiate the model from its generated code (one source of truth for the trainer)."""
    return instantiate(generate(graph, analysis=analysis))


def instantiate(gen: Generated):
    """A fresh model from code already generated."""
    from torch import nn  # lazy: the editor never pays for torch

    # RESERVED is checked against the torch the tests ran with; a newer torch may have taken a name since.
    taken = set(dir(nn.Module)) | set(vars(nn.Module()))
    for nid, path in gen.attr_of.items():
        top = path.split(".")[0]
        if top in taken:
            raise CodegenError(problem=Problem(f"its layer name '{top}' is taken by torch.nn.Module in this torch "
                                               "version: rename the block", nid))
    namespace: dict[str, Any] = {"__name__": "cnnbuilder_generated"}
    exec(compile(gen.code, f"<cnnbuilder:{gen.class_name}>", "exec"), namespace)
    return namespace[gen.class_name]()
