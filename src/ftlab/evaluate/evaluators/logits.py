"""`logits`: each label's full trained answer scored by summed log-probability (ftlab.evaluate.logits)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ftlab.evaluate.base import EvalInput, Options, evaluators
from ftlab.evaluate.metrics import CLASSIFICATION_METRICS, Metric, classification_metrics

# Mean label_mass below this on a trained checkpoint: the scores compare answers the model would
# not write. 0.5 leaves room for label noise; round 1's boxed-answer bug sat at ~0.001.
LOW_LABEL_MASS = 0.5


@evaluators.register("logits")
class LogitsEvaluator:
    """Any label set; the metrics of a binary task plus calibration and the label set's probability mass."""

    name, version = "logits", 3

    class Options(Options):
        calibration_bins: int = Field(10, ge=1, le=1000)

    @staticmethod
    def check(options, task) -> list[tuple[tuple, str]]:
        if not task.classification:
            return [(("name",), "the logits evaluator scores a label set; a generation task has none "
                               "(use the generate evaluator with a parser)")]
        return []

    @staticmethod
    def produces(options, task) -> set[str]:
        return set(CLASSIFICATION_METRICS) | {"ece", "label_mass"}

    def run(self, inp: EvalInput) -> list[dict[str, Any]]:
        from ftlab.evaluate.logits import classify

        return classify(inp.model, inp.tokenizer, inp.examples, inp.labels, inp.batch_size, inp.answer_template)

    def metrics(self, records, inp) -> dict[str, Metric]:
        out = classification_metrics(
            [r["label"] for r in records], [r["pred"] for r in records], positive=inp.positive,
            scores=[r["probs"][inp.positive] for r in records],
        )
        out["ece"] = self._calibration(records, inp).metric()
        masses = [r["label_mass"] for r in records if "label_mass" in r]
        out["label_mass"] = Metric(sum(masses) / len(masses)) if masses else Metric(None, "no label_mass in the evidence")
        return out

    def details(self, records, inp) -> dict[str, Any]:
        """The reliability bins behind ECE, and a warning when the labels hold little probability."""
        from dataclasses import asdict

        out: dict[str, Any] = {"calibration_bins": [asdict(b) for b in self._calibration(records, inp).bins],
                               "answer_template": inp.answer_template}
        masses = [r["label_mass"] for r in records if "label_mass" in r]
        if masses and sum(masses) / len(masses) < LOW_LABEL_MASS:
            out["warning"] = (
                f"the labels' answers ({inp.answer_template!r}) hold only {sum(masses) / len(masses):.1%} of the "
                "probability at the answer on average: the model mostly writes something else there"
            )
        return out

    @staticmethod
    def _calibration(records, inp):
        """Top-label calibration (Guo et al. 2017) over the label set's probabilities."""
        from ftlab.evaluate.calibration import top_label_calibration

        return top_label_calibration([r["label"] for r in records], [r["probs"] for r in records], inp.options["calibration_bins"])
