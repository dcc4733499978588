"""The commands behind `python -m runner` (fire turns each public method into a subcommand).

Every flag is typed here; runner.cli.argv checks a command line against these signatures before fire runs it.
Commands import what they need when they run, so a mistyped command fails in a fraction of a second.
"""

import inspect
import json
import os
from typing import Annotated, Any, Literal

from pydantic import Field

from runner.cli.argv import REPEATABLE
from runner.cli.cluster import ClusterCommands
from runner.cli.report import ReportCommands
from runner.config import DEFAULT_CONFIG_FILE, MAX_SEED, parse_overrides
from runner.errors import UserError
from runner.result import result_line

Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Count = Annotated[int, Field(ge=1, le=10**8)]
Device = Literal["auto", "cpu", "cuda"]
Strings = list[str]  # a comma-separated list, or [a,b] (inside Commands, `list` is the list command)
Assignments = Annotated[list[str], REPEATABLE]
Seeds = list[Annotated[int, Field(ge=0, le=MAX_SEED)]]  # --set KEY=VALUE ..., repeatable, each occurrence kept whole


def resolve_run(
    exp: str,
    profile: str,
    seed: int = 0,
    iterations: int | None = None,
    device: str | None = None,
    ood: list[str] | None = None,
    overrides: list[str] | None = None,
    data_root: str | None = None,
    download: bool = False,
    checkpoint_every: int | None = None,
    config: str = DEFAULT_CONFIG_FILE,
    smoke: bool = False,
):
    """The RunConfig of one run: experiments.toml ([smoke] too with --smoke), then --set, then the dedicated flags
    (which win)."""
    from runner.config import ExperimentsFile

    if not exp:
        raise UserError("--exp NAME is required (see `python -m runner list`)")
    values = parse_overrides(overrides)
    flags = {
        "train.iterations": iterations,
        "runtime.device": device,
        "runtime.data_root": data_root,
        "runtime.download": True if download else None,
        "runtime.checkpoint_every": checkpoint_every,
        "runtime.ood_files": list(ood) if ood else None,
    }
    values |= {key: value for key, value in flags.items() if value is not None}
    return ExperimentsFile(config).resolve(exp, profile, seed, values, smoke=smoke)


def check_job_config(cfg: Any) -> None:
    """In a Kubernetes Job: the image's experiments.toml must resolve the config the Job was rendered for
    (CLEL_CONFIG_HASH, set by `render`); UserError otherwise, before anything is done."""
    expected = os.environ.get("CLEL_CONFIG_HASH")
    if expected and expected != cfg.config_hash:
        raise UserError(
            f"{cfg.run_id}: this image resolves config {cfg.config_hash}, the Job was rendered for {expected} "
            "(experiments.toml in the image differs from the one submitted)"
        )


def print_result(result: dict[str, Any]) -> None:
    """The run's FID line and its AUROC per OOD set."""
    print(result_line(result))
    for name, scores in sorted(result["auroc"].items()):
        parts = [f"{kind} {value:.4f}" for kind, value in scores.items() if value is not None]
        print(f"  auroc vs {name:<16} {', '.join(parts)}")


