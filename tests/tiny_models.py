"""Tiny randomly initialised transformers models, saved like Hub checkpoints, built without a network.

They let the `local:`/`hf:` loading code run for real in tests (config, weights, tokenizer, processor
files on disk) in milliseconds. Their outputs mean nothing: check shapes and invariants only.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers.pre_tokenizers import ByteLevel
from transformers import (
    BertConfig,
    BertModel,
    BertTokenizer,
    CLIPConfig,
    CLIPImageProcessorPil,
    CLIPModel,
    CLIPProcessor,
    CLIPTokenizer,
)

CLIP_PROJECTION_DIM = 16
CLIP_IMAGE_SIZE = 32  # frames of any size are resized/cropped to this by the saved image processor
BERT_HIDDEN = 24
BERT_WORDS = ("a", "cat", "dog", "sits", "on", "the", "sofa", "stock", "market", "crash", "kitten")


def _clip_tokenizer() -> CLIPTokenizer:
    """A byte-level BPE tokenizer with no merges: every byte is a token (the CLIP scheme, minus merges)."""
    alphabet = sorted(ByteLevel.alphabet())
    vocab = {char: i for i, char in enumerate(alphabet)}
    vocab.update({char + "</w>": len(alphabet) + i for i, char in enumerate(alphabet)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    return CLIPTokenizer(vocab=vocab, merges=[])


def save_tiny_clip(directory: Path, seed: int = 0) -> Path:
    """Save a random 2-layer CLIP (projection 16-d, 32 px images) with its processor; return the dir."""
    tokenizer = _clip_tokenizer()
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 32,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": CLIP_IMAGE_SIZE,
        "patch_size": 8,
    }
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=CLIP_PROJECTION_DIM)
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    size = CLIP_IMAGE_SIZE
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory


def save_tiny_bert(directory: Path, seed: int = 0) -> Path:
    """Save a random 2-layer BERT (hidden 24) with a word-level vocab of `BERT_WORDS`; return the dir."""
    specials = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    vocab = {token: i for i, token in enumerate((*specials, *BERT_WORDS))}
    tokenizer = BertTokenizer(vocab=vocab)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=BERT_HIDDEN,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = BertModel(config).eval()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
