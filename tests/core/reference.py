"""Test helpers: an independent graph interpreter (torch modules wired by walking the graph,
no generated code) and a generator of random valid graphs."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
import torch
from torch import nn

from cnnbuilder.core.graph import Graph
from cnnbuilder.core.shapes import analyze


class Interpreter(nn.Module):
    """Runs a graph directly. Modules are registered in the same order codegen emits them, so a
    state_dict's values can be zipped across. Nothing runs in place (inplace=True is dropped), so
    every value a block reads is exactly what its source produced."""

    def __init__(self, graph: Graph):
        super().__init__()
        a = analyze(graph)
        assert a.ok, [p.message for p in a.problems]
        self.order = [n for n in a.order]
        self.inputs = {n: [(s, graph.port(s, n)) for s in graph.inputs(n)] for n in a.order}
        self.types = {n.id: n.type for n in graph}
        self.input_id, self.output_id = a.input_id, a.output_id
        self.dims = {}
        self.mods = nn.ModuleDict()
        for nid in self.order:
            spec = graph.node(nid).spec
            resolved = a.nodes[nid].resolved
            if spec.module:
                kwargs = spec.ctor_kwargs(resolved)
                if "inplace" in kwargs:
                    kwargs["inplace"] = False
                self.mods[nid] = getattr(nn, spec.type)(**kwargs)
            elif spec.type in ("Concat", "Split", "Chunk"):
                self.dims[nid] = resolved["dim"]
        self.how = {n: a.nodes[n].resolved.get("split_size_or_sections", a.nodes[n].resolved.get("chunks"))
                    for n in self.order}

    def forward(self, x):
        values = {(self.input_id, 0): x}  # (block, output port) -> tensor
        for nid in self.order:
            if nid == self.input_id:
                continue
            args = [values[r] for r in self.inputs[nid]]
            t = self.types[nid]
            if t in ("Add", "Mul"):
                out = args[0]
                for v in args[1:]:
                    out = out + v if t == "Add" else out * v
            elif t == "Concat":
                out = torch.cat(args, dim=self.dims[nid])
            elif t == "Split":
                out = torch.split(args[0], list(self.how[nid]), dim=self.dims[nid])
            elif t == "Chunk":
                out = torch.chunk(args[0], self.how[nid], dim=self.dims[nid])
            else:
                out = self.mods[nid](args[0])
            for k, v in enumerate(out if isinstance(out, tuple) else (out,)):
                values[(nid, k)] = v
        return values[(self.output_id, 0)]


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    a, b = src.state_dict(), dst.state_dict()
    assert [v.shape for v in a.values()] == [v.shape for v in b.values()]
    dst.load_state_dict({k: v for k, v in zip(b.keys(), a.values(), strict=True)})


LAYER_MENU = [
    ("Conv2d", lambda r: {"out_channels": r.choice([4, 8]), "kernel_size": r.choice([1, 3]),
                          "padding": r.choice([0, 1, "same"])}),
    ("Conv2d", lambda r: {"out_channels": 8, "kernel_size": 3, "stride": 2, "padding": 1, "bias": False}),
    ("ConvTranspose2d", lambda r: {"out_channels": 4, "kernel_size": 2, "stride": 2}),
    ("MaxPool2d", lambda r: {"kernel_size": 2}),
    ("AvgPool2d", lambda r: {"kernel_size": 3, "stride": 1, "padding": 1}),
    ("BatchNorm2d", lambda r: {}),
    ("GroupNorm", lambda r: {"num_groups": r.choice([1, 2])}),
    ("ReLU", lambda r: {}),
    ("LeakyReLU", lambda r: {"negative_slope": 0.1}),
    ("ELU", lambda r: {}),
    ("GELU", lambda r: {"approximate": r.choice(["none", "tanh"])}),
    ("SiLU", lambda r: {}),
    ("Sigmoid", lambda r: {}),
    ("Tanh", lambda r: {}),
    ("Dropout2d", lambda r: {"p": 0.2}),
    ("Identity", lambda r: {}),
    ("Upsample", lambda r: {"scale_factor": 2.0, "mode": r.choice(["nearest", "bilinear"])}),
]


def random_graph(seed: int, max_blocks: int = 14) -> Graph:
    """A random valid DAG: chains, branches, residual Adds and Concats, one output."""
    r = random.Random(seed)
    g = Graph()
    g.add_node("Input", {"shape": [r.choice([1, 3]), r.choice([8, 12, 16]), r.choice([8, 16])]})
    for _ in range(r.randint(2, max_blocks)):
        a = analyze(g)
        live = [n for n in a.order if a.nodes[n].shape is not None and len(a.nodes[n].shape) == 3]
        kind = r.random()
        if kind < 0.15 and len(live) >= 2:
            x, y = r.sample(live, 2)
            sx, sy = a.nodes[x].shape, a.nodes[y].shape
            if sx == sy:
                merge = g.add_node("Add", {})
            elif sx[1:] == sy[1:]:
                merge = g.add_node("Concat", {})
            else:
                continue
            g.connect(x, merge.id)
            g.connect(y, merge.id)
        else:
            t, make = r.choice(LAYER_MENU)
            n = g.add_node(t, make(r))
            g.connect(r.choice(live[-3:]), n.id)
        if not analyze(g).nodes[g.nodes[-1].id].shape:
            g.remove_node(g.nodes[-1].id)
    # One output: give every dangling branch a head and sum the heads.
    a = analyze(g)
    sinks = [n for n in a.order if not g.outputs(n)]
    heads = []
    for s in sinks:
        prev = s
        for t, p in (("AdaptiveAvgPool2d", {"output_size": 1}), ("Flatten", {}), ("Linear", {"out_features": 5})):
            node = g.add_node(t, p)
            g.connect(prev, node.id)
            prev = node.id
        heads.append(prev)
    if len(heads) > 1:
        add = g.add_node("Add", {})
        for h in heads:
            g.connect(h, add.id)
    return g


def assert_ruff_clean(path) -> None:
    """Generated code as ruff sees it: lint clean and already formatted (a file or a folder)."""
    ruff = [sys.executable, "-m", "ruff"]
    lint = subprocess.run([*ruff, "check", "--isolated", "--select", "E,F,W,I,B,UP", "--line-length", "120",
                           str(path)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = subprocess.run([*ruff, "format", "--isolated", "--line-length", "120", "--diff", str(path)],
                         capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: a second intra-op thread only adds contention (10x slower on a busy 2-core CI).
    Autouse in the modules that import it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
