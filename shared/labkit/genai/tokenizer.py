"""Gemma's tokenizer, rebuilt exactly from the vocabulary inside the GGUF file.

The GGUF stores SentencePiece's pieces, scores and piece types (same numbering as
SentencePiece's ModelProto); from them we build a ModelProto (BPE with byte fallback, no
normalisation, no dummy prefix: Gemma 3's settings) and let the `sentencepiece` library
tokenize. Control tokens (<bos>, <start_of_turn>, ...) are never produced from user text:
they are placed by the prompt format only.
"""

from __future__ import annotations

import numpy as np


class GemmaTokenizer:
    BOS, EOS, PAD = 2, 1, 0
    START_OF_TURN, END_OF_TURN = 105, 106

    def __init__(self, vocab: dict):
        import sentencepiece as spm

        pieces, score_values, type_values = vocab["pieces"], vocab["scores"], vocab["types"]
        proto = _model_proto(pieces, score_values, type_values, unk=3, bos=self.BOS,
                             eos=self.EOS, pad=self.PAD)
        self._sp = spm.SentencePieceProcessor(model_proto=proto)
        self.pieces = pieces
        self.types = np.asarray(type_values)
        self.vocab_size = len(pieces)
        self._texts: list[str] | None = None

    def encode(self, text: str) -> list[int]:
        return list(self._sp.encode(text)) if text else []

    def decode(self, ids: list[int]) -> str:
        return self._sp.decode([i for i in ids if self.types[i] in (1, 4, 6)])

    def never_sampled(self) -> np.ndarray:
        """Tokens an answer never contains: markup tokens (<start_of_image>, <unusedN>,
        <mask>, ...) and unused ones; the end of turn and end of text stay, they end it."""
        if getattr(self, "_never", None) is None:
            markup = np.array([p.startswith("<") and p.endswith(">") and len(p) > 2
                               for p in self.pieces])
            never = ((self.types == 4) & markup) | (self.types == 5) | (self.types == 2)
            never[[self.EOS, self.END_OF_TURN]] = False
            never[[self.BOS, self.PAD]] = True
            self._never = never
        return self._never

    def piece(self, token: int) -> str:
        return self.pieces[token]

    def token_texts(self) -> list[str]:
        """The text each token stands for ('' for control and byte tokens)."""
        if self._texts is None:
            self._texts = [p.replace("\u2581", " ") if t in (1, 4) else ""
                           for p, t in zip(self.pieces, self.types, strict=True)]
        return self._texts


# sentencepiece_model.proto, written by hand: the generated module that ships with
# sentencepiece needs a newer protobuf runtime than the Google client libraries allow.
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, kind: int, payload: bytes | int) -> bytes:
    key = _varint(number << 3 | kind)
    if kind == 0:
        return key + _varint(payload)
    if kind == 5:
        return key + payload
    return key + _varint(len(payload)) + payload


def _model_proto(pieces, scores, types, *, unk: int, bos: int, eos: int, pad: int) -> bytes:
    import struct

    out = bytearray()
    for piece, score, kind in zip(pieces, scores, types, strict=True):
        body = (_field(1, 2, piece.encode("utf-8")) + _field(2, 5, struct.pack("<f", score))
                + _field(3, 0, kind))
        out += _field(1, 2, body)  # ModelProto.pieces
    trainer = (_field(3, 0, 2)  # model_type = BPE
               + _field(4, 0, len(pieces))  # vocab_size
               + _field(35, 0, 1)  # byte_fallback
               + _field(40, 0, unk) + _field(41, 0, bos) + _field(42, 0, eos)
               + _field(43, 0, pad))
    normalizer = (_field(1, 2, b"identity") + _field(3, 0, 0)  # add_dummy_prefix
                  + _field(4, 0, 0) + _field(5, 0, 1))  # remove_extra_ws, escape_ws
    out += _field(2, 2, trainer) + _field(3, 2, normalizer)
    return bytes(out)
