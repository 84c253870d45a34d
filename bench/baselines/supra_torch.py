#!/usr/bin/env python3
"""PyTorch baseline of the SUPRA model, written from docs/supra-model.md.

The C++ engine's benchmarks are compared against this. Nothing here imports
project code. Two interpreters run it:

  * the GPU machine's python3 (3.12, torch 2.11 + CUDA 13, triton): `--bench`,
    and `--check-golden ... --device cuda`;
  * Debian's /usr/bin/python3 (3.11, torch 1.13 CPU) on the build machine:
    `--check-golden` in float64 (the correctness self-check).

Modes:
  --check-golden MODEL_DIR...  teacher-forced logits and final state of a tiny
      model under tests/data/models/<name> against tests/data/golden/<name>
      .safetensors, the chunked prefill against the token loop, the positions
      near 2^31 and (h32) the 800-token prompt. Fails (exit 1) above
      max|diff| / max|ref| = 1e-4.
  --bench  random bf16 weights in the full Mistral-SUPRA shape on the GPU;
      decode tokens/s per batch size (eager, and compiled + CUDA graph), and
      eager prefill tokens/s for one 2048-token prompt. One JSON line per result.

Layout: the state is one fp32 tensor [B, H, F, Dv] per layer (L of them, the
same bytes as [B, L, H, F, Dv]); per-layer tensors keep each layer's state
contiguous so batched GEMVs and the compiled layer see plain, offset-0 inputs.
"""

import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

GROUPNORM_EPS = 1e-5  # fixed by the model, not norm_eps (supra-model.md 3.10)

# ----------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------

REQUIRED = ("dim", "n_layers", "n_heads", "n_heads_kv", "qk_head_dim", "v_head_dim",
            "intermediate_dim_ffn", "vocab_size", "norm_type", "attn_name")
DEFAULTS = {"norm_eps": 1e-5, "rotary_base_frequency": 10000.0, "rotary_scale": 1.0,
            "post_embed_norm": False, "weight_tying": False, "apply_qk_norm": False,
            "positional_embedding_type": "rotary", "ffn_type": "swiglu",
            "use_decay": False, "use_retnet_slopes": False, "decay_start": None}
SUPPORTED = {"norm_type": ("rms_norm",), "attn_name": ("linear_attn",),
             "positional_embedding_type": ("rotary",), "ffn_type": ("swiglu", "swiglu_torch")}

MISTRAL_SUPRA = {"dim": 4096, "n_layers": 32, "n_heads": 32, "n_heads_kv": 8,
                 "qk_head_dim": 128, "v_head_dim": 128, "intermediate_dim_ffn": 14336,
                 "vocab_size": 32000, "norm_eps": 1e-5, "norm_type": "rms_norm",
                 "attn_name": "linear_attn", "use_decay": True}


class Config:
    def __init__(self, raw):
        for key in REQUIRED:
            if raw.get(key) is None:
                raise ValueError("config.json: required field '%s' is missing" % key)
        merged = dict(DEFAULTS)
        merged.update({k: v for k, v in raw.items() if v is not None or k == "decay_start"})
        for key, allowed in SUPPORTED.items():
            if merged[key] not in allowed:
                raise ValueError("config.json: %s = %r is not supported" % (key, merged[key]))
        self.D = int(merged["dim"])
        self.L = int(merged["n_layers"])
        self.H = int(merged["n_heads"])
        self.Hkv = int(merged["n_heads_kv"])
        self.F = int(merged["qk_head_dim"])
        self.Dv = int(merged["v_head_dim"])
        self.FFN = int(merged["intermediate_dim_ffn"])
        self.V = int(merged["vocab_size"])
        self.eps = float(merged["norm_eps"])
        self.rope_base = float(merged["rotary_base_frequency"])
        self.rope_scale = float(merged["rotary_scale"])
        self.post_embed_norm = bool(merged["post_embed_norm"])
        self.weight_tying = bool(merged["weight_tying"])
        self.qk_norm = bool(merged["apply_qk_norm"])
        self.use_decay = bool(merged["use_decay"])
        self.retnet = bool(merged["use_retnet_slopes"])
        self.decay_start = merged["decay_start"]
        if self.D % self.H or self.H % self.Hkv:
            raise ValueError("config.json: dim %% n_heads and n_heads %% n_heads_kv must be 0")
        self.Dh = self.D // self.H
        if self.F != self.Dh:
            raise ValueError("config.json: rotary needs qk_head_dim (%d) == dim / n_heads (%d)"
                             % (self.F, self.Dh))
        if self.F % 2:
            raise ValueError("config.json: qk_head_dim must be even for rotary")


def lightning_slopes(n, start=None):
    """Lightning-attention / ALiBi slopes (supra-model.md 3.8), float64."""
    def pow2(m, s0):
        r = 2.0 ** (-8.0 / m)
        s0 = r if s0 is None else float(s0)
        return [s0 * r ** h for h in range(m)]

    if n & (n - 1) == 0:
        return pow2(n, start)
    p = 1 << (n.bit_length() - 1)  # largest power of two below n
    return pow2(p, start) + pow2(2 * p, None)[0::2][: n - p]


