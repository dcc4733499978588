"""One run, start to finish: the same code under `local` and in a Kubernetes Job (`worker`).

claim the run directory -> load data -> resume from the newest verified checkpoint -> train with
periodic checkpoints (and one on SIGTERM) -> evaluate with the EMA models -> result.json.
"""

import io
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import make_grid, save_image
from tqdm import tqdm

from runner.clel.train import Trainer
from runner.config import RunConfig
from runner.data import load_dataset, ood_sets
from runner.device import device_label, resolve_device
from runner.errors import Preempted, UserError
from runner.evaluate import evaluate
from runner.store import CheckpointError, RunStore, open_store

LOG_FILES = ("metrics.jsonl",)


def log_line(message: str) -> None:
    """A progress message on stderr, flushed at once (pods' logs are not terminals)."""
    print(message, file=sys.stderr, flush=True)


class Sigterm:
    """SIGTERM handling: outside training it stops the run at once; inside, at the end of the current step."""

    def __init__(self) -> None:
        self.requested = False
        self.defer = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.requested = True
        if not self.defer:
            raise Preempted("SIGTERM before or after training: nothing to checkpoint; run the same command again")


@contextmanager
def handle_sigterm() -> Iterator[Sigterm]:
    """Install the SIGTERM handler for the duration of a run."""
    handler = Sigterm()
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield handler
    finally:
        signal.signal(signal.SIGTERM, previous)


class RunLogs:
    """metrics.jsonl and TensorBoard events in a local directory, mirrored to the store at each checkpoint."""

    def __init__(self, run: RunStore, start_step: int):
        self.run = run
        local = run.store.local_path(run.key(""))
        self.mirrored = local is None
        self.dir = Path(tempfile.mkdtemp(prefix=f"{run.run_id}-")) if self.mirrored else local
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.mirrored:
            for key in run.store.list(run.key("")):
                name = key.removeprefix(run.key(""))
                if name in LOG_FILES or name.startswith("events.out.tfevents"):
                    run.store.download(key, self.dir / name)
        self._truncate_metrics(start_step)
        self.metrics = open(self.dir / "metrics.jsonl", "a")
        self.writer = SummaryWriter(str(self.dir), purge_step=start_step or None)

    def _truncate_metrics(self, start_step: int) -> None:
        """Drop lines logged after the checkpoint we resume from (they will be logged again)."""
        path = self.dir / "metrics.jsonl"
        if not path.exists():
            return
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= start_step]
        path.write_text("".join(line + "\n" for line in kept))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.metrics.write(json.dumps({"step": step, **values}) + "\n")
        for name, value in values.items():
            self.writer.add_scalar(f"train/{name}", value, step)

    def images(self, tag: str, images: torch.Tensor, step: int) -> None:
        self.writer.add_image(tag, make_grid(images[:64].float().cpu(), nrow=8), step)

    def sync(self) -> None:
        """Flush, and upload the log files when the store is remote."""
        self.metrics.flush()
        self.writer.flush()
        if self.mirrored:
            for path in sorted(self.dir.iterdir()):
                if path.name in LOG_FILES or path.name.startswith("events.out.tfevents"):
                    self.run.store.upload(self.run.key(path.name), path)

    def close(self) -> None:
        self.sync()
        self.metrics.close()
        self.writer.close()
        if self.mirrored:
            shutil.rmtree(self.dir, ignore_errors=True)


def save_checkpoint(run: RunStore, trainer: Trainer, wall_s: float) -> None:
    buffer = io.BytesIO()
    torch.save({**trainer.state_dict(), "wall_s": wall_s}, buffer)
    run.save_checkpoint(trainer.step, buffer.getvalue())


def restore(run: RunStore, trainer: Trainer, log: Callable[[str], None]) -> float:
    """Load the newest verified checkpoint into the trainer; returns the training wall time so far."""
    try:
        payload = run.load_checkpoint(log)
    except CheckpointError as err:
        raise UserError(f"cannot resume {run.run_id}: {err}") from None
    if payload is None:
        return 0.0
    try:
        state = torch.load(io.BytesIO(payload), map_location=trainer.device, weights_only=True)
        trainer.load_state_dict(state)
    except Exception as err:
        raise UserError(f"cannot resume {run.run_id}: its checkpoint does not load ({err})") from None
    log(f"resumed {run.run_id} at step {trainer.step}")
    return float(state.get("wall_s", 0.0))


