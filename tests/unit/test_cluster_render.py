"""Rendering the Jobs: strict validation (kubernetes-validate), names, the Job contract, credentials."""

import configparser
import json
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

import runner.run.execute
from runner.__main__ import main
from runner.cluster.render import to_dict
from runner.config import ExperimentsFile, parse_overrides
from runner.layout import point_tag
from tests.support import ROOT
from tests.support.kube import CLUSTER, FULL_CLUSTER, rendered, write_config

MANIFESTS = sorted((ROOT / "manifests").glob("*.yaml"))
CRD_MANIFESTS = {"kueue.yaml"}  # Kueue's own kinds: kubernetes-validate has no schema for them (checked below)
RFC1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
K8S_VERSIONS = ["1.31", kubernetes_validate.latest_version()]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_rendered_job_and_manifest_validates_strictly(tmp_path, version):
    jobs = rendered(write_config(tmp_path, FULL_CLUSTER))[2]
    jobs += rendered(write_config(tmp_path, CLUSTER | {"profile": "tiny", "gpus": 0, "credentials_secret": ""}))[2]
    assert len(jobs) == 2 * len(ExperimentsFile(ROOT / "experiments.toml").experiments) * 10
    jobs += rendered(write_config(tmp_path, CLUSTER | {"queue_name": "clel-gpu"}), "baseline")[2]
    for job in jobs:
        assert kubernetes_validate.validate(to_dict(job), version, strict=True)
    for path in MANIFESTS:
        if path.name in CRD_MANIFESTS:
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            assert kubernetes_validate.validate(doc, version, strict=True), path.name
    assert {p.name for p in MANIFESTS} >= {
        *("namespace.yaml", "serviceaccount.yaml", "secret-example.yaml", "minio.yaml"),
        *("networkpolicy.yaml", "kueue.yaml"),
    }


def test_strict_validation_would_catch_a_misspelled_field(tmp_path):
    doc = to_dict(rendered(write_config(tmp_path, CLUSTER), "baseline")[2][0])
    doc["spec"]["backofLimit"] = doc["spec"].pop("backoffLimit")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)


def test_names_are_rfc1123_labels_unique_across_the_matrix_and_carry_the_hash(tmp_path):
    long_a, long_b = "an_unusually_long_experiment_name_about_the_encoder_" + "a", "an_unusually_long_" * 3 + "b"
    extra = f'\n[experiments.{long_a}]\ncrl.method = "byol"\n\n[experiments.{long_b}]\ncrl.method = "moco"\n'
    experiments, cluster, jobs = rendered(write_config(tmp_path, CLUSTER | {"seeds": [0, 1, 2, 10, 123456]}, extra))
    assert len(jobs) == len(experiments.experiments) * 5
    names = [job.metadata.name for job in jobs]
    assert len(set(names)) == len(names)
    for job in jobs:
        name, labels = job.metadata.name, job.metadata.labels
        assert len(name) <= 63 and RFC1123_LABEL.match(name), name
        assert name.endswith(f"-s{labels['clel/seed']}-{job.metadata.annotations['clel/config-hash']}")
        assert all(len(value) <= 63 for value in labels.values())
    assert [job_name for job_name in names if "unusually" in job_name][0].startswith("clel-an-unusually-long-")
    again = rendered(write_config(tmp_path, CLUSTER | {"seeds": [0, 1, 2, 10, 123456]}, extra))[2]
    assert [job.metadata.name for job in again] == names  # deterministic


