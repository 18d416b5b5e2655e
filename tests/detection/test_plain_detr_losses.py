"""Hungarian matching (against brute force), focal / L1 / GIoU losses (against hand formulas), hybrid matching."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from detection.plain_detr import HungarianMatcher, SetCriterion, sigmoid_focal_loss, tiny_config
from detection.plain_detr.box_ops import box_cxcywh_to_xyxy, generalized_box_iou, paired_generalized_box_iou
from detection.plain_detr.matcher import focal_class_cost


def test_giou_hand_values() -> None:
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0], [3.0, 0.0, 4.0, 1.0]])
    # identical: 1; overlap 1 of union 7 in a 3x3 hull: 1/7 - 2/9; disjoint: 0 - (hull 8 - union 5) / 8
    torch.testing.assert_close(generalized_box_iou(a, b)[0], torch.tensor([1.0, 1 / 7 - 2 / 9, -3 / 8]))
    boxes = box_cxcywh_to_xyxy(torch.rand(7, 4) * 0.5 + 0.25)
    others = box_cxcywh_to_xyxy(torch.rand(7, 4) * 0.5 + 0.25)
    torch.testing.assert_close(
        paired_generalized_box_iou(boxes, others), torch.diag(generalized_box_iou(boxes, others))
    )


def test_box_ops_never_read_tensors_back_to_the_host(monkeypatch) -> None:
    """A validity check inside GIoU synced the device at every matcher and loss step."""
    boxes = box_cxcywh_to_xyxy(torch.rand(5, 4) * 0.5 + 0.25)

    def no_sync(self):
        raise AssertionError("a tensor was read on the host")

    monkeypatch.setattr(torch.Tensor, "__bool__", no_sync)
    generalized_box_iou(boxes, boxes)
    paired_generalized_box_iou(boxes, boxes)


def test_focal_class_cost_formula() -> None:
    p = torch.tensor([[0.3, 0.8]])
    cost = focal_class_cost(p, torch.tensor([1, 0]))
    pos = lambda q: 0.25 * (1 - q) ** 2 * -math.log(q)  # noqa: E731
    neg = lambda q: 0.75 * q**2 * -math.log(1 - q)  # noqa: E731
    torch.testing.assert_close(
        cost, torch.tensor([[pos(0.8) - neg(0.8), pos(0.3) - neg(0.3)]]), atol=1e-6, rtol=1e-5
    )


def test_matcher_is_optimal_against_brute_force() -> None:
    torch.manual_seed(0)
    matcher = HungarianMatcher(2.0, 5.0, 2.0)
    logits = torch.randn(1, 5, 3)
    boxes = torch.rand(1, 5, 4) * 0.4 + 0.2
    target = {"labels": torch.tensor([0, 2, 1]), "boxes": torch.rand(3, 4) * 0.4 + 0.2}
    ((rows, cols),) = matcher(logits, boxes, [target])
    cost = matcher.cost_matrix(logits[0], boxes[0], target)
    best = min(sum(cost[q, t] for t, q in enumerate(perm)) for perm in itertools.permutations(range(5), 3))
    assert len(rows) == 3
    torch.testing.assert_close(cost[rows, cols].sum(), best)


def test_matcher_recovers_a_permutation_and_handles_empty() -> None:
    tgt_boxes = torch.tensor([[0.2, 0.2, 0.1, 0.1], [0.7, 0.6, 0.3, 0.2], [0.5, 0.5, 0.2, 0.4]])
    perm = torch.tensor([2, 0, 1])  # query i predicts target perm[i]
    logits = torch.full((1, 3, 2), -5.0)
    labels = torch.tensor([1, 0, 1])
    logits[0, torch.arange(3), labels[perm]] = 5.0
    target = {"labels": labels, "boxes": tgt_boxes}
    (rows, cols), empty = HungarianMatcher()(logits, tgt_boxes[perm][None], [target]) + HungarianMatcher()(
        logits, tgt_boxes[None], [{"labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)}]
    )
    assert cols[torch.argsort(rows)].tolist() == perm.tolist()
    assert empty[0].numel() == 0 and empty[1].numel() == 0


def test_sigmoid_focal_loss_hand_value() -> None:
    x, t = torch.tensor([[[0.5, -1.0]]]), torch.tensor([[[1.0, 0.0]]])
    p0, p1 = torch.sigmoid(torch.tensor(0.5)).item(), torch.sigmoid(torch.tensor(-1.0)).item()
    hand = 0.25 * (1 - p0) ** 2 * -math.log(p0) + 0.75 * p1**2 * -math.log(1 - p1)
    torch.testing.assert_close(
        sigmoid_focal_loss(x, t, num_boxes=2.0), torch.tensor(hand / 2), atol=1e-6, rtol=1e-5
    )


def _outputs(logits: torch.Tensor, boxes: torch.Tensor, layers: int = 2) -> dict:
    return {"one2one": [(logits, boxes)] * layers, "enc": (logits[..., :1], boxes)}


def test_box_losses_vanish_for_perfect_boxes() -> None:
    crit = SetCriterion(tiny_config(3))
    tgt = {
        "labels": torch.tensor([0, 2]),
        "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.6, 0.2, 0.3]]),
    }
    boxes = torch.cat([tgt["boxes"], torch.tensor([[0.5, 0.5, 0.05, 0.05]])])[None]
    logits = torch.full((1, 3, 3), -8.0)
    logits[0, 0, 0] = logits[0, 1, 2] = 8.0
    parts = crit.single(logits, boxes, [tgt], num_boxes=2.0)
    assert parts["l1"].item() == pytest.approx(0.0, abs=1e-6)
    assert parts["giou"].item() == pytest.approx(0.0, abs=1e-6)
    assert parts["cls"].item() < 1e-3
    worse = crit.single(logits, boxes + 0.05, [tgt], num_boxes=2.0)
    assert worse["l1"].item() == pytest.approx(
        8 * 0.05 / 2, rel=1e-4
    )  # 2 boxes x 4 coords x 0.05 / num_boxes


def test_total_loss_sums_weighted_layers_and_encoder() -> None:
    cfg = tiny_config(3, num_queries_one2many=0)
    crit = SetCriterion(cfg)
    torch.manual_seed(0)
    logits, boxes = torch.randn(2, 6, 3), torch.rand(2, 6, 4) * 0.3 + 0.3
    targets = [
        {"labels": torch.tensor([1]), "boxes": torch.tensor([[0.4, 0.4, 0.2, 0.2]])},
        {"labels": torch.tensor([0, 2]), "boxes": torch.tensor([[0.5, 0.5, 0.3, 0.3], [0.3, 0.6, 0.1, 0.2]])},
    ]
    losses = crit(_outputs(logits, boxes), targets)
    enc_targets = [{"labels": torch.zeros_like(t["labels"]), "boxes": t["boxes"]} for t in targets]
    layer = crit.weighted(crit.single(logits, boxes, targets, 3.0))
    enc = crit.weighted(crit.single(logits[..., :1], boxes, enc_targets, 3.0))
    torch.testing.assert_close(losses["loss"], 2 * layer + enc)
    assert set(losses) == {"loss", "loss_cls", "loss_l1", "loss_giou", "loss_enc"}


def test_one2many_matches_k_copies_of_each_target() -> None:
    cfg = tiny_config(2, k_one2many=3)
    crit = SetCriterion(cfg)
    targets = [
        {"labels": torch.tensor([0, 1]), "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.6, 0.6, 0.2, 0.2]])}
    ]
    many_targets = [{"labels": targets[0]["labels"].repeat(3), "boxes": targets[0]["boxes"].repeat(3, 1)}]
    logits, boxes = torch.randn(1, 10, 2), torch.rand(1, 10, 4) * 0.3 + 0.3
    ((rows, cols),) = crit.matcher(logits, boxes, many_targets)
    assert len(rows) == 6 and len(set(rows.tolist())) == 6  # 6 distinct queries, each target 3 times
    assert sorted((cols % 2).tolist()) == [0, 0, 0, 1, 1, 1]
    out = {**_outputs(logits[:, :4], boxes[:, :4], 1), "one2many": [(logits, boxes)]}
    losses = crit(out, targets)
    expected = cfg.lambda_one2many * crit.weighted(crit.single(logits, boxes, many_targets, 6.0))
    torch.testing.assert_close(losses["loss_one2many"], expected)


def test_loss_gradients_flow_and_empty_images_work() -> None:
    crit = SetCriterion(tiny_config(2, num_queries_one2many=0))
    logits = torch.randn(2, 4, 2, requires_grad=True)
    boxes = (torch.rand(2, 4, 4) * 0.3 + 0.3).requires_grad_()
    targets = [
        {"labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)},
        {"labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]])},
    ]
    crit(_outputs(logits, boxes), targets)["loss"].backward()
    assert logits.grad.abs().sum() > 0 and boxes.grad[1].abs().sum() > 0
    assert boxes.grad[0].abs().sum() == 0  # no targets in image 0: its boxes get no box loss
    with pytest.raises(ValueError):
        crit(_outputs(logits, boxes), [{"labels": torch.tensor([0]), "boxes": torch.zeros(2, 4)}] * 2)


def test_cxcywh_to_xyxy() -> None:
    torch.testing.assert_close(
        box_cxcywh_to_xyxy(torch.tensor([0.5, 0.5, 0.2, 0.4])), torch.tensor([0.4, 0.3, 0.6, 0.7])
    )
