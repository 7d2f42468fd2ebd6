"""The photographer's controls of ``rawcv process``: each one an override of the chosen pipeline's
stages, so the sidecar (which records every stage's parameters) says what was applied."""

from __future__ import annotations

import argparse

from ..errors import PipelineError
from ..isp.stage import STAGES

WB_METHODS = {"camera": "camera", "gray": "gray_world", "white": "white_world"}
# where an exposure change goes when the pipeline has none: in linear values, before the tone curve
EXPOSURE_BEFORE = ("gamma", "quantize")


def white_balance_choice(text: str):
    """``camera``, ``gray``, ``white`` or ``R,G,B`` gains (three positive numbers)."""
    if text in WB_METHODS:
        return {"method": WB_METHODS[text]}
    try:
        gains = [float(v) for v in text.split(",")]
    except ValueError:
        gains = []
    if len(gains) != 3 or not all(g > 0 and g < float("inf") for g in gains):
        raise argparse.ArgumentTypeError(f"expected camera, gray, white or three positive gains R,G,B; got {text!r}")
    return {"method": "manual", "gains": gains}


def exposure_stops(text: str) -> float:
    try:
        stops = float(text)
    except ValueError:
        stops = float("nan")
    if not abs(stops) <= 16:
        raise argparse.ArgumentTypeError(f"expected a number of stops between -16 and 16, got {text!r}")
    return stops


def add_overrides(p) -> None:
    methods = STAGES["demosaic"].param("method").choices
    p.add_argument("--demosaic", choices=methods, default=None, metavar="METHOD",
                   help=f"demosaic method instead of the pipeline's ({', '.join(methods)}); None: the pipeline's own")
    highlights = STAGES["highlights"].param("method").choices
    p.add_argument("--highlights", choices=highlights, default=None, metavar="METHOD",
                   help=f"highlights method instead of the pipeline's ({', '.join(highlights)}); "
                        "None: the pipeline's own")
    p.add_argument("--wb", type=white_balance_choice, default=None, metavar="camera|gray|white|R,G,B",
                   help="white balance instead of the pipeline's: as shot, gray world, white world, or gains")
    p.add_argument("--exposure", type=exposure_stops, default=None, metavar="EV",
                   help="exposure change in stops, on linear values before the tone curve")
    p.add_argument("--bits", type=int, choices=(8, 16), default=None,
                   help="levels of the quantised output (16: PNG and TIFF only)")
    p.add_argument("--half-size", action="store_true",
                   help="one RGB pixel per 2x2 CFA tile, no interpolation (the demosaic method 'half')")


def apply_overrides(pipeline, args):
    """``pipeline`` with the overrides ``args`` asks for (a PipelineError names a missing stage)."""
    if args.demosaic is not None and args.half_size:
        raise PipelineError("--half-size and --demosaic both choose the demosaic method: give one")
    if args.demosaic is not None or args.half_size:
        pipeline = pipeline.with_params("demosaic", method="half" if args.half_size else args.demosaic)
    if args.highlights is not None:
        pipeline = pipeline.with_params("highlights", method=args.highlights)
    if args.wb is not None:
        pipeline = pipeline.with_params("white_balance", **args.wb)
    if args.exposure is not None:
        pipeline = pipeline.with_stage({"stage": "exposure", "stops": args.exposure}, before=EXPOSURE_BEFORE)
    if args.bits is not None:
        pipeline = pipeline.with_params("quantize", bits=args.bits)
    return pipeline
