"""The self-supervised methods behind one interface: MoCo's queue, the momentum schedules, MAE's masking and loss,
generated negatives, and the unit-norm, gradient-free latents (docs/ARCHITECTURE.md)."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from runner.clel.encoders import CRLOutput, SelfSupervisedMethod
from runner.clel.encoders.byol import BYOL, byol_loss
from runner.clel.encoders.mae import MAE, masked_patch_loss, patchify, random_masking, sincos_position_embedding
from runner.clel.encoders.moco import MoCo, info_nce
from runner.clel.encoders.momentum import cosine_momentum, momentum_update
from runner.clel.encoders.simclr import SimCLR
from runner.clel.model import build_crl
from runner.errors import UserError
from tests.support import tiny_cfg
from tests.support.modules import RecordingAugment

MEAN, STD = (0.3, 0.3, 0.3), (0.3, 0.3, 0.3)
EXPERIMENT_OF = {"simclr": "baseline", "moco": "moco", "byol": "byol", "mae": "mae"}
SIZE = 16  # the tiny profile's image size

pytestmark = pytest.mark.usefixtures("one_thread")


def build(method: str, overrides: dict | None = None) -> SelfSupervisedMethod:
    cfg = tiny_cfg(EXPERIMENT_OF[method], overrides=overrides)
    assert cfg.crl.method == method
    torch.manual_seed(0)
    built = build_crl(cfg, MEAN, STD)
    assert isinstance(built, SelfSupervisedMethod)
    return built


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    """Every parameter and buffer bit-identical."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


# --- MoCo's queue ------------------------------------------------------------------------------


def keys_numbered(first: int, count: int, dim: int) -> torch.Tensor:
    """Rows filled with their number, so the queue's contents can be read back as numbers."""
    return torch.arange(first, first + count, dtype=torch.float32).unsqueeze(1).expand(-1, dim).clone()


def numbers(queue: torch.Tensor) -> list[float]:
    assert torch.equal(queue, queue[:, :1].expand_as(queue))  # every row still one number
    return queue[:, 0].tolist()


def test_moco_queue_update_order_and_wrap_around():
    moco = build("moco", {"crl.moco.queue_size": 5})
    assert isinstance(moco, MoCo)
    dim = moco.latent_dim
    assert moco.queue.shape == (5, dim) and moco.queue.dtype == torch.float32
    torch.testing.assert_close(moco.queue.norm(dim=1), torch.ones(5), rtol=0, atol=1e-6)  # initial keys are unit
    assert moco.queue_position.dtype == torch.long and moco.queue_position.ndim == 0
    assert int(moco.queue_position) == 0
    initial = moco.queue.clone()

    moco.enqueue(keys_numbered(1, 2, dim))  # rows 0, 1
    assert int(moco.queue_position) == 2
    assert numbers(moco.queue[:2]) == [1, 2]
    assert torch.equal(moco.queue[2:], initial[2:])  # untouched

    moco.enqueue(keys_numbered(3, 2, dim))  # rows 2, 3
    assert int(moco.queue_position) == 4
    assert numbers(moco.queue[:4]) == [1, 2, 3, 4]
    assert torch.equal(moco.queue[4], initial[4])

    moco.enqueue(keys_numbered(5, 3, dim))  # position + n > size: rows 4, 0, 1 (the oldest, 1 and 2, go first)
    assert int(moco.queue_position) == 2
    assert numbers(moco.queue) == [6, 7, 3, 4, 5]

    moco.enqueue(keys_numbered(8, 5, dim))  # exactly the size: rows 2, 3, 4, 0, 1
    assert int(moco.queue_position) == 2
    assert numbers(moco.queue) == [11, 12, 8, 9, 10]

    moco.enqueue(keys_numbered(13, 7, dim))  # more keys than the queue holds: the last 5 (15..19) are kept
    position = int(moco.queue_position)
    assert 0 <= position < 5
    assert sorted(numbers(moco.queue)) == [15, 16, 17, 18, 19]
    # read from the position (the next row to overwrite) the queue runs oldest -> newest
    assert numbers(torch.roll(moco.queue, -position, dims=0)) == [15, 16, 17, 18, 19]

    moco.enqueue(keys_numbered(20, 1, dim))  # the oldest key (15) is the one overwritten
    assert int(moco.queue_position) == (position + 1) % 5
    assert sorted(numbers(moco.queue)) == [16, 17, 18, 19, 20]
    assert numbers(torch.roll(moco.queue, -int(moco.queue_position), dims=0)) == [16, 17, 18, 19, 20]


