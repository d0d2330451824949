"""Fixed-width integer vector steps for kernels whose loops are too short for LLVM's loop vectorizer.

Internal. A systolic PE row is 16–256 PEs wide; a loop that short spends most of its time in the runtime alias
checks and remainder loops the vectorizer adds around it (it cannot know that the arrays do not overlap). These
helpers emit explicit LLVM vectors of :data:`LANES` elements instead (``numba.extending.intrinsic``): the target
lowers one vector operation to one AVX-512 instruction, two on AVX2, four on SSE — no checks, no remainder. Each
helper is a plain Python function (what runs under ``NUMBA_DISABLE_JIT=1``, and the twin the tests compare
against) whose compiled form is the vector code.

Both take ``L = LANES`` accumulators ``o[oo:oo+L]``, held in registers while they add ``n · f`` products in the
order ``t = 0..n−1``, then ``u = 0..f−1``::

    o[oo + l] += x[xo + t·xt + u·xu + l] · y[yo + t·yt + u·yu + l]        (l < L)

* :func:`vmac` — int16 operands, products and sums in ``o``'s integer type (int32 or int64; the caller
  guarantees that no sum leaves it);
* :func:`vmac_checked` — each addition one ``acc_bits`` register step on int64: the exact sum, then wrap
  (sign-extend from ``acc_bits``: ``(s << sh) >> sh``, ``sh = 64 − acc_bits``) or saturate (clamp to
  ``[lo, hi]``); ``ov[oo + l] += 1`` for every step whose exact sum left the range.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

LANES = 16


def vmac(o, oo, x, xo, xt, xu, y, yo, yt, yu, n, f):
    """``n · f`` vector multiply-adds into ``o[oo:oo+LANES]`` (module docstring)."""
    for t in range(n):
        for u in range(f):
            a, b = xo + t * xt + u * xu, yo + t * yt + u * yu
            o[oo:oo + LANES] += x[a:a + LANES].astype(o.dtype) * y[b:b + LANES].astype(o.dtype)


def vmac_checked(o, ov, oo, x, xo, xt, xu, y, yo, yt, yu, n, f, wrap, sh, lo, hi):
    """``n · f`` checked register steps on ``o[oo:oo+LANES]`` (int64), overflows counted in ``ov``."""
    for t in range(n):
        for u in range(f):
            a, b = xo + t * xt + u * xu, yo + t * yt + u * yu
            s = o[oo:oo + LANES] + x[a:a + LANES].astype(np.int64) * y[b:b + LANES].astype(np.int64)
            w = (s << np.int64(sh)) >> np.int64(sh) if wrap else np.clip(s, lo, hi)
            o[oo:oo + LANES] = w
            ov[oo:oo + LANES] += w != s


def _vec_ptr(context, builder, aryty, ary, off, vec):
    """Pointer to ``LANES`` elements of 1-D array ``ary`` from element ``off`` (i64), typed as vector ``vec``."""
    data = context.make_array(aryty)(context, builder, ary).data
    return builder.bitcast(builder.gep(data, [off], inbounds=True), vec.as_pointer())


def _i64(context, builder, sig, args, k):
    return context.cast(builder, args[k], sig.args[k], types.int64)


def _products(context, builder, sig, args, k, wide, body):
    """Loops t < n, u < f over the products ``sext(x) · sext(y)`` (arguments ``k``.. = x, xo, xt, xu, y, yo, yt,
    yu, n, f) as ``wide`` vectors, calling ``body(product)`` for each in order."""
    tx = sig.args[k]
    vin = ir.VectorType(context.get_data_type(tx.dtype), LANES)
    xo, xt, xu, yo, yt, yu, n, f = (_i64(context, builder, sig, args, k + d) for d in (1, 2, 3, 5, 6, 7, 8, 9))
    with cgutils.for_range(builder, n) as lt:
        xt_ = builder.add(xo, builder.mul(lt.index, xt))
        yt_ = builder.add(yo, builder.mul(lt.index, yt))
        with cgutils.for_range(builder, f) as lu:
            px = _vec_ptr(context, builder, tx, args[k], builder.add(xt_, builder.mul(lu.index, xu)), vin)
            py = _vec_ptr(context, builder, sig.args[k + 4], args[k + 4],
                          builder.add(yt_, builder.mul(lu.index, yu)), vin)
            body(builder.mul(builder.sext(builder.load(px, align=1), wide),
                             builder.sext(builder.load(py, align=1), wide)))


@intrinsic
def _vmac_ir(typingctx, o, oo, x, xo, xt, xu, y, yo, yt, yu, n, f):
    def codegen(context, builder, sig, args):
        wide = ir.VectorType(context.get_data_type(sig.args[0].dtype), LANES)
        po = _vec_ptr(context, builder, sig.args[0], args[0], _i64(context, builder, sig, args, 1), wide)
        acc = cgutils.alloca_once_value(builder, builder.load(po, align=1))
        _products(context, builder, sig, args, 2, wide,
                  lambda prod: builder.store(builder.add(builder.load(acc), prod), acc))
        builder.store(builder.load(acc), po, align=1)
        return context.get_dummy_value()
    return types.void(o, oo, x, xo, xt, xu, y, yo, yt, yu, n, f), codegen


@intrinsic
def _vmac_checked_ir(typingctx, o, ov, oo, x, xo, xt, xu, y, yo, yt, yu, n, f, wrap, sh, lo, hi):
    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        wide = ir.VectorType(i64, LANES)
        off = _i64(context, builder, sig, args, 2)
        po = _vec_ptr(context, builder, sig.args[0], args[0], off, wide)
        pv = _vec_ptr(context, builder, sig.args[1], args[1], off, wide)
        acc = cgutils.alloca_once_value(builder, builder.load(po, align=1))
        hits = cgutils.alloca_once_value(builder, builder.load(pv, align=1))

        def splat(k):
            v = builder.insert_element(ir.Constant(wide, ir.Undefined), _i64(context, builder, sig, args, k), i64(0))
            zeros = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
            return builder.shuffle_vector(v, ir.Constant(wide, ir.Undefined), zeros)

        is_wrap = context.cast(builder, args[13], sig.args[13], types.boolean)
        shv, lov, hiv = splat(14), splat(15), splat(16)

        def step(prod):
            s = builder.add(builder.load(acc), prod)
            wrapped = builder.ashr(builder.shl(s, shv), shv)
            low = builder.select(builder.icmp_signed("<", s, lov), lov, s)
            clamped = builder.select(builder.icmp_signed(">", low, hiv), hiv, low)
            w = builder.select(is_wrap, wrapped, clamped)
            builder.store(w, acc)
            builder.store(builder.add(builder.load(hits), builder.zext(builder.icmp_signed("!=", w, s), wide)), hits)

        _products(context, builder, sig, args, 3, wide, step)
        builder.store(builder.load(acc), po, align=1)
        builder.store(builder.load(hits), pv, align=1)
        return context.get_dummy_value()
    return types.void(o, ov, oo, x, xo, xt, xu, y, yo, yt, yu, n, f, wrap, sh, lo, hi), codegen


@overload(vmac)
def _vmac_jit(o, oo, x, xo, xt, xu, y, yo, yt, yu, n, f):
    return lambda o, oo, x, xo, xt, xu, y, yo, yt, yu, n, f: _vmac_ir(o, oo, x, xo, xt, xu, y, yo, yt, yu, n, f)


@overload(vmac_checked)
def _vmac_checked_jit(o, ov, oo, x, xo, xt, xu, y, yo, yt, yu, n, f, wrap, sh, lo, hi):
    def impl(o, ov, oo, x, xo, xt, xu, y, yo, yt, yu, n, f, wrap, sh, lo, hi):
        _vmac_checked_ir(o, ov, oo, x, xo, xt, xu, y, yo, yt, yu, n, f, wrap, sh, lo, hi)
    return impl
