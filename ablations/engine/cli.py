"""The ``ablate`` command: list, run and report the ablations; run hyperparameter studies; compare results.

Errors users can cause end with one line naming the valid choices and exit
code 2, before anything is written. Everything is checked before TensorFlow is
imported, so a typo is answered in about a second; TensorFlow then loads
through `tensorflow_quiet.import_tensorflow`, which keeps its start-up lines
off the terminal.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from ablations.engine.device import JIT_ENV, configure_gpus

if TYPE_CHECKING:
    from ablations.engine.grid_workers import GridHelpers
    from ablations.engine.spec import Ablation, ResolvedConfig

# Set before TensorFlow or MLflow load (MLflow may load before `tracking`, which sets
# the same); worker processes inherit them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from ablations.engine.execution.checkpoints import DEFAULT_EVERY_S, checkpoint_every, EVERY_ENV as CHECKPOINT_EVERY_ENV  # noqa: E402  (light)
from ablations.engine.execution.stopping import (  # noqa: E402  (light)
    RESUME_LINE,
    check_stop,
    exit_status,
    handle_stop_signals,
    interruptible,
    restore_stop_signals,
)

DISTRIBUTION = "activation-ablations"
"""The suite's name on PyPI and in pyproject.toml: `_versions` reads its version there."""
EXIT_USAGE = 2
EXIT_NOT_STARTED = 1
"""A worker process could not start: the machine's doing, not the command line's (the same command may work later)."""
MAX_FAILURES_NOTE = "trials kept failing; their failure_reason tags in MLflow say why"
DOWNLOAD_HELP = "let TFDS download a tfds:<name> data set that is not prepared yet (needs network)"


class _Parser(argparse.ArgumentParser):
    """argparse with the command's error form: one ``ablate: error: ...`` line and exit code 2.

    Args:
        add_arguments: Adds the command's arguments when it is parsed rather
            than when the parser is built, so that a command whose options come
            from a heavier module (``study``) costs the other commands nothing.
    """

    def __init__(self, *args, add_arguments: Callable[[argparse.ArgumentParser], None] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._add_arguments = add_arguments

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"ablate: error: {message}\n")

    def parse_known_args(self, args=None, namespace=None):
        if self._add_arguments is not None:
            add_arguments, self._add_arguments = self._add_arguments, None
            add_arguments(self)
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
    parser.add_argument("--version", action=_Version, help="the suite's version and those of TensorFlow, Keras, Optuna and MLflow")
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
    run.add_argument("--download", action="store_true", help=DOWNLOAD_HELP)
    run.add_argument("--workers", type=_positive_int, default=1, metavar="N", help="processes that share each grid on this machine (default: 1)")
    run.add_argument("--fresh", action="store_true", help="start new grids even where an unfinished one has the same settings")
    run.add_argument("--dry-run", action="store_true", help="print each grid's trials, packs, epochs and estimated time and memory; run and write nothing")
    run.add_argument("--jit", action="store_true", help="compile the stacked training step with XLA")
    run.add_argument(
        "--checkpoint-every", type=_checkpoint_every, default=None, metavar="SECONDS",
        help=f"seconds between checkpoints of a training pack, which a rerun resumes from; 0: every epoch, off: none (default: {DEFAULT_EVERY_S:g})",
    )
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.add_argument("--no-report", action="store_true", help="do not rewrite the HTML report")

    show = commands.add_parser("show", help="the latest verdicts from MLflow as a table: outcome, headline effect, checks held and failed")
    show.add_argument("names", nargs="*", metavar="NAME", help="ablations to show (default: all)")

    report = commands.add_parser("report", help="write the HTML report from what MLflow holds")
    report.add_argument("--output", default=None, help="where to write it (default: mlruns/report.html)")

    commands.add_parser(
        "study",
        help="an Optuna hyperparameter study (TPE + pruning) over the model space; resumable and parallel",
        description="Reruns of the same command resume the study; it runs until it has N trials that "
        "finished COMPLETE or PRUNED (failed trials are kept but not counted).",
        add_arguments=_study_arguments,
    )

    compare = commands.add_parser(
        "compare",
        help="compare the results of two stores, ablation by ablation; exit 1 if any number differs",
        description="Matches, for every ablation in both stores, the newest finished run of each, their "
        "trials by params and seed, and compares every final metric, the aggregates and the verdict.",
    )
    compare.add_argument("before", metavar="BEFORE", help="the reference: a results folder holding mlflow.db, or a tracking URI")
    compare.add_argument("after", metavar="AFTER", help="the store to check, in the same form")
    compare.add_argument("--rtol", type=float, default=0.0, metavar="R", help="relative tolerance of a number (default: 0, equality)")
    compare.add_argument("--atol", type=float, default=0.0, metavar="A", help="absolute tolerance of a number (default: 0)")
    return parser


