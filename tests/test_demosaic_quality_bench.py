"""The demosaic-quality benchmark's measure and its BENCHMARKS.md section (bench/demosaic_quality.py),
on small synthetic images: no peers, no skimage photographs, a few seconds."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))      # the repository root, for bench/

from bench import demosaic_quality as dq  # noqa: E402
from bench import isp_bench  # noqa: E402


def smooth_image(h=64, w=96):
    """Slowly varying, correlated colour (what natural images look like at this scale), in [0, 1]."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    lum = 0.5 + 0.3 * np.sin(2 * np.pi * x / 23.0) * np.cos(2 * np.pi * y / 31.0)
    tint = np.stack([1.0 + 0.1 * x / w, np.ones_like(x), 0.9 - 0.1 * y / h], axis=-1)
    return np.clip(lum[..., None] * tint, 0, 1).astype(np.float32)


def step_image(h=48, w=48):
    img = np.zeros((h, w, 3), np.float32)
    img[:, w // 2:] = (0.8, 0.5, 0.2)
    return img


def rawcv_method(name):
    return next(m for m in dq.rawcv_methods() if m.name == f"rawcv {name}")


def test_cpsnr_perfect_is_inf():
    for img in (smooth_image(), step_image()):
        assert dq.cpsnr(img, img) == math.inf
        assert dq.cpsnr(img, img.copy(), border=0) == math.inf


def test_cpsnr_known_error_is_analytic():
    img = smooth_image().astype(np.float64) * 0.5            # in [0, 0.5]: + 0.1 is not clipped
    assert dq.cpsnr(img, img + 0.1) == pytest.approx(20.0, abs=1e-9)      # MSE 0.01
    est = img.copy()
    est[..., 0] += 0.3                                        # one channel of three: MSE 0.03
    assert dq.cpsnr(img, est) == pytest.approx(10 * math.log10(1 / 0.03), abs=1e-9)


def test_cpsnr_clips_and_leaves_out_the_border():
    img = step_image()
    est = img.copy()
    est[:dq.BORDER] = 5.0                                     # wrong only in the border
    est[dq.BORDER:-dq.BORDER, dq.BORDER:-dq.BORDER] -= 2.0     # below 0: clipped to 0 first
    ref_mse = float(np.mean(img[dq.BORDER:-dq.BORDER, dq.BORDER:-dq.BORDER].astype(np.float64) ** 2))
    assert dq.cpsnr(img, est) == pytest.approx(10 * math.log10(1 / ref_mse), abs=1e-9)


def test_malvar_beats_bilinear_on_a_smooth_image():
    img = smooth_image()
    bil = dq.demosaic_cpsnr(rawcv_method("bilinear"), img)
    mal = dq.demosaic_cpsnr(rawcv_method("malvar"), img)
    assert math.isfinite(bil) and mal > bil, (bil, mal)


def test_flat_checks_pass_for_rawcv():
    assert dq.flat_checks(dq.rawcv_methods()) == {m.name: "" for m in dq.rawcv_methods()}


SECTION = f"{dq.START}\n## Demosaic quality\n\nnew table\n{dq.END}"


def test_section_replaces_an_existing_one(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(f"# Benchmarks\n\nbefore\n\n{dq.START}\nold table\n{dq.END}\n\nafter\n")
    dq.write_section(path, SECTION)
    text = path.read_text()
    assert text == f"# Benchmarks\n\nbefore\n\n{SECTION}\n\nafter\n"
    dq.write_section(path, SECTION)                            # idempotent
    assert path.read_text() == text


def test_section_is_appended_to_a_file_without_one(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\nspeed\n")
    dq.write_section(path, SECTION)
    assert path.read_text() == f"# Benchmarks\n\nspeed\n\n{SECTION}\n"
    missing = tmp_path / "new.md"
    dq.write_section(missing, SECTION)
    assert missing.read_text() == SECTION + "\n"


def test_isp_bench_writer_keeps_the_section(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(f"# Benchmarks\n\nold speed report\n\n{SECTION}\n")
    isp_bench.write_report(path, "# Benchmarks\n\nnew speed report")
    assert path.read_text() == f"# Benchmarks\n\nnew speed report\n\n{SECTION}\n"
    isp_bench.write_report(path, "# Benchmarks\n\nnewer")      # kept again, not doubled
    assert path.read_text().count(dq.START) == 1
    plain = tmp_path / "plain.md"
    isp_bench.write_report(plain, "# Benchmarks")              # no section: the report alone
    assert plain.read_text() == "# Benchmarks\n"
