"""The document: blocks (nodes) and the tensors flowing between them (edges).

The Graph guards its own invariants (known block types, valid parameters, no cycles, no more
inputs than a block takes) and announces every change through signals (core.signals), so views can
observe it without the graph knowing about them.

An edge is identified by its two blocks (src, dst): one block feeds another at most once. It also
records which of src's outputs it leaves from (its port, 0 unless src is a Split or Chunk, which have
one output per part); `port(src, dst)` reads it. Whether a port exists with the block's current
parameters is for the analysis to say (a parameter edit may remove an output that is connected),
so the graph only refuses ports no parameters could give.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .blocks import LayerSpec, ParamError, get_spec
from .blocks.base import MAX_PARTS
from .blocks.base import _show as _short
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
    group: str | None = None  # the innermost group holding the block, None at the top level

    @property
    def spec(self) -> LayerSpec:
        return get_spec(self.type)

    @property
    def label(self) -> str:
        return self.name or self.id


@dataclass
class Group:
    """Blocks shown as one collapsible block (and written as one nn.Module class). Groups nest:
    `parent` is the group holding this one. Membership lives on the members (Node.group,
    Group.parent), so the graph of blocks stays flat and shapes, stats and training never see groups."""
    id: str
    name: str
    parent: str | None = None
    pos: tuple[float, float] = (0.0, 0.0)  # where the collapsed block sits in its parent's view
    cls: str = ""  # class name for the code (an import keeps the module's, e.g. "BasicBlock"); "" = from the name


class Graph:
    node_added = Signal(str)
    node_removed = Signal(str)
    edge_added = Signal(str, str)
    edge_removed = Signal(str, str)
    node_changed = Signal(str, str)  # node id, what: "params" | "name" | "pos" | "group"
    group_changed = Signal(str, str)  # group id, what: "added" | "removed" | "name" | "pos" | "members"
    changed = Signal()  # once per edit (or once per batch of edits), position moves excluded

    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}
        self._groups: dict[str, Group] = {}
        self._inputs: dict[str, list[str]] = {}
        self._outputs: dict[str, list[str]] = {}
        self._ports: dict[tuple[str, str], int] = {}  # every edge's output port; O(1) "already connected"
        self._names: Counter[str] = Counter()  # names in use, for new_name
        self._name_hint: dict[str, int] = {}
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
            raise GraphError(f"no block with id {_short(node_id)}") from None

    def order_index(self) -> dict[str, int]:
        """Every block's place in the node order, in one pass (a list lookup per block is quadratic)."""
        return {nid: i for i, nid in enumerate(self._nodes)}

    def inputs(self, node_id: str) -> list[str]:
        return list(self._inputs[node_id])

    def outputs(self, node_id: str) -> list[str]:
        return list(self._outputs[node_id])

    @property
    def edges(self) -> list[tuple[str, str]]:
        """All edges, grouped by target in node order; a target's inputs keep their order."""
        return [(src, dst) for dst in self._nodes for src in self._inputs[dst]]

    @property
    def edges_with_ports(self) -> list[tuple[str, str, int]]:
        """`edges` with the output port each leaves from."""
        return [(src, dst, self._ports[(src, dst)]) for dst in self._nodes for src in self._inputs[dst]]

    def port(self, src: str, dst: str) -> int:
        """Which of src's outputs feeds dst (0 for blocks with one output)."""
        try:
            return self._ports[(src, dst)]
        except KeyError:
            raise GraphError(f"there is no edge from {_short(src)} to {_short(dst)}") from None

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
        # The lowest free number, found from a per-base hint (every number below it is taken)
        # instead of scanning all names: adding n blocks one by one stays linear.
        k = self._name_hint.get(base, 1)
        while self._names[f"{base}{k}"]:
            k += 1
        self._name_hint[base] = k
        return f"{base}{k}"

    def _name_taken(self, name: str) -> None:
        self._names[name] += 1

    def _name_freed(self, name: str) -> None:
        self._names[name] -= 1
        if self._names[name] > 0:
            return
        del self._names[name]
        digits = len(name) - len(name.rstrip("0123456789"))
        for cut in range(len(name) - digits, len(name)):  # "conv21" may be conv+21 or conv2+1
            base, num = name[:cut], name[cut:]
            if num[0] != "0" and int(num) < self._name_hint.get(base, 0):
                self._name_hint[base] = int(num)

    def add_node(
        self,
        type_name: str,
        params: dict[str, Any] | None = None,
        name: str | None = None,
        pos: tuple[float, float] = (0.0, 0.0),
        node_id: str | None = None,
        index: int | None = None,
        group: str | None = None,
    ) -> Node:
        node = self._make_node(type_name, params, name, pos, node_id, group)
        if index is None or index >= len(self._nodes):
            self._nodes[node.id] = node
        else:
            items = list(self._nodes.items())
            items.insert(index, (node.id, node))
            self._nodes = dict(items)
        self._added(node.id)
        return node

    def _make_node(self, type_name: str, params: dict[str, Any] | None, name: str | None,
                   pos: tuple[float, float], node_id: str | None, group: str | None = None) -> Node:
        """Check everything about a new block before anything changes (edits are all-or-nothing)."""
        spec = get_spec(type_name)
        if group is not None:
            self.group(group)
            if type_name == "Input":
                raise GraphError("the Input block stays at the top level: it cannot be inside a group")
        if params is not None and not isinstance(params, dict):
            raise GraphError(f"the parameters of a {type_name} block must be a mapping of names to values")
        checked = spec.check_params(spec.defaults() if params is None else params)
        if node_id is None:
            node_id = self.new_id()
        else:
            node_id = check_id(node_id)
            if node_id in self._nodes:
                raise GraphError(f"a block with id {node_id!r} already exists")
        return Node(node_id, type_name, checked, self.new_name(type_name) if name is None else clean_name(name),
                    check_pos(pos), group)

    def _added(self, node_id: str) -> None:
        self._name_taken(self._nodes[node_id].name)
        self._inputs[node_id] = []
        self._outputs[node_id] = []
        self.node_added.emit(node_id)
        self._touch()

    def insert_nodes(self, entries: list[tuple[int, dict[str, Any]]]) -> list[Node]:
        """Add many blocks at once, each at its index in the final node order (what undoing a
        multi-block delete needs), in one pass instead of one list rebuild per block. Entries are
        (index, add_node keyword arguments); all are checked before any is added."""
        made = sorted(((i, self._make_node(**kw)) for i, kw in entries), key=lambda e: e[0])
        ids = [n.id for _, n in made]
        if len(set(ids)) != len(ids):
            raise GraphError("two restored blocks have the same id")
        old = iter(self._nodes.items())
        merged: dict[str, Node] = {}
        pending = iter(made)
        nxt = next(pending, None)
        for place in range(len(self._nodes) + len(made)):
            if nxt is not None and nxt[0] <= place:
                merged[nxt[1].id] = nxt[1]
                nxt = next(pending, None)
            else:
                nid, node = next(old)
                merged[nid] = node
        self._nodes = merged
        with self.batch():
            for nid in ids:
                self._added(nid)
        return [n for _, n in made]

    def remove_nodes(self, node_ids: list[str]) -> None:
        """Remove many blocks and their edges as one change; all ids are checked first."""
        for nid in node_ids:
            self.node(nid)
        with self.batch():
            for nid in node_ids:
                self.remove_node(nid)

    def remove_node(self, node_id: str) -> None:
        self.node(node_id)
        with self.batch():
            for src in list(self._inputs[node_id]):
                self.disconnect(src, node_id)
            for dst in list(self._outputs[node_id]):
                self.disconnect(node_id, dst)
            self._name_freed(self._nodes[node_id].name)
            del self._nodes[node_id], self._inputs[node_id], self._outputs[node_id]
            self.node_removed.emit(node_id)
            self._touch()

    def connection_problem(self, src: str, dst: str, port: int = 0) -> str | None:
        """Why an edge from src's output `port` to dst cannot be made, or None if it can."""
        refusal = self._refusal(src, dst, port=port)
        return refusal[0] if refusal else None

    def _refusal(self, src: str, dst: str, cycles: bool = True, port: Any = 0) -> tuple[str, type[GraphError]] | None:
        if src not in self._nodes or dst not in self._nodes:
            return "both ends must be blocks of this graph", GraphError
        a, b = self._nodes[src], self._nodes[dst]
        if src == dst:
            return f"{a.label} cannot feed itself", GraphError
        bad_port = self.port_problem(src, port)
        if bad_port:
            return bad_port, GraphError
        spec = b.spec
        if spec.max_inputs == 0:
            return f"{b.label} ({b.type}) takes no inputs", GraphError
        if (src, dst) in self._ports:
            if a.spec.multi_output:
                return (f"{a.label} already feeds {b.label} (from output {self._ports[(src, dst)]}); a block takes "
                        "at most one connection from another: put an Identity between them for a second"), GraphError
            return f"{a.label} is already connected to {b.label}", GraphError
        if spec.max_inputs is not None and len(self._inputs[dst]) >= spec.max_inputs:
            return f"{b.label} ({b.type}) takes one input and already has one; remove that edge first", GraphError
        if cycles and self.reaches(dst, src):
            return f"connecting {a.label} to {b.label} would create a cycle", CycleError
        if self._groups:
            crossing = self._crossing(src, dst)
            if crossing:
                return crossing, GraphError
        return None

    def _crossing(self, src: str, dst: str) -> str | None:
        """Why the edge src -> dst would leave a group and come back into it (a group is one
        module: values go in, values come out, nothing loops around outside), or None."""
        src_path, dst_path = self.group_path(self._nodes[src].group), self.group_path(self._nodes[dst].group)
        into = [g for g in dst_path if g not in src_path]
        out_of = [g for g in src_path if g not in dst_path]
        if into:  # does any member of a group dst is in (and src is not) already reach src?
            before = self._walk(src, self._inputs)
            for g in into:
                if any(self._in_group(n, g) for n in before):
                    return (f"connecting {self._nodes[src].label} to {self._nodes[dst].label} would lead out of group "
                            f"{self._groups[g].name} and back into it")
        if out_of:  # does dst already reach a member of a group src is in (and dst is not)?
            after = self._walk(dst, self._outputs)
            for g in out_of:
                if any(self._in_group(n, g) for n in after):
                    return (f"connecting {self._nodes[src].label} to {self._nodes[dst].label} would lead out of group "
                            f"{self._groups[g].name} and back into it")
        return None

    def _walk(self, start: str, links: dict[str, list[str]]) -> set[str]:
        seen, stack = set(), [start]
        while stack:
            for nxt in links[stack.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    def free_port(self, src: str) -> int | None:
        """src's first output that feeds nothing yet, None when every one does: where a new
        connection from the block as a whole leaves from (`free_port(src) or 0`)."""
        node = self.node(src)
        used = {self._ports[(src, d)] for d in self._outputs[src]}
        count = node.spec.output_count(node.spec.resolve(node.params))
        return next((k for k in range(count) if k not in used), None)

    def port_problem(self, src: str, port: Any) -> str | None:
        """Why src can have no output `port` whatever its parameters, or None."""
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < MAX_PARTS:
            return f"an output port is a whole number from 0 to {MAX_PARTS - 1} (got {_short(port)})"
        a = self.node(src)
        if port and not a.spec.multi_output:
            return f"{a.label} ({a.type}) has one output; there is no output {port}"
        return None

    def connect(self, src: str, dst: str, index: int | None = None, port: int = 0) -> None:
        refusal = self._refusal(src, dst, port=port)
        if refusal:
            message, error = refusal
            raise error(message)
        self._link(src, dst, index, port)

    def _link(self, src: str, dst: str, index: int | None, port: int = 0) -> None:
        ins = self._inputs[dst]
        ins.insert(len(ins) if index is None else index, src)
        self._outputs[src].append(dst)
        self._ports[(src, dst)] = port
        self.edge_added.emit(src, dst)
        self._touch()

    def connect_all(self, edges: list[tuple]) -> None:
        """Make many edges (src, dst, index-or-None[, port]) with one cycle (and group) check for the lot:
        checking each edge by a search is quadratic on long chains listed backwards. All or
        nothing; a refusal is the same GraphError that connecting them one by one would raise."""
        done: list[tuple[str, str]] = []
        with self.batch():
            try:
                for src, dst, index, *port in edges:
                    p = port[0] if port else 0
                    refusal = self._refusal(src, dst, cycles=False, port=p)
                    if refusal:
                        raise refusal[1](refusal[0])
                    self._link(src, dst, index, p)
                    done.append((src, dst))
                if not self._acyclic() or (self._groups and self.group_problem() is not None):
                    for src, dst in reversed(done):
                        self.disconnect(src, dst)
                    done = []
                    for src, dst, index, *port in edges:  # rare: find the edge that closes the cycle, for its message
                        self.connect(src, dst, index, *port)
                        done.append((src, dst))
                    raise AssertionError("a cycle or crossing that no single edge makes")  # pragma: no cover
            except GraphError as exc:
                exc.edge_index = len(done)  # which edge was refused, for messages that point into a file
                for src, dst in reversed(done):
                    self.disconnect(src, dst)
                raise

    def _acyclic(self) -> bool:
        indeg = {nid: len(ins) for nid, ins in self._inputs.items()}
        ready = [nid for nid, d in indeg.items() if d == 0]
        seen = 0
        while ready:
            nid = ready.pop()
            seen += 1
            for dst in self._outputs[nid]:
                indeg[dst] -= 1
                if indeg[dst] == 0:
                    ready.append(dst)
        return seen == len(self._nodes)

    def disconnect(self, src: str, dst: str) -> int:
        """Remove the edge and return the position it had among dst's inputs."""
        try:
            i = self._inputs[dst].index(src)
        except (KeyError, ValueError):
            raise GraphError(f"there is no edge from {_short(src)} to {_short(dst)}") from None
        del self._inputs[dst][i]
        self._outputs[src].remove(dst)
        del self._ports[(src, dst)]
        self.edge_removed.emit(src, dst)
        self._touch()
        return i

    def set_param(self, node_id: str, key: str, value: Any) -> Any:
        """Set (or with UNSET, clear) a parameter; returns the previous value or UNSET."""
        node = self.node(node_id)
        old = node.params.get(key, UNSET)
        if value is UNSET:
            if key not in node.spec.param_map:
                raise ParamError(key, f"{node.type} has no parameter {_short(key)}")
            node.params.pop(key, None)
        else:
            node.params[key] = node.spec.check_param(key, value)
        self.node_changed.emit(node_id, "params")
        self._touch()
        return old

    def rename(self, node_id: str, name: str) -> str:
        node = self.node(node_id)
        old, node.name = node.name, clean_name(name)
        self._name_freed(old)
        self._name_taken(node.name)
        self.node_changed.emit(node_id, "name")
        self._touch()
        return old

    def move(self, node_id: str, pos: tuple[float, float]) -> tuple[float, float]:
        node = self.node(node_id)
        old, node.pos = node.pos, check_pos(pos)
        self.node_changed.emit(node_id, "pos")
        return old

    # -- groups -----------------------------------------------------------------------
    @property
    def groups(self) -> list[Group]:
        return list(self._groups.values())

    def group(self, group_id: str) -> Group:
        try:
            return self._groups[group_id]
        except (KeyError, TypeError):
            raise GraphError(f"no group with id {_short(group_id)}") from None

    def group_path(self, group_id: str | None) -> list[str]:
        """The groups from the top level down to group_id (inclusive); [] for the top level."""
        path: list[str] = []
        while group_id is not None:
            path.append(group_id)
            group_id = self._groups[group_id].parent
        path.reverse()
        return path

    def _in_group(self, node_id: str, group_id: str) -> bool:
        g = self._nodes[node_id].group
        while g is not None:
            if g == group_id:
                return True
            g = self._groups[g].parent
        return False

    def scope_of(self, node_id: str, scope: str | None) -> str | None:
        """What stands for the block in the view of `scope` (a group, None = top level): the block's
        own id where it sits directly in that scope, the id of the group holding it that sits
        directly in the scope, or None where the block is not inside the scope at all."""
        g, below = self._nodes[node_id].group, node_id
        while g != scope:
            if g is None:
                return None
            g, below = self._groups[g].parent, g
        return below

    def members(self, group_id: str | None) -> tuple[list[str], list[str]]:
        """The blocks and groups directly inside a group (None: the top level), in node order."""
        nodes = [n.id for n in self._nodes.values() if n.group == group_id]
        groups = [g.id for g in self._groups.values() if g.parent == group_id]
        return nodes, groups

    def group_nodes(self, group_id: str) -> list[str]:
        """Every block inside the group, nested groups included, in node order."""
        self.group(group_id)
        return [nid for nid in self._nodes if self._in_group(nid, group_id)]

    def group_interface(self, group_id: str) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """The group's inputs and outputs as values: inputs are (block outside, port) read inside,
        in the order the inside first reads them; outputs are (block inside, port) read outside,
        or where nothing outside reads any, the inside blocks whose outputs nothing reads. Defined
        once, in core/groups.interfaces (which gives every group's in one pass)."""
        from .groups import interfaces

        self.group(group_id)
        return interfaces(self)[group_id]

    def new_group_id(self) -> str:
        k = len(self._groups) + 1
        while f"g{k}" in self._groups:
            k += 1
        return f"g{k}"

    def group_problem(self, group_id: str | None = None) -> str | None:
        """Why a group (or, with None, any group) is not one module: a path leaves it and comes back."""
        for gid in [group_id] if group_id is not None else list(self._groups):
            if self._reentry(set(self.group_nodes(gid))) is not None:
                return f"a path leaves group {self._groups[gid].name} and comes back into it"
        return None

    def _reentry(self, inside: set[str]) -> str | None:
        """The first block of `inside` reached again from it through blocks outside, or None (then
        the blocks can be one module)."""
        stack = [d for n in inside for d in self._outputs[n] if d not in inside]
        seen: set[str] = set()
        while stack:
            nid = stack.pop()
            if nid in inside:
                return nid
            if nid not in seen:
                seen.add(nid)
                stack.extend(self._outputs[nid])
        return None

    def grouping_problem(self, node_ids: list[str], group_ids: list[str] = ()) -> str | None:
        """Why these blocks and groups cannot become one group, or None."""
        if not node_ids and not group_ids:
            return "select the blocks to group"
        for nid in node_ids:
            if self.node(nid).type == "Input":
                return "the Input block stays at the top level: leave it out of the group"
        scopes = {self.node(n).group for n in node_ids} | {self.group(g).parent for g in group_ids}
        if len(scopes) > 1:
            return "the selected blocks are in different groups"
        inside = set(node_ids)
        for g in group_ids:
            inside.update(self.group_nodes(g))
        back = self._reentry(inside)
        if back is not None:
            return (f"{self._nodes[back].label} is reached from the selection through blocks outside it: "
                    "select those blocks too")
        return None

    def add_group(self, name: str, nodes: list[str] = (), groups: list[str] = (), parent: str | None = None,
                  group_id: str | None = None, pos: tuple[float, float] | None = None, cls: str = "",
                  index: int | None = None) -> Group:
        """A new group holding these blocks and groups (they move into it from the scope they share,
        which becomes its parent); without members, an empty group inside `parent`. `index`: its
        place in the list of groups (what undoing an Ungroup restores; the end by default)."""
        nodes, groups = list(dict.fromkeys(nodes)), list(dict.fromkeys(groups))
        if nodes or groups:
            problem = self.grouping_problem(nodes, groups)
            if problem:
                raise GraphError(problem)
            parent = self._nodes[nodes[0]].group if nodes else self._groups[groups[0]].parent
        elif parent is not None:
            self.group(parent)
        if len(self.group_path(parent)) >= MAX_GROUP_DEPTH:
            raise GraphError(f"groups nest at most {MAX_GROUP_DEPTH} deep")
        if group_id is None:
            group_id = self.new_group_id()
        else:
            group_id = check_id(group_id)
            if group_id in self._groups:
                raise GraphError(f"a group with id {group_id!r} already exists")
        if not isinstance(cls, str) or (cls and not cls.isidentifier()):
            raise GraphError(f"a group's class name must be a Python identifier (got {_short(cls)})")
        if pos is None:
            spots = [self._nodes[n].pos for n in nodes] + [self._groups[g].pos for g in groups]
            pos = (min(p[0] for p in spots), min(p[1] for p in spots)) if spots else (0.0, 0.0)
        group = Group(group_id, clean_name(name) or group_id, parent, check_pos(pos), cls)
        self._groups[group_id] = group
        if index is not None and index < len(self._groups) - 1:
            items = list(self._groups.items())
            items.insert(index, items.pop())
            self._groups = dict(items)
        self.group_changed.emit(group_id, "added")
        self._regroup(nodes, groups, group_id)
        return group

    def _regroup(self, nodes: list[str], groups: list[str], target: str | None) -> None:
        with self.batch():
            for nid in nodes:
                self._nodes[nid].group = target
                self.node_changed.emit(nid, "group")
            for gid in groups:
                self._groups[gid].parent = target
                self.group_changed.emit(gid, "members")
            self._touch()

    def remove_group(self, group_id: str) -> tuple[Group, list[str], list[str]]:
        """Ungroup: the group's blocks and groups move up into its parent. Returns the group and
        what it held, which is what re-grouping needs."""
        group = self.group(group_id)
        nodes, groups = self.members(group_id)
        with self.batch():
            self._regroup(nodes, groups, group.parent)
            del self._groups[group_id]
            self.group_changed.emit(group_id, "removed")
            self._touch()
        return group, nodes, groups

    def rename_group(self, group_id: str, name: str) -> str:
        group = self.group(group_id)
        old, group.name = group.name, clean_name(name) or group_id
        self.group_changed.emit(group_id, "name")
        self._touch()
        return old

    def move_group(self, group_id: str, pos: tuple[float, float]) -> tuple[float, float]:
        group = self.group(group_id)
        old, group.pos = group.pos, check_pos(pos)
        self.group_changed.emit(group_id, "pos")
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
            for gid in reversed(list(self._groups)):
                self.remove_group(gid)

    def copy(self) -> Graph:
        from .project import graph_from_dict, graph_to_dict

        return graph_from_dict(graph_to_dict(self))


MAX_COORD = 1e9  # canvas positions beyond this are not a drawing, they are damage
MAX_NAME = 80
MAX_GROUP_DEPTH = 32  # ResNet in an import is 3 deep; deeper is damage, and codegen recurses per level
MAX_ID = 64


def check_pos(pos: Any) -> tuple[float, float]:
    """A canvas position as the graph keeps it: two finite numbers within MAX_COORD, rounded to
    0.1 px, exactly what a project file stores and reads back."""
    if not isinstance(pos, (list, tuple)) or len(pos) != 2:
        raise GraphError(f"a position must be [x, y], got {_short(pos)}")
    out = []
    for v in pos:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise GraphError(f"a position must be two numbers, got {_short(pos)}")
        try:
            f = float(v)
        except OverflowError:
            f = math.inf
        if not math.isfinite(f) or abs(f) > MAX_COORD:
            raise GraphError(f"a position must be finite and within ±{MAX_COORD:g}, got {_short(pos)}")
        out.append(round(f, 1) + 0.0)  # + 0.0 turns -0.0 into 0.0
    return out[0], out[1]


# C0/C1 controls (terminal escapes), lone surrogates (cannot be encoded, so could not be saved)
# and bidirectional overrides (reorder what a reader sees).
_NOT_C0 = "\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069"
_TEXT_BAD = re.compile(f"[\x00-\x1f{_NOT_C0}]")
# What a terminal must not be sent raw: the same, less tab and newline (the CLI's own layout).
TERMINAL_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f{_NOT_C0}]")


def clean_text(text: str) -> str:
    """User text as the app keeps it: every character can be saved as UTF-8 and printed safely."""
    return _TEXT_BAD.sub(lambda m: "\ufffd" if "\ud800" <= m.group() <= "\udfff" else " ", text)


def clean_name(name: Any) -> str:
    if not isinstance(name, str):
        raise GraphError(f"a block name must be text, got {type(name).__name__}")
    name = clean_text(name).strip()
    if len(name) > MAX_NAME:
        raise GraphError(f"a block name can have at most {MAX_NAME} characters")
    return name


def check_id(node_id: Any) -> str:
    if not isinstance(node_id, str) or not node_id or len(node_id) > MAX_ID or clean_text(node_id) != node_id \
            or node_id != node_id.strip():
        raise GraphError(f"a block id must be non-empty printable text of at most {MAX_ID} characters "
                         f"(got {_short(node_id)})")
    return node_id