def decay_gammas(cfg):
    """gamma_h per query head, float64 list."""
    if not cfg.use_decay:
        return [1.0] * cfg.H
    if cfg.retnet:
        return [1.0 - 2.0 ** (-5 - h) for h in range(cfg.H)]
    return [math.exp(-s) for s in lightning_slopes(cfg.H, cfg.decay_start)]


# ----------------------------------------------------------------------------
# Checkpoint reading (no safetensors package on the build machine)
# ----------------------------------------------------------------------------

ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": None,
             "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
             "U8": np.uint8, "BOOL": np.bool_}


def read_safetensors(path):
    """name -> numpy array (BF16 widened to float32)."""
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape = info["dtype"], info["shape"]
        begin, end = info["data_offsets"]
        raw = blob[base + begin: base + end]
        if dtype == "BF16":
            u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32)
            arr = (u16 << 16).view(np.float32)
        elif dtype in ST_DTYPES:
            arr = np.frombuffer(raw, dtype=np.dtype(ST_DTYPES[dtype]).newbyteorder("<"))
        else:
            raise ValueError("%s: tensor %s has unsupported dtype %s" % (path, name, dtype))
        out[name] = arr.reshape(shape).copy()
    return out


def torch_load(path):
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # very old torch
        sd = torch.load(path, map_location="cpu")
    return {k: v for k, v in sd.items()}


def load_checkpoint(model_dir, dtype):
    """(Config, {name: torch tensor of `dtype` on the CPU})."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = Config(json.load(f))
    files = os.listdir(model_dir)
    tensors = {}

    def add(name, value):
        t = torch.from_numpy(value) if isinstance(value, np.ndarray) else value
        tensors[name] = t.to(dtype)

    if "model.safetensors" in files:
        for k, v in read_safetensors(os.path.join(model_dir, "model.safetensors")).items():
            add(k, v)
    elif "model.safetensors.index.json" in files:
        with open(os.path.join(model_dir, "model.safetensors.index.json")) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        for shard in shards:
            for k, v in read_safetensors(os.path.join(model_dir, shard)).items():
                add(k, v)
    elif "pytorch_model.bin" in files:
        for k, v in torch_load(os.path.join(model_dir, "pytorch_model.bin")).items():
            add(k, v)
    elif "pytorch_model.bin.index.json" in files:
        with open(os.path.join(model_dir, "pytorch_model.bin.index.json")) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        for shard in shards:
            for k, v in torch_load(os.path.join(model_dir, shard)).items():
                add(k, v)
    else:
        raise FileNotFoundError("%s: no model.safetensors or pytorch_model.bin" % model_dir)
    return cfg, tensors


# ----------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------

class LayerWeights:
    """One block's tensors ([out, in] like nn.Linear)."""
    NAMES = ("attn_norm", "in_proj", "embed_w", "embed_b", "embed_kv_w", "embed_kv_b",
             "q_norm", "k_norm", "out_proj", "ffn_norm", "w12", "w3")

    def __init__(self, **kw):
        for n in self.NAMES:
            setattr(self, n, kw.get(n))

    def as_tuple(self):
        return tuple(getattr(self, n) for n in self.NAMES)


