"""The training loop of a run: engine steps with the progress bar, the logs at their cadence, checkpoints at theirs
and at the end, and a checkpoint at the end of the step when SIGTERM or Ctrl-C arrives."""

import time

from runner.clel.engine import Engine
from runner.config import RunConfig
from runner.errors import Preempted
from runner.run import checkpoints
from runner.run.bars import progress_bar
from runner.run.logs import RunLogs
from runner.run.signals import Sigterm
from runner.store import RunStore


def train(cfg: RunConfig, run: RunStore, engine: Engine, logs: RunLogs, wall_s: float, sigterm: Sigterm) -> float:
    """Train from the engine's step to the run's last (the encoder's pre-training steps, then train.iterations);
    returns the training wall time (so far in total)."""
    iterations, rt = cfg.total_steps, cfg.runtime
    bar = progress_bar(total=iterations, initial=engine.step, desc=cfg.run_id, disable=not rt.progress)
    sigterm.defer = True
    with bar:
        while engine.step < iterations:
            started = time.perf_counter()
            metrics = engine.train_step()
            wall_s += time.perf_counter() - started
            step = engine.step
            if metrics.energy_data is None:  # the encoder's pre-training: no EBM yet
                bar.set_postfix(loss_crl=f"{metrics.loss_crl:.4g}", refresh=False)
            else:
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
                logs.scalars(step, {**metrics.as_dict(), **engine.lr()})
            if sigterm.requested or step % rt.checkpoint_every == 0 or step == iterations:
                logs.images("samples/replay_buffer", engine.model.buffer[:64], step)
                run.save_checkpoint(step, checkpoints.to_bytes(engine, wall_s))
                logs.publish()
            else:
                logs.progress()
            if sigterm.requested:
                raise Preempted(
                    f"{sigterm.requested}: {cfg.run_id} checkpointed at step {step}; run the same command to resume"
                )
    sigterm.defer = False
    return wall_s
