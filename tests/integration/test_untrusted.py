"""Untrusted bytes and names (docs/SECURITY.md): crafted pickles as Inception weights and inside a checkpoint run
no code, keys with `..` planted in a bucket write nothing outside the run's temporary directory, unsafe
experiment and profile names and forged checkpoint fields are refused, and a password in the S3 endpoint URL
never reaches any output.

Every command runs in-process through runner.__main__.main; S3 is moto's server on loopback, reached through
boto3 exactly as in production.
"""

import io
import json
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
import torch

from tests.support import ROOT
from tests.support.cli import TINY_RUN_ID, assert_refused, make_workdir, run_main, snapshot, tiny_local

RUN = TINY_RUN_ID
INCEPTION = "--set", 'eval.fid_features="inception" eval.inception_weights="{}"'


class Plant:
    """Unpickling this creates a file: `open(path, 'w')` (the marker of code that ran)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return open, (self.path, "w")


def crafted(marker: Path, kind: str) -> bytes:
    """A pickle that creates `marker` when unpickled: a plain pickle, or inside torch.save's zip format."""
    if kind == "pickle":
        return pickle.dumps({"state_dict": Plant(marker)})
    buffer = io.BytesIO()
    torch.save({"step": 2, "ebm": Plant(marker)}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["pickle", "torch"])
def test_the_crafted_pickles_are_live(tmp_path, kind):
    """The payloads do run code when unpickled without restrictions: their absence later means something."""
    marker = tmp_path / "marker"
    payload = crafted(marker, kind)
    if kind == "pickle":
        pickle.loads(payload)  # noqa: S301 - the point of the test
    else:
        torch.load(io.BytesIO(payload), weights_only=False)
    assert marker.exists()


@pytest.fixture
def workdir(tmp_path, monkeypatch, finished_store) -> Path:
    """cwd with experiments.toml and a copy of the finished store as runs/; cache and temporary files in tmp_path."""
    work = make_workdir(tmp_path, monkeypatch, finished_store)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    return work


def cache_files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


# --- crafted pickles -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["pickle", "torch"])
def test_crafted_pickle_as_inception_weights_by_path(workdir, tmp_path, capsys, kind):
    marker = tmp_path / "marker"
    (workdir / "evil.pth").write_bytes(crafted(marker, kind))
    before = snapshot(workdir)
    flag, value = INCEPTION
    outcome = run_main(tiny_local("runs", flag, value.format("evil.pth")), capsys)
    assert_refused(outcome, "refusing to load it")
    assert not marker.exists()
    assert snapshot(workdir) == before
    assert cache_files(tmp_path) == []


@pytest.mark.parametrize("kind", ["pickle", "torch"])
def test_crafted_pickle_as_inception_weights_on_s3(workdir, tmp_path, capsys, s3_bucket, s3_endpoint, kind):
    marker = tmp_path / "marker"
    boto3.client("s3", endpoint_url=s3_endpoint).put_object(
        Bucket=s3_bucket, Key="weights/pt_inception.pth", Body=crafted(marker, kind)
    )
    before = snapshot(workdir)
    flag, value = INCEPTION
    outcome = run_main(tiny_local("runs", flag, value.format(f"s3://{s3_bucket}/weights/pt_inception.pth")), capsys)
    assert_refused(outcome, "refusing to load it")
    assert not marker.exists()
    assert snapshot(workdir) == before
    assert cache_files(tmp_path) == []  # the downloaded candidate is removed


def latest(store: Path) -> tuple[dict[str, Any], Path]:
    pointer = json.loads((store / RUN / "ckpt" / "LATEST").read_text())
    return pointer, store / pointer["key"]


def plant_checkpoint(store: Path, payload: bytes) -> None:
    """Replace the newest checkpoint's bytes and make LATEST vouch for them (its sha256), as a writer with store
    access could."""
    import hashlib

    pointer, path = latest(store)
    path.write_bytes(payload)
    pointer["sha256"] = hashlib.sha256(payload).hexdigest()
    (store / RUN / "ckpt" / "LATEST").write_text(json.dumps(pointer))


@pytest.mark.parametrize("kind", ["pickle", "torch"])
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")  # the crafted file's protocol, expected
def test_crafted_pickle_inside_a_checkpoint(workdir, tmp_path, capsys, kind):
    marker = tmp_path / "marker"
    plant_checkpoint(workdir / "runs", crafted(marker, kind))
    before = snapshot(workdir)
    assert_refused(run_main(tiny_local("runs", "--reeval"), capsys), "checkpoint refused")
    assert not marker.exists()
    assert snapshot(workdir) == before


# --- forged checkpoint fields --------------------------------------------------------------------------------


def _first_tensor_key(table: dict[str, Any]) -> str:
    return next(key for key, value in table.items() if isinstance(value, torch.Tensor) and value.dim() > 0)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def forge(state: dict[str, Any]) -> None:
        state[key] = value

    return forge


