"""One run, start to finish, and the tools around one run.

`execute` (claim, train, evaluate, result.json), `loop` (steps, logs, checkpoints), `checkpoints` (an engine's
state to bytes and back), `evaluate` (FID, OOD AUROC, encoder health), `inputs` (checked before the store is
touched), `signals` (SIGTERM and Ctrl-C), `logs` (metrics.jsonl and TensorBoard), `status` (a run's progress read
from its store), `bars` (progress bars), `stored` (a stored run evaluated again), `bench` and `gpu_check`.
"""
