"""Famous CNN architectures, built as cnnbuilder graphs: the File ▸ New gallery's templates.

Each architecture is written here once, in Python, and turned into a project on demand (blocks
in a fixed order, so ids n1, n2, ... are the same on every run; readable names such as
layer1_0_conv1; laid out by the auto-layout). That takes about 30 ms for the 428 blocks of
DenseNet-121, so nothing is shipped as JSON but LeNet-5, which is also the example
resources/examples/lenet5.json (tools/make_examples.py writes it from here).

Every block that does the work of a torchvision module records that module's path
(`Built.torch_names`), so torchvision's state_dict maps onto the generated model through each
block's module path (`Generated.attr_of`): the tests load it and compare outputs, parameters, MACs
and shapes with torchvision's own model.

Where torchvision writes a module of its own (ResNet's BasicBlock and Bottleneck, DenseNet's dense
layers, blocks and transitions, GoogLeNet's Inception, MobileNetV2's and ShuffleNetV2's
InvertedResidual, SqueezeNet's Fire, AlexNet's and VGG's features and classifier), the template
draws it as a group of that class name: collapsed on the canvas, one class in the generated code,
shared by the groups that are identical.

An architecture that needs 224×224 images also has a CIFAR-10-sized variant (3×32×32, 10 classes)
that changes only the stem (and, for AlexNet and VGG, the pooling before the classifier), so small
images are not shrunk to nothing; its note says exactly what changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .blocks import fmt_shape
from .graph import Graph
from .layout import layered_layout, layout_by_group
from .project import Project
from .shapes import analyze
from .stats import human


@dataclass(frozen=True)
class Variant:
    key: str  # "" for the published size, else the file-name suffix ("cifar")
    label: str  # what the gallery's size choice shows
    shape: tuple[int, int, int]
    classes: int


IMAGENET = Variant("", "3×224×224, 1000 classes (ImageNet, as published)", (3, 224, 224), 1000)
CIFAR = Variant("cifar", "3×32×32, 10 classes (CIFAR-10 size)", (3, 32, 32), 10)
MNIST = Variant("", "1×28×28, 10 classes (MNIST)", (1, 28, 28), 10)


@dataclass
class Built:
    graph: Graph
    torch_names: dict[str, str] = field(default_factory=dict)  # node id -> path of the torchvision module


class _Net:
    """A graph under construction: each block is added after the ones it reads, in the order the
    model computes them, so the ids (n1, n2, ...) and the generated code follow the architecture."""

    def __init__(self, shape: tuple[int, ...]):
        self.built = Built(Graph())
        self.g = self.built.graph
        self.input = self.g.add_node("Input", {"shape": list(shape)}, name="input").id
        self._open: list[tuple[list[str], list[str]]] = []  # the groups being drawn: (blocks, groups) in each

    @contextmanager
    def group(self, name: str, cls: str = "") -> Iterator[None]:
        """The blocks added inside become a group (inside the group open around it, if any)."""
        frame: tuple[list[str], list[str]] = ([], [])
        self._open.append(frame)
        try:
            yield
        finally:
            self._open.pop()
        if frame[0] or frame[1]:
            gid = self.g.add_group(name, frame[0], frame[1], cls=cls).id
            if self._open:
                self._open[-1][1].append(gid)

    def add(self, type_name: str, params: dict[str, Any], name: str, src: str | list[str],
            tv: str | None = None, port: int = 0) -> str:
        nid = self.g.add_node(type_name, params, name=name).id
        if self._open:
            self._open[-1][0].append(nid)
        for s in [src] if isinstance(src, str) else src:
            self.g.connect(s, nid, port=port)
        if tv is not None:
            self.built.torch_names[nid] = tv
        return nid


def _conv(out: int, k: int, stride: int = 1, padding: int = 0, groups: int = 1, bias: bool = True) -> dict:
    p: dict[str, Any] = {"out_channels": out, "kernel_size": k}
    if stride != 1:
        p["stride"] = stride
    if padding:
        p["padding"] = padding
    if groups != 1:
        p["groups"] = groups
    if not bias:
        p["bias"] = False
    return p


def _pool(k: int, stride: int | None = None, padding: int = 0, ceil: bool = False) -> dict:
    p: dict[str, Any] = {"kernel_size": k}
    if stride is not None and stride != k:
        p["stride"] = stride
    if padding:
        p["padding"] = padding
    if ceil:
        p["ceil_mode"] = True
    return p


RELU = ("ReLU", {"inplace": True})


# -- LeNet-5 ---------------------------------------------------------------------------------

def _lenet5(net: _Net, v: Variant) -> None:
    x = net.input
    x = net.add("Conv2d", _conv(6, 5, padding=2), "conv1", x)
    x = net.add("Tanh", {}, "tanh1", x)
    x = net.add("AvgPool2d", _pool(2), "avgpool1", x)
    x = net.add("Conv2d", _conv(16, 5), "conv2", x)
    x = net.add("Tanh", {}, "tanh2", x)
    x = net.add("AvgPool2d", _pool(2), "avgpool2", x)
    x = net.add("Flatten", {}, "flatten1", x)
    x = net.add("Linear", {"out_features": 120}, "fc1", x)
    x = net.add("Tanh", {}, "tanh3", x)
    x = net.add("Linear", {"out_features": 84}, "fc2", x)
    x = net.add("Tanh", {}, "tanh4", x)
    net.add("Linear", {"out_features": v.classes}, "fc3", x)


# -- AlexNet and VGG: plain chains -----------------------------------------------------------

def _alexnet(net: _Net, v: Variant) -> None:
    with net.group("features"):
        x = _alexnet_features(net, v)
    _classifier(net, x, v, 1 if v is CIFAR else [6, 6], dropout_first=True)


def _alexnet_features(net: _Net, v: Variant) -> str:
    small = v is CIFAR
    x = net.add("Conv2d", _conv(64, 3, padding=1) if small else _conv(64, 11, 4, 2), "conv1", net.input, "features.0")
    x = net.add(*RELU, "relu1", x, "features.1")
    x = net.add("MaxPool2d", _pool(3, 2), "pool1", x, "features.2")
    x = net.add("Conv2d", _conv(192, 5, padding=2), "conv2", x, "features.3")
    x = net.add(*RELU, "relu2", x, "features.4")
    x = net.add("MaxPool2d", _pool(3, 2), "pool2", x, "features.5")
    for i, (out, idx) in enumerate(((384, 6), (256, 8), (256, 10)), 3):
        x = net.add("Conv2d", _conv(out, 3, padding=1), f"conv{i}", x, f"features.{idx}")
        x = net.add(*RELU, f"relu{i}", x, f"features.{idx + 1}")
    return net.add("MaxPool2d", _pool(3, 2), "pool5", x, "features.12")


def _classifier(net: _Net, x: str, v: Variant, pooled: Any, dropout_first: bool) -> None:
    """AlexNet's and VGG's head: adaptive average pooling, then three Linear layers with ReLU and
    dropout (AlexNet puts each dropout before its Linear, VGG after its ReLU)."""
    x = net.add("AdaptiveAvgPool2d", {"output_size": pooled}, "avgpool", x, "avgpool")
    x = net.add("Flatten", {}, "flatten", x)
    with net.group("classifier"):
        _classifier_layers(net, x, v, dropout_first)


def _classifier_layers(net: _Net, x: str, v: Variant, dropout_first: bool) -> None:
    idx = 0
    for layer, out in ((6, 4096), (7, 4096)):
        if dropout_first:
            x = net.add("Dropout", {"p": 0.5}, f"dropout{layer}", x, f"classifier.{idx}")
            idx += 1
        x = net.add("Linear", {"out_features": out}, f"fc{layer}", x, f"classifier.{idx}")
        x = net.add(*RELU, f"relu{layer}", x, f"classifier.{idx + 1}")
        idx += 2
        if not dropout_first:
            x = net.add("Dropout", {"p": 0.5}, f"dropout{layer}", x, f"classifier.{idx}")
            idx += 1
    net.add("Linear", {"out_features": v.classes}, "fc8", x, f"classifier.{idx}")


VGG16 = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]


def _vgg(bn: bool) -> Callable[[_Net, Variant], None]:
    def build(net: _Net, v: Variant) -> None:
        with net.group("features"):
            x = features(net)
        _classifier(net, x, v, 1 if v is CIFAR else [7, 7], dropout_first=False)

    def features(net: _Net) -> str:
        x, idx = net.input, 0
        for stage, widths in enumerate(VGG16, 1):
            for k, out in enumerate(widths, 1):
                x = net.add("Conv2d", _conv(out, 3, padding=1), f"conv{stage}_{k}", x, f"features.{idx}")
                idx += 1
                if bn:
                    x = net.add("BatchNorm2d", {}, f"bn{stage}_{k}", x, f"features.{idx}")
                    idx += 1
                x = net.add(*RELU, f"relu{stage}_{k}", x, f"features.{idx}")
                idx += 1
            x = net.add("MaxPool2d", _pool(2), f"pool{stage}", x, f"features.{idx}")
            idx += 1
        return x

    return build


# -- GoogLeNet -------------------------------------------------------------------------------

def _basic_conv(net: _Net, x: str, name: str, tv: str, out: int, k: int, stride: int = 1, padding: int = 0) -> str:
    """torchvision's BasicConv2d: convolution without bias, BatchNorm (eps 0.001), ReLU."""
    x = net.add("Conv2d", _conv(out, k, stride, padding, bias=False), f"{name}_conv", x, f"{tv}.conv")
    x = net.add("BatchNorm2d", {"eps": 0.001}, f"{name}_bn", x, f"{tv}.bn")
    return net.add(*RELU, f"{name}_relu", x)  # F.relu in torchvision: no module to name


