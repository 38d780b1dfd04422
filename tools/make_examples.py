"""Regenerates resources/examples/*.json from readable Python descriptions (a dev tool).

    .venv/bin/python tools/make_examples.py [NAME ...]   # all, or only the named examples

LeNet-5 is also a template of the File ▸ New gallery: it comes from cnnbuilder.core.architectures,
note included."""

from __future__ import annotations

import sys
from pathlib import Path

from cnnbuilder.core.architectures import ARCHITECTURES
from cnnbuilder.core.graph import Graph
from cnnbuilder.core.project import Project, save_project
from cnnbuilder.core.shapes import analyze

OUT = Path(__file__).resolve().parent.parent / "resources" / "examples"
DX, DY = 200.0, 110.0


class Builder:
    def __init__(self, shape):
        self.g = Graph()
        self.col = 0
        self.row = 0
        self.last = self.g.add_node("Input", {"shape": list(shape)}, name="input", pos=(0, 0)).id

    def add(self, type_name, params=None, src=None, name=None, col=None, row=None):
        self.col = self.col + 1 if col is None else col
        self.row = self.row if row is None else row
        nid = self.g.add_node(type_name, params or {}, name=name, pos=(self.row * DX, self.col * DY)).id
        for s in ([self.last] if src is None else src if isinstance(src, list) else [src]):
            self.g.connect(s, nid)
        self.last = nid
        return nid

    def chain(self, *layers):
        for t, p in layers:
            self.add(t, p)
        return self.last


def mnist_cnn():
    b = Builder((1, 28, 28))
    b.chain(("Conv2d", {"out_channels": 16, "kernel_size": 5, "padding": 2}), ("ReLU", {}),
            ("MaxPool2d", {"kernel_size": 2}),
            ("Conv2d", {"out_channels": 32, "kernel_size": 5, "padding": 2}), ("ReLU", {}),
            ("MaxPool2d", {"kernel_size": 2}), ("Flatten", {}), ("Linear", {"out_features": 10}))
    return "MNIST tutorial CNN", b.g


def lenet5():
    return ARCHITECTURES["lenet5"].project()


def vgg_cifar10():
    b = Builder((3, 32, 32))
    for ch in (32, 64, 128):
        for _ in range(2):
            b.chain(("Conv2d", {"out_channels": ch, "kernel_size": 3, "padding": 1}), ("BatchNorm2d", {}),
                    ("ReLU", {}))
        b.add("MaxPool2d", {"kernel_size": 2})
    b.chain(("Flatten", {}), ("Dropout", {"p": 0.5}), ("Linear", {"out_features": 256}), ("ReLU", {}),
            ("Linear", {"out_features": 10}))
    return "VGG-style CIFAR-10 net", b.g


def resnet_small():
    b = Builder((3, 32, 32))
    stem = b.chain(("Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1, "bias": False}),
                   ("BatchNorm2d", {}), ("ReLU", {}))

    def block(x, ch, stride, tag):
        b.last = x
        col0 = b.col
        b.add("Conv2d", {"out_channels": ch, "kernel_size": 3, "stride": stride, "padding": 1, "bias": False},
              name=f"{tag}_conv1", row=1)
        b.add("BatchNorm2d", {}, name=f"{tag}_bn1")
        b.add("ReLU", {}, name=f"{tag}_relu1")
        b.add("Conv2d", {"out_channels": ch, "kernel_size": 3, "padding": 1, "bias": False}, name=f"{tag}_conv2")
        y = b.add("BatchNorm2d", {}, name=f"{tag}_bn2")
        short = x
        if stride != 1:
            b.last = x
            short = b.add("Conv2d", {"out_channels": ch, "kernel_size": 1, "stride": stride, "bias": False},
                          name=f"{tag}_down", col=col0 + 2, row=0)
            b.col = col0 + 5
        b.add("Add", {}, src=[y, short], name=f"{tag}_add", row=0)
        return b.add("ReLU", {}, name=f"{tag}_out", row=0)

    x = block(stem, 16, 1, "block1")
    x = block(x, 32, 2, "block2")
    b.last = x
    b.chain(("AdaptiveAvgPool2d", {"output_size": 1}), ("Flatten", {}), ("Linear", {"out_features": 10}))
    return "Small ResNet", b.g


def inception():
    b = Builder((3, 32, 32))
    stem = b.chain(("Conv2d", {"out_channels": 32, "kernel_size": 3, "padding": 1}), ("ReLU", {}))
    c0 = b.col
    b1 = b.add("Conv2d", {"out_channels": 16, "kernel_size": 1}, src=stem, name="branch1x1", col=c0 + 1, row=-1)
    b.add("Conv2d", {"out_channels": 16, "kernel_size": 1}, src=stem, name="branch3x3_reduce", col=c0 + 1, row=0)
    b3 = b.add("Conv2d", {"out_channels": 24, "kernel_size": 3, "padding": 1}, name="branch3x3")
    b.add("Conv2d", {"out_channels": 8, "kernel_size": 1}, src=stem, name="branch5x5_reduce", col=c0 + 1, row=1)
    b5 = b.add("Conv2d", {"out_channels": 8, "kernel_size": 5, "padding": 2}, name="branch5x5")
    b.add("MaxPool2d", {"kernel_size": 3, "stride": 1, "padding": 1}, src=stem, name="branch_pool", col=c0 + 1,
          row=2)
    bp = b.add("Conv2d", {"out_channels": 8, "kernel_size": 1}, name="branch_pool_proj")
    b.add("Concat", {}, src=[b1, b3, b5, bp], name="concat", col=c0 + 3, row=0)
    b.chain(("ReLU", {}), ("AdaptiveAvgPool2d", {"output_size": 1}), ("Flatten", {}),
            ("Linear", {"out_features": 10}))
    return "Inception-style block", b.g


def elu_features():
    b = Builder((3, 64, 64))
    for ch in (32, 64, 128):
        b.chain(("Conv2d", {"out_channels": ch, "kernel_size": 3, "padding": 1}), ("ELU", {}),
                ("MaxPool2d", {"kernel_size": 2}))
    b.chain(("AdaptiveAvgPool2d", {"output_size": 1}), ("Flatten", {}), ("Linear", {"out_features": 10}))
    return "ELU feature extractor", b.g


EXAMPLES = {"mnist_cnn": mnist_cnn, "lenet5": lenet5, "vgg_cifar10": vgg_cifar10, "resnet_small": resnet_small,
            "inception_block": inception, "elu_features": elu_features}

if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    wanted = sys.argv[1:] or list(EXAMPLES)
    for stem in wanted:
        made = EXAMPLES[stem]()
        project = made if isinstance(made, Project) else Project(graph=made[1], name=made[0])
        a = analyze(project.graph)
        assert a.ok, (stem, [p.message for p in a.problems])
        save_project(project, OUT / f"{stem}.json")
        print(f"{stem}: {len(project.graph)} blocks, {a.total_params:,} params, output {a.output_shape}")
