"""Shape inference: walk the graph in topological order and give every block either its output
shape or a reason it cannot work. Pure arithmetic, no tensors: fast enough to run on each keystroke.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .blocks import ParamError, Shape, ShapeError, fmt_shape, get_spec
from .blocks.base import MAX_INT, Ctx
from .graph import CycleError, Graph
from .stats import BYTES_PER_ELEMENT, ZERO, BlockStats, block_stats


@dataclass
class NodeInfo:
    shape: Shape | None = None  # the output; for a block with several outputs (Split), the first
    outputs: list[Shape] = field(default_factory=list)  # the shape of each output port, once known
    error: str | None = None
    waiting: bool = False  # True when the error is only that an upstream block failed
    resolved: dict[str, Any] = field(default_factory=dict)  # params with inferred values filled in
    inputs: list[Shape] = field(default_factory=list)
    stats: BlockStats = ZERO

    @property
    def ok(self) -> bool:
        return self.error is None


def fmt_outputs(info: NodeInfo) -> str:
    """A block's output shape as shown to the user; a Split's parts side by side ("16×8×8 | 8×8×8")."""
    if info.shape is None:
        return ""
    if len(info.outputs) > 1:
        return " | ".join(fmt_shape(s) for s in info.outputs)
    return fmt_shape(info.shape)


@dataclass
class Problem:
    message: str
    node_id: str | None = None


@dataclass
class Analysis:
    nodes: dict[str, NodeInfo]
    order: list[str]
    problems: list[Problem]  # graph-level problems (and every block error, node_id set)
    input_id: str | None
    output_id: str | None
    total_params: int = 0
    total_macs: int = 0
    total_memory: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def is_root(self, p: Problem) -> bool:
        """A problem of its own, not a block waiting for one upstream to be fixed."""
        return p.node_id is None or not self.nodes[p.node_id].waiting

    @property
    def root_problems(self) -> list[Problem]:
        return [p for p in self.problems if self.is_root(p)]

    @property
    def input_shape(self) -> Shape | None:
        return self.nodes[self.input_id].shape if self.input_id else None

    @property
    def output_shape(self) -> Shape | None:
        return self.nodes[self.output_id].shape if self.output_id else None


def analyze(graph: Graph) -> Analysis:
    problems: list[Problem] = []
    infos: dict[str, NodeInfo] = {}
    try:
        order = graph.topo_order()
    except CycleError as exc:
        # Files can hold cycles even though the editor refuses them: report, don't crash.
        problems.append(Problem(str(exc)))
        for n in graph:
            infos[n.id] = NodeInfo(error="part of a cycle, or after one")
        return Analysis(infos, [], problems, None, None)

    nodes = graph._nodes  # hot loop: skip the defensive copies of the public accessors
    inputs_of = graph._inputs
    ports = graph._ports
    input_ids = [nid for nid in order if nodes[nid].type == "Input"]
    if not input_ids:
        problems.append(Problem("the graph has no Input block: add one and connect it"))

    for nid in order:
        node = nodes[nid]
        spec = get_spec(node.type)
        srcs = inputs_of[nid]
        info = NodeInfo()
        infos[nid] = info
        if node.type == "Input" and len(input_ids) > 1 and nid != input_ids[0]:
            info.error = f"a model takes one input; {nodes[input_ids[0]].label} is already the Input"
            continue
        if len(srcs) < spec.min_inputs:
            if spec.min_inputs == 1:
                info.error = f"{node.type} needs an input: connect a block to it"
            else:
                info.error = f"{node.type} needs at least {spec.min_inputs} inputs (has {len(srcs)})"
            continue
        bad = next((s for s in srcs if infos[s].shape is None), None)
        if bad is not None:
            info.error = f"waiting on {nodes[bad].label}, which has a problem"
            info.waiting = True
            continue
        info.inputs = [infos[s].outputs[ports[(s, nid)]] for s in srcs]
        resolved = spec.resolve(node.params)
        info.resolved = resolved
        try:
            ctx = Ctx(resolved, info.inputs)
            outs = [tuple(spec.infer(ctx))] if spec.parts is None else [tuple(p) for p in spec.parts(ctx)]
        except ShapeError as exc:
            info.error = str(exc)
            continue
        except ParamError as exc:  # pragma: no cover - params are checked when set
            info.error = str(exc)
            continue
        info.error = _output_problem(outs)
        if info.error is None and spec.parts is not None:
            info.error = _missing_port(graph, nid, len(outs))
        if info.error is not None:
            continue
        info.shape, info.outputs = outs[0], outs
        info.stats = block_stats(spec, resolved, info.inputs, info.shape)
        if len(outs) > 1:  # memory counts every part
            info.stats = BlockStats(info.stats.params, info.stats.macs,
                                    sum(math.prod(o) for o in outs) * BYTES_PER_ELEMENT)

    sinks = [nid for nid in order if not graph._outputs[nid] and nodes[nid].type != "Input"]
    output_id = None
    if sinks:
        reachable = [s for s in sinks if infos[s].shape is not None] or sinks
        output_id = reachable[-1]
        if nodes[output_id].spec.multi_output and infos[output_id].error is None:
            infos[output_id].error = (f"a model has one output, and this {nodes[output_id].type} makes several: "
                                      "connect its outputs onward")
        for s in sinks:
            if s != output_id and infos[s].error is None:
                infos[s].error = (
                    f"its output goes nowhere: connect it onward or delete it "
                    f"(the model's output is {nodes[output_id].label})"
                )
    elif input_ids:
        problems.append(Problem("the graph has no blocks after the Input"))

    total = [0, 0, 0]
    for nid in order:
        info = infos[nid]
        if info.error is not None:
            problems.append(Problem(info.error, nid))
        else:
            total[0] += info.stats.params
            total[1] += info.stats.macs
            total[2] += info.stats.memory
    return Analysis(infos, order, problems, input_ids[0] if input_ids else None, output_id, *total)


def _output_problem(outs: list[Shape]) -> str | None:
    for o in outs:
        if any(d < 1 for d in o):
            return f"the output would be empty ({fmt_shape(o)})"
        n = math.prod(o)
        if n > MAX_INT:
            return (f"the output would have {n:.3g} values per sample, more than a PyTorch tensor can hold "
                    f"({MAX_INT:.3g})")
    return None


def _missing_port(graph: Graph, nid: str, count: int) -> str | None:
    """A connected output that a Split's parameters no longer give."""
    ports = graph._ports
    unknown = sorted({ports[(nid, d)] for d in graph._outputs[nid]} - set(range(count)))
    if not unknown:
        return None
    reader = next(d for d in graph._outputs[nid] if ports[(nid, d)] == unknown[0])
    return (f"output {unknown[0]} feeds {graph._nodes[reader].label}, but this {graph._nodes[nid].type} has outputs "
            f"0 to {count - 1} only: reconnect it, or change the parameters")