def test_job_contract_for_a_preemptible_gpu_run(tmp_path):
    experiments, cluster, jobs = rendered(write_config(tmp_path, FULL_CLUSTER), "no_norm_split")
    assert [job.metadata.labels["clel/seed"] for job in jobs] == [str(seed) for seed in range(10)]
    cfg = experiments.resolve("no_norm_split", "paper", 1, {"train.iterations": 20000, "runtime.checkpoint_every": 500})
    job = to_dict(jobs[1])
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert job["metadata"]["annotations"]["clel/config-hash"] == cfg.config_hash
    assert cfg.point == {"train.iterations": 20000}  # runtime.checkpoint_every is no part of the run's identity
    assert job["metadata"]["labels"] == {
        "app.kubernetes.io/name": "clel-runner",
        "app.kubernetes.io/managed-by": "clel-runner",
        "clel/sweep": "ablation",
        "clel/profile": "paper",
        "clel/experiment": "no_norm_split",
        "clel/seed": "1",
        "clel/config-hash": cfg.config_hash,
        "clel/point": point_tag(cfg.point),
    }
    assert job["metadata"]["annotations"]["clel/point"] == '{"train.iterations": 20000}'
    assert (
        job["metadata"]["annotations"]["clel/run-id"] == cfg.run_id == f"no_norm_split-paper-{point_tag(cfg.point)}-s1"
    )
    assert job["spec"]["template"]["metadata"]["labels"]["clel/point"] == point_tag(cfg.point)
    assert job["metadata"]["name"] == f"clel-no-norm-split-paper-s1-{cfg.config_hash}"
    assert pod["restartPolicy"] == "Never"
    assert spec["podReplacementPolicy"] == "Failed"
    assert (spec["backoffLimit"], spec["ttlSecondsAfterFinished"], spec["activeDeadlineSeconds"]) == (3, 604800, 345600)
    assert pod["terminationGracePeriodSeconds"] >= 120
    rules = spec["podFailurePolicy"]["rules"]
    assert [rule["action"] for rule in rules] == ["Ignore", "Ignore", "FailJob"]
    assert rules[0]["onPodConditions"] == [{"type": "DisruptionTarget", "status": "True"}]
    # a run held by a killed pod's lease (exit 4) is retried without counting against backoffLimit
    assert rules[1]["onExitCodes"] == {"containerName": "worker", "operator": "In", "values": [4]}
    assert rules[2]["onExitCodes"] == {"containerName": "worker", "operator": "In", "values": [2, 3]}
    assert not any(137 in rule.get("onExitCodes", {}).get("values", []) for rule in rules)
    (container,) = pod["containers"]
    assert container["name"] == "worker" and container["image"] == "registry.example.com/clel-runner:0.1.0"
    assert container["command"] + container["args"] == [  # one --set per override, no --config: the image's file
        *("python", "-m", "runner", "worker", "--exp", "no_norm_split", "--profile", "paper", "--seed", "1"),
        *("--set", "train.iterations=20000", "--set", "runtime.checkpoint_every=500"),
        *("--store", "s3://clel-test/sweep", "--data-root", "/data", "--download"),
    ]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}} in pod["volumes"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "clel-datasets"}} in pod["volumes"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "clel-runner"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }
    assert container["imagePullPolicy"] == "Always"
    assert container["resources"]["limits"] == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"}
    writable = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"] if not mount.get("readOnly")}
    assert writable == {"/dev/shm": "dshm", "/data": "data", "/tmp": "tmp", "/home/runner": "home"}
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"] and {"name": "home", "emptyDir": {}} in pod["volumes"]
    assert job["metadata"]["annotations"]["checkov.io/skip1"].startswith("CKV_K8S_43=the image is pinned by a version")
    assert job["metadata"]["annotations"]["checkov.io/skip1"].count("=") == 1  # checkov splits at the one '='
    assert "checkov.io/skip1" not in job["spec"]["template"]["metadata"]["annotations"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
    assert pod["priorityClassName"] == "preemptible-training"
    assert pod["tolerations"][1] == {
        "effect": "NoExecute",
        "key": "spot",
        "operator": "Equal",
        "tolerationSeconds": 60,
        "value": "true",
    }
    env = {item["name"]: item for item in container["env"]}
    assert env["AWS_ENDPOINT_URL_S3"]["value"] == "http://minio.clel.svc.cluster.local:9000"
    assert env["CLEL_S3_ADDRESSING"]["value"] == "path"


class Resolved(Exception):
    """Raised by a stand-in for runner.run.execute.execute: carries the config the worker resolved."""


def test_the_worker_resolves_the_config_hash_its_job_was_named_for(tmp_path, monkeypatch):
    def capture(cfg, store_uri, **options):
        raise Resolved(cfg, store_uri)

    monkeypatch.setattr(runner.run.execute, "execute", capture)
    monkeypatch.chdir(tmp_path)
    for job in rendered(write_config(tmp_path, FULL_CLUSTER), "byol")[2]:
        args = job.spec.template.spec.containers[0].args
        assert job.spec.template.spec.containers[0].command == ["python", "-m", "runner"]
        with pytest.raises(Resolved) as resolved:
            main(args)  # as `python -m runner ARGS` in the pod: each repeated --set applies
        cfg, store_uri = resolved.value.args
        assert cfg.config_hash == job.metadata.annotations["clel/config-hash"]
        assert (cfg.run_id, store_uri) == (job.metadata.annotations["clel/run-id"], "s3://clel-test/sweep")
        assert (cfg.train.iterations, cfg.runtime.data_root, cfg.runtime.download) == (20000, "/data", True)
        assert cfg.runtime.checkpoint_every == 500 and cfg.point == {"train.iterations": 20000}


def test_cpu_profile_without_gpu_requests_none(tmp_path):
    jobs = rendered(write_config(tmp_path, CLUSTER | {"profile": "tiny", "gpus": 0}), "baseline")[2]
    resources = jobs[0].spec.template.spec.containers[0].resources
    assert "nvidia.com/gpu" not in resources.limits and "nvidia.com/gpu" not in resources.requests


def test_pod_identity_mounts_no_secret(tmp_path):
    job = to_dict(rendered(write_config(tmp_path, CLUSTER | {"credentials_secret": ""}), "baseline")[2][0])
    pod = job["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["dshm", "data", "tmp", "home"]
    assert "AWS_SHARED_CREDENTIALS_FILE" not in {item["name"] for item in pod["containers"][0]["env"]}


def test_an_image_pinned_by_digest_needs_no_checkov_skip(tmp_path):
    image = "registry.example.com/clel-runner@sha256:" + "0f" * 32
    job = rendered(write_config(tmp_path, CLUSTER | {"image": image}), "baseline")[2][0]
    assert job.spec.template.spec.containers[0].image == image
    assert not any(key.startswith("checkov.io/") for key in job.metadata.annotations)


def test_the_example_secret_holds_an_aws_shared_credentials_file():
    (secret,) = yaml.safe_load_all((ROOT / "manifests" / "secret-example.yaml").read_text())
    parser = configparser.ConfigParser()
    parser.read_string(secret["stringData"]["credentials"])
    assert parser.sections() == ["default"]
    assert dict(parser["default"]) == {
        "aws_access_key_id": secret["stringData"]["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": secret["stringData"]["AWS_SECRET_ACCESS_KEY"],
    }


def test_the_network_policy_selects_the_worker_pods_and_allows_dns_and_the_store_only(tmp_path):
    (policy,) = yaml.safe_load_all((ROOT / "manifests" / "networkpolicy.yaml").read_text())
    namespace = next(yaml.safe_load_all((ROOT / "manifests" / "namespace.yaml").read_text()))["metadata"]["name"]
    pod_labels = rendered(write_config(tmp_path, CLUSTER), "baseline")[2][0].spec.template.metadata.labels
    spec = policy["spec"]
    assert policy["metadata"]["namespace"] == namespace
    assert spec["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"] and spec["ingress"] == []
    ports = [sorted((p["protocol"], p["port"]) for p in rule["ports"]) for rule in spec["egress"]]
    assert ports == [[("TCP", 53), ("UDP", 53)], [("TCP", 9000)], [("TCP", 443)]]
    assert spec["egress"][1]["to"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "minio"}}}]
    assert "169.254.0.0/16" in spec["egress"][2]["to"][0]["ipBlock"]["except"]  # no cloud metadata endpoint


