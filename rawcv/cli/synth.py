"""``rawcv synth``: generate synthetic raw datasets with ground truth."""

from __future__ import annotations

import shlex
import sys

from ..synth.camera import BIT_DEPTHS
from ..options import TASKS


def register_synth(sub):
    p = sub.add_parser(
        "synth", help="generate a synthetic raw dataset with ground truth",
        description="Generate DNGs from procedural scenes (or photographs) through a simulated camera, with "
                    "labels and every camera parameter in manifest.json, and the ground truth the task trains "
                    "on: class masks for segment, clean linear sRGB images for restore (both with --with-truth).")
    p.add_argument("--task", choices=TASKS, required=True,
                   help="what the dataset is for; it decides the scenes and the ground truth written")
    p.add_argument("-n", type=int, required=True, metavar="N", help="number of images (split as --split says)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="dataset folder to create")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (even)")
    p.add_argument("--noise", default="low",
                   help="low, medium, high (lambda_shot 0.012), none, random, a lambda_shot value, or a range A:B")
    p.add_argument("--cfa", default="RGGB", help="Bayer layout, or 'random' for a random one per image")
    p.add_argument("--bits", type=int, choices=BIT_DEPTHS, default=14, help="bit depth of the raw values")
    p.add_argument("--seed", type=int, default=0, help="seed of every scene and camera (same seed, same files)")
    p.add_argument("--from-images", metavar="DIR", default=None,
                   help="use the photographs in DIR (or 'skimage') as scenes; None: procedural shapes")
    p.add_argument("--split", default="0.8,0.1,0.1", metavar="TRAIN,VAL,TEST",
                   help="fractions (summing to 1) or counts (summing to N) of the train/val/test splits")
    p.add_argument("--with-truth", action="store_true",
                   help="also write every item's clean image (_clean.npy) and class mask (_mask.png), whatever "
                        "the task")
    p.add_argument("--vignetting", action="store_true", help="add random lens vignetting")
    p.add_argument("--lens", action="store_true",
                   help="add random lens and sensor flaws (colour shading, distortion with lateral chromatic "
                        "aberration, stuck pixels) and write their corrections as DNG opcode lists")
    p.add_argument("--fixed-camera", action="store_true", help="one default camera instead of random ones")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_synth)


def _parse_split(text):
    from ..errors import RawcvError
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise RawcvError(f"--split {text!r}: expected three numbers such as 0.8,0.1,0.1 or 2000,500,500") from None
    return values


def run_synth(args) -> int:
    from ..synth.dataset import SynthConfig, make_dataset
    from ._common import Progress

    cfg = SynthConfig(task=args.task, n=args.n, size=args.size, noise=args.noise,
                      cfa=None if args.cfa.lower() == "random" else args.cfa.upper(), bits=args.bits,
                      seed=args.seed, from_images=args.from_images, vignetting=args.vignetting, lens=args.lens,
                      randomize_camera=not args.fixed_camera, split=_parse_split(args.split),
                      with_truth=args.with_truth)
    bar = Progress(args.n, "synth", enabled=not args.quiet)
    command = "rawcv " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
    manifest = make_dataset(args.out, cfg, overwrite=args.overwrite, command=command,
                            progress=lambda i: bar.update())
    bar.close()
    counts = manifest["counts"]
    print(f"wrote {args.n} {args.task} images to {args.out} "
          f"(train {counts['train']}, val {counts['val']}, test {counts['test']}; manifest.json)")
    return 0
