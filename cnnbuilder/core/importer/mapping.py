"""Traced torch.fx graph -> cnnbuilder graph, through one table (runs in the importer's child).

A node of the traced graph becomes a block when its value is a tensor: torch.nn modules by their
class name (the block types are named after them), functions and tensor methods through OPS. Plain
Python values (sizes read with x.size(0), arithmetic on them) need no block: the concrete run says
what they were. Anything else is refused with the user's file and line and the reason.
"""

from __future__ import annotations

import inspect
import math
import operator
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..blocks import REGISTRY, ParamError
from ..graph import Graph, GraphError


class Refusal(Exception):
    """The module cannot be imported; the message is in the user's terms."""


@dataclass
class Mapped:
    graph: dict  # the project format's graph (graph_to_dict)
    shapes: dict[str, list[list[int]]]  # block id -> the traced shape of each output, without the batch
    expect: dict[str, dict[str, Any]]  # block id -> inferred parameters as the module has them
    origins: dict[str, str]  # block id -> "file.py:line" it came from
    output_shape: list[int]  # the module's output for the example batch (batch first)
    notes: list[str] = field(default_factory=list)
    weights: dict[str, dict[str, Any]] = field(default_factory=dict)  # block id -> the module's state_dict
    name: str = ""


BATCH = 2  # the concrete run's batch: 2, so the batch dimension is never mistaken for a size-1 one
CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")
# Modules that compute nothing in evaluation and have no block: left out, with a note.
PASSTHROUGH = {"StochasticDepth": "does nothing in evaluation (it drops residual branches while training)"}
MAX_DIMS = 3  # blocks work on at most C×H×W per sample


def _nn():
    import torch
    import torch.nn.functional as F  # noqa: N812
    from torch import nn

    return torch, F, nn


# -- the table ------------------------------------------------------------------------------------

def _sigs() -> dict[str, inspect.Signature]:
    def act(input, inplace=False): ...
    def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False): ...
    def leaky_relu(input, negative_slope=0.01, inplace=False): ...
    def elu(input, alpha=1.0, inplace=False): ...
    def gelu(input, approximate="none"): ...
    def softmax(input, dim=None, _stacklevel=3, dtype=None): ...
    def adaptive(input, output_size): ...
    def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False): ...
    def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                   divisor_override=None): ...
    def dropout(input, p=0.5, training=True, inplace=False): ...
    def flatten(input, start_dim=0, end_dim=-1): ...
    def cat(tensors, dim=0): ...
    def split(tensor, split_size_or_sections, dim=0): ...
    def chunk(input, chunks, dim=0): ...
    def add(input, other, alpha=1): ...
    def mul(input, other): ...
    def mean(input, dim=None, keepdim=False, dtype=None): ...
    def pad(input, pad, mode="constant", value=None): ...
    def channel_shuffle(input, groups): ...
    def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                    recompute_scale_factor=None, antialias=False): ...
    def one(input): ...
    local = dict(locals())
    return {k: inspect.signature(v) for k, v in local.items()}


def _functions() -> dict[Any, str]:
    """Function object -> op name (call_function nodes)."""
    torch, F, nn = _nn()
    table = {
        F.relu: "relu", torch.relu: "relu", torch.relu_: "relu_", F.relu_: "relu_", F.relu6: "relu6",
        F.hardtanh: "hardtanh", F.hardswish: "hardswish", F.hardsigmoid: "hardsigmoid", F.silu: "silu",
        F.gelu: "gelu", F.leaky_relu: "leaky_relu", F.elu: "elu", F.mish: "mish", torch.sigmoid: "sigmoid",
        F.sigmoid: "sigmoid", torch.tanh: "tanh", F.tanh: "tanh", F.softmax: "softmax", torch.softmax: "softmax",
        F.log_softmax: "log_softmax", torch.log_softmax: "log_softmax",
        F.adaptive_avg_pool2d: "adaptive_avg_pool2d", F.adaptive_max_pool2d: "adaptive_max_pool2d",
        F.max_pool2d: "max_pool2d", F.avg_pool2d: "avg_pool2d", F.dropout: "dropout", F.dropout2d: "dropout2d",
        torch.flatten: "flatten", torch.reshape: "reshape", torch.cat: "cat", torch.concat: "cat",
        torch.split: "split", torch.chunk: "chunk", operator.add: "add", operator.iadd: "add", torch.add: "add",
        operator.mul: "mul", operator.imul: "mul", torch.mul: "mul", torch.transpose: "transpose",
        torch.mean: "mean", F.pad: "pad", F.channel_shuffle: "channel_shuffle", operator.getitem: "getitem",
        F.interpolate: "interpolate",
    }
    if hasattr(torch, "concatenate"):
        table[torch.concatenate] = "cat"
    if hasattr(torch, "channel_shuffle"):
        table[torch.channel_shuffle] = "channel_shuffle"
    return table


METHODS = {"relu": "relu", "relu_": "relu_", "sigmoid": "sigmoid", "tanh": "tanh", "add": "add", "add_": "add_",
           "mul": "mul", "mul_": "mul_", "view": "reshape", "reshape": "reshape", "flatten": "flatten",
           "contiguous": "contiguous", "chunk": "chunk", "split": "split", "transpose": "transpose", "mean": "mean",
           "softmax": "softmax", "log_softmax": "log_softmax"}
