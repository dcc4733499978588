"""The fake API server (tests/support/kube.py) refuses what a real one, and Kueue's webhook, refuse
(tests/support/kube_rules.py): Jobs that the strict JSON schemas of kubernetes-validate pass are answered 422 with
the server's Status and stored nowhere; an existing Job's template is immutable while the suspend flip is accepted;
and every Job the runner renders for the repository's experiments.toml passes, sent through the runner's own
KubeApi and the official client.
"""

import copy
import json
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from runner.cluster.api import KubeApi, connect
from runner.cluster.render import to_dict
from runner.errors import UserError
from tests.support import kube_rules
from tests.support.kube import CLUSTER, FULL_CLUSTER, rendered, write_config

THREE_SEEDS = {"seeds": [0, 1, 2]}  # every experiment, three seeds: the matrix small ([sweep] has ten)
SCHEMA_VERSIONS = ["1.31", kubernetes_validate.latest_version()]
SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation "
    "is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def base_job(tmp_path, cluster: dict[str, Any] = CLUSTER) -> dict[str, Any]:
    """The first baseline Job the runner renders, as the JSON the API server receives."""
    return to_dict(rendered(write_config(tmp_path, cluster), "baseline")[2][0])


def pod(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]


def _set_name(name: str) -> Callable[[dict[str, Any]], None]:
    def edit(job: dict[str, Any]) -> None:
        job["metadata"]["name"] = name

    return edit


def _job_label(key: str, value: str) -> Callable[[dict[str, Any]], None]:
    return lambda job: job["metadata"]["labels"].update({key: value})


def _pod_label(key: str, value: str) -> Callable[[dict[str, Any]], None]:
    return lambda job: job["spec"]["template"]["metadata"]["labels"].update({key: value})


def _first_rule(job: dict[str, Any]) -> dict[str, Any]:
    """The pod failure policy's first rule on exit codes (its index: `{rule}` in REFUSED's fields)."""
    return job["spec"]["podFailurePolicy"]["rules"][_first_rule_index(job)]


def _first_rule_index(job: dict[str, Any]) -> int:
    return next(i for i, rule in enumerate(job["spec"]["podFailurePolicy"]["rules"]) if "onExitCodes" in rule)


def _rename_the_container(name: str) -> Callable[[dict[str, Any]], None]:
    """The container renamed, and every pod failure rule that names it."""

    def edit(job: dict[str, Any]) -> None:
        pod(job)["containers"][0]["name"] = name
        for rule in job["spec"]["podFailurePolicy"]["rules"]:
            if "onExitCodes" in rule:
                rule["onExitCodes"]["containerName"] = name

    return edit


# name: (the edit, the field, the message after "<field>: ") - each one a real server's refusal
REFUSED: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    "name-not-a-subdomain": (_set_name("Abl_Exp1"), "metadata.name", f'Invalid value: "Abl_Exp1": {SUBDOMAIN}'),
    "name-over-63": (
        _set_name("clel-" + "a" * 59),
        "spec.template.labels",  # the job-name label the server puts on the pods
        f'Invalid value: "clel-{"a" * 59}": must be no more than 63 characters',
    ),
    "restart-policy-sometimes": (
        lambda job: pod(job).update(restartPolicy="Sometimes"),
        "spec.template.spec.restartPolicy",
        'Unsupported value: "Sometimes": supported values: "OnFailure", "Never"',
    ),
    "restart-policy-always": (
        lambda job: pod(job).update(restartPolicy="Always"),
        "spec.template.spec.restartPolicy",
        'Unsupported value: "Always": supported values: "OnFailure", "Never"',
    ),
    "restart-policy-on-failure-with-a-pod-failure-policy": (
        lambda job: pod(job).update(restartPolicy="OnFailure"),
        "spec.template.spec.restartPolicy",
        'Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy is specified',
    ),
    "label-value-64": (
        _job_label("clel/experiment", "x" * 64),
        "metadata.labels",
        f'Invalid value: "{"x" * 64}": must be no more than 63 characters',
    ),
    "label-value-chars": (
        _job_label("clel/experiment", "-moco"),
        "metadata.labels",
        f'Invalid value: "-moco": {LABEL_VALUE}',
    ),
    "label-key-two-slashes": (
        _job_label("clel/a/b", "x"),
        "metadata.labels",
        'Invalid value: "clel/a/b": a qualified name must consist of alphanumeric characters',
    ),
    "label-key-prefix": (
        _job_label("Clel/x", "x"),
        "metadata.labels",
        f'Invalid value: "Clel/x": prefix part {SUBDOMAIN}',
    ),
    "pod-label-value-64": (
        _pod_label("clel/experiment", "x" * 64),
        "spec.template.metadata.labels",
        f'Invalid value: "{"x" * 64}": must be no more than 63 characters',
    ),
    "container-name": (
        _rename_the_container("Worker"),
        "spec.template.spec.containers[0].name",
        'Invalid value: "Worker": a lowercase RFC 1123 label',
    ),
    "volume-mount-of-no-volume": (
        lambda job: pod(job)["containers"][0]["volumeMounts"][0].update(name="nope"),
        "spec.template.spec.containers[0].volumeMounts[0].name",
        'Not found: "nope"',
    ),
    "exit-codes-of-another-container": (
        lambda job: _first_rule(job)["onExitCodes"].update(containerName="sidecar"),
        "spec.podFailurePolicy.rules[{rule}].onExitCodes.containerName",
        'Invalid value: "sidecar": must be one of the container or initContainer names in the pod template',
    ),
    "exit-code-0-in": (
        lambda job: _first_rule(job)["onExitCodes"].update(values=[0, 2]),
        "spec.podFailurePolicy.rules[{rule}].onExitCodes.values[0]",
        "Invalid value: 0: must not be 0 for the In operator",
    ),
    "replacement-policy-with-a-pod-failure-policy": (
        lambda job: job["spec"].update(podReplacementPolicy="TerminatingOrFailed"),
        "spec.podReplacementPolicy",
        'Unsupported value: "TerminatingOrFailed": supported values: "Failed"',
    ),
}


