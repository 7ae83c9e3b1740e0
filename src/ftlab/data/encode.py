"""Token encoding shared by training and evaluation, so both see the exact same prompt tokens.

The prompt is rendered with the tokenizer's chat template and the generation prompt; the
completion is whatever the full conversation adds after it (TRL's prompt-completion convention).
"""

from __future__ import annotations

from ftlab.data.example import Example
from ftlab.errors import DataError


def _ids(encoded) -> list[int]:
    # transformers 5 returns a BatchEncoding from apply_chat_template(tokenize=True); 4.x a list.
    if isinstance(encoded, list):
        return encoded
    return list(encoded["input_ids"])


def prompt_ids(tokenizer, prompt: list[dict[str, str]]) -> list[int]:
    return _ids(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True))


def example_ids(tokenizer, example: Example, max_length: int) -> tuple[list[int], list[int]]:
    """(input_ids, completion_mask) for one training example, truncated from the left of the prompt."""
    if example.completion is None:
        raise DataError(
            f"{example.meta.get('source', '?')}: the row has no answer to train on; "
            "prompt-only rows belong in a valid/test split"
        )
    prompt = prompt_ids(tokenizer, example.prompt)
    full = _ids(
        tokenizer.apply_chat_template(
            example.prompt + [{"role": "assistant", "content": example.completion}], tokenize=True
        )
    )
    cut = 0
    while cut < min(len(prompt), len(full)) and prompt[cut] == full[cut]:
        cut += 1
    completion = full[cut:]
    if not completion:
        raise DataError(f"{example.meta.get('source', '?')}: the answer encodes to no tokens")
    if len(completion) >= max_length:
        raise DataError(
            f"{example.meta.get('source', '?')}: the answer alone is {len(completion)} tokens, "
            f"more than train.max_length={max_length}; raise max_length"
        )
    # Keep the answer and the END of the prompt: the question sits right before the answer.
    head = full[:cut][-(max_length - len(completion)) :]
    return head + completion, [0] * len(head) + [1] * len(completion)


def label_token_ids(tokenizer, labels: list[str], prompt: list[dict[str, str]]) -> list[int]:
    """The first answer token of each label, encoded exactly as in training after `prompt`."""
    probe = Example(prompt=prompt, completion="", label=None, meta={})
    firsts = []
    for label in labels:
        ids, mask = example_ids(tokenizer, Example(probe.prompt, label, label, {}), max_length=1 << 20)
        firsts.append(ids[mask.index(1)])
    if len(set(firsts)) != len(firsts):
        raise DataError(
            f"labels {labels} start with the same token, so one answer position cannot tell them apart; "
            "use labels whose first tokens differ"
        )
    return firsts
