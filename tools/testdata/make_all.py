"""Regenerates everything under tests/data. Run through tools/make-test-data.sh.

Python: Debian's /usr/bin/python3 (3.11) with python3-numpy 1.24,
python3-torch 1.13 and python3-sentencepiece 0.1.97
(scripts/install-deps.sh --tools installs them).

  /usr/bin/python3 tools/testdata/make_all.py tests/data

Steps: train the tokenizer (tokenizer/), write the models (models/), compute
the float64 goldens from the files on disk (golden/), write README.md. The
generated subdirectories are deleted first so no stale file survives.
"""

import os
import shutil
import sys

import sentencepiece as spm
import torch

import make_goldens
import make_models
import tokenizer
import write_readme

GENERATED = ("tokenizer", "models", "golden")


def main(out_root):
    torch.set_num_threads(1)
    os.makedirs(out_root, exist_ok=True)
    for sub in GENERATED:
        path = os.path.join(out_root, sub)
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.makedirs(path)
    tok_dir = os.path.join(out_root, "tokenizer")
    print("tokenizer")
    tok_path = tokenizer.train(tok_dir)
    tokenizer.write_golden(tok_dir)
    sp = spm.SentencePieceProcessor(model_file=tok_path)
    print("models")
    seeds = make_models.main(out_root, tok_path, sp)
    print("goldens")
    summaries = make_goldens.main(out_root, sp)
    write_readme.write(os.path.join(out_root, "README.md"), seeds, summaries)
    print("done")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_all.py OUT_DIR")
    main(sys.argv[1])
