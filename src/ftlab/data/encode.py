"""The one encoder of ftlab: training sequences and evaluation contexts come from the same split.

    context, answer = split_turn(tokenizer, prompt)      # text before / after the answer's slot
    prompt_ids(tokenizer, prompt)                         # what the model sees before answering
    example_ids(tokenizer, example, max_length)           # prompt_ids + answer tokens, loss mask
    encode_for_training(tokenizer, example, max_length)   # the same, and how many prompt tokens were cut

The conversation is rendered by the tokenizer's chat template with a placeholder as the final
assistant message; the text before the placeholder is the context, the text after it (the
end-of-turn) follows every answer. Training tokenizes context, then answer + end-of-turn;
evaluation tokenizes the same context. So the two are equal by construction, whatever the
template's `add_generation_prompt` adds: DeepSeek-R1-Distill's generation prompt ends in
"<think>\\n", which its rendered conversations do not contain; an evaluation that appended the
generation prompt would ask the model a question it was never trained on.
"""

from __future__ import annotations

from functools import lru_cache

from ftlab.data.example import Example
from ftlab.errors import DataError

# No template rewrites this (no whitespace to trim, no think tags to strip, no special token).
SLOT = "\u2063FTLAB_ANSWER_SLOT\u2063"


def split_turn(tokenizer, prompt: list[dict[str, str]]) -> tuple[str, str]:
    """(context text, end-of-turn text) around the final assistant answer of `prompt`."""
    return _split_turn(tokenizer, _freeze(prompt))


@lru_cache(maxsize=4096)
def _split_turn(tokenizer, frozen: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    messages = [{"role": r, "content": c} for r, c in frozen] + [{"role": "assistant", "content": SLOT}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    if text.count(SLOT) != 1:
        raise DataError(
            "the tokenizer's chat template does not render the assistant answer verbatim once; "
            "ftlab cannot tell where the answer starts (use a template that renders message content)"
        )
    before, after = text.split(SLOT)
    return before, after


def _freeze(prompt: list[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((m["role"], m["content"]) for m in prompt)


def _tokens(tokenizer, text: str) -> list[int]:
    # The template already wrote every special token it wants (BOS included): add none.
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def prompt_ids(tokenizer, prompt: list[dict[str, str]]) -> list[int]:
    """The tokens before the answer: exactly the training context of `prompt`."""
    return _tokens(tokenizer, split_turn(tokenizer, prompt)[0])


def answer_ids(tokenizer, prompt: list[dict[str, str]], answer: str) -> list[int]:
    """The tokens training puts after prompt_ids for `answer`, end-of-turn included."""
    return _tokens(tokenizer, answer + split_turn(tokenizer, prompt)[1])


def example_ids(tokenizer, example: Example, max_length: int) -> tuple[list[int], list[int]]:
    """(input_ids, completion_mask) for one training example, truncated from the left of the prompt."""
    ids, mask, _ = encode_for_training(tokenizer, example, max_length)
    return ids, mask


def encode_for_training(tokenizer, example: Example, max_length: int) -> tuple[list[int], list[int], int]:
    """(input_ids, completion_mask, prompt tokens cut from the left to fit max_length)."""
    source = example.meta.get("source", "?")
    if example.completion is None:
        raise DataError(f"{source}: this row has no answer to train on; give it one or use it for evaluation only")
    context = prompt_ids(tokenizer, example.prompt)
    completion = answer_ids(tokenizer, example.prompt, example.completion)
    if not completion:
        raise DataError(f"{source}: the answer encodes to no tokens")
    if len(completion) >= max_length:
        raise DataError(
            f"{source}: the answer alone is {len(completion)} tokens, "
            f"more than train.max_length={max_length}; raise max_length"
        )
    # Keep the answer and the END of the prompt: the question sits right before the answer.
    head = context[-(max_length - len(completion)) :]
    return head + completion, [0] * len(head) + [1] * len(completion), len(context) - len(head)


def label_token_ids(tokenizer, labels: list[str], prompt: list[dict[str, str]]) -> list[int]:
    """The first answer token of each label, encoded exactly as in training after `prompt`."""
    firsts = [answer_ids(tokenizer, prompt, label)[0] for label in labels]
    if len(set(firsts)) != len(firsts):
        raise DataError(
            f"labels {labels} start with the same token, so one answer position cannot tell them apart; "
            "use labels whose first tokens differ"
        )
    return firsts
