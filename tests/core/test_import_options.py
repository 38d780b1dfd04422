"""What the import dialog checks before any user code runs: constructor arguments (JSON object),
input shape (the Input block's bounds), the nn.Module classes of a file (parsed, never run), and the
torchvision names it offers (the installed torchvision's, without importing torch in the editor)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnbuilder.core.import_options import (
    TORCHVISION_CLASSIFIERS,
    OptionError,
    module_classes,
    parse_args_text,
    parse_input_text,
)

from ..fuzz import fuzz_settings


def test_the_torchvision_names_are_the_installed_torchvisions():
    import torchvision.models as m

    installed = set(m.list_models(module=m))
    assert set(TORCHVISION_CLASSIFIERS) <= installed, set(TORCHVISION_CLASSIFIERS) - installed
    assert {"resnet18", "alexnet", "vgg16_bn", "mobilenet_v2", "densenet121"} <= set(TORCHVISION_CLASSIFIERS)
    assert list(TORCHVISION_CLASSIFIERS) == sorted(TORCHVISION_CLASSIFIERS)


def test_arguments():
    assert parse_args_text("") == {} and parse_args_text("  ") == {}
    assert parse_args_text('{"num_classes": 10, "dropout": 0.2, "widths": [1, 2]}') == \
        {"num_classes": 10, "dropout": 0.2, "widths": [1, 2]}
    for text, message in (("{", "not valid JSON"), ("10", "got a number"), ('"x"', "got text"),
                          ("null", "got null"), ('{"1x": 2}', "'1x' is not a Python argument name"),
                          ("[" * 100_000, "")):
        with pytest.raises(OptionError, match="^constructor arguments: ") as info:
            parse_args_text(text)
        assert message in str(info.value)


def test_input_shapes():
    assert parse_input_text("3x224x224") == (3, 224, 224)
    assert parse_input_text(" 3 × 32 × 32 ") == (3, 32, 32)
    assert parse_input_text("1,28,28") == (1, 28, 28) and parse_input_text("128") == (128,)
    assert parse_input_text("") is None
    assert parse_input_text("3 32 32") == (3, 32, 32)
    for text in ("3x", "x", "3.5x2", "1e3", "-3", "3x224x224x2", "0x1x1", "9" * 40, "²", "3xx3", "٣"):
        with pytest.raises(OptionError, match="^input shape: "):
            parse_input_text(text)


@fuzz_settings(300, 5000)
@given(st.text(max_size=60))
def test_any_text_is_a_value_or_a_message(text):
    for parse in (parse_args_text, parse_input_text):
        try:
            parse(text)
        except OptionError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 400


def test_module_classes_follow_the_bases_through_the_file(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("""\
import torch
import torchvision
from torch import nn, optim
from torchvision import models
from torchvision.models.resnet import BasicBlock as BB


class A(nn.Module): pass
class B(torch.nn.Sequential): pass
class C(A): pass
class D(models.ResNet):
    def __init__(self, *, depth, width=2, **kw): pass
class E(BB): pass
class F(optim.SGD): pass
class G(torchvision.models.VGG): pass
class H: pass
class I(Undefined): pass
def make(): pass
""")
    found = module_classes(src)
    assert [c.name for c in found] == ["A", "B", "C", "D", "E", "G"]
    d = found[3]
    assert (d.line, d.signature, d.required) == (11, "*, depth, width=2, **kw", ("depth",))


@pytest.mark.parametrize("content,message", [
    (b"class Net(:\n", "line 1: syntax error: "),
    (b"x = 1\x00\n", ""),  # SyntaxError or ValueError, by Python version
    (b"\xff\xfe\x00bad", ""),
])
def test_unparseable_files_are_a_message_naming_the_file(tmp_path, content, message):
    src = tmp_path / "bad.py"
    src.write_bytes(content)
    with pytest.raises(OptionError) as info:
        module_classes(src)
    assert str(info.value).startswith(f"{src}") and message in str(info.value)


def test_missing_files_and_folders(tmp_path):
    with pytest.raises(OptionError, match="no such file"):
        module_classes(tmp_path / "none.py")
    with pytest.raises(OptionError, match="is a folder"):
        module_classes(tmp_path)


@fuzz_settings(200, 3000)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_file_is_a_list_or_a_message(tmp_path_factory, data):
    src = tmp_path_factory.mktemp("src") / "f.py"
    src.write_bytes(b"import torch.nn as nn\nclass Net(nn.Module): pass\n" + data)
    try:
        found = module_classes(src)
    except OptionError as exc:
        assert str(exc).startswith(str(src))
    else:
        assert all(c.name.isidentifier() for c in found)
