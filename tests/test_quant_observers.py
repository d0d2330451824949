"""Observer behaviour: non-finite handling, incremental vs one-shot, per-channel, and the threshold criteria."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from accelsim.errors import QuantError
from accelsim.kernels import histogram as kh
from accelsim.quant import (
    METHODS,
    EntropyObserver,
    KLObserver,
    MinMaxObserver,
    MSEObserver,
    PerChannelMinMaxObserver,
    PerChannelObserver,
    QuantSpec,
    calibrate,
    make_observer,
    observers,
    qparams_from_range,
)


def _gauss(seed=0, n=40_000):
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32)


@pytest.mark.parametrize("method", METHODS)
def test_nan_raises_or_is_counted_never_a_nan_scale(method):
    x = _gauss()
    bad = x.copy()
    bad[:7] = np.nan
    bad[7:9] = [np.inf, -np.inf]
    with pytest.raises(QuantError, match="9 NaN/Inf"):
        calibrate([bad], method)
    obs = make_observer(method, nan_policy="ignore")
    obs.observe(bad)
    assert obs.ignored == 9
    lo, hi = obs.range()
    assert np.isfinite(lo) and np.isfinite(hi)
    assert (lo, hi) == calibrate([x[9:]], method)  # ignoring == dropping them
    assert np.isfinite(obs.qparams(QuantSpec()).scale)


def test_all_nan_batch_with_ignore_means_no_data():
    obs = MinMaxObserver(nan_policy="ignore")
    obs.observe(np.full(4, np.nan, np.float32))
    with pytest.raises(QuantError, match="no finite data"):
        obs.range()


@pytest.mark.parametrize("method", ["percentile", "kl", "entropy", "mse"])
def test_two_pass_calibrate_equals_one_big_batch(method):
    rng = np.random.default_rng(1)
    batches = [(rng.standard_normal(5000) * s).astype(np.float32) for s in (0.5, 1.0, 3.0, 1.5)]
    assert calibrate(batches, method) == calibrate([np.concatenate(batches)], method)


@pytest.mark.parametrize("method", ["kl", "entropy", "mse"])
def test_one_pass_equals_one_big_batch_when_first_batch_holds_the_max(method):
    rng = np.random.default_rng(2)
    first = rng.standard_normal(5000).astype(np.float32)
    first[0] = 8.0
    batches = [first] + [rng.standard_normal(5000).astype(np.float32) for _ in range(3)]
    assert calibrate(iter(batches), method) == calibrate([np.concatenate(batches)], method)


@pytest.mark.parametrize("method", ["kl", "mse"])
def test_one_pass_with_growing_range_stays_close(method):
    rng = np.random.default_rng(3)
    batches = [(rng.standard_normal(20000) * s).astype(np.float32) for s in (0.3, 1.0, 1.0, 1.0)]
    one = calibrate(iter(batches), method, symmetric=True)[1]
    big = calibrate([np.concatenate(batches)], method, symmetric=True)[1]
    obs = make_observer(method)
    for b in batches:
        obs.observe(b)
    assert abs(one - big) <= 0.06 * big  # the re-gridded histogram is coarser (documented), not wrong


def test_degenerate_batches_are_pending_until_a_range_exists():
    obs = KLObserver()
    obs.observe(np.zeros(100, np.float32))
    assert obs.range() == (0.0, 0.0)
    assert obs.qparams(QuantSpec(8, False)).scale == 1.0
    obs.observe(np.linspace(0, 2, 101, dtype=np.float32))
    assert obs.hist.total() == 201 and obs.hist.counts[0] >= 101


def test_minmax_moving_average_formula():
    obs = MinMaxObserver(averaging_constant=0.5)
    for lo, hi in [(-1, 1), (-3, 5), (-1, 3)]:
        obs.observe(np.array([lo, hi], np.float32))
    assert obs.range() == (-1.5, 3.0)  # lo: -1 -> -2 -> -1.5; hi: 1 -> 3 -> 3


def test_per_channel_minmax_and_generic_per_channel():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((6, 3, 3, 3)).astype(np.float32) * np.arange(1, 7).reshape(-1, 1, 1, 1)
    obs = PerChannelMinMaxObserver(axis=0, symmetric=True)
    obs.observe(w)
    lo, hi = obs.range()
    assert_array_equal(hi, np.abs(w).reshape(6, -1).max(axis=1))
    spec = QuantSpec(8, True, True, "channel", 0)
    qp = obs.qparams(spec)
    assert_array_equal(qp.scale, qparams_from_range(lo, hi, spec).scale)
    gen = PerChannelObserver(lambda: MinMaxObserver(symmetric=True), axis=0)
    gen.observe(w)
    assert_array_equal(gen.range()[1], hi)
    mse = PerChannelObserver(lambda: MSEObserver(num_bins=256, num_quantized_bins=128, symmetric=True), axis=0)
    mse.observe(w)
    assert np.all(mse.range()[1] <= hi) and np.all(mse.range()[1] > 0.3 * hi)
    with pytest.raises(QuantError, match="per-channel spec with axis=0"):
        obs.qparams(QuantSpec(8, True, True))


def test_kl_on_gaussian_clips_the_tail_but_keeps_the_bulk():
    x = _gauss(5, 400_000)
    _lo, hi = calibrate([x], "kl", symmetric=True)
    amax = float(np.abs(x).max())
    assert 2.5 < hi < amax  # TensorRT KL on N(0, 1) lands between 2.5 and max|x|
    r = calibrate([np.maximum(x, 0)], "kl")
    assert r[0] == 0.0 and 0 < r[1] < amax  # one-sided data maps to [0, T]


def _true_mse(x, t, nq=128):
    s = t / (nq - 1)
    a = np.abs(x.astype(np.float64))
    return float(np.mean((a - np.minimum(np.rint(a / s), nq - 1) * s) ** 2))


def test_mse_threshold_minimizes_the_measured_error():
    x = np.random.default_rng(6).laplace(size=200_000).astype(np.float32)
    t = calibrate([x], "mse", symmetric=True)[1]
    amax = float(np.abs(x).max())
    err = _true_mse(x, t)
    for other in (0.7 * t, 0.85 * t, 1.2 * t, 1.5 * t, amax):
        assert err <= _true_mse(x, other) * 1.02


def test_entropy_maximizes_code_entropy_and_is_not_kl():
    x = _gauss(7, 200_000)
    t_ent = calibrate([x], "entropy", symmetric=True)[1]
    t_kl = calibrate([x], "kl", symmetric=True)[1]
    assert t_ent < t_kl  # it rewards filling all codes: clips harder

    def code_entropy(t):
        s = t / 127
        c = np.minimum(np.rint(np.abs(x) / s), 127).astype(int)
        p = np.bincount(c, minlength=128) / c.size
        p = p[p > 0]
        return -np.sum(p * np.log(p))

    best = code_entropy(t_ent)
    for other in (0.8 * t_ent, 0.9 * t_ent, 1.1 * t_ent, 1.3 * t_ent, t_kl):
        assert best >= code_entropy(other) - 2e-3


def test_histogram_observers_validate_arguments():
    with pytest.raises(QuantError, match="num_quantized_bins"):
        KLObserver(num_bins=64, num_quantized_bins=128)
    with pytest.raises(QuantError, match="num_bins"):
        EntropyObserver(num_bins=1)
    with pytest.raises(QuantError, match="percentile"):
        make_observer("percentile", percentile=101)
    with pytest.raises(QuantError, match="method"):
        calibrate([np.ones(3)], "histogram")
    with pytest.raises(QuantError, match="iterable of arrays"):
        calibrate(np.ones(3), "kl")
    with pytest.raises(QuantError, match="real array"):
        MinMaxObserver().observe(np.array(["a"]))
    with pytest.raises(QuantError, match="averaging_constant"):
        MinMaxObserver(averaging_constant=2.0)
    with pytest.raises(QuantError, match="nan_policy"):
        MinMaxObserver(nan_policy="skip")


def test_range_before_observe_is_an_error():
    for method in METHODS:
        with pytest.raises(QuantError, match="no finite data"):
            make_observer(method).range()
    assert_allclose(calibrate([np.array([-1.0, 2.0])], "minmax"), (-1.0, 2.0))


def test_observer_classes_live_in_observers_and_are_reexported():
    from accelsim.quant import calibration, observers

    assert calibration.PerChannelMinMaxObserver is observers.PerChannelMinMaxObserver
    assert calibration.PerChannelObserver is observers.PerChannelObserver


def test_float32_batches_are_read_in_place_in_any_axis_order():
    rng = np.random.default_rng(8)
    base = rng.standard_normal((4, 256, 12, 32)).astype(np.float32)
    heads = base.transpose(0, 2, 1, 3)  # split heads: not C-contiguous, but one contiguous block
    flat, nd = observers.flat_float32(heads)
    assert np.shares_memory(flat, base) and nd is heads
    flat, nd = observers.flat_float32(base)
    assert np.shares_memory(flat, base) and nd is None
    for method in METHODS:
        a, b = make_observer(method), make_observer(method)
        a.observe(heads)
        b.observe(np.ascontiguousarray(heads))
        assert a.range() == b.range()
        if hasattr(a, "hist"):
            assert_array_equal(a.hist.counts, b.hist.counts)


@pytest.mark.parametrize("method", ["percentile", "kl", "entropy", "mse"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_one_pass_binning_equals_binning_after_the_grid_update(method, symmetric):
    """observe() bins each batch on the current grid while it computes the statistics, and bins again only if
    the batch grows the grid: the counts equal LinearHistogram.add's (statistics first, then binning)."""
    rng = np.random.default_rng(9)
    scales = (0.3, 1.0, 0.5, 3.0, 0.2, 7.0, 1.0)
    batches = [(rng.standard_normal(3000) * s + (0.5 if i % 2 else 0)).astype(np.float32)
               for i, s in enumerate(scales)]
    batches.insert(0, np.zeros(10, np.float32))  # pending single value first
    obs = make_observer(method, symmetric=symmetric)
    ref = make_observer(method, symmetric=symmetric).hist
    for b in batches:
        obs.observe(b)
        ref.add(b, kh.finite_stats_masked(b))
        assert_array_equal(obs.hist.counts, ref.counts)
        assert (obs.hist.first, obs.hist.last) == (ref.first, ref.last)


