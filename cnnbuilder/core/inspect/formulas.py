"""The arithmetic behind a block's output shape, parameter count and MACs, with the user's numbers
filled in: `H: ⌊(28 − 5 + 2·2)/1⌋ + 1 = 28`, `params = 16·(1·5·5) + 16 = 416`.

Each formula is a small expression tree (`Expr`) that renders both its general form (letters) and
its filled form (numbers) and evaluates itself exactly (integers and fractions), so the number at
the end of a formula is computed from the very text shown and can never disagree with it. Tests
check every formula's number against shape inference (`shapes.analyze`), the statistics
(`stats.block_stats`) and real torch modules, for random parameters of every block type.

When a block's output would be empty, `error_arithmetic` shows the step that goes wrong:
`H: ⌊(3 − 5 + 0)/1⌋ + 1 = −1: the kernel is larger than the padded input`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from math import prod
from typing import Any

from ..blocks import REGISTRY, Shape, fmt_shape

MINUS = "−"  # U+2212, as a textbook writes it


# -- expressions ---------------------------------------------------------------------------------

def _num(v) -> str:
    if isinstance(v, float):
        text = str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)  # exactly the value used
    elif isinstance(v, Fraction) and v.denominator != 1:
        text = f"{v.numerator}/{v.denominator}"
    else:
        text = str(int(v))
    return text.replace("-", MINUS)


def _lift(x) -> Expr:
    return x if isinstance(x, Expr) else Leaf(x)


class Expr:
    prec = 3  # 1: sum, 2: product or quotient, 3: atom

    def value(self):
        raise NotImplementedError

    def render(self, symbolic: bool) -> str:
        raise NotImplementedError

    def __add__(self, other) -> Expr:
        return Sum(_terms(self, 1) + _terms(_lift(other), 1))

    def __sub__(self, other) -> Expr:
        return Sum(_terms(self, 1) + _terms(_lift(other), -1))

    def __mul__(self, other) -> Expr:
        return Prod(_factors(self) + _factors(_lift(other)))

    def __truediv__(self, other) -> Expr:
        return Div(self, _lift(other))

    def __rmul__(self, other) -> Expr:
        return _lift(other) * self


@dataclass(frozen=True, eq=False)
class Leaf(Expr):
    v: Any  # int, Fraction or float
    name: str = ""  # the letter in the general form; a constant has none

    @property
    def prec(self) -> int:  # type: ignore[override]
        return 1 if self.v < 0 else 3  # `4·(−1)`, not `4·−1`

    def value(self):
        return self.v

    def render(self, symbolic: bool) -> str:
        return self.name if symbolic and self.name else _num(self.v)


@dataclass(frozen=True, eq=False)
class Sum(Expr):
    terms: tuple  # (sign, Expr) pairs
    prec = 1

    def __init__(self, terms):
        object.__setattr__(self, "terms", tuple(terms))

    def value(self):
        return sum(s * t.value() for s, t in self.terms)

    def render(self, symbolic: bool) -> str:
        out = ""
        for i, (sign, t) in enumerate(self.terms):
            text = t.render(symbolic)
            if _prec(t, symbolic) < 2 and sign < 0:
                text = f"({text})"
            if i == 0:
                out = text if sign > 0 else MINUS + text
            else:
                out += (" + " if sign > 0 else f" {MINUS} ") + text
        return out


@dataclass(frozen=True, eq=False)
class Prod(Expr):
    factors: tuple
    prec = 2

    def __init__(self, factors):
        object.__setattr__(self, "factors", tuple(factors))

    def value(self):
        vals = [f.value() for f in self.factors]
        if any(isinstance(v, float) for v in vals):
            out = 1.0
            for v in vals:
                out *= v
            return out
        return prod(vals)

    def render(self, symbolic: bool) -> str:
        if not symbolic and any(isinstance(f, Leaf) and f.v == 0 for f in self.factors):
            return "0"  # `+ 0` reads better than `+ 2·0`
        out = ""
        for i, f in enumerate(self.factors):
            text = f"({f.render(symbolic)})" if _prec(f, symbolic) < 2 else f.render(symbolic)
            prev = self.factors[i - 1] if i else None
            # `2P` in the general form, as a textbook writes it; numbers always get their `·`
            juxtapose = symbolic and isinstance(prev, Leaf) and not prev.name and isinstance(f, Leaf) and f.name
            out += text if i == 0 or juxtapose else "·" + text
        return out


@dataclass(frozen=True, eq=False)
class Div(Expr):
    num: Expr
    den: Expr
    prec = 2

    def value(self):
        a, b = self.num.value(), self.den.value()
        if isinstance(a, float) or isinstance(b, float):
            return a / b
        return Fraction(a) / Fraction(b)

    def render(self, symbolic: bool) -> str:
        a, b = self.num.render(symbolic), self.den.render(symbolic)
        if _prec(self.num, symbolic) < 3:
            a = f"({a})"
        if _prec(self.den, symbolic) < 3:
            b = f"({b})"
        return f"{a}/{b}"


@dataclass(frozen=True, eq=False)
class Round(Expr):
    """⌊e⌋ or ⌈e⌉."""

    e: Expr
    up: bool = False

    def value(self):
        v = self.e.value()
        return math.ceil(v) if self.up else math.floor(v)

    def render(self, symbolic: bool) -> str:
        inner = self.e.render(symbolic)
        return f"⌈{inner}⌉" if self.up else f"⌊{inner}⌋"


@dataclass(frozen=True, eq=False)
class Group(Expr):
    """(e), kept as one factor: `16·(1·5·5) + 16` shows the weights of one filter."""

    e: Expr

    def value(self):
        return self.e.value()

    def render(self, symbolic: bool) -> str:
        return f"({self.e.render(symbolic)})"


def _prec(e: Expr, symbolic: bool) -> int:
    return 3 if symbolic and isinstance(e, Leaf) and e.name else e.prec


def _terms(e: Expr, sign: int) -> list:
    if isinstance(e, Sum):
        return [(sign * s, t) for s, t in e.terms]
    return [(sign, e)]


def _factors(e: Expr) -> list:
    return list(e.factors) if isinstance(e, Prod) else [e]


def floor(e: Expr) -> Expr:
    return Round(e)


def ceil(e: Expr) -> Expr:
    return Round(e, up=True)


def L(v, name: str = "") -> Leaf:  # noqa: N802 - reads like a letter in the formulas below
    return Leaf(v, name)


# -- results -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Formula:
    """One number and how it comes out: `label: filled = value`."""

    label: str  # "H", "C", "features", "params", "MACs"
    general: str  # with letters: "⌊(H − F + 2P)/S⌋ + 1"; "" where the value is simply given
    filled: str  # with the user's numbers: "⌊(28 − 5 + 2·2)/1⌋ + 1"
    value: int
    note: str = ""  # e.g. "out_channels", "ceil_mode: …", "not counted: …"
    raw: int | None = None  # the value before a correction the note explains (ceil_mode)
    why_small: str = ""  # what it means when the value is below 1

    @property
    def text(self) -> str:
        """`H: ⌊(28 − 5 + 2·2)/1⌋ + 1 = 28`, or `C = 16 (out_channels)`."""
        v = _num(self.value)
        if self.filled and self.filled != v:
            head = f"{self.label}: {self.filled} = "
            if self.raw is not None and self.raw != self.value:
                return f"{head}{_num(self.raw)} → {v} ({self.note})"
            return head + v + (f" ({self.note})" if self.note else "")
        return f"{self.label} = {v}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class BlockArithmetic:
    node_id: str
    type: str
    shape: tuple[Formula, ...]  # one per output dimension (C, H, W; or features)
    params: Formula
    macs: Formula
    note: str = ""  # for blocks whose output simply has the input's shape: why
    error: str = ""  # where the arithmetic breaks, when the output would be empty

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(f.value for f in self.shape)

    def shape_lines(self) -> list[str]:
        """One line per dimension, dimensions with the same formula and numbers on one line (`H, W: …`)."""
        if self.note:
            return [f"{self.note}: {fmt_shape(self.values)}"]
        return [f.text for f in self.shape_formulas()]

    def shape_formulas(self) -> list[Formula]:
        """The shape's formulas as `shape_lines` shows them: H and W as one (`H, W`) when they agree."""
        merged: list[Formula] = []
        for f in self.shape:
            prev = merged[-1] if merged else None
            if prev is not None and prev.label == "H" and f.label == "W" and prev.filled == f.filled \
                    and prev.general.replace("H", "W") == f.general and prev.value == f.value \
                    and prev.note == f.note and prev.raw == f.raw:
                merged[-1] = Formula(f"{prev.label}, {f.label}", prev.general, prev.filled, prev.value, prev.note,
                                     prev.raw, prev.why_small)
            else:
                merged.append(f)
        return merged

    def lines(self) -> list[str]:
        out = self.shape_lines() + [self.params.text, self.macs.text]
        if self.error:
            out.append(self.error)
        return out