@pytest.mark.parametrize("name", REFUSED)
def test_the_fake_refuses_what_the_strict_schemas_pass(tmp_path, kube, name):
    edit, field, message = REFUSED[name]
    job = base_job(tmp_path)
    field = field.format(rule=_first_rule_index(job))
    edit(job)
    for version in SCHEMA_VERSIONS:  # what the schema cannot see
        assert kubernetes_validate.validate(job, version, strict=True)
    batch = client.BatchV1Api(connect())
    for dry_run in ("All", None):
        with pytest.raises(ApiException) as info:
            batch.create_namespaced_job("clel", job, **({"dry_run": dry_run} if dry_run else {}))
        assert info.value.status == 422 and info.value.reason == "Unprocessable Entity"
        status = json.loads(info.value.body)
        assert (status["kind"], status["status"], status["reason"], status["code"]) == (
            "Status",
            "Failure",
            "Invalid",
            422,
        )
        assert status["details"]["kind"] == "Job" and status["details"]["group"] == "batch"
        assert status["details"]["name"] == job["metadata"]["name"]
        assert [(c["field"], c["message"][: len(message)]) for c in status["details"]["causes"]] == [(field, message)]
        assert status["message"].startswith(f'Job.batch "{job["metadata"]["name"]}" is invalid: {field}: {message}')
    assert kube.jobs == {}
    # the runner's own client: one line, the server's message in it
    api = KubeApi(connect(), "clel")
    with pytest.raises(UserError) as refused:
        api.create_job(job)
    line = str(refused.value)
    assert "\n" not in line
    assert line.startswith("Kubernetes API https://kube.test:6443: 422 Unprocessable Entity: Job.batch ")
    assert f"{field}: {message}" in line
    assert kube.jobs == {}


def test_the_unedited_job_is_created(tmp_path, kube):
    """The control of the refusals above: the same Job, unedited, is created."""
    job = base_job(tmp_path)
    created = client.BatchV1Api(connect()).create_namespaced_job("clel", job)
    assert created.metadata.name == job["metadata"]["name"]
    assert list(kube.jobs) == [job["metadata"]["name"]]


def test_a_job_in_another_namespace_than_the_request_is_a_bad_request(tmp_path, kube):
    job = base_job(tmp_path)
    job["metadata"]["namespace"] = "other"
    with pytest.raises(ApiException) as info:
        client.BatchV1Api(connect()).create_namespaced_job("clel", job)
    assert info.value.status == 400
    assert "does not match the namespace sent on the request" in json.loads(info.value.body)["message"]
    assert kube.jobs == {}


# --- updates ----------------------------------------------------------------------------------------------------


@pytest.fixture
def queued(tmp_path, kube) -> tuple[client.BatchV1Api, dict[str, Any]]:
    """A Job the runner renders with a Kueue queue (created suspended), created on the fake; (the API, the Job)."""
    job = base_job(tmp_path, CLUSTER | {"queue_name": "clel-gpu"})
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"][kube_rules.KUEUE_QUEUE_LABEL] == "clel-gpu"
    batch = client.BatchV1Api(connect())
    batch.create_namespaced_job("clel", job)
    return batch, job


