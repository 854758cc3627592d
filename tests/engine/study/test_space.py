"""The search space of `ablate study`: named spaces and files, validated before anything runs."""

import json

import optuna
import pytest

from ablations.engine.spec import ConfigError
from ablations.engine.study.space import SEARCH_KEYS, SETTING_KEYS, SPACES, load_space, parse_space


def test_every_named_space_is_valid_and_the_default_searches_all_ten_keys():
    for name in SPACES:
        space = load_space(name)
        assert set(space.fixed) | {d.name for d in space.dimensions} == {*SEARCH_KEYS, *SETTING_KEYS}
    assert {d.name for d in load_space("mlp").dimensions} == set(SEARCH_KEYS)


def test_suggest_gives_a_full_flat_config_from_a_fixed_trial():
    space = load_space("tiny")
    trial = optuna.trial.FixedTrial({"activation": "tanh", "depth": 2, "width": 16, "learning_rate": 0.01})
    config = space.suggest(trial)
    assert list(config) == [*SEARCH_KEYS, *SETTING_KEYS]
    assert config["activation"] == "tanh" and config["depth"] == 2 and config["learning_rate"] == 0.01
    assert config["batch_size"] == 64 and config["epochs"] == 2 and config["keep_prob"] == 1.0


def test_yaml_file_reads_1e_minus_4_as_a_number_and_round_trips(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("learning_rate: {low: 1e-4, high: 1e-1, log: true}\ndepth: {low: 1, high: 5, step: 2}\nl2: 1e-3\n")
    space = load_space(str(path))
    (depth, lr) = sorted(space.dimensions, key=lambda d: d.name)
    assert (lr.low, lr.high, lr.log) == (1e-4, 1e-1, True)
    assert depth.grid_values() == [1, 3, 5]
    assert space.fixed["l2"] == 1e-3
    assert parse_space(json.loads(json.dumps(space.as_data()))) == parse_space(space.as_data())


def test_grid_values_of_choices_and_stepped_float_ranges():
    space = parse_space({"activation": ["relu", "elu"], "keep_prob": {"low": 0.5, "high": 1.0, "step": 0.25}})
    assert space.grid() == {"activation": ["relu", "elu"], "keep_prob": [0.5, 0.75, 1.0]}


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"colour": ["red"]}, "Unknown space key 'colour'. Valid keys: activation, depth"),
        ({"activation": ["relu", "swishy"]}, "Valid choices: linear, sigmoid"),
        ({"learning_rate": {"low": 1e-4, "high": 5.0}}, "learning_rate=5.0 is out of range; valid: 1e-06 to 1.0"),
        ({"keep_prob": 0.0}, "keep_prob=0.0 is out of range"),
        ({"depth": {"low": 3, "high": 1}}, "needs low < high"),
        ({"depth": {"low": 1, "hi": 3}}, "Valid fields: low, high, step, log"),
        ({"l2": {"low": 0.0, "high": 0.1, "log": True}}, "A log range of l2 needs low > 0"),
        ({"activation": {"low": 1, "high": 2}}, "takes a list of choices"),
        ({"epochs": [1, 2]}, "cannot be searched"),
        ({"width": []}, "lists no choices"),
        ({"depth": 2.5}, "depth must be a int"),
        ([1, 2], "must map keys"),
    ],
)
def test_invalid_spaces_name_what_is_valid(space, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_space(space)


def test_grid_needs_steps_for_continuous_ranges():
    with pytest.raises(ConfigError, match="--sampler grid needs choices or a step for learning_rate"):
        load_space("tiny").grid()


def test_unknown_space_name_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="Unknown space 'huge'. Valid choices: mlp, small, tiny, or a"):
        load_space("huge")
    with pytest.raises(ConfigError, match="Cannot read space file"):
        load_space(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load_space(str(bad))
