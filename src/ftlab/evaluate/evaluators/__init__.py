"""The built-in evaluators: every module of this package registers one (found by import, no list).

    eval:
      evaluators:
        - {name: logits}                                   # each label's full trained answer (default)
        - {name: generate, splits: [test], parser: gsm8k, max_new_tokens: 256}
        - {name: judge, of: generate, model: models/judge, template_file: safety.txt}
        - {name: inspect, splits: [valid], task: evals/qa.py@qa}

An evaluator turns (checkpoint, examples) into one evidence record per example and its records into
metrics. Records of earlier evaluators on the same checkpoint and split are passed along, so a judge
scores the generations produced just before it (seed 001: prompts -> responses -> judge). Unknown
names answer with a did-you-mean. The protocol is ftlab.evaluate.base.
"""

from __future__ import annotations

import importlib
import pkgutil

from ftlab.evaluate.base import EvalInput, Evaluator, Options, evaluators, needs_model, produced_metrics, reads, resolve_options

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["EvalInput", "Evaluator", "Options", "evaluators", "needs_model", "produced_metrics", "reads", "resolve_options"]
