"""The [cluster] table: every bad key or value is one line naming it, before anything is rendered."""

import pytest

from runner.cluster import check_image
from runner.errors import UserError
from tests.support.kube import CLUSTER, rendered, write_config


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
