"""Image formation: scene maps -> scatterers -> PSF convolution -> envelope -> TGC -> log compression.

A scene is three maps on the native grid: the diffuse scatter amplitude (rms of a complex Gaussian
per pixel, i.e. many sub-resolution scatterers: fully developed speckle wherever it is > 0), the
coherent reflectivity of specular surfaces (constant phase ``exp(-i2kz)`` per row, so a flat
interface sums coherently into a bright line and a tilted one breaks up), and the round-trip
attenuation in dB/mm, integrated along each beam (column) to give shadows behind calcifications and
enhancement behind fluid. Time-gain compensation corrects the nominal tissue attenuation with a
random residual error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from edgecalc.data.phantom.config import PhantomConfig
from edgecalc.data.phantom.psf import gaussian_kernel, two_k


@dataclass
class Scene:
    """Acoustic properties on an H x W grid of ``spacing_mm``; row 0 lies ``depth0_mm`` below the skin."""

    spacing_mm: float
    depth0_mm: float
    amp: np.ndarray  #: diffuse scatter amplitude (parenchyma = 1)
    coh: np.ndarray  #: coherent (specular) reflectivity
    atten: np.ndarray  #: round-trip attenuation, dB/mm

    @classmethod
    def blank(cls, shape: tuple[int, int], spacing_mm: float, depth0_mm: float, cfg: PhantomConfig) -> "Scene":
        return cls(spacing_mm, depth0_mm, np.ones(shape), np.zeros(shape),
                   np.full(shape, cfg.tissue_attenuation_db_per_mm))

    @property
    def shape(self) -> tuple[int, int]:
        return self.amp.shape


def speckle_field(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Circular complex Gaussian, unit rms: the random phasors of sub-resolution scatterers."""
    g = rng.standard_normal((2,) + tuple(shape))
    return (g[0] + 1j * g[1]) * np.sqrt(0.5)


def form_envelope(scene: Scene, cfg: PhantomConfig, speckle: np.ndarray, noise: np.ndarray,
                  tgc_error_db_per_mm: float) -> np.ndarray:
    """Envelope (linear amplitude) of the beamformed echo; ``speckle``/``noise`` are unit complex fields."""
    h, w = scene.shape
    dz = scene.spacing_mm
    z = scene.depth0_mm + (np.arange(h, dtype=np.float64) + 0.5) * dz
    # attenuation accumulated from the skin to each pixel (tissue above the grid at the nominal rate)
    cum = np.cumsum(scene.atten * dz, axis=0) - 0.5 * scene.atten * dz
    cum += scene.depth0_mm * cfg.tissue_attenuation_db_per_mm
    tgc = (cfg.tissue_attenuation_db_per_mm + tgc_error_db_per_mm) * z
    trans = 10.0 ** (-(cum - tgc[:, None]) / 20.0)
    trans = ndimage.gaussian_filter1d(trans, cfg.shadow_lateral_sigma_mm / dz, axis=1, mode="nearest")
    phase = np.exp(-1j * two_k(cfg.center_frequency_mhz, cfg.sound_speed_mm_per_us) * z)
    scat = (scene.amp * speckle + scene.coh * phase[:, None]) * trans
    kz = gaussian_kernel(cfg.psf_axial_sigma_mm / dz)
    kx = gaussian_kernel(cfg.psf_lateral_sigma_mm / dz)
    ri = np.stack([scat.real, scat.imag])
    ri = ndimage.correlate1d(ri, kz, axis=1, mode="reflect")
    ri = ndimage.correlate1d(ri, kx, axis=2, mode="reflect")
    ri[0] += cfg.noise_level * noise.real
    ri[1] += cfg.noise_level * noise.imag
    return np.sqrt(ri[0] * ri[0] + ri[1] * ri[1])


def log_compress(env: np.ndarray, dynamic_range_db: float, gain_db: float, headroom_db: float) -> np.ndarray:
    """Envelope -> uint8: parenchyma (rms 1) sits ``headroom_db - gain_db`` below white."""
    db = 20.0 * np.log10(env + 1e-9)
    top = headroom_db - gain_db
    g = (db - (top - dynamic_range_db)) * (255.0 / dynamic_range_db)
    return np.clip(np.floor(g + 0.5), 0, 255).astype(np.uint8)


def coherent_gain(cfg: PhantomConfig, spacing_mm: float) -> float:
    """Peak envelope of a wide flat reflector of unit coherent reflectivity (to set levels in dB)."""
    kz = gaussian_kernel(cfg.psf_axial_sigma_mm / spacing_mm)
    kx = gaussian_kernel(cfg.psf_lateral_sigma_mm / spacing_mm)
    return float(kz.max() * kx.sum())


def db(x: float) -> float:
    """dB -> linear amplitude ratio."""
    return float(10.0 ** (x / 20.0))
