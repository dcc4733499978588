"""Launching runs: what a run is to a launcher (spec), which runs a sweep makes (plan), and where they run
(executors: in this process, in subprocesses here, or as Kubernetes Jobs via runner.cluster)."""