INCEPTIONS = {  # in, 1×1, 3×3 reduce, 3×3, "5×5" reduce, "5×5" (3×3 in torchvision), pool projection
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def _inception(net: _Net, x: str, tag: str) -> str:
    with net.group(f"inception{tag}", "Inception"):
        return _inception_branches(net, x, tag)


def _inception_branches(net: _Net, x: str, tag: str) -> str:
    c1, c3r, c3, c5r, c5, cp = INCEPTIONS[tag]
    name = tv = f"inception{tag}"
    b1 = _basic_conv(net, x, f"{name}_branch1", f"{tv}.branch1", c1, 1)
    b2 = _basic_conv(net, x, f"{name}_branch2_0", f"{tv}.branch2.0", c3r, 1)
    b2 = _basic_conv(net, b2, f"{name}_branch2_1", f"{tv}.branch2.1", c3, 3, padding=1)
    b3 = _basic_conv(net, x, f"{name}_branch3_0", f"{tv}.branch3.0", c5r, 1)
    b3 = _basic_conv(net, b3, f"{name}_branch3_1", f"{tv}.branch3.1", c5, 3, padding=1)
    b4 = net.add("MaxPool2d", _pool(3, 1, 1, ceil=True), f"{name}_branch4_0", x, f"{tv}.branch4.0")
    b4 = _basic_conv(net, b4, f"{name}_branch4_1", f"{tv}.branch4.1", cp, 1)
    return net.add("Concat", {}, f"{name}_concat", [b1, b2, b3, b4])


def _googlenet(net: _Net, v: Variant) -> None:
    small = v is CIFAR
    if small:
        x = _basic_conv(net, net.input, "conv1", "conv1", 64, 3, padding=1)
    else:
        x = _basic_conv(net, net.input, "conv1", "conv1", 64, 7, 2, 3)
        x = net.add("MaxPool2d", _pool(3, 2, ceil=True), "maxpool1", x, "maxpool1")
    x = _basic_conv(net, x, "conv2", "conv2", 64, 1)
    x = _basic_conv(net, x, "conv3", "conv3", 192, 3, padding=1)
    x = net.add("MaxPool2d", _pool(3, 2, ceil=True), "maxpool2", x, "maxpool2")
    x = _inception(net, x, "3a")
    x = _inception(net, x, "3b")
    x = net.add("MaxPool2d", _pool(3, 2, ceil=True), "maxpool3", x, "maxpool3")
    for tag in ("4a", "4b", "4c", "4d", "4e"):
        x = _inception(net, x, tag)
    x = net.add("MaxPool2d", _pool(2, 2, ceil=True), "maxpool4", x, "maxpool4")
    x = _inception(net, x, "5a")
    x = _inception(net, x, "5b")
    x = net.add("AdaptiveAvgPool2d", {"output_size": 1}, "avgpool", x, "avgpool")
    x = net.add("Flatten", {}, "flatten", x)
    x = net.add("Dropout", {"p": 0.2}, "dropout", x, "dropout")
    net.add("Linear", {"out_features": v.classes}, "fc", x, "fc")


# -- ResNet ----------------------------------------------------------------------------------

def _resnet_stem(net: _Net, small: bool) -> str:
    conv = _conv(64, 3, padding=1, bias=False) if small else _conv(64, 7, 2, 3, bias=False)
    x = net.add("Conv2d", conv, "conv1", net.input, "conv1")
    x = net.add("BatchNorm2d", {}, "bn1", x, "bn1")
    x = net.add(*RELU, "relu", x, "relu")
    if not small:
        x = net.add("MaxPool2d", _pool(3, 2, 1), "maxpool", x, "maxpool")
    return x


def _shortcut(net: _Net, x: str, name: str, tv: str, out: int, stride: int, inplanes: int) -> str:
    if stride == 1 and inplanes == out:
        return x
    with net.group(f"{name}_downsample", "Downsample"):
        return _downsample(net, x, name, tv, out, stride)


def _downsample(net: _Net, x: str, name: str, tv: str, out: int, stride: int) -> str:
    d = net.add("Conv2d", _conv(out, 1, stride, bias=False), f"{name}_downsample_0", x, f"{tv}.downsample.0")
    return net.add("BatchNorm2d", {}, f"{name}_downsample_1", d, f"{tv}.downsample.1")


def _basic_block(net: _Net, x: str, name: str, tv: str, planes: int, stride: int, inplanes: int) -> str:
    y = net.add("Conv2d", _conv(planes, 3, stride, 1, bias=False), f"{name}_conv1", x, f"{tv}.conv1")
    y = net.add("BatchNorm2d", {}, f"{name}_bn1", y, f"{tv}.bn1")
    y = net.add(*RELU, f"{name}_relu1", y)  # torchvision calls one ReLU module twice: no path of its own
    y = net.add("Conv2d", _conv(planes, 3, padding=1, bias=False), f"{name}_conv2", y, f"{tv}.conv2")
    y = net.add("BatchNorm2d", {}, f"{name}_bn2", y, f"{tv}.bn2")
    s = _shortcut(net, x, name, tv, planes, stride, inplanes)
    y = net.add("Add", {}, f"{name}_add", [y, s])
    return net.add(*RELU, f"{name}_relu2", y)


def _bottleneck(net: _Net, x: str, name: str, tv: str, planes: int, stride: int, inplanes: int) -> str:
    y = net.add("Conv2d", _conv(planes, 1, bias=False), f"{name}_conv1", x, f"{tv}.conv1")
    y = net.add("BatchNorm2d", {}, f"{name}_bn1", y, f"{tv}.bn1")
    y = net.add(*RELU, f"{name}_relu1", y)
    y = net.add("Conv2d", _conv(planes, 3, stride, 1, bias=False), f"{name}_conv2", y, f"{tv}.conv2")
    y = net.add("BatchNorm2d", {}, f"{name}_bn2", y, f"{tv}.bn2")
    y = net.add(*RELU, f"{name}_relu2", y)
    y = net.add("Conv2d", _conv(planes * 4, 1, bias=False), f"{name}_conv3", y, f"{tv}.conv3")
    y = net.add("BatchNorm2d", {}, f"{name}_bn3", y, f"{tv}.bn3")
    s = _shortcut(net, x, name, tv, planes * 4, stride, inplanes)
    y = net.add("Add", {}, f"{name}_add", [y, s])
    return net.add(*RELU, f"{name}_relu3", y)


def _resnet(bottleneck: bool, depths: tuple[int, ...]) -> Callable[[_Net, Variant], None]:
    def build(net: _Net, v: Variant) -> None:
        x = _resnet_stem(net, v is CIFAR)
        block, expansion = (_bottleneck, 4) if bottleneck else (_basic_block, 1)
        inplanes = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), depths, strict=True), 1):
            with net.group(f"layer{i}"):
                for j in range(n):
                    stride = 2 if i > 1 and j == 0 else 1
                    with net.group(f"layer{i}_{j}", "Bottleneck" if bottleneck else "BasicBlock"):
                        x = block(net, x, f"layer{i}_{j}", f"layer{i}.{j}", planes, stride, inplanes)
                    inplanes = planes * expansion
        x = net.add("AdaptiveAvgPool2d", {"output_size": 1}, "avgpool", x, "avgpool")
        x = net.add("Flatten", {}, "flatten", x)
        net.add("Linear", {"out_features": v.classes}, "fc", x, "fc")

    return build


