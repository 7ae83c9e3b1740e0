"""Rows of a batch that start with the same tokens compute that prefix once.

    shared_prefix.install(model)          # attention that can serve a packed, shared-prefix layout
    layout = shared_prefix.plan(kwargs)   # the batch's shared prefix, or None
    hidden = shared_prefix.run(body, kwargs, layout)   # (rows, length, hidden), as body(**kwargs) gives

Few-shot rows carry the same shots, and chat rows the same system prompt (SmolLM2's template adds
one to every conversation: 31 tokens). A causal model's hidden states at those positions do not
depend on anything after them, so they are the same in every row. Here the prefix runs once, as
one row of P positions, and each row's remainder (S positions, right-padded as TRL pads) attends to
the prefix's keys and values and to its own, causally: one sequence of P + rows x S positions
instead of rows x (P + S). The decoder layers, norms and LoRA layers see fewer positions; only
attention knows the layout, through the `shared_prefix` argument transformers passes from the
model's forward to its attention function. The loss is the same: the prefix's hidden states are
expanded back to every row before the output layer, and autograd sums their gradients.

The attention function is registered as "ftlab_sdpa": SDPA itself whenever no layout is passed
(generation, evaluation, padded or left-padded batches), so installing it changes nothing else.
`install` checks the layout against the plain forward on a small batch and keeps SDPA where they
differ (sliding windows, attention biases, models that ignore position ids), or where attention is
not SDPA or the model is quantized (QLoRA). A model saved while it is installed records "sdpa"
(`_attn_implementation` is not saved).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from ftlab.train.head import head_owner
from ftlab.train.padding_mask import right_padded

NAME = "ftlab_sdpa"
# Shorter prefixes are not worth a second attention call per layer.
MIN_PREFIX = 16
_PROBE = {"prefix": 8, "rows": 3, "suffix": 5}


@dataclass(frozen=True)
class Layout:
    prefix: int  # P: positions every row shares
    rows: int
    suffix: int  # S: each row's positions after the prefix (padded to the longest)
    # (S, P + S) additive mask of a remainder's queries over the prefix's and its own keys. Made once
    # per forward (`run`) in the model's dtype: SDPA's CPU kernel turns a boolean mask into a float
    # copy in every layer, and one made inside a checkpointed layer is made again in its recompute.
    mask: torch.Tensor | None = field(default=None, compare=False, repr=False)

    @property
    def positions(self) -> int:
        return self.prefix + self.rows * self.suffix

    def worth_it(self, ratio: float) -> bool:
        """Whether the positions saved outweigh the attention added. `ratio`: a position's FLOPs in a
        decoder layer outside attention over one (query, key) pair's (`position_to_pair`). The
        remainders' mask makes SDPA compute their whole S x S block, where `is_causal` skips the
        upper half: rows x S^2 / 2 pairs more, less the prefix's own (rows - 1) x P^2 / 2. SmolLM2
        (ratio 3,073), 8 rows: a 31-token system prompt pays before 170-token remainders, not
        before 1,000-token ones; 5 shots of 150 tokens always do."""
        saved = (self.rows - 1) * self.prefix * ratio + (self.rows - 1) * self.prefix**2 / 2
        return saved > self.rows * self.suffix**2 / 2


def common_prefix(input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> int:
    """How many leading positions hold the same real token in every row, leaving each row at least
    its last position."""
    same = (input_ids == input_ids[:1]).all(0)
    if attention_mask is not None:
        same &= attention_mask.bool().all(0)
    return min(int(same.long().cumprod(0).sum()), input_ids.shape[1] - 1)


def rows_prefix(rows: list[list[int]]) -> int:
    """The prefix every one of `rows` (token ids) shares, as `plan` would use it; 0 when too short."""
    if len(rows) < 2:
        return 0
    first, n = rows[0], min(len(r) for r in rows) - 1
    for row in rows[1:]:
        n = next((i for i in range(n) if row[i] != first[i]), n)
    return n if n >= MIN_PREFIX else 0


def plan(kwargs: dict, ratio: float = float("inf")) -> Layout | None:
    """The layout for a body forward called with `kwargs`, or None where the batch does not qualify:
    fewer than 2 rows, a mask that is not right padding, explicit positions or embeddings, a cache,
    or a prefix too short for the rest (`Layout.worth_it` at `ratio`)."""
    ids, mask = kwargs.get("input_ids"), kwargs.get("attention_mask")
    if ids is None or ids.dim() != 2 or ids.shape[0] < 2:
        return None
    if any(kwargs.get(k) is not None for k in ("inputs_embeds", "position_ids", "past_key_values")):
        return None
    if mask is not None and (mask.dim() != 2 or not right_padded(mask)):
        return None
    prefix = common_prefix(ids, mask)
    layout = Layout(prefix, ids.shape[0], ids.shape[1] - prefix)
    return layout if prefix >= MIN_PREFIX and layout.worth_it(ratio) else None


def pack(input_ids: torch.Tensor, layout: Layout) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, position ids), each (1, P + rows x S): the prefix once, then every row's remainder."""
    p = layout.prefix
    ids = torch.cat([input_ids[0, :p], input_ids[:, p:].reshape(-1)])[None]
    positions = torch.arange(p + layout.suffix, device=input_ids.device)
    positions = torch.cat([positions[:p], positions[p:].repeat(layout.rows)])[None]
    return ids, positions


