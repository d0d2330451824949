"""Calibration against ``onnxruntime.quantization``: MinMax and Percentile ranges and (scale, zero point) equal
ONNX Runtime's; KL differs from ORT's Entropy calibrator for reasons each reproduced here (docs/quantization.md).
"""
import contextlib
import io

import numpy as np
import pytest
from numpy.testing import assert_array_equal

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
import reference_quant as ref
from onnx import TensorProto, helper
from onnxruntime.quantization import CalibrationDataReader
from onnxruntime.quantization.calibrate import CalibrationMethod, HistogramCollector, create_calibrator
from onnxruntime.quantization.quant_utils import compute_scale_zp

from accelsim.quant import (
    MinMaxObserver,
    PercentileObserver,
    QuantSpec,
    calibrate,
    qparams_from_range,
)


class _Reader(CalibrationDataReader):
    def __init__(self, batches):
        self._it = iter([{"x": b} for b in batches])

    def get_next(self):
        return next(self._it, None)


def _identity_model(path, shape):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["y"])], "g",
                          [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def _ort_range(tmp_path, batches, method, calls=1, **extra):
    model = _identity_model(tmp_path / "m.onnx", batches[0].shape)
    with contextlib.redirect_stdout(io.StringIO()):
        cal = create_calibrator(model, None, str(tmp_path / "aug.onnx"), calibrate_method=method, extra_options=extra)
        per_call = np.array_split(np.arange(len(batches)), calls)
        for idx in per_call:
            cal.collect_data(_Reader([batches[i] for i in idx]))
        data = cal.compute_data()
    return tuple(float(np.asarray(v).reshape(-1)[0]) for v in data["x"].range_value)


def _batches(seed, n=4, shape=(8, 500), kind="normal"):
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return [(rng.standard_normal(shape) * 2 + 0.3).astype(np.float32) for _ in range(n)]
    return [rng.laplace(size=shape).astype(np.float32) for _ in range(n)]


SPECS = [QuantSpec(8, False, False), QuantSpec(8, True, True), QuantSpec(8, True, False), QuantSpec(8, False, True),
         QuantSpec(16, True, True), QuantSpec(4, True, True), QuantSpec(4, False, False)]


def _assert_same_qparams(lo, hi, spec):
    ours = qparams_from_range(lo, hi, spec)
    zp, scale = compute_scale_zp(np.float32(lo), np.float32(hi), np.int64(spec.qmin), np.int64(spec.qmax),
                                 spec.symmetric)
    assert_array_equal(ours.scale, np.float32(scale))
    assert int(ours.zero_point) == int(zp)


@pytest.mark.parametrize("symmetric", [False, True])
def test_minmax_equals_ort(tmp_path, symmetric):
    batches = _batches(0)
    obs = MinMaxObserver(symmetric=symmetric)
    for b in batches:
        obs.observe(b)
    lo, hi = _ort_range(tmp_path, batches, CalibrationMethod.MinMax, symmetric=symmetric)
    assert obs.range() == (float(lo), float(hi))  # x is an input of Relu: its exact min/max
    assert calibrate(batches, "minmax", symmetric=symmetric) == obs.range()
    for spec in SPECS:
        _assert_same_qparams(*obs.range(), spec)


def test_minmax_moving_average_equals_ort_between_calls(tmp_path):
    batches = _batches(1, n=5)
    obs = MinMaxObserver(averaging_constant=0.25)
    for b in batches:
        obs.observe(b)
    lo, hi = _ort_range(tmp_path, batches, CalibrationMethod.MinMax, calls=5, moving_average=True,
                        averaging_constant=0.25)
    assert obs.range() == (float(lo), float(hi))


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("percentile,kind", [(99.999, "normal"), (99.99, "laplace"), (99.9, "normal")])
def test_percentile_equals_ort(tmp_path, symmetric, percentile, kind):
    batches = _batches(2, kind=kind)
    lo, hi = _ort_range(tmp_path, batches, CalibrationMethod.Percentile, symmetric=symmetric, num_bins=2048,
                        percentile=percentile)
    ours = calibrate(batches, "percentile", symmetric=symmetric, percentile=percentile)  # two passes
    assert ours == (float(lo), float(hi))
    obs = PercentileObserver(percentile, 2048, symmetric)  # one pass, first batch holds neither extreme
    for b in batches:
        obs.observe(b)
    one_pass = obs.range()
    assert abs(one_pass[1] - float(hi)) <= 4 * (float(hi) - float(lo)) / 2048  # documented re-gridding difference
    for spec in SPECS:
        _assert_same_qparams(*ours, spec)


def test_percentile_single_batch_equals_ort_histogram_collector():
    x = _batches(3, n=1, shape=(100_000,), kind="laplace")[0]
    for symmetric in (True, False):
        hc = HistogramCollector("percentile", symmetric, 2048, 128, 99.99, "same")
        with contextlib.redirect_stdout(io.StringIO()):
            hc.collect({"x": [x]})
            want = hc.compute_collection_result()["x"]
        obs = PercentileObserver(99.99, 2048, symmetric)
        obs.observe(x)
        assert obs.range() == (float(want[0]), float(want[1]))
        assert_array_equal(obs.hist.counts, hc.histogram_dict["x"][0])
        assert_array_equal(obs.hist.edges, hc.histogram_dict["x"][1])


ORT_QUIRKS = {"signed_hist": True, "int_q": True, "q_all_bins": True, "nonzero_of_p": True, "drop_tail": True,
                  "ort_smoothing": True}
TRT = {k: False for k in ORT_QUIRKS}
KL_DATA = {
    "gauss": lambda r: r.standard_normal(60_000),
    "laplace": lambda r: r.laplace(size=60_000),
    "relu": lambda r: np.maximum(r.standard_normal(60_000), 0),
    "uniform": lambda r: r.uniform(-1, 1, 60_000),
    "outliers": lambda r: np.concatenate([r.standard_normal(60_000), r.uniform(-30, 30, 10)]),
}


def _ort_entropy(x):
    hc = HistogramCollector("entropy", False, 2048, 128, None, "same")
    with contextlib.redirect_stdout(io.StringIO()):
        hc.collect({"x": [x]})
        r = hc.compute_collection_result()["x"]
    return float(r[0]), float(r[1])


@pytest.mark.parametrize("name", sorted(KL_DATA))
def test_kl_differences_from_ort_are_exactly_its_listed_quirks(name):
    x = KL_DATA[name](np.random.default_rng(4)).astype(np.float32)
    _ort_lo, ort_hi = _ort_entropy(x)
    # 1. ORT's threshold is reproduced exactly by the twin with ORT's departures switched on ...
    assert min(ref.kl_threshold_variant(x, **ORT_QUIRKS), float(x.max())) == ort_hi
    # 2. ... and ours (TensorRT, as docs/quantization.md states it) by the same twin with all of them off.
    t = min(ref.kl_threshold_variant(x, **TRT), float(np.abs(x).max()))
    assert calibrate([x], "kl", symmetric=True) == (-t, t)
    # asymmetric: one-sided (non-negative) data uses NVIDIA's zero-spike treatment with 2·nq levels
    t1 = min(ref.kl_threshold_variant(x, **TRT, one_sided=bool(x.min() >= 0)), float(np.abs(x).max()))
    assert calibrate([x], "kl") == (max(-t1, float(x.min())), min(t1, float(x.max())))
    # The gap, in ORT bins (2*max|x|/2048), is recorded in docs/quantization.md (benchmarks/bench_quant.py).
    assert abs(t - ort_hi) / (2 * float(np.abs(x).max()) / 2048) < 400
