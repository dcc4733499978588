"""CLEL's energies: separated (norm-direction split) and coupled, and L_ebm (docs/ARCHITECTURE.md, "The energies")."""

import torch
import torch.nn.functional as F

from runner.clel.vmf import log_vmf_normalizer


def _wide(x: torch.Tensor) -> torch.Tensor:
    """At least float32: bf16 activations are summed in float32; float64 (exact checks) stays float64."""
    return x if x.dtype == torch.float64 else x.float()


class LatentEnergy:
    """E(x, z) and the marginal E(x) from f = f(x) and u = g(f(x)); beta = 0 is the plain EBM."""

    def __init__(self, beta: float, norm_direction_split: bool, latent_dim: int):
        self.beta = beta
        self.norm_direction_split = norm_direction_split
        self.latent_dim = latent_dim

    @property
    def marginal_needs_projector(self) -> bool:
        """Whether E(x) depends on u: only the coupled energy's vMF normalizer does."""
        return not self.norm_direction_split and self.beta != 0

    def marginal(self, f: torch.Tensor, u: torch.Tensor | None = None, beta: float | None = None) -> torch.Tensor:
        """E(x) = 1/2 ||f||^2, minus log Phi_d(beta ||u||) for the coupled energy."""
        beta = self.beta if beta is None else beta
        energy = 0.5 * _wide(f).pow(2).sum(dim=1)
        if self.norm_direction_split or beta == 0:
            return energy
        if u is None:
            raise ValueError("the coupled energy needs the projector output u")
        kappa = beta * _wide(u).norm(dim=1)
        return energy - log_vmf_normalizer(kappa, self.latent_dim)

    @torch.no_grad()
    def terms(self, f: torch.Tensor, u: torch.Tensor) -> dict[str, torch.Tensor]:
        """The batch means of the marginal's parts, for the training logs: 1/2 ||f||^2, ||u||, kappa = beta ||u||
        and log Phi_d(kappa) (0 for the separated energy, whose marginal has no normaliser)."""
        half_f_sq = 0.5 * f.float().pow(2).sum(dim=1)
        u_norm = u.float().norm(dim=1)
        kappa = self.beta * u_norm
        coupled = not self.norm_direction_split and self.beta != 0
        log_normalizer = log_vmf_normalizer(kappa, self.latent_dim) if coupled else torch.zeros_like(kappa)
        return {
            "half_f_sq": half_f_sq.mean(),
            "u_norm": u_norm.mean(),
            "kappa": kappa.mean(),
            "log_normalizer": log_normalizer.float().mean(),
        }

    def joint(self, f: torch.Tensor, u: torch.Tensor, z: torch.Tensor, beta: float | None = None) -> torch.Tensor:
        """E(x, z) = 1/2 ||f||^2 - beta d^T z, d = u/||u|| (separated) or u (coupled)."""
        beta = self.beta if beta is None else beta
        direction = F.normalize(_wide(u), dim=1) if self.norm_direction_split else _wide(u)
        return 0.5 * _wide(f).pow(2).sum(dim=1) - beta * (direction * _wide(z)).sum(dim=1)


def ebm_loss(
    joint_data: torch.Tensor, marginal_data: torch.Tensor, marginal_samples: torch.Tensor, alpha: float
) -> torch.Tensor:
    """L_ebm = mean E(x, z) - mean E(x~) + alpha mean(E(x)^2 + E(x~)^2)."""
    regulariser = marginal_data.pow(2).mean() + marginal_samples.pow(2).mean()
    return joint_data.mean() - marginal_samples.mean() + alpha * regulariser
