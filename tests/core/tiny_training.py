"""A model and settings that train in a blink, for tests of what surrounds training (checkpoints,
saving, resuming) rather than of training itself."""

from __future__ import annotations

from cnnbuilder.core.graph import Graph
from cnnbuilder.core.training.config import TrainConfig

TINY_CFG = TrainConfig(shapes_train=200, shapes_test=40, shapes_size=16, val_split=0.1, batch_size=64, epochs=2,
                       lr=0.002, scheduler="onecycle", log_interval=0.0)


def tiny_graph() -> Graph:
    """Convolution, BatchNorm (buffers) and Linear: every kind of state, at almost no cost per run."""
    g = Graph()
    ids = [g.add_node(t, p).id for t, p in (("Input", {"shape": [1, 16, 16]}),
                                             ("Conv2d", {"out_channels": 2, "kernel_size": 3}),
                                             ("BatchNorm2d", {}), ("Flatten", {}), ("Linear", {"out_features": 10}))]
    for a, b in zip(ids, ids[1:], strict=False):
        g.connect(a, b)
    return g
