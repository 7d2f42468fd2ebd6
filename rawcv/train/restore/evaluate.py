"""Restoration models and classical baselines scored side by side on the same images (what
``rawcv eval restore`` runs)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional, Sequence

from ...baselines import NLM_DEFAULTS, classical_baselines
from ...errors import RawcvError
from ..engine import progress_bar, resolve_device
from .figures import SIDE_BY_SIDE_PNG, comparison_rows, side_by_side
from .generator import generator_options
from .metrics import image_scores
from .predict import camera_to_output, load_restorer, restore_packed

EVAL_JSON = "eval_restore.json"


def _model_label(ckpt: dict, used: set) -> str:
    """``MODE:RUN`` (the run folder, or the file's stem), made unique among ``used``."""
    p = Path(ckpt["path"])
    base = p.parent.name if p.name in ("best.pt", "last.pt") else p.stem
    label = f"{ckpt['config'].get('mode', 'model')}:{base}"
    k = 2
    while label in used:
        label = f"{ckpt['config'].get('mode', 'model')}:{base}#{k}"
        k += 1
    used.add(label)
    return label


def _test_pairs(data, split: str, synthetic: Optional[int], noise, size: int, seed: int, sources: str) -> tuple:
    """``(dataset, where)``: a dataset's split, or synthetic test pairs made on the fly."""
    from ...data.restore import RestorePairs, SynthRestoreSet

    if data is not None:
        ds = SynthRestoreSet(data, split)
        if len(ds) == 0:
            raise RawcvError(f"{data}: no items in split {split!r}")
        return ds, f"split {split!r} of {data}"
    n = int(synthetic or 32)
    ds = RestorePairs(n, split="test", seed=seed, size=size, noise=noise, sources=sources)
    return ds, f"{n} synthetic {size}x{size} test pairs (seed {seed}, noise {noise}, sources {sources})"


def evaluate_restore(weights: Sequence = (), *, data=None, split: str = "test", synthetic: Optional[int] = None,
                     noise="high", size: int = 256, seed: int = 0, sources: str = "mixed", baselines: bool = True,
                     nlm: bool = True, nlm_params: Optional[dict] = None, tile: int = 256, overlap: int = 32,
                     self_ensemble: bool = False, device="auto", out=None, n_show: int = 4,
                     progress: Optional[bool] = None) -> dict:
    """PSNR / SSIM (linear and sRGB) of restoration models and classical baselines on the same images.

    Parameters
    ----------
    weights : sequence of paths
        Restoration checkpoints (e.g. an L1-only and a GAN run); may be empty (baselines only).
    data : path, optional
        A ``rawcv synth`` dataset (its ``split``); else ``synthetic`` pairs made on the fly
        (:class:`~rawcv.data.restore.RestorePairs`, split ``test``, ``seed``, ``noise``, ``size``).
    self_ensemble : bool, default False
        Also report each model with the 8-fold Bayer-preserving self-ensemble (``LABEL x8``,
        :func:`rawcv.torch.augment.bayer_self_ensemble`) beside its plain output.
    out : path, optional
        Folder of ``eval_restore.json`` and ``restore_side_by_side.png`` (default: the first
        checkpoint's folder).

    Metrics: "linear" compares white-balanced linear camera RGB (the target), "srgb" the display
    values after the ``default`` pipeline's colour matrix and sRGB curve (before 8-bit
    quantisation); both clipped to [0, 1], ``data_range=1`` (skimage.metrics). SSIM is the mean
    over the three channels. ``detail_gain`` / ``detail_energy`` / ``detail_invented``
    (:func:`~rawcv.train.restore.metrics.high_frequency_detail`, on the sRGB values) say how sharp
    the output is against the ground truth, which PSNR and SSIM barely tell apart, and how much of
    its fine texture is not the truth's: 1 / 1 / 0 for the ground truth itself.

    Returns
    -------
    dict with ``methods`` (name -> mean ``psnr_linear``, ``ssim_linear``, ``psnr_srgb``,
    ``ssim_srgb``, ``detail_gain``, ``detail_energy``, ``detail_invented``), ``seconds`` (mean per
    image: ``classical`` for all baselines together, and each model), ``per_image``,
    ``best_classical``, ``n``, ``png``, ``json``.
    """
    from ...io.atomic import write_bytes_atomic

    models, used = [], set()
    dev = resolve_device(device)
    for w in list(weights or []):
        m, ckpt, _ = load_restorer(w, dev)
        label = _model_label(ckpt, used)
        models.append((label, m, ckpt, False))
        if self_ensemble:
            models.append((f"{label} x8", m, ckpt, True))
    model_labels = [label for label, *_ in models]
    ds, where = _test_pairs(data, split, synthetic, noise, size, seed, sources)
    if out is None:
        if not models:
            raise RawcvError("give --out (no checkpoint folder to write the results into)")
        out = Path(models[0][2]["path"]).parent
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    iterator, _ = progress_bar(range(len(ds)), "eval restore", progress=progress)
    per_image, sums, times, examples = [], {}, {}, []
    for i in iterator:
        pair = ds.pair(i)
        outputs = {}
        if baselines:
            t0 = time.perf_counter()
            outputs.update(classical_baselines(pair.mosaic, pair.gains, pair.lambda_shot, pair.lambda_read,
                                               nlm=nlm, nlm_params=nlm_params))
            times["classical"] = times.get("classical", 0.0) + time.perf_counter() - t0
        for label, m, ckpt, ensemble in models:
            t0 = time.perf_counter()
            outputs[label] = restore_packed(m, pair.packed, pair.variance, pair.gains, **generator_options(ckpt),
                                            self_ensemble=ensemble, tile=max(tile // 2, 8),
                                            overlap=max(overlap // 2, 0), device=dev)
            times[label] = times.get(label, 0.0) + time.perf_counter() - t0
        truth_srgb = camera_to_output(pair.target, pair.meta, "default", quantize=False)
        row = {"index": i, "source": pair.source, "lambda_shot": pair.lambda_shot, "lambda_read": pair.lambda_read}
        for name, img in outputs.items():
            row[name] = image_scores(img, pair.target, camera_to_output(img, pair.meta, "default", quantize=False),
                                     truth_srgb)
            acc = sums.setdefault(name, dict.fromkeys(row[name], 0.0))
            for k, v in row[name].items():
                acc[k] += v
        per_image.append(row)
        if len(examples) < n_show:
            examples.append((pair, outputs))
    n = len(ds)
    methods = {name: {k: v / n for k, v in acc.items()} for name, acc in sums.items()}
    classical = [k for k in methods if k not in model_labels and k != "bilinear"]
    best = max(classical, key=lambda k: methods[k]["psnr_linear"]) if classical else None
    png = str(side_by_side(comparison_rows(examples, methods, model_labels), out / SIDE_BY_SIDE_PNG)) \
        if examples else None
    result = {"where": where, "n": n, "weights": [str(ckpt["path"]) for _, _, ckpt, ens in models if not ens],
              "models": model_labels, "methods": methods, "best_classical": best,
              "seconds": {k: v / max(n, 1) for k, v in times.items()}, "per_image": per_image, "png": png,
              "metric_space": {"linear": "white-balanced linear camera RGB, clipped to [0, 1]",
                               "srgb": "default pipeline colour matrix + sRGB curve (float), clipped to [0, 1]"},
              "nlm_params": {**NLM_DEFAULTS, **(nlm_params or {})}, "device": dev.type}
    if best is not None and model_labels:
        result["margin_vs_best_classical_db"] = {label: methods[label]["psnr_linear"] - methods[best]["psnr_linear"]
                                                 for label in model_labels}
    path = out / EVAL_JSON
    result["json"] = str(path)
    write_bytes_atomic(path, (json.dumps(result, indent=1) + "\n").encode(), overwrite=True)
    return result


def format_restore_table(result: dict) -> str:
    """The methods of :func:`evaluate_restore` as a text table (best classical marked)."""
    lines = [f"{'method':<28} {'PSNR lin':>9} {'SSIM lin':>9} {'PSNR sRGB':>10} {'SSIM sRGB':>10} "
             f"{'detail':>7} {'HF energy':>10} {'invented':>9}"]
    for name, m in result["methods"].items():
        mark = "  <- best classical" if name == result.get("best_classical") else ""
        lines.append(f"{name:<28} {m['psnr_linear']:>9.2f} {m['ssim_linear']:>9.4f} {m['psnr_srgb']:>10.2f} "
                     f"{m['ssim_srgb']:>10.4f} {m['detail_gain']:>7.3f} {m['detail_energy']:>10.3f} "
                     f"{m['detail_invented']:>9.3f}{mark}")
    return "\n".join(lines)


__all__ = ["evaluate_restore", "format_restore_table", "EVAL_JSON"]
