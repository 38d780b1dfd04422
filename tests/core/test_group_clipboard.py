"""Copy, paste and duplicate of collapsed groups (core/commands.py clip_of, parse_clip, paste): the
clip carries the groups, nested, and a paste makes them again with fresh ids in the scope it lands
in, in one undo step; a clipboard's groups are checked by the same rules as a project file's."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnbuilder.core import commands as C
from cnnbuilder.core.codegen import generate
from cnnbuilder.core.graph import Graph, GraphError
from cnnbuilder.core.shapes import analyze
from tests.fuzz import fuzz_settings, mutate_json

from .test_group_codegen import resnet_like
from .test_groups import check_groups, state


def nested() -> tuple[Graph, str, str]:
    """resnet_like(3) with block1 and block2 in a stage: (graph, the stage, block1's group)."""
    g = resnet_like(3)
    b1, b2 = (grp.id for grp in g.groups if grp.name in ("block1", "block2"))
    stage = g.add_group("stage", groups=[b1, b2], cls="Stage").id
    return g, stage, b1


def shape_of(g: Graph, gid: str) -> tuple:
    """A group's contents with ids left out: block types and params in order, the nesting as names
    and classes, and the edges among them as positions."""
    inside = g.group_nodes(gid)
    at = {n: i for i, n in enumerate(inside)}
    groups = [grp for grp in g.groups if gid in g.group_path(grp.id) and grp.id != gid]
    where = {grp.id: i for i, grp in enumerate(groups)}
    return ([(g.node(n).type, sorted(g.node(n).params.items()), where.get(g.node(n).group)) for n in inside],
            [(grp.name, grp.cls, where.get(grp.parent)) for grp in groups],
            sorted((at[s], at[d], p) for s, d, p in g.edges_with_ports if s in at and d in at))


def test_a_copied_group_pastes_as_the_same_groups_with_fresh_ids_in_one_undo_step():
    g, stage, b1 = nested()
    before = state(g)
    clip = json.loads(json.dumps(C.clip_of(g, [], [stage])))  # only the group selected
    assert {e["id"] for e in clip["groups"]} == {grp.id for grp in g.groups if stage in g.group_path(grp.id)}
    assert len(clip["nodes"]) == len(g.group_nodes(stage))
    assert "parent" not in next(e for e in clip["groups"] if e["id"] == stage)  # it lands where it is pasted
    stack = C.UndoStack(g)
    macro = stack.push(C.paste(g, clip))
    assert len(stack._done) == 1 and macro.text == "Paste"
    (copy,) = macro.new_group_ids
    assert copy not in {stage, b1} and g.group(copy).parent is None
    assert g.group(copy).name == "stage2" and g.group(copy).cls == "Stage"  # a fresh name, the same class
    assert shape_of(g, copy) == shape_of(g, stage)
    assert set(macro.new_ids) == set(g.group_nodes(copy)) and not macro.shown_ids
    inner = [grp for grp in g.groups if grp.parent == copy]
    assert [grp.name for grp in inner] == ["block1", "block2"]  # nested names stay: they are the parent's
    check_groups(g)
    assert stack.undo() and state(g) == before
    assert stack.redo() and g.group(copy).parent is None and shape_of(g, copy) == shape_of(g, stage)


def test_paste_lands_in_the_open_group_and_loose_blocks_come_along():
    g, stage, b1 = nested()
    b0 = next(grp.id for grp in g.groups if grp.name == "block0")
    stem = next(n.id for n in g if n.name == "stem")
    clip = C.clip_of(g, [stem], [b0])
    macro = C.paste(g, clip, group=stage)
    C.UndoStack(g).push(macro)
    (copy,) = macro.new_group_ids
    assert g.group(copy).parent == stage and shape_of(g, copy) == shape_of(g, b0)
    (loose,) = macro.shown_ids
    assert g.node(loose).group == stage and g.node(loose).type == "Conv2d"
    assert g.outputs(loose) and all(g.node(d).group == copy for d in g.outputs(loose))  # the edge into it came too
    # Duplicate keeps the copies where the originals are.
    dup = C.UndoStack(g).push(C.duplicate(g, [], group_ids=[b1]))
    assert g.group(dup.new_group_ids[0]).parent == stage


def test_old_clipboards_without_groups_still_paste():
    g = resnet_like(1)
    old = {"nodes": [{"id": "a", "type": "ReLU", "name": "r", "params": {}, "pos": [0, 0]},
                     {"id": "b", "type": "Dropout", "name": "", "params": {}, "pos": [0, 100]}],
           "edges": [["a", "b"]]}
    macro = C.UndoStack(g).push(C.paste(g, old, group=g.groups[0].id))
    assert all(g.node(n).group == g.groups[0].id for n in macro.new_ids) and not macro.new_group_ids
    assert C.clip_of(g, macro.new_ids).keys() == {"nodes", "edges"}  # blocks alone: the clip reads as before


def test_a_pasted_group_is_the_same_class_in_the_code():
    g = resnet_like(2)
    b0 = g.groups[0].id
    stack = C.UndoStack(g)
    macro = stack.push(C.paste(g, C.clip_of(g, [], [b0])))
    (copy,) = macro.new_group_ids
    assert g.group_interface(copy)[0] == []  # pasted on its own: nothing from outside yet
    # Put the copy in the chain after block1: its add -> the copy's conv1 and add -> the head.
    last = next(n.id for n in g if n.name == "block1_add")
    (head,) = g.outputs(last)
    conv1 = next(n for n in g.group_nodes(copy) if g.node(n).type == "Conv2d" and not g.inputs(n))
    add = next(n for n in g.group_nodes(copy) if g.node(n).type == "Add")
    stack.push(C.Macro("wire", [C.Disconnect(last, head), C.Connect(last, conv1), C.Connect(last, add),
                                C.Connect(add, head)]))
    assert analyze(g).ok
    gen = generate(g)
    assert gen.class_of[copy] == gen.class_of[b0] == "BasicBlock"
    assert gen.code.count("BasicBlock()") == 3


BAD_GROUPS = [
    ("x", "field 'groups' must be a list"),
    ([1], r"groups\[0\]: expected an object"),
    ([{"id": "g1", "name": "a", "pos": [0, 0], "colour": 1}], "unknown field"),
    ([{"id": "", "name": "a"}], r"groups\[0\]\.id: a block id must be"),
    ([{"id": "g1"}, {"id": "g1"}], "listed twice"),
    ([{"id": "g1", "parent": "g2"}, {"id": "g2", "parent": "g1"}], "in a circle"),
    ([{"id": "g1", "parent": "ghost"}], "no group with id"),
    ([{"id": "g1", "class": "not ok"}], "Python identifier"),
    ([{"id": "g1", "name": 7}], "name: expected text"),
    ([{"id": "g1", "pos": ["a", 0]}], "pos"),
    ([{"id": f"g{k}", **({"parent": f"g{k - 1}"} if k else {})} for k in range(40)], "nest at most"),
]


@pytest.mark.parametrize("groups,needle", BAD_GROUPS)
def test_hostile_clipboard_groups_are_refused_with_a_message(groups, needle):
    g = resnet_like(1)
    before = state(g)
    clip = C.clip_of(g, [n.id for n in g if n.type != "Input"])
    clip["groups"] = groups
    with pytest.raises(C.ClipError, match=needle):
        C.paste(g, clip)
    assert state(g) == before


def test_clipboard_groups_obey_the_project_rules_on_blocks():
    g = resnet_like(1)
    clip = C.clip_of(g, [n.id for n in g])
    clip["groups"] = [{"id": "g1", "name": "in"}]
    first = next(e for e in clip["nodes"] if e["type"] == "Input")
    first["group"] = "g1"
    with pytest.raises(C.ClipError, match="Input"):
        C.paste(g, clip)
    first.pop("group")
    clip["nodes"][2]["group"] = "ghost"
    with pytest.raises(C.ClipError, match="group: no group with id"):
        C.paste(g, clip)
    # A path that leaves a group and comes back into it: not one module.
    clip["nodes"][2]["group"] = "g1"
    clip["nodes"][4]["group"] = "g1"
    with pytest.raises(C.ClipError, match="would lead out of group in and back into it"):
        C.paste(g, clip)


@given(seed=st.integers(0, 2**32))
@fuzz_settings(40, 600)
def test_damaged_group_clipboards_paste_or_say_why(seed):
    r = random.Random(seed)
    g, stage, b1 = nested()
    clip = json.loads(json.dumps(C.clip_of(g, r.sample([n.id for n in g], 2), r.sample([stage, b1], 1))))
    for _ in range(r.choice([0, 1, 1, 2, 3])):  # an intact clip now and then: pasted into any scope
        clip = mutate_json(clip, r)
    before = state(g)
    stack = C.UndoStack(g)
    try:
        stack.push(C.paste(g, clip, group=r.choice([None, stage, b1])))
    except C.ClipError as exc:
        assert str(exc) and "Traceback" not in str(exc)
        assert state(g) == before
        return
    except GraphError:  # refused by the graph while pasting (e.g. nested too deep there): nothing changed
        assert state(g) == before
        return
    check_groups(g)
    assert stack.undo() and state(g) == before
