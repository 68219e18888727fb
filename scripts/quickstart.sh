#!/usr/bin/env bash
# Offline quick start: install into .venv, make random-weight Toto and Kronos checkpoints, run
# one study per (model, symbol) on the bundled sample data with SQLite (the default database,
# studies.db, so every command in the README works after it), export the winners.
# The forecasts of random weights are meaningless; the code paths, storage and costs are real.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"

optimise=.venv/bin/optimise
$optimise checkpoint init --arch toto --preset tiny --force checkpoints/toto-tiny
$optimise checkpoint init --arch kronos --preset tiny --force checkpoints/kronos-tiny
$optimise checkpoint init --arch chronos2 --preset tiny --force checkpoints/chronos2-tiny
$optimise launch --model toto --checkpoint checkpoints/toto-tiny \
    --symbols AAPL MSFT --n-trials "${N_TRIALS:-40}" --no-progress
# --horizon 1: the trading task's 7-step Kronos path re-runs the transformer per step and per
# distinct sampled path (as upstream does), minutes per trial on a CPU; drop it on a GPU
$optimise launch --model kronos --checkpoint checkpoints/kronos-tiny \
    --symbols AAPL MSFT --n-trials "${N_TRIALS:-40}" --no-progress --horizon 1
# Chronos-2 is deterministic: one forward pass per (window, context, inputs), cached
$optimise launch --model chronos2 --checkpoint checkpoints/chronos2-tiny \
    --symbols AAPL MSFT --n-trials "${N_TRIALS:-40}" --no-progress
$optimise status

echo
echo "winners exported to $(pwd)/store: toto/, kronos/, chronos2/, and best/<SYMBOL>.json (the best of the three models)"
echo "best for AAPL: $(python3 -c 'import json;r=json.load(open("store/best/AAPL.json"));print(r["model"], r["config"])')"
echo "open the dashboard:  .venv/bin/optimise dashboard   then http://127.0.0.1:8080"
