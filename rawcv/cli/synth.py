"""``rawcv synth``: generate synthetic raw datasets with ground truth."""

from __future__ import annotations

import shlex
import sys


def register_synth(sub):
    p = sub.add_parser(
        "synth", help="generate a synthetic raw dataset with ground truth",
        description="Generate DNGs from procedural scenes (or photographs) through a simulated camera, with "
                    "clean linear RGB, class masks, labels and every camera parameter in manifest.json.")
    p.add_argument("--task", choices=("classify", "segment", "restore"), required=True)
    p.add_argument("-n", type=int, required=True, metavar="N", help="number of images (split 80/10/10)")
    p.add_argument("-o", "--out", required=True, metavar="DIR")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (even)")
    p.add_argument("--noise", default="low",
                   help="low, medium, high (lambda_shot 0.012), none, random, a lambda_shot value, or a range A:B")
    p.add_argument("--cfa", default="RGGB", help="Bayer layout, or 'random' for a random one per image")
    p.add_argument("--bits", type=int, choices=(10, 12, 14), default=14)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--from-images", metavar="DIR", help="use the photographs in DIR (or 'skimage') as scenes")
    p.add_argument("--split", default="0.8,0.1,0.1", metavar="TRAIN,VAL,TEST",
                   help="fractions (summing to 1) or counts (summing to N) of the train/val/test splits")
    p.add_argument("--vignetting", action="store_true", help="add random lens vignetting")
    p.add_argument("--fixed-camera", action="store_true", help="one default camera instead of random ones")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
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
                      seed=args.seed, from_images=args.from_images, vignetting=args.vignetting,
                      randomize_camera=not args.fixed_camera, split=_parse_split(args.split))
    bar = Progress(args.n, "synth", enabled=not args.quiet)
    command = "rawcv " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
    manifest = make_dataset(args.out, cfg, overwrite=args.overwrite, command=command,
                            progress=lambda i: bar.update())
    bar.close()
    counts = manifest["counts"]
    print(f"wrote {args.n} {args.task} images to {args.out} "
          f"(train {counts['train']}, val {counts['val']}, test {counts['test']}; manifest.json)")
    return 0
