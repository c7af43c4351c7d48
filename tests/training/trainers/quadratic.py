"""A tiny tuning objective: reports -(x - 0.3)^2 + bonus(kind) through cloudml-hypertune."""

import argparse
import time

import hypertune

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, default=0.0)
parser.add_argument("--kind", default="a")
parser.add_argument("--steps", type=int, default=1)
parser.add_argument("--pause", type=float, default=0.0)  # seconds between reports
args = parser.parse_args()
score = -(args.x - 0.3) ** 2 + {"a": 0.0, "b": 0.5, "c": 0.2}[args.kind]
tuner = hypertune.HyperTune()
for step in range(1, args.steps + 1):
    tuner.report_hyperparameter_tuning_metric("score", score * step / args.steps, step)
    time.sleep(args.pause)
