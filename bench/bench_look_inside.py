"""GUI-thread cost of drawing a Look inside answer (the part that must stay under 100 ms): a
Predict result for a 224×224 colour image with a Grad-CAM map, an opacity re-blend, and a Filters
grid of 64 RGB 7×7 kernels (ResNet-18's first layer) with its histogram. The computing happens in
the worker and is not measured here.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_look_inside.py
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtWidgets import QApplication

from cnnbuilder.core.inspect.look import FilterGrid, LookResult
from cnnbuilder.qt.training.filters_view import FiltersView
from cnnbuilder.qt.training.look_view import PredictView


def median_ms(fn, rounds=20) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        QApplication.processEvents()
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times)), float(np.max(times))


def main() -> None:
    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    view = PredictView()
    view.resize(900, 600)
    view.show()
    names = tuple(f"class {i}" for i in range(1000))
    r = LookResult(1, "predict", display=rng.integers(0, 255, (224, 224, 3), dtype=np.uint8), image_name="x.jpg",
                   top=tuple((names[i], 0.2) for i in range(5)), class_names=names, method="gradcam",
                   heat=rng.random((224, 224), dtype=np.float32), target=0, block="n9",
                   blocks=tuple((f"n{i}", f"block{i}") for i in range(20)))
    med, worst = median_ms(lambda: view.show_result(r))
    print(f"Predict result, 224×224, 1000 classes: median {med:.1f} ms, worst {worst:.1f} ms")
    med, worst = median_ms(lambda: view.opacity.setValue(int(rng.integers(0, 100))))
    print(f"opacity re-blend, 224×224: median {med:.1f} ms, worst {worst:.1f} ms")
    fv = FiltersView()
    fv.resize(900, 600)
    fv.show()
    fv.set_block("conv1", True)
    g = FilterGrid("n2", "conv1", rng.random((64, 7, 7, 3), dtype=np.float32), True, "", np.ones(40, np.int64),
                   np.linspace(-1, 1, 41), 64)
    med, worst = median_ms(lambda: fv.show_grid(g, "x"))
    print(f"Filters grid, 64 RGB 7×7 kernels + histogram: median {med:.1f} ms, worst {worst:.1f} ms")
    app.processEvents()


if __name__ == "__main__":
    main()
