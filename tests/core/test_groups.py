"""Groups in the core: the graph's group API (graph.py), the undoable commands (commands.py), the
project file (format 4, project.py), the figures a collapsed group shows and the block a
connection dropped on it goes to (groups.py), and the auto-layout of one scope (layout.py)."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnbuilder.core import commands as C
from cnnbuilder.core.architectures import ARCHITECTURES
from cnnbuilder.core.blocks import ParamError
from cnnbuilder.core.codegen import generate
from cnnbuilder.core.graph import Graph, GraphError
from cnnbuilder.core.groups import all_group_info, group_entry, group_info, interfaces
from cnnbuilder.core.layout import scope_layout
from cnnbuilder.core.project import FORMAT_VERSION, Project, ProjectError, dumps, graph_to_dict, load_project, loads
from cnnbuilder.core.shapes import analyze
from tests.fuzz import EXAMPLES, NASTY_TEXT, fuzz_settings, random_command, random_pos

from .test_group_codegen import grouped, resnet_like


def state(g: Graph) -> str:
    """Everything a file keeps of a graph, group order included (the keys of a block's params
    sorted: undoing a cleared parameter puts it back last, which reads the same)."""
    data = json.loads(dumps(Project(graph=g, name="t")))
    for n in data["nodes"]:
        n["params"] = dict(sorted(n["params"].items()))
    return json.dumps(data)


# -- figures ---------------------------------------------------------------------------------

def reference_interface(g: Graph, gid: str) -> tuple[list, list]:
    """A group's interface by its definition, one group at a time (the oracle for the one-pass
    core/groups.interfaces): inputs, the values from outside in the order the inside first reads
    them; outputs, the inside's values read outside, or, where none is, its dead ends."""
    inside = set(g.group_nodes(gid))
    order = [n for n in g.topo_order() if n in inside]
    ins = {(s, g.port(s, n)): None for n in order for s in g.inputs(n) if s not in inside}
    outs = {(n, g.port(n, d)): None for n in order for d in g.outputs(n) if d not in inside}
    return list(ins), list(outs) or [(n, 0) for n in order if not g.outputs(n)]


def assert_figures_agree(g: Graph) -> None:
    """Every group's figures equal what its blocks add up to, on any graph (errors, loose blocks)."""
    a = analyze(g)
    infos = all_group_info(g, a)
    assert set(infos) == {grp.id for grp in g.groups}
    for gid, info in infos.items():
        assert (info.inputs, info.outputs) == reference_interface(g, gid) == g.group_interface(gid)
        inside = g.group_nodes(gid)
        good = [n for n in inside if a.nodes[n].error is None]
        assert info.blocks == len(inside)
        assert (info.params, info.macs) == (sum(a.nodes[n].stats.params for n in good),
                                            sum(a.nodes[n].stats.macs for n in good))
        assert len(info.output_shapes) == len(info.outputs) == len(info.shape_texts)
        failing = [n for n in g.topo_order() if n in set(inside) and a.nodes[n].error]
        own = [n for n in failing if not a.nodes[n].waiting]
        assert info.ok == (not failing)
        assert (info.problem.node_id if info.problem else None) == (own[0] if own else None)
        first = own[0] if own else failing[0] if failing else None
        assert info.error(g) == (f"{g.node(first).label}: {a.nodes[first].error}" if first else None)


def random_groups(g: Graph, r: random.Random, tries: int = 12) -> None:
    """Group random runs of blocks (nested where they fall inside an earlier group)."""
    for _ in range(tries):
        scope = r.choice([None, *(grp.id for grp in g.groups)])
        nodes, groups = g.members(scope)
        pool = [n for n in nodes if g.node(n).type != "Input"] + groups
        if not pool:
            continue
        picked = r.sample(pool, r.randint(1, min(5, len(pool))))
        try:
            g.add_group(f"grp{len(g.groups)}", [p for p in picked if p in nodes], [p for p in picked if p in groups])
        except GraphError:
            pass  # refused: a path would leave it and come back


@given(seed=st.integers(0, 2**32), example=st.sampled_from(EXAMPLES))
@fuzz_settings(30, 600)
def test_figures_agree_with_the_definition_after_hostile_edits(seed, example):
    r = random.Random(seed)
    g = load_project(example).graph
    stack = C.UndoStack(g)
    for _ in range(r.randint(0, 8)):  # some hostile edits first: errors, loose blocks, Splits
        try:
            stack.push(random_command(g, r))
        except Exception:  # refused edits change nothing; that is the fuzz core tests' business
            pass
    random_groups(g, r)
    assert_figures_agree(g)


