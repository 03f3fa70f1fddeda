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


def _transmission(scene: Scene, cfg: PhantomConfig, tgc_error_db_per_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """(depth of each row in mm, two-way transmission after TGC, blurred laterally by the transmit beam)."""
    h, w = scene.shape
    dz = scene.spacing_mm
    z = scene.depth0_mm + (np.arange(h, dtype=np.float64) + 0.5) * dz
    # attenuation accumulated from the skin to each pixel (tissue above the grid at the nominal rate)
    cum = np.cumsum(scene.atten * dz, axis=0) - 0.5 * scene.atten * dz
    cum += scene.depth0_mm * cfg.tissue_attenuation_db_per_mm
    tgc = (cfg.tissue_attenuation_db_per_mm + tgc_error_db_per_mm) * z
    trans = 10.0 ** (-(cum - tgc[:, None]) / 20.0)
    trans = ndimage.gaussian_filter1d(trans, cfg.shadow_lateral_sigma_mm / dz, axis=1, mode="nearest")
    return z, trans


def _psf(scat: np.ndarray, cfg: PhantomConfig, dz: float) -> np.ndarray:
    """Complex scatterer map -> (2, H, W) real/imaginary beamformed echo (separable Gaussian PSF)."""
    kz = gaussian_kernel(cfg.psf_axial_sigma_mm / dz)
    kx = gaussian_kernel(cfg.psf_lateral_sigma_mm / dz)
    ri = np.stack([scat.real, scat.imag])
    ri = ndimage.correlate1d(ri, kz, axis=1, mode="reflect")
    return ndimage.correlate1d(ri, kx, axis=2, mode="reflect")


def echo_fields(scene: Scene, cfg: PhantomConfig, speckle: np.ndarray, noise: np.ndarray,
                tgc_error_db_per_mm: float, part: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The (2, H, W) complex echo before envelope detection, and the share of it due to the diffuse
    scatterers under ``part`` (no noise, no specular term), or None.

    The echo is linear in the scatter amplitude, so scaling the amplitude under ``part`` by ``f``
    gives ``total + (f - 1) * part_echo`` exactly: the calcification level can be raised without
    redrawing anything (:func:`envelope_of`).
    """
    dz = scene.spacing_mm
    z, trans = _transmission(scene, cfg, tgc_error_db_per_mm)
    phase = np.exp(-1j * two_k(cfg.center_frequency_mhz, cfg.sound_speed_mm_per_us) * z)
    scat = (scene.amp * speckle + scene.coh * phase[:, None]) * trans
    ri = _psf(scat, cfg, dz)
    ri[0] += cfg.noise_level * noise.real
    ri[1] += cfg.noise_level * noise.imag
    sub = None
    if part is not None and part.any():
        sub = _psf(np.where(part, scene.amp, 0.0) * speckle * trans, cfg, dz)
    return ri, sub


def envelope_of(ri: np.ndarray, part_echo: np.ndarray | None = None, boost_db: float = 0.0) -> np.ndarray:
    """Envelope (modulus) of an echo from :func:`echo_fields`, the ``part`` raised by ``boost_db``."""
    if part_echo is not None and boost_db != 0.0:
        ri = ri + (db(boost_db) - 1.0) * part_echo
    return np.sqrt(ri[0] * ri[0] + ri[1] * ri[1])


def form_envelope(scene: Scene, cfg: PhantomConfig, speckle: np.ndarray, noise: np.ndarray,
                  tgc_error_db_per_mm: float) -> np.ndarray:
    """Envelope (linear amplitude) of the beamformed echo; ``speckle``/``noise`` are unit complex fields."""
    return envelope_of(echo_fields(scene, cfg, speckle, noise, tgc_error_db_per_mm)[0])


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
