"""Blocks with several outputs (Split, Chunk) and the blocks MobileNet, squeeze-excite and
ShuffleNet need: edges from output port k through undo/redo, copy/paste, save/load and the code
generator; a squeeze-excite block and a ShuffleNet unit drawn in the graph compute exactly what the
hand-written torch modules compute with the same weights."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from cnnbuilder.core import commands as C
from cnnbuilder.core.codegen import build_model, generate
from cnnbuilder.core.export.onnx import onnx_missing
from cnnbuilder.core.graph import Graph, GraphError
from cnnbuilder.core.project import FORMAT_VERSION, Project, ProjectError, dumps, graph_to_dict, loads
from cnnbuilder.core.shapes import analyze, fmt_outputs

from .reference import Interpreter, copy_weights, one_thread  # noqa: F401 (autouse)


def chain(g: Graph, src: str, *blocks, port: int = 0) -> str:
    for t, p in blocks:
        n = g.add_node(t, p).id
        g.connect(src, n, port=port)
        src, port = n, 0
    return src


def shuffle_unit(channels: int = 8, hw: int = 6) -> tuple[Graph, dict[str, str]]:
    """ShuffleNetV2's stride-1 unit: chunk the channels in two, keep one half, run the other through
    1×1 conv, 3×3 depthwise conv, 1×1 conv, concatenate and shuffle."""
    g = Graph()
    x = g.add_node("Input", {"shape": [channels, hw, hw]}).id
    split = g.add_node("Chunk", {"chunks": 2}, name="split").id
    g.connect(x, split)
    half = channels // 2
    branch = chain(g, split,
                   ("Conv2d", {"out_channels": half, "kernel_size": 1, "bias": False}), ("BatchNorm2d", {}),
                   ("ReLU", {"inplace": True}),
                   ("Conv2d", {"out_channels": half, "kernel_size": 3, "padding": 1, "groups": half, "bias": False}),
                   ("BatchNorm2d", {}),
                   ("Conv2d", {"out_channels": half, "kernel_size": 1, "bias": False}), ("BatchNorm2d", {}),
                   ("ReLU", {"inplace": True}), port=1)
    cat = g.add_node("Concat", {}).id
    g.connect(split, cat, port=0)
    g.connect(branch, cat)
    shuffle = g.add_node("ChannelShuffle", {"groups": 2}).id
    g.connect(cat, shuffle)
    return g, {"split": split, "cat": cat, "branch_start": g.outputs(split)[0]}


class HandShuffleUnit(nn.Module):
    """torchvision's InvertedResidual (stride 1), written out by hand."""

    def __init__(self, channels: int):
        super().__init__()
        half = channels // 2
        self.branch2 = nn.Sequential(
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, padding=1, groups=half, bias=False), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True))

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        out = torch.cat((x1, self.branch2(x2)), dim=1)
        n, c, h, w = out.shape  # torchvision's channel_shuffle
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


def se_block(channels: int = 8, squeeze: int = 2, hw: int = 5) -> Graph:
    """Squeeze-excite (MobileNetV3 style): x * hardsigmoid(fc2(relu(fc1(pool(x))))), with Linear
    layers, so the gate is flattened and unflattened back to C×1×1."""
    g = Graph()
    x = g.add_node("Input", {"shape": [channels, hw, hw]}).id
    conv = chain(g, x, ("Conv2d", {"out_channels": channels, "kernel_size": 3, "padding": 1}), ("Hardswish", {}))
    gate = chain(g, conv, ("AdaptiveAvgPool2d", {"output_size": 1}), ("Flatten", {}),
                 ("Linear", {"out_features": squeeze}), ("ReLU", {"inplace": True}),
                 ("Linear", {"out_features": channels}), ("Hardsigmoid", {"inplace": True}), ("Unflatten", {}))
    mul = g.add_node("Mul", {}).id
    g.connect(conv, mul)
    g.connect(gate, mul)
    return g


class HandSE(nn.Module):
    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x):
        x = nn.functional.hardswish(self.conv(x))
        s = x.mean((2, 3))
        s = nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(s))))
        return x * s[:, :, None, None]


