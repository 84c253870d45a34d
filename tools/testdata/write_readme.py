"""Writes tests/data/README.md from the model specs and the generated files.

Python: Debian's /usr/bin/python3 (3.11), standard library only (plus the
sibling modules).
"""

import os

import model_specs
import prompts
import tokenizer

HEADER = """\
# tests/data: tiny SUPRA models, a tokenizer and float64 goldens

Everything here is generated; do not edit by hand (this README included).
Regenerate from the repository root with

    tools/make-test-data.sh

which runs Debian's `/usr/bin/python3` (3.11) with python3-numpy 1.24,
python3-torch 1.13 and python3-sentencepiece 0.1.97
(`scripts/install-deps.sh --tools` installs them). The generator lives in
`tools/testdata/`; every random draw has a fixed seed, training runs on one
thread, and a rerun reproduces the same bytes (float64 BLAS sums on another CPU
could in principle move a float32 golden by one ulp). The C++ tests only read
these files; they never need Python.

## tokenizer/

- `tokenizer.model`: SentencePiece BPE, vocabulary {vocab}, trained on a
  generated corpus (`tools/testdata/corpus.py`: English, accented French and
  German, Japanese, Chinese, digits, a few emoji). Mistral-style settings:
  byte_fallback, `<unk>` 0, `<s>` 1, `</s>` 2, no pad, add_dummy_prefix,
  identity normalisation, split_digits, allow_whitespace_only_pieces,
  remove_extra_whitespaces false. Frequent multi-byte characters (é, ü, ß,
  日, 本, 中, 。) are single pieces; rare ones (emoji, 龘, Ω, ":" and "\\n" too)
  are `<0xNN>` byte pieces.
- `golden.json`: `vocab_size`, `bos_id`, `eos_id`, `unk_id`; `cases`: a list
  of {{"text", "ids" (Encode, no BOS), "pieces", "decoded"}}; `decode_cases`:
  {{"description", "ids", "text"}} as `DecodeIds` returns it, including a
  byte-fallback sequence cut in the middle of a character (each invalid byte
  becomes U+FFFD), BOS/EOS (dropped) and `<unk>` (" ⁇ ").

Every model directory holds a copy of `tokenizer.model`.

## models/

Each directory: `config.json` (model_type `openlm`, supra-model.md section 1),
`generation_config.json` (bos 1, eos 2), `tokenizer.model` and the weights
(names and shapes of supra-model.md section 2). All: vocab {vocab},
`norm_eps` 1e-5, rms_norm, linear_attn, rotary (base 10000), swiglu,
`seq_len` 2048. F = qk_head_dim = Dh = dim / n_heads.

| model | dim | layers | H / Hkv | F | Dv | FFN | decay | other | weights | dtype | seed |
|---|---|---|---|---|---|---|---|---|---|---|---|
"""

WEIGHTS_INIT = """
Random weights (`tools/testdata/model_specs.py`, numpy PCG64 with the seed
above): embedding N(0, 1) (N(0, 0.25²) for the tied models), norm weights
1 + U(-0.2, 0.2), feature-map biases N(0, 0.1²), projections N(0, 1/fan_in),
output head N(0, 9/dim). The generator takes the first seed, counting up from
a fixed start, whose 16-token greedy continuation of the golden prompt has at
least 6 distinct tokens, no token more than 3 times in a row, no EOS (so a
generation that stops at EOS still yields all 16), and a top-1 /
top-2 logit gap of at least 0.02 at every step (so a float32 engine picks the
same tokens as the float64 reference).

Storage details:
- safetensors: 8-byte little-endian header length, JSON header (entries in the
  canonical order of supra-model.md section 2, `"__metadata__":
  {{"format": "pt"}}`), padded with spaces to 8 bytes, then the data.
- PyTorch: `torch.save` (torch 1.13, zip format) of an OrderedDict. The zip
  entries are `<archive>/data.pkl`, `<archive>/data/<key>` in lexicographic key
  order (0, 1, 10, 11, ..., 2, ...), then `<archive>/version`; `<archive>` is
  the file name without extension (`pytorch_model`,
  `pytorch_model-00001-of-00002`). Entries are stored, each data start aligned
  to 64 bytes through an `FB` padding extra field in the local header; the
  local headers have zero CRC/sizes and a data descriptor follows each entry
  (flag 0x0808), so read sizes and offsets from the central directory. The
  pickle names storages `torch.FloatStorage`, `torch.BFloat16Storage`,
  `torch.HalfStorage`, in `torch._utils._rebuild_tensor_v2` calls.
- `tied/pytorch_model.bin`: `model.output.weight` is a second tensor on the
  storage of `model.tok_embeddings.weight` (one `data/<key>` entry referenced
  twice, as `module.state_dict()` of tied parameters saves).
- `fmt_pt_zip64/pytorch_model.bin`: the `fmt_pt_f32` file rewritten with ZIP64
  records everywhere: same entry names, order and 64-byte data alignment;
  version 4.5; no data descriptors; local headers with the real CRC, sizes
  0xFFFFFFFF and a ZIP64 extra field (uncompressed, compressed size) before
  the `FB` padding field; central headers with sizes and offset 0xFFFFFFFF
  and a ZIP64 extra field (uncompressed size, compressed size, local header
  offset); a ZIP64 end-of-central-directory record and locator; the classic
  EOCD with counts 0xFFFF and size/offset 0xFFFFFFFF. Checked to load with
  Python's zipfile and with torch.load.
- bf16/f16 files hold the float32 weights rounded to nearest-even. The fmt_*
  models all hold the weights of `fmt_st_f32`, rounded to their dtype.
- Sharded checkpoints: `model-0000k-of-0000n.safetensors` with
  `model.safetensors.index.json`, or `pytorch_model-0000k-of-0000n.bin` with
  `pytorch_model.bin.index.json`; both indexes are
  `{{"metadata": {{"total_size": data bytes}}, "weight_map": {{name: file}}}}`.
"""