# -- SqueezeNet 1.0 --------------------------------------------------------------------------

def _fire(net: _Net, x: str, name: str, tv: str, squeeze: int, expand: int) -> str:
    with net.group(name, "Fire"):
        return _fire_branches(net, x, name, tv, squeeze, expand)


def _fire_branches(net: _Net, x: str, name: str, tv: str, squeeze: int, expand: int) -> str:
    s = net.add("Conv2d", _conv(squeeze, 1), f"{name}_squeeze", x, f"{tv}.squeeze")
    s = net.add(*RELU, f"{name}_squeeze_relu", s, f"{tv}.squeeze_activation")
    e1 = net.add("Conv2d", _conv(expand, 1), f"{name}_expand1x1", s, f"{tv}.expand1x1")
    e1 = net.add(*RELU, f"{name}_expand1x1_relu", e1, f"{tv}.expand1x1_activation")
    e3 = net.add("Conv2d", _conv(expand, 3, padding=1), f"{name}_expand3x3", s, f"{tv}.expand3x3")
    e3 = net.add(*RELU, f"{name}_expand3x3_relu", e3, f"{tv}.expand3x3_activation")
    return net.add("Concat", {}, f"{name}_concat", [e1, e3])


def _squeezenet(net: _Net, v: Variant) -> None:
    conv = _conv(96, 3, padding=1) if v is CIFAR else _conv(96, 7, 2)
    x = net.add("Conv2d", conv, "conv1", net.input, "features.0")
    x = net.add(*RELU, "relu1", x, "features.1")
    x = net.add("MaxPool2d", _pool(3, 2, ceil=True), "pool1", x, "features.2")
    fires = {2: (16, 64), 3: (16, 64), 4: (32, 128), 5: (32, 128), 6: (48, 192), 7: (48, 192), 8: (64, 256),
             9: (64, 256)}
    idx = 3
    for k, (squeeze, expand) in fires.items():
        x = _fire(net, x, f"fire{k}", f"features.{idx}", squeeze, expand)
        idx += 1
        if k in (4, 8):
            x = net.add("MaxPool2d", _pool(3, 2, ceil=True), f"pool{k}", x, f"features.{idx}")
            idx += 1
    x = net.add("Dropout", {"p": 0.5}, "dropout", x, "classifier.0")
    x = net.add("Conv2d", _conv(v.classes, 1), "conv10", x, "classifier.1")
    x = net.add(*RELU, "relu10", x, "classifier.2")
    x = net.add("AdaptiveAvgPool2d", {"output_size": 1}, "avgpool", x, "classifier.3")
    net.add("Flatten", {}, "flatten", x)


