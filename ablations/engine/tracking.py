"""MLflow tracking: where results go, parent and child runs, reading them back."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Param as MlflowParam  # noqa: E402
from mlflow.entities import Dataset as MlflowDataset  # noqa: E402
from mlflow.entities import DatasetInput, InputTag, RunStatus, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.utils.time import get_current_time_millis  # noqa: E402

from ablations.engine.lineage import DataLineage  # noqa: E402
from ablations.engine.storage import results_dir  # noqa: E402

PARENT_TAG = "mlflow.parentRunId"
GIT_COMMIT_TAG = "mlflow.source.git.commit"
SOURCE_TAGS = {"mlflow.source.name": "ablate", "mlflow.source.type": "LOCAL"}
"""What produced a run, as ``mlflow.start_run`` would tag a script: the UI's Source column shows it (with the commit)."""
DATA_CONTEXT_TAG = "mlflow.data.context"


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else a sqlite database under `results_dir`."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{results_dir() / 'mlflow.db'}"


@cache
def environment_tags() -> dict[str, str]:
    """Versions and git commit, so every run says what produced it.

    The commit is in MLflow's own ``mlflow.source.git.commit`` and, as
    before, in ``git_commit``; with `SOURCE_TAGS` the UI's Source column reads
    ``ablate`` and its commit.
    """
    import keras
    import optuna
    import tensorflow as tf

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "version.tensorflow": tf.__version__,
        "version.keras": keras.__version__,
        "version.optuna": optuna.__version__,
        "version.mlflow": mlflow.__version__,
        "version.python": platform.python_version(),
        "git_commit": commit,
        GIT_COMMIT_TAG: commit,
        **SOURCE_TAGS,
    }


