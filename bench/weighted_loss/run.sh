#!/usr/bin/env bash
# Weighted loss trend benchmark: trains 7 tiny runs (~2-3 min on 2 cores), appends to BENCHMARKS.md.
#   bench/weighted_loss/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/ftlab run bench/weighted_loss/spec.yaml
.venv/bin/python bench/weighted_loss/report.py runs/bench_weighted_loss
