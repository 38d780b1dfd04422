"""Receptive fields and jumps (issue 11 §1) against brute force: in a float64 model whose weights
are all positive (so no gradients cancel), the gradient of one output unit with respect to the
input is non-zero exactly within the field the recurrence gives. Max pooling passes gradient to
one pixel of its window only, so the brute-force models pool by averaging over the same windows."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from torch import nn

from cnnbuilder.core.codegen import generate, instantiate
from cnnbuilder.core.graph import Graph
from cnnbuilder.core.inspect.receptive import receptive_fields
from cnnbuilder.core.project import load_project
from cnnbuilder.core.shapes import analyze
from tests.fuzz import EXAMPLES, fuzz_settings, randomly_edited

EXAMPLE = {p.stem: p for p in EXAMPLES}


def positive_model(graph):
    """The graph's model in float64 with positive weights, BatchNorm as a positive scale, max pooling
    replaced by average pooling over the same windows and nothing in place."""
    gen = generate(graph)
    model = instantiate(gen).double().eval()

    def swap(parent):
        for name, child in parent.named_children():
            if isinstance(child, nn.MaxPool2d):
                assert child.dilation in (1, (1, 1))
                setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode))
            else:
                swap(child)

    swap(model)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) * 0.9 + 0.1)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
            if hasattr(m, "inplace"):
                m.inplace = False
    return model, gen


def gradient_box(graph, node_id, unit):
    """Rows and columns (first, last) where d(sum over channels of the unit)/d(input) is non-zero."""
    model, gen = positive_model(graph)
    a = analyze(graph)
    got = []
    node = graph.node(node_id)
    if node.spec.module:
        handle = model.get_submodule(gen.attr_of[node_id]).register_forward_hook(lambda m, i, o: got.append(o))
    elif not graph.outputs(node_id):
        handle = model.register_forward_hook(lambda m, i, o: got.append(o))
    else:
        consumer = graph.outputs(node_id)[0]
        handle = model.get_submodule(gen.attr_of[consumer]).register_forward_pre_hook(
            lambda m, args: got.append(args[0]))
    x = (torch.rand(1, *a.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 0.5)
    x.requires_grad_(True)
    model(x)
    handle.remove()
    (grad,) = torch.autograd.grad(got[0][0, :, unit[0], unit[1]].sum(), x)
    nz = grad[0].abs().sum(0) != 0
    if not nz.any():
        return None  # the unit reads only padding
    rows = torch.nonzero(nz.any(1)).flatten()
    cols = torch.nonzero(nz.any(0)).flatten()
    return (int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))


def check_field(graph, node_id, require_exact_unit=False) -> bool:
    """The gradient of the centre unit lies within its field (clipped to the image); for a unit whose
    field lies inside the image it fills the field exactly. True when such a unit was checked."""
    a = analyze(graph)
    f = receptive_fields(graph, a)[node_id]
    assert f.exact
    _, oh, ow = a.nodes[node_id].shape
    _, H, W = a.input_shape
    centre = (oh // 2, ow // 2)
    (r0, r1), (c0, c1) = f.span(centre)
    box = gradient_box(graph, node_id, centre)
    if box is not None:
        (g0, g1), (h0, h1) = box
        assert max(r0, 0) <= g0 <= g1 <= min(r1, H - 1) and max(c0, 0) <= h0 <= h1 <= min(c1, W - 1), \
            (f, centre, box)
    inside = [(i, j) for i in range(oh) for j in range(ow)
              if f.span((i, j))[0][0] >= 0 and f.span((i, j))[0][1] <= H - 1
              and f.span((i, j))[1][0] >= 0 and f.span((i, j))[1][1] <= W - 1]
    if not inside:
        assert not require_exact_unit
        return False
    unit = inside[len(inside) // 2]
    span = f.span(unit)
    assert gradient_box(graph, node_id, unit) == tuple((int(lo), int(hi)) for lo, hi in span), (f, unit)
    return True


LAYER = st.one_of(
    st.fixed_dictionaries({"type": st.just("Conv2d"), "kernel_size": st.integers(1, 5), "stride": st.integers(1, 3),
                           "padding": st.integers(0, 2), "dilation": st.integers(1, 3)}),
    st.fixed_dictionaries({"type": st.sampled_from(["MaxPool2d", "AvgPool2d"]), "kernel_size": st.integers(1, 4),
                           "stride": st.one_of(st.none(), st.integers(1, 3)), "ceil_mode": st.booleans()}),
    st.fixed_dictionaries({"type": st.sampled_from(["ReLU", "BatchNorm2d", "Mish", "Hardswish"])}),
    # a shift of the field by the top/left padding; negative padding crops
    st.fixed_dictionaries({"type": st.just("ZeroPad2d"),
                           "padding": st.lists(st.integers(0, 3), min_size=4, max_size=4)}),
)


@given(layers=st.lists(LAYER, min_size=1, max_size=5), size=st.tuples(st.integers(8, 40), st.integers(8, 40)))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_chains_match_the_gradient(layers, size):
    g = Graph()
    prev = g.add_node("Input", {"shape": [2, *size]}).id
    for spec in layers:
        params = {k: v for k, v in spec.items() if k != "type"}
        if spec["type"] == "Conv2d":
            params["out_channels"] = 3
        if spec["type"] in ("MaxPool2d", "AvgPool2d"):
            params["padding"] = spec["kernel_size"] // 2
        n = g.add_node(spec["type"], params).id
        g.connect(prev, n)
        prev = n
    assume(analyze(g).ok)
    event(f"a unit inside the image checked exactly: {check_field(g, prev)}")


def test_a_crop_is_a_shift_and_marked_as_a_bound():
    """Negative ZeroPad2d padding shifts the field like positive padding, but a later pad can put a
    unit where the cut pixels were (it then sees nothing): the field is a bound, the gradient inside it."""
    g = Graph()
    prev = g.add_node("Input", {"shape": [1, 12, 12]}).id
    for t, p in (("Conv2d", {"out_channels": 2, "kernel_size": 3}), ("ZeroPad2d", {"padding": [-2, 1, -1, 0]}),
                 ("Conv2d", {"out_channels": 2, "kernel_size": 3, "padding": 1})):
        n = g.add_node(t, p).id
        g.connect(prev, n)
        prev = n
    f = receptive_fields(g)[prev]
    assert not f.exact and "crops" in f.note
    assert f.size == (5.0, 5.0) and f.start == (0.0, 1.0)  # output (0, 0) sits over input rows 0-4, cols 1-5
    _, oh, ow = analyze(g).nodes[prev].shape
    for unit in ((0, 0), (oh // 2, ow // 2), (oh - 1, ow - 1)):
        box = gradient_box(g, prev, unit)
        (r0, r1), (c0, c1) = f.span(unit)
        assert box is not None
        (g0, g1), (h0, h1) = box
        assert max(r0, 0) <= g0 <= g1 <= r1 and max(c0, 0) <= h0 <= h1 <= c1, (unit, box, f.span(unit))


def test_known_fields_of_the_examples():
    g = load_project(EXAMPLE["mnist_cnn"]).graph
    f = receptive_fields(g)
    # conv 5 (pad 2) -> pool 2 -> conv 5 (pad 2) -> pool 2: r = 1 + 4 + 1 + 4·2 + 1·2 = 16, jump 4
    assert f[g.find("pool2").id].size == (16, 16) and f[g.find("pool2").id].jump == (4, 4)
    assert f[g.find("conv1").id].start == (-2, -2)
    assert f[g.find("pool2").id].text == "16×16, jump 4"
    assert (f[g.find("pool2").id].size_text, f[g.find("pool2").id].jump_text) == ("16×16", "4")  # CSV columns
    assert f[g.find("fc1").id].size is None and f[g.find("fc1").id].text == "—"
    assert f[g.find("fc1").id].size_text == f[g.find("fc1").id].jump_text == ""


@pytest.mark.parametrize("example, block", [("mnist_cnn", "pool2"), ("resnet_small", "block2_out"),
                                            ("resnet_small", "block1_add"), ("inception_block", "relu2"),
                                            ("inception_block", "concat"), ("vgg_cifar10", "pool2")])
def test_graphs_with_branches_match_the_gradient(example, block):
    """Residual and inception blocks: the field is the union over all paths (the largest)."""
    g = load_project(EXAMPLE[example]).graph
    assert check_field(g, g.find(block).id, require_exact_unit=True)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_branches_with_offset_fields_take_their_union():
    # 'same' padding puts the odd pixel after: two 2×2 convolutions see [o, o+2], a 3×3 one [o−1, o+1];
    # neither holds the other, and the Add sees [o−1, o+2], 4 wide
    g = Graph()
    x = g.add_node("Input", {"shape": [1, 12, 12]}).id
    a1 = g.add_node("Conv2d", {"out_channels": 2, "kernel_size": 2, "padding": "same"}).id
    a2 = g.add_node("Conv2d", {"out_channels": 2, "kernel_size": 2, "padding": "same"}).id
    b = g.add_node("Conv2d", {"out_channels": 2, "kernel_size": 3, "padding": 1}).id
    add = g.add_node("Add").id
    for s, d in ((x, a1), (a1, a2), (x, b), (a2, add), (b, add)):
        g.connect(s, d)
    f = receptive_fields(g)
    assert (f[a2].size, f[a2].start) == ((3, 3), (0, 0)) and (f[b].size, f[b].start) == ((3, 3), (-1, -1))
    assert (f[add].size, f[add].start) == ((4, 4), (-1, -1))
    assert check_field(g, add, require_exact_unit=True)


def test_blocks_without_a_fixed_window_are_marked_as_bounds():
    g = Graph()
    x = g.add_node("Input", {"shape": [1, 10, 10]}).id
    ada = g.add_node("AdaptiveAvgPool2d", {"output_size": 3}).id
    up = g.add_node("Upsample", {"scale_factor": 2.0}).id
    gap = g.add_node("AdaptiveAvgPool2d", {"output_size": 5}).id
    g.connect(x, ada)
    g.connect(x, gap)
    g.connect(ada, up)
    f = receptive_fields(g)
    assert not f[ada].exact and f[ada].text.startswith("≈") and f[ada].size == (4, 4)
    assert f[ada].size_text == "≈4×4" and f[ada].text == f"{f[ada].size_text}, jump {f[ada].jump_text}"
    assert not f[up].exact
    assert f[gap].exact and f[gap].size == (2, 2) and f[gap].jump == (2, 2)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_same_padding_and_strided_transposed_convolution():
    g = Graph()
    x = g.add_node("Input", {"shape": [1, 16, 16]}).id
    c = g.add_node("Conv2d", {"out_channels": 2, "kernel_size": 4, "padding": "same"}).id
    t = g.add_node("ConvTranspose2d", {"out_channels": 2, "kernel_size": 3, "stride": 1}).id
    t2 = g.add_node("ConvTranspose2d", {"out_channels": 2, "kernel_size": 4, "stride": 2}).id
    g.connect(x, c)
    g.connect(c, t)
    g.connect(t, t2)
    f = receptive_fields(g)
    assert f[c].size == (4, 4) and f[c].start == (-1, -1)  # torch pads 1 before and 2 after
    assert f[t].exact and f[t].size == (6, 6)
    assert check_field(g, t)
    assert not f[t2].exact


@given(seed=st.integers(0, 2**32), steps=st.integers(1, 20), example=st.sampled_from(EXAMPLES))
@fuzz_settings(default=40, long=1000)
def test_hostile_graphs_never_break_the_fields(seed, steps, example):
    g = randomly_edited(example, seed, steps)
    a = analyze(g)
    for nid, f in receptive_fields(g, a).items():
        assert a.nodes[nid].shape is not None
        assert f.text
        if f.size is not None:
            assert f.size[0] >= 1 and f.size[1] >= 1
