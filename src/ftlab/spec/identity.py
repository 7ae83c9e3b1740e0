"""Run and stage identity: versioned hashes of what affects results.

A run id hashes the run's effective config (every spec field except RUNTIME ones such as the
output directory or eval batch size), its kind, seed and sweep values. Bump IDENTITY_VERSION when
the meaning of a config changes, so old results are never reused by mistake.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ftlab.spec.schema import RUNTIME_FIELDS, Experiment

IDENTITY_VERSION = 1


def stable_hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def effective_config(exp: Experiment) -> dict[str, Any]:
    """The spec as it affects results: all fields with defaults filled in, runtime fields removed."""
    config = exp.model_dump(mode="json")
    for path in RUNTIME_FIELDS:
        node = config
        for part in path[:-1]:
            node = node.get(part, {})
        node.pop(path[-1], None)
    return config


def run_id(exp: Experiment, *, kind: str, seed: int, values: dict[str, Any]) -> str:
    payload = {"v": IDENTITY_VERSION, "config": effective_config(exp), "kind": kind, "seed": seed, "sweep": values}
    return f"r{IDENTITY_VERSION}-{stable_hash(payload)[:12]}"


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (data identity follows content, not just the path)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
