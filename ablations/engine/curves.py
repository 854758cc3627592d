"""Measures of a learning curve: where it converged, the epochs it took to get there, and how two compare.

A curve is a sequence of errors (or losses) indexed by epoch, 0 being the
initialization, as in `TrialFit.history`. Epochs are interpolated linearly
between the scored epochs on either side of a crossing, so that two nets that
get there within a few epochs still differ by a fraction of an epoch.
`censored_ratios` compares two arms' epochs to a level, pair by pair, where
one may never have got there.

Example:

>>> errors = [0.9, 0.5, 0.1, 0.1]
>>> converged_level(errors, fraction=0.05)  # 95% of the way from 0.9 to 0.1
0.14
>>> epochs_to_level(errors, 0.14)
1.9
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd


def converged_level(errors: Sequence[float], fraction: float) -> float:
    """The error at which a curve has made ``1 - fraction`` of its improvement from initialization to its best.

    ``best + fraction * (errors[0] - best)``, ``best`` the curve's minimum.

    Args:
        errors: The curve, one value per epoch from the initialization (epoch 0).
        fraction: The part of the improvement still to make when it counts as converged (0.05: 95% of the way).

    Returns:
        The level; NaN for an empty curve, one with a NaN or infinite value, or one that never improved.
    """
    errors = np.asarray(errors, dtype=float)
    if errors.size == 0 or not np.all(np.isfinite(errors)) or errors[0] <= errors.min():
        return math.nan
    best = errors.min()
    return float(best + fraction * (errors[0] - best))


def epochs_to_level(errors: Sequence[float], level: float) -> float:
    """The first epoch at which a curve is at or below ``level``, interpolated between the epochs either side.

    The first crossing counts, even if the curve rises again afterwards (a net that then overfits).

    Args:
        errors: The curve, one value per epoch from the initialization (epoch 0).
        level: The error to reach.

    Returns:
        The epoch (0.0 if the initialization is already there); NaN if the curve never gets there, has a NaN or
        infinite value, or ``level`` is not finite.
    """
    errors = np.asarray(errors, dtype=float)
    if not math.isfinite(level) or errors.size == 0 or not np.all(np.isfinite(errors)) or not np.any(errors <= level):
        return math.nan
    step = int(np.argmax(errors <= level))
    if step == 0:
        return 0.0
    before, after = errors[step - 1], errors[step]
    return float(step - 1 + (before - level) / (before - after))


def epochs_to_converge(errors: Sequence[float], fraction: float) -> float:
    """Epochs until a curve has made ``1 - fraction`` of its own improvement: `epochs_to_level` at `converged_level`.

    Args:
        errors: The curve, one value per epoch from the initialization (epoch 0).
        fraction: The part of the improvement still to make when it counts as converged.

    Returns:
        The epoch, interpolated; NaN if the curve never improved or has a NaN or infinite value.

    Example:

    >>> epochs_to_converge([0.9, 0.5, 0.1, 0.1], fraction=0.05)
    1.9
    """
    return epochs_to_level(errors, converged_level(errors, fraction))


def censored_ratios(treated: pd.Series, control: pd.Series, bound: float | pd.Series) -> pd.DataFrame:
    """Epochs to a level, treated over control, pair by pair; a treated curve that never got there counts ``bound``.

    Args:
        treated: Each pair's epochs of the treated curve to the level; NaN where it never got there.
        control: Each pair's epochs of the control curve; pairs where they are not above 0 (NaN, or there at
            initialization) are left out.
        bound: What a treated curve that never got there counts: the epochs it ran (one per pair, aligned on the
            index), or a number beyond every run.

    Returns:
        One row per pair kept: ``treated`` (``bound`` filled in), ``control``, ``censored`` (the treated curve never
        got there: its ratio is a lower bound) and ``ratio``.
    """
    kept = control > 0
    treated, control = treated[kept], control[kept]
    ratios = pd.DataFrame({"treated": treated.fillna(bound), "control": control, "censored": treated.isna()})
    ratios["ratio"] = ratios["treated"] / ratios["control"]
    return ratios


def reference_levels(curves: Sequence[Sequence[float]], groups: Sequence, is_reference: Sequence[bool], fraction: float) -> list[float]:
    """Per curve, the level where the reference curve of its group converged (`converged_level`); NaN without one.

    One common target per group (a seed, say), so that two arms are compared by the epochs each needs to reach the
    same error, not each its own best (which a slow, noisy curve reaches as early as a fast one).

    Args:
        curves: One curve per member.
        groups: Per member, the group whose reference curve sets its target.
        is_reference: Per member, whether its curve is its group's reference (the arm without the remedy).
        fraction: As in `converged_level`.
    """
    levels = {group: converged_level(curve, fraction) for curve, group, reference in zip(curves, groups, is_reference) if reference}
    return [levels.get(group, math.nan) for group in groups]
