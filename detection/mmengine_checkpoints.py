"""mmengine checkpoints under ``torch.load(weights_only=True)``, torch's default since 2.6.

mmengine 0.10 saves its message hub in every checkpoint: ``HistoryBuffer`` objects holding numpy arrays, and
numpy scalars in the runtime info. Torch's safe unpickler refuses these unless they are allow-listed, which left
users with ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (that makes every ``torch.load`` in the process unsafe).
``allow_mmengine_checkpoints`` allow-lists exactly these types; ``detection.mmdet_plugin`` calls it on import.

One of them needs care: a ``HistoryBuffer`` pickles its statistics methods as ``getattr(HistoryBuffer, "min")``.
Allowing the builtin ``getattr`` would let a file walk to any attribute of any allowed object, so the name
``builtins.getattr`` is bound to ``_statistics_method``, which resolves only those four methods.
"""

from __future__ import annotations

import pickle

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from numpy._core.multiarray import _reconstruct, scalar

# The dtypes of logged values (losses, learning rates, times, counters); no object dtype, whose arrays
# would carry pickled Python objects.
_NUMERIC_DTYPES = tuple(
    sorted(
        {type(np.dtype(code)) for code in "?" + np.typecodes["AllInteger"] + np.typecodes["AllFloat"]},
        key=lambda dtype: dtype.__name__,
    )
)
_STATISTICS = ("min", "max", "current", "mean")  # what HistoryBuffer registers by default


def _statistics_method(owner: object, name: str) -> object:
    """``getattr`` as an mmengine checkpoint may use it: a default statistics method of ``HistoryBuffer``."""
    if owner is HistoryBuffer and name in _STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f"refused getattr({owner!r}, {name!r}) in a weights_only load: mmengine checkpoints only need "
        f"HistoryBuffer.{{{', '.join(_STATISTICS)}}}"
    )


SAFE_GLOBALS = (
    HistoryBuffer,
    np.ndarray,
    np.dtype,
    _reconstruct,
    scalar,
    *_NUMERIC_DTYPES,
    (_statistics_method, "builtins.getattr"),
)


def allow_mmengine_checkpoints() -> None:
    """Let ``weights_only=True`` loads (mmengine's ``load_from``/``resume``, mmdet's ``tools/test.py``) read
    mmengine checkpoints; idempotent."""
    torch.serialization.add_safe_globals(list(SAFE_GLOBALS))
