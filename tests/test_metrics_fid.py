"""FID / KID against closed forms on Gaussian features, plus the estimator's basic properties."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from xdomain.metrics.fid import (
    MetricError,
    extract_features,
    feature_statistics,
    fid,
    frechet_distance,
    kid,
)

torch.set_num_threads(1)


def _random_spd(rng: np.random.Generator, d: int, lo: float = 0.5, hi: float = 2.0) -> np.ndarray:
    """(d, d) SPD matrix, eigenvalues in [lo, hi], random (non-axis-aligned) eigenvectors."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * rng.uniform(lo, hi, d)) @ q.T


def _gaussian(rng: np.random.Generator, mu: np.ndarray, sigma: np.ndarray, n: int) -> np.ndarray:
    """(n, d) samples of N(mu, sigma)."""
    return mu + rng.standard_normal((n, mu.shape[0])) @ np.linalg.cholesky(sigma).T


# --- (a) frechet_distance against the analytic formula ------------------------------------------


def test_frechet_diagonal_matches_closed_form() -> None:
    # Diagonal (commuting) covariances: tr(S1 + S2 - 2 (S1 S2)^1/2) = sum (sqrt(s1) - sqrt(s2))^2.
    rng = np.random.default_rng(0)
    d = 16
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    got = frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_frechet_general_2x2_closed_form() -> None:
    # For a 2x2 SPD M with eigenvalues l1, l2: (sqrt l1 + sqrt l2)^2 = tr M + 2 sqrt(det M), so
    # tr (S1^1/2 S2 S1^1/2)^1/2 = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)): no matrix root needed,
    # and these S1, S2 do not commute.
    s1 = np.array([[2.0, 0.7], [0.7, 1.0]])
    s2 = np.array([[0.5, -0.2], [-0.2, 1.5]])
    mu1, mu2 = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    tr_covmean = np.sqrt(np.trace(s1 @ s2) + 2 * np.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_covmean
    assert not np.allclose(s1 @ s2, s2 @ s1)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("d", [3, 32, 128])
def test_frechet_random_spd_matches_scipy_sqrtm(d: int) -> None:
    # The formula ||mu1-mu2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2) evaluated independently
    # with scipy's Schur-based sqrtm, and the (non-symmetric) sqrtm(S1 S2) form that pytorch-fid
    # uses: all three agree to ~1e-9 relative.
    rng = np.random.default_rng(d)
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    a = scipy.linalg.sqrtm(s1).real
    sym = np.trace(scipy.linalg.sqrtm(a @ s2 @ a).real)
    nonsym = np.trace(scipy.linalg.sqrtm(s1 @ s2).real)
    base = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
    got = frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(base - 2 * sym, rel=1e-9)
    assert got == pytest.approx(base - 2 * nonsym, rel=1e-9)


def test_frechet_singular_covariances_and_torch_input() -> None:
    # Fewer samples than dimensions gives singular covariances (where sqrtm(S1 S2) needs the eps
    # retry); the symmetric form stays finite and matches scipy. Torch float32 input is accepted.
    rng = np.random.default_rng(1)
    d = 64
    x, y = rng.standard_normal((20, d)), rng.standard_normal((30, d)) + 0.3
    (m1, s1), (m2, s2) = feature_statistics(x), feature_statistics(y)
    a = scipy.linalg.sqrtm(s1).real
    expected = (
        np.sum((m1 - m2) ** 2)
        + np.trace(s1 + s2)
        - 2 * np.trace(scipy.linalg.sqrtm(a @ s2 @ a).real)
    )
    # sqrt of the ~1e-15 rounding eigenvalues in the null space adds ~1e-8 each: hence rel 1e-6.
    got = frechet_distance(m1, s1, m2, s2)
    assert got == pytest.approx(expected, rel=1e-6)
    t = [torch.from_numpy(v).float() for v in (m1, s1, m2, s2)]
    assert frechet_distance(*t) == pytest.approx(expected, rel=1e-4)
    assert fid(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(got, rel=1e-12)


def test_frechet_rejects_bad_input() -> None:
    eye = np.eye(3)
    with pytest.raises(MetricError, match="shape"):
        frechet_distance(np.zeros(3), eye, np.zeros(4), np.eye(4))
    with pytest.raises(MetricError, match="positive semi-definite"):
        frechet_distance(np.zeros(3), np.diag([1.0, -1.0, 1.0]), np.zeros(3), eye)
    with pytest.raises(MetricError, match="symmetric"):
        frechet_distance(np.zeros(3), eye + np.triu(np.ones((3, 3)), 1), np.zeros(3), eye)
    with pytest.raises(MetricError, match="NaN"):
        fid(np.full((5, 3), np.nan), np.zeros((5, 3)))
    with pytest.raises(MetricError, match="at least 2"):
        fid(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(MetricError, match="dims differ"):
        fid(np.zeros((5, 3)), np.zeros((5, 4)))


# --- (b) fid on samples converges to the closed form --------------------------------------------


def test_fid_of_gaussian_samples_converges_to_closed_form() -> None:
    # Tolerance. FID is a smooth function of the sample means and covariances, so its error is
    # O(1/sqrt(N)) noise plus O(D/N) bias. The noise is dominated by the mean term: with
    # e = (mean1_hat - mean2_hat) - dmu ~ N(0, (S1 + S2)/N), ||dmu + e||^2 - ||dmu||^2 ~ 2 dmu.e,
    # whose std is sigma = 2 sqrt(dmu^T (S1 + S2) dmu / N) ~= 0.015 here; over 40 seeds the total
    # error had std 0.016 (so the covariance term adds little) and mean +0.004. The bias is at most
    # a few (tr S1 + tr S2)/N ~= 6e-4. Tolerance 5 sigma + 2 (tr S1 + tr S2)/N ~= 0.077, about 13%
    # of the true value 0.61: tight enough to catch a wrong factor or a missing term.
    rng = np.random.default_rng(123)
    d, n = 4, 20_000
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    mu1, mu2 = np.zeros(d), np.array([0.5, -0.3, 0.2, 0.1])
    true = frechet_distance(mu1, s1, mu2, s2)
    dmu = mu1 - mu2
    sigma = 2 * np.sqrt(dmu @ (s1 + s2) @ dmu / n)
    tol = 5 * sigma + 2 * np.trace(s1 + s2) / n

    x, y = _gaussian(rng, mu1, s1, n), _gaussian(rng, mu2, s2, n)
    assert fid(x, y) == pytest.approx(true, abs=tol)

    # Same distribution: the true value is 0, the estimate is the O(D/N) bias, mean-term part
    # 2 tr(S1)/N ~= 5e-4 (measured 1.3e-3 +- 0.6e-3 over 20 seeds, covariance bias included).
    y_same = _gaussian(rng, mu1, s1, n)
    assert 0.0 <= fid(x, y_same) < 10 * np.trace(s1) / n


# --- (c) KID against the closed-form MMD^2 of Gaussians -----------------------------------------
#
# For independent x ~ P, y ~ Q in R^d and u = x.y / d:  k(x, y) = (u + 1)^3 = u^3 + 3u^2 + 3u + 1,
#   E u   = sum_i       E[x_i]         E[y_i]         / d    = <m_P, m_Q> / d
#   E u^2 = sum_ij      E[x_i x_j]     E[y_i y_j]     / d^2  = <M_P, M_Q> / d^2
#   E u^3 = sum_ijk     E[x_i x_j x_k] E[y_i y_j y_k] / d^3  = <T_P, T_Q> / d^3
# with raw moments m (mean), M (second moment), T (third moment tensor). Each term is a bilinear
# form in the moments, so MMD^2 = E_PP k + E_QQ k - 2 E_PQ k collapses to squared differences:
#   MMD^2 = ||T_P - T_Q||^2 / d^3 + 3 ||M_P - M_Q||^2 / d^2 + 3 ||m_P - m_Q||^2 / d.
# For a Gaussian N(mu, S): M = S + mu mu^T and T_ijk = mu_i mu_j mu_k + mu_i S_jk + mu_j S_ik
# + mu_k S_ij; in 1-D that is m = mu, M = mu^2 + s^2, T = mu^3 + 3 mu s^2.


def _gaussian_poly_mmd2(mu_p: np.ndarray, s_p: np.ndarray, mu_q: np.ndarray, s_q: np.ndarray):
    """Closed-form MMD^2 of N(mu_p, s_p) and N(mu_q, s_q) under k(x, y) = (x.y/d + 1)^3."""

    def moments(mu: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        second = s + np.outer(mu, mu)
        third = (
            np.einsum("i,j,k->ijk", mu, mu, mu)
            + np.einsum("i,jk->ijk", mu, s)
            + np.einsum("j,ik->ijk", mu, s)
            + np.einsum("k,ij->ijk", mu, s)
        )
        return mu, second, third

    d = mu_p.shape[0]
    (m1p, m2p, m3p), (m1q, m2q, m3q) = moments(mu_p, s_p), moments(mu_q, s_q)
    return (
        np.sum((m3p - m3q) ** 2) / d**3
        + 3 * np.sum((m2p - m2q) ** 2) / d**2
        + 3 * np.sum((m1p - m1q) ** 2) / d
    )


def test_closed_form_mmd2_1d_expansion() -> None:
    # The tensor formula reduces to the 1-D moment expansion written out by hand.
    mu_p, sd_p, mu_q, sd_q = 0.0, 1.0, 0.5, 1.2
    raw = [(mu, mu**2 + sd**2, mu**3 + 3 * mu * sd**2) for mu, sd in ((mu_p, sd_p), (mu_q, sd_q))]
    by_hand = sum(w * (a - b) ** 2 for w, a, b in zip((3, 3, 1), raw[0], raw[1], strict=True))
    via_tensors = _gaussian_poly_mmd2(
        np.array([mu_p]), np.array([[sd_p**2]]), np.array([mu_q]), np.array([[sd_q**2]])
    )
    assert via_tensors == pytest.approx(by_hand, rel=1e-12)


@pytest.mark.parametrize(
    ("mu_q", "var_q"),
    [
        (np.array([0.5]), np.array([1.44])),  # 1-D, MMD^2 = 7.40
        (np.array([0.3, -0.2, 0.0]), np.array([1.0, 0.6, 1.5])),  # independent dims, 0.34
    ],
)
def test_kid_matches_closed_form(mu_q: np.ndarray, var_q: np.ndarray) -> None:
    # Tolerance. Each subset value is an unbiased U-statistic of MMD^2 with spread `std` (returned
    # by kid); for P != Q its variance falls like 1/size, so the N-point sample itself contributes
    # std * sqrt(m / N) of error and averaging n_subsets draws leaves about std / sqrt(n_subsets):
    # se = std * sqrt(m/N + 1/n_subsets). Over 12 seeds this predicted 0.40 / 0.016 against
    # measured error stds of 0.43 / 0.011, with mean errors -0.001 / +0.007 (no bias). The cubic
    # kernel makes values heavy-tailed (sixth moments), hence 5 se rather than 3; that is still
    # under 30% of the true value, so a wrong coefficient in the kernel expansion would fail.
    rng = np.random.default_rng(7)
    d, n, m, k = mu_q.shape[0], 20_000, 2000, 20
    mu_p, s_p, s_q = np.zeros(d), np.eye(d), np.diag(var_q)
    true = _gaussian_poly_mmd2(mu_p, s_p, mu_q, s_q)
    x, y = _gaussian(rng, mu_p, s_p, n), _gaussian(rng, mu_q, s_q, n)
    mean, std = kid(torch.from_numpy(x), torch.from_numpy(y), n_subsets=k, subset_size=m)
    tol = 5 * std * np.sqrt(m / n + 1 / k)
    assert 0 < tol < 0.3 * true
    assert mean == pytest.approx(true, abs=tol)


def test_kid_is_unbiased_and_can_be_negative() -> None:
    # Two samples of one distribution: MMD^2 = 0. The unbiased estimator leaves out the k(x_i, x_i)
    # diagonal, so single estimates scatter around 0 on both sides (a biased V-statistic would be
    # >= 0 always). Their average over 40 independent draws is within 4 standard errors of 0.
    rng = np.random.default_rng(3)
    d = 8
    values = []
    for s in range(40):
        x, y = rng.standard_normal((100, d)), rng.standard_normal((100, d))
        values.append(kid(x, y, n_subsets=1, subset_size=100, seed=s)[0])
    v = np.array(values)
    assert (v < 0).any() and (v > 0).any()
    assert abs(v.mean()) < 4 * v.std() / np.sqrt(len(v))


def test_kid_formula_against_brute_force() -> None:
    # subset_size >= N makes each subset a permutation of the full sets, and MMD^2 does not depend
    # on order, so one subset must equal the textbook double sum exactly (up to rounding).
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((13, 4)), rng.standard_normal((11, 4)) + 0.5
    m, d = 11, 4
    mean, std = kid(x, y, n_subsets=3, subset_size=1000, seed=0)  # clipped to 11

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (a @ b / d + 1) ** 3

    # The subset of x is random: recompute it with the same generator draws.
    g = np.random.default_rng(0)
    xi, yi = x[g.choice(13, m, replace=False)], y[g.choice(11, m, replace=False)]
    kxx = sum(k(xi[i], xi[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(yi[i], yi[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(xi[i], yi[j]) for i in range(m) for j in range(m)) / (m * m)
    first = kxx + kyy - 2 * kxy
    assert kid(x, y, n_subsets=1, subset_size=1000, seed=0)[0] == pytest.approx(first, rel=1e-12)
    assert std >= 0 and np.isfinite(mean)


def test_kid_is_seeded() -> None:
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((300, 5)), rng.standard_normal((300, 5)) * 1.1
    assert kid(x, y, n_subsets=10, subset_size=100, seed=1) == kid(
        x, y, n_subsets=10, subset_size=100, seed=1
    )
    assert kid(x, y, n_subsets=10, subset_size=100, seed=1) != kid(
        x, y, n_subsets=10, subset_size=100, seed=2
    )


# --- (d) symmetry, identical sets, batching -----------------------------------------------------


def test_fid_is_symmetric_and_zero_on_identical_sets() -> None:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((500, 32))
    y = rng.standard_normal((400, 32)) * 1.3 + 0.2
    assert fid(x, y) == pytest.approx(fid(y, x), rel=1e-9)
    assert fid(x, y) > 1.0
    assert fid(x, x) == pytest.approx(0.0, abs=1e-8)
    assert fid(torch.from_numpy(x).float(), torch.from_numpy(x).float()) == pytest.approx(
        0.0, abs=1e-5
    )
    mean_xy, _ = kid(x, y, n_subsets=5, subset_size=300)
    mean_yx, _ = kid(y, x, n_subsets=5, subset_size=300)
    assert mean_xy > 0 and mean_yx > 0


def test_extract_features_is_batch_size_independent() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(2),  # (B, 8, 2, 2), flattened to (B, 32)
    ).eval()
    x = torch.randn(50, 3, 16, 16)
    full = extract_features(net, x, batch_size=256)
    assert full.shape == (50, 32) and full.dtype == torch.float64
    for bs in (1, 7, 50):
        torch.testing.assert_close(extract_features(net, x, batch_size=bs), full)
    assert not full.requires_grad
    with pytest.raises(MetricError):
        extract_features(net, x, batch_size=0)
