"""Fréchet (FID) and kernel (KID) distances between two sets of features, in float64.

Inception weights cannot be downloaded here, so nothing in this module knows which network made
the features: the caller extracts them (`extract_features` with a judge's `features`, or Inception
on a user's machine) and the distances are computed the same way either way.

Everything runs in float64 on the CPU: the matrix square root in FID and the cubic kernel in KID
lose several digits in float32, and a metric whose value depends on the dtype is not reproducible.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from xdomain.errors import XDomainError

ArrayLike = np.ndarray | Tensor


class MetricError(XDomainError):
    """Features or statistics cannot be compared: wrong shape, too few rows, not a covariance."""


def _as_f64(a: ArrayLike) -> np.ndarray:
    """A float64 numpy copy of a numpy array or a (possibly CUDA / grad-tracking) tensor."""
    if isinstance(a, Tensor):
        return a.detach().to("cpu", torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def _features_2d(feats: ArrayLike, what: str) -> np.ndarray:
    """(N, D) float64 features; at least 2 rows because a covariance needs them."""
    f = _as_f64(feats)
    if f.ndim != 2:
        raise MetricError(f"{what}: expected (N, D) features, got shape {tuple(f.shape)}")
    if f.shape[0] < 2:
        raise MetricError(f"{what}: need at least 2 feature vectors, got {f.shape[0]}")
    if not np.isfinite(f).all():
        raise MetricError(f"{what}: features contain NaN or Inf")
    return f


def _psd_sqrt(s: np.ndarray, what: str) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix via its eigen-decomposition.

    Eigenvalues a little below zero are rounding noise (a covariance from fewer samples than
    dimensions is singular) and are clipped; clearly negative ones mean the input is not a
    covariance, which is an error rather than something to paper over.
    """
    w, v = np.linalg.eigh(s)  # w: (D,), v: (D, D)
    _check_psd(w, what)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _check_psd(w: np.ndarray, what: str) -> None:
    """Reject eigenvalues more negative than rounding of the largest one can explain.

    The bound is loose (1e-5 relative) because statistics often arrive in float32, whose ~1e-7
    relative rounding per entry grows with the dimension; a matrix that is really not a covariance
    has negative eigenvalues of the order of its positive ones.
    """
    scale = max(float(np.abs(w).max(initial=0.0)), 1e-300)
    if w.min(initial=0.0) < -1e-5 * scale:
        raise MetricError(
            f"{what} is not positive semi-definite (eigenvalue {w.min():.3g}, largest {scale:.3g})"
        )


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), the Fréchet distance of Gaussians.

    The usual implementation takes scipy's `sqrtm(S1 @ S2)`, a non-symmetric product whose square
    root comes back complex (tiny imaginary parts, or garbage when S1 @ S2 is singular, hence the
    eps-on-the-diagonal retry). tr sqrt(S1 S2) equals tr sqrt(A S2 A) with A = S1^1/2, and A S2 A is
    symmetric PSD, so `eigh` gives its eigenvalues as real numbers directly: no imaginary part to
    discard and no retry. Negative eigenvalues beyond rounding raise `MetricError`.
    """
    m1, m2 = _as_f64(mu1).reshape(-1), _as_f64(mu2).reshape(-1)  # (D,)
    s1, s2 = _as_f64(sigma1), _as_f64(sigma2)  # (D, D)
    d = m1.shape[0]
    if m2.shape[0] != d or s1.shape != (d, d) or s2.shape != (d, d):
        raise MetricError(
            f"shape mismatch: mu1 {m1.shape}, sigma1 {s1.shape}, mu2 {m2.shape}, sigma2 {s2.shape}"
        )
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if not np.isfinite(s).all():
            raise MetricError(f"{name} contains NaN or Inf")
        if not np.allclose(s, s.T, rtol=1e-6, atol=1e-9 * max(np.abs(s).max(), 1.0)):
            raise MetricError(f"{name} is not symmetric")
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2

    a = _psd_sqrt(s1, "sigma1")  # (D, D)
    _check_psd(np.linalg.eigvalsh(s2), "sigma2")
    m = a @ s2 @ a
    w = np.linalg.eigvalsh((m + m.T) / 2)  # (D,)
    _check_psd(w, "sigma1^1/2 sigma2 sigma1^1/2")
    tr_covmean = float(np.sqrt(np.clip(w, 0.0, None)).sum())

    diff = m1 - m2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    # The exact value is >= 0; a tiny negative is cancellation between the trace terms.
    return max(value, 0.0)


def feature_statistics(feats: ArrayLike, what: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of (N, D) features, float64.

    Exposed so that the statistics of a fixed real set can be computed once and reused with
    `frechet_distance` against many generated sets.
    """
    f = _features_2d(feats, what)
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def fid(feats_real: ArrayLike, feats_fake: ArrayLike) -> float:
    """FID between two (N, D) feature sets (the sets may have different N, not different D)."""
    mu_r, s_r = feature_statistics(feats_real, "feats_real")
    mu_f, s_f = feature_statistics(feats_fake, "feats_fake")
    if mu_r.shape != mu_f.shape:
        raise MetricError(f"feature dims differ: real {mu_r.shape[0]}, fake {mu_f.shape[0]}")
    return frechet_distance(mu_r, s_r, mu_f, s_f)


