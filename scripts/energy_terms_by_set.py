"""The marginal energy's terms of a stored run's final EMA model, per image set: which term ranks an OOD set above
the test digits. For the coupled energy E(x) = 1/2 ||f||^2 - log Phi_d(beta ||u||); for the separated one the
second term is 0.

    python scripts/energy_terms_by_set.py STORE RUN_ID [RUN_ID ...]

Prints, per run and set (test digits and each OOD set): the mean of 1/2 ||f||^2, ||u||, log Phi_d(kappa) and E(x),
and the AUROC (test digits as positives, scored by -term) that each term alone would give. Reads the run's
config.json and checkpoint as `python -m runner evaluate` does (validated data); writes nothing.
"""

import sys

import numpy as np
import torch
from torch.nn.utils import parametrize

from runner.clel.model import training_engine
from runner.clel.vmf import log_vmf_normalizer
from runner.config import ExperimentsFile
from runner.data import load_dataset, ood_sets, to_unit_float
from runner.metrics.ood import auroc
from runner.run.execute import restore
from runner.run.stored import stored_config
from runner.store import RunStore, open_store


@torch.no_grad()
def terms(model, images: torch.Tensor) -> dict[str, np.ndarray]:
    """Per image: 1/2 ||f||^2, ||u||, log Phi_d(beta ||u||) and E(x), with the EMA EBM."""
    ebm, energy = model.ema_ebm, model.energy
    out: dict[str, list[torch.Tensor]] = {"half_f_sq": [], "u_norm": [], "log_phi": [], "energy": []}
    with parametrize.cached():
        for first in range(0, len(images), 500):
            x = to_unit_float(images[first : first + 500])
            f, u = ebm(x)
            coupled = not energy.norm_direction_split and energy.beta != 0
            kappa = energy.beta * u.norm(dim=1)
            log_phi = log_vmf_normalizer(kappa, energy.latent_dim) if coupled else torch.zeros_like(kappa)
            out["half_f_sq"].append(0.5 * f.pow(2).sum(dim=1))
            out["u_norm"].append(u.norm(dim=1))
            out["log_phi"].append(log_phi)
            out["energy"].append(energy.marginal(f, u))
    return {name: torch.cat(parts).double().numpy() for name, parts in out.items()}


def report(store_uri: str, run_id: str) -> None:
    run = RunStore(open_store(store_uri), run_id)
    cfg = stored_config(run, ExperimentsFile(), {"runtime.threads": 1})
    data = load_dataset(cfg.data.dataset, cfg.data.image_size)
    sets = {"test digits": data.test, **ood_sets(data, cfg.data.ood, [])}
    engine = training_engine(cfg, data, torch.device("cpu"))
    restore(run, engine, lambda _: None)
    per_set = {name: terms(engine.model, images) for name, images in sets.items()}
    print(f"\n{run_id} (step {engine.step}, beta {cfg.energy.beta}, split {cfg.energy.norm_direction_split})")
    names = ("half_f_sq", "u_norm", "log_phi", "energy")
    print(f"{'set':<16}" + "".join(f"{n:>14}" for n in names) + "   AUROC by -E(x), by -1/2||f||^2, by +log Phi")
    test = per_set["test digits"]
    for name, values in per_set.items():
        means = "".join(f"{values[n].mean():>14.4g}" for n in names)
        if name == "test digits":
            print(f"{name:<16}{means}")
            continue
        by = [
            auroc(-test["energy"], -values["energy"]),
            auroc(-test["half_f_sq"], -values["half_f_sq"]),
            auroc(test["log_phi"], values["log_phi"]),
        ]
        print(f"{name:<16}{means}   {by[0]:.3f}, {by[1]:.3f}, {by[2]:.3f}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    for run_id in sys.argv[2:]:
        report(sys.argv[1], run_id)
