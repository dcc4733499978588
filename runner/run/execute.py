"""One run, start to finish: the same code under `local`, in a sweep's process and in a Kubernetes Job (`worker`).

check every input (data, OOD files, FID weights) -> a finished run is shown, not run -> claim the run directory
-> build the model and its engine -> resume from the newest verified checkpoint -> train (runner.run.loop) ->
evaluate with the EMA models -> result.json. Nothing is written to the store before every input has been checked.
"""

import io
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torchvision.utils import save_image

from runner.clel.engine import Engine
from runner.clel.model import training_engine
from runner.config import RunConfig
from runner.data import ImageData, load_dataset, ood_sets
from runner.device import device_label, resolve_device
from runner.errors import OwnershipLost, PointerConflict, UserError, is_store_failure
from runner.layout import EVALS_DIR, RESULT_FILE, SAMPLES_FILE
from runner.result import RunResult, is_collapsed
from runner.run import checkpoints
from runner.run.evaluate import Evaluation, evaluate
from runner.run.inputs import FidWeights, check_inputs, fid_weights
from runner.run.logs import RunLogs
from runner.run.loop import train
from runner.run.signals import Sigterm, handle_sigterm
from runner.store import CheckpointError, RunStore, open_store


def log_line(message: str) -> None:
    """A progress message on stderr, flushed at once (pods' logs are not terminals)."""
    print(message, file=sys.stderr, flush=True)


def execute(
    cfg: RunConfig, store_uri: str, log: Callable[[str], None] = log_line, reeval: bool = False
) -> dict[str, Any]:
    """Train (or resume) and evaluate one run; returns result.json's content.

    A finished run (its result.json has this config's hash) is left alone and its stored result returned, unless
    reeval: then it is evaluated again from its last checkpoint, and the result it replaces is kept under evals/.
    """
    with handle_sigterm(also_interrupt=True) as sigterm:
        return _execute(cfg, store_uri, log, sigterm, reeval)


def stored_result(run: RunStore, cfg: RunConfig) -> RunResult | None:
    """The run's result.json when it is readable and has this config's hash (the run is finished), else None."""
    try:
        result = RunResult.from_json(run.store.read(run.key(RESULT_FILE)), cfg.run_id)
    except (KeyError, ValueError):
        return None
    return result if result.config_hash == cfg.config_hash else None


def _finished(run: RunStore, cfg: RunConfig, log: Callable[[str], None]) -> dict[str, Any] | None:
    """The stored result of a finished run (said in one line), or None."""
    finished = stored_result(run, cfg)
    if finished is None:
        return None
    log(f"{cfg.run_id}: already finished in {run.store.uri}; its stored result (--reeval evaluates it again)")
    return finished.model_dump(mode="json")


def _execute(
    cfg: RunConfig, store_uri: str, log: Callable[[str], None], sigterm: Sigterm, reeval: bool
) -> dict[str, Any]:
    check_inputs(cfg)  # a bad input is refused even when the run is finished: a typo never passes unseen
    if cfg.runtime.threads:
        torch.set_num_threads(cfg.runtime.threads)
    device = resolve_device(cfg.runtime.device)
    store = open_store(store_uri)
    store.check()
    run = RunStore(store, cfg.run_id, cfg.runtime.keep_checkpoints)
    if not reeval and (finished := _finished(run, cfg, log)) is not None:
        return finished  # a finished run never changes: no need to own it to read it
    rt = cfg.runtime
    data_started = time.perf_counter()
    data = load_dataset(cfg.data.dataset, cfg.data.image_size, rt.data_root or None, rt.download)
    ood = ood_sets(data, cfg.data.ood, rt.ood_files, rt.data_root or None, rt.download)
    weights = fid_weights(cfg, log)
    data_s = time.perf_counter() - data_started
    with run.owned():  # RunHeld when another process owns it; from here on nobody else writes it
        if not reeval and (finished := _finished(run, cfg, log)) is not None:
            return finished  # finished by its previous owner while this process waited for nothing
        run.claim(cfg.hashed_dict(), cfg.config_hash, log, cfg.point)
        train_started = time.perf_counter()
        engine = training_engine(cfg, data, device)
        wall_s = restore(run, engine, log)
        logs = RunLogs(run, engine.step, log)
        published = False
        try:
            wall_s = train(cfg, run, engine, logs, wall_s, sigterm)
            eval_started = time.perf_counter()
            result = _evaluate_and_record(cfg, run, engine, data, ood, logs, wall_s, weights, log)
            published = True
            log(
                f"{cfg.run_id}: this process: data {data_s:.1f} s, model and training "
                f"{eval_started - train_started:.1f} s, evaluation {time.perf_counter() - eval_started:.1f} s"
            )
        except (PointerConflict, UserError, OwnershipLost):
            raise  # another writer owns the run, or bad input: publish nothing
        except BaseException as err:
            # logs up to the last checkpoint are the store's; newer lines are dropped. A store that just failed is
            # not written again: the run's one line says why, and the logs were published at its last checkpoint.
            published = engine.step > 0 and not is_store_failure(err)
            raise
        finally:
            logs.close(publish=published)
    return result


