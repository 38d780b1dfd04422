"""Training throughput: the classic hand-written PyTorch tutorial loop against cnnbuilder's engine.

Both train the tutorial MNIST CNN (resources/examples/mnist_cnn.json, built from the same generated
code and the same seed) on real MNIST, batch size 100, Adam lr 0.01, on the same device. The
tutorial loop is the usual one: torchvision MNIST + ToTensor, DataLoader(batch 100, shuffle,
num_workers=1), `.to(device)` per batch, `loss.item()` every 100 steps. The engine runs exactly
as `cnnbuilder train` does (device auto, default settings).

Each contender lives in its own spawned process, so neither inherits the other's threads, caches
or allocator state. The parent alternates them: round after round, each runs the same number of steps while the other
waits, so background load hits both alike. Rates are timed from the first to the last step of the
block, after warm-up, with the device synchronised at both ends. Prints every round and the medians.

    python bench/bench_training.py [--rounds 5] [--steps 200] [--data DIR] [--device auto] [--probes]

--probes adds a third contender, the engine without its activation probes (Activations events a
few times an epoch), to show what the probes cost side by side.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def find_data(arg: str | None) -> Path:
    from cnnbuilder.core.training.data import find_mnist

    found = find_mnist(arg, os.environ.get("CNNBUILDER_DATASETS"), ROOT.parent / "shared" / "datasets")
    if found is None:
        sys.exit("MNIST not found: pass --data DIR (torchvision layout) or set CNNBUILDER_DATASETS")
    return found


def _graph():
    from cnnbuilder.core.project import load_project

    return load_project(ROOT / "resources" / "examples" / "mnist_cnn.json").graph


def tutorial_child(conn, root: str, device_pref: str) -> None:
    """The classic loop. Commands: ("run", n) -> seconds for n steps; ("quit",)."""
    import torch
    import torchvision
    from torchvision import transforms

    from cnnbuilder.core.codegen import build_model
    from cnnbuilder.core.training.devices import resolve_device

    device = resolve_device(device_pref)
    torch.manual_seed(0)
    model = build_model(_graph()).to(device)
    ds = torchvision.datasets.MNIST(root, train=True, transform=transforms.ToTensor(), download=False)
    train_loader = torch.utils.data.DataLoader(ds, batch_size=100, shuffle=True, num_workers=1)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    state = {"it": iter(train_loader), "i": 0}

    def steps(n: int) -> None:
        for _ in range(n):
            try:
                images, labels = next(state["it"])
            except StopIteration:
                state["it"] = iter(train_loader)
                images, labels = next(state["it"])
            images = images.to(device)
            labels = labels.to(device)
            outputs = model(images)
            loss = criterion(outputs, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            state["i"] += 1
            if state["i"] % 100 == 0:
                _ = loss.item()  # the tutorial prints the loss every 100 steps
        if device.type == "cuda":
            torch.cuda.synchronize()

    conn.send(("ready", torch.get_num_threads()))
    while True:
        cmd = conn.recv()
        if cmd[0] == "quit":
            return
        n, warm = cmd[1], cmd[2]
        steps(warm)  # drains batches the loader worker prefetched while the other side ran
        t = time.perf_counter()
        steps(n)
        conn.send(time.perf_counter() - t)


def engine_child(conn, root: str, device_pref: str, activations: bool = True) -> None:
    """cnnbuilder's engine, consumed lazily: between blocks the generator is simply not advanced."""
    import torch

    from cnnbuilder.core.training.config import TrainConfig
    from cnnbuilder.core.training.engine import Trainer
    from cnnbuilder.core.training.events import BatchMetrics, Failed

    cfg = TrainConfig(dataset="mnist", data_root=root, epochs=1000, batch_size=100, optimizer="adam", lr=0.01,
                      val_split=0.0, device=device_pref, seed=0)
    events = Trainer(_graph(), cfg, activations=activations).run()
    last_step = 0

    def advance_to(target: int) -> int:
        for ev in events:  # a BatchMetrics leaves only after its losses reached the host: a sync point
            if isinstance(ev, Failed):
                raise SystemExit(f"engine failed: {ev.message}")
            if isinstance(ev, BatchMetrics) and ev.step >= target:
                return ev.step
        raise SystemExit("engine ended early")

    last_step = advance_to(1)
    conn.send(("ready", torch.get_num_threads()))
    while True:
        cmd = conn.recv()
        if cmd[0] == "quit":
            events.close()
            return
        n, warm = cmd[1], cmd[2]
        last_step = advance_to(last_step + warm)
        t = time.perf_counter()
        s0 = last_step
        last_step = advance_to(s0 + n)
        # Events are throttled, so a block may end a few steps past n: report time per step done.
        conn.send((time.perf_counter() - t) * n / (last_step - s0))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200, help="timed steps per round (after warm-up)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps before each block")
    ap.add_argument("--data", help="folder with MNIST in torchvision layout")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--probes", action="store_true", help="also time the engine without activation probes")
    args = ap.parse_args()

    import torch

    from cnnbuilder.core.training.devices import device_name, resolve_device

    root = str(find_data(args.data))
    device = resolve_device(args.device)
    ctx = mp.get_context("spawn")
    contenders = {"tutorial": (tutorial_child, (root, args.device)),
                  "cnnbuilder": (engine_child, (root, args.device))}
    if args.probes:
        contenders["no-probes"] = (engine_child, (root, args.device, False))
    pipes, procs = {}, []
    for name, (fn, fargs) in contenders.items():
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=fn, args=(child, *fargs))  # not daemonic: the tutorial needs a loader worker
        proc.start()
        pipes[name] = parent
        procs.append(proc)
    threads = {name: pipe.recv()[1] for name, pipe in pipes.items()}

    print(f"device: {device_name(device)} ({device}); torch {torch.__version__}; {os.cpu_count()} CPUs; "
          f"torch threads per process: {threads}")
    print(f"model: tutorial MNIST CNN; batch 100; Adam lr 0.01; {args.steps} timed steps per block after "
          f"{args.warmup} warm-up steps; {args.rounds} rounds, one contender at a time")
    rates: dict[str, list[float]] = {name: [] for name in pipes}
    try:
        for r in range(args.rounds):
            for name, pipe in pipes.items():
                pipe.send(("run", args.steps, args.warmup))
                seconds = pipe.recv()
                rates[name].append(args.steps * 100 / seconds)
            line = "   ".join(f"{name} {v[-1]:8,.0f} img/s" for name, v in rates.items())
            print(f"round {r + 1}: {line}   ratio {rates['cnnbuilder'][-1] / rates['tutorial'][-1]:.2f}x",
                  flush=True)
    finally:
        for pipe in pipes.values():
            pipe.send(("quit",))
        for proc in procs:
            proc.join(10)
    med = {name: statistics.median(v) for name, v in rates.items()}
    ratios = [e / t for e, t in zip(rates["cnnbuilder"], rates["tutorial"], strict=True)]
    goal = "5" if device.type == "cuda" else "1.8"
    print("median: " + ", ".join(f"{name} {v:,.0f} img/s" for name, v in med.items()))
    if args.probes:
        cost = [1 - e / q for e, q in zip(rates["cnnbuilder"], rates["no-probes"], strict=True)]
        print(f"activation probes cost: {1 - med['cnnbuilder'] / med['no-probes']:+.1%} (ratio of medians), "
              f"{statistics.median(cost):+.1%} (median of per-round ratios)")
    print(f"speed-up of cnnbuilder over the tutorial loop: {med['cnnbuilder'] / med['tutorial']:.2f}x "
          f"(ratio of medians), {statistics.median(ratios):.2f}x (median of per-round ratios); goal >= {goal}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
