"""A FAIL trial's fate, typed and stored as a system attribute, decides whether its grid point is trained again."""

import optuna
import pytest
from optuna.trial import TrialState

from ablations.engine.execution.states import FATE_ATTR, REASON_ATTR, Fate, fail_trial, failure_reason, fate_of


@pytest.fixture
def study():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study()


def test_fail_trial_records_fate_and_reason_and_fails_once(study):
    trial = study.ask()
    assert fail_trial(study, trial, Fate.STALE, "its worker died")
    frozen = study.trials[0]
    assert frozen.state == TrialState.FAIL
    assert frozen.system_attrs[FATE_ATTR] == "stale" and frozen.user_attrs[REASON_ATTR] == "its worker died"
    assert fate_of(frozen) == Fate.STALE
    # A second worker failing it as well changes nothing: the first fate stands.
    assert not fail_trial(study, frozen, Fate.INTERRUPTED, "too late")
    assert fate_of(study.trials[0]) == Fate.STALE and study.trials[0].user_attrs[REASON_ATTR] == "its worker died"


def test_only_stale_and_interrupted_trials_are_retried():
    assert {fate for fate in Fate if fate.retried} == {Fate.STALE, Fate.INTERRUPTED}


def test_the_reason_text_decides_nothing(study):
    # A failure of its own whose words look like a retry reason is still final.
    trial = study.ask()
    fail_trial(study, trial, Fate.OWN, "stale: the words of a user's exception")
    assert fate_of(study.trials[0]) == Fate.OWN and not fate_of(study.trials[0]).retried


def test_a_fail_without_a_fate_was_failed_by_the_heartbeat_check_and_is_retried(study):
    trial = study.ask()
    study.tell(trial, state=TrialState.FAIL)  # what optuna.storages.fail_stale_trials does: no attribute of ours
    assert fate_of(study.trials[0]) == Fate.STALE


def test_trials_that_did_not_fail_have_no_fate(study):
    study.tell(study.ask(), 1.0)
    study.ask()
    assert [fate_of(t) for t in study.trials] == [None, None]


def test_failure_reason_is_one_short_line():
    assert failure_reason(ValueError("first line\nsecond")) == "ValueError: first line"
    assert len(failure_reason(RuntimeError("x" * 1000))) == 500