# Python values read from a tensor's metadata (its shape), which may steer shape arithmetic.
SHAPE_READS = {"size", "dim", "shape", "ndim", "ndimension", "numel"}
ACTIVATIONS = {"relu": "ReLU", "relu_": "ReLU", "relu6": "ReLU6", "hardswish": "Hardswish",
               "hardsigmoid": "Hardsigmoid", "silu": "SiLU", "mish": "Mish", "sigmoid": "Sigmoid", "tanh": "Tanh"}
SIG_OF = {**{k: "act" for k in ACTIVATIONS}, "hardtanh": "hardtanh", "leaky_relu": "leaky_relu", "elu": "elu",
          "gelu": "gelu", "softmax": "softmax", "log_softmax": "softmax", "adaptive_avg_pool2d": "adaptive",
          "adaptive_max_pool2d": "adaptive", "max_pool2d": "max_pool2d", "avg_pool2d": "avg_pool2d",
          "dropout": "dropout", "dropout2d": "dropout", "flatten": "flatten", "cat": "cat", "split": "split",
          "chunk": "chunk", "add": "add", "add_": "add", "mul": "mul", "mul_": "mul", "mean": "mean", "pad": "pad",
          "channel_shuffle": "channel_shuffle", "contiguous": "one", "interpolate": "interpolate"}
SYMBOLS = {operator.truediv: "/", operator.sub: "-", operator.floordiv: "//", operator.pow: "**",
           operator.matmul: "@", operator.neg: "unary -", operator.mod: "%"}


# -- tracing --------------------------------------------------------------------------------------

def _tracer_class():
    import torch.fx as fx

    class Tracer(fx.Tracer):
        """torch.nn modules are leaves (their block, or a refusal naming them); the user's own modules
        are traced through, and fx records their path on every node (nn_module_stack)."""

        def __init__(self) -> None:
            super().__init__()
            self.record_stack_traces = True

        def is_leaf_module(self, m, qualname: str) -> bool:
            t = type(m)
            if t.__module__.startswith("torch.nn.") and t.__name__ in CONTAINERS:
                return False
            return t.__module__.startswith("torch.nn.") or t.__name__ in PASSTHROUGH

    return Tracer


_FRAME = re.compile(r'File "([^"]+)", line (\d+), in ')


def _shown_file(filename: str) -> str:
    parts = Path(filename).parts
    if "site-packages" in parts:  # torchvision's own files: torchvision/models/resnet.py
        return "/".join(parts[parts.index("site-packages") + 1:])
    return Path(filename).name


def _library(filename: str) -> bool:
    import torch

    roots = [str(Path(torch.__file__).parent), str(Path(__file__).resolve().parents[2])]
    return any(filename.startswith(r + os.sep) for r in roots) or filename.startswith("<")


def origin_of(node) -> str:
    """`file.py:line` of the user's code that made an fx node (from fx's recorded stack)."""
    frames = _FRAME.findall(node.stack_trace or "")
    for filename, line in reversed(frames):
        if not _library(filename):
            return f"{_shown_file(filename)}:{line}"
    return ""


def _clean_fx_message(text: str) -> str:
    text = " ".join(text.split())
    if "symbolically traced variables cannot be used as inputs to control flow" in text:
        return ("its forward makes a Python decision (if, while, bool(), a loop) on a tensor, which tracing cannot "
                "follow; a drawn graph computes the same thing for every input")
    if "Proxy object cannot be iterated" in text:
        return "its forward iterates over a tensor in Python, which tracing cannot follow"
    text = re.sub(r"\s*(Try|Consider).*$", "", text)
    return text[:300]


def trace(model):
    """(GraphModule) or Refusal with fx's reason and the user's line."""
    import torch.fx as fx

    from .child import user_frame

    tracer = _tracer_class()()
    try:
        graph = tracer.trace(model)
    except Refusal:
        raise
    except Exception as exc:
        where = user_frame(exc.__traceback__)
        at = f"{where}: " if where else ""
        if type(exc).__module__.startswith("torch.fx") or "Proxy" in str(exc) or "symbolically traced" in str(exc):
            raise Refusal(f"{at}cannot be traced: {_clean_fx_message(str(exc))}") from None
        raise Refusal(f"{at}forward raised {type(exc).__name__}: {_clean_fx_message(str(exc))}") from None
    return fx.GraphModule(tracer.root, graph)


def run_concrete(gm, example) -> dict:
    """Every node's value for one example input (fx's Interpreter), or a refusal naming the line."""
    import torch
    import torch.fx as fx

    values: dict = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n):
            self.current = n
            values[n] = super().run_node(n)
            return values[n]

    rec = Recorder(gm)
    try:
        with torch.no_grad():
            rec.run(example)
    except Exception as exc:
        node = getattr(rec, "current", None)
        where = origin_of(node) if node is not None else ""
        shape = "×".join(str(d) for d in example.shape)
        msg = str(exc).split("\n\nWhile executing")[0]
        msg = re.sub(r"Proxy\([^)]*\)", "(a traced value)", msg)  # a message formatted while tracing
        raise Refusal(f"{where + ': ' if where else ''}the module fails on a {shape} input: "
                      f"{type(exc).__name__}: {' '.join(msg.split())[:300]}") from None
    return values


