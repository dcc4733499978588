"""The lines of the first hour (issue 21): a collapsed run's result line says so, the progress bar's energies keep
their digits when small, `render --profile/--seed` choose the Jobs rendered, and `submit --dry-run` without a
cluster says it needs one and points to `render`. No model is built and no run trains."""

import re
from types import SimpleNamespace

import pytest
import torch
import urllib3
import yaml
from kubernetes.config import kube_config

import runner.run.loop
from runner.clel.model import StepMetrics
from runner.result import COLLAPSE_RULE, RunResult, is_collapsed, result_line
from runner.run.signals import Sigterm
from tests.support.cli import assert_refused, run_main
from tests.support.kube import CLUSTER, write_config

# --- the result line ------------------------------------------------------------------------------------------


def finished(fid: float | None, fid_init: float | None = 400.0) -> dict:
    """A finished tiny baseline run's result.json as a dict (through RunResult, as run.py writes it)."""
    return RunResult(
        experiment="baseline",
        profile="tiny",
        seed=0,
        run_id="baseline-tiny-s0",
        config_hash="9d9c4f029f2e",
        iterations=600,
        wall_s=312.4,
        device="cpu (1 thread)",
        torch="2.5.0",
        crl="simclr",
        norm_direction_split=True,
        use_generated_negatives=True,
        fid=fid,
        fid_features="digits-cnn",
        fid_init=fid_init,
        fid_protocol="1000 samples, 10 rounds of the training sampler",
        collapsed=is_collapsed(fid, fid_init),
        auroc={},
        notes=[],
    ).model_dump()


def test_the_result_line_of_a_collapsed_run_says_collapsed_after_its_fid():
    """fid > 0.5 x fid_init: the line names the run, its FID, then COLLAPSED with the rule (the run is kept)."""
    line = result_line(finished(fid=300.0))
    assert line.startswith("baseline-tiny-s0: fid 300.000 COLLAPSED (")
    assert COLLAPSE_RULE in line and "(fid_init 400.000, digits-cnn features), 600 iterations, 312 s on cpu" in line


@pytest.mark.parametrize("fid", [100.0, None], ids=["learned", "fid-missing"])
def test_the_result_line_of_a_run_that_did_not_collapse_does_not_say_collapsed(fid):
    """A run below the rule, or one without an FID (collapsed unknown), is not called collapsed."""
    line = result_line(finished(fid=fid))
    assert "COLLAPSED" not in line.upper()
    assert line.startswith(f"baseline-tiny-s0: fid {'100.000' if fid else 'missing'} (fid_init 400.000, ")


# --- the progress bar's energies ----------------------------------------------------------------------------


class FakeEngine:
    """What runner.run.loop.train asks of an engine: a step counter, train_step's metrics, the lr, the buffer."""

    def __init__(self, energy_data: float, energy_samples: float):
        self.step = 0
        self.model = SimpleNamespace(buffer=torch.zeros(2, 1, 2, 2))
        values = dict.fromkeys(StepMetrics.__dataclass_fields__, 0.5)
        self.metrics = StepMetrics(**values | {"energy_data": energy_data, "energy_samples": energy_samples})

    def train_step(self) -> StepMetrics:
        self.step += 1
        return self.metrics

    def lr(self) -> dict[str, float]:
        return {"lr_ebm": 1e-4}


