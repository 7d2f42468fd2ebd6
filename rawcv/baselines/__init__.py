"""Classical methods that the learned models are measured against (NumPy, SciPy and
scikit-image on the ISP's own stages; no torch).

* :mod:`rawcv.baselines.denoise` -- joint denoising + demosaicing of a noisy mosaic: the ISP's
  3 x 3 median / mean filters and non-local means after a variance-stabilising transform
  (:func:`gat` / :func:`gat_inverse`), all ending in the ISP's white balance and bilinear demosaic.
"""

from .denoise import (NLM_DEFAULTS, baseline_nlm_vst, classical_baselines, gat, gat_inverse,
                      white_balanced_bilinear)

__all__ = ["gat", "gat_inverse", "baseline_nlm_vst", "classical_baselines", "white_balanced_bilinear",
           "NLM_DEFAULTS"]
