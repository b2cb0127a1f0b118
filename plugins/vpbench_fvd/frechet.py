"""The Fréchet distance between two Gaussians, in float64, safe for singular covariances.

    d²(N(μ₁, Σ₁), N(μ₂, Σ₂)) = |μ₁ - μ₂|² + tr Σ₁ + tr Σ₂ - 2 tr (Σ₁ Σ₂)^½

The last trace is computed without the square root of the (non-symmetric) product Σ₁Σ₂.
Σ₁Σ₂ is similar to the symmetric positive semi-definite M = Σ₁^½ Σ₂ Σ₁^½, so both have the
same non-negative eigenvalues λᵢ and tr (Σ₁Σ₂)^½ = Σᵢ √λᵢ. Two symmetric eigendecompositions
(``scipy.linalg.eigh``, backward stable) give it: Σ₁^½ from Σ₁'s eigenvalues clipped at 0, then
M's eigenvalues, clipped at 0 before the root. Nothing is inverted, so a rank-deficient
covariance (fewer clips than the 400 I3D features, always the case on small test sets) is
exact, not an error; and nothing is complex. ``scipy.linalg.sqrtm(Σ₁Σ₂)``, the usual choice,
works on the non-normal product with a Schur method that turns such a product's zero
eigenvalues into complex noise (often "fixed" with ε·I added to both covariances, which
changes the value); here rounding can only leave eigenvalues of order 1e-16·|M| below zero,
which the clip removes.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike, NDArray

__all__ = ["gaussian_stats", "frechet_distance", "trace_sqrt_product"]

F64 = NDArray[np.float64]


def gaussian_stats(features: ArrayLike) -> tuple[F64, F64]:
    """Mean and covariance (normalised by n, as StyleGAN-V's FVD) of ``[n, d]`` features, in float64."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"features must be [n >= 1, d], got shape {x.shape}")
    mu = x.mean(axis=0)
    centred = x - mu
    cov = centred.T @ centred / x.shape[0]
    return mu, cov


def _psd_sqrt(a: F64) -> F64:
    w, v = scipy.linalg.eigh(a, check_finite=False)
    root: F64 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    return root


def trace_sqrt_product(sigma1: ArrayLike, sigma2: ArrayLike) -> float:
    """tr (Σ₁Σ₂)^½ of two covariances (symmetric positive semi-definite, possibly singular)."""
    s1 = np.asarray(sigma1, dtype=np.float64)
    s2 = np.asarray(sigma2, dtype=np.float64)
    s1 = (s1 + s1.T) / 2
    s2 = (s2 + s2.T) / 2
    root = _psd_sqrt(s1)
    m = root @ s2 @ root
    lam = scipy.linalg.eigvalsh((m + m.T) / 2, check_finite=False)
    return float(np.sqrt(np.clip(lam, 0.0, None)).sum())


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """d² between N(μ₁, Σ₁) and N(μ₂, Σ₂) (FID/FVD report d², not d); NaN if any input is not finite."""
    m1, m2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    s1, s2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    d = m1.shape[0]
    if m1.shape != (d,) or m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shapes do not match: mu {m1.shape}, {m2.shape}; sigma {s1.shape}, {s2.shape}")
    if not all(np.isfinite(a).all() for a in (m1, m2, s1, s2)):
        return float("nan")
    diff = m1 - m2
    value = float(diff @ diff) + float(np.trace(s1)) + float(np.trace(s2)) - 2.0 * trace_sqrt_product(s1, s2)
    # rounding may leave a tiny negative value for two equal distributions; d² is never below 0
    return max(value, 0.0)
