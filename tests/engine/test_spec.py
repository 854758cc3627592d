"""Configuration is validated data: defaults, profiles, --set overrides, grid axes."""

import pytest

from ablations.engine.spec import Ablation, ConfigError, Param, TrialContext, one_by_one

PARAMS = {
    "activation": Param("relu", choices=("relu", "sigmoid", "tanh")),
    "depth": Param(3, low=1, high=50),
    "rate": Param(0.1, low=0.0, high=1.0),
    "flag": Param(False),
}


def _ablation(**profiles):
    return Ablation(
        name="toy",
        claim="a claim",
        params=PARAMS,
        profiles=profiles or {"quick": {"depth": [2, 4], "seeds": 2}},
        run=lambda configs, context: [],
        verdict=lambda frame: None,
        figures=lambda frame, client: {},
    )


def test_profile_lists_become_grid_axes_and_seeds_an_axis():
    config = _ablation().resolve("quick")
    assert config.fixed == {"activation": "relu", "rate": 0.1, "flag": False}
    assert config.grid == {"depth": [2, 4], "seed": [0, 1]}
    assert config.axes == ["depth"]
    trials = config.trials()
    assert len(trials) == 4
    assert trials[0] == {"activation": "relu", "rate": 0.1, "flag": False, "depth": 2, "seed": 0}


def test_overrides_are_parsed_to_the_parameter_type():
    config = _ablation().resolve("quick", {"activation": "tanh,sigmoid", "rate": "0.5", "flag": "true", "depth": "7"}, seeds=3)
    assert config.grid == {"activation": ["tanh", "sigmoid"], "seed": [0, 1, 2]}
    assert config.fixed == {"depth": 7, "rate": 0.5, "flag": True}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"colour": "red"}, "Unknown key 'colour' for toy. Valid keys: activation, depth, flag, rate, seeds"),
        ({"activation": "swish"}, "Unknown activation 'swish'. Valid choices: relu, sigmoid, tanh"),
        ({"depth": "0"}, "depth=0 is out of range; valid: 1 to 50"),
        ({"depth": "three"}, "depth='three' is not a valid int"),
        ({"rate": "1.5"}, "rate=1.5 is out of range"),
        ({"flag": "maybe"}, "flag='maybe' is not a valid bool"),
        ({"seeds": "0"}, "seeds must be an integer from 1 to 100"),
        ({"depth": ""}, "depth needs a value"),
        ({"depth": "2,,4"}, "depth=2,,4 has an empty item"),
        ({"depth": "2,"}, "depth=2, has an empty item"),
        ({"rate": "nan"}, "rate=nan is not a number; valid: 0.0 to 1.0"),
        ({"rate": "0.5,NaN"}, "rate=nan is not a number"),
        ({"rate": "inf"}, "rate=inf is out of range; valid: 0.0 to 1.0"),
    ],
)
def test_bad_values_raise_one_line_config_errors(overrides, message):
    with pytest.raises(ConfigError) as error:
        _ablation().resolve("quick", overrides)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_nan_is_never_a_value_and_infinity_only_where_no_bound_is_declared():
    with pytest.raises(ConfigError, match="x=nan is not a number; valid: any float"):
        Param(1.0).check("x", float("nan"))
    with pytest.raises(ConfigError, match="x=inf is out of range; valid: finite numbers from 0.0"):
        Param(1.0, low=0.0).check("x", float("inf"))
    with pytest.raises(ConfigError, match="x=-inf is out of range; valid: finite numbers up to 2.0"):
        Param(1.0, high=2.0).check("x", float("-inf"))
    assert Param(1.0).check("x", float("inf")) == float("inf")


def test_unknown_profile_names_the_choices():
    with pytest.raises(ConfigError, match="Unknown profile 'fast'. Valid choices: smoke, quick, full"):
        _ablation().resolve("fast")


def test_profile_values_are_validated_too():
    with pytest.raises(ConfigError, match="depth=99 is out of range"):
        _ablation(quick={"depth": [2, 99]}).resolve("quick")


def test_one_by_one_runs_each_configuration_with_its_own_logger():
    logged = []

    def trial(config, log):
        """Squares x."""
        log({"x": config["x"]}, 0)
        return {"square": config["x"] ** 2}

    loggers = [lambda metrics, step, i=i: logged.append((i, metrics, step)) for i in range(3)]
    run = one_by_one(trial)
    assert run([{"x": 1}, {"x": 2}, {"x": 3}], TrialContext(loggers, "smoke")) == [{"square": 1}, {"square": 4}, {"square": 9}]
    assert logged == [(0, {"x": 1}, 0), (1, {"x": 2}, 0), (2, {"x": 3}, 0)]
    assert run.__doc__ == "Squares x."


# ------------------------------------------------------------------ open names, and values chosen when a profile is resolved


def test_an_open_prefix_admits_any_name_after_it_and_is_listed_among_the_choices():
    param = Param("a", choices=("a", "b"), open_prefix="ext:")
    assert param.parse("source", "ext:thing/config") == "ext:thing/config"
    with pytest.raises(ConfigError, match=r"^Unknown source 'c'\. Valid choices: a, b, ext:<name>\.$"):
        param.check("source", "c")
    with pytest.raises(ConfigError, match=r"^source='ext:' needs a name after 'ext:': source=ext:<name>\.$"):
        param.parse("source", "ext:")
    with pytest.raises(ConfigError, match=r"Valid choices: a, b\.$"):
        Param("a", choices=("a", "b")).check("source", "ext:thing")


class _Later:
    """A `ProfileChoice`: ``wanted`` when data may be downloaded, else ``fallback`` with a note."""

    def __init__(self, wanted, fallback):
        self.wanted, self.fallback = wanted, fallback

    def decide(self, *, download):
        return (self.wanted, None) if download else (self.fallback, f"{self.wanted} is away; using {self.fallback}.")


def test_profile_choices_are_decided_at_resolve_time_alone_or_in_a_grid_list(capsys):
    ablation = _ablation(full={"activation": _Later("tanh", "sigmoid")}, quick={"activation": ["relu", _Later("tanh", "sigmoid")]})
    assert ablation.resolve("full").fixed["activation"] == "sigmoid"
    assert capsys.readouterr().err == "toy full profile: tanh is away; using sigmoid.\n"
    assert ablation.resolve("quick").grid["activation"] == ["relu", "sigmoid"]
    assert capsys.readouterr().err == "toy quick profile: tanh is away; using sigmoid.\n"
    assert ablation.resolve("full", download=True).fixed["activation"] == "tanh"
    assert capsys.readouterr().err == ""


def test_a_profile_choice_is_validated_and_its_note_never_precedes_an_error(capsys):
    ablation = _ablation(full={"activation": _Later("tanh", "sigmoid")})
    assert ablation.resolve("full", {"activation": "relu"}).fixed["activation"] == "relu"
    with pytest.raises(ConfigError, match="depth=99 is out of range"):
        ablation.resolve("full", {"depth": "99"})
    assert capsys.readouterr().err == ""
    with pytest.raises(ConfigError, match="Unknown activation 'gelu'"):
        _ablation(full={"activation": _Later("tanh", "gelu")}).resolve("full")
    assert capsys.readouterr().err == ""
