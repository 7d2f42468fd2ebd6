"""Restoring RAW captures with a trained generator: tiled inference on the packed mosaic, then
the ISP's own display (or linear) stages after demosaic (what ``rawcv predict restore`` runs)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ...errors import OutputExistsError, RawcvError
from ...options import VARIANCE_SCALE
from ..engine import inference, load_trained
from .generator import apply_gains, bilinear_base, generator_input, generator_options
from .task import check_restore_checkpoint
from .tiling import tiled_apply


def load_restorer(weights, device="auto"):
    """``(generator, ckpt, device)`` of a restoration checkpoint (file or run folder), in eval mode."""
    return load_trained(weights, device, check=check_restore_checkpoint)


def restore_packed(model, packed, variance, gains, *, variance_scale: float = VARIANCE_SCALE, tile: int = 128,
                   overlap: int = 16, residual: bool = False, self_ensemble: bool = False,
                   device="cpu") -> np.ndarray:
    """Run the generator on one packed image (``4 x h x w`` arrays); returns the white-balanced
    linear camera RGB ``2h x 2w x 3`` (float32). ``tile`` / ``overlap`` are in packed pixels;
    ``residual``: the generator's output is added to the bilinear demosaic (of the whole image);
    ``self_ensemble``: the mean over the 8 Bayer-preserving flips and transposes
    (:func:`rawcv.torch.augment.bayer_self_ensemble`), 8x the time."""
    from ...torch.augment import bayer_self_ensemble

    dev = torch.device(device)
    p = torch.as_tensor(np.asarray(packed, np.float32))[None].to(dev)
    v = torch.as_tensor(np.asarray(variance, np.float32))[None].to(dev)
    g = torch.as_tensor(np.asarray(gains, np.float32).reshape(1, 3)).to(dev)
    align = 2 ** int(getattr(model, "depth", 0))

    def camera_rgb(p, v):
        y = tiled_apply(model, generator_input(p, v, variance_scale), tile=tile, overlap=overlap, align=align,
                        scale=2).float()
        return y + bilinear_base(p) if residual else y

    with inference(dev):
        y = bayer_self_ensemble(camera_rgb, p, v) if self_ensemble else camera_rgb(p, v)
    y = apply_gains(y, g)
    return np.ascontiguousarray(y[0].permute(1, 2, 0).cpu().numpy(), dtype=np.float32)


def noise_for(raw, noise=None):
    """``(lambda_shot, lambda_read, how)``: from ``noise`` (a fixed spec), the file's NoiseProfile,
    or estimated from the frame (:func:`rawcv.synth.estimate`)."""
    from ...data.restore import noise_from_meta
    from ...synth import NoiseParams, estimate, parse_noise

    if noise is not None and str(noise).lower() != "auto":
        try:
            p = parse_noise(noise)
        except ValueError as exc:
            raise RawcvError(f"bad --noise {noise!r}: {exc}") from None
        if not isinstance(p, NoiseParams):
            raise RawcvError(f"--noise {noise!r} is a range; prediction needs one level (e.g. high or 0.012)")
        return p.lambda_shot, p.lambda_read, "given"
    found = noise_from_meta(raw.meta)
    if found is not None:
        return found[0], found[1], "NoiseProfile"
    try:
        est = estimate(raw)
    except ValueError as exc:
        raise RawcvError(f"{raw.path or '<memory>'}: no NoiseProfile and the noise cannot be estimated ({exc}); "
                         "give --noise") from None
    if not (np.isfinite(est.lambda_shot) and np.isfinite(est.lambda_read)):
        raise RawcvError(f"{raw.path or '<memory>'}: no NoiseProfile and the noise estimate failed; give --noise")
    return float(est.lambda_shot), float(est.lambda_read), "estimated"


def restore_raw(model, ckpt, raw, *, noise=None, tile: int = 256, overlap: int = 32, self_ensemble: bool = False,
                device="cpu") -> tuple:
    """Restore a RAW capture: ``(white-balanced linear camera RGB H x W x 3, info)``.

    ``tile`` / ``overlap`` are in sensor pixels; ``self_ensemble``: see :func:`restore_packed`.
    Non-RGGB files are cropped to an RGGB phase for the network and the missing border row/column
    filled by repeating the edge.
    """
    from ...data.restore import packed_variance, restore_input
    from ...isp import normalize_gains

    packed, (dy, dx), (h, w) = restore_input(raw)
    ls, lr, how = noise_for(raw, noise)
    gains = np.asarray(normalize_gains(raw.meta.as_shot_wb), dtype=np.float32)
    rgb = restore_packed(model, packed, packed_variance(packed, ls, lr), gains, **generator_options(ckpt),
                         self_ensemble=self_ensemble, tile=max(int(tile) // 2, 8),
                         overlap=max(int(overlap) // 2, 0), device=device)
    if rgb.shape[:2] != (h, w):
        ph, pw = rgb.shape[0], rgb.shape[1]
        rgb = np.pad(rgb, ((dy, h - dy - ph), (dx, w - dx - pw), (0, 0)), mode="edge")
    return rgb, {"lambda_shot": ls, "lambda_read": lr, "noise_source": how, "gains": gains.tolist()}


def output_stages(pipeline="default"):
    """The stages of ``pipeline`` after its demosaic stage, without denoising: the display path
    (``default``: vignetting, colour matrix, sRGB curve, 8-bit) or the linear one (``linear``:
    the colour matrix to linear sRGB) that the restored image goes through."""
    from ...data import resolve_pipeline

    pipe = resolve_pipeline(pipeline)
    names = [s.name for s in pipe.stages]
    if "demosaic" not in names:
        raise RawcvError(f"pipeline {pipe.name!r} has no demosaic stage: cannot tell where the restored "
                         "image joins it")
    return [s for s in pipe.stages[names.index("demosaic") + 1:] if s.name != "denoise"]


def camera_to_output(rgb, meta, pipeline="default", *, quantize: bool = True) -> np.ndarray:
    """Run white-balanced linear camera RGB through :func:`output_stages` (the ISP's own stages).

    ``quantize=False`` stops before a ``quantize`` stage (float display values for metrics).
    """
    from ...isp.frame import RGB, Frame

    frame = Frame(data=np.ascontiguousarray(rgb, dtype=np.float32), kind=RGB, meta=meta)
    for stage in output_stages(pipeline):
        if stage.name == "quantize" and not quantize:
            break
        frame = stage.apply(frame)
    return frame.data


def _output_path(path: Path, output, linear: bool, multiple: bool) -> Path:
    if output is None:
        raise RawcvError("give -o/--out (a file, or a folder for several inputs)")
    o = Path(output)
    if multiple or o.is_dir() or str(output).endswith(("/", "\\")):
        return o / (path.stem + (".tiff" if linear else ".png"))
    return o


def predict_restore_files(weights, files, output, *, linear: bool = False, pipeline: Optional[str] = None,
                          noise=None, tile: int = 256, overlap: int = 32, self_ensemble: bool = False,
                          overwrite: bool = False, device="auto"):
    """Restore RAW files and write them (display PNG/TIFF/JPEG through ``pipeline``, default
    ``default``; or with ``linear`` float32 TIFF/NPY through the ``linear`` pipeline's stages:
    linear sRGB). Yields ``(input path, output path or RawcvError, info)`` per file."""
    from ...io import read
    from ...io.writers import write_image
    from ..inputs import collect_files

    model, ckpt, dev = load_restorer(weights, device)
    paths = collect_files(files)
    pipeline = pipeline or ("linear" if linear else "default")
    for path in paths:
        try:
            target = _output_path(Path(path), output, linear, len(paths) > 1)
            if linear and target.suffix.lower() not in (".tif", ".tiff", ".npy"):
                raise RawcvError(f"{target}: --linear writes float32 .tiff or .npy")
            if target.exists() and not overwrite:
                raise OutputExistsError(f"{target}: exists (use --overwrite to replace it)")
            raw = read(path)
            t0 = time.perf_counter()
            rgb, info = restore_raw(model, ckpt, raw, noise=noise, tile=tile, overlap=overlap,
                                    self_ensemble=self_ensemble, device=dev)
            image = camera_to_output(rgb, raw.meta, pipeline)
            if linear:
                image = np.asarray(image, dtype=np.float32)
            elif image.dtype not in (np.uint8, np.uint16) and target.suffix.lower() in (".png", ".jpg", ".jpeg"):
                raise RawcvError(f"pipeline {pipeline!r} does not quantise; write .tiff/.npy or use --linear")
            target.parent.mkdir(parents=True, exist_ok=True)
            write_image(target, image, overwrite=overwrite)
            info["seconds"] = round(time.perf_counter() - t0, 3)
            yield str(path), str(target), info
        except RawcvError as exc:
            yield str(path), exc, {}
        except (RuntimeError, ValueError) as exc:
            yield str(path), RawcvError(f"{path}: cannot restore ({str(exc).splitlines()[0]})"), {}


__all__ = ["load_restorer", "restore_packed", "noise_for", "restore_raw", "output_stages", "camera_to_output",
           "predict_restore_files"]
