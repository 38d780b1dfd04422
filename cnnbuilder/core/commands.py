"""Undoable edits. Every change to a document goes through one of these commands, which call
only the Graph's public methods; views observe the graph, so undo repaints them for free.
The Qt layer wraps them in a thin QUndoCommand adapter; the CLI and tests use UndoStack.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from .graph import UNSET, Graph, GraphError


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
                 pos: tuple[float, float] = (0.0, 0.0), node_id: str | None = None):
        self.type_name, self.params, self.name, self.pos, self.node_id = type_name, params, name, pos, node_id
        self.text = f"Add {type_name}"

    def redo(self, graph: Graph) -> None:
        node = graph.add_node(self.type_name, self.params, self.name, self.pos, self.node_id)
        # Pin what was generated so redo after undo recreates the very same block.
        self.node_id, self.name, self.params = node.id, node.name, dict(node.params)

    def undo(self, graph: Graph) -> None:
        graph.remove_node(self.node_id)


class Connect(Command):
    def __init__(self, src: str, dst: str, index: int | None = None):
        self.src, self.dst, self.index = src, dst, index
        self.text = "Connect"

    def redo(self, graph: Graph) -> None:
        graph.connect(self.src, self.dst, self.index)
        self.index = graph.inputs(self.dst).index(self.src)

    def undo(self, graph: Graph) -> None:
        graph.disconnect(self.src, self.dst)


class Disconnect(Command):
    def __init__(self, src: str, dst: str):
        self.src, self.dst = src, dst
        self.index: int | None = None
        self.text = "Disconnect"

    def redo(self, graph: Graph) -> None:
        self.index = graph.disconnect(self.src, self.dst)

    def undo(self, graph: Graph) -> None:
        graph.connect(self.src, self.dst, self.index)


class RemoveNode(Command):
    """Removes a block's edges first (as child steps), then the block; undo restores its place
    in the node order and each edge's position among its target's inputs."""

    def __init__(self, node_id: str):
        self.node_id = node_id
        self.text = "Delete block"
        self._saved: tuple | None = None
        self._edges: list[Disconnect] = []

    def redo(self, graph: Graph) -> None:
        n = graph.node(self.node_id)
        self._saved = (graph.index_of(n.id), n.type, dict(n.params), n.name, n.pos)
        self._edges = [Disconnect(s, n.id) for s in graph.inputs(n.id)]
        self._edges += [Disconnect(n.id, d) for d in graph.outputs(n.id)]
        with graph.batch():
            for c in self._edges:
                c.redo(graph)
            graph.remove_node(n.id)

    def undo(self, graph: Graph) -> None:
        index, type_name, params, name, pos = self._saved
        with graph.batch():
            graph.add_node(type_name, params, name, pos, self.node_id, index=index)
            for c in reversed(self._edges):
                c.undo(graph)


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
        for nid, pos in self.moves.items():
            prev = graph.move(nid, pos)
            self.old.setdefault(nid, prev)

    def undo(self, graph: Graph) -> None:
        for nid, pos in self.old.items():
            graph.move(nid, pos)


def remove_nodes(graph: Graph, node_ids: Iterable[str]) -> Macro:
    ids = [n for n in node_ids if n in graph]
    return Macro("Delete" if len(ids) != 1 else "Delete block", [RemoveNode(n) for n in ids])


def insert_on_edge(graph: Graph, src: str, dst: str, type_name: str, params: dict | None = None,
                   name: str | None = None, pos: tuple[float, float] | None = None) -> Macro:
    """src -> dst becomes src -> new -> dst, keeping dst's input order."""
    nid = graph.new_id()
    disconnect, *connects = _route_through(graph, src, dst, nid)
    if pos is None:
        a, b = graph.node(src).pos, graph.node(dst).pos
        pos = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    add = AddNode(type_name, params, name, pos, node_id=nid)
    return Macro(f"Insert {type_name}", [disconnect, add, *connects])  # children[1] is the new block


