"""Shape arithmetic shared by several block types. Each rule mirrors what torch checks, with a
message in the user's terms instead of an ATen error."""

from __future__ import annotations

from .base import Ctx, Shape, ShapeError, fmt_shape

RANK_NAMES = {1: "a flat input (features)", 2: "a C×L input", 3: "a C×H×W input"}


def one_input(ctx: Ctx, type_name: str, ranks: tuple[int, ...]) -> Shape:
    shape = ctx.inputs[0]
    if len(shape) not in ranks:
        want = " or ".join(RANK_NAMES[r] for r in ranks)
        hint = ""
        if 3 in ranks and len(shape) == 1:
            hint = ": it comes after a Flatten or Linear; move it before them"
        raise ShapeError(f"{type_name} needs {want} (got {fmt_shape(shape)}){hint}")
    return shape


def infer_channels(ctx: Ctx, name: str, actual: int, what: str = "channels") -> None:
    """Fill an inferred size (in_channels, num_features, ...) or check a typed one."""
    typed = ctx.params.get(name)
    if typed is None:
        ctx.params[name] = actual
    elif typed != actual:
        raise ShapeError(f"{name} is {typed} but the input has {actual} {what}")


def normalize_dim(dim: int, rank: int, what: str = "dim") -> int:
    """Map a torch dim (batch counted first) onto our batch-less shape index."""
    full = rank + 1
    if not -full <= dim < full:
        raise ShapeError(f"{what}={dim} is out of range for a {rank + 1}-D tensor (N×{'×'.join('?' * rank)})")
    d = dim % full
    if d == 0:
        raise ShapeError(f"{what}={dim} is the batch dimension; use 1 or later")
    return d - 1


def conv_out(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def check_kernel_fits(type_name: str, hw: Shape, k: tuple, pad: tuple, dil: tuple) -> None:
    eff = tuple(dil[i] * (k[i] - 1) + 1 for i in range(2))
    padded = tuple(hw[i] + 2 * pad[i] for i in range(2))
    if eff[0] > padded[0] or eff[1] > padded[1]:
        kdesc = f"{eff[0]}×{eff[1]}"
        if dil != (1, 1):
            kdesc = f"{kdesc} (dilated)"
        raise ShapeError(
            f"kernel {kdesc} is larger than the padded input {padded[0]}×{padded[1]}"
        )


def pool_out(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool) -> int:
    """ATen's pooling_output_shape, including the ceil_mode correction."""
    num = size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil else 0)
    out = num // stride + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def broadcast(type_name: str, shapes: list[Shape]) -> Shape:
    first = shapes[0]
    for s in shapes[1:]:
        if len(s) != len(first):
            raise ShapeError(f"{type_name} inputs differ: {fmt_shape(first)} vs {fmt_shape(s)}")
    out = []
    for i in range(len(first)):
        sizes = {s[i] for s in shapes} - {1}
        if len(sizes) > 1:
            a, b = _pair_differing(shapes, i)
            raise ShapeError(f"{type_name} inputs differ: {fmt_shape(a)} vs {fmt_shape(b)}")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _pair_differing(shapes: list[Shape], i: int) -> tuple[Shape, Shape]:
    ref = next(s for s in shapes if s[i] != 1)
    other = next(s for s in shapes if s[i] != 1 and s[i] != ref[i])
    return ref, other


