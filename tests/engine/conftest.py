"""Fixtures of the engine tests: a toy ablation and result stores made from it."""

import matplotlib.pyplot as plt
import pytest

from ablations.engine.spec import Ablation, Param
from ablations.engine.stats import summarize
from ablations.engine.verdict import Check, SmallestEffect, Verdict

TOY_SMALLEST = SmallestEffect(0.1, "a toy threshold")

_EFFECTS = {"reproduced": [1.0], "not reproduced": [-1.0], "inconclusive": []}


def toy_ablation(shift: float = 0.0, outcome: str = "reproduced") -> Ablation:
    """A two-point grid over two seeds whose loss at x=2 moves by ``shift``; its verdict is ``outcome``."""

    def run(configs, context):
        return [{"final_val_loss": float(c["x"] + c["seed"]) + (shift if c["x"] == 2 else 0.0)} for c in configs]

    def verdict(trials):
        # One check whose effect the policy reads as ``outcome`` (exact: one value decides).
        return Verdict([Check.above("toy", "loss effect", summarize(_EFFECTS[outcome], kind="exact"), smallest=TOY_SMALLEST)])

    return Ablation(
        name="toy",
        claim="x is small",
        params={"x": Param(1, low=0, high=10)},
        profiles={"smoke": {"x": [1, 2], "seeds": 2}},
        run=run,
        verdict=verdict,
        figures=lambda trials, client: {"toy": plt.figure()},
        objective="final_val_loss",
    )


@pytest.fixture
def toy_store(tmp_path, new_store):
    """Runs a toy ablation into a new results folder ``tmp_path/name``; returns the folder.

    ``toy_store(name, shift=..., outcome=..., overrides=...)`` passes ``shift`` and
    ``outcome`` to `toy_ablation` and ``overrides`` to `Ablation.resolve`.
    """
    from ablations.engine.runner import run_ablation
    from ablations.engine.tracking import Tracker

    def make(name: str, *, shift: float = 0.0, outcome: str = "reproduced", overrides: dict | None = None) -> str:
        ablation = toy_ablation(shift, outcome)
        uri = new_store(tmp_path / name)
        run_ablation(ablation, ablation.resolve("smoke", overrides), tracker=Tracker(uri), progress=False)
        return str(tmp_path / name)

    return make