def same(model: nn.Module, hand: nn.Module, shape, train: bool = False) -> None:
    copy_weights(hand, model)
    model.train(train), hand.train(train)
    x = torch.randn(3, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(x), hand(x))


# -- the reference architectures -------------------------------------------------------------

def test_squeeze_excite_drawn_in_the_graph_equals_the_hand_written_block():
    g = se_block()
    a = analyze(g)
    assert a.ok, [p.message for p in a.problems]
    assert a.output_shape == (8, 5, 5)
    model, hand = build_model(g), HandSE(8, 2)
    assert a.total_params == sum(p.numel() for p in hand.parameters())
    same(model, hand, (8, 5, 5))
    code = generate(g).code
    assert "nn.Unflatten(1, (-1, 1, 1))" in code and "nn.Hardsigmoid(inplace=True)" in code
    assert " = x * " in code or " * x  #" in code


def test_squeeze_excite_with_1x1_convolutions_as_torchvision_writes_it():
    from torchvision.ops import SqueezeExcitation

    g = Graph()
    x = g.add_node("Input", {"shape": [16, 4, 4]}).id
    gate = chain(g, x, ("AdaptiveAvgPool2d", {"output_size": 1}), ("Conv2d", {"out_channels": 4, "kernel_size": 1}),
                 ("ReLU", {}), ("Conv2d", {"out_channels": 16, "kernel_size": 1}), ("Hardsigmoid", {}))
    mul = g.add_node("Mul", {}).id
    g.connect(gate, mul)
    g.connect(x, mul)
    hand = SqueezeExcitation(16, 4, scale_activation=nn.Hardsigmoid)
    assert analyze(g).total_params == sum(p.numel() for p in hand.parameters())
    same(build_model(g), hand, (16, 4, 4))


@pytest.mark.parametrize("train", [False, True])
def test_shufflenet_unit_drawn_in_the_graph_equals_the_hand_written_unit(train):
    g, _ = shuffle_unit()
    a = analyze(g)
    assert a.ok, [p.message for p in a.problems]
    model, hand = build_model(g), HandShuffleUnit(8)
    assert a.total_params == sum(p.numel() for p in hand.parameters())
    same(model, hand, (8, 6, 6), train)


def test_shufflenet_unit_matches_torchvisions_own_block():
    from torchvision.models.shufflenetv2 import InvertedResidual

    g, _ = shuffle_unit(16, 7)
    same(build_model(g), InvertedResidual(16, 16, 1), (16, 7, 7))


def test_mobilenet_v2_inverted_residual_with_relu6():
    from torchvision.models.mobilenetv2 import InvertedResidual

    g = Graph()
    x = g.add_node("Input", {"shape": [8, 6, 6]}).id
    body = chain(g, x, ("Conv2d", {"out_channels": 48, "kernel_size": 1, "bias": False}), ("BatchNorm2d", {}),
                 ("ReLU6", {"inplace": True}),
                 ("Conv2d", {"out_channels": 48, "kernel_size": 3, "padding": 1, "groups": 48, "bias": False}),
                 ("BatchNorm2d", {}), ("ReLU6", {"inplace": True}),
                 ("Conv2d", {"out_channels": 8, "kernel_size": 1, "bias": False}), ("BatchNorm2d", {}))
    add = g.add_node("Add", {}).id
    g.connect(x, add)
    g.connect(body, add)
    same(build_model(g), InvertedResidual(8, 8, 1, 6), (8, 6, 6))


def test_alexnet_style_lrn_and_padding_blocks():
    g = Graph()
    x = g.add_node("Input", {"shape": [3, 9, 9]}).id
    chain(g, x, ("ZeroPad2d", {"padding": [1, 2, 0, 3]}), ("Conv2d", {"out_channels": 6, "kernel_size": 3}),
          ("PReLU", {"num_parameters": 6}), ("LocalResponseNorm", {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}),
          ("Hardtanh", {"min_val": -2.0, "max_val": 2.0}), ("Mish", {}), ("ChannelShuffle", {"groups": 3}))
    hand = nn.Sequential(nn.ZeroPad2d((1, 2, 0, 3)), nn.Conv2d(3, 6, 3), nn.PReLU(6), nn.LocalResponseNorm(5, k=2.0),
                         nn.Hardtanh(-2.0, 2.0), nn.Mish(), nn.ChannelShuffle(3))
    model = build_model(g)
    assert "nn.ZeroPad2d((1, 2, 0, 3))" in generate(g).code
    assert analyze(g).output_shape == (6, 10, 10) and analyze(g).total_params == 3 * 6 * 9 + 6 + 6
    same(model, hand, (3, 9, 9))