def test_moco_enqueue_one_at_a_time_is_a_ring():
    moco = build("moco", {"crl.moco.queue_size": 3})
    dim = moco.latent_dim
    expected_rows = list(moco.queue.clone())
    for k in range(8):
        moco.enqueue(keys_numbered(100 + k, 1, dim))
        expected_rows[k % 3] = keys_numbered(100 + k, 1, dim)[0]
        assert int(moco.queue_position) == (k + 1) % 3
        assert torch.equal(moco.queue, torch.stack(expected_rows))


def loop_info_nce(
    queries: torch.Tensor, keys: torch.Tensor, queue: torch.Tensor, temperature: float, extra: torch.Tensor | None
) -> float:
    """-log(exp(q.k/t) / (exp(q.k/t) + sum_j exp(q.queue_j/t) + sum_g exp(q.gen_g/t))), averaged over queries."""
    total = 0.0
    for i in range(len(queries)):
        q = queries[i]
        positive = math.exp(float(q @ keys[i]) / temperature)
        denominator = positive + sum(math.exp(float(q @ column) / temperature) for column in queue)
        if extra is not None:
            denominator += sum(math.exp(float(q @ g) / temperature) for g in extra)
        total += -math.log(positive / denominator)
    return total / len(queries)


@pytest.mark.parametrize("n,queue_size,m,temperature", [(4, 7, 0, 0.2), (4, 7, 3, 0.2), (3, 0, 5, 0.5), (2, 9, 1, 1.0)])
def test_info_nce_equals_loop(n, queue_size, m, temperature):
    g = torch.Generator().manual_seed(10 * n + m)
    unit = lambda rows: F.normalize(torch.randn(rows, 6, generator=g, dtype=torch.float64), dim=1)  # noqa: E731
    queries, keys, queue = unit(n), unit(n), unit(queue_size)
    extra = unit(m) if m else None
    got = info_nce(queries, keys, queue, temperature, extra).item()
    assert got == pytest.approx(loop_info_nce(queries, keys, queue, temperature, extra), rel=1e-12)
    if extra is not None:  # the extra columns only add negatives
        assert got > info_nce(queries, keys, queue, temperature, None).item()


def test_moco_loss_uses_the_queue_before_this_steps_keys_and_enqueues_both_views():
    moco = build("moco", {"crl.moco.queue_size": 16})
    moco.train()
    moco.augment = RecordingAugment(moco.augment)
    moco.enqueue(F.normalize(torch.randn(14, moco.latent_dim), dim=1))  # position 14: this step's 6 keys wrap
    queue_before, position = moco.queue.clone(), int(moco.queue_position)
    x = images(3)
    generated = F.normalize(torch.randn(5, moco.latent_dim, generator=torch.Generator().manual_seed(3)), dim=1)
    out = moco.loss(x, generated)
    views = moco.augment.last
    assert views.shape == (6, 3, SIZE, SIZE)
    with torch.no_grad():  # train-mode BatchNorm: the same batch gives the same outputs
        queries = F.normalize(moco.projector(moco.backbone(views)), dim=1)
        keys = F.normalize(moco.target_projector(moco.target_backbone(views)), dim=1)
    swapped = torch.cat([keys[3:], keys[:3]])  # view 1's queries against view 2's keys and vice versa
    expected = loop_info_nce(
        queries.double(), swapped.double(), queue_before.double(), moco.temperature, generated.double()
    )
    assert out.loss.item() == pytest.approx(expected, rel=1e-4)
    # with the updated queue (this step's own keys as negatives) the value would differ
    queue_after = moco.queue.double()
    updated = loop_info_nce(queries.double(), swapped.double(), queue_after, moco.temperature, generated.double())
    assert abs(updated - expected) > 1e-3
    # both views' keys (not the generated negatives) went in at rows 14, 15, 0, 1, 2, 3
    assert int(moco.queue_position) == (position + 6) % 16 == 4
    rows = [(position + j) % 16 for j in range(6)]
    torch.testing.assert_close(moco.queue[rows], keys, rtol=0, atol=1e-6)
    untouched = [r for r in range(16) if r not in rows]
    assert torch.equal(moco.queue[untouched], queue_before[untouched])