def _refused_update(kube, call: Callable[[], Any], field: str, message: str, status: int = 422) -> None:
    """The update is refused with the status and the field's error; the stored Job is unchanged."""
    (name,) = kube.jobs
    before = copy.deepcopy(kube.jobs[name])
    with pytest.raises(ApiException) as info:
        call()
    assert info.value.status == status
    body = json.loads(info.value.body)
    assert f"{field}: " in body["message"] and message in body["message"], body["message"]
    if status == 422:
        assert [cause["field"] for cause in body["details"]["causes"]] == [field]
    assert kube.jobs[name] == before


def test_the_suspend_flip_is_accepted(queued, kube):
    batch, job = queued
    name = job["metadata"]["name"]
    for suspend in (False, True, False):  # Kueue admits, preempts, admits again
        updated = batch.patch_namespaced_job(name, "clel", {"spec": {"suspend": suspend}})
        assert updated.spec.suspend is suspend
        assert kube.jobs[name]["spec"]["suspend"] is suspend
    assert kube.sent("PATCH")[-1].content_type == "application/strategic-merge-patch+json"
    assert kube.jobs[name]["spec"]["template"] == job["spec"]["template"]


def test_a_template_change_is_refused_by_every_kind_of_update(queued, kube):
    batch, job = queued
    name = job["metadata"]["name"]
    batch.patch_namespaced_job(name, "clel", {"spec": {"suspend": False}})  # admitted: started
    kube.jobs[name]["status"] = {"startTime": "2025-01-01T00:00:00Z", "active": 1}
    changed = copy.deepcopy(kube.jobs[name])
    pod(changed)["containers"][0]["image"] = "registry.example.com/clel-runner:0.2.0"
    immutable = "field is immutable"
    _refused_update(kube, lambda: batch.replace_namespaced_job(name, "clel", changed), "spec.template", immutable)
    patch = {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": pod(changed)["containers"]}}}}
    _refused_update(kube, lambda: batch.patch_namespaced_job(name, "clel", patch), "spec.template", immutable)
    operation = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "x:0.2.0"}]
    _refused_update(kube, lambda: batch.patch_namespaced_job(name, "clel", operation), "spec.template", immutable)
    assert kube.sent("PATCH")[-1].content_type == "application/json-patch+json"
    labels = {"spec": {"template": {"metadata": {"labels": {"clel/extra": "x"}}}}}
    _refused_update(kube, lambda: batch.patch_namespaced_job(name, "clel", labels), "spec.template", immutable)
    node = {"spec": {"template": {"spec": {"nodeSelector": {"pool": "b"}}}}}  # started: no scheduling changes
    _refused_update(kube, lambda: batch.patch_namespaced_job(name, "clel", node), "spec.template", immutable)


def test_a_suspended_job_that_never_ran_takes_scheduling_directives_only(queued, kube):
    """What Kueue writes when it admits a Job (nodeSelector, tolerations of the flavor) is accepted; the
    container is not."""
    batch, job = queued
    name = job["metadata"]["name"]
    flavor = {"nodeSelector": {"cloud.google.com/gke-nodepool": "h100"}, "tolerations": [{"operator": "Exists"}]}
    batch.patch_namespaced_job(name, "clel", {"spec": {"template": {"spec": flavor}}})
    assert pod(kube.jobs[name])["nodeSelector"] == flavor["nodeSelector"]
    image = {"spec": {"template": {"spec": {"containers": [pod(job)["containers"][0] | {"image": "x:2"}]}}}}
    _refused_update(
        kube, lambda: batch.patch_namespaced_job(name, "clel", image), "spec.template", "field is immutable"
    )


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        (
            {
                "spec": {
                    "podFailurePolicy": {
                        "rules": [{"action": "Ignore", "onPodConditions": [{"type": "X", "status": "True"}]}]
                    }
                }
            },
            "spec.podFailurePolicy",
        ),
        ({"spec": {"completions": 2}}, "spec.completions"),
        ({"spec": {"selector": {"matchLabels": {"a": "b"}}}}, "spec.selector"),
        ({"metadata": {"name": "clel-other"}}, "metadata.name"),
    ],
    ids=["pod-failure-policy", "completions", "selector", "name"],
)
def test_the_other_immutable_fields(queued, kube, patch, field):
    batch, job = queued
    name = job["metadata"]["name"]
    _refused_update(kube, lambda: batch.patch_namespaced_job(name, "clel", patch), field, "field is immutable")


