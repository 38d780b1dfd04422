"""Which torchvision classification models `cnnbuilder import` covers, as a Markdown table for
docs/blocks.md: each is imported (in process: torchvision's code is trusted) at a small input and, where
it imports, checked by round trip (generated code with the carried weights computes the original's
outputs). Usage: python tools/import_coverage.py [NAME ...]  (default: every model; slow: ~10 min)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torchvision  # noqa: E402

from cnnbuilder.core.importer import ImportRefused, import_in_process  # noqa: E402
from tests.core.importer_helpers import round_trip, scrambled, shape_for  # noqa: E402

ROUND_TRIP_LIMIT = 150_000_000  # parameters: above this only the import itself is run (memory)


def main(names: list[str]) -> None:
    names = names or torchvision.models.list_models(module=torchvision.models)
    print("| model | imported | blocks | groups | round trip | seconds |")
    print("|---|---|---|---|---|---|")
    for name in names:
        t = time.perf_counter()
        shape = shape_for(name)
        try:
            torch.manual_seed(0)
            model = scrambled(torchvision.models.get_model(name, weights=None))
            params = sum(p.numel() for p in model.parameters())
            with tempfile.TemporaryDirectory() as tmp:
                if params <= ROUND_TRIP_LIMIT:
                    result, diff = round_trip(model, f"torchvision:{name}", shape, Path(tmp))
                    check = "equal" if diff == 0 else f"max diff {diff:.1e}"
                else:
                    del model
                    result = import_in_process(f"torchvision:{name}", input_shape=shape)
                    check = f"not run ({params / 1e6:.0f} M parameters)"
            g = result.project.graph
            row = f"| {name} | yes | {len(g)} | {len(g.groups)} | {check} |"
        except ImportRefused as exc:
            reason = str(exc)
            if "the module fails on a" in reason:  # too small for it (ViT, MaxViT): the reason at its own size
                try:
                    import_in_process(f"torchvision:{name}")
                except ImportRefused as again:
                    reason = f"{again} (at 3×224×224)"
            row = f"| {name} | no: {reason.replace('|', '/')} | | | |"
        print(f"{row} {time.perf_counter() - t:.1f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
