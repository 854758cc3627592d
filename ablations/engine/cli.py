"""The ``ablate`` command: list, run and report the ablations; run hyperparameter studies.

Errors users can cause end with one line naming the valid choices and exit
code 2, before anything is written. Everything is checked before TensorFlow is
imported, so a typo is answered in about a second; TensorFlow then loads
through `tensorflow_quiet.import_tensorflow`, which keeps its start-up lines
off the terminal.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from ablations.engine.spec import ResolvedConfig

# Set before TensorFlow or MLflow load (MLflow may load before `tracking`, which sets
# the same); worker processes inherit them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with the command's error form: one ``ablate: error: ...`` line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"ablate: error: {message}\n")

    def parse_known_args(self, args=None, namespace=None):
        # Rejected here rather than by the top-level parser, which cannot name a
        # command's options.
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            options = [o for action in self._actions for o in action.option_strings if o.startswith("--")]
            self.error(f"unrecognized arguments: {' '.join(extras)}. Valid options of {self.prog}: {', '.join(options)}.")
        return namespace, extras


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ablate",
        description="Ablations of a lecture on activation functions and regularization, logged to MLflow.",
    )
    commands = parser.add_subparsers(dest="command")

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
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set takes KEY=VALUE; received {pair!r}.")
        if key in result:
            raise ConfigError(f"--set {key} is given twice ({result[key]!r} and {value!r}); give it once, a comma list for a grid axis.")
        result[key] = value
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ablate`` and ``python -m ablations``."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.error("a command is required. Valid choices: list, run, report, study.")
    except SystemExit as stop:  # argparse's errors (one line, see _Parser) and --help
        return stop.code if isinstance(stop.code, int) else 0
    from ablations.engine.data import DataError
    from ablations.engine.spec import ConfigError
    from models.registry import UnknownNameError

    try:
        return _dispatch(args)
    except (ConfigError, UnknownNameError, DataError) as error:
        message = " ".join(str(error).splitlines())  # one line, even if a library's message had several
        print(f"ablate: error: {message}", file=sys.stderr)
        return EXIT_USAGE


def _dispatch(args: argparse.Namespace) -> int:
    from ablations.engine.registry import ablation_names, all_ablations, get_ablation

    if args.command == "list":
        for name, ablation in all_ablations().items():
            print(f"{name}\n    {ablation.claim}")
        return 0
    if args.command == "study":
        from ablations.engine.study import study_command

        _quiet_tensorflow_for([args.data])
        return study_command(args)
    if args.command == "report":
        output = _report_path(args.output)
        from ablations.engine.report import write_report

        print(write_report(output))
        return 0

    from ablations.engine.storage import open_storage
    from ablations.engine.tensorflow_quiet import import_tensorflow

    names = args.names or ablation_names()
    overrides = _overrides(args.overrides)
    # Everything is validated before the first trial so a typo costs nothing.
    plans = [(get_ablation(n), get_ablation(n).resolve(args.profile, overrides, args.seeds)) for n in names]
    _load_data([config for _, config in plans])
    open_storage(args.storage)
    import_tensorflow()
    from ablations.engine.runner import run_ablation

    for ablation, config in plans:
        result = run_ablation(ablation, config, storage=args.storage, progress=not args.quiet)
        verdict = result.verdict
        outcome = f"{verdict.outcome}: {verdict.summary}" if verdict else "no trial finished"
        print(f"{ablation.name} [{config.profile}] {outcome}")
    if not args.no_report:
        from ablations.engine.report import write_report

        print(f"report: {write_report()}")
    return 0


def _load_data(configs: Iterable[ResolvedConfig]) -> None:
    """Loads every data set the configurations train on, once each (bundled sets stay cached for the trials).

    Raises:
        UnknownNameError, DataError: a set that is missing or holds NaN or infinite values.
    """
    from ablations.engine.data import load_dataset

    names = []
    for config in configs:
        values = config.grid.get("data", [config.fixed["data"]] if "data" in config.fixed else [])
        names += [value for value in values if value not in names]
    _quiet_tensorflow_for(names)
    for name in names:
        load_dataset(name)


def _quiet_tensorflow_for(data_names: Iterable[str]) -> None:
    """Starts TensorFlow quietly first when a data set comes from TFDS, which imports TensorFlow."""
    from ablations.engine.data import TFDS_PREFIX
    from ablations.engine.tensorflow_quiet import import_tensorflow

    if any(str(name).startswith(TFDS_PREFIX) for name in data_names):
        import_tensorflow()


def _report_path(output: str | None) -> Path | None:
    """``--output`` checked: an .html file in an existing folder (None: the default under the results folder)."""
    from ablations.engine.spec import ConfigError

    if output is None:
        return None
    path = Path(output)
    if path.suffix.lower() != ".html":
        raise ConfigError(f"--output must name an .html file; received {output!r}.")
    if path.is_dir():
        raise ConfigError(f"--output {output!r} is a folder; name an .html file in it.")
    if not path.parent.is_dir():
        raise ConfigError(f"--output {output!r}: folder {path.parent} does not exist; name an .html file in an existing folder.")
    return path


if __name__ == "__main__":
    sys.exit(main())