# -- per block type ------------------------------------------------------------------------------

DIM_LABELS = {1: ("features",), 2: ("C", "L"), 3: ("C", "H", "W")}
SPATIAL = ("H", "W")
NO_PARAMS = "no learnable parameters"
NOT_COUNTED = "not counted: only convolutions and Linear layers are, as in torch.utils.flop_counter"


def _labels(rank: int) -> tuple[str, ...]:
    return DIM_LABELS.get(rank, tuple(f"d{i + 1}" for i in range(rank)))


def _f(label: str, e: Expr, note: str = "", why_small: str = "") -> Formula:
    return Formula(label, e.render(True), e.render(False), int(e.value()), note, None, why_small)


def _given(label: str, value: int, note: str = "") -> Formula:
    return Formula(label, "", str(value), int(value), note)


def _zero(label: str, note: str) -> Formula:
    return Formula(label, "", "0", 0, note)


def _same(shape: Shape) -> tuple[Formula, ...]:
    return tuple(_given(lab, d) for lab, d in zip(_labels(len(shape)), shape, strict=True))


Rule = Callable[[dict, list[Shape]], tuple[tuple[Formula, ...], Formula, Formula, str]]


def _identity(why: str, params: Callable[[dict, list[Shape]], Formula] | None = None) -> Rule:
    def rule(p, ins):
        pf = params(p, ins) if params else _zero("params", NO_PARAMS)
        return _same(ins[0]), pf, _zero("MACs", NOT_COUNTED), why

    return rule


