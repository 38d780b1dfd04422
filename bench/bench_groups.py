"""Groups benchmark: what groups cost the core on the largest template, DenseNet-121 (428 blocks,
66 groups nested up to three deep). Prints medians of 21 runs.

    .venv/bin/python bench/bench_groups.py

What is timed:
  codegen      generate() of the grouped graph, and of the same graph with every group removed
               (the ratio is the figure: a loaded machine slows both alike)
  group info   all_group_info(): every group's ports, shapes, parameter and MAC totals and first
               problem, for a canvas that shows collapsed groups (one pass over the blocks)
  analysis     analyze() of the graph, for scale: the canvas runs it on every edit anyway
  layout       layout_by_group(): each group's view laid out on its own (File ▸ New does it once)
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cnnbuilder.core.architectures import ARCHITECTURES  # noqa: E402
from cnnbuilder.core.codegen import generate  # noqa: E402
from cnnbuilder.core.groups import all_group_info  # noqa: E402
from cnnbuilder.core.layout import layout_by_group  # noqa: E402
from cnnbuilder.core.shapes import analyze  # noqa: E402


def median_ms(fn, runs: int = 21) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> int:
    for key in ("densenet121", "resnet50"):
        g = ARCHITECTURES[key].build().graph
        flat = g.copy()
        for grp in flat.groups:
            flat.remove_group(grp.id)
        a, a_flat = analyze(g), analyze(flat)
        grouped_ms = median_ms(lambda g=g, a=a: generate(g, analysis=a))
        flat_ms = median_ms(lambda f=flat, a=a_flat: generate(f, analysis=a))
        gen = generate(g, analysis=a)
        classes = gen.code.count("\nclass ")
        print(f"{key}: {len(g)} blocks, {len(g.groups)} groups, {classes} classes in the code")
        print(f"  codegen, grouped                 {grouped_ms:7.2f} ms")
        print(f"  codegen, the same ungrouped      {flat_ms:7.2f} ms   (grouped / ungrouped = "
              f"{grouped_ms / flat_ms:.2f})")
        print(f"  all_group_info (every group)     {median_ms(lambda g=g, a=a: all_group_info(g, a)):7.2f} ms")
        print(f"  analyze (for scale)              {median_ms(lambda g=g: analyze(g)):7.2f} ms")
        print(f"  layout_by_group                  {median_ms(lambda g=g: layout_by_group(g), 5):7.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
