"""Undoable edits. Every change to a document goes through one of these commands, which call
only the Graph's public methods; views observe the graph, so undo repaints them for free.
The Qt layer wraps them in a thin QUndoCommand adapter; the CLI and tests use UndoStack.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from .blocks.base import _show
from .graph import UNSET, Graph, GraphError, check_pos


class Command(ABC):
    text = "edit"
    merge_key: tuple | None = None  # consecutive commands with equal keys merge into one

    @abstractmethod
    def redo(self, graph: Graph) -> None: ...

    @abstractmethod
    def undo(self, graph: Graph) -> None: ...

    def merge(self, other: Command) -> bool:
        return False


class Macro(Command):
    """Child commands run in order and undone in reverse: composite edits stay one step."""

    def __init__(self, text: str, children: Iterable[Command] = ()):
        self.text = text
        self.children = list(children)
        self._done: list[Command] = []

    def redo(self, graph: Graph) -> None:
        with graph.batch():
            self._done = []
            try:
                for c in self.children:
                    c.redo(graph)
                    self._done.append(c)
            except Exception:
                for c in reversed(self._done):
                    c.undo(graph)
                raise

    def undo(self, graph: Graph) -> None:
        with graph.batch():
            for c in reversed(self.children):
                c.undo(graph)


class AddNode(Command):
    def __init__(self, type_name: str, params: dict | None = None, name: str | None = None,
                 pos: tuple[float, float] = (0.0, 0.0), node_id: str | None = None, group: str | None = None):
        self.type_name, self.params, self.name, self.pos, self.node_id = type_name, params, name, pos, node_id
        self.group = group  # the open group the block is added inside (None: the top level)
        self.text = f"Add {type_name}"

    def redo(self, graph: Graph) -> None:
        node = graph.add_node(self.type_name, self.params, self.name, self.pos, self.node_id, group=self.group)
        # Pin what was generated so redo after undo recreates the very same block.
        self.node_id, self.name, self.params = node.id, node.name, dict(node.params)

    def undo(self, graph: Graph) -> None:
        graph.remove_node(self.node_id)


class ConnectMany(Command):
    """Many edges (src, dst) or (src, dst, port) with one cycle check (pasting a long chain edge
    by edge is quadratic)."""

    def __init__(self, edges: list[tuple]):
        self.edges = [(e[0], e[1], e[2] if len(e) > 2 else 0) for e in edges]
        self.text = "Connect"

    def redo(self, graph: Graph) -> None:
        graph.connect_all([(s, d, None, p) for s, d, p in self.edges])

    def undo(self, graph: Graph) -> None:
        with graph.batch():
            for s, d, _ in reversed(self.edges):
                graph.disconnect(s, d)


class Connect(Command):
    """src's output `port` (0 unless src is a Split or Chunk) feeds dst, at `index` among its inputs."""

    def __init__(self, src: str, dst: str, index: int | None = None, port: int = 0):
        self.src, self.dst, self.index, self.port = src, dst, index, port
        self.text = "Connect"

    def redo(self, graph: Graph) -> None:
        graph.connect(self.src, self.dst, self.index, self.port)
        self.index = graph.inputs(self.dst).index(self.src)

    def undo(self, graph: Graph) -> None:
        graph.disconnect(self.src, self.dst)


class Disconnect(Command):
    def __init__(self, src: str, dst: str):
        self.src, self.dst = src, dst
        self.index: int | None = None
        self.port = 0
        self.text = "Disconnect"

    def redo(self, graph: Graph) -> None:
        port = graph.port(self.src, self.dst)
        self.index = graph.disconnect(self.src, self.dst)
        self.port = port

    def undo(self, graph: Graph) -> None:
        graph.connect(self.src, self.dst, self.index, self.port)


