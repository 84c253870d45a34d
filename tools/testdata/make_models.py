"""Writes the tiny random test models under <out>/models/<name>/.

Python: Debian's /usr/bin/python3 (3.11) with python3-numpy, python3-torch 1.13
and python3-sentencepiece.

For each model: config.json, generation_config.json, tokenizer.model (a copy)
and the weights in the model's storage format. A model's seed is the first
seed, counting up from the spec's, whose greedy continuation of the golden
prompt is varied (at least 6 distinct tokens of 16, no token more than 3 times
in a row, the last 4 not all the same, no EOS) and unambiguous (every greedy
step wins by a clear logit margin, so a float32 engine picks the same token).
main() returns the chosen seeds (listed in the README).
"""

import itertools
import json
import os
import shutil

import numpy as np

import checkpoint_writers
import model_specs
import prompts
import safetensors_io
import supra_reference
import zip64

MIN_DISTINCT = 6
MAX_RUN = 3  # no token repeated more than 3 times in a row
MIN_MARGIN = 0.02  # logits; float32 engines differ from float64 by ~1e-5
MAX_TRIES = 200
EOS_ID = 2  # a generation that stops at EOS still yields all 16 tokens


def stored(weights, dtype):
    """The float64 values a reader gets back from `weights` stored as `dtype`."""
    out = {}
    for name, w in weights:
        if dtype == "BF16":
            out[name] = safetensors_io.bf16_bits_to_f32(
                safetensors_io.f32_to_bf16_bits(w)).astype(np.float64)
        elif dtype == "F16":
            out[name] = w.astype(np.float16).astype(np.float64)
        else:
            out[name] = w.astype(np.float64)
    return out


def greedy_quality(config, weights, dtype, prompt):
    model = supra_reference.SupraModel(config, stored(weights, dtype))
    tokens, margins = supra_reference.greedy(model, prompt, prompts.GREEDY_LEN)
    longest_run = max(len(list(g)) for _, g in itertools.groupby(tokens))
    ok = (len(set(tokens)) >= MIN_DISTINCT and len(set(tokens[-4:])) > 1
          and longest_run <= MAX_RUN and min(margins) >= MIN_MARGIN
          and EOS_ID not in tokens)
    return ok, tokens, min(margins)


def choose_weights(spec, prompt):
    for seed in range(spec.seed, spec.seed + MAX_TRIES):
        weights = model_specs.random_weights(spec.config, seed)
        ok, tokens, margin = greedy_quality(spec.config, weights, spec.storage.dtype, prompt)
        if ok:
            print("  %-14s seed %d: greedy %s (min margin %.3f)" % (spec.name, seed, tokens,
                                                                    margin))
            return seed, weights
    raise RuntimeError("no seed gives varied greedy output for " + spec.name)


def _write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def write_model(spec, weights, model_dir, tokenizer_path):
    if os.path.isdir(model_dir):
        shutil.rmtree(model_dir)
    os.makedirs(model_dir)
    _write_json(os.path.join(model_dir, "config.json"), spec.config)
    _write_json(os.path.join(model_dir, "generation_config.json"),
                {"bos_token_id": 1, "eos_token_id": 2})
    shutil.copyfile(tokenizer_path, os.path.join(model_dir, "tokenizer.model"))
    st = spec.storage
    if st.tied == "embedding_only":
        weights = [(n, w) for n, w in weights if n != "model.output.weight"]
    tied = None
    if st.tied == "both":
        tied = ("model.output.weight", "model.tok_embeddings.weight")
    if st.kind == "safetensors":
        assert tied is None
        if st.shards > 1:
            checkpoint_writers.write_safetensors_sharded(model_dir, weights, st.dtype, st.shards)
        else:
            checkpoint_writers.write_safetensors(
                os.path.join(model_dir, "model.safetensors"), weights, st.dtype)
    else:
        if st.shards > 1:
            checkpoint_writers.write_torch_sharded(model_dir, weights, st.dtype, st.shards)
        elif st.zip64:
            path = os.path.join(model_dir, "pytorch_model.bin")
            # Same archive prefix ("pytorch_model/") as a direct save would use.
            tmp_dir = os.path.join(model_dir, "tmp")
            os.makedirs(tmp_dir)
            plain = os.path.join(tmp_dir, "pytorch_model.bin")
            checkpoint_writers.write_torch(plain, weights, st.dtype, tied)
            zip64.rewrite(plain, path)
            zip64.verify(plain, path)
            shutil.rmtree(tmp_dir)
        else:
            checkpoint_writers.write_torch(os.path.join(model_dir, "pytorch_model.bin"),
                                           weights, st.dtype, tied)


def main(out_root, tokenizer_path, sp):
    checkpoint_writers.check_rounding_agrees()
    prompt = prompts.prompt_tokens(sp)
    chosen = {}
    seeds = {}
    for spec in model_specs.SPECS:
        assert spec.config["vocab_size"] == sp.vocab_size()
        if spec.weights_of is not None:
            seeds[spec.name], weights = seeds[spec.weights_of], chosen[spec.weights_of]
        else:
            seeds[spec.name], weights = choose_weights(spec, prompt)
        chosen[spec.name] = weights
        write_model(spec, weights, os.path.join(out_root, "models", spec.name), tokenizer_path)
    return seeds
