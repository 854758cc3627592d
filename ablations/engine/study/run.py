"""`run_study`: open the session, run the trials here or in worker processes, summarize on MLflow.

Importing this module loads Keras (through the loop) and matplotlib (through
the summary); ``ablate`` imports it once the options are checked and
TensorFlow has started quietly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ablations.engine.study.loop import work
from ablations.engine.study.options import StudyOptions
from ablations.engine.study.session import StudyReport, open_session
from ablations.engine.study.summary import summarize
from ablations.engine.study.workers import run_workers

if TYPE_CHECKING:
    from ablations.engine.tracking import Tracker


def run_study(options: StudyOptions, *, tracker: Tracker | None = None) -> StudyReport:
    """Runs the study to ``options.trials`` counted trials (or the timeout) and summarizes it on MLflow.

    With ``options.workers > 1`` the trials run in that many fresh processes
    (`workers.run_workers`), which share the cores.

    Raises:
        ConfigError: the storage cannot be opened, or the study exists with another space,
            data set, objective or cv.
    """
    session = open_session(options, tracker=tracker)
    stopped_early = False
    try:
        stopped_early = run_workers(session) if options.workers > 1 else work(session)
    except KeyboardInterrupt:
        session.tracker.end_run(session.parent, "KILLED")
        raise
    return summarize(session, stopped_early=stopped_early)
