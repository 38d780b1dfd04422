"""Groups in the generated code: a group is one nn.Module class, identical groups share one, and
grouping never changes what the model computes. Random graphs (tests/core/test_codegen_fuzz.py's
generator) get random groupings, nested ones included, and the grouped code is run against the
same graph ungrouped with each block's weights copied across by block id through `attr_of`:
outputs and gradients must be equal, bit for bit."""

from __future__ import annotations

import re
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cnnbuilder.core.architectures import ARCHITECTURES
from cnnbuilder.core.codegen import generate, instantiate
from cnnbuilder.core.graph import Graph
from cnnbuilder.core.shapes import analyze

from .reference import assert_ruff_clean, one_thread  # noqa: F401 (autouse)
from .test_codegen_fuzz import FUZZ, graphs


def ungrouped(g: Graph) -> Graph:
    flat = g.copy()
    for grp in flat.groups:
        flat.remove_group(grp.id)
    assert not flat.groups
    return flat


def twins(g: Graph):
    """The grouped model and the ungrouped one, with the same weights block by block."""
    gen, flat_gen = generate(g), generate(ungrouped(g))
    torch.manual_seed(0)
    model, flat = instantiate(gen), instantiate(flat_gen)
    assert len(model.state_dict()) == len(flat.state_dict())
    for n in g:
        if n.spec.module and n.type != "Input":
            mine = model.get_submodule(gen.attr_of[n.id])
            assert type(mine).__name__ == n.type
            mine.load_state_dict(flat.get_submodule(flat_gen.attr_of[n.id]).state_dict())
    return gen, model, flat


def _random(g: Graph) -> bool:
    a = analyze(g)
    return any(a.nodes[n.id].resolved.get("p", 0) > 0 for n in g if n.type.startswith("Dropout"))


