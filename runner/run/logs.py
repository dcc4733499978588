"""A run's logs: metrics.jsonl and TensorBoard events, written locally and published to the store.

Logs are written in a private temporary directory and copied to the store only by `publish()`, which the run
calls after each committed checkpoint (and `progress()` every minute for metrics.jsonl alone): a writer that
loses the race for a run, or crashes, leaves nothing that a resume or summarize would read twice. Files
fetched from the store are untrusted: only names this module writes are fetched, never a path.
"""

import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import make_grid

from runner.layout import METRICS_FILE, is_log_file
from runner.store import RunStore
from runner.store.metrics_file import metrics_lines

PROGRESS_EVERY_S = 60.0


class RunLogs:
    """metrics.jsonl and TensorBoard events of one run, resumed at start_step."""

    def __init__(self, run: RunStore, start_step: int, log: Callable[[str], None]):
        self.run = run
        self.dir = Path(tempfile.mkdtemp(prefix=f"clel-{run.run_id}-"))
        prefix = run.key("")
        for key in run.store.list(prefix):
            name = key.removeprefix(prefix)
            if is_log_file(name):
                run.store.download(key, self.dir / name)
        self._truncate_metrics(start_step, log)
        self.metrics = open(self.dir / METRICS_FILE, "a")
        # Events after the checkpoint we resume from are dropped (a resume from an older checkpoint logs them
        # again); those at its step stay: purging from start_step would hide that step's scalars and images.
        self.writer = SummaryWriter(str(self.dir), purge_step=start_step + 1 if start_step else None)
        self.last_progress = time.monotonic()

    def _truncate_metrics(self, start_step: int, log: Callable[[str], None]) -> None:
        """Keep the lines up to the checkpoint we resume from (later ones are logged again); drop garbage."""
        path = self.dir / METRICS_FILE
        if not path.exists():
            return
        kept, dropped = metrics_lines(path.read_text(errors="replace"), start_step)
        if dropped:
            log(f"{self.run.run_id}: {dropped} unreadable line(s) of {METRICS_FILE} dropped")
        path.write_text("".join(line + "\n" for line in kept))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """One metrics.jsonl line (with the wall-clock time, for progress and it/s) and the TensorBoard scalars."""
        finite = {name: value for name, value in values.items() if math.isfinite(value)}
        self.metrics.write(json.dumps({"step": step, "time": round(time.time(), 3), **finite}) + "\n")
        for name, value in values.items():
            self.writer.add_scalar(f"train/{name}", value, step)

    def images(self, tag: str, images: torch.Tensor, step: int) -> None:
        """An image grid (at most 64 images) in TensorBoard."""
        self.writer.add_image(tag, make_grid(images[:64].float().cpu(), nrow=8), step)

    def publish(self) -> None:
        """Flush and copy every log file to the store (after a committed checkpoint)."""
        self.metrics.flush()
        self.writer.flush()
        for path in sorted(self.dir.iterdir()):
            if is_log_file(path.name):
                self.run.store.upload(self.run.key(path.name), path)
        self.last_progress = time.monotonic()

    def progress(self) -> None:
        """Copy metrics.jsonl to the store if a minute has passed since the last copy (for `status`)."""
        if time.monotonic() - self.last_progress >= PROGRESS_EVERY_S:
            self.metrics.flush()
            self.run.store.upload(self.run.key(METRICS_FILE), self.dir / METRICS_FILE)
            self.last_progress = time.monotonic()

    def close(self, publish: bool) -> None:
        """Close the files, publish them if asked, and remove the temporary directory."""
        try:
            if publish:
                self.publish()
        except Exception as err:  # the run's own failure matters more than its logs
            print(f"logs of {self.run.run_id} not published: {err}", file=sys.stderr, flush=True)
        finally:
            self.metrics.close()
            self.writer.close()
            shutil.rmtree(self.dir, ignore_errors=True)
