"""Lightning modules: fine-grained classification (BiFormer or DCAL) and re-ID (DCAL, cross-entropy + triplet).

Models are named in the config (``model: {name: biformer_tiny, ...}``), any of the registry's ``classifier``
family (``detection.registry.list_models("classifier")``), so hyper-parameters stay plain containers and
checkpoints load with ``weights_only=True``:

* ``biformer_tiny`` | ``biformer_small`` | ``biformer_base`` -- a BiFormer classifier (cross-entropy);
  ``biformer`` builds ``detection.biformer.BiFormer`` from explicit ``depth``/``embed_dim``/``topks``;
* ``dcal_vit_tiny`` | ``dcal_vit_small`` | ``dcal_vit_base`` -- DCAL on a DeiT-style ViT, trained with the
  uncertainty-weighted SA + GLCA + PWCA loss; predictions sum the SA and GLCA probabilities.

Extra keys of ``model`` go to the constructor (``n_win``, ``img_size``, ``patch_size``, ``local_ratio``,
``drop_path_rate``, ``checkpoint_path`` for released ImageNet weights, ...).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from detection.dcal import DCAL, DCALOutput, UncertaintyWeighting
from detection.registry import create_model
from detection.training.schedule import adamw_with_warmup, parameter_groups

__all__ = ["ClassificationModule", "ReIDModule", "batch_hard_triplet_loss", "build_model", "reid_metrics"]


def build_model(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """A classifier by its registered name (``detection.registry``, family ``classifier``): ``biformer``
    takes the full ``BiFormer`` arguments."""
    return create_model("classifier", name, num_classes=num_classes, **kwargs)


class _AdamWWithWarmup(L.LightningModule):
    """AdamW (weight decay on matrices only) after a linear warm-up, from the hyperparameters ``lr``,
    ``weight_decay`` and ``warmup_steps``: the schedule both classification tasks train with."""

    def configure_optimizers(self) -> dict:
        hp = self.hparams
        return adamw_with_warmup(
            self, parameter_groups(self.named_parameters(), hp.weight_decay), hp.lr, hp.warmup_steps
        )


class ClassificationModule(_AdamWWithWarmup):
    """Image classification; logs ``train/loss`` and ``val/top1`` (DCAL also ``val/top1_sa``, ``val/top1_glca``)."""

    def __init__(
        self,
        model: dict[str, Any],
        num_classes: int,
        lr: float = 5e-4,
        weight_decay: float = 0.05,
        warmup_steps: int = 500,
        label_smoothing: float = 0.1,
    ) -> None:
        super().__init__()
        if "name" not in model:
            raise ValueError("model needs a `name` (e.g. biformer_tiny or dcal_vit_small)")
        self.save_hyperparameters()
        kwargs = {k: v for k, v in model.items() if k != "name"}
        self.model = build_model(model["name"], num_classes, **kwargs)
        self.loss_weighting = UncertaintyWeighting(3) if isinstance(self.model, DCAL) else None

    def forward(self, images: Tensor) -> Tensor:
        """Class probabilities (DCAL: SA + GLCA probabilities, the paper's inference rule)."""
        if isinstance(self.model, DCAL):
            out = self.model(images)
            return out.sa_logits.softmax(-1) + out.glca_logits.softmax(-1)
        return self.model(images).softmax(-1)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        ce = lambda logits: F.cross_entropy(logits, labels, label_smoothing=self.hparams.label_smoothing)  # noqa: E731
        if isinstance(self.model, DCAL):
            out: DCALOutput = self.model(images)
            terms = {"sa": ce(out.sa_logits), "glca": ce(out.glca_logits)}
            if out.pwca_logits is not None:
                terms["pwca"] = ce(out.pwca_logits)
            loss = self.loss_weighting(list(terms.values()))
            self.log_dict({f"train/loss_{k}": v for k, v in terms.items()}, on_step=True)
        else:
            loss = ce(self.model(images))
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True)
        return loss

    def _evaluate(self, batch: tuple[Tensor, Tensor], prefix: str) -> None:
        images, labels = batch
        if isinstance(self.model, DCAL):
            out = self.model(images)
            probs = out.sa_logits.softmax(-1) + out.glca_logits.softmax(-1)
            self.log(f"{prefix}/top1_sa", (out.sa_logits.argmax(-1) == labels).float().mean())
            self.log(f"{prefix}/top1_glca", (out.glca_logits.argmax(-1) == labels).float().mean())
        else:
            probs = self.model(images)
        self.log(f"{prefix}/top1", (probs.argmax(-1) == labels).float().mean(), prog_bar=True)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")


