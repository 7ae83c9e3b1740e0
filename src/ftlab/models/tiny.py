"""Build a tiny causal LM offline: random weights + a byte-level BPE tokenizer trained locally.

The result is a normal HF directory that `AutoModelForCausalLM.from_pretrained` and
`AutoTokenizer.from_pretrained` load, so every later stage uses the real loading path.

    ftlab model build-tiny --out models/tiny --corpus data/train.jsonl

Why Qwen2's normalizer and split regex: transformers 5 rebuilds the tokenizer of a folder whose
config says `model_type: qwen2` as Qwen2Tokenizer with Qwen's own pre-tokenizer. Training our BPE with
exactly that pipeline makes the rebuilt tokenizer tokenize identically (tests assert it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from ftlab import atomic
from ftlab.errors import ModelError

# Qwen2's pre-tokenizer regex (digits split one by one); see module docstring for why it must match.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
PAD, BOS, EOS = "<|endoftext|>", "<|im_start|>", "<|im_end|>"

# ChatML with {% generation %} markers, so TRL's assistant_only_loss also works on these models.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}"
    "{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyConfig:
    """Shape of a tiny model. hidden 64 / 2 layers is ~0.1M non-embedding params: a
    toy classification task trains in tens of seconds on 2 CPU cores."""

    architecture: str = "qwen2"
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 256
    vocab_size: int = 512
    max_position_embeddings: int = 1024
    seed: int = 0


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """Train a byte-level BPE with Qwen2's normalizer and pre-tokenizer; return a fast HF tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def model_config(cfg: TinyConfig, vocab_size: int):
    """The transformers config for a tiny model of `cfg.architecture`."""
    from transformers import LlamaConfig, Qwen2Config

    shared = dict(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True,
    )
    if cfg.architecture == "qwen2":
        return Qwen2Config(**shared)
    if cfg.architecture == "llama":
        return LlamaConfig(**shared)
    raise ModelError(f"Unknown tiny architecture '{cfg.architecture}'. Available: llama, qwen2")


def build_tiny(out: Path, cfg: TinyConfig, texts: Iterable[str]) -> Path:
    """Train the tokenizer on `texts`, init weights with `cfg.seed`, save both to `out`."""
    import torch
    from transformers import AutoModelForCausalLM

    texts = list(texts)
    if not texts:
        raise ModelError("Cannot build a tiny model: the tokenizer corpus is empty.")
    tokenizer = train_tokenizer(texts, cfg.vocab_size)
    config = model_config(cfg, vocab_size=len(tokenizer))
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.eos_token_id
    config.bos_token_id = tokenizer.convert_tokens_to_ids(BOS)
    torch.manual_seed(cfg.seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.save_pretrained(out)
    atomic.write_json(out / "ftlab_tiny.json", asdict(cfg) | {"n_params": model.num_parameters()})
    return out