@fuzz_settings(40, 400)
@given(grouped())
def test_one_pass_interfaces_and_figures_equal_the_graphs_and_the_blocks(g):
    a = analyze(g)
    faces = interfaces(g)
    infos = all_group_info(g, a)
    assert set(faces) == set(infos) == {grp.id for grp in g.groups}
    assert_figures_agree(g)
    for grp in g.groups:
        assert faces[grp.id] == reference_interface(g, grp.id)
        inside = g.group_nodes(grp.id)
        info = infos[grp.id]
        assert info.blocks == len(inside)
        assert info.params == sum(a.nodes[n].stats.params for n in inside)
        assert info.macs == sum(a.nodes[n].stats.macs for n in inside)
        assert info.output_shapes == [a.nodes[b].outputs[p] for b, p in info.outputs]
        assert info.input_shapes == [a.nodes[b].outputs[p] for b, p in info.inputs]
        assert info.problem is None and info.ok
        assert group_info(g, a, grp.id) == info


def test_a_group_shows_the_first_problem_inside_and_waits_on_one_outside():
    g = resnet_like(2)
    first, second = g.groups
    conv = next(n.id for n in g if n.name == "block0_conv2")
    g.set_param(conv, "in_channels", 7)  # wrong: the block shows an error
    a = analyze(g)
    infos = all_group_info(g, a)
    assert infos[first.id].problem is not None and infos[first.id].problem.node_id == conv
    assert infos[first.id].problem.message == a.nodes[conv].error
    assert infos[second.id].problem is None and infos[second.id].waiting and not infos[second.id].ok
    assert infos[first.id].output_shapes == [None]  # the Add after it has no shape


def test_densenet_figures_match_the_analysis():
    g = ARCHITECTURES["densenet121"].build().graph
    a = analyze(g)
    infos = all_group_info(g, a)
    assert len(infos) == 66
    features = next(grp.id for grp in g.groups if grp.name == "features")
    assert infos[features].params == a.total_params - (1024 * 1000 + 1000)  # all but the classifier
    assert infos[features].output_shapes == [(1024, 7, 7)] and infos[features].input_shapes == [(3, 224, 224)]
    assert sum(i.macs for gid, i in infos.items() if g.group(gid).parent is None) == a.total_macs - 1024 * 1000
    with pytest.raises(GraphError, match="no group"):
        group_info(g, a, "nope")
    with pytest.raises(GraphError, match="no group"):
        g.group_interface("nope")
    # A dense layer reads the running concatenation once and gives out the new one.
    layer = next(grp.id for grp in g.groups if grp.name == "block1_layer1")
    assert len(infos[layer].inputs) == 1 and len(infos[layer].outputs) == 1 and infos[layer].blocks == 7


def test_group_entry_is_the_first_block_that_takes_an_input():
    g = Graph()
    x = g.add_node("Input", {"shape": [3, 8, 8]}).id
    a = g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 1}).id
    b = g.add_node("ReLU").id
    g.connect(x, a)
    g.connect(a, b)
    gid = g.add_group("pair", [a, b]).id
    assert group_entry(g, gid) is None  # both have their one input
    g.disconnect(a, b)
    assert group_entry(g, gid) == b
    g.connect(x, b)
    c = g.add_node("Add", group=gid).id
    g.connect(b, c)
    assert group_entry(g, gid) == c  # an Add always takes another


def test_scope_layout_places_the_blocks_and_groups_of_one_scope():
    g = load_project([e for e in EXAMPLES if e.name == "resnet_small.json"][0]).graph
    block = [n.id for n in g if n.name.startswith("block1_")]
    gid = g.add_group("block1", block).id
    blocks, groups = scope_layout(g, None)
    assert set(blocks) == set(g.members(None)[0]) and set(groups) == {gid}
    spots = list(blocks.values()) + list(groups.values())
    assert len(set(spots)) == len(spots)  # nothing on top of anything
    inside_blocks, inside_groups = scope_layout(g, gid)
    assert set(inside_blocks) == set(block) and not inside_groups


# -- commands --------------------------------------------------------------------------------

