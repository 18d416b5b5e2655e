import math

import numpy as np
import pytest
import torch

from vid2robot.policy import SigLIPLoss, Vid2RobotLoss, Vid2RobotOutput, temporal_cycle_consistency_loss


def _tcc_by_hand(u: np.ndarray, v: np.ndarray, temperature: float, lam: float) -> float:
    """Cycle-back regression (TCC Eq. 1-4) written as explicit loops, one direction U->V->U."""
    n, e = u.shape
    losses = []
    for i in range(n):
        sim = [-np.sum((u[i] - vj) ** 2) / (e * temperature) for vj in v]
        alpha = np.exp(sim - np.max(sim))
        alpha /= alpha.sum()
        v_tilde = sum(a * vj for a, vj in zip(alpha, v, strict=True))
        sim_back = [-np.sum((v_tilde - uk) ** 2) / (e * temperature) for uk in u]
        beta = np.exp(sim_back - np.max(sim_back))
        beta /= beta.sum()
        mu = sum(k * b for k, b in enumerate(beta))
        var = sum(b * (k - mu) ** 2 for k, b in enumerate(beta))
        losses.append((i - mu) ** 2 / var + lam * math.log(math.sqrt(var)))
    return float(np.mean(losses))


def test_tcc_matches_hand_computation() -> None:
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 5, 3))
    expected = np.mean(
        [0.5 * (_tcc_by_hand(u[b], v[b], 0.5, 0.1) + _tcc_by_hand(v[b], u[b], 0.5, 0.1)) for b in range(2)]
    )
    got = temporal_cycle_consistency_loss(
        torch.tensor(u), torch.tensor(v), temperature=0.5, variance_lambda=0.1
    )
    assert got.item() == pytest.approx(expected, rel=1e-9)


def test_tcc_is_low_for_aligned_videos_and_high_for_reversed() -> None:
    steps = torch.linspace(0, 3, 8)
    u = torch.stack([steps.cos(), steps.sin()], -1)[None] * 5
    aligned = temporal_cycle_consistency_loss(u, u + 0.01, temperature=0.01)
    assert aligned < 0.05
    # a constant video has no temporal structure to cycle back through
    assert temporal_cycle_consistency_loss(u, torch.zeros_like(u)) > 1.0


def test_tcc_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"\[B, N, E\]"):
        temporal_cycle_consistency_loss(torch.zeros(2, 4, 3), torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match=">= 2 frames"):
        temporal_cycle_consistency_loss(torch.zeros(1, 1, 3), torch.zeros(1, 4, 3))


def _siglip_by_hand(x: np.ndarray, y: np.ndarray, t: float, b: float, positive) -> float:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    total = 0.0
    for i in range(len(x)):
        for j in range(len(y)):
            z = 1.0 if positive(i, j) else -1.0
            total += -math.log(1.0 / (1.0 + math.exp(-z * (t * float(x[i] @ y[j]) + b))))
    return total / len(x)


def test_siglip_matches_hand_computation() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    loss = SigLIPLoss().double()
    assert loss.log_temperature.exp().item() == pytest.approx(10.0) and loss.bias.item() == -10.0
    t = loss.log_temperature.exp().item()  # 10 up to the float32 rounding of log(10)
    got = loss(torch.tensor(x), torch.tensor(y))
    assert got.item() == pytest.approx(_siglip_by_hand(x, y, t, -10.0, lambda i, j: i == j), rel=1e-9)
    labels = torch.tensor([0, 1, 0])
    got = loss(torch.tensor(x), torch.tensor(y), labels)
    same = lambda i, j: labels[i] == labels[j]  # noqa: E731
    assert got.item() == pytest.approx(_siglip_by_hand(x, y, t, -10.0, same), rel=1e-9)


def test_siglip_temperature_and_bias_learn() -> None:
    loss = SigLIPLoss()
    x = torch.randn(4, 8)
    loss(x, x + 0.1 * torch.randn(4, 8)).backward()
    assert loss.log_temperature.grad is not None and loss.bias.grad.abs() > 0
    with pytest.raises(ValueError, match=r"\[B, E\]"):
        loss(torch.zeros(3, 4), torch.zeros(2, 4))