# --- Kueue ---------------------------------------------------------------------------------------------


def test_a_queue_name_suspends_the_jobs_and_labels_them_for_kueue(tmp_path):
    plain = rendered(write_config(tmp_path, CLUSTER), "mae")[2]
    queued = rendered(write_config(tmp_path, CLUSTER | {"queue_name": "clel-gpu"}), "mae")[2]
    for before, after in zip(plain, queued, strict=True):
        doc, reference = to_dict(after), to_dict(before)
        assert doc["spec"]["suspend"] is True and "suspend" not in reference["spec"]
        assert doc["metadata"]["labels"] == reference["metadata"]["labels"] | {"kueue.x-k8s.io/queue-name": "clel-gpu"}
        assert "kueue.x-k8s.io/queue-name" not in doc["spec"]["template"]["metadata"]["labels"]
        doc["spec"].pop("suspend")
        doc["metadata"]["labels"].pop("kueue.x-k8s.io/queue-name")
        assert doc == reference  # nothing else changes


def test_the_example_kueue_manifests_name_consistent_queues():
    docs = {doc["kind"]: doc for doc in yaml.safe_load_all((ROOT / "manifests" / "kueue.yaml").read_text())}
    assert sorted(docs) == ["ClusterQueue", "LocalQueue", "ResourceFlavor"]
    assert all(doc["apiVersion"] == "kueue.x-k8s.io/v1beta1" for doc in docs.values())
    namespace = next(yaml.safe_load_all((ROOT / "manifests" / "namespace.yaml").read_text()))["metadata"]["name"]
    local, cluster_queue, flavor = docs["LocalQueue"], docs["ClusterQueue"], docs["ResourceFlavor"]
    assert local["metadata"]["namespace"] == namespace
    assert local["spec"]["clusterQueue"] == cluster_queue["metadata"]["name"]
    assert cluster_queue["spec"]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": namespace}
    (group,) = cluster_queue["spec"]["resourceGroups"]
    (flavor_quota,) = group["flavors"]
    assert flavor_quota["name"] == flavor["metadata"]["name"]
    covered = ["cpu", "memory", "nvidia.com/gpu"]
    assert group["coveredResources"] == [r["name"] for r in flavor_quota["resources"]] == covered
    commented = re.search(r'^# queue_name = "([^"]+)"', (ROOT / "experiments.toml").read_text(), re.M)
    assert commented and commented.group(1) == local["metadata"]["name"]