def assert_same_model(g: Graph, seed: int = 0):
    gen, model, flat = twins(g)
    x = torch.randn(3, *analyze(g).input_shape, generator=torch.Generator().manual_seed(seed))
    # Dropout draws its masks in forward order, which grouping may change: train mode only without it.
    for train in (False,) if _random(g) else (False, True):
        results = []
        for m in (model, flat):
            m.train(train)
            m.zero_grad()
            xi = x.clone().requires_grad_(True)
            y = m(xi)
            y.mul(torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
            results.append((y.detach(), xi.grad))
        (y1, gx1), (y2, gx2) = results
        assert torch.equal(y1, y2), (y1 - y2).abs().max()
        assert torch.equal(gx1, gx2)
    return gen


@st.composite
def grouped(draw, max_blocks: int = 10) -> Graph:
    """A random graph with random groups: runs of blocks (and groups) in one scope, in the order the
    model computes them, made a group wherever that is allowed; some inside earlier groups."""
    g = draw(graphs(max_blocks))
    for _ in range(draw(st.integers(1, 4))):
        scope = draw(st.sampled_from([None, *(grp.id for grp in g.groups)]))
        blocks, groups = g.members(scope)
        blocks = [b for b in blocks if g.node(b).type != "Input"]
        pool = [("n", b) for b in blocks] + [("g", x) for x in groups]
        if not pool:
            continue
        order = {nid: i for i, nid in enumerate(g.topo_order())}

        def first(item, order=order):
            return order[item[1]] if item[0] == "n" else min(order[n] for n in g.group_nodes(item[1]))

        pool.sort(key=first)
        i = draw(st.integers(0, len(pool) - 1))
        j = draw(st.integers(i + 1, len(pool)))
        picked = pool[i:j]
        nodes, subgroups = [x for k, x in picked if k == "n"], [x for k, x in picked if k == "g"]
        if g.grouping_problem(nodes, subgroups) is None:
            g.add_group(draw(st.sampled_from(["block", "stage", "unit", "x", "self", "forward", "Net", "1a", "é"])),
                        nodes, subgroups, cls=draw(st.sampled_from(["", "", "Block", "Net"])))
    return g


@FUZZ
@given(grouped())
def test_grouped_code_computes_exactly_what_the_ungrouped_code_computes(g):
    gen = assert_same_model(g)
    # Every group that holds blocks is a module of its class, at its path.
    model = instantiate(gen)
    for gid, path in gen.attr_of_group.items():
        assert type(model.get_submodule(path)).__name__ == gen.class_of[gid]
    assert set(gen.class_of) == {grp.id for grp in g.groups if g.group_nodes(grp.id)}


def _chain(g: Graph, src: str, *blocks, names: list[str] | None = None) -> list[str]:
    ids = []
    for i, (t, p) in enumerate(blocks):
        n = g.add_node(t, p, name=names[i] if names else None)
        g.connect(src, n.id)
        src = n.id
        ids.append(n.id)
    return ids


CONV = ("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1})


def residual(g: Graph, x: str, name: str, channels: int = 4) -> tuple[str, list[str]]:
    conv = ("Conv2d", {"out_channels": channels, "kernel_size": 3, "padding": 1})
    c1, r, c2 = _chain(g, x, conv, ("ReLU", {"inplace": True}), conv,
                       names=[f"{name}_conv1", f"{name}_relu", f"{name}_conv2"])
    add = g.add_node("Add", {}, name=f"{name}_add").id
    g.connect(c2, add)
    g.connect(x, add)
    return add, [c1, r, c2, add]


def resnet_like(blocks: int = 3, odd: int | None = None, shape=(3, 8, 8), classes: int = 3) -> Graph:
    g = Graph()
    x = g.add_node("Input", {"shape": list(shape)}).id
    (x,) = _chain(g, x, CONV, names=["stem"])
    for b in range(blocks):
        x, members = residual(g, x, f"block{b}")
        if b == odd:
            g.set_param(members[0], "kernel_size", 1)
            g.set_param(members[0], "padding", 0)
        g.add_group(f"block{b}", members, cls="BasicBlock")
    _chain(g, x, ("Flatten", {}), ("Linear", {"out_features": classes}))
    return g


def test_identical_groups_share_one_class_used_each_time():
    g = resnet_like(3)
    gen = assert_same_model(g)
    assert len(re.findall(r"^class ", gen.code, re.M)) == 2  # BasicBlock and Net
    assert gen.code.count("BasicBlock()") == 3
    assert set(gen.class_of.values()) == {"BasicBlock"}
    # The names inside the class lose their group's name in front (block1_conv1 is conv1), so each
    # block's module is found at the same place in every copy; their lines are the class's lines.
    ids = [n.id for n in g if n.name.endswith("_conv1")]
    assert [gen.attr_of[i] for i in ids] == ["block0.conv1", "block1.conv1", "block2.conv1"]
    assert gen.lines_of[ids[0]] == gen.lines_of[ids[1]] == gen.lines_of[ids[2]]
    lines = gen.code.splitlines()
    assert any("self.conv1 = nn.Conv2d(4, 4" in lines[ln - 1] for ln in gen.lines_of[ids[2]])


def test_groups_that_differ_get_classes_of_their_own():
    gen = assert_same_model(resnet_like(3, odd=1))
    assert re.findall(r"^class (\w+)", gen.code, re.M) == ["BasicBlock", "BasicBlock2", "Net"]
    assert gen.code.count("BasicBlock()") == 2 and gen.code.count("BasicBlock2()") == 1


def test_nested_groups_nest_classes_inner_first_with_full_paths():
    g = resnet_like(2)
    inner = [grp.id for grp in g.groups]
    stage = g.add_group("stage", groups=inner).id
    gen = assert_same_model(g)
    classes = re.findall(r"^class (\w+)\((nn\.\w+)\)", gen.code, re.M)
    assert classes == [("BasicBlock", "nn.Module"), ("Stage", "nn.Sequential"), ("Net", "nn.Module")]
    conv1 = [n.id for n in g if n.name == "block1_conv1"][0]
    assert gen.attr_of[conv1] == "stage.1.conv1"
    assert gen.attr_of_group == {stage: "stage", inner[0]: "stage.0", inner[1]: "stage.1"}
    model = instantiate(gen)
    assert isinstance(model.get_submodule(gen.attr_of[conv1]), torch.nn.Conv2d)
    assert "self.stage = Stage()" in gen.code and "x = self.stage(x)" in gen.code


def test_a_group_with_two_inputs_and_two_outputs():
    g = Graph()
    x = g.add_node("Input", {"shape": [4, 6, 6]}).id
    a, b = _chain(g, x, CONV, names=["a"])[0], _chain(g, x, CONV, names=["b"])[0]
    add = g.add_node("Add", {}, name="sum").id
    mul = g.add_node("Mul", {}, name="product").id
    for src in (a, b):
        g.connect(src, add)
        g.connect(src, mul)
    relu = _chain(g, add, ("ReLU", {"inplace": True}), names=["relu"])[0]
    grp = g.add_group("mix", [add, mul, relu]).id
    cat = g.add_node("Concat", {}, name="cat").id
    g.connect(relu, cat)
    g.connect(mul, cat)
    _chain(g, cat, ("Flatten", {}), ("Linear", {"out_features": 2}))
    assert g.group_interface(grp) == ([(a, 0), (b, 0)], [(mul, 0), (relu, 0)])
    gen = assert_same_model(g)
    assert "def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, ...]:" in gen.code
    assert re.search(r"^        \w+, \w+ = self\.mix\(a, \w+\)  # 4×6×6, 4×6×6$", gen.code, re.M), gen.code
    assert re.search(r"^        return \w+, \w+$", gen.code, re.M)


def test_a_group_output_read_inside_too_is_not_overwritten_before_it_is_returned():
    # conv -> relu(inplace) inside the group, conv also read outside: relu must not clobber it, and
    # the variable holding conv's output must survive to the return.
    g = Graph()
    x = g.add_node("Input", {"shape": [2, 4, 4]}).id
    conv, relu = _chain(g, x, CONV, ("ReLU", {"inplace": True}))
    tail = _chain(g, relu, CONV)[0]
    add = g.add_node("Add", {}).id
    g.connect(tail, add)
    g.connect(conv, add)
    _chain(g, add, ("Flatten", {}), ("Linear", {"out_features": 2}))
    g.add_group("pair", [conv, relu, tail])
    gen = assert_same_model(g)
    assert gen.not_in_place == {relu: "conv1's output is also read by add1"}
    assert re.search(r"^        return (\w+), (?!\1)\w+$", gen.code, re.M), gen.code


def test_empty_groups_write_nothing():
    g = resnet_like(1)
    plain = generate(g).code
    g.add_group("nothing")
    g.add_group("inner nothing", parent=g.add_group("outer nothing").id)
    assert generate(g).code == plain


def test_blocks_in_groups_are_found_by_feature_maps_and_weights_files():
    from cnnbuilder.core.training import featuremaps

    g = resnet_like(2)
    gen = generate(g)
    model = instantiate(gen).eval()
    add = [n.id for n in g if n.name == "block1_add"][0]
    conv = [n.id for n in g if n.name == "block1_conv2"][0]
    sample = torch.randn(1, 3, 8, 8)
    for nid in (conv, add):  # a module, and an Add found through the block reading it
        maps, channels, msg = featuremaps.capture(model, g, gen.attr_of, nid, sample)
        assert channels == 4 and maps.shape == (4, 8, 8), msg


def _ruff_clean(tmp_path, codes: dict[str, str]):
    for name, code in codes.items():
        (tmp_path / f"{name}.py").write_text(code, encoding="utf-8")
    assert_ruff_clean(tmp_path)


def test_grouped_code_is_ruff_clean(tmp_path):
    codes = {f"t_{a.key}": generate(a.build().graph).code for a in ARCHITECTURES.values()}
    # Many inputs and outputs, long and hostile group names.
    g = Graph()
    x = g.add_node("Input", {"shape": [2, 4, 4]}).id
    heads = [_chain(g, x, CONV, names=["a" * 40 + str(i)])[0] for i in range(8)]
    inside = []
    for i in range(0, 8, 2):
        add = g.add_node("Add", {}, name=f"very_long_name_of_an_addition_block_{i}").id
        g.connect(heads[i], add)
        g.connect(heads[i + 1], add)
        inside.append(add)
    g.add_group("class " * 10 + "'; import os", inside, cls="Exception")
    cat = g.add_node("Concat", {}).id
    for add in inside:
        g.connect(add, cat)
    _chain(g, cat, ("Flatten", {}), ("Linear", {"out_features": 2}))
    assert_same_model(g)
    codes["wide"] = generate(g).code
    assert "import os" not in codes["wide"].split('"""', 2)[2]
    _ruff_clean(tmp_path, codes)


@pytest.mark.parametrize("key", ["resnet18", "shufflenet_v2_x1_0", "densenet121", "mobilenet_v2"])
def test_templates_share_classes_between_identical_modules(key):
    built = ARCHITECTURES[key].build()
    gen = generate(built.graph)
    names = re.findall(r"^class (\w+)", gen.code, re.M)
    assert len(names) == len(set(names))
    uses = {c: gen.code.count(f"{c}()") for c in names}
    assert max(uses.values()) >= 2, uses  # some class is used for several groups
    assert len(names) - 1 < len(gen.class_of)


def test_exported_script_keeps_group_classes_apart_from_its_own_names(tmp_path):
    """A group named like one of the training script's own classes (Run, Data, ...) gets another
    class name there, so the script still builds the model it trained in the app."""
    import ast

    from cnnbuilder.core.export.script import generate_script
    from cnnbuilder.core.project import Project

    g = resnet_like(4, shape=(1, 28, 28), classes=10)
    for grp, name in zip(g.groups, ["Run", "Data", "Context", "Logger"], strict=True):
        g.rename_group(grp.id, name)
        grp.cls = ""
    code = generate_script(Project(graph=g, name="groups"))
    top = [n.name for n in ast.parse(code).body if isinstance(n, (ast.ClassDef, ast.FunctionDef))]
    assert len(top) == len(set(top)), sorted(n for n in top if top.count(n) > 1)
    import importlib.util

    path = tmp_path / "train_groups.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("train_groups", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_groups"] = module  # its dataclasses look themselves up there
    try:
        spec.loader.exec_module(module)
        model = module.build_model(0).eval()
    finally:
        del sys.modules["train_groups"]
    # The four groups are identical: one class, named after the first, which the script's Run keeps.
    assert "Run2" in {type(m).__name__ for m in model.children()}
    assert not issubclass(module.Run, torch.nn.Module) and not issubclass(module.Data, torch.nn.Module)
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_building_refuses_a_group_attribute_a_newer_torch_has_taken(monkeypatch):
    from cnnbuilder.core.codegen import CodegenError

    g = resnet_like(2)
    g.add_group("stage", groups=[grp.id for grp in g.groups])
    gen = generate(g)
    monkeypatch.setattr(torch.nn.Module, "stage", lambda self: None, raising=False)  # as if torch added it
    with pytest.raises(CodegenError, match="'stage' is taken by torch.nn.Module .*rename the block \\(or its group\\)"):
        instantiate(gen)


def test_identical_groups_that_keep_different_blocks_in_place_do_not_share_a_class():
    # A group's in-place ReLU overwrites a value from outside: after the model's input it must not,
    # after a Conv2d it may. The same drawing, two classes, and both compute what was drawn.
    g = Graph()
    x = g.add_node("Input", {"shape": [4, 4, 4]}).id
    first = _chain(g, x, ("ReLU", {"inplace": True}), CONV, names=["a_relu", "a_conv"])
    second = _chain(g, first[-1], ("ReLU", {"inplace": True}), CONV, names=["b_relu", "b_conv"])
    _chain(g, second[-1], ("Flatten", {}), ("Linear", {"out_features": 2}))
    g.add_group("a", first, cls="Unit")
    g.add_group("b", second, cls="Unit")
    gen = assert_same_model(g)
    assert gen.not_in_place == {first[0]: "its input is the model's input"}
    assert re.findall(r"^class (\w+)", gen.code, re.M) == ["Unit", "Unit2", "Net"]
    assert gen.code.count("nn.ReLU(inplace=True)") == 1
