"""Grad-CAM, saliency and prediction on a ResNet-18 built from a project graph (the model torchvision
calls resnet18: 11,689,512 parameters, 3×224×224 in, 1000 classes out), for one 224×224 image on
the CPU. Goal (issue 11): Grad-CAM ≤ 0.5 s. The plain forward pass is timed in the same run, so
the ratio shows what the backward pass to the block costs.

Each figure is the median and the fastest of --repeat calls after one warm-up, on random weights
and a random image (the time does not depend on them), with the median CPU time of the process.
On a machine shared with other work the fastest call and the CPU time (with --threads 1, where no
thread spins waiting for another) are the better estimates of what the work itself takes.

    python bench/bench_explain.py [--repeat 10] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def resnet18_graph():
    """torchvision's resnet18, block for block, as a cnnbuilder graph."""
    from cnnbuilder.core.graph import Graph

    g = Graph()

    def add(type_name, src, name, **params):
        nid = g.add_node(type_name, params, name=name).id
        for s in ([src] if isinstance(src, str) else src):
            g.connect(s, nid)
        return nid

    x = g.add_node("Input", {"shape": [3, 224, 224]}, name="input").id
    x = add("Conv2d", x, "conv1", out_channels=64, kernel_size=7, stride=2, padding=3, bias=False)
    x = add("BatchNorm2d", x, "bn1")
    x = add("ReLU", x, "relu", inplace=True)
    x = add("MaxPool2d", x, "maxpool", kernel_size=3, stride=2, padding=1)
    channels = 64
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            p = f"layer{stage}_{block}"
            y = add("Conv2d", x, f"{p}_conv1", out_channels=width, kernel_size=3, stride=stride, padding=1,
                    bias=False)
            y = add("BatchNorm2d", y, f"{p}_bn1")
            y = add("ReLU", y, f"{p}_relu1", inplace=True)
            y = add("Conv2d", y, f"{p}_conv2", out_channels=width, kernel_size=3, padding=1, bias=False)
            y = add("BatchNorm2d", y, f"{p}_bn2")
            shortcut = x
            if stride != 1 or channels != width:
                shortcut = add("Conv2d", x, f"{p}_down", out_channels=width, kernel_size=1, stride=stride,
                               bias=False)
                shortcut = add("BatchNorm2d", shortcut, f"{p}_down_bn")
            s = add("Add", [y, shortcut], f"{p}_add")
            x = add("ReLU", s, f"{p}_out", inplace=True)
            channels = width
    x = add("AdaptiveAvgPool2d", x, "avgpool", output_size=1)
    x = add("Flatten", x, "flatten")
    add("Linear", x, "fc", out_features=1000)
    return g


def times_of(fn, repeat: int) -> tuple[float, float, float]:
    """(median, fastest) wall seconds and the median CPU seconds of this process (all its threads):
    on a machine shared with other work the wall time waits for them, the CPU time much less."""
    fn()
    times, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(times), min(times), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = ap.parse_args()

    import os

    import torch

    from cnnbuilder.core.inspect.explain import default_cam_block, grad_cam, saliency
    from cnnbuilder.core.inspect.predict import build, predict

    if args.threads:
        torch.set_num_threads(args.threads)
    g = resnet18_graph()
    lm = build(g, seed=0)
    n_params = sum(p.numel() for p in lm.model.parameters())
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    block = default_cam_block(g, lm.analysis)
    last = g.find("layer4_1_out").id
    print(f"ResNet-18 from a graph: {len(g)} blocks, {n_params:,} parameters; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs; {args.repeat} calls each")

    def forward():
        with torch.no_grad():
            lm.model(x)

    rows = [
        ("forward (no gradient)", times_of(forward, args.repeat)),
        ("predict (forward + softmax + top 5)", times_of(lambda: predict(lm.model, x), args.repeat)),
        (f"Grad-CAM at {g.node(block).label} (default)",
         times_of(lambda: grad_cam(lm.model, g, lm.attr_of, x, block, analysis=lm.analysis), args.repeat)),
        (f"Grad-CAM at {g.node(last).label}",
         times_of(lambda: grad_cam(lm.model, g, lm.attr_of, x, last, analysis=lm.analysis), args.repeat)),
        ("saliency (gradient to the input)", times_of(lambda: saliency(lm.model, x), args.repeat)),
    ]
    base = rows[0][1]
    print(f"{'what':<40} {'median s':>8} {'fastest s':>9} {'CPU s':>6} {'CPU × forward':>13}")
    for name, (med, best, cpu) in rows:
        print(f"{name:<40} {med:>8.3f} {best:>9.3f} {cpu:>6.3f} {cpu / base[2]:>13.2f}")
    try:
        load = os.getloadavg()[0]
        print(f"load average during the run: {load:.2f} (other processes compete for the {os.cpu_count()} CPUs)")
    except OSError:
        pass


if __name__ == "__main__":
    main()