class _Version(argparse.Action):
    """``--version``: prints `_versions` and exits; read only when asked (the metadata lookups take ~50 ms)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(_versions())
        parser.exit()


def _versions() -> str:
    """The suite's version and those of the libraries that decide its numbers, read from the installed metadata.

    Not from the modules: importing TensorFlow takes seconds and prints its start-up lines.
    """
    from importlib.metadata import PackageNotFoundError, version

    def installed(distribution: str) -> str:
        try:
            return version(distribution)
        except PackageNotFoundError:
            return "not installed"

    libraries = ("tensorflow", "keras", "optuna", "mlflow")
    return f"ablate {installed(DISTRIBUTION)} (" + ", ".join(f"{name} {installed(name)}" for name in libraries) + ")"


def _study_arguments(study: argparse.ArgumentParser) -> None:
    """The ``study`` command's arguments: one per field of `StudyOptions`, and ``--download``.

    ``--download`` is no study option: it changes where the data comes from,
    not what the study is, so a rerun without it resumes the same study.
    """
    from ablations.engine.study.options import option_table

    for name, option in option_table().items():
        if option.switch:
            study.add_argument(option.flag_of(name), dest=name, action="store_false", help=option.help)
        else:
            how = {"type": option.parse} if option.parse else {}
            how |= {"metavar": option.metavar} if option.metavar else {}
            study.add_argument(option.flag_of(name), dest=name, default=option.default, help=option.help, **how)
    study.add_argument("--download", action="store_true", help=DOWNLOAD_HELP)


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1; received {text!r}")
    return value


def _checkpoint_every(text: str) -> str:
    """An argparse type: seconds >= 0, or "off"."""
    if text.strip().lower() == "off":
        return "off"
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, or off; received {text!r}")
    return f"{value:g}"


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
            parser.error("a command is required. Valid choices: list, run, show, report, study, compare.")
    except SystemExit as stop:  # argparse's errors (one line, see _Parser) and --help
        return stop.code if isinstance(stop.code, int) else 0
    from ablations.engine.data import DataError, TfdsNotPreparedError
    from ablations.engine.spec import ConfigError
    from ablations.engine.execution.pool import WorkerStartError
    from models.registry import UnknownNameError

    # Ctrl-C, SIGTERM and SIGHUP: the pack's runs end KILLED, its trials fail for a rerun.
    replaced = handle_stop_signals() if args.command in ("run", "study") else {}
    try:
        code = _dispatch(args)
        check_stop()  # a stop that arrived after the last place that checks
        return code
    except KeyboardInterrupt as stop:
        # One line; a study names itself, since its rerun must name it too.
        print(f"ablate: {RESUME_LINE}{getattr(stop, 'resume_what', '')}", file=sys.stderr)
        return exit_status(stop)
    except WorkerStartError as error:  # the workers already started are stopped by now
        print(f"ablate: error: {error}", file=sys.stderr)
        return EXIT_NOT_STARTED
    except (ConfigError, UnknownNameError, DataError) as error:
        # The loader's remedy is worded for Python (download=True); here it is a flag.
        text = error.advice("rerun with --download") if isinstance(error, TfdsNotPreparedError) else str(error)
        message = " ".join(text.splitlines())  # one line, even if a library's message had several
        print(f"ablate: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        restore_stop_signals(replaced)  # `main` called in-process (tests) leaves the caller's handlers


def _dispatch(args: argparse.Namespace) -> int:
    from ablations.engine.registry import all_ablations

    if args.command == "list":
        for name, ablation in all_ablations().items():
            print(f"{name}\n    {ablation.claim}")
        return 0
    if args.command == "study":
        _quiet_tensorflow_for([args.data])
        return _study(args)
    if args.command == "compare":
        return _compare(args.before, args.after, rtol=args.rtol, atol=args.atol)
    if args.command == "show":
        return _show(args.names)
    if args.command == "report":
        output = _report_path(args.output)
        from ablations.engine.report import write_report

        print(write_report(output))
        return 0

    refused = _check_workers(args.workers)  # before any helper starts, and before a dry run times anything
    if refused is not None:
        return refused
    if args.jit:
        os.environ[JIT_ENV] = "1"  # read where the stacked step compiles, here and in the helpers
    if args.checkpoint_every is not None:
        os.environ[CHECKPOINT_EVERY_ENV] = args.checkpoint_every  # read where a pack starts, here and in the helpers
    if args.workers > 1 and not args.dry_run:
        from ablations.engine.grid_workers import GridHelpers

        # Started first: their start-up runs while this process loads and checks everything.
        with GridHelpers(args.workers, progress=not args.quiet) as helpers:
            return _run(args, helpers)
    return _run(args, None)


def _check_workers(workers: int) -> int | None:
    """Checks ``--workers`` against what this machine holds (`device.worker_bound`): EXIT_USAGE if beyond it, else None.

    Beyond it, one ``ablate: error: ...`` line names the most that fit and why;
    within it but beyond the cores of a CPU, one ``ablate: note: ...`` line says
    they only share the cores. Reads /proc, not TensorFlow: answered at once.
    """
    if workers <= 1:
        return None
    from ablations.engine.device import check_workers, machine_worker_bound, workers_note

    bound = machine_worker_bound()
    error = check_workers(workers, bound)
    if error is not None:
        print(f"ablate: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    note = workers_note(workers, bound)
    if note is not None:
        print(f"ablate: note: {note}", file=sys.stderr, flush=True)
    return None


def _run(args: argparse.Namespace, helpers: GridHelpers | None) -> int:
    """``ablate run``: validates, then runs (or sizes, with --dry-run) each ablation's grid and writes the report."""
    from ablations.engine.registry import ablation_names, get_ablation
    from ablations.engine.storage import open_storage
    from ablations.engine.device import configure_threads
    from ablations.engine.tensorflow_quiet import import_tensorflow

    names = args.names or ablation_names()
    overrides = _overrides(args.overrides)
    checkpoint_every()  # ABLATE_CHECKPOINT_EVERY set by hand: a typo is a ConfigError here, not in the first pack
    # Everything is validated before the first trial so a typo costs nothing.
    plans = [
        (get_ablation(n), get_ablation(n).resolve(args.profile, overrides, args.seeds, download=args.download)) for n in names
    ]
    if helpers is not None:
        # This process trains as worker 0: its thread pools are sized as the helpers' are, before a data set
        # loaded from TFDS can run TensorFlow's first op.
        configure_threads(helpers.threads)
    with interruptible():  # writes no store: a stop lands at once
        _load_data([config for _, config in plans], download=args.download)
        if args.dry_run:
            return _dry_run(plans, args.workers)
    open_storage(args.storage)
    import_tensorflow()
    configure_gpus()
    from ablations.engine.runner import run_ablation

    for ablation, config in plans:
        check_stop()
        result = run_ablation(ablation, config, storage=args.storage, progress=not args.quiet, fresh=args.fresh, helpers=helpers)
        verdict = result.verdict
        if verdict is not None:
            outcome = f"{verdict.outcome}: {verdict.summary}"
        elif result.concluded:
            outcome = "no trial finished"
        else:
            outcome = f"no pack left here; grid {result.study_name} is concluded by the worker that finishes its last pack"
        print(f"{ablation.name} [{config.profile}] {outcome}")
    report = None
    if not args.no_report:
        from ablations.engine.report import write_report

        report = write_report()
    if len(plans) > 1:
        from ablations.engine.show import print_verdicts, verdict_rows

        print_verdicts(verdict_rows([ablation.name for ablation, _ in plans]), report)
    elif report is not None:
        print(f"report: {report}")
    return 0


