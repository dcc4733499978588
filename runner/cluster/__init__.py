"""Kubernetes Jobs for the ablation matrix: the [cluster] table, rendering, submission, status, logs.

Modules, one purpose each: config ([cluster] -> ClusterConfig), names (labels, annotations, selectors),
render (Jobs from runs; imports the kubernetes client), api (connect, KubeApi; imports the kubernetes client),
submit, status, progress (a run's progress from the store), logs, and commands (the CLI's ClusterCommands).
Importing this package does not import the kubernetes client; `runner.cluster.render` and `.api` do.
"""

from runner.cluster.commands import ClusterCommands
from runner.cluster.config import ClusterConfig, check_image, load_cluster

__all__ = ["ClusterCommands", "ClusterConfig", "check_image", "load_cluster"]
