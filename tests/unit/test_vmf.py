"""log Phi_d(kappa) (runner.clel.vmf) against scipy/mpmath references (docs/ARCHITECTURE.md, "The energies").

Phi_d(k) = Gamma(nu + 1) (2/k)^nu I_nu(k), nu = d/2 - 1, = 0F1(; nu + 1; k^2 / 4), Phi_d(0) = 1.

References:
- large kappa: the scipy formula gammaln(nu + 1) + nu log(2/k) + log(ive(nu, k)) + k;
- kappa <= SERIES_REF_MAX: the power series of 0F1 summed in float64 with scipy.special.gammaln (all
  terms positive, so well conditioned; the ive formula cancels catastrophically at small kappa);
- both cross-checked against mpmath.hyp0f1 at 40 digits and against hand-derived closed forms.
"""

import math

import mpmath
import numpy as np
import pytest
import torch
from scipy.special import gammaln, i0e, ive, logsumexp

from runner.clel.vmf import log_phi_float64, log_vmf_normalizer, mean_resultant_length

DIMS = [2, 3, 4, 8, 16, 32, 64, 128, 256, 512]
SERIES_REF_MAX = 200.0


def switch_point(dim: int) -> float:
    """Where the implementation moves from its series to Debye's expansion (kappa = sqrt(64 (64 + nu)))."""
    nu = dim / 2 - 1
    return math.sqrt(64 * (64 + nu))


def kappa_grid(dim: int) -> list[float]:
    switch = switch_point(dim)
    points = [0.0, *np.logspace(-6, 4, 41).tolist(), 63.9, 64.0, 64.1, 500.0, 1e4]
    points += [switch, switch * (1 - 1e-9), switch * (1 + 1e-9), switch - 0.1, switch + 0.1]
    return sorted(set(points))


def ref_series(kappa: float, dim: int) -> float:
    """log 0F1(; nu + 1; k^2/4) = log1p(sum_{m>=1} (k^2/4)^m Gamma(nu+1) / (m! Gamma(m+nu+1)))."""
    if kappa == 0:
        return 0.0
    nu = dim / 2 - 1
    m = np.arange(1, int(2 * kappa) + 400, dtype=np.float64)
    log_terms = m * np.log(kappa * kappa / 4) + gammaln(nu + 1) - gammaln(m + 1) - gammaln(m + nu + 1)
    log_tail = logsumexp(log_terms)  # log(sum_{m>=1} term_m)
    if log_tail < 0:
        return float(np.log1p(np.exp(log_tail)))
    return float(log_tail + np.log1p(np.exp(-log_tail)))


def ref_ive(kappa: float, dim: int) -> float:
    nu = dim / 2 - 1
    return float(gammaln(nu + 1) + nu * np.log(2 / kappa) + np.log(ive(nu, kappa)) + kappa)


def ive_formula_conditioned(kappa: float, dim: int) -> bool:
    """Whether the ive formula keeps ~1e-11 relative precision (no underflow, little cancellation)."""
    if kappa == 0:
        return False
    nu = dim / 2 - 1
    value = ive(nu, kappa)
    if not (np.isfinite(value) and value > 1e-290):
        return False
    # rounding of the summands, plus a few ulp of relative error in ive itself
    summands = abs(gammaln(nu + 1)) + abs(nu * np.log(2 / kappa)) + abs(np.log(value)) + kappa
    abs_error = 1e-16 * summands + 1e-15
    return abs_error / ref_series(kappa, dim) < 1e-11 if kappa <= SERIES_REF_MAX else True


def reference(kappa: float, dim: int) -> float:
    """The float64 reference: series at small/moderate kappa, the scipy ive formula above."""
    return ref_series(kappa, dim) if kappa <= SERIES_REF_MAX else ref_ive(kappa, dim)


def ref_mpmath(kappa: float, dim: int) -> float:
    with mpmath.workdps(40):
        return float(mpmath.log(mpmath.hyp0f1(mpmath.mpf(dim) / 2, mpmath.mpf(kappa) ** 2 / 4)))


def ref_mean_resultant_length(kappa: float, dim: int) -> float | None:
    """A_d(k) = I_{d/2}(k) / I_{d/2-1}(k) from scipy's ive ratio, None where it under/overflows."""
    nu = dim / 2 - 1
    top, bottom = ive(nu + 1, kappa), ive(nu, kappa)
    if not (top > 1e-290 and bottom > 1e-290 and np.isfinite(top) and np.isfinite(bottom)):
        return None
    return float(top / bottom)


