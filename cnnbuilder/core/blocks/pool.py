"""Pooling blocks: MaxPool2d, AvgPool2d and the adaptive (global) pools."""

from __future__ import annotations

from .base import BOOL, INT, MAX_SIZE, OUTPUT_SIZE, PAIR, Ctx, LayerSpec, Param, ShapeError, fmt_pair
from .rules import check_kernel_fits, one_input, pool_out


def _window_infer(type_name: str, dilated: bool):
    def infer(ctx: Ctx):
        c, h, w = one_input(ctx, type_name, (3,))
        p = ctx.params
        k = p["kernel_size"]
        s = p["stride"] if p["stride"] is not None else k
        pad = p["padding"]
        d = p["dilation"] if dilated else (1, 1)
        if pad[0] > k[0] // 2 or pad[1] > k[1] // 2:
            raise ShapeError(f"padding {fmt_pair(pad)} must be at most half the kernel {k[0]}×{k[1]}")
        out = tuple(pool_out((h, w)[i], k[i], s[i], pad[i], d[i], p["ceil_mode"]) for i in range(2))
        if out[0] < 1 or out[1] < 1:
            # ATen only checks the output size (ceil_mode can rescue a window that overhangs),
            # but when it fails the window is too big, so say that.
            check_kernel_fits(type_name, (h, w), k, pad, d)
            raise ShapeError(f"the output would be empty ({out[0]}×{out[1]})")
        return (c, out[0], out[1])

    return infer


def _window_summary(label: str):
    def summary(p) -> str:
        k = p["kernel_size"]
        parts = [f"{label} {k[0]}×{k[1]}"]
        if p["stride"] is not None and p["stride"] != k:
            parts.append(f"s{fmt_pair(p['stride'])}")
        if p["padding"] != (0, 0):
            parts.append(f"p{fmt_pair(p['padding'])}")
        return ", ".join(parts)

    return summary


def _window_params(extra: tuple[Param, ...]) -> tuple[Param, ...]:
    return (
        Param("kernel_size", PAIR, 2, "Size of the pooling window.", min=1, max=MAX_SIZE, required=True,
              positional=True),
        Param("stride", PAIR, None, "Step of the window; empty means the kernel size.", min=1, max=MAX_SIZE,
              nullable=True),
        Param("padding", PAIR, (0, 0), "Implicit padding on each side (at most half the kernel).", min=0, max=MAX_SIZE),
    ) + extra


MAXPOOL2D = LayerSpec(
    type="MaxPool2d",
    category="Pooling",
    doc="Applies a 2D max pooling over an input signal composed of several input planes.",
    short="pool",
    params=_window_params((
        Param("dilation", PAIR, (1, 1), "Spacing between window elements.", min=1, max=MAX_SIZE),
        Param("ceil_mode", BOOL, False, "Use ceil instead of floor for the output size."),
    )),
    infer=_window_infer("MaxPool2d", dilated=True),
    summary=_window_summary("MaxPool"),
)

AVGPOOL2D = LayerSpec(
    type="AvgPool2d",
    category="Pooling",
    doc="Applies a 2D average pooling over an input signal composed of several input planes.",
    short="avgpool",
    params=_window_params((
        Param("ceil_mode", BOOL, False, "Use ceil instead of floor for the output size."),
        Param("count_include_pad", BOOL, True, "Include the zero-padding in the average."),
        Param("divisor_override", INT, None, "Divide by this instead of the window size.", min=1,
              max=MAX_SIZE, nullable=True),
    )),
    infer=_window_infer("AvgPool2d", dilated=False),
    summary=_window_summary("AvgPool"),
)


def _adaptive_infer(type_name: str):
    def infer(ctx: Ctx):
        c, h, w = one_input(ctx, type_name, (3,))
        size = ctx.params["output_size"]
        if isinstance(size, int):
            return (c, size, size)
        return (c, h if size[0] is None else size[0], w if size[1] is None else size[1])

    return infer


def _adaptive_summary(label: str):
    def summary(p) -> str:
        size = p["output_size"]
        if size == 1 or size == (1, 1):
            return f"Global {label}"
        if isinstance(size, tuple):
            size = "×".join("·" if s is None else str(s) for s in size)
        return f"Adaptive{label} {size}"

    return summary


def _adaptive(type_name: str, label: str, doc: str, short: str) -> LayerSpec:
    return LayerSpec(
        type=type_name,
        category="Pooling",
        doc=doc,
        short=short,
        params=(Param("output_size", OUTPUT_SIZE, 1, "Target output size H×W (1 = global pooling).",
                      min=1, max=MAX_SIZE, required=True, positional=True),),
        infer=_adaptive_infer(type_name),
        summary=_adaptive_summary(label),
    )


ADAPTIVE_AVG = _adaptive("AdaptiveAvgPool2d", "AvgPool",
                         "Applies a 2D adaptive average pooling; output_size 1 is global average pooling.", "gap")
ADAPTIVE_MAX = _adaptive("AdaptiveMaxPool2d", "MaxPool",
                         "Applies a 2D adaptive max pooling; output_size 1 is global max pooling.", "gmp")

SPECS = (MAXPOOL2D, AVGPOOL2D, ADAPTIVE_AVG, ADAPTIVE_MAX)
