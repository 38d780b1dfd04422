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
import heapq
import keyword
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .blocks import get_spec
from .blocks.base import OUTPUT_SIZE, PAD4, PADDING, PAIR, SIZES, fmt_shape
from .graph import Graph
from .groups import interfaces
from .groups import paths as group_paths
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
    attr_of: dict[str, str]  # node id -> its module's full path in the model (model.get_submodule)
    lines_of: dict[str, list[int]]  # node id -> 1-based line numbers that belong to it
    not_in_place: dict[str, str] = field(default_factory=dict)  # node id -> why its inplace=True was not kept
    class_of: dict[str, str] = field(default_factory=dict)  # group id -> its class (identical groups share one)
    attr_of_group: dict[str, str] = field(default_factory=dict)  # group id -> its module's path in the model
    group_lines: dict[str, list[int]] = field(default_factory=dict)  # group id -> lines making and calling it


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


Value = tuple[str, int]  # (block, output port): one tensor of the forward


@dataclass
class _Item:
    """One line of a forward: a block, or a group called as one module."""
    kind: str  # "n": a block, "g": a group
    id: str
    reads: list[Value]
    makes: list[Value]


@dataclass
class _Scope:
    """The top level (gid None) or one group: what its class holds and computes."""
    gid: str | None
    items: list[_Item]
    inputs: list[Value]
    outputs: list[Value]
    chain: bool = False  # one value in, one out, each item feeding the next: an nn.Sequential
    key: int = -1  # which class writes it (identical groups share one)


def _scopes(graph: Graph, a: Analysis, order: list[str]) -> dict[str | None, _Scope]:
    """The top level and every group holding blocks, each with its items in the order its forward
    computes them: the blocks of a group run as one call, so the order is a topological order of
    the scope's items (blocks and groups), ties broken by the order the blocks are computed in."""
    nodes, inputs, ports = graph._nodes, graph._inputs, graph._ports
    path_of = group_paths(graph)
    faces = interfaces(graph, a.order)
    first: dict[tuple[str, str], int] = {}
    found: dict[str | None, list[tuple[str, str]]] = {None: []}
    for i, nid in enumerate(order):
        p = path_of[nodes[nid].group]
        for d in range(len(p) + 1):
            key = ("g", p[d]) if d < len(p) else ("n", nid)
            if key not in first:
                first[key] = i
                found.setdefault(p[d - 1] if d else None, []).append(key)
                if key[0] == "g":
                    found.setdefault(key[1], [])
    after: dict[tuple[str, str], set[tuple[str, str]]] = {k: set() for k in first}  # item -> items it reads
    for nid in order:
        p = path_of[nodes[nid].group]
        for src in inputs[nid]:
            if src == a.input_id:
                continue
            q = path_of[nodes[src].group]
            c = 0
            while c < len(p) and c < len(q) and p[c] == q[c]:
                c += 1
            mine = ("g", p[c]) if c < len(p) else ("n", nid)
            theirs = ("g", q[c]) if c < len(q) else ("n", src)
            if mine != theirs:
                after[mine].add(theirs)
    scopes: dict[str | None, _Scope] = {}
    for gid, keys in found.items():
        readers: dict[tuple[str, str], list[tuple[str, str]]] = {k: [] for k in keys}
        waiting = {k: len(after[k]) for k in keys}
        for k in keys:
            for before in after[k]:
                readers[before].append(k)
        ready = [(first[k], k) for k in keys if not waiting[k]]
        heapq.heapify(ready)
        items = []
        while ready:
            _, k = heapq.heappop(ready)
            if k[0] == "n":
                reads = [(s, ports[(s, k[1])]) for s in inputs[k[1]]]
                items.append(_Item("n", k[1], reads, [(k[1], j) for j in range(len(a.nodes[k[1]].outputs))]))
            else:
                items.append(_Item("g", k[1], *faces[k[1]]))
            for r in readers[k]:
                waiting[r] -= 1
                if not waiting[r]:
                    heapq.heappush(ready, (first[r], r))
        ends = ([(a.input_id, 0)], [(a.output_id, 0)]) if gid is None else faces[gid]
        scopes[gid] = _Scope(gid, items, *ends)
    return scopes


