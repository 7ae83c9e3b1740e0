"""The shape of a classification task's trained answers: `{label}`, `\\boxed{{label}}`, ...

    answer_template(train_examples, labels=["Accept", "Reject"])   # -> "\\boxed{{label}}"

The logits evaluator scores a label by the exact answer training wrote for it, so it needs that
answer's shape. Detected from the train answers (each answer with its label replaced by `{label}`;
all must agree), or given as `task.answer_template` and then checked against the same answers.
"""

from __future__ import annotations

from collections import Counter

from ftlab.data.example import Example
from ftlab.errors import DataError

PLACEHOLDER = "{label}"


def _shape(example: Example) -> str | None:
    answer, label = example.completion, example.label
    if answer is None or label is None or answer.count(label) != 1:
        return None
    return answer.replace(label, PLACEHOLDER)


def answer_template(examples: list[Example], given: str | None = None) -> str:
    """The one answer shape of these labelled answers; DataError (with examples) when there is none."""
    labelled = [e for e in examples if e.label is not None and e.completion is not None]
    if given is not None:
        wrong = [e for e in labelled if e.completion != given.replace(PLACEHOLDER, e.label)]
        if wrong:
            e = wrong[0]
            raise DataError(
                f"task.answer_template {given!r} does not match {len(wrong)} of {len(labelled)} train answers, "
                f"e.g. {e.meta.get('source', '?')}: {_cut(e.completion)!r}; fix the template or the data"
            )
        return given
    shapes = Counter(_shape(e) for e in labelled)
    if not shapes:
        return PLACEHOLDER  # nothing to learn the shape from (an untrained control): the bare label
    if len(shapes) == 1 and None not in shapes:
        return next(iter(shapes))
    (common, n), *others = shapes.most_common()
    odd = next(e for e in labelled if _shape(e) != common)
    raise DataError(
        f"the train answers do not share one shape around their label ({len(shapes)} shapes; "
        f"{n} of {len(labelled)} are {common!r}, but {odd.meta.get('source', '?')} answers {_cut(odd.completion)!r}). "
        "The logits evaluator scores each label's full answer right after the prompt, so every answer must be "
        "its label in one fixed shape: set task.answer_template (e.g. '\\boxed{{label}}') if they are, "
        "or score free-form answers with the generate evaluator and a parser (e.g. parser: boxed)"
    )


def _cut(text: str | None, width: int = 80) -> str:
    text = text or ""
    return text if len(text) <= width else text[: width - 3] + "..."
