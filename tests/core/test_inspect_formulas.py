"""The arithmetic shown for every block (issue 11 §1): the number at the end of every formula is
the shape inference's, the statistics' and torch's, for random parameters of every block type; the
filled-in text itself computes that number; and a shape error shows the step that goes wrong."""

from __future__ import annotations

import math
import os
import re
import warnings
from fractions import Fraction

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cnnbuilder.core.blocks import REGISTRY, ParamError, get_spec
from cnnbuilder.core.graph import Graph
from cnnbuilder.core.inspect.formulas import (
    RULES,
    all_arithmetic,
    arithmetic,
    block_arithmetic,
    error_arithmetic,
)
from cnnbuilder.core.project import load_project
from cnnbuilder.core.shapes import analyze
from tests.core.test_blocks_vs_torch import (
    SPATIAL,
    block_case,
    excluded,
    input_shapes,
    ours,
    param_value,
    theirs,
    torch_kwargs,
)
from tests.fuzz import EXAMPLES, fuzz_settings, randomly_edited


def evaluate(filled: str):
    """Compute a filled-in formula from its text alone, as a reader would."""
    expr = filled.replace("⌊", "math.floor(").replace("⌈", "math.ceil(").replace("⌋", ")").replace("⌉", ")")
    expr = expr.replace("·", "*").replace("−", "-")
    # whole numbers become exact fractions (so `/` is exact), decimals stay floats as torch's are
    expr = re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", lambda m: m.group() if ("." in m.group() or "e" in m.group())
                  else f"Fraction({m.group()})", expr)
    return eval(expr, {"math": math, "Fraction": Fraction})  # noqa: S307 - text we generated


def check_formulas(b) -> None:
    for f in (*b.shape, b.params, b.macs):
        if f.filled and f.filled != str(f.value):
            assert evaluate(f.filled) == (f.raw if f.raw is not None else f.value), f.text
        shown = str(f.value).replace("-", "−")
        assert f"= {shown}" in f.text or f"→ {shown}" in f.text, f.text


FLAT = {"Linear", "BatchNorm1d"}


@st.composite
def working_case(draw, type_name):
    """Like block_case, with inputs of the rank the block takes, large enough that most draws work."""
    spec = get_spec(type_name)
    if type_name in SPATIAL or type_name == "Dropout2d":
        shape = draw(st.tuples(st.integers(1, 6), st.integers(6, 20), st.integers(6, 20)))
    elif type_name in FLAT:
        shape = draw(st.tuples(st.integers(1, 24)))
    else:
        shape = draw(input_shapes())
    params = {}
    for p in spec.params:
        if p.inferred and draw(st.booleans()):
            continue
        if draw(st.integers(0, 2)) or p.required:
            params[p.name] = draw(param_value(p, shape))
    return shape, params


def single(type_name, shape, params):
    g = Graph()
    i = g.add_node("Input", {"shape": list(shape)}).id
    n = g.add_node(type_name, params).id
    g.connect(i, n)
    return g, n


def test_every_block_type_has_its_arithmetic():
    assert set(RULES) == set(REGISTRY)