def test_group_and_ungroup_undo_and_redo_restore_exactly():
    g = resnet_like(3)
    for grp in list(g.groups):
        g.remove_group(grp.id)
    stack = C.UndoStack(g)
    states = [state(g)]
    blocks = [[n.id for n in g if n.name.startswith(f"block{b}_")] for b in range(3)]
    for b in range(3):
        stack.push(C.GroupBlocks(blocks[b], name=f"block{b}", cls="BasicBlock"))
        states.append(state(g))
    stack.push(C.GroupBlocks([], [grp.id for grp in g.groups[:2]], name="stage"))
    states.append(state(g))
    stack.push(C.RenameGroup(g.groups[0].id, "renamed"))
    states.append(state(g))
    stack.push(C.MoveGroups({g.groups[1].id: (10.0, 20.0)}))
    states.append(state(g))
    stack.push(C.Ungroup(g.groups[0].id))  # the first block group, listed before the others
    states.append(state(g))
    stack.push(C.remove_group(g, g.groups[-1].id))  # the stage and the blocks in it
    states.append(state(g))
    assert_undo_and_redo_walk(stack, g, states)


def assert_undo_and_redo_walk(stack: C.UndoStack, g: Graph, states: list[str]) -> None:
    """Undo all the way back, then redo all the way forward, through exactly these states."""
    for want in reversed(states[:-1]):
        assert stack.undo()
        assert state(g) == want
    for want in states[1:]:
        assert stack.redo()
        assert state(g) == want


def test_a_block_inserted_on_a_value_feeds_every_block_that_read_it():
    """What dropping a block on a line into a collapsed group does: the line stands for the value
    (one output of a block read by several blocks inside), and the new block goes on all of it."""
    g = resnet_like(2)
    b1 = next(grp.id for grp in g.groups if grp.name == "block1")
    x = next(n.id for n in g if n.name == "block0_add")
    readers = [d for d in g.outputs(x) if g.node(d).group == b1]
    assert len(readers) == 2  # block1's conv1 and its add
    before = state(g)
    order = {d: g.inputs(d).index(x) for d in readers}
    stack = C.UndoStack(g)
    macro = stack.push(C.insert_on_edge(g, x, readers[0], "ReLU", also=readers[1:], group=None))
    new = macro.children[1].node_id
    assert g.node(new).group is None and g.inputs(new) == [x]
    assert all(g.inputs(d)[order[d]] == new for d in readers) and analyze(g).ok
    assert stack.undo() and state(g) == before
    # Readers of different outputs of a Split are different values: refused, nothing changes.
    split = g.add_node("Split", {"split_size_or_sections": [2, 2]}).id
    g.connect(x, split)
    a, b = g.add_node("ReLU").id, g.add_node("ReLU").id
    g.connect(split, a, port=0)
    g.connect(split, b, port=1)
    before = state(g)
    with pytest.raises(GraphError, match="different outputs"):
        C.insert_on_edge(g, split, a, "ReLU", also=[b])
    with pytest.raises(GraphError, match="no edge"):
        C.insert_on_edge(g, x, readers[0], "ReLU", also=[a])
    assert state(g) == before
    # A free block dragged onto the line: the same, for a block that is already there.
    free = g.add_node("Identity").id
    C.UndoStack(g).push(C.splice_into_edge(g, free, x, readers[0], pos=(5.0, 5.0), also=readers[1:]))
    assert all(g.inputs(d)[order[d]] == free for d in readers) and g.inputs(free) == [x]


def test_grouping_is_refused_with_a_reason():
    g = resnet_like(2)
    for grp in list(g.groups):
        g.remove_group(grp.id)
    names = {n.name: n.id for n in g}
    with pytest.raises(GraphError, match="Input block stays at the top level"):
        g.add_group("x", [names["input1"] if "input1" in names else g.nodes[0].id])
    # block0's conv and its Add without the blocks between: a path leaves the selection and comes back.
    with pytest.raises(GraphError, match="reached from the selection through blocks outside it"):
        g.add_group("x", [names["block0_conv1"], names["block0_add"]])
    assert g.grouping_problem([], []) == "select the blocks to group"
    with pytest.raises(GraphError, match="class name must be a Python identifier"):
        g.add_group("x", [names["block0_conv1"]], cls="not an identifier")
    assert not g.groups


