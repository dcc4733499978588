"""Launching runs (runner.launch): a RunSpec's argv resolves exactly its run in another process; a run's lock names
its process while it holds it; one table of exit codes. `status --local` and `cancel --local` on a store with
running runs: tests/integration/test_local.py."""

import fcntl
import os

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

import runner.run.execute
from runner.config import DEFAULT_CONFIG_FILE, ExperimentsFile, parse_overrides
from runner.errors import (
    EXIT_DIVERGED,
    EXIT_INTERRUPTED,
    EXIT_PREEMPTED,
    EXIT_USER_ERROR,
    BadKey,
    Diverged,
    PointerConflict,
    Preempted,
    RunHeld,
    UserError,
    exit_code_of,
)
from runner.launch import local
from runner.layout import LOCK_FILE
from runner.plan.spec import RunSpec, toml_value
from runner.store import RunStore, open_store
from tests.support import ROOT, SMALL, SMALL_SETTINGS

# --- RunSpec.to_argv round-trips -----------------------------------------------------------------------------

# values of every kind a --set carries, each valid for the baseline tiny run (so the configs can be compared)
OVERRIDES = {
    "energy.beta": 0.1,  # a float
    "train.ebm_optimizer.lr": 1e-05,  # a float written with an exponent
    "train.ema_half_life_samples": 2000.5,
    "sgld.noise": 0.0,
    "sgld.steps": 7,  # an int
    "sgld.augment": False,  # a bool
    "crl.use_generated_negatives": True,
    "ebm.channels": [8, 16],  # a list of ints
    "train.ebm_optimizer.betas": [0.5, 0.999],  # a list of floats
    "data.ood": ["inverted", "uniform_noise"],  # a list of strings
    "eval.inception_weights": 'weights dir/it\'s "quoted" = x\\y é 😀.pth',  # spaces, quotes, =, \, non-ASCII
    "runtime.data_root": "/data/a b/'c' \"d\"",  # a runtime string with spaces and quotes
    "runtime.ood_files": ["one file.npz", 'two "q".npz'],  # a list of strings with spaces and quotes
}


def set_items(argv: list[str]) -> list[str]:
    """The values of every --set flag of an argv."""
    return [argv[i + 1] for i, token in enumerate(argv) if token == "--set"]


class Resolved(Exception):
    """Raised by a stand-in for runner.run.execute.execute: carries the config `local` resolved."""


@pytest.fixture
def resolved_by_local(monkeypatch):
    """`python -m runner local ARGV` in this process up to the run: the RunConfig it resolved."""

    def capture(cfg, store_uri, **options):
        raise Resolved(cfg)

    monkeypatch.setattr(runner.run.execute, "execute", capture)

    def resolve(argv: list[str]):
        from runner.__main__ import main

        with pytest.raises(Resolved) as resolved:
            main(["local", *argv, "--store", "unused"])
        return resolved.value.args[0]

    return resolve


@pytest.mark.parametrize("key", list(OVERRIDES))
def test_each_value_survives_to_argv_and_parse_overrides(key):
    spec = RunSpec.of("baseline", "tiny", 0, {key: OVERRIDES[key]})
    (item,) = set_items(spec.to_argv())
    assert item.startswith(f"{key}=") and item.isascii()
    back = parse_overrides([item])
    assert back == {key: OVERRIDES[key]}
    assert type(back[key]) is type(OVERRIDES[key])
    if isinstance(back[key], list):
        assert [type(v) for v in back[key]] == [type(v) for v in OVERRIDES[key]]


def test_special_floats_and_tables_are_toml():
    for value in (float("inf"), float("-inf"), -0.0, 1e-300, 123456789012345678):
        assert parse_overrides([f"k={toml_value(value)}"])["k"] == value
    assert parse_overrides([f"k={toml_value(float('nan'))}"])["k"] != parse_overrides(["k=0.0"])["k"]  # nan
    table = {"name": "a b", "betas": [0.0, 0.9], "nested": {"é": "😀"}}
    assert parse_overrides([f"k={toml_value(table)}"])["k"] == table


@pytest.mark.parametrize("smoke", [False, True])
def test_local_resolves_the_argv_of_a_spec_to_its_config(resolved_by_local, monkeypatch, smoke):
    monkeypatch.chdir(ROOT)  # the default experiments.toml
    spec = RunSpec.of("baseline", "tiny", 2, OVERRIDES | SMALL_SETTINGS, smoke)
    argv = spec.to_argv()
    assert "--config" not in argv and ("--smoke" in argv) is smoke
    assert parse_overrides(set_items(argv)) == dict(spec.overrides)
    expected = spec.resolve()
    cfg = resolved_by_local(argv)
    assert cfg.config_hash == expected.config_hash and cfg.run_id == expected.run_id
    assert cfg.model_dump() == expected.model_dump()  # runtime values too
    assert cfg.point["energy.beta"] == 0.1 and "runtime.data_root" not in cfg.point
    assert cfg.run_id.startswith("baseline-tiny-smoke-g" if smoke else "baseline-tiny-g")