def _is_chain_scope(scope: _Scope, nodes: dict) -> bool:
    if len(scope.inputs) != 1 or len(scope.outputs) != 1:
        return False
    readers = Counter(v for it in scope.items for v in it.reads)
    prev = scope.inputs[0]
    for it in scope.items:
        if (it.kind == "n" and not nodes[it.id].spec.module) or it.reads != [prev] or len(it.makes) != 1:
            return False
        prev = it.makes[0]
        if readers[prev] > 1:
            return False
    return prev == scope.outputs[0] and readers[prev] == 0


def local_name(name: str, group_name: str) -> str:
    """A block's name inside its group's class: without the group's name in front where it starts
    with it (layer1_0_conv1 in group layer1_0 is conv1), so identical groups read the same."""
    if group_name and name.startswith(group_name) and name[len(group_name):len(group_name) + 1] in ("_", ".", "-", " "):
        rest = name[len(group_name):].lstrip("_.- ")
        if rest:
            return rest
    return name


def _merged(texts: list[str]) -> str:
    """The shapes of one line of a class that several groups share (each group's, where they differ)."""
    seen = list(dict.fromkeys(texts))
    return " or ".join(seen[:3]) + (" or …" if len(seen) > 3 else "")


def generate(graph: Graph, class_name: str = "Net", title: str = "", analysis: Analysis | None = None,
             avoid: Iterable[str] = ()) -> Generated:
    """`avoid`: names a file the code goes into already has at its top level (an exported training
    script's Run, Data, ...), which a group's class must not take."""
    a = analysis or analyze(graph)
    if not a.ok:
        raise CodegenError(a)
    cls = class_identifier(class_name)
    order = [nid for nid in a.order if nid != a.input_id]
    nodes = graph._nodes
    groups = graph._groups
    in_shape = a.input_shape
    out_shape = a.output_shape
    scopes = _scopes(graph, a, order) if groups else {None: _Scope(None, [], [], [])}
    grouped = len(scopes) > 1  # empty groups write nothing

    # The name a block goes by in its class: its own, less its group's name in front.
    local = {nid: local_name(n.name, groups[n.group].name) if n.group is not None and n.group in scopes else n.name
             for nid, n in nodes.items()}
    attr: dict[str, str] = {}
    if not grouped:  # attributes of the one class, from the blocks' names
        used: set[str] = set()
        for nid in order:
            n = nodes[nid]
            attr[nid] = _unique(identifier(n.name or n.spec.short, n.spec.short), used)
            used.add(attr[nid])
    shown = {nid: display_name(local[nid]) or attr.get(nid, n.spec.short) for nid, n in nodes.items()}
    short = {nid: display_name(s, 20) for nid, s in shown.items()}  # for reasons: two names fit a line
    not_in_place = _inplace_plan(graph, a, short)

    def ctor_args(nid: str) -> tuple[str, list[str]]:
        n, info = nodes[nid], a.nodes[nid]
        resolved = {**info.resolved, "inplace": False} if nid in not_in_place else info.resolved
        return f"nn.{n.type}(", module_args(n.type, resolved)

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

    if not grouped:
        _class_header(w, cls, "nn.Module")
        emit("        super().__init__()")
        if _is_chain(graph, a):
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
            items = [_Item("n", nid, [(s, graph._ports[(s, nid)]) for s in graph._inputs[nid]],
                           [(nid, k) for k in range(len(a.nodes[nid].outputs))]) for nid in order]
            texts = {nid: fmt_outputs(a.nodes[nid]).replace(" | ", ", ") for nid in order}
            _forward(graph, a, items, [(a.input_id, 0)], ["x"], [(a.output_id, 0)], attr, shown, texts, w)
        return _finish(w, cls, in_shape, out_shape, attr, not_in_place)

    # -- with groups: one class per set of identical groups, inner classes first ---------------
    for sc in scopes.values():
        sc.chain = sc.gid is not None and _is_chain_scope(sc, nodes)

    def block_key(nid: str) -> tuple:
        n, info = nodes[nid], a.nodes[nid]
        if n.spec.module:
            return n.type, tuple(ctor_args(nid)[1]), nid in not_in_place
        return n.type, repr(sorted(info.resolved.items())), len(info.outputs)

    keys: dict[tuple, int] = {}
    writer: list[str] = []  # class index -> the group it is written from
    class_names: list[str] = []
    taken = {cls, *avoid}

    def assign(gid: str | None) -> None:  # inner first: a group's key holds its children's
        sc = scopes[gid]
        for it in sc.items:
            if it.kind == "g":
                assign(it.id)
        if gid is None:
            return
        ref = {v: ("i", k) for k, v in enumerate(sc.inputs)}
        parts = []
        for j, it in enumerate(sc.items):
            what = block_key(it.id) if it.kind == "n" else ("group", scopes[it.id].key)
            parts.append((it.kind, what, tuple(ref[v] for v in it.reads), len(it.makes)))
            for k, v in enumerate(it.makes):
                ref[v] = ("v", j, k)
        sig = (tuple(parts), tuple(ref[v] for v in sc.outputs), len(sc.inputs))
        if sig not in keys:
            keys[sig] = len(writer)
            writer.append(gid)
            g = groups[gid]
            base = class_identifier(g.cls or g.name)
            name = _unique_class(base, taken)
            taken.add(name)
            class_names.append(name)
        sc.key = keys[sig]

    assign(None)

    # Attribute names in each class, from the group it is written from (the top level: its own).
    local_attr: dict[tuple[str, str], str] = {}  # ("n"|"g", id) of a written item -> attribute or index
    shown_g = {gid: display_name(local_name(g.name, groups[g.parent].name) if g.parent else g.name) or gid
               for gid, g in groups.items()}
    for gid in [None, *writer]:
        sc = scopes[gid]
        used: set[str] = set()
        for i, it in enumerate(sc.items):
            if sc.chain:
                name = str(i)
            elif it.kind == "n":
                n = nodes[it.id]
                name = _unique(identifier(local[it.id] or n.spec.short, n.spec.short), used)
            else:
                name = _unique(identifier(shown_g[it.id], "block"), used)
            used.add(name)
            local_attr[(it.kind, it.id)] = name

    # The shapes each line shows: every group a class is written for, merged.
    instances: dict[int, list[_Scope]] = {}
    for sc in scopes.values():
        if sc.gid is not None:
            instances.setdefault(sc.key, []).append(sc)

    def text(it: _Item, seq: bool) -> str:
        if it.kind == "n":
            info = a.nodes[it.id]
            return fmt_shape(info.shape) if seq else fmt_outputs(info).replace(" | ", ", ")
        return ", ".join(fmt_shape(a.nodes[b].outputs[p]) for b, p in it.makes)

    for key, gid in enumerate(writer):
        sc = scopes[gid]
        texts = [_merged([text(inst.items[j], sc.chain) for inst in instances[key]]) for j in range(len(sc.items))]
        _write_class(w, class_names[key], sc, texts, graph, a, local_attr, shown, shown_g, not_in_place, ctor_args,
                     {g: class_names[scopes[g].key] for g in scopes if g is not None})
    top = scopes[None]
    _write_class(w, cls, top, [text(it, False) for it in top.items], graph, a, local_attr, shown, shown_g,
                 not_in_place, ctor_args, {g: class_names[scopes[g].key] for g in scopes if g is not None})

    # Every block and group to the one written for it, then full paths from the model down.
    home: dict[tuple[str, str], tuple[str, str]] = {}
    for sc in scopes.values():
        model = sc if sc.gid is None else scopes[writer[sc.key]]
        for it, same in zip(sc.items, model.items, strict=True):
            home[(it.kind, it.id)] = (same.kind, same.id)
    prefix: dict[str | None, str] = {None: ""}

    def prefix_of(gid: str | None) -> str:
        if gid not in prefix:
            prefix[gid] = prefix_of(groups[gid].parent) + local_attr[home[("g", gid)]] + "."
        return prefix[gid]

    attr = {nid: prefix_of(nodes[nid].group) + local_attr[home[("n", nid)]] for nid in order}
    gen = _finish(w, cls, in_shape, out_shape, attr, not_in_place, home)
    gen.class_of = {g: class_names[scopes[g].key] for g in scopes if g is not None}
    gen.attr_of_group = {g: prefix_of(g)[:-1] for g in scopes if g is not None}
    return gen