def test_codegen_names_the_parts_and_skips_the_unused_ones():
    g, ids = shuffle_unit()
    code = generate(g).code
    assert "x, split_1 = torch.chunk(x, 2, dim=1)  # 4×6×6, 4×6×6" in code
    # A part nobody reads is unpacked into `_`.
    g = Graph()
    x = g.add_node("Input", {"shape": [6]}).id
    s = g.add_node("Split", {"split_size_or_sections": [1, 2, 3]}).id
    g.connect(x, s)
    chain(g, s, ("Linear", {"out_features": 2}), port=2)
    gen = generate(g)
    assert "_, _, x = torch.split(x, [1, 2, 3], dim=1)  # 1, 2, 3" in gen.code
    model = build_model(g).eval()
    ref = Interpreter(g).eval()
    copy_weights(model, ref)
    t = torch.randn(4, 6)
    assert torch.equal(model(t), ref(t))
    assert torch.equal(model(t), model.fc1(t[:, 3:]))


def test_inplace_after_a_part_is_written_out_of_place():
    # torch refuses an in-place change to a view made by split/chunk once gradients are tracked.
    g = Graph()
    x = g.add_node("Input", {"shape": [4, 3, 3]}).id
    c = chain(g, x, ("Conv2d", {"out_channels": 4, "kernel_size": 1}))
    s = g.add_node("Chunk", {"chunks": 2}, name="halves").id
    g.connect(c, s)
    a = chain(g, s, ("ReLU", {"inplace": True}), port=0)
    b = chain(g, s, ("Identity", {}), ("Hardswish", {"inplace": True}), port=1)
    cat = g.add_node("Concat", {}).id
    g.connect(a, cat)
    g.connect(b, cat)
    gen = generate(g)
    assert set(gen.not_in_place.values()) == {"halves's outputs are views of one tensor, which PyTorch does not let "
                                             "be overwritten"}
    assert "inplace=True" not in gen.code
    model = build_model(g).train()
    model(torch.randn(2, 4, 3, 3, requires_grad=True)).sum().backward()  # no autograd error


# -- shapes and messages ---------------------------------------------------------------------

def test_each_output_has_its_shape_and_the_block_shows_them_all():
    g = Graph()
    x = g.add_node("Input", {"shape": [10, 4, 4]}).id
    s = g.add_node("Split", {"split_size_or_sections": [3, 7]}).id
    g.connect(x, s)
    a3 = chain(g, s, ("Conv2d", {"out_channels": 5, "kernel_size": 1}), port=0)
    a7 = chain(g, s, ("BatchNorm2d", {}), port=1)
    a = analyze(g)
    assert a.nodes[s].outputs == [(3, 4, 4), (7, 4, 4)] and fmt_outputs(a.nodes[s]) == "3×4×4 | 7×4×4"
    assert a.nodes[a3].resolved["in_channels"] == 3 and a.nodes[a7].resolved["num_features"] == 7
    assert a.nodes[s].stats.memory == 10 * 4 * 4 * 4


def test_a_removed_output_that_is_still_connected_is_an_error_on_the_split():
    g, ids = shuffle_unit()
    g.set_param(ids["split"], "chunks", 1)
    a = analyze(g)
    info = a.nodes[ids["split"]]
    assert info.error == ("output 1 feeds conv1, but this Chunk has outputs 0 to 0 only: reconnect it, or change the "
                          "parameters")
    assert a.nodes[ids["branch_start"]].waiting
    g.set_param(ids["split"], "chunks", 2)
    assert analyze(g).ok


