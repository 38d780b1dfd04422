"""Input, Linear, Dropout, Flatten, Upsample, Identity and the merge blocks Add and Concat."""

from __future__ import annotations

import math
from math import prod

from .activation import INPLACE
from .base import (
    BOOL,
    CHOICE,
    DIM,
    FLOAT,
    INT,
    MAX_SIZE,
    OUTPUT_SIZE,
    SHAPE,
    Ctx,
    LayerSpec,
    Param,
    ShapeError,
    fmt_shape,
)
from .rules import broadcast, infer_channels, normalize_dim, one_input

INPUT = LayerSpec(
    type="Input",
    category="Utility",
    doc="The image (or feature vector) fed to the network, without the batch dimension.",
    short="x",
    params=(Param("shape", SHAPE, (1, 28, 28), "Channels × height × width of one sample.", min=1, max=MAX_SIZE,
                  required=True, ctor=False),),
    infer=lambda ctx: ctx.params["shape"],
    min_inputs=0,
    max_inputs=0,
    module=False,
    summary=lambda p: f"Input {fmt_shape(p['shape'])}",
)


def _linear_infer(ctx: Ctx):
    shape = ctx.inputs[0]
    if len(shape) != 1:
        # torch would apply Linear to the last axis only; in a CNN that is nearly always a
        # forgotten Flatten, so we say so rather than silently produce a 3-D output.
        raise ShapeError(f"Linear needs a flat input (got {fmt_shape(shape)}): insert Flatten")
    infer_channels(ctx, "in_features", shape[0], "features")
    return (ctx.params["out_features"],)


LINEAR = LayerSpec(
    type="Linear",
    category="Linear",
    doc="Applies an affine linear transformation to the incoming data: y = xAᵀ + b.",
    short="fc",
    params=(
        Param("in_features", INT, None, "Size of each input sample; inferred.", min=1, max=MAX_SIZE, inferred=True,
              positional=True),
        Param("out_features", INT, 10, "Size of each output sample (e.g. the number of classes).", min=1,
              max=MAX_SIZE, required=True, positional=True),
        Param("bias", BOOL, True, "Learn an additive bias."),
    ),
    infer=_linear_infer,
    count_params=lambda p, i, o: p["in_features"] * p["out_features"] + (p["out_features"] if p["bias"] else 0),
    count_macs=lambda p, i, o: p["in_features"] * p["out_features"],
    summary=lambda p: f"Linear {p['out_features']}",
)


def _dropout(type_name: str, doc: str, short: str, ranks: tuple[int, ...] | None) -> LayerSpec:
    def infer(ctx: Ctx):
        if ranks is not None:
            return one_input(ctx, type_name, ranks)
        return ctx.inputs[0]

    return LayerSpec(
        type=type_name, category="Utility", doc=doc, short=short,
        params=(Param("p", FLOAT, 0.5, "Probability of zeroing an element.", min=0.0, max=1.0, positional=True),
                INPLACE),
        infer=infer,
        summary=lambda p: f"{type_name} {p['p']:g}",
    )


def _flatten_infer(ctx: Ctx):
    shape = ctx.inputs[0]
    s = normalize_dim(ctx.params["start_dim"], len(shape), "start_dim")
    e = normalize_dim(ctx.params["end_dim"], len(shape), "end_dim")
    if s > e:
        raise ShapeError(f"start_dim={ctx.params['start_dim']} comes after end_dim={ctx.params['end_dim']}")
    return shape[:s] + (prod(shape[s:e + 1]),) + shape[e + 1:]


FLATTEN = LayerSpec(
    type="Flatten",
    category="Utility",
    doc="Flattens a contiguous range of dims into one (by default all but the batch).",
    short="flatten",
    params=(Param("start_dim", DIM, 1, "First dimension to flatten (0 is the batch)."),
            Param("end_dim", DIM, -1, "Last dimension to flatten.")),
    infer=_flatten_infer,
)

_INTERP = ("linear", "bilinear", "bicubic")


