"""result.json's model (runner.result): what run.py writes parses back unchanged; anything else is refused."""

import json
import math

import pytest
from pydantic import ValidationError

from runner.layout import point_tag
from runner.result import COLLAPSE_FRACTION, RunResult, is_collapsed


def fields(**changes) -> dict:
    """The values runner.run.execute.run_result hands over for a finished SimCLR run."""
    values = {
        "experiment": "baseline",
        "profile": "tiny",
        "seed": 1,
        "smoke": False,
        "point": {},  # a plain run: nothing differs from the experiment's own config
        "run_id": "baseline-tiny-s1",
        "config_hash": "9d9c4f029f2e",
        "iterations": 40,
        "wall_s": 12.34,
        "device": "cpu (2 threads)",
        "torch": "2.5.0",
        "crl": "simclr",
        "norm_direction_split": True,
        "use_generated_negatives": True,
        "fid": 181.25,
        "fid_features": "digits-cnn",
        "fid_init": 402.5,
        "fid_protocol": "64 samples, 1 round of the training sampler",
        "auroc": {
            "uniform_noise": {"marginal": 0.95, "joint": 0.99},
            "interpolation": {"marginal": 0.3, "joint": None},  # no joint score: stored as null
        },
        "encoder": {
            "probe_h": 0.986,
            "probe_z": 0.958,
            "mean_cos_z": 0.022,
            "untrained_probe_h": 0.758,
            "untrained_probe_z": 0.686,
            "untrained_mean_cos_z": 0.981,
            "pixel_probe": 0.958,
            "final_loss": 2.75,
            "chance_loss": 5.2523,
            "collapsed": False,
        },
        "notes": ["a note"],
    } | changes
    return values | {"collapsed": changes.get("collapsed", is_collapsed(values["fid"], values["fid_init"]))}


def written_by_run_py(value: dict) -> bytes:
    """result.json's bytes as runner.run.execute writes them today (json.dumps with indent 2 and sorted keys)."""
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


@pytest.mark.parametrize(
    "changes",
    [{}, {"use_generated_negatives": "n/a", "crl": "byol"}, {"fid": None, "fid_init": None, "notes": []}],
)
def test_round_trip_is_byte_identical_to_what_run_py_writes(changes):
    built = RunResult(**fields(**changes))
    data = built.to_json()
    assert data == written_by_run_py(fields(**changes))
    parsed = RunResult.from_json(data, "baseline-tiny-s1")
    assert parsed == built and parsed.to_json() == data
    assert parsed.model_dump() == fields(**changes)


def test_non_finite_metrics_are_written_and_read_back_as_they_are():
    built = RunResult(**fields(fid=float("nan"), fid_init=float("inf")))
    data = built.to_json()
    assert data == written_by_run_py(fields(fid=float("nan"), fid_init=float("inf")))
    assert b'"fid": NaN' in data and b'"fid_init": Infinity' in data
    parsed = RunResult.from_json(data)
    assert math.isnan(parsed.fid) and parsed.fid_init == math.inf


def test_json_integers_are_numbers_but_booleans_and_strings_are_not():
    integers = fields(wall_s=12, fid=181, auroc={"x": {"marginal": 1, "joint": 0}})
    parsed = RunResult.from_json(json.dumps(integers).encode())
    assert (parsed.wall_s, parsed.fid, parsed.auroc["x"].marginal) == (12.0, 181.0, 1.0)
    assert isinstance(parsed.wall_s, float) and isinstance(parsed.auroc["x"].joint, float)
    for bad in ({"fid": True}, {"fid": "181"}, {"wall_s": False}, {"iterations": 40.0}, {"seed": True}):
        with pytest.raises(ValueError, match=f"^{next(iter(bad))}: expected"):
            RunResult.from_json(json.dumps(fields(**bad)).encode())


def renamed(old: str, new: str) -> dict:
    return {new if key == old else key: value for key, value in fields().items()}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({key: value for key, value in fields().items() if key != "fid_protocol"}, "^missing keys fid_protocol "),
        (renamed("fid", "fid_score"), "^missing keys fid; unexpected keys fid_score "),
        (renamed("notes", "note"), "^missing keys notes; unexpected keys note "),
        (fields(extra=1), "^unexpected keys extra "),
        (fields(auroc={"svhn": {"marginal": 0.5}}), r"^auroc\.svhn\.joint: missing$"),
        (fields(auroc={"svhn": {"marginal": 0.5, "joint": 0.5, "mix": 0.5}}), r"^auroc\.svhn\.mix: unexpected key$"),
        (fields(auroc={"svhn": 0.5}), r"^auroc\.svhn: expected an object, got 0.5$"),
        (fields(use_generated_negatives="yes"), "^use_generated_negatives: expected a valid boolean or 'n/a'"),
        (fields(notes="none"), "^notes: expected a valid list"),
        (fields(notes=["ok", 3]), r"^notes\.1: expected a valid string, got 3$"),
        (fields(run_id="baseline-tiny-s2"), "^run_id 'baseline-tiny-s2' does not match 'baseline-tiny-s1'$"),
        ([fields()], "^expected a JSON object, got list$"),
    ],
)
def test_anything_but_the_model_is_refused_with_one_line(document, message):
    with pytest.raises(ValueError, match=message) as caught:
        RunResult.from_json(json.dumps(document).encode())
    assert "\n" not in str(caught.value)