def _pair(v) -> tuple:
    return v if isinstance(v, tuple) else (v, v)


def _conv2d(p, ins):
    c, *hw = ins[0]
    k, s, d = p["kernel_size"], p["stride"], p["dilation"]
    pad = p["padding"]
    out = [_given("C", p["out_channels"], "out_channels")]
    for i, lab in enumerate(SPATIAL):
        x = L(hw[i], lab)
        if pad == "same":
            total = d[i] * (k[i] - 1)
            out.append(Formula(lab, lab, str(hw[i]), hw[i], f"padding='same' pads {total} in all, keeping the size"))
            continue
        pd = 0 if pad == "valid" else pad[i]
        F_, S, P, D = L(k[i], "F"), L(s[i], "S"), L(pd, "P"), L(d[i], "D")
        if d[i] == 1:
            e = floor((x - F_ + 2 * P) / S) + 1
        else:
            e = floor((x + 2 * P - D * (F_ - 1) - 1) / S) + 1
        out.append(_f(lab, e, why_small="the kernel is larger than the padded input"))
    cin, g = p["in_channels"] or c, p["groups"]
    per = _per_filter(cin, g, k, "C")
    K = L(p["out_channels"], "K")
    params = K * per + K if p["bias"] else K * per
    macs = L(out[0].value, "K") * L(out[1].value, "H′") * L(out[2].value, "W′") * per
    return tuple(out), _f("params", params, _bias_note(p)), _f("MACs", macs), ""