def _unique_class(base: str, taken: set[str]) -> str:
    name, k = base, 2
    while name in taken:
        name, k = f"{base}{k}", k + 1
    return name


def _class_header(w: _Writer, name: str, base: str) -> None:
    w.emit("")
    w.emit("")
    w.emit(f"class {name}({base}):")
    w.emit("    def __init__(self) -> None:")


def _write_class(w: _Writer, name: str, sc: _Scope, texts: list[str], graph: Graph, a: Analysis,
                 local_attr: dict, shown: dict, shown_g: dict, not_in_place: dict, ctor_args, class_of: dict) -> None:
    nodes = graph._nodes
    if sc.chain:
        _class_header(w, name, "nn.Sequential")
        w.emit("        super().__init__(")
        for it, shape in zip(sc.items, texts, strict=True):
            if it.kind == "n":
                if it.id in not_in_place:
                    w.emit(f"            # not in place: {not_in_place[it.id]}", it.id)
                head, args = ctor_args(it.id)
                w.statement(12, head, args, "),", f"{shown[it.id]}: {shape}", it.id)
            else:
                w.statement(12, f"{class_of[it.id]}(", [], "),", f"{shown_g[it.id]}: {shape}", ("g", it.id))
        w.emit("        )")
        return
    _class_header(w, name, "nn.Module")
    w.emit("        super().__init__()")
    attr = {}
    for it in sc.items:
        own = local_attr[(it.kind, it.id)]
        attr[it.id] = own
        if it.kind == "g":
            comment = f"group {shown_g[it.id]}" if shown_g[it.id] != own else ""
            w.statement(8, f"self.{own} = {class_of[it.id]}(", [], ")", comment, ("g", it.id))
        elif nodes[it.id].spec.module:
            if it.id in not_in_place:
                w.emit(f"        # not in place: {not_in_place[it.id]}", it.id)
            head, args = ctor_args(it.id)
            comment = f"block {shown[it.id]}" if shown[it.id] != own else ""
            w.statement(8, f"self.{own} = {head}", args, ")", comment, it.id)
    w.emit("")
    args = ["x"] if len(sc.inputs) == 1 else [f"x{k}" for k in range(1, len(sc.inputs) + 1)]
    returns = "torch.Tensor" if len(sc.outputs) == 1 else "tuple[torch.Tensor, ...]"
    w.statement(4, "def forward(", ["self", *(f"{x}: torch.Tensor" for x in args)], f") -> {returns}:")
    _forward(graph, a, sc.items, sc.inputs, args, sc.outputs, attr, {**shown, **shown_g},
             dict(zip((it.id for it in sc.items), texts, strict=True)), w)