# --- momentum schedules and updates ------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "byol_schedule", "moco_schedule"),
    [("paper", (0.99, 1.0), (0.99, 0.999)), ("tiny", (0.9, 1.0), (0.99, 0.99))],  # tiny: docs/ENCODERS.md
)
def test_momentum_schedules_from_the_config(experiments, profile, byol_schedule, moco_schedule):
    byol = experiments.resolve("byol", profile, 0).crl.byol
    moco = experiments.resolve("moco", profile, 0).crl.moco
    assert (byol.momentum_start, byol.momentum_end) == byol_schedule
    assert (moco.momentum_start, moco.momentum_end) == moco_schedule
    byol, moco = experiments.resolve("byol", "paper", 0).crl.byol, experiments.resolve("moco", "paper", 0).crl.moco
    for progress, expected in [(0.0, 0.99), (0.5, 0.995), (1.0, 1.0)]:
        assert cosine_momentum(byol.momentum_start, byol.momentum_end, progress) == pytest.approx(expected, abs=1e-12)
    for progress, expected in [(0.0, 0.99), (0.5, 0.9945), (1.0, 0.999)]:
        assert cosine_momentum(moco.momentum_start, moco.momentum_end, progress) == pytest.approx(expected, abs=1e-12)
    # cosine in between, clamped outside [0, 1]
    quarter = 0.999 - 0.009 * (math.cos(math.pi / 4) + 1) / 2
    assert cosine_momentum(0.99, 0.999, 0.25) == pytest.approx(quarter, abs=1e-12)
    assert cosine_momentum(0.99, 0.999, -0.5) == pytest.approx(0.99, abs=1e-12)
    assert cosine_momentum(0.99, 0.999, 1.5) == pytest.approx(0.999, abs=1e-12)


TARGETS = {"byol": (("target_backbone", "backbone"), ("target_projector", "projector")),
           "moco": (("target_backbone", "backbone"), ("target_projector", "projector"))}  # fmt: skip
SCHEDULE = {"byol": [(0.0, 0.99), (0.5, 0.995), (1.0, 1.0)], "moco": [(0.0, 0.99), (0.5, 0.9945), (1.0, 0.999)]}