def test_connect_refuses_an_edge_that_leaves_a_group_and_comes_back():
    g = resnet_like(1)
    grp = g.groups[0]
    conv1 = next(n.id for n in g if n.name == "block0_conv1")
    add = next(n.id for n in g if n.name == "block0_add")
    outside = g.add_node("ReLU", {}, name="outside").id
    g.connect(conv1, outside)  # out of the group: fine, it becomes an output
    assert "back into it" in g.connection_problem(outside, add)
    with pytest.raises(GraphError, match=f"would lead out of group {grp.name} and back into it"):
        g.connect(outside, add)
    with pytest.raises(GraphError, match="back into it"):  # the same edge among many, as a file or paste makes it
        g.connect_all([(outside, add, None)])
    assert outside not in g.inputs(add)
    # Through a new block inside a group: add it inside, connect in order.
    inner = C.AddNode("ReLU", group=grp.id, node_id="inner")
    inner.redo(g)
    assert g.node("inner").group == grp.id
    with pytest.raises(GraphError, match="back into it"):
        C.Connect(outside, "inner").redo(g)


def test_an_input_never_goes_into_a_group():
    g = Graph()
    grp = g.add_group("g")
    with pytest.raises(GraphError, match="Input block stays at the top level"):
        g.add_node("Input", {"shape": [1, 4, 4]}, group=grp.id)


# -- project files ---------------------------------------------------------------------------

def test_groups_survive_save_and_load_exactly():
    g = resnet_like(3)
    inner = [grp.id for grp in g.groups]
    g.add_group("stage", groups=inner[:2], cls="Stage")
    g.add_group("empty", parent=inner[2], pos=(5.0, 6.0))
    p = Project(graph=g, name="grouped")
    text = dumps(p)
    data = json.loads(text)
    assert data["version"] == FORMAT_VERSION == 4
    assert {x["id"] for x in data["groups"]} == {grp.id for grp in g.groups}
    back = loads(text)
    assert dumps(back) == text
    assert [(x.id, x.name, x.parent, x.pos, x.cls) for x in back.graph.groups] == \
        [(x.id, x.name, x.parent, x.pos, x.cls) for x in g.groups]
    assert {n.id: n.group for n in back.graph} == {n.id: n.group for n in g}


def test_a_version_3_file_loads_with_every_block_at_the_top_level():
    g = resnet_like(1)
    data = json.loads(dumps(Project(graph=g, name="t")))
    data["version"] = 3
    del data["groups"]
    for n in data["nodes"]:
        n.pop("group", None)
    back = loads(json.dumps(data))
    assert not back.graph.groups and all(n.group is None for n in back.graph)


def _file(mutate) -> str:
    g = resnet_like(2)
    g.add_group("stage", groups=[grp.id for grp in g.groups])
    data = json.loads(dumps(Project(graph=g, name="t")))
    mutate(data)
    return json.dumps(data)


def _group(data, name):
    return next(x for x in data["groups"] if x["name"] == name)


