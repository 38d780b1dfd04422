"""Does cnnbuilder still work without the modules the bundle leaves out? Run by build.py with the build
virtualenv's Python before PyInstaller (minutes earlier than the smoke test would tell): blocks every
module in bundle.EXCLUDES, imports the app (GUI included, offscreen) and trains a few steps."""

from __future__ import annotations

import contextlib
import importlib.abc
import io
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bundle  # noqa: E402


class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == ex or name.startswith(ex + ".") for ex in bundle.EXCLUDES):
            raise ModuleNotFoundError(f"No module named {name!r} (left out of the bundle)", name=name)
        return None


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.meta_path.insert(0, Block())
    import cnnbuilder.cli
    import cnnbuilder.core.training.engine  # noqa: F401
    import cnnbuilder.qt.app  # noqa: F401
    import cnnbuilder.qt.main_window  # noqa: F401

    example = bundle.REPO / "resources" / "examples" / "mnist_cnn.json"
    with contextlib.redirect_stdout(io.StringIO()):
        rc = cnnbuilder.cli.main(["train", str(example), "--dataset", "shapes", "--train-limit", "64",
                                  "--batch-size", "32", "--epochs", "1", "--quiet"])
    if rc != 0:
        print(f"check_excludes: training without the excluded modules failed (exit {rc})", file=sys.stderr)
        return 1
    print("check_excludes: cnnbuilder imports and trains without " + ", ".join(bundle.EXCLUDES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