def _per_filter(cin: int, g: int, k: tuple, cname: str) -> Expr:
    """C/g·Fh·Fw: the weights of one filter (the product a filter computes per output value)."""
    ch = L(cin, cname) if g == 1 else L(cin, cname) / L(g, "g")
    return Group(ch * L(k[0], "Fh") * L(k[1], "Fw"))


def _bias_note(p) -> str:
    return "" if p.get("bias", True) else "no bias"


def _convt(p, ins):
    c, *hw = ins[0]
    k, s, pad, op, d = p["kernel_size"], p["stride"], p["padding"], p["output_padding"], p["dilation"]
    out = [_given("C", p["out_channels"], "out_channels")]
    for i, lab in enumerate(SPATIAL):
        x, S, P, D, F_ = L(hw[i], lab), L(s[i], "S"), L(pad[i], "P"), L(d[i], "D"), L(k[i], "F")
        # D·(F − 1) + 1 is the dilated kernel's extent; without dilation it is just F
        e = (x - 1) * S - 2 * P + (F_ if d[i] == 1 else D * (F_ - 1))
        if op[i]:
            e = e + L(op[i], "output_padding")
        if d[i] != 1:
            e = e + 1
        out.append(_f(lab, e, why_small="the padding removes more than the output has"))
    cin, g = p["in_channels"] or c, p["groups"]
    cout = L(p["out_channels"], "K") if g == 1 else L(p["out_channels"], "K") / L(g, "g")
    per = Group(cout * L(k[0], "Fh") * L(k[1], "Fw"))
    C = L(cin, "C")
    params = C * per + L(p["out_channels"], "K") if p["bias"] else C * per
    macs = L(cin, "C") * L(hw[0], "H") * L(hw[1], "W") * per
    return (tuple(out), _f("params", params, _bias_note(p)),
            _f("MACs", macs, "counted per input position, as torch.utils.flop_counter does"), "")


def _window(dilated: bool):
    def rule(p, ins):
        c, *hw = ins[0]
        k = p["kernel_size"]
        strided = p["stride"] is not None
        s = p["stride"] if strided else k
        pad = p["padding"]
        d = p["dilation"] if dilated else (1, 1)
        ceil_mode = p["ceil_mode"]
        out = [_given("C", c, "as the input")]
        for i, lab in enumerate(SPATIAL):
            x, F_, S, P, D = L(hw[i], lab), L(k[i], "F"), L(s[i], "S"), L(pad[i], "P"), L(d[i], "D")
            num = (x - F_ + 2 * P) if d[i] == 1 else (x + 2 * P - D * (F_ - 1) - 1)
            e = (ceil(num / S) if ceil_mode else floor(num / S)) + 1
            raw = int(e.value())
            value, note = raw, "" if strided else "stride = kernel_size, the default"
            if ceil_mode and (raw - 1) * s[i] >= hw[i] + pad[i]:
                value, note = raw - 1, "ceil_mode: the last window would start in the padding, so it is dropped"
            elif ceil_mode:
                note = "ceil_mode rounds up" + (f"; {note}" if note else "")
            out.append(Formula(lab, e.render(True), e.render(False), value, note, raw,
                               "the window is larger than the padded input"))
        return tuple(out), _zero("params", NO_PARAMS), _zero("MACs", NOT_COUNTED), ""

    return rule


def _adaptive(p, ins):
    c, *hw = ins[0]
    size = p["output_size"]
    size = (size, size) if isinstance(size, int) else size
    out = [_given("C", c, "as the input")]
    for i, lab in enumerate(SPATIAL):
        if size[i] is None:
            out.append(_given(lab, hw[i], "output_size leaves it as the input's"))
        else:
            out.append(_given(lab, size[i], "output_size"))
    return tuple(out), _zero("params", NO_PARAMS), _zero("MACs", NOT_COUNTED), ""


def _input(p, ins):
    shape = p["shape"]
    return (tuple(_given(lab, d, "set in the Input block") for lab, d in zip(_labels(len(shape)), shape,
                                                                               strict=True)),
            _zero("params", NO_PARAMS), _zero("MACs", NOT_COUNTED), "")


