"""TensorBoard HParams: one experiment summary and one session per run under <store>/tensorboard/."""

import tempfile
import time
from pathlib import Path
from typing import Any

from runner.layout import TENSORBOARD_DIR
from runner.report.stats import MetricKey, profile_label
from runner.report.verdicts import BETTER, NO_DIFFERENCE, WORSE, Comparison
from runner.result import RunResult
from runner.store import Store

HPARAMS = ("experiment", "profile", "crl", "norm_direction_split", "seed", "use_generated_negatives")


def hparam_values(r: RunResult) -> dict[str, Any]:
    """A run's hparams; use_generated_negatives as a string ("true", "false", "n/a") so it has one type."""
    negatives = r.use_generated_negatives
    return {name: getattr(r, name) for name in HPARAMS} | {
        "use_generated_negatives": negatives if isinstance(negatives, str) else str(negatives).lower()
    }


def _event(summary: Any, step: int = 0) -> Any:
    from tensorboard.compat.proto import event_pb2

    return event_pb2.Event(wall_time=time.time(), step=step, summary=summary)


VERDICT_VALUES = {BETTER: 1.0, WORSE: -1.0, NO_DIFFERENCE: 0.0}
VERDICT_PARTS = ("p", "p_holm", "verdict", "mde", "seeds_needed")


def verdict_scalars(c: Comparison) -> dict[str, float]:
    """An arm's comparison as HParams metrics `<tag>/<part>` (verdict: +1 better, -1 worse, 0 no difference)."""
    values = {"p": c.p, "p_holm": c.p_holm, "verdict": VERDICT_VALUES.get(c.verdict), "mde": c.mde}
    values["seeds_needed"] = None if c.seeds_needed is None else float(c.seeds_needed)
    return {f"{c.key.tag}/{part}": value for part, value in values.items() if value is not None}


def _experiment_summary(results: list[RunResult], metrics: list[MetricKey], comparisons: list[Comparison]) -> Any:
    from tensorboard.plugins.hparams import summary_v2 as hp

    values = [hparam_values(r) for r in results]
    hparams = [hp.HParam(name, hp.Discrete(sorted({v[name] for v in values}))) for name in HPARAMS]
    described = [hp.Metric(key.tag, display_name=key.column) for key in metrics]
    tested = [key for key in metrics if any(c.key == key and c.tested for c in comparisons)]
    described += [
        hp.Metric(f"{key.tag}/{part}", display_name=f"{key.column}_{part}") for key in tested for part in VERDICT_PARTS
    ]
    return hp.hparams_config_pb(hparams, described, time_created_secs=time.time())


def _session_events(r: RunResult, metrics: list[MetricKey], verdicts: dict[str, float]) -> list[Any]:
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
    from tensorboard.plugins.hparams import summary_v2 as hp

    now = time.time()
    end = plugin_data_pb2.HParamsPluginData(
        session_end_info=plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS, end_time_secs=now)
    )
    end_summary = summary_pb2.Summary()
    end_summary.value.add(
        tag=metadata.SESSION_END_INFO_TAG, metadata=metadata.create_summary_metadata(end), tensor=metadata.NULL_TENSOR
    )
    scalars = summary_pb2.Summary()
    for key in metrics:
        if (value := key.value(r)) is not None:
            scalars.value.add(tag=key.tag, simple_value=value)
    for tag, value in verdicts.items():
        scalars.value.add(tag=tag, simple_value=value)
    start = hp.hparams_pb(hparam_values(r), trial_id=r.run_id, start_time_secs=now)
    return [_event(start), _event(scalars, r.iterations), _event(end_summary, r.iterations)]


def _write_events(logdir: Path, events: list[Any]) -> None:
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(logdir))
    for event in events:
        writer.add_event(event)
    writer.close()


def write_hparams(
    store: Store, results: list[RunResult], metrics: list[MetricKey], comparisons: list[Comparison] | None = None
) -> list[str]:
    """<store>/tensorboard/: the HParams experiment, and a session per run (tensorboard/<run_id>/) with its metrics
    and its arm's verdict columns (p, p_holm, verdict, mde, seeds_needed per tested metric).

    Written to a temporary directory, uploaded, then every older file under tensorboard/ is deleted, so
    re-running replaces the sessions (and drops runs no longer summarized). Returns the keys written.
    """
    written = []
    with tempfile.TemporaryDirectory(prefix="clel-tensorboard-") as tmp:
        root = Path(tmp)
        comparisons = comparisons or []
        _write_events(root, [_event(_experiment_summary(results, metrics, comparisons))])
        for r in results:
            group = (r.experiment, profile_label(r))
            arm = [c for c in comparisons if c.tested and (c.experiment, c.profile) == group]
            verdicts = {tag: value for c in arm for tag, value in verdict_scalars(c).items()}
            _write_events(root / r.run_id, _session_events(r, metrics, verdicts))
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            key = f"{TENSORBOARD_DIR}/{path.relative_to(root).as_posix()}"
            store.upload(key, path)
            written.append(key)
    for old in store.list(f"{TENSORBOARD_DIR}/"):
        if old not in written:
            store.delete(old)
    return written
