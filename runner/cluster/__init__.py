"""Kubernetes Jobs for the ablation matrix: the [cluster] table, rendering, submission, status, logs.

Modules, one purpose each: config ([cluster] -> ClusterConfig), names (labels, annotations, selectors),
render (Jobs from runs; imports the kubernetes client), api (connect, KubeApi; imports the kubernetes client),
submit (the conflict rules), status (Job phases and the status table), job_progress (each Job's run read from the
store), logs. The commands are runner.cli.cluster; the executor is runner.launch.kubernetes.
Importing this package does not import the kubernetes client; `runner.cluster.render` and `.api` do.
"""

from runner.cluster.config import ClusterConfig, check_image, load_cluster

__all__ = ["ClusterConfig", "check_image", "load_cluster"]
