import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnbuilder.core import commands as C
from cnnbuilder.core.blocks import REGISTRY, ParamError
from cnnbuilder.core.graph import UNSET, GraphError
from cnnbuilder.core.project import graph_to_dict, load_project
from cnnbuilder.core.shapes import analyze

TYPES = sorted(REGISTRY)


def random_command(g, r: random.Random):
    nodes = [n.id for n in g]
    edges = g.edges
    op = r.randrange(11)
    if op == 0 or not nodes:
        return C.AddNode(r.choice(TYPES), pos=(r.uniform(0, 500), r.uniform(0, 500)))
    if op == 1:
        return C.remove_nodes(g, r.sample(nodes, min(len(nodes), r.randint(1, 2))))
    if op == 2:
        return C.Connect(r.choice(nodes), r.choice(nodes))
    if op == 3 and edges:
        return C.Disconnect(*r.choice(edges))
    if op == 4:
        n = g.node(r.choice(nodes))
        settable = [p for p in n.spec.params if p.kind in ("int", "bool", "pair", "choice")]
        if settable:
            p = r.choice(settable)
            value = {"int": r.randint(1, 9), "bool": r.random() < 0.5, "pair": [r.randint(1, 4), r.randint(1, 4)],
                     "choice": r.choice(p.choices) if p.choices else None}[p.kind]
            if p.inferred and r.random() < 0.5:
                value = UNSET
            return C.SetParam(n.id, p.name, value)
    if op == 5:
        return C.Rename(r.choice(nodes), r.choice(["a", "conv", "stem", ""]))
    if op == 6:
        return C.Move({n: (r.uniform(0, 900), r.uniform(0, 900)) for n in r.sample(nodes, min(3, len(nodes)))})
    if op == 7 and edges:
        s, d = r.choice(edges)
        return C.insert_on_edge(g, s, d, r.choice(["ReLU", "BatchNorm2d", "Identity", "Dropout"]))
    if op == 8:
        return C.duplicate(g, r.sample(nodes, min(len(nodes), 3)))
    if op == 9:
        free = [n for n in nodes if not g.inputs(n) and not g.outputs(n)]
        if free and edges:
            return C.splice_into_edge(g, r.choice(free), *r.choice(edges), pos=(r.uniform(0, 500), 0.0))
    if op == 10:  # arrow-key nudges merge on the stack
        picked = r.sample(nodes, min(2, len(nodes)))
        return C.Move({n: (g.node(n).pos[0] + 10, g.node(n).pos[1]) for n in picked}, nudge=True)
    return C.AddNode("ReLU")


@given(seed=st.integers(0, 10**6), steps=st.integers(1, 30))
@settings(max_examples=120, deadline=None)
def test_random_edits_then_undo_all_restores_exactly(seed, steps):
    r = random.Random(seed)
    g = load_project("resources/examples/resnet_small.json").graph
    stack = C.UndoStack(g)
    original = graph_to_dict(g)
    for _ in range(steps):
        before = graph_to_dict(g)
        try:
            cmd = random_command(g, r)
            stack.push(cmd)
        except (GraphError, ParamError):
            assert graph_to_dict(g) == before  # a refused edit changes nothing
    final = graph_to_dict(g)
    while stack.undo():
        pass
    assert graph_to_dict(g) == original
    while stack.redo():
        pass
    assert graph_to_dict(g) == final
    while stack.undo():
        pass
    assert graph_to_dict(g) == original


def test_remove_restores_edges_in_order():
    g = load_project("resources/examples/inception_block.json").graph
    stack = C.UndoStack(g)
    concat = g.find("concat").id
    before = g.inputs(concat)
    stack.push(C.RemoveNode(g.find("branch3x3").id))
    assert len(g.inputs(concat)) == 3
    stack.undo()
    assert g.inputs(concat) == before


def test_insert_on_edge_keeps_input_position_and_shapes():
    g = load_project("resources/examples/inception_block.json").graph
    stack = C.UndoStack(g)
    concat = g.find("concat").id
    src = g.inputs(concat)[1]
    stack.push(C.insert_on_edge(g, src, concat, "BatchNorm2d"))
    new = g.inputs(concat)[1]
    assert g.node(new).type == "BatchNorm2d" and g.inputs(new) == [src]
    assert analyze(g).ok
    stack.undo()
    assert g.inputs(concat)[1] == src


def test_splice_puts_a_free_block_into_a_connection_in_one_step():
    g = load_project("resources/examples/inception_block.json").graph
    stack = C.UndoStack(g)
    concat = g.find("concat").id
    src = g.inputs(concat)[1]
    bn = C.AddNode("BatchNorm2d", pos=(0, 0))
    stack.push(bn)
    before = graph_to_dict(g)
    stack.push(C.splice_into_edge(g, bn.node_id, src, concat, pos=(300, 200)))
    assert g.inputs(concat)[1] == bn.node_id and g.inputs(bn.node_id) == [src]  # same input slot
    assert g.node(bn.node_id).pos == (300, 200) and analyze(g).ok
    assert stack.undo() and graph_to_dict(g) == before  # move and rewiring: one step
    # refused: a connected block, a block that takes no input, the edge's own ends, a missing edge
    with pytest.raises(GraphError, match="already connected"):
        C.splice_into_edge(g, g.inputs(concat)[0], g.inputs(src)[0], src)
    with pytest.raises(GraphError, match="its own connection"):
        C.splice_into_edge(g, src, src, concat)
    inp = C.AddNode("Input")
    stack.push(inp)
    with pytest.raises(GraphError, match="takes no inputs"):
        C.splice_into_edge(g, inp.node_id, src, concat)
    with pytest.raises(GraphError, match="no edge"):
        C.splice_into_edge(g, bn.node_id, concat, src)