def assert_rel_close(actual: np.ndarray, expected: np.ndarray, rtol: float, what: str) -> None:
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values {actual}"
    zero = expected == 0
    assert np.all(actual[zero] == 0), f"{what}: expected exact 0, got {actual[zero]}"
    rel = np.abs(actual[~zero] - expected[~zero]) / np.abs(expected[~zero])
    worst = int(np.argmax(rel)) if rel.size else 0
    assert rel.size == 0 or rel.max() < rtol, (
        f"{what}: relative error {rel.max():.3g} >= {rtol} "
        f"(got {actual[~zero][worst]!r}, expected {expected[~zero][worst]!r})"
    )


# ---------------------------------------------------------------------------------------------------
# The references themselves


@pytest.mark.parametrize("dim", DIMS)
def test_references_agree_with_mpmath(dim):
    kappas = [k for k in kappa_grid(dim) if k > 0]
    exact = np.array([ref_mpmath(k, dim) for k in kappas])
    assert_rel_close([reference(k, dim) for k in kappas], exact, 1e-11, f"reference d={dim}")
    conditioned = [i for i, k in enumerate(kappas) if ive_formula_conditioned(k, dim)]
    assert len(conditioned) >= 10
    assert_rel_close([ref_ive(kappas[i], dim) for i in conditioned], exact[conditioned], 1e-10, f"ive formula d={dim}")


def test_ive_formula_is_ill_conditioned_at_small_kappa():
    """Why the series reference is needed: the plain scipy formula is useless at kappa = 1e-6."""
    with np.errstate(divide="ignore"):
        plain = ref_ive(1e-6, 3)
    exact = ref_mpmath(1e-6, 3)
    assert abs(plain - exact) / exact > 1e-2
    assert abs(ref_series(1e-6, 3) - exact) / exact < 1e-12


# ---------------------------------------------------------------------------------------------------
# Values


@pytest.mark.parametrize("dim", DIMS)
def test_log_phi_float64_matches_reference(dim):
    kappas = kappa_grid(dim)
    expected = np.array([reference(k, dim) for k in kappas])
    kappa = torch.tensor(kappas, dtype=torch.float64)
    out = log_vmf_normalizer(kappa, dim)
    assert out.dtype == torch.float64
    assert out.shape == kappa.shape
    assert_rel_close(out.numpy(), expected, 1e-5, f"log_vmf_normalizer float64 d={dim}")
    assert_rel_close(log_phi_float64(kappa, dim).numpy(), expected, 1e-5, f"log_phi_float64 d={dim}")


@pytest.mark.parametrize("dim", DIMS)
def test_log_phi_float32_matches_reference_at_rounded_kappa(dim):
    kappa = torch.tensor(kappa_grid(dim), dtype=torch.float32)
    expected = np.array([reference(k, dim) for k in kappa.double().tolist()])
    out = log_vmf_normalizer(kappa, dim)
    assert out.dtype == torch.float32
    assert_rel_close(out.numpy(), expected, 1e-4, f"log_vmf_normalizer float32 d={dim}")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
def test_log_phi_at_zero_is_exactly_zero(dtype):
    for dim in DIMS:
        out = log_vmf_normalizer(torch.zeros(3, dtype=dtype), dim)
        assert torch.equal(out, torch.zeros_like(out)), (dim, out)


@pytest.mark.parametrize("dim", DIMS)
def test_small_kappa_limit(dim):
    """log Phi_d(k) = k^2/(2d) - k^4/(4 d^2 (d+2)) + O(k^6) (from 0F1 = 1 + k^2/(2d) + k^4/(8d(d+2)) ...)."""
    kappas = np.array([1e-8, 1e-6, 1e-5, 1e-4, 1e-3])
    expected = kappas**2 / (2 * dim) - kappas**4 / (4 * dim**2 * (dim + 2))
    out = log_vmf_normalizer(torch.tensor(kappas, dtype=torch.float64), dim).numpy()
    assert_rel_close(out, expected, 1e-10, f"small-kappa limit d={dim}")


def test_dim3_is_log_sinh_over_kappa():
    kappas = np.array([1e-6, 1e-4, 1e-2, 0.05, 0.1, 0.5, 1.0, 10.0, 63.9, 64.0, 64.1, 500.0, 1e4])
    expected = []
    for k in kappas:
        if k < 0.1:  # log1p(sinh(k)/k - 1), the Taylor series of sinh(k)/k - 1 (error ~ k^12 / 13!)
            expected.append(np.log1p(k**2 / 6 + k**4 / 120 + k**6 / 5040 + k**8 / 362880 + k**10 / 39916800))
        else:  # log(sinh(k)/k) = k + log1p(-exp(-2k)) - log(2k)
            expected.append(k + np.log1p(-np.exp(-2 * k)) - np.log(2 * k))
    out = log_vmf_normalizer(torch.tensor(kappas, dtype=torch.float64), 3).numpy()
    assert_rel_close(out, np.array(expected), 1e-10, "d=3 closed form")


