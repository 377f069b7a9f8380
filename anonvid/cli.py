"""The `anonvid` command line.

    anonvid demo [--out DIR]
        The synthetic end-to-end demo (what `make demo` runs): report.json, report.md and plots in DIR.
    anonvid train --config FILE[:ARGS] --workdir DIR [--config.field=value ...]
        Runs any experiment config; resumes from DIR's last checkpoint.
    anonvid eval --config FILE[:ARGS] --workdir DIR [--config.field=value ...]
        Evaluates a trained run's last checkpoint (classifier runs), or prints a finished run's results table.
    anonvid anonymize IN... -o OUT --method prune|minimize|anonymizer [--ops SPEC] [--checkpoint DIR]
        Anonymizes video files or folders, keeping frame rate, frame count, resolution and audio.
    anonvid minimize IN... -o OUT --ops SPEC
        Shorthand for `anonvid anonymize --method minimize`.
    anonvid tradeoff TABLE.csv --objective NAME:max|min ... --out DIR
        Ranking, Pareto set, sweet spot, hypervolume and knee of any results table.
    anonvid data prepare NAME --manual_dir DIR [--data_dir DIR] [--config CFG] [--max_videos N] [--on_error skip]
        Builds a real dataset (UCF101, HMDB51, VP-*, PA-HMDB51, VISPR, UCSD) from your local copy.

Every subcommand has `--help` with examples. Errors in user input (config keys, files, shapes) exit with
status 2 and one message that says what is wrong and how to fix it.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

_TRAIN_EXAMPLES = """\
examples:
  anonvid train --config configs/leakage.py:synthetic --workdir runs/raw
  anonvid train --config configs/leakage.py:synthetic,smoke --workdir /tmp/smoke
  anonvid train --config configs/classifier.py:synthetic,task=privacy --workdir runs/attacker \\
      --config.epochs=5 --config.optim.lr=1e-3

The config string is FILE:ARGS; ARGS is a comma list of the file's get_config arguments (see the file's
docstring). --config.a.b=value overrides any field; an unknown field is an error. Running the same command
again in the same --workdir resumes from the last checkpoint.
"""

_DEMO_EXAMPLES = """\
examples:
  anonvid demo                  # writes demo_out/report.md, report.json and plots
  anonvid demo --out /tmp/demo --smoke
"""


_TRADEOFF_EXAMPLES = """\
examples:
  anonvid tradeoff grid.csv --objective auc:max --objective cmap:min --objective f1:min --out tradeoff/
  anonvid tradeoff grid.csv --objective auc:max --objective cmap:min --objective f1:min \\
      --weights 0.5,0.25,0.25 --name-column config --out tradeoff/

Writes DIR/tradeoff.csv (input columns + distance, weighted, rank_distance, rank_weighted, combined_rank,
pareto), DIR/summary.json (pareto, sweet_spot, hypervolume, knee) and Pareto projection plots. Rows with a
missing or non-finite objective are reported and excluded.
"""


_DATA_EXAMPLES = """\
examples:
  anonvid data prepare ucf101 --manual_dir ~/datasets/ucf101             # split1, frames at 128x171
  anonvid data prepare vp_ucf101 --manual_dir ~/datasets/ucf101 --config split1_224x224
  anonvid data prepare hmdb51 --manual_dir ~/datasets/hmdb51 --config split2
  anonvid data prepare pa_hmdb51 --manual_dir ~/datasets/hmdb51 --config random60
  anonvid data prepare vispr --manual_dir ~/datasets/vispr --config vispr1
  anonvid data prepare ucsd --manual_dir ~/datasets/UCSD_Anomaly_Dataset.v1p2 --config ped2_256x256
  anonvid data prepare ucf101 --manual_dir ~/datasets/ucf101 --max_videos 20 --on_error skip --data_dir /tmp/tfds

Config strings: ucf101/hmdb51/vp_ucf101/vp_hmdb51: split1|split2|split3 with an optional _HxW or _native
size suffix; pa_hmdb51: random60|standard (+ size); vispr: vispr1|full (+ _HxW); ucsd: ped1|ped2 (+ _HxW).
The expected folder layout of each dataset is in the README ("Real datasets"). The data goes to
DATA_DIR/NAME/CONFIG/VERSION (default DATA_DIR: $ANONVID_DATA_DIR or ~/tensorflow_datasets) with a build
report anonvid_build.json (examples per split, skipped items per reason). An existing build is reused;
--force rebuilds it and replaces the old one only once the new one is complete.
"""


_EVAL_EXAMPLES = """\
examples:
  anonvid eval --config configs/classifier.py:synthetic,task=privacy --workdir runs/attacker
  anonvid eval --config configs/pruning.py:synthetic --workdir runs/pruning

