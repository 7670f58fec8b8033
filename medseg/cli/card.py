"""``medseg card``: a trained model's card and golden cases (:mod:`medseg.apps.model_card`).

``medseg card --model-dir DIR [--golden 3]`` writes ``DIR/docs/model_card.md`` from the model folder's own training
and evaluation outputs, and ``DIR/golden/``: test cases with the masks the model gives them, which ``medseg infer
--model-dir DIR --verify`` checks on another machine. Exit status: 0 written; 2 a folder without its record,
weights or evaluation.
"""

from __future__ import annotations

import argparse

from .arguments import UsageError, add_model_dir, integer

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    from medseg.apps.golden import GOLDEN_FILE, GoldenError
    from medseg.apps.model_card import ModelCardError, write_model_card
    from medseg.inference import CheckpointError
    from medseg.pipeline import SettingsError

    try:
        path = write_model_card(args.model_dir, golden=args.golden)
    except (ModelCardError, GoldenError, SettingsError, CheckpointError) as error:
        raise UsageError(f"argument --model-dir: {error}") from error
    print(f"wrote {path} and {args.model_dir}/{GOLDEN_FILE}")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    card = commands.add_parser(
        "card",
        help="write a trained model's card and golden cases (checked by medseg infer --verify)",
        description="Write DIR/docs/model_card.md from the model folder's record, training history, data list and "
        "evaluation, and DIR/golden/: a few test cases (lowest, median, highest Dice) with the masks the model "
        "gives them. Exit status: 0 written, 2 bad arguments (a model not trained or not evaluated).",
    )
    add_model_dir(card, what="trained and evaluated")
    card.add_argument("--golden", type=integer(1), default=3, help="golden cases to keep (default 3)")
    card.set_defaults(func=run, command_parser=card)