def _linear(p, ins):
    n_in = p["in_features"] or ins[0][0]
    i, o = L(n_in, "in"), L(p["out_features"], "out")
    params = i * o + o if p["bias"] else i * o
    return ((_given("features", p["out_features"], "out_features"),), _f("params", params, _bias_note(p)),
            _f("MACs", i * o), "")


def _flatten(p, ins):
    from ..blocks.rules import normalize_dim

    shape = ins[0]
    labels = _labels(len(shape))
    s = normalize_dim(p["start_dim"], len(shape), "start_dim")
    e = normalize_dim(p["end_dim"], len(shape), "end_dim")
    out = [_given(labels[i], shape[i], "kept") for i in range(s)]
    joined = labels[s:e + 1]
    expr = L(shape[s], labels[s])
    for i in range(s + 1, e + 1):
        expr = expr * L(shape[i], labels[i])
    label = "features" if s == 0 and e == len(shape) - 1 else "·".join(joined)
    out.append(_f(label, expr) if e > s else _given(label, shape[s], "a single dimension: unchanged"))
    out.extend(_given(labels[i], shape[i], "kept") for i in range(e + 1, len(shape)))
    return tuple(out), _zero("params", NO_PARAMS), _zero("MACs", NOT_COUNTED), ""


def _upsample(p, ins):
    c, *hw = ins[0]
    out = [_given("C", c, "as the input")]
    size, scale = p["size"], p["scale_factor"]
    for i, lab in enumerate(SPATIAL):
        if size is not None:
            out.append(_given(lab, _pair(size)[i], "size"))
        else:
            out.append(_f(lab, floor(L(hw[i], lab) * L(float(scale), "scale_factor")),
                          why_small="the scale factor shrinks it to nothing"))
    return tuple(out), _zero("params", NO_PARAMS), _zero("MACs", NOT_COUNTED), ""


def _add(p, ins):
    rank = len(ins[0])
    out = []
    for i, lab in enumerate(_labels(rank)):
        sizes = [s[i] for s in ins]
        if len(set(sizes)) == 1:
            out.append(_given(lab, sizes[0], "every input has it"))
        else:
            v = max(sizes)
            out.append(_given(lab, v, f"inputs of size 1 are broadcast to {v}"))
    return tuple(out), _zero("params", NO_PARAMS), _zero("MACs", NOT_COUNTED), ""


def _concat(p, ins):
    from ..blocks.rules import normalize_dim

    rank = len(ins[0])
    d = normalize_dim(p["dim"], rank)
    labels = _labels(rank)
    out = []
    for i, lab in enumerate(labels):
        if i == d:
            e = L(ins[0][i], f"{lab}₁")
            for k, s in enumerate(ins[1:], start=2):
                e = e + L(s[i], f"{lab}{_sub(k)}")
            out.append(_f(lab, e, "joined along this dimension"))
        else:
            out.append(_given(lab, ins[0][i], "every input has it"))
    return tuple(out), _zero("params", NO_PARAMS), _zero("MACs", NOT_COUNTED), ""


def _sub(k: int) -> str:
    return "".join("₀₁₂₃₄₅₆₇₈₉"[int(ch)] for ch in str(k))


def _affine(p, ins):
    c = L(ins[0][0], "C")
    if not p["affine"]:
        return _zero("params", "affine=False: nothing to learn")
    return _f("params", 2 * c, "a scale and a shift per channel; running statistics are buffers, not trained")


def _layernorm_params(p, ins):
    ns = p["normalized_shape"] or ins[0]
    if not p["elementwise_affine"]:
        return _zero("params", "elementwise_affine=False: nothing to learn")
    n = L(ns[0], "n₁")
    for k, v in enumerate(ns[1:], start=2):
        n = n * L(v, f"n{_sub(k)}")
    if p["bias"]:
        return _f("params", 2 * (Group(n) if len(ns) > 1 else n), "a scale and a shift per normalized element")
    return _f("params", n, "a scale per normalized element (bias=False)")


def _mul(p, ins):
    shape, params, macs, _ = _add(p, ins)
    return shape, params, _zero("MACs", "not counted: an element-wise product, as torch.utils.flop_counter"), ""