def execute(cfg: RunConfig, store_uri: str, log: Callable[[str], None] = log_line) -> dict[str, Any]:
    """Train (or resume) and evaluate one run; returns result.json's content."""
    with handle_sigterm() as sigterm:
        return _execute(cfg, store_uri, log, sigterm)


def _execute(cfg: RunConfig, store_uri: str, log: Callable[[str], None], sigterm: Sigterm) -> dict[str, Any]:
    expected_hash = os.environ.get("CLEL_CONFIG_HASH")
    if expected_hash and expected_hash != cfg.config_hash:
        raise UserError(
            f"{cfg.run_id}: this image resolves config {cfg.config_hash}, the Job was rendered for {expected_hash} "
            "(experiments.toml in the image differs from the one submitted)"
        )
    if cfg.runtime.threads:
        torch.set_num_threads(cfg.runtime.threads)
    device = resolve_device(cfg.runtime.device)
    store = open_store(store_uri)
    store.check()
    run = RunStore(store, cfg.run_id, cfg.runtime.keep_checkpoints)
    rt = cfg.runtime
    data = load_dataset(cfg.data.dataset, cfg.data.image_size, rt.data_root or None, rt.download)
    ood = ood_sets(data, cfg.data.ood, rt.ood_files, rt.data_root or None, rt.download)
    run.claim(cfg.hashed_dict(), cfg.config_hash)
    trainer = Trainer(cfg, data, device)
    wall_s = restore(run, trainer, log)
    logs = RunLogs(run, trainer.step)
    try:
        wall_s = _train(cfg, run, trainer, logs, wall_s, sigterm)
        started = time.perf_counter()
        log(f"evaluating {cfg.run_id}: {cfg.eval.fid_samples} samples for FID, {len(ood)} OOD sets")
        evaluation = evaluate(trainer, data, ood, log)
        wall_s += time.perf_counter() - started
        result = _result(cfg, trainer, evaluation, device, wall_s)
        save_image(evaluation.samples, buffer := io.BytesIO(), format="png", nrow=8)
        store.write(run.key("samples.png"), buffer.getvalue())
        logs.images("samples/final", evaluation.samples, trainer.step)
        if result["fid"] is not None:
            logs.writer.add_scalar("eval/fid", result["fid"], trainer.step)
        run.write_json("result.json", result)
    finally:
        logs.close()
    return result


def _train(cfg: RunConfig, run: RunStore, trainer: Trainer, logs: RunLogs, wall_s: float, sigterm: Sigterm) -> float:
    iterations, rt = cfg.train.iterations, cfg.runtime
    bar = tqdm(total=iterations, initial=trainer.step, desc=cfg.run_id, disable=not rt.progress, dynamic_ncols=True)
    sigterm.defer = True
    with bar:
        while trainer.step < iterations:
            started = time.perf_counter()
            metrics = trainer.train_step()
            wall_s += time.perf_counter() - started
            step = trainer.step
            bar.update()
            bar.set_postfix(
                loss=f"{metrics.loss:.3f}",
                e_data=f"{metrics.energy_data:.3f}",
                e_samp=f"{metrics.energy_samples:.3f}",
                refresh=False,
            )
            if step % rt.log_every == 0 or step == iterations:
                logs.scalars(step, {**asdict(metrics), **trainer.lr()})
            if sigterm.requested or step % rt.checkpoint_every == 0 or step == iterations:
                logs.images("samples/replay_buffer", trainer.sampler.buffer[:64], step)
                save_checkpoint(run, trainer, wall_s)
                logs.sync()
            if sigterm.requested:
                raise Preempted(f"SIGTERM: {cfg.run_id} checkpointed at step {step}; run the same command to resume")
    sigterm.defer = False
    return wall_s


def _result(cfg: RunConfig, trainer: Trainer, ev, device: torch.device, wall_s: float) -> dict[str, Any]:
    return {
        "experiment": cfg.experiment,
        "profile": cfg.profile,
        "seed": cfg.seed,
        "run_id": cfg.run_id,
        "config_hash": cfg.config_hash,
        "iterations": trainer.step,
        "wall_s": round(wall_s, 2),
        "device": device_label(device),
        "torch": torch.__version__,
        "crl": cfg.crl.method,
        "norm_direction_split": cfg.energy.norm_direction_split,
        "use_generated_negatives": cfg.crl.generated_negatives,
        "fid": ev.fid,
        "fid_features": ev.fid_features,
        "fid_init": ev.fid_init,
        "fid_protocol": ev.fid_protocol,
        "auroc": ev.auroc,
        "notes": ev.notes,
    }
