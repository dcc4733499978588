"""Running the CLI in this process, and what every refusal of bad input must look like."""

import hashlib
import shlex
import shutil
import sys
import traceback
from pathlib import Path

from runner.__main__ import main
from tests.support import ROOT, SMALL
from tests.support.runs import run_id_of

TINY_RUN_ID = run_id_of(iterations=2)  # the run tiny_local makes (its overrides are a point: baseline-tiny-g...-s0)


def tiny_local(store: str, *extra: str) -> list[str]:
    """`local` of a two-iteration tiny baseline run (seconds) on a store."""
    return [*shlex.split(f"local --exp baseline --iterations 2 --store {store} --set '{SMALL}'"), *extra]


def run_main(argv: list[str], capsys) -> tuple[object, str, str]:
    """(exit code, stdout, stderr) of the CLI in this process; an exception that escapes main is its traceback
    on stderr and the code 'raised'."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    except BaseException:  # noqa: BLE001 - reported by the assertions
        code = "raised"
        print(traceback.format_exc(), file=sys.stderr)
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(outcome: tuple[object, str, str], expect: str) -> str:
    """Exit code 2, exactly one non-empty line on stderr that contains `expect`, no traceback; the line."""
    code, out, err = outcome
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in out + err, err
    assert code == 2, (code, out, err)
    assert len(lines) == 1, err
    assert expect in lines[0], lines[0]
    return lines[0]


def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file (its sha256) and directory under root, by relative path; top-level names in skip left out."""
    entries = {}
    for path in sorted(Path(root).rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative.split("/")[0] in skip:
            continue
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            entries[relative] = "special"
        else:
            entries[relative] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return entries


def make_finished_store(store: Path, config: Path = ROOT / "experiments.toml") -> Path:
    """A local store with a real finished two-iteration tiny baseline run of `config` (tiny_local, made in this
    process) and a stray file."""
    assert main([*tiny_local(str(store)), "--config", str(config)]) == 0
    (store / "notes.txt").write_text("not a run\n")
    return store


def make_workdir(tmp_path: Path, monkeypatch, finished_store: Path, config: Path = ROOT / "experiments.toml") -> Path:
    """cwd with `config` as experiments.toml and a copy of the finished store as runs/; a private CLEL_CACHE, two S3
    attempts."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(config, work / "experiments.toml")
    shutil.copytree(finished_store, work / "runs")
    monkeypatch.chdir(work)
    monkeypatch.setenv("CLEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CLEL_S3_MAX_ATTEMPTS", "2")
    monkeypatch.delenv("CLEL_CONFIG_HASH", raising=False)
    return work