def test_the_run_directory_must_match():
    data = RunResult(**fields()).to_json()
    assert RunResult.from_json(data, "baseline-tiny-s1").run_id == "baseline-tiny-s1"
    with pytest.raises(ValueError, match="does not match 'baseline-tiny-s1' and its directory 'baseline-tiny-s0'"):
        RunResult.from_json(data, "baseline-tiny-s0")


def test_the_writer_cannot_build_a_result_the_reader_would_refuse():
    with pytest.raises(ValidationError, match="does not match"):
        RunResult(**fields(seed=2))
    with pytest.raises(ValidationError, match="fid"):
        RunResult(**fields(fid="181.25"))
    with pytest.raises(ValidationError, match="Field required"):
        RunResult(**{key: value for key, value in fields().items() if key != "notes"})


def test_collapse_is_fid_above_half_of_fid_init_and_unknown_without_both():
    assert COLLAPSE_FRACTION == 0.5
    assert is_collapsed(181.25, 402.5) is False  # 0.45 x fid_init: weak, but it learned
    assert is_collapsed(201.26, 402.5) is True  # 0.50003 x fid_init: still near the noise
    assert is_collapsed(1416.1, 2100.0) is True  # a plain_ebm seed that never learned to sample
    assert is_collapsed(None, 402.5) is None and is_collapsed(10.0, None) is None
    assert is_collapsed(float("nan"), 402.5) is None


def test_a_result_written_before_the_flag_gets_it_from_its_fids():
    older = {key: value for key, value in fields(fid=300.0).items() if key != "collapsed"}
    assert RunResult.from_json(json.dumps(older).encode()).collapsed is True
    older = {key: value for key, value in fields(fid=None).items() if key != "collapsed"}
    assert RunResult.from_json(json.dumps(older).encode()).collapsed is None


def test_a_smoke_result_has_the_smoke_run_id_and_old_files_are_real_runs():
    """smoke = true goes with <experiment>-<profile>-smoke-s<seed>; a file written before the flag is a real run."""
    smoke = fields(smoke=True, run_id="baseline-tiny-smoke-s1")
    assert RunResult.from_json(written_by_run_py(smoke), "baseline-tiny-smoke-s1").smoke is True
    with pytest.raises(ValueError, match="does not match 'baseline-tiny-smoke-s1'"):
        RunResult.from_json(written_by_run_py(fields(smoke=True)))
    old = {key: value for key, value in fields().items() if key != "smoke"}
    assert RunResult.from_json(written_by_run_py(old)).smoke is False


def test_a_result_at_a_point_has_the_points_run_id_and_old_files_are_plain_runs():
    """point goes with <experiment>-<profile>-g<tag>-s<seed> (smoke-g<tag> for a smoke run); a file written before
    the field is a plain run."""
    point = {"energy.beta": 0.1, "train.iterations": 40}
    tag = point_tag(point)
    assert tag.startswith("g") and len(tag) == 9 and tag == point_tag(dict(reversed(point.items())))
    at_point = fields(point=point, run_id=f"baseline-tiny-{tag}-s1")
    parsed = RunResult.from_json(written_by_run_py(at_point), f"baseline-tiny-{tag}-s1")
    assert parsed.point == point and parsed.to_json() == written_by_run_py(at_point)
    smoke = fields(point=point, smoke=True, run_id=f"baseline-tiny-smoke-{tag}-s1")
    assert RunResult.from_json(written_by_run_py(smoke), f"baseline-tiny-smoke-{tag}-s1").point == point
    for wrong in (fields(point=point), fields(run_id=f"baseline-tiny-{tag}-s1"), fields(point={"energy.beta": 0.2})):
        with pytest.raises(ValueError, match="does not match"):
            RunResult.from_json(written_by_run_py(wrong))
    with pytest.raises(ValueError, match="its directory 'baseline-tiny-s1'"):
        RunResult.from_json(written_by_run_py(at_point), "baseline-tiny-s1")
    old = {key: value for key, value in fields().items() if key != "point"}
    assert RunResult.from_json(written_by_run_py(old), "baseline-tiny-s1").point == {}