class SupraTorch:
    """Weights in `wdtype` (bf16 on the GPU), activations/norms/state in `cdtype`
    (float32; float64 for the golden check), on `device`."""

    def __init__(self, cfg, tensors, device, wdtype, cdtype):
        self.cfg, self.device, self.wdtype, self.cdtype = cfg, device, wdtype, cdtype

        def w(name, dtype=None):
            return tensors[name].to(device=device, dtype=dtype or wdtype).contiguous()

        def nw(name):  # norm weights and biases stay in the compute dtype
            return w(name, cdtype)

        p = "model."
        emb = p + "tok_embeddings.weight"
        out = p + "output.weight"
        if emb not in tensors and cfg.weight_tying:
            emb = out
        if out not in tensors and cfg.weight_tying:
            out = emb
        self.embed = w(emb)                      # [V, D]
        self.output = w(out)                     # [V, D]
        self.norm = nw(p + "norm.weight")        # [D]
        self.post_norm = nw(p + "post_embed_norm.weight") if cfg.post_embed_norm else None
        self.layers = []
        for i in range(cfg.L):
            q = "%slayers.%d." % (p, i)
            a = q + "attention."
            separate_kv = cfg.Hkv != cfg.H
            self.layers.append(LayerWeights(
                attn_norm=nw(q + "attention_norm.weight"),
                in_proj=w(a + "in_proj.weight"),
                embed_w=w(a + "_totrain_embed.weight"),
                embed_b=w(a + "_totrain_embed.bias"),
                embed_kv_w=w(a + "_totrain_embed_kv.weight") if separate_kv else None,
                embed_kv_b=w(a + "_totrain_embed_kv.bias") if separate_kv else None,
                q_norm=nw(a + "_totrain_q_norm.weight") if cfg.qk_norm else None,
                k_norm=nw(a + "_totrain_k_norm.weight") if cfg.qk_norm else None,
                out_proj=w(a + "out_proj.weight"),
                ffn_norm=nw(q + "ffn_norm.weight"),
                w12=w(q + "feed_forward.w12.weight"),
                w3=w(q + "feed_forward.w3.weight")))
        self._init_constants()

    @classmethod
    def random(cls, cfg, device, wdtype=torch.bfloat16, cdtype=torch.float32, seed=0):
        """Random weights created directly on the device (no host copy)."""
        gen = torch.Generator(device=device)
        gen.manual_seed(seed)
        self = cls.__new__(cls)
        self.cfg, self.device, self.wdtype, self.cdtype = cfg, device, wdtype, cdtype

        def mat(rows, cols, scale=None):
            t = torch.randn(rows, cols, device=device, dtype=wdtype, generator=gen)
            return t.mul_(scale if scale is not None else cols ** -0.5)

        def ones(n):
            return torch.ones(n, device=device, dtype=cdtype)

        H, Hkv, Dh, F_, Dv, D = cfg.H, cfg.Hkv, cfg.Dh, cfg.F, cfg.Dv, cfg.D
        self.embed = mat(cfg.V, D, 1.0)
        self.output = self.embed if cfg.weight_tying else mat(cfg.V, D)
        self.norm = ones(D)
        self.post_norm = ones(D) if cfg.post_embed_norm else None
        self.layers = []
        for _ in range(cfg.L):
            sep = Hkv != H
            self.layers.append(LayerWeights(
                attn_norm=ones(D),
                in_proj=mat(H * Dh + Hkv * Dh + Hkv * Dv, D),
                embed_w=mat(H * F_, H * Dh),
                embed_b=mat(1, H * F_, 0.02).view(-1),
                embed_kv_w=mat(Hkv * F_, Hkv * Dh) if sep else None,
                embed_kv_b=mat(1, Hkv * F_, 0.02).view(-1) if sep else None,
                q_norm=ones(H * F_) if cfg.qk_norm else None,
                k_norm=ones(H * F_) if cfg.qk_norm else None,
                out_proj=mat(D, H * Dv),
                ffn_norm=ones(D),
                w12=mat(2 * cfg.FFN, D),
                w3=mat(D, cfg.FFN)))
        self._init_constants()
        return self

    def _init_constants(self):
        cfg = self.cfg
        g = decay_gammas(cfg)
        # gamma and slope computed in float64, stored in the compute dtype (never bf16).
        self.gamma64 = torch.tensor(g, dtype=torch.float64, device=self.device)   # [H]
        self.slope64 = -torch.log(self.gamma64)                                   # [H]
        self.gamma = self.gamma64.to(self.cdtype)                                 # [H]
        i = torch.arange(cfg.F // 2, dtype=torch.float64, device=self.device)
        self.inv_freq64 = 1.0 / (cfg.rope_scale * cfg.rope_base ** (2.0 * i / cfg.Dh))  # [F/2]
        self._decay_cache = {}

    def weight_bytes(self):
        seen, total = set(), 0
        tensors = [self.embed, self.output, self.norm] + [
            t for lw in self.layers for t in lw.as_tuple() if t is not None]
        for t in tensors:
            if t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                total += t.numel() * t.element_size()
        return total

    # -- helpers -------------------------------------------------------------

    def new_state(self, batch):
        """L tensors [B, H, F, Dv] in the compute dtype (fp32), zero."""
        c = self.cfg
        return [torch.zeros(batch, c.H, c.F, c.Dv, device=self.device, dtype=self.cdtype)
                for _ in range(c.L)]

    def rope_tables(self, positions):
        """positions int64 [N] -> cos, sin [N, 1, F/2]: float64 angles reduced mod 2pi."""
        ang = positions.to(torch.float64)[:, None] * self.inv_freq64[None, :]
        ang = torch.remainder(ang, 2.0 * math.pi)
        return ang.cos().to(self.cdtype)[:, None, :], ang.sin().to(self.cdtype)[:, None, :]

    def embed_tokens(self, tokens):
        x = F.embedding(tokens, self.embed).to(self.cdtype)
        if self.post_norm is not None:
            x = rms_norm(x, self.post_norm, self.cfg.eps)
        return x

    def final_logits(self, x):
        x = rms_norm(x, self.norm, self.cfg.eps)
        return F.linear(x.to(self.wdtype), self.output).to(torch.float32 if self.cdtype
                                                           != torch.float64 else self.cdtype)

    # -- decode: one token for each of B sequences --------------------------

    def decode_step(self, tokens, positions, state, layer_fn=None, elementwise_state=False):
        """tokens, positions int64 [B]; state: L x [B, H, F, Dv] updated in place.
        Returns logits [B, V]."""
        x = self.embed_tokens(tokens)                 # [B, D]
        cos, sin = self.rope_tables(positions)        # [B, 1, F/2]
        fn = layer_fn or decode_layer
        for lw, P in zip(self.layers, state):
            x = fn(x, P, cos, sin, self.gamma, *lw.as_tuple(), cfg=self.cfg,
                   elementwise_state=elementwise_state)
        return self.final_logits(x)

    # -- prefill: T tokens for each of B sequences, chunked ------------------

    def prefill(self, tokens, start, state, chunk=256, last_only=False):
        """tokens int64 [B, T]; start int64 [B] (first position); state updated in
        place. Returns logits [B, T, V] or [B, V] with last_only."""
        cfg = self.cfg
        B, T = tokens.shape
        pos = (start[:, None] + torch.arange(T, device=self.device)[None, :]).reshape(-1)
        cos, sin = self.rope_tables(pos)              # [B*T, 1, F/2]
        x = self.embed_tokens(tokens.reshape(-1))     # [B*T, D]
        for lw, P in zip(self.layers, state):
            x = prefill_layer(self, x, P, cos, sin, lw, B, T, chunk)
        x = x.view(B, T, cfg.D)
        if last_only:
            return self.final_logits(x[:, -1])
        return self.final_logits(x)

    def _decay(self, C):
        """Per chunk length C: intra-chunk decay [H, C, C], gamma^i [H, C, 1],
        gamma^(C-j) [H, C, 1], gamma^C [H, 1, 1]; from float64 slopes."""
        if C not in self._decay_cache:
            s = self.slope64[:, None, None]                                   # [H,1,1]
            i = torch.arange(C, dtype=torch.float64, device=self.device)
            diff = i[:, None] - i[None, :]                                    # [C, C]
            dec = torch.exp(-s * diff.clamp(min=0)) * (diff >= 0)             # [H, C, C]
            qdec = torch.exp(-s * i[None, :, None])                           # [H, C, 1]
            kdec = torch.exp(-s * (C - i)[None, :, None])                     # [H, C, 1]
            sdec = torch.exp(-s * C)                                          # [H, 1, 1]
            self._decay_cache[C] = tuple(t.to(self.cdtype) for t in (dec, qdec, kdec, sdec))
        return self._decay_cache[C]


def rms_norm(x, weight, eps):
    """x / sqrt(mean(x^2) + eps) * weight over the last dim, in x's dtype (fp32/fp64)."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def group_norm_heads(o):
    """o [..., Dv]: per-head mean/biased variance normalisation, no affine."""
    mean = o.mean(-1, keepdim=True)
    var = (o - mean).pow(2).mean(-1, keepdim=True)
    return (o - mean) * torch.rsqrt(var + GROUPNORM_EPS)


def rope(x, cos, sin):
    """x [N, heads, F], cos/sin [N, 1, F/2]; non-interleaved (rotate_half)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def linear(x, w, b=None):
    """bf16 (or fp64) GEMM; result back in x's dtype."""
    return F.linear(x.to(w.dtype), w, b).to(x.dtype)


def qkv_features(x, cos, sin, attn_norm, in_proj, embed_w, embed_b, embed_kv_w, embed_kv_b,
                 q_norm, k_norm, cfg):
    """x [N, D] -> rope'd query features [N, H, F], scaled rope'd keys [N, Hk, F]
    (Hk = H with qk norm, else Hkv), values [N, Hkv, Dv]."""
    N = x.shape[0]
    H, Hkv, Dh, F_, Dv = cfg.H, cfg.Hkv, cfg.Dh, cfg.F, cfg.Dv
    h = rms_norm(x, attn_norm, cfg.eps)
    qkv = linear(h, in_proj)
    q, k, v = torch.split(qkv, [H * Dh, Hkv * Dh, Hkv * Dv], dim=-1)
    fq = torch.relu(linear(q, embed_w, embed_b))                          # [N, H*F]
    if embed_kv_w is not None:
        fk = torch.relu(linear(k, embed_kv_w, embed_kv_b))                # [N, Hkv*F]
    else:
        fk = torch.relu(linear(k, embed_w, embed_b))                      # shared (Hkv == H)
    kh = Hkv
    if q_norm is not None:
        fq = rms_norm(fq, q_norm, cfg.eps)
        g = H // Hkv
        fk = fk.view(N, Hkv, 1, F_).expand(N, Hkv, g, F_).reshape(N, H * F_)
        fk = rms_norm(fk, k_norm, cfg.eps)
        kh = H
    fq = rope(fq.view(N, H, F_), cos, sin)
    fk = rope(fk.view(N, kh, F_), cos, sin) * (1.0 / math.sqrt(F_))
    return fq, fk, v.reshape(N, Hkv, Dv)


def attn_out_and_ffn(x, o, out_proj, ffn_norm, w12, w3, cfg):
    """o [N, H, Dv] (pre-GroupNorm) -> residual stream after the block."""
    N = x.shape[0]
    o = group_norm_heads(o).reshape(N, cfg.H * cfg.Dv)
    x = x + linear(o, out_proj)
    g = rms_norm(x, ffn_norm, cfg.eps)
    a, b = torch.split(linear(g, w12), [cfg.FFN, cfg.FFN], dim=-1)
    return x + linear(F.silu(a) * b, w3)


def expand_heads(t, H):
    """[N, Hk, X] -> [N, H, X], query head h uses kv head h // (H / Hk)."""
    N, hk, X = t.shape
    if hk == H:
        return t
    return t[:, :, None, :].expand(N, hk, H // hk, X).reshape(N, H, X)


def decode_layer(x, P, cos, sin, gamma, attn_norm, in_proj, embed_w, embed_b, embed_kv_w,
                 embed_kv_b, q_norm, k_norm, out_proj, ffn_norm, w12, w3, cfg,
                 elementwise_state=False):
    """One block for one token per sequence. x [B, D]; P [B, H, F, Dv] (decayed
    state, updated in place); gamma [H]."""
    B = x.shape[0]
    H, F_, Dv = cfg.H, cfg.F, cfg.Dv
    fq, fk, v = qkv_features(x, cos, sin, attn_norm, in_proj, embed_w, embed_b, embed_kv_w,
                             embed_kv_b, q_norm, k_norm, cfg)
    k = expand_heads(fk, H)                                               # [B, H, F]
    v = expand_heads(v, H)                                                # [B, H, Dv]
    if elementwise_state:
        # Written for a fusing compiler: S and o in one pass, P <- gamma*S in another.
        S = P + k[..., :, None] * v[..., None, :]                         # [B, H, F, Dv]
        o = (fq[..., :, None] * S).sum(-2)                                # [B, H, Dv]
        P.copy_(S * gamma[None, :, None, None])
    else:
        # Eager: S = P + k (x) v in place, o = q . S (batched GEMV), P <- gamma * S.
        Pf = P.view(B * H, F_, Dv)
        Pf.baddbmm_(k.reshape(B * H, F_, 1), v.reshape(B * H, 1, Dv))
        o = torch.bmm(fq.reshape(B * H, 1, F_), Pf).view(B, H, Dv)
        P.mul_(gamma[None, :, None, None])
    return attn_out_and_ffn(x, o, out_proj, ffn_norm, w12, w3, cfg)


def prefill_layer(model, x, P, cos, sin, lw, B, T, chunk):
    """One block over T tokens of B sequences (x [B*T, D]) in chunks (supra-model.md 4):
    o_i = g^i (q_i . P) + sum_{j<=i} g^(i-j) (q_i . k_j) v_j,
    P  <- g^C P + sum_j g^(C-j) k_j (x) v_j."""
    cfg = model.cfg
    H, F_, Dv = cfg.H, cfg.F, cfg.Dv
    fq, fk, v = qkv_features(x, cos, sin, lw.attn_norm, lw.in_proj, lw.embed_w, lw.embed_b,
                             lw.embed_kv_w, lw.embed_kv_b, lw.q_norm, lw.k_norm, cfg)
    q = fq.view(B, T, H, F_).transpose(1, 2)                              # [B, H, T, F]
    k = expand_heads(fk, H).view(B, T, H, F_).transpose(1, 2)             # [B, H, T, F]
    v = expand_heads(v, H).view(B, T, H, Dv).transpose(1, 2)              # [B, H, T, Dv]
    o = torch.empty(B, H, T, Dv, device=x.device, dtype=x.dtype)
    S = P
    for c0 in range(0, T, chunk):
        c1 = min(T, c0 + chunk)
        dec, qdec, kdec, sdec = model._decay(c1 - c0)
        qc, kc, vc = q[:, :, c0:c1], k[:, :, c0:c1], v[:, :, c0:c1]
        att = torch.matmul(qc, kc.transpose(-1, -2)) * dec               # [B, H, C, C]
        o[:, :, c0:c1] = torch.matmul(att, vc) + qdec * torch.matmul(qc, S)
        S = sdec * S + torch.matmul((kc * kdec).transpose(-1, -2), vc)   # [B, H, F, Dv]
    P.copy_(S)
    o = o.transpose(1, 2).reshape(B * T, H, Dv)
    return attn_out_and_ffn(x, o, lw.out_proj, lw.ffn_norm, lw.w12, lw.w3, cfg)


# ----------------------------------------------------------------------------
# Golden check
# ----------------------------------------------------------------------------

def rel_err(got, ref):
    got = got.to(torch.float64).cpu()
    ref = torch.as_tensor(ref).to(torch.float64).cpu()
    scale = ref.abs().max().item()
    return (got - ref).abs().max().item() / (scale if scale > 0 else 1.0)


def check_golden(model_dir, golden_path, device, dtype, tol, wdtype=None):
    name = os.path.basename(os.path.normpath(model_dir))
    if golden_path is None:
        golden_path = os.path.join(model_dir, "..", "..", "golden", name + ".safetensors")
    golden = read_safetensors(golden_path)
    cfg, tensors = load_checkpoint(model_dir, dtype)
    m = SupraTorch(cfg, tensors, device, wdtype or dtype, dtype)
    results = []

    def record(what, err):
        results.append((what, err))

    def t64(a):
        return torch.as_tensor(np.asarray(a, dtype=np.int64), device=device)

    # 1. Teacher-forced token loop from position 0 (eager state update).
    toks = t64(golden["tokens"])
    T = toks.shape[0]
    state = m.new_state(1)
    loop = []
    for t in range(T):
        loop.append(m.decode_step(toks[t:t + 1], t64([t]), state)[0])
    loop = torch.stack(loop)
    record("logits(token loop)", rel_err(loop, golden["logits"]))
    record("state(token loop)", rel_err(torch.stack([s[0] for s in state]), golden["state"]))

    # 2. The compiler-oriented state update gives the same thing.
    state2 = m.new_state(1)
    loop2 = torch.stack([m.decode_step(toks[t:t + 1], t64([t]), state2,
                                       elementwise_state=True)[0] for t in range(T)])
    record("logits(elementwise state)", rel_err(loop2, golden["logits"]))

    # 3. Chunked prefill == token loop, for several chunk sizes and a split prompt.
    for chunk in (1, 7, 16, 64):
        st = m.new_state(1)
        lg = m.prefill(toks[None], t64([0]), st, chunk=chunk)[0]
        record("prefill chunk %d vs loop" % chunk, rel_err(lg, loop))
        record("prefill chunk %d state vs loop" % chunk,
               rel_err(torch.stack([s[0] for s in st]), torch.stack([s[0] for s in state])))
    st = m.new_state(1)
    cut = 13
    a = m.prefill(toks[None, :cut], t64([0]), st, chunk=5)[0]
    b = m.prefill(toks[None, cut:], t64([cut]), st, chunk=8)[0]
    record("prefill split 13+27 vs golden", rel_err(torch.cat([a, b]), golden["logits"]))

    # 4. Batched decode: the same prompt in slot 1 of a batch of 3 with other traffic.
    stb = m.new_state(3)
    other = torch.randint(0, cfg.V, (3, T), generator=torch.Generator().manual_seed(1))
    lb = []
    for t in range(T):
        tk = other[:, t].to(device).clone()
        tk[1] = toks[t]
        lb.append(m.decode_step(tk, t64([t + 5, t, 2 * t]), stb)[1])
    record("batched decode slot 1", rel_err(torch.stack(lb), golden["logits"]))

    # 5. Positions near 2^31 (float64 angles reduced mod 2pi).
    if "far_tokens" in golden:
        ft = t64(golden["far_tokens"])
        fs = int(golden["far_start"][0])
        st = m.new_state(1)
        fl = torch.stack([m.decode_step(ft[i:i + 1], t64([fs + i]), st)[0]
                          for i in range(ft.shape[0])])
        record("far positions (loop)", rel_err(fl, golden["far_logits"]))
        st = m.new_state(1)
        fp = m.prefill(ft[None], t64([fs]), st, chunk=3)[0]
        record("far positions (prefill)", rel_err(fp, golden["far_logits"]))

    # 6. The long prompt (h32): prefill in chunks of 256.
    if "long_tokens" in golden:
        lt = t64(golden["long_tokens"])
        st = m.new_state(1)
        ll = m.prefill(lt[None], t64([0]), st, chunk=256, last_only=True)[0]
        record("long prompt last logits (chunk 256)", rel_err(ll, golden["long_logits_last"]))

    # 7. On CUDA: the benchmark's decode path (CUDA graph, with and without the
    #    torch.compile'd block) fed the prompt token by token.
    if str(device).startswith("cuda"):
        for no_inductor in (True, False):
            layer_fn, how = make_compiled_layer(no_inductor)
            dec = GraphDecoder(m, 1, layer_fn, layer_fn is not decode_layer, tokens=toks[:1])
            got = []
            for t in range(T):
                dec.tokens.copy_(toks[t:t + 1])
                dec.positions.fill_(t)
                got.append(dec.replay()[0].clone())
            record("graph decode, %s" % how.split(" per ")[0], rel_err(torch.stack(got),
                                                                       golden["logits"]))
            record("graph decode state, %s" % how.split(" per ")[0],
                   rel_err(torch.stack([s[0] for s in dec.state]), golden["state"]))

    ok = True
    for what, err in results:
        good = err <= tol
        ok = ok and good
        print("  %-8s %-40s rel err %.3e  %s" % (name, what, err, "ok" if good else "FAIL"))
    return ok


# ----------------------------------------------------------------------------
# Benchmark
# ----------------------------------------------------------------------------

def sample_top_p(logits, top_p, temperature):
    """logits [B, V] -> token ids [B] (device): softmax, sort, cumsum, multinomial."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    sp, si = torch.sort(probs, dim=-1, descending=True)
    cum = torch.cumsum(sp, dim=-1)
    sp = sp.masked_fill((cum - sp) > top_p, 0.0)
    choice = torch.multinomial(sp, 1)                                     # [B, 1]
    return torch.gather(si, -1, choice).squeeze(-1)


def emit(results, rec, json_path):
    line = json.dumps(rec)
    print(line, flush=True)
    results.append(rec)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(results, f, indent=1)


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return self.end - time.monotonic()


def time_decode(step, tokens, positions, args, B):
    """Runs warm-up then timed steps; each step samples and copies tokens to the host."""
    host = None
    for _ in range(args.warmup):
        host = step(tokens, positions)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        host = step(tokens, positions)
    dt = (time.perf_counter() - t0) / args.steps
    assert host.shape == (B,)
    return dt


def bench_eager_decode(model, B, args):
    state = model.new_state(B)
    tokens = torch.randint(0, model.cfg.V, (B,), device="cuda")
    positions = torch.full((B,), args.start_pos, dtype=torch.int64, device="cuda")

    def step(tok, pos):
        logits = model.decode_step(tok, pos, state)
        nxt = sample_top_p(logits, args.top_p, args.temperature)
        tok.copy_(nxt)
        pos.add_(1)
        return nxt.cpu()

    return time_decode(step, tokens, positions, args, B)


def make_compiled_layer(no_inductor):
    """torch.compile of one block (reused by all layers: same shapes, weights are
    arguments). Returns (layer_fn, description); layer_fn is decode_layer itself when
    not compiling."""
    if no_inductor:
        return decode_layer, "cudagraph(eager ops)"
    if not hasattr(torch, "compile"):
        return decode_layer, "cudagraph(eager ops): torch.compile unavailable"
    import torch._dynamo as dynamo
    for knob in ("cache_size_limit", "recompile_limit"):  # one entry per batch size/model
        if hasattr(dynamo.config, knob):
            setattr(dynamo.config, knob, 64)
    compiled = torch.compile(decode_layer, dynamic=False, fullgraph=True)
    return compiled, "torch.compile(inductor, default mode) per block + manual torch.cuda.CUDAGraph"


class GraphDecoder:
    """Static token/position/state buffers; the forward (embedding -> logits) of one
    decode step is captured in one CUDA graph. `layer_fn` is decode_layer or its
    torch.compile'd version (compiled on the first warm-up call)."""

    def __init__(self, model, B, layer_fn, elementwise, tokens=None, start_pos=0):
        self.state = model.new_state(B)
        self.tokens = (tokens.clone() if tokens is not None else
                       torch.randint(0, model.cfg.V, (B,), device=model.device))
        self.positions = torch.full((B,), start_pos, dtype=torch.int64, device=model.device)

        def forward():
            return model.decode_step(self.tokens, self.positions, self.state,
                                     layer_fn=layer_fn, elementwise_state=elementwise)

        # Warm up on a side stream, as graph capture requires; then reset the state.
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                forward()
        torch.cuda.current_stream().wait_stream(s)
        torch.cuda.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = forward()                                        # [B, V]
        torch.cuda.synchronize()
        for p in self.state:
            p.zero_()

    def replay(self):
        """One step on the current tokens/positions; returns the static logits."""
        self.graph.replay()
        return self.logits


def bench_graph_decode(model, B, args, layer_fn, elementwise):
    """Graph replay, then sampling + .cpu() as in eager mode."""
    dec = GraphDecoder(model, B, layer_fn, elementwise, start_pos=args.start_pos)

    def step(tok, pos):
        logits = dec.replay()
        nxt = sample_top_p(logits, args.top_p, args.temperature)
        tok.copy_(nxt)
        pos.add_(1)
        return nxt.cpu()

    return time_decode(step, dec.tokens, dec.positions, args, B)


def bench_prefill(model, T, args):
    state = model.new_state(1)
    tokens = torch.randint(0, model.cfg.V, (1, T), device="cuda")
    start = torch.zeros(1, dtype=torch.int64, device="cuda")

    def run():
        for s in state:
            s.zero_()
        lg = model.prefill(tokens, start, state, chunk=args.chunk, last_only=True)
        return sample_top_p(lg, args.top_p, args.temperature).cpu()

    for _ in range(args.prefill_warmup):
        run()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.prefill_iters):
        run()
    return (time.perf_counter() - t0) / args.prefill_iters


def free_cuda():
    import gc
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()


def run_bench(args):
    if not torch.cuda.is_available():
        sys.exit("--bench needs a CUDA device")
    deadline = Deadline(args.time_budget)
    torch.backends.cuda.matmul.allow_tf32 = False
    cfg = Config(MISTRAL_SUPRA)
    batches = [int(b) for b in args.batches.split(",") if b]
    modes = args.modes.split(",")
    results = []
    t0 = time.perf_counter()
    model = SupraTorch.random(cfg, "cuda")
    torch.cuda.synchronize()
    meta = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
            "weight_bytes": model.weight_bytes(), "init_s": round(time.perf_counter() - t0, 2)}
    print("# " + json.dumps(meta), flush=True)

    def rec(impl, kind, B, T, dt, **extra):
        d = {"impl": impl, "kind": kind, "batch": B, "tokens": T,
             "ms_per_step": round(dt * 1e3, 4), "tokens_per_s": round(B * T / dt, 2)}
        d.update(extra)
        d["device"] = meta["device"]
        d["torch"] = meta["torch"]
        emit(results, d, args.json)

    if "eager" in modes:
        for B in batches:
            dt = bench_eager_decode(model, B, args)
            rec("torch-eager", "decode", B, 1, dt)
            free_cuda()
        if args.prefill_tokens > 0:
            T = args.prefill_tokens
            dt = bench_prefill(model, T, args)
            rec("torch-eager", "prefill", 1, T, dt, chunk=args.chunk)
            free_cuda()

    if "compiled" in modes:
        try:
            layer_fn, how = make_compiled_layer(args.no_inductor)
        except Exception as e:
            print("# torch.compile unavailable (%s: %s); CUDA graph of the eager ops"
                  % (type(e).__name__, e), flush=True)
            layer_fn, how = make_compiled_layer(True)
        elementwise = layer_fn is not decode_layer
        for B in batches:
            if deadline.left() < args.min_compile_s:
                print("# torch-compiled batch %d skipped: %.0f s left of --time-budget"
                      % (B, max(0.0, deadline.left())), flush=True)
                continue
            t1 = time.perf_counter()
            try:
                dt = bench_graph_decode(model, B, args, layer_fn, elementwise)
            except Exception as e:  # compile or capture failure: fall back once
                print("# torch-compiled batch %d: %s failed: %s: %s"
                      % (B, how, type(e).__name__, str(e).splitlines()[0] if str(e) else ""),
                      flush=True)
                free_cuda()
                if layer_fn is decode_layer:
                    break
                layer_fn, elementwise = decode_layer, False
                how = "cudagraph(eager ops), torch.compile failed"
                try:
                    dt = bench_graph_decode(model, B, args, layer_fn, elementwise)
                except Exception as e2:
                    print("# torch-compiled skipped: CUDA graph capture failed: %s: %s"
                          % (type(e2).__name__, e2), flush=True)
                    break
            rec("torch-compiled", "decode", B, 1, dt, mode=how,
                setup_s=round(time.perf_counter() - t1, 1))
            free_cuda()
    print("# bench total %.1f s" % (args.time_budget - deadline.left()), flush=True)
    return results


