"""One encoder: the evaluation context equals the training context, whatever the chat template adds."""

from __future__ import annotations

import copy

from ftlab.data.encode import answer_ids, example_ids, prompt_ids
from ftlab.data.example import Example

# DeepSeek-R1-Distill's shape: the generation prompt adds "<think>\n", which a rendered
# conversation (the training text) does not contain.
THINK_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n<think>\n' }}{% endif %}"
)

PROMPT = [{"role": "system", "content": "You are a reviewer."}, {"role": "user", "content": "Accept or reject?"}]


def _tokenizer(tiny_model_dir, template=None):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    if template is not None:
        tok = copy.deepcopy(tok)
        tok.chat_template = template
    return tok


def test_eval_context_is_the_training_context_with_a_think_generation_prompt(tiny_model_dir):
    tok = _tokenizer(tiny_model_dir, THINK_TEMPLATE)
    ids, mask = example_ids(tok, Example(PROMPT, "\\boxed{Accept}", "Accept", {}), max_length=512)
    context = ids[: mask.index(1)]
    assert prompt_ids(tok, PROMPT) == context
    # the old evaluation context (chat template + generation prompt) is a different question
    generation_prompt = tok.apply_chat_template(PROMPT, add_generation_prompt=True, tokenize=False)
    assert generation_prompt.endswith("<think>\n")
    assert tok(generation_prompt, add_special_tokens=False)["input_ids"] != context
    # the answer follows the context directly and ends with the template's end of turn
    assert tok.decode(ids[mask.index(1) :]) == "\\boxed{Accept}<|im_end|>\n"


def test_training_ids_are_context_then_answer(tiny_model_dir):
    tok = _tokenizer(tiny_model_dir)
    example = Example(PROMPT, "P", "P", {})
    ids, mask = example_ids(tok, example, max_length=512)
    assert ids == prompt_ids(tok, PROMPT) + answer_ids(tok, PROMPT, "P")
    assert sum(mask) == len(answer_ids(tok, PROMPT, "P"))
    # the ChatML template's own text is reproduced exactly
    full = tok.apply_chat_template(PROMPT + [{"role": "assistant", "content": "P"}], tokenize=False)
    assert tok.decode(ids) == full


def test_truncation_keeps_the_answer_and_the_end_of_the_prompt(tiny_model_dir):
    tok = _tokenizer(tiny_model_dir)
    long = [{"role": "user", "content": "word " * 300 + "final question?"}]
    ids, mask = example_ids(tok, Example(long, "N", "N", {}), max_length=40)
    assert len(ids) == 40 and ids[-sum(mask):] == answer_ids(tok, long, "N")
    assert ids[: 40 - sum(mask)] == prompt_ids(tok, long)[-(40 - sum(mask)) :]
    # ... and says how much it cut, so the train stage can warn (evaluation reads the whole prompt)
    from ftlab.data.encode import encode_for_training
    from ftlab.train.stage import truncation_warning

    _, _, cut = encode_for_training(tok, Example(long, "N", "N", {}), max_length=40)
    assert cut == len(prompt_ids(tok, long)) - (40 - sum(mask)) > 0
    assert encode_for_training(tok, Example(long, "N", "N", {}), max_length=4096)[2] == 0
    assert truncation_warning(0, 10, 40) == []
    assert "3 of 10 train examples (30%) are longer than train.max_length=40" in truncation_warning(3, 10, 40)[0]