def _shrink_weight(state: dict[str, Any]) -> None:
    state["ebm"][_first_tensor_key(state["ebm"])] = torch.zeros(3)


def _optimizer_group(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def forge(state: dict[str, Any]) -> None:
        state["ebm_optimizer"]["param_groups"][0][key] = value

    return forge


def _optimizer_state_shape(state: dict[str, Any]) -> None:
    slot = next(iter(state["ebm_optimizer"]["state"].values()))
    slot["exp_avg"] = torch.zeros(7)


def _drop(key: str) -> Callable[[dict[str, Any]], Any]:
    def forge(state: dict[str, Any]) -> None:
        del state[key]

    return forge


FORGERIES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "step-1e9": _set("step", 10**9),
    "step-str": _set("step", "2"),
    "step-float": _set("step", 2.0),
    "step-bool": _set("step", True),
    "step-negative": _set("step", -1),
    "step-behind-its-schedule": _set("step", 1),
    "step-tensor": _set("step", torch.tensor(2)),
    "config-hash": _set("config_hash", "0" * 12),
    "config-hash-int": _set("config_hash", 12),
    "wall-s-nan": _set("wall_s", float("nan")),
    "wall-s-inf": _set("wall_s", float("inf")),
    "wall-s-str": _set("wall_s", "12"),
    "wall-s-negative": _set("wall_s", -1.0),
    "buffer-shape": lambda s: s.update(buffer=s["buffer"][:10]),
    "buffer-dtype": lambda s: s.update(buffer=s["buffer"].double()),
    "buffer-list": _set("buffer", [0.0, 1.0]),
    "extra-field": _set("evil", 1),
    "missing-field": _drop("rng"),
    "ebm-weight-shape": _shrink_weight,
    "ebm-not-a-table": _set("ebm", 5),
    "ebm-empty": _set("ebm", {}),
    "optimizer-lr-inf": _optimizer_group("lr", float("inf")),
    "optimizer-lr-str": _optimizer_group("lr", "0.1"),
    "optimizer-betas": _optimizer_group("betas", (0.5, 0.5)),
    "optimizer-params": _optimizer_group("params", [10**6]),
    "optimizer-state-shape": _optimizer_state_shape,
    "optimizer-not-a-table": _set("ebm_optimizer", [1, 2]),
    "schedule-epoch": lambda s: s["ebm_schedule"].update(last_epoch=10**9),
    "schedule-str": _set("ebm_schedule", "x"),
    "rng-str": _set("rng", "x"),
    "rng-wrong-tensor": lambda s: s.update(rng={"torch": torch.zeros(3)}),
}


def _state(store: Path) -> dict[str, Any]:
    return torch.load(latest(store)[1], map_location="cpu", weights_only=True)


@pytest.mark.parametrize("name", [*FORGERIES, "not-a-table", "not-a-checkpoint"])
def test_forged_checkpoint_fields_are_refused(workdir, capsys, name):
    store = workdir / "runs"
    if name == "not-a-table":
        state: Any = [1, 2, 3]
    elif name == "not-a-checkpoint":
        state = None
    else:
        state = _state(store)
        FORGERIES[name](state)
    buffer = io.BytesIO()
    if state is None:
        buffer.write(b"\x00" * 64)
    else:
        torch.save(state, buffer)
    plant_checkpoint(store, buffer.getvalue())
    before = snapshot(workdir)
    assert_refused(run_main(tiny_local("runs", "--reeval"), capsys), "checkpoint refused")
    assert snapshot(workdir) == before


@pytest.mark.parametrize("step", [10**9, 1, 0])
def test_a_latest_pointer_with_another_step_is_refused(workdir, capsys, step):
    """LATEST vouches for the checkpoint's bytes, but claims another step: a resume would train and then lose
    every save to the forged step (or move LATEST backwards)."""
    pointer_path = workdir / "runs" / RUN / "ckpt" / "LATEST"
    pointer = json.loads(pointer_path.read_text())
    pointer_path.write_text(json.dumps(pointer | {"step": step}))
    before = snapshot(workdir)
    assert_refused(run_main(tiny_local("runs", "--reeval"), capsys), "checkpoint refused: ckpt/LATEST gives step")
    assert snapshot(workdir) == before


def test_an_unforged_checkpoint_resumes(workdir, capsys):
    """The control: the same store resumes when the checkpoint is the runner's own (re-saved unchanged)."""
    store = workdir / "runs"
    buffer = io.BytesIO()
    torch.save(_state(store), buffer)
    plant_checkpoint(store, buffer.getvalue())
    code, _, err = run_main(tiny_local("runs", "--reeval"), capsys)
    assert code == 0, err
    assert f"resumed {RUN} at step 2" in err


# --- keys planted in a bucket --------------------------------------------------------------------------------

