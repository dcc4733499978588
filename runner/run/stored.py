"""A run read back from its store: its config, validated as data, and an evaluation of its newest checkpoint.

`python -m runner evaluate --store S --run RUN_ID` uses this. config.json and the checkpoint come from a store, so
they are untrusted: the config is validated by RunConfig (every value in its domain), must hash to the hash
stored beside it and name the run it was read from; the checkpoint goes through the same checks as a resume.
Nothing is written to the store: the evaluation is printed (a run's own `local --reeval` replaces its result).
"""

import json
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from runner.config import ExperimentsFile, RunConfig
from runner.errors import UserError
from runner.layout import CONFIG_FILE, LATEST, is_smoke, parse_run_id
from runner.store import RunStore, open_store


def stored_config(run: RunStore, experiments: ExperimentsFile, runtime: dict[str, Any]) -> RunConfig:
    """The run's config from its config.json; the runtime table (not part of the hash) from the experiments file
    and `runtime` (dotted keys such as runtime.device). UserError when it is missing, malformed or inconsistent."""
    parsed = parse_run_id(run.run_id)
    if parsed is None:
        raise UserError(f"--run {run.run_id!r}: not a run id (<experiment>-<profile>[-<variant>]-s<seed>)")
    experiment, profile, variant, seed = parsed
    where = f"{run.store.uri}/{run.key(CONFIG_FILE)}"
    try:
        body = json.loads(run.store.read(run.key(CONFIG_FILE)))
    except KeyError:
        raise UserError(f"no run {run.run_id} in {run.store.uri} (no {CONFIG_FILE})") from None
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"{where}: not JSON") from None
    well_formed = isinstance(body, dict) and isinstance(body.get("config"), dict)
    point = body.get("point", {}) if isinstance(body, dict) else None
    if not (well_formed and isinstance(body.get("config_hash"), str) and isinstance(point, dict)):
        raise UserError(f"{where}: expected {{'config_hash': ..., 'config': {{...}}, 'point': {{...}}}}")
    local = experiments.resolve(experiment, profile, seed, runtime, smoke=is_smoke(variant))
    try:
        cfg = RunConfig.model_validate(
            {**body["config"], "runtime": local.runtime.model_dump(), "smoke": is_smoke(variant), "point": point}
        )
    except ValidationError as err:
        first = err.errors()[0]
        path = ".".join(str(part) for part in first["loc"])
        raise UserError(f"{where}: {path or 'config'}: {first['msg']}") from None
    if cfg.config_hash != body["config_hash"]:
        raise UserError(f"{where}: its config hashes to {cfg.config_hash}, the file says {body['config_hash']!r}")
    if cfg.run_id != run.run_id:
        raise UserError(f"{where}: the config is run {cfg.run_id}'s, not {run.run_id}'s")
    return cfg


def evaluate_stored_run(
    store_uri: str, run_id: str, experiments: ExperimentsFile, runtime: dict[str, Any], log: Callable[[str], None]
) -> dict[str, Any]:
    """Evaluate the newest verified checkpoint of a stored run with its EMA models; result.json's content (not
    written). UserError when the run has no checkpoint."""
    import torch

    from runner.clel.model import training_engine
    from runner.data import load_dataset, ood_sets
    from runner.device import resolve_device
    from runner.run.evaluate import evaluate
    from runner.run.execute import restore, run_result
    from runner.run.inputs import check_inputs, fid_weights

    store = open_store(store_uri)
    store.check()
    run = RunStore(store, run_id)
    cfg = stored_config(run, experiments, runtime)
    check_inputs(cfg)
    if cfg.runtime.threads:
        torch.set_num_threads(cfg.runtime.threads)
    rt = cfg.runtime
    data = load_dataset(cfg.data.dataset, cfg.data.image_size, rt.data_root or None, rt.download)
    ood = ood_sets(data, cfg.data.ood, rt.ood_files, rt.data_root or None, rt.download)
    engine = training_engine(cfg, data, resolve_device(rt.device))
    if run.store.read_pointer(run.key(LATEST)) is None:
        raise UserError(f"run {run_id} in {store.uri} has no checkpoint to evaluate")
    wall_s = restore(run, engine, log)
    started = time.perf_counter()
    log(f"evaluating {run_id} at step {engine.step}: {cfg.eval.fid_samples} samples for FID, {len(ood)} OOD sets")
    evaluation = evaluate(engine.model, data, ood, log, fid_weights(cfg, log))
    return run_result(cfg, engine.step, evaluation, wall_s + time.perf_counter() - started).model_dump(mode="json")
