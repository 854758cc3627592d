"""Stop signals: SIGINT, SIGTERM and SIGHUP raise one `Stopped`, exit as a shell reports them, and stop at once the second time."""

import io
import os
import signal
import sys

import pytest

from ablations.engine.execution.stopping import (
    STOP_SIGNALS,
    Stopped,
    check_stop,
    exit_status,
    handle_stop_signals,
    interruptible,
    passing_stops_to,
    restore_stop_signals,
    shielded,
    stop_cause,
)


@pytest.fixture
def restored_handlers():
    before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    yield
    restore_stop_signals(before)


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=lambda s: s.name)
def test_each_stop_signal_raises_stopped_with_the_shells_exit_status(restored_handlers, signum):
    handle_stop_signals()
    with pytest.raises(Stopped) as stopped, interruptible():
        os.kill(os.getpid(), signum)
        signal.sigtimedwait([], 0)  # a safe point where Python runs the handler, should it not have run yet
    assert isinstance(stopped.value, KeyboardInterrupt)  # every `except KeyboardInterrupt` path serves it
    assert exit_status(stopped.value) == 128 + signum and stop_cause(stopped.value) == signum.name
    # The next signal is not caught: the default action ends the process at once.
    assert {signal.getsignal(other) for other in STOP_SIGNALS} == {signal.SIG_DFL}


def test_a_worker_ignores_the_second_sigint_its_parent_passes_on_but_dies_of_sigterm(restored_handlers):
    handle_stop_signals(worker=True)
    with pytest.raises(Stopped), interruptible():
        os.kill(os.getpid(), signal.SIGINT)
        signal.sigtimedwait([], 0)
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL and signal.getsignal(signal.SIGHUP) == signal.SIG_DFL


def test_a_plain_keyboard_interrupt_exits_130_and_names_itself():
    assert exit_status(KeyboardInterrupt()) == 130 and stop_cause(KeyboardInterrupt()) == "KeyboardInterrupt"


class _SignalsInItsFinalizer:
    def __init__(self, signum: int):
        self.signum = signum

    def __del__(self):
        os.kill(os.getpid(), self.signum)
        signal.sigtimedwait([], 0)  # the handler runs here, inside the finalizer


def test_a_stop_that_lands_in_a_finalizer_is_kept_for_the_next_check(restored_handlers, capfd):
    handle_stop_signals()
    trained = []
    with pytest.raises(Stopped) as stopped, interruptible():
        _SignalsInItsFinalizer(signal.SIGTERM)  # dropped at once: its __del__ runs and is signalled
        trained.append("the rest of the block")
        check_stop()  # the next check (a logged epoch)
    assert "Exception ignored" not in capfd.readouterr().err  # not raised there, where Python would drop it
    assert trained == ["the rest of the block"] and stopped.value.signum == signal.SIGTERM


def test_a_stop_inside_a_shielded_block_is_raised_when_the_block_ends(restored_handlers):
    handle_stop_signals()
    done = []
    with pytest.raises(Stopped) as stopped, interruptible():
        with shielded():
            os.kill(os.getpid(), signal.SIGHUP)
            signal.sigtimedwait([], 0)
            done.append("the second write")  # still runs: the stop waits for the block
    assert done == ["the second write"] and stopped.value.signum == signal.SIGHUP


def test_outside_an_interruptible_block_a_stop_waits_for_the_next_check(restored_handlers):
    handle_stop_signals()
    os.kill(os.getpid(), signal.SIGTERM)
    signal.sigtimedwait([], 0)  # a store's write would go on here, undisturbed
    with pytest.raises(Stopped) as stopped:
        with interruptible():  # raised on entry, before any training starts
            raise AssertionError("the block ran although a stop was waiting")
    assert stopped.value.signum == signal.SIGTERM


def _signal_self(signum: int) -> None:
    os.kill(os.getpid(), signum)
    signal.sigtimedwait([], 0)  # the handler runs here


def test_a_stop_a_library_swallowed_is_raised_again_when_the_block_ends_and_at_every_check(restored_handlers):
    handle_stop_signals()
    trained = []
    with pytest.raises(Stopped) as stopped, interruptible():
        try:
            _signal_self(signal.SIGINT)
        except KeyboardInterrupt:
            pass  # a library's handler that drops it
        trained.append("the rest of the block")
    assert trained == ["the rest of the block"] and stopped.value.signum == signal.SIGINT
    for _ in range(2):  # the process is stopping: each later check says so
        with pytest.raises(Stopped):
            check_stop()
    restore_stop_signals({})  # its caller handled it
    check_stop()


def test_an_error_a_library_raised_in_the_stops_place_leaves_the_block_as_the_stop(restored_handlers):
    handle_stop_signals()
    with pytest.raises(Stopped) as stopped, interruptible():
        try:
            _signal_self(signal.SIGTERM)
        finally:
            raise ValueError("can't close the zip file while there is an open writing handle")  # replaces the stop
    assert stopped.value.signum == signal.SIGTERM and isinstance(stopped.value.__context__, ValueError)


def test_an_error_without_a_stop_leaves_the_block_as_itself(restored_handlers):
    handle_stop_signals()
    with pytest.raises(ValueError), interruptible():
        raise ValueError("a bug in a pack: recorded on its trials, not a stop")


def test_a_grid_helper_that_left_its_grid_stops_instead_of_waiting_for_the_next(restored_handlers, monkeypatch):
    from ablations.engine.grid_workers import _next_grid

    monkeypatch.setattr(sys, "stdin", io.StringIO('{"study": "a"}\n{"study": "b"}\n'))
    handle_stop_signals(worker=True)
    assert _next_grid() == '{"study": "a"}\n'
    _signal_self(signal.SIGINT)  # lands between packs, where it is kept: no pack is left to check it
    # Not a read that waits for a grid its parent, stopping, will never send (and a second SIGINT it ignores).
    with pytest.raises(Stopped):
        _next_grid()


def test_a_stop_is_passed_on_as_it_arrives_even_where_this_process_keeps_it(restored_handlers):
    handle_stop_signals()
    told = []
    with passing_stops_to(lambda: told.append("the workers")):
        _signal_self(signal.SIGTERM)  # outside an interruptible block: kept here for the next check...
        assert told == ["the workers"]  # ...but the workers hear of it at once
    with pytest.raises(Stopped):
        check_stop()
    restore_stop_signals({})
    handle_stop_signals()
    with pytest.raises(Stopped), interruptible():
        _signal_self(signal.SIGTERM)
    assert told == ["the workers"]  # outside the block nothing is passed on