# --- a grid: one Job per experiment x point x seed -----------------------------------------------------------

LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
LONG_EXPERIMENT = "an_experiment_with_a_rather_long_name_for_the_grid"  # 50 characters
GRID_SWEEP = """[sweep]
seeds = [0, 1]
grid = { "crl.simclr.projector_hidden" = [64, 128, 256, 1024], "energy.beta" = [0.01, 0.1] }
"""


def grid_config(tmp_path, cluster) -> Path:
    """The repository's experiments.toml with [cluster], a [sweep] grid and one experiment with a long name."""
    path = write_config(tmp_path, cluster, f"\n[experiments.{LONG_EXPERIMENT}]\nsgld.noise = 0.002\n")
    text = path.read_text()
    assert "[sweep]\nseeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n" in text
    path.write_text(text.replace("[sweep]\nseeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n", GRID_SWEEP))
    return path


GRID_CLUSTER = CLUSTER | {"profile": "tiny", "gpus": 0, "experiments": ["baseline", LONG_EXPERIMENT]}


def test_the_jobs_of_a_grid_validate_and_have_unique_names_and_valid_labels(tmp_path):
    assert len(LONG_EXPERIMENT) >= 40
    experiments, cluster, jobs = rendered(grid_config(tmp_path, GRID_CLUSTER))
    assert len(jobs) == 2 * 4 * 2 * 2  # experiments x projector_hidden x beta x seeds
    names = [job.metadata.name for job in jobs]
    run_ids = [job.metadata.annotations["clel/run-id"] for job in jobs]
    assert len(set(names)) == len(names) and len(set(run_ids)) == len(run_ids)
    for job in jobs:
        doc = to_dict(job)
        for version in K8S_VERSIONS:
            assert kubernetes_validate.validate(doc, version, strict=True)
        name = job.metadata.name
        assert len(name) <= 63 and RFC1123_LABEL.match(name), name
        for labels in (job.metadata.labels, job.spec.template.metadata.labels):
            for key, value in labels.items():
                assert len(value) <= 63 and LABEL_VALUE.fullmatch(value), (key, value)
    plain = [job for job in jobs if "clel/point" not in job.metadata.labels]
    # tiny's own projector_hidden (256) and the file's beta (0.01): no point, a plain run per experiment and seed
    assert sorted(job.metadata.annotations["clel/run-id"] for job in plain) == [
        f"{experiment}-tiny-s{seed}" for experiment in (LONG_EXPERIMENT, "baseline") for seed in (0, 1)
    ]
    assert any(job.metadata.name.startswith("clel-an-experiment-with-a-rather-long") for job in jobs)


