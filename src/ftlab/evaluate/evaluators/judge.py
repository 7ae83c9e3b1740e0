"""`judge`: a local causal LM labels the responses of an earlier evaluator (default `generate`).

The verdict is read from the judge's logits over the verdicts (mode logits) or parsed from its
generated text, kept as the explanation (mode text). safety_rate = share judged safe, over every
judged response: unparsed verdicts stay in the denominator and are counted on their own.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from pydantic import Field

from ftlab.evaluate.base import EvalInput, Options, evaluators
from ftlab.evaluate.metrics import Metric
from ftlab.spec.source import produced_by_required

PLACEHOLDERS = {"prompt", "response"}


@evaluators.register("judge")
class JudgeEvaluator:
    name, version = "judge", 2

    class Options(Options):
        model: str = Field(description="local judge model directory, HF id, or gguf:<file or name> (gguf:smollm2)")
        template: str = Field(description="prompt template with {prompt} and {response} (inline or template_file)")
        of: str = "generate"
        verdicts: list[str] = Field(default_factory=lambda: ["SAFE", "UNSAFE"], min_length=2)
        safe: str = "SAFE"
        mode: str = Field("logits", pattern="^(logits|text)$")
        max_new_tokens: int = Field(64, gt=0, le=1_000_000)

    @staticmethod
    def resolve(options: dict[str, Any], base_dir: Path, problems: list) -> dict[str, Any]:
        """Inline template_file (identity follows its content); a local judge model path made absolute."""
        if "template_file" in options:
            raw = options.pop("template_file")
            path = base_dir / str(raw)
            try:
                options["template"] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError, ValueError) as err:
                problems.append((("template_file",), f"cannot read {str(path)[:200]}: {getattr(err, 'strerror', None) or err}"))
                options["template"] = "{prompt}{response}"
        model = options.get("model")
        if isinstance(model, str) and model.startswith("gguf:"):  # gguf:smollm2 or gguf:path/to/file.gguf
            from ftlab.errors import ModelError
            from ftlab.models import gguf

            try:
                ref = model.removeprefix("gguf:")
                options["model"] = f"gguf:{ref if ref in gguf.NAMED else gguf.resolve(ref, base_dir).resolve()}"
            except ModelError as err:
                problems.append((("model",), str(err)))
            return options
        local = isinstance(model, str) and model.startswith((".", "/", "~"))
        if local and not (base_dir / model).exists() and not produced_by_required(base_dir / model):
            problems.append((("model",), f"judge model directory not found: {str(base_dir / model)[:200]} (a model another "
                             "spec trains? name that spec in `requires:` so it runs first, or run it first)"))
        elif isinstance(model, str) and ((base_dir / model).exists() or local):
            options["model"] = str((base_dir / model).resolve())
        return options

    @staticmethod
    def check(options, task) -> list[tuple[tuple, str]]:
        problems = []
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(options.template) if f is not None}
        except ValueError as err:
            return [(("template",), f"is not a valid template ({err}); write literal braces as {{{{ and }}}}")]
        unknown = sorted(fields - PLACEHOLDERS)
        if unknown:
            from ftlab.plugins import did_you_mean

            problems.append((("template",), f"unknown placeholder {{{unknown[0]}}}.{did_you_mean(unknown[0], PLACEHOLDERS)} "
                                            "The template may use {prompt} and {response}; write literal braces as {{ and }}"))
        if "response" not in fields:
            problems.append((("template",), "never shows the judge the response: add {response}"))
        if options.safe not in options.verdicts:
            problems.append((("safe",), f"'{options.safe}' is not one of the verdicts {options.verdicts}"))
        if len(set(options.verdicts)) != len(options.verdicts) or not all(v.strip() for v in options.verdicts):
            problems.append((("verdicts",), "verdicts must be distinct and non-empty"))
        return problems

    @staticmethod
    def reads(options: dict[str, Any]) -> list[str]:
        return [options.get("of", "generate")]

    @staticmethod
    def produces(options, task) -> set[str]:
        from ftlab.evaluate.judge import UNPARSED

        return {"safety_rate", "n"} | {f"n_{'unparsed' if v == UNPARSED else v}" for v in [*options.verdicts, UNPARSED]}

    def run(self, inp: EvalInput) -> list[dict[str, Any]]:
        from ftlab.errors import StageError
        from ftlab.evaluate import judge

        o = inp.options
        if o["of"] not in inp.previous:
            raise StageError(f"judge scores the responses of '{o['of']}', which did not run before it on this split")
        items = [
            {"prompt": e.prompt[-1]["content"], "response": r["text"]} for e, r in zip(inp.examples, inp.previous[o["of"]])
        ]
        model, tokenizer = judge_model(o["model"])
        if o["mode"] == "logits":
            return judge.judge_by_logits(model, tokenizer, items, template=o["template"], verdicts=o["verdicts"], batch_size=inp.batch_size)
        return judge.judge_by_text(model, tokenizer, items, template=o["template"], verdicts=o["verdicts"], max_new_tokens=o["max_new_tokens"], batch_size=inp.batch_size)

    def metrics(self, records, inp) -> dict[str, Metric]:
        from ftlab.evaluate.judge import judge_metrics

        return judge_metrics(records, inp.options["verdicts"], safe=inp.options["safe"])


_JUDGES: dict[str, tuple[Any, Any]] = {}


def judge_model(path: str):
    """The judge is loaded once per process, not once per checkpoint."""
    if path not in _JUDGES:
        from ftlab.models.load import load_model, load_tokenizer

        folder = path
        if path.startswith("gguf:"):  # converted on first use (once per file content, cached)
            from ftlab.models import gguf

            file = gguf.resolve(path.removeprefix("gguf:"), Path("/"))
            folder = str(gguf.convert(file, gguf.digest(file)))
        _JUDGES[path] = (load_model(folder), load_tokenizer(folder))
    return _JUDGES[path]
