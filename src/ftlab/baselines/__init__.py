"""Classical baselines (seed 000): scikit-learn models on features from a registered featuriser,
recorded as runs of kind `baseline` beside the LLM runs, with the same metric names.

    baselines:
      featurizer: {name: composition}
      models: [logistic_regression, random_forest, gradient_boosting]

Each model is fitted on the train split for every point of its small grid, the point is chosen on
the spec's selection split (eval.select: role valid) and metric, and only then scored on every
eval split. The test split never chooses a hyperparameter (tests/baselines/test_baselines.py).
"""
