"""The description of a block type: its parameters, ports and pure functions for shape,
statistics and code. Nothing here knows about Qt or tensors."""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Shape = tuple[int, ...]

# Param kinds. The inspector picks an editor per kind; project files store the JSON form.
INT = "int"  # int
FLOAT = "float"  # float
BOOL = "bool"  # bool
CHOICE = "choice"  # one of `choices` (strings)
PAIR = "pair"  # int or (int, int)
PADDING = "padding"  # int, (int, int), "same" or "valid"
OUTPUT_SIZE = "output_size"  # int or (int|None, int|None)
SHAPE = "shape"  # list of ints (Input shape, LayerNorm normalized_shape)
DIM = "dim"  # int, a tensor dimension counted with the batch first, as torch does
SIZES = "sizes"  # list of 1..MAX_PARTS ints (Split's sections)
PAD4 = "pad4"  # int or (left, right, top, bottom), as torch's padding layers take it

MAX_SIZE = 1 << 20  # channels, features, kernel sizes: larger values are surely typos
MAX_INT = (1 << 63) - 1  # torch sizes are int64: no whole-number parameter may exceed this
MAX_PARTS = 64  # outputs of one Split or Chunk: more is no longer a drawing


class ShapeError(Exception):
    """The block cannot work on its input; the message is in the user's terms."""


