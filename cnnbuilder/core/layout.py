"""Auto-layout: blocks in layers by topological depth, top to bottom (a small Sugiyama layout).

1. layer = longest path from a source, so every edge points down;
2. edges spanning several layers get invisible dummy nodes, so skip connections keep a lane of
   their own instead of cutting through blocks;
3. a few barycentre sweeps order each layer to reduce crossings;
4. x positions come from the mean of each block's neighbours, then the least-squares placement
   that keeps the layer's order and spacing (pool-adjacent-violators), so chains stay straight.
   An edge from output k of a Split or Chunk pulls its end to that port's side (output 0 leftmost),
   so the branches of a split sit side by side in port order.

Pure Python on the Graph: no Qt, easy to test, and fast for thousands of blocks.
"""

from __future__ import annotations

from types import SimpleNamespace

from .graph import CycleError, Graph

DX = 200.0
DY = 110.0


def layered_layout(graph: Graph, dx: float = DX, dy: float = DY, sweeps: int = 4) -> dict[str, tuple[float, float]]:
    if len(graph) == 0:
        return {}
    try:
        order = graph.topo_order()
    except CycleError:
        order = [n.id for n in graph]  # a file may hold a cycle: lay it out in file order
    rank = {nid: i for i, nid in enumerate(order)}
    layer: dict[str, int] = {}
    for nid in order:
        ins = [s for s in graph.inputs(nid) if rank[s] < rank[nid]]
        layer[nid] = 1 + max((layer[s] for s in ins), default=-1)

    # Graph with dummies: parents/children lists over real and dummy ids.
    parents: dict[object, list] = {nid: [] for nid in order}
    children: dict[object, list] = {nid: [] for nid in order}
    node_layer: dict[object, int] = dict(layer)
    shift: dict[tuple[object, object], float] = {}  # (parent, child) -> x offset of the child, from src's port
    dummy_count = 0
    for src, dst, port in graph.edges_with_ports:
        if rank[src] > rank[dst]:
            continue
        prev: object = src
        spec = graph.node(src).spec
        if spec.multi_output:
            n = max(spec.output_count(spec.resolve(graph.node(src).params)), port + 1)
            first = ("dummy", dummy_count) if layer[dst] > layer[src] + 1 else dst
            shift[(src, first)] = (port - (n - 1) / 2) * dx / 2
        for lv in range(layer[src] + 1, layer[dst]):
            dummy = ("dummy", dummy_count)
            dummy_count += 1
            node_layer[dummy] = lv
            parents[dummy], children[dummy] = [prev], []
            children[prev].append(dummy)
            prev = dummy
        children[prev].append(dst)
        parents[dst].append(prev)

    depth = max(node_layer.values()) + 1
    layers: list[list] = [[] for _ in range(depth)]
    for nid in order:  # real blocks in file-like order first
        layers[layer[nid]].append(nid)
    for v, lv in node_layer.items():
        if isinstance(v, tuple):
            layers[lv].append(v)

    pos_in_layer: dict[object, float] = {}

    def index_layer(lv: int) -> None:
        for i, v in enumerate(layers[lv]):
            pos_in_layer[v] = float(i)

    for lv in range(depth):
        index_layer(lv)
    for sweep in range(sweeps):
        down = sweep % 2 == 0
        rng = range(1, depth) if down else range(depth - 2, -1, -1)
        for lv in rng:
            nbrs = parents if down else children
            current = layers[lv]

            def key(v, nbrs=nbrs, down=down):
                ns = nbrs[v]
                if not ns:
                    return pos_in_layer[v]
                return sum(pos_in_layer[n] + _bias(shift, n, v, down) / dx for n in ns) / len(ns)

            layers[lv] = sorted(current, key=key)  # stable: ties keep their order
            index_layer(lv)

    # Coordinates: start packed and centred, then pull towards neighbours.
    x: dict[object, float] = {}
    for lv in range(depth):
        n = len(layers[lv])
        for i, v in enumerate(layers[lv]):
            x[v] = (i - (n - 1) / 2) * dx
    for sweep in range(2 * sweeps):
        down = sweep % 2 == 0
        rng = range(1, depth) if down else range(depth - 2, -1, -1)
        for lv in rng:
            nbrs = parents if down else children
            wanted = []
            for v in layers[lv]:
                ns = nbrs[v]
                wanted.append(sum(x[n] + _bias(shift, n, v, down) for n in ns) / len(ns) if ns else x[v])
            for v, xv in zip(layers[lv], _place(wanted, dx), strict=True):
                x[v] = xv

    real = [n.id for n in graph]
    anchor = x[order[0]]  # the first source (normally the Input) stays at x = 0
    return {nid: (round(x[nid] - anchor, 1), layer[nid] * dy) for nid in real}


def _bias(shift: dict, n: object, v: object, down: bool) -> float:
    """Where v wants to be relative to its neighbour n, for the port of the edge between them."""
    return shift.get((n, v), 0.0) if down else -shift.get((v, n), 0.0)