# -- DenseNet-121 ----------------------------------------------------------------------------

def _densenet121(net: _Net, v: Variant) -> None:
    with net.group("features"):
        x = _densenet_features(net, v)
    x = net.add(*RELU, "relu5", x)
    x = net.add("AdaptiveAvgPool2d", {"output_size": 1}, "avgpool", x)
    x = net.add("Flatten", {}, "flatten", x)
    net.add("Linear", {"out_features": v.classes}, "classifier", x, "classifier")


def _densenet_features(net: _Net, v: Variant) -> str:
    growth, bn_size = 32, 4
    small = v is CIFAR
    conv0 = _conv(64, 3, padding=1, bias=False) if small else _conv(64, 7, 2, 3, bias=False)
    x = net.add("Conv2d", conv0, "conv0", net.input, "features.conv0")
    x = net.add("BatchNorm2d", {}, "norm0", x, "features.norm0")
    x = net.add(*RELU, "relu0", x, "features.relu0")
    if not small:
        x = net.add("MaxPool2d", _pool(3, 2, 1), "pool0", x, "features.pool0")
    channels = 64
    for b, layers in enumerate((6, 12, 24, 16), 1):
        with net.group(f"denseblock{b}", "DenseBlock"):
            for n in range(1, layers + 1):
                name, tv = f"block{b}_layer{n}", f"features.denseblock{b}.denselayer{n}"
                with net.group(name, "DenseLayer"):
                    y = net.add("BatchNorm2d", {}, f"{name}_norm1", x, f"{tv}.norm1")
                    y = net.add(*RELU, f"{name}_relu1", y, f"{tv}.relu1")
                    y = net.add("Conv2d", _conv(bn_size * growth, 1, bias=False), f"{name}_conv1", y, f"{tv}.conv1")
                    y = net.add("BatchNorm2d", {}, f"{name}_norm2", y, f"{tv}.norm2")
                    y = net.add(*RELU, f"{name}_relu2", y, f"{tv}.relu2")
                    y = net.add("Conv2d", _conv(growth, 3, padding=1, bias=False), f"{name}_conv2", y, f"{tv}.conv2")
                    # torch.cat of all earlier maps, written as the previous concatenation plus the new map
                    x = net.add("Concat", {}, f"{name}_concat", [x, y])
                channels += growth
        if b < 4:
            name, tv = f"transition{b}", f"features.transition{b}"
            channels //= 2
            with net.group(name, "Transition"):
                x = net.add("BatchNorm2d", {}, f"{name}_norm", x, f"{tv}.norm")
                x = net.add(*RELU, f"{name}_relu", x, f"{tv}.relu")
                x = net.add("Conv2d", _conv(channels, 1, bias=False), f"{name}_conv", x, f"{tv}.conv")
                x = net.add("AvgPool2d", _pool(2, 2), f"{name}_pool", x, f"{tv}.pool")
    return net.add("BatchNorm2d", {}, "norm5", x, "features.norm5")