def perturb(module: nn.Module, seed: int) -> None:
    """Move the online network away from its momentum copy (they start equal)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
        for b in module.buffers():
            if b.dtype.is_floating_point:
                b.add_(torch.rand(b.shape, generator=g))


@pytest.mark.parametrize("name", ["byol", "moco"])
def test_on_step_schedule_and_momentum_update_by_hand(name):
    published = {"byol": 1.0, "moco": 0.999}[name]
    method = build(name, {f"crl.{name}.momentum_start": 0.99, f"crl.{name}.momentum_end": published})
    assert method.momentum == 0.99  # before any step: the start value
    for i, (progress, momentum) in enumerate(SCHEDULE[name]):
        for _, online_name in TARGETS[name]:
            perturb(getattr(method, online_name), seed=10 * i + len(online_name))
        old = {t: copy.deepcopy(getattr(method, t).state_dict()) for t, _ in TARGETS[name]}
        online = {o: copy.deepcopy(getattr(method, o).state_dict()) for _, o in TARGETS[name]}
        method.on_step(progress)
        assert method.momentum == pytest.approx(momentum, abs=1e-12)
        for target_name, online_name in TARGETS[name]:
            target, source = getattr(method, target_name), getattr(method, online_name)
            for key, p in target.named_parameters():
                expected = (
                    momentum * old[target_name][key].double() + (1 - momentum) * online[online_name][key].double()
                )
                torch.testing.assert_close(p.double(), expected, rtol=1e-6, atol=1e-7, msg=f"{target_name}.{key}")
                assert not p.requires_grad
                if momentum < 1.0 and not torch.equal(old[target_name][key], online[online_name][key]):
                    assert not torch.equal(p, old[target_name][key]), f"{target_name}.{key} did not move"
                else:
                    assert torch.equal(p, old[target_name][key]), f"{target_name}.{key} moved at momentum 1"
            for key, b in target.named_buffers():  # BatchNorm statistics are copied from the online network
                assert torch.equal(b, online[online_name][key]), f"{target_name}.{key}"
            for key, value in source.state_dict().items():  # the online network is not touched
                assert torch.equal(value, online[online_name][key]), f"{online_name}.{key}"


def test_momentum_one_leaves_the_target_where_it_is():
    target, online = nn.Linear(4, 3), nn.Linear(4, 3)
    before = copy.deepcopy(target.state_dict())
    momentum_update(target, online, 1.0)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())
    momentum_update(target, online, 0.0)  # momentum 0: the target becomes the online network
    assert all(torch.equal(online.state_dict()[k], v) for k, v in target.state_dict().items())


# --- MAE ---------------------------------------------------------------------------------------


@pytest.fixture
def mae() -> MAE:
    method = build("mae")
    assert isinstance(method, MAE)
    return method


def test_mae_masks_exactly_75_percent_per_sample(mae):
    assert mae.patch_size == 2 and mae.patches == (SIZE // 2) ** 2 == 64  # 2 px patches at 16x16
    assert mae.keep == round(mae.patches * 0.25) == 16
    torch.manual_seed(4)
    kept, mask = random_masking(8, mae.patches, mae.keep, torch.device("cpu"))
    assert kept.shape == (8, 16) and mask.shape == (8, 64) and mask.dtype == torch.bool
    assert mask.sum(dim=1).tolist() == [64 - 16] * 8
    for i in range(8):
        assert sorted(kept[i].tolist()) == torch.nonzero(~mask[i]).flatten().tolist()  # kept = the unmasked
    assert len({tuple(row.tolist()) for row in mask}) == 8  # every sample its own mask
    # the method's own reconstruction uses the same masking
    torch.manual_seed(5)
    prediction, mask = mae.reconstruct(images(4))
    assert prediction.shape == (4, 64, 2 * 2 * 3)
    assert mask.sum(dim=1).tolist() == [48] * 4
    assert len({tuple(row.tolist()) for row in mask}) == 4


def test_masked_patch_loss_ignores_visible_patches():
    g = torch.Generator().manual_seed(6)
    prediction = torch.randn(2, 6, 12, generator=g, dtype=torch.float64)
    target = torch.randn(2, 6, 12, generator=g, dtype=torch.float64)
    mask = torch.tensor([[True, False, True, False, False, True], [False, True, True, False, True, False]])
    base = masked_patch_loss(prediction, target, mask)
    for changed in ("prediction", "target"):
        visible_p, visible_t = prediction.clone(), target.clone()
        masked_p, masked_t = prediction.clone(), target.clone()
        if changed == "prediction":
            visible_p[~mask] += 100 * torch.randn(int((~mask).sum()), 12, generator=g, dtype=torch.float64)
            masked_p[0, 0, 3] += 1.0
        else:
            visible_t[~mask] = 50 * torch.randn(int((~mask).sum()), 12, generator=g, dtype=torch.float64)
            masked_t[1, 2, 5] += 1.0
        assert torch.equal(masked_patch_loss(visible_p, visible_t, mask), base), changed
        assert abs(masked_patch_loss(masked_p, masked_t, mask).item() - base.item()) > 1e-6, changed
    # the average is over masked patches: the same per-patch error on a third masked patch keeps the mean
    per_patch_masked = torch.zeros(1, 3, 4, dtype=torch.float64)
    constant = torch.tensor([[[1.0, 2, 3, 4]] * 3], dtype=torch.float64)
    one = masked_patch_loss(per_patch_masked, constant, torch.tensor([[True, False, False]]))
    three = masked_patch_loss(per_patch_masked, constant, torch.tensor([[True, True, True]]))
    assert one.item() == pytest.approx(three.item(), rel=1e-12)


def test_masked_patch_loss_normalises_each_target_patch_by_hand():
    target = torch.tensor([[[1.0, 2, 3, 4], [0, 0, 2, 2], [5, 5, 5, 9]]], dtype=torch.float64)
    prediction = torch.tensor([[[0.0, 0, 0, 0], [100, -100, 7, 3], [1, 1, 1, 1]]], dtype=torch.float64)
    mask = torch.tensor([[True, False, True]])
    # patch 0: mean 2.5, unbiased variance 5/3; prediction 0 -> mean of squares (2.25+.25+.25+2.25)/4 / var
    patch0 = 1.25 / (5 / 3 + 1e-6)
    # patch 2: mean 6, deviations (-1, -1, -1, 3), unbiased variance 4; prediction 1 -> mean((d/s - 1)^2)
    s = math.sqrt(4 + 1e-6)
    patch2 = sum((d / s - 1) ** 2 for d in (-1, -1, -1, 3)) / 4
    assert masked_patch_loss(prediction, target, mask).item() == pytest.approx((patch0 + patch2) / 2, rel=1e-12)
    # per patch, not over the whole image: a different offset and scale per patch changes nothing
    shifted = target * torch.tensor([3.0, 1.0, 0.5], dtype=torch.float64).view(1, 3, 1)
    shifted = shifted + torch.tensor([7.0, -4.0, 2.0], dtype=torch.float64).view(1, 3, 1)
    assert masked_patch_loss(prediction, shifted, mask).item() == pytest.approx((patch0 + patch2) / 2, rel=1e-5)


def unpatchify(patches: torch.Tensor, patch: int, channels: int) -> torch.Tensor:
    """B x (H/p * W/p) x (p * p * C) -> B x C x H x W, written independently of patchify."""
    b, n, _ = patches.shape
    grid = math.isqrt(n)
    out = torch.empty(b, channels, grid * patch, grid * patch, dtype=patches.dtype)
    for index in range(n):
        gy, gx = divmod(index, grid)
        block = patches[:, index].reshape(b, patch, patch, channels)  # row, column, channel
        out[:, :, gy * patch : (gy + 1) * patch, gx * patch : (gx + 1) * patch] = block.permute(0, 3, 1, 2)
    return out


def test_patchify_matches_a_loop_and_inverts():
    grid_image = torch.arange(16.0).view(1, 1, 4, 4)
    assert patchify(grid_image, 2).tolist() == [[[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]]
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(7))
    patches = patchify(x, 2)
    assert patches.shape == (2, 16, 12)
    for gy in range(4):
        for gx in range(4):
            block = x[:, :, 2 * gy : 2 * gy + 2, 2 * gx : 2 * gx + 2]
            assert torch.equal(patches[:, 4 * gy + gx], block.permute(0, 2, 3, 1).reshape(2, 12))
    assert torch.equal(unpatchify(patches, 2, 3), x)
    assert torch.equal(unpatchify(patchify(x, 4), 4, 3), x)


def test_mae_token_i_sees_the_pixels_of_target_patch_i(mae):
    """The mask indexes the encoder's tokens and the loss's target patches alike."""
    x = images(1, seed=8)
    with torch.no_grad():
        base = mae.tokens(x)
    for index in (0, 9, 63):
        gy, gx = divmod(index, 8)
        changed = x.clone()
        changed[:, :, 2 * gy : 2 * gy + 2, 2 * gx : 2 * gx + 2] = (
            1 - changed[:, :, 2 * gy : 2 * gy + 2, 2 * gx : 2 * gx + 2]
        )
        assert not torch.equal(patchify(changed, 2)[:, index], patchify(x, 2)[:, index])
        with torch.no_grad():
            moved = (mae.tokens(changed) - base).abs().amax(dim=(0, 2))
        assert moved[index] > 0
        assert torch.equal(moved[torch.arange(64) != index], torch.zeros(63))


def test_mae_loss_is_the_masked_patch_loss_and_its_gradients_reach_the_encoder(mae):
    mae.train()
    x = images(4, seed=9)
    torch.manual_seed(11)
    out = mae.loss(x)
    torch.manual_seed(11)
    view = mae.augment(x)
    prediction, mask = mae.reconstruct(view)
    assert out.loss.item() == pytest.approx(masked_patch_loss(prediction, patchify(view, 2), mask).item(), rel=1e-6)
    out.loss.backward()
    gradients = {
        "patch embedding": mae.patch_embed.weight.grad,
        "encoder": mae.encoder.layers[0].self_attn.in_proj_weight.grad,
        "last encoder layer": mae.encoder.layers[-1].linear2.weight.grad,
        "mask token": mae.mask_token.grad,
        "decoder": mae.decoder.layers[0].linear1.weight.grad,
        "head": mae.head.weight.grad,
    }
    for name, grad in gradients.items():
        assert grad is not None and grad.abs().sum() > 0, name


def test_sincos_position_embedding():
    pe = sincos_position_embedding(64, 8)
    assert pe.shape == (64, 64) and pe.dtype == torch.float32
    distances = torch.cdist(pe.double(), pe.double())
    assert distances[~torch.eye(64, dtype=torch.bool)].min() > 1e-3  # every position its own row
    ones, zeros = torch.ones(16), torch.zeros(16)
    assert torch.equal(pe[0], torch.cat([zeros, ones, zeros, ones]))  # (y, x) = (0, 0): sin 0, cos 0
    # position (y, x) = (2, 5): first half encodes y, second half x, lowest frequency 1
    assert pe[2 * 8 + 5, 0].item() == pytest.approx(math.sin(2), abs=1e-6)
    assert pe[2 * 8 + 5, 16].item() == pytest.approx(math.cos(2), abs=1e-6)
    assert pe[2 * 8 + 5, 32].item() == pytest.approx(math.sin(5), abs=1e-6)
    assert pe[2 * 8 + 5, 48].item() == pytest.approx(math.cos(5), abs=1e-6)
    with pytest.raises(ValueError, match="multiples of 4"):
        sincos_position_embedding(30, 4)


def test_mae_patch_size_must_divide_the_image():
    with pytest.raises(UserError, match="does not divide"):
        build("mae", {"crl.mae.patch_size": 3})


def test_mae_uses_the_fixed_position_embeddings(mae):
    assert torch.equal(mae.position, sincos_position_embedding(64, 8))
    assert torch.equal(mae.decoder_position, sincos_position_embedding(64, 8))
    assert "position" not in dict(mae.named_parameters())  # fixed, not trained


# --- generated negatives -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["simclr", "moco"])
def test_generated_negatives_change_the_loss_and_nothing_else(name):
    without = build(name, {"crl.moco.queue_size": 32})
    without.train()
    with_negatives = copy.deepcopy(without)
    assert_same_state(without, with_negatives)
    x = images(4, seed=12)
    generated = F.normalize(torch.randn(6, without.latent_dim, generator=torch.Generator().manual_seed(13)), dim=1)
    torch.manual_seed(14)
    out_without = without.loss(x, None)
    torch.manual_seed(14)
    out_with = with_negatives.loss(x, generated)
    assert abs(out_with.loss.item() - out_without.loss.item()) > 1e-4
    assert out_with.loss.item() > out_without.loss.item()  # only negatives were added
    assert torch.equal(out_with.latent, out_without.latent)
    assert_same_state(without, with_negatives)  # parameters, BatchNorm statistics, the queue and its position
    if name == "moco":
        queue = with_negatives.queue
        assert int(with_negatives.queue_position) == 8  # both views' keys, not the 6 generated negatives
        assert (queue @ generated.T).max() < 1 - 1e-3  # no generated negative is a row of the queue


@pytest.mark.parametrize("name", ["byol", "mae"])
def test_methods_without_negatives_ignore_them(name):
    method = build(name)
    method.train()
    twin = copy.deepcopy(method)
    x = images(4, seed=15)
    generated = F.normalize(torch.randn(6, method.latent_dim), dim=1)
    torch.manual_seed(16)
    a = method.loss(x, None)
    torch.manual_seed(16)
    b = twin.loss(x, generated)
    assert torch.equal(a.loss, b.loss) and torch.equal(a.latent, b.latent)
    assert_same_state(method, twin)


@pytest.mark.parametrize(
    "name,has_negatives,recorded",
    [("simclr", True, True), ("moco", True, True), ("byol", False, "n/a"), ("mae", False, "n/a")],
)
def test_has_negatives_and_the_recorded_setting(name, has_negatives, recorded):
    method = build(name)
    assert method.has_negatives is has_negatives
    cfg = tiny_cfg(EXPERIMENT_OF[name])
    assert cfg.crl.use_generated_negatives is True
    assert cfg.crl.generated_negatives == recorded
    off = tiny_cfg(EXPERIMENT_OF[name], crl__use_generated_negatives=False)
    assert off.crl.generated_negatives == (False if has_negatives else "n/a")


# --- BYOL's loss -------------------------------------------------------------------------------


def test_byol_loss_is_symmetric_two_minus_two_cos_against_the_target():
    byol = build("byol")
    assert isinstance(byol, BYOL)
    byol.train()
    perturb(byol.target_backbone, seed=17)  # a target different from the online network
    byol.augment = RecordingAugment(byol.augment)
    out = byol.loss(images(3, seed=18))
    views = byol.augment.last
    with torch.no_grad():
        projections = byol.projector(byol.backbone(views))
        predictions = byol.predictor(projections)
        targets = byol.target_projector(byol.target_backbone(views))
    expected = 0.0
    for first, second in ((slice(0, 3), slice(3, 6)), (slice(3, 6), slice(0, 3))):  # both directions
        cos = F.cosine_similarity(predictions[first].double(), targets[second].double(), dim=1)
        expected += (2 - 2 * cos).mean().item()
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)
    assert byol_loss(torch.ones(2, 3), 5 * torch.ones(2, 3)).item() == pytest.approx(0.0, abs=1e-6)
    assert byol_loss(torch.tensor([[1.0, 0]]), torch.tensor([[-2.0, 0]])).item() == pytest.approx(4.0)
    torch.testing.assert_close(out.latent, F.normalize(projections[:3], dim=1), rtol=0, atol=1e-5)
    out.loss.backward()
    assert all(p.grad is None for p in byol.target_backbone.parameters())  # the target is not trained
    assert all(p.grad is None for p in byol.target_projector.parameters())
    assert byol.predictor[0].weight.grad.abs().sum() > 0


# --- the latents -------------------------------------------------------------------------------


@pytest.mark.parametrize("name,cls", [("simclr", SimCLR), ("moco", MoCo), ("byol", BYOL), ("mae", MAE)])
def test_latents_are_unit_norm_and_gradient_free(name, cls):
    method = build(name, {"crl.moco.queue_size": 32})
    assert isinstance(method, cls)
    cfg = tiny_cfg(EXPERIMENT_OF[name])
    assert method.latent_dim == cfg.crl.latent_dim
    x = images(5, seed=19).requires_grad_(True)  # even an input that requires grad gives a detached latent
    method.eval()
    z = method.latent(x)
    assert z.shape == (5, method.latent_dim)
    assert not z.requires_grad and z.grad_fn is None
    torch.testing.assert_close(z.norm(dim=1), torch.ones(5), rtol=0, atol=1e-5)
    assert torch.equal(method.latent(x), z)  # deterministic: no augmentation, no masking
    assert not torch.allclose(z[0], z[1])  # a function of the image
    method.train()
    out = method.loss(x.detach(), None)
    assert isinstance(out, CRLOutput)
    assert out.loss.ndim == 0 and out.loss.requires_grad and torch.isfinite(out.loss)
    assert out.latent.shape == (5, method.latent_dim)
    assert not out.latent.requires_grad and out.latent.grad_fn is None
    torch.testing.assert_close(out.latent.norm(dim=1), torch.ones(5), rtol=0, atol=1e-5)


# --- bf16 autocast (train.precision = "bf16") --------------------------------------------------


@pytest.mark.parametrize("name", ["simclr", "byol", "moco", "mae"])
def test_loss_under_bf16_autocast(name):
    method = build(name, {"crl.moco.queue_size": 32})
    method.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = method.loss(images(4, seed=20), None)
    assert torch.isfinite(out.loss.float())
    torch.testing.assert_close(out.latent.float().norm(dim=1), torch.ones(4), rtol=0, atol=1e-2)
    assert all(b.dtype in (torch.float32, torch.long) for b in method.buffers())  # the queue stays float32
