"""The first hour: a smoke run marked as one, a finished run left alone (no second evaluation), a re-evaluation
that keeps what it replaces, and TensorBoard curves that survive a resume and a re-evaluation (read back with
TensorBoard's EventAccumulator)."""

import json
import signal
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import runner.run.execute
from runner.clel.engine import Engine
from runner.errors import EXIT_PREEMPTED
from tests.support import SMALL
from tests.support.cli import run_main
from tests.support.runs import run_id_of

LOGGED = "runtime.log_every=1 runtime.checkpoint_every=5"
RUN_ID = run_id_of(iterations=None, extra=LOGGED, smoke=True)  # baseline-tiny-smoke-g<point>-s0


def smoke_local(store: Path, *extra: str) -> list[str]:
    return ["local", "--exp", "baseline", "--smoke", "--store", str(store), "--set", f"{SMALL} {LOGGED}", *extra]


def logged_steps(run_dir: Path, tag: str) -> list[int]:
    """The steps of one scalar tag in a run directory's event files, as TensorBoard shows them."""
    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    return [event.step for event in accumulator.Scalars(tag)] if tag in accumulator.Tags()["scalars"] else []


@pytest.fixture
def interrupted_then_resumed(tmp_path, monkeypatch, capsys):
    """A smoke run stopped by Ctrl-C after step 5 (checkpointed), then resumed to its end (step 10)."""
    monkeypatch.setenv("CLEL_CACHE", str(tmp_path / "cache"))
    store = tmp_path / "runs"
    original, fired = Engine.train_step, []

    def stopping(self):
        metrics = original(self)
        if self.step == 5 and not fired:
            fired.append(True)
            signal.raise_signal(signal.SIGINT)  # handled at the end of the step: checkpoint, exit 75
        return metrics

    monkeypatch.setattr(Engine, "train_step", stopping)
    code, _, err = run_main(smoke_local(store), capsys)
    assert code == EXIT_PREEMPTED, err
    code, out, err = run_main(smoke_local(store), capsys)
    assert code == 0, err
    assert f"resumed {RUN_ID} at step 5" in err
    return store, out


def test_a_smoke_run_is_marked_in_its_run_id_and_its_result(interrupted_then_resumed):
    store, out = interrupted_then_resumed
    result = json.loads((store / RUN_ID / "result.json").read_text())
    assert (result["run_id"], result["smoke"], result["iterations"]) == (RUN_ID, True, 10)
    assert "(smoke run: not a result)" in out.splitlines()[0]
    assert RUN_ID.startswith("baseline-tiny-smoke-g")
    assert not (store / run_id_of(iterations=None, extra=LOGGED)).exists()  # the same settings as a real run


def test_every_logged_step_survives_a_resume_and_a_reevaluation(interrupted_then_resumed, capsys):
    store, _ = interrupted_then_resumed
    run_dir = store / RUN_ID
    assert logged_steps(run_dir, "train/loss") == list(range(1, 11))
    assert logged_steps(run_dir, "eval/fid") == [10]
    code, _, err = run_main(smoke_local(store, "--reeval"), capsys)
    assert code == 0, err
    assert logged_steps(run_dir, "train/loss") == list(range(1, 11))
    assert logged_steps(run_dir, "train/energy_data") == list(range(1, 11))
    assert logged_steps(run_dir, "eval/fid") == [10, 10]


def test_a_finished_run_is_shown_not_evaluated_again(interrupted_then_resumed, monkeypatch, capsys):
    store, first_out = interrupted_then_resumed
    run_dir = store / RUN_ID
    before = {path.name: path.read_bytes() for path in run_dir.iterdir() if path.is_file()}

    def no_evaluation(*args, **kwargs):
        raise AssertionError("a finished run was evaluated again")

    monkeypatch.setattr(runner.run.execute, "evaluate", no_evaluation)
    code, out, err = run_main(smoke_local(store), capsys)
    assert code == 0, err
    assert f"{RUN_ID}: already finished" in err and out == first_out
    assert {path.name: path.read_bytes() for path in run_dir.iterdir() if path.is_file()} == before


def test_a_reevaluation_keeps_the_result_it_replaces(interrupted_then_resumed, capsys):
    store, _ = interrupted_then_resumed
    run_dir = store / RUN_ID
    first = (run_dir / "result.json").read_bytes()
    code, _, err = run_main(smoke_local(store, "--reeval"), capsys)
    assert code == 0, err
    (kept,) = (run_dir / "evals").iterdir()
    assert (kept / "result.json").read_bytes() == first
    assert (kept / "samples.png").is_file()
    again = json.loads((run_dir / "result.json").read_text())
    assert again == json.loads(first) | {"wall_s": again["wall_s"]}  # the same checkpoint gives the same numbers
