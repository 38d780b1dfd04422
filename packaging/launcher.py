"""Entry point of the bundled app: the same command line as the `cnnbuilder` console script that
`pip install` makes (the editor by default; summary, export, train, ... as subcommands)."""

import multiprocessing
import os
import sys

if __name__ == "__main__":
    # The training process (spawned: cnnbuilder/core/training/service.py) and, on Windows and macOS,
    # data-loader worker processes re-run this executable: let them be what they were started as.
    multiprocessing.freeze_support()
    # The windowed Windows/macOS build has no console: give print() somewhere harmless to go.
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - lives as long as the app

    from cnnbuilder.cli import main

    sys.exit(main())
