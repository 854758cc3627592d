"""Optuna samplers of `ablate study`."""

from __future__ import annotations

import optuna


class BatchGridSampler(optuna.samplers.GridSampler):
    """GridSampler for ask-and-tell: every grid point is asked up front, then told in packs.

    GridSampler stops `Study.optimize` once the grid is exhausted by calling
    `Study.stop`, which raises outside `optimize`; here nothing loops, so there
    is nothing to stop.
    """

    def after_trial(self, study, trial, state, values) -> None:
        pass
