"""Core speed: shape inference + statistics for 10/100/1000-block graphs, project load+save of
a 1000-block file, and how load, delete-all, its undo, duplicate-all and wide merges scale from
1k to 4k blocks. Prints medians; figures go to docs/benchmarks.md.

    .venv/bin/python bench/bench_core.py
    PYTHONPATH=/path/to/older/checkout .venv/bin/python bench/bench_core.py --scaling   # the same table there
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))  # after PYTHONPATH: --scaling can compare

from cnnbuilder.core import commands  # noqa: E402
from cnnbuilder.core.codegen import generate  # noqa: E402
from cnnbuilder.core.graph import Graph  # noqa: E402
from cnnbuilder.core.project import Project, load_project, loads, project_to_dict, save_project  # noqa: E402
from cnnbuilder.core.shapes import analyze  # noqa: E402


def resnet_like(blocks: int) -> Graph:
    """Residual stages of conv-bn-relu-conv-bn + Add + ReLU (7 blocks each), then a head."""
    g = Graph()
    with g.batch():
        x = g.add_node("Input", {"shape": [3, 64, 64]}).id
        stem = g.add_node("Conv2d", {"out_channels": 32, "kernel_size": 3, "padding": 1}).id
        g.connect(x, stem)
        x = stem
        while len(g) + 7 <= blocks - 3:
            prev = x
            for t, p in (("Conv2d", {"out_channels": 32, "kernel_size": 3, "padding": 1}), ("BatchNorm2d", {}),
                         ("ReLU", {}), ("Conv2d", {"out_channels": 32, "kernel_size": 3, "padding": 1}),
                         ("BatchNorm2d", {})):
                n = g.add_node(t, p).id
                g.connect(prev, n)
                prev = n
            add = g.add_node("Add").id
            g.connect(prev, add)
            g.connect(x, add)
            x = g.add_node("ReLU").id
            g.connect(add, x)
        while len(g) < blocks - 3:  # pad to the exact size
            n = g.add_node("Identity").id
            g.connect(x, n)
            x = n
        for t, p in (("AdaptiveAvgPool2d", {"output_size": 1}), ("Flatten", {}), ("Linear", {"out_features": 10})):
            if len(g) >= blocks:
                break
            n = g.add_node(t, p).id
            g.connect(x, n)
            x = n
    return g


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    print(f"python {sys.version.split()[0]}")
    if "--scaling" in sys.argv:  # only the 1k-vs-4k table (e.g. with PYTHONPATH at an older checkout)
        print_scaling()
        return
    print("shape inference + statistics (analyze), median of repeated runs:")
    for n in (10, 100, 1000):
        g = resnet_like(n)
        a = analyze(g)
        assert a.ok, a.problems[:3]
        ms = median_ms(lambda g=g: analyze(g), 200 if n < 1000 else 50)
        print(f"  {len(g):5d} blocks: {ms:7.3f} ms   (goal for 1000: <= 10 ms)")
    g = resnet_like(1000)
    ms = median_ms(lambda: generate(g), 20)
    print(f"  code generation, {len(g)} blocks: {ms:.2f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.json"
        project = Project(graph=g, name="bench")
        save_project(project, path)
        size = path.stat().st_size
        ms_load = median_ms(lambda: load_project(path), 20)
        ms_save = median_ms(lambda: save_project(project, path), 20)
        ms_both = median_ms(lambda: save_project(load_project(path), path), 20)
    print(f"project file, {len(g)} blocks ({size / 1024:.0f} KiB): load {ms_load:.1f} ms, save {ms_save:.1f} ms, "
          f"load+save {ms_both:.1f} ms   (goal: <= 100 ms)")
    print_scaling()


def print_scaling() -> None:
    import cnnbuilder

    print(f"scaling of {Path(cnnbuilder.__file__).parent.parent} "
          "(time at 4k blocks / time at 1k: 4 is linear, 16 quadratic), median of 5:")
    rows = [scaling(n) for n in (1000, 4000)]
    for what in rows[0]:
        a, b = rows[0][what], rows[1][what]
        print(f"  {what:38s} 1k {a:8.1f} ms   4k {b:8.1f} ms   ratio {b / a:5.1f}")


def chain(n: int) -> Graph:
    g = Graph()
    with g.batch():
        prev = g.add_node("Input", {"shape": [8]}).id
        for _ in range(n - 1):
            nid = g.add_node("Linear", {"out_features": 8}).id
            g.connect(prev, nid)
            prev = nid
    return g


def wide_concat(branches: int) -> Graph:
    g = Graph()
    with g.batch():
        x = g.add_node("Input", {"shape": [4, 8, 8]}).id
        cat = g.add_node("Concat").id
        for _ in range(branches):
            b = g.add_node("ReLU").id
            g.connect(x, b)
            g.connect(b, cat)
    return g


def scaling(n: int) -> dict[str, float]:
    """Operations the testers found quadratic: loading edges listed in reverse, delete-all, its
    undo, duplicate-all. Each runs on a fresh n-block chain."""
    data = project_to_dict(Project(graph=chain(n)))
    data["edges"].reverse()
    reversed_text = json.dumps(data)
    assert len(loads(reversed_text).graph) == n
    out = {"load, edges in reverse order": median_ms(lambda: loads(reversed_text), 5)}

    def timed(op) -> float:
        times = []
        for _ in range(5):
            g = chain(n)
            stack = commands.UndoStack(g)
            t0 = time.perf_counter()
            op(g, stack)
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)

    def delete_all(g, stack):
        stack.push(commands.remove_nodes(g, [x.id for x in g]))

    def delete_then_undo(g, stack):
        stack.push(commands.remove_nodes(g, [x.id for x in g]))
        t0 = time.perf_counter()
        stack.undo()
        return time.perf_counter() - t0

    out["delete all"] = timed(delete_all)
    undo = []
    for _ in range(5):
        g = chain(n)
        undo.append(delete_then_undo(g, commands.UndoStack(g)) * 1000)
    out["undo delete all"] = statistics.median(undo)
    out["duplicate all"] = timed(lambda g, stack: stack.push(commands.duplicate(g, [x.id for x in g])))
    wide = wide_concat(n // 2)
    out["analyze, n/2 branches into one Concat"] = median_ms(lambda: analyze(wide), 5)
    out["build n/2 branches into one Concat"] = median_ms(lambda: wide_concat(n // 2), 5)
    return out


if __name__ == "__main__":
    main()
