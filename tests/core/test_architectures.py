"""The famous architectures of the File ▸ New gallery (core/architectures.py) against torchvision's
own models, built with random weights (no pretrained weights offline): the same trainable parameter
count, the same MACs (torch.utils.flop_counter counts 2 FLOPs per MAC of convolutions and Linear
layers, the convention of core/stats.py), the same output shape after every block that has a
torchvision module, and, with torchvision's state_dict loaded into the generated model by the
recorded module paths, the same eval-mode outputs. CIFAR-10-sized variants are compared with
torchvision's model changed exactly as their note says (SURGERY below).

Counting and shapes run on the meta device (no memory, no arithmetic); outputs run one image."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnbuilder.core.architectures import ARCHITECTURES, CIFAR, IMAGENET, Architecture, Variant
from cnnbuilder.core.codegen import generate, instantiate
from cnnbuilder.core.project import dumps, load_project, loads
from cnnbuilder.core.shapes import analyze

torchvision = pytest.importorskip("torchvision")

ROOT = Path(__file__).resolve().parents[2]
CASES = [(a.key, v) for a in ARCHITECTURES.values() if a.torchvision for v in a.variants]
HEAVY = {"vgg16", "vgg16_bn"}  # 138 M parameters each: a few seconds to initialise and run at 224×224


def _ids(case) -> str:
    key, v = case
    return key + (f"-{v.key}" if v.key else "")


def _cifar_conv(out: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(3, out, 3, padding=1, bias=bias)


def _googlenet_stem(m: nn.Module) -> None:
    from torchvision.models.googlenet import BasicConv2d

    m.conv1 = BasicConv2d(3, 64, kernel_size=3, padding=1)
    m.maxpool1 = nn.Identity()


def _vgg_head(m: nn.Module) -> None:
    m.avgpool = nn.AdaptiveAvgPool2d(1)
    m.classifier[0] = nn.Linear(512, 4096)


def _alexnet(m: nn.Module) -> None:
    m.features[0] = _cifar_conv(64)
    m.avgpool = nn.AdaptiveAvgPool2d(1)
    m.classifier[1] = nn.Linear(256, 4096)


def _resnet(m: nn.Module) -> None:
    m.conv1, m.maxpool = _cifar_conv(64, bias=False), nn.Identity()


def _densenet(m: nn.Module) -> None:
    m.features.conv0, m.features.pool0 = _cifar_conv(64, bias=False), nn.Identity()


def _mobilenet(m: nn.Module) -> None:
    m.features[0][0] = nn.Conv2d(3, 32, 3, stride=1, padding=1, bias=False)


def _shufflenet(m: nn.Module) -> None:
    m.conv1[0], m.maxpool = _cifar_conv(24, bias=False), nn.Identity()


def _squeezenet(m: nn.Module) -> None:
    m.features[0] = _cifar_conv(96)


# What each CIFAR-sized variant changes in torchvision's model (the variant's note says the same).
SURGERY = {"alexnet": _alexnet, "vgg16": _vgg_head, "vgg16_bn": _vgg_head, "googlenet": _googlenet_stem,
           "resnet18": _resnet, "resnet50": _resnet, "squeezenet1_0": _squeezenet, "densenet121": _densenet,
           "mobilenet_v2": _mobilenet, "shufflenet_v2_x1_0": _shufflenet}


def torchvision_model(arch: Architecture, v: Variant) -> nn.Module:
    kwargs: dict = {"weights": None, "num_classes": v.classes}
    if arch.key == "googlenet":  # the eval-mode main path; init_weights=False only skips a slow initialiser
        kwargs.update(aux_logits=False, transform_input=False, init_weights=False)
    model = getattr(torchvision.models, arch.torchvision)(**kwargs)
    if v is CIFAR:
        SURGERY[arch.key](model)
    return model.eval()


@pytest.fixture(autouse=True)
def deterministic():
    torch.manual_seed(0)
    yield


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_parameters_macs_and_shapes_equal_torchvisions(case):
    key, v = case
    arch = ARCHITECTURES[key]
    built = arch.build(v)
    a = analyze(built.graph)
    assert a.ok, [p.message for p in a.problems]
    with torch.device("meta"):
        model = torchvision_model(arch, v)
    assert a.total_params == sum(p.numel() for p in model.parameters() if p.requires_grad)

    modules = dict(model.named_modules())
    seen: dict[str, list] = {}
    hooks = [modules[path].register_forward_hook(lambda m, i, o, path=path: seen.setdefault(path, []).append(o.shape))
             for path in built.torch_names.values()]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = model(torch.empty(1, *v.shape, device="meta"))
    for h in hooks:
        h.remove()
    assert counter.get_total_flops() == 2 * a.total_macs
    assert tuple(out.shape[1:]) == a.output_shape == (v.classes,)
    for nid, path in built.torch_names.items():
        assert len(seen[path]) == 1, f"{path} runs {len(seen[path])} times: not one block's work"
        assert tuple(seen[path][0][1:]) == a.nodes[nid].shape, (path, built.graph.node(nid).name)


def mapped_state_dict(arch: Architecture, v: Variant, model: nn.Module):
    """torchvision's state_dict under the generated model's keys, through the recorded module paths;
    every key on either side must be matched exactly once."""
    built = arch.build(v)
    gen = generate(built.graph)
    source = model.state_dict()
    mapped = {}
    for nid, path in built.torch_names.items():
        for k in [k for k in source if k.startswith(path + ".")]:
            mapped[f"{gen.attr_of[nid]}.{k[len(path) + 1:]}"] = source.pop(k)
    assert not source, f"torchvision keys without a block: {sorted(source)[:5]}"
    return gen, mapped


def randomize_norms(model: nn.Module) -> None:
    """Running statistics and affine weights away from 1 and 0, so a BatchNorm loaded into the
    wrong block cannot go unnoticed."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.timeout(120)) if c[0] in HEAVY else c
                                  for c in CASES], ids=_ids)
