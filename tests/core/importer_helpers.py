"""Round trip of an import: the original module and the model generated from the imported graph
(weights applied by block id) must compute the same outputs."""

from __future__ import annotations

from pathlib import Path

import torch

from cnnbuilder.core.codegen import generate, instantiate
from cnnbuilder.core.importer import ImportResult, import_in_process
from cnnbuilder.core.training import node_weights

SMALL = {"inception_v3": (3, 75, 75)}  # the smallest input each model takes where 3×64×64 is too small


def shape_for(name: str) -> tuple[int, int, int]:
    return SMALL.get(name, (3, 64, 64))


def scrambled(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Random weights and random batch-norm statistics (fresh ones are 0 and 1, which would hide a
    mean and a variance swapped)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) and mod.running_mean is not None:
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) and mod.weight is not None:
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.5, 0.5)
    return model.eval()


def regenerated(result: ImportResult) -> torch.nn.Module:
    """The model the app builds from the imported project, with the imported weights by block id."""
    g = result.project.graph
    gen = generate(g)
    model = instantiate(gen)
    applied = node_weights.apply(model, g, gen.attr_of, node_weights.load(result.weights))
    assert applied.loaded == applied.total and not applied.skipped, applied.summary()
    return model.eval()


def round_trip(original: torch.nn.Module, source: str, shape, tmp: Path, **kw) -> tuple[ImportResult, float]:
    """Import `source` with `original`'s weights; (result, largest output difference)."""
    sd = tmp / "original.pt"
    torch.save(original.state_dict(), sd)
    result = import_in_process(source, input_shape=shape, weights_to=tmp / "weights.pt", state_dict=sd, **kw)
    model = regenerated(result)
    torch.manual_seed(123)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        want, got = original.eval()(x), model(x)
    assert got.shape == want.shape
    return result, 0.0 if torch.equal(want, got) else (want - got).abs().max().item()
