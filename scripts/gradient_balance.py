"""Which part of L_ebm moves the EBM: the gradient of the data-vs-samples contrast against the gradient of the
latent terms that beta weights, on one batch, at initialisation and at each checkpoint a run kept.

    python scripts/gradient_balance.py STORE RUN_ID [RUN_ID ...]

L_ebm(beta) = mean E(x, z) - mean E(x~) + alpha (mean E(x)^2 + mean E(x~)^2). On one batch x, its samples x~ and
its latents z, the contrast is L_ebm(0) (the plain EBM's loss) and the latent part is L_ebm(beta) - L_ebm(0): for
the separated energy -beta mean d^T z; for the coupled one also the vMF normaliser log Phi_d(beta ||u||) in
E(x) and E(x~). Prints, per run and state, the norm of each part's gradient over the EBM's parameters, their
ratio and the cosine between them. Adam scales each parameter's step by its gradient's running size, so where the
latent part's gradient is the larger, the contrast (what makes samples look like data) gets the smaller share
of each step. Reads the run's config.json and checkpoint as `python -m runner evaluate` does; writes nothing.
"""

import sys

import torch

from runner.clel.energy import ebm_loss
from runner.clel.model import training_engine
from runner.config import ExperimentsFile
from runner.data import load_dataset
from runner.run.checkpoints import restore
from runner.run.stored import stored_config
from runner.store import RunStore, open_store


def loss_at(model, f: torch.Tensor, u: torch.Tensor, z: torch.Tensor, beta: float) -> torch.Tensor:
    """L_ebm with the given beta on the step's features (data first, then samples)."""
    half = len(z)
    joint = model.energy.joint(f[:half], u[:half], z, beta=beta)
    marginal = model.energy.marginal(f, u, beta=beta)
    return ebm_loss(joint, marginal[:half], marginal[half:], model.cfg.energy.alpha)


def balance(engine) -> dict[str, float]:
    """Gradient norms of the contrast and the latent part on the batch of the engine's next step."""
    model = engine.model
    torch.manual_seed(12345)
    x = engine.batches(engine.step)
    samples = model.draw_samples(len(x))
    model.ebm.train()
    with torch.no_grad():
        z = model.latent_of_own_view(x) if model.crl is not None else torch.zeros(len(x), model.cfg.crl.latent_dim)
    params = [p for p in model.ebm.parameters() if p.requires_grad]
    f, u = model.ebm(torch.cat([x, samples]))  # one forward: a second would move the spectral norm's estimate

    def gradient(beta: float) -> torch.Tensor:
        loss = loss_at(model, f, u, z, beta)
        return torch.cat([g.flatten() for g in torch.autograd.grad(loss, params, retain_graph=True)])

    contrast = gradient(0.0)
    latent = gradient(model.energy.beta) - contrast
    cosine = torch.nn.functional.cosine_similarity(contrast, latent, dim=0).item() if latent.norm() > 0 else 0.0
    return {"contrast": contrast.norm().item(), "latent": latent.norm().item(), "cosine": cosine}


def report(store_uri: str, run_id: str) -> None:
    run = RunStore(open_store(store_uri), run_id)
    cfg = stored_config(run, ExperimentsFile(), {"runtime.threads": 1})
    data = load_dataset(cfg.data.dataset, cfg.data.image_size)
    for payload in [None, *(payload for _, payload in run.kept_checkpoints())]:
        engine = training_engine(cfg, data, torch.device("cpu"))
        if payload is not None:
            restore(engine, payload)
        b = balance(engine)
        ratio = b["latent"] / b["contrast"] if b["contrast"] else float("inf")
        print(
            f"{run_id:<28} beta {cfg.energy.beta:<5g} split {cfg.energy.norm_direction_split!s:<5} "
            f"step {engine.step:>5}  |grad contrast| {b['contrast']:.3e}  |grad latent| {b['latent']:.3e}"
            f"  latent/contrast {ratio:8.3g}  cosine {b['cosine']:+.3f}"
        )


if __name__ == "__main__":
    torch.set_num_threads(1)
    for run_id in sys.argv[2:]:
        report(sys.argv[1], run_id)