def _show(names: Sequence[str]) -> int:
    """``ablate show``: the latest verdict of each ablation, then the report's path (if written)."""
    from ablations.engine.registry import ablation_names, get_ablation
    from ablations.engine.show import print_verdicts, verdict_rows
    from ablations.engine.storage import results_dir

    names = [get_ablation(name).name for name in names] or ablation_names()  # an unknown name is one line, exit 2
    report = results_dir() / "report.html"
    print_verdicts(verdict_rows(names), report if report.exists() else None)
    return 0


def _dry_run(plans: list[tuple[Ablation, ResolvedConfig]], workers: int) -> int:
    """``ablate run --dry-run``: per ablation, its grid's size and cost on this device; writes nothing."""
    from ablations.engine.tensorflow_quiet import import_tensorflow

    import_tensorflow()
    configure_gpus()
    from ablations.engine.bookkeeping import measure_rates
    from ablations.engine.estimate import estimate

    rates = measure_rates()  # this machine's disk, once for every grid
    for ablation, config in plans:
        print(estimate(ablation, config, workers=workers, rates=rates).line(), flush=True)
    return 0


def _study(args: argparse.Namespace) -> int:
    """``ablate study``: validates, runs, prints where the study stands; 1 if trials kept failing."""
    from ablations.engine.data import TfdsNotPreparedError, load_dataset
    from ablations.engine.storage import open_storage
    from ablations.engine.study.data import OBJECTIVES
    from ablations.engine.study.options import option_table, study_options
    from ablations.engine.tensorflow_quiet import import_tensorflow

    # Before the other options: a --workers beyond the machine is answered with its bound,
    # not with the option's range (which no machine here reaches).
    refused = _check_workers(args.workers)
    if refused is not None:
        return refused
    given = {name: getattr(args, name) for name in option_table()}
    try:
        options = study_options(**given)
    except TfdsNotPreparedError:
        if not args.download:
            raise
        # Every other option is checked by now (the data is checked last), so a
        # typo never waits for a download; the checks then read the set from disk.
        load_dataset(args.data, download=True)
        options = study_options(**given)
    open_storage(options.storage)  # a bad URL fails here, before TensorFlow starts
    import_tensorflow()
    from ablations.engine.study.run import run_study

    try:
        report = run_study(options)
    except KeyboardInterrupt as stop:
        stop.resume_what = f" study {options.study_name!r}"  # for `main`'s resume line
        raise
    print(
        f"study {report.study_name}: {report.complete + report.pruned}/{options.trials} trials "
        f"({report.complete} complete, {report.pruned} pruned), {report.failed} failed, {report.running} running"
    )
    if report.best_values is not None:
        names = OBJECTIVES[options.objective]
        values = ", ".join(f"{name} {value:.4f}" for name, value in zip(names, report.best_values))
        params = " ".join(f"{k}={v}" for k, v in report.best_params.items())
        print(f"best: {values}: {params}")
    print(f"MLflow: experiment study-{report.study_name}, parent run {report.parent_run_id}")
    if report.stopped_early:
        print(f"stopped: {MAX_FAILURES_NOTE}", file=sys.stderr)
        return 1
    return 0


