"""How fast can a fresh PatchGAN tell a trained generator's output from the ground truth?
For docs/DENSE_RESULTS.md (the discriminator's view, and the views tried and removed).

Usage::

    python docs/discriminator_probe.py RUN_OR_CKPT [--pair-only] [--clipped] [--gain G] [--sigma S]
                                       [--steps N]

The generator is frozen; a fresh ``patchgan70`` (base width 32) is trained with least squares,
Adam 2e-4 / beta1 0.5, batch 8 + 8 (fake and real pairs in one batch, as in training), on
on-the-fly 128 x 128 training pairs at high noise. It prints the mean D(real) / D(fake) every
50 steps: 0.5 / 0.5 is chance, apart means the discriminator sees what the generator gets
wrong, so that its gradient can teach the generator something.

Without options the discriminator sees the pairs as training shows them
(:func:`rawcv.train.restore.discriminator_pair`). The options rebuild the views that training
tried and no longer offers: ``--pair-only`` without the detail band (7 channels), ``--clipped``
with both images clipped to [0, 1] before the sRGB curve, ``--gain`` / ``--sigma`` the detail
band's gain (training: 1) and blur (training: ``D_DETAIL_SIGMA``).
"""

import argparse
import time

import torch

from rawcv.data.restore import RestorePairs, fresh_loader
from rawcv.models import create_model
from rawcv.train.restore import (D_DETAIL_SIGMA, display_view, gan_criterion, gaussian_blur, generate_batch,
                                 generator_options, load_restorer)


def probe_pair(packed, image, *, pair_only=False, clipped=False, gain=1.0, sigma=D_DETAIL_SIGMA):
    """The (condition, image[, gain x detail band]) the probed discriminator sees."""
    if clipped:
        packed, image = packed.clamp(0, 1), image.clamp(0, 1)
    cond = torch.nn.functional.interpolate(packed.float(), size=image.shape[-2:], mode="nearest")
    shown = display_view(image)
    parts = [display_view(cond), shown]
    if not pair_only:
        parts.append(gain * (shown - gaussian_blur(shown, sigma)))
    return torch.cat(parts, dim=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights")
    ap.add_argument("--pair-only", action="store_true")
    ap.add_argument("--clipped", action="store_true")
    ap.add_argument("--gain", type=float, default=1.0)
    ap.add_argument("--sigma", type=float, default=D_DETAIL_SIGMA)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    view = {"pair_only": args.pair_only, "clipped": args.clipped, "gain": args.gain, "sigma": args.sigma}

    torch.manual_seed(0)
    generator, ckpt, _ = load_restorer(args.weights, "cpu")
    disc = create_model("patchgan70", in_chans=7 if args.pair_only else 10, num_classes=1, base_width=32)
    opt = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    crit = gan_criterion("lsgan")
    pairs = RestorePairs(100 * args.steps, split="train", seed=5, size=128, noise="high", sources="mixed")
    loader = fresh_loader(pairs, batch_size=8, workers=0, device=torch.device("cpu"), seed=5)
    sums, start = [0.0, 0.0, 0.0], time.time()
    for step, batch in enumerate(loader, 1):
        with torch.no_grad():
            fake = generate_batch(generator, batch, **generator_options(ckpt))
        pred_fake, pred_real = disc(torch.cat([probe_pair(batch["input"], fake, **view),
                                               probe_pair(batch["input"], batch["target"], **view)])).chunk(2)
        loss = 0.5 * (crit(pred_fake, False) + crit(pred_real, True))
        opt.zero_grad()
        loss.backward()
        opt.step()
        for i, value in enumerate((loss, pred_real.mean(), pred_fake.mean())):
            sums[i] += float(value.detach())
        if step % 50 == 0:
            print(f"{view} step {step}: D loss {sums[0] / 50:.4f}, "
                  f"D(real) / D(fake) {sums[1] / 50:.3f} / {sums[2] / 50:.3f}  ({time.time() - start:.0f} s)",
                  flush=True)
            sums = [0.0, 0.0, 0.0]
        if step >= args.steps:
            break


if __name__ == "__main__":
    main()
