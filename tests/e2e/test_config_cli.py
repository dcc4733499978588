"""experiments.toml's errors from `python -m runner`: one line on stderr, exit code 2, nothing written."""

from pathlib import Path

import pytest

from runner.config import ExperimentsFile
from tests.support import ROOT
from tests.support.runs import run_cli


def _write_config(tmp_path: Path, edit) -> Path:
    path = tmp_path / "experiments.toml"
    path.write_text(edit((ROOT / "experiments.toml").read_text()))
    return path


@pytest.mark.slow  # starts python -m runner
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["local", "--exp", "baseline", "--set", "sgld.stepz=3"], "error: --set: sgld.stepz: unknown key"),
        (["local", "--exp", "nope"], "error: experiments.toml: unknown experiment 'nope'"),
        (["local", "--exp", "baseline", "--profile", "huge"], "error: experiments.toml: unknown profile 'huge'"),
        (["local", "--exp", "baseline", "--seed", "x"], "error: local: --seed x: input should be a valid integer"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args, expected, tmp_path):
    result = run_cli(*args, "--store", str(tmp_path / "store"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.stderr
    assert not (tmp_path / "store").exists()  # nothing half-written


@pytest.mark.slow  # starts python -m runner
def test_cli_typo_in_config_file_is_one_line_and_exit_2(tmp_path):
    path = _write_config(tmp_path, lambda t: t.replace("sgld.steps = 20", "sgld.stepz = 20"))
    result = run_cli("local", "--exp", "baseline", "--config", str(path), "--store", str(tmp_path / "s"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {path} [profiles.tiny]: sgld.stepz: unknown key (did you mean sgld.steps?)"
    )


@pytest.mark.slow  # starts python -m runner
def test_cli_list_shows_the_matrix():
    result = run_cli("list")
    assert result.returncode == 0
    experiments = ExperimentsFile(ROOT / "experiments.toml")
    for name in [*experiments.experiments, *experiments.profiles]:
        assert name in result.stdout
