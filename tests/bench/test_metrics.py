"""pass@k and bootstrap intervals: known values, edge cases, determinism."""

import math

import pytest

from reasonloop.bench.metrics import bootstrap_ci, mean_pass_at_k, paired_bootstrap_ci, pass_at_k, percentile


def test_pass_at_k_known_values():
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(5, 2))  # 0.7
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 3, 3) == 1.0  # fewer than k wrong samples: always a hit
    assert pass_at_k(1, 1, 1) == 1.0


def test_pass_at_k_matches_brute_force():
    from itertools import combinations

    n, c = 6, 2
    outcomes = [1] * c + [0] * (n - c)
    for k in range(1, n + 1):
        subsets = list(combinations(outcomes, k))
        assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))


def test_pass_at_k_rejects_bad_counts():
    for args in [(3, 4, 1), (3, 1, 0), (3, 1, 4), (3, -1, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(*args)


def test_mean_pass_at_k_skips_short_tasks():
    assert mean_pass_at_k([(4, 1), (4, 4), (1, 1)], 2) == pytest.approx((pass_at_k(4, 1, 2) + 1.0) / 2)
    assert mean_pass_at_k([], 1) == 0.0


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = [1.0] * 30 + [0.0] * 20
    a, b = bootstrap_ci(values, seed=1), bootstrap_ci(values, seed=1)
    assert a == b
    mean, lo, hi = a
    assert mean == pytest.approx(0.6) and lo < mean < hi and lo > 0.4 and hi < 0.8
    assert bootstrap_ci([1.0] * 5) == (1.0, 1.0, 1.0)
    assert bootstrap_ci([]) == (0.0, 0.0, 0.0)


def test_paired_bootstrap_difference():
    a = [0.0] * 20 + [1.0] * 20
    b = [1.0] * 40
    mean, lo, hi = paired_bootstrap_ci(a, b, seed=0)
    assert mean == pytest.approx(0.5) and 0.3 < lo < 0.5 < hi < 0.7
    with pytest.raises(ValueError):
        paired_bootstrap_ci([1.0], [1.0, 0.0])


def test_percentile():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([], 95) == 0.0