# ----------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check-golden", nargs="+", metavar="MODEL_DIR",
                    help="tests/data/models/<name> directories to check")
    ap.add_argument("--golden", help="golden file (default: <dir>/../../golden/<name>"
                    ".safetensors); only with one MODEL_DIR")
    ap.add_argument("--device", default="cpu", help="device of the golden check")
    ap.add_argument("--dtype", default="float64", choices=("float64", "float32"),
                    help="weights and compute dtype of the golden check")
    ap.add_argument("--weights-bf16", action="store_true",
                    help="golden check with bf16 weights/GEMMs (the benchmark's numerics; "
                    "expect ~1e-2, pass a matching --tol)")
    ap.add_argument("--tol", type=float, default=1e-4,
                    help="golden check tolerance on max|diff| / max|ref|")
    ap.add_argument("--bench", action="store_true", help="benchmark Mistral-SUPRA shapes")
    ap.add_argument("--batches", default="1,8,64", help="decode batch sizes")
    ap.add_argument("--modes", default="eager,compiled", help="eager and/or compiled")
    ap.add_argument("--steps", type=int, default=20, help="timed decode steps per batch")
    ap.add_argument("--warmup", type=int, default=3, help="decode warm-up steps per batch")
    ap.add_argument("--start-pos", type=int, default=2048, help="first decode position")
    ap.add_argument("--prefill-tokens", type=int, default=2048, help="0 skips prefill")
    ap.add_argument("--prefill-warmup", type=int, default=2)
    ap.add_argument("--prefill-iters", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=256, help="prefill chunk length")
    ap.add_argument("--top-p", type=float, default=0.9)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--no-inductor", action="store_true",
                    help="compiled mode = CUDA graph of the eager ops, no torch.compile")
    ap.add_argument("--time-budget", type=float, default=230.0,
                    help="seconds; compiled batches that would start later are skipped")
    ap.add_argument("--min-compile-s", type=float, default=25.0,
                    help="a compiled batch needs this much of the budget left to start")
    ap.add_argument("--json", help="write all results here as a JSON list")
    args = ap.parse_args()

    if not args.check_golden and not args.bench:
        ap.error("give --check-golden MODEL_DIR... and/or --bench")
    torch.set_grad_enabled(False)
    ok = True
    if args.check_golden:
        if args.golden and len(args.check_golden) != 1:
            ap.error("--golden needs exactly one MODEL_DIR")
        dtype = getattr(torch, args.dtype)
        for d in args.check_golden:
            ok = check_golden(d, args.golden, args.device, dtype, args.tol,
                              torch.bfloat16 if args.weights_bf16 else None) and ok
        print("golden check: %s" % ("PASS" if ok else "FAIL"), flush=True)
    if args.bench:
        run_bench(args)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
