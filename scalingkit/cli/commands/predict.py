"""``python -m scalingkit predict``: predict a bigger run from a sweep, then record the outcome.

``predict make --sweep DIR --out FILE`` fits the sweep and writes the
prediction (refusing to overwrite one); ``predict outcome --prediction FILE``
trains the predicted model and records its loss (refusing without a prediction).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from scalingkit.cli._output import check_output, command_line

if TYPE_CHECKING:
    from scalingkit.runs.record import RunRecord
    from scalingkit.runs.sweep import SweepSpec

HELP = "predict the compute-optimal loss at >= 4x the sweep's largest budget, then check it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``make`` and ``outcome`` actions."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    m = sub.add_parser("make", help="fit a sweep and write the prediction")
    m.add_argument("--sweep", required=True, metavar="DIR", help="run store (or export)")
    m.add_argument("--out", required=True, metavar="FILE", help="prediction JSON to create")
    m.add_argument("--factor", type=float, default=4.0,
                   help="target budget over the largest fitted budget (>= 4)")
    m.add_argument("--bootstrap", type=int, default=0, metavar="B",
                   help="bootstrap resamples for an interval on the predicted loss")
    m.add_argument("--min-budget", type=float, metavar="FLOP",
                   help="fit only the runs planned at this budget or above (as fit-sweep "
                        "--min-budget); the regime checks use the same runs")
    o = sub.add_parser("outcome", help="train the predicted model and record its loss")
    o.add_argument("--prediction", required=True, metavar="FILE")
    o.add_argument("--run-dir", metavar="DIR", help="checkpoint folder (resumable)")
    o.add_argument("--device", help="override the device (e.g. cuda)")
    o.add_argument("--dtype", help="override the autocast dtype (e.g. bfloat16)")


def _command() -> str:
    return command_line()


#: Keys ``predict outcome`` needs from a file that ``predict make`` wrote.
PREDICTION_KEYS = ("config", "predicted_at", "predicted_loss", "predicted_loss_envelope")


def _prediction(path: str) -> dict:
    """Read a prediction file and check it holds what ``outcome`` needs, before training.

    Raises
    ------
    ValueError
        No file, not JSON, not an object, a missing key, or a config the
        trainer does not accept.
    """
    from scalingkit.core.train import TrainConfig
    from scalingkit.studies import forecasting as predict

    record = predict.load_prediction(path)
    if not isinstance(record, dict):
        raise ValueError(f"{path} holds a JSON {type(record).__name__}, not a prediction "
                         "written by 'python -m scalingkit predict make'")
    missing = [k for k in PREDICTION_KEYS if k not in record]
    if missing:
        raise ValueError(f"{path} is not a prediction: it lacks {', '.join(map(repr, missing))} "
                         "(write one with 'python -m scalingkit predict make')")
    try:
        TrainConfig.from_dict(record["config"])
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ValueError(f"{path}: its 'config' is not a training config: {exc}") from None
    return record


#: Spec fields that change how ``predict make`` builds the predicted run; a store whose
#: spec has none of them (an older store) keeps the plain ladder and the recipe's lr.
_RECIPE_FIELDS = ("ladder", "sampler", "lr_rule")


def _spec(made_for: dict) -> SweepSpec | None:
    """The store's :class:`~scalingkit.runs.sweep.SweepSpec` when it has a ladder,
    sampler or lr rule of its own; else None."""
    from scalingkit.runs.sweep import SweepSpec

    if not any(k in made_for for k in _RECIPE_FIELDS):
        return None
    fields = SweepSpec.__dataclass_fields__
    try:
        return SweepSpec(**{k: v for k, v in made_for.items() if k in fields})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the sweep's recorded spec is not a sweep spec: {exc}") from None


def _corpus_tokens(made_for: dict, records: list[RunRecord]) -> float:
    """Tokens in one pass over the training split: the spec's, else a run's ``tokens / epochs``."""
    if made_for.get("corpus_tokens"):
        return float(made_for["corpus_tokens"])
    for r in records:
        tokens, epochs = r.plan.get("tokens"), r.plan.get("epochs")
        if tokens and epochs:
            return float(tokens) / float(epochs)
    raise ValueError("the sweep records neither corpus_tokens nor its runs' epochs, "
                     "so the predicted run's passes over the corpus cannot be checked")


def run(args: argparse.Namespace) -> int:
    """Dispatch on the action."""
    from pathlib import Path

    from scalingkit.studies import forecasting as predict

    if args.action == "make":
        from scalingkit.runs.frames import load_points, runs_from_budget
        from scalingkit.runs.store import RunStore

        if Path(args.out).exists():
            raise ValueError(f"{args.out} already holds a prediction; a prediction is made once")
        check_output(args.out, reads=[args.sweep], option="--out", make_parents=True)
        frame = runs_from_budget(load_points(args.sweep), args.min_budget)
        store = RunStore(args.sweep)
        records = [r for r in store.records() if r.status == "done"]
        recipe = max(records, key=lambda r: r.plan.get("budget", 0)).config
        made_for = store.made_for() or {}
        pred = predict.make_prediction(frame, recipe, factor=args.factor,
                                       n_bootstrap=args.bootstrap, spec=_spec(made_for),
                                       min_budget=args.min_budget)
        predict.check_in_regime(frame, pred["params"], pred["tokens"],
                                corpus_tokens=_corpus_tokens(made_for, records),
                                lr_rule=made_for.get("lr_rule"), lr=pred["config"]["lr"],
                                budget=pred["budget"])
        rec = predict.write_prediction(args.out, pred, command=_command(), source=args.sweep)
        print(f"predicted at {rec['predicted_at']}: C = {rec['budget']:.3g} FLOP "
              f"({rec['budget'] / rec['max_fitted_budget']:.3g}x the largest fitted), "
              f"N = {rec['params']:,}, D = {rec['tokens']:,}, "
              f"L = {rec['predicted_loss']:.4f} nats/token (Approach 3), "
              f"{rec['predicted_loss_envelope']:.4f} (L(C) envelope)")
        return 0
    record = _prediction(args.prediction)
    if record.get("actual_loss") is not None:
        raise ValueError(f"{args.prediction} already records an outcome")
    overrides = {k: v for k, v in (("device", args.device), ("dtype", args.dtype)) if v}
    result = predict.train_prediction(record, args.run_dir, **overrides)
    rec = predict.record_outcome(args.prediction, result, command=_command())
    print(f"trained at {rec['trained_at']}: L = {rec['actual_loss']:.4f} nats/token, "
          f"relative error {rec['relative_error']:.4f} (Approach 3), "
          f"{rec['relative_error_envelope']:.4f} (envelope)")
    return 0
