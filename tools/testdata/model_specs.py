"""The tiny test models: configurations, storage formats and random weights.

Python: Debian's /usr/bin/python3 (3.11) with python3-numpy.

Weights are float32 draws from numpy's PCG64 generator with a per-model seed,
in the canonical tensor order below. Scales keep activations O(1): norm
weights 1 +- 0.2, feature-map biases ~ N(0, 0.1), projections with std
1/sqrt(fan_in), embeddings N(0, 1) (N(0, 0.25^2) when tied). The output head is scaled up (std
OUTPUT_GAIN/sqrt(dim)) so greedy continuations are varied rather than stuck on
one token.
"""

import dataclasses

import numpy as np

VOCAB_SIZE = 512  # = the test tokenizer's vocabulary
OUTPUT_GAIN = 3.0
# With tied weights a N(0, 1) embedding makes every logit favour the input
# token (its own embedding dominates the residual stream): greedy output is one
# token repeated. A smaller embedding lets the blocks decide.
TIED_EMBEDDING_STD = 0.25


def make_config(dim, n_layers, n_heads, n_heads_kv, v_head_dim, ffn, **overrides):
    c = {
        "model_type": "openlm",
        "dim": dim,
        "n_layers": n_layers,
        "n_heads": n_heads,
        "n_heads_kv": n_heads_kv,
        "qk_head_dim": dim // n_heads,
        "v_head_dim": v_head_dim,
        "intermediate_dim_ffn": ffn,
        "vocab_size": VOCAB_SIZE,
        "norm_eps": 1e-5,
        "norm_type": "rms_norm",
        "attn_name": "linear_attn",
        "positional_embedding_type": "rotary",
        "ffn_type": "swiglu",
        "weight_tying": False,
        "apply_qk_norm": False,
        "use_decay": True,
        "use_retnet_slopes": False,
        "decay_start": None,
        "post_embed_norm": False,
        "seq_len": 2048,
    }
    for k in overrides:
        assert k in c, k
    c.update(overrides)
    return c


@dataclasses.dataclass
class Storage:
    kind: str  # "safetensors" or "pytorch"
    dtype: str  # "F32", "BF16", "F16"
    shards: int = 1
    # "both": tok_embeddings and output share one storage (PyTorch);
    # "embedding_only": only model.tok_embeddings.weight is written.
    tied: str = None
    zip64: bool = False  # rewrite the PyTorch zip with ZIP64 records


@dataclasses.dataclass
class ModelSpec:
    name: str
    config: dict
    storage: Storage
    seed: int  # first seed tried; the generator moves on until outputs are varied
    weights_of: str = None  # reuse another model's weights (same config)
    golden: bool = True
    note: str = ""


FMT_CONFIG = make_config(16, 1, 2, 2, 8, 40)

SPECS = [
    ModelSpec("mha", make_config(32, 2, 4, 4, 8, 80), Storage("pytorch", "F32"), 1000,
              note="H=Hkv=4 (shared q/k feature map), lightning slopes"),
    ModelSpec("gqa", make_config(32, 2, 4, 2, 12, 80), Storage("safetensors", "F32"), 2000,
              note="GQA H=4 Hkv=2, F=8 != Dv=12, lightning slopes"),
    ModelSpec("gqa_qknorm",
              make_config(32, 2, 4, 2, 8, 64, apply_qk_norm=True, use_retnet_slopes=True),
              Storage("safetensors", "BF16"), 3000,
              note="GQA with qk norm (per-head normalised keys), RetNet gammas"),
    ModelSpec("h6", make_config(48, 2, 6, 3, 8, 96), Storage("pytorch", "BF16"), 4000,
              note="H=6 (not a power of two), Hkv=3, lightning slopes"),
    ModelSpec("decay_start",
              make_config(32, 2, 4, 4, 8, 80, decay_start=0.3, post_embed_norm=True),
              Storage("safetensors", "F16", shards=3), 5000,
              note="lightning slopes from decay_start 0.3, post_embed_norm"),
    ModelSpec("tied", make_config(32, 2, 4, 4, 8, 80, weight_tying=True),
              Storage("pytorch", "F32", tied="both"), 6000,
              note="weight_tying: embedding and output are one storage in the zip"),
    ModelSpec("tied_single", make_config(32, 2, 4, 4, 8, 80, weight_tying=True),
              Storage("safetensors", "F32", tied="embedding_only"), 6000, weights_of="tied",
              note="the weights of `tied`; the file holds only model.tok_embeddings.weight"),
    ModelSpec("nodecay", make_config(32, 2, 4, 4, 8, 80, use_decay=False),
              Storage("pytorch", "F32", shards=2), 7000,
              note="use_decay false: gamma = 1"),
    ModelSpec("h32", make_config(128, 1, 32, 8, 4, 128), Storage("safetensors", "F32"), 8000,
              note="H=32 Hkv=8, F=Dh=Dv=4: the real 32-head lightning slopes"),
    # One set of weights in every supported format.
    ModelSpec("fmt_st_f32", FMT_CONFIG, Storage("safetensors", "F32"), 9000,
              note="format family reference"),
    ModelSpec("fmt_st_bf16", FMT_CONFIG, Storage("safetensors", "BF16"), 9000,
              weights_of="fmt_st_f32", golden=False),
    ModelSpec("fmt_st_f16", FMT_CONFIG, Storage("safetensors", "F16"), 9000,
              weights_of="fmt_st_f32", golden=False),
    ModelSpec("fmt_st_sharded", FMT_CONFIG, Storage("safetensors", "F32", shards=3), 9000,
              weights_of="fmt_st_f32", golden=False),
    ModelSpec("fmt_pt_f32", FMT_CONFIG, Storage("pytorch", "F32"), 9000,
              weights_of="fmt_st_f32", golden=False),
    ModelSpec("fmt_pt_bf16", FMT_CONFIG, Storage("pytorch", "BF16"), 9000,
              weights_of="fmt_st_f32", golden=False),
    ModelSpec("fmt_pt_f16", FMT_CONFIG, Storage("pytorch", "F16"), 9000,
              weights_of="fmt_st_f32", golden=False),
    ModelSpec("fmt_pt_sharded", FMT_CONFIG, Storage("pytorch", "F32", shards=3), 9000,
              weights_of="fmt_st_f32", golden=False),
    ModelSpec("fmt_pt_zip64", FMT_CONFIG, Storage("pytorch", "F32", zip64=True), 9000,
              weights_of="fmt_st_f32", golden=False),
]


