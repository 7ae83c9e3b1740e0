"""Scales: one spec, run tiny on a laptop and at full size on the cluster.

    scale: tiny                      # the default scale of this spec (omit: the spec as written)
    scales:
      tiny: {model: {tiny: {...}}, train: {epochs: 2}, output_dir: ../runs/hem_pn_tiny}
      full: {}                       # the spec as written

`ftlab run|plan|submit|validate --scale full` (or FTLAB_SCALE=full) picks another. The chosen block
is merged OVER the spec (unlike a preset, which the spec's own values override): a scale is where
the experiment runs, so it wins. Mappings merge key by key; any other value (a list, a number)
is replaced whole. A block may not rename the experiment. Rendered SLURM scripts export the
chosen scale, so every job reads the same experiment.
"""

from __future__ import annotations

import os
from typing import Any

from ftlab.plugins import did_you_mean

ENV = "FTLAB_SCALE"
FIXED = ("name", "scale", "scales")


def chosen_scale(data: dict[str, Any], requested: str | None = None) -> str | None:
    return requested or os.environ.get(ENV) or data.get("scale")


def apply_scale(data: dict[str, Any], requested: str | None, problems) -> tuple[dict[str, Any], str | None]:
    """(the spec with the chosen scale merged in, the scale's name or None)."""
    scales = data.get("scales")
    name = chosen_scale(data, requested)
    body = {k: v for k, v in data.items() if k not in ("scale", "scales")}
    if scales is None:
        if name is not None:
            problems.add(("scale",), f"scale '{str(name)[:80]}' was asked for, but the spec has no 'scales:' block")
        return body, None
    if not isinstance(scales, dict) or not all(isinstance(v, dict) for v in scales.values()):
        problems.add(("scales",), "must map scale names to blocks of spec keys, e.g. {tiny: {train: {epochs: 1}}}")
        return body, None
    if name is None:
        return body, None
    if not isinstance(name, str) or name not in scales:
        names = [str(k) for k in scales]
        problems.add(("scale",), f"unknown scale '{str(name)[:80]}'.{did_you_mean(str(name), names)} Available: {', '.join(names)}")
        return body, None
    for key in scales[name]:
        if key in FIXED:
            problems.add(("scales", name, key), f"'{key}' cannot be set by a scale")
    return merge(body, {k: v for k, v in scales[name].items() if k not in FIXED}), name


def merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return over
