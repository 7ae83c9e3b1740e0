#!/usr/bin/env bash
# Weighted loss trend benchmark: trains 42 tiny runs (7 settings x 2 class balances x 3 seeds, ~10 min on 2 cores), appends to BENCHMARKS.md.
#   bench/weighted_loss/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/ftlab run bench/weighted_loss/spec.yaml
.venv/bin/python bench/weighted_loss/report.py runs/bench_weighted_loss