def test_outputs_equal_torchvisions_with_its_weights_loaded(case):
    key, v = case
    arch = ARCHITECTURES[key]
    reference = torchvision_model(arch, v)
    randomize_norms(reference)
    gen, weights = mapped_state_dict(arch, v, reference)
    with torch.device("meta"):  # no initialisation: every tensor comes from torchvision's model
        model = instantiate(gen)
    model.load_state_dict(weights, strict=True, assign=True)
    model.eval()
    x = torch.randn(1, *v.shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want, got = reference(x), model(x)
    assert want.abs().max() > 1e-3  # a real signal, not zeros through every layer
    if key == "shufflenet_v2_x1_0":  # x.mean([2, 3]) against AdaptiveAvgPool2d(1): the same mean, summed in
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)  # another order
    else:
        assert torch.equal(got, want), (got - want).abs().max()


def test_lenet5_equals_the_classic_module():
    arch = ARCHITECTURES["lenet5"]
    a = analyze(arch.build().graph)
    hand = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.Tanh(),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(),
                         nn.Linear(84, 10)).eval()
    assert a.total_params == sum(p.numel() for p in hand.parameters()) == 61_706
    model = instantiate(generate(arch.build().graph)).eval()
    model.load_state_dict(dict(zip(model.state_dict(), hand.state_dict().values(), strict=True)))
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x), hand(x))


def test_the_lenet5_example_is_the_lenet5_template():
    """resources/examples/lenet5.json (used by the examples, tests and docs) is what the catalogue
    builds, note included: tools/make_examples.py writes it from the catalogue."""
    text = (ROOT / "resources" / "examples" / "lenet5.json").read_text(encoding="utf-8")
    built = ARCHITECTURES["lenet5"].project()
    assert dumps(loads(text)) == dumps(built)
    assert built.description.startswith("LeNet-5 (1998")


@pytest.mark.parametrize("arch", list(ARCHITECTURES.values()), ids=lambda a: a.key)
def test_every_template_is_reproducible_named_described_and_laid_out(arch):
    for v in arch.variants:
        first, again = arch.project(v), arch.project(v)
        assert dumps(first) == dumps(again)  # same ids, names and positions on every run
        g = first.graph
        assert [n.id for n in g] == [f"n{i}" for i in range(1, len(g) + 1)]
        names = [n.name for n in g]
        assert len(set(names)) == len(names) and all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names)
        # No two blocks (or collapsed groups) on one spot in any view: each group's view is laid out on its own.
        views: dict = {}
        for n in g:
            views.setdefault(n.group, []).append(n.pos)
        for grp in g.groups:
            views.setdefault(grp.parent, []).append(grp.pos)
        for spots in views.values():
            assert len(set(spots)) == len(spots)
        # The note: one paragraph with the year, and the figures of this very variant.
        a = analyze(g)
        note = first.description
        assert "\n" not in note and str(arch.year) in note and f"{a.total_params:,} parameters" in note
        if v is CIFAR:
            assert "CIFAR-10-sized variant (3×32×32 images, 10 classes)" in note
            assert first.name == f"{arch.title} (CIFAR-10 size)"
        else:
            assert first.name == arch.title
        # It survives the file format unchanged.
        again = loads(dumps(first))
        assert again.description == note and dumps(again) == dumps(first)
        assert json.loads(dumps(first))["description"] == note


def test_the_catalogue_is_the_one_the_issue_asks_for():
    titles = [a.title for a in ARCHITECTURES.values()]
    assert titles == ["LeNet-5", "AlexNet", "VGG-16", "VGG-16-BN", "GoogLeNet", "ResNet-18", "ResNet-50",
                      "SqueezeNet 1.0", "DenseNet-121", "MobileNetV2", "ShuffleNetV2"]
    for a in ARCHITECTURES.values():
        needs_224 = a.variants[0] is IMAGENET
        assert (CIFAR in a.variants) == needs_224
    assert len(ARCHITECTURES["densenet121"].build().graph) == 428
    googlenet = ARCHITECTURES["googlenet"].project().description
    assert "aux_logits=False" in googlenet and "transform_input=False" in googlenet


def test_an_architecture_the_user_saved_loads_back(tmp_path):
    from cnnbuilder.core.project import save_project

    project = ARCHITECTURES["shufflenet_v2_x1_0"].project(CIFAR)
    save_project(project, tmp_path / "shuffle.json")
    again = load_project(tmp_path / "shuffle.json")
    assert again.description == project.description
    assert generate(again.graph).code == generate(project.graph).code


@pytest.mark.parametrize("key", ["alexnet", "vgg16", "resnet18", "resnet50"])
def test_grouped_templates_name_their_modules_as_torchvision_does(key):
    """Drawn with groups where torchvision has modules (features and classifier, layer1..4 of
    BasicBlock or Bottleneck with their downsample), the generated model's module paths are
    torchvision's: its own state_dict loads as it is."""
    arch = ARCHITECTURES[key]
    built = arch.build()
    gen = generate(built.graph)
    assert {nid: gen.attr_of[nid] for nid in built.torch_names} == built.torch_names
    with torch.device("meta"):
        model, reference = instantiate(gen), torchvision_model(arch, IMAGENET)
    assert list(model.state_dict()) == list(reference.state_dict())
    if key.startswith("resnet"):
        block = "BasicBlock" if key == "resnet18" else "Bottleneck2"  # ResNet-50's layer1.0 has a downsample
        assert type(model.layer1[-1]).__name__ == type(model.layer1[-2]).__name__ == block  # identical: one class
