"""The [cluster] table: every bad key or value is one line naming it, before anything is rendered."""

import pytest
from kube_support import CLUSTER, rendered, run_cli, write_config

from runner.cluster import check_image
from runner.errors import UserError


@pytest.mark.slow  # a python process each: the real entry point on a bad [cluster]
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"image": None}, "image: missing"),
        ({"gpus": 0}, "gpus = 0, but profile 'paper'"),
        ({"namespace": "CLEL_runs"}, "namespace: 'CLEL_runs' is not a valid namespace name"),
        ({"image": "registry.example.com/clel-runner:latest"}, "image: 'registry.example.com/clel-runner:latest'"),
    ],
    ids=["missing-image", "no-gpu-for-paper", "bad-namespace", "latest-tag"],
)
def test_bad_cluster_section_exits_2_with_one_line(tmp_path, change, expected):
    cluster = {k: v for k, v in (CLUSTER | change).items() if v is not None}
    result = run_cli("render", "--config", str(write_config(tmp_path, cluster)))
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {tmp_path / 'experiments.toml'} [cluster]: ")
    assert expected in result.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"image": "registry.example.com:5000/clel-runner"}, "has no tag"),
        ({"image": "clel-runner@sha256:1234"}, "expected name@sha256"),
        ({"backofLimit": 3}, "backofLimit: unknown key"),
        ({"credentials_secret": "S3_creds"}, "credentials_secret: 'S3_creds' is not a valid object name"),
        ({"sweep": "ablation study"}, "sweep: 'ablation study' is not a valid label value"),
        ({"priority_class": "High"}, "priority_class"),
        ({"node_selector": {"gpu": "a b"}}, "node_selector: 'a b' is not a valid label value"),
        ({"store": "/data/runs"}, "a Job needs an S3 store"),
        ({"memory": "32GB"}, "memory: '32GB' is not a valid quantity"),
        ({"gpus": -1}, "gpus: input should be greater than or equal to 0"),
        ({"profile": "huge"}, "unknown profile 'huge'"),
        ({"experiments": ["baseline", "nope"]}, "unknown experiment 'nope'"),
        ({"tolerations": [{"key": "gpu", "operator": "Maybe"}]}, "tolerations.0.operator"),
        ({"overrides": ["train.iterations=many"]}, "train.iterations"),
    ],
)
def test_bad_cluster_values_are_user_errors(tmp_path, change, expected):
    path = write_config(tmp_path, CLUSTER | change)
    with pytest.raises(UserError) as err:
        rendered(path)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_pinned_images_pass():
    digest = "sha256:" + "ab" * 32
    for image in ("clel-runner:3f2a9c1b", "localhost:5000/team/clel-runner:v1.2-cpu", f"ghcr.io/x/clel@{digest}"):
        assert check_image(image) == image


def test_no_cluster_table_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"no \[cluster\] table"):
        rendered(write_config(tmp_path, None))


@pytest.mark.parametrize("queue", ["clel gpu", "-gpu", "q" * 64, "gpu/queue"])
def test_a_queue_name_must_be_a_label_value(tmp_path, queue):
    with pytest.raises(UserError, match=r"queue_name: .* is not a valid label value"):
        rendered(write_config(tmp_path, CLUSTER | {"queue_name": queue}))
