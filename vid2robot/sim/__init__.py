"""Meta-World simulation: camera-frame environment, scripted-expert data generation, closed-loop evaluation.

Importing this package picks headless rendering defaults before MuJoCo creates a GL context: EGL (works on
CPU through Mesa; set ``MUJOCO_GL=osmesa`` where EGL is missing) and one llvmpipe thread per process, which
renders 96x96 frames faster than Mesa's default thread pool on shared CPUs (72 vs 37 frames/s measured
here) and lets data-generation workers scale by process. Both respect values already set.

It also imports Triton, when installed, before anything renders: Mesa's llvmpipe and Triton each load their
own LLVM, and importing Triton (as ``import lightning`` or ``torch.compile`` do) after a frame was rendered
crashed the process with a segmentation fault (measured: every time, with or without the hand view); in the
other order both work.
"""

import importlib.util
import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "1")

if importlib.util.find_spec("triton") is not None:
    import triton  # noqa: F401  (load order; see above)
