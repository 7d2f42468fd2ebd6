"""The ISP subcommands: ``info``, ``process``, ``stages``."""

from __future__ import annotations

import json
import sys

from ..io.writers import FORMATS
from ..pipeline.core import BACKENDS, OPCODES
from ._common import Progress, add_dump_options, dump_reader, fail_line
from .overrides import add_overrides, apply_overrides


def register_info(sub):
    p = sub.add_parser("info", help="show the metadata of RAW files",
                       description="Show the metadata of RAW/DNG files: CFA, levels, white balance, colour "
                                   "matrix. Headerless sensor dumps need --bayer.")
    p.add_argument("files", nargs="+", metavar="FILE", help="RAW/DNG files, or headerless dumps with --bayer")
    p.add_argument("--json", action="store_true", help="print one JSON object per file (one per line)")
    add_dump_options(p)
    p.set_defaults(func=run_info)


def _info_dict(raw) -> dict:
    m = raw.meta
    return {
        "path": raw.path, "make": m.make, "model": m.model, "width": raw.width, "height": raw.height,
        "cfa": m.cfa, "black_level": list(m.black_level), "white_level": m.white_level,
        "as_shot_wb": list(m.as_shot_wb), "iso": m.iso, "exposure_time": m.exposure_time,
        "aperture": m.aperture, "orientation": m.orientation, "linear": m.linear,
        "xyz_to_cam": None if m.xyz_to_cam is None else [list(r) for r in m.xyz_to_cam],
        "noise_profile": None if m.noise_profile is None else list(m.noise_profile),
        "calibration_illuminants": [illuminant for illuminant, _ in m.color_matrices],
        "opcodes": {str(n): _opcode_names(payload) for n, payload in m.opcode_lists},
    }


def _opcode_names(payload: bytes) -> list:
    """The names of a DNG opcode list's entries (``*`` marks the optional ones), or why it is malformed."""
    from ..dng_opcodes import OpcodeError, decode_opcode_list

    try:
        return [entry.name + ("*" if entry.optional else "") for entry in decode_opcode_list(payload)]
    except OpcodeError as exc:
        return [f"malformed: {exc}"]


def run_info(args) -> int:
    from ..errors import RawcvError
    from ..io import read_metadata

    reader = dump_reader(args) or read_metadata
    failures = 0
    for i, path in enumerate(args.files):
        try:
            info = _info_dict(reader(path))
        except RawcvError as exc:
            fail_line("info", exc)
            failures += 1
            continue
        if args.json:
            print(json.dumps(info))
            continue
        if i:
            print()
        rows = [
            ("file", info["path"]), ("camera", f"{info['make']} {info['model']}".strip() or "-"),
            ("size", f"{info['width']} x {info['height']}"),
            ("layout", "linear (demosaiced) RGB" if info["linear"] else f"Bayer {info['cfa']}"),
            ("black level", " ".join(f"{v:g}" for v in info["black_level"])),
            ("white level", f"{info['white_level']:g}"),
            ("as-shot WB", " ".join(f"{v:.4f}" for v in info["as_shot_wb"]) + "  (R G B, G = 1)"),
            ("ISO", "-" if info["iso"] is None else f"{info['iso']:g}"),
            ("exposure", "-" if info["exposure_time"] is None else f"{info['exposure_time']:.6g} s"),
            ("aperture", "-" if info["aperture"] is None else f"f/{info['aperture']:.3g}"),
            ("orientation", str(info["orientation"])),
            ("colour matrix", "none" if info["xyz_to_cam"] is None else
             " / ".join(" ".join(f"{v:+.4f}" for v in r) for r in info["xyz_to_cam"]) + "  (XYZ->camera)"),
        ]
        if len(info["calibration_illuminants"]) > 1:
            rows.append(("calibrations", ", ".join(f"illuminant {i}" for i in info["calibration_illuminants"])))
        for n, names in info["opcodes"].items():
            rows.append((f"OpcodeList{n}", ", ".join(names) + ("  (* optional)" if any("*" in x for x in names) else "")))
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"{k:<{width}}  {v}")
    return 1 if failures else 0


