"""``medseg card``: a trained bundle's model card and golden cases (:mod:`medseg.apps.model_card`).

``medseg card --bundle DIR [--golden 3]`` writes ``DIR/docs/model_card.md`` from the bundle's own training and
evaluation outputs, and ``DIR/golden/``: test cases with the masks the model gives them, which ``medseg infer
--bundle DIR --verify`` checks on another machine. Exit status: 0 written; 2 a bundle without its record, weights
or evaluation.
"""

from __future__ import annotations

import argparse

from .arguments import UsageError, folder, integer

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    from medseg.apps.model_card import GOLDEN_FILE, ModelCardError, write_model_card
    from medseg.inference import CheckpointError
    from medseg.pipeline import SettingsFileError

    try:
        path = write_model_card(args.bundle, golden=args.golden)
    except (ModelCardError, SettingsFileError, CheckpointError) as error:
        raise UsageError(f"argument --bundle: {error}") from error
    print(f"wrote {path} and {args.bundle}/{GOLDEN_FILE}")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    card = commands.add_parser(
        "card",
        help="write a trained bundle's model card and golden cases (checked by medseg infer --verify)",
        description="Write BUNDLE/docs/model_card.md from the bundle's record, training history, data list and "
        "evaluation, and BUNDLE/golden/: a few test cases (lowest, median, highest Dice) with the masks the model "
        "gives them. Exit status: 0 written, 2 bad arguments (a bundle not trained or not evaluated).",
    )
    card.add_argument("--bundle", type=folder, required=True, help="a trained and evaluated bundle (or run) folder")
    card.add_argument("--golden", type=integer(1), default=3, help="golden cases to keep (default 3)")
    card.set_defaults(func=run, command_parser=card)
