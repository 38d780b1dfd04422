"""Normalization blocks: BatchNorm2d, BatchNorm1d, GroupNorm, LayerNorm, LocalResponseNorm."""

from __future__ import annotations

from math import prod

from .base import BOOL, FLOAT, INT, MAX_SIZE, SHAPE, Ctx, LayerSpec, Param, ShapeError, fmt_shape
from .rules import infer_channels, one_input


def _bn_params(dims: str) -> tuple[Param, ...]:
    return (
        Param("num_features", INT, None, f"Channels C of the {dims} input; inferred.", min=1, max=MAX_SIZE,
              inferred=True, positional=True),
        Param("eps", FLOAT, 1e-5, "Added to the variance for numerical stability.", min=0.0),
        Param("momentum", FLOAT, 0.1, "Weight of the newest batch in the running statistics.", min=0.0, max=1.0,
              nullable=True),
        Param("affine", BOOL, True, "Learnable scale and shift."),
        Param("track_running_stats", BOOL, True, "Keep running mean and variance for evaluation."),
    )


def _bn_infer(type_name: str, ranks: tuple[int, ...]):
    def infer(ctx: Ctx):
        shape = one_input(ctx, type_name, ranks)
        infer_channels(ctx, "num_features", shape[0])
        return shape

    return infer


def _affine_params(p, ins, out):
    return 2 * ins[0][0] if p["affine"] else 0


BATCHNORM2D = LayerSpec(
    type="BatchNorm2d",
    category="Normalization",
    doc="Applies Batch Normalization over a 4D input (a batch of C×H×W feature maps).",
    short="bn",
    params=_bn_params("C×H×W"),
    infer=_bn_infer("BatchNorm2d", (3,)),
    count_params=_affine_params,
    summary=lambda p: "BatchNorm2d",
)

BATCHNORM1D = LayerSpec(
    type="BatchNorm1d",
    category="Normalization",
    doc="Applies Batch Normalization over a 2D or 3D input (features, or C×L).",
    short="bn",
    params=_bn_params("flat or C×L"),
    infer=_bn_infer("BatchNorm1d", (1, 2)),
    count_params=_affine_params,
    summary=lambda p: "BatchNorm1d",
)


def _gn_infer(ctx: Ctx):
    shape = ctx.inputs[0]
    infer_channels(ctx, "num_channels", shape[0])
    g = ctx.params["num_groups"]
    if shape[0] % g:
        raise ShapeError(f"num_groups={g} does not divide the {shape[0]} channels")
    return shape


GROUPNORM = LayerSpec(
    type="GroupNorm",
    category="Normalization",
    doc="Applies Group Normalization over a mini-batch of inputs (channels split into groups).",
    short="gn",
    params=(
        Param("num_groups", INT, 4, "Number of groups to separate the channels into.", min=1, max=MAX_SIZE,
              required=True, positional=True),
        Param("num_channels", INT, None, "Channels of the input; inferred.", min=1, max=MAX_SIZE, inferred=True,
              positional=True),
        Param("eps", FLOAT, 1e-5, "Added to the variance for numerical stability.", min=0.0),
        Param("affine", BOOL, True, "Learnable per-channel scale and shift."),
    ),
    infer=_gn_infer,
    count_params=_affine_params,
    summary=lambda p: f"GroupNorm {p['num_groups']}",
)


def _ln_infer(ctx: Ctx):
    shape = ctx.inputs[0]
    ns = ctx.params["normalized_shape"]
    if ns is None:
        ctx.params["normalized_shape"] = shape
    elif len(ns) > len(shape) or tuple(shape[len(shape) - len(ns):]) != ns:
        raise ShapeError(f"normalized_shape {fmt_shape(ns)} does not match the end of the input {fmt_shape(shape)}")
    return shape


def _ln_params(p, ins, out):
    n = prod(p["normalized_shape"])
    if not p["elementwise_affine"]:
        return 0
    return n * (2 if p["bias"] else 1)


LAYERNORM = LayerSpec(
    type="LayerNorm",
    category="Normalization",
    doc="Applies Layer Normalization over the last dimensions of each sample.",
    short="ln",
    params=(
        Param("normalized_shape", SHAPE, None, "Trailing dimensions to normalize; inferred as the whole sample.",
              min=1, max=MAX_SIZE, inferred=True, positional=True),
        Param("eps", FLOAT, 1e-5, "Added to the variance for numerical stability.", min=0.0),
        Param("elementwise_affine", BOOL, True, "Learnable per-element scale (and shift)."),
        Param("bias", BOOL, True, "Learn the shift too (with elementwise_affine)."),
    ),
    infer=_ln_infer,
    count_params=_ln_params,
    summary=lambda p: "LayerNorm",
)

LOCALRESPONSENORM = LayerSpec(
    type="LocalResponseNorm",
    category="Normalization",
    doc="Normalizes each channel by the activity of its neighbouring channels (AlexNet).",
    short="lrn",
    params=(
        Param("size", INT, 5, "Number of neighbouring channels to normalize over.", min=1, max=MAX_SIZE,
              required=True, positional=True),
        Param("alpha", FLOAT, 1e-4, "Multiplicative factor."),
        Param("beta", FLOAT, 0.75, "Exponent."),
        Param("k", FLOAT, 1.0, "Additive factor."),
    ),
    infer=lambda ctx: one_input(ctx, "LocalResponseNorm", (2, 3)),
    summary=lambda p: f"LocalResponseNorm {p['size']}",
)

SPECS = (BATCHNORM2D, BATCHNORM1D, GROUPNORM, LAYERNORM, LOCALRESPONSENORM)
