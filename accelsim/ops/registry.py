"""The registry's types: :class:`OpDef` (everything accelsim knows about one op), :class:`Gemm` (what a compute
op asks of the array) and :func:`build`, which merges the family modules' tables into one registry.

An op family (:mod:`accelsim.ops.gemm`, :mod:`~accelsim.ops.elementwise`, ...) is a module with a table ``OPS``
of native ops (their ``vector_ops`` are the hardware defaults a hw config may override by name) and optionally
``IMPORTED``, ops of imported graphs (:mod:`accelsim.onnx`; usable from YAML too). An op without its own
``backward`` gets a rule that refuses to differentiate it (inference only).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

Shape = tuple[int, ...]


class ShapeError(Exception):
    """An impossible shape; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Gemm:
    """``count`` independent GEMMs ``(m×k) @ (k×n)``, run one after another on the array."""
    m: int
    n: int
    k: int
    count: int
    b_is_weight: bool

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k * self.count


def out_elements(a: dict, shapes: list[Shape], out: Shape) -> int:
    """Vector work per output element (the default ``elements`` rule)."""
    return math.prod(out)


@dataclass(frozen=True, slots=True)
class OpDef:
    """One op: ``attrs(reader)`` reads and validates its attributes; ``shape(attrs, in_shapes)`` gives the output
    shape or raises :class:`ShapeError`; ``run(attrs, xs, ctx)`` is the FP32 forward on batched arrays;
    ``backward(attrs, xs, y, dy, ctx)`` the gradient rule; the rest is costing (see :mod:`accelsim.ops`)."""
    attrs: Callable[[object], dict]
    shape: Callable[[dict, list[Shape]], Shape]
    run: Callable
    params: Callable[[dict, list[Shape]], int] = lambda a, s: 0
    wide_params: Callable[[dict, list[Shape]], int] = lambda a, s: 0
    weights: Callable[[dict, list[Shape]], dict] = lambda a, s: {}
    gemm: Callable[[dict, list[Shape], Shape], Gemm] | None = None
    vector_ops: float = 0.0
    elements: Callable[[dict, list[Shape], Shape], int] = out_elements
    fusable: bool = False
    backward: Callable | None = None
    footprint: Callable[[dict, list[Shape], Shape], int] | None = None   # input-0 elements read; None = all


def grad_unavailable(op: str) -> Callable:
    """The rule of an op without a gradient: raises through ``ctx.unsupported``."""
    def rule(a, xs, y, dy, ctx):
        ctx.unsupported(f"no gradient rule for {op} (an op of imported graphs; inference only)")
    return rule


def build(families) -> tuple[dict[str, OpDef], dict[str, OpDef], dict[str, float]]:
    """``(OPS, IMPORT_OPS, VECTOR_OPS)`` from the family modules: every op once (a name defined twice raises),
    ops without a backward get :func:`grad_unavailable`; ``VECTOR_OPS`` = the native ops' vector-unit defaults."""
    ops: dict[str, OpDef] = {}
    imported: dict[str, OpDef] = {}
    vector: dict[str, float] = {}
    for family in families:
        native, extra = getattr(family, "OPS", {}), getattr(family, "IMPORTED", {})
        for name, d in [*native.items(), *extra.items()]:
            if name in ops:
                raise RuntimeError(f"op {name!r} is defined twice (second time in {family.__name__})")
            ops[name] = d if d.backward is not None else replace(d, backward=grad_unavailable(name))
        imported.update({name: ops[name] for name in extra})
        vector.update({name: d.vector_ops for name, d in native.items() if d.vector_ops})
    return ops, imported, vector
