"""The study's options, defined once: the command's arguments, the checks and the worker's copy agree."""

import pytest

from ablations.engine.cli import main
from ablations.engine.study import StudyOptions, option_table, study_options


def test_ablate_study_help_shows_every_option_with_its_help(capsys):
    assert main(["study", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for name, option in option_table().items():
        assert option.flag_of(name) in help_text
        assert " ".join(option.help.split()) in help_text


def test_defaults_are_resolved_and_the_json_a_worker_gets_round_trips():
    options = study_options(space="tiny", data="xor")
    assert (options.trials, options.pruner, options.study_name, options.progress) == (20, "median", "xor-tiny-val_error", True)
    assert study_options(space="tiny", data="xor", objective="both").pruner == "none"
    assert StudyOptions.from_json(options.to_json()) == options


def test_an_unknown_option_is_a_type_error_naming_the_valid_ones():
    with pytest.raises(TypeError, match=r"unknown option\(s\) colour; valid: trials, timeout, sampler"):
        study_options(colour="red")
