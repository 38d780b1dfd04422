"""ONNX export times: every example project exported with the dynamo exporter and verified in
onnxruntime (what File > Export ONNX… and `cnnbuilder export --format onnx` do), in one process.

The first export of a process also pays for importing and warming up the exporter; it is printed
separately, then each example's median over --repeats.

    python bench/bench_onnx.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from cnnbuilder.core.export.onnx import export_onnx, onnx_missing
    from cnnbuilder.core.project import load_project
    from cnnbuilder.core.shapes import analyze

    if (missing := onnx_missing()) is not None:
        sys.exit(missing)
    import onnxruntime
    import torch

    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}")
    out = Path(tempfile.mkdtemp(prefix="cnnb-onnx-")) / "model.onnx"
    examples = sorted((ROOT / "resources" / "examples").glob("*.json"))
    t = time.perf_counter()
    export_onnx(load_project(examples[0]).graph, out)
    print(f"first export in this process (imports and warm-up): {time.perf_counter() - t:.1f} s")
    print(f"{'example':<18} {'params':>10} {'opset':>5} {'max diff':>9} {'size':>9} {'seconds (median)':>17}")
    for path in examples:
        graph = load_project(path).graph
        times = []
        for _ in range(args.repeats):
            report = export_onnx(graph, out)
            times.append(report.seconds)
        print(f"{path.stem:<18} {analyze(graph).total_params:>10,} {report.opset:>5} {report.max_abs_diff:>9.1e} "
              f"{out.stat().st_size / 1e6:>7.2f}MB {statistics.median(times):>17.2f}")


if __name__ == "__main__":
    main()
