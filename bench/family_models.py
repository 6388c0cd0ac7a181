"""Random models of every supported family at any size, each with a tokenizer trained here on the shared SQuAD slice.

Only MiniLM is packaged, so the other families are tested and benchmarked on models built from their
configs (tiny in the tests, real shapes such as roberta-base in ``bench.families``): a
WordPiece vocabulary for BERT, DistilBERT and ELECTRA, byte-level BPE for RoBERTa, and a Unigram
(SentencePiece-style) vocabulary for XLM-RoBERTa and DeBERTa-v2/v3, each wrapped in the family's own
fast tokenizer class (so its conventions hold: ``<s> A </s></s> B </s>``, no ``token_type_ids`` for
RoBERTa and DistilBERT, ``add_prefix_space``, the ``▁`` word marker). Nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

FAMILIES = ("bert", "roberta", "xlm-roberta", "distilbert", "electra", "deberta-v2")
TOKENIZER_KIND = {
    "bert": "wordpiece", "distilbert": "wordpiece", "electra": "wordpiece",
    "roberta": "bpe", "xlm-roberta": "unigram", "deberta-v2": "unigram",
}  # fmt: skip


def corpus(squad_file: str | Path, limit: int = 1500) -> Iterator[str]:
    """Contexts and questions of the SQuAD file: what the tokenizers are trained on."""
    data = json.loads(Path(squad_file).read_text())["data"]
    n = 0
    for article in data:
        for para in article["paragraphs"]:
            yield para["context"]
            for qa in para["qas"]:
                yield qa["question"]
                n += 1
            if n >= limit:
                return


def train_tokenizer(kind: str, squad_file: str | Path, vocab_size: int = 2000) -> Any:
    """A transformers fast tokenizer of ``kind``'s family conventions, trained on ``squad_file``."""
    import transformers
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    texts = list(corpus(squad_file))
    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
        return transformers.BertTokenizer(vocab=tok.get_vocab(), do_lower_case=True)
    if kind == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(texts, trainer)
        model = json.loads(tok.to_str())["model"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        return transformers.RobertaTokenizer(vocab=model["vocab"], merges=merges)
    if kind == "unigram":
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        specials = ["<pad>", "<s>", "</s>", "<unk>", "<mask>", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"]
        tok.train_from_iterator(texts, trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>"))
        vocab = [tuple(v) for v in json.loads(tok.to_str())["model"]["vocab"]]
        return vocab  # wrapped per family: XLM-R and DeBERTa-v2 name their special tokens differently
    raise ValueError(f"unknown tokenizer kind {kind!r}")


def family_tokenizer(family: str, squad_file: str | Path, vocab_size: int = 2000) -> Any:
    import transformers

    made = train_tokenizer(TOKENIZER_KIND[family], squad_file, vocab_size)
    if family == "xlm-roberta":
        return transformers.XLMRobertaTokenizer(vocab=made)
    if family == "deberta-v2":
        return transformers.DebertaV2Tokenizer(vocab=made, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                               sep_token="[SEP]", mask_token="[MASK]", bos_token="[CLS]", eos_token="[SEP]")  # fmt: skip
    if family == "distilbert":
        return transformers.DistilBertTokenizer(vocab=made.get_vocab(), do_lower_case=True)
    if family == "electra":
        return transformers.ElectraTokenizer(vocab=made.get_vocab(), do_lower_case=True)
    return made


def family_config(family: str, tokenizer: Any, *, hidden: int = 64, layers: int = 4, heads: int = 4, ffn: int = 128) -> Any:
    """The family's own config class at a tiny size (``max_position_embeddings`` 512: windows of 384 fit)."""
    import transformers

    vocab = len(tokenizer)
    pad = tokenizer.pad_token_id
    if family == "distilbert":
        return transformers.DistilBertConfig(vocab_size=vocab, dim=hidden, n_layers=layers, n_heads=heads, hidden_dim=ffn,
                                             max_position_embeddings=512, pad_token_id=pad)  # fmt: skip
    common: dict[str, Any] = dict(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                  intermediate_size=ffn, pad_token_id=pad)  # fmt: skip
    if family == "bert":
        return transformers.BertConfig(**common, max_position_embeddings=512)
    if family in ("roberta", "xlm-roberta"):
        cls = transformers.RobertaConfig if family == "roberta" else transformers.XLMRobertaConfig
        # positions start after the padding index (pad + 1), as in roberta-base: 512 windows need 514
        return cls(**common, max_position_embeddings=512 + pad + 1, type_vocab_size=1,
                   bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)  # fmt: skip
    if family == "electra":
        return transformers.ElectraConfig(**common, embedding_size=hidden // 2, max_position_embeddings=512)
    if family == "deberta-v2":
        # DeBERTa-v3's attention: relative positions (buckets), c2p and p2c, shared key projections, no absolute positions
        return transformers.DebertaV2Config(**common, max_position_embeddings=512, relative_attention=True, position_buckets=64,
                                            pos_att_type=["p2c", "c2p"], share_att_key=True, norm_rel_ebd="layer_norm",
                                            position_biased_input=False, max_relative_positions=-1, type_vocab_size=0)  # fmt: skip
    raise ValueError(f"unknown family {family!r}")


def qa_class(family: str) -> Any:
    import transformers

    return {
        "bert": transformers.BertForQuestionAnswering,
        "roberta": transformers.RobertaForQuestionAnswering,
        "xlm-roberta": transformers.XLMRobertaForQuestionAnswering,
        "distilbert": transformers.DistilBertForQuestionAnswering,
        "electra": transformers.ElectraForQuestionAnswering,
        "deberta-v2": transformers.DebertaV2ForQuestionAnswering,
    }[family]


def tiny_family_model(family: str, out_dir: Path, squad_file: str | Path, *, qa_head: bool = True, seed: int = 0, **sizes: int) -> Path:
    """Save a tiny random ``*ForQuestionAnswering`` of ``family`` with its tokenizer under ``out_dir``.

    ``qa_head=False`` writes the base encoder's architecture name instead (the service fine-tunes it first).
    """
    import torch

    tok = family_tokenizer(family, squad_file)
    cfg = family_config(family, tok, **sizes)
    torch.manual_seed(seed)
    model = qa_class(family)(cfg)
    if not qa_head:
        model.config.architectures = [type(model).__name__.replace("ForQuestionAnswering", "Model")]
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    if not qa_head:
        cfg_path = out_dir / "config.json"
        config = json.loads(cfg_path.read_text())
        config["architectures"] = model.config.architectures
        cfg_path.write_text(json.dumps(config, indent=2))
    return out_dir


def calibration_windows(tokenizer: Any, train_file: str, seq_len: int, count: int) -> list[dict[str, Any]]:
    """``count`` single-window batches of real SQuAD windows in the family's own tokenizer."""
    from core.qa.features import prepare_train_features
    from core.qa.squad import load_squad

    feats = prepare_train_features(load_squad(train_file, limit=4 * count), tokenizer, max_seq_length=seq_len, doc_stride=seq_len // 4)
    rows = range(min(count, len(feats.input_ids)))
    return [{"input_ids": feats.input_ids[i : i + 1], "attention_mask": feats.attention_mask[i : i + 1],
             "token_type_ids": feats.token_type_ids[i : i + 1]} for i in rows]  # fmt: skip
