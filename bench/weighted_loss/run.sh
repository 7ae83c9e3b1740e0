#!/usr/bin/env bash
# Weighted-loss trend: examples/weighted_loss.yaml's tiny scale x 3 seeds (21 runs), appends to BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python bench/weighted_loss/run.py --append "$@"