PLANTED = [
    f"runs/{RUN}/events.out.tfevents/../../x",
    f"runs/{RUN}/../../evil",
    f"runs/{RUN}/events.out.tfevents.1/../../../../evil2",
    f"runs/{RUN}/./metrics.jsonl",
    f"runs/{RUN}//events.out.tfevents.2",
    "runs/../../evil3",
]


def test_keys_with_dot_dot_planted_in_a_bucket_write_nothing_outside_the_run(
    workdir, tmp_path, capsys, s3_bucket, s3_endpoint, finished_store, request
):
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    for path in sorted(finished_store.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            client.put_object(
                Bucket=s3_bucket, Key=f"runs/{path.relative_to(finished_store).as_posix()}", Body=path.read_bytes()
            )
    uploaded = {item["Key"] for item in client.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    for key in PLANTED:
        try:
            client.put_object(Bucket=s3_bucket, Key=key, Body=b"planted\n")
        except client.exceptions.ClientError as err:  # SeaweedFS refuses keys with '.' or '..' segments at upload
            assert err.response["Error"]["Code"] == "InvalidRequest" and ("/../" in key or "/./" in key), key
    stored = {item["Key"] for item in client.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    planted = sorted(stored - uploaded)  # as the server keeps them (SeaweedFS folds '//' into '/')
    if s3_endpoint == request.getfixturevalue("moto_server"):
        assert planted == sorted(PLANTED)  # moto keeps every key as given, unnormalised
    before = snapshot(tmp_path, skip=("cache",))
    code, out, err = run_main(tiny_local(f"s3://{s3_bucket}/runs", "--reeval"), capsys)
    assert code == 0, err
    assert f"resumed {RUN} at step 2" in err and "Traceback" not in out + err
    assert snapshot(tmp_path, skip=("cache",)) == before  # the run's temporary directory is gone, nothing else new
    for name in ("x", "evil", "evil2", "evil3"):
        assert not list(tmp_path.parent.rglob(name)), name
    after = {item["Key"] for item in client.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert all(key.startswith(f"runs/{RUN}/") for key in after - stored)
    assert all(client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == b"planted\n" for key in planted)


# --- names ---------------------------------------------------------------------------------------------------

BAD_NAMES = ["a/b", "..", "../runs", "Baseline", "UPPER", "a.b", "-x", ""]


@pytest.mark.parametrize("table", ["experiments", "profiles"])
@pytest.mark.parametrize("name", BAD_NAMES)
def test_unsafe_names_in_the_config_are_refused(workdir, capsys, table, name):
    config = (ROOT / "experiments.toml").read_text() + f'\n[{table}."{name}"]\n'
    (workdir / "bad.toml").write_text(config)
    before = snapshot(workdir)
    for command in (["list"], ["show", "--exp", "baseline"], tiny_local("runs")):
        assert_refused(run_main([*command, "--config", "bad.toml"], capsys), "names are lowercase")
    assert snapshot(workdir) == before


@pytest.mark.parametrize("name", [n for n in BAD_NAMES if n])
def test_unsafe_names_on_the_command_line_are_refused(workdir, capsys, name):
    before = snapshot(workdir)
    assert_refused(run_main(_local_as(name, "exp"), capsys), "unknown experiment")
    assert_refused(run_main(_local_as(name, "profile"), capsys), "unknown profile")
    assert snapshot(workdir) == before


def _local_as(name: str, flag: str) -> list[str]:
    argv = tiny_local("runs")
    if flag == "exp":
        argv[argv.index("--exp") + 1] = name
    else:
        argv += ["--profile", name]
    return argv


# --- secrets -------------------------------------------------------------------------------------------------

PASSWORD = "s3cr@t-PaSs"


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"])
def test_a_password_in_the_endpoint_url_never_appears(workdir, capsys, monkeypatch, s3_server, variable):
    host = s3_server.removeprefix("http://")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    outputs = []
    for endpoint, argv in [
        (f"http://clel:{PASSWORD}@127.0.0.1:9", tiny_local("s3://bucket/runs")),
        (f"http://clel:{PASSWORD}@{host}", tiny_local("s3://no-such-bucket/runs")),
        (f"http://clel:{PASSWORD}@{host}", ["summarize", "--store", "s3://no-such-bucket", "--out", "x.csv"]),
        (
            f"http://clel:{PASSWORD}@{host}",
            [*tiny_local("runs"), *INCEPTION[:1], INCEPTION[1].format("s3://nob/w.pth")],
        ),
        (f"clel:{PASSWORD}@{host}", tiny_local("s3://bucket/runs")),
    ]:
        monkeypatch.setenv(variable, endpoint)
        code, out, err = run_main(argv, capsys)
        assert code == 2, err
        assert "Traceback" not in out + err
        outputs.append(out + err)
    text = "\n".join(outputs)
    assert "***@" in text
    for part in ("s3cr", "PaSs", PASSWORD):
        assert part not in text, text
