"""CLEL energies (runner.clel.energy, docs/ARCHITECTURE.md "The energies") against hand computations in numpy/scipy."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import gammaln, ive

from runner.clel.energy import LatentEnergy, ebm_loss

F_HAND = np.array(
    [
        [1.0, -2.0, 0.5],
        [0.0, 0.0, 0.0],
        [3.0, 1.0, -1.0],
        [-0.5, 0.25, 2.0],
    ]
)
U_HAND = np.array(
    [
        [1.0, 2.0, -1.0, 0.5, 0.0],
        [-3.0, 0.5, 0.5, 1.0, 2.0],
        [0.1, -0.2, 0.3, -0.4, 0.5],
        [4.0, 0.0, -2.0, 1.0, 3.0],
    ]
)
Z_RAW = np.array(
    [
        [1.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.6, 0.8, 0.0, 0.0],
        [0.5, -0.5, 0.5, -0.5, 0.0],
        [-1.0, 1.0, 1.0, -1.0, 2.0],
    ]
)
Z_HAND = Z_RAW / np.linalg.norm(Z_RAW, axis=1, keepdims=True)
DIM = 5
# beta = 0.01 (training value), moderate, and large enough that beta ||u|| crosses 64 (d = 5)
BETAS = [0.01, 1.0, 15.0]


def t(array: np.ndarray) -> torch.Tensor:
    return torch.tensor(array, dtype=torch.float32)


def ref_log_phi(kappa: np.ndarray, dim: int) -> np.ndarray:
    """scipy: log Phi_d(k) = gammaln(nu+1) + nu log(2/k) + log ive(nu, k) + k (well conditioned here)."""
    nu = dim / 2 - 1
    return gammaln(nu + 1) + nu * np.log(2 / kappa) + np.log(ive(nu, kappa)) + kappa


def ref_mean_resultant_length(kappa: np.ndarray, dim: int) -> np.ndarray:
    nu = dim / 2 - 1
    return ive(nu + 1, kappa) / ive(nu, kappa)


def half_sq_norm(f: np.ndarray) -> np.ndarray:
    return 0.5 * (f**2).sum(axis=1)


def test_hand_data_is_sane():
    np.testing.assert_allclose(np.linalg.norm(Z_HAND, axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(half_sq_norm(F_HAND), [2.625, 0.0, 5.5, 2.1562500], rtol=1e-15)


@pytest.mark.parametrize("beta", BETAS)
def test_separated_energy_by_hand(beta):
    energy = LatentEnergy(beta=beta, norm_direction_split=True, latent_dim=DIM)
    direction = U_HAND / np.linalg.norm(U_HAND, axis=1, keepdims=True)
    expected_joint = half_sq_norm(F_HAND) - beta * (direction * Z_HAND).sum(axis=1)
    joint = energy.joint(t(F_HAND), t(U_HAND), t(Z_HAND))
    marginal = energy.marginal(t(F_HAND), t(U_HAND))
    assert joint.dtype == marginal.dtype == torch.float32
    assert joint.shape == marginal.shape == (4,)
    np.testing.assert_allclose(joint.numpy(), expected_joint, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(marginal.numpy(), half_sq_norm(F_HAND), rtol=1e-6, atol=1e-7)
    # the separated marginal never needs the projector
    np.testing.assert_allclose(energy.marginal(t(F_HAND)).numpy(), half_sq_norm(F_HAND), rtol=1e-6)
    assert not energy.marginal_needs_projector


@pytest.mark.parametrize("beta", BETAS)
def test_coupled_energy_by_hand(beta):
    energy = LatentEnergy(beta=beta, norm_direction_split=False, latent_dim=DIM)
    kappa = beta * np.linalg.norm(U_HAND, axis=1)
    expected_joint = half_sq_norm(F_HAND) - beta * (U_HAND * Z_HAND).sum(axis=1)
    expected_marginal = half_sq_norm(F_HAND) - ref_log_phi(kappa, DIM)
    joint = energy.joint(t(F_HAND), t(U_HAND), t(Z_HAND))
    marginal = energy.marginal(t(F_HAND), t(U_HAND))
    assert joint.dtype == marginal.dtype == torch.float32
    np.testing.assert_allclose(joint.numpy(), expected_joint, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(marginal.numpy(), expected_marginal, rtol=1e-5, atol=1e-6)
    assert energy.marginal_needs_projector
    with pytest.raises(ValueError):
        energy.marginal(t(F_HAND))


def test_coupled_marginal_spot_value():
    """Worked out by hand: d = 3, Phi_3(k) = sinh(k)/k, f = (3, 4), u = (0, 2, 0), beta = 1."""
    energy = LatentEnergy(beta=1.0, norm_direction_split=False, latent_dim=3)
    marginal = energy.marginal(t(np.array([[3.0, 4.0]])), t(np.array([[0.0, 2.0, 0.0]])))
    np.testing.assert_allclose(marginal.numpy(), [12.5 - np.log(np.sinh(2.0) / 2.0)], rtol=1e-6)


def test_split_marginal_and_joint_ignore_projector_norm():
    energy = LatentEnergy(beta=0.5, norm_direction_split=True, latent_dim=DIM)
    f, u, z = t(F_HAND), t(U_HAND), t(Z_HAND)
    torch.testing.assert_close(energy.marginal(f, 3 * u), energy.marginal(f, u))
    torch.testing.assert_close(energy.joint(f, 3 * u, z), energy.joint(f, u, z))


def test_coupled_marginal_and_joint_depend_on_projector_norm():
    beta = 0.5
    energy = LatentEnergy(beta=beta, norm_direction_split=False, latent_dim=DIM)
    f, u, z = t(F_HAND), t(U_HAND), t(Z_HAND)
    marginal, marginal_scaled = energy.marginal(f, u), energy.marginal(f, 3 * u)
    assert (marginal_scaled < marginal - 1e-3).all()  # a larger concentration lowers E(x)
    kappa = beta * np.linalg.norm(U_HAND, axis=1)
    np.testing.assert_allclose(
        (marginal - marginal_scaled).numpy(),
        ref_log_phi(3 * kappa, DIM) - ref_log_phi(kappa, DIM),
        rtol=1e-5,
    )
    joint, joint_scaled = energy.joint(f, u, z), energy.joint(f, 3 * u, z)
    np.testing.assert_allclose(
        (joint - joint_scaled).numpy(), 2 * beta * (U_HAND * Z_HAND).sum(axis=1), rtol=1e-5, atol=1e-6
    )


def test_ebm_loss_hand_numbers():
    joint_data = torch.tensor([1.0, -2.0, 0.5, 4.0], requires_grad=True)
    marginal_data = torch.tensor([1.5, -1.0, 0.0, 2.0], requires_grad=True)
    marginal_samples = torch.tensor([3.0, 2.0, -1.0, 0.5], requires_grad=True)
    # mean E(x,z) = 3.5/4 = 0.875; mean E(x~) = 4.5/4 = 1.125
    # mean(E(x)^2 + E(x~)^2) = ((2.25 + 1 + 0 + 4) + (9 + 4 + 1 + 0.25)) / 4 = 21.5 / 4 = 5.375
    # loss = 0.875 - 1.125 + 0.5 * 5.375 = 2.4375
    loss = ebm_loss(joint_data, marginal_data, marginal_samples, alpha=0.5)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(2.4375, abs=1e-7)
    data = (joint_data, marginal_data, marginal_samples)
    assert ebm_loss(*data, alpha=0.0).item() == pytest.approx(-0.25, abs=1e-7)  # 0.875 - 1.125
    assert ebm_loss(*data, alpha=2.0).item() == pytest.approx(10.5, abs=1e-6)  # -0.25 + 2 * 5.375

    loss.backward()
    # d/dE(x,z) = 1/N; d/dE(x) = 2 alpha E(x)/N; d/dE(x~) = -1/N + 2 alpha E(x~)/N  (N = 4, alpha = 0.5)
    torch.testing.assert_close(joint_data.grad, torch.full((4,), 0.25))
    torch.testing.assert_close(marginal_data.grad, torch.tensor([0.375, -0.25, 0.0, 0.5]))
    torch.testing.assert_close(marginal_samples.grad, torch.tensor([0.5, 0.25, -0.5, -0.125]))


@pytest.mark.parametrize("beta", [0.01, 1.0])
def test_separated_loss_equals_official_form(beta):
    rng = np.random.default_rng(0)
    n, d_f, d_z, alpha = 6, 7, DIM, 1.0
    f_pos, f_neg = rng.normal(size=(n, d_f)), 2 * rng.normal(size=(n, d_f))
    u = rng.normal(size=(n, d_z))
    z = rng.normal(size=(n, d_z))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    energy = LatentEnergy(beta=beta, norm_direction_split=True, latent_dim=d_z)
    loss = ebm_loss(
        energy.joint(t(f_pos), t(u), t(z)),
        energy.marginal(t(f_pos), t(u)),
        energy.marginal(t(f_neg), t(u)),
        alpha,
    )
    e_pos, e_neg = half_sq_norm(f_pos), half_sq_norm(f_neg)
    cos = (u * z).sum(axis=1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(z, axis=1))
    official = (e_pos - e_neg).mean() + alpha * (e_pos**2 + e_neg**2).mean() - beta * cos.mean()
    np.testing.assert_allclose(loss.item(), official, rtol=1e-5)
    # the same with torch's cosine_similarity, as the official code writes it
    cos_torch = F.cosine_similarity(t(u), t(z)).double().numpy()
    np.testing.assert_allclose(cos_torch, cos, rtol=1e-5)


@pytest.mark.parametrize("split", [True, False])
def test_beta_zero_joint_equals_marginal(split):
    energy = LatentEnergy(beta=0.0, norm_direction_split=split, latent_dim=DIM)
    f, u, z = t(F_HAND), t(U_HAND), t(Z_HAND)
    torch.testing.assert_close(energy.joint(f, u, z), energy.marginal(f, u))
    torch.testing.assert_close(energy.marginal(f, u), t(half_sq_norm(F_HAND)))
    assert not energy.marginal_needs_projector
    # the per-call beta override (test-time beta) behaves the same
    other = LatentEnergy(beta=0.7, norm_direction_split=split, latent_dim=DIM)
    torch.testing.assert_close(other.joint(f, u, z, beta=0.0), other.marginal(f, u, beta=0.0))
    torch.testing.assert_close(other.marginal(f, u, beta=0.0), t(half_sq_norm(F_HAND)))
    # marginal_needs_projector is False, so callers may leave u out
    torch.testing.assert_close(energy.marginal(f), t(half_sq_norm(F_HAND)))


@pytest.mark.parametrize("split", [True, False])
def test_beta_override_equals_constructed_beta(split):
    """The per-call beta (the test-time beta of the joint OOD score) acts exactly like the constructor's beta."""
    f, u, z = t(F_HAND), t(U_HAND), t(Z_HAND)
    trained = LatentEnergy(beta=0.01, norm_direction_split=split, latent_dim=DIM)
    for beta in [0.5, 15.0]:
        direct = LatentEnergy(beta=beta, norm_direction_split=split, latent_dim=DIM)
        torch.testing.assert_close(trained.marginal(f, u, beta=beta), direct.marginal(f, u))
        torch.testing.assert_close(trained.joint(f, u, z, beta=beta), direct.joint(f, u, z))


