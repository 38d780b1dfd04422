"""The app and PyTorch must never disagree: random parameters and inputs for every block type,
run through real torch modules, compared on raising vs not raising, output shape, parameter
count and FLOPs (torch.utils.flop_counter)."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnbuilder.core.blocks import REGISTRY, ParamError, get_spec
from cnnbuilder.core.blocks.base import BOOL, CHOICE, DIM, FLOAT, INT, OUTPUT_SIZE, PAD4, PADDING, PAIR, SHAPE
from cnnbuilder.core.graph import Graph
from cnnbuilder.core.shapes import analyze

SPATIAL = {"Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d",
           "Upsample", "BatchNorm2d", "ZeroPad2d"}
MODULE_TYPES = sorted(t for t, s in REGISTRY.items() if s.module)

SMALL_INT = {"out_channels": (1, 8), "out_features": (1, 8), "groups": (1, 4), "num_groups": (1, 4),
             "divisor_override": (1, 4)}


def input_shapes():
    return st.one_of(
        st.tuples(st.integers(1, 24)),
        st.tuples(st.integers(1, 6), st.integers(1, 10)),
        st.tuples(st.integers(1, 6), st.integers(1, 12), st.integers(1, 12)),
    )


@st.composite
def param_value(draw, p, shape):
    if p.inferred:
        # Usually left to inference; sometimes typed right, sometimes typed wrong.
        if p.kind == SHAPE:
            return draw(st.sampled_from([None, list(shape), list(shape[1:]) or [shape[0]], [shape[-1] + 1]]))
        return draw(st.sampled_from([None, shape[0], shape[0] + 1, shape[-1]]))
    if p.nullable and draw(st.booleans()):
        return None
    k = p.kind
    if k == INT:
        lo, hi = SMALL_INT.get(p.name, (1, 6))
        return draw(st.integers(lo, hi))
    if k == FLOAT:
        lo = 0.0 if p.min is None else p.min
        hi = 3.0 if p.max is None else min(p.max, 3.0)
        if p.name in ("min_val", "max_val"):  # Hardtanh: either order, equal, negative
            return draw(st.sampled_from([-1.0, 0.0, 1.0, 6.0]) | st.floats(-3, 3))
        if p.name == "scale_factor":
            lo = 0.25
        if p.name == "eps":
            return draw(st.sampled_from([1e-5, 1e-3]))
        return draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))
    if k == BOOL:
        return draw(st.booleans())
    if k == CHOICE:
        return draw(st.sampled_from(p.choices))
    if k == DIM:
        return draw(st.integers(-4, 3))
    if k in (PAIR, PADDING):
        lo = 0 if p.min == 0 else 1
        hi = 3 if lo == 0 else 5
        if k == PADDING and draw(st.integers(0, 4)) == 0:
            return draw(st.sampled_from(["same", "valid"]))
        if draw(st.booleans()):
            return draw(st.integers(lo, hi))
        return [draw(st.integers(lo, hi)), draw(st.integers(lo, hi))]
    if k == PAD4:  # negative padding crops
        if draw(st.booleans()):
            return draw(st.integers(-2, 3))
        return draw(st.lists(st.integers(-3, 3), min_size=4, max_size=4))
    if k == SHAPE:  # Unflatten's sizes: -1 is inferred; 0 and two -1 are wrong
        return draw(st.sampled_from([[-1], [-1, 1], [-1, 1, 1], [2, -1], [-1, 3], [1, shape[0]], [shape[-1]]])
                    | st.lists(st.sampled_from([-1, 1, 2, 3, 4, 6, 0]), min_size=1, max_size=3))
    if k == OUTPUT_SIZE:
        if draw(st.booleans()):
            return draw(st.integers(1, 5))
        return [draw(st.one_of(st.none(), st.integers(1, 5))), draw(st.one_of(st.none(), st.integers(1, 5)))]
    raise AssertionError(k)


@st.composite
def block_case(draw, type_name):
    spec = get_spec(type_name)
    shape = draw(input_shapes())
    params = {}
    for p in spec.params:
        if draw(st.integers(0, 2)) or p.required:  # mostly set, sometimes left at the default
            params[p.name] = draw(param_value(p, shape))
    return shape, params


def ours(type_name, shape, params):
    g = Graph()
    i = g.add_node("Input", {"shape": list(shape)}).id
    n = g.add_node(type_name, params).id
    g.connect(i, n)
    a = analyze(g)
    return a.nodes[n]


def theirs(type_name, resolved_ctor_kwargs, shape):
    """Build the torch module and run it; returns (module, output) or raises."""
    module = getattr(nn, type_name)(**resolved_ctor_kwargs)
    module.eval()
    x = torch.zeros(2, *shape)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(x)
    return module, y, counter.get_total_flops()


def torch_kwargs(spec, params, shape):
    """What a PyTorch user would write: the typed params plus torch-required inferred sizes."""
    resolved = spec.resolve(spec.check_params(params))
    for p in spec.params:
        if p.inferred and resolved[p.name] is None:
            resolved[p.name] = shape if p.kind == SHAPE else shape[0]
    return spec.ctor_kwargs(resolved)


def excluded(type_name, shape, params):
    """Cases where we knowingly say more than torch does (documented in docs/blocks.md)."""
    if type_name == "Linear" and len(shape) != 1:
        return True  # Linear on a feature map: we ask for Flatten
    if type_name == "Dropout2d" and len(shape) != 3:
        return True  # torch only warns
    if type_name == "Unflatten" and len(shape) - 1 + len(params.get("unflattened_size", (-1, 1, 1))) > 3:
        return True  # more than C×H×W per sample: torch makes it, we refuse (no block here takes it)
    for key in ("dim", "start_dim", "end_dim"):
        d = params.get(key)
        if isinstance(d, int) and d % (len(shape) + 1) == 0 and -(len(shape) + 1) <= d <= len(shape):
            return True  # the batch dimension: torch allows it, we refuse it
    return False


@pytest.mark.parametrize("type_name", MODULE_TYPES)
def test_block_agrees_with_torch(type_name):
    # CNNB_EXAMPLES=500 for a deeper search than CI's default.
    @settings(max_examples=int(os.environ.get("CNNB_EXAMPLES", 60)), deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(block_case(type_name))
    def check(case):
        shape, params = case
        spec = get_spec(type_name)
        try:
            spec.check_params(params)
        except ParamError:
            assume(False)
        assume(not excluded(type_name, shape, params))
        info = ours(type_name, shape, params)
        if type_name in SPATIAL and len(shape) != 3:
            # torch reads a 3-D batch as one unbatched C×H×W image: it "works" with the batch
            # used as channels. We refuse, naming the rank.
            assert info.error is not None and "C×H×W" in info.error
            return
        kwargs = torch_kwargs(spec, params, shape)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module, y, flops = theirs(type_name, kwargs, shape)
            torch_error = None
        except (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError, AssertionError) as exc:
            torch_error = exc
        typed_wrong = any(
            p.inferred and params.get(p.name) is not None for p in spec.params
        ) and info.error is not None and "but the input has" in info.error
        if typed_wrong:
            # A typed size that contradicts the input is an error on the block by design, even
            # where torch happens not to use it (GroupNorm/BatchNorm with affine=False).
            return
        if torch_error is None and y.numel() == 0:
            # torch returns an empty tensor; an empty activation is always a mistake, so we flag it.
            assert info.error is not None and ("empty" in info.error or "too large" in info.error), info.error
            return
        if info.error is not None:
            assert torch_error is not None, f"we refuse ({info.error}) but torch accepts {kwargs} on {shape}"
            return
        assert torch_error is None, f"we accept {info.shape} but torch raises {torch_error!r} for {kwargs} on {shape}"
        assert tuple(y.shape[1:]) == info.shape, (kwargs, shape)
        n_params = sum(p.numel() for p in module.parameters() if p.requires_grad)
        assert info.stats.params == n_params, kwargs
        assert 2 * info.stats.macs * 2 == flops, (kwargs, shape)  # batch of 2, FLOPs = 2 × MACs

    check()


@given(
    shapes=st.lists(st.tuples(st.sampled_from([1, 3, 4]), st.sampled_from([1, 5]), st.sampled_from([1, 5])),
                    min_size=2, max_size=4)
)
@settings(max_examples=80, deadline=None)
def test_add_agrees_with_torch(shapes):
    from cnnbuilder.core.blocks.base import Ctx, ShapeError

    spec = get_spec("Add")
    try:
        out = spec.infer(Ctx({}, list(shapes)))
        err = None
    except ShapeError as exc:
        err = exc
    tensors = [torch.zeros(2, *s) for s in shapes]
    try:
        y = tensors[0]
        for t in tensors[1:]:
            y = y + t
        terr = None
    except RuntimeError as exc:
        terr = exc
    assert (err is None) == (terr is None), (shapes, err, terr)
    if err is None:
        assert tuple(y.shape[1:]) == out


@given(
    shapes=st.lists(st.tuples(st.integers(1, 4), st.sampled_from([2, 3]), st.sampled_from([2, 3])),
                    min_size=2, max_size=4),
    dim=st.sampled_from([1, 2, 3, -1, -2, -3]),
)
@settings(max_examples=80, deadline=None)
def test_concat_agrees_with_torch(shapes, dim):
    from cnnbuilder.core.blocks.base import Ctx, ShapeError

    spec = get_spec("Concat")
    try:
        out = spec.infer(Ctx({"dim": dim}, list(shapes)))
        err = None
    except ShapeError as exc:
        err = exc
    try:
        y = torch.cat([torch.zeros(2, *s) for s in shapes], dim=dim)
        terr = None
    except RuntimeError as exc:
        terr = exc
    assert (err is None) == (terr is None), (shapes, dim, err, terr)
    if err is None:
        assert tuple(y.shape[1:]) == out


@given(shapes=st.lists(st.sampled_from([(4, 5, 5), (4, 1, 1), (1, 5, 5), (4, 5, 1), (3, 5, 5), (4, 5), (4,)]),
                      min_size=2, max_size=4))
@settings(max_examples=80, deadline=None)
def test_mul_agrees_with_torch(shapes):
    # Squeeze-excite: a C×1×1 gate times a C×H×W map.
    from cnnbuilder.core.blocks.base import Ctx, ShapeError

    try:
        out = get_spec("Mul").infer(Ctx({}, list(shapes)))
        err = None
    except ShapeError as exc:
        err = exc
    try:
        y = torch.ones(2, *shapes[0])
        for s in shapes[1:]:
            y = y * torch.ones(2, *s)
        terr = None
    except RuntimeError as exc:
        terr = exc
    if err is None or terr is not None:
        assert (err is None) == (terr is None), (shapes, err, terr)
    else:  # torch broadcasts ranks against each other (4 against 4×5×5); we ask for equal ranks
        assert len({len(s) for s in shapes}) > 1, (shapes, err)
    if err is None:
        assert tuple(y.shape[1:]) == out


def _parts(type_name, shape, params):
    """What one Split or Chunk makes of an input: (error, shapes of its outputs)."""
    from cnnbuilder.core.blocks.base import Ctx, ShapeError

    spec = get_spec(type_name)
    try:
        return None, spec.parts(Ctx(spec.resolve(spec.check_params(params)), [shape]))
    except ShapeError as exc:
        return str(exc), []


@given(shape=st.sampled_from([(6,), (6, 4), (5, 3, 3), (8, 2, 6)]),
       sections=st.lists(st.integers(1, 8), min_size=1, max_size=4), dim=st.sampled_from([1, 2, 3, -1, -2]))
@settings(max_examples=120, deadline=None)
def test_split_agrees_with_torch(shape, sections, dim):
    assume(-(len(shape) + 1) <= dim <= len(shape) and dim % (len(shape) + 1))
    error, outs = _parts("Split", shape, {"split_size_or_sections": sections, "dim": dim})
    try:
        parts = torch.split(torch.zeros(2, *shape), sections, dim=dim)
        terr = None
    except (RuntimeError, IndexError) as exc:
        terr = exc
    assert (error is None) == (terr is None), (shape, sections, dim, error, terr)
    if error is None:
        assert outs == [tuple(p.shape[1:]) for p in parts]
    else:
        assert "do not add up" in error or "out of range" in error, error


@given(shape=st.sampled_from([(6,), (6, 4), (5, 3, 3), (8, 2, 7), (1, 4, 4)]), chunks=st.integers(1, 9),
       dim=st.sampled_from([1, 2, 3, -1]))
@settings(max_examples=120, deadline=None)
def test_chunk_agrees_with_torch_or_names_the_parts_it_would_miss(shape, chunks, dim):
    assume(dim <= len(shape))
    error, outs = _parts("Chunk", shape, {"chunks": chunks, "dim": dim})
    parts = torch.chunk(torch.zeros(2, *shape), chunks, dim=dim)
    if len(parts) == chunks:
        assert error is None and outs == [tuple(p.shape[1:]) for p in parts], (shape, chunks, dim, error)
    else:  # torch quietly returns fewer parts than asked: the block's outputs would not all exist
        assert error is not None and f"gives {len(parts)} parts" in error, (shape, chunks, dim, error)


def test_bad_splits_are_messages_on_the_block():
    assert _parts("Split", (24, 8, 8), {"split_size_or_sections": [16, 16]})[0] == \
        "the sizes 16 + 16 = 32 do not add up to the 24 channels of the input"
    assert _parts("Chunk", (6, 8, 8), {"chunks": 4})[0] == \
        "chunks=4 of 6 channels gives 3 parts (2, 2, 2), not 4: torch.chunk makes parts of 2; use Split for other sizes"
    assert _parts("Chunk", (3, 8, 8), {"chunks": 5})[0].startswith("chunks=5 of 3 channels gives 3 parts (1, 1, 1)")
    assert _parts("Split", (10,), {"split_size_or_sections": [4, 4]})[0] == \
        "the sizes 4 + 4 = 8 do not add up to the 10 features of the input"
    assert _parts("Chunk", (4, 6, 6), {"chunks": 3, "dim": 3})[1] == [(4, 6, 2)] * 3
    assert get_spec("Split").output_count(get_spec("Split").resolve({"split_size_or_sections": [1, 2, 3]})) == 3


def test_linear_on_feature_map_asks_for_flatten():
    info = ours("Linear", (32, 7, 7), {"out_features": 10})
    assert info.error == "Linear needs a flat input (got 32×7×7): insert Flatten"


def test_messages_are_in_user_terms():
    assert ours("Conv2d", (1, 3, 3), {"out_channels": 4, "kernel_size": 5}).error == \
        "kernel 5×5 is larger than the padded input 3×3"
    assert ours("Conv2d", (3, 8, 8), {"out_channels": 4, "kernel_size": 3, "in_channels": 1}).error == \
        "in_channels is 1 but the input has 3 channels"
    assert "needs a C×H×W input" in ours("MaxPool2d", (784,), {"kernel_size": 2}).error