def restore(run: RunStore, engine: Engine, log: Callable[[str], None]) -> float:
    """Load the newest verified checkpoint into the engine; returns the training wall time so far."""
    try:
        payload = run.load_checkpoint(log)
    except CheckpointError as err:
        raise UserError(f"cannot resume {run.run_id}: {err}") from None
    if payload is None:
        return 0.0
    try:
        wall_s = checkpoints.restore(engine, payload)
        if run.loaded_step() != engine.step:  # else every later save would lose to LATEST's forged step
            raise checkpoints.CheckpointRefused(
                f"ckpt/LATEST gives step {run.loaded_step()}, the checkpoint holds step {engine.step}"
            )
    except checkpoints.CheckpointRefused as err:
        raise UserError(f"cannot resume {run.run_id} from {run.store.uri}: checkpoint refused: {err}") from None
    log(f"resumed {run.run_id} at step {engine.step}")
    return wall_s


def _evaluate_and_record(
    cfg: RunConfig,
    run: RunStore,
    engine: Engine,
    data: ImageData,
    ood: dict[str, torch.Tensor],
    logs: RunLogs,
    wall_s: float,
    weights: FidWeights,
    log: Callable[[str], None],
) -> dict[str, Any]:
    started = time.perf_counter()
    log(f"evaluating {cfg.run_id}: {cfg.eval.fid_samples} samples for FID, {len(ood)} OOD sets")
    evaluation = evaluate(engine.model, data, ood, log, weights)
    wall_s += time.perf_counter() - started
    result = run_result(cfg, engine.step, evaluation, wall_s)
    if run.owner is not None:
        run.owner.check()  # a process that lost the run publishes nothing
    _keep_previous_evaluation(run)
    save_image(evaluation.samples, buffer := io.BytesIO(), format="png", nrow=8)
    run.store.write(run.key(SAMPLES_FILE), buffer.getvalue())
    logs.images("samples/final", evaluation.samples, engine.step)
    if result.fid is not None:
        logs.writer.add_scalar("eval/fid", result.fid, engine.step)
    run.store.write(run.key(RESULT_FILE), result.to_json())
    return result.model_dump(mode="json")


def _keep_previous_evaluation(run: RunStore) -> None:
    """Before a re-evaluation replaces result.json and samples.png: copy them to evals/<UTC time>/ (nothing the
    runner wrote is lost)."""
    try:
        previous = run.store.read(run.key(RESULT_FILE))
    except KeyError:
        return
    folder = f"{EVALS_DIR}/{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    run.store.write(run.key(f"{folder}/{RESULT_FILE}"), previous)
    try:
        run.store.write(run.key(f"{folder}/{SAMPLES_FILE}"), run.store.read(run.key(SAMPLES_FILE)))
    except KeyError:
        pass


def run_result(cfg: RunConfig, iterations: int, ev: Evaluation, wall_s: float) -> RunResult:
    """result.json of a run evaluated after `iterations` steps (`wall_s`: its training and evaluation time)."""
    device = resolve_device(cfg.runtime.device)
    return RunResult(
        experiment=cfg.experiment,
        profile=cfg.profile,
        seed=cfg.seed,
        smoke=cfg.smoke,
        point=cfg.point,
        run_id=cfg.run_id,
        config_hash=cfg.config_hash,
        iterations=iterations,
        wall_s=round(wall_s, 2),
        device=device_label(device),
        torch=torch.__version__,
        crl=cfg.crl.method,
        norm_direction_split=cfg.energy.norm_direction_split,
        use_generated_negatives=cfg.crl.generated_negatives,
        fid=ev.fid,
        fid_features=ev.fid_features,
        fid_init=ev.fid_init,
        fid_protocol=ev.fid_protocol,
        collapsed=is_collapsed(ev.fid, ev.fid_init),
        auroc=ev.auroc,
        encoder=ev.encoder,
        notes=ev.notes,
    )