def test_a_split_cannot_be_the_models_output():
    g = Graph()
    x = g.add_node("Input", {"shape": [4]}).id
    s = g.add_node("Chunk", {}).id
    g.connect(x, s)
    assert "a model has one output, and this Chunk makes several" in analyze(g).nodes[s].error


def test_ports_the_graph_refuses():
    g, ids = shuffle_unit()
    relu = g.add_node("ReLU", {}).id
    conv = next(n.id for n in g if n.type == "Conv2d")
    assert g.connection_problem(conv, relu, 1) == "conv1 (Conv2d) has one output; there is no output 1"
    for bad in (-1, 64, 1.0, True, "1", None):
        assert "an output port is a whole number from 0 to 63" in g.connection_problem(ids["split"], relu, bad)
    assert g.connection_problem(ids["split"], ids["cat"], 1).startswith("split already feeds cat1 (from output 0)")
    with pytest.raises(GraphError, match="one output"):
        g.connect(conv, relu, port=2)
    assert g.connection_problem(ids["split"], relu, 5) is None  # may exist once chunks is raised: analysis says


# -- undo, copy/paste, files -----------------------------------------------------------------

def snapshot(g: Graph):
    return graph_to_dict(g)


def test_ports_survive_undo_redo_of_every_edit_that_touches_them():
    g, ids = shuffle_unit()
    stack = C.UndoStack(g)
    start = snapshot(g)
    split, first = ids["split"], ids["branch_start"]
    stack.push(C.Disconnect(split, first))
    stack.push(C.Connect(split, first, port=1))
    insert = stack.push(C.insert_on_edge(g, split, first, "Identity"))
    ident = insert.children[1].node_id
    assert g.port(split, ident) == 1 and g.port(ident, first) == 0
    stack.push(C.delete_and_reconnect(g, [ident]))
    assert g.port(split, first) == 1
    stack.push(C.remove_nodes(g, [split]))
    assert split not in g
    middle = snapshot(g)
    while stack.undo():
        pass
    assert snapshot(g) == start
    while stack.redo():
        pass
    assert snapshot(g) == middle
    stack.undo()  # the split's removal: both its edges come back from their ports
    assert g.port(split, first) == 1 and g.port(split, ids["cat"]) == 0 and analyze(g).ok


def test_undo_restores_a_port_that_the_params_no_longer_have():
    g, ids = shuffle_unit()
    stack = C.UndoStack(g)
    stack.push(C.SetParam(ids["split"], "chunks", 1))
    stack.push(C.Disconnect(ids["split"], ids["branch_start"]))
    stack.push(C.remove_nodes(g, [ids["cat"]]))
    for _ in range(3):
        stack.undo()
    assert g.port(ids["split"], ids["branch_start"]) == 1 and analyze(g).ok


def test_copy_paste_keeps_ports_and_old_clipboards_still_paste():
    g, ids = shuffle_unit()
    clip = json.loads(json.dumps(C.clip_of(g, [n.id for n in g if n.type != "Input"])))
    assert [ids["split"], ids["branch_start"], 1] in clip["edges"]
    assert [ids["split"], ids["cat"]] in clip["edges"]  # output 0 is written as before: a pair
    macro = C.paste(g, clip)
    C.UndoStack(g).push(macro)
    new = dict(zip([n["id"] for n in clip["nodes"]], macro.new_ids, strict=True))
    assert g.port(new[ids["split"]], new[ids["branch_start"]]) == 1
    with pytest.raises(C.ClipError, match="from_port: an output port"):
        C.paste(g, {**clip, "edges": [[ids["split"], ids["branch_start"], -1]]})
    with pytest.raises(C.ClipError, match="not pairs of block ids"):
        C.paste(g, {**clip, "edges": [[ids["split"], ids["branch_start"], 1, 2]]})