A classifier run is evaluated afresh from its last checkpoint on the test split (nothing is trained); any other
experiment prints the results table of its finished run (an unfinished run is an error: resume it with
`anonvid train` and the same arguments).
"""

_ANONYMIZE_EXAMPLES = """\
examples:
  anonvid anonymize street.mp4 -o street_anon.mp4 --method minimize --ops "blur(4)"
  anonvid anonymize videos/ -o anon/ --method minimize --ops "ts(5)|faces(blur=12)"
  anonvid anonymize a.mp4 b.avi -o anon/ --method minimize --ops "people(black)" --no-audio
  anonvid anonymize clip.mp4 -o out.mp4 --method prune --checkpoint runs/pruning/pruner_adversarial
  anonvid anonymize clip.mp4 -o out.mp4 --method anonymizer --checkpoint runs/penalty/selected_anonymizer \\
      --work-size 112x112

Outputs keep the input's frame rate, frame count, resolution and audio (temporal sampling `ts(k)` keeps every
k-th frame with its timestamp: same duration, fps / k). A folder output mirrors the inputs' relative paths.
Each file is written to a temporary file and renamed when complete, so a failure never leaves a partial or
un-anonymized output. Long videos are processed in chunks (bounded memory). Ops: see README "Data
minimization" (blur, pixelate, ds, gray, quant, mask, bgsub, black; `faces(...)`, `people(...)` and `op@face`
need the detector extra: pip install 'anonvid[faces]').
"""

_MINIMIZE_EXAMPLES = """\
examples:
  anonvid minimize street.mp4 -o street_blur.mp4 --ops "blur(4)"
  anonvid minimize videos/ -o anon/ --ops "faces(blur=12)"
  anonvid minimize cam.mp4 -o cam_min.mp4 --ops "ts(5)|ds(4)"
