"""Failure as an endpoint (runner.metrics.sample_quality, runner.report.failures): precision, density and coverage
against prdc (the metric's reference code), the judge on made-up sample sets (digits, noise, colour noise, black),
and samples read back from a samples.png as runner.run.execute writes it."""

import io
import json

import numpy as np
import prdc
import pytest
import torch
import torch.nn.functional as F
from torchvision.utils import save_image

from runner.data import load_digits, to_unit_float
from runner.metrics.sample_quality import NEAREST_K, sample_quality
from runner.report.failures import SampleJudge, judge_runs, read_samples, tiles
from runner.result import RunResult
from runner.store import open_store
from tests.support.results import result


def test_precision_density_and_coverage_equal_prdcs(capsys):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 8))
    fake = np.concatenate([rng.normal(size=(40, 8)), rng.normal(3.0, 1.0, size=(24, 8))])
    expected = prdc.compute_prdc(real, fake, NEAREST_K)
    capsys.readouterr()  # prdc prints its sizes
    found = sample_quality(real, fake)
    assert found.precision == pytest.approx(expected["precision"])
    assert found.density == pytest.approx(expected["density"])
    assert found.coverage == pytest.approx(expected["coverage"])
    assert 0.3 < found.precision < 0.9  # neither trivial case: the check can fail


@pytest.fixture(scope="module")
def judge():
    return SampleJudge()


@pytest.fixture(scope="module")
def test_digits():
    return to_unit_float(load_digits(16).test[:64]).numpy()


def made_up_sets(test_digits: np.ndarray) -> dict[str, np.ndarray]:
    generator = torch.Generator().manual_seed(0)
    blobs = F.interpolate(torch.rand(64, 3, 4, 4, generator=generator), size=16, mode="bilinear")
    return {
        "digits": test_digits,
        "uniform noise": torch.rand(64, 3, 16, 16, generator=generator).numpy(),
        "colour noise": blobs.numpy(),
        "black": np.zeros((64, 3, 16, 16), dtype=np.float32),
    }


def test_the_judge_passes_digits_and_fails_noise_colour_noise_and_black(judge, test_digits):
    found = {name: judge.judge(samples) for name, samples in made_up_sets(test_digits).items()}
    assert found["digits"].precision > 0.9 and not found["digits"].failed
    for name in ("uniform noise", "colour noise", "black"):
        assert found[name].precision < 0.15 and found[name].failed, (name, found[name])


def png_of(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    save_image(torch.from_numpy(samples), buffer, format="png", nrow=8)  # as runner.run.execute saves samples.png
    return buffer.getvalue()


def test_samples_read_back_from_a_saved_grid_are_the_samples_to_8_bits(tmp_path, test_digits):
    store = open_store(str(tmp_path))
    store.write("baseline-tiny-s0/samples.png", png_of(test_digits[:60]))
    store.write("baseline-tiny-s0/config.json", json.dumps({"eval": {"sample_grid": 60}}).encode())
    read = read_samples(store, "baseline-tiny-s0")
    assert read.shape == (60, 3, 16, 16)
    assert np.abs(read - test_digits[:60]).max() <= 1 / 255 + 1e-6  # save_image rounds to uint8
    # without a readable config.json every cell of the grid is taken (the last row's blank cells included)
    store.write("baseline-tiny-s0/config.json", b"not json")
    assert read_samples(store, "baseline-tiny-s0").shape == (64, 3, 16, 16)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x89PNG\r\n\x1a\n broken", b"GIF89a", png_of(np.zeros((3, 3, 10, 12), dtype=np.float32))],
    ids=["empty", "truncated png", "not a png", "not square tiles"],
)
def test_a_samples_png_that_is_not_a_grid_is_not_judged(tmp_path, data):
    store = open_store(str(tmp_path))
    store.write("baseline-tiny-s0/samples.png", data)
    assert read_samples(store, "baseline-tiny-s0") is None


def test_tiles_refuse_a_layout_that_does_not_fit():
    assert tiles(np.zeros((20, 20, 3), dtype=np.uint8)) is None
    assert tiles(np.zeros((146, 146), dtype=np.uint8)) is None  # not RGB
    assert tiles(np.zeros((146, 146, 3), dtype=np.uint8), count=80) is None  # more than the grid holds


def test_judged_runs_are_the_digits_runs_with_readable_samples(tmp_path, test_digits):
    store = open_store(str(tmp_path))
    runs = [RunResult(**result("baseline", seed, 60.0, (0.7, 0.7), (1.0, 1.0))) for seed in range(3)]
    store.write("baseline-tiny-s0/samples.png", png_of(test_digits))
    store.write("baseline-tiny-s1/samples.png", png_of(made_up_sets(test_digits)["uniform noise"]))
    found = judge_runs(store, runs)  # s2 has no samples.png: not judged
    assert set(found) == {"baseline-tiny-s0", "baseline-tiny-s1"}
    assert not found["baseline-tiny-s0"].failed and found["baseline-tiny-s1"].failed
    inception = [r.model_copy(update={"fid_features": "inception"}) for r in runs]
    assert judge_runs(store, inception) == {}
