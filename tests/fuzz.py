"""Generators of hostile input shared by the fuzz tests (core, CLI and GUI): values a file, a
clipboard or a user can put anywhere, and random edit sequences with hostile arguments.

CNNB_FUZZ=long runs every fuzz test with many more examples (do it before a release)."""

from __future__ import annotations

import json
import os
import random
import string
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from cnnbuilder.core import commands as C
from cnnbuilder.core.blocks import REGISTRY
from cnnbuilder.core.graph import UNSET

LONG = os.environ.get("CNNB_FUZZ") == "long"
EXAMPLES = sorted(Path(__file__).resolve().parent.parent.joinpath("resources", "examples").glob("*.json"))
TYPES = sorted(REGISTRY)


def fuzz_settings(default: int, long: int):
    return settings(max_examples=long if LONG else default, deadline=None, derandomize=not LONG,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])  # tests make their own per example


# Names nn.Module, Python and the generated code care about, plus text that breaks terminals,
# encoders and layouts.
NASTY_TEXT = [
    "", " ", "\ud800", "a\udfffb", "\x1b[2J\x1b[H", "\x9b31m", "\u202egnp.exe", "\x00", "\n\r\t", "💥", "é" * 90,
    "training", "half", "forward", "to", "cuda", "apply", "children", "self", "torch", "nn", "F", "x", "class",
    "None", "lambda", "__init__", "__class__", "1abc", "ü", "a b", "conv1", "Conv2d", "'; import os #", "\\",
]
HUGE_INTS = [2**31, 2**63, 2**64, -(2**63) - 1, 10**400, 10**4000]
NASTY_NUMBERS = [0, -1, 1, 2, 3, 7, 64, 1 << 20, 1.5, -0.0, 1e-300, 1e300, float("inf"), float("-inf"),
                 float("nan"), *HUGE_INTS]


def deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


