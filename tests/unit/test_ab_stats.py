"""ab_stats against reference computations: DeLong against the direct O(m*n) structural
components, McNemar against hand-worked chi-square and scipy's binomial test, the paired
bootstrap's interval covering a known difference, metrics against scikit-learn."""

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from dwml_py import ab_stats


def _data(n=400, seed=0, separation=(1.0, 1.4), ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    a = y * separation[0] + rng.normal(size=n)
    b = y * separation[1] + 0.6 * a + rng.normal(size=n)  # correlated with a, like two versions
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    return y, a, b


def _direct_delong(y, a, b):
    """DeLong et al. (1988) by definition: psi over every (positive, negative) pair."""
    out = []
    for s in (a, b):
        x, z = s[y == 1], s[y == 0]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        out.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    (auc_a, v10_a, v01_a), (auc_b, v10_b, v01_b) = out
    m, n = len(v10_a), len(v01_a)
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    z = (auc_b - auc_a) / np.sqrt(var)
    return auc_a, auc_b, v10_a, v01_a, var, z, 2 * stats.norm.sf(abs(z))


@pytest.mark.parametrize("ties", [False, True])
def test_delong_equals_the_direct_computation(ties):
    y, a, b = _data(ties=ties)
    auc_a, auc_b, v10_a, v01_a, var, z, p = _direct_delong(y, a, b)
    aucs, v10, v01 = ab_stats.delong_components(y, np.vstack([a, b]))
    np.testing.assert_allclose(v10[0], v10_a, atol=1e-12)
    np.testing.assert_allclose(v01[0], v01_a, atol=1e-12)
    np.testing.assert_allclose(aucs, [auc_a, auc_b], atol=1e-12)
    np.testing.assert_allclose(aucs, [skm.roc_auc_score(y, a), skm.roc_auc_score(y, b)], atol=1e-12)
    result = ab_stats.delong_test(y, a, b)
    assert result["se"] == pytest.approx(np.sqrt(var), abs=1e-12)
    assert result["z"] == pytest.approx(z, abs=1e-9)
    assert result["p_value"] == pytest.approx(p, abs=1e-12)
    assert result["difference"] == pytest.approx(auc_b - auc_a, abs=1e-12)
    assert result["ci_low"] < result["difference"] < result["ci_high"]


def test_delong_identical_scores_and_symmetry():
    y, a, b = _data(seed=3)
    same = ab_stats.delong_test(y, a, a)
    assert same["difference"] == 0 and same["z"] is None and same["p_value"] == 1.0
    ab, ba = ab_stats.delong_test(y, a, b), ab_stats.delong_test(y, b, a)
    assert ab["z"] == pytest.approx(-ba["z"]) and ab["p_value"] == pytest.approx(ba["p_value"])
    with pytest.raises(ValueError):
        ab_stats.delong_components(np.zeros(5, dtype=int), np.vstack([a[:5], b[:5]]))


def test_delong_p_values_hold_their_size_under_the_null():
    # two exchangeable noisy copies of one score: the AUCs differ only by chance, so about 5% of
    # tests should reject at 0.05 (binomial 95% range for 300 tests: about 2.3%..7.7%)
    rng = np.random.default_rng(7)
    rejections = 0
    for _ in range(300):
        y = (rng.random(300) < 0.4).astype(int)
        base = y * 0.8 + rng.normal(size=300)
        a, b = base + rng.normal(size=300), base + rng.normal(size=300)
        rejections += ab_stats.delong_test(y, a, b)["p_value"] < 0.05
    assert 0.02 <= rejections / 300 <= 0.09, rejections


def _pairs(both, only_a, only_b, neither):
    a = np.array([1] * both + [1] * only_a + [0] * only_b + [0] * neither, dtype=bool)
    b = np.array([1] * both + [0] * only_a + [1] * only_b + [0] * neither, dtype=bool)
    return a, b


def test_mcnemar_chi_square_worked_example():
    # the classic worked example (a=101, b=121, c=59, d=33): with continuity correction
    # chi2 = (|121 - 59| - 1)^2 / (121 + 59) = 3721 / 180 = 20.672...
    a, b = _pairs(101, 121, 59, 33)
    result = ab_stats.mcnemar_test(a, b)
    assert (result["b"], result["c"]) == (121, 59)
    assert result["statistic"] == pytest.approx(3721 / 180, abs=1e-12)
    assert result["p_value"] == pytest.approx(stats.chi2.sf(3721 / 180, 1), rel=1e-12)
    assert result["p_value"] == pytest.approx(5.4555e-06, rel=1e-3)
    assert "continuity correction" in result["method"]


def test_mcnemar_exact_for_few_discordant_pairs():
    a, b = _pairs(50, 3, 11, 20)
    result = ab_stats.mcnemar_test(a, b)
    assert result["p_value"] == pytest.approx(stats.binomtest(3, 14, 0.5).pvalue, abs=1e-12)
    assert result["p_value"] == pytest.approx(0.05737304687500, abs=1e-12)  # 2 * P(X <= 3), X ~ Bin(14, 1/2)
    assert "exact binomial" in result["method"]
    assert ab_stats.mcnemar_test(*_pairs(5, 0, 0, 5))["p_value"] == 1.0
    # 24 discordant pairs: still exact; 25: chi-square
    assert "exact" in ab_stats.mcnemar_test(*_pairs(0, 10, 14, 0))["method"]
    assert "chi-square" in ab_stats.mcnemar_test(*_pairs(0, 10, 15, 0))["method"]


def test_metrics_match_scikit_learn():
    y, a, _ = _data(seed=5)
    p = 1 / (1 + np.exp(-a))
    assert ab_stats.metric_value("roc_auc", y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert ab_stats.metric_value("pr_auc", y, p) == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)
    assert ab_stats.metric_value("log_loss", y, p) == pytest.approx(skm.log_loss(y, p), abs=1e-12)
    assert ab_stats.metric_value("brier", y, p) == pytest.approx(skm.brier_score_loss(y, p), abs=1e-12)
    assert ab_stats.metric_value("accuracy", y, p, 0.4) == pytest.approx(skm.accuracy_score(y, p >= 0.4), abs=1e-12)
    assert ab_stats.metric_value("f1", y, p, 0.4) == pytest.approx(skm.f1_score(y, p >= 0.4), abs=1e-12)
    target, pred = a * 3, a * 3 + np.random.default_rng(1).normal(size=len(a))
    assert ab_stats.metric_value("rmse", target, pred) == pytest.approx(
        np.sqrt(skm.mean_squared_error(target, pred)), abs=1e-12)
    assert ab_stats.metric_value("mae", target, pred) == pytest.approx(skm.mean_absolute_error(target, pred), abs=1e-12)
    assert ab_stats.metric_value("r2", target, pred) == pytest.approx(skm.r2_score(target, pred), abs=1e-12)
    assert ab_stats.auc(np.ones(4, dtype=int), p[:4]) is None


def test_paired_bootstrap_interval_covers_the_true_difference():
    # model a is right with probability 0.70, b with 0.76, on independent draws of 1500 rows:
    # the true accuracy difference is 0.06; a 90% interval should cover it about 90% of the time
    rng = np.random.default_rng(11)
    covered, trials = 0, 40
    for trial in range(trials):
        y = (rng.random(1500) < 0.5).astype(int)
        right_a, right_b = rng.random(1500) < 0.70, rng.random(1500) < 0.76
        score_a = np.where(right_a, y, 1 - y).astype(float)
        score_b = np.where(right_b, y, 1 - y).astype(float)
        result = ab_stats.paired_bootstrap(y, score_a, score_b, "accuracy", resamples=300, seed=trial,
                                           confidence=0.90)
        covered += result["ci_low"] <= 0.06 <= result["ci_high"]
    assert covered / trials >= 0.8, covered


def test_paired_bootstrap_is_seeded_paired_and_skips_undefined_resamples():
    y, a, b = _data(n=300, seed=2)
    first = ab_stats.paired_bootstrap(y, a, b, "roc_auc", resamples=200, seed=4)
    again = ab_stats.paired_bootstrap(y, a, b, "roc_auc", resamples=200, seed=4)
    assert first == again
    assert first["difference"] == pytest.approx(skm.roc_auc_score(y, b) - skm.roc_auc_score(y, a))
    assert first["ci_low"] < first["difference"] < first["ci_high"]
    same = ab_stats.paired_bootstrap(y, a, a, "roc_auc", resamples=50, seed=0)
    assert (same["ci_low"], same["ci_high"], same["p_value"]) == (0.0, 0.0, 1.0)  # paired: no noise at all
    rare = np.zeros(40, dtype=int)
    rare[0] = 1
    skipped = ab_stats.paired_bootstrap(rare, a[:40], b[:40], "roc_auc", resamples=100, seed=0)
    assert 0 < skipped["skipped"] < 100  # resamples without the one positive have no AUC


def test_verdict_rule():
    assert ab_stats.verdict("roc_auc", 0.01, 0.05, 0.01) == "challenger_better"
    assert ab_stats.verdict("roc_auc", -0.05, -0.01, 0.01) == "champion_better"
    assert ab_stats.verdict("roc_auc", -0.01, 0.05, 0.01) == "no_difference"  # CI spans 0
    assert ab_stats.verdict("roc_auc", 0.01, 0.05, 0.2) == "no_difference"  # test not significant
    assert ab_stats.verdict("rmse", -0.5, -0.1, 0.001) == "challenger_better"  # lower is better
    rule = ab_stats.verdict_rule("roc_auc", 0.95, 0.05, "DeLong")
    assert "95%" in rule and "above 0" in rule and "DeLong" in rule