def _place(wanted: list[float], gap: float) -> list[float]:
    """Positions closest (least squares) to `wanted` that keep the order with at least `gap`
    between neighbours: isotonic regression on wanted[i] - i*gap, by pool-adjacent-violators."""
    blocks: list[list[float]] = []  # [sum, count]
    for i, w in enumerate(wanted):
        blocks.append([w - i * gap, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    out: list[float] = []
    for s, c in blocks:
        out.extend([s / c] * int(c))
    return [v + i * gap for i, v in enumerate(out)]


class _Items:
    """One group's view (or the top level's) as layered_layout reads a graph: its blocks ("n:" and
    the id; layered_layout takes tuples for its own dummies) and the groups directly inside it
    ("g:" and the id) as nodes, the values passing between them as edges."""

    def __init__(self, graph: Graph, ids: list[str], edges: list[tuple[str, str, int]],
                 outs: dict[str, int]):
        self.ids, self.edges_with_ports = ids, edges
        self._graph, self._outs = graph, outs
        self._in: dict[str, list[str]] = {i: [] for i in ids}
        self._out: dict[str, list[str]] = {i: [] for i in ids}
        for s, d, _ in edges:
            self._in[d].append(s)
            self._out[s].append(d)

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self):
        return (SimpleNamespace(id=i) for i in self.ids)

    def inputs(self, item: str) -> list[str]:
        return self._in[item]

    def node(self, item: str):
        if item[0] == "n":
            return self._graph.node(item[2:])
        k = self._outs.get(item[2:], 1)  # a group with several outputs spreads them like a Split
        spec = SimpleNamespace(multi_output=k > 1, output_count=lambda _resolved: k, resolve=lambda _params: {})
        return SimpleNamespace(spec=spec, params={})

    def topo_order(self) -> list[str]:
        indeg = {i: len(self._in[i]) for i in self.ids}
        ready = [i for i in reversed(self.ids) if not indeg[i]]
        order = []
        while ready:
            i = ready.pop()
            order.append(i)
            for d in reversed(self._out[i]):
                indeg[d] -= 1
                if not indeg[d]:
                    ready.append(d)
        if len(order) != len(self.ids):
            raise CycleError("cycle")
        return order


Positions = dict[str, tuple[float, float]]


def layout_by_group(graph: Graph, dx: float = DX, dy: float = DY,
                    scopes: set[str | None] | None = None) -> tuple[Positions, Positions]:
    """Positions for a graph with groups: each group's view (and the top level) laid out on its
    own, a group standing as one block in its parent's view. Returns (block positions, group
    positions); a block's position is where it sits in its own group's view. `scopes`: lay out
    only these views (None in it: the top level)."""
    from .groups import interfaces, paths

    path_of = paths(graph)
    faces = interfaces(graph)
    found: dict[str | None, list[str]] = {None: []}
    seen: set[str] = set()
    for n in graph:
        p = path_of[n.group]
        for d in range(len(p) + 1):
            key = f"g:{p[d]}" if d < len(p) else f"n:{n.id}"
            if key not in seen:
                seen.add(key)
                found.setdefault(p[d - 1] if d else None, []).append(key)
    for g in graph.groups:  # empty groups too, so each gets a place
        if f"g:{g.id}" not in seen:
            found.setdefault(g.parent, []).append(f"g:{g.id}")
    edges: dict[str | None, dict[tuple[str, str], int]] = {}
    for src, dst, port in graph.edges_with_ports:
        p, q = path_of[graph.node(dst).group], path_of[graph.node(src).group]
        c = 0
        while c < len(p) and c < len(q) and p[c] == q[c]:
            c += 1
        mine = f"g:{p[c]}" if c < len(p) else f"n:{dst}"
        theirs = f"g:{q[c]}" if c < len(q) else f"n:{src}"
        if mine != theirs:
            out_port = port if theirs[0] == "n" else faces[theirs[2:]][1].index((src, port))
            edges.setdefault(p[c - 1] if c else None, {}).setdefault((theirs, mine), out_port)
    blocks: dict[str, tuple[float, float]] = {}
    groups: dict[str, tuple[float, float]] = {}
    outs = {gid: len(face[1]) for gid, face in faces.items()}
    for scope, ids in found.items():
        if scopes is not None and scope not in scopes:
            continue
        view = _Items(graph, ids, [(s, d, k) for (s, d), k in edges.get(scope, {}).items()], outs)
        for key, pos in layered_layout(view, dx, dy).items():  # type: ignore[arg-type]
            (blocks if key[0] == "n" else groups)[key[2:]] = pos
    return blocks, groups


def scope_layout(graph: Graph, scope: str | None) -> tuple[Positions, Positions]:
    """Auto-layout of what one scope shows (Ctrl+L on the canvas): its blocks and its collapsed
    groups, each group laid out as one block. Returns new positions for the blocks and the groups."""
    return layout_by_group(graph, scopes={scope})
