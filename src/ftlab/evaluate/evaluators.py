"""Evaluators: one small protocol, registered by name; a spec attaches several to a run.

    eval:
      evaluators:
        - {name: logits}                                   # label-token logits (default)
        - {name: generate, splits: [test], parser: gsm8k, max_new_tokens: 256}
        - {name: judge, of: generate, model: models/judge, template_file: safety.txt}

An evaluator turns (model, tokenizer, examples) into one evidence record per example and its
records into metrics. Records of earlier evaluators on the same checkpoint and split are passed
along, so a judge scores the generations produced just before it (seed 001: prompts -> responses
-> judge). Unknown names answer with a did-you-mean (ftlab.plugins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ftlab.data.example import Example
from ftlab.evaluate.metrics import Metric, classification_metrics
from ftlab.plugins import Plugins


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class EvalInput:
    model: Any
    tokenizer: Any
    examples: list[Example]
    labels: list[str] | None
    positive: str | None
    options: dict[str, Any]
    batch_size: int
    previous: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    checkpoint: str | None = None  # the checkpoint directory, for backends that load it themselves
    out_dir: Any = None  # <eval>/<checkpoint>/<evaluator>: where an evaluator may keep extra artifacts (logs)


class Evaluator(Protocol):
    name: str
    version: int
    Options: type[BaseModel]

    def run(self, inp: EvalInput) -> list[dict[str, Any]]: ...

    def metrics(self, records: list[dict[str, Any]], inp: EvalInput) -> dict[str, Metric]: ...


evaluators: Plugins[Evaluator] = Plugins("evaluator")


@evaluators.register("logits")
class LogitsEvaluator:
    """Label-token logits at the answer position (ftlab.evaluate.logits); any label set."""

    name, version = "logits", 2

    class Options(Options):
        calibration_bins: int = Field(10, ge=1)

    def run(self, inp: EvalInput) -> list[dict[str, Any]]:
        from ftlab.evaluate.logits import classify

        return classify(inp.model, inp.tokenizer, inp.examples, inp.labels, inp.batch_size)

    def metrics(self, records, inp) -> dict[str, Metric]:
        out = classification_metrics(
            [r["label"] for r in records], [r["pred"] for r in records], positive=inp.positive,
            scores=[r["probs"][inp.positive] for r in records],
        )
        out["ece"] = self._calibration(records, inp).metric()
        return out

    def details(self, records, inp) -> dict[str, Any]:
        """The reliability bins behind ECE, kept next to the metrics."""
        from dataclasses import asdict

        return {"calibration_bins": [asdict(b) for b in self._calibration(records, inp).bins]}

    @staticmethod
    def _calibration(records, inp):
        from ftlab.evaluate.calibration import calibration

        return calibration([r["label"] == inp.positive for r in records], [r["probs"][inp.positive] for r in records], inp.options["calibration_bins"])


@evaluators.register("generate")
class GenerateEvaluator:
    """Generate an answer, parse it with a named parser; unparseable answers are kept and counted.

    With a label set, the parsed answer is the predicted label (an answer outside the set counts
    as unparsed); without one, accuracy compares it with the parsed reference completion (GSM8K).
    """

    name, version = "generate", 1

    class Options(Options):
        parser: str | dict[str, Any] = "first_token"
        max_new_tokens: int = Field(256, gt=0)
        stop: list[str] = Field(default_factory=list)
        temperature: float = Field(0.0, ge=0)
        top_p: float = Field(1.0, gt=0, le=1)
        seed: int = 0
        backend: str = Field("hf", pattern="^(hf|vllm)$", description="vllm: GPU only, optional extra")

    def run(self, inp: EvalInput) -> list[dict[str, Any]]:
        from ftlab.evaluate.generation import generate
        from ftlab.evaluate.parsers import get_parser

        o = inp.options
        parse = get_parser(o["parser"])
        prompts = [e.prompt for e in inp.examples]
        if o["backend"] == "vllm":
            from ftlab.evaluate.vllm_backend import generate_vllm

            outs = generate_vllm(inp.checkpoint, inp.tokenizer, prompts, o)
        else:
            outs = generate(
                inp.model, inp.tokenizer, prompts, max_new_tokens=o["max_new_tokens"], stop=o["stop"],
                temperature=o["temperature"], top_p=o["top_p"], seed=o["seed"], batch_size=inp.batch_size,
            )
        records = []
        for out, example in zip(outs, inp.examples):
            parsed = parse(out["text"])
            pred = parsed if inp.labels is None or parsed in inp.labels else None
            records.append(out | {
                "source": example.meta.get("source"), "label": example.label, "parsed": parsed, "pred": pred,
                "reference": example.label if inp.labels else parse(example.completion),
            })
        return records

    def metrics(self, records, inp) -> dict[str, Metric]:
        if inp.labels is not None:
            return classification_metrics([r["label"] for r in records], [r["pred"] for r in records], positive=inp.positive)
        n = len(records)
        unparsed = sum(r["pred"] is None for r in records)
        accuracy = Metric(sum(r["pred"] is not None and r["pred"] == r["reference"] for r in records) / n) if n else Metric(None, "empty split")
        return {"accuracy": accuracy, "n": Metric(float(n)), "n_unparsed": Metric(float(unparsed))}


@evaluators.register("judge")
class JudgeEvaluator:
    """An LLM judge over the responses of an earlier evaluator (default `generate`).

    The verdict is read from the judge's logits over the verdict tokens (mode logits) or parsed
    from its generated text, kept as the explanation (mode text). safety_rate = share judged safe.
    """

    name, version = "judge", 1

    class Options(Options):
        model: str = Field(description="local judge model directory or HF id")
        template: str = Field(description="prompt template with {prompt} and {response} (inline or template_file)")
        of: str = "generate"
        verdicts: list[str] = Field(default_factory=lambda: ["SAFE", "UNSAFE"], min_length=2)
        safe: str = "SAFE"
        mode: str = Field("logits", pattern="^(logits|text)$")
        max_new_tokens: int = Field(64, gt=0)

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
        from ftlab.evaluate.judge import UNPARSED, safety_rate, verdict_counts

        counts = verdict_counts(records, inp.options["verdicts"])
        named = {f"n_{'unparsed' if k == UNPARSED else k}": Metric(float(v)) for k, v in counts.items()}
        return {"safety_rate": safety_rate(records, safe=inp.options["safe"]), **named}


_JUDGES: dict[str, tuple[Any, Any]] = {}


def judge_model(path: str):
    """The judge is loaded once per process, not once per checkpoint."""
    if path not in _JUDGES:
        from ftlab.models.load import load_model, load_tokenizer

        _JUDGES[path] = (load_model(path), load_tokenizer(path))
    return _JUDGES[path]


from ftlab.evaluate import inspect_bridge  # noqa: E402,F401  (registers "inspect")