def _output(batch=3, horizon=2, dims=2, bins=8, frames=4, embed=16, with_embeddings=True):
    embeddings = dict(
        prompt_frame_embeddings=torch.randn(batch, frames, embed),
        robot_frame_embeddings=torch.randn(batch, frames, embed),
        prompt_embedding=torch.randn(batch, embed),
        robot_embedding=torch.randn(batch, embed),
    )
    return Vid2RobotOutput(torch.randn(batch, horizon, dims, bins), **(embeddings if with_embeddings else {}))


def test_combined_loss_is_the_weighted_mean_of_its_terms() -> None:
    out = _output()
    actions = torch.rand(3, 2, 2) * 2 - 1
    text = torch.randn(3, 384)
    loss_fn = Vid2RobotLoss(action_bins=8, embed_dim=16)
    r = loss_fn(out, actions, text_embeddings=text)
    targets = loss_fn.tokenizer.encode(actions)
    ce = torch.nn.functional.cross_entropy(out.action_logits.reshape(-1, 8), targets.reshape(-1))
    torch.testing.assert_close(r["ce"], ce)
    torch.testing.assert_close(r["loss"], (r["ce"] + r["tcc"] + r["vvcl"] + r["vtcl"]) / 4)
    acc = (out.action_logits.argmax(-1) == targets).float().mean()
    torch.testing.assert_close(r["bin_accuracy"], acc)
    weighted = Vid2RobotLoss(
        action_bins=8, embed_dim=16, weights={"ce": 3.0, "tcc": 1.0, "vvcl": 1.0, "vtcl": 0.0}
    )(out, actions)
    expected = (3 * weighted["ce"] + weighted["tcc"] + weighted["vvcl"]) / 5
    torch.testing.assert_close(weighted["loss"], expected)


def test_loss_skips_missing_terms_and_masks_padded_steps() -> None:
    out = _output(with_embeddings=False)
    actions = torch.rand(3, 2, 2) * 2 - 1
    loss_fn = Vid2RobotLoss(action_bins=8, embed_dim=16)
    r = loss_fn(out, actions, text_embeddings=torch.randn(3, 384))
    assert set(r) == {"loss", "ce", "bin_accuracy"}
    mask = torch.tensor([[True, False], [True, True], [False, False]])
    masked = loss_fn(out, actions, action_mask=mask)
    per_step = torch.nn.functional.cross_entropy(
        out.action_logits.permute(0, 3, 1, 2), loss_fn.tokenizer.encode(actions), reduction="none"
    ).mean(-1)
    torch.testing.assert_close(masked["ce"], per_step[mask].mean())
    with pytest.raises(ValueError, match="actions must be"):
        loss_fn(out, torch.zeros(3, 3, 2))
    with pytest.raises(ValueError, match="action_mask"):
        loss_fn(out, actions, action_mask=mask[:, :1])


def test_each_policy_trains_on_its_own_loss_terms(tiny_bcz_config, tiny_task_config, tiny_config) -> None:
    """BC-Z and the oracle have no alignment terms; missing weights used to default to 1, so BC-Z trained with
    the video-text loss whenever task text was on."""
    from vid2robot.policy.loss_weights import ACTION_LOSS_ONLY, check_loss_weights
    from vid2robot.training.policy_module import PolicyModule

    bcz = PolicyModule("BCZPolicy", tiny_bcz_config().to_dict())
    oracle = PolicyModule("TaskIdPolicy", tiny_task_config().to_dict())
    vid2robot = PolicyModule("Vid2RobotPolicy", tiny_config().to_dict())
    assert bcz.loss.weights == ACTION_LOSS_ONLY and oracle.loss.weights == ACTION_LOSS_ONLY
    assert vid2robot.loss.weights == {"ce": 1.0, "tcc": 1.0, "vvcl": 1.0, "vtcl": 1.0}
    old_oracle = tiny_task_config(tcc_weight=1.0, vtcl_weight=1.0)  # a config saved before the fix
    assert old_oracle.loss_weights == ACTION_LOSS_ONLY
    with pytest.raises(ValueError, match=r"must name exactly \['ce', 'tcc', 'vvcl', 'vtcl'\]"):
        check_loss_weights({"ce": 1.0})
    with pytest.raises(ValueError, match="Vid2RobotConfig weights must be >= 0 with a positive sum"):
        tiny_config(ce_weight=0.0, tcc_weight=0.0, vvcl_weight=0.0, vtcl_weight=0.0)
