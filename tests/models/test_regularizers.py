import keras
import numpy as np
import pytest

from models.regularizers import make_regularizer

W = np.array([[0.5, -1.0], [2.0, -0.25]], dtype="float32")


def test_zero_penalty_is_no_regularizer():
    assert make_regularizer() is None
    assert make_regularizer(0.0, 0) is None


def test_l2_is_lambda_times_sum_of_squares():
    value = float(make_regularizer(l2=0.16)(W))
    assert value == pytest.approx(0.16 * np.sum(W**2), rel=1e-6)


def test_l1_is_lambda_times_sum_of_absolute_values():
    value = float(make_regularizer(l1=0.02)(W))
    assert value == pytest.approx(0.02 * np.sum(np.abs(W)), rel=1e-6)


def test_l1_and_l2_add_up():
    value = float(make_regularizer(l1=0.1, l2=0.3)(W))
    assert value == pytest.approx(0.1 * np.abs(W).sum() + 0.3 * (W**2).sum(), rel=1e-6)
    assert isinstance(make_regularizer(l1=0.1), keras.regularizers.Regularizer)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"l1": -0.1}, r"`l1` must be a finite number >= 0\. Received: l1=-0\.1"),
        ({"l2": float("nan")}, r"Received: l2=nan"),
        ({"l2": float("inf")}, r"Received: l2=inf"),
        ({"l2": "0.1"}, r"`l2` must be a number >= 0\. Received: l2='0\.1'"),
        ({"l1": True}, r"Received: l1=True"),
    ],
)
def test_bad_penalties_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_regularizer(**kwargs)