class ParamError(ValueError):
    """A parameter value is of the wrong type or out of bounds."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.param = name
        self.reason = message


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: Any = None
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False  # None is a legal value (e.g. stride=None, dim of Upsample size)
    inferred: bool = False  # follows from the incoming tensor when left empty (None)
    required: bool = False  # torch.nn has no default: always written out in code
    positional: bool = False  # written positionally in generated code
    ctor: bool = True  # passed to the torch.nn constructor

    def normalize(self, value: Any) -> Any:
        """Check a value and return its canonical Python form (pairs become tuples)."""
        if value is None:
            if self.nullable or self.inferred:
                return None
            raise ParamError(self.name, "a value is required")
        k = self.kind
        if k == INT or k == DIM:
            v = _as_int(self.name, value)
            self._bounds(v)
            return v
        if k == FLOAT:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParamError(self.name, f"expected a number, got {_show(value)}")
            try:
                v = float(value)
            except OverflowError:  # a 400-digit integer in a float field
                raise ParamError(self.name, f"{_show(value)} is too large") from None
            if not math.isfinite(v):
                raise ParamError(self.name, "must be a finite number")
            self._bounds(v)
            return v
        if k == BOOL:
            if not isinstance(value, bool):
                raise ParamError(self.name, f"expected true or false, got {_show(value)}")
            return value
        if k == CHOICE:
            if value not in self.choices:
                raise ParamError(
                    self.name, f"must be one of {', '.join(self.choices)} (got {_show(value)})"
                )
            return value
        if k == PAIR:
            return self._pair(value)
        if k == PADDING:
            if isinstance(value, str):
                if value in ("same", "valid"):
                    return value
                raise ParamError(self.name, f"must be a number, a pair, 'same' or 'valid' (got {_show(value)})")
            return self._pair(value)
        if k == OUTPUT_SIZE:
            if isinstance(value, (list, tuple)):
                if len(value) != 2:
                    raise ParamError(self.name, "expected one size or a pair of sizes")
                out = tuple(None if x is None else _as_int(self.name, x) for x in value)
                for x in out:
                    if x is not None:
                        self._bounds(x)
                return out
            v = _as_int(self.name, value)
            self._bounds(v)
            return v
        if k == SIZES:
            if not isinstance(value, (list, tuple)) or not value:
                raise ParamError(self.name, f"expected a list of sizes, got {_show(value)}")
            if len(value) > MAX_PARTS:
                raise ParamError(self.name, f"at most {MAX_PARTS} parts")
            out = tuple(_as_int(self.name, x) for x in value)
            for x in out:
                self._bounds(x)
            return out
        if k == PAD4:
            if isinstance(value, (list, tuple)):
                if len(value) != 4:
                    raise ParamError(self.name, f"expected one number or four (left, right, top, bottom), "
                                                f"got {_show(value)}")
                out = tuple(_as_int(self.name, x) for x in value)
            else:
                out = (_as_int(self.name, value),) * 4
            for x in out:
                self._bounds(x)
            return out
        if k == SHAPE:
            if not isinstance(value, (list, tuple)) or not value:
                raise ParamError(self.name, f"expected a list of sizes, got {_show(value)}")
            if len(value) > 3:
                raise ParamError(self.name, "at most 3 dimensions (C×H×W) are supported")
            out = tuple(_as_int(self.name, x) for x in value)
            for x in out:
                self._bounds(x)
            return out
        raise AssertionError(f"unknown param kind {k}")  # pragma: no cover

    def _pair(self, value: Any) -> tuple[int, int]:
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ParamError(self.name, f"expected one number or a pair, got {_show(value)}")
            a, b = (_as_int(self.name, x) for x in value)
        else:
            a = b = _as_int(self.name, value)
        self._bounds(a)
        self._bounds(b)
        return (a, b)

    def _bounds(self, v: float) -> None:
        if self.min is not None and v < self.min:
            raise ParamError(self.name, f"must be at least {_num(self.min)} (got {_num(v)})")
        if self.max is not None and v > self.max:
            raise ParamError(self.name, f"must be at most {_num(self.max)} (got {_num(v)})")

    def to_json(self, value: Any) -> Any:
        if isinstance(value, tuple):
            if self.kind in (PAIR, PADDING, PAD4) and len(set(value)) == 1:
                return value[0]  # `3` reads better than `[3, 3]` in a file and a diff
            return list(value)
        return value


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ParamError(name, f"expected a whole number, got {_show(value)}")
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise ParamError(name, f"{_show(value)} is beyond what PyTorch can hold (at most {MAX_INT})")
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    raise ParamError(name, f"expected a whole number, got {_show(value)}")


def _num(v: float) -> str:
    if isinstance(v, int):
        return _show(v)
    return str(int(v)) if v.is_integer() else repr(v)


def _show(value: Any) -> str:
    """A short, always-printable rendering of a user's value for a message: no RecursionError on
    deep nesting, no ValueError on a 5,000-digit integer, no raw control characters."""
    return _SHOW.repr(value)


class _ShortRepr(reprlib.Repr):
    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxlist, self.maxtuple, self.maxdict, self.maxstring, self.maxother = 2, 4, 4, 4, 30, 30

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 64:
            return f"a {len(str(abs(x))) if x.bit_length() < 13000 else 'many'}-digit number"
        return repr(x)

    def repr(self, x: Any) -> str:
        text = super().repr(x)
        return text if len(text) <= 40 else text[:37] + "..."


_SHOW = _ShortRepr()


def fmt_shape(shape: Shape) -> str:
    return "×".join(str(d) for d in shape)


def fmt_pair(p: Any) -> str:
    if isinstance(p, tuple):
        return str(p[0]) if p[0] == p[1] else f"{p[0]}×{p[1]}"
    return str(p)


@dataclass
class Ctx:
    """What a shape rule sees: resolved params (it may fill inferred ones) and input shapes."""

    params: dict[str, Any]
    inputs: list[Shape]


@dataclass(frozen=True)
class LayerSpec:
    type: str  # the torch.nn class name, or Input / Add / Concat
    category: str
    doc: str  # one-line summary from the PyTorch docstring, shown as help
    params: tuple[Param, ...]
    infer: Callable[[Ctx], Shape]
    short: str  # base for generated attribute names
    min_inputs: int = 1
    max_inputs: int | None = 1  # None: any number
    count_params: Callable[[dict, list[Shape], Shape], int] = lambda p, i, o: 0
    count_macs: Callable[[dict, list[Shape], Shape], int] = lambda p, i, o: 0
    summary: Callable[[dict], str] | None = None
    module: bool = True  # emitted as an nn.Module; Input/Add/Concat are written in forward
    # Blocks with several outputs (Split, Chunk): how many, from the resolved params, and the shape
    # of each (`infer` then gives the first). Edges say which output they leave from (a port index).
    outputs: Callable[[dict], int] | None = None
    parts: Callable[[Ctx], list[Shape]] | None = None
    param_map: dict[str, Param] = field(init=False, repr=False, compare=False)
    resolved_defaults: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_map", {p.name: p for p in self.params})
        # In canonical form (kernel_size 3 -> (3, 3)), as a value that was set would be: a file may leave any out.
        object.__setattr__(self, "resolved_defaults",
                           {p.name: None if p.default is None else p.normalize(p.default) for p in self.params})

    # -- parameters -------------------------------------------------------------------
    def check_param(self, name: str, value: Any) -> Any:
        p = self.param_map.get(name)
        if p is None:
            raise ParamError(name, f"{self.type} has no parameter {_show(name)}")
        return p.normalize(value)

    def check_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Normalize a whole user dict (unknown names and bad values raise ParamError)."""
        return {k: self.check_param(k, v) for k, v in params.items()}

    def defaults(self) -> dict[str, Any]:
        """Values a freshly placed block starts with: the torch defaults plus suggestions for
        the arguments torch requires (e.g. out_channels)."""
        return {p.name: p.default for p in self.params if p.required}

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        out = dict(self.resolved_defaults)
        out.update(params)
        return out

    def ctor_kwargs(self, resolved: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for the torch.nn constructor (inferred values filled in)."""
        return {p.name: resolved[p.name] for p in self.params if p.ctor}

    @property
    def multi_output(self) -> bool:
        return self.outputs is not None

    def output_count(self, resolved: dict[str, Any]) -> int:
        """How many output ports the block has with these (resolved) params."""
        return 1 if self.outputs is None else self.outputs(resolved)

    def describe(self, resolved: dict[str, Any]) -> str:
        if self.summary is not None:
            return self.summary(resolved)
        return self.type
