"""KubernetesJobs (runner/launch/kubernetes.py): the third executor, over the planner's runs, against the fake API
server below the official client."""

from runner.cluster import api
from runner.cluster.config import load_cluster, plan_cluster_runs
from runner.config import ExperimentsFile
from runner.launch.kubernetes import KubernetesJobs
from tests.support.kube import CLUSTER, seed_world, write_config

THREE_SEEDS = CLUSTER | {"seeds": [0, 1, 2]}  # the counts below are for three seeds ([sweep] has ten)


def executor_and_runs(tmp_path, exp: str | None = "baseline"):
    experiments = ExperimentsFile(write_config(tmp_path, THREE_SEEDS))
    cluster = load_cluster(experiments)
    runs = plan_cluster_runs(experiments, cluster, exp)
    return KubernetesJobs(api.KubeApi(api.connect(), cluster.namespace), cluster), runs


def test_submit_creates_one_job_per_planned_run_and_then_none(tmp_path, kube):
    jobs, runs = executor_and_runs(tmp_path)
    outcomes = jobs.submit(runs)
    assert [o.action for o in outcomes] == ["created"] * len(runs)
    assert [o.run_id for o in outcomes] == [run.run_id for run in runs]
    assert [o.action for o in jobs.submit(runs)] == ["exists"] * len(runs)
    assert len(kube.sent("POST", "jobs")) == len(runs)


def test_status_gives_each_runs_job_phase_and_a_run_without_a_job(tmp_path, kube):
    jobs, runs = executor_and_runs(tmp_path)
    seed_world(kube, write_config(tmp_path, THREE_SEEDS))  # baseline s0 running, s1 done, s2 waiting for its image
    states = {state.run_id: state for state in jobs.status(runs)}
    assert states["baseline-paper-s0"].phase == "Running"
    assert states["baseline-paper-s1"].phase == "Succeeded"
    assert states["baseline-paper-s2"].phase == "Pending (ImagePullBackOff)"
    _, moco = executor_and_runs(tmp_path, "moco")
    assert {state.phase for state in jobs.status(moco)} == {"no Job"}


def test_cancel_deletes_only_the_runs_jobs(tmp_path, kube):
    jobs, runs = executor_and_runs(tmp_path)
    seed_world(kube, write_config(tmp_path, THREE_SEEDS))
    deleted = jobs.cancel(runs[:2])
    assert len(deleted) == 2 and all(name.startswith("clel-baseline-paper-s") for name in deleted)
    assert [r.path.rsplit("/", 1)[-1] for r in kube.sent("DELETE", "")] == deleted
    assert len(kube.jobs) == 1
