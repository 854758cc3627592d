"""The execution core that ``ablate run`` (grids) and ``ablate study`` share.

One module a job: `states` (how a trial ended, as typed values: `Fate`),
`lifecycle` (a trial's MLflow run and its Optuna state, written in an order a
kill can be repaired from), `liveness` (worker identity, heartbeats, stale
trials of dead workers), `pool` (worker processes that start together, pass on
Ctrl-C and die with their parent), `stopping` (Ctrl-C, SIGTERM and SIGHUP
as one stop) and `optuna_private` (the only use of
Optuna's private attributes). The grid wing (`grid`, `runner`,
`grid_workers`) and the study wing (`study`) import this package, never each
other.

Imports nothing here: a worker process imports `pool` before TensorFlow or
Optuna loads.
"""
