"""Input, Linear, Dropout, Flatten, Unflatten, Upsample, ZeroPad2d, ChannelShuffle, Identity, the merge
blocks Add, Mul and Concat, and Split and Chunk, the blocks with several outputs."""

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
    MAX_PARTS,
    MAX_SIZE,
    OUTPUT_SIZE,
    PAD4,
    SHAPE,
    SIZES,
    Ctx,
    LayerSpec,
    Param,
    Shape,
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

def _unflatten_infer(ctx: Ctx):
    shape = ctx.inputs[0]
    dim, sizes = ctx.params["dim"], ctx.params["unflattened_size"]
    d = normalize_dim(dim, len(shape))
    if any(s == 0 for s in sizes):
        raise ShapeError("unflattened_size cannot hold a 0: every size is at least 1, or -1 for the one inferred")
    if sizes.count(-1) > 1:
        raise ShapeError("unflattened_size can hold at most one -1 (the size that is inferred)")
    known = prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if shape[d] % known:
            raise ShapeError(f"unflattened_size {_sizes(sizes)} cannot split dim {dim} of size {shape[d]}: "
                             f"{shape[d]} is not a multiple of {known}")
        sizes = tuple(shape[d] // known if s == -1 else s for s in sizes)
    elif known != shape[d]:
        raise ShapeError(f"unflattened_size {_sizes(sizes)} has {known} values but dim {dim} has {shape[d]}")
    out = shape[:d] + tuple(sizes) + shape[d + 1:]
    if len(out) > 3:
        raise ShapeError(f"the output would have {len(out)} dimensions per sample ({fmt_shape(out)}); "
                         "blocks here work on at most C×H×W")
    return out


def _sizes(sizes) -> str:
    return "(" + ", ".join(str(s) for s in sizes) + ")"


UNFLATTEN = LayerSpec(
    type="Unflatten",
    category="Utility",
    doc="Unflattens one dimension into several (e.g. N×C back to N×C×1×1 for a squeeze-excite gate).",
    short="unflatten",
    params=(Param("dim", DIM, 1, "Dimension to unflatten (0 is the batch).", required=True, positional=True),
            Param("unflattened_size", SHAPE, (-1, 1, 1), "The sizes it becomes; one may be -1 (inferred).",
                  min=-1, max=MAX_SIZE, required=True, positional=True)),
    infer=_unflatten_infer,
    summary=lambda p: f"Unflatten to {_sizes(p['unflattened_size'])}",
)


def _zeropad_infer(ctx: Ctx):
    c, h, w = one_input(ctx, "ZeroPad2d", (3,))
    left, right, top, bottom = ctx.params["padding"]
    for size, a, b, what, ends in ((w, left, right, "width", "left and right"),
                                   (h, top, bottom, "height", "top and bottom")):
        crop = -min(a, 0) - min(b, 0)
        if crop > size:  # torch crops (negative padding) before it pads
            raise ShapeError(f"the negative {ends} padding crops {crop} from a {what} of {size}")
    return (c, h + top + bottom, w + left + right)


def _zeropad_summary(p) -> str:
    pad = p["padding"]
    if len(set(pad)) == 1:
        return f"ZeroPad2d {pad[0]}"
    return "ZeroPad2d " + " ".join(f"{k}{v}" for k, v in zip("lrtb", pad, strict=True))


ZEROPAD2D = LayerSpec(
    type="ZeroPad2d",
    category="Utility",
    doc="Pads the input's borders with zeros (negative padding crops).",
    short="pad",
    params=(Param("padding", PAD4, 1, "Pixels to add on each side: one number, or left, right, top, bottom.",
                  min=-MAX_SIZE, max=MAX_SIZE, required=True, positional=True),),
    infer=_zeropad_infer,
    summary=_zeropad_summary,
)


def _shuffle_infer(ctx: Ctx):
    shape = one_input(ctx, "ChannelShuffle", (2, 3))
    g = ctx.params["groups"]
    if shape[0] % g:
        raise ShapeError(f"groups={g} does not divide the {shape[0]} channels")
    return shape


CHANNELSHUFFLE = LayerSpec(
    type="ChannelShuffle",
    category="Utility",
    doc="Divides the channels into groups and interleaves them (ShuffleNet), so grouped layers mix.",
    short="shuffle",
    params=(Param("groups", INT, 2, "Number of groups to divide the channels into.", min=1, max=MAX_SIZE,
                  required=True, positional=True),),
    infer=_shuffle_infer,
    summary=lambda p: f"ChannelShuffle {p['groups']}",
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


MUL = LayerSpec(
    type="Mul",
    category="Merge",
    doc="Elementwise product of two or more inputs, broadcasting size-1 dimensions (a squeeze-excite gate "
        "C×1×1 scales a C×H×W map).",
    short="mul",
    params=(),
    infer=lambda ctx: broadcast("Mul", ctx.inputs),
    min_inputs=2,
    max_inputs=None,
    module=False,
    summary=lambda p: "Mul  ×",
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

def _split_parts(ctx: Ctx) -> list[Shape]:
    shape = ctx.inputs[0]
    dim, sections = ctx.params["dim"], ctx.params["split_size_or_sections"]
    d = normalize_dim(dim, len(shape))
    if sum(sections) != shape[d]:
        what = _what(d, dim, shape)
        raise ShapeError(f"the sizes {' + '.join(map(str, sections))} = {sum(sections)} do not add up to the "
                         f"{shape[d]} {what} of the input")
    return [shape[:d] + (s,) + shape[d + 1:] for s in sections]


def _what(d: int, dim: int, shape: Shape) -> str:
    if len(shape) == 1:
        return "features"
    return "channels" if d == 0 else f"values along dim {dim}"


def _along(dim: int) -> str:
    return "" if dim == 1 else f" dim {dim}"


SPLIT = LayerSpec(
    type="Split",
    category="Merge",
    doc="Splits its input into parts of the given sizes along a dimension (channels by default), as "
        "torch.split; each part leaves from its own output.",
    short="split",
    params=(Param("split_size_or_sections", SIZES, (16, 16), "Size of each part; they must add up to the input's "
                  "size along dim.", min=1, max=MAX_SIZE, required=True, positional=True, ctor=False),
            Param("dim", DIM, 1, "Dimension to split along (1 = channels; 0 is the batch).", ctor=False)),
    infer=lambda ctx: _split_parts(ctx)[0],
    parts=_split_parts,
    outputs=lambda p: len(p["split_size_or_sections"]),
    module=False,
    summary=lambda p: f"Split {' | '.join(map(str, p['split_size_or_sections']))}{_along(p['dim'])}",
)


def _chunk_parts(ctx: Ctx) -> list[Shape]:
    shape = ctx.inputs[0]
    dim, chunks = ctx.params["dim"], ctx.params["chunks"]
    d = normalize_dim(dim, len(shape))
    n = shape[d]
    size = -(-n // chunks)  # torch.chunk: parts of ceil(n / chunks), the last one smaller
    sizes = [min(size, n - i) for i in range(0, n, size)]
    if len(sizes) != chunks:
        what = _what(d, dim, shape)
        raise ShapeError(f"chunks={chunks} of {n} {what} gives {len(sizes)} parts ({', '.join(map(str, sizes))}), "
                         f"not {chunks}: torch.chunk makes parts of {size}; use Split for other sizes")
    return [shape[:d] + (s,) + shape[d + 1:] for s in sizes]


CHUNK = LayerSpec(
    type="Chunk",
    category="Merge",
    doc="Splits its input into a number of equal parts along a dimension (channels by default), as "
        "torch.chunk; each part leaves from its own output.",
    short="chunk",
    params=(Param("chunks", INT, 2, "Number of parts.", min=1, max=MAX_PARTS, required=True, positional=True,
                  ctor=False),
            Param("dim", DIM, 1, "Dimension to split along (1 = channels; 0 is the batch).", ctor=False)),
    infer=lambda ctx: _chunk_parts(ctx)[0],
    parts=_chunk_parts,
    outputs=lambda p: p["chunks"],
    module=False,
    summary=lambda p: f"Chunk {p['chunks']}{_along(p['dim'])}",
)

SPECS = (
    INPUT,
    LINEAR,
    _dropout("Dropout", "Randomly zeroes elements with probability p during training.", "dropout", None),
    _dropout("Dropout2d", "Randomly zeroes whole channels with probability p during training.", "dropout2d",
             (3,)),
    FLATTEN,
    UNFLATTEN,
    UPSAMPLE,
    ZEROPAD2D,
    CHANNELSHUFFLE,
    IDENTITY,
    ADD,
    MUL,
    CONCAT,
    SPLIT,
    CHUNK,
)
