"""Graph -> readable PyTorch source. This code is the single source of truth for the model:
the trainer builds its model by executing it (see `build_model`).

A chain becomes one nn.Sequential; a graph with branches or skips gets one attribute per layer
and an explicit forward. Every forward line carries the shape it produces. Block names become
identifiers through `identifier()`, which keeps only [a-z0-9_]: a name can never inject code.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from typing import Any

from .blocks import get_spec
from .blocks.base import fmt_shape
from .graph import Graph
from .shapes import Analysis, analyze

RESERVED = set(keyword.kwlist) | {"self", "x", "nn", "torch", "forward", "super", "print", "input", "layers",
                                  "model", "Net", "None", "True", "False"}


class CodegenError(Exception):
    """The graph has problems; code is only generated for a graph that works."""

    def __init__(self, analysis: Analysis):
        self.problems = analysis.problems
        lines = [p.message if p.node_id is None else f"{p.node_id}: {p.message}" for p in analysis.problems[:10]]
        super().__init__("cannot generate code while the graph has problems:\n  " + "\n  ".join(lines))


def identifier(text: str, fallback: str = "layer") -> str:
    ident = re.sub(r"[^0-9a-zA-Z_]+", "_", text).strip("_").lower()
    ident = re.sub(r"_+", "_", ident)[:40].rstrip("_")
    if not ident:
        ident = fallback
    if ident[0].isdigit():
        ident = f"{fallback}_{ident}"
    if ident in RESERVED or keyword.iskeyword(ident):
        ident += "_"
    return ident


def class_identifier(text: str) -> str:
    words = re.findall(r"[0-9a-zA-Z]+", text)
    name = "".join(w[:1].upper() + w[1:] for w in words)[:60]
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = "Net" + name
    return name


def literal(value: Any) -> str:
    """A Python literal for a checked param value (ints, floats, bools, None, choice strings)."""
    if isinstance(value, tuple):
        if len(value) == 2 and value[0] == value[1] and value[0] is not None:
            return literal(value[0])
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
    spec = get_spec(type_name)
    args: list[str] = []
    for p in spec.params:
        if not p.ctor:
            continue
        value = resolved[p.name]
        if p.positional:
            if p.inferred or p.required or _differs(value, p.default):
                args.append(literal(value))
            continue
        if p.required or _differs(value, p.default):
            args.append(f"{p.name}={literal(value)}")
    return f"nn.{type_name}({', '.join(args)})"


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
        base = identifier(n.name or n.spec.short, n.spec.short)
        name, k = base, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        attr[nid] = name

    is_chain = _is_chain(graph, a)
    lines: list[str] = []
    owner: dict[int, str] = {}

    def emit(text: str, nid: str | None = None) -> None:
        lines.append(text)
        if nid is not None:
            owner[len(lines)] = nid

    doc_title = re.sub(r"[^\w \-.,()/+]", "", title).strip()[:80] or cls
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
        for i, nid in enumerate(order):
            n, info = nodes[nid], a.nodes[nid]
            emit(f"            {module_expr(n.type, info.resolved)},  # {attr[nid]}: {fmt_shape(info.shape)}", nid)
            attr[nid] = f"layers.{i}"
        emit("        )")
        emit("")
        emit("    def forward(self, x: torch.Tensor) -> torch.Tensor:")
        emit(f"        return self.layers(x)  # {fmt_shape(in_shape)} -> {fmt_shape(out_shape)}")
    else:
        for nid in order:
            n, info = nodes[nid], a.nodes[nid]
            if n.spec.module:
                emit(f"        self.{attr[nid]} = {module_expr(n.type, info.resolved)}", nid)
        emit("")
        emit("    def forward(self, x: torch.Tensor) -> torch.Tensor:")
        var = {a.input_id: "x"}
        last_use = {}
        for i, nid in enumerate(order):
            for src in graph._inputs[nid]:
                last_use[src] = i
        live: set[str] = {"x"}
        for i, nid in enumerate(order):
            n, info = nodes[nid], a.nodes[nid]
            args = [var[s] for s in graph._inputs[nid]]
            # Reuse an input's variable once this is its last reader; else name the value.
            reusable = [var[s] for s in graph._inputs[nid] if last_use[s] == i]
            target = "x" if "x" in reusable else (reusable[0] if reusable else None)
            if target is None:
                target = attr[nid] if attr[nid] not in live else f"{attr[nid]}_out"
            if n.type == "Add":
                expr = " + ".join(args)
            elif n.type == "Concat":
                expr = f"torch.cat([{', '.join(args)}], dim={info.resolved['dim']})"
            else:
                expr = f"self.{attr[nid]}({args[0]})"
            for s in graph._inputs[nid]:
                if last_use[s] == i:
                    live.discard(var[s])
            live.add(target)
            var[nid] = target
            emit(f"        {target} = {expr}  # {fmt_shape(info.shape)}", nid)
        emit(f"        return {var[a.output_id]}")
    emit("")
    emit("")
    emit('if __name__ == "__main__":')
    emit(f"    model = {cls}()")
    emit(f"    x = torch.randn(1, {', '.join(str(d) for d in in_shape)})")
    emit(f"    print(model(x).shape)  # torch.Size([1, {', '.join(str(d) for d in out_shape)}])")
    code = "\n".join(lines) + "\n"
    lines_of: dict[str, list[int]] = {}
    for ln, nid in owner.items():
        lines_of.setdefault(nid, []).append(ln)
    return Generated(code, cls, attr, lines_of)


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
    import torch  # noqa: F401  (lazy: the editor never pays for torch)

    namespace: dict[str, Any] = {"__name__": "cnnbuilder_generated"}
    exec(compile(gen.code, f"<cnnbuilder:{gen.class_name}>", "exec"), namespace)
    return namespace[gen.class_name]()
