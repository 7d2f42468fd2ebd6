"""The `rawcv` CLI through subprocess: info, process, stages, and every kind of bad input."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import rawcv

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "raw-samples"


def run_cli(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def dng_folder(tmp_path_factory):
    """Two small DNGs written by rawcv (RGGB and GBRG) with known metadata."""
    d = tmp_path_factory.mktemp("dngs")
    rng = np.random.default_rng(3)
    for name, cfa in (("a", "RGGB"), ("b", "GBRG")):
        m = rng.integers(256, 4000, (48, 64)).astype(np.uint16)
        rawcv.write_dng(d / f"{name}.dng", m, cfa=cfa, black=256, white=4095, as_shot_wb=(2.0, 1.0, 1.5),
                        color_matrix=np.eye(3))
    return d


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_info_json_fields(dng_folder):
    code, out, err = run_cli("info", "--json", dng_folder / "a.dng", dng_folder / "b.dng")
    assert code == 0, err
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["cfa"] for r in rows] == ["RGGB", "GBRG"]
    for r in rows:
        assert r["black_level"] == [256.0] * 4 and r["white_level"] == 4095.0
        assert r["as_shot_wb"] == pytest.approx([2.0, 1.0, 1.5], abs=1e-6)
        assert (r["width"], r["height"]) == (64, 48) and r["linear"] is False
        assert set(r) >= {"path", "make", "model", "iso"}


def test_info_table_mentions_layout(dng_folder):
    code, out, _ = run_cli("info", dng_folder / "b.dng")
    assert code == 0 and "Bayer GBRG" in out and "256 256 256 256" in out


def test_process_writes_png_and_sidecar_equal_to_library(dng_folder, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = run_cli("process", dng_folder, "-o", out, "--quiet")
    assert code == 0, err
    assert "processed 2 of 2" in stdout
    for name in ("a", "b"):   # b is written through the output buffer a left behind
        img = cv2.imread(str(out / f"{name}.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
        expected = rawcv.load_pipeline("default")(rawcv.read(dng_folder / f"{name}.dng"))
        assert np.array_equal(img, expected)
    side = json.loads((out / "a.png.json").read_text())
    assert side["source"].endswith("a.dng")
    assert side["metadata"]["cfa"] == "RGGB"
    wb = [s for s in side["pipeline"]["stages"] if s["stage"] == "white_balance"][0]
    assert wb["gains"] == pytest.approx([2.0, 1.0, 1.5], abs=1e-6)
    assert side["output"]["dtype"] == "uint8"


def test_process_demosaic_option_replaces_the_pipelines_method(dng_folder, tmp_path):
    out = tmp_path / "out"
    code, _, err = run_cli("process", dng_folder / "a.dng", "-o", out, "--demosaic", "gbtf", "--quiet")
    assert code == 0, err
    img = cv2.imread(str(out / "a.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    raw = rawcv.read(dng_folder / "a.dng")
    assert np.array_equal(img, rawcv.load_pipeline("default").with_params("demosaic", method="gbtf")(raw))
    assert not np.array_equal(img, rawcv.load_pipeline("default")(raw))
    side = json.loads((out / "a.png.json").read_text())
    assert [s["method"] for s in side["pipeline"]["stages"] if s["stage"] == "demosaic"] == ["gbtf"]
    # a pipeline without a demosaic stage cannot take the option: one line, nothing written
    yaml_path = tmp_path / "mosaic.yaml"
    yaml_path.write_text("stages: [black_level, white_balance]\n")
    code, _, err = run_cli("process", dng_folder / "a.dng", "-o", tmp_path / "none", "--pipeline", yaml_path,
                           "--demosaic", "malvar", "--quiet")
    assert code != 0 and err.count("\n") == 1 and "has no 'demosaic' stage" in err
    assert not (tmp_path / "none").exists()


def test_process_highlights_option_replaces_the_pipelines_method(dng_folder, tmp_path):
    out = tmp_path / "out"
    code, _, err = run_cli("process", dng_folder / "a.dng", "-o", out, "--highlights", "reconstruct", "--quiet")
    assert code == 0, err
    img = cv2.imread(str(out / "a.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    raw = rawcv.read(dng_folder / "a.dng")
    assert np.array_equal(img, rawcv.load_pipeline("default").with_params("highlights", method="reconstruct")(raw))
    # (with this file's identity colour matrix, every value past white displays as clip's does)
    side = json.loads((out / "a.png.json").read_text())
    assert [s["method"] for s in side["pipeline"]["stages"] if s["stage"] == "highlights"] == ["reconstruct"]
    # a method that does not exist: one error line naming the choices (the usage is in --help)
    code, _, err = run_cli("process", dng_folder / "a.dng", "-o", tmp_path / "bogus", "--highlights", "bogus")
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err and sum("error" in line for line in lines) == 1
    assert lines == ["rawcv process: error: argument --highlights: invalid choice: 'bogus' "
                     "(choose from 'clip', 'reconstruct') (see rawcv process --help)"]
    # a pipeline without a highlights stage cannot take the option: one line, nothing written
    yaml_path = tmp_path / "no_highlights.yaml"
    yaml_path.write_text("stages: [black_level, white_balance, demosaic]\n")
    code, _, err = run_cli("process", dng_folder / "a.dng", "-o", tmp_path / "none", "--pipeline", yaml_path,
                           "--highlights", "reconstruct", "--quiet")
    assert code != 0 and err.count("\n") == 1 and "has no 'highlights' stage" in err and "Traceback" not in err
    assert not (tmp_path / "bogus").exists() and not (tmp_path / "none").exists()


def test_process_linear_npy_and_gray_world_gains_recorded(dng_folder, tmp_path):
    pipe = tmp_path / "gw.yaml"
    pipe.write_text("stages:\n- stage: black_level\n- {stage: white_balance, method: gray_world}\n"
                    "- stage: demosaic\n")
    code, _, err = run_cli("process", dng_folder / "a.dng", "-o", tmp_path / "o", "--pipeline", pipe,
                           "--format", "npy", "--quiet")
    assert code == 0, err
    arr = np.load(tmp_path / "o" / "a.npy")
    assert arr.dtype == np.float32 and arr.shape == (48, 64, 3)
    side = json.loads((tmp_path / "o" / "a.npy.json").read_text())
    gains = side["pipeline"]["stages"][1]["gains"]
    raw = rawcv.read(dng_folder / "a.dng")
    mosaic = rawcv.isp.subtract_black_level(raw.data, black=raw.meta.black_level, white=raw.meta.white_level)
    assert gains == pytest.approx(rawcv.isp.gains_gray_world(mosaic, cfa="RGGB").tolist(), rel=1e-6)


def test_no_overwrite_without_flag_and_inputs_untouched(dng_folder, tmp_path):
    before = {p.name: sha(p) for p in dng_folder.iterdir()}
    out = tmp_path / "o"
    assert run_cli("process", dng_folder, "-o", out, "--quiet")[0] == 0
    stamp = sha(out / "a.png")
    (out / "a.png").write_bytes(b"keep me")
    code, _, err = run_cli("process", dng_folder, "-o", out, "--quiet")
    assert code == 1 and "exists" in err and "--overwrite" in err
    assert (out / "a.png").read_bytes() == b"keep me"
    code, _, err = run_cli("process", dng_folder, "-o", out, "--quiet", "--overwrite")
    assert code == 0, err
    assert sha(out / "a.png") == stamp
    assert {p.name: sha(p) for p in dng_folder.iterdir()} == before


def test_bad_inputs_one_line_each_and_batch_continues(dng_folder, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    cv2.imwrite(str(bad / "photo.jpg"), np.zeros((8, 8, 3), np.uint8))
    (bad / "notes.dng").write_text("this is not a raw file\n")
    (bad / "cut.dng").write_bytes((dng_folder / "a.dng").read_bytes()[:3000])
    missing = bad / "missing.dng"
    files = [dng_folder / "a.dng", bad / "photo.jpg", bad / "notes.dng", bad / "cut.dng", missing]
    out = tmp_path / "o"
    code, stdout, err = run_cli("process", *files, "-o", out, "--quiet")
    assert code == 1
    assert "processed 1 of 5" in stdout
    lines = [l for l in err.splitlines() if l.startswith("rawcv process: error:")]
    assert len(lines) == 4
    for f in files[1:]:
        assert sum(str(f) in l for l in lines) == 1, (f, lines)
    assert any("no such file" in l for l in lines)
    assert (out / "a.png").exists()
    # nothing half-written: only the good output and its sidecar
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a.png.json"]


def test_malformed_pipeline_yaml(dng_folder, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  - stage: black_level\n  - {stage: demosaic, method: [\n")
    code, _, err = run_cli("process", dng_folder, "-o", tmp_path / "o", "--pipeline", bad)
    assert code == 1 and str(bad) in err and "malformed YAML" in err
    assert len(err.strip().splitlines()) == 1
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("stages:\n- stage: black_level\n- stage: sharpen\n")
    code, _, err = run_cli("process", dng_folder, "-o", tmp_path / "o", "--pipeline", unknown)
    assert code == 1 and "unknown stage 'sharpen'" in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_info_bad_file_nonzero_and_others_listed(dng_folder, tmp_path):
    txt = tmp_path / "x.txt"
    txt.write_text("hello")
    code, out, err = run_cli("info", "--json", txt, dng_folder / "a.dng")
    assert code == 1
    assert str(txt) in err and len(err.strip().splitlines()) == 1
    assert json.loads(out.strip())["cfa"] == "RGGB"


def test_stages_lists_every_registered_stage_with_defaults():
    code, out, _ = run_cli("stages", "--json")
    assert code == 0
    listing = json.loads(out)
    from rawcv.pipeline import STAGES
    assert list(listing) == list(STAGES)
    wb = {p["name"]: p for p in listing["white_balance"]["params"]}
    assert wb["percentile"]["default"] == 99.5 and "gray_world" in wb["method"]["choices"]


def test_help_everywhere_and_no_torch_on_import():
    for cmd in ([], ["info"], ["process"], ["stages"]):
        code, out, _ = run_cli(*cmd, "--help")
        assert code == 0 and "usage: rawcv" in out
    probe = "import sys, rawcv, rawcv.cli; rawcv.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.skipif(not SAMPLES.exists(), reason="../shared/raw-samples not found (real camera samples are not part of the repo)")
def test_process_real_samples(tmp_path):
    code, stdout, err = run_cli("process", SAMPLES, "-o", tmp_path, "--quiet", "--jobs", "2")
    assert code == 0, err
    assert "processed 3 of 3" in stdout
    canon = cv2.imread(str(tmp_path / "canon_eos_6d_linear.png"))
    assert canon.shape == (816, 1224, 3)
    rose = cv2.imread(str(tmp_path / "nikon_d3200_rose.png"))[..., ::-1].astype(float)
    # a red rose: the red channel dominates the image's centre
    centre = rose[150:350, 200:500]
    assert centre[..., 0].mean() > 1.5 * centre[..., 1].mean()


def test_folders_keep_their_subtree_and_direct_name_clashes_are_reported(dng_folder, tmp_path):
    tree = tmp_path / "shots"
    for sub in ("day", "night"):
        (tree / sub).mkdir(parents=True)
        (tree / sub / "x.dng").write_bytes((dng_folder / "a.dng").read_bytes())
    code, _, err = run_cli("process", tree, "-o", tmp_path / "o", "--quiet")
    assert code == 0, err
    assert (tmp_path / "o" / "day" / "x.png").exists() and (tmp_path / "o" / "night" / "x.png").exists()
    code, stdout, err = run_cli("process", tree / "day" / "x.dng", tree / "night" / "x.dng", "-o", tmp_path / "p",
                                "--quiet")
    assert code == 1 and "processed 1 of 2" in stdout
    assert "same output" in err and str(tree / "night" / "x.dng") in err


def test_plain_tiff_is_not_taken_for_raw(tmp_path):
    import tifffile
    tif = tmp_path / "grey.tif"
    tifffile.imwrite(tif, np.full((64, 64), 1000, np.uint16))
    with pytest.raises(rawcv.RawReadError, match="plain TIFF"):
        rawcv.read(tif)


def test_outputs_get_umask_permissions_not_owner_only(tmp_path):
    from rawcv.io.writers import write_image
    old = os.umask(0o022)
    try:
        p = write_image(tmp_path / "x.npy", np.zeros((2, 2, 3), np.float32))
    finally:
        os.umask(old)
    assert (p.stat().st_mode & 0o777) == 0o644


@pytest.mark.parametrize("jobs", [1, 2])
def test_batch_output_buffer_reuse_keeps_every_file_its_own_result(tmp_path, jobs):
    """Same-size files share one output buffer per worker; each written file must still be its own
    pipeline result (a buffer handed on too early would leave the next file's pixels in it)."""
    from rawcv.batch import process_files

    rng = np.random.default_rng(5)
    files = []
    for i in range(5):
        m = rng.integers(256, 4000, (40, 52)).astype(np.uint16)
        f = tmp_path / f"f{i}.dng"
        rawcv.write_dng(f, m, cfa="RGGB", black=256, white=4095, as_shot_wb=(2.0, 1.0, 1.5), color_matrix=np.eye(3))
        files.append(f)
    pipeline = rawcv.load_pipeline("core")
    summary = process_files(files, tmp_path / "out", pipeline, fmt="npy", jobs=jobs)
    assert all(r.error is None for r in summary.results)
    outputs = [np.load(tmp_path / "out" / f"f{i}.npy") for i in range(5)]
    for f, got in zip(files, outputs):
        assert np.array_equal(got, pipeline(rawcv.read(f)))
    assert not np.array_equal(outputs[0], outputs[1])


# ------------------------------------------------------------------------------------------------
# TIFF keeps the pipeline's own sample type, and the sidecar says what was written
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pipeline, dtype, bits, sampleformat", [
    ("default", "uint8", 8, 1), ("core", "uint8", 8, 1),          # they quantise to 8 bits
    ("linear", "float32", 32, 3), ("camera", "float32", 32, 3),   # float: an integer TIFF would clip
    ("q16", "uint16", 16, 1),                                     # a pipeline quantising to 16 bits
])
def test_tiff_sample_type_follows_the_pipeline(pipeline, dtype, bits, sampleformat, dng_folder, tmp_path):
    import tifffile

    from rawcv.batch import process_files

    if pipeline == "q16":
        spec = tmp_path / "q16.yaml"
        spec.write_text("stages:\n- stage: black_level\n- stage: demosaic\n- stage: gamma\n"
                        "- {stage: quantize, bits: 16}\n")
        pipe = rawcv.load_pipeline(str(spec))
    else:
        pipe = rawcv.load_pipeline(pipeline)
    summary = process_files([dng_folder / "a.dng"], tmp_path / "o", pipe, fmt="tiff")
    assert not summary.failures, summary.failures
    out = tmp_path / "o" / "a.tiff"
    with tifffile.TiffFile(out) as tif:
        page = tif.pages[0]
        assert (page.bitspersample, int(page.sampleformat)) == (bits, sampleformat)
        written = page.asarray()
    assert written.dtype == np.dtype(dtype)
    assert np.array_equal(written, pipe(rawcv.read(dng_folder / "a.dng")))
    side = json.loads((tmp_path / "o" / "a.tiff.json").read_text())
    assert side["output"]["dtype"] == dtype and side["output"]["shape"] == list(written.shape)