def register_process(sub):
    p = sub.add_parser("process", help="run an ISP pipeline over RAW files",
                       description="Run an ISP pipeline over RAW files and folders, writing images with "
                                   "JSON sidecars. Failed files are listed; the others are still processed.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="RAW files or folders (searched recursively; for .raw/.bin dumps with --bayer)")
    p.add_argument("-o", "--out", required=True, metavar="OUTDIR",
                   help="output folder, created if missing (with the inputs' sub-folders)")
    p.add_argument("--pipeline", default="default", metavar="NAME|FILE",
                   help="a built-in pipeline (default, linear, core, camera) or a YAML file")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="output format; when not given, png for pipelines that quantise and npy for float "
                        "ones. TIFF keeps the pipeline's type: 8- or 16-bit as it quantises, float32 if float")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="files processed in parallel")
    add_overrides(p)
    p.add_argument("--orientation", choices=("auto", "none"), default="auto",
                   help="auto: PNG, JPEG and TIFF outputs upright as the file's orientation says; none: as the "
                        "sensor read them")
    p.add_argument("--opcodes", choices=OPCODES, default=None,
                   help="auto: apply a DNG's opcode lists (lens shading, vignetting, bad pixels, distortion, crop) "
                        "where the DNG specification says; off: ignore them. None: the pipeline's own setting")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="fused fast path or stage by stage (identical results)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_dump_options(p)
    p.set_defaults(func=run_process)


def run_process(args) -> int:
    from ..batch import DUMP_SUFFIXES, RAW_SUFFIXES, collect_inputs, compile_notice, process_files
    from ..io import read
    from ..pipeline import load_pipeline

    if args.jobs < 1:
        raise SystemExit("rawcv process: error: --jobs must be >= 1")
    dumps = dump_reader(args)
    pipeline = load_pipeline(args.pipeline, backend=args.backend)
    pipeline = apply_overrides(pipeline, args)
    if args.opcodes is not None:
        pipeline = pipeline.with_opcodes(args.opcodes)
    fmt = args.format or ("png" if pipeline.output_kind == "quantized" else "npy")
    files = collect_inputs(args.inputs, DUMP_SUFFIXES if dumps else RAW_SUFFIXES)
    if not files:
        print(f"rawcv process: error: no {'dump' if dumps else 'RAW'} files found in {' '.join(args.inputs)}",
              file=sys.stderr)
        return 1
    bar = Progress(len(files), "process", enabled=not args.quiet)
    compiled = []

    def on_compile(where):
        compiled.append(where)
        bar.write(f"rawcv process: compiling the ISP kernels (once; cached in {where})")

    try:
        with compile_notice(on_compile):
            summary = process_files(files, args.out, pipeline, fmt=fmt, overwrite=args.overwrite, jobs=args.jobs,
                                    progress=lambda res: bar.update(), reader=dumps or read,
                                    orient=args.orientation == "auto")
    finally:
        bar.close()
    ok, bad = len(summary.ok), len(summary.failures)
    warm = f"; {summary.warmup_seconds:.1f} s compiling kernels before" if compiled else ""
    print(f"processed {ok} of {len(files)} files with pipeline '{pipeline.name}' -> {args.out} "
          f"({fmt}, {summary.seconds:.2f} s, {summary.files_per_second:.1f} files/s{warm})")
    if bad:
        print(f"{bad} failed:", file=sys.stderr)
        for r in summary.failures:
            print(f"rawcv process: error: {r.error}", file=sys.stderr)
    return 1 if bad else 0


def register_stages(sub):
    p = sub.add_parser("stages", help="list the ISP stages and their parameters",
                       description="List every ISP stage with its parameters and defaults.")
    p.add_argument("--json", action="store_true", help="machine-readable listing")
    p.set_defaults(func=run_stages)


def run_stages(args) -> int:
    from ..pipeline import STAGES, available_pipelines

    if args.json:
        print(json.dumps({name: {"doc": cls.doc, "accepts": list(cls.accepts), "linear_only": cls.linear_only,
                                 "params": [{"name": p.name, "type": p.kind, "default": p.default,
                                             "choices": list(p.choices) if p.choices else None, "doc": p.doc}
                                            for p in cls.params]}
                          for name, cls in STAGES.items()}, indent=2))
        return 0
    for name, cls in STAGES.items():
        print(f"{name}: {cls.doc}")
        for p in cls.params:
            choices = f" one of {', '.join(map(str, p.choices))};" if p.choices else ""
            print(f"    {p.name:<11} {p.kind:<6} default {p.default!r};{choices} {p.doc}")
    print(f"\npipelines: {', '.join(available_pipelines())}")
    return 0


def _synth(sub):
    from .synth import register_synth
    register_synth(sub)


from .learn import register_eval, register_models, register_predict, register_train  # noqa: E402  (no torch)

SUBCOMMANDS = [register_info, register_process, register_stages, _synth, register_models, register_train,
               register_predict, register_eval]
