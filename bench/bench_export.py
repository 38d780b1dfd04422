"""Exported training script: how long the exports take, and how the script scales from one process
to two under torchrun on this machine.

Export times: `generate_script` and `notebook_text` for every example project (each with a dataset
it fits), median of --repeat runs after one warm-up; and the first export in a fresh process.

Scaling: the tutorial MNIST CNN's script on the built-in shapes (--images training images, two
epochs), once as one process with batch 2B and once under `torchrun --nproc_per_node=2` with batch
B per process: the same global batch, so the same steps. The one-process run is measured twice,
with OMP_NUM_THREADS = all cores and with one thread (each of the two processes gets cores / 2
threads). The figure is the second epoch's time from metrics.csv (the first includes warm-up),
rotating the order for --rounds rounds so that background load hits all alike.
Efficiency = speed-up / 2.

    python bench/bench_export.py [--repeat 20] [--rounds 3] [--images 6000] [--batch 64] [--device cpu]
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

DATASET_FOR = {"elu_features": None, "inception_block": "cifar10", "lenet5": "shapes", "mnist_cnn": "shapes",
               "resnet_small": "cifar10", "vgg_cifar10": "cifar10"}


def export_times(repeat: int) -> None:
    from cnnbuilder.core.export import generate_script, notebook_text
    from cnnbuilder.core.project import load_project

    print(f"{'example':<16} {'dataset':<8} {'script ms':>9} {'notebook ms':>11} {'lines':>6}")
    for path in sorted((ROOT / "resources" / "examples").glob("*.json")):
        p = load_project(path)
        dataset = DATASET_FOR.get(path.stem, "shapes")
        p.training = {"dataset": dataset} if dataset else {"dataset": "folder", "data_root": "images"}
        row = []
        for fn in (generate_script, notebook_text):
            fn(p)
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                out = fn(p)
                times.append(time.perf_counter() - t)
            row.append(statistics.median(times) * 1000)
            if fn is generate_script:
                lines = out.count("\n")
        print(f"{path.stem:<16} {p.training['dataset']:<8} {row[0]:>9.1f} {row[1]:>11.1f} {lines:>6}")


COLD = """
import sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
from cnnbuilder.core.export import generate_script, notebook_text
from cnnbuilder.core.project import load_project
p = load_project({path!r})
t1 = time.perf_counter()
generate_script(p)
t2 = time.perf_counter()
notebook_text(p)
t3 = time.perf_counter()
print(f"{{(t1 - t0) * 1000:.0f}} {{(t2 - t1) * 1000:.0f}} {{(t3 - t2) * 1000:.0f}}")
"""


def cold_times(repeat: int) -> None:
    """The first export in a fresh process (what the CLI pays): imports, then script, then notebook."""
    path = str(ROOT / "resources" / "examples" / "mnist_cnn.json")
    runs = [subprocess.run([sys.executable, "-c", COLD.format(root=str(ROOT), path=path)], check=True,
                           capture_output=True, text=True).stdout.split() for _ in range(repeat)]
    med = [statistics.median(float(r[i]) for r in runs) for i in range(3)]
    print(f"fresh process (mnist_cnn, median of {repeat}): imports {med[0]:.0f} ms, first script {med[1]:.0f} ms, "
          f"then notebook {med[2]:.0f} ms")


def _epoch2(out: Path) -> float:
    with open(out / "metrics.csv", newline="") as f:
        return float(list(csv.DictReader(f))[1]["seconds"])


def scaling(rounds: int, images: int, batch: int, device: str) -> None:
    from cnnbuilder.core.export import generate_script
    from cnnbuilder.core.project import load_project

    p = load_project(ROOT / "resources" / "examples" / "mnist_cnn.json")
    p.training = {"shapes_train": images, "shapes_test": 500, "epochs": 2, "batch_size": batch}
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "train.py"
        script.write_text(generate_script(p))
        # (processes, threads each): one process using every core, one single-threaded process (what
        # each of the two does), and two processes
        variants = [(1, cores), (1, 1), (2, max(1, cores // 2))]
        times: dict = {v: [] for v in variants}
        for r in range(rounds):
            for n, threads in variants[r % 3:] + variants[:r % 3]:
                env = dict(os.environ, OMP_NUM_THREADS=str(threads))
                out = Path(tmp) / f"r{r}n{n}t{threads}"
                cmd = [sys.executable, str(script)] if n == 1 else [
                    sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
                    str(script)]
                cmd += ["--out", str(out), "--device", device, "--batch-size", str(batch * 2 // n)]
                subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
                times[(n, threads)].append(_epoch2(out))
            print(f"round {r + 1}: " + ", ".join(f"{n} process(es) x {t} thread(s) {times[(n, t)][-1]:.2f} s"
                                                 for n, t in variants))
    n_train = int(images * 0.9)
    med = {v: statistics.median(ts) for v, ts in times.items()}
    for (n, t), m in med.items():
        print(f"median epoch, {n} process(es) x {t} thread(s): {m:.2f} s ({n_train / m:,.0f} images/s)")
    t2 = med[variants[2]]
    for v in variants[:2]:
        print(f"2 processes vs 1 process x {v[1]} thread(s): speed-up {med[v] / t2:.2f}x, scaling efficiency "
              f"{med[v] / t2 / 2:.0%}")
    print(f"(global batch {2 * batch}, {cores} cores, load average at the end {os.getloadavg()[0]:.1f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=64, help="per process in the 2-process run")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-scaling", action="store_true")
    args = ap.parse_args()
    export_times(args.repeat)
    cold_times(max(3, args.repeat // 4))
    if not args.skip_scaling:
        scaling(args.rounds, args.images, args.batch, args.device)


if __name__ == "__main__":
    main()
