"""The `anonvid` command line.

    anonvid demo [--out DIR]
        The synthetic end-to-end demo (what `make demo` runs): report.json, report.md and plots in DIR.
    anonvid train --config FILE[:ARGS] --workdir DIR [--config.field=value ...]
        Runs any experiment config; resumes from DIR's last checkpoint.
    anonvid tradeoff TABLE.csv --objective NAME:max|min ... --out DIR
        Ranking, Pareto set, sweet spot, hypervolume and knee of any results table.

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
    trade = sub.add_parser("tradeoff", help="trade-off analysis of a results table", epilog=_TRADEOFF_EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    trade.add_argument("table", help="CSV file, one row per configuration")
    trade.add_argument("--objective", action="append", default=[], metavar="NAME:max|min",
                       help="a column to optimise and its sense; repeat for each objective")
    trade.add_argument("--weights", default=None, help="comma list, one weight per objective (weighted score)")
    trade.add_argument("--name-column", default="name", help="column that names each row (default: name)")
    trade.add_argument("--out", required=True, help="output folder")
    return p


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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `anonvid` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    rest, overrides = _split_overrides(argv)
    args = _parser().parse_args(rest)
    if overrides and args.command != "train":
        _parser().error(f"--config.* overrides only apply to `anonvid train`; got {overrides}")
    from anonvid import compile_cache
    from anonvid.checkpointing import CheckpointError
    from anonvid.configlib import ConfigError

    if args.command in ("train", "demo"):
        compile_cache.enable()

    try:
        if args.command == "train":
            return _train(args, overrides)
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
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as err:
        print(f"anonvid {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