def _upsample_infer(ctx: Ctx):
    c, h, w = one_input(ctx, "Upsample", (3,))
    p = ctx.params
    if p["align_corners"] is not None and p["mode"] not in _INTERP:
        raise ShapeError(f"align_corners only applies to the bilinear and bicubic modes, not '{p['mode']}'")
    size, scale = p["size"], p["scale_factor"]
    if (size is None) == (scale is None):
        raise ShapeError("set exactly one of size or scale_factor")
    if size is not None:
        if isinstance(size, int):
            return (c, size, size)
        if None in size:
            raise ShapeError("size needs both height and width")
        return (c, size[0], size[1])
    out = (math.floor(h * scale), math.floor(w * scale))
    if out[0] < 1 or out[1] < 1:
        raise ShapeError(f"scale_factor {scale:g} makes the output empty ({out[0]}×{out[1]})")
    return (c, out[0], out[1])


def _upsample_summary(p) -> str:
    how = f"×{p['scale_factor']:g}" if p["scale_factor"] is not None else f"to {p['size']}"
    return f"Upsample {how}, {p['mode']}"


UPSAMPLE = LayerSpec(
    type="Upsample",
    category="Utility",
    doc="Upsamples a C×H×W input to a given size or by a scale factor.",
    short="up",
    params=(
        Param("size", OUTPUT_SIZE, None, "Output size H×W (leave empty to use scale_factor).", min=1, max=MAX_SIZE,
              nullable=True),
        Param("scale_factor", FLOAT, 2.0, "Multiplier for height and width.", min=0.0, max=MAX_SIZE, nullable=True,
              required=True),
        Param("mode", CHOICE, "nearest", "Upsampling algorithm.",
              choices=("nearest", "nearest-exact", "bilinear", "bicubic")),
        Param("align_corners", BOOL, None, "Align corner pixels (bilinear and bicubic only).", nullable=True),
    ),
    infer=_upsample_infer,
    summary=_upsample_summary,
)

IDENTITY = LayerSpec(
    type="Identity",
    category="Utility",
    doc="A placeholder that returns its input unchanged.",
    short="identity",
    params=(),
    infer=lambda ctx: ctx.inputs[0],
)


ADD = LayerSpec(
    type="Add",
    category="Merge",
    doc="Elementwise sum of two or more inputs of the same shape (residual connections).",
    short="add",
    params=(),
    infer=lambda ctx: broadcast("Add", ctx.inputs),
    min_inputs=2,
    max_inputs=None,
    module=False,
    summary=lambda p: "Add  +",
)


def _concat_infer(ctx: Ctx):
    shapes = ctx.inputs
    first = shapes[0]
    for s in shapes[1:]:
        if len(s) != len(first):
            raise ShapeError(f"Concat inputs differ: {fmt_shape(first)} vs {fmt_shape(s)}")
    d = normalize_dim(ctx.params["dim"], len(first))
    for s in shapes[1:]:
        for i in range(len(first)):
            if i != d and s[i] != first[i]:
                raise ShapeError(
                    f"Concat inputs differ outside dim {ctx.params['dim']}: {fmt_shape(first)} vs {fmt_shape(s)}"
                )
    return first[:d] + (sum(s[d] for s in shapes),) + first[d + 1:]


CONCAT = LayerSpec(
    type="Concat",
    category="Merge",
    doc="Concatenates two or more inputs along a dimension (channels by default), as torch.cat.",
    short="cat",
    params=(Param("dim", DIM, 1, "Dimension to join along (1 = channels; 0 is the batch).", ctor=False),),
    infer=_concat_infer,
    min_inputs=2,
    max_inputs=None,
    module=False,
    summary=lambda p: "Concat" if p["dim"] == 1 else f"Concat dim {p['dim']}",
)

SPECS = (
    INPUT,
    LINEAR,
    _dropout("Dropout", "Randomly zeroes elements with probability p during training.", "dropout", None),
    _dropout("Dropout2d", "Randomly zeroes whole channels with probability p during training.", "dropout2d",
             (3,)),
    FLATTEN,
    UPSAMPLE,
    IDENTITY,
    ADD,
    CONCAT,
)
