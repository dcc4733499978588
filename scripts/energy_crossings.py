"""When the coupled energy's vMF term switches on, and what the energy's terms are at the end, per run, from the
runs' metrics.jsonl (the training log of every step the run logged).

    python scripts/energy_crossings.py STORE RUN_ID [RUN_ID ...]

Per run: beta (from config.json), the first logged step where kappa = beta ||u|| of the data passes 5 (where
log Phi_d(kappa) turns from quadratic to linear in kappa) and where log Phi_d of the data passes 1; then, averaged
over the last 100 logged steps, kappa, log Phi_d, 1/2 ||f||^2 of the data, the data-versus-samples contrast
E(x~) - E(x), and the latent alignment cos(u, z). For the separated energy kappa is logged as beta ||u|| too,
but no term of E(x) uses it. Reads the files as data (runner.store.metrics_file.metrics_records keeps only
well-formed lines).
"""

import json
import sys
from pathlib import Path

from runner.layout import CONFIG_FILE, METRICS_FILE
from runner.store.metrics_file import metrics_records

KAPPA_KNEE = 5.0  # log Phi_d(kappa) ~ kappa^2 / (2d) below, ~ kappa - ... above (d = 128 on the tiny profile)
LOG_PHI_ON = 1.0
TAIL_STEPS = 100


def first_step(rows: list[dict], key: str, above: float) -> str:
    return next((str(r["step"]) for r in rows if (r.get(key) or 0.0) > above), "never")


def tail_mean(rows: list[dict], key: str) -> float:
    last = rows[-1]["step"]
    values = [r[key] for r in rows if r["step"] > last - TAIL_STEPS and isinstance(r.get(key), int | float)]
    return sum(values) / len(values) if values else float("nan")


def report(store: Path, run_id: str) -> None:
    rows = metrics_records((store / run_id / METRICS_FILE).read_text(errors="replace"))
    beta = json.loads((store / run_id / CONFIG_FILE).read_text())["config"]["energy"]["beta"]
    contrast = tail_mean(rows, "energy_samples") - tail_mean(rows, "energy_data")
    print(
        f"{run_id:<32} beta {beta:<5g} kappa>{KAPPA_KNEE:g} at {first_step(rows, 'kappa_data', KAPPA_KNEE):>5}"
        f"  logPhi>{LOG_PHI_ON:g} at {first_step(rows, 'log_normalizer_data', LOG_PHI_ON):>5}"
        f"  | last {TAIL_STEPS} steps: kappa {tail_mean(rows, 'kappa_data'):9.3g}"
        f"  logPhi {tail_mean(rows, 'log_normalizer_data'):8.3g}  1/2|f|^2 {tail_mean(rows, 'half_f_sq_data'):8.3g}"
        f"  E(x~)-E(x) {contrast:+9.2e}  cos(u,z) {tail_mean(rows, 'latent_alignment'):.3f}"
    )


if __name__ == "__main__":
    for run_id in sys.argv[2:]:
        report(Path(sys.argv[1]), run_id)