def test_a_spec_of_another_config_file_passes_it_and_more_overrides_apply_last(resolved_by_local, tmp_path):
    config = tmp_path / "my experiments.toml"
    config.write_text((ROOT / "experiments.toml").read_text())
    spec = RunSpec.of("moco", "tiny", 1, {"sgld.steps": 3}, config_file=str(config))
    threaded = spec.with_overrides(runtime__threads=2, runtime__progress=False, sgld__steps=4)
    argv = threaded.to_argv()
    assert argv[argv.index("--config") + 1] == str(config)
    cfg = resolved_by_local(argv)
    assert cfg.model_dump() == threaded.resolve().model_dump()
    assert (cfg.sgld.steps, cfg.runtime.threads, cfg.runtime.progress) == (4, 2, False)
    assert (
        cfg.config_hash == RunSpec.of("moco", "tiny", 1, {"sgld.steps": 4}).resolve(ExperimentsFile(config)).config_hash
    )
    assert RunSpec.of("moco", "tiny", 1).config_file == DEFAULT_CONFIG_FILE


# --- the lock of a run ---------------------------------------------------------------------------------------


def test_the_lock_of_a_run_names_its_process_only_while_it_holds_it(tmp_path):
    lock = tmp_path / LOCK_FILE
    assert local.lock_holder(lock) == (False, None)  # no file
    lock.write_text(f"{os.getpid()}\n")
    assert local.lock_holder(lock) == (False, None)  # a pid left behind, nobody holds it
    with open(lock, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert local.lock_holder(lock) == (True, os.getpid())
        held.truncate(0)
        held.write("not a pid")
        held.flush()
        assert local.lock_holder(lock) == (True, None)
    assert local.lock_holder(lock) == (False, None)


def test_a_run_writes_its_pid_into_its_lock_while_it_holds_it(tmp_path):
    run = RunStore(open_store(str(tmp_path)), "baseline-tiny-s0")
    with run.owned():
        assert local.lock_holder(tmp_path / "baseline-tiny-s0" / LOCK_FILE) == (True, os.getpid())
        with pytest.raises(RunHeld, match=f"held by process {os.getpid()} on this machine"):
            with RunStore(open_store(str(tmp_path)), "baseline-tiny-s0").owned():
                pass
    assert local.lock_holder(tmp_path / "baseline-tiny-s0" / LOCK_FILE) == (False, None)


# --- exit codes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code", "start"),
    [
        (UserError("bad flag"), EXIT_USER_ERROR, "error: bad flag"),
        (BadKey("../x"), EXIT_USER_ERROR, "error: "),
        (PointerConflict("ckpt/LATEST"), EXIT_USER_ERROR, "error: "),
        (Diverged("step 3: loss is nan"), EXIT_DIVERGED, "diverged: step 3"),
        (Preempted("SIGTERM"), EXIT_PREEMPTED, "preempted: SIGTERM"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), EXIT_PREEMPTED, "store unavailable: "),
        (
            ClientError({"Error": {"Code": "SlowDown", "Message": "m"}}, "PutObject"),
            EXIT_PREEMPTED,
            "store unavailable",
        ),
        (KeyboardInterrupt(), EXIT_INTERRUPTED, "interrupted: "),
    ],
    ids=["user", "bad-key", "pointer-conflict", "diverged", "preempted", "botocore", "client-error", "ctrl-c"],
)
def test_exit_code_of_maps_each_error(error, code, start):
    mapped = exit_code_of(error)
    assert mapped is not None and mapped[0] == code and mapped[1].startswith(start), mapped
    assert "\n" not in mapped[1]


def test_exit_codes_are_the_documented_numbers_and_anything_else_is_a_bug():
    assert (EXIT_USER_ERROR, EXIT_DIVERGED, EXIT_PREEMPTED, EXIT_INTERRUPTED) == (2, 3, 75, 130)
    assert "another process writes this run" in exit_code_of(PointerConflict("x"))[1]
    for error in (ValueError("x"), KeyError("k"), RuntimeError("r"), SystemExit(1)):
        assert exit_code_of(error) is None


def test_main_maps_through_the_table_and_lets_a_bug_through(monkeypatch, capsys):
    from runner.__main__ import main

    def raising(error):
        def execute(cfg, store_uri, **options):
            raise error

        return execute

    argv = ["local", "--exp", "baseline", "--iterations", "2", "--store", "unused", "--set", SMALL]
    monkeypatch.chdir(ROOT)
    for error, code in [(Diverged("step 2: loss is nan"), 3), (Preempted("SIGTERM"), 75), (KeyboardInterrupt(), 130)]:
        monkeypatch.setattr(runner.run.execute, "execute", raising(error))
        assert main(argv) == code
        assert capsys.readouterr().err.strip() == exit_code_of(error)[1]
    monkeypatch.setattr(runner.run.execute, "execute", raising(ValueError("a bug")))
    with pytest.raises(ValueError, match="a bug"):
        main(argv)
