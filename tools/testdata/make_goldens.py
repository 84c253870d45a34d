"""Computes the float64 goldens under <out>/golden/ from the models on disk.

Python: Debian's /usr/bin/python3 (3.11) with python3-numpy, python3-torch 1.13
and python3-sentencepiece.

golden/<model>.safetensors (every model but the fmt_* copies; fmt_st_f32 has one):
  tokens         I32 [T]        the prompt, BOS first
  logits         F32 [T, V]     teacher-forced logits from position 0, zero state
  state          F32 [L, H, F, Dv]  carried (already decayed) state after `tokens`
  greedy_tokens  I32 [16]       argmax continuation after `tokens`
  far_start      I64 [1]        2147483640
  far_tokens     I32 [8]        fed from a zero state at far_start..2^31-1
  far_logits     F32 [8, V]
  long_tokens    I32 [800]      h32 only
  long_logits_last F32 [V]      h32 only: logits after the 800 long tokens
golden/slopes.json: slopes and gammas (float64) of the decay rules.
"""

import json
import math
import os

import numpy as np

import checkpoint_readers
import model_specs
import prompts
import safetensors_io
import supra_reference as ref

LONG_MODELS = ("h32",)


def golden_tensors(name, model_dir, sp):
    config, weights = checkpoint_readers.load(model_dir)
    model = ref.SupraModel(config, weights)
    tokens = prompts.prompt_tokens(sp)
    logits, state = ref.check_forms_agree(model, tokens)
    greedy_tokens, margins = ref.greedy(model, tokens, prompts.GREEDY_LEN)
    far = prompts.far_tokens(sp)
    far_logits, far_state = ref.check_forms_agree(model, far, start=prompts.FAR_START,
                                                  chunks=(1, 3, 8))
    assert far_state.position == 2**31
    out = [
        ("tokens", "I32", np.array(tokens)),
        ("logits", "F32", logits),
        ("state", "F32", state.P),
        ("greedy_tokens", "I32", np.array(greedy_tokens)),
        ("far_start", "I64", np.array([prompts.FAR_START])),
        ("far_tokens", "I32", np.array(far)),
        ("far_logits", "F32", far_logits),
    ]
    summary = {"greedy": greedy_tokens, "min_margin": min(margins),
               "logit_std": float(np.std(logits))}
    if name in LONG_MODELS:
        long_tokens = prompts.long_tokens(sp)
        long_logits, _ = ref.check_forms_agree(model, long_tokens, chunks=(256,))
        out += [("long_tokens", "I32", np.array(long_tokens)),
                ("long_logits_last", "F32", long_logits[-1])]
    return out, summary


def slopes_json():
    cases = []

    def add(rule, n, decay_start, slopes, gammas):
        cases.append({"rule": rule, "n_heads": n, "decay_start": decay_start,
                      "slopes": slopes, "gammas": gammas})

    for n in (1, 2, 4, 6, 8, 12, 32):
        s = ref.lightning_slopes(n)
        add("lightning", n, None, s, [math.exp(-x) for x in s])
    for n in (4, 6):
        s = ref.lightning_slopes(n, 0.3)
        add("lightning", n, 0.3, s, [math.exp(-x) for x in s])
    g = ref.retnet_gammas(4)
    add("retnet", 4, None, [-math.log(x) for x in g], g)
    # Anchors from supra-model.md section 3.8.
    h32 = next(c for c in cases if c["n_heads"] == 32)
    assert all(abs(s - 2.0 ** (-(h + 1) / 4)) < 1e-15 for h, s in enumerate(h32["slopes"]))
    assert round(h32["gammas"][0], 4) == 0.4313 and round(h32["gammas"][31], 4) == 0.9961
    return {"description": "Decay slopes and gammas = exp(-slope) per head, float64 "
                           "(supra-model.md section 3.8). rule lightning: decay_start null "
                           "means the default start; rule retnet: gamma = 1 - 2^(-5-h), "
                           "slope = -ln(gamma).",
            "cases": cases}


def _write_slopes(path):
    data = slopes_json()
    lines = ["{", '  "description": %s,' % json.dumps(data["description"]), '  "cases": [']
    lines += ["    %s%s" % (json.dumps(c), "," if i + 1 < len(data["cases"]) else "")
              for i, c in enumerate(data["cases"])]
    lines += ["  ]", "}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def verify_formats(models_root):
    """Every fmt_* copy loads to the fmt_st_f32 weights rounded to its dtype."""
    _, reference = checkpoint_readers.load(os.path.join(models_root, "fmt_st_f32"))
    for spec in model_specs.SPECS:
        if not spec.name.startswith("fmt_"):
            continue
        _, weights = checkpoint_readers.load(os.path.join(models_root, spec.name))
        assert set(weights) == set(reference), spec.name
        for k, w in reference.items():
            f32 = w.astype(np.float32)
            if spec.storage.dtype == "BF16":
                expect = safetensors_io.bf16_bits_to_f32(safetensors_io.f32_to_bf16_bits(f32))
            elif spec.storage.dtype == "F16":
                expect = f32.astype(np.float16)
            else:
                expect = f32
            assert np.array_equal(weights[k], expect.astype(np.float64)), (spec.name, k)


def main(out_root, sp):
    models_root = os.path.join(out_root, "models")
    golden_root = os.path.join(out_root, "golden")
    os.makedirs(golden_root, exist_ok=True)
    verify_formats(models_root)
    tied_bin = os.path.join(models_root, "tied", "pytorch_model.bin")
    assert checkpoint_readers.torch_storage_shared(tied_bin, "model.tok_embeddings.weight",
                                                   "model.output.weight")
    summaries = {}
    for spec in model_specs.SPECS:
        if not spec.golden:
            continue
        tensors, summary = golden_tensors(spec.name, os.path.join(models_root, spec.name), sp)
        safetensors_io.write(os.path.join(golden_root, spec.name + ".safetensors"), tensors,
                             metadata={"model": spec.name,
                                       "generator": "tools/make-test-data.sh"})
        summaries[spec.name] = summary
        print("  %-14s greedy %s  min margin %.3f  logit std %.2f" % (
            spec.name, summary["greedy"], summary["min_margin"], summary["logit_std"]))
    a, _ = safetensors_io.read(os.path.join(golden_root, "tied.safetensors"))
    b, _ = safetensors_io.read(os.path.join(golden_root, "tied_single.safetensors"))
    assert all(np.array_equal(a[k][1], b[k][1]) for k in a)
    _write_slopes(os.path.join(golden_root, "slopes.json"))
    return summaries