def unpack(hidden: torch.Tensor, layout: Layout) -> torch.Tensor:
    """(1, P + rows x S, H) -> (rows, P + S, H), the prefix expanded to every row."""
    p, width = layout.prefix, hidden.shape[-1]
    prefix = hidden[:, :p].expand(layout.rows, p, width)
    return torch.cat([prefix, hidden[0, p:].view(layout.rows, layout.suffix, width)], dim=1)


def run(body, kwargs: dict, layout: Layout) -> torch.Tensor:
    """The body's last hidden states for the batch in `kwargs`, computed in the shared layout."""
    ids, positions = pack(kwargs["input_ids"], layout)
    rest = {k: v for k, v in kwargs.items() if k not in ("input_ids", "attention_mask")}
    p, s = layout.prefix, layout.suffix
    visible = torch.ones(s, p + s, dtype=torch.bool, device=ids.device).tril(p)
    layout = replace(layout, mask=torch.zeros(s, p + s, dtype=body.dtype, device=ids.device).masked_fill_(~visible, float("-inf")))
    # A 4-D mask is passed through to attention as is (transformers builds none); attention ignores it.
    unused = torch.ones(1, 1, 1, 1, dtype=torch.bool, device=ids.device)
    out = body(input_ids=ids, position_ids=positions, attention_mask=unused, shared_prefix=layout, **rest)
    return unpack(out.last_hidden_state, layout)


def attention(module, query, key, value, attention_mask, shared_prefix: Layout | None = None, **kwargs):
    """transformers' SDPA attention; with `shared_prefix`, the packed layout (query, key, value are
    (1, heads, P + rows x S, head_dim)): the prefix attends causally to itself, each row's remainder
    to the prefix and causally to itself."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if shared_prefix is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    if kwargs.get("sliding_window") is not None or kwargs.get("softcap") is not None:
        raise ValueError("shared-prefix attention: sliding windows and soft-capping are not supported")
    p, rows, s = shared_prefix.prefix, shared_prefix.rows, shared_prefix.suffix
    kwargs.pop("is_causal", None)
    head = sdpa_attention_forward(module, query[:, :, :p], key[:, :, :p], value[:, :, :p], None, is_causal=True, **kwargs)[0]

    def remainder(x):  # (1, heads, P + rows x S, d) -> (rows, heads, S, d), a view
        return x[0, :, p:].unflatten(1, (rows, s)).transpose(0, 1)

    def with_prefix(x):
        return torch.cat([x[:, :, :p].expand(rows, -1, -1, -1), remainder(x)], dim=2)

    visible = shared_prefix.mask.to(query.dtype)  # the same tensor unless autocast changed the dtype
    keys, values = with_prefix(key), with_prefix(value)
    # SDPA directly: with a mask, transformers repeats the key/value heads (repeat_kv) for every row.
    # On CPU enable_gqa reads them shared (also faster: 31 vs 38 ms at 8 x 150 x 750); CUDA's
    # memory-efficient kernel takes a mask but not grouped heads, so there they are repeated.
    gqa = query.shape[1] != key.shape[1] and grouped_heads_in_kernel(query.device)
    if not gqa and query.shape[1] != key.shape[1]:
        keys, values = (x.repeat_interleave(query.shape[1] // key.shape[1], dim=1) for x in (keys, values))
    tail = torch.nn.functional.scaled_dot_product_attention(
        remainder(query), keys, values, attn_mask=visible, dropout_p=kwargs.get("dropout", 0.0),
        scale=kwargs.get("scaling"), enable_gqa=gqa)
    return torch.cat([head, tail.transpose(1, 2).reshape(1, rows * s, *head.shape[2:])], dim=1), None


def grouped_heads_in_kernel(device: torch.device) -> bool:
    return device.type == "cpu"


def _heads(model) -> tuple[int, int, int]:
    """(query heads, key/value heads, head_dim) of `model`'s attention."""
    text = head_owner(model).config.get_text_config()
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    return text.num_attention_heads, getattr(text, "num_key_value_heads", None) or text.num_attention_heads, head_dim


