"""The fixed token sequences the goldens are computed on.

Python: Debian's /usr/bin/python3 (3.11) with python3-sentencepiece.
"""

import corpus

PROMPT_LEN = 40
GREEDY_LEN = 16
FAR_START = 2**31 - 8  # 2147483640: the 8 far tokens end at position 2^31 - 1
FAR_LEN = 8
LONG_LEN = 800

PROMPT_TEXT = ("The model reads the next token. Le café est très chaud, Élise. "
               "日本語の文章です。 Order 42 🎉 Über den Bergen fliegen die Vögel.")
FAR_TEXT = "Schöne Grüße: 我们今天学习中文。"


def prompt_tokens(sp):
    """BOS then the first PROMPT_LEN - 1 ids of PROMPT_TEXT."""
    ids = [sp.bos_id()] + sp.encode(PROMPT_TEXT)
    assert len(ids) >= PROMPT_LEN, len(ids)
    return ids[:PROMPT_LEN]


def far_tokens(sp):
    ids = sp.encode(FAR_TEXT)
    assert len(ids) >= FAR_LEN
    return ids[:FAR_LEN]


def long_tokens(sp):
    """BOS then corpus text (a different draw than the training corpus)."""
    ids = [sp.bos_id()]
    for line in corpus.corpus_lines(seed=99, n_lines=400):
        ids += sp.encode(line)
        if len(ids) >= LONG_LEN:
            break
    assert len(ids) >= LONG_LEN
    return ids[:LONG_LEN]

