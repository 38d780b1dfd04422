"""Helpers for the exported-script tests: make a project, write its script, import it as a module."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

from cnnbuilder.core.export import generate_script
from cnnbuilder.core.project import load_project

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
# A small run: 360 training, 40 validation and 100 test images of the built-in shapes.
SMALL = {"shapes_train": 400, "shapes_test": 100, "epochs": 2, "batch_size": 32}
_names = itertools.count()


def project(example: str = "mnist_cnn", **training):
    p = load_project(EXAMPLES / f"{example}.json")
    p.training = dict(training)
    return p


def write_script(p, folder: Path, name: str = "train.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(generate_script(p, filename=name), encoding="utf-8")
    return path


def load_script(path: Path):
    """The script as a module (registered, so its dataclasses resolve), without running main()."""
    name = f"cnnb_exported_{next(_names)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def read_metrics(out: Path) -> list[dict[str, float]]:
    import csv

    with open(out / "metrics.csv", newline="") as f:
        return [{k: float(v) if v else float("nan") for k, v in row.items()} for row in csv.DictReader(f)]
