"""One run, start to finish: the same code under `local` and in a Kubernetes Job (`worker`).

check every input (data, OOD files, FID weights) -> claim the run directory -> resume from the newest verified
checkpoint -> train with periodic checkpoints (and one on SIGTERM) -> evaluate with the EMA models ->
result.json. Nothing is written to the store before every input has been checked.
"""

import io
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torchvision.utils import save_image
from tqdm import tqdm

from runner import checkpoints
from runner.clel.train import Trainer
from runner.config import RunConfig
from runner.data import ImageData, check_data_sources, load_dataset, load_npz_images, ood_sets
from runner.device import device_label, resolve_device
from runner.errors import Preempted, UserError
from runner.evaluate import Evaluation, evaluate
from runner.metrics.inception import FeaturesUnavailable, check_cache_dir, fetch_inception_weights
from runner.result import RESULT_FILE, RunResult, is_collapsed
from runner.run_logs import RunLogs
from runner.store import CheckpointError, PointerConflict, RunStore, open_store


def log_line(message: str) -> None:
    """A progress message on stderr, flushed at once (pods' logs are not terminals)."""
    print(message, file=sys.stderr, flush=True)


class Sigterm:
    """SIGTERM (and Ctrl-C) handling: outside training it stops the run at once; inside, at the end of the step."""

    def __init__(self) -> None:
        self.requested: str | None = None  # the signal's name once one arrived
        self.defer = False

    def __call__(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.requested:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, the last periodic checkpoint stays
        self.requested = signal.Signals(signum).name
        if not self.defer:
            raise Preempted("stopped before or after training: nothing to checkpoint; run the same command again")


@contextmanager
def handle_sigterm(also_interrupt: bool = False) -> Iterator[Sigterm]:
    """Install the SIGTERM handler (and for SIGINT too, if asked) for the duration of a run."""
    handler = Sigterm()
    signals = [signal.SIGTERM, *([signal.SIGINT] if also_interrupt else [])]
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield handler
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def fid_weights(cfg: RunConfig, log: Callable[[str], None]) -> tuple[Path | None, str | None]:
    """(verified Inception weights, None) when FID uses Inception; (None, why) when they cannot be had here."""
    if cfg.fid_features != "inception":
        return None, None
    try:
        return fetch_inception_weights(cfg.eval.inception_weights), None
    except FeaturesUnavailable as err:
        log(f"FID: {err}; fid will be recorded as missing")
        return None, str(err)


def check_inputs(cfg: RunConfig) -> None:
    """What can be checked of a run's inputs without loading its dataset (a sweep checks every run with this
    before it starts the first): the cache directory, the data root, the OOD files and configured FID weights."""
    check_cache_dir()
    rt = cfg.runtime
    check_data_sources([cfg.data.dataset, *cfg.data.ood], rt.data_root or None)
    for path in rt.ood_files:
        load_npz_images(path, cfg.data.image_size)
    if cfg.fid_features == "inception" and cfg.eval.inception_weights:
        fetch_inception_weights(cfg.eval.inception_weights)


def execute(
    cfg: RunConfig,
    store_uri: str,
    log: Callable[[str], None] = log_line,
    progress_position: int = 0,
    reeval: bool = False,
) -> dict[str, Any]:
    """Train (or resume) and evaluate one run; returns result.json's content.

    A finished run (its result.json has this config's hash) is left alone and its stored result returned, unless
    reeval: then it is evaluated again from its last checkpoint, and the result it replaces is kept under
    evals/. progress_position: the line of the training bar (1 below a sweep's overall bar).
    """
    with handle_sigterm(also_interrupt=True) as sigterm:
        return _execute(cfg, store_uri, log, sigterm, progress_position, reeval)


def stored_result(run: RunStore, cfg: RunConfig) -> RunResult | None:
    """The run's result.json when it is readable and has this config's hash (the run is finished), else None."""
    try:
        result = RunResult.from_json(run.store.read(run.key(RESULT_FILE)), cfg.run_id)
    except (KeyError, ValueError):
        return None
    return result if result.config_hash == cfg.config_hash else None


def _execute(
    cfg: RunConfig, store_uri: str, log: Callable[[str], None], sigterm: Sigterm, position: int, reeval: bool
) -> dict[str, Any]:
    expected_hash = os.environ.get("CLEL_CONFIG_HASH")
    if expected_hash and expected_hash != cfg.config_hash:
        raise UserError(
            f"{cfg.run_id}: this image resolves config {cfg.config_hash}, the Job was rendered for {expected_hash} "
            "(experiments.toml in the image differs from the one submitted)"
        )
    check_inputs(cfg)  # a bad input is refused even when the run is finished: a typo never passes unseen
    if cfg.runtime.threads:
        torch.set_num_threads(cfg.runtime.threads)
    device = resolve_device(cfg.runtime.device)
    store = open_store(store_uri)
    store.check()
    run = RunStore(store, cfg.run_id, cfg.runtime.keep_checkpoints)
    finished = stored_result(run, cfg)
    if finished is not None and not reeval:
        log(f"{cfg.run_id}: already finished in {store.uri}; its stored result (--reeval evaluates it again)")
        return finished.model_dump(mode="json")
    rt = cfg.runtime
    data_started = time.perf_counter()
    data = load_dataset(cfg.data.dataset, cfg.data.image_size, rt.data_root or None, rt.download)
    ood = ood_sets(data, cfg.data.ood, rt.ood_files, rt.data_root or None, rt.download)
    inception, unavailable = fid_weights(cfg, log)
    data_s = time.perf_counter() - data_started
    with run.exclusive():
        run.claim(cfg.hashed_dict(), cfg.config_hash, log)
        train_started = time.perf_counter()
        trainer = Trainer(cfg, data, device)
        wall_s = _restore(run, trainer, log)
        logs = RunLogs(run, trainer.step, log)
        published = False
        try:
            wall_s = _train(cfg, run, trainer, logs, wall_s, sigterm, position)
            eval_started = time.perf_counter()
            result = _evaluate_and_record(
                cfg, run, trainer, data, ood, logs, wall_s, (inception, unavailable), log, position
            )
            published = True
            log(
                f"{cfg.run_id}: this process: data {data_s:.1f} s, model and training "
                f"{eval_started - train_started:.1f} s, evaluation {time.perf_counter() - eval_started:.1f} s"
            )
        except (PointerConflict, UserError):
            raise  # another writer owns the run, or bad input: publish nothing
        except BaseException:
            published = trainer.step > 0  # logs up to the last checkpoint are the store's; newer lines are dropped
            raise
        finally:
            logs.close(publish=published)
    return result


def _restore(run: RunStore, trainer: Trainer, log: Callable[[str], None]) -> float:
    """Load the newest verified checkpoint into the trainer; returns the training wall time so far."""
    try:
        payload = run.load_checkpoint(log)
    except CheckpointError as err:
        raise UserError(f"cannot resume {run.run_id}: {err}") from None
    if payload is None:
        return 0.0
    try:
        wall_s = checkpoints.restore(trainer, payload)
        if run.loaded_step() != trainer.step:  # else every later save would lose to LATEST's forged step
            raise checkpoints.CheckpointRefused(
                f"ckpt/LATEST gives step {run.loaded_step()}, the checkpoint holds step {trainer.step}"
            )
    except checkpoints.CheckpointRefused as err:
        raise UserError(f"cannot resume {run.run_id} from {run.store.uri}: checkpoint refused: {err}") from None
    log(f"resumed {run.run_id} at step {trainer.step}")
    return wall_s


def _train(
    cfg: RunConfig, run: RunStore, trainer: Trainer, logs: RunLogs, wall_s: float, sigterm: Sigterm, position: int
) -> float:
    iterations, rt = cfg.train.iterations, cfg.runtime
    bar = tqdm(
        total=iterations,
        initial=trainer.step,
        desc=cfg.run_id,
        disable=not rt.progress,
        dynamic_ncols=True,
        position=position,
        leave=position == 0,
    )
    sigterm.defer = True
    with bar:
        while trainer.step < iterations:
            started = time.perf_counter()
            metrics = trainer.train_step()
            wall_s += time.perf_counter() - started
            step = trainer.step
            bar.set_postfix(
                loss=f"{metrics.loss:.4g}",
                e_data=f"{metrics.energy_data:.2e}",
                e_samp=f"{metrics.energy_samples:.2e}",
                refresh=False,
            )
            if step < iterations:
                bar.update()
            else:
                bar.n = step  # the last step is drawn once, by the bar's close (an update would draw it twice)
            if step % rt.log_every == 0 or step == iterations:
                logs.scalars(step, {**asdict(metrics), **trainer.lr()})
            if sigterm.requested or step % rt.checkpoint_every == 0 or step == iterations:
                logs.images("samples/replay_buffer", trainer.sampler.buffer[:64], step)
                run.save_checkpoint(step, checkpoints.to_bytes(trainer, wall_s))
                logs.publish()
            else:
                logs.progress()
            if sigterm.requested:
                raise Preempted(
                    f"{sigterm.requested}: {cfg.run_id} checkpointed at step {step}; run the same command to resume"
                )
    sigterm.defer = False
    return wall_s


def _evaluate_and_record(
    cfg: RunConfig,
    run: RunStore,
    trainer: Trainer,
    data: ImageData,
    ood: dict[str, torch.Tensor],
    logs: RunLogs,
    wall_s: float,
    inception: tuple[Path | None, str | None],
    log: Callable[[str], None],
    position: int,
) -> dict[str, Any]:
    started = time.perf_counter()
    log(f"evaluating {cfg.run_id}: {cfg.eval.fid_samples} samples for FID, {len(ood)} OOD sets")
    evaluation = evaluate(trainer, data, ood, log, *inception, position)
    wall_s += time.perf_counter() - started
    result = _result(cfg, trainer, evaluation, trainer.device, wall_s)
    _keep_previous_evaluation(run)
    save_image(evaluation.samples, buffer := io.BytesIO(), format="png", nrow=8)
    run.store.write(run.key("samples.png"), buffer.getvalue())
    logs.images("samples/final", evaluation.samples, trainer.step)
    if result.fid is not None:
        logs.writer.add_scalar("eval/fid", result.fid, trainer.step)
    run.store.write(run.key(RESULT_FILE), result.to_json())
    return result.model_dump(mode="json")


def _keep_previous_evaluation(run: RunStore) -> None:
    """Before a re-evaluation replaces result.json and samples.png: copy them to evals/<UTC time>/ (nothing the
    runner wrote is lost)."""
    try:
        previous = run.store.read(run.key(RESULT_FILE))
    except KeyError:
        return
    folder = f"evals/{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    run.store.write(run.key(f"{folder}/{RESULT_FILE}"), previous)
    try:
        run.store.write(run.key(f"{folder}/samples.png"), run.store.read(run.key("samples.png")))
    except KeyError:
        pass


def _result(cfg: RunConfig, trainer: Trainer, ev: Evaluation, device: torch.device, wall_s: float) -> RunResult:
    return RunResult(
        experiment=cfg.experiment,
        profile=cfg.profile,
        seed=cfg.seed,
        smoke=cfg.smoke,
        run_id=cfg.run_id,
        config_hash=cfg.config_hash,
        iterations=trainer.step,
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
        notes=ev.notes,
    )