def test_the_fields_a_real_server_lets_change_are_accepted(queued, kube):
    batch, job = queued
    name = job["metadata"]["name"]
    for patch in (
        {"spec": {"activeDeadlineSeconds": 3600}},
        {"spec": {"backoffLimit": 5}},
        {"spec": {"parallelism": 1}},
    ):
        batch.patch_namespaced_job(name, "clel", patch)
    stored = kube.jobs[name]["spec"]
    assert (stored["activeDeadlineSeconds"], stored["backoffLimit"], stored["parallelism"]) == (3600, 5, 1)


def test_kueue_refuses_a_queue_name_that_is_no_local_queue_name_and_a_queue_change_while_running(
    tmp_path, queued, kube
):
    batch, job = queued
    name = job["metadata"]["name"]
    move = {"metadata": {"labels": {kube_rules.KUEUE_QUEUE_LABEL: "clel-cpu"}}}
    batch.patch_namespaced_job(name, "clel", move)  # suspended: it may move to another queue
    batch.patch_namespaced_job(name, "clel", {"spec": {"suspend": False}})
    back = {"metadata": {"labels": {kube_rules.KUEUE_QUEUE_LABEL: "clel-gpu"}}}
    denied = 'admission webhook "vjob.kb.io" denied the request: metadata.labels[kueue.x-k8s.io/queue-name]'
    _refused_update(kube, lambda: batch.patch_namespaced_job(name, "clel", back), denied, "field is immutable", 403)
    other = copy.deepcopy(job)
    other["metadata"]["name"] = "clel-other"
    other["metadata"]["labels"][kube_rules.KUEUE_QUEUE_LABEL] = "Team_A"  # a label value, no LocalQueue's name
    with pytest.raises(ApiException) as info:
        batch.create_namespaced_job("clel", other)
    assert info.value.status == 403
    assert f'{denied}: Invalid value: "Team_A": {SUBDOMAIN}' == json.loads(info.value.body)["message"]
    assert list(kube.jobs) == [name]


# --- every Job the runner renders ---------------------------------------------------------------------------------

CLUSTERS = {
    "cluster": CLUSTER | THREE_SEEDS,
    "full-cluster": FULL_CLUSTER | THREE_SEEDS,
    "queued": FULL_CLUSTER | THREE_SEEDS | {"queue_name": "clel-gpu"},
}


@pytest.mark.parametrize("profile", ["tiny", "paper"])
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_every_job_the_runner_renders_is_accepted(tmp_path, kube, profile, cluster):
    experiments, config, jobs = rendered(write_config(tmp_path, CLUSTERS[cluster] | {"profile": profile}))
    assert {job.metadata.labels["clel/experiment"] for job in jobs} == set(experiments.experiments)
    assert len(jobs) == len(experiments.experiments) * len(THREE_SEEDS["seeds"])
    api = KubeApi(connect(), "clel")
    for job in jobs:
        assert kube_rules.job_errors(to_dict(job)) == [], job.metadata.name
        assert api.create_job(job, dry_run=True) is not None
        assert api.create_job(job) is not None
    assert sorted(kube.jobs) == sorted(job.metadata.name for job in jobs)
    if config.queue_name:  # and Kueue's admission, then its preemption, of each
        batch = client.BatchV1Api(connect())
        for name in kube.jobs:
            for suspend in (False, True):
                batch.patch_namespaced_job(name, "clel", {"spec": {"suspend": suspend}})


@pytest.mark.parametrize("queue", ["Team_A", "GPU", "gpu_queue"])
def test_a_queue_name_kueue_would_deny_is_refused_before_rendering(tmp_path, kube, queue):
    """A label value that is no LocalQueue's name (a DNS-1123 subdomain) is refused by the config, not by Kueue
    at the first Job submitted."""
    assert kube_rules.label_value(queue) == []
    assert kube_rules.dns1123_subdomain(queue) != []
    with pytest.raises(UserError, match=rf"queue_name: '{queue}' is not a valid label value naming a LocalQueue"):
        rendered(write_config(tmp_path, CLUSTER | {"queue_name": queue}))
    assert kube.requests == []


def test_a_queue_name_with_dots_is_accepted(tmp_path, kube):
    (job, *_) = rendered(write_config(tmp_path, CLUSTER | {"queue_name": "team-a.gpu"}), "baseline")[2]
    assert KubeApi(connect(), "clel").create_job(job) is not None