class Commands(ReportCommands, ClusterCommands):
    """CLEL ablation runner: train and evaluate CLEL ablations here or as Kubernetes Jobs, and summarize them."""

    _job = False  # set by `worker`: the run is a Kubernetes Job's

    def list(self, config: str = DEFAULT_CONFIG_FILE) -> None:
        """The experiments and profiles of experiments.toml, and the seeds of a sweep."""
        from runner.config.experiments_file import ExperimentsFile

        experiments = ExperimentsFile(config)
        print("experiments:")
        for name in experiments.experiments:
            print(f"  {name:<15} {experiments.description(name)}")
        print("profiles:")
        for name, table in experiments.profiles.items():
            print(f"  {name:<15} {table.get('description', '')}")
        print(f"seeds of a sweep: {experiments.seeds()}")

    def show(
        self,
        exp: str = "",
        profile: str = "tiny",
        seed: Seed = 0,
        set: Assignments | None = None,  # noqa: A002 - the flag is --set
        smoke: bool = False,
        config: str = DEFAULT_CONFIG_FILE,
    ) -> None:
        """Print a run's resolved config (every value, the methods' defaults included) and its hash, as JSON."""
        cfg = resolve_run(exp, profile, seed, overrides=set, config=config, smoke=smoke)
        print(
            json.dumps({"run_id": cfg.run_id, "config_hash": cfg.config_hash, **cfg.model_dump(mode="json")}, indent=2)
        )

    def local(
        self,
        exp: str = "",
        profile: str = "tiny",
        seed: Seed = 0,
        iterations: Count | None = None,
        store: str = "runs",
        device: Device | None = None,
        ood: Strings | None = None,
        set: Assignments | None = None,  # noqa: A002 - the flag is --set
        data_root: str | None = None,
        download: bool = False,
        checkpoint_every: Count | None = None,
        smoke: bool = False,
        reeval: bool = False,
        config: str = DEFAULT_CONFIG_FILE,
    ) -> None:
        """Train and evaluate one run here; the same command resumes a stopped run and shows a finished one.

        A finished run is not trained or evaluated again: its stored result is printed (--reeval evaluates it
        again from its last checkpoint, keeping the previous result under evals/).
        """
        cfg = resolve_run(
            exp, profile, seed, iterations, device, ood, set, data_root, download, checkpoint_every, config, smoke
        )
        if self._job:
            check_job_config(cfg)
        from runner.run.execute import execute  # torch is imported only once the flags are known to be good

        print_result(execute(cfg, store, reeval=reeval))

    def evaluate(
        self, store: str = "runs", run: str = "", device: Device | None = None, config: str = DEFAULT_CONFIG_FILE
    ) -> None:
        """Evaluate a stored run's newest checkpoint (FID and OOD AUROC, with its EMA models) and print the result.

        The run's config comes from its config.json (validated, and checked against its hash); nothing is written
        to the store (`local --reeval` replaces a run's result).

        Flags:
          run: the run id, e.g. baseline-tiny-s0 (`python -m runner summarize` lists a store's runs)
        """
        if not run:
            raise UserError("evaluate: --run RUN_ID is required (e.g. --run baseline-tiny-s0)")
        from runner.config import ExperimentsFile
        from runner.run.execute import log_line
        from runner.run.stored import evaluate_stored_run

        runtime = {} if device is None else {"runtime.device": device}
        print_result(evaluate_stored_run(store, run, ExperimentsFile(config), runtime, log_line))

    def worker(self, *args: Any, **kwargs: Any) -> None:
        """The entry point of a Kubernetes Job: `local` with the progress bar off (the same flags), in an image whose
        experiments.toml must resolve the config the Job was rendered for."""
        bound = inspect.signature(self.local).bind(*args, **kwargs)
        given = bound.arguments.get("set") or []
        bound.arguments["set"] = ["runtime.progress=false", *([given] if isinstance(given, str) else given)]
        self._job = True
        self.local(*bound.args, **bound.kwargs)

    worker.__signature__ = inspect.signature(local)  # type: ignore[attr-defined]

    def sweep(
        self,
        profile: str = "tiny",
        exp: Strings | None = None,
        seeds: Seeds | None = None,
        store: str = "runs",
        device: Device | None = None,
        parallel: Annotated[int, Field(ge=1, le=64)] = 1,
        iterations: Count | None = None,
        set: Assignments | None = None,  # noqa: A002
        smoke: bool = False,
        grid: Assignments | None = None,
        config: str = DEFAULT_CONFIG_FILE,
    ) -> None:
        """Run experiments x grid points x seeds here (default: every experiment, [sweep] seeds and grid), then
        summarize the store.

        Finished runs are skipped and unfinished ones resume, so the same command continues a stopped sweep.
        Ctrl-C checkpoints the running runs and exits with code 75.

        Flags:
          exp: the experiments, comma-separated (default: every [experiments.*] of the config)
          seeds: the seeds, comma-separated (default: [sweep] seeds)
          parallel: N `local` processes at a time: one per GPU with --device cuda, else the CPU cores shared
          grid: axes and their values, KEY=V1,V2,... (repeat it, or several in one quoted string); a point is part
            of the run id, as with --set (default: [sweep] grid)
        """
        from runner.launch.sweep import sweep

        sweep(profile, exp, seeds, store, device, parallel, iterations, set or [], config, smoke=smoke, grid=grid)

    def bench(
        self,
        preset: Literal["ref32", "tiny", "paper"] = "ref32",
        iterations: Annotated[int, Field(ge=1, le=10_000)] = 5,
        plain: bool = False,
        device: Literal["cpu", "cuda"] = "cpu",
        bf16: bool = False,
        warmup: Annotated[int, Field(ge=0, le=10_000)] = 1,
        set: Assignments | None = None,  # noqa: A002
        config: Literal["ref32", "tiny", "paper"] | None = None,
    ) -> None:
        """Time training iterations of a preset on synthetic data; prints one JSON line (progress on stderr).

        Flags:
          preset: ref32 (the configuration the reference was timed on), tiny or paper
          iterations: timed training iterations
          plain: the same math with every optimization off (channels-last, cached spectral norm)
          bf16: autocast the networks to bfloat16 (changes numerics)
          warmup: untimed iterations first
          config: deprecated name of --preset (everywhere else --config is the TOML file)
        """
        from runner.run.bench import bench

        deprecated = "bench --config is deprecated and will be removed: use --preset" if config is not None else None
        print(bench(config or preset, iterations, plain, device, bf16, warmup, parse_overrides(set), deprecated))

    def gpu_check(self, device: Literal["cuda", "cpu"] = "cuda") -> None:
        """The prepared GPU check, as one JSON line: benches, a short training run and a resume check.

        bench of paper and ref32 (optimized, plain, bf16) with SGLD TFLOP/s from counted FLOPs and peak GPU memory,
        a short digits 32x32 training run and a resume check.

        Flags:
          device: cuda; cpu is a tiny dry run of the same script
        """
        from runner.run.gpu_check import gpu_check_json

        print(gpu_check_json(device))