def row_key_bytes(model, device: torch.device, elem: int) -> float:
    """Bytes per row per key position of the keys and values `attention` copies for the remainders
    in one layer (grouped heads where the kernel reads them so, else repeated per query head)."""
    heads, kv_heads, head_dim = _heads(model)
    return 2 * (kv_heads if grouped_heads_in_kernel(device) else heads) * head_dim * elem


def register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, sdpa_mask

    if NAME not in ALL_MASK_ATTENTION_FUNCTIONS:
        AttentionInterface.register(NAME, attention)
        AttentionMaskInterface.register(NAME, sdpa_mask)  # the masks SDPA gets, for every other forward


def installed(model) -> bool:
    return getattr(head_owner(model).config, "_attn_implementation", None) == NAME


def plan_for(model, kwargs: dict) -> Layout | None:
    """`plan` for a forward of `model` with `kwargs`; None where the layout is not installed."""
    if not installed(model):
        return None
    owner = head_owner(model)
    if not hasattr(owner, "_ftlab_position_to_pair"):
        owner._ftlab_position_to_pair = position_to_pair(owner)
    return plan(kwargs, owner._ftlab_position_to_pair)


def position_to_pair(model) -> float:
    """A position's FLOPs in a decoder layer outside attention (2 x the layer's weights) over one
    (query, key) pair's in attention (4 x heads x head_dim: QK^T and AV): 3,073 for SmolLM2."""
    from ftlab.train.memory import decoder_layers

    heads, _, head_dim = _heads(model)
    layer = decoder_layers(head_owner(model).base_model)[0]
    weights = sum(p.numel() for n, p in layer.named_parameters() if "lora_" not in n)
    return 2 * weights / (4 * heads * head_dim)


def install(model) -> bool:
    """Serve shared-prefix layouts on `model` if its attention is SDPA and a probe batch gives the
    plain forward's hidden states; True when installed."""
    owner = head_owner(model)
    if installed(model):
        return True
    if getattr(owner.config, "_attn_implementation", None) != "sdpa":
        return False
    if getattr(owner, "is_quantized", False):
        # The probe is an inference forward, and bitsandbytes repacks 4-bit weights in place for
        # its CPU inference kernel on the first one (Linear4bit.forward, CPUs with AVX512-BF16);
        # QLoRA training then failed on them in CI ("a view of a leaf Variable ... in-place").
        return False
    register()
    owner.set_attn_implementation(NAME)
    if not _agrees(owner.base_model):
        owner.set_attn_implementation("sdpa")
        return False
    return True


def _agrees(body) -> bool:
    """The shared layout's hidden states equal the plain forward's on a small random batch."""
    config = body.config.get_text_config()
    p, rows, s = _PROBE["prefix"], _PROBE["rows"], _PROBE["suffix"]
    device = next(body.parameters()).device
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, min(config.vocab_size, 1000), (rows, p + s), generator=gen).to(device)
    ids[:, :p] = ids[0, :p]
    mask = torch.ones_like(ids)
    mask[-1, -2:] = 0
    layout = Layout(p, rows, s)
    was_training = body.training
    body.eval()
    try:
        with torch.no_grad():
            plain = body(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
            shared = run(body, {"input_ids": ids, "attention_mask": mask, "use_cache": False}, layout)
    except (TypeError, ValueError, RuntimeError):
        return False
    finally:
        body.train(was_training)
    real = mask.bool()
    scale = plain[real].abs().max().clamp(min=1e-6)
    return bool(((plain[real] - shared[real]).abs().max() / scale) < 1e-4)