scalars = st.one_of(
    st.sampled_from(NASTY_NUMBERS), st.integers(-3, 70), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.none(), st.sampled_from(NASTY_TEXT), st.text(max_size=12),
    st.sampled_from(["same", "valid", "nearest", "bilinear", "zeros", "mean"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                      max_leaves=8) | st.builds(deep, st.sampled_from([50, 400, 990, 3000]))


def random_value(r: random.Random) -> Any:
    """A hostile value from a plain Random (for the edit generator, which runs from a seed)."""
    pick = r.randrange(6)
    if pick == 0:
        return r.choice(NASTY_NUMBERS)
    if pick == 1:
        return r.choice(NASTY_TEXT)
    if pick == 2:
        return [r.choice(NASTY_NUMBERS) for _ in range(r.randrange(4))]
    if pick == 3:
        return deep(r.choice([5, 200, 2000]))
    if pick == 4:
        return r.choice([True, False, None, {}, {"a": 1}, "same"])
    return r.randint(-2, 40)


def random_pos(r: random.Random) -> Any:
    if r.random() < 0.8:
        return (r.uniform(-2000, 2000), r.uniform(-2000, 2000))
    return r.choice([(float("nan"), 0.0), (float("inf"), 1.0), (1e300, 0.0), (10**400, 0), (True, 0),
                     ("1", 2), (1,), (1, 2, 3), None, (1e9, -1e9), (1e9 + 1, 0), (-0.0, 0.05)])


def random_command(g, r: random.Random) -> C.Command:
    """One edit with arguments a buggy caller, a damaged clipboard or a hostile user could pass."""
    nodes = [n.id for n in g] or ["n1"]
    edges = g.edges
    some = lambda k: r.sample(nodes, min(len(nodes), k)) + (["ghost"] if r.random() < 0.15 else [])  # noqa: E731
    op = r.randrange(14)
    if op == 0:
        params = None
        if r.random() < 0.4:
            spec = REGISTRY[r.choice(TYPES)]
            params = {p.name: random_value(r) for p in spec.params if r.random() < 0.5}
            return C.AddNode(spec.type, params, r.choice([None, *NASTY_TEXT]), random_pos(r))
        if r.random() < 0.2:  # a block with several outputs, sized to split common channel counts
            return C.AddNode(r.choice(["Chunk", "Split"]), None, None, random_pos(r))
        return C.AddNode(r.choice(TYPES), params, None, random_pos(r))
    if op == 1:
        return C.remove_nodes(g, some(r.randint(1, 3))) if r.random() < 0.9 else C.RemoveNodes(some(2))
    if op == 2:  # from output 0 mostly; Split and Chunk have more, and a hostile caller passes anything
        multi = [n for n in nodes if n in g and g.node(n).spec.multi_output]
        src = r.choice(multi) if multi and r.random() < 0.5 else r.choice(nodes)
        port = r.choice([0, 0, 1, 1, 2, 5, 63, 64, -1, True, 1.0, "1", None])
        return C.Connect(src, r.choice(nodes), port=port)
    if op == 3 and edges:
        return C.Disconnect(*r.choice(edges))
    if op == 4:
        n = g.node(r.choice(nodes)) if nodes[0] in g else None
        if n is not None and n.spec.params:
            p = r.choice(n.spec.params)
            return C.SetParam(n.id, p.name, UNSET if r.random() < 0.2 else random_value(r))
    if op == 5:
        return C.Rename(r.choice(nodes), r.choice(NASTY_TEXT))
    if op == 6:
        return C.Move({n: random_pos(r) for n in some(3)})
    if op == 7 and edges:
        s, d = r.choice(edges)
        return C.insert_on_edge(g, s, d, r.choice(["ReLU", "BatchNorm2d", "Identity", "Dropout"]))
    if op == 8:
        return C.duplicate(g, some(3))
    if op == 9:
        free = [n for n in nodes if n in g and not g.inputs(n) and not g.outputs(n)]
        if free and edges:
            return C.splice_into_edge(g, r.choice(free), *r.choice(edges), pos=random_pos(r))
    if op == 10:
        picked = some(2)
        return C.Move({n: (g.node(n).pos[0] + 10, g.node(n).pos[1]) if n in g else (0, 0) for n in picked},
                      nudge=True)
    if op == 11:
        return C.paste(g, random_clip(g, r), (r.choice([40.0, 1e9]), 40.0))
    if op == 12:  # a Split or Chunk after a block, and its parts connected on from a random output
        nid, src = g.new_id(), r.choice(nodes)
        t = r.choice(["Chunk", "Split"])
        params = {"chunks": r.choice([2, 3, 4])} if t == "Chunk" else {"split_size_or_sections": [r.randint(1, 32)
                                                                                                  for _ in range(2)]}
        steps = [C.AddNode(t, params, None, random_pos(r), node_id=nid), C.Connect(src, nid)]
        steps += [C.Connect(nid, d, port=r.randrange(4)) for d in r.sample(nodes, min(len(nodes), 2)) if d != src]
        return C.Macro("Split", steps)
    return C.AddNode("ReLU", pos=random_pos(r))


def randomly_edited(example: Path, seed: int, steps: int):
    """An example project's graph after `steps` random (possibly hostile) edits, refused ones skipped."""
    from cnnbuilder.core.blocks import ParamError
    from cnnbuilder.core.graph import GraphError
    from cnnbuilder.core.project import load_project

    r = random.Random(seed)
    g = load_project(example).graph
    stack = C.UndoStack(g)
    for _ in range(steps):
        try:
            stack.push(random_command(g, r))
        except (GraphError, ParamError):
            pass
    return g


def random_clip(g, r: random.Random) -> Any:
    """A clipboard: mostly a real copy, often damaged, sometimes not blocks at all."""
    clip = json.loads(json.dumps(C.clip_of(g, r.sample([n.id for n in g], min(len(g), 3))), allow_nan=True))
    if not clip["nodes"] or r.random() < 0.1:
        return r.choice([None, [], {}, {"nodes": "x"}, {"nodes": [1]}, "text", {"nodes": [{}]}])
    if r.random() < 0.5:
        entry = r.choice(clip["nodes"])
        key = r.choice(["id", "type", "name", "params", "pos", "extra"])
        entry[key] = random_value(r)
    if r.random() < 0.2:
        first = clip["nodes"][0]["id"]
        clip["edges"] = r.choice([[["a", "b"]], "x", [[1]], [[first] * 2], [[first, first, 1]], [["a", "b", "c", "d"]]])
    elif clip["edges"] and r.random() < 0.2:  # an output port on a copied edge, right or wrong
        r.choice(clip["edges"])[2:] = [r.choice([1, 3, 64, -1, "0", None, 1.5])]
    return clip


def mutate_json(data: Any, r: random.Random) -> Any:
    """Replace, delete or add one random place in a parsed project with a hostile value."""
    paths = []

    def walk(v, path):
        paths.append(path)
        if len(path) > 12:  # a deep value planted by an earlier round is one place, not thousands
            return
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, (*path, k))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, (*path, i))

    walk(data, ())
    path = r.choice(paths[1:] or [()])
    if not path:
        return random_value(r)
    parent = data
    for k in path[:-1]:
        parent = parent[k]
    action = r.randrange(4)
    if action == 0 and isinstance(parent, dict):
        del parent[path[-1]]
    elif action == 1 and isinstance(parent, list):
        parent.append(random_value(r) if r.random() < 0.5 else parent[path[-1]])
    elif action == 2 and isinstance(parent, dict):
        parent[r.choice(["extra", "pos", "name", "params", "type", "id", "from_port", "description",
                         *string.ascii_lowercase[:3]])] = \
            random_value(r)
    else:
        parent[path[-1]] = random_value(r)
    return data


def mutate_bytes(raw: bytes, r: random.Random) -> bytes:
    data = bytearray(raw)
    action = r.randrange(4)
    if action == 0 and data:
        for _ in range(r.randint(1, 4)):
            data[r.randrange(len(data))] = r.randrange(256)
    elif action == 1:
        del data[r.randrange(len(data) + 1):]
    elif action == 2:
        i = r.randrange(len(data) + 1)
        data[i:i] = r.choice([b"\xff\xfe", b"\x00", b"[[[[[[", b"}", b'"\\ud800"', b"1e999", b"9" * 5000, b"NaN"])
    else:
        i = r.randrange(len(data) + 1)
        data[i:i] = data[r.randrange(len(data) + 1):][:50]
    return bytes(data)


def dump_json(data: Any) -> str:
    """JSON that may hold what a damaged file holds (NaN, huge numbers); deep values as text."""
    try:
        return json.dumps(data, allow_nan=True)
    except (RecursionError, ValueError):
        return "[" * 5000 + "]" * 5000
