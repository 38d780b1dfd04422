"""Scaling of `cnnbuilder train` from 1 to 2 processes under torchrun (gloo on the CPU, NCCL on GPUs).

Strong scaling: the same training (tutorial MNIST CNN on the built-in shapes data, the same global
batch, the same steps) run as
  - 1 process with the whole batch (OMP_NUM_THREADS = the cores the two processes share),
  - 1 process with the whole batch and one thread (the baseline of a single worker),
  - `torchrun --standalone --nproc_per_node=2` with half the batch each (one thread each),
each in a fresh process, rounds alternating. The rate is the training images per second of the
epochs (from the run's metrics.csv: rank 0's epoch time, which includes waiting in the gradient
all-reduce), so start-up, data generation and testing are not counted; start-up is printed
separately as the wall time of the whole command. Efficiency = rate(2 processes) / (2 × rate(1
process, 1 thread)); speed-up is against the 1-process run with all threads.

    python bench/bench_distributed.py [--rounds 3] [--images 6000] [--batch 128] [--epochs 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run(kind: str, args, work: Path, threads: int) -> tuple[float, float]:
    """(training images per second over the epochs, wall seconds of the command)."""
    log = work / f"log-{kind}-{time.monotonic_ns()}"
    common = ["p.json", "--device", args.device, "--epochs", str(args.epochs), "--log-dir", str(log),
              "--val-split", "0", "--quiet"]
    if kind == "torchrun":
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "cnnbuilder", "train", *common, "--batch-size", str(args.batch // 2)]
    else:
        cmd = [sys.executable, "-m", "cnnbuilder", "train", *common, "--batch-size", str(args.batch)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode:
        sys.exit(f"{kind} failed:\n{done.stderr[-2000:]}")
    (metrics,) = log.glob("*/metrics.csv")
    rows = list(csv.DictReader(metrics.open()))
    steps = int(rows[-1]["step"])
    seconds = sum(float(r["seconds"]) for r in rows)
    return steps * args.batch / seconds, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=6000, help="training images (built-in shapes)")
    ap.add_argument("--batch", type=int, default=128, help="global batch (each of 2 processes takes half)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    from cnnbuilder.core.project import load_project, save_project

    cores = os.cpu_count() or 2
    work = Path(tempfile.mkdtemp(prefix="cnnb-dist-"))
    project = load_project(ROOT / "resources" / "examples" / "mnist_cnn.json")
    project.training = {"dataset": "shapes", "shapes_train": args.images, "shapes_test": 200, "seed": 1}
    save_project(project, work / "p.json")
    kinds = {"1 process, 1 thread": ("single", 1), f"1 process, {cores} threads": ("single", cores),
             "2 processes (torchrun), 1 thread each": ("torchrun", 1)}
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    walls: dict[str, list[float]] = {k: [] for k in kinds}
    print(f"{args.images} images, global batch {args.batch}, {args.epochs} epochs, device {args.device}, "
          f"{cores} cores")
    for r in range(args.rounds):
        order = list(kinds)[r % len(kinds):] + list(kinds)[:r % len(kinds)]
        for name in order:
            kind, threads = kinds[name]
            rate, wall = run(kind, args, work, threads)
            rates[name].append(rate)
            walls[name].append(wall)
            print(f"round {r + 1}: {name:<40} {rate:9,.0f} images/s  (command {wall:5.1f} s)", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    print("\nmedians:")
    for name in kinds:
        print(f"  {name:<40} {med[name]:9,.0f} images/s  (command {statistics.median(walls[name]):5.1f} s)")
    base1 = med["1 process, 1 thread"]
    two = med["2 processes (torchrun), 1 thread each"]
    print(f"scaling efficiency, 2 processes vs 1 process × 1 thread: {two / (2 * base1):.0%}")
    full = med[f"1 process, {cores} threads"]
    print(f"speed-up, 2 processes vs 1 process with all {cores} threads: {two / full:.2f}×")


if __name__ == "__main__":
    main()