@pytest.mark.parametrize("latent_dim", [DIM, 128])
@pytest.mark.parametrize("beta", BETAS)
def test_coupled_marginal_gradient(latent_dim, beta):
    """d E(x) / d u = -beta A_d(beta ||u||) u / ||u||, d E(x) / d f = f (hand-derived)."""
    rng = np.random.default_rng(1)
    u_np = rng.normal(size=(5, latent_dim)) * np.array([[0.01], [0.3], [1.0], [4.0], [12.0]])
    f_np = rng.normal(size=(5, 3))
    energy = LatentEnergy(beta=beta, norm_direction_split=False, latent_dim=latent_dim)
    u = torch.tensor(u_np, dtype=torch.float64, requires_grad=True)
    f = torch.tensor(f_np, dtype=torch.float64, requires_grad=True)
    energy.marginal(f, u).sum().backward()
    norm = np.linalg.norm(u_np, axis=1, keepdims=True)
    kappa = beta * norm
    expected = -beta * ref_mean_resultant_length(kappa, latent_dim) * u_np / norm
    np.testing.assert_allclose(u.grad.numpy(), expected, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(f.grad.numpy(), f_np, rtol=1e-6)


def test_separated_marginal_has_no_gradient_through_u():
    energy = LatentEnergy(beta=1.0, norm_direction_split=True, latent_dim=DIM)
    u = t(U_HAND).requires_grad_()
    f = t(F_HAND).requires_grad_()
    energy.marginal(f, u).sum().backward()
    assert u.grad is None
    torch.testing.assert_close(f.grad, t(F_HAND))


def mpmath_marginal(beta: float, latent_dim: int, coordinates: list) -> object:
    """1/2 ||f||^2 - log 0F1(; d/2; (beta ||u||)^2 / 4) in mpmath, for coordinates = f (4) then u."""
    import mpmath

    f, u = coordinates[:4], coordinates[4:]
    kappa = beta * mpmath.sqrt(mpmath.fsum(c**2 for c in u))
    return mpmath.fsum(c**2 for c in f) / 2 - mpmath.log(mpmath.hyp0f1(latent_dim / 2, kappa**2 / 4))


def mpmath_partial(beta: float, latent_dim: int, point: list, index: int) -> float:
    """d/d coordinate[index] of mpmath_marginal by mpmath's numerical differentiation."""
    import mpmath

    def along(value):
        return mpmath_marginal(beta, latent_dim, [*point[:index], value, *point[index + 1 :]])

    return float(mpmath.diff(along, point[index]))


@pytest.mark.parametrize("latent_dim", [3, 64, 128])
def test_coupled_energy_and_its_gradient_against_mpmath(latent_dim):
    """E(x) = 1/2 ||f||^2 - log 0F1(; d/2; (beta ||u||)^2 / 4) evaluated in 30-digit mpmath (Phi_d is that
    confluent limit), and its gradient by mpmath's own numerical differentiation of that expression: independent
    of the series, the Debye expansion and the derivative formula of runner.clel.vmf. Points span the regimes the
    runs visit (kappa from 5e-5, as at beta = 0.01 early in training, to 200)."""
    import mpmath

    mpmath.mp.dps = 30
    rng = np.random.default_rng(latent_dim)
    for beta, scale in [(0.01, 0.005), (0.01, 3.0), (1.0, 2.0), (2.0, 100.0 / np.sqrt(latent_dim))]:
        f_np = rng.normal(size=4)
        u_np = rng.normal(size=latent_dim) * scale
        point = [mpmath.mpf(float(v)) for v in (*f_np, *u_np)]
        energy = LatentEnergy(beta=beta, norm_direction_split=False, latent_dim=latent_dim)
        f = torch.tensor(f_np[None], dtype=torch.float64, requires_grad=True)
        u = torch.tensor(u_np[None], dtype=torch.float64, requires_grad=True)
        value = energy.marginal(f, u)
        value.sum().backward()
        assert value.item() == pytest.approx(float(mpmath_marginal(beta, latent_dim, point)), rel=1e-12, abs=1e-15)
        gradient = torch.cat([f.grad[0], u.grad[0]])
        for index in [0, 4, 5, 4 + latent_dim - 1]:  # f_0, and u's first, second and last coordinates
            partial = mpmath_partial(beta, latent_dim, point, index)
            assert gradient[index].item() == pytest.approx(partial, rel=1e-9, abs=1e-14), (beta, scale, index)
