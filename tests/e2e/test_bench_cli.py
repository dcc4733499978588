"""`python -m runner bench`: one JSON line of what it measured; its old --config flag still works, with a warning."""

import json

import pytest

from tests.support.runs import run_cli


@pytest.mark.slow
def test_bench_prints_one_json_line_and_its_old_preset_flag_is_deprecated():
    result = run_cli("bench", "--config", "tiny", "--iterations", "2", "--warmup", "1", "--set", "sgld.steps=2")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: bench --config is deprecated and will be removed: use --preset"]
    assert "bench tiny" in result.stderr and "3/3" in result.stderr  # the bar: 1 warm-up + 2 timed iterations
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["config"] == "tiny" and report["path"] == "optimized" and report["iterations"] == 2
    assert report["sgld_steps"] == 2 and report["threads"] >= 1 and report["device"] == "cpu"
    times = report["sec_per_iter"]
    assert 0 < times["min"] <= times["median"] <= times["max"]
    assert 0 < report["sgld_share"] < 1 and report["peak_rss_mb"] > 0