def test_dim2_is_log_i0():
    kappas = np.array([1e-2, 0.1, 1.0, 10.0, 63.9, 64.0, 64.1, 100.0, 500.0, 1e4])
    expected = np.log(i0e(kappas)) + kappas
    out = log_vmf_normalizer(torch.tensor(kappas, dtype=torch.float64), 2).numpy()
    assert_rel_close(out, expected, 1e-9, "d=2 closed form")


@pytest.mark.parametrize("dim", DIMS)
def test_continuous_across_regime_switch(dim):
    switch = switch_point(dim)
    kappa = torch.tensor([switch * (1 - 1e-12), switch, switch * (1 + 1e-12)], dtype=torch.float64)
    kappa.requires_grad_()
    out = log_vmf_normalizer(kappa, dim)
    values = out.detach().numpy()
    assert_rel_close(values, np.full(3, values[1]), 1e-10, f"value jump at switch d={dim}")
    (grad,) = torch.autograd.grad(out.sum(), kappa)
    assert_rel_close(grad.numpy(), np.full(3, grad[1].item()), 1e-9, f"gradient jump at switch d={dim}")


# ---------------------------------------------------------------------------------------------------
# Gradients


@pytest.mark.parametrize("dim", [2, 3, 8, 64, 128, 512])
def test_gradcheck_float64(dim):
    switch = switch_point(dim)
    kappa = torch.tensor(
        [1e-8, 1e-3, 1.0, 63.9, 64.1, 500.0, 1e4, switch - 1e-3, switch + 1e-3],
        dtype=torch.float64,
        requires_grad=True,
    )
    assert torch.autograd.gradcheck(lambda k: log_vmf_normalizer(k, dim), (kappa,))


@pytest.mark.parametrize("dim", DIMS)
def test_gradient_is_mean_resultant_length(dim):
    kappas = [k for k in kappa_grid(dim) if k > 0]
    checked = [(k, a) for k in kappas if (a := ref_mean_resultant_length(k, dim)) is not None]
    assert len(checked) >= 10
    kappa = torch.tensor([k for k, _ in checked], dtype=torch.float64, requires_grad=True)
    expected = np.array([a for _, a in checked])
    (grad,) = torch.autograd.grad(log_vmf_normalizer(kappa, dim).sum(), kappa)
    assert_rel_close(grad.numpy(), expected, 1e-8, f"d/dk log Phi vs ive ratio d={dim}")
    helper = mean_resultant_length(kappa.detach(), dim)
    assert helper.dtype == torch.float64
    assert_rel_close(helper.numpy(), expected, 1e-8, f"mean_resultant_length d={dim}")

    kappa32 = kappa.detach().float().requires_grad_()
    (grad32,) = torch.autograd.grad(log_vmf_normalizer(kappa32, dim).sum(), kappa32)
    assert grad32.dtype == torch.float32
    expected32 = np.array([ref_mean_resultant_length(k, dim) for k in kappa32.double().tolist()])
    assert_rel_close(grad32.numpy(), expected32, 1e-4, f"float32 gradient d={dim}")