def _poly_mmd2_unbiased(x: Tensor, y: Tensor) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3 for (m, d) x and y of the same size m.

    The diagonals k(x_i, x_i) are left out of the within-set means (that is what makes the
    estimate unbiased, and why it can come out negative when both sets share a distribution).
    """
    m, d = x.shape
    k_xx = (x @ x.T / d + 1.0) ** 3  # (m, m)
    k_yy = (y @ y.T / d + 1.0) ** 3  # (m, m)
    k_xy = (x @ y.T / d + 1.0) ** 3  # (m, m)
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (
        m * (m - 1)
    )
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kid(
    feats_real: ArrayLike,
    feats_fake: ArrayLike,
    *,
    n_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID (mean, std) over `n_subsets` random subsets, as in Bińkowski et al. and torch-fidelity.

    Each subset draws `subset_size` rows without replacement from each set (clipped to the smaller
    set, so small evaluation sets still work); the std is the spread over subsets (ddof 0), not a
    standard error. The subsets come from a numpy generator seeded with `seed`, so a value is
    reproducible and independent of the global RNG state.
    """
    fr = torch.from_numpy(_features_2d(feats_real, "feats_real"))  # (Nr, D)
    ff = torch.from_numpy(_features_2d(feats_fake, "feats_fake"))  # (Nf, D)
    if fr.shape[1] != ff.shape[1]:
        raise MetricError(f"feature dims differ: real {fr.shape[1]}, fake {ff.shape[1]}")
    if n_subsets < 1:
        raise MetricError(f"n_subsets must be >= 1, got {n_subsets}")
    m = min(subset_size, fr.shape[0], ff.shape[0])
    if m < 2:
        raise MetricError(f"subset_size must be >= 2, got {subset_size}")
    rng = np.random.default_rng(seed)
    values = np.empty(n_subsets, dtype=np.float64)
    for i in range(n_subsets):
        ir = torch.from_numpy(rng.choice(fr.shape[0], m, replace=False))
        jf = torch.from_numpy(rng.choice(ff.shape[0], m, replace=False))
        values[i] = _poly_mmd2_unbiased(fr[ir], ff[jf])
    return float(values.mean()), float(values.std())


@torch.no_grad()
def extract_features(fn: Callable[[Tensor], Tensor], x: Tensor, batch_size: int = 256) -> Tensor:
    """(N, ...) inputs -> (N, D) float64 CPU features of `fn`, computed `batch_size` rows at a time.

    Batching bounds memory for large evaluation sets; `fn` should be in eval mode (a judge from
    `get_judge` is) so that the result does not depend on how the rows were batched.
    """
    if batch_size < 1:
        raise MetricError(f"batch_size must be >= 1, got {batch_size}")
    chunks = [
        fn(x[i : i + batch_size]).flatten(1).to("cpu", torch.float64)  # (b, D)
        for i in range(0, x.shape[0], batch_size)
    ]
    if not chunks:
        raise MetricError("extract_features: got 0 inputs")
    return torch.cat(chunks)  # (N, D)
