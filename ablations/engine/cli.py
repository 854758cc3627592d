"""The ``ablate`` command: list, run and report the ablations; run hyperparameter studies.

Errors users can cause end with one line naming the valid choices and exit
code 2, before anything is written.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ablate",
        description="Ablations of a lecture on activation functions and regularization, logged to MLflow.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("list", help="the ablations and the claims they test")

    run = commands.add_parser("run", help="run ablations (all when no name is given) and write the report")
    run.add_argument("names", nargs="*", metavar="NAME", help="ablations to run (default: all)")
    run.add_argument("--profile", default="quick", help="smoke | quick | full (default: quick)")
    run.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the profile's)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting; a comma-separated list makes it a grid axis (repeatable)",
    )
    run.add_argument("--storage", default=None, help="Optuna storage URL (default: journal file under mlruns/)")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.add_argument("--no-report", action="store_true", help="do not rewrite the HTML report")

    report = commands.add_parser("report", help="write the HTML report from what MLflow holds")
    report.add_argument("--output", default=None, help="where to write it (default: mlruns/report.html)")

    study = commands.add_parser(
        "study",
        help="an Optuna hyperparameter study (TPE + pruning) over the model space; resumable and parallel",
        description="Reruns of the same command resume the study; it runs until it has N trials that "
        "finished COMPLETE or PRUNED (failed trials are kept but not counted).",
    )
    study.add_argument("--trials", type=int, default=20, metavar="N", help="COMPLETE + PRUNED trials to reach (default: 20)")
    study.add_argument("--timeout", type=float, default=None, metavar="S", help="start no trial after S seconds")
    study.add_argument("--sampler", default="tpe", help="tpe | random | grid (default: tpe)")
    study.add_argument("--pruner", default=None, help="median | hyperband | none (default: median; none for --objective both)")
    study.add_argument("--objective", default="val_error", help="val_error | gap | both (both: two objectives) (default: val_error)")
    study.add_argument("--space", default="mlp", help="mlp | small | tiny, or a .yaml/.json file (default: mlp)")
    study.add_argument("--data", default="digits", help="a classification data set (default: digits)")
    study.add_argument("--cv", type=int, default=0, metavar="K", help="K-fold CV on the training data (default: 0, the validation split)")
    study.add_argument("--storage", default=None, help="Optuna storage URL (default: journal file under mlruns/)")
    study.add_argument("--study-name", default=None, help="default: <data>-<space>-<objective>[-cv<K>]")
    study.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes on this machine (default: 1)")
    study.add_argument("--seed", type=int, default=0, help="sampler seed (default: 0)")
    study.add_argument("--quiet", action="store_true", help="no line per trial")
    return parser


def _overrides(pairs: Sequence[str]) -> dict[str, str]:
    from ablations.engine.spec import ConfigError

    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes KEY=VALUE; received {pair!r}.")
        result[key.strip()] = value
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ablate`` and ``python -m ablations``."""
    args = _parser().parse_args(argv)
    from ablations.engine.data import DataError
    from ablations.engine.spec import ConfigError
    from models.registry import UnknownNameError

    try:
        return _dispatch(args)
    except (ConfigError, UnknownNameError, DataError) as error:
        print(f"ablate: error: {error}", file=sys.stderr)
        return EXIT_USAGE


def _dispatch(args: argparse.Namespace) -> int:
    from ablations.engine.registry import all_ablations, get_ablation

    if args.command == "list":
        for name, ablation in all_ablations().items():
            print(f"{name}\n    {ablation.claim}")
        return 0
    if args.command == "study":
        from ablations.engine.study import study_command

        return study_command(args)
    if args.command == "report":
        from ablations.engine.report import write_report

        print(write_report(args.output))
        return 0

    from ablations.engine.runner import open_storage, run_ablation

    names = args.names or list(all_ablations())
    overrides = _overrides(args.overrides)
    # Everything is validated before the first trial so a typo costs nothing.
    plans = [(get_ablation(n), get_ablation(n).resolve(args.profile, overrides, args.seeds)) for n in names]
    open_storage(args.storage)
    for ablation, config in plans:
        result = run_ablation(ablation, config, storage=args.storage, progress=not args.quiet)
        verdict = result.verdict
        outcome = f"{verdict.outcome}: {verdict.summary}" if verdict else "no trial finished"
        print(f"{ablation.name} [{config.profile}] {outcome}")
    if not args.no_report:
        from ablations.engine.report import write_report

        print(f"report: {write_report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