def test_files_round_trip_ports_and_version_1_files_load_unchanged():
    g, ids = shuffle_unit()
    text = dumps(Project(graph=g, name="shuffle"))
    data = json.loads(text)
    assert data["version"] == FORMAT_VERSION >= 2
    assert {"from": ids["split"], "to": ids["branch_start"], "from_port": 1} in data["edges"]
    assert {"from": ids["split"], "to": ids["cat"]} in data["edges"]
    again = loads(text).graph
    assert again.edges_with_ports == g.edges_with_ports and dumps(Project(graph=again, name="shuffle")) == text
    assert generate(again).code == generate(g).code
    # A version-1 file (no ports anywhere) reads exactly as before.
    old = json.loads((__import__("pathlib").Path("resources/examples/resnet_small.json")).read_text())
    old["version"] = 1
    v1 = loads(json.dumps(old)).graph
    assert graph_to_dict(v1) == {k: old[k] for k in ("nodes", "edges")}


@pytest.mark.parametrize("port,needle", [(-1, "from_port: an output port is a whole number"),
                                         ("1", "from_port: an output port is a whole number"),
                                         (2.5, "from_port: an output port"), (None, "from_port"),
                                         (1, None)])
def test_bad_ports_in_a_file_name_the_edge(port, needle):
    g, ids = shuffle_unit()
    data = json.loads(dumps(Project(graph=g)))
    for e in data["edges"]:
        if e.get("from_port") == 1:
            e["from_port"] = port
    if needle is None:
        assert loads(json.dumps(data)).graph.port(ids["split"], ids["branch_start"]) == 1
        return
    with pytest.raises(ProjectError, match=needle) as err:
        loads(json.dumps(data), "m.json")
    assert str(err.value).startswith("m.json: edges[")


def test_a_port_on_a_block_with_one_output_is_refused_on_load():
    data = {"format": "cnnbuilder-project", "version": 2,
            "nodes": [{"id": "i", "type": "Input", "params": {"shape": [4]}}, {"id": "r", "type": "ReLU"}],
            "edges": [{"from": "i", "to": "r", "from_port": 1}]}
    with pytest.raises(ProjectError, match=r"edges\[0\]\.from_port: i \(Input\) has one output; there is no output 1"):
        loads(json.dumps(data))


@pytest.mark.skipif(onnx_missing() is not None, reason="onnx packages not installed")
def test_new_blocks_export_to_onnx(tmp_path):
    from cnnbuilder.core.export.onnx import export_onnx

    g, ids = shuffle_unit()
    tail = chain(g, next(n.id for n in g if n.type == "ChannelShuffle"),
                 ("ZeroPad2d", {"padding": 1}), ("LocalResponseNorm", {"size": 3}), ("ReLU6", {}), ("Mish", {}))
    pool = chain(g, tail, ("AdaptiveAvgPool2d", {"output_size": 1}), ("Flatten", {}), ("Linear", {"out_features": 8}),
                 ("PReLU", {}), ("Hardsigmoid", {}), ("Unflatten", {}))
    mul = g.add_node("Mul", {}).id
    g.connect(tail, mul)
    g.connect(pool, mul)
    chain(g, mul, ("Hardswish", {}), ("Hardtanh", {}), ("Flatten", {}), ("Linear", {"out_features": 3}))
    assert analyze(g).ok
    report = export_onnx(g, tmp_path / "m.onnx")
    assert report.max_abs_diff < 1e-4


def test_feature_maps_of_a_split_show_its_first_part():
    from cnnbuilder.core.codegen import instantiate
    from cnnbuilder.core.training import featuremaps

    g = Graph()
    x = g.add_node("Input", {"shape": [4, 5, 5]}).id
    s = g.add_node("Split", {"split_size_or_sections": [1, 3]}).id
    g.connect(x, s)
    a = chain(g, s, ("Conv2d", {"out_channels": 1, "kernel_size": 1}), port=1)  # listed first: reads part 1
    b = chain(g, s, ("ReLU", {}), port=0)
    cat = g.add_node("Concat", {}).id
    g.connect(a, cat)
    g.connect(b, cat)
    gen = generate(g)
    sample = torch.randn(1, 4, 5, 5)
    maps, total, msg = featuremaps.capture(instantiate(gen), g, gen.attr_of, s, sample)
    assert total == 1 and not msg
    assert torch.equal(torch.from_numpy(maps), sample[0, :1])
