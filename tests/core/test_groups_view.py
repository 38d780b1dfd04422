"""core/groups_view: what a collapsed group shows, computed for all groups of a scope in one pass,
agrees with the graph's own per-group interface; the block a connection to a group goes to; the
auto-layout of one scope."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from cnnbuilder.core.architectures import ARCHITECTURES
from cnnbuilder.core.commands import UndoStack
from cnnbuilder.core.graph import Graph, GraphError
from cnnbuilder.core.groups_view import group_entry, group_view, group_views, scope_layout
from cnnbuilder.core.project import load_project
from cnnbuilder.core.shapes import analyze
from tests.fuzz import EXAMPLES, fuzz_settings, random_command


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


def assert_views_agree(g: Graph) -> None:
    a = analyze(g)
    for scope in [None, *(grp.id for grp in g.groups)]:
        _, groups = g.members(scope)
        views = group_views(g, a, groups)
        for gid in groups:
            ins, outs = g.group_interface(gid)
            v = views[gid]
            assert (v.inputs, v.outputs) == (tuple(ins), tuple(outs))
            inside = g.group_nodes(gid)
            assert v.blocks == len(inside)
            assert v.params == sum(a.nodes[n].stats.params for n in inside if a.nodes[n].error is None)
            assert len(v.output_shapes) == len(v.outputs)
            assert (v.error is None) == all(a.nodes[n].error is None for n in inside)
            assert v == group_view(g, a, gid)


@given(seed=st.integers(0, 2**32), example=st.sampled_from(EXAMPLES))
@fuzz_settings(default=30, long=600)
def test_group_views_agree_with_the_graphs_interface(seed, example):
    r = random.Random(seed)
    g = load_project(example).graph
    stack = UndoStack(g)
    for _ in range(r.randint(0, 8)):  # some hostile edits first: errors, loose blocks, Splits
        try:
            stack.push(random_command(g, r))
        except Exception:  # refused edits change nothing; that is the fuzz core tests' business
            pass
    random_groups(g, r)
    assert_views_agree(g)


def test_densenet_grouped_per_layer_and_block():
    g = ARCHITECTURES["densenet121"].project().graph
    layers: dict[str, list[str]] = {}
    for n in g:
        if n.name.startswith("block"):
            layers.setdefault(n.name.rsplit("_", 1)[0], []).append(n.id)
    for head, nodes in layers.items():
        g.add_group(head, nodes)
    assert_views_agree(g)
    view = group_view(g, analyze(g), g.groups[0].id)
    # A dense layer reads the running concatenation once and gives out the new one.
    assert len(view.inputs) == 1 and len(view.outputs) == 1 and view.blocks == 7


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