"""


def _add_video_arguments(p: argparse.ArgumentParser, *, with_method: bool) -> None:
    """Arguments shared by `anonymize` and `minimize`."""
    p.add_argument("inputs", nargs="+", metavar="IN", help="video files and/or folders (searched recursively)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output file (one input file) or folder (mirrors the inputs)")
    if with_method:
        p.add_argument("--method", required=True, choices=("prune", "minimize", "anonymizer"),
                       help="prune: tubelet pruning (method A); minimize: data minimization ops (method B); "
                            "anonymizer: the trained UNet++ (method C)")
        p.add_argument("--ops", default=None, help='minimization spec, e.g. "ts(5)|blur(4)" (method minimize)')
        p.add_argument("--checkpoint", default=None, metavar="DIR",
                       help="pruner run folder (prune) or exported anonymizer folder (anonymizer)")
        p.add_argument("--fill", default="black", choices=("black", "blur", "mean"),
                       help="what pruned tubelets become (prune; default black, as the paper)")
        p.add_argument("--work-size", default=None, metavar="HxW",
                       help="run the anonymizer at this size and resize back (default: native size)")
    else:
        p.add_argument("--ops", required=True, help='minimization spec, e.g. "blur(4)" or "ts(5)|faces(blur=12)"')
    p.add_argument("--no-audio", action="store_true", help="drop the audio stream (default: keep it)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--keep-going", action="store_true",
                   help="skip unreadable inputs and report them at the end (exit status 1)")
    p.add_argument("--chunk-frames", type=int, default=None, metavar="N",
                   help="frames processed at once (default: from a pixel budget; bounds memory)")
    p.add_argument("--codec", default=None, help="video encoder (default: libx264 for .mp4/.mkv/.mov, mpeg4 "
                   "for .avi, libvpx-vp9 for .webm)")
    p.add_argument("--crf", type=int, default=18, help="x264/VP9 quality, lower is better (default 18)")
    p.add_argument("--preset", default="veryfast", help="x264 speed preset (default veryfast)")
    p.add_argument("--detector-size", type=int, default=None, metavar="PX",
                   help="longest side the face/person detector sees (default 640)")
    p.add_argument("--detect-every", type=int, default=1, metavar="K",
                   help="run the face/person detector on every K-th frame only; smoothing fills the frames "
                        "between (faster; default 1, every frame)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--summary", default=None, metavar="FILE.json", help="write per-file results (frames, "
                   "audio, frames/s) to this JSON file")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="anonvid", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="synthetic end-to-end demo", epilog=_DEMO_EXAMPLES,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    demo.add_argument("--smoke", action="store_true", help="tiny sizes: a seconds-long check, not a result")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    train = sub.add_parser("train", help="run an experiment config", epilog=_TRAIN_EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--config", required=True, help="FILE[:ARGS], e.g. configs/leakage.py:synthetic")
    train.add_argument("--workdir", required=True, help="checkpoints, logs and results go here")
    train.add_argument("--no-progress", action="store_true", help="hide progress bars")
    ev = sub.add_parser("eval", help="evaluate a trained run without training", epilog=_EVAL_EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("--config", required=True, help="FILE[:ARGS], the same as the run was trained with")
    ev.add_argument("--workdir", required=True, help="the run's folder")
    ev.add_argument("--no-progress", action="store_true", help="hide progress bars")
    anon = sub.add_parser("anonymize", help="anonymize video files", epilog=_ANONYMIZE_EXAMPLES,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_video_arguments(anon, with_method=True)
    mini = sub.add_parser("minimize", help="shorthand for anonymize --method minimize", epilog=_MINIMIZE_EXAMPLES,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_video_arguments(mini, with_method=False)
    trade = sub.add_parser("tradeoff", help="trade-off analysis of a results table", epilog=_TRADEOFF_EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    trade.add_argument("table", help="CSV file, one row per configuration")
    trade.add_argument("--objective", action="append", default=[], metavar="NAME:max|min",
                       help="a column to optimise and its sense; repeat for each objective")
    trade.add_argument("--weights", default=None, help="comma list, one weight per objective (weighted score)")
    trade.add_argument("--name-column", default="name", help="column that names each row (default: name)")
    trade.add_argument("--out", required=True, help="output folder")
    data = sub.add_parser("data", help="prepare real datasets from local copies", epilog=_DATA_EXAMPLES,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    prep = data_sub.add_parser("prepare", help="build one dataset from its local copy", epilog=_DATA_EXAMPLES,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    prep.add_argument("name", help="ucf101 | hmdb51 | vp_ucf101 | vp_hmdb51 | pa_hmdb51 | vispr | ucsd")
    prep.add_argument("--manual_dir", required=True, help="your local copy of the dataset, in its real layout")
    prep.add_argument("--data_dir", default=None, help="TFDS data dir (default: $ANONVID_DATA_DIR or "
                      "~/tensorflow_datasets)")
    prep.add_argument("--config", default=None, help="builder config string (default: the dataset's first)")
    prep.add_argument("--max_videos", type=int, default=None, help="at most N examples per split (quick subsets)")
    prep.add_argument("--on_error", choices=("raise", "skip"), default="raise",
                      help="missing/corrupt videos and orphan labels: stop (raise) or skip and count (skip)")
    prep.add_argument("--force", action="store_true", help="rebuild an existing dataset (atomically)")
    return p


def _data_prepare(args: argparse.Namespace) -> int:
    from anonvid.data.builders import registry

    _, report = registry.prepare(args.name, manual_dir=args.manual_dir, data_dir=args.data_dir,
                                 config=args.config, on_error=args.on_error, max_videos=args.max_videos,
                                 force=args.force)
    verb = "already prepared (reused; --force rebuilds)" if report.get("reused") else "prepared"
    print(f"{args.name}/{report.get('config', args.config)} {verb}: {report['path']}")
    for split, n in report.get("examples", {}).items():
        print(f"  {split}: {n} examples")
    skipped = report.get("skipped", {})
    if skipped.get("total"):
        print(f"  skipped {skipped['total']}: " + ", ".join(f"{k} {v}" for k, v in skipped["by_reason"].items()))
        print(f"  details: {report['path']}/anonvid_build.json")
    return 0


def _split_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Separates `--config.x=y` / `--config.x y` overrides from the rest of the arguments."""
    rest, overrides, i = [], [], 0
    argv = list(argv)
    while i < len(argv):
        a = argv[i]
        if a.startswith("--config."):
            if "=" not in a and i + 1 < len(argv):
                a = f"{a}={argv[i + 1]}"
                i += 1
            overrides.append(a)
        else:
            rest.append(a)
        i += 1
    return rest, overrides


