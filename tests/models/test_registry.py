import pytest

from models.registry import UnknownNameError, check_name, resolve


def test_resolve_returns_the_registered_object():
    assert resolve("optimizer", "adam", {"sgd": 1, "adam": 2}) == 2


def test_unknown_name_message_is_one_line_with_sorted_choices():
    with pytest.raises(UnknownNameError) as info:
        resolve("activation", "foo", {"relu": 0, "elu": 1, "gelu": 2})
    assert str(info.value) == "Unknown activation 'foo'. Valid choices: elu, gelu, relu"
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)
    assert info.value.choices == ("elu", "gelu", "relu")


def test_check_name_rejects_non_strings():
    with pytest.raises(UnknownNameError, match=r"Unknown initializer None\. Valid choices: a, b"):
        check_name("initializer", None, ("b", "a"))
    assert check_name("initializer", "a", ("b", "a")) == "a"
