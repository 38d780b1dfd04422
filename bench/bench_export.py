"""Exported training script: how long the exports take, and how the script scales from one process
to two under torchrun on this machine.

Export times: `generate_script` and `notebook_text` for every example project (each with a dataset
it fits), median of --repeat runs after one warm-up; and the first export in a fresh process.

Scaling: the tutorial MNIST CNN's script on the built-in shapes (--images training images, two
epochs), once as one process with batch 2B and once under `torchrun --nproc_per_node=2` with batch
B per process: the same global batch, so the same steps. The figure is the second epoch's time
from metrics.csv (the first includes warm-up), alternating the two for --rounds rounds so that
background load hits both alike. Efficiency = speed-up / 2. On CPU each process gets
OMP_NUM_THREADS = cores / processes, so both use the whole machine.

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
        one, two = [], []
        for r in range(rounds):
            for n in ((1, 2) if r % 2 == 0 else (2, 1)):
                env = dict(os.environ, OMP_NUM_THREADS=str(max(1, cores // n)))
                out = Path(tmp) / f"r{r}n{n}"
                cmd = [sys.executable, str(script)] if n == 1 else [
                    sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
                    str(script)]
                cmd += ["--out", str(out), "--device", device, "--batch-size", str(batch * 2 // n)]
                subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
                (one if n == 1 else two).append(_epoch2(out))
            print(f"round {r + 1}: 1 process {one[-1]:.2f} s, 2 processes {two[-1]:.2f} s per epoch")
    n_train = int(images * 0.9)
    t1, t2 = statistics.median(one), statistics.median(two)
    print(f"median epoch: 1 process {t1:.2f} s ({n_train / t1:,.0f} images/s), 2 processes {t2:.2f} s "
          f"({n_train / t2:,.0f} images/s)")
    print(f"speed-up {t1 / t2:.2f}x, scaling efficiency {t1 / t2 / 2:.0%} (global batch {2 * batch}, {cores} cores, "
          f"load average {os.getloadavg()[0]:.1f})")


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
