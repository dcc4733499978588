"""The commands behind `python -m runner` (fire turns each public method into a subcommand).

Every flag is typed here; runner.argv checks a command line against these signatures before fire runs it.
Commands import what they need when they run, so a mistyped command fails in a fraction of a second.
"""

import inspect
import json
from typing import Annotated, Any, Literal

from pydantic import Field

from runner.argv import REPEATABLE
from runner.cluster import ClusterCommands
from runner.config import DEFAULT_CONFIG_FILE, MAX_SEED, parse_overrides
from runner.errors import UserError
from runner.report.commands import ReportCommands

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
):
    """The RunConfig of one run: experiments.toml, then --set, then the dedicated flags (which win)."""
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
    return ExperimentsFile(config).resolve(exp, profile, seed, values)


def print_result(result: dict[str, Any]) -> None:
    """The run's FID line and its AUROC per OOD set."""
    fid = "missing" if result["fid"] is None else f"{result['fid']:.3f}"
    fid_init = "missing" if result["fid_init"] is None else f"{result['fid_init']:.3f}"
    print(
        f"{result['run_id']}: fid {fid} (fid_init {fid_init}, {result['fid_features']} features), "
        f"{result['iterations']} iterations, {result['wall_s']:.0f} s on {result['device']}"
    )
    for name, scores in result["auroc"].items():
        parts = [f"{kind} {value:.4f}" for kind, value in scores.items() if value is not None]
        print(f"  auroc vs {name:<16} {', '.join(parts)}")


class Commands(ReportCommands, ClusterCommands):
    """CLEL ablation runner: train and evaluate CLEL ablations locally or as Kubernetes Jobs."""

    def list(self, config: str = DEFAULT_CONFIG_FILE) -> None:
        """The experiments and profiles of experiments.toml."""
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
        config: str = DEFAULT_CONFIG_FILE,
    ) -> None:
        """Print a run's resolved config (every value, the methods' defaults included) and its hash, as JSON."""
        cfg = resolve_run(exp, profile, seed, overrides=set, config=config)
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
        config: str = DEFAULT_CONFIG_FILE,
    ) -> None:
        """Train and evaluate one run here; re-running the same command resumes it.

        --set KEY=VALUE overrides any config key by its dotted path; several in one quoted string
        (--set 'sgld.steps=20 train.batch_size=32') or as repeated flags. --ood takes FILE.npz, a
        comma-separated list or [a.npz,b.npz].
        """
        cfg = resolve_run(
            exp, profile, seed, iterations, device, ood, set, data_root, download, checkpoint_every, config
        )
        from runner.run import execute  # torch is imported only once the flags are known to be good

        print_result(execute(cfg, store))

    def worker(self, *args: Any, **kwargs: Any) -> None:
        """The entry point of a Kubernetes Job: `local` with the progress bar off (the same flags)."""
        bound = inspect.signature(self.local).bind(*args, **kwargs)
        given = bound.arguments.get("set") or []
        bound.arguments["set"] = ["runtime.progress=false", *([given] if isinstance(given, str) else given)]
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
        config: str = DEFAULT_CONFIG_FILE,
    ) -> None:
        """Run experiments x seeds here (default: every experiment, [sweep] seeds), then summarize the store.

        Finished runs are skipped and unfinished ones resume, so the same command continues a stopped sweep.
        --exp a,b and --seeds 0,1,2 choose; --parallel N runs N processes at a time (one per GPU with
        --device cuda). Ctrl-C checkpoints the running runs and exits with code 75.
        """
        from runner.sweep import sweep

        sweep(profile, exp, seeds, store, device, parallel, iterations, set or [], config)

    def bench(
        self,
        config: Literal["ref32", "tiny", "paper"] = "ref32",
        iterations: Annotated[int, Field(ge=1, le=10_000)] = 5,
        plain: bool = False,
        device: Literal["cpu", "cuda"] = "cpu",
        bf16: bool = False,
        warmup: Annotated[int, Field(ge=0, le=10_000)] = 1,
        set: Assignments | None = None,  # noqa: A002
    ) -> None:
        """Time training iterations of ref32|tiny|paper on synthetic data; prints one JSON line.

        --plain runs the same math with every optimization off; --bf16 autocasts (changes numerics).
        """
        from runner.bench import bench

        print(bench(config, iterations, plain, device, bf16, warmup, parse_overrides(set)))

    def gpu_check(self, device: Literal["cuda", "cpu"] = "cuda") -> None:
        """bench of paper and ref32 (optimized, plain, bf16), a short digits 32x32 training run and a resume check,
        as one JSON line (SGLD TFLOP/s from counted FLOPs, peak GPU memory); --device cpu is a tiny dry run."""
        from runner.gpu_check import gpu_check_json

        print(gpu_check_json(device))
