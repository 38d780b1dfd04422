"""`cnnbuilder train`: the training engine on the command line (owned by the training work)."""

from __future__ import annotations

import argparse


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the model on a dataset")
    p.add_argument("file")
    p.set_defaults(func=_not_ready)


def _not_ready(args) -> int:
    print("cnnbuilder train: the training engine is being written")
    return 2
