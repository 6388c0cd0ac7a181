"""A BERT question-answering model whose encoder layers each have their own heads and FFN width.

transformers 5 has no ``prune_heads`` and ``BertConfig`` has one width for all layers, so a
subnet whose widths differ per layer (or whose hidden size is not ``heads x head size``) cannot
be a plain ``BertForQuestionAnswering``. This file is the model class for those subnets. hwnas
copies it into every such model directory and names it in ``config.json``'s ``auto_map``, so

    AutoModelForQuestionAnswering.from_pretrained(dir, trust_remote_code=True)

loads the model with transformers alone (this file imports only torch and transformers).

The arithmetic is BERT's (post-LayerNorm, learned absolute positions, GELU FFN); the functions
``embed`` and ``encoder_layer`` are also what the hwnas supernet runs on sliced weights, so a
subnet extracted into this class computes exactly what the supernet computed for it.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import QuestionAnsweringModelOutput


def additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[batch, seq] 1/0 mask -> [batch, 1, 1, seq] additive mask (0 kept, dtype's minimum masked), as BERT does."""
    mask = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - mask) * torch.finfo(dtype).min


def embed(
    input_ids: torch.Tensor,
    token_type_ids: torch.Tensor | None,
    *,
    word: torch.Tensor,
    position: torch.Tensor,
    token_type: torch.Tensor,
    ln_weight: torch.Tensor,
    ln_bias: torch.Tensor,
    eps: float,
    dropout: float,
    training: bool,
) -> torch.Tensor:
    seq = input_ids.shape[1]
    if token_type_ids is None:
        token_type_ids = torch.zeros_like(input_ids)
    positions = torch.arange(seq, device=input_ids.device)
    x = F.embedding(input_ids, word) + F.embedding(token_type_ids, token_type) + F.embedding(positions, position)[None]
    x = F.layer_norm(x, (x.shape[-1],), ln_weight, ln_bias, eps)
    return F.dropout(x, dropout, training)


def encoder_layer(
    x: torch.Tensor,
    mask: torch.Tensor,
    w: dict[str, torch.Tensor],
    *,
    head_size: int,
    act: Any,
    eps: float,
    hidden_dropout: float,
    attention_dropout: float,
    training: bool,
) -> torch.Tensor:
    """One post-LN BERT layer on explicit weights ``w`` (query/key/value/attn_out/attn_ln/inter/out/out_ln)."""
    batch, seq, hidden = x.shape
    heads = w["query.weight"].shape[0] // head_size

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.view(batch, seq, heads, head_size).transpose(1, 2)

    q = split(F.linear(x, w["query.weight"], w["query.bias"]))
    k = split(F.linear(x, w["key.weight"], w["key.bias"]))
    v = split(F.linear(x, w["value.weight"], w["value.bias"]))
    ctx = F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask.to(q.dtype), dropout_p=attention_dropout if training else 0.0, scale=head_size**-0.5
    )
    ctx = ctx.transpose(1, 2).reshape(batch, seq, heads * head_size)
    a = F.dropout(F.linear(ctx, w["attn_out.weight"], w["attn_out.bias"]), hidden_dropout, training)
    x = F.layer_norm(a + x, (hidden,), w["attn_ln.weight"], w["attn_ln.bias"], eps)
    h = act(F.linear(x, w["inter.weight"], w["inter.bias"]))
    o = F.dropout(F.linear(h, w["out.weight"], w["out.bias"]), hidden_dropout, training)
    return F.layer_norm(o + x, (hidden,), w["out_ln.weight"], w["out_ln.bias"], eps)


class HwnasBertConfig(PretrainedConfig):
    model_type = "hwnas_bert"

    def __init__(
        self,
        vocab_size: int = 30522,
        hidden_size: int = 384,
        layer_heads: Sequence[int] = (12,),
        layer_ffn: Sequence[int] = (1536,),
        attention_head_size: int = 32,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        pad_token_id: int = 0,
        **kwargs: Any,
    ) -> None:
        if len(layer_heads) != len(layer_ffn):
            raise ValueError("layer_heads and layer_ffn need one entry per layer")
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.layer_heads = list(layer_heads)
        self.layer_ffn = list(layer_ffn)
        self.num_hidden_layers = len(self.layer_heads)
        self.attention_head_size = attention_head_size
        self.num_attention_heads = max(self.layer_heads)
        self.intermediate_size = max(self.layer_ffn)
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        super().__init__(pad_token_id=pad_token_id, **kwargs)


class HwnasBertLayer(nn.Module):
    NAMES = ("query", "key", "value", "attn_out", "attn_ln", "inter", "out", "out_ln")

    def __init__(self, hidden: int, heads: int, head_size: int, ffn: int) -> None:
        super().__init__()
        inner = heads * head_size
        self.query = nn.Linear(hidden, inner)
        self.key = nn.Linear(hidden, inner)
        self.value = nn.Linear(hidden, inner)
        self.attn_out = nn.Linear(inner, hidden)
        self.attn_ln = nn.LayerNorm(hidden)
        self.inter = nn.Linear(hidden, ffn)
        self.out = nn.Linear(ffn, hidden)
        self.out_ln = nn.LayerNorm(hidden)

    def weights(self) -> dict[str, torch.Tensor]:
        return {f"{n}.{p}": getattr(getattr(self, n), p) for n in self.NAMES for p in ("weight", "bias")}


class HwnasBertPreTrainedModel(PreTrainedModel):
    config_class = HwnasBertConfig
    base_model_prefix = "hwnas_bert"
    supports_gradient_checkpointing = False

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class HwnasBertForQuestionAnswering(HwnasBertPreTrainedModel):
    def __init__(self, config: HwnasBertConfig) -> None:
        super().__init__(config)
        h = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, h, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, h)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, h)
        self.embeddings_ln = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(
            HwnasBertLayer(h, heads, config.attention_head_size, ffn)
            for heads, ffn in zip(config.layer_heads, config.layer_ffn)
        )
        self.qa_outputs = nn.Linear(h, 2)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> QuestionAnsweringModelOutput:
        cfg = self.config
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        x = embed(
            input_ids,
            token_type_ids,
            word=self.word_embeddings.weight,
            position=self.position_embeddings.weight,
            token_type=self.token_type_embeddings.weight,
            ln_weight=self.embeddings_ln.weight,
            ln_bias=self.embeddings_ln.bias,
            eps=cfg.layer_norm_eps,
            dropout=cfg.hidden_dropout_prob,
            training=self.training,
        )
        mask = additive_mask(attention_mask, x.dtype)
        act = ACT2FN[cfg.hidden_act]
        for layer in self.layers:
            x = encoder_layer(
                x,
                mask,
                layer.weights(),
                head_size=cfg.attention_head_size,
                act=act,
                eps=cfg.layer_norm_eps,
                hidden_dropout=cfg.hidden_dropout_prob,
                attention_dropout=cfg.attention_probs_dropout_prob,
                training=self.training,
            )
        logits = self.qa_outputs(x)
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))
        loss = None
        if start_positions is not None and end_positions is not None:
            ignored = start_logits.size(1)
            loss = (
                F.cross_entropy(start_logits, start_positions.clamp(0, ignored), ignore_index=ignored)
                + F.cross_entropy(end_logits, end_positions.clamp(0, ignored), ignore_index=ignored)
            ) / 2
        return QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits)
