"""Where new blocks go on the canvas: pure geometry on block positions (top-left corners) and a
block size the view passes in, so pasted, duplicated and appended blocks never land on others."""

from __future__ import annotations

import math
from collections.abc import Iterable

Pos = tuple[float, float]


def free_shift(taken: Iterable[Pos], group: list[Pos], size: Pos, step: Pos, gap: float = 10.0,
               limit: int = 10_000) -> Pos:
    """The first multiple of `step` (k = 0, 1, 2, ...) by which `group` can move so that none of its
    blocks overlaps a block at `taken` (blocks are `size`, kept `gap` apart). Linear in the number
    of blocks: the taken blocks are bucketed on a grid of one block each."""
    w, h = size[0] + gap, size[1] + gap
    grid: dict[tuple[int, int], list[Pos]] = {}
    for x, y in taken:
        grid.setdefault((math.floor(x / w), math.floor(y / h)), []).append((x, y))

    def clashes(x: float, y: float) -> bool:
        cx, cy = math.floor(x / w), math.floor(y / h)
        return any(abs(px - x) < w and abs(py - y) < h
                   for i in (cx - 1, cx, cx + 1) for j in (cy - 1, cy, cy + 1) for px, py in grid.get((i, j), ()))

    for k in range(limit):
        sx, sy = step[0] * k, step[1] * k
        if not any(clashes(x + sx, y + sy) for x, y in group):
            return (sx, sy)
    return (step[0] * limit, step[1] * limit)  # pragma: no cover - 10,000 blocks in one row


def centre_on(group: list[Pos], size: Pos, anchor: Pos) -> Pos:
    """The shift that puts the middle of the group's bounding box at `anchor`."""
    xs, ys = [p[0] for p in group], [p[1] for p in group]
    return (anchor[0] - (min(xs) + max(xs) + size[0]) / 2, anchor[1] - (min(ys) + max(ys) + size[1]) / 2)


def block_above(candidates: Iterable[tuple[str, Pos]], pos: Pos, size: Pos, reach: float = 120.0) -> str | None:
    """The block a drop at `pos` sits just below: its bottom edge within `reach` above the new
    block's top and the two mostly side by side. The nearest wins; None if there is none."""
    best, best_gap = None, math.inf
    for nid, (x, y) in candidates:
        gap = pos[1] - (y + size[1])
        if 0 <= gap <= reach and abs(x - pos[0]) < size[0] * 0.6 and gap < best_gap:
            best, best_gap = nid, gap
    return best