@pytest.mark.parametrize("type_name", sorted(t for t, s in REGISTRY.items() if s.module))
def test_formula_numbers_are_shape_inference_stats_and_torch(type_name):
    """For random parameters: every formula's number equals the analysis (shape, params, MACs) and the
    real torch module (output size, parameter count); its text computes its number."""

    @settings(max_examples=int(os.environ.get("CNNB_EXAMPLES", 50)), deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(working_case(type_name))
    def check(case):
        shape, params = case
        spec = get_spec(type_name)
        try:
            spec.check_params(params)
        except ParamError:
            assume(False)
        assume(not excluded(type_name, shape, params))
        info = ours(type_name, shape, params)
        assume(info.error is None)
        b = arithmetic(type_name, info.resolved, info.inputs)
        assert b.values == info.shape
        assert (b.params.value, b.macs.value) == (info.stats.params, info.stats.macs)
        assert not b.error
        check_formulas(b)
        if type_name in SPATIAL and len(shape) != 3:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module, y, _ = theirs(type_name, torch_kwargs(spec, params, shape), shape)
        assert tuple(y.shape[1:]) == b.values, (params, shape)
        assert b.params.value == sum(p.numel() for p in module.parameters() if p.requires_grad)

    check()


@given(shapes=st.lists(st.tuples(st.integers(1, 5), st.sampled_from([1, 4]), st.sampled_from([1, 4])),
                       min_size=2, max_size=4), merge=st.sampled_from(["Add", "Mul", "Concat"]),
       dim=st.sampled_from([1, -3]))
@settings(max_examples=60, deadline=None)
def test_merge_formulas_agree_with_torch(shapes, merge, dim):
    params = {"dim": dim} if merge == "Concat" else {}
    resolved = REGISTRY[merge].resolve(params)
    from cnnbuilder.core.blocks.base import Ctx, ShapeError

    try:
        out = REGISTRY[merge].infer(Ctx(dict(resolved), list(shapes)))
    except ShapeError:
        return
    b = arithmetic(merge, resolved, list(shapes))
    check_formulas(b)
    tensors = [torch.zeros(1, *s) for s in shapes]
    if merge == "Concat":
        y = torch.cat(tensors, dim=dim)
    elif merge == "Mul":
        y = math.prod(tensors[1:], start=tensors[0])
    else:
        y = sum(tensors[1:], tensors[0])
    assert b.values == out == tuple(y.shape[1:])


@given(shape=st.tuples(st.integers(1, 12), st.integers(1, 5), st.integers(1, 5)),
       dim=st.sampled_from([1, 2, 3, -3, -1]),
       chunks=st.integers(1, 6), cuts=st.lists(st.integers(1, 4), min_size=1, max_size=4))
@settings(max_examples=80, deadline=None)
def test_split_and_chunk_formulas_give_the_first_part_and_list_them_all(shape, dim, chunks, cuts):
    """A Split/Chunk's formulas describe output 0 (the block's shape line) and name every part."""
    from cnnbuilder.core.blocks.base import Ctx, ShapeError

    d = (dim % 4) - 1  # the index in the batch-less shape
    sections = tuple(cuts[:-1]) + (shape[d] - sum(cuts[:-1]),) if sum(cuts[:-1]) < shape[d] else (shape[d],)
    x = torch.zeros(1, *shape)
    for block, params, parts in (("Split", {"split_size_or_sections": sections, "dim": dim},
                                  torch.split(x, list(sections), dim=dim)),
                                 ("Chunk", {"chunks": chunks, "dim": dim},
                                  torch.chunk(x, chunks, dim=dim))):
        resolved = REGISTRY[block].resolve(params)
        try:
            out = REGISTRY[block].infer(Ctx(dict(resolved), [shape]))
        except ShapeError:
            assert block == "Chunk" and len(parts) != chunks  # torch quietly gives fewer parts
            continue
        b = arithmetic(block, resolved, [shape])
        check_formulas(b)
        assert b.values == out == tuple(parts[0].shape[1:])
        split_line = b.shape[d]
        listed = " + ".join(str(p.shape[d + 1]) for p in parts)
        assert f"{listed} = {shape[d]}" in split_line.text and f"of {len(parts)}" in split_line.text, split_line.text


def test_new_blocks_read_sensibly():
    pad = arithmetic("ZeroPad2d", REGISTRY["ZeroPad2d"].resolve({"padding": (1, 2, -1, 0)}), [(3, 8, 8)])
    assert [f.text for f in pad.shape] == ["C = 3 (as the input)", "H: 8 − 1 = 7 (negative padding crops)",
                                           "W: 8 + 1 + 2 = 11"]
    se = arithmetic("Unflatten", REGISTRY["Unflatten"].resolve({}), [(64,)])
    assert se.values == (64, 1, 1) and "the -1 in unflattened_size" in se.shape[0].text
    prelu = arithmetic("PReLU", REGISTRY["PReLU"].resolve({"num_parameters": 8}), [(8, 4, 4)])
    assert prelu.params.value == 8 and "per channel" in prelu.params.text


def test_textbook_examples_read_as_the_issue_writes_them():
    g = load_project(EXAMPLES[[p.stem for p in EXAMPLES].index("mnist_cnn")]).graph
    a = analyze(g)
    conv1 = block_arithmetic(g, g.find("conv1").id, a)
    assert "H, W: ⌊(28 − 5 + 2·2)/1⌋ + 1 = 28" in conv1.lines()
    assert conv1.params.text == "params: 16·(1·5·5) + 16 = 416"
    assert conv1.params.general == "K·(C·Fh·Fw) + K"
    assert conv1.macs.text == "MACs: 16·28·28·(1·5·5) = 313600"
    assert block_arithmetic(g, g.find("flatten1").id, a).shape[0].text == "features: 32·7·7 = 1568"
    fc = block_arithmetic(g, g.find("fc1").id, a)
    assert fc.params.text == "params: 1568·10 + 10 = 15690" and fc.macs.text == "MACs: 1568·10 = 15680"
    assert "the output has the input's shape: 16×28×28" in block_arithmetic(g, g.find("relu1").id, a).lines()[0]


def test_dilation_groups_and_no_bias():
    g, n = single("Conv2d", (8, 28, 20), {"out_channels": 4, "kernel_size": [3, 5], "dilation": 2, "groups": 4,
                                          "stride": [2, 1], "padding": [1, 0], "bias": False})
    b = block_arithmetic(g, n)
    assert b.shape[1].general == "⌊(H + 2P − D·(F − 1) − 1)/S⌋ + 1"
    assert b.shape[1].text == "H: ⌊(28 + 2·1 − 2·(3 − 1) − 1)/2⌋ + 1 = 13"
    assert b.shape[2].text == "W: ⌊(20 + 0 − 2·(5 − 1) − 1)/1⌋ + 1 = 12"
    assert b.params.text == "params: 4·(8/4·3·5) = 120 (no bias)"
    assert b.values == analyze(g).nodes[n].shape


def test_pooling_ceil_mode_explains_the_dropped_window():
    g, n = single("MaxPool2d", (3, 5, 5), {"kernel_size": 2, "padding": 1, "ceil_mode": True})
    h = block_arithmetic(g, n).shape[1]
    assert h.text.startswith("H: ⌈(5 − 2 + 2·1)/2⌉ + 1 = 4 → 3 (ceil_mode: the last window would start")
    assert torch.nn.MaxPool2d(2, padding=1, ceil_mode=True)(torch.zeros(1, 3, 5, 5)).shape[-1] == h.value == 3


def test_transposed_adaptive_upsample_and_norms():
    g, n = single("ConvTranspose2d", (8, 7, 7), {"out_channels": 4, "kernel_size": 4, "stride": 2, "padding": 1,
                                                 "output_padding": 1, "groups": 2})
    b = block_arithmetic(g, n)
    assert b.shape[1].text == "H: (7 − 1)·2 − 2·1 + 4 + 1 = 15" and b.params.text == "params: 8·(4/2·4·4) + 4 = 260"
    g, n = single("AdaptiveAvgPool2d", (3, 5, 6), {"output_size": [2, None]})
    assert [f.text for f in block_arithmetic(g, n).shape] == [
        "C = 3 (as the input)", "H = 2 (output_size)", "W = 6 (output_size leaves it as the input's)"]
    g, n = single("Upsample", (3, 5, 5), {"scale_factor": 1.5})
    assert block_arithmetic(g, n).shape[1].text == "H: ⌊5·1.5⌋ = 7"
    g, n = single("BatchNorm2d", (16, 5, 5), {})
    assert block_arithmetic(g, n).params.text.startswith("params: 2·16 = 32")
    g, n = single("LayerNorm", (3, 5, 6), {"bias": False})
    assert block_arithmetic(g, n).params.text.startswith("params: 3·5·6 = 90")


def test_concat_adds_up_the_joined_dimension():
    g = load_project(EXAMPLES[[p.stem for p in EXAMPLES].index("inception_block")]).graph
    b = block_arithmetic(g, g.find("concat").id)
    c = b.shape[0]
    assert c.general.startswith("C₁ + C₂") and c.value == analyze(g).nodes[g.find("concat").id].shape[0]
    assert evaluate(c.filled) == c.value


def test_a_shape_error_shows_where_the_arithmetic_breaks():
    g, n = single("Conv2d", (1, 3, 3), {"out_channels": 4, "kernel_size": 5})
    a = analyze(g)
    assert a.nodes[n].error == "kernel 5×5 is larger than the padded input 3×3"
    assert error_arithmetic(g, n, a) == "H: ⌊(3 − 5 + 0)/1⌋ + 1 = −1: the kernel is larger than the padded input"
    g, n = single("AvgPool2d", (3, 2, 7), {"kernel_size": 3})
    assert error_arithmetic(g, n) == "H: ⌊(2 − 3 + 0)/3⌋ + 1 = 0: the window is larger than the padded input"
    g, n = single("ConvTranspose2d", (3, 2, 2), {"out_channels": 2, "kernel_size": 1, "padding": 3})
    assert "= −4: the padding removes more than the output has" in error_arithmetic(g, n)
    # errors that are not arithmetic get none
    g, n = single("Conv2d", (3, 8, 8), {"out_channels": 4, "in_channels": 1})
    assert analyze(g).nodes[n].error and error_arithmetic(g, n) is None
    g, n = single("Conv2d", (3, 8, 8), {"out_channels": 4})
    assert error_arithmetic(g, n) is None


@pytest.mark.parametrize("type_name", ["Conv2d", "MaxPool2d", "AvgPool2d", "ConvTranspose2d"])
def test_every_empty_output_error_has_its_arithmetic(type_name):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(block_case(type_name))
    def check(case):
        shape, params = case
        try:
            get_spec(type_name).check_params(params)
        except ParamError:
            assume(False)
        assume(len(shape) == 3)
        g, n = single(type_name, shape, params)
        a = analyze(g)
        err = a.nodes[n].error or ""
        where = error_arithmetic(g, n, a)
        if "larger than the padded input" in err or "would be empty" in err or "is too large" in err:
            assert where, err
        if where:
            assert err and re.search(r"= (−\d+|0): ", where), where

    check()


@given(seed=st.integers(0, 2**32), steps=st.integers(1, 20), example=st.sampled_from(EXAMPLES))
@fuzz_settings(default=40, long=1000)
def test_hostile_graphs_never_break_the_arithmetic(seed, steps, example):
    g = randomly_edited(example, seed, steps)
    a = analyze(g)
    found = all_arithmetic(g, a)
    for nid, b in found.items():
        info = a.nodes[nid]
        if info.error is None:
            assert b.values == info.shape and b.params.value == info.stats.params
        "\n".join(b.lines()).encode("utf-8")
        error_arithmetic(g, nid, a)
