"""The commands behind `python -m runner` (fire turns each public method into a subcommand)."""

from typing import Any

from runner.cluster_cli import ClusterCommands
from runner.config import DEFAULT_CONFIG_FILE, ExperimentsFile, RunConfig, parse_overrides
from runner.errors import UserError
from runner.report.commands import ReportCommands


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _int_flag(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"--{name} {value!r}: expected an integer")
    return value


def resolve_run(
    exp: str,
    profile: str,
    seed: Any = 0,
    iterations: Any = None,
    device: str | None = None,
    ood: Any = None,
    overrides: Any = None,
    data_root: str | None = None,
    download: bool = False,
    checkpoint_every: Any = None,
    config: str = DEFAULT_CONFIG_FILE,
) -> RunConfig:
    """Turn CLI flags into `--set` style overrides on top of experiments.toml, then resolve."""
    if not isinstance(exp, str) or not exp:
        raise UserError("--exp NAME is required (see `python -m runner list`)")
    seed = _int_flag("seed", seed)
    values = parse_overrides(overrides)
    flags = {
        "train.iterations": _int_flag("iterations", iterations),
        "runtime.device": device,
        "runtime.data_root": data_root,
        "runtime.download": True if download else None,
        "runtime.checkpoint_every": _int_flag("checkpoint-every", checkpoint_every),
    }
    values |= {key: value for key, value in flags.items() if value is not None}
    if ood is not None:
        values["runtime.ood_files"] = _as_list(ood)
    return ExperimentsFile(config).resolve(str(exp), str(profile), seed, values)


def _print_result(result: dict[str, Any]) -> None:
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
        experiments = ExperimentsFile(config)
        print("experiments:")
        for name in experiments.experiments:
            print(f"  {name:<15} {experiments.description(name)}")
        print("profiles:")
        for name, table in experiments.profiles.items():
            print(f"  {name:<15} {table.get('description', '')}")
        print(f"seeds of a sweep: {experiments.seeds()}")

    def local(
        self,
        exp: str = "",
        profile: str = "tiny",
        seed: int = 0,
        iterations: int | None = None,
        store: str = "runs",
        device: str | None = None,
        ood: Any = None,
        set: Any = None,  # noqa: A002 - the flag is --set
        data_root: str | None = None,
        download: bool = False,
        checkpoint_every: int | None = None,
        config: str = DEFAULT_CONFIG_FILE,
    ) -> None:
        """Train and evaluate one run here; re-running the same command resumes it.

        --set KEY=VALUE overrides any config key by its dotted path; several in one quoted string:
        --set 'sgld.steps=20 train.batch_size=32'.
        """
        cfg = resolve_run(
            exp, profile, seed, iterations, device, ood, set, data_root, download, checkpoint_every, config
        )
        from runner.run import execute  # torch is imported only once the flags are known to be good

        _print_result(execute(cfg, store))

    def worker(
        self,
        exp: str = "",
        profile: str = "paper",
        seed: int = 0,
        store: str = "runs",
        iterations: int | None = None,
        device: str | None = None,
        ood: Any = None,
        set: Any = None,  # noqa: A002
        data_root: str | None = None,
        download: bool = False,
        checkpoint_every: int | None = None,
        config: str = DEFAULT_CONFIG_FILE,
    ) -> None:
        """The entry point of a Kubernetes Job: the same code path as `local`, progress bar off."""
        overrides = ["runtime.progress=false", *_as_list(set)]
        cfg = resolve_run(
            exp,
            profile,
            seed,
            iterations,
            device,
            ood,
            overrides,
            data_root,
            download,
            checkpoint_every,
            config,
        )
        from runner.run import execute  # torch is imported only once the flags are known to be good

        _print_result(execute(cfg, store))

    def bench(
        self,
        config: str = "ref32",
        iterations: int = 5,
        plain: bool = False,
        device: str = "cpu",
        bf16: bool = False,
        warmup: int = 1,
        set: Any = None,  # noqa: A002
    ) -> None:
        """Time training iterations of ref32|tiny|paper on synthetic data; prints one JSON line.

        --plain runs the same math with every optimization off; --bf16 autocasts (changes numerics).
        """
        from runner.bench import bench

        print(bench(config, iterations, plain, device, bf16, warmup, parse_overrides(set)))
