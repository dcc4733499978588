"""Where planned runs execute: the executors (in this process, in subprocesses here, as Kubernetes Jobs) and the
local sweep that plans, executes and summarizes."""