class RemoveNodes(Command):
    """Removes blocks and their edges; undo restores each block's place in the node order and
    each edge's position among its target's inputs. Many blocks are one pass each way, so
    deleting and restoring a whole graph stays linear."""

    def __init__(self, node_ids: Iterable[str]):
        self.node_ids = list(dict.fromkeys(node_ids))
        self.text = "Delete block" if len(self.node_ids) == 1 else "Delete"
        self._saved: list[tuple[int, dict]] = []
        self._edges: list[tuple[str, str, int, int]] = []  # src, dst, index among dst's inputs, port

    def redo(self, graph: Graph) -> None:
        for nid in self.node_ids:
            graph.node(nid)  # all-or-nothing: refuse before anything changes
        place = graph.order_index()
        chosen = set(self.node_ids)
        ids = sorted(chosen, key=place.__getitem__)
        self._saved = []
        edges = {}
        for nid in ids:
            n = graph.node(nid)
            self._saved.append((place[nid], {"type_name": n.type, "params": dict(n.params), "name": n.name,
                                             "pos": n.pos, "node_id": nid, "group": n.group}))
            for i, s in enumerate(graph.inputs(nid)):
                edges[(s, nid)] = i
            for d in graph.outputs(nid):
                edges[(nid, d)] = graph.inputs(d).index(nid)
        # Restoring inputs in ascending position rebuilds each target's input order exactly.
        self._edges = sorted(((s, d, i, graph.port(s, d)) for (s, d), i in edges.items()), key=lambda e: e[2])
        graph.remove_nodes(ids)

    def undo(self, graph: Graph) -> None:
        with graph.batch():
            graph.insert_nodes(self._saved)
            graph.connect_all(self._edges)


class RemoveNode(RemoveNodes):
    def __init__(self, node_id: str):
        super().__init__([node_id])
        self.node_id = node_id


class SetParam(Command):
    def __init__(self, node_id: str, key: str, value: Any):
        self.node_id, self.key, self.value = node_id, key, value
        self.old: Any = UNSET
        self.text = f"Set {key}"
        self.merge_key = ("param", node_id, key)

    def redo(self, graph: Graph) -> None:
        self.old = graph.set_param(self.node_id, self.key, self.value)

    def undo(self, graph: Graph) -> None:
        graph.set_param(self.node_id, self.key, self.old)

    def merge(self, other: Command) -> bool:
        # Typing 1, 16 into one field is one step: keep our old value, take their new one.
        assert isinstance(other, SetParam)
        self.value = other.value
        return True


class Rename(Command):
    def __init__(self, node_id: str, name: str):
        self.node_id, self.name, self.old = node_id, name, ""
        self.text = "Rename"
        self.merge_key = ("rename", node_id)

    def redo(self, graph: Graph) -> None:
        self.old = graph.rename(self.node_id, self.name)

    def undo(self, graph: Graph) -> None:
        graph.rename(self.node_id, self.old)

    def merge(self, other: Command) -> bool:
        assert isinstance(other, Rename)
        self.name = other.name
        return True


class Move(Command):
    """Moves one or more blocks; a whole drag becomes one command on mouse release."""

    def __init__(self, moves: dict[str, tuple[float, float]], old: dict[str, tuple[float, float]] | None = None,
                 nudge: bool = False):
        self.moves = dict(moves)
        self.old = dict(old or {})
        self.text = "Move"
        if nudge:  # arrow-key steps on the same blocks add up to one undo step
            self.merge_key = ("nudge", *sorted(self.moves))

    def merge(self, other: Command) -> bool:
        assert isinstance(other, Move)
        self.moves.update(other.moves)  # our start positions, their end positions
        return True

    def redo(self, graph: Graph) -> None:
        for nid, pos in self.moves.items():  # all-or-nothing: check every block and position first
            graph.node(nid)
            check_pos(pos)
        for nid, pos in self.moves.items():
            prev = graph.move(nid, pos)
            self.old.setdefault(nid, prev)

    def undo(self, graph: Graph) -> None:
        for nid, pos in self.old.items():
            graph.move(nid, pos)


class GroupBlocks(Command):
    """Select blocks (and groups) -> one group; undo ungroups it again, redo restores the same id."""

    def __init__(self, node_ids: Iterable[str], group_ids: Iterable[str] = (), name: str = "group",
                 cls: str = "", group_id: str | None = None):
        self.node_ids, self.group_ids = list(node_ids), list(group_ids)
        self.name, self.cls, self.group_id = name, cls, group_id
        self.text = "Group"

    def redo(self, graph: Graph) -> None:
        group = graph.add_group(self.name, self.node_ids, self.group_ids, group_id=self.group_id, cls=self.cls)
        self.group_id, self.name = group.id, group.name

    def undo(self, graph: Graph) -> None:
        graph.remove_group(self.group_id)


