"""The one place numba flags live.

``njit``: compiled, cached, no fastmath (integer and rounding paths must be exact).
``njit_parallel``: the same with ``parallel=True``, only for kernels whose outer loop is a ``prange`` over
independent outputs.
"""
from __future__ import annotations

import numba

njit = numba.njit(cache=True, nogil=True)
njit_parallel = numba.njit(cache=True, nogil=True, parallel=True)
prange = numba.prange
