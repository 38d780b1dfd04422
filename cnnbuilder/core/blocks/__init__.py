"""The block registry: every block type the app knows, by its torch.nn class name."""

from __future__ import annotations

from . import activation, conv, misc, norm, pool
from .base import LayerSpec, Param, ParamError, Shape, ShapeError, _show, fmt_shape

CATEGORIES = ("Convolution", "Pooling", "Activation", "Normalization", "Linear", "Merge", "Utility")

REGISTRY: dict[str, LayerSpec] = {
    spec.type: spec
    for spec in (*misc.SPECS[:1], *conv.SPECS, *pool.SPECS, *activation.SPECS, *norm.SPECS, *misc.SPECS[1:])
}


class UnknownBlockError(KeyError):
    def __str__(self) -> str:
        return f"unknown block type {_show(self.args[0])}"


def get_spec(type_name: str) -> LayerSpec:
    try:
        return REGISTRY[type_name]
    except KeyError:
        raise UnknownBlockError(type_name) from None


def by_category() -> dict[str, list[LayerSpec]]:
    groups: dict[str, list[LayerSpec]] = {c: [] for c in CATEGORIES}
    for spec in REGISTRY.values():
        groups[spec.category].append(spec)
    return {c: specs for c, specs in groups.items() if specs}


__all__ = ["REGISTRY", "CATEGORIES", "LayerSpec", "Param", "ParamError", "Shape", "ShapeError", "UnknownBlockError",
           "by_category", "fmt_shape", "get_spec"]
