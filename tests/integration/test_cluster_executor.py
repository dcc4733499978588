"""KubernetesJobs (runner/launch/kubernetes.py): the third executor (submit the planner's runs; status and cancel
a selection of the sweep's Jobs), against the fake API server below the official client."""

from runner.cluster import api
from runner.cluster.config import load_cluster, plan_cluster_runs
from runner.config import ExperimentsFile
from runner.launch.executor import Selection
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


def test_status_gives_each_jobs_phase_and_progress_and_says_when_none_matches(tmp_path, kube):
    jobs, _ = executor_and_runs(tmp_path)
    seed_world(kube, write_config(tmp_path, THREE_SEEDS))  # baseline s0 running, s1 done, s2 waiting for its image
    table = jobs.status(Selection("baseline")).text.splitlines()
    phases = {row.split()[1]: row.split()[2] for row in table[1:]}
    assert table[0].split()[:3] == ["EXPERIMENT", "SEED", "PHASE"]
    assert phases == {"0": "Running", "1": "Succeeded", "2": "Pending"}  # "Pending (ImagePullBackOff)": two words
    assert "(ImagePullBackOff)" in table[3]
    assert len(jobs.status(Selection("baseline", 1)).text.splitlines()) == 2  # the header and seed 1
    none = jobs.status(Selection("moco"))
    assert none.text.startswith("no Jobs match ") and none.text.endswith(" in namespace clel") and not none.progress


def test_cancel_deletes_only_the_selected_jobs(tmp_path, kube):
    jobs, _ = executor_and_runs(tmp_path)
    seed_world(kube, write_config(tmp_path, THREE_SEEDS))
    cancelled = jobs.cancel(Selection("baseline", 1))
    deleted = [line.removeprefix("deleted ") for line in cancelled.lines]
    assert len(deleted) == 1 and deleted[0].startswith("clel-baseline-paper-s1-")
    assert [r.path.rsplit("/", 1)[-1] for r in kube.sent("DELETE", "")] == deleted
    assert cancelled.summary.startswith("1 Job(s) deleted (") and len(kube.jobs) == 2
