"""Per-block statistics: trainable parameters, MACs and activation memory.

MACs count multiply-accumulates of convolutions and Linear layers, the operations
torch.utils.flop_counter counts (FLOPs = 2 × MACs); elementwise layers, pooling and
normalization are cheap beside them and are not counted, as in that counter.
Activation memory is the block's output for one sample in float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from .blocks import LayerSpec, Shape

BYTES_PER_ELEMENT = 4  # float32


@dataclass(frozen=True)
class BlockStats:
    params: int
    macs: int
    memory: int  # bytes per sample


ZERO = BlockStats(0, 0, 0)


def block_stats(spec: LayerSpec, resolved: dict, inputs: list[Shape], output: Shape) -> BlockStats:
    return BlockStats(
        spec.count_params(resolved, inputs, output),
        spec.count_macs(resolved, inputs, output),
        prod(output) * BYTES_PER_ELEMENT,
    )


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23 M'; used by the CLI and the GUI alike."""
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g} {suffix}{unit}"
    return f"{int(n)} {unit}".rstrip()


def human_bytes(n: float) -> str:
    for div, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= div:
            return f"{n / div:.3g} {suffix}"
    return f"{int(n)} B"
