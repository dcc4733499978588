"""Bad input to `python -m runner` in its own process: exit code 2 and one line on stderr, nothing on stdout, nothing
changed; in the working directory of tests/integration/test_bad_input.py (the tests' minimal experiments.toml and a
store with a finished run of it)."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.bad_config import bad_input_workdir, write_files
from tests.support.cli import assert_refused, snapshot


@pytest.fixture
def workdir(tmp_path, monkeypatch, minimal_finished_store) -> Path:
    return bad_input_workdir(tmp_path, monkeypatch, minimal_finished_store)


SUBPROCESS_CASES = [
    "list --config bad.toml",
    "show --exp baseline --set seed=5",
    "local --exp baseline --iterations 2 --ood junk.npz",
    "summarize --out out.txt",
    "submit --dryrun",
    "bench --iterations 0",
    "sweep --exp baseline --seeds 0 --set runtime.ood_files=['junk.npz']",
]


@pytest.mark.slow  # a python process each (about 3 s): tests/integration/test_bad_input.py's in-process
# table covers the same inputs
@pytest.mark.parametrize("command", SUBPROCESS_CASES)
def test_the_real_entry_point_prints_one_line(command, workdir):
    """`python -m runner` in its own process: no warning or other output joins the one line (in-process runs
    cannot see what the interpreter itself prints)."""
    write_files(workdir, {"bad.toml": "[x\n", "junk.npz": b"PK\x03\x04 no archive"})
    before = snapshot(workdir)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
    process = subprocess.run(
        [sys.executable, "-m", "runner", *shlex.split(command)],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert_refused((process.returncode, process.stdout, process.stderr), "")
    assert process.stdout == ""
    assert snapshot(workdir) == before
