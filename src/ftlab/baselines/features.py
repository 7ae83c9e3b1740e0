"""Featurisers: Example -> a fixed-length feature vector, registered by name.

    from ftlab.baselines.features import featurizers
    X, names = featurizers.get("composition")(examples, options)

"composition" (seed 000): element fractions over a fixed element table plus the descriptors the
high-entropy-alloy literature uses for phase formation (Yang & Zhang, Mater. Chem. Phys. 132, 233,
2012; Guo et al., J. Appl. Phys. 109, 103505, 2011):
  n_elements, mixing_entropy  dS_mix / R = -sum c_i ln c_i
  size_mismatch (delta, %)    100 * sqrt(sum c_i (1 - r_i / r_mean)^2), metallic radii below
  mean_vec                    sum c_i VEC_i
  electronegativity_diff      sqrt(sum c_i (chi_i - chi_mean)^2), Pauling
  mean_radius
Note: ftlab's `hem` stand-in labels by mean VEC, which is linear in the fractions, so a linear
model on these features can reach 100%: on the lab's real data it will not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from ftlab.errors import DataError
from ftlab.plugins import Plugins

Featurizer = Callable[[list, dict[str, Any]], tuple[np.ndarray, list[str]]]
featurizers: Plugins[Featurizer] = Plugins("featurizer")

# element: (metallic radius in angstrom (B, C: covalent), VEC, Pauling electronegativity)
ELEMENTS = {
    "Li": (1.519, 1, 0.98), "B": (0.820, 3, 2.04), "C": (0.773, 4, 2.55), "Mg": (1.602, 2, 1.31),
    "Al": (1.432, 3, 1.61), "Si": (1.153, 4, 1.90), "Sc": (1.641, 3, 1.36), "Ti": (1.462, 4, 1.54),
    "V": (1.316, 5, 1.63), "Cr": (1.249, 6, 1.66), "Mn": (1.350, 7, 1.55), "Fe": (1.241, 8, 1.83),
    "Co": (1.251, 9, 1.88), "Ni": (1.246, 10, 1.91), "Cu": (1.278, 11, 1.90), "Zn": (1.394, 12, 1.65),
    "Ga": (1.392, 3, 1.81), "Y": (1.801, 3, 1.22), "Zr": (1.603, 4, 1.33), "Nb": (1.429, 5, 1.60),
    "Mo": (1.363, 6, 2.16), "Ru": (1.339, 8, 2.20), "Rh": (1.345, 9, 2.28), "Pd": (1.376, 10, 2.20),
    "Ag": (1.445, 11, 1.93), "Sn": (1.620, 4, 1.96), "Hf": (1.578, 4, 1.30), "Ta": (1.430, 5, 1.50),
    "W": (1.367, 6, 2.36), "Re": (1.375, 7, 1.90), "Ir": (1.357, 9, 2.20), "Pt": (1.387, 10, 2.28),
    "Au": (1.442, 11, 2.54),
}
SYMBOLS = sorted(ELEMENTS)
DESCRIPTORS = ["n_elements", "mixing_entropy", "size_mismatch", "mean_vec", "electronegativity_diff", "mean_radius"]
# "Co Cr Fe Mn Ni", "Al0.5CoCrFeNi", "Co20 Cr20 Fe20 Mn20 Ni20": a symbol, then an optional amount.
TERM = re.compile(r"([A-Z][a-z]?)\s*(\d+(?:\.\d+)?|\.\d+)?")


def parse_composition(text: str) -> dict[str, float]:
    """{element: mole fraction}; a symbol without an amount counts 1 (equimolar). ValueError on junk."""
    amounts: dict[str, float] = {}
    rest = TERM.sub("", text).strip(" ,;-_")
    if rest:
        raise ValueError(f"not a composition: {text[:60]!r} (left over: {rest[:20]!r})")
    for symbol, amount in TERM.findall(text):
        if symbol not in ELEMENTS:
            raise ValueError(f"element {symbol!r} has no radius/VEC/electronegativity in ftlab's table")
        amounts[symbol] = amounts.get(symbol, 0.0) + (float(amount) if amount else 1.0)
    total = sum(amounts.values())
    if not amounts or total <= 0:
        raise ValueError(f"no elements in {text[:60]!r}")
    return {s: a / total for s, a in amounts.items()}


def composition_vector(fractions: dict[str, float]) -> list[float]:
    c = np.array(list(fractions.values()))
    props = np.array([ELEMENTS[s] for s in fractions])
    r, vec, chi = props[:, 0], props[:, 1], props[:, 2]
    r_mean, chi_mean = float(c @ r), float(c @ chi)
    descriptors = [
        float(len(c)),
        float(-(c * np.log(c)).sum()),
        100 * math.sqrt(float(c @ (1 - r / r_mean) ** 2)),
        float(c @ vec),
        math.sqrt(float(c @ (chi - chi_mean) ** 2)),
        r_mean,
    ]
    return [fractions.get(s, 0.0) for s in SYMBOLS] + descriptors


def composition_text(example, field: str, pattern: str) -> str:
    if field in example.meta and isinstance(example.meta[field], str):
        return example.meta[field]
    user = next((m["content"] for m in reversed(example.prompt) if m["role"] == "user"), "")
    found = re.search(pattern, user)
    if not found:
        raise ValueError(f"no '{field}' column and the prompt does not match {pattern!r}")
    return found.group(1).strip()


@featurizers.register("composition")
def composition(examples: list, options: dict[str, Any]) -> tuple[np.ndarray, list[str]]:
    """Element fractions + HEA descriptors, from meta[field] or the prompt's "Composition: ..." line."""
    field, pattern = options.get("field", "composition"), options.get("pattern", r"Composition:\s*([^\n]+)")
    rows = []
    for e in examples:
        try:
            rows.append(composition_vector(parse_composition(composition_text(e, field, pattern))))
        except ValueError as err:
            raise DataError(f"featurizer 'composition': {e.meta.get('source', '?')}: {err}; "
                            "give baselines.featurizer.field (a column) or .pattern (a regex with one group)") from None
    return np.array(rows, dtype=float).reshape(len(rows), len(SYMBOLS) + len(DESCRIPTORS)), \
        [f"frac_{s}" for s in SYMBOLS] + DESCRIPTORS


FEATURIZER_OPTIONS = {"composition": {"field", "pattern"}}
