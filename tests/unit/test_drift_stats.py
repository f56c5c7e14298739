"""Drift statistics against scipy/numpy on the same bins, and against published values."""

import doctest

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from dwml_py import drift_stats as ds


def test_doctests():
    assert doctest.testmod(ds).failed == 0


@pytest.fixture
def binned():
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 20_000)
    cur = rng.normal(0.3, 1.2, 15_000)
    edges = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=10)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=10)
    return ref, cur, edges, ref_counts, cur_counts


def test_psi_matches_numpy_formula(binned):
    _, _, _, r, c = binned
    rp, cp = r / r.sum(), c / c.sum()
    expected = np.sum((cp - rp) * np.log(cp / rp))
    assert ds.psi(r, c) == pytest.approx(expected, abs=1e-9)


def test_psi_floors_empty_bins():
    value = ds.psi([10, 0, 10], [10, 10, 0])
    r = np.array([0.5, 1e-4, 0.5])
    c = np.array([0.5, 0.5, 1e-4])
    assert value == pytest.approx(np.sum((c - r) * np.log(c / r)), abs=1e-12)
    assert np.isfinite(value)


def test_js_distance_matches_scipy(binned):
    _, _, _, r, c = binned
    assert ds.js_distance(r, c) == pytest.approx(distance.jensenshannon(r, c, base=2), abs=1e-9)
    assert ds.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert ds.js_distance([3, 3], [5, 5]) == pytest.approx(0.0, abs=1e-12)


def test_ks_with_one_bin_per_value_equals_scipy():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 30, 500)
    b = rng.integers(3, 35, 700)
    values = np.union1d(a, b)
    ra = np.array([(a == v).sum() for v in values])
    rb = np.array([(b == v).sum() for v in values])
    assert ds.ks_statistic(ra, rb) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-9)


def test_ks_published_value():
    # scipy's own test of ks_2samp (test_stats.py, TestKSTwoSamples): these two samples have
    # D = 5/6 — reproduced here with one bin per distinct value.
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    y = [5.5, 6.5, 7.5, 8.5, 9.5, 10.5]
    values = np.union1d(x, y)
    rx = [x.count(v) for v in values]
    ry = [y.count(v) for v in values]
    assert ds.ks_statistic(rx, ry) == pytest.approx(5 / 6, abs=1e-12)
    assert stats.ks_2samp(x, y).statistic == pytest.approx(5 / 6, abs=1e-12)


def test_binned_ks_is_a_lower_bound(binned):
    ref, cur, _, r, c = binned
    assert ds.ks_statistic(r, c) <= stats.ks_2samp(ref, cur).statistic + 1e-12


def test_wasserstein_matches_scipy_on_the_same_support(binned):
    ref, _, edges, r, c = binned
    support = np.concatenate([[edges[0] - 0.5], (edges[:-1] + edges[1:]) / 2, [edges[-1] + 0.5]])
    expected = stats.wasserstein_distance(support, support, u_weights=r, v_weights=c)
    assert ds.wasserstein(support, r, c) == pytest.approx(expected, abs=1e-9)
    assert ds.normalised_wasserstein(support, r, c, ref.std()) == pytest.approx(expected / ref.std(), abs=1e-9)


def test_wasserstein_with_one_point_per_value_equals_raw_scipy():
    a = np.array([0.0, 1.0, 3.0])
    b = np.array([5.0, 6.0, 8.0])
    support = np.union1d(a, b)
    ra = [(a == v).sum() for v in support]
    rb = [(b == v).sum() for v in support]
    assert ds.wasserstein(support, ra, rb) == pytest.approx(stats.wasserstein_distance(a, b), abs=1e-12)  # = 5


def test_unseen_share_and_severity():
    assert ds.unseen_share(["a", "b"], {"a": 6, "c": 3, "d": 1}) == pytest.approx(0.4)
    assert ds.unseen_share(["a"], {}) == 0.0
    assert ds.severity(0.05, 0.1, 0.25) == "none"
    assert ds.severity(0.1, 0.1, 0.25) == "moderate"
    assert ds.severity(0.3, 0.1, 0.25) == "major"


@pytest.mark.parametrize("bad", [[], [-1, 2], [0, 0]])
def test_bad_counts_are_refused(bad):
    with pytest.raises(ValueError):
        ds.psi(bad, [1, 1])


def test_bin_count_mismatch_is_refused():
    with pytest.raises(ValueError, match="current has 3"):
        ds.psi([1, 2], [1, 2, 3])
