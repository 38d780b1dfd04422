import os
from pathlib import Path

import pytest

# Before anything imports Qt: no display in CI.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "resources" / "examples"


def mnist_root() -> Path | None:
    """Real MNIST in torchvision's layout: $CNNBUILDER_DATASETS, else ../shared/datasets."""
    from cnnbuilder.core.training.data import find_mnist

    return find_mnist(os.environ.get("CNNBUILDER_DATASETS"), ROOT.parent / "shared" / "datasets")


@pytest.fixture
def mnist_dir() -> Path:
    root = mnist_root()
    if root is None:
        pytest.skip("real MNIST not found: set CNNBUILDER_DATASETS or put shared/datasets beside the repo")
    return root


@pytest.fixture(params=sorted(p.stem for p in EXAMPLES.glob("*.json")))
def example_path(request) -> Path:
    return EXAMPLES / f"{request.param}.json"


def pytest_collection_modifyitems(config, items):
    # CNNB_FUZZ=long runs the fuzzers for as long as their example counts take, past the
    # per-test timeout that guards CI against hangs.
    if os.environ.get("CNNB_FUZZ") == "long":
        for item in items:
            if "fuzz" in item.module.__name__:
                item.add_marker(pytest.mark.timeout(0))


@pytest.fixture(autouse=True)
def _runs_in_tmp(tmp_path_factory, monkeypatch):
    """Run logs (`runs/` next to the project by default) go to a temporary folder, never into the
    repository's examples."""
    monkeypatch.setenv("CNNBUILDER_RUNS", str(tmp_path_factory.mktemp("runs")))