class Ungroup(Command):
    """A group's blocks move up into the scope holding it; undo puts them back in the same group."""

    def __init__(self, group_id: str):
        self.group_id = group_id
        self.text = "Ungroup"
        self._saved: tuple | None = None

    def redo(self, graph: Graph) -> None:
        listed = [g.id for g in graph.groups]
        group, nodes, groups = graph.remove_group(self.group_id)  # refuses an unknown id
        self._saved = (group, nodes, groups, listed.index(self.group_id))

    def undo(self, graph: Graph) -> None:
        group, nodes, groups, index = self._saved
        made = graph.add_group(group.name, nodes, groups, parent=group.parent, group_id=group.id, pos=group.pos,
                               cls=group.cls, index=index)  # where it was listed: the file reads the same
        assert made.parent == group.parent


class RenameGroup(Command):
    def __init__(self, group_id: str, name: str):
        self.group_id, self.name, self.old = group_id, name, ""
        self.text = "Rename group"
        self.merge_key = ("rename-group", group_id)

    def redo(self, graph: Graph) -> None:
        self.old = graph.rename_group(self.group_id, self.name)

    def undo(self, graph: Graph) -> None:
        graph.rename_group(self.group_id, self.old)

    def merge(self, other: Command) -> bool:
        assert isinstance(other, RenameGroup)
        self.name = other.name
        return True


class MoveGroups(Command):
    """Moves collapsed groups on the canvas (blocks move with Move; a drag of both is a Macro)."""

    def __init__(self, moves: dict[str, tuple[float, float]]):
        self.moves = dict(moves)
        self.old: dict[str, tuple[float, float]] = {}
        self.text = "Move"

    def redo(self, graph: Graph) -> None:
        for gid, pos in self.moves.items():
            graph.group(gid)
            check_pos(pos)
        for gid, pos in self.moves.items():
            self.old.setdefault(gid, graph.move_group(gid, pos))

    def undo(self, graph: Graph) -> None:
        for gid, pos in self.old.items():
            graph.move_group(gid, pos)


class AddGroup(Command):
    """An empty group inside `parent` (None: the top level), what a paste makes before it adds its
    blocks; undo removes it again (empty by then: what went into it is undone first)."""

    def __init__(self, name: str, parent: str | None = None, group_id: str | None = None,
                 pos: tuple[float, float] = (0.0, 0.0), cls: str = ""):
        self.name, self.parent, self.group_id, self.pos, self.cls = name, parent, group_id, pos, cls
        self.text = "Add group"

    def redo(self, graph: Graph) -> None:
        group = graph.add_group(self.name, parent=self.parent, group_id=self.group_id, pos=self.pos, cls=self.cls)
        self.group_id, self.name = group.id, group.name

    def undo(self, graph: Graph) -> None:
        graph.remove_group(self.group_id)


def remove_group(graph: Graph, group_id: str) -> Macro:
    """Delete a collapsed group: its blocks (nested groups' too), then the now empty groups."""
    nested = [g.id for g in graph.groups if group_id in graph.group_path(g.id)]
    inner_first = sorted(nested, key=lambda g: -len(graph.group_path(g)))
    return Macro(f"Delete {graph.group(group_id).name}",
                 [RemoveNodes(graph.group_nodes(group_id)), *(Ungroup(g) for g in inner_first)])


def remove_nodes(graph: Graph, node_ids: Iterable[str]) -> RemoveNodes:
    return RemoveNodes(n for n in node_ids if n in graph)


def insert_on_edge(graph: Graph, src: str, dst: str, type_name: str, params: dict | None = None,
                   name: str | None = None, pos: tuple[float, float] | None = None, also: Iterable[str] = (),
                   group: str | None = None) -> Macro:
    """src -> dst becomes src -> new -> dst, keeping dst's input order. `also`: more blocks that
    the same output of src feeds, which then read the new block too (one line on the canvas, into
    a collapsed group, stands for all of them: the new block goes on the value). The new block
    lands in `group` (the scope shown; None: the top level)."""
    nid = graph.new_id()
    disconnect, *connects = _route_through(graph, src, [dst, *also], nid)
    if pos is None:
        a, b = graph.node(src).pos, graph.node(dst).pos
        pos = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    add = AddNode(type_name, params, name, pos, node_id=nid, group=group)
    return Macro(f"Insert {type_name}", [disconnect, add, *connects])  # children[1] is the new block