# -- MobileNetV2 -----------------------------------------------------------------------------

MOBILENET_V2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1)]  # expansion t, channels c, repeats n, first stride s (the paper's table 2)


def _conv_bn_relu6(net: _Net, x: str, name: str, tv: str, out: int, k: int, stride: int = 1, groups: int = 1) -> str:
    """torchvision's Conv2dNormActivation: convolution without bias, BatchNorm, ReLU6."""
    x = net.add("Conv2d", _conv(out, k, stride, (k - 1) // 2, groups, bias=False), f"{name}_conv", x, f"{tv}.0")
    x = net.add("BatchNorm2d", {}, f"{name}_bn", x, f"{tv}.1")
    return net.add("ReLU6", {"inplace": True}, f"{name}_relu6", x, f"{tv}.2")


def _inverted_residual(net: _Net, x: str, name: str, tv: str, channels: int, c: int, t: int, stride: int) -> str:
    hidden = channels * t
    y, k = x, 0
    if t != 1:
        y = _conv_bn_relu6(net, y, f"{name}_expand", f"{tv}.conv.0", hidden, 1)
        k = 1
    y = _conv_bn_relu6(net, y, f"{name}_dw", f"{tv}.conv.{k}", hidden, 3, stride, groups=hidden)
    y = net.add("Conv2d", _conv(c, 1, bias=False), f"{name}_project_conv", y, f"{tv}.conv.{k + 1}")
    y = net.add("BatchNorm2d", {}, f"{name}_project_bn", y, f"{tv}.conv.{k + 2}")
    if stride == 1 and channels == c:
        y = net.add("Add", {}, f"{name}_add", [x, y])  # torchvision: x + self.conv(x)
    return y


def _mobilenet_v2(net: _Net, v: Variant) -> None:
    x = _conv_bn_relu6(net, net.input, "stem", "features.0", 32, 3, 1 if v is CIFAR else 2)
    channels, idx = 32, 1
    for t, c, n, s in MOBILENET_V2:
        for i in range(n):
            stride = s if i == 0 else 1
            name, tv = f"block{idx}", f"features.{idx}"
            with net.group(name, "InvertedResidual"):
                x = _inverted_residual(net, x, name, tv, channels, c, t, stride)
            channels, idx = c, idx + 1
    x = _conv_bn_relu6(net, x, "last", f"features.{idx}", 1280, 1)
    x = net.add("AdaptiveAvgPool2d", {"output_size": 1}, "avgpool", x)
    x = net.add("Flatten", {}, "flatten", x)
    x = net.add("Dropout", {"p": 0.2}, "dropout", x, "classifier.0")
    net.add("Linear", {"out_features": v.classes}, "fc", x, "classifier.1")


# -- ShuffleNetV2 x1.0 -----------------------------------------------------------------------

def _shuffle_branch(net: _Net, x: str, name: str, tv: str, channels: int, stride: int, port: int = 0) -> str:
    """branch2: 1×1 convolution, BatchNorm, ReLU, 3×3 depthwise (stride), BatchNorm, 1×1, BatchNorm, ReLU."""
    y = net.add("Conv2d", _conv(channels, 1, bias=False), f"{name}_conv1", x, f"{tv}.0", port=port)
    y = net.add("BatchNorm2d", {}, f"{name}_bn1", y, f"{tv}.1")
    y = net.add(*RELU, f"{name}_relu1", y, f"{tv}.2")
    y = net.add("Conv2d", _conv(channels, 3, stride, 1, channels, bias=False), f"{name}_dwconv", y, f"{tv}.3")
    y = net.add("BatchNorm2d", {}, f"{name}_dwbn", y, f"{tv}.4")
    y = net.add("Conv2d", _conv(channels, 1, bias=False), f"{name}_conv2", y, f"{tv}.5")
    y = net.add("BatchNorm2d", {}, f"{name}_bn2", y, f"{tv}.6")
    return net.add(*RELU, f"{name}_relu2", y, f"{tv}.7")


def _shuffle_unit(net: _Net, x: str, stage: int, i: int, channels: int, out: int) -> str:
    name, tv = f"stage{stage}_{i}", f"stage{stage}.{i}"
    half = out // 2
    if i == 0:  # stride 2: both branches read the whole input
        b1 = net.add("Conv2d", _conv(channels, 3, 2, 1, channels, bias=False), f"{name}_branch1_dwconv", x,
                     f"{tv}.branch1.0")
        b1 = net.add("BatchNorm2d", {}, f"{name}_branch1_dwbn", b1, f"{tv}.branch1.1")
        b1 = net.add("Conv2d", _conv(half, 1, bias=False), f"{name}_branch1_conv", b1, f"{tv}.branch1.2")
        b1 = net.add("BatchNorm2d", {}, f"{name}_branch1_bn", b1, f"{tv}.branch1.3")
        b1 = net.add(*RELU, f"{name}_branch1_relu", b1, f"{tv}.branch1.4")
        b2 = _shuffle_branch(net, x, f"{name}_branch2", f"{tv}.branch2", half, 2)
        cat = net.add("Concat", {}, f"{name}_concat", [b1, b2])
    else:  # stride 1: half the channels pass, the other half go through branch2
        split = net.add("Chunk", {"chunks": 2}, f"{name}_split", x)
        b2 = _shuffle_branch(net, split, f"{name}_branch2", f"{tv}.branch2", half, 1, port=1)
        cat = net.add("Concat", {}, f"{name}_concat", [split, b2])  # output 0 of the split, then branch2
    return net.add("ChannelShuffle", {"groups": 2}, f"{name}_shuffle", cat)


def _shufflenet_v2(net: _Net, v: Variant) -> None:
    small = v is CIFAR
    x = net.add("Conv2d", _conv(24, 3, 1 if small else 2, 1, bias=False), "conv1_conv", net.input, "conv1.0")
    x = net.add("BatchNorm2d", {}, "conv1_bn", x, "conv1.1")
    x = net.add(*RELU, "conv1_relu", x, "conv1.2")
    if not small:
        x = net.add("MaxPool2d", _pool(3, 2, 1), "maxpool", x, "maxpool")
    channels = 24
    for stage, repeats, out in ((2, 4, 116), (3, 8, 232), (4, 4, 464)):
        with net.group(f"stage{stage}"):
            for i in range(repeats):
                with net.group(f"stage{stage}_{i}", "InvertedResidual"):
                    x = _shuffle_unit(net, x, stage, i, channels, out)
                channels = out
    x = net.add("Conv2d", _conv(1024, 1, bias=False), "conv5_conv", x, "conv5.0")
    x = net.add("BatchNorm2d", {}, "conv5_bn", x, "conv5.1")
    x = net.add(*RELU, "conv5_relu", x, "conv5.2")
    x = net.add("AdaptiveAvgPool2d", {"output_size": 1}, "avgpool", x)  # torchvision: x.mean([2, 3])
    x = net.add("Flatten", {}, "flatten", x)
    net.add("Linear", {"out_features": v.classes}, "fc", x, "fc")


# -- the catalogue ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Architecture:
    key: str  # file stem, e.g. "resnet18"
    title: str
    year: int
    note: str  # one paragraph: year, authors, the idea, what the template matches
    build_fn: Callable[[_Net, Variant], None]
    variants: tuple[Variant, ...] = (IMAGENET, CIFAR)
    torchvision: str | None = None  # the torchvision.models function it equals (published size)
    cifar_change: str = ""  # what the CIFAR-sized variant changes, completing "... is torchvision's X with"
    showcase: str = ""  # the block a gallery thumbnail starts at: just above the first typical unit

    def build(self, variant: Variant | None = None) -> Built:
        v = variant or self.variants[0]
        net = _Net(v.shape)
        with net.g.batch():
            self.build_fn(net, v)
        return net.built

    def stem(self, variant: Variant) -> str:
        return self.key + (f"_{variant.key}" if variant.key else "")

    def project(self, variant: Variant | None = None) -> Project:
        v = variant or self.variants[0]
        built = self.build(v)
        g = built.graph
        with g.batch():
            blocks, groups = layout_by_group(g) if g.groups else (layered_layout(g), {})
            for nid, pos in blocks.items():
                g.move(nid, pos)
            for gid, pos in groups.items():
                g.move_group(gid, pos)
        a = analyze(g)
        if not a.ok:  # a mistake in this module, never the user's
            raise AssertionError(f"{self.title}: {[p.message for p in a.problems]}")
        name = self.title if v is self.variants[0] else f"{self.title} (CIFAR-10 size)"
        return Project(graph=g, name=name, description=self.describe(v, a.total_params, a.total_macs))

    def describe(self, v: Variant, params: int, macs: int) -> str:
        size = f"{fmt_shape(v.shape)} images, {v.classes} classes"
        figures = f"{params:,} parameters and {human(macs)} MACs per image"
        if v is self.variants[0] and self.torchvision:
            what = (f"This template is torchvision's {self.torchvision} ({size}): {figures}, as in torchvision, and "
                    "with torchvision's weights loaded it computes the same outputs.")
        elif v is self.variants[0]:
            what = f"This template: {size}, {figures}."
        else:
            what = (f"This is the CIFAR-10-sized variant ({size}): torchvision's {self.torchvision} with "
                    f"{self.cifar_change} and a {v.classes}-class output; {figures}.")
        return f"{self.note} {what}"


# ResNet-18 and -50 shrink their stem the same way for 32×32 images.
_RESNET_CIFAR = ("a 3×3 first convolution of stride 1 (instead of 7×7, stride 2) and without the max pool, as "
                 "in most CIFAR versions, so the first stage works on 32×32 maps")

ARCHITECTURES: dict[str, Architecture] = {a.key: a for a in (
    Architecture(
        "lenet5", "LeNet-5", 1998,
        "LeNet-5 (1998; LeCun, Bottou, Bengio and Haffner) read handwritten digits on bank cheques, and set "
        "the pattern CNNs still follow: convolutions that learn local features, subsampling that shrinks the "
        "map, and fully connected layers at the end, all trained by backpropagation. It has about 60 thousand "
        "parameters. As in most modern versions, the paper's partial connections between S2 and C3 and its "
        "RBF output layer are plain convolution and Linear layers, and padding 2 on conv1 lets a 28×28 MNIST "
        "digit stand in for the paper's 32×32 input.",
        _lenet5, variants=(MNIST,)),
    Architecture(
        "alexnet", "AlexNet", 2012,
        "AlexNet (2012; Krizhevsky, Sutskever and Hinton) won the ImageNet challenge with a top-5 error of "
        "15.3% against 26.2% for the runner-up, and started the deep learning era in vision: five "
        "convolutions and three fully connected layers, trained on GPUs with ReLU, dropout and data "
        "augmentation. Like torchvision, this is the one-GPU version from Krizhevsky's 2014 \"One weird "
        "trick\" paper: 64, 192, 384, 256 and 256 filters, no LocalResponseNorm and no split into two GPU "
        "halves (the paper's 96-filter, two-GPU layout can be drawn with LocalResponseNorm and groups=2).",
        _alexnet, torchvision="alexnet",
        cifar_change="a 3×3 first convolution of stride 1 (instead of 11×11, stride 4) and global average "
                     "pooling (instead of 6×6) before the classifier, whose first Linear then takes 256 "
                     "features"),
    Architecture(
        "vgg16", "VGG-16", 2014,
        "VGG-16 (2014; Simonyan and Zisserman, Oxford's Visual Geometry Group) showed that depth matters, "
        "using nothing but 3×3 convolutions: two stacked 3×3 layers see as far as one 5×5 with fewer "
        "parameters. Thirteen convolutions in five stages, each stage halving the map with max pooling, then "
        "three fully connected layers; second in the 2014 ImageNet classification challenge. Most of its 138 "
        "million parameters sit in the first fully connected layer.",
        _vgg(False), torchvision="vgg16",
        cifar_change="global average pooling (instead of 7×7) before the classifier, whose first Linear then "
                     "takes 512 features (the five max pools bring a 32×32 image to 1×1)"),
    Architecture(
        "vgg16_bn", "VGG-16-BN", 2015,
        "VGG-16 with batch normalization: the 2014 VGG-16 (Simonyan and Zisserman) with a BatchNorm2d after "
        "every convolution, from torchvision's model zoo (batch normalization, Ioffe and Szegedy, came in "
        "2015). Normalizing each layer's inputs lets this 16-layer plain network train from scratch at higher "
        "learning rates, without the paper's staged initialization from shallower networks.",
        _vgg(True), torchvision="vgg16_bn",
        cifar_change="global average pooling (instead of 7×7) before the classifier, whose first Linear then "
                     "takes 512 features (the five max pools bring a 32×32 image to 1×1)"),
    Architecture(
        "googlenet", "GoogLeNet", 2014,
        "GoogLeNet (2014; Szegedy et al., \"Going deeper with convolutions\"; Inception v1) won the 2014 "
        "ImageNet challenge with 22 layers and 12 times fewer parameters than AlexNet. Its Inception modules "
        "run 1×1, 3×3 and 5×5 convolutions and a max pool side by side and concatenate them, with 1×1 "
        "convolutions first to cut the channels. This is torchvision's googlenet in eval mode with "
        "aux_logits=False and transform_input=False: the two auxiliary classifiers only add to the loss in "
        "training and are left out, and so is the input re-normalization. Like torchvision it has a BatchNorm "
        "(eps 0.001) after every convolution, and a 3×3 convolution where the paper's branch has 5×5 (a known "
        "quirk torchvision keeps for its weights).",
        _googlenet, torchvision="googlenet", showcase="maxpool2",
        cifar_change="a 3×3 first convolution of stride 1 (instead of 7×7, stride 2) and without the first max "
                     "pool, so the Inception modules see 16×16, 8×8 and 4×4 maps"),
    Architecture(
        "resnet18", "ResNet-18", 2015,
        "ResNet (2015; He, Zhang, Ren and Sun) won the 2015 ImageNet challenge with residual connections: each "
        "block adds its input to its output (y = F(x) + x), so a block only has to learn a correction and "
        "networks of 100 layers and more train as easily as shallow ones. ResNet-18 stacks eight basic blocks "
        "of two 3×3 convolutions in four stages (64 to 512 channels); a 1×1 convolution matches the shortcut "
        "where a stage halves the map and doubles the channels.",
        _resnet(False, (2, 2, 2, 2)), torchvision="resnet18", showcase="maxpool",
        cifar_change=_RESNET_CIFAR),
    Architecture(
        "resnet50", "ResNet-50", 2015,
        "ResNet-50 (2015; He, Zhang, Ren and Sun) is the deeper ResNet built from bottleneck blocks: a 1×1 "
        "convolution narrows the channels, a 3×3 works on the narrow map, and a 1×1 widens it four times "
        "again before the residual addition, so 16 blocks (50 layers) cost little more than ResNet-34. "
        "torchvision's version, matched here, puts the stride on the 3×3 convolution instead of the first "
        "1×1 (\"ResNet v1.5\"), which is slightly more accurate.",
        _resnet(True, (3, 4, 6, 3)), torchvision="resnet50", showcase="maxpool",
        cifar_change=_RESNET_CIFAR),
    Architecture(
        "squeezenet1_0", "SqueezeNet 1.0", 2016,
        "SqueezeNet (2016; Iandola et al.) reached AlexNet's accuracy with 50 times fewer parameters (1.25 "
        "million). Its Fire modules squeeze the channels with 1×1 convolutions, then expand them with 1×1 and "
        "3×3 convolutions side by side, concatenated; there is no fully connected layer: a 1×1 convolution "
        "makes one map per class and global average pooling turns each into a score.",
        _squeezenet, torchvision="squeezenet1_0", showcase="pool1",
        cifar_change="a 3×3 first convolution of stride 1 with padding 1 (instead of 7×7, stride 2)"),
    Architecture(
        "densenet121", "DenseNet-121", 2017,
        "DenseNet (2017; Huang, Liu, van der Maaten and Weinberger; best paper at CVPR 2017) connects every "
        "layer of a dense block to all the layers before it: each layer reads the concatenation of all "
        "earlier feature maps and adds only 32 new channels (the growth rate), so features are reused instead "
        "of relearned. DenseNet-121 has four dense blocks of 6, 12, 24 and 16 layers joined by transitions "
        "that halve channels and map size. torchvision's torch.cat over the list of all earlier maps is drawn "
        "here as a chain: each layer's Concat joins the previous Concat with the new map, which gives exactly "
        "the same tensor.",
        _densenet121, torchvision="densenet121", showcase="pool0",
        cifar_change="a 3×3 first convolution of stride 1 (instead of 7×7, stride 2) and without the max pool, "
                     "so the dense blocks work on 32×32, 16×16, 8×8 and 4×4 maps"),
    Architecture(
        "mobilenet_v2", "MobileNetV2", 2018,
        "MobileNetV2 (2018; Sandler, Howard, Zhu, Zhmoginov and Chen, Google) was designed for phones. Its "
        "inverted residual blocks widen the channels six times with a 1×1 convolution, filter each channel "
        "with a cheap 3×3 depthwise convolution, and project back with a linear 1×1 convolution (no "
        "activation, so the narrow bottleneck loses no information); the skip connection joins the narrow "
        "ends. ReLU6 keeps activations small for low-precision arithmetic.",
        _mobilenet_v2, torchvision="mobilenet_v2", showcase="block2_project_bn",
        cifar_change="a first convolution of stride 1 (instead of 2), so a 32×32 image ends as a 2×2 map "
                     "instead of 1×1"),
    Architecture(
        "shufflenet_v2_x1_0", "ShuffleNetV2", 2018,
        "ShuffleNetV2 (2018; Ma, Zhang, Zheng and Sun) designed its unit from measured speed on real devices "
        "rather than from counted operations: a unit splits the channels in two (Chunk), leaves one half "
        "alone and sends the other through a 1×1, a 3×3 depthwise and a 1×1 convolution, concatenates the "
        "halves and shuffles the channels so that information crosses between them in the next unit. This is "
        "the x1.0 width (116, 232 and 464 channels in its three stages). torchvision's global pooling "
        "x.mean([2, 3]) is drawn as AdaptiveAvgPool2d(1) and Flatten, which compute the same mean (up to "
        "float rounding).",
        _shufflenet_v2, torchvision="shufflenet_v2_x1_0", showcase="stage2_0_shuffle",
        cifar_change="a first convolution of stride 1 (instead of 2) and without the max pool, so the three "
                     "stages work on 16×16, 8×8 and 4×4 maps"),
)}

