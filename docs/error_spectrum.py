"""Where in frequency a restorer's error lies: for docs/DENSE_RESULTS.md (section 2.5).

Usage::

    python docs/error_spectrum.py "LABEL=RUN_OR_CKPT" ...

For held-out synthetic test pairs 0-7 (split "test", seed 0, high noise, 256 x 256: the first
pairs of ``rawcv eval restore --synthetic 32 --seed 0``) it takes each model's error in display
values (``default`` pipeline, channel mean, minus the ground truth's) and sums its power
spectrum over the pairs. It prints the power at periods of 2, 4 and 8 pixels (the horizontal,
vertical and diagonal frequencies of each) relative to the spectrum's mean: a periodic pattern
the model adds shows there as a peak (a 2-pixel period is the 2 x 2 grid the generator's pixel
shuffle writes its output on), and the error power in radial frequency bands relative to the
first model's.
"""

import sys

import numpy as np

from rawcv.data.restore import RestorePairs
from rawcv.train.restore import camera_to_output, generator_options, load_restorer, restore_packed

SIZE = 256
PAIRS = 8
PERIODS = (2, 4, 8)
BANDS = [(0, 16), (16, 48), (48, 96), (96, 182)]     # radius in frequency bins (Nyquist = 128)


def error_power(model, ckpt, pairs):
    """Summed power spectrum of the display-value error, zero frequency at the centre."""
    power = np.zeros((SIZE, SIZE))
    for index in range(PAIRS):
        pair = pairs.pair(index)
        out = restore_packed(model, pair.packed, pair.variance, pair.gains, **generator_options(ckpt), device="cpu")
        error = (camera_to_output(out, pair.meta, "default", quantize=False)
                 - camera_to_output(pair.target, pair.meta, "default", quantize=False)).mean(axis=-1)
        power += np.abs(np.fft.fft2(error - error.mean())) ** 2
    return np.fft.fftshift(power)


def main(specs):
    pairs = RestorePairs(32, split="test", seed=0, size=SIZE, noise="high", sources="mixed")
    spectra = {}
    for spec in specs:
        label, path = spec.split("=", 1)
        model, ckpt, _ = load_restorer(path, "cpu")
        spectra[label] = error_power(model, ckpt, pairs)
    centre = SIZE // 2
    fy, fx = np.mgrid[-centre:centre, -centre:centre]
    radius = np.hypot(fy, fx)
    first = next(iter(spectra.values()))
    print(f"{'model':<28}" + "".join(f"{f'period {p}':>10}" for p in PERIODS)
          + "".join(f"{f'band {lo}-{hi}':>12}" for lo, hi in BANDS))
    for label, power in spectra.items():
        mean = power.mean()
        peaks = []
        for period in PERIODS:
            f = SIZE // period
            # shifted index of frequency f (f = 128, Nyquist, sits at index 0)
            k = (centre + f) % SIZE
            peaks.append((power[k, centre] + power[centre, k] + power[k, k]) / mean)
        bands = [power[(radius >= lo) & (radius < hi)].sum() / first[(radius >= lo) & (radius < hi)].sum()
                 for lo, hi in BANDS]
        print(f"{label:<28}" + "".join(f"{v:>10.1f}" for v in peaks) + "".join(f"{v:>12.2f}" for v in bands))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
