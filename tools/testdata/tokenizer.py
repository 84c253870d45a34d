"""Trains the small test SentencePiece tokenizer and writes its golden cases.

Python: Debian's /usr/bin/python3 (3.11) with python3-sentencepiece 0.1.97.

Mistral-style settings: BPE, byte_fallback, unk 0 <unk>, bos 1 <s>, eos 2 </s>,
no pad, add_dummy_prefix, identity normalisation, split_digits,
allow_whitespace_only_pieces, remove_extra_whitespaces false. Training reads
the corpus through an iterator on one thread, so the model bytes are the same
on every run (no input path is recorded in the model's trainer spec).

Outputs (in the given directory): tokenizer.model, golden.json.
"""

import io
import json
import os

import sentencepiece as spm

import corpus

VOCAB_SIZE = 512

ENCODE_CASES = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    " leading space",
    "   three leading spaces",
    "two  spaces and   three",
    "trailing space ",
    "line one\nline two\n\nline four",
    "tab\tseparated",
    "Order 12345 costs 67.89 euros.",
    "Le café est très chaud, Élise.",
    "Schöne Grüße aus Köln, die Straße.",
    "日本語の文章です。",
    "我们今天学习中文。",
    "Party 🎉 time 😀!",
    "Rare 龘 and 齉 and ⛄",
    "Mixed: naïve café 日本 🚀 Ωμέγα ∑ x²",
    "\u00a0non-breaking\u00a0space",
    "<s> and </s> are plain text here",
    "",
    " ",
]

def _decode_cases(sp):
    """(description, ids) pairs for DecodeIds goldens."""
    def ids(text):
        return sp.encode(text)

    def byte_id(b):
        return sp.piece_to_id("<0x%02X>" % b)

    party = "\U0001F389".encode("utf-8")  # F0 9F 8E 89
    return [
        ("plain", ids("Hello world")),
        ("accents and CJK", ids("café 日本語")),
        ("with bos and eos", [sp.bos_id()] + ids("the model") + [sp.eos_id()]),
        ("emoji from byte pieces", [byte_id(b) for b in party]),
        ("emoji cut after two of four bytes", ids("ok") + [byte_id(b) for b in party[:2]]),
        ("emoji cut, then text", [byte_id(b) for b in party[:3]] + ids("next")),
        ("lone continuation byte", [byte_id(0x9F)]),
        ("unk id", [sp.unk_id()] + ids("x")),
        ("empty", []),
    ]


def _format(golden):
    """JSON with one case per line (readable diffs, still plain JSON)."""
    def dumps(v):
        return json.dumps(v, ensure_ascii=False)
    out = ["{"]
    items = list(golden.items())
    for n, (key, value) in enumerate(items):
        comma = "," if n + 1 < len(items) else ""
        if isinstance(value, list):
            out.append("  %s: [" % dumps(key))
            out += ["    %s%s" % (dumps(v), "," if m + 1 < len(value) else "")
                    for m, v in enumerate(value)]
            out.append("  ]" + comma)
        else:
            out.append("  %s: %s%s" % (dumps(key), dumps(value), comma))
    out.append("}")
    return "\n".join(out) + "\n"


def train(out_dir):
    lines = corpus.corpus_lines()
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=buf,
        model_type="bpe", vocab_size=VOCAB_SIZE, byte_fallback=True,
        character_coverage=0.9995, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        add_dummy_prefix=True, normalization_rule_name="identity", split_digits=True,
        allow_whitespace_only_pieces=True, remove_extra_whitespaces=False,
        num_threads=1, input_sentence_size=0, shuffle_input_sentence=False,
        minloglevel=2)
    path = os.path.join(out_dir, "tokenizer.model")
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    return path


def write_golden(out_dir):
    sp = spm.SentencePieceProcessor(model_file=os.path.join(out_dir, "tokenizer.model"))
    assert sp.vocab_size() == VOCAB_SIZE
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == (0, 1, 2, -1)
    assert sp.id_to_piece(0) == "<unk>" and sp.id_to_piece(1) == "<s>"
    assert sp.id_to_piece(2) == "</s>"
    cases = []
    for text in ENCODE_CASES:
        ids = sp.encode(text)
        cases.append({"text": text, "ids": ids, "pieces": [sp.id_to_piece(i) for i in ids],
                      "decoded": sp.decode(ids)})
    # The properties the tests rely on.
    by_text = {c["text"]: c for c in cases}
    assert "é" in by_text["Le café est très chaud, Élise."]["pieces"]
    assert "日" in by_text["日本語の文章です。"]["pieces"]
    assert "<0xF0>" in by_text["Party 🎉 time 😀!"]["pieces"]
    assert "<0x0A>" in by_text["line one\nline two\n\nline four"]["pieces"]
    decode_cases = [{"description": d, "ids": ids, "text": sp.decode(ids)}
                    for d, ids in _decode_cases(sp)]
    golden = {
        "vocab_size": sp.vocab_size(),
        "bos_id": sp.bos_id(),
        "eos_id": sp.eos_id(),
        "unk_id": sp.unk_id(),
        "cases": cases,
        "decode_cases": decode_cases,
    }
    with open(os.path.join(out_dir, "golden.json"), "w", encoding="utf-8") as f:
        f.write(_format(golden))
    return sp
