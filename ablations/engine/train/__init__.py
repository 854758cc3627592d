"""How trials train: the Keras path and the stacked path.

- `fit_trial` (`keras_fit`): one uncompiled `keras.Model`, an epoch as one
  compiled function, Keras callbacks around it; `score_split`, `epochs_to_reach`.
- `fit_stack` (`stacked`): every member of a `models.stacked.StackedMLP` in one
  graph, mini-batch or full batch, with per-member penalties and example
  weights; `train_pack` trains a pack of activation-ablation trials with it,
  `member_statistics` reads each member's losses, errors and weights.

Importing this package loads TensorFlow: ablations import it inside their
functions, so that the command line validates its input first.
"""

from ablations.engine.train.keras_fit import TrialFit, epochs_to_reach, fit_trial, make_optimizer, score_split
from ablations.engine.train.stacked import OPTIMIZERS, PackRun, StackedFit, fit_stack, member_statistics, train_pack

__all__ = [
    "OPTIMIZERS",
    "PackRun",
    "StackedFit",
    "TrialFit",
    "epochs_to_reach",
    "fit_stack",
    "fit_trial",
    "make_optimizer",
    "member_statistics",
    "score_split",
    "train_pack",
]
