"""log Phi_d(kappa): the log of the mean of exp(kappa mu^T z) over the uniform sphere in R^d.

Phi_d(k) = Gamma(nu + 1) (2/k)^nu I_nu(k) with nu = d/2 - 1, i.e. the confluent limit
0F1(; nu + 1; k^2 / 4). Two exact regimes, both evaluated in float64 whatever the input dtype:

- series: log1p(sum_{m>=1} (k^2/4)^m Gamma(nu+1) / (m! Gamma(m+nu+1))) while the terms decay
  within SERIES_TERMS terms (k <= sqrt(M (M + nu))); exact down to k = 0;
- Debye's uniform asymptotic expansion of I_nu (Abramowitz & Stegun 9.7.7, terms u_1..u_5),
  written in r = sqrt(nu^2 + k^2) so that it also covers nu = 0; used where r >= M = 64, where
  the first omitted term is below 1e-10 relative.

The derivative is the mean resultant length A_d(k) = I_{nu+1}(k) / I_nu(k)
= (k / d) Phi_{d+2}(k) / Phi_d(k), computed from the same function, so gradients are exact too.
"""

import math

import torch

SERIES_TERMS = 64

# u_k(t) / t^k as polynomials in s = t^2, coefficients from the lowest power (A&S 9.3.9, 9.3.10).
_DEBYE = (
    (3 / 24, -5 / 24),
    (81 / 1152, -462 / 1152, 385 / 1152),
    (30375 / 414720, -369603 / 414720, 765765 / 414720, -425425 / 414720),
    (
        4465125 / 39813120,
        -94121676 / 39813120,
        349922430 / 39813120,
        -446185740 / 39813120,
        185910725 / 39813120,
    ),
    (
        1519035525 / 6688604160,
        -49286948607 / 6688604160,
        284499769554 / 6688604160,
        -614135872350 / 6688604160,
        566098157625 / 6688604160,
        -188699385875 / 6688604160,
    ),
)


def _log_phi_series(kappa: torch.Tensor, nu: float) -> torch.Tensor:
    m = torch.arange(1, SERIES_TERMS + 1, dtype=torch.float64, device=kappa.device)
    log_quarter_k2 = torch.log(kappa.unsqueeze(-1) ** 2 / 4)  # -inf at k = 0 gives terms of 0
    log_terms = m * log_quarter_k2 + math.lgamma(nu + 1) - torch.lgamma(m + 1) - torch.lgamma(m + nu + 1)
    return torch.log1p(torch.exp(log_terms).sum(-1))


def _log_phi_debye(kappa: torch.Tensor, nu: float) -> torch.Tensor:
    r = torch.sqrt(nu * nu + kappa * kappa)
    p = 1 / r
    s = (nu * p) ** 2
    correction = torch.zeros_like(r)
    p_power = torch.ones_like(r)
    for coefficients in _DEBYE:
        p_power = p_power * p
        poly = torch.zeros_like(r)
        for c in reversed(coefficients):
            poly = poly * s + c
        correction = correction + p_power * poly
    return (
        math.lgamma(nu + 1)
        + nu * math.log(2)
        + r
        - nu * torch.log(nu + r)
        - 0.5 * math.log(2 * math.pi)
        - 0.5 * torch.log(r)
        + torch.log1p(correction)
    )


def log_phi_float64(kappa: torch.Tensor, dim: int) -> torch.Tensor:
    """log Phi_dim(kappa) in float64 for kappa >= 0 (no autograd; see log_vmf_normalizer)."""
    nu = dim / 2 - 1
    kappa = kappa.double()
    use_series = kappa <= math.sqrt(SERIES_TERMS * (SERIES_TERMS + nu))
    series = _log_phi_series(torch.where(use_series, kappa, 0.0), nu)
    debye = _log_phi_debye(torch.where(use_series, float(SERIES_TERMS), kappa), nu)
    return torch.where(use_series, series, debye)


def mean_resultant_length(kappa: torch.Tensor, dim: int) -> torch.Tensor:
    """A_d(kappa) = I_{d/2}(kappa) / I_{d/2-1}(kappa) = d/dkappa log Phi_d(kappa), in float64."""
    kappa = kappa.double()
    return kappa / dim * torch.exp(log_phi_float64(kappa, dim + 2) - log_phi_float64(kappa, dim))


class _LogPhi(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kappa: torch.Tensor, dim: int) -> torch.Tensor:
        ctx.save_for_backward(kappa)
        ctx.dim = dim
        return log_phi_float64(kappa, dim).to(torch.promote_types(kappa.dtype, torch.float32))

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (kappa,) = ctx.saved_tensors
        slope = mean_resultant_length(kappa, ctx.dim)
        return (grad_output.double() * slope).to(kappa.dtype), None


def log_vmf_normalizer(kappa: torch.Tensor, dim: int) -> torch.Tensor:
    """log Phi_dim(kappa), differentiable in kappa; float32 (or float64) out, no host sync."""
    if dim < 2:
        raise ValueError(f"sphere dimension must be >= 2, got {dim}")
    return _LogPhi.apply(kappa, dim)