def test_a_grid_job_names_its_point_and_its_worker_resolves_it(tmp_path, monkeypatch):
    path = grid_config(tmp_path, GRID_CLUSTER)
    experiments, cluster, jobs = rendered(path)
    for job in jobs:
        annotations, labels = job.metadata.annotations, job.metadata.labels
        run_id = annotations["clel/run-id"]
        experiment, seed = labels["clel/experiment"], int(labels["clel/seed"])
        args = job.spec.template.spec.containers[0].args
        sets = parse_overrides([args[i + 1] for i, token in enumerate(args) if token == "--set"])
        assert "--config" not in args and set(sets) == {"crl.simclr.projector_hidden", "energy.beta"}
        cfg = experiments.resolve(experiment, "tiny", seed, sets)
        assert (cfg.run_id, cfg.config_hash) == (run_id, annotations["clel/config-hash"])
        if cfg.point:
            assert labels["clel/point"] == job.spec.template.metadata.labels["clel/point"] == point_tag(cfg.point)
            assert annotations["clel/point"] == json.dumps(cfg.point, sort_keys=True)
            assert json.loads(annotations["clel/point"]).items() <= sets.items()
            assert run_id == f"{experiment}-tiny-{point_tag(cfg.point)}-s{seed}"
        else:
            assert "clel/point" not in annotations and run_id == f"{experiment}-tiny-s{seed}"

    def capture(cfg, store_uri, **options):
        raise Resolved(cfg, store_uri)

    monkeypatch.setattr(runner.run.execute, "execute", capture)
    monkeypatch.chdir(tmp_path)  # the worker reads experiments.toml from its working directory (the image's)
    for job in jobs[:: len(jobs) // 8]:
        with pytest.raises(Resolved) as resolved:
            main(job.spec.template.spec.containers[0].args)
        cfg, _ = resolved.value.args
        assert cfg.config_hash == job.metadata.annotations["clel/config-hash"]
        assert cfg.run_id == job.metadata.annotations["clel/run-id"]


def test_a_long_grid_value_keeps_labels_short(tmp_path):
    long_values = "[" + ", ".join(str(v) for v in (32, 48, 64, 96, 128, 192, 384, 512, 768, 1024)) + "]"
    weights = f'["{"w" * 200}.pth", ""]'
    sweep = (
        f'[sweep]\nseeds = [0]\ngrid = {{ "crl.simclr.projector_hidden" = {long_values}, '
        f'"eval.inception_weights" = {weights} }}\n'
    )
    path = write_config(tmp_path, GRID_CLUSTER, f"\n[experiments.{LONG_EXPERIMENT}]\nsgld.noise = 0.002\n")
    path.write_text(path.read_text().replace("[sweep]\nseeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n", sweep))
    jobs = rendered(path)[2]
    assert len(jobs) == 2 * 10 * 2
    assert len({job.metadata.name for job in jobs}) == len(jobs)
    for job in jobs:
        assert len(job.metadata.name) <= 63
        for value in job.metadata.labels.values():
            assert len(value) <= 63 and LABEL_VALUE.fullmatch(value), value
        assert kubernetes_validate.validate(to_dict(job), K8S_VERSIONS[-1], strict=True)
    assert any("w" * 200 in job.metadata.annotations.get("clel/point", "") for job in jobs)