def _compare(before: str, after: str, *, rtol: float, atol: float) -> int:
    """``ablate compare``: one line per ablation found in both stores; 1 if any differs."""
    import math

    from ablations.engine.spec import ConfigError

    for name, tolerance in (("rtol", rtol), ("atol", atol)):
        if not (math.isfinite(tolerance) and tolerance >= 0):
            raise ConfigError(f"--{name} must be a finite number >= 0; received {tolerance!r}.")
    for location in (before, after):
        if "://" not in location and not (Path(location) / "mlflow.db").is_file():
            raise ConfigError(
                f"No MLflow store in {location!r}: {Path(location) / 'mlflow.db'} does not exist. "
                "Valid: a results folder holding mlflow.db (e.g. mlruns), or a tracking URI."
            )
    from ablations.engine.compare import compare_stores, store_uri

    comparisons = compare_stores(store_uri(before), store_uri(after), rtol=rtol, atol=atol)
    if not comparisons:
        raise ConfigError(f"{before!r} and {after!r} have no ablation in common; run the same ablations into both.")
    for comparison in comparisons:
        print(comparison.line())
    return 0 if all(comparison.same for comparison in comparisons) else 1


def _load_data(configs: Iterable[ResolvedConfig], *, download: bool = False) -> None:
    """Loads every data set the configurations train on, once each (bundled sets stay cached for the trials).

    This is where ``--download`` takes effect: TFDS fetches a missing set into
    its data directory here, before the first trial, and the trials (which call
    `load_dataset` without ``download``) read it from there prepared.

    Args:
        configs: The resolved configurations of the run.
        download: Let TFDS download a "tfds:" set that is not prepared.

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
        load_dataset(name, download=download)


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