def spec_by_name(name):
    return next(s for s in SPECS if s.name == name)


def tensor_layout(c):
    """Canonical (name, shape, kind) list, in file order."""
    D, L, H, Hkv = c["dim"], c["n_layers"], c["n_heads"], c["n_heads_kv"]
    F, Dv, FFN, V = c["qk_head_dim"], c["v_head_dim"], c["intermediate_dim_ffn"], c["vocab_size"]
    Dh = D // H
    out = [("model.tok_embeddings.weight", (V, D), "embedding")]
    if c["post_embed_norm"]:
        out.append(("model.post_embed_norm.weight", (D,), "norm"))
    for i in range(L):
        p = "model.layers.%d." % i
        out += [
            (p + "attention_norm.weight", (D,), "norm"),
            (p + "attention.in_proj.weight", (H * Dh + Hkv * Dh + Hkv * Dv, D), "linear"),
            (p + "attention._totrain_embed.weight", (H * F, H * Dh), "linear"),
            (p + "attention._totrain_embed.bias", (H * F,), "bias"),
        ]
        if Hkv != H:
            out += [
                (p + "attention._totrain_embed_kv.weight", (Hkv * F, Hkv * Dh), "linear"),
                (p + "attention._totrain_embed_kv.bias", (Hkv * F,), "bias"),
            ]
        if c["apply_qk_norm"]:
            out += [
                (p + "attention._totrain_q_norm.weight", (H * F,), "norm"),
                (p + "attention._totrain_k_norm.weight", (H * F,), "norm"),
            ]
        out += [
            (p + "attention.out_proj.weight", (D, H * Dv), "linear"),
            (p + "ffn_norm.weight", (D,), "norm"),
            (p + "feed_forward.w12.weight", (2 * FFN, D), "linear"),
            (p + "feed_forward.w3.weight", (D, FFN), "linear"),
        ]
    out.append(("model.norm.weight", (D,), "norm"))
    out.append(("model.output.weight", (V, D), "output"))
    return out


def random_weights(c, seed):
    """Ordered list of (name, float32 array); tied configs get output = embedding."""
    rng = np.random.default_rng(seed)
    weights = []
    for name, shape, kind in tensor_layout(c):
        if kind == "embedding":
            std = TIED_EMBEDDING_STD if c["weight_tying"] else 1.0
            w = std * rng.standard_normal(shape)
        elif kind == "norm":
            w = 1.0 + rng.uniform(-0.2, 0.2, shape)
        elif kind == "bias":
            w = 0.1 * rng.standard_normal(shape)
        elif kind == "linear":
            w = rng.standard_normal(shape) / np.sqrt(shape[1])
        elif kind == "output":
            if c["weight_tying"]:
                w = weights[0][1]
            else:
                w = OUTPUT_GAIN * rng.standard_normal(shape) / np.sqrt(shape[1])
        weights.append((name, np.asarray(w, dtype=np.float32)))
    return weights