# ------------------------------------------------------------------------------------------------
# headerless dumps: refused without their layout, read through read_bayer with it
# ------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not SAMPLES.exists(), reason="../shared/raw-samples not found (real camera samples are not part of the repo)")
def test_dump_needs_bayer_and_then_matches_the_dng(tmp_path):
    dng = SAMPLES / "nikon_d3200_rose.dng"
    dump = tmp_path / "in" / "rose.raw"
    dump.parent.mkdir()
    rawcv.read(dng).data.astype("<u2").tofile(dump)     # what read_bayer expects: LE uint16, row by row

    code, stdout, err = run_cli("process", dump, "-o", tmp_path / "refused", "--quiet")
    assert code == 1 and "processed 0 of 1" in stdout
    lines = err.strip().splitlines()
    assert lines[0] == "1 failed:" and len(lines) == 2
    assert str(dump) in lines[1] and "no RAW file header" in lines[1] and "--bayer" in lines[1]
    assert not any((tmp_path / "refused").iterdir())

    layout = ("--bayer", "768x512:RGGB:14", "--black", "600", "--white", "15520")
    code, _, err = run_cli("process", dump.parent, "-o", tmp_path / "o", "--pipeline", "camera", "--quiet", *layout)
    assert code == 0, err
    code, _, err = run_cli("process", dng, "-o", tmp_path / "ref", "--pipeline", "camera", "--quiet")
    assert code == 0, err
    # the camera pipeline uses no white balance or colour matrix: the dump's result is the DNG's
    got, ref = np.load(tmp_path / "o" / "rose.npy"), np.load(tmp_path / "ref" / "nikon_d3200_rose.npy")
    assert got.shape == (512, 768, 3) and np.array_equal(got, ref)

    code, out, err = run_cli("info", "--json", dump, *layout)
    assert code == 0, err
    row = json.loads(out)
    assert (row["width"], row["height"], row["cfa"]) == (768, 512, "RGGB")
    assert row["black_level"] == [600.0] * 4 and row["white_level"] == 15520.0


