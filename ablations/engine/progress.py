"""One line per finished pack of trials, with the time left."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def duration(seconds: float) -> str:
    """Seconds as people say them: "42s", "2m05s", "3h05m" (to the second under an hour, to the minute beyond)."""
    seconds = int(round(seconds))
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


class Progress:
    """Prints ``[done/total] name what (pack time) elapsed, ETA`` as trials finish.

    The estimate is the mean time per trial trained here so far times the trials left.

    Args:
        total: Number of trials.
        name: What is running.
        enabled: Print nothing when False.
        stream: Where to print (stderr, so stdout stays clean for results).
        done: Trials already done (a resumed grid's).
    """

    def __init__(self, total: int, name: str, *, enabled: bool = True, stream: TextIO | None = None, done: int = 0):
        self.total = total
        self.name = name
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.done = self.before = done
        self.started = time.perf_counter()
        self._print(f"{name}: {total} trials" + (f", {done} done before" if done else ""))

    def advance(self, count: int, label: str, seconds: float) -> None:
        self.done += count
        elapsed = time.perf_counter() - self.started
        here = self.done - self.before
        left = elapsed / here * (self.total - self.done) if here > 0 else 0.0
        width = len(str(self.total))
        self._print(
            f"[{self.done:>{width}}/{self.total}] {self.name} {label} ({count} trial{'s' if count > 1 else ''}, "
            f"{seconds:.1f}s) elapsed {duration(elapsed)}, ETA {duration(left)}"
        )

    def note(self, line: str) -> None:
        """Prints a line about the work in progress (a pack resumed from its checkpoint, ...)."""
        self._print(f"{self.name}: {line}")

    def close(self, outcome: str) -> None:
        self._print(f"{self.name}: {outcome} in {duration(time.perf_counter() - self.started)}")

    def _print(self, line: str) -> None:
        if self.enabled:
            print(line, file=self.stream, flush=True)
