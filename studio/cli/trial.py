"""`studio trial export DIR` and `studio trial summary DIR`: a trial log's outputs with their ratings, as CSV and JSON
Lines, and what it holds in numbers (`studio.trial`). `studio --trial-log DIR` starts the app logging into DIR."""

from __future__ import annotations

from pathlib import Path

from studio.cli.common import Command


def _export_args(p):
    p.add_argument("folder", type=Path, help="the trial log's folder (the one given to --trial-log)")
    p.add_argument("--out", type=Path, default=None, help="folder to write outputs.csv and outputs.jsonl to")


def _export(args) -> dict:
    from studio.trial import export

    return export(args.folder, args.out)


def _summary_args(p):
    p.add_argument("folder", type=Path, help="the trial log's folder")


def _summary(args) -> dict:
    from studio.trial import summary

    return summary(args.folder)


TRIAL: dict[str, Command] = {
    "export": Command("write a trial log's outputs and ratings as CSV and JSON Lines", _export_args, _export),
    "summary": Command("outputs per tab, mean latency, ratings, ratings against confidence", _summary_args, _summary),
}
