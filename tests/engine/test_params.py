"""The parameters several ablations share, and the keywords a trial makes of them."""

import pytest

from ablations.engine import params
from ablations.engine.data.registry import plugin_dataset_names
from ablations.engine.spec import Ablation, ConfigError, Param


def test_data_lists_the_default_first_then_the_other_flat_sets_then_any_tfds_set():
    expected = Param(
        "mnist1d", "data set (flat features)", choices=("mnist1d", "digits", "mnist5k"), open_prefix="tfds:", more_choices=plugin_dataset_names
    )
    assert params.data("mnist1d") == expected
    assert params.data("mnist1d").all_choices() == ("mnist1d", "digits", "mnist5k")  # no package here registers a set
    assert params.data("digits").choices == ("digits", "mnist1d", "mnist5k")
    assert params.data("mnist1d", choices=("mnist1d", "digits")).choices == ("mnist1d", "digits")
    assert params.data("digits", help="classification set").help == "classification set"
    with pytest.raises(ConfigError, match=r"Valid choices: digits, mnist1d, mnist5k, tfds:<name>\.$"):
        params.data("digits").check("data", "cifar")
    for name in ("tfds:mnist", "tfds:fashion_mnist", "tfds:cifar10", "tfds:glue/cola"):
        assert params.data("mnist1d", choices=("mnist1d", "digits")).parse("data", name) == name
    with pytest.raises(ConfigError, match=r"^data='tfds:' needs a name after 'tfds:': data=tfds:<name>\.$"):
        params.data("digits").parse("data", "tfds:")


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


# ------------------------------------------------------------------ PreferTfds: a full profile's TFDS set, where prepared


def _toy(profile_data) -> Ablation:
    """An ablation whose full profile's data is ``profile_data``."""
    return Ablation(
        name="toy",
        claim="a claim",
        params={"data": params.data("mnist1d")},
        profiles={"full": {"data": profile_data}},
        run=lambda configs, context: [],
        verdict=lambda frame: None,
        figures=lambda frame, client: {},
    )


def _prepare(data_dir, name="mnist", version="3.0.1"):
    """Lays out what ``tfds build`` leaves: ``<data_dir>/<name>/<version>/dataset_info.json``."""
    folder = data_dir / name / version
    folder.mkdir(parents=True)
    (folder / "dataset_info.json").write_text("{}")


@pytest.fixture
def tfds_dir(tmp_path, monkeypatch):
    """An empty TFDS data directory, as $TFDS_DATA_DIR."""
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    return tmp_path


PREFER = params.PreferTfds("tfds:mnist", "mnist5k")  # made before any test prepares a set: decided later
NOTE = "toy full profile: tfds:mnist is not prepared in {}; using the bundled mnist5k (rerun with --download to fetch it).\n"


def test_prefer_tfds_picks_the_tfds_set_where_it_is_prepared(tfds_dir, capsys):
    _prepare(tfds_dir)
    assert _toy(PREFER).resolve("full").fixed["data"] == "tfds:mnist"
    assert capsys.readouterr().err == ""


def test_prefer_tfds_falls_back_with_one_line_where_it_is_not(tfds_dir, capsys):
    _prepare(tfds_dir, version="incomplete.AB12CD_3.0.1")  # TFDS's name while it prepares: not finished
    assert _toy(PREFER).resolve("full").fixed["data"] == "mnist5k"
    assert capsys.readouterr().err == NOTE.format(tfds_dir)


def test_prefer_tfds_picks_the_tfds_set_that_download_will_fetch(tfds_dir, capsys):
    assert _toy(PREFER).resolve("full", download=True).fixed["data"] == "tfds:mnist"
    assert capsys.readouterr().err == ""


def test_prefer_tfds_works_in_a_grid_list_and_yields_to_set(tfds_dir, capsys):
    assert _toy(["digits", PREFER]).resolve("full").grid["data"] == ["digits", "mnist5k"]
    assert capsys.readouterr().err == NOTE.format(tfds_dir)
    assert _toy(PREFER).resolve("full", {"data": "digits"}).fixed["data"] == "digits"
    assert capsys.readouterr().err == ""  # overridden: nothing to announce


def test_prefer_tfds_names_the_default_folder_from_home(tmp_path, monkeypatch):
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert PREFER.decide(download=False) == (
        "mnist5k",
        "tfds:mnist is not prepared in ~/tensorflow_datasets; using the bundled mnist5k (rerun with --download to fetch it).",
    )
    _prepare(tmp_path / "tensorflow_datasets")
    assert PREFER.decide(download=False) == ("tfds:mnist", None)


def test_prefer_tfds_needs_a_tfds_name():
    for name in ("mnist", "tfds:"):
        with pytest.raises(ValueError, match="PreferTfds needs a 'tfds:<name>' set"):
            params.PreferTfds(name, "mnist5k")
