"""Import of PyTorch modules: torchvision models round-trip (import -> generated code -> weights by
block id -> the same outputs), the user's own modules map onto blocks and groups, and everything
that cannot be represented is refused with the user's file and line."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st

from cnnbuilder.core.importer import ImportRefused, _finish, _request, import_in_process, parse_input
from cnnbuilder.core.project import graph_to_dict
from cnnbuilder.core.shapes import analyze
from cnnbuilder.core.training import node_weights
from tests.core.importer_helpers import regenerated, round_trip, scrambled, shape_for
from tests.fuzz import fuzz_settings

# One model of every family the blocks cover (the rest of each family is the same code at other
# widths and depths, run by the slow test below and by tools/import_coverage.py).
FAST = ["resnet18", "mobilenet_v3_small", "shufflenet_v2_x0_5", "squeezenet1_1", "densenet121", "googlenet",
        "mnasnet0_5", "efficientnet_b0", "regnet_y_400mf", "mobilenet_v2"]
SLOW = ["alexnet", "vgg11_bn", "resnet50", "inception_v3", "regnet_x_400mf", "efficientnet_v2_s", "mobilenet_v3_large",
        "shufflenet_v2_x1_0"]


def _torchvision_round_trip(name: str, tmp_path) -> tuple:
    torch.manual_seed(0)
    model = scrambled(torchvision.models.get_model(name, weights=None))
    return model, *round_trip(model, f"torchvision:{name}", shape_for(name), tmp_path)


@pytest.mark.parametrize("name", FAST)
def test_torchvision_round_trip(name, tmp_path):
    model, result, diff = _torchvision_round_trip(name, tmp_path)
    assert diff <= 1e-6, f"{name}: outputs differ by {diff}"
    a = analyze(result.project.graph)
    unused = ("aux1.", "aux2.")  # GoogLeNet's auxiliary classifiers do not run in evaluation
    assert a.total_params == sum(p.numel() for k, p in model.named_parameters() if not k.startswith(unused))
    assert result.project.training["init_weights"] == str(result.weights)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_torchvision_round_trip_more(name, tmp_path):
    model, result, diff = _torchvision_round_trip(name, tmp_path)
    assert diff <= 1e-6, f"{name}: outputs differ by {diff}"
    unused = ("AuxLogits.",)  # Inception v3's auxiliary classifier does not run in evaluation
    assert analyze(result.project.graph).total_params == sum(p.numel() for k, p in model.named_parameters()
                                                             if not k.startswith(unused))


def test_resnet18_groups_follow_the_module_tree():
    g = import_in_process("torchvision:resnet18", input_shape=(3, 64, 64)).project.graph
    groups = {gr.name: gr for gr in g.groups}
    assert {"layer1", "layer2", "layer3", "layer4"} <= set(groups)
    for k in range(1, 5):
        assert groups[f"layer{k}"].cls == ""  # an nn.Sequential: no class of its own
        assert groups[f"layer{k}"].parent is None
        for i in range(2):
            block = groups[f"layer{k}.{i}"]
            assert block.cls == "BasicBlock" and block.parent == groups[f"layer{k}"].id
    conv = next(n for n in g if n.group == groups["layer1.0"].id and n.type == "Conv2d")
    assert conv.name == "conv1"
    assert {n.name for n in g if n.group is None} == {"input", "conv1", "bn1", "relu", "maxpool", "avgpool",
                                                     "flatten", "fc"}
    assert g.find("fc").params["out_features"] == 1000
    # Each scope is laid out on its own: no two of its blocks or groups on one spot.
    for scope in [None, *(gr.id for gr in g.groups)]:
        nodes, inner = g.members(scope)
        spots = [g.node(n).pos for n in nodes] + [g.group(x).pos for x in inner]
        assert len(set(spots)) == len(spots)


def test_torchvision_defaults_and_notes():
    r = import_in_process("torchvision:squeezenet1_1", args={"num_classes": 7})
    a = analyze(r.project.graph)
    assert a.input_shape == (3, 224, 224) and a.output_shape == (7,)
    assert r.weights is None and "init_weights" not in r.project.training
    assert any("random initialisation" in n for n in r.notes)


def test_unused_submodules_are_noted():
    r = import_in_process("torchvision:googlenet", input_shape=(3, 64, 64))
    assert any(n.startswith("aux1, aux2: not used by the forward") for n in r.notes)


@pytest.mark.parametrize("name, reason", [
    ("convnext_tiny", "convnext.py:"),
    pytest.param("swin_t", "torch.permute has no block", marks=pytest.mark.slow),
    pytest.param("vit_b_16", "vision_transformer.py:", marks=pytest.mark.slow),
    pytest.param("maxvit_t", "maxvit.py:", marks=pytest.mark.slow),
])
def test_torchvision_models_without_blocks_are_refused(name, reason):
    with pytest.raises(ImportRefused) as err:
        import_in_process(f"torchvision:{name}", input_shape=None if name.startswith(("vit", "maxvit")) else
                          (3, 64, 64))
    assert reason in str(err.value)


# -- the user's own modules --------------------------------------------------------------------

ALL_OPS = """
import torch
from torch import nn
import torch.nn.functional as F


