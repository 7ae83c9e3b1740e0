"""One normalised training example: the shape every dataset format is converted to.

    ex = Example(prompt=[{"role": "user", "content": "2+2?"}], completion="4", label=None, meta={})
    Example.from_json(ex.to_json()) == ex  # True; this is the line format of ftlab's own .jsonl files
    Example(prompt=[{"role": "user", "content": "How do I ...?"}], completion=None)  # prompt-only row
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Example:
    """A chat prompt, the assistant answer to train on, and the answer's class label if any."""

    # Chat messages before the answer, each {"role": "system"|"user"|"assistant", "content": str}.
    prompt: list[dict[str, str]]
    # The final assistant message's text: the training target. None for a prompt-only row (an
    # evaluation split with no reference, e.g. safety prompts scored by a judge).
    completion: str | None
    # Class label from the task's label set, or None when the task has no label set.
    label: str | None = None
    # Other top-level columns of the source row (year, specialty...) plus "source": "<file>:<line>".
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt": [dict(m) for m in self.prompt],
            "completion": self.completion,
            "label": self.label,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Example:
        """Rebuild an Example from to_json output; ValueError says which field is wrong."""
        if not isinstance(d, dict):
            raise ValueError(f"expected a JSON object, got {type(d).__name__}")
        prompt = d.get("prompt")
        if not isinstance(prompt, list) or not all(_is_message(m) for m in prompt):
            raise ValueError("'prompt' must be a list of {'role', 'content'} messages")
        completion = d.get("completion")
        if completion is not None and not isinstance(completion, str):
            raise ValueError("'completion' must be a string or null")
        label = d.get("label")
        if label is not None and not isinstance(label, str):
            raise ValueError("'label' must be a string or null")
        meta = d.get("meta", {})
        if not isinstance(meta, dict):
            raise ValueError("'meta' must be an object")
        return cls(
            prompt=[{"role": m["role"], "content": m["content"]} for m in prompt],
            completion=completion,
            label=label,
            meta=dict(meta),
        )


def _is_message(m: Any) -> bool:
    return (
        isinstance(m, dict)
        and m.get("role") in ROLES
        and isinstance(m.get("content"), str)
    )