def _zeropad(p, ins):
    c, h, w = ins[0]
    left, right, top, bottom = p["padding"]
    out = [_given("C", c, "as the input")]
    for lab, x, a, b, ends in (("H", h, top, bottom, ("top", "bottom")), ("W", w, left, right, ("left", "right"))):
        e = L(x, lab)
        for v, name in ((a, ends[0]), (b, ends[1])):
            if v:
                e = e + L(v, name) if v > 0 else e - L(-v, name)
        out.append(_f(lab, e, "negative padding crops" if min(a, b) < 0 else "",
                      why_small="the negative padding crops more than the input has"))
    return tuple(out), _zero("params", NO_PARAMS), _zero("MACs", NOT_COUNTED), ""


def _unflatten(p, ins):
    from ..blocks.rules import normalize_dim

    shape = ins[0]
    labels = _labels(len(shape))
    d = normalize_dim(p["dim"], len(shape))
    sizes = p["unflattened_size"]
    known = math.prod(v for v in sizes if v != -1)
    n = shape[d]
    parts = []
    for v in sizes:
        if v == -1:
            parts.append(Formula("?", f"{labels[d]}/known", f"{n}/{known}", n // known,
                                 "the -1 in unflattened_size: what the others leave"))
        else:
            parts.append(_given("", v, "unflattened_size"))
    out_rank = len(shape) - 1 + len(sizes)
    out_labels = _labels(out_rank)
    out: list[Formula] = []
    k = 0
    for i in range(len(shape)):
        if i != d:
            out.append(_given(out_labels[k], shape[i], "kept"))
            k += 1
            continue
        for f in parts:
            out.append(Formula(out_labels[k], f.general, f.filled if f.general else "", f.value, f.note))
            k += 1
    return tuple(out), _zero("params", NO_PARAMS), _zero("MACs", NOT_COUNTED), ""


def _parts(sizes: list[int], d: int, ins, what: str, p, first: Formula | None = None):
    """Shape formulas of a Split/Chunk's first output (the others are listed in the note)."""
    shape = ins[0]
    labels = _labels(len(shape))
    listing = " + ".join(str(v) for v in sizes)
    out = []
    for i, lab in enumerate(labels):
        if i != d:
            out.append(_given(lab, shape[i], "as the input"))
        elif first is not None:
            out.append(first)
        else:
            out.append(_given(lab, sizes[0], f"output 0 of {len(sizes)}: {what} {listing} = {shape[i]}"))
    return tuple(out), _zero("params", NO_PARAMS), _zero("MACs", NOT_COUNTED), ""


def _split(p, ins):
    from ..blocks.rules import normalize_dim

    d = normalize_dim(p["dim"], len(ins[0]))
    return _parts(list(p["split_size_or_sections"]), d, ins, "split_size_or_sections", p)


