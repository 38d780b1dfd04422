"""The document: blocks (nodes) and the tensors flowing between them (edges).

The Graph guards its own invariants (known block types, valid parameters, no cycles, no more
inputs than a block takes) and announces every change through signals (core.signals), so views can
observe it without the graph knowing about them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .blocks import LayerSpec, ParamError, get_spec
from .signals import Signal


class GraphError(Exception):
    """An edit that would break the graph; the message says why in the user's terms."""


class CycleError(GraphError):
    pass


_UNSET: Any = object()
UNSET = _UNSET  # sentinel for "parameter not set" (inferred or torch default)


@dataclass
class Node:
    id: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    pos: tuple[float, float] = (0.0, 0.0)

    @property
    def spec(self) -> LayerSpec:
        return get_spec(self.type)

    @property
    def label(self) -> str:
        return self.name or self.id


class Graph:
    node_added = Signal(str)
    node_removed = Signal(str)
    edge_added = Signal(str, str)
    edge_removed = Signal(str, str)
    node_changed = Signal(str, str)  # node id, what: "params" | "name" | "pos"
    changed = Signal()  # once per edit (or once per batch of edits), position moves excluded

    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}
        self._inputs: dict[str, list[str]] = {}
        self._outputs: dict[str, list[str]] = {}
        self.revision = 0  # bumps on every change that can affect shapes or code
        self._batch = 0
        self._dirty = False

    # -- reading ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes.values())

    @property
    def nodes(self) -> list[Node]:
        return list(self._nodes.values())

    def node(self, node_id: str) -> Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise GraphError(f"no block with id {node_id!r}") from None

    def index_of(self, node_id: str) -> int:
        return list(self._nodes).index(node_id)

    def inputs(self, node_id: str) -> list[str]:
        return list(self._inputs[node_id])

    def outputs(self, node_id: str) -> list[str]:
        return list(self._outputs[node_id])

    @property
    def edges(self) -> list[tuple[str, str]]:
        """All edges, grouped by target in node order; a target's inputs keep their order."""
        return [(src, dst) for dst in self._nodes for src in self._inputs[dst]]

    def find(self, name_or_id: str) -> Node | None:
        if name_or_id in self._nodes:
            return self._nodes[name_or_id]
        return next((n for n in self._nodes.values() if n.name == name_or_id), None)

    def topo_order(self) -> list[str]:
        """Kahn's algorithm, ties broken by node order so the result reads like the file."""
        indeg = {nid: len(self._inputs[nid]) for nid in self._nodes}
        order: list[str] = []
        ready = [nid for nid, d in indeg.items() if d == 0]
        ready.reverse()
        pos = {nid: i for i, nid in enumerate(self._nodes)}
        while ready:
            nid = ready.pop()
            order.append(nid)
            fresh = []
            for dst in self._outputs[nid]:
                indeg[dst] -= 1
                if indeg[dst] == 0:
                    fresh.append(dst)
            if fresh:
                ready.extend(fresh)
                ready.sort(key=lambda n: -pos[n])
        if len(order) != len(self._nodes):
            stuck = [self._nodes[n].label for n in self._nodes if n not in set(order)]
            raise CycleError(f"the graph has a cycle through {', '.join(stuck[:5])}")
        return order

    def reaches(self, start: str, target: str) -> bool:
        stack, seen = [start], set()
        while stack:
            nid = stack.pop()
            if nid == target:
                return True
            if nid in seen:
                continue
            seen.add(nid)
            stack.extend(self._outputs[nid])
        return False

    # -- editing ----------------------------------------------------------------------
    def new_id(self) -> str:
        k = len(self._nodes) + 1
        while f"n{k}" in self._nodes:
            k += 1
        return f"n{k}"

    def new_name(self, type_name: str) -> str:
        base = get_spec(type_name).short
        if type_name == "Input":
            base = "input"
        taken = {n.name for n in self._nodes.values()}
        k = 1
        while f"{base}{k}" in taken:
            k += 1
        return f"{base}{k}"

    def add_node(
        self,
        type_name: str,
        params: dict[str, Any] | None = None,
        name: str | None = None,
        pos: tuple[float, float] = (0.0, 0.0),
        node_id: str | None = None,
        index: int | None = None,
    ) -> Node:
        spec = get_spec(type_name)
        checked = spec.check_params(spec.defaults() if params is None else params)
        if node_id is None:
            node_id = self.new_id()
        elif node_id in self._nodes:
            raise GraphError(f"a block with id {node_id!r} already exists")
        node = Node(node_id, type_name, checked, self.new_name(type_name) if name is None else _clean_name(name),
                    (float(pos[0]), float(pos[1])))
        if index is None or index >= len(self._nodes):
            self._nodes[node_id] = node
        else:
            items = list(self._nodes.items())
            items.insert(index, (node_id, node))
            self._nodes = dict(items)
        self._inputs[node_id] = []
        self._outputs[node_id] = []
        self.node_added.emit(node_id)
        self._touch()
        return node

    def remove_node(self, node_id: str) -> None:
        self.node(node_id)
        with self.batch():
            for src in list(self._inputs[node_id]):
                self.disconnect(src, node_id)
            for dst in list(self._outputs[node_id]):
                self.disconnect(node_id, dst)
            del self._nodes[node_id], self._inputs[node_id], self._outputs[node_id]
            self.node_removed.emit(node_id)
            self._touch()

    def connection_problem(self, src: str, dst: str) -> str | None:
        """Why an edge src -> dst cannot be made, or None if it can."""
        refusal = self._refusal(src, dst)
        return refusal[0] if refusal else None

    def _refusal(self, src: str, dst: str) -> tuple[str, type[GraphError]] | None:
        if src not in self._nodes or dst not in self._nodes:
            return "both ends must be blocks of this graph", GraphError
        a, b = self._nodes[src], self._nodes[dst]
        if src == dst:
            return f"{a.label} cannot feed itself", GraphError
        spec = b.spec
        if spec.max_inputs == 0:
            return f"{b.label} ({b.type}) takes no inputs", GraphError
        if src in self._inputs[dst]:
            return f"{a.label} is already connected to {b.label}", GraphError
        if spec.max_inputs is not None and len(self._inputs[dst]) >= spec.max_inputs:
            return f"{b.label} ({b.type}) takes one input and already has one; remove that edge first", GraphError
        if self.reaches(dst, src):
            return f"connecting {a.label} to {b.label} would create a cycle", CycleError
        return None

    def connect(self, src: str, dst: str, index: int | None = None) -> None:
        refusal = self._refusal(src, dst)
        if refusal:
            message, error = refusal
            raise error(message)
        ins = self._inputs[dst]
        ins.insert(len(ins) if index is None else index, src)
        self._outputs[src].append(dst)
        self.edge_added.emit(src, dst)
        self._touch()

    def disconnect(self, src: str, dst: str) -> int:
        """Remove the edge and return the position it had among dst's inputs."""
        try:
            i = self._inputs[dst].index(src)
        except (KeyError, ValueError):
            raise GraphError(f"there is no edge from {src!r} to {dst!r}") from None
        del self._inputs[dst][i]
        self._outputs[src].remove(dst)
        self.edge_removed.emit(src, dst)
        self._touch()
        return i

    def set_param(self, node_id: str, key: str, value: Any) -> Any:
        """Set (or with UNSET, clear) a parameter; returns the previous value or UNSET."""
        node = self.node(node_id)
        old = node.params.get(key, UNSET)
        if value is UNSET:
            if key not in node.spec.param_map:
                raise ParamError(key, f"{node.type} has no parameter '{key}'")
            node.params.pop(key, None)
        else:
            node.params[key] = node.spec.check_param(key, value)
        self.node_changed.emit(node_id, "params")
        self._touch()
        return old

    def rename(self, node_id: str, name: str) -> str:
        node = self.node(node_id)
        old, node.name = node.name, _clean_name(name)
        self.node_changed.emit(node_id, "name")
        self._touch()
        return old

    def move(self, node_id: str, pos: tuple[float, float]) -> tuple[float, float]:
        node = self.node(node_id)
        old, node.pos = node.pos, (float(pos[0]), float(pos[1]))
        self.node_changed.emit(node_id, "pos")
        return old

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group edits so observers hear one `changed` at the end."""
        self._batch += 1
        try:
            yield
        finally:
            self._batch -= 1
            if self._batch == 0 and self._dirty:
                self._dirty = False
                self.changed.emit()

    def _touch(self) -> None:
        self.revision += 1
        if self._batch:
            self._dirty = True
        else:
            self.changed.emit()

    # -- whole-graph helpers ---------------------------------------------------------
    def clear(self) -> None:
        with self.batch():
            for nid in reversed(list(self._nodes)):
                self.remove_node(nid)

    def copy(self) -> Graph:
        from .project import graph_from_dict, graph_to_dict

        return graph_from_dict(graph_to_dict(self))


_NAME_BAD = re.compile(r"[\x00-\x1f\x7f]")


def _clean_name(name: str) -> str:
    if not isinstance(name, str):
        raise GraphError(f"a block name must be text, got {type(name).__name__}")
    name = _NAME_BAD.sub(" ", name).strip()
    if len(name) > 80:
        raise GraphError("a block name can have at most 80 characters")
    return name