class Tracker:
    """Parent and child runs of one experiment per ablation (or study).

    Args:
        uri: The MLflow tracking URI; defaults to `tracking_uri`.
    """

    def __init__(self, uri: str | None = None):
        self.uri = uri or tracking_uri()
        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.uri)
        self._pending = []

    def experiment_id(self, name: str) -> str:
        """The experiment called ``name``, created on first use (by whichever process sharing the store comes first).

        With a local store its artifacts go under ``results_dir()/artifacts``
        rather than MLflow's default folder in the working directory.
        """
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = None
        if self.uri.startswith(("sqlite:", "file:")) or "://" not in self.uri:
            location = (results_dir() / "artifacts" / name).as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            # Another process sharing the store (a second machine on one grid) created it since the look above.
            return self.client.get_experiment_by_name(name).experiment_id

    def start_run(
        self,
        experiment_id: str,
        name: str,
        *,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
    ) -> str:
        """Creates a run, tagged in the same call (a run is never left untagged), then logs its params."""
        all_tags = {**environment_tags(), **(tags or {})}
        if parent_run_id is not None:
            all_tags[PARENT_TAG] = parent_run_id
        run = self.client.create_run(experiment_id, run_name=name, tags={k: str(v) for k, v in all_tags.items()})
        if params:
            self.client.log_batch(run.info.run_id, params=[MlflowParam(key, _param_text(value)) for key, value in params.items()])
        return run.info.run_id

    def log_metrics(
        self,
        run_id: str,
        values: dict[str, float],
        step: int = 0,
        *,
        tags: dict[str, Any] | None = None,
        synchronous: bool = True,
    ) -> None:
        """Logs one step's metrics (and tags) in one call; asynchronous writes complete by `flush`."""
        # Imported here: the callbacks package loads Keras, which `ablate report` does not need.
        from callbacks.mlflow_logger import metrics_batch

        if values or tags:
            operation = self.client.log_batch(
                run_id,
                metrics=metrics_batch(values, step),
                tags=[RunTag(key, str(value)) for key, value in (tags or {}).items()],
                synchronous=synchronous,
            )
            if not synchronous:
                self._pending.append(operation)

    def log_steps(self, run_id: str, steps: list[tuple[dict[str, float], int]]) -> None:
        """Logs many steps' metrics in one asynchronous call (at most 1,000 metrics); `flush` waits for it."""
        from callbacks.mlflow_logger import metrics_batch

        metrics = [metric for values, step in steps for metric in metrics_batch(values, step)]
        self._pending.append(self.client.log_batch(run_id, metrics=metrics, synchronous=False))

    def flush(self) -> None:
        """Waits for every asynchronous write of this tracker.

        (`mlflow.flush_async_logging` flushes the global tracking URI's store,
        which need not be this tracker's.)
        """
        pending, self._pending = self._pending, []
        for operation in pending:
            operation.wait()

    def log_data(self, run_id: str, data: Sequence[DataLineage], context: str = "train") -> None:
        """Logs data sets as the run's MLflow dataset inputs (the UI's Dataset column): name, digest, source, profile.

        Args:
            run_id: The run.
            data: What was loaded (`lineage.DataLineage`); each is one dataset of the experiment.
            context: The ``mlflow.data.context`` tag of each input.
        """
        if data:
            inputs = [
                DatasetInput(
                    MlflowDataset(
                        name=item.name,
                        digest=item.digest,
                        source_type=item.source,
                        source=json.dumps({"name": item.name, "source": item.source}),
                        profile=item.profile(),
                    ),
                    tags=[InputTag(DATA_CONTEXT_TAG, context)],
                )
                for item in data
            ]
            try:
                self.client.log_inputs(run_id, datasets=inputs)
            except MlflowException as error:
                # MLflow's SQL store looks a dataset up, then inserts it: two workers logging the same data set
                # at once both miss it, and the second insert breaks the unique key. The dataset exists now,
                # so the second try finds it and only links it to the run.
                if "UNIQUE constraint" not in str(error) and "IntegrityError" not in str(error):
                    raise
                self.client.log_inputs(run_id, datasets=inputs)

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()])

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """Gives the run its final status and end time, after this tracker's pending writes.

        Not `MlflowClient.set_terminated`: that shuts MLflow's asynchronous
        logging down and waits about a second for its thread to notice, once
        per pack of trials, where `flush` has already waited for every write.
        """
        self.flush()
        # MlflowClient has no public way to set the end time without that wait; its store does.
        store = self.client._tracking_client.store
        store.update_run_info(run_id, run_status=RunStatus.from_string(status), end_time=get_current_time_millis(), run_name=None)

    def log_figure(self, run_id: str, figure, path: str) -> None:
        self.client.log_figure(run_id, figure, path)

    def log_json(self, run_id: str, obj: Any, path: str) -> None:
        self.client.log_dict(run_id, obj, path)

    def log_frame(self, run_id: str, frame: pd.DataFrame, path: str) -> None:
        with tempfile.TemporaryDirectory() as folder:
            file = Path(folder) / Path(path).name
            frame.to_csv(file, index=False)
            self.client.log_artifact(run_id, str(file), str(Path(path).parent) if Path(path).parent.name else None)

    def load_json(self, run_id: str, path: str) -> Any:
        with tempfile.TemporaryDirectory() as folder:
            local = self.client.download_artifacts(run_id, path, folder)
            return json.loads(Path(local).read_text())

    def child_runs(self, experiment_id: str, parent_run_id: str) -> pd.DataFrame:
        """Every child run of ``parent_run_id``: params, final metrics, tags, status."""
        return self._search(experiment_id, f"tags.`{PARENT_TAG}` = '{parent_run_id}'")

    def _search(self, experiment_id: str, filter_string: str) -> pd.DataFrame:
        rows = []
        token = None
        while True:
            page = self.client.search_runs([experiment_id], filter_string, max_results=1000, page_token=token)
            for run in page:
                row = {"run_id": run.info.run_id, "status": run.info.status}
                row.update({f"params.{k}": v for k, v in run.data.params.items()})
                row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
                row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
                rows.append(row)
            token = page.token
            if not token:
                return pd.DataFrame(rows)


def _param_text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)
