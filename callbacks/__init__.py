"""Keras callbacks that observe training: gradients, units, and MLflow logging."""

from callbacks.mlflow_logger import MlflowEpochLogger
from callbacks.probe import ProbeStatistics
from callbacks.statistics import dead_fraction, saturated_fraction

__all__ = ["MlflowEpochLogger", "ProbeStatistics", "dead_fraction", "saturated_fraction"]
