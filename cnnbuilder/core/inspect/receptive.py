"""Receptive field and total stride ("jump") of every block: which input pixels one output value
can depend on.

Per spatial dimension each block's output unit o sees the input pixels [lo + o·j, hi + o·j]:
the field's size is r = hi − lo + 1 and j is the jump (the distance in input pixels between
neighbouring output units). Starting from the Input (lo = hi = 0, j = 1), a convolution or
pooling window of size F, dilation D, stride S and padding P gives

    lo′ = lo − P·j,   hi′ = hi + (D·(F − 1) − P)·j,   j′ = j·S

which is the textbook recurrence r′ = r + (F − 1)·D·j, j′ = j·S, keeping track of where the
field starts too. A merge (Add, Concat) takes the union of its inputs' fields, so in a graph with
branches the field is the largest over all paths. Tests check it against brute force: the gradient
of one output unit with respect to the input is non-zero exactly within the field.

Some blocks have no fixed window (adaptive pooling whose output does not divide its input,
upsampling, strided transposed convolution): their field is a bound (`exact` False). Blocks that
normalise with statistics over the whole map (GroupNorm, LayerNorm) make every value depend on
the whole map; that is noted rather than counted, as receptive-field tables do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..blocks.rules import normalize_dim


@dataclass(frozen=True)
class Axis:
    lo: Fraction  # first input pixel seen by output unit 0 (negative: it reaches into the padding)
    hi: Fraction  # last input pixel seen by output unit 0
    jump: Fraction  # input pixels between neighbouring output units

    @property
    def size(self) -> Fraction:
        return self.hi - self.lo + 1


_START = Axis(Fraction(0), Fraction(0), Fraction(1))


@dataclass(frozen=True)
class Field:
    """The receptive field of a block's output, in pixels of the model's input."""

    node_id: str
    size: tuple[float, float] | None  # (height, width); None: the output is not a feature map
    jump: tuple[float, float] | None
    start: tuple[float, float] | None  # where unit (0, 0)'s field starts (negative: in the padding)
    exact: bool = True  # False: a bound (no fixed window, see the module doc)
    note: str = ""

    def span(self, unit: tuple[int, int]) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """((first row, last row), (first column, last column)) of the input pixels that output unit
        (row, column) sees; may reach outside the image where the model pads."""
        if self.size is None:
            return None
        out = []
        for i in range(2):
            lo = self.start[i] + unit[i] * self.jump[i]
            out.append((lo, lo + self.size[i] - 1))
        return tuple(out)

    @property
    def text(self) -> str:
        """`11×11, jump 4` (`≈` when it is a bound); `—` when the output is not a feature map."""
        if self.size is None:
            return "—"
        return f"{self.size_text}, jump {self.jump_text}"

    @property
    def size_text(self) -> str:
        """`11×11` (`≈11×11` when it is a bound); "" when the output is not a feature map."""
        if self.size is None:
            return ""
        return f"{'' if self.exact else '≈'}{_n(self.size[0])}×{_n(self.size[1])}"

    @property
    def jump_text(self) -> str:
        """`4`, or `4×2` when height and width step differently; "" when not a feature map."""
        return "" if self.jump is None else _pair_text(self.jump)


def _float(v: Fraction) -> float:
    try:
        return float(v)
    except OverflowError:  # strides multiplied over hundreds of blocks
        return math.inf if v > 0 else -math.inf


def _pair_text(p: tuple[float, float]) -> str:
    a, b = (_n(v) for v in p)
    return a if a == b else f"{a}×{b}"


def _n(v: float) -> str:
    if not math.isfinite(v):
        return "∞"
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:.3g}"


def _window(ax: Axis, k: int, s: int, pad: int, d: int) -> Axis:
    return Axis(ax.lo - pad * ax.jump, ax.hi + (d * (k - 1) - pad) * ax.jump, ax.jump * s)


def _same(ax: Axis) -> Axis:
    return ax


def receptive_fields(graph, analysis=None) -> dict[str, Field]:
    """The field of every block whose shape is known, by node id (blocks with problems are left out)."""
    from ..shapes import analyze

    a = analysis or analyze(graph)
    axes: dict[str, tuple[Axis, Axis] | None] = {}
    flags: dict[str, tuple[bool, str]] = {}
    out: dict[str, Field] = {}
    for nid in a.order:
        info = a.nodes[nid]
        node = graph.node(nid)
        if info.shape is None:
            continue
        srcs = graph.inputs(nid)
        if node.type == "Input":
            axes[nid] = (_START, _START) if len(info.shape) == 3 else None
            flags[nid] = (True, "")
        elif any(s not in axes for s in srcs):
            continue
        else:
            exact = all(flags[s][0] for s in srcs)
            notes = [flags[s][1] for s in srcs if flags[s][1]]
            result, ok, note = _block(node.type, info.resolved, info.inputs, info.shape, [axes[s] for s in srcs])
            axes[nid] = result
            if note and note not in notes:
                notes.append(note)
            flags[nid] = (exact and ok, notes[-1] if notes else "")
        pair = axes[nid]
        exact, note = flags[nid]
        if pair is None:
            out[nid] = Field(nid, None, None, None, exact, note or "not a feature map: no positions to map back")
        else:
            out[nid] = Field(nid, tuple(_float(x.size) for x in pair), tuple(_float(x.jump) for x in pair),
                             tuple(_float(x.lo) for x in pair), exact, note)
    return out


def _block(t: str, p: dict[str, Any], ins: list, shape: tuple, src: list) -> tuple[tuple | None, bool, str]:
    """(axes of the output, exact?, note) from the inputs' axes."""
    if len(shape) != 3:
        return None, True, ""
    if any(s is None for s in src):
        return None, True, "not a feature map: no positions to map back"
    if t in ("Add", "Mul", "Concat"):
        return _union(src)
    (ah, aw), (_, h, w) = src[0], ins[0]
    if t == "Conv2d":
        k, s, d, pad = p["kernel_size"], p["stride"], p["dilation"], p["padding"]
        if pad == "valid":
            pad = (0, 0)
        elif pad == "same":
            pad = tuple(d[i] * (k[i] - 1) // 2 for i in range(2))  # torch puts the odd pixel on the far side
        return (_window(ah, k[0], s[0], pad[0], d[0]), _window(aw, k[1], s[1], pad[1], d[1])), True, ""
    if t in ("MaxPool2d", "AvgPool2d"):
        k = p["kernel_size"]
        s = p["stride"] or k
        d = p.get("dilation") or (1, 1)
        pad = p["padding"]
        return (_window(ah, k[0], s[0], pad[0], d[0]), _window(aw, k[1], s[1], pad[1], d[1])), True, ""
    if t == "ConvTranspose2d":
        return _transposed(p, (ah, aw))
    if t == "ZeroPad2d":  # a shift by the top/left padding
        left, right, top, bottom = p["padding"]
        axes = (_window(ah, 1, 1, top, 1), _window(aw, 1, 1, left, 1))
        if min(p["padding"]) < 0:  # a crop: a later pad or window may sit where the cut pixels were
            return axes, False, "negative padding crops the map: units beside the cut may see less than this bound"
        return axes, True, ""
    if t in ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d"):
        return _adaptive((ah, aw), (h, w), shape[1:])
    if t == "Upsample":
        return _upsample(p, (ah, aw), (h, w), shape[1:])
    if t in ("Softmax", "LogSoftmax"):
        d = normalize_dim(p["dim"], 3)
        if d == 0:
            return (ah, aw), True, ""
        axes = [ah, aw]
        n = (h, w)[d - 1]
        a = axes[d - 1]
        axes[d - 1] = Axis(a.lo, a.hi + (n - 1) * a.jump, Fraction(0))  # every unit sees the whole line
        return tuple(axes), True, f"{t} over dim {p['dim']} mixes a whole line of the map"
    if t in ("GroupNorm", "LayerNorm"):
        return (ah, aw), False, (f"{t} normalises with statistics of the whole map, so strictly every value "
                                 "depends on all of it; the field counts the windows only")
    # elementwise: activations, BatchNorm (eval), Dropout, Identity; LocalResponseNorm and ChannelShuffle
    # mix channels only, and a Split/Chunk part keeps the positions
    return (ah, aw), True, ""


def _union(src: list) -> tuple[tuple, bool, str]:
    axes, exact, note = [], True, ""
    for i in range(2):
        parts = [s[i] for s in src]
        jumps = {a.jump for a in parts}
        if len(jumps) > 1:
            exact, note = False, "its inputs step through the image at different rates; the field is a bound"
        axes.append(Axis(min(a.lo for a in parts), max(a.hi for a in parts), max(jumps)))
    return tuple(axes), exact, note


def _transposed(p: dict, src: tuple) -> tuple[tuple, bool, str]:
    # Output unit q reads input units i with i·S − P + t·D = q for t in 0..F−1, so i lies in
    # [(q + P − D·(F − 1))/S, (q + P)/S]; with S = 1 that interval is exact, otherwise a bound.
    k, s, pad, d = p["kernel_size"], p["stride"], p["padding"], p["dilation"]
    axes = []
    for i in range(2):
        a = src[i]
        lo = a.lo + Fraction(pad[i] - d[i] * (k[i] - 1), s[i]) * a.jump
        hi = a.hi + Fraction(pad[i], s[i]) * a.jump
        axes.append(Axis(lo, hi, a.jump / s[i]))
    exact = s == (1, 1)
    return tuple(axes), exact, "" if exact else "a strided transposed convolution has no fixed window: a bound"


def _adaptive(src: tuple, n_in: tuple, n_out: tuple) -> tuple[tuple, bool, str]:
    axes, exact = [], True
    for i in range(2):
        a, n, o = src[i], n_in[i], n_out[i]
        if n % o == 0:
            k = n // o
            axes.append(_window(a, k, k, 0, 1))
            continue
        # torch's windows: [floor(q·n/o), ceil((q + 1)·n/o)); they overlap and vary in size
        kmax = max(math.ceil((q + 1) * n / o) - math.floor(q * n / o) for q in range(o))
        axes.append(Axis(a.lo, a.hi + (kmax - 1) * a.jump, a.jump * Fraction(n, o)))
        exact = False
    return tuple(axes), exact, "" if exact else "adaptive pooling windows vary in size here: a bound"


_SPREAD = {"nearest": (0, 0), "nearest-exact": (0, 0), "bilinear": (0, 1), "bicubic": (1, 2)}


def _upsample(p: dict, src: tuple, n_in: tuple, n_out: tuple) -> tuple[tuple, bool, str]:
    before, after = _SPREAD.get(p["mode"], (1, 2))
    axes = []
    for i in range(2):
        a = src[i]
        axes.append(Axis(a.lo - before * a.jump, a.hi + after * a.jump, a.jump * Fraction(n_in[i], n_out[i])))
    return tuple(axes), False, "upsampling maps output pixels to input pixels unevenly: a bound"
