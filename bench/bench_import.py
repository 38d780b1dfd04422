"""Import benchmark: how long `cnnbuilder import torchvision:resnet18` and `torchvision:densenet121`
take (issue 12 §1). Prints medians.

    .venv/bin/python bench/bench_import.py [--repeat N]

What is timed (3×224×224 input, weights carried over to a file):
  child         import_model as the CLI and the GUI call it: a fresh spawned interpreter (torch and
                torchvision loaded there), build, trace, map, write the answer; the parent reads it,
                lays it out, analyses and checks it, and writes the weights file
  in process    the same work without the child process: build + trace + map + finish
                (what the child costs on its own is the difference)
  trace + map   torch.fx tracing, the concrete run and the mapping onto blocks, model already built
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnbuilder.core.importer import import_in_process, import_model  # noqa: E402


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import torchvision

    from cnnbuilder.core.importer.mapping import map_module

    print(f"{'model':<12} {'blocks':>6} {'groups':>6} {'child':>9} {'in process':>11} {'trace + map':>12}")
    for name in ("resnet18", "densenet121"):
        with tempfile.TemporaryDirectory() as tmp:
            w = Path(tmp) / "w.pt"
            result = import_model(f"torchvision:{name}", weights_to=w)
            source = f"torchvision:{name}"
            child = median_ms(lambda s=source, w=w: import_model(s, weights_to=w), args.repeat)
            here = median_ms(lambda s=source, w=w: import_in_process(s, weights_to=w), args.repeat)
            model = torchvision.models.get_model(name, weights=None).eval()
            trace = median_ms(lambda m=model, n=name: json.dumps(map_module(m, (3, 224, 224), n).graph), args.repeat)
        g = result.project.graph
        print(f"{name:<12} {len(g):>6} {len(g.groups):>6} {child:>7.0f} ms {here:>8.0f} ms {trace:>9.0f} ms",
              flush=True)


if __name__ == "__main__":
    main()