def _finish(w: _Writer, cls: str, in_shape, out_shape, attr: dict[str, str], not_in_place: dict[str, str],
            home: dict | None = None) -> Generated:
    w.emit("")
    w.emit("")
    w.emit('if __name__ == "__main__":')
    w.emit(f"    model = {cls}()")
    w.emit(f"    x = torch.randn(1, {', '.join(str(d) for d in in_shape)})")
    w.emit(f"    print(model(x).shape)  # torch.Size([1, {', '.join(str(d) for d in out_shape)}])")
    code = "\n".join(w.lines) + "\n"
    written: dict[Any, list[int]] = {}
    for ln, owner in sorted(w.owner.items()):
        written.setdefault(owner, []).append(ln)
    gen = Generated(code, cls, attr, {})
    if home is None:
        gen.lines_of = {k: v for k, v in written.items() if isinstance(k, str)}
    else:  # a block of a group whose class was written for another: the lines of its twin there
        for (kind, xid), (_, mid) in home.items():
            lines = written.get(mid if kind == "n" else ("g", mid))
            if lines:
                (gen.lines_of if kind == "n" else gen.group_lines)[xid] = lines
    gen.not_in_place = not_in_place
    return gen


def _forward(graph: Graph, a: Analysis, items: list[_Item], inputs: list[Value], arg_names: list[str],
             outputs: list[Value], attr: dict[str, str], shown: dict[str, str], texts: dict[str, str],
             w: _Writer) -> None:
    """A forward with one line per item (block or group). A value's variable is reused once its
    last reader has run; otherwise the value gets a name of its own. Values are keyed by (block,
    output port): a Split's parts are separate values, unpacked from one call, and so are a
    group's outputs."""
    nodes = graph._nodes
    var = dict(zip(inputs, arg_names, strict=True))
    last_use: dict[Value, int] = {}
    for i, it in enumerate(items):
        for v in it.reads:
            last_use[v] = i
    for v in outputs:  # returned at the end: never overwritten before
        last_use[v] = len(items)
    live: set[str] = set(arg_names)

    def named(xid: str, text: str) -> str:
        """The user's name in front of a comment where the code does not show it as written."""
        return f"{shown[xid]}: {text}" if shown[xid] != attr[xid] else text

    for i, it in enumerate(items):
        args = [var[r] for r in it.reads]
        dying = [var[r] for r in it.reads if last_use[r] == i]
        live.difference_update(dying)
        free = ["x"] if "x" in dying else dying[:1]  # a name the item's result may take over
        targets = []
        for k, v in enumerate(it.makes):
            if v not in last_use:
                targets.append("_")  # a part nothing reads
                continue
            if free:
                target = free.pop()
            else:
                base = attr[it.id] if len(it.makes) == 1 else f"{attr[it.id]}_{k}"
                target = base if base not in live and base not in RESERVED else _unique(f"{base}_out", live)
            live.add(target)
            var[v] = target
            targets.append(target)
        target = ", ".join(targets)
        comment = texts[it.id]
        owner = it.id if it.kind == "n" else ("g", it.id)
        call = f"self.{attr[it.id]}(" if it.kind == "g" else f"torch.{nodes[it.id].type.lower()}("
        if len(targets) > 1 and _width(f"        {target} = {call}") > LINE:
            # ruff's layout when even `a, b = call(` does not fit: the targets exploded first
            w.emit("        (", owner)
            for t in targets:
                w.emit(f"            {t},", owner)
            target = ")"
        n = nodes[it.id] if it.kind == "n" else None
        info = a.nodes[it.id] if n is not None else None
        if n is None:
            w.statement(8, f"{target} = self.{attr[it.id]}(", args, ")", named(it.id, comment), owner)
        elif n.type in ("Add", "Mul"):
            w.statement(8, f"{target} = ", args, "", named(it.id, comment), owner, op="+" if n.type == "Add" else "*")
        elif n.type == "Concat":
            dim = info.resolved["dim"]
            listed = f"[{', '.join(args)}]"
            if _width(f"            {listed},") <= LINE:
                w.statement(8, f"{target} = torch.cat(", [listed, f"dim={dim}"], ")", named(it.id, comment), owner)
            else:  # ruff's layout of a call whose list does not fit: both exploded, trailing commas
                w.emit(f"        {target} = torch.cat(", owner)
                w.emit("            [", owner)
                for arg in args:
                    w.emit(f"                {arg},", owner)
                w.emit("            ],", owner)
                w.emit(f"            dim={dim},", owner)
                w.emit(f"        )  # {named(it.id, comment)}", owner)
        elif n.type in ("Split", "Chunk"):
            how = info.resolved["split_size_or_sections" if n.type == "Split" else "chunks"]
            call = f"torch.{n.type.lower()}("
            w.statement(8, f"{target} = {call}", [args[0], literal(how, SIZES), f"dim={info.resolved['dim']}"], ")",
                        named(it.id, comment), owner)
        else:
            w.statement(8, f"{target} = self.{attr[it.id]}(", args, ")", comment, owner)
    w.statement(8, "return ", [var[v] for v in outputs], "")


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
    for nid, path in gen.attr_of.items():  # every name on the path: a group's class has attributes too
        for part in path.split("."):
            if part in taken:
                raise CodegenError(problem=Problem(f"its layer name '{part}' is taken by torch.nn.Module in this "
                                                   "torch version: rename the block (or its group)", nid))
    namespace: dict[str, Any] = {"__name__": "cnnbuilder_generated"}
    exec(compile(gen.code, f"<cnnbuilder:{gen.class_name}>", "exec"), namespace)
    return namespace[gen.class_name]()