def test_nudges_merge_into_one_move():
    g = load_project("resources/examples/mnist_cnn.json").graph
    stack = C.UndoStack(g)
    start = g.node("n2").pos
    for k in range(1, 4):
        stack.push(C.Move({"n2": (start[0] + 10 * k, start[1])}, nudge=True))
    stack.push(C.Move({"n3": (5, 5)}, nudge=True))  # other blocks: a step of their own
    assert g.node("n2").pos == (start[0] + 30, start[1])
    stack.undo()
    stack.undo()
    assert g.node("n2").pos == start and not stack.can_undo()


def test_set_param_merges_consecutive_edits_of_one_field():
    g = load_project("resources/examples/mnist_cnn.json").graph
    stack = C.UndoStack(g)
    conv = g.find("conv1").id
    for v in (1, 16, 32):
        stack.push(C.SetParam(conv, "out_channels", v))
    assert g.node(conv).params["out_channels"] == 32
    stack.undo()
    assert g.node(conv).params["out_channels"] == 16  # the original value, in one step
    assert not stack.can_undo()


def test_clean_state_tracks_saves():
    g = load_project("resources/examples/mnist_cnn.json").graph
    stack = C.UndoStack(g)
    assert stack.is_clean()
    stack.push(C.Move({"n2": (1, 1)}))
    assert not stack.is_clean()
    stack.undo()
    assert stack.is_clean()


def test_duplicate_copies_internal_edges_and_fresh_names():
    g = load_project("resources/examples/mnist_cnn.json").graph
    stack = C.UndoStack(g)
    ids = [g.find("conv1").id, g.find("relu1").id]
    macro = stack.push(C.duplicate(g, ids))
    a, b = macro.new_ids
    assert g.inputs(b) == [a]
    assert g.node(a).name == "conv2" or g.node(a).name.startswith("conv")
    assert g.node(a).name != "conv1"


def test_failed_macro_rolls_back():
    g = load_project("resources/examples/mnist_cnn.json").graph
    before = graph_to_dict(g)
    bad = C.Macro("bad", [C.AddNode("ReLU"), C.Connect("n1", "n2")])  # n1->n2 exists already
    with pytest.raises(GraphError):
        C.UndoStack(g).push(bad)
    assert graph_to_dict(g) == before


def test_delete_and_reconnect_joins_the_chain_in_one_step():
    g = load_project("resources/examples/mnist_cnn.json").graph
    stack = C.UndoStack(g)
    before = graph_to_dict(g)
    relu1, pool1, conv2 = (g.find(n).id for n in ("relu1", "pool1", "conv2"))
    stack.push(C.delete_and_reconnect(g, [relu1]))
    assert relu1 not in g and g.inputs(pool1) == [g.find("conv1").id]
    assert analyze(g).ok
    stack.undo()
    assert graph_to_dict(g) == before
    # Linear cannot take the feature map that Flatten turned into features: refused, graph untouched.
    with pytest.raises(GraphError, match="without flatten1, fc1 would fail: "):
        C.delete_and_reconnect(g, [g.find("flatten1").id])
    assert graph_to_dict(g) == before
    # Neighbours at once, in any order: conv1 -> conv2 directly (fc1's inferred size follows).
    stack.push(C.delete_and_reconnect(g, [pool1, relu1]))
    assert g.inputs(conv2) == [g.find("conv1").id] and analyze(g).ok


def test_delete_and_reconnect_refuses_with_reasons():
    g = load_project("resources/examples/resnet_small.json").graph
    add = next(n for n in g if n.type == "Add")
    with pytest.raises(GraphError, match="2 inputs"):
        C.delete_and_reconnect(g, [add.id])
    with pytest.raises(GraphError, match="no input"):
        C.delete_and_reconnect(g, [next(n for n in g if n.type == "Input").id])
    # A block on a residual branch whose source already feeds the Add: the join would duplicate it.
    from cnnbuilder.core.graph import Graph

    r = Graph()
    x, a, s = r.add_node("Input", {"shape": [4]}).id, r.add_node("ReLU").id, r.add_node("Add").id
    r.connect(x, a)
    r.connect(a, s)
    r.connect(x, s)
    with pytest.raises(GraphError, match="already connected"):
        C.delete_and_reconnect(r, [a])
    assert r.inputs(s) == [a, x]
    with pytest.raises(GraphError, match="select"):
        C.delete_and_reconnect(g, ["ghost"])