class Recorder:
    """A RunStore and RunLogs that keep nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def bar_of_training(monkeypatch, capsys, energy_data: float, energy_samples: float) -> str:
    """stderr of runner.run.loop.train over two steps of a fake engine, with the progress bar on."""
    monkeypatch.setattr(runner.run.loop.checkpoints, "to_bytes", lambda engine, wall_s: b"")
    cfg = SimpleNamespace(
        run_id="baseline-tiny-s0",
        total_steps=2,
        runtime=SimpleNamespace(progress=True, log_every=1, checkpoint_every=100),
    )
    runner.run.loop.train(cfg, Recorder(), FakeEngine(energy_data, energy_samples), Recorder(), 0.0, Sigterm())
    return capsys.readouterr().err


def printed(err: str, key: str) -> str:
    """The value of `key=` in the bar as last drawn (by its close)."""
    bar = err.rstrip().rsplit("\r", 1)[-1]
    assert bar.startswith("baseline-tiny-s0: 100%") and "2/2" in bar, bar
    found = re.search(rf"\b{key}=([^,\s\]]+)", bar)
    assert found, bar
    return found.group(1)


def test_small_energies_are_printed_in_scientific_notation_in_the_progress_bar(monkeypatch, capsys):
    """e_data = 6.6e-06 and e_samp = -3.2e-07 keep their digits (a fixed-point format would print 0.000 / -0.000)."""
    err = bar_of_training(monkeypatch, capsys, 6.6e-06, -3.2e-07)
    for key, value in (("e_data", 6.6e-06), ("e_samp", -3.2e-07)):
        shown = printed(err, key)
        assert re.fullmatch(r"-?\d\.\d+e[-+]\d+", shown), shown
        assert float(shown) == pytest.approx(value, rel=1e-2), shown


def test_large_energies_keep_their_magnitude_in_the_progress_bar(monkeypatch, capsys):
    """A large energy is neither truncated nor rounded to another order of magnitude (1234.5 stays 1234.5 +- 1 %)."""
    err = bar_of_training(monkeypatch, capsys, 1234.5, -0.25)
    assert float(printed(err, "e_data")) == pytest.approx(1234.5, rel=1e-2)
    assert float(printed(err, "e_samp")) == pytest.approx(-0.25, rel=1e-2)


# --- render --profile / --seed --------------------------------------------------------------------------


def rendered_jobs(capsys, config, *flags: str) -> list[dict]:
    """The Jobs `render FLAGS` prints (in this process), as dicts."""
    code, out, err = run_main(["render", *flags, "--config", str(config)], capsys)
    assert code == 0, err
    return [doc for doc in yaml.safe_load_all(out) if doc]


def job_view(job: dict) -> tuple[str, str, str, str, list[str]]:
    """(run id, profile label, seed label, experiment label, the worker's --profile and --seed)."""
    labels, args = job["metadata"]["labels"], job["spec"]["template"]["spec"]["containers"][0]["args"]
    chosen = [args[args.index("--profile") + 1], args[args.index("--seed") + 1]]
    run_id = job["metadata"]["annotations"]["clel/run-id"]
    return run_id, labels["clel/profile"], labels["clel/seed"], labels["clel/experiment"], chosen


def test_render_without_flags_renders_the_cluster_tables_profile_and_every_seed(tmp_path, capsys):
    """The baseline: [cluster] profile (paper) x [sweep] seeds 0-9."""
    jobs = rendered_jobs(capsys, write_config(tmp_path, CLUSTER), "--exp", "baseline")
    assert [job_view(job) for job in jobs] == [
        (f"baseline-paper-s{seed}", "paper", str(seed), "baseline", ["paper", str(seed)]) for seed in range(10)
    ]


def test_render_profile_and_seed_choose_the_jobs_rendered(tmp_path, capsys, experiments):
    """--profile tiny --seed 1: one Job per experiment, each the tiny run of seed 1, in its id, labels and argv."""
    jobs = rendered_jobs(capsys, write_config(tmp_path, CLUSTER), "--profile", "tiny", "--seed", "1")
    experiments = list(experiments.experiments)  # write_config keeps the repository's experiments
    assert len(experiments) > 1
    assert [job_view(job) for job in jobs] == [(f"{e}-tiny-s1", "tiny", "1", e, ["tiny", "1"]) for e in experiments]
    assert all(
        job["metadata"]["name"].startswith(f"clel-{e.replace('_', '-')}-tiny-s1-")
        for e, job in zip(experiments, jobs, strict=True)
    )


def test_render_seed_alone_keeps_the_cluster_tables_profile(tmp_path, capsys):
    """--seed 2 without --profile: the paper run of seed 2 only."""
    jobs = rendered_jobs(capsys, write_config(tmp_path, CLUSTER), "--exp", "mae", "--seed", "2")
    assert [job_view(job) for job in jobs] == [("mae-paper-s2", "paper", "2", "mae", ["paper", "2"])]


def test_render_profile_alone_keeps_every_seed(tmp_path, capsys):
    """--profile tiny without --seed: tiny runs of [sweep] seeds 0-9."""
    jobs = rendered_jobs(capsys, write_config(tmp_path, CLUSTER), "--exp", "byol", "--profile", "tiny")
    assert [job_view(job)[0] for job in jobs] == [f"byol-tiny-s{seed}" for seed in range(10)]


# --- submit --dry-run without a cluster -------------------------------------------------------------------

DRY_RUN_HINT = "submit --dry-run asks the cluster's API server to check every Job"
RENDER_HINT = "`python -m runner render` shows the Jobs offline"


def test_submit_dry_run_without_a_kube_config_needs_the_api_server_and_points_to_render(tmp_path, monkeypatch, capsys):
    """No kubeconfig and no in-cluster service account: exit 2, one line: why it failed, that --dry-run needs the
    API server, and `render` for the offline view."""
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    config = str(write_config(tmp_path, CLUSTER))
    line = assert_refused(run_main(["submit", "--dry-run", "--config", config], capsys), DRY_RUN_HINT)
    assert line.startswith("error: no Kubernetes cluster configured (") and line.endswith(f"; {RENDER_HINT})")
    plain = assert_refused(run_main(["submit", "--config", config], capsys), "no Kubernetes cluster configured")
    assert "--dry-run" not in plain and "render" not in plain  # the hint is for the dry run only


def test_submit_dry_run_with_an_unreachable_api_server_points_to_render(tmp_path, kube, monkeypatch, capsys):
    """A kube context whose API server refuses the connection: exit 2, one line, the same hint; nothing created."""

    def refused(method, url, **kwargs):
        reason = urllib3.exceptions.NewConnectionError(
            None, "Failed to establish a new connection: [Errno 111] Connection refused"
        )
        raise urllib3.exceptions.MaxRetryError(None, url, reason)

    monkeypatch.setattr(kube, "request", refused)
    config = str(write_config(tmp_path, CLUSTER))
    line = assert_refused(
        run_main(["submit", "--dry-run", "--exp", "baseline", "--config", config], capsys), RENDER_HINT
    )
    assert line.startswith("error: cannot reach the Kubernetes API at https://kube.test:6443 (Connection refused)")
    assert DRY_RUN_HINT in line and kube.jobs == {}
