"""Fuzzers for the core (issue 8): random edit sequences with hostile arguments, and mutated project
files through load / validate / summary / export. What must hold whatever comes in:
- only GraphError / ParamError / ProjectError come out, with a message, never another exception;
- a refused edit changes nothing (all-or-nothing);
- analysis never raises; a valid graph always generates code;
- any graph the editor can reach saves, and loads back exactly equal;
- undo all restores the start exactly, redo all the end.
CNNB_FUZZ=long for a deeper run."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnbuilder.core import commands as C
from cnnbuilder.core.blocks import ParamError
from cnnbuilder.core.codegen import generate
from cnnbuilder.core.graph import GraphError
from cnnbuilder.core.project import Project, ProjectError, dumps, load_project, loads
from cnnbuilder.core.shapes import analyze
from tests.fuzz import EXAMPLES, dump_json, fuzz_settings, mutate_bytes, mutate_json, random_command, values

REFUSALS = (GraphError, ParamError)


def snapshot(g) -> tuple:
    """Everything that makes a graph what it is, order included."""
    return tuple((n.id, n.type, n.name, n.pos, tuple(sorted((k, repr(v)) for k, v in n.params.items())),
                  tuple((s, g.port(s, n.id)) for s in g.inputs(n.id))) for n in g)


def check_consistent(g) -> None:
    a = analyze(g)  # never raises
    if a.ok:
        generate(g, title="fuzz")
    text = dumps(Project(graph=g, name="fuzz"))
    text.encode("utf-8")  # every name can be written
    again = loads(text).graph
    assert snapshot(again) == snapshot(g), "a reachable graph must load back exactly as saved"


@given(seed=st.integers(0, 2**32), steps=st.integers(1, 25), example=st.sampled_from(EXAMPLES))
@fuzz_settings(default=60, long=2000)
def test_random_hostile_edits_are_all_or_nothing_and_always_save(seed, steps, example):
    r = random.Random(seed)
    g = load_project(example).graph
    stack = C.UndoStack(g)
    start = snapshot(g)
    for _ in range(steps):
        before = snapshot(g)
        try:
            stack.push(random_command(g, r))
        except REFUSALS as exc:
            assert str(exc)
            assert snapshot(g) == before, f"refused edit changed the graph: {exc}"
        check_consistent(g)
    end = snapshot(g)
    while stack.undo():
        pass
    assert snapshot(g) == start
    while stack.redo():
        pass
    assert snapshot(g) == end


def load_or_refuse(text: str | bytes):
    try:
        return loads(text, "fuzz.json")
    except ProjectError as exc:
        message = str(exc)
        assert message.startswith("fuzz.json") and "\n" not in message and len(message) < 400
        return None


@given(seed=st.integers(0, 2**32), example=st.sampled_from(EXAMPLES), rounds=st.integers(1, 4))
@fuzz_settings(default=400, long=20000)
def test_mutated_project_files_load_or_are_refused_with_a_message(seed, example, rounds):
    r = random.Random(seed)
    data = json.loads(example.read_text())
    for _ in range(rounds):
        data = mutate_json(data, r)
    text = dump_json(data)
    if r.random() < 0.3:
        text = mutate_bytes(text.encode(), r)
    project = load_or_refuse(text)
    if project is not None:
        check_consistent(project.graph)


@given(value=values, field=st.sampled_from(["name", "version", "format", "nodes", "edges", "training", "node.params",
                                            "node.pos", "node.name", "node.id", "node.type", "param", "edge"]))
@fuzz_settings(default=300, long=10000)
def test_hostile_values_in_every_field(value, field):
    data = json.loads(EXAMPLES[0].read_text())
    node = data["nodes"][1]
    if field.startswith("node."):
        node[field[5:]] = value
    elif field == "param":
        node["params"][next(iter(node["params"]), "x")] = value
    elif field == "edge":
        data["edges"].append(value)
    else:
        data[field] = value
    project = load_or_refuse(dump_json(data))
    if project is not None:
        check_consistent(project.graph)


@pytest.mark.parametrize("raw", [
    b'{"format": "cnnbuilder-project", "version": ' + b"9" * 5000 + b"}",  # int() digit limit
    b"[" * 100_000 + b"]" * 100_000,
    b'{"format": "cnnbuilder-project", "version": 1, "name": "\\ud800", "nodes": [], "training": '
    + b'{"a": ' * 900 + b"1" + b"}" * 901,
])
def test_pathological_documents_are_refused_or_loaded(raw):
    project = load_or_refuse(raw)
    if project is not None:
        dumps(project).encode("utf-8")


def test_non_regular_and_endless_files_are_refused(tmp_path):
    with pytest.raises(ProjectError, match="not a regular file"):
        load_project("/dev/zero")
    with pytest.raises(ProjectError, match="is a folder"):
        load_project(tmp_path)
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(65 * 1024 * 1024)  # sparse: stat says 65 MiB
    with pytest.raises(ProjectError, match="too large"):
        load_project(big)


def test_reversed_edge_list_loads_the_same_graph():
    data = json.loads((EXAMPLES[0].parent / "resnet_small.json").read_text())
    forward = loads(json.dumps(data)).graph
    data["edges"].reverse()
    backward = loads(json.dumps(data)).graph
    # A block's inputs follow the file's edge order, so compare them as sets; all else is equal.
    assert [(n.id, set(backward.inputs(n.id))) for n in backward] == [(n.id, set(forward.inputs(n.id)))
                                                                    for n in forward]


def test_cycle_in_file_names_the_edge():
    data = {"format": "cnnbuilder-project", "version": 1,
            "nodes": [{"id": "in", "type": "Input", "params": {"shape": [4]}}, {"id": "a", "type": "Add"},
                      {"id": "b", "type": "ReLU"}],
            "edges": [{"from": "in", "to": "a"}, {"from": "b", "to": "a"}, {"from": "a", "to": "b"}]}
    with pytest.raises(ProjectError, match=r"edges\[2\]: connecting a to b would create a cycle"):
        loads(json.dumps(data))


def test_move_with_an_unknown_block_moves_nothing():
    g = load_project(EXAMPLES[0]).graph
    before = snapshot(g)
    first = next(iter(g)).id
    with pytest.raises(GraphError):
        C.UndoStack(g).push(C.Move({first: (5.0, 5.0), "ghost": (1.0, 1.0)}))
    assert snapshot(g) == before
    with pytest.raises(GraphError, match="finite"):
        C.UndoStack(g).push(C.Move({first: (5.0, 5.0), next(iter(reversed(g.nodes))).id: (float("nan"), 0)}))
    assert snapshot(g) == before


def test_positions_round_trip_exactly():
    g = load_project(EXAMPLES[0]).graph
    nid = next(iter(g)).id
    for pos in [(0.04, -0.05), (123.456, 1e9), (-1e9, 7.25), (1 / 3, 2 / 3)]:
        g.move(nid, pos)
        assert loads(dumps(Project(graph=g))).graph.node(nid).pos == g.node(nid).pos


def test_hostile_names_are_cleaned_where_they_enter():
    g = load_project(EXAMPLES[0]).graph
    nid = next(iter(g)).id
    g.rename(nid, "a\ud800b\x1b[2J\u202e")
    assert g.node(nid).name == "a\ufffdb [2J"
    p = Project(graph=g, name="x\udcff\x00")
    assert p.name == "x\ufffd"
    dumps(p).encode("utf-8")


def test_huge_numbers_are_errors_on_the_block():
    from cnnbuilder.core.graph import Graph

    g = Graph()
    g.add_node("Input", {"shape": [3, 28, 28]}, node_id="in")
    with pytest.raises(ParamError, match="too large|beyond"):
        g.add_node("Upsample", {"scale_factor": 10**400})
    with pytest.raises(ParamError, match="beyond what PyTorch can hold"):
        g.add_node("Linear", {"out_features": 10**30})
    prev = "in"
    for i in range(40):
        n = g.add_node("Upsample", {"scale_factor": 1000.0 if i % 2 else 2.0})
        g.connect(prev, n.id)
        prev = n.id
    a = analyze(g)
    assert not a.ok
    assert any("more than a PyTorch tensor can hold" in p.message for p in a.root_problems)


def test_missing_pair_parameter_uses_its_canonical_default():
    from cnnbuilder.core.graph import Graph

    for t in ("MaxPool2d", "AvgPool2d", "Conv2d", "ConvTranspose2d"):
        g = Graph()
        g.add_node("Input", {"shape": [2, 8, 8]}, node_id="in")
        g.add_node(t, {}, node_id="b")
        g.connect("in", "b")
        analyze(g)  # a file that omits kernel_size: no TypeError
