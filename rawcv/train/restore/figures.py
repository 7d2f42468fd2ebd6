"""Side-by-side figures of restored images: labelled grids of 8-bit display images."""

from __future__ import annotations

import numpy as np

SIDE_BY_SIDE_PNG = "restore_side_by_side.png"


def _label_image(img: np.ndarray, text: str) -> np.ndarray:
    import cv2

    header = np.full((22, img.shape[1], 3), 255, np.uint8)
    cv2.putText(header, text[:max(4, img.shape[1] // 8)], (3, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.concatenate([header, img], axis=0)


def side_by_side(rows, path, *, overwrite: bool = True):
    """Write a grid PNG: ``rows`` is a list of lists of ``(label, uint8 H x W x 3)``; returns its path."""
    from ...io.writers import write_image

    lines = []
    for row in rows:
        cells = []
        for label, img in row:
            cells.append(_label_image(np.asarray(img, np.uint8), label))
            cells.append(np.full((cells[-1].shape[0], 4, 3), 255, np.uint8))
        lines.append(np.concatenate(cells[:-1], axis=1))
        lines.append(np.full((4, lines[-1].shape[1], 3), 255, np.uint8))
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines[:-1]]
    return write_image(path, np.concatenate(lines, axis=0), overwrite=overwrite)


def comparison_rows(examples, methods: dict, model_labels) -> list:
    """The rows of the evaluation's side-by-side figure, one per ``(pair, outputs)`` of ``examples``
    (a :class:`~rawcv.data.restore.RestorePair` and its method -> white-balanced camera RGB), in
    display values: the noisy input demosaiced, the better (by mean linear PSNR in ``methods``)
    of each classical filter's mosaic and RGB variants, NLM+VST, every model, the ground truth."""
    from ...baselines import white_balanced_bilinear
    from .predict import camera_to_output

    rows = []
    for pair, outputs in examples:
        def shown(label, rgb):
            return label, camera_to_output(rgb, pair.meta, "default")

        noisy = outputs.get("bilinear")
        cells = [shown("noisy (bilinear)", noisy if noisy is not None else
                       white_balanced_bilinear(pair.mosaic, pair.gains))]
        for base in ("median3", "mean3"):
            variants = [k for k in (f"{base}_mosaic", f"{base}_rgb") if k in methods]
            if variants:
                best = max(variants, key=lambda k: methods[k]["psnr_linear"])
                cells.append(shown(best, outputs[best]))
        if "nlm_vst" in outputs:
            cells.append(shown("nlm_vst", outputs["nlm_vst"]))
        cells += [shown(label, outputs[label]) for label in model_labels]
        cells.append(shown("ground truth", pair.target))
        rows.append(cells)
    return rows


__all__ = ["side_by_side", "comparison_rows", "SIDE_BY_SIDE_PNG"]