def _route_through(graph: Graph, src: str, dsts: list[str], mid: str) -> list[Command]:
    """src -> dst becomes src -> mid -> dst for each of dsts (all fed by one output of src), mid
    taking src's place among each one's inputs; the first command is the first Disconnect."""
    dsts = list(dict.fromkeys(dsts))
    for dst in dsts:
        if dst not in graph.outputs(src):
            raise GraphError(f"there is no edge from {_show(src)} to {_show(dst)}")
    port = graph.port(src, dsts[0])
    if any(graph.port(src, d) != port for d in dsts):
        raise GraphError(f"{graph.node(src).label} feeds these blocks from different outputs: insert on one at a time")
    head, *rest = [(d, graph.inputs(d).index(src)) for d in dsts]
    route: list[Command] = [Disconnect(src, head[0]), Connect(src, mid, port=port), Connect(mid, head[0], head[1])]
    for d, index in rest:
        route += [Disconnect(src, d), Connect(mid, d, index)]
    return route


def splice_refusal(graph: Graph, node_id: str) -> str | None:
    """Why this block cannot be dropped into a connection, or None if it can."""
    node = graph.node(node_id)
    if graph.inputs(node_id) or graph.outputs(node_id):
        return f"{node.label} is already connected: only a block without connections can be dropped into one"
    if node.spec.max_inputs == 0:
        return f"{node.type} takes no inputs, so it cannot sit inside a connection"
    return None


def splice_into_edge(graph: Graph, node_id: str, src: str, dst: str,
                     pos: tuple[float, float] | None = None, also: Iterable[str] = ()) -> Macro:
    """src -> dst becomes src -> block -> dst for an existing block with no connections (what
    dropping a dragged block onto a connection does), keeping dst's input order; `also`: more
    blocks fed by the same output of src, as for insert_on_edge. `pos` also moves the block, in
    the same undo step."""
    route = _route_through(graph, src, [dst, *also], node_id)
    node = graph.node(node_id)
    if node_id in (src, dst, *also):
        raise GraphError(f"{node.label} cannot be inserted into its own connection")
    refusal = splice_refusal(graph, node_id)
    if refusal:
        raise GraphError(refusal)
    children: list[Command] = [Move({node_id: pos})] if pos is not None else []
    return Macro(f"Insert {node.label}", children + route)


def duplicate(graph: Graph, node_ids: Iterable[str], offset: tuple[float, float] = (40.0, 40.0),
              group_ids: Iterable[str] = ()) -> Macro:
    """Copies blocks, collapsed groups (with everything in them) and the edges among them; returns
    a macro whose AddNode children hold the new ids (in `macro.new_ids` once run). The copies stay
    in the scope the first block (or group) is in."""
    node_ids, group_ids = list(node_ids), list(group_ids)
    if node_ids:
        scope = graph.node(node_ids[0]).group
    else:
        scope = graph.group(group_ids[0]).parent if group_ids else None
    return paste(graph, clip_of(graph, node_ids, group_ids), offset, scope)


def clip_of(graph: Graph, node_ids: Iterable[str], group_ids: Iterable[str] = ()) -> dict:
    """A plain-data clipboard of blocks and the edges among them (also what Copy puts on the
    system clipboard as JSON). An edge is [from, to], or [from, to, port] from a Split's output
    `port`. With `group_ids` (collapsed groups), their blocks come too and "groups" lists them and
    the groups nested in them, as a project file does, so a paste is grouped the same way; a
    block's "group" names the one holding it (none: it lands in the scope pasted into)."""
    chosen = set(node_ids)
    picked = set(group_ids)
    for gid in picked:
        graph.group(gid)  # refuses an unknown id
    groups = [grp for grp in graph.groups if picked.intersection(graph.group_path(grp.id))]
    kept = {grp.id for grp in groups}
    nodes = []
    for n in graph:
        if n.id in chosen or n.group in kept:
            nodes.append({"id": n.id, "type": n.type, "name": n.name, "params": dict(n.params), "pos": list(n.pos),
                          **({"group": n.group} if n.group in kept else {})})
    ids = {e["id"] for e in nodes}
    edges = [[s, d, p] if p else [s, d] for s, d, p in graph.edges_with_ports if s in ids and d in ids]
    clip: dict = {"nodes": nodes, "edges": edges}
    if groups:
        clip["groups"] = [{"id": grp.id, "name": grp.name, **({"parent": grp.parent} if grp.parent in kept else {}),
                           "pos": list(grp.pos), **({"class": grp.cls} if grp.cls else {})} for grp in groups]
    return clip


