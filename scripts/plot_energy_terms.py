"""Plot what the energy does during training, from the runs' metrics.jsonl: ||u||, kappa = beta ||u||, the vMF
term log Phi_d(kappa) against 1/2 ||f||^2, and the data and sample energies, per run (data solid, samples dashed).

    python scripts/plot_energy_terms.py STORE OUT.png RUN_ID [RUN_ID ...]

Reads the files as data (runner.store.metrics_file.metrics_records keeps only well-formed lines).
"""

import sys
from pathlib import Path

from matplotlib.figure import Figure

from runner.layout import METRICS_FILE
from runner.store.metrics_file import metrics_records

PANELS = [
    ("u_norm", "||u|| (projector output)", "linear"),
    ("kappa", "kappa = beta ||u||", "log"),
    ("log_normalizer", "log Phi_d(kappa) (0 for the separated energy)", "symlog"),
    ("half_f_sq", "1/2 ||f||^2", "log"),
    ("energy", "E(x) = 1/2 ||f||^2 - log Phi_d(kappa)", "symlog"),
    ("loss_crl", "the encoder's loss", "linear"),
]


def series(store: Path, run_id: str) -> list[dict]:
    text = (store / run_id / METRICS_FILE).read_text(errors="replace")
    return metrics_records(text)


def plot(store: Path, out: Path, run_ids: list[str]) -> None:
    fig = Figure(figsize=(15, 8), dpi=100, layout="constrained")
    axes = fig.subplots(2, 3).ravel()
    for index, run_id in enumerate(run_ids):
        rows = series(store, run_id)
        steps = [r["step"] for r in rows]
        color = f"C{index % 10}"
        for ax, (name, title, scale) in zip(axes, PANELS, strict=True):
            for part, style in (("data", "-"), ("samples", "--")):
                key = name if name == "loss_crl" else f"{name}_{part}"
                values = [r.get(key) for r in rows]
                if all(v is None for v in values):
                    continue
                label = run_id if part == "data" else None
                ax.plot(steps, values, style, color=color, linewidth=1, label=label)
                if name == "loss_crl":
                    break
            ax.set_title(title, fontsize=9)
            ax.set_yscale(scale)
            ax.set_xlabel("step", fontsize=8)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{store}: data (solid) and samples (dashed)", fontsize=10)
    fig.savefig(out)


if __name__ == "__main__":
    plot(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
