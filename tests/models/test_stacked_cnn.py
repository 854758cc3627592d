"""StackedCNN holds its members exactly as separate `build_cnn` models (training: tests/engine/train/test_members.py)."""

import numpy as np
import pytest

from models.cnn import build_cnn
from models.stacked_cnn import CONVOLUTIONS, StackedCNN

OPTIONS = {"conv_blocks": 2, "filters": 3, "dense_width": 8}


@pytest.mark.parametrize("convolution", CONVOLUTIONS)
@pytest.mark.parametrize("example", [(9, 7, 2), (15, 2), (15,)], ids=["images", "signals with channels", "signals"])
def test_each_member_computes_build_cnns_logits_from_its_seed(convolution, example):
    """Odd sizes (pooling pads), two channels, signals: each member's logits are those of build_cnn(seed=s)."""
    seeds = [0, 3, 7]
    stack = StackedCNN(example, 4, seeds=seeds, convolution=convolution, **OPTIONS)
    x = np.random.default_rng(1).normal(size=(len(seeds), 6, *example)).astype("float32")
    logits = stack.logits(x).numpy()
    assert logits.shape == (3, 6, 4)
    for m, seed in enumerate(seeds):
        model = build_cnn(example, 4, output_activation="linear", seed=seed, **OPTIONS)
        np.testing.assert_allclose(logits[m], model(x[m]).numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(stack.member_model(m)(x[m]).numpy(), logits[m], rtol=1e-5, atol=1e-5)


def test_a_subset_keeps_its_members_weights():
    stack = StackedCNN((8, 8, 1), 3, seeds=[0, 1, 2], **OPTIONS)
    stack.kernels[0].assign(stack.kernels[0] * 2.0)  # weights the seeds alone would not give
    subset = stack.subset([2, 0])
    x = np.random.default_rng(0).normal(size=(3, 5, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(subset.logits(x[[2, 0]]).numpy(), stack.logits(x).numpy()[[2, 0]], rtol=1e-6, atol=1e-6)
    assert subset.seeds == [2, 0] and subset.widths == [8, 8]


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="convolution must be one of grouped, patches"):
        StackedCNN((8, 8, 1), 3, seeds=[0], convolution="fft")
    with pytest.raises(ValueError, match="one seed per member"):
        StackedCNN((8, 8, 1), 3, seeds=[])
    with pytest.raises(ValueError, match=r"\(H, W, C\), \(L, C\) or \(L,\)"):
        StackedCNN((2, 8, 8, 1), 3, seeds=[0])
    with pytest.raises(ValueError, match="Received: filters=0"):
        StackedCNN((8, 8, 1), 3, seeds=[0], filters=0)
