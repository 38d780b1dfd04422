"""What File ▸ Import ▸ PyTorch module… (and `cnnbuilder import`) asks for, checked before any of
the user's code runs: the torchvision models that can be named, the constructor arguments (JSON),
the input shape ("3x224x224"), and the nn.Module classes a Python file defines.

Nothing here imports torch or runs the user's file: the classes are found by parsing it with `ast`
(the editor's process never imports torch, and importing a file runs it). The import itself is
core/importer's, in a subprocess.
"""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass
from typing import Any

# torchvision.models.list_models(module=torchvision.models) of torchvision 0.29, kept here so that
# the editor can offer them without importing torch (a test compares it with the installed torchvision).
TORCHVISION_CLASSIFIERS: tuple[str, ...] = (
    "alexnet", "convnext_base", "convnext_large", "convnext_small", "convnext_tiny", "densenet121",
    "densenet161", "densenet169", "densenet201", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
    "efficientnet_b3", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
    "efficientnet_v2_l", "efficientnet_v2_m", "efficientnet_v2_s", "googlenet", "inception_v3", "maxvit_t",
    "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3", "mobilenet_v2", "mobilenet_v3_large",
    "mobilenet_v3_small", "regnet_x_16gf", "regnet_x_1_6gf", "regnet_x_32gf", "regnet_x_3_2gf", "regnet_x_400mf",
    "regnet_x_800mf", "regnet_x_8gf", "regnet_y_128gf", "regnet_y_16gf", "regnet_y_1_6gf", "regnet_y_32gf",
    "regnet_y_3_2gf", "regnet_y_400mf", "regnet_y_800mf", "regnet_y_8gf", "resnet101", "resnet152", "resnet18",
    "resnet34", "resnet50", "resnext101_32x8d", "resnext101_64x4d", "resnext50_32x4d", "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "squeezenet1_0", "squeezenet1_1", "swin_b",
    "swin_s", "swin_t", "swin_v2_b", "swin_v2_s", "swin_v2_t", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16",
    "vgg16_bn", "vgg19", "vgg19_bn", "vit_b_16", "vit_b_32", "vit_h_14", "vit_l_16", "vit_l_32", "wide_resnet101_2",
    "wide_resnet50_2",
)
MAX_SOURCE_BYTES = 5_000_000  # a "Python file" larger than this is not one to parse in the editor


class OptionError(ValueError):
    """An import option that cannot be used; the message names the field and what is wrong."""


def parse_args_text(text: str) -> dict[str, Any]:
    """Constructor arguments as a JSON object ("" means none)."""
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OptionError(f"constructor arguments: not valid JSON ({exc.msg} at line {exc.lineno}, "
                          f"column {exc.colno}); write them like {{\"num_classes\": 10}}") from None
    except RecursionError:
        raise OptionError("constructor arguments: nested too deeply") from None
    if not isinstance(value, dict):
        kind = {list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(type(value), "a number")
        raise OptionError(f"constructor arguments: expected a JSON object of name: value pairs like "
                          f"{{\"num_classes\": 10}}, got {kind}")
    bad = [k for k in value if not k.isidentifier()]
    if bad:
        raise OptionError(f"constructor arguments: {bad[0][:40]!r} is not a Python argument name")
    return value


_SHAPE_TEXT = re.compile(r"[0-9]+(?:(?:\s*[x×X*,;]\s*|\s+)[0-9]+)*\Z")  # ASCII digits: int("²") fails


def parse_input_text(text: str) -> tuple[int, ...] | None:
    """The input shape of one sample, "3x224x224" (× , and spaces work too); "" means the importer's
    default. Bounds are the Input block's own."""
    from .blocks import REGISTRY, ParamError

    text = (text or "").strip()
    if not text:
        return None
    parts = re.findall(r"[0-9]+", text)
    if not _SHAPE_TEXT.match(text) or any(len(p) > 11 for p in parts):
        raise OptionError(f"input shape: expected sizes like 3x224x224 (channels × height × width), got {text[:40]!r}")
    try:
        return tuple(REGISTRY["Input"].check_param("shape", [int(p) for p in parts]))
    except ParamError as exc:
        raise OptionError(f"input {exc}") from None


@dataclass(frozen=True)
class ModuleClass:
    """A top-level class of the file that derives from torch.nn.Module (as far as the source shows)."""
    name: str
    line: int
    signature: str  # the constructor's parameters as written, without self: "num_classes=10, width=64"
    required: tuple[str, ...]  # parameters without a default: the import needs values for them


def module_classes(path: str | os.PathLike) -> list[ModuleClass]:
    """The nn.Module subclasses a Python file defines at its top level, in file order. Raises
    OptionError (naming the file, and the line of a syntax error) when the file cannot be parsed."""
    where = os.fspath(path)
    try:
        if os.path.getsize(where) > MAX_SOURCE_BYTES:
            raise OptionError(f"{where}: over {MAX_SOURCE_BYTES // 1_000_000} MB: not a Python source file")
        with open(where, "rb") as f:
            source = f.read()
    except FileNotFoundError:
        raise OptionError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise OptionError(f"{where}: is a folder, not a Python file") from None
    except OSError as exc:
        raise OptionError(f"{where}: cannot read ({exc.strerror or exc})") from None
    try:
        tree = ast.parse(source, filename=where)
    except SyntaxError as exc:
        line = f", line {exc.lineno}" if exc.lineno else ""
        raise OptionError(f"{where}{line}: syntax error: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        raise OptionError(f"{where}: not Python source that can be read ({type(exc).__name__})") from None

    from_nn: set[str] = set()  # names imported from torch.nn / torchvision (Module, Sequential, ResNet, ...)
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom) or not node.module or node.level:
            continue
        if node.module == "torch":  # `from torch import nn`; not Tensor or optim
            from_nn.update(a.asname or a.name for a in node.names if a.name == "nn")
        elif node.module.startswith(("torch.nn", "torchvision")):
            from_nn.update(a.asname or a.name for a in node.names)
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    modules: set[str] = set()
    changed = True
    while changed:  # a class deriving from one of the file's module classes is one too
        changed = False
        for c in classes:
            if c.name not in modules and any(_is_module_base(b, from_nn, modules) for b in c.bases):
                modules.add(c.name)
                changed = True
    return [_describe(c) for c in classes if c.name in modules]


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else ""
    if isinstance(node, ast.Subscript):  # Generic[...]-style bases
        return _dotted(node.value)
    return ""


def _is_module_base(base: ast.expr, from_nn: set[str], modules: set[str]) -> bool:
    name = _dotted(base)
    if not name:
        return False
    if "." not in name:
        return name in from_nn or name in modules
    head = name.split(".")[0]  # nn.Module, torch.nn.Conv2d, models.ResNet after `from torchvision import models`
    return name.startswith(("torch.nn.", "torchvision.")) or head == "nn" or head in from_nn


def _describe(c: ast.ClassDef) -> ModuleClass:
    init = next((n for n in c.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and n.name == "__init__"), None)
    if init is None:
        return ModuleClass(c.name, c.lineno, "", ())
    a = init.args
    positional = a.posonlyargs + a.args
    if positional and positional[0].arg in ("self", "cls"):
        positional = positional[1:]
    required = [p.arg for p in positional[:len(positional) - len(a.defaults)]]
    required += [p.arg for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is None]
    try:
        text = ast.unparse(a)
    except Exception:  # noqa: BLE001 - only a hint for the picker
        text = ""
    text = re.sub(r"^(self|cls)(, |$)", "", text)
    return ModuleClass(c.name, c.lineno, text if len(text) <= 200 else text[:199] + "…", tuple(required))
