"""How trials train: the Keras path and the stacked path.

- `fit_trial` (`keras_fit`): one uncompiled `keras.Model`, an epoch as one
  compiled function, Keras callbacks around it; `score_split`, `epochs_to_reach`.
  No ablation trains through it any more: it is the reference every packed
  member is tested against, weight for weight, and the "one model per trial"
  side of the packing bench rows.
- `fit_stack` (`stacked`): every member of a `models.stacked.StackedMLP` in one
  graph, mini-batch or full batch, with per-member penalties and example
  weights; `train_pack` trains a pack of activation-ablation trials with it,
  `member_statistics` reads each member's losses, errors and weights.
- `fit_members` (`members`): trials packed as members of one stack (a
  `StackedMLP` or `models.stacked_cnn.StackedCNN`), each with its own data,
  batch order, optimizer, dropout masks, augmentation and early stopping, each
  trained as `fit_trial` trains it alone; returns a `TrialFit` per member.
- `fit_folds` (`folds`): k-fold cross-validation of many nets as one stack,
  each (net, fold) a member trained once.
- `optimizers`: the updates these loops apply, each member's on its slice of
  every stacked variable (`MemberOptimizer`, the fused Adam).

Importing this package loads TensorFlow: ablations import it inside their
functions, so that the command line validates its input first.
"""

from ablations.engine.train.folds import StackedFolds, fit_folds
from ablations.engine.train.keras_fit import TrialFit, TrialTraining, epochs_to_reach, fit_trial, score_split
from ablations.engine.train.members import (
    MemberOptimizer,
    MemberStopping,
    PackedFits,
    PackTraining,
    fit_members,
    pack_options,
    scoring_model,
    seeded_stack,
)
from ablations.engine.train.optimizers import OPTIMIZERS, make_optimizer
from ablations.engine.train.stacked import PackRun, StackedFit, StackRecording, StackTraining, fit_stack, member_statistics, train_pack

__all__ = [
    "MemberOptimizer",
    "MemberStopping",
    "OPTIMIZERS",
    "PackRun",
    "PackTraining",
    "PackedFits",
    "StackRecording",
    "StackTraining",
    "StackedFit",
    "StackedFolds",
    "TrialFit",
    "TrialTraining",
    "epochs_to_reach",
    "fit_folds",
    "fit_members",
    "fit_stack",
    "pack_options",
    "fit_trial",
    "make_optimizer",
    "member_statistics",
    "score_split",
    "scoring_model",
    "seeded_stack",
    "train_pack",
]