def test_bad_dump_options_are_one_line(tmp_path):
    dump = tmp_path / "d.raw"
    np.zeros((8, 8), "<u2").tofile(dump)
    for args, needle in ((("--bayer", "8x8:RGBX:12"), "unsupported CFA"), (("--bayer", "8by8"), "WIDTHxHEIGHT"),
                         (("--bayer", "8x8:RGGB:17"), "BITS"), (("--black", "64"), "need --bayer"),
                         (("--bayer", "8x8:RGGB:12", "--black", "1,2"), "--black"),
                         (("--bayer", "8x8:RGGB:12", "--white", "10", "--black", "20"), "--white")):
        for cmd in (("info",), ("process", "-o", tmp_path / "o")):
            code, _, err = run_cli(*cmd, dump, *args)
            assert code == 1 and len(err.strip().splitlines()) == 1 and needle in err, (args, err)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------------
# one line per bad file: the decoders' own chatter stays off the terminal
# ------------------------------------------------------------------------------------------------

def test_truncated_and_garbage_files_give_one_line_each(dng_folder, tmp_path):
    full = tmp_path / "full.dng"
    rawcv.write_dng(full, np.random.default_rng(4).integers(0, 4000, (64, 96)).astype(np.uint16), cfa="RGGB",
                    black=64, white=4095, color_matrix=np.eye(3), noise_profile=[1e-4, 2e-6] * 3, iso=100)
    data = full.read_bytes()
    in_tags, in_pixels = tmp_path / "in_tags.dng", tmp_path / "in_pixels.dng"
    in_tags.write_bytes(data[:400])        # tifffile logs "<TiffTag.fromfile> raised ..." on this one
    in_pixels.write_bytes(data[:3000])     # LibRaw prints "...: Unexpected end of file" on both
    garbage = tmp_path / "garbage.nef"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 100_000).astype(np.uint8).tobytes())
    bad = [in_tags, in_pixels, garbage]

    code, stdout, err = run_cli("process", dng_folder / "a.dng", *bad, "-o", tmp_path / "o", "--quiet")
    assert code == 1 and "processed 1 of 4" in stdout
    lines = err.splitlines()
    assert lines[0] == "3 failed:" and len(lines) == 4, err
    for f, line in zip(bad, lines[1:]):
        assert line.startswith(f"rawcv process: error: {f}: "), line
    assert "Unexpected end of file" in lines[1] and "Unexpected end of file" in lines[2]

    code, out, err = run_cli("info", "--json", *bad, dng_folder / "a.dng")
    assert code == 1 and json.loads(out)["cfa"] == "RGGB"
    lines = err.splitlines()
    assert len(lines) == 3 and all(l.startswith(f"rawcv info: error: {f}: ") for f, l in zip(bad, lines)), err
    # three threads reading at once: each file still gets its own line, and only one
    code, _, err = run_cli("process", *bad, "-o", tmp_path / "p", "--quiet", "--jobs", "3")
    assert code == 1 and len(err.splitlines()) == 4, err