GOLDEN = """
## golden/

`<model>.safetensors` for every model except the fmt_* copies (fmt_st_f32 has
one). Computed by `tools/testdata/supra_reference.py`, a float64 NumPy
implementation of supra-model.md section 3 written from the document only,
from the weights as read back from disk (bf16/f16 values upcast exactly). The
script asserts that the chunked form (section 4, chunks of 1, 5, 16, 64, 256
and uneven turns) agrees with the token-by-token form to 1e-10 on every
golden. Float tensors are the float64 results rounded to float32.

| tensor | dtype | shape | meaning |
|---|---|---|---|
| `tokens` | I32 | [{T}] | prompt: BOS then the tokenizer's ids of a fixed mixed-language text |
| `logits` | F32 | [{T}, V] | teacher-forced logits at every position, from position 0 and a zero state |
| `state` | F32 | [L, H, F, Dv] | carried (already decayed) state after `tokens` |
| `greedy_tokens` | I32 | [{G}] | feed `tokens`, then argmax (ties to the lowest id) and feed it back; the {G} sampled tokens (the last is not fed) |
| `far_start` | I64 | [1] | {far_start} |
| `far_tokens` | I32 | [{FL}] | fed from a zero state at positions {far_start}..2147483647 |
| `far_logits` | F32 | [{FL}, V] | their logits (RoPE angles in float64, reduced mod 2π) |
| `long_tokens` | I32 | [{LL}] | h32 only: BOS then text, {LL} tokens |
| `long_logits_last` | F32 | [V] | h32 only: logits after feeding the {LL} long tokens (three full 256-token chunks and a partial one) |

Header `__metadata__`: {{"model": name, "generator": "tools/make-test-data.sh"}}.

| golden | state shape | greedy_tokens |
|---|---|---|
"""

SLOPES = """
`slopes.json`: `cases`, each {"rule", "n_heads", "decay_start", "slopes",
"gammas"} with float64 numbers (gamma = exp(-slope)): the lightning rule with
the default start for H = 1, 2, 4, 6, 8, 12, 32, with decay_start 0.3 for
H = 4 and 6, and the RetNet rule (gamma = 1 - 2^(-5-h), slope = -ln gamma) for
H = 4.
"""


def _decay(c):
    if not c["use_decay"]:
        return "none (γ = 1)"
    if c["use_retnet_slopes"]:
        return "RetNet"
    if c["decay_start"] is not None:
        return "lightning, start %g" % c["decay_start"]
    return "lightning"


def _other(c):
    out = []
    if c["apply_qk_norm"]:
        out.append("qk norm")
    if c["post_embed_norm"]:
        out.append("post_embed_norm")
    if c["weight_tying"]:
        out.append("tied")
    return ", ".join(out) or "-"


def _weights(spec):
    st = spec.storage
    if st.kind == "safetensors":
        if st.shards > 1:
            return "%d safetensors shards + index" % st.shards
        if st.tied == "embedding_only":
            return "model.safetensors (embedding only)"
        return "model.safetensors"
    if st.shards > 1:
        return "%d pytorch_model shards + index" % st.shards
    if st.zip64:
        return "pytorch_model.bin, ZIP64"
    if st.tied == "both":
        return "pytorch_model.bin, one shared storage"
    return "pytorch_model.bin"


def write(path, seeds, summaries):
    root = os.path.dirname(path)
    lines = [HEADER.format(vocab=tokenizer.VOCAB_SIZE).rstrip("\n")]
    for spec in model_specs.SPECS:
        c = spec.config
        lines.append("| `%s` | %d | %d | %d / %d | %d | %d | %d | %s | %s | %s | %s | %d |" % (
            spec.name, c["dim"], c["n_layers"], c["n_heads"], c["n_heads_kv"], c["qk_head_dim"],
            c["v_head_dim"], c["intermediate_dim_ffn"], _decay(c), _other(c), _weights(spec),
            spec.storage.dtype, seeds[spec.name]))
    lines.append("")
    for spec in model_specs.SPECS:
        if spec.note:
            lines.append("- `%s`: %s." % (spec.name, spec.note))
    lines.append(WEIGHTS_INIT.format())
    lines.append(GOLDEN.format(T=prompts.PROMPT_LEN, G=prompts.GREEDY_LEN,
                               far_start=prompts.FAR_START, FL=prompts.FAR_LEN,
                               LL=prompts.LONG_LEN).rstrip("\n"))
    for spec in model_specs.SPECS:
        if not spec.golden:
            continue
        c = spec.config
        lines.append("| `%s.safetensors` | [%d, %d, %d, %d] | %s |" % (
            spec.name, c["n_layers"], c["n_heads"], c["qk_head_dim"], c["v_head_dim"],
            " ".join(str(t) for t in summaries[spec.name]["greedy"])))
    lines.append(SLOPES)
    lines.append("## Files\n")
    lines.append("| file | bytes |")
    lines.append("|---|---|")
    for dirpath, _, filenames in sorted(os.walk(root)):
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if full == path:
                continue
            lines.append("| `%s` | %d |" % (os.path.relpath(full, root), os.path.getsize(full)))
    with open(path, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
