"""Convolution blocks: Conv2d and ConvTranspose2d."""

from __future__ import annotations

from .base import BOOL, CHOICE, INT, MAX_SIZE, PADDING, PAIR, Ctx, LayerSpec, Param, ShapeError, fmt_pair, fmt_shape
from .rules import check_kernel_fits, conv_out, infer_channels, one_input


def _in_channels() -> Param:
    return Param("in_channels", INT, None, "Channels of the input; inferred from the incoming tensor.",
                 min=1, max=MAX_SIZE, inferred=True, positional=True)


def _out_channels(default: int) -> Param:
    return Param("out_channels", INT, default, "Number of filters (output channels).",
                 min=1, max=MAX_SIZE, required=True, positional=True)


def _kernel() -> Param:
    return Param("kernel_size", PAIR, 3, "Filter size F (height × width).", min=1, max=MAX_SIZE, required=True)


def _check_groups(p: dict) -> None:
    g = p["groups"]
    if p["in_channels"] % g:
        raise ShapeError(f"groups={g} does not divide in_channels={p['in_channels']}")
    if p["out_channels"] % g:
        raise ShapeError(f"groups={g} does not divide out_channels={p['out_channels']}")


def _conv2d_infer(ctx: Ctx):
    c, h, w = one_input(ctx, "Conv2d", (3,))
    p = ctx.params
    infer_channels(ctx, "in_channels", c)
    _check_groups(p)
    k, s, d = p["kernel_size"], p["stride"], p["dilation"]
    pad = p["padding"]
    if pad == "valid":
        pad = (0, 0)
    if pad == "same":
        if s != (1, 1):
            raise ShapeError("padding='same' needs stride 1 (PyTorch does not support it for strided convolutions)")
        total = tuple(d[i] * (k[i] - 1) for i in range(2))
        pads_lr = tuple((t // 2, t - t // 2) for t in total)
        _check_padding_mode(p["padding_mode"], (h, w), tuple(max(a, b) for a, b in pads_lr))
        return (p["out_channels"], h, w)
    _check_padding_mode(p["padding_mode"], (h, w), pad)
    check_kernel_fits("Conv2d", (h, w), k, pad, d)
    return (p["out_channels"], conv_out(h, k[0], s[0], pad[0], d[0]), conv_out(w, k[1], s[1], pad[1], d[1]))


def _check_padding_mode(mode: str, hw: tuple, pad: tuple) -> None:
    if mode == "reflect" and (pad[0] >= hw[0] or pad[1] >= hw[1]):
        raise ShapeError(f"reflect padding {fmt_pair(pad)} must be smaller than the input {hw[0]}×{hw[1]}")
    if mode == "circular" and (pad[0] > hw[0] or pad[1] > hw[1]):
        raise ShapeError(f"circular padding {fmt_pair(pad)} is larger than the input {hw[0]}×{hw[1]}")


def _conv_params(p, ins, out):
    k = p["kernel_size"]
    n = p["out_channels"] * (p["in_channels"] // p["groups"]) * k[0] * k[1]
    return n + (p["out_channels"] if p["bias"] else 0)


def _conv_macs(p, ins, out):
    k = p["kernel_size"]
    return out[0] * out[1] * out[2] * (p["in_channels"] // p["groups"]) * k[0] * k[1]


def _conv_summary(p) -> str:
    parts = [f"Conv2d {p['out_channels']}", fmt_shape(p["kernel_size"])]
    if p["stride"] != (1, 1):
        parts.append(f"s{fmt_pair(p['stride'])}")
    pad = p["padding"]
    if pad == "same" or pad == "valid":
        parts.append(pad)
    elif pad != (0, 0):
        parts.append(f"p{fmt_pair(pad)}")
    if p["dilation"] != (1, 1):
        parts.append(f"d{fmt_pair(p['dilation'])}")
    if p["groups"] != 1:
        parts.append(f"g{p['groups']}")
    return ", ".join(parts)


CONV2D = LayerSpec(
    type="Conv2d",
    category="Convolution",
    doc="Applies a 2D convolution over an input made of several input planes.",
    short="conv",
    params=(
        _in_channels(),
        _out_channels(16),
        _kernel(),
        Param("stride", PAIR, (1, 1), "Step S between filter positions.", min=1, max=MAX_SIZE),
        Param("padding", PADDING, (0, 0), "Zeros P added on each side; 'same' keeps the size.", min=0, max=MAX_SIZE),
        Param("dilation", PAIR, (1, 1), "Spacing between kernel elements.", min=1, max=MAX_SIZE),
        Param("groups", INT, 1, "Blocked connections from input to output channels.", min=1, max=MAX_SIZE),
        Param("bias", BOOL, True, "Adds a learnable bias to the output."),
        Param("padding_mode", CHOICE, "zeros", "How the border is padded.",
              choices=("zeros", "reflect", "replicate", "circular")),
    ),
    infer=_conv2d_infer,
    count_params=_conv_params,
    count_macs=_conv_macs,
    summary=_conv_summary,
)


def _convt_infer(ctx: Ctx):
    c, h, w = one_input(ctx, "ConvTranspose2d", (3,))
    p = ctx.params
    infer_channels(ctx, "in_channels", c)
    _check_groups(p)
    k, s, pad, op, d = p["kernel_size"], p["stride"], p["padding"], p["output_padding"], p["dilation"]
    for i in range(2):
        if op[i] >= max(s[i], d[i]):
            raise ShapeError(
                f"output_padding {fmt_pair(op)} must be smaller than stride or dilation"
            )
    out = tuple((x - 1) * s[i] - 2 * pad[i] + d[i] * (k[i] - 1) + op[i] + 1 for i, x in enumerate((h, w)))
    if out[0] < 1 or out[1] < 1:
        raise ShapeError(f"padding {fmt_pair(pad)} is too large: the output would be {out[0]}×{out[1]}")
    return (p["out_channels"], out[0], out[1])


def _convt_params(p, ins, out):
    k = p["kernel_size"]
    n = p["in_channels"] * (p["out_channels"] // p["groups"]) * k[0] * k[1]
    return n + (p["out_channels"] if p["bias"] else 0)


def _convt_macs(p, ins, out):
    # torch.utils.flop_counter counts a transposed convolution by its input positions.
    c, h, w = ins[0]
    k = p["kernel_size"]
    return c * h * w * (p["out_channels"] // p["groups"]) * k[0] * k[1]


def _convt_summary(p) -> str:
    parts = [f"ConvT {p['out_channels']}", fmt_shape(p["kernel_size"])]
    if p["stride"] != (1, 1):
        parts.append(f"s{fmt_pair(p['stride'])}")
    if p["padding"] != (0, 0):
        parts.append(f"p{fmt_pair(p['padding'])}")
    return ", ".join(parts)


CONV_TRANSPOSE2D = LayerSpec(
    type="ConvTranspose2d",
    category="Convolution",
    doc="Applies a 2D transposed convolution operator over an input image (learned upsampling).",
    short="deconv",
    params=(
        _in_channels(),
        _out_channels(16),
        _kernel(),
        Param("stride", PAIR, (1, 1), "Step between input positions in the output.", min=1, max=MAX_SIZE),
        Param("padding", PAIR, (0, 0), "Implicit padding removed from each side of the output.", min=0, max=MAX_SIZE),
        Param("output_padding", PAIR, (0, 0), "Extra size added to one side of the output.", min=0, max=MAX_SIZE),
        Param("groups", INT, 1, "Blocked connections from input to output channels.", min=1, max=MAX_SIZE),
        Param("bias", BOOL, True, "Adds a learnable bias to the output."),
        Param("dilation", PAIR, (1, 1), "Spacing between kernel elements.", min=1, max=MAX_SIZE),
    ),
    infer=_convt_infer,
    count_params=_convt_params,
    count_macs=_convt_macs,
    summary=_convt_summary,
)

SPECS = (CONV2D, CONV_TRANSPOSE2D)
