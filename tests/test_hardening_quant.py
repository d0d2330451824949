"""The library's own exceptions for the public quant API (issue 10): every API reproducer of the issue raises a
QuantError or returns a documented, checked result, with numeric warnings as errors."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from accelsim.errors import QuantError
from accelsim.quant import (EntropyObserver, KLObserver, MinMaxObserver, MSEObserver, PercentileObserver, QuantSpec,
                            calibrate, dequantize_linear, make_observer, qlinear_matmul, qparams_from_range,
                            quantize_bias, quantize_linear, weight_qparams)
from accelsim.quant.histogram import MAX_BINS


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


@pytest.mark.parametrize("call, match", [
    (lambda: dequantize_linear(np.array([1], dtype=">i2"), np.float32(1.0)), "byte-swapped int16"),
    (lambda: qparams_from_range("a", 1.0, QuantSpec()), "rmin: expected real numbers"),
    (lambda: qparams_from_range(1j, 2.0, QuantSpec()), "rmin: expected real numbers"),
    (lambda: qparams_from_range(-1e300, 1e300, QuantSpec()), "range must be finite"),
    (lambda: quantize_bias(np.ones(3, np.float32), np.ones((2, 2)), 1.0), "x_scale: expected a scalar"),
    (lambda: quantize_bias(np.ones(3, np.float32), 1.0, np.ones((3, 1))), "w_scale must be a scalar"),
    (lambda: quantize_bias(np.ones(3, np.float32), 1e-30, 1e-30), "underflows float32 to 0"),
    (lambda: quantize_bias(np.ones(3, np.float32), 1e30, 1e30), "overflows float32"),
    (lambda: calibrate([np.ones(3, np.float32)], "mse", num_bins=10 ** 6), f"num_bins: expected an int in \\[2, {MAX_BINS}\\]"),
    (lambda: quantize_linear(np.ones(3, np.float32), 1e300), "scales must be finite and > 0"),
    (lambda: quantize_linear([[1.0], [1.0, 2.0]], 1.0), "x: not an array"),
    (lambda: calibrate([np.array([1e300])]), "NaN/Inf value"),
    (lambda: weight_qparams(np.ones((2, 2)), QuantSpec(8, True, True, "channel", 0), np.ones(2), 0.0), "x_scale"),
    (lambda: PercentileObserver("x"), "percentile"),
    (lambda: MinMaxObserver(symmetric="yes"), "symmetric: expected True or False"),
    (lambda: qlinear_matmul(np.ones((2, 2), np.uint8), 1e300, np.uint8(0), np.ones((2, 2), np.uint8), 1.0,
                            np.uint8(0), 1.0, np.uint8(0)), "a_scale"),
])
def test_bad_inputs_raise_quant_error(call, match):
    with pytest.raises(QuantError, match=match):
        call()


def test_shapes_are_kept_including_0d():
    assert quantize_linear(np.float32(1.5), np.float32(0.5)).shape == ()
    assert dequantize_linear(np.uint8(3), np.float32(0.5)).shape == ()
    assert quantize_linear(np.zeros((2, 0, 3), np.float32), 0.1).shape == (2, 0, 3)


def test_a_grid_grows_by_any_factor():
    # the reproducer: a Numba TypingError when the grid grows from 1e-30 to 1e6
    assert calibrate(iter([np.array([1e-30], np.float32), np.array([1e6], np.float32)]), method="kl") == (0.0, 1e6)


@pytest.mark.parametrize("method", ["minmax", "percentile", "kl", "entropy", "mse"])
@pytest.mark.parametrize("data", [np.array([0.003], np.float32), np.full(7, 152.88, np.float32),
                                  np.linspace(100, 152, 1000, dtype=np.float32)])
def test_calibrated_ranges_hold_zero_and_the_data(method, data):
    lo, hi = calibrate([data], method=method)
    assert lo <= 0.0 <= hi and lo == 0.0
    bin_width = 2 * float(data.max()) / 2048   # the widest grid: Percentile's signed [-max|x|, max|x|]
    assert hi >= float(np.median(data)) - bin_width        # never below most of the data
    assert hi <= float(data.max()) + 1e-6 * float(data.max())
    if method != "percentile":    # Percentile's threshold is a lower bin edge (ONNX Runtime)
        assert np.mean(data <= hi + bin_width) >= 0.5


def test_ranges_of_positive_data_start_at_zero_and_give_the_same_qparams():
    x = np.abs(np.random.default_rng(0).standard_normal(1000)).astype(np.float32) + 1.0
    for obs in (MinMaxObserver(), KLObserver(), EntropyObserver(), MSEObserver(), PercentileObserver()):
        obs.observe(x)
        lo, hi = obs.range()
        assert lo == 0.0 < hi <= float(x.max())
        qp = obs.qparams(QuantSpec(8, False))
        assert int(qp.zero_point) == 0


def test_make_observer_rejects_unhashable_methods():
    with pytest.raises(QuantError, match="method"):
        make_observer(["kl"])
