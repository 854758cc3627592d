"""The parameters several ablations share, and the keywords a trial makes of them."""

import pytest

from ablations.engine import params
from ablations.engine.spec import ConfigError, Param


def test_data_lists_the_default_first_then_the_other_flat_sets():
    assert params.data("mnist1d") == Param("mnist1d", "data set (flat features)", choices=("mnist1d", "digits", "mnist5k"))
    assert params.data("digits").choices == ("digits", "mnist1d", "mnist5k")
    assert params.data("mnist1d", choices=("mnist1d", "digits")).choices == ("mnist1d", "digits")
    assert params.data("digits", help="classification set").help == "classification set"
    with pytest.raises(ConfigError, match="Valid choices: digits, mnist1d, mnist5k"):
        params.data("digits").check("data", "cifar")


def test_factories_carry_the_usual_ranges_and_take_overrides():
    assert params.n_train(1000) == Param(1000, "training examples", low=50, high=1_000_000)
    assert params.n_train(150, low=10, help="cross-validated").low == 10
    assert params.depth(2) == Param(2, "hidden layers", low=1, high=50)
    assert params.depth(5, high=200).high == 200
    assert params.width(256) == Param(256, "units per hidden layer", low=1, high=8192)
    assert params.epochs(100) == Param(100, "training epochs", low=1, high=10_000)
    assert params.batch_size(32) == Param(32, "examples per step", low=1, high=65536)
    assert params.learning_rate(1e-3) == Param(1e-3, "Adam learning rate", low=1e-6, high=1.0)
    assert params.learning_rate(0.03, high=10.0, help="learning rate") == Param(0.03, "learning rate", low=1e-6, high=10.0)
    with pytest.raises(ConfigError, match="out of range"):
        params.width(64, high=4096).check("width", 5000)


def test_options_hand_the_configuration_on():
    config = {"depth": 3, "width": 16, "seed": 7, "epochs": 20, "batch_size": 8, "learning_rate": 0.01, "other": 1}
    assert params.mlp_options(config) == {"depth": 3, "width": 16, "seed": 7}
    assert params.fit_options(config) == {"epochs": 20, "batch_size": 8, "learning_rate": 0.01, "seed": 7}
    assert params.fit_options({**config, "epochs": None}, epochs=5)["epochs"] == 5
