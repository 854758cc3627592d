"""Benchmark of ``ablate study`` (not a test): workers, pruning, and keras-tuner, side by side.

One invocation, one search space (the named space ``small``: all ten keys, 8
epochs) on scikit-learn's digits, the same trial budget everywhere:

1. trials per hour with 1 worker and with 2 workers (no pruning, so both train
   the same amount); the rate is measured over the trials (first start to last
   end, from Optuna's timestamps), so the workers' interpreter start-up is
   left out; the wall time with it is printed too. Target: 2 workers >= 1.6x.
2. epochs trained with the median pruner against none, and the best value of
   each. Target: >= 40% fewer epochs.
3. keras-tuner's RandomSearch on the same space, budget and epochs, against
   ours (TPE + median pruning): wall time and best value. The value compared
   is the validation error at the last epoch for both (keras-tuner ranks by
   the best epoch; its last epoch is what we select on). Target: ours not
   slower and its best value not worse.

    make bench-study     # or: python -m benchmarks.bench_study [--trials N]

Everything is written to a temporary folder. The machine's load average is
printed at the start and the end: other processes on the cores skew the
numbers, the 2-worker rate most.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from ablations.engine.device import available_cores  # noqa: E402
from ablations.engine.storage import open_storage  # noqa: E402
from ablations.engine.study import run_study, study_options  # noqa: E402
from ablations.engine.tracking import Tracker  # noqa: E402

SPACE = "small"
DATA = "digits"


def _study(folder: str, name: str, trials: int, *, workers: int, pruner: str) -> dict:
    """Runs one study from scratch; returns its wall time, trial span, epochs and best value."""
    options = study_options(
        space=SPACE,
        data=DATA,
        trials=trials,
        workers=workers,
        pruner=pruner,
        storage=f"journal:{folder}/optuna.journal",
        study_name=name,
        progress=False,
    )
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    report = run_study(options, tracker=Tracker(os.environ["MLFLOW_TRACKING_URI"]))
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    study = optuna.load_study(study_name=name, storage=_journal(folder))
    counted = [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    span = (max(t.datetime_complete for t in counted) - min(t.datetime_start for t in counted)).total_seconds()
    return {
        "wall": wall,
        "cores": cpu / wall,
        "span": span,
        "trials": len(counted),
        "pruned": report.pruned,
        "failed": report.failed,
        "epochs": sum(len(t.intermediate_values) for t in counted),
        "best": report.best_values[0] if report.best_values else float("nan"),
    }


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker processes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _journal(folder: str):
    return open_storage(f"journal:{folder}/optuna.journal")


def _keras_tuner(folder: str, trials: int) -> dict:
    """RandomSearch over the same space: wall time and the best last-epoch validation error."""
    import keras_tuner as kt

    from ablations.engine.study.data import study_dataset
    from ablations.engine.study.space import SEARCH_KEYS, load_space
    from ablations.engine.study.trial import build_trial_model

    space = load_space(SPACE)
    data = study_dataset(DATA, space.fixed["n_train"])
    seeds = iter(range(10**6))

    def value(hp, dimension):
        if dimension.choices is not None:
            return hp.Choice(dimension.name, list(dimension.choices))
        if SEARCH_KEYS[dimension.name].kind is int:
            return hp.Int(dimension.name, int(dimension.low), int(dimension.high), step=int(dimension.step or 1))
        return hp.Float(dimension.name, dimension.low, dimension.high, step=dimension.step, sampling="log" if dimension.log else "linear")

    class HyperMLP(kt.HyperModel):
        def build(self, hp):
            config = {**space.fixed, **{d.name: value(hp, d) for d in space.dimensions}}
            return build_trial_model(config, data.input_shape, data.num_classes, next(seeds))

        def fit(self, hp, model, *args, **kwargs):
            dims = {d.name: d for d in space.dimensions}
            batch_size = value(hp, dims["batch_size"]) if "batch_size" in dims else space.fixed["batch_size"]
            return model.fit(*args, batch_size=batch_size, **kwargs)

    class RandomSearch(kt.RandomSearch):
        # keras-tuner logs to TensorBoard, which TensorFlow 2.21 no longer installs; our side logs none either.
        def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
            return

    tuner = RandomSearch(
        HyperMLP(), objective="val_accuracy", max_trials=trials, seed=0, directory=folder, project_name="kt", overwrite=True
    )
    started = time.perf_counter()
    tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=space.fixed["epochs"], verbose=0)
    wall = time.perf_counter() - started
    finals = [
        1.0 - trial.metrics.get_last_value("val_accuracy")
        for trial in tuner.oracle.trials.values()
        if trial.status == "COMPLETED" and trial.metrics.exists("val_accuracy")
    ]
    return {"wall": wall, "trials": len(finals), "best": min(finals) if finals else float("nan")}


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16, help="trial budget of every search (default: 16)")
    args = parser.parse_args(argv)
    n = args.trials
    folder = tempfile.mkdtemp(prefix="bench-study-")
    os.environ["ABLATE_RESULTS_DIR"] = folder
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder}/mlflow.db"
    epochs = study_options(space=SPACE, data=DATA, trials=1).space.fixed["epochs"]
    print(
        f"ablate study benchmark: space {SPACE!r} on {DATA}, {n} trials x {epochs} epochs, TPE seed 0; "
        f"{available_cores()} cores, load average {os.getloadavg()[0]:.2f} at the start",
        flush=True,
    )
    try:
        one = _study(folder, "one-worker", n, workers=1, pruner="none")
        print(f"  1 worker done ({one['wall']:.0f} s)", file=sys.stderr, flush=True)
        two = _study(folder, "two-workers", n, workers=2, pruner="none")
        print(f"  2 workers done ({two['wall']:.0f} s)", file=sys.stderr, flush=True)
        pruned = _study(folder, "pruned", n, workers=1, pruner="median")
        print(f"  pruning done ({pruned['wall']:.0f} s)", file=sys.stderr, flush=True)
        tuner = _keras_tuner(folder, n)
        print(f"  keras-tuner done ({tuner['wall']:.0f} s)", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    rate_one, rate_two = 3600 * one["trials"] / one["span"], 3600 * two["trials"] / two["span"]
    speedup = rate_two / rate_one
    print(f"\n1. workers (no pruning, {n} trials each)")
    print(f"   1 worker : {rate_one:7.0f} trials/hour  ({one['span']:.1f} s over the trials, {one['wall']:.1f} s wall)")
    print(f"   2 workers: {rate_two:7.0f} trials/hour  ({two['span']:.1f} s over the trials, {two['wall']:.1f} s wall with start-up)")
    print(f"   speed-up {speedup:.2f}x (target >= 1.6x): {_verdict(speedup >= 1.6)}")
    print(
        f"   cores our processes got on average: {one['cores']:.2f} with 1 worker, {two['cores']:.2f} with 2 "
        "(other processes on the machine take the rest)"
    )

    saved = 1 - pruned["epochs"] / one["epochs"]
    print(f"\n2. pruning (1 worker, {n} trials each)")
    print(f"   median pruner: {pruned['epochs']:4d} epochs, {pruned['pruned']} trials pruned, best val_error {pruned['best']:.4f}")
    print(f"   no pruning   : {one['epochs']:4d} epochs,                  best val_error {one['best']:.4f}")
    print(f"   epochs saved {100 * saved:.0f}% (target >= 40%): {_verdict(saved >= 0.40)}")

    print(f"\n3. keras-tuner RandomSearch ({tuner['trials']} trials x {epochs} epochs) against ours (TPE + median pruning)")
    print(f"   ours       : wall {pruned['wall']:6.1f} s, best val_error {pruned['best']:.4f} (last epoch)")
    print(f"   keras-tuner: wall {tuner['wall']:6.1f} s, best val_error {tuner['best']:.4f} (last epoch)")
    print(
        f"   ours not slower: {_verdict(pruned['wall'] <= tuner['wall'])}; "
        f"best value not worse: {_verdict(pruned['best'] <= tuner['best'])}"
    )
    failed = one["failed"] + two["failed"] + pruned["failed"]
    print(f"\nfailed trials: {failed}; load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
