"""Baseline models, registered by name: each a scikit-learn estimator factory and a small grid.

Grids are small on purpose: 2-3 points each fit in seconds on 2 cores for 4,000 rows x 39
features, and every point is chosen on valid only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ftlab.plugins import Plugins


@dataclass(frozen=True)
class BaselineModel:
    make: Callable[..., Any]  # make(seed=..., **point) -> an unfitted sklearn classifier
    grid: list[dict[str, Any]]  # hyperparameter points, tried in this order (ties keep the first)


models: Plugins[BaselineModel] = Plugins("baseline model")


def _logistic(*, seed: int, C: float = 1.0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000, random_state=seed))


def _forest(*, seed: int, max_depth: int | None = None, n_estimators: int = 200):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth, random_state=seed, n_jobs=1)


def _boosting(*, seed: int, learning_rate: float = 0.1, max_depth: int = 3, n_estimators: int = 100):
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(learning_rate=learning_rate, max_depth=max_depth, n_estimators=n_estimators, random_state=seed)


models.register("logistic_regression")(BaselineModel(_logistic, [{"C": 0.1}, {"C": 1.0}, {"C": 10.0}]))
models.register("random_forest")(BaselineModel(_forest, [{"max_depth": 6}, {"max_depth": None}]))
models.register("gradient_boosting")(BaselineModel(_boosting, [{"learning_rate": 0.1, "max_depth": 2}, {"learning_rate": 0.1, "max_depth": 3}]))