# -- the mapping ----------------------------------------------------------------------------------

def map_module(model, input_shape, where: str, torchvision: bool = False) -> Mapped:
    torch, _, _ = _nn()
    gm = trace(model)
    graph = gm.graph
    places = [n for n in graph.nodes if n.op == "placeholder"]
    needed = [n for n in places if not n.args]  # placeholders with a default value are constants
    if len(needed) != 1:
        raise Refusal(f"{where}: forward takes {len(needed)} inputs; a cnnbuilder model takes one tensor")
    for node in graph.nodes:  # modules without a block are refused before the module is run
        if node.op == "call_module":
            mod = gm.get_submodule(node.target)
            t = type(mod).__name__
            spec = REGISTRY.get(t)
            if t not in PASSTHROUGH and (spec is None or not spec.module):
                raise Refusal(f"{origin_of(node) or where}: {node.target} ({t}): {type(mod).__module__.split('.')[0]}."
                              f"{'nn.' if type(mod).__module__.startswith('torch.nn') else ''}{t} has no block "
                              "(see `cnnbuilder layers`)")
    if input_shape is None:
        input_shape = _evident_input(model, gm, needed[0], where)
    input_shape = tuple(int(d) for d in input_shape)
    torch.manual_seed(0)
    example = torch.randn(BATCH, *input_shape)
    values = run_concrete(gm, example)
    out = next(n for n in graph.nodes if n.op == "output")
    result = values[out]
    if not isinstance(result, torch.Tensor):
        what = f"{len(result)} values" if isinstance(result, (tuple, list, dict)) else type(result).__name__
        raise Refusal(f"{origin_of(out) or where}: forward returns {what}; a cnnbuilder model returns one tensor")
    b = _Builder(gm, values, where)
    try:
        b.build(input_shape, needed[0], out)
    except GraphError as exc:
        if not b.use_groups:
            raise Refusal(f"{where}: {exc}") from None
        b = _Builder(gm, values, where, use_groups=False)
        b.build(input_shape, needed[0], out)
        b.notes.append(f"the module's submodules were not made groups: {exc}")
    b.finish()
    unused = b.unused_weights(model)
    if unused:
        b.notes.append(f"{', '.join(unused[:6])}{' and more' if len(unused) > 6 else ''}: not used by the forward "
                       "(in evaluation), so their weights are not in the project")
    from ..project import graph_to_dict

    return Mapped(graph_to_dict(b.g), b.shapes, b.expect, b.origins, list(result.shape), b.notes, b.weights,
                  type(model).__name__)


def _evident_input(model, gm, placeholder, where: str) -> tuple[int, ...]:
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, (tuple, list)) and shape and all(isinstance(d, int) and d > 0 for d in shape):
        return tuple(shape)
    first = next(iter(placeholder.users), None)
    mod = gm.get_submodule(first.target) if first is not None and first.op == "call_module" else None
    if mod is not None and type(mod).__name__ == "Linear":
        return (mod.in_features,)
    hint = "3x32x32"
    if mod is not None and type(mod).__name__ in ("Conv2d", "BatchNorm2d"):
        c = getattr(mod, "in_channels", getattr(mod, "num_features", 3))
        hint = f"{c}x32x32"
    raise Refusal(f"{where}: the module does not say what size of input it takes; give it with --input, "
                  f"e.g. --input {hint} (channels×height×width)")