HOSTILE = {
    "unknown parent": (lambda d: _group(d, "block0").update(parent="ghost"),
                       r"group 'g1'\.parent: no group with id"),
    "circle of parents": (lambda d: _group(d, "stage").update(parent="g1"),
                          r"\.parent: groups cannot hold each other in a circle"),
    "own parent": (lambda d: _group(d, "stage").update(parent="g3"), r"\.parent: groups cannot hold each other"),
    "duplicate ids": (lambda d: d["groups"].append(dict(d["groups"][0])), r"groups\[3\]\.id: .* listed twice"),
    "group of an Input": (lambda d: d["nodes"][0].update(group="g1"),
                          r"block 'n1': the Input block stays at the top level"),
    "block in an unknown group": (lambda d: d["nodes"][2].update(group="ghost"),
                                  r"block 'n3'\.group: no group with id"),
    "group that is not text": (lambda d: d["nodes"][2].update(group=7), r"block 'n3'\.group: no group with id"),
    "crossing edges": (lambda d: d["nodes"][3].update(group=None), r"edges\[\d+\]: .*out of group .* and back"),
    "bad class": (lambda d: _group(d, "block0").update({"class": "two words"}),
                  r"group 'g1': a group's class name must be a Python identifier"),
    "unknown field": (lambda d: _group(d, "block0").update(color="red"), r"groups\[0\]: unknown field 'color'"),
    "groups not a list": (lambda d: d.update(groups={"g1": {}}), r"field 'groups' must be a list"),
    "bad position": (lambda d: _group(d, "block0").update(pos=[float("nan"), 0]), r"group 'g1'\.pos: "),
    "bad id": (lambda d: _group(d, "block0").update(id=""), r"groups\[0\]\.id: "),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_group_entries_are_refused_with_the_field(case):
    mutate, message = HOSTILE[case]
    with pytest.raises(ProjectError, match=message):
        loads(_file(mutate), where="model.json")


def test_deep_nesting_in_a_file_is_refused():
    g = Graph()
    g.add_node("Input", {"shape": [1]})
    data = json.loads(dumps(Project(graph=g, name="t")))
    data["groups"] = [{"id": f"g{i}", "name": "x", **({"parent": f"g{i - 1}"} if i else {}), "pos": [0, 0]}
                      for i in range(40)]
    with pytest.raises(ProjectError, match="groups nest at most 32 deep"):
        loads(json.dumps(data))


# -- random edits ----------------------------------------------------------------------------

def group_command(g: Graph, r: random.Random) -> C.Command:
    """A group edit with arguments a buggy caller or a damaged clipboard could pass."""
    nodes = [n.id for n in g] or ["n1"]
    groups = [grp.id for grp in g.groups]
    some_groups = r.sample(groups, min(len(groups), r.randint(0, 2))) + (["ghost"] if r.random() < 0.1 else [])
    op = r.randrange(8)
    if op == 0 or not groups:
        scope = r.choice([None, *groups])
        members, inner = g.members(scope)
        pool = members or nodes
        picked = r.sample(pool, min(len(pool), r.randint(1, 4)))
        return C.GroupBlocks(picked, r.sample(inner, min(len(inner), r.randint(0, 1))), r.choice(NASTY_TEXT),
                             cls=r.choice(["", "", "Block", "not ok", 3, "Net"]))
    if op == 1:
        return C.Ungroup(r.choice([*groups, "ghost"]))
    if op == 2:
        return C.RenameGroup(r.choice(groups), r.choice(NASTY_TEXT))
    if op == 3:
        return C.MoveGroups({gid: random_pos(r) for gid in some_groups})
    if op == 4:
        return C.remove_group(g, r.choice(groups))
    if op == 5:
        return C.AddNode(r.choice(["ReLU", "Conv2d", "Input", "Add"]), None, None, random_pos(r),
                         group=r.choice([*groups, "ghost", None]))
    if op == 6:  # Ctrl+D of collapsed groups (and blocks): copies nested as they are
        return C.duplicate(g, r.sample(nodes, r.randint(0, 1)), r.choice([(40.0, 40.0), (1e9, 0.0)]),
                           some_groups)
    return C.GroupBlocks([], some_groups, "outer")


def check_groups(g: Graph) -> None:
    """The invariants a graph with groups keeps after any accepted edit."""
    assert g.group_problem() is None
    ids = {grp.id for grp in g.groups}
    for n in g:
        assert n.group is None or n.group in ids
        assert not (n.type == "Input" and n.group is not None)
    for grp in g.groups:
        assert grp.parent is None or grp.parent in ids
        assert len(g.group_path(grp.id)) <= 32
    a = analyze(g)
    infos = all_group_info(g, a)
    for grp in g.groups:
        assert (infos[grp.id].inputs, infos[grp.id].outputs) == reference_interface(g, grp.id)
    if a.ok:  # and a graph that works has code, with a class for each group that holds blocks
        gen = generate(g, analysis=a)
        compile(gen.code, "<generated>", "exec")
        assert set(gen.class_of) == {grp.id for grp in g.groups if infos[grp.id].blocks}


@pytest.mark.parametrize("seed", range(12))
def test_random_edits_with_groups_never_crash_and_undo_exactly(seed):
    r = random.Random(seed)
    g = resnet_like(2)
    stack = C.UndoStack(g)
    states = [state(g)]
    for _ in range(60):
        try:
            cmd = group_command(g, r) if r.random() < 0.5 else random_command(g, r)
            done = stack.push(cmd)
        except (GraphError, ParamError):
            assert state(g) == states[-1]  # a refused edit changes nothing
            continue
        check_groups(g)
        if done is not cmd:  # merged into the edit before it (a second rename of one group): one undo step
            states.pop()
        states.append(state(g))
        assert state(loads(states[-1]).graph) == states[-1]  # and what is saved loads back the same
    assert_undo_and_redo_walk(stack, g, states)


@given(st.randoms(use_true_random=False))
@fuzz_settings(20, 300)
def test_grouped_random_graphs_save_and_load(r):
    g = resnet_like(r.randint(1, 3))
    for _ in range(r.randint(0, 3)):
        try:
            C.GroupBlocks([], [grp.id for grp in r.sample(g.groups, r.randint(1, len(g.groups)))], "s").redo(g)
        except GraphError:
            pass
    text = state(g)
    assert state(loads(text).graph) == text
    assert graph_to_dict(g.copy()) == graph_to_dict(g)