def batch_hard_triplet_loss(embeddings: Tensor, labels: Tensor, margin: float = 0.3) -> Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017): hardest positive vs hardest negative per anchor."""
    dist = torch.cdist(embeddings, embeddings)
    same = labels[:, None] == labels[None, :]
    if not (same.sum(1) > 1).all() or same.all():
        raise ValueError("batch-hard triplets need >= 2 images per identity and >= 2 identities (use P x K)")
    hardest_pos = dist.masked_fill(~same, float("-inf")).amax(1)
    hardest_neg = dist.masked_fill(same, float("inf")).amin(1)
    return F.relu(hardest_pos - hardest_neg + margin).mean()


def reid_metrics(
    query: Tensor, q_pids: Tensor, q_cams: Tensor, gallery: Tensor, g_pids: Tensor, g_cams: Tensor
) -> dict[str, float]:
    """mAP and CMC rank-1 with the standard protocol: Euclidean ranking, and per query the gallery images of
    the same identity *and* camera are ignored; queries without a valid match are skipped."""
    dist = torch.cdist(query.float(), gallery.float())
    aps, rank1 = [], []
    for i in range(query.shape[0]):
        order = dist[i].argsort()
        keep = ~((g_pids[order] == q_pids[i]) & (g_cams[order] == q_cams[i]))
        hits = (g_pids[order] == q_pids[i])[keep].float()
        if hits.sum() == 0:
            continue
        precision = hits.cumsum(0) / torch.arange(1, hits.numel() + 1, device=hits.device)
        aps.append(float((precision * hits).sum() / hits.sum()))
        rank1.append(float(hits[0]))
    if not aps:
        raise ValueError("no query has a valid gallery match (check pids/cameras of query and gallery)")
    return {"mAP": sum(aps) / len(aps), "rank1": sum(rank1) / len(rank1)}


class ReIDModule(_AdamWWithWarmup):
    """DCAL re-ID: per branch cross-entropy over training identities + batch-hard triplet on the CLS
    embedding, uncertainty-weighted; evaluation ranks the gallery by the concatenated SA + GLCA embedding and
    logs ``val/mAP`` and ``val/rank1``."""

    def __init__(
        self,
        model: dict[str, Any],
        num_ids: int,
        lr: float = 5e-4,
        weight_decay: float = 0.05,
        warmup_steps: int = 500,
        triplet_margin: float = 0.3,
        label_smoothing: float = 0.1,
    ) -> None:
        super().__init__()
        if not str(model.get("name", "")).startswith("dcal_vit_"):
            raise ValueError(
                f"re-ID needs a DCAL model (dcal_vit_tiny|small|base), got {model.get('name')!r}"
            )
        self.save_hyperparameters()
        kwargs = {"local_ratio": 0.3, **{k: v for k, v in model.items() if k != "name"}}
        self.model: DCAL = build_model(model["name"], num_ids, **kwargs)
        self.loss_weighting = UncertaintyWeighting(3)
        self._eval: list[tuple[Tensor, ...]] = []

    def forward(self, images: Tensor) -> Tensor:
        """Re-ID embedding: the SA and GLCA CLS tokens concatenated ``[B, 2C]``."""
        out = self.model(images)
        return torch.cat([out.sa_embedding, out.glca_embedding], dim=-1)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        hp = self.hparams
        out = self.model(images)
        branches = {"sa": (out.sa_logits, out.sa_embedding), "glca": (out.glca_logits, out.glca_embedding)}
        if out.pwca_logits is not None:
            branches["pwca"] = (out.pwca_logits, out.pwca_embedding)
        terms = {
            name: F.cross_entropy(logits, labels, label_smoothing=hp.label_smoothing)
            + batch_hard_triplet_loss(emb, labels, hp.triplet_margin)
            for name, (logits, emb) in branches.items()
        }
        loss = self.loss_weighting(list(terms.values()))
        self.log_dict({f"train/loss_{k}": v for k, v in terms.items()}, on_step=True)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        images, pids, cams, is_query = batch
        self._eval.append((self(images).cpu(), pids.cpu(), cams.cpu(), is_query.cpu()))

    def _finish(self, prefix: str) -> None:
        emb, pids, cams, is_query = (torch.cat(parts) for parts in zip(*self._eval, strict=True))
        self._eval.clear()
        q, g = is_query, ~is_query
        metrics = reid_metrics(emb[q], pids[q], cams[q], emb[g], pids[g], cams[g])
        self.log(f"{prefix}/mAP", metrics["mAP"], prog_bar=True)
        self.log(f"{prefix}/rank1", metrics["rank1"], prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        self._finish("val")

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        self._finish("test")