@pytest.mark.parametrize("dim", DIMS)
def test_gradient_small_kappa_limit(dim):
    """A_d(k) = k/d - k^3/(d^2 (d+2)) + O(k^5), where the ive ratio underflows for large d."""
    kappas = np.array([1e-8, 1e-6, 1e-4, 1e-3])
    kappa = torch.tensor(kappas, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(log_vmf_normalizer(kappa, dim).sum(), kappa)
    expected = kappas / dim - kappas**3 / (dim**2 * (dim + 2))
    assert_rel_close(grad.numpy(), expected, 1e-10, f"small-kappa gradient d={dim}")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gradient_at_zero_is_zero(dtype):
    for dim in DIMS:
        kappa = torch.zeros(2, dtype=dtype, requires_grad=True)
        (grad,) = torch.autograd.grad(log_vmf_normalizer(kappa, dim).sum(), kappa)
        assert grad.dtype == dtype
        assert torch.equal(grad, torch.zeros_like(grad)), (dim, grad)


# ---------------------------------------------------------------------------------------------------
# bfloat16 autocast


@pytest.mark.parametrize("dim", [3, 128, 512])
def test_bfloat16_autocast_finite_values_and_gradients(dim):
    torch.manual_seed(0)
    projector = torch.nn.Linear(16, dim, bias=False)
    scales = torch.tensor([0.0, 1e-6, 1e-3, 1e-1, 1.0, 10.0, 100.0, 1e3])
    x = torch.randn(scales.numel(), 16) * scales[:, None]
    with torch.no_grad():  # calibrate beta so that the largest kappa is 1e4
        beta = 1e4 / (projector(x).norm(dim=1).max().item())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        u = projector(x)
        assert u.dtype == torch.bfloat16
        kappa = beta * u.norm(dim=1)
        out = log_vmf_normalizer(kappa, dim)
    kappa.retain_grad()
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all(), out
    kappas = kappa.detach().double().tolist()
    assert kappas[0] == 0 and 5e3 < max(kappas) <= 1.1e4, kappas
    # the value is log Phi at the (bf16-rounded) kappa that was actually passed in
    assert_rel_close(out.detach().numpy(), [reference(k, dim) for k in kappas], 1e-4, "autocast values")

    out.sum().backward()
    assert torch.isfinite(kappa.grad).all(), kappa.grad
    assert torch.isfinite(projector.weight.grad).all()
    assert projector.weight.grad.abs().sum() > 0
    # bf16 gradient vs A_d (ive ratio; its k/d limit where the ratio underflows), to bf16 precision
    slope = [a if (a := ref_mean_resultant_length(k, dim)) is not None else k / dim for k in kappas[1:]]
    assert kappa.grad[0] == 0
    np.testing.assert_allclose(kappa.grad[1:].double().numpy(), slope, rtol=2e-2)


def test_bfloat16_kappa_input():
    kappa = torch.tensor([0.0, 1e-3, 1.0, 64.0, 1e3, 1e4], dtype=torch.bfloat16, requires_grad=True)
    out = log_vmf_normalizer(kappa, 128)
    assert out.dtype == torch.float32
    expected = [reference(k, 128) for k in kappa.double().tolist()]
    assert_rel_close(out.detach().numpy(), expected, 1e-4, "bf16 kappa input")
    out.sum().backward()
    assert kappa.grad.dtype == torch.bfloat16
    assert torch.isfinite(kappa.grad).all()
    assert kappa.grad[0] == 0


# ---------------------------------------------------------------------------------------------------
# Batching, no host sync, argument checks


@pytest.mark.parametrize("dim", [2, 16, 512])
def test_mixed_regime_batch_matches_elementwise(dim):
    switch = switch_point(dim)
    kappas = [0.0, 1e-6, 0.5, switch * 0.99, switch * 1.01, 1e3, 1e4, 3.0, switch]
    kappa = torch.tensor(kappas, dtype=torch.float64).reshape(3, 3).requires_grad_()
    out = log_vmf_normalizer(kappa, dim)
    assert out.shape == (3, 3)
    (grad,) = torch.autograd.grad(out.sum(), kappa)
    for index in np.ndindex(3, 3):
        single = kappa.detach()[index].reshape(1).requires_grad_()
        single_out = log_vmf_normalizer(single, dim)
        (single_grad,) = torch.autograd.grad(single_out.sum(), single)
        torch.testing.assert_close(out[index].detach(), single_out[0].detach(), rtol=1e-14, atol=0)
        torch.testing.assert_close(grad[index], single_grad[0], rtol=1e-14, atol=0)
    assert_rel_close(out.detach().flatten().numpy(), [reference(k, dim) for k in kappas], 1e-5, "mixed batch")


def test_runs_on_meta_device():
    """A proxy for 'no host sync' on CPU: meta tensors have no data, so .item()/bool() on data would fail."""
    kappa = torch.empty(5, device="meta", requires_grad=True)
    out = log_vmf_normalizer(kappa, 128)
    assert out.device.type == "meta" and out.shape == (5,) and out.dtype == torch.float32
    out.sum().backward()
    assert kappa.grad.device.type == "meta" and kappa.grad.shape == (5,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_no_host_sync_on_cuda():
    kappa = torch.tensor([0.0, 1e-6, 1.0, 64.0, 500.0, 1e4], device="cuda", requires_grad=True)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = log_vmf_normalizer(kappa, 128)
        out.sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert_rel_close(out.detach().cpu().numpy(), [reference(k, 128) for k in kappa.tolist()], 1e-4, "cuda")


@pytest.mark.parametrize("dim", [1, 0, -2])
def test_dim_below_two_raises(dim):
    with pytest.raises(ValueError):
        log_vmf_normalizer(torch.tensor([1.0]), dim)
