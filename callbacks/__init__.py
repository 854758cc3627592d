"""Keras callbacks that observe training: gradients, units, MLflow logging, Optuna pruning."""

from callbacks.mlflow_logger import MlflowEpochLogger
from callbacks.probe import ProbeStatistics
from callbacks.pruning import OptunaPruning
from callbacks.statistics import dead_fraction, saturated_fraction

__all__ = ["MlflowEpochLogger", "OptunaPruning", "ProbeStatistics", "dead_fraction", "saturated_fraction"]