# ------------------------------------------------------------------------------------------------
# -o that cannot be an output folder
# ------------------------------------------------------------------------------------------------

def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("case", ["existing file", "under a file", "cannot be created"])
def test_bad_output_folder_is_one_line_and_creates_nothing(case, dng_folder, tmp_path):
    blocker = tmp_path / "taken.png"
    blocker.write_bytes(b"keep me")
    out = {"existing file": blocker,
           "under a file": blocker / "sub" / "dir",
           "cannot be created": tmp_path / "new" / ("x" * 300)}[case]   # a name longer than NAME_MAX
    before = _tree(tmp_path)
    code, stdout, err = run_cli("process", dng_folder / "a.dng", "-o", out, "--quiet")
    assert code == 1 and stdout == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"rawcv process: error: {out}: "), err
    assert "Traceback" not in err
    assert _tree(tmp_path) == before and blocker.read_bytes() == b"keep me"


# ------------------------------------------------------------------------------------------------
# --help: every option has a help text and no hand-written default
# ------------------------------------------------------------------------------------------------

def test_every_isp_option_has_help_and_shows_its_default():
    from rawcv.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("info", "process", "stages"):
        for action in sub.choices[name]._actions:
            assert action.help, (name, action.dest)
            assert "default" not in action.help.lower() or action.dest == "pipeline", (name, action.help)
    code, out, _ = run_cli("process", "--help")
    text = " ".join(out.split())
    assert code == 0
    for shown in ("files processed in parallel (default: 1)", "or a YAML file (default: default)",
                  "(identical results) (default: auto)"):
        assert shown in text, shown