class _Builder:
    def __init__(self, gm, values: dict, where: str, use_groups: bool = True):
        self.gm, self.values, self.where, self.use_groups = gm, values, where, use_groups
        self.g = Graph()
        self.src: dict = {}  # fx node -> (block id, port) of the tensor it is
        self.parts: dict = {}  # fx node -> block id of a Split/Chunk (its value is a tuple of tensors)
        self.skip: set = set()  # fx nodes taken care of by a pattern (channel shuffle)
        self.groups: dict[str, str] = {}  # nn_module_stack key -> group id
        self.names: dict[str | None, set[str]] = {}  # names taken in each group
        self.shapes: dict[str, list[list[int]]] = {}
        self.expect: dict[str, dict[str, Any]] = {}
        self.origins: dict[str, str] = {}
        self.weights: dict[str, dict[str, Any]] = {}
        self.module_block: dict[str, str] = {}  # module path -> block id (one block per module with weights)
        self.notes: list[str] = []
        self.order = {n: i for i, n in enumerate(gm.graph.nodes)}
        self.sigs = _sigs()
        self.funcs = _functions()
        self.noted: set[str] = set()

    # -- helpers --------------------------------------------------------------------------------
    def refuse(self, node, reason: str):
        where = origin_of(node) if node is not None else ""
        raise Refusal(f"{where or self.where}: {reason}")

    def is_tensor(self, x) -> bool:
        import torch
        import torch.fx as fx

        return isinstance(x, fx.Node) and isinstance(self.values.get(x), torch.Tensor)

    def value(self, x):
        """A constant argument: fx nodes replaced by the values they had."""
        import torch.fx as fx

        return fx.node.map_arg(x, lambda n: self.values[n])

    def tensor_in(self, node, x, what: str = "input"):
        if not self.is_tensor(x):
            self.refuse(node, f"expected a tensor as the {what} of {self.describe(node)}")
        if x not in self.src:
            self.refuse(node, f"{self.describe(node)} reads a tensor that no block produced")
        return x

    def describe(self, node) -> str:
        if node.op == "call_module":
            return f"{node.target} ({type(self.gm.get_submodule(node.target)).__name__})"
        if node.op == "call_method":
            return f"Tensor.{node.target}"
        t = node.target
        if t in SYMBOLS:
            return f"`{SYMBOLS[t]}`"
        if t in (operator.add, operator.iadd):
            return "`+`"
        if t in (operator.mul, operator.imul):
            return "`*`"
        if t is operator.getitem:
            return "indexing"
        mod = getattr(t, "__module__", None) or ""
        name = getattr(t, "__name__", str(t))
        if mod.startswith("torch._C._") and name.startswith(mod[len("torch._C._"):] + "_"):
            sub = mod[len("torch._C._"):]  # torch.fft.fft2 lives in torch._C._fft as fft_fft2
            mod, name = f"torch.{sub}", name[len(sub) + 1:]
        elif not mod or mod.startswith("torch._"):  # torch's C functions: torch.permute, not torch._C...
            mod = "torch"
        return f"{mod}.{name}"

    def stack(self, node) -> list[tuple[str, str, type]]:
        """(key, module path, class) of the user modules the node was made in, outermost first."""
        if not self.use_groups:
            return []
        entries = []
        for key, val in (node.meta.get("nn_module_stack") or {}).items():
            path, cls = val if isinstance(val, tuple) else (key, None)
            entries.append((key, path, cls))
        if node.op == "call_module" and entries and entries[-1][1] == node.target:
            entries = entries[:-1]
        return [e for e in entries if e[1]]

    def group_for(self, node) -> tuple[str | None, str]:
        """(group id, module path of that group) for a node, making the groups on the way."""
        gid, path = None, ""
        for key, p, cls in self.stack(node):
            if key not in self.groups:
                name = p
                t = "" if cls is None or (getattr(cls, "__module__", "").startswith("torch.nn.")
                                           and cls.__name__ in CONTAINERS) else cls.__name__
                if t and not t.isidentifier():
                    t = ""
                self.groups[key] = self.g.add_group(name[:80], parent=gid, cls=t).id
            gid, path = self.groups[key], p
        return gid, path

    def unique(self, gid: str | None, base: str) -> str:
        """`base`, else base_2, base_3, ...: one name for one block within a group (a ReLU module
        called twice gives relu and relu_2, as the generated code would name them)."""
        taken = self.names.setdefault(gid, set())
        name, k = base[:80], 2
        while name in taken:
            name, k = f"{base[:70]}_{k}", k + 1
        taken.add(name)
        return name

    def add(self, node, type_name: str, params: dict, inputs: list, name: str | None = None,
            module_path: str | None = None, out_value=None) -> str:
        """A block for an fx node, reading `inputs` ((block id, port) pairs)."""
        spec = REGISTRY[type_name]
        gid, gpath = self.group_for(node)
        if name is None:
            name = spec.short if type_name not in ("Add", "Mul", "Concat") else type_name.lower()
            if type_name == "Concat":
                name = "cat"
        elif module_path and gpath and module_path.startswith(gpath + "."):
            name = module_path[len(gpath) + 1:]
        name = self.unique(gid, name)
        try:
            nid = self.g.add_node(type_name, params, name=name[:80], group=gid).id
        except ParamError as exc:
            self.refuse(node, f"{self.describe(node)}: {exc.param}: {exc.reason} (no {type_name} block takes it)")
        seen: set[str] = set()
        for src, port in inputs:
            if src in seen:  # `x * x`: a block reads another once; the second read goes through an Identity
                ident = self.g.add_node("Identity", {}, name=self.unique(gid, "identity"), group=gid).id
                self.g.connect(src, ident, port=port)
                self.origins[ident] = origin_of(node)
                self.shapes[ident] = [list(self.values_shape(src, port))]
                src, port = ident, 0
            seen.add(src)
            self.g.connect(src, nid, port=port)
        value = self.values[node] if out_value is None else out_value
        outs = value if isinstance(value, (tuple, list)) else [value]
        self.shapes[nid] = [list(t.shape[1:]) for t in outs]
        self.origins[nid] = origin_of(node)
        return nid

    def values_shape(self, bid: str, port: int) -> list[int]:
        return self.shapes[bid][port]

    def note_once(self, key: str, text: str) -> None:
        if key not in self.noted:
            self.noted.add(key)
            self.notes.append(text)

    # -- the walk -------------------------------------------------------------------------------
    def build(self, input_shape, placeholder, out) -> None:
        inp = self.g.add_node("Input", {"shape": list(input_shape)}, name="input").id
        self.src[placeholder] = (inp, 0)
        self.shapes[inp] = [list(input_shape)]
        self.origins[inp] = ""
        live = self.live(out)
        for node in self.gm.graph.nodes:
            if node.op in ("placeholder", "output") or node in self.skip:
                continue
            if node not in live:
                self.check_dead(node)
                continue
            self.visit(node)
        res = out.args[0]
        if res not in self.src:
            self.refuse(out, "forward returns a tensor that no block produced")
        if self.src[res][0] == inp:
            self.refuse(out, "forward returns its input unchanged: there is nothing to import")
        self.output = self.src[res]

    def live(self, out) -> set:
        seen, stack = set(), [out]
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            stack.extend(n.all_input_nodes)
        return seen

    def inplace(self, node) -> bool:
        if node.op == "call_method" and node.target.endswith("_"):
            return True
        if node.op == "call_function" and self.funcs.get(node.target, "").endswith("_"):
            return True
        if node.kwargs.get("inplace") is True:
            return True
        if node.op == "call_module":
            return getattr(self.gm.get_submodule(node.target), "inplace", False) is True
        return False

    def check_dead(self, node) -> None:
        """A node whose value nothing uses is left out, unless it changed a tensor in place that is used."""
        if self.inplace(node) and node.args:
            self.check_inplace(node)

    def check_inplace(self, node) -> None:
        first = node.args[0]
        if self.is_tensor(first):
            later = [u for u in first.users if u is not node and self.order[u] > self.order[node]]
            if later:
                self.refuse(node, f"{self.describe(node)} changes a tensor in place that is read again later; "
                                  "a drawn graph passes values, not memory: write y = f(x) instead")

    def visit(self, node) -> None:
        import torch

        v = self.values[node]
        if node.op == "get_attr":
            if isinstance(v, torch.Tensor):
                self.refuse(node, f"forward uses the tensor self.{node.target} directly; only layers' own weights "
                                  "can be carried by blocks")
            return
        tensor_out = isinstance(v, torch.Tensor) or (isinstance(v, (tuple, list)) and v
                                                     and all(isinstance(t, torch.Tensor) for t in v))
        reads_tensor = any(self.is_tensor(a) or a in self.parts for a in node.all_input_nodes)
        if not tensor_out:
            if reads_tensor:
                name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
                if not (name in SHAPE_READS or (node.target is getattr and node.args[1] in SHAPE_READS)):
                    self.refuse(node, f"{self.describe(node)} turns a tensor into a Python value; a drawn graph "
                                      "passes tensors from block to block")
            return  # a plain value (a size, arithmetic on sizes): the concrete run already knows it
        if not reads_tensor and node.op != "call_module":
            self.refuse(node, f"{self.describe(node)} makes a new tensor inside forward; no block does that")
        if self.inplace(node):
            self.check_inplace(node)
        if node.op == "call_module":
            self.visit_module(node)
        elif node.op == "call_function" and node.target in self.funcs:
            self.visit_op(node, self.funcs[node.target])
        elif node.op == "call_method" and node.target in METHODS:
            self.visit_op(node, METHODS[node.target])
        else:
            self.refuse(node, f"{self.describe(node)} has no block (nothing was imported)")

    def visit_module(self, node) -> None:
        mod = self.gm.get_submodule(node.target)
        t = type(mod).__name__
        (x,) = node.args if len(node.args) == 1 and not node.kwargs else (None,)
        if x is None:
            self.refuse(node, f"{self.describe(node)} is called with {len(node.args) + len(node.kwargs)} arguments; "
                              "a block takes one tensor")
        x = self.tensor_in(node, x)
        if t in PASSTHROUGH:
            self.src[node] = self.src[x]
            self.note_once(t, f"{t} ({node.target} and others like it) {PASSTHROUGH[t]} and has no block: it was "
                              "left out")
            return
        spec = REGISTRY.get(t)
        if spec is None or not spec.module or not type(mod).__module__.startswith("torch.nn."):
            self.refuse(node, f"{self.describe(node)}: torch.nn.{t} has no block (see `cnnbuilder layers`)")
        params, expect = self.module_params(node, spec, mod)
        own = mod.state_dict()
        if own and node.target in self.module_block:
            self.refuse(node, f"{node.target} is called more than once; its weights would be shared, and each block "
                              "has weights of its own")
        nid = self.add(node, t, params, [self.src[x]], name=node.target, module_path=node.target)
        if expect:
            self.expect[nid] = expect
        if own:
            self.weights[nid] = own
            self.module_block[node.target] = nid
        self.src[node] = (nid, 0)

    def module_params(self, node, spec, mod) -> tuple[dict, dict]:
        import torch

        t = spec.type
        if t == "MaxPool2d" and mod.return_indices:
            self.refuse(node, f"{self.describe(node)} returns indices; the MaxPool2d block does not")
        if t == "Upsample" and getattr(mod, "recompute_scale_factor", None):
            self.refuse(node, f"{self.describe(node)} recomputes its scale factor; the Upsample block does not")
        if t in ("Softmax", "LogSoftmax") and mod.dim is None:
            self.refuse(node, f"{self.describe(node)} has no dim; give it one (dim=1 for class scores)")
        params, expect = {}, {}
        for p in spec.params:
            if not p.ctor:
                continue
            if p.name == "bias" and isinstance(getattr(mod, "bias", None), (torch.Tensor, type(None))):
                value = mod.bias is not None
            elif p.name == "init" or not hasattr(mod, p.name):
                continue  # PReLU's init only sets the starting slope: its weights are carried over
            else:
                value = getattr(mod, p.name)
            value = _plain(value)
            if p.inferred:
                expect[p.name] = value
                continue
            try:
                value = spec.check_param(p.name, value)
            except ParamError as exc:
                self.refuse(node, f"{self.describe(node)}: {exc.param}: {exc.reason}")
            if value != spec.resolved_defaults.get(p.name) or p.required:
                params[p.name] = value
        return params, expect

    # -- functions and methods ------------------------------------------------------------------
    def bind(self, node, op: str):
        sig = self.sigs[SIG_OF[op]]
        try:
            bound = sig.bind(*node.args, **node.kwargs)
        except TypeError as exc:
            self.refuse(node, f"{self.describe(node)} is called in a way the importer does not read ({exc})")
        bound.apply_defaults()
        return bound.arguments

    def visit_op(self, node, op: str) -> None:
        if op == "getitem":
            return self.op_getitem(node)
        if op in ("reshape", "flatten"):
            return self.op_reshape(node, op)
        if op == "transpose":
            self.refuse(node, f"{self.describe(node)} swaps dimensions; no block does (a channel shuffle is "
                              "recognised as view, transpose(1, 2), view)")
        a = self.bind(node, op)
        if op == "contiguous":
            self.src[node] = self.src[self.tensor_in(node, a["input"])]
            return
        if op in ("add", "add_", "mul", "mul_"):
            return self.op_merge(node, op, a)
        if op == "cat":
            return self.op_cat(node, a)
        if op in ("split", "chunk"):
            return self.op_split(node, op, a)
        x = self.tensor_in(node, a["input"])
        rank = self.values[x].dim()
        params: dict[str, Any] = {}
        if op in ACTIVATIONS:
            t = ACTIVATIONS[op]
            if (op.endswith("_") or self.value(a.get("inplace"))) and "inplace" in REGISTRY[t].param_map:
                params["inplace"] = True
        elif op in ("hardtanh", "leaky_relu", "elu"):
            t = {"hardtanh": "Hardtanh", "leaky_relu": "LeakyReLU", "elu": "ELU"}[op]
            for k in a:
                if k not in ("input",):
                    params[k] = self.value(a[k])
            if not params.get("inplace"):
                params.pop("inplace", None)
        elif op == "gelu":
            t, params = "GELU", {"approximate": self.value(a["approximate"])}
        elif op in ("softmax", "log_softmax"):
            t = "Softmax" if op == "softmax" else "LogSoftmax"
            dim = self.value(a["dim"])
            if dim is None or self.value(a["dtype"]) is not None:
                self.refuse(node, f"{self.describe(node)} needs dim= and no dtype= to be a {t} block")
            params = {"dim": _dim(dim, rank)}
        elif op in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
            t = "AdaptiveAvgPool2d" if op == "adaptive_avg_pool2d" else "AdaptiveMaxPool2d"
            params = {"output_size": _plain(self.value(a["output_size"]))}
        elif op in ("max_pool2d", "avg_pool2d"):
            t = "MaxPool2d" if op == "max_pool2d" else "AvgPool2d"
            params = {k: _plain(self.value(val)) for k, val in a.items() if k != "input"}
            if params.pop("return_indices", False):
                self.refuse(node, f"{self.describe(node)} returns indices; the MaxPool2d block does not")
            if params.get("stride") in ([], ()):
                params["stride"] = None
        elif op in ("dropout", "dropout2d"):
            t = "Dropout" if op == "dropout" else "Dropout2d"
            if self.value(a["training"]) is True:
                self.refuse(node, f"{self.describe(node)} drops values in evaluation too (training=True); a {t} "
                                  "block drops only while training: pass training=self.training or use "
                                  f"nn.{t}")
            params = {"p": float(self.value(a["p"]))}
            if self.value(a["inplace"]):
                params["inplace"] = True
        elif op == "mean":
            return self.op_mean(node, a, x)
        elif op == "pad":
            pad = self.value(a["pad"])
            if self.value(a["mode"]) != "constant" or self.value(a["value"]) not in (None, 0, 0.0) or rank != 4 \
                    or len(pad) not in (2, 4):
                self.refuse(node, f"{self.describe(node)}: only zero padding of the last two dimensions has a "
                                  "block (ZeroPad2d)")
            t, params = "ZeroPad2d", {"padding": list(pad) + [0] * (4 - len(pad))}
        elif op == "channel_shuffle":
            t, params = "ChannelShuffle", {"groups": int(self.value(a["groups"]))}
        elif op == "interpolate":
            scale = _plain(self.value(a["scale_factor"]))
            if isinstance(scale, list):
                scale = scale[0] if len(set(scale)) == 1 else scale
            if rank != 4 or self.value(a["recompute_scale_factor"]) or self.value(a["antialias"]) \
                    or isinstance(scale, list):
                self.refuse(node, f"{self.describe(node)}: only resizing the height and width of C×H×W maps, by one "
                                  "scale factor or to a size, without antialias or recomputed scales, has a block "
                                  "(Upsample)")
            t = "Upsample"
            params = {"size": _plain(self.value(a["size"])), "scale_factor": scale,
                      "mode": self.value(a["mode"]), "align_corners": self.value(a["align_corners"])}
        else:  # pragma: no cover - every op in the tables is handled above
            self.refuse(node, f"{self.describe(node)} has no block")
        self.src[node] = (self.add_checked(node, t, params, [self.src[x]]), 0)

    def add_checked(self, node, t: str, params: dict, inputs: list, out_value=None) -> str:
        spec = REGISTRY[t]
        clean = {}
        for k, val in params.items():
            try:
                clean[k] = spec.check_param(k, val)
            except ParamError as exc:
                self.refuse(node, f"{self.describe(node)}: {exc.param}: {exc.reason}")
        return self.add(node, t, clean, inputs, out_value=out_value)

    def op_merge(self, node, op: str, a: dict) -> None:
        x, y = a["input"], a["other"]
        word = "adds" if op.startswith("add") else "multiplies"
        if not (self.is_tensor(x) and self.is_tensor(y)):
            const = y if self.is_tensor(x) else x
            self.refuse(node, f"{self.describe(node)} {word} a tensor and a number ({_short(self.value(const))}); "
                              f"the {'Add' if word == 'adds' else 'Mul'} block combines tensors")
        if op.startswith("add") and self.value(a["alpha"]) != 1:
            self.refuse(node, f"{self.describe(node)} scales its second input (alpha); the Add block does not")
        t = "Add" if op.startswith("add") else "Mul"
        nid = self.add(node, t, {}, [self.src[self.tensor_in(node, x)], self.src[self.tensor_in(node, y)]])
        self.src[node] = (nid, 0)

    def op_cat(self, node, a: dict) -> None:
        tensors = a["tensors"]
        if not isinstance(tensors, (list, tuple)):
            self.refuse(node, f"{self.describe(node)} joins a sequence the importer cannot follow")
        first = self.tensor_in(node, tensors[0])
        if len(tensors) == 1:  # DenseNet's first layer joins a list of one: the tensor itself
            self.src[node] = self.src[first]
            return
        dim = _dim(self.value(a["dim"]), self.values[first].dim())
        if dim == 0:
            self.refuse(node, f"{self.describe(node)} joins along the batch dimension; no block does")
        ins = [self.src[self.tensor_in(node, t)] for t in tensors]
        self.src[node] = (self.add_checked(node, "Concat", {"dim": dim}, ins), 0)

    def op_split(self, node, op: str, a: dict) -> None:
        x = self.tensor_in(node, a["tensor" if op == "split" else "input"])
        rank = self.values[x].dim()
        dim = _dim(self.value(a["dim"]), rank)
        if dim == 0:
            self.refuse(node, f"{self.describe(node)} splits the batch dimension; no block does")
        if op == "split":
            sizes = [int(t.shape[dim]) for t in self.values[node]]
            nid = self.add_checked(node, "Split", {"split_size_or_sections": sizes, "dim": dim}, [self.src[x]])
        else:
            nid = self.add_checked(node, "Chunk", {"chunks": int(self.value(a["chunks"])), "dim": dim}, [self.src[x]])
        self.parts[node] = nid

    def op_getitem(self, node) -> None:
        seq, index = node.args
        if seq in self.parts and isinstance(self.value(index), int):
            n = len(self.values[seq])
            i = self.value(index)
            self.src[node] = (self.parts[seq], i % n)
            return
        self.refuse(node, "indexes or slices a tensor; no block does (split channels with torch.split or "
                          "torch.chunk)")

    def op_mean(self, node, a: dict, x) -> None:
        dims = self.value(a["dim"])
        rank = self.values[x].dim()
        dims = [dims] if isinstance(dims, int) else list(dims or [])
        if rank != 4 or sorted(_dim(d, rank) for d in dims) != [2, 3] or self.value(a["dtype"]) is not None:
            self.refuse(node, f"{self.describe(node)}: only the mean over height and width (global average "
                              "pooling) has a block")
        keep = bool(self.value(a["keepdim"]))
        pooled = self.values[node] if keep else self.values[node][..., None, None]
        pool = self.add_checked(node, "AdaptiveAvgPool2d", {"output_size": 1}, [self.src[x]], out_value=pooled)
        if keep:
            self.src[node] = (pool, 0)
            return
        self.src[node] = (self.add_checked(node, "Flatten", {}, [(pool, 0)]), 0)

    def op_reshape(self, node, op: str) -> None:
        x = node.args[0] if node.args else node.kwargs.get("input")
        x = self.tensor_in(node, x)
        a_shape, b_shape = tuple(self.values[x].shape), tuple(self.values[node].shape)
        if a_shape == b_shape:
            self.src[node] = self.src[x]
            return
        if b_shape[:1] != a_shape[:1]:
            self.refuse(node, f"{self.describe(node)} reshapes {_fmt(a_shape)} to {_fmt(b_shape)}, across the batch "
                              "dimension; a block keeps the batch")
        if self.channel_shuffle(node, x, a_shape, b_shape):
            return
        for s in range(1, len(a_shape)):
            for e in range(s + 1, len(a_shape)):
                if b_shape == a_shape[:s] + (math.prod(a_shape[s:e + 1]),) + a_shape[e + 1:]:
                    params = {"start_dim": s, "end_dim": -1 if e == len(a_shape) - 1 else e}
                    self.src[node] = (self.add_checked(node, "Flatten", params, [self.src[x]]), 0)
                    return
        for d in range(1, len(a_shape)):
            k = len(b_shape) - len(a_shape) + 1
            if k >= 2 and b_shape[:d] == a_shape[:d] and b_shape[d + k:] == a_shape[d + 1:] \
                    and math.prod(b_shape[d:d + k]) == a_shape[d]:
                params = {"dim": d, "unflattened_size": list(b_shape[d:d + k])}
                self.src[node] = (self.add_checked(node, "Unflatten", params, [self.src[x]]), 0)
                return
        self.refuse(node, f"{self.describe(node)} reshapes {_fmt(a_shape)} to {_fmt(b_shape)}, which neither "
                          "flattens nor unflattens dimensions")

    def channel_shuffle(self, node, x, a_shape, b_shape) -> bool:
        """view(N, g, C/g, H, W) -> transpose(1, 2) -> [contiguous] -> view(N, C, H, W): ChannelShuffle(g)."""
        if len(a_shape) != 4 or len(b_shape) != 5 or b_shape[3:] != a_shape[2:] \
                or b_shape[1] * b_shape[2] != a_shape[1]:
            return False
        chain = [node]
        cur = node
        users = list(cur.users)
        if len(users) != 1 or not self._is_transpose12(users[0]):
            return False
        cur = users[0]
        chain.append(cur)
        users = list(cur.users)
        if len(users) == 1 and users[0].op == "call_method" and users[0].target == "contiguous":
            cur = users[0]
            chain.append(cur)
            users = list(cur.users)
        if len(users) != 1:
            return False
        back = users[0]
        is_reshape = (back.op == "call_method" and back.target in ("view", "reshape", "flatten")) or \
                     (back.op == "call_function" and self.funcs.get(back.target) in ("reshape", "flatten"))
        if not is_reshape or tuple(self.values[back].shape) != a_shape:
            return False
        nid = self.add_checked(back, "ChannelShuffle", {"groups": int(b_shape[1])}, [self.src[x]])
        for n in chain[1:] + [back]:
            self.skip.add(n)
        self.src[back] = (nid, 0)
        self.src[node] = (nid, 0)  # never read: the chain's inner nodes have no other users
        return True

    def _is_transpose12(self, n) -> bool:
        torch, _, _ = _nn()
        if not ((n.op == "call_method" and n.target == "transpose")
                or (n.op == "call_function" and n.target is torch.transpose)):
            return False
        dims = tuple(self.value(list(n.args[1:]) + list(n.kwargs.values())))
        return sorted(_dim(d, 5) for d in dims) == [1, 2] if len(dims) == 2 else False

    # -- the end --------------------------------------------------------------------------------
    def finish(self) -> None:
        """Inferred parameters the block would infer differently are written out; then every block's
        shape must be the traced one (otherwise the mapping is wrong, which is a bug)."""
        from ..shapes import analyze

        a = analyze(self.g)
        for nid, expect in self.expect.items():
            info = a.nodes[nid]
            for k, val in expect.items():
                if info.resolved.get(k) != REGISTRY[self.g.node(nid).type].check_param(k, val):
                    self.g.set_param(nid, k, val)
        a = analyze(self.g)
        if not a.ok:
            p = a.root_problems[0]
            if p.node_id is None:
                raise Refusal(f"{self.where}: {p.message}")
            n = self.g.node(p.node_id)
            where = self.origins.get(p.node_id) or self.where
            raise Refusal(f"{where}: {n.label} ({n.type}): {p.message}")
        for nid, shapes in self.shapes.items():
            got = [list(s) for s in a.nodes[nid].outputs]
            if got != shapes:
                n = self.g.node(nid)
                raise Refusal(f"{self.origins.get(nid) or self.where}: {n.label} ({n.type}) would give "
                              f"{' | '.join(map(_fmt, got))} where the module gives {' | '.join(map(_fmt, shapes))} "
                              "(an importer bug: please report it)")

    def unused_weights(self, model) -> list[str]:
        """The outermost modules holding weights that no block carries (GoogLeNet's aux1, aux2)."""
        used = set(self.module_block)
        holds_used = {""}  # every module path with a used module inside (or being one)
        for path in used:
            parts = path.split(".")
            holds_used.update(".".join(parts[:k]) for k in range(1, len(parts) + 1))
        roots: list[str] = []
        for path, mod in model.named_modules():
            if not path or path in used or not any(True for _ in mod.parameters(recurse=False)):
                continue
            parts = path.split(".")
            root = next((".".join(parts[:k]) for k in range(1, len(parts) + 1)
                         if ".".join(parts[:k]) not in holds_used), None)
            # None: the module is used through its children, only its own tensors are not
            for name in [root] if root else [f"{path}.{k}" for k, _ in mod.named_parameters(recurse=False)]:
                if name not in roots:
                    roots.append(name)
        return roots


def _plain(value: Any) -> Any:
    """A module attribute as JSON-able data (torch.Size and tuples as lists)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (int, float, bool)):
        return value.item()
    return value


def _dim(d, rank: int) -> int:
    d = int(d)
    return d + rank if d < 0 else d


def _fmt(shape) -> str:
    return "×".join(str(d) for d in shape)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."