def shown_positions(source: Graph) -> list[tuple[float, float]]:
    """Where what a pasted clip shows in the scope it lands in sits (a parsed clip): its blocks
    outside any group and its outermost groups."""
    nodes, groups = source.members(None)
    return [source.node(n).pos for n in nodes] + [source.group(g).pos for g in groups]


class ClipError(GraphError):
    """Clipboard content that is not blocks this app can paste; the message says what is wrong."""


def parse_clip(clip: Any) -> Graph:
    """Check a clipboard (from anywhere: another app, another version, a hand-edited text) by the
    same rules as a project file, into a scratch graph; clipboards from before groups hold none."""
    from .project import ProjectError, graph_from_dict

    if not isinstance(clip, dict) or not isinstance(clip.get("nodes"), list) or not clip["nodes"]:
        raise ClipError("the clipboard holds no cnnbuilder blocks")
    edges = clip.get("edges", [])
    if not isinstance(edges, list) or not all(isinstance(e, (list, tuple)) and len(e) in (2, 3) for e in edges):
        raise ClipError("the clipboard's connections are not pairs of block ids (with an output port)")
    try:
        return graph_from_dict({"nodes": clip["nodes"],
                                "edges": [{"from": e[0], "to": e[1], **({"from_port": e[2]} if len(e) == 3 else {})}
                                          for e in edges],
                                "groups": clip.get("groups", [])},
                               "clipboard")
    except ProjectError as exc:
        raise ClipError(str(exc)) from None
    except RecursionError:
        raise ClipError("the clipboard holds data nested too deeply") from None


def paste(graph: Graph, clip: Any, offset: tuple[float, float] = (40.0, 40.0), group: str | None = None) -> Macro:
    """Raises ClipError (with a reason) for anything that is not a valid clip. The copies land in
    `group` (the group open on the canvas; None: the top level), the clip's groups with fresh ids
    (the outermost with fresh names) nested as they were. The macro tells what it made:
    `new_ids` (every block), `shown_ids` (the blocks directly in `group`) and `new_group_ids`
    (the outermost groups)."""
    source = parse_clip(clip)

    def moved(pos: tuple[float, float]) -> tuple[float, float]:
        try:
            return check_pos((pos[0] + offset[0], pos[1] + offset[1]))
        except GraphError:
            return pos  # pasting at the canvas's edge: keep the copy where the original was

    children: list[Command] = []
    new_group: dict[str, str] = {}
    taken_groups = {grp.id for grp in graph.groups}
    group_names = _FreshNames(grp.name for grp in graph.groups)
    k = len(taken_groups) + 1
    for entry in sorted(source.groups, key=lambda grp: len(source.group_path(grp.id))):  # parents first
        while f"g{k}" in taken_groups:
            k += 1
        gid = new_group[entry.id] = f"g{k}"
        taken_groups.add(gid)
        outermost = entry.parent is None
        children.append(AddGroup(group_names.fresh(entry.name) if outermost else entry.name,
                                 group if outermost else new_group[entry.parent], gid, moved(entry.pos), entry.cls))
    new_id: dict[str, str] = {}
    taken = {n.id for n in graph}
    names = _FreshNames(n.name for n in graph)
    k = len(graph) + 1
    for entry in source:
        while f"n{k}" in taken:
            k += 1
        nid = f"n{k}"
        taken.add(nid)
        new_id[entry.id] = nid
        name = names.fresh(entry.name) if entry.name else None
        home = None if entry.type == "Input" else new_group[entry.group] if entry.group is not None else group
        children.append(AddNode(entry.type, dict(entry.params), name, moved(entry.pos), node_id=nid, group=home))
    if source.edges:
        children.append(ConnectMany([(new_id[s], new_id[d], p) for s, d, p in source.edges_with_ports]))
    what = f"Paste {source.nodes[0].type}" if len(source) == 1 and not new_group else "Paste"
    macro = Macro(what, children)
    macro.new_ids = [new_id[n.id] for n in source]
    macro.shown_ids = [new_id[n.id] for n in source if n.group is None]
    macro.new_group_ids = [new_group[grp.id] for grp in source.groups if grp.parent is None]
    return macro


