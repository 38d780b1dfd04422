import json
import os

import pytest

from cnnbuilder.core.graph import Graph
from cnnbuilder.core.project import (
    FORMAT_VERSION,
    Project,
    ProjectError,
    dumps,
    graph_to_dict,
    load_project,
    loads,
    save_project,
)


def test_round_trip_is_exact(example_path, tmp_path):
    p = load_project(example_path)
    out = tmp_path / "copy.json"
    save_project(p, out)
    q = load_project(out)
    assert graph_to_dict(q.graph) == graph_to_dict(p.graph)
    assert q.name == p.name
    assert out.read_text() == example_path.read_text()  # stable, diff-friendly output


def test_file_is_one_block_per_line(example_path):
    text = example_path.read_text()
    data = json.loads(text)
    assert data["format"] == "cnnbuilder-project" and data["version"] == FORMAT_VERSION
    for n in data["nodes"]:
        assert json.dumps(n, ensure_ascii=False) in text


def test_training_settings_are_kept(tmp_path):
    p = load_project("resources/examples/mnist_cnn.json")
    p.training = {"dataset": "shapes", "epochs": 3, "lr": 0.001}
    save_project(p, tmp_path / "t.json")
    assert load_project(tmp_path / "t.json").training == p.training


BAD = [
    (b"", "empty"),
    (b"\xff\xfe\x00garbage", "not a text file"),
    (b'{"format": "cnnbuilder-project", "version": 1, "nodes": [', "not valid JSON"),
    (b"[1, 2, 3]", "JSON object"),
    (b'{"format": "something-else", "version": 1}', "'format'"),
    (b'{"format": "cnnbuilder-project", "version": 99, "nodes": []}', "newer cnnbuilder"),
    (b'{"format": "cnnbuilder-project", "version": "1", "nodes": []}', "'version'"),
    (b'{"format": "cnnbuilder-project", "version": 1, "nodes": {}}', "'nodes' must be a list"),
    (b'{"format": "cnnbuilder-project", "version": 1, "nodes": [{"id": "a", "type": "Conv9d"}]}',
     "block 'a'.type: unknown block type 'Conv9d'"),
    (b'{"format": "cnnbuilder-project", "version": 1, "nodes": [{"id": "a", "type": "Conv2d", '
     b'"params": {"kernel_size": -3}}]}', "block 'a'.params.kernel_size: must be at least 1"),
    (b'{"format": "cnnbuilder-project", "version": 1, "nodes": [{"id": "a", "type": "Conv2d", '
     b'"params": {"kernel_size": "__import__(\'os\')"}}]}', "block 'a'.params.kernel_size"),
    (b'{"format": "cnnbuilder-project", "version": 1, "nodes": [{"id": "a", "type": "ReLU", '
     b'"params": {"evil": 1}}]}', "no parameter 'evil'"),
    (b'{"format": "cnnbuilder-project", "version": 1, "nodes": [{"id": "a", "type": "ReLU"}, '
     b'{"id": "a", "type": "ReLU"}]}', "already exists"),
    (b'{"format": "cnnbuilder-project", "version": 1, "nodes": [{"id": "a", "type": "ReLU"}], '
     b'"edges": [{"from": "a", "to": "zz"}]}', "edges[0].to: no block with id"),
    (b'{"format": "cnnbuilder-project", "version": 1, "nodes": [{"id": "a", "type": "ReLU"}, '
     b'{"id": "b", "type": "ReLU"}], "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}]}', "cycle"),
    (b'{"format": "cnnbuilder-project", "version": 1, "nodes": [{"id": "a", "type": "ReLU", "pos": [1e400, 0]}]}',
     "pos"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
]


@pytest.mark.parametrize("raw,expected", BAD, ids=[e for _, e in BAD])
def test_bad_files_give_clear_errors_naming_file_and_field(tmp_path, raw, expected):
    f = tmp_path / "bad.json"
    f.write_bytes(raw)
    with pytest.raises(ProjectError) as err:
        load_project(f)
    msg = str(err.value)
    assert msg.startswith(str(f)), msg
    assert expected in msg, msg


def test_missing_file():
    with pytest.raises(ProjectError, match="cannot open"):
        load_project("/nonexistent/model.json")


def test_loads_accepts_text_and_minimal_projects():
    p = loads('{"format": "cnnbuilder-project", "version": 1, "nodes": [{"id": "i", "type": "Input", '
              '"params": {"shape": [3, 8, 8]}}]}')
    assert len(p.graph) == 1 and p.graph.node("i").params["shape"] == (3, 8, 8)


def test_save_is_atomic(tmp_path, monkeypatch):
    good = load_project("resources/examples/mnist_cnn.json")
    target = tmp_path / "model.json"
    save_project(good, target)
    before = target.read_text()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        save_project(Project(graph=Graph(), name="other"), target)
    assert target.read_text() == before  # the old file is whole
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]  # no temp file left behind


def test_dumps_is_valid_json_for_empty_graph():
    assert json.loads(dumps(Project()))["nodes"] == []


# -- the description (format version 3) ------------------------------------------------------

def test_description_round_trips_and_is_left_out_when_empty(tmp_path):
    p = load_project("resources/examples/mnist_cnn.json")
    assert p.description == "" and "description" not in dumps(p)
    p.description = "A small CNN (1998): two convolutions, “quoted”, ünïcode."
    save_project(p, tmp_path / "d.json")
    text = (tmp_path / "d.json").read_text(encoding="utf-8")
    assert text.splitlines()[4].startswith('  "description": "A small CNN (1998)')  # after the name, one line
    assert load_project(tmp_path / "d.json").description == p.description


def test_a_version_2_file_loads_without_a_description_and_saves_as_version_3():
    data = json.loads(open("resources/examples/resnet_small.json", encoding="utf-8").read())
    data["version"] = 2
    p = loads(json.dumps(data))
    assert p.description == "" and graph_to_dict(p.graph) == {k: data[k] for k in ("nodes", "edges")}
    assert json.loads(dumps(p))["version"] == FORMAT_VERSION == 4


@pytest.mark.parametrize("value", [42, None, ["a"], {"text": "a"}, True])
def test_a_description_that_is_not_text_is_refused_naming_the_field(value):
    data = {"format": "cnnbuilder-project", "version": 3, "nodes": [], "description": value}
    with pytest.raises(ProjectError, match=r"^m\.json: field 'description' must be text"):
        loads(json.dumps(data), "m.json")


def test_a_description_is_cleaned_like_a_name():
    data = {"format": "cnnbuilder-project", "version": 3, "nodes": [],
            "description": "  evil\x1b[2J text\u202e with\nlines \ud800 " + "x" * 20_000}
    p = loads(json.dumps(data))
    assert p.description.startswith("evil [2J text  with lines \ufffd x")
    assert len(p.description) == 10_000
    assert loads(dumps(p)).description == p.description  # every character can be written back
    with pytest.raises(ProjectError, match="description must be text"):
        Project(description=b"bytes")
