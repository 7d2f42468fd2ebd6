"""How fast can a fresh PatchGAN tell a trained generator's output from the ground truth?
For docs/DENSE_RESULTS.md (section 2.1, the discriminator's view).

Usage::

    python docs/discriminator_probe.py RUN_OR_CKPT [--view display|display+detail]
                                       [--range extended|clipped] [--gain G] [--sigma S] [--steps N]

The generator is frozen; a fresh ``patchgan70`` (base width 32) is trained with least squares,
Adam 2e-4 / beta1 0.5, batch 8 + 8 (fake and real pairs in one batch, as in training), on
on-the-fly 128 x 128 training pairs at high noise. It prints the mean D(real) / D(fake) every
50 steps: 0.5 / 0.5 is chance, apart means the discriminator sees what the generator gets
wrong, so that its gradient can teach the generator something. ``--range`` is the training option
``--d-range``; ``--gain`` and ``--sigma`` vary the detail band of the ``display+detail`` view
(defaults: ``D_DETAIL_GAIN``, ``D_DETAIL_SIGMA``).
"""

import argparse
import time

import torch

from rawcv.data.restore import RestorePairs, fresh_loader
from rawcv.models import create_model
from rawcv.train.restore import (D_DETAIL_GAIN, D_DETAIL_SIGMA, D_RANGES, D_VIEWS, DEFAULT_D_RANGE,
                                 discriminator_channels, discriminator_pair, gan_criterion, generate_batch,
                                 generator_options, load_restorer)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights")
    ap.add_argument("--view", choices=D_VIEWS, default="display+detail")
    ap.add_argument("--range", choices=D_RANGES, default=DEFAULT_D_RANGE)
    ap.add_argument("--gain", type=float, default=D_DETAIL_GAIN)
    ap.add_argument("--sigma", type=float, default=D_DETAIL_SIGMA)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    view = {"view": args.view, "value_range": args.range, "detail_gain": args.gain, "detail_sigma": args.sigma}

    torch.manual_seed(0)
    generator, ckpt, _ = load_restorer(args.weights, "cpu")
    disc = create_model("patchgan70", in_chans=discriminator_channels(args.view), num_classes=1, base_width=32)
    opt = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    crit = gan_criterion("lsgan")
    pairs = RestorePairs(100 * args.steps, split="train", seed=5, size=128, noise="high", sources="mixed")
    loader = fresh_loader(pairs, batch_size=8, workers=0, device=torch.device("cpu"), seed=5)
    sums, start = [0.0, 0.0, 0.0], time.time()
    for step, batch in enumerate(loader, 1):
        with torch.no_grad():
            fake = generate_batch(generator, batch, **generator_options(ckpt))
        pred_fake, pred_real = disc(torch.cat([discriminator_pair(batch["input"], fake, **view),
                                               discriminator_pair(batch["input"], batch["target"], **view)])).chunk(2)
        loss = 0.5 * (crit(pred_fake, False) + crit(pred_real, True))
        opt.zero_grad()
        loss.backward()
        opt.step()
        for i, value in enumerate((loss, pred_real.mean(), pred_fake.mean())):
            sums[i] += float(value.detach())
        if step % 50 == 0:
            print(f"{args.view}, {args.range} (gain {args.gain:g}, sigma {args.sigma:g}) step {step}: "
                  f"D loss {sums[0] / 50:.4f}, "
                  f"D(real) / D(fake) {sums[1] / 50:.3f} / {sums[2] / 50:.3f}  ({time.time() - start:.0f} s)",
                  flush=True)
            sums = [0.0, 0.0, 0.0]
        if step >= args.steps:
            break


if __name__ == "__main__":
    main()