class _FreshNames:
    """Unique names for pasted copies: linear1 becomes linear2, linear3, ... without rescanning
    every taken name for each copy."""

    def __init__(self, taken: Iterable[str]):
        self.taken = set(taken)
        self.next: dict[str, int] = {}

    def fresh(self, name: str) -> str:
        if name not in self.taken:
            self.taken.add(name)
            return name
        stem = name.rstrip("0123456789") or name
        k = self.next.get(stem, 2)
        while f"{stem}{k}" in self.taken:
            k += 1
        self.next[stem] = k + 1
        name = f"{stem}{k}"
        self.taken.add(name)
        return name


class UndoStack:
    """A minimal undo stack for the core (the GUI uses QUndoStack with the same commands)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._done: list[Command] = []
        self._undone: list[Command] = []
        self._clean_index: int | None = 0

    def push(self, cmd: Command) -> Command:
        cmd.redo(self.graph)
        self._undone.clear()
        if self._clean_index is not None and self._clean_index > len(self._done):
            self._clean_index = None
        top = self._done[-1] if self._done else None
        if (top is not None and cmd.merge_key is not None and top.merge_key == cmd.merge_key
                and self._clean_index != len(self._done) and top.merge(cmd)):
            return top
        self._done.append(cmd)
        return cmd

    def undo(self) -> bool:
        if not self._done:
            return False
        cmd = self._done.pop()
        cmd.undo(self.graph)
        self._undone.append(cmd)
        return True

    def redo(self) -> bool:
        if not self._undone:
            return False
        cmd = self._undone.pop()
        cmd.redo(self.graph)
        self._done.append(cmd)
        return True

    def can_undo(self) -> bool:
        return bool(self._done)

    def can_redo(self) -> bool:
        return bool(self._undone)

    def set_clean(self) -> None:
        self._clean_index = len(self._done)

    def is_clean(self) -> bool:
        return self._clean_index == len(self._done)


def delete_and_reconnect(graph: Graph, node_ids: Iterable[str]) -> Macro:
    """Delete blocks and join what fed each one to what it fed, so a chain stays a chain (one
    undo step). Raises GraphError with the reason where ports or shapes make that impossible."""
    from .shapes import analyze

    chosen = [n for n in node_ids if n in graph]
    if not chosen:
        raise GraphError("select the blocks to delete")
    scratch = graph.copy()
    picked = set(chosen)
    steps: list[Command] = []
    for nid in (n for n in scratch.topo_order() if n in picked):
        node = scratch.node(nid)
        ins, outs = scratch.inputs(nid), scratch.outputs(nid)
        if len(ins) != 1:
            raise GraphError(f"{node.label} has {'no input' if not ins else f'{len(ins)} inputs'}, so there is "
                             "nothing unambiguous to reconnect its outputs to; use Delete")
        rejoin = [Connect(ins[0], d, scratch.inputs(d).index(nid), scratch.port(ins[0], nid)) for d in outs]
        step = Macro(f"Delete {node.label}", [RemoveNode(nid), *rejoin])
        step.redo(scratch)  # refuses (e.g. already connected) with the graph's own reason
        steps.append(step)
    before, after = analyze(graph), analyze(scratch)
    for n in scratch:
        info = after.nodes[n.id]
        if info.error and not info.waiting and before.nodes[n.id].error is None:
            gone = ", ".join(graph.node(c).label for c in chosen)
            raise GraphError(f"without {gone}, {n.label} would fail: {info.error}")
    return Macro("Delete and reconnect", steps)
