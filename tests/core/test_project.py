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
