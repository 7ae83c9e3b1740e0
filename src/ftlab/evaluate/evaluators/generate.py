"""`generate`: generate an answer and parse it with a named parser; unparseable answers are kept and counted.

Classification task: the parsed answer is the predicted label (outside the label set = unparsed).
Generation task: correctness = the parsed answer equals the parsed reference (the row's answer,
GSM8K's "...#### 10"), both normalised as lm-eval's gsm8k task does (commas, "$", a trailing "."
removed). `parser: gsm8k` reports lm-eval's two conventions side by side: `accuracy_strict`
("#### N", first match) and `accuracy_flexible` (the last number in the response); `accuracy` is
the strict one. Rows without a reference (prompts only, for a judge) are generated and kept, and
accuracy is computed over the rows that have one.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ftlab.errors import FtlabError
from ftlab.evaluate.base import EvalInput, Options, evaluators
from ftlab.evaluate.metrics import CLASSIFICATION_METRICS, EMPTY_SPLIT, Metric, classification_metrics

def normalise(answer: str | None) -> str | None:
    """lm-eval gsm8k's exact_match normalisation (ftlab.evaluate.parsers.gsm8k_normalise)."""
    from ftlab.evaluate.parsers import gsm8k_normalise

    return None if answer is None else (gsm8k_normalise(answer) or None)


def conventions(parser: str | dict[str, Any]) -> dict[str, Any]:
    """{convention: parser}: gsm8k's strict and flexible readings, or {"": the one parser given}."""
    from ftlab.evaluate.parsers import GSM8K_PARSERS, get_parser

    if parser == "gsm8k":
        return dict(GSM8K_PARSERS)
    return {"": get_parser(parser)}


def _suffix(convention: str) -> str:
    return f"_{convention}" if convention else ""


@evaluators.register("generate")
class GenerateEvaluator:
    name, version = "generate", 2

    class Options(Options):
        parser: str | dict[str, Any] = "first_token"
        max_new_tokens: int = Field(256, gt=0, le=1_000_000)
        stop: list[str] = Field(default_factory=list)
        temperature: float = Field(0.0, ge=0, allow_inf_nan=False)
        top_p: float = Field(1.0, gt=0, le=1)
        seed: int = Field(0, ge=0, lt=2**32)
        backend: str = Field("hf", pattern="^(hf|vllm)$", description="vllm: GPU only, optional extra")

    @staticmethod
    def check(options, task) -> list[tuple[tuple, str]]:
        try:
            conventions(options.parser)
        except FtlabError as err:
            return [(("parser",), str(err))]
        return []

    @staticmethod
    def produces(options, task) -> set[str]:
        if task.classification:
            return set(CLASSIFICATION_METRICS)
        out = {"n", "n_reference", "accuracy"}
        for c in conventions(options.parser):
            out |= {f"accuracy{_suffix(c)}", f"n_unparsed{_suffix(c)}"}
        return out

    @staticmethod
    def needs_model(options: dict[str, Any]) -> bool:
        return options.get("backend", "hf") != "vllm"  # vLLM loads the checkpoint itself

    def run(self, inp: EvalInput) -> list[dict[str, Any]]:
        from ftlab.evaluate.generation import generate

        o = inp.options
        readers = conventions(o["parser"])
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
            record = out | {"source": example.meta.get("source"), "label": example.label}
            if inp.labels is not None:
                parsed = next(iter(readers.values()))(out["text"])
                record |= {"parsed": parsed, "pred": parsed if parsed in inp.labels else None}
            else:
                # The reference is read with the first (strict) convention: GSM8K references always have "#### N".
                reference = example.completion
                first = next(iter(readers.values()))
                record["reference"] = normalise(first(reference)) if reference is not None else None
                for c, parse in readers.items():
                    record[f"parsed{_suffix(c)}"] = normalise(parse(out["text"]))
            records.append(record)
        return records

    def metrics(self, records, inp) -> dict[str, Metric]:
        if inp.labels is not None:
            return classification_metrics([r["label"] for r in records], [r["pred"] for r in records], positive=inp.positive)
        n = len(records)
        scored = [r for r in records if r.get("reference") is not None]
        out = {"n": Metric(float(n)), "n_reference": Metric(float(len(scored)))}
        for c in conventions(inp.options["parser"]):
            key = f"parsed{_suffix(c)}"
            out[f"n_unparsed{_suffix(c)}"] = Metric(float(sum(r[key] is None for r in records)))
            if not n:
                out[f"accuracy{_suffix(c)}"] = Metric(None, EMPTY_SPLIT)
            elif not scored:
                out[f"accuracy{_suffix(c)}"] = Metric(None, "no reference answers in this split (prompts only)")
            else:
                out[f"accuracy{_suffix(c)}"] = Metric(sum(r[key] is not None and r[key] == r["reference"] for r in scored) / len(scored))
        first = next(iter(conventions(inp.options["parser"])))
        out["accuracy"] = out[f"accuracy{_suffix(first)}"]
        return out
