"""The one place numba flags live.

``njit``: compiled, cached, no fastmath (integer and rounding paths must be exact).
``njit_parallel``: the same with ``parallel=True``, only for kernels whose outer loop is a ``prange`` over
independent outputs.
``njit_float_dot``: ``fastmath=True``, only for float32 dot products whose summation order is free (as a BLAS
library's is): LLVM may then reassociate the sum and vectorize it. Never on integer or rounding paths.
``njit_parallel_float_dot``: both, only for a ``prange`` over independent float32 dot products.

Numba's parallel kernels run on its OpenMP threading layer. By default OpenMP worker threads spin for a while
after each parallel region; on a 2-core machine they then take the cores from the BLAS and ONNX Runtime calls
that follow (measured: ``accelsim eval minilm_l6 --eval lee --precision w8a8`` 14.6 s with spinning workers,
7.9 s with ``OMP_WAIT_POLICY=PASSIVE``). So accelsim asks for passive waiting unless the user set a policy;
it applies when the OpenMP runtime loads, at the first parallel kernel.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402  (after the wait policy, which the OpenMP runtime reads when it loads)

njit = numba.njit(cache=True, nogil=True)
njit_parallel = numba.njit(cache=True, nogil=True, parallel=True)
njit_float_dot = numba.njit(cache=True, nogil=True, fastmath=True)
njit_parallel_float_dot = numba.njit(cache=True, nogil=True, parallel=True, fastmath=True)
prange = numba.prange