def _train(args: argparse.Namespace, overrides: list[str]) -> int:
    from anonvid import distributed, experiments
    from anonvid.configlib import load_config

    cfg = load_config(args.config, overrides)
    if "distributed" in cfg:
        distributed.initialize_from_config(cfg.distributed)
    result = experiments.run_experiment(cfg, args.workdir, progress=not args.no_progress)
    if "table" in result:
        print(result["table"])
    else:
        print({k: result[k] for k in ("final", "best", "steps") if k in result})
    print(f"results: {args.workdir}/results.json")
    return 0


def _eval(args: argparse.Namespace, overrides: list[str]) -> int:
    from anonvid import experiments
    from anonvid.configlib import load_config

    cfg = load_config(args.config, overrides)
    result = experiments.evaluate_experiment(cfg, args.workdir, progress=not args.no_progress)
    print(result["table"] if "table" in result else json.dumps(result, indent=1, default=float))
    return 0


def _anonymize(args: argparse.Namespace) -> int:
    from absl import logging as absl_logging

    from anonvid.video import batch, methods

    absl_logging.set_verbosity(absl_logging.ERROR)  # orbax's read-only restore notes are not for this user
    method = getattr(args, "method", "minimize")
    detector = {"every": args.detect_every, "progress": not args.no_progress}
    if args.detector_size:
        detector["max_side"] = args.detector_size
    if args.chunk_frames is not None and args.chunk_frames < 1:
        raise ValueError(f"--chunk-frames must be >= 1; got {args.chunk_frames}")
    pairs = batch.plan_outputs(args.inputs, args.output, overwrite=args.overwrite)
    jobs, bad = batch.check_inputs(pairs, keep_going=args.keep_going)
    planner = methods.make_planner(method, ops=args.ops, checkpoint=getattr(args, "checkpoint", None),
                                   fill=getattr(args, "fill", "black"),
                                   work_size=methods.parse_size(getattr(args, "work_size", None)),
                                   chunk_frames=args.chunk_frames, detector_options=detector)
    summaries, failed = batch.run(jobs, planner, audio=not args.no_audio, progress=not args.no_progress,
                                  keep_going=args.keep_going, video_codec=args.codec, crf=args.crf,
                                  preset=args.preset)
    failed = bad + failed
    if args.summary:
        with open(args.summary, "w", encoding="utf-8") as f:
            json.dump({"method": method, "ops": args.ops, "files": summaries, "failed": failed}, f, indent=1)
    print(f"anonymized {len(summaries)} file(s)" + (f"; {len(failed)} failed:" if failed else ""))
    for line in failed:
        print(f"  {line}")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `anonvid` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    rest, overrides = _split_overrides(argv)
    args = _parser().parse_args(rest)
    if overrides and args.command not in ("train", "eval"):
        _parser().error(f"--config.* overrides only apply to `anonvid train` and `anonvid eval`; got {overrides}")
    from anonvid import compile_cache
    from anonvid.checkpointing import CheckpointError
    from anonvid.configlib import ConfigError
    from anonvid.data.video_io import VideoDecodeError

    if args.command in ("train", "demo", "eval", "anonymize", "minimize"):
        compile_cache.enable()

    # anonymize/minimize: a missing optional extra (`pip install 'anonvid[faces]'`) is a user error too
    missing_extra = (ImportError,) if args.command in ("anonymize", "minimize") else ()
    try:  # DatasetError (real-data files) and VideoDecodeError-derived BatchError are reported below
        if args.command == "train":
            return _train(args, overrides)
        if args.command == "eval":
            return _eval(args, overrides)
        if args.command in ("anonymize", "minimize"):
            return _anonymize(args)
        if args.command == "data":
            return _data_prepare(args)
        if args.command == "tradeoff":
            from anonvid import tradeoff_report

            summary = tradeoff_report.run(args.table, args.objective, args.out, weights=args.weights,
                                          name_column=args.name_column)
            print(json.dumps({k: summary[k] for k in ("sweet_spot", "pareto", "hypervolume", "knee",
                                                      "excluded_nan") if k in summary}, indent=1, default=float))
            print(f"written: {args.out}/tradeoff.csv, {args.out}/summary.json and "
                  f"{len(summary['figures'])} figures")
            return 0
        from anonvid import demo

        demo.run(args.out, smoke=args.smoke, progress=not args.no_progress)
        return 0
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError, VideoDecodeError, *missing_extra) as err:
        print(f"anonvid {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
