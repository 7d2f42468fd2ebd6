"""The photographer's controls of ``rawcv process``: each one an override of the chosen pipeline's
stages, so the sidecar (which records every stage's parameters) says what was applied."""

from __future__ import annotations

import argparse

from ..colorspaces import COLORSPACE_CHOICES, parse_colorspace
from ..errors import PipelineError
from ..isp.stage import STAGES

WB_METHODS = {"camera": "camera", "gray": "gray_world", "white": "white_world"}
# where an exposure change goes when the pipeline has none: in linear values, before the tone curve
EXPOSURE_BEFORE = ("gamma", "quantize")
# where bad-pixel correction goes: on the normalised mosaic, before anything reads neighbours
BAD_PIXELS_BEFORE = ("white_balance", "highlights", "denoise", "demosaic")
# where --colorspace puts a colour matrix or a tone curve that the pipeline lacks
COLOR_MATRIX_BEFORE = ("exposure", "gamma", "quantize")
GAMMA_BEFORE = ("quantize",)


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


def exposure_stops(text: str):
    """``auto`` or a number of stops between -16 and 16."""
    if text == "auto":
        return text
    try:
        stops = float(text)
    except ValueError:
        stops = float("nan")
    if not abs(stops) <= 16:
        raise argparse.ArgumentTypeError(f"expected auto or a number of stops between -16 and 16, got {text!r}")
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
    p.add_argument("--exposure", type=exposure_stops, default=None, metavar="EV|auto",
                   help="exposure change in stops, on linear values before the tone curve; auto: the 99th "
                        "percentile of the brightest channel to white (dcraw's auto-bright), the stops applied "
                        "recorded in the sidecar")
    p.add_argument("--bits", type=int, choices=(8, 16), default=None,
                   help="levels of the quantised output (16: PNG and TIFF only)")
    p.add_argument("--colorspace", choices=COLORSPACE_CHOICES, default=None, metavar="SPACE",
                   help="output colour space: srgb, display-p3, adobe (Adobe RGB 1998), prophoto, xyz (CIE XYZ, "
                        "D65), camera (camera RGB), each with its own transfer curve, or linear-SPACE for linear "
                        "values; the outputs carry its ICC profile. None: the pipeline's own")
    p.add_argument("--bad-pixels", default=None, metavar="FILE",
                   help="correct the photosites of a dcraw/LibRaw bad-pixel list (lines 'col row unixtime', "
                        "rawpy's bad_pixels_path) from their same-colour neighbours")
    p.add_argument("--detect-bad-pixels", action="store_true",
                   help="find hot and dead photosites in each frame itself and correct them")
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
    if args.exposure == "auto":
        pipeline = pipeline.with_stage({"stage": "exposure", "method": "auto", "stops": 0.0}, before=EXPOSURE_BEFORE)
    elif args.exposure is not None:
        pipeline = pipeline.with_stage({"stage": "exposure", "method": "manual", "stops": args.exposure},
                                       before=EXPOSURE_BEFORE)
    if args.bad_pixels is not None:
        from ..isp.bad_pixels import read_bad_pixels
        try:        # once before any file, so a bad list is one error rather than one per file
            read_bad_pixels(args.bad_pixels)
        except (OSError, ValueError) as exc:
            raise PipelineError(f"--bad-pixels: {exc}") from None
    if args.bad_pixels is not None or args.detect_bad_pixels:
        pipeline = pipeline.with_stage({"stage": "bad_pixels", "path": args.bad_pixels,
                                        "detect": "on" if args.detect_bad_pixels else "off"}, before=BAD_PIXELS_BEFORE)
    if args.bits is not None:
        pipeline = pipeline.with_params("quantize", bits=args.bits)
    if args.colorspace is not None:
        pipeline = with_colorspace(pipeline, args.colorspace)
    return pipeline


def with_colorspace(pipeline, choice: str):
    """``pipeline`` writing the colour space ``choice`` (``rawcv.colorspaces.COLORSPACE_CHOICES``):
    its ``color_matrix`` stage converts to the space's primaries and its ``gamma`` stage encodes
    with the space's curve (linear for ``linear-`` spaces). A pipeline without a colour matrix gets
    one before its exposure and tone stages; one without a tone curve gets one (before ``quantize``)
    unless the space is linear, which then needs none."""
    space, curve = parse_colorspace(choice)
    pipeline = _set_or_add(pipeline, "color_matrix", {"space": space.name}, COLOR_MATRIX_BEFORE)
    if curve != "linear" or any(s.name == "gamma" for s in pipeline.stages):
        pipeline = _set_or_add(pipeline, "gamma", {"curve": curve}, GAMMA_BEFORE)
    return pipeline


def _set_or_add(pipeline, stage: str, values: dict, before: tuple):
    # only the values given change where the stage is there (its other parameters stay the pipeline's)
    if any(s.name == stage for s in pipeline.stages):
        return pipeline.with_params(stage, **values)
    return pipeline.with_stage({"stage": stage, **values}, before=before)