def test_too_wide_range_is_an_error_and_leaves_the_observer_unchanged():
    obs = make_observer("percentile")  # signed grid [-max|x|, max|x|]
    obs.observe(np.array([-1.0, 2.0], np.float32))
    before = (obs.hist.counts.copy(), obs.hist.first, obs.hist.last, obs.count, obs.min, obs.max)
    with pytest.raises(QuantError, match="too wide"):
        obs.observe(np.array([3e38, -3e38], np.float32))
    assert_array_equal(obs.hist.counts, before[0])
    assert (obs.hist.first, obs.hist.last, obs.count, obs.min, obs.max) == before[1:]


@pytest.mark.parametrize("method", ["kl", "entropy", "mse"])
def test_threshold_is_computed_once_per_histogram_state(method, monkeypatch):
    rng = np.random.default_rng(10)
    a, b = (rng.laplace(size=20000).astype(np.float32) * s for s in (1.0, 2.0))
    obs = make_observer(method, symmetric=True)
    obs.observe(a)
    calls = []
    inner = type(obs)._threshold
    monkeypatch.setattr(type(obs), "_threshold", lambda self: calls.append(1) or inner(self))
    first = obs.range()
    assert obs.range() == first and len(calls) == 1  # asked twice (a shared tensor), searched once
    obs.observe(b)  # new data: searched again, as a fresh observer would
    fresh = make_observer(method, symmetric=True)
    fresh.observe(a)
    fresh.observe(b)
    assert obs.range() == fresh.range() and len(calls) == 3