class SE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // 2, 1)
        self.fc2 = nn.Conv2d(c // 2, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class Shuffle(nn.Module):
    def forward(self, x):
        n, c, h, w = x.size()
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous()
        return x.view(n, -1, h, w)


class Net(nn.Module):
    input_shape = (3, 16, 16)

    def __init__(self, classes=5):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.se = SE(8)
        self.shuffle = Shuffle()
        self.left = nn.Conv2d(4, 4, 3, padding=1)
        self.right = nn.Conv2d(4, 4, 1)
        self.fc = nn.Linear(8 * 4 * 4, classes)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = F.relu6(x) + F.hardtanh(x, 0.0, 2.0)
        y = x.clone() if False else x
        y = torch.add(self.se(y), x)
        y += x
        y = F.max_pool2d(y, 2)
        y = self.shuffle(y)
        a, b = torch.split(y, [4, 4], dim=1)
        c, d = y.chunk(2, dim=1)
        y = torch.cat([self.left(a), self.right(b)], dim=1)
        y = torch.mul(y, F.relu(torch.cat([d, c], dim=1)).mean([2, 3], keepdim=True).sigmoid())
        y = F.interpolate(F.avg_pool2d(y, kernel_size=4), scale_factor=2.0, mode="bilinear", align_corners=False)
        y = F.dropout(y, 0.3, training=self.training)
        y = y.view(y.size(0), -1)
        y = y.reshape(y.shape[0], 8, 4, 4)
        y = torch.flatten(y, 1)
        return F.log_softmax(self.fc(y), dim=1)
"""


def _write(tmp_path, source: str, name: str = "model.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def _load_class(path, cls: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"orig_{path.stem}_{abs(hash(str(path)))}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, cls)


def test_every_supported_operation_round_trips(tmp_path):
    path = _write(tmp_path, ALL_OPS)
    torch.manual_seed(0)
    original = scrambled(_load_class(path, "Net")())
    result, diff = round_trip(original, f"{path}:Net", (3, 16, 16), tmp_path)
    assert diff <= 1e-6
    g = result.project.graph
    types = {n.type for n in g}
    assert {"ReLU", "ReLU6", "Hardtanh", "Add", "Mul", "Sigmoid", "AdaptiveAvgPool2d", "MaxPool2d", "AvgPool2d",
            "ChannelShuffle", "Split", "Chunk", "Concat", "Dropout", "Flatten", "Unflatten", "LogSoftmax",
            "Upsample"} <= types
    # cat([d, c]) reads two outputs of one Chunk: a block reads another once, so one read goes through an Identity
    assert [n.type for n in g if n.type == "Identity"] == ["Identity"]
    shuffle = next(n for n in g if n.type == "ChannelShuffle")
    assert shuffle.params == {"groups": 2}
    se = next(gr for gr in g.groups if gr.name == "se")
    assert se.cls == "SE"
    assert {n.name for n in g if n.group == se.id} >= {"fc1", "fc2", "relu", "sigmoid", "mul"}
    # edges from the parts of a Split carry their port
    split = next(n for n in g if n.type == "Split")
    assert sorted(p for s, _, p in g.edges_with_ports if s == split.id) == [0, 1]
    # laid out readably: the Split's branches side by side in port order, below it
    left, right = g.find("left"), g.find("right")
    assert left.pos[0] < right.pos[0] and left.pos[1] == right.pos[1] > split.pos[1]


def test_weights_file_is_keyed_by_block_id(tmp_path):
    path = _write(tmp_path, ALL_OPS)
    r = import_in_process(f"{path}:Net", weights_to=tmp_path / "w.pt")
    blocks = node_weights.load(r.weights)
    conv = r.project.graph.find("conv").id
    assert set(blocks[conv]) == {"weight", "bias"}
    bn = r.project.graph.find("bn").id
    assert set(blocks[bn]) == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}


def test_input_is_taken_from_a_first_linear(tmp_path):
    path = _write(tmp_path, """
        from torch import nn
        class MLP(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.Linear(12, 8), nn.GELU(), nn.Linear(8, 3))
            def forward(self, x):
                return self.body(x)
    """)
    a = analyze(import_in_process(f"{path}:MLP").project.graph)
    assert a.input_shape == (12,) and a.output_shape == (3,)


REFUSED = {
    "fft": ("""
        import torch
        from torch import nn
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(3, 4, 3)
            def forward(self, x):
                x = self.c(x)
                return torch.fft.fft2(x).real
    """, "model.py:10: torch.fft.fft2 has no block"),
    "control flow": ("""
        from torch import nn
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(3, 4, 3)
            def forward(self, x):
                if x.sum() > 0:
                    return self.c(x)
                return x
    """, "model.py:8: cannot be traced: its forward makes a Python decision"),
    "scalar add": ("""
        from torch import nn
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(3, 4, 3)
            def forward(self, x):
                return self.c(x) + 1
    """, "model.py:8: `+` adds a tensor and a number (1)"),
    "slicing": ("""
        from torch import nn
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(3, 4, 3)
            def forward(self, x):
                return self.c(x)[:, :2]
    """, "model.py:8: indexes or slices a tensor"),
    "module without a block": ("""
        from torch import nn
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv3d(3, 4, 3)
            def forward(self, x):
                return self.c(x)
    """, "model.py:8: c (Conv3d): torch.nn.Conv3d has no block"),
    "shared weights": ("""
        from torch import nn
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(3, 3, 3, padding=1)
            def forward(self, x):
                return self.c(self.c(x))
    """, "c is called more than once"),
    "own tensor": ("""
        import torch
        from torch import nn
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.scale = nn.Parameter(torch.ones(1))
                self.c = nn.Conv2d(3, 3, 3)
            def forward(self, x):
                return self.c(x) * self.scale
    """, "model.py:10: forward uses the tensor self.scale directly"),
    "two outputs": ("""
        from torch import nn
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(3, 3, 3)
            def forward(self, x):
                y = self.c(x)
                return y, x
    """, "forward returns 2 values"),
    "no input size": ("""
        from torch import nn
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(5, 3, 3)
            def forward(self, x):
                return self.c(x)
    """, "give it with --input, e.g. --input 5x32x32"),
    "forward raises": ("""
        from torch import nn
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(3, 3, 3)
            def forward(self, x):
                raise RuntimeError("not today")
    """, "model.py:8: forward raised RuntimeError: not today"),
    "init raises": ("""
        from torch import nn
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                raise ValueError("bad config")
    """, "building M() raised ValueError: bad config at model.py:6"),
    "needs arguments": ("""
        from torch import nn
        class M(nn.Module):
            def __init__(self, width, depth=2):
                super().__init__()
    """, """M needs arguments: width; pass them with --args '{"width": "..."}'"""),
    "no such class": ("""
        from torch import nn
        class Other(nn.Module):
            pass
    """, "model.py has no class 'M' (its nn.Module classes: Other)"),
    "syntax error": ("import torch\ndef broken(:\n    pass\n", "model.py:2: syntax error"),
    "fails at the size": ("""
        from torch import nn
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(3, 3, 9)
            def forward(self, x):
                return self.c(x)
    """, "model.py:8: the module fails on a 2×3×4×4 input: RuntimeError"),
    "in place then reread": ("""
        from torch import nn
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(3, 3, 1)
            def forward(self, x):
                y = self.c(x)
                y.relu_()
                return y
    """, "model.py:9: Tensor.relu_ changes a tensor in place that is read again later"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refusals_name_the_line_and_the_reason(case, tmp_path):
    source, message = REFUSED[case]
    path = _write(tmp_path, source)
    shape = None if case == "no input size" else (3, 4, 4) if case == "fails at the size" else (3, 8, 8)
    with pytest.raises(ImportRefused) as err:
        import_in_process(f"{path}:M", input_shape=shape)
    assert message in str(err.value)
    assert "Traceback" not in str(err.value)


@pytest.mark.parametrize("source, message", [
    ("torchvision:resnet19", "torchvision has no classification model 'resnet19' (did you mean resnet18"),
    ("torchvision:", "name a model"),
    ("model.py", "expected path/to/file.py:ClassName"),
    ("nowhere.py:Net", "nowhere.py: no such file"),
    ("", "name what to import"),
])
def test_bad_sources(source, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImportRefused) as err:
        import_in_process(source)
    assert message in str(err.value)


@pytest.mark.parametrize("text, shape", [("3x224x224", (3, 224, 224)), ("1×28×28", (1, 28, 28)), ("784", (784,)),
                                         (" 3, 32, 32 ", (3, 32, 32))])
def test_parse_input(text, shape):
    assert parse_input(text) == shape


@pytest.mark.parametrize("text", ["", "3x", "0x32x32", "3x32x32x2", "axb", "3x-2x2", "3x99999x2"])
def test_bad_input_is_refused(text):
    with pytest.raises(ImportRefused, match="--input"):
        parse_input(text)


@pytest.mark.parametrize("args", [[1, 2], {"a": object()}, "x"])
def test_bad_args_are_refused(args):
    with pytest.raises(ImportRefused, match="--args"):
        import_in_process("torchvision:resnet18", args=args)


# -- the parent does not trust the child's answer ------------------------------------------------

def _answer_for(tmp_path):
    path = _write(tmp_path, ALL_OPS)
    from cnnbuilder.core.importer.child import build

    req = _request(f"{path}:Net", None, None, False, None)
    return req, build(json.loads(req.to_json()), None)


@pytest.mark.parametrize("forge", ["not a dict", "no ok", "shape", "graph", "message", "weights"])
def test_a_forged_answer_is_refused_not_trusted(forge, tmp_path):
    req, answer = _answer_for(tmp_path)
    if forge == "not a dict":
        answer = ["ok"]
    elif forge == "no ok":
        del answer["ok"]
    elif forge == "shape":
        answer["output_shape"] = [2, 6]
    elif forge == "graph":
        answer["graph"]["nodes"][1]["type"] = "os.system"
    elif forge == "message":
        answer = {"ok": False, "message": "\x1b[31mred\x1b[0m" * 1000}
    elif forge == "weights":
        answer["weights"] = True  # but no weights file was written
    with pytest.raises(ImportRefused) as err:
        _finish(req, answer, tmp_path, tmp_path / "w.pt" if forge == "weights" else None)
    assert "\x1b" not in str(err.value) and len(str(err.value)) <= 2000


def test_the_answer_round_trips_through_the_project_format(tmp_path):
    req, answer = _answer_for(tmp_path)
    result = _finish(req, answer, tmp_path, None)
    assert graph_to_dict(result.project.graph)["edges"] == answer["graph"]["edges"]


# -- fuzz: random small models from supported layers import and round-trip ------------------------

LAYERS = st.sampled_from([
    "nn.Conv2d({c}, {o}, 3, padding=1)", "nn.Conv2d({c}, {o}, 1, bias=False)", "nn.BatchNorm2d({c})", "nn.ReLU()",
    "nn.ReLU6()", "nn.Hardswish()", "nn.SiLU()", "nn.MaxPool2d(2, ceil_mode=True)", "nn.AvgPool2d(3, 1, 1)",
    "nn.LeakyReLU(0.2)", "nn.GroupNorm(1, {c})", "nn.Dropout2d(0.1)", "nn.ZeroPad2d(1)", "nn.Identity()",
    "nn.Conv2d({c}, {o}, 3, stride=2, padding=1, groups={c})",
])


@st.composite
def sequential_sources(draw):
    c, lines = 3, []
    for _ in range(draw(st.integers(1, 6))):
        layer = draw(LAYERS)
        o = c if "groups" in layer else draw(st.sampled_from([2, 4, 6]))
        lines.append(layer.format(c=c, o=o))
        if "Conv2d" in layer:
            c = o
    head = draw(st.sampled_from(["nn.AdaptiveAvgPool2d(1), nn.Flatten()",
                                 "nn.AdaptiveMaxPool2d((2, 2)), nn.Flatten()"]))
    classes = draw(st.integers(1, 5))
    k = 4 if "2, 2" in head else 1
    lines += [head, f"nn.Linear({c * k}, {classes})"]
    residual = draw(st.booleans())
    body = ",\n                ".join(lines)
    return textwrap.dedent(f"""
        import torch
        from torch import nn
        class M(nn.Module):
            input_shape = (3, 12, 12)
            def __init__(self):
                super().__init__()
                self.stem = nn.Conv2d(3, 3, 3, padding=1)
                self.body = nn.Sequential(
                    {body}
                )
            def forward(self, x):
                y = self.stem(x)
                {"y = y + x" if residual else "y = torch.relu(y)"}
                return self.body(y)
    """)


@fuzz_settings(default=12, long=150)
@given(source=sequential_sources())
def test_fuzz_random_modules_round_trip(source, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    path = tmp / "model.py"
    path.write_text(source)
    torch.manual_seed(0)
    original = scrambled(_load_class(path, "M")())
    result, diff = round_trip(original, f"{path}:M", (3, 12, 12), tmp)
    assert diff <= 1e-6, source
    assert regenerated(result) is not None


@st.composite
def functional_sources(draw):
    """A forward written with functions and operators (residuals, concatenations, parts of a chunk)."""
    c, size, convs, lines = 4, 12, [], []
    for _ in range(draw(st.integers(1, 7))):
        kind = draw(st.sampled_from(["act", "residual", "cat", "chunk", "pool", "gate", "view"]))
        if kind == "act":
            lines.append(draw(st.sampled_from(["y = F.relu(y)", "y = torch.relu(y)", "y = F.relu6(y)", "y = F.silu(y)",
                                               "y = F.hardtanh(y, -0.5, 0.5)", "y = F.leaky_relu(y, 0.1)",
                                               "y = y.relu()", "y = F.relu(y, inplace=True)"])))
        elif kind == "residual":
            convs.append(f"nn.Conv2d({c}, {c}, 3, padding=1)")
            lines.append(f"y = y + self.convs[{len(convs) - 1}](y)")
        elif kind == "cat" and c <= 8:
            convs.append(f"nn.Conv2d({c}, {c}, 1)")
            lines.append(f"y = torch.cat([y, self.convs[{len(convs) - 1}](y)], dim=1)")
            c *= 2
        elif kind == "chunk" and c % 2 == 0:
            lines.append("a, b = y.chunk(2, dim=1)")
            lines.append(draw(st.sampled_from(["y = torch.cat([b, a], 1)", "y = torch.cat((F.relu(a), b), dim=1)"])))
        elif kind == "pool" and size >= 4:
            lines.append(draw(st.sampled_from(["y = F.max_pool2d(y, 2)", "y = F.avg_pool2d(y, 2, ceil_mode=True)"])))
            size = (size + 1) // 2 if "ceil" in lines[-1] else size // 2
        elif kind == "gate":
            lines.append("y = y * torch.sigmoid(F.adaptive_avg_pool2d(y, 1))")
        elif kind == "view":
            lines.append(f"y = y.view(y.size(0), -1).view(y.size(0), {c}, {size}, {size})")
    head = draw(st.sampled_from(["y = y.mean([2, 3])", "y = torch.flatten(F.adaptive_avg_pool2d(y, 1), 1)"]))
    body = "".join(f"        {line}\n" for line in [*lines, head])
    return (
        "import torch\nfrom torch import nn\nimport torch.nn.functional as F\n\n\n"
        "class M(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.stem = nn.Conv2d(3, 4, 3, padding=1)\n"
        f"        self.convs = nn.ModuleList([{', '.join(convs)}])\n"
        f"        self.fc = nn.Linear({c}, 3)\n\n"
        "    def forward(self, x):\n"
        "        y = self.stem(x)\n"
        f"{body}"
        "        return self.fc(y)\n"
    )


@fuzz_settings(default=12, long=150)
@given(source=functional_sources())
def test_fuzz_functional_forwards_round_trip(source, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    path = tmp / "model.py"
    path.write_text(source)
    torch.manual_seed(0)
    original = scrambled(_load_class(path, "M")())
    _, diff = round_trip(original, f"{path}:M", (3, 12, 12), tmp)
    assert diff <= 1e-6, source


def test_a_module_called_twice_becomes_two_groups_of_its_class(tmp_path):
    path = _write(tmp_path, """
        import torch
        from torch import nn
        import torch.nn.functional as F

        class Act(nn.Module):
            def forward(self, x):
                return F.relu(x) * torch.sigmoid(x)

        class Net(nn.Module):
            input_shape = (3, 8, 8)

            def __init__(self):
                super().__init__()
                self.act = Act()
                self.c1 = nn.Conv2d(3, 4, 3)
                self.c2 = nn.Conv2d(4, 4, 3)

            def forward(self, x):
                return self.act(self.c2(self.act(self.c1(x))))
    """)
    torch.manual_seed(0)
    result, diff = round_trip(_load_class(path, "Net")().eval(), f"{path}:Net", (3, 8, 8), tmp_path)
    assert diff <= 1e-6
    g = result.project.graph
    acts = [gr for gr in g.groups if gr.cls == "Act"]
    assert len(acts) == 2
    for gr in acts:
        assert sorted(g.node(n).type for n in g.group_nodes(gr.id)) == ["Mul", "ReLU", "Sigmoid"]


def test_weights_nothing_uses_are_named(tmp_path):
    path = _write(tmp_path, """
        import torch
        from torch import nn

        class Head(nn.Module):
            def __init__(self):
                super().__init__()
                self.temperature = nn.Parameter(torch.ones(1))  # never used by forward
                self.fc = nn.Linear(4, 2)

            def forward(self, x):
                return self.fc(x)

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Linear(3, 4)
                self.spare = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
                self.head = Head()

            def forward(self, x):
                return self.head(self.body(x))
    """)
    r = import_in_process(f"{path}:Net", weights_to=tmp_path / "w.pt")
    assert r.notes == ["spare, head.temperature: not used by the forward (in evaluation), so their weights are not "
                       "in the project"]


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                    max_leaves=12)


@pytest.fixture(scope="module")
def valid_answer(tmp_path_factory):
    return _answer_for(tmp_path_factory.mktemp("answer"))


@fuzz_settings(default=60, long=400)
@given(field=st.sampled_from(["ok", "graph", "shapes", "expect", "origins", "output_shape", "notes", "weights",
                              "name", "message", "nodes", "edges", "groups"]), value=JSON)
def test_fuzz_hostile_answers_are_refused_or_checked(valid_answer, field, value, tmp_path_factory):
    """Whatever the child's user code writes in place of an answer, the parent refuses it in one line or
    returns a project that passed every check; it never raises anything else."""
    import copy

    req, answer = valid_answer
    answer = copy.deepcopy(answer)
    if field in ("nodes", "edges", "groups"):
        answer["graph"][field] = value
    else:
        answer[field] = value
    tmp = tmp_path_factory.mktemp("hostile")
    try:
        result = _finish(req, answer, tmp, tmp / "w.pt")
    except ImportRefused as exc:
        assert "\n" not in str(exc) or len(str(exc)) <= 2000
        return
    a = analyze(result.project.graph)
    assert a.ok and list(a.output_shape) == answer["output_shape"][1:]


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def test_a_forged_weights_file_runs_no_code(tmp_path):
    import pickle

    from cnnbuilder.core.importer.child import WEIGHTS

    req, answer = _answer_for(tmp_path)
    answer["weights"] = True
    marker = tmp_path / "ran.txt"
    with open(tmp_path / WEIGHTS, "wb") as f:
        pickle.dump({"format": "cnnbuilder-weights", "version": 1, "blocks": {"n2": {"weight": _Payload(marker)}}}, f)
    answer.pop("weight_blocks", None)
    with pytest.raises(ImportRefused, match="the weights could not be carried over"):  # no block list
        _finish(req, answer, tmp_path, tmp_path / "w.pt")
    assert not marker.exists() and not (tmp_path / "w.pt").exists()
    # With a block list the file is copied as bytes (the editor's process never unpickles it); the
    # training process reads it with weights_only and refuses it, still without running it.
    answer["weight_blocks"] = ["n2"]
    r = _finish(req, answer, tmp_path, tmp_path / "w.pt")
    with pytest.raises(node_weights.WeightsError, match="not a weights file that can be read safely"):
        node_weights.load(r.weights)
    assert not marker.exists()