def _route_through(graph: Graph, src: str, dst: str, mid: str) -> list[Command]:
    """src -> dst becomes src -> mid -> dst, mid taking src's place among dst's inputs."""
    if dst not in graph.outputs(src):
        raise GraphError(f"there is no edge from {src!r} to {dst!r}")
    index = graph.inputs(dst).index(src)
    return [Disconnect(src, dst), Connect(src, mid), Connect(mid, dst, index)]


def splice_refusal(graph: Graph, node_id: str) -> str | None:
    """Why this block cannot be dropped into a connection, or None if it can."""
    node = graph.node(node_id)
    if graph.inputs(node_id) or graph.outputs(node_id):
        return f"{node.label} is already connected: only a block without connections can be dropped into one"
    if node.spec.max_inputs == 0:
        return f"{node.type} takes no inputs, so it cannot sit inside a connection"
    return None


def splice_into_edge(graph: Graph, node_id: str, src: str, dst: str,
                     pos: tuple[float, float] | None = None) -> Macro:
    """src -> dst becomes src -> block -> dst for an existing block with no connections (what
    dropping a dragged block onto a connection does), keeping dst's input order; `pos` also moves
    the block, in the same undo step."""
    route = _route_through(graph, src, dst, node_id)
    node = graph.node(node_id)
    if node_id in (src, dst):
        raise GraphError(f"{node.label} cannot be inserted into its own connection")
    refusal = splice_refusal(graph, node_id)
    if refusal:
        raise GraphError(refusal)
    children: list[Command] = [Move({node_id: pos})] if pos is not None else []
    return Macro(f"Insert {node.label}", children + route)


def duplicate(graph: Graph, node_ids: Iterable[str], offset: tuple[float, float] = (40.0, 40.0)) -> Macro:
    """Copies blocks and the edges between them; returns a macro whose AddNode children hold the
    new ids (in `macro.new_ids` once run)."""
    return paste(graph, clip_of(graph, node_ids), offset)


def clip_of(graph: Graph, node_ids: Iterable[str]) -> dict:
    """A plain-data clipboard of blocks and the edges among them (also what Copy puts on the
    system clipboard as JSON)."""
    chosen = set(node_ids)
    nodes = [{"id": n.id, "type": n.type, "name": n.name, "params": dict(n.params), "pos": list(n.pos)}
             for n in graph if n.id in chosen]
    edges = [[s, d] for s, d in graph.edges if s in chosen and d in chosen]
    return {"nodes": nodes, "edges": edges}


def paste(graph: Graph, clip: dict, offset: tuple[float, float] = (40.0, 40.0)) -> Macro:
    children: list[Command] = []
    new_id: dict[str, str] = {}
    taken = {n.id for n in graph}
    taken_names = {n.name for n in graph}
    k = len(graph) + 1
    for entry in clip["nodes"]:
        while f"n{k}" in taken:
            k += 1
        nid = f"n{k}"
        taken.add(nid)
        new_id[entry["id"]] = nid
        name = entry.get("name") or None
        if name is not None:
            name = _fresh_name(name, taken_names)
            taken_names.add(name)
        pos = (entry["pos"][0] + offset[0], entry["pos"][1] + offset[1])
        children.append(AddNode(entry["type"], entry.get("params", {}), name, pos, node_id=nid))
    for s, d in clip["edges"]:
        children.append(Connect(new_id[s], new_id[d]))
    macro = Macro("Paste" if len(clip["nodes"]) != 1 else f"Paste {clip['nodes'][0]['type']}", children)
    macro.new_ids = [new_id[e["id"]] for e in clip["nodes"]]
    return macro


def _fresh_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    stem = name.rstrip("0123456789") or name
    k = 2
    while f"{stem}{k}" in taken:
        k += 1
    return f"{stem}{k}"


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
