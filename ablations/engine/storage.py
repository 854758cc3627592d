"""Where results go: the results folder and the Optuna storage.

Kept apart from `tracking` (MLflow) and `runner` (Keras), and importing Optuna
only when a storage is opened, so that ``ablate`` checks a storage URL before
the heavy libraries load.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ablations.engine.spec import ConfigError

if TYPE_CHECKING:
    import optuna

STORAGE_FORMS = "sqlite:///PATH.db, postgresql://USER:PASSWORD@HOST/DB, mysql://..., journal:PATH.log"


def results_dir() -> Path:
    """Where results go: ``$ABLATE_RESULTS_DIR``, else ``mlruns/`` in the working directory."""
    return Path(os.environ.get("ABLATE_RESULTS_DIR", "mlruns")).resolve()


def open_storage(
    url: str | None,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
) -> optuna.storages.BaseStorage:
    """Opens Optuna storage; raises ConfigError naming the valid forms when it cannot.

    Args:
        url: An RDB URL (sqlite, postgresql, mysql), ``journal:PATH`` for a
            journal file (safe for many processes on one machine), or None for
            the journal file ``optuna.journal`` under `results_dir`.
        heartbeat_interval: RDB storages only: seconds between a running
            trial's heartbeats, so `optuna.storages.fail_stale_trials` can fail
            the trials of dead workers.
        grace_period: RDB storages only: heartbeat age after which a trial is stale.
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    if url is None:
        # The default folder is the suite's to make (as MLflow's store beside it is); a folder named by hand must exist.
        results_dir().mkdir(parents=True, exist_ok=True)
    if url is None or url.startswith("journal:"):
        path = Path(url.removeprefix("journal:")) if url else results_dir() / "optuna.journal"
        if not path.parent.is_dir():
            raise ConfigError(f"Cannot open storage {url!r}: folder {path.parent} does not exist. Valid forms: {STORAGE_FORMS}.")
        # The open-lock works on any file system, unlike the default symlink lock.
        return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))
    try:
        with warnings.catch_warnings():
            # Heartbeats are marked experimental but are Optuna's one way to fail a dead worker's trials.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    except Exception as error:  # SQLAlchemy raises many kinds; all mean "cannot open"
        shown = _hide_password(url)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"Cannot open storage {shown!r}: {reason.replace(url, shown)}. Valid forms: {STORAGE_FORMS}.") from None


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: nothing to hide
        return url