def _chunk(p, ins):
    from ..blocks.rules import normalize_dim

    shape = ins[0]
    d = normalize_dim(p["dim"], len(shape))
    n, k = shape[d], p["chunks"]
    size = -(-n // k)
    sizes = [size] * (n // size) + ([n % size] if n % size else [])
    lab = _labels(len(shape))[d]
    first = _f(lab, ceil(L(n, lab) / L(k, "chunks")),
               f"output 0 of {len(sizes)}: parts {' + '.join(map(str, sizes))} = {n}")
    return _parts(sizes, d, ins, "parts", p, first)


def _prelu_params(p, ins):
    n = p["num_parameters"]
    return _given("params", n, "one learnt slope for all channels" if n == 1 else "a learnt slope per channel")


RULES: dict[str, Rule] = {
    "Input": _input,
    "Conv2d": _conv2d,
    "ConvTranspose2d": _convt,
    "MaxPool2d": _window(dilated=True),
    "AvgPool2d": _window(dilated=False),
    "AdaptiveAvgPool2d": _adaptive,
    "AdaptiveMaxPool2d": _adaptive,
    "Linear": _linear,
    "Flatten": _flatten,
    "Upsample": _upsample,
    "Add": _add,
    "Concat": _concat,
    "BatchNorm2d": _identity("normalises each channel: the output has the input's shape", _affine),
    "BatchNorm1d": _identity("normalises each feature: the output has the input's shape", _affine),
    "GroupNorm": _identity("normalises groups of channels: the output has the input's shape", _affine),
    "LayerNorm": _identity("normalises each sample: the output has the input's shape", _layernorm_params),
    "Dropout": _identity("zeroes random values while training: the output has the input's shape"),
    "Dropout2d": _identity("zeroes random channels while training: the output has the input's shape"),
    "Identity": _identity("passes its input on unchanged"),
    "Softmax": _identity("rescales along one dimension: the output has the input's shape"),
    "LogSoftmax": _identity("rescales along one dimension: the output has the input's shape"),
    "PReLU": _identity("PReLU works on each value on its own: the output has the input's shape", _prelu_params),
    "LocalResponseNorm": _identity("normalises each value by its neighbours across `size` channels: the output "
                                   "has the input's shape"),
    "ChannelShuffle": _identity("reorders the channels in `groups`: the output has the input's shape"),
    "ZeroPad2d": _zeropad,
    "Unflatten": _unflatten,
    "Mul": _mul,
    "Split": _split,
    "Chunk": _chunk,
}
for _t in ("ReLU", "ReLU6", "LeakyReLU", "ELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh", "Hardtanh",
           "Hardswish", "Hardsigmoid"):
    RULES[_t] = _identity(f"{_t} works on each value on its own: the output has the input's shape")
assert set(RULES) == set(REGISTRY), set(REGISTRY) ^ set(RULES)  # a new block type needs its arithmetic


def arithmetic(type_name: str, resolved: dict[str, Any], inputs: list[Shape], node_id: str = "") -> BlockArithmetic:
    """The formulas of one block from its resolved parameters (`NodeInfo.resolved`) and input shapes.
    May raise ShapeError where the block cannot work at all (a dim out of range)."""
    spec = REGISTRY[type_name]
    p = spec.resolve(resolved)
    shape, params, macs, note = RULES[type_name](p, [tuple(s) for s in inputs])
    error = ""
    bad = next((f for f in shape if f.value < 1 and f.why_small), None)
    if bad is not None:
        error = f"{bad.label}: {bad.filled} = {_num(bad.value)}: {bad.why_small}"
    return BlockArithmetic(node_id, type_name, shape, params, macs, note, error)


def block_arithmetic(graph, node_id: str, analysis=None) -> BlockArithmetic | None:
    """The block's arithmetic, or None when its inputs are unknown (an upstream problem, no input)."""
    from ..blocks import ShapeError
    from ..shapes import analyze

    a = analysis or analyze(graph)
    info = a.nodes.get(node_id)
    node = graph.node(node_id)
    if info is None or (node.type != "Input" and (not info.inputs or info.waiting)):
        return None
    resolved = info.resolved or node.spec.resolve(node.params)
    try:
        return arithmetic(node.type, resolved, info.inputs, node_id)
    except (ShapeError, KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
        return None  # the block cannot work at all; its error message says why


def error_arithmetic(graph, node_id: str, analysis=None) -> str | None:
    """For a block whose output would be empty: the formula step that goes wrong, e.g.
    `H: ⌊(3 − 5 + 0)/1⌋ + 1 = −1: the kernel is larger than the padded input`. None otherwise."""
    from ..shapes import analyze

    a = analysis or analyze(graph)
    info = a.nodes.get(node_id)
    if info is None or info.error is None:
        return None
    found = block_arithmetic(graph, node_id, a)
    return found.error if found is not None and found.error else None


def all_arithmetic(graph, analysis=None) -> dict[str, BlockArithmetic]:
    """Every block whose inputs are known, in topological order."""
    from ..shapes import analyze

    a = analysis or analyze(graph)
    out = {}
    for nid in a.order:
        found = block_arithmetic(graph, nid, a)
        if found is not None:
            out[nid] = found
    return out
