"""Float64 NumPy reference of the SUPRA model (docs/supra-model.md).

Python: Debian's /usr/bin/python3 (3.11) with python3-numpy.

Written from the model contract only (supra-model.md sections 1-5), as
literally as possible and entirely in float64:
- `SupraModel.step` is the token-by-token recurrent form (section 3);
- `SupraModel.forward_chunk` is the chunked form (section 4).
`check_forms_agree` asserts that both give the same logits and states.

Weights are taken as stored (bf16/f16 values upcast exactly to float64).
"""

import math

import numpy as np

GROUP_NORM_EPS = 1e-5  # section 3.10: fixed, not norm_eps
TWO_PI = 2.0 * math.pi
MAX_POSITION = 2**31 - 1

REQUIRED = ["dim", "n_layers", "n_heads", "n_heads_kv", "qk_head_dim", "v_head_dim",
            "intermediate_dim_ffn", "vocab_size", "norm_type", "attn_name"]
DEFAULTS = {
    "norm_eps": 1e-5,
    "rotary_base_frequency": 10000.0,
    "rotary_scale": 1.0,
    "post_embed_norm": False,
    "weight_tying": False,
    "apply_qk_norm": False,
    "positional_embedding_type": "rotary",
    "ffn_type": "swiglu",
    "use_decay": False,
    "use_retnet_slopes": False,
    "decay_start": None,
}


def resolve_config(config):
    """Returns the config with defaults filled in; checks what the engine refuses."""
    for key in REQUIRED:
        if key not in config:
            raise ValueError("config.json: missing required field %r" % key)
    c = dict(DEFAULTS)
    c.update({k: v for k, v in config.items() if v is not None or k not in DEFAULTS})
    expected = {"norm_type": ["rms_norm"], "attn_name": ["linear_attn"],
                "positional_embedding_type": ["rotary"], "ffn_type": ["swiglu", "swiglu_torch"]}
    for key, allowed in expected.items():
        if c[key] not in allowed:
            raise ValueError("config.json: unsupported %s %r" % (key, c[key]))
    if c["dim"] % c["n_heads"] or c["n_heads"] % c["n_heads_kv"]:
        raise ValueError("config.json: dim/n_heads/n_heads_kv do not divide")
    if c["qk_head_dim"] != c["dim"] // c["n_heads"]:
        raise ValueError("config.json: rotary needs qk_head_dim == dim / n_heads")
    return c


# ---------------------------------------------------------------------------
# Section 3.8: decay slopes.

def lightning_slopes(n, start=None):
    """Lightning-attention / ALiBi slopes for n heads, float64 (section 3.8)."""
    if n & (n - 1) == 0:
        r = 2.0 ** (-8.0 / n)
        s0 = r if start is None else float(start)
        return [s0 * r**h for h in range(n)]
    p = 1 << (n.bit_length() - 1)  # largest power of two < n
    return lightning_slopes(p, start) + lightning_slopes(2 * p)[0::2][:n - p]


def retnet_gammas(n):
    return [1.0 - 2.0 ** (-5 - h) for h in range(n)]


def decay_gammas(c):
    """Per-head gamma (float64 list) for a resolved config."""
    n = c["n_heads"]
    if not c["use_decay"]:
        return [1.0] * n
    if c["use_retnet_slopes"]:
        return retnet_gammas(n)
    return [math.exp(-s) for s in lightning_slopes(n, c["decay_start"])]


# ---------------------------------------------------------------------------
# Small float64 building blocks.

def rms_norm(x, weight, eps):
    """RMSNorm over the last axis, times weight."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def group_norm(o, eps=GROUP_NORM_EPS):
    """Per-head normalisation over the last axis (Dv), no affine parameters."""
    mean = np.mean(o, axis=-1, keepdims=True)
    var = np.mean((o - mean) ** 2, axis=-1, keepdims=True)
    return (o - mean) / np.sqrt(var + eps)


def silu(a):
    return a / (1.0 + np.exp(-a))


def rope_angles(positions, head_dim, base, scale):
    """cos/sin [len(positions), head_dim/2] from float64 angles reduced mod 2*pi."""
    i = np.arange(head_dim // 2, dtype=np.float64)
    inv_freq = 1.0 / (scale * np.power(float(base), 2.0 * i / head_dim))
    theta = np.asarray(positions, dtype=np.float64)[:, None] * inv_freq[None, :]
    theta = np.fmod(theta, TWO_PI)
    return np.cos(theta), np.sin(theta)


def apply_rope(x, cos, sin):
    """x [..., heads, F] with cos/sin [..., F/2] (broadcast over heads); rotate_half."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c = cos[..., None, :]
    s = sin[..., None, :]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)


# ---------------------------------------------------------------------------

class State:
    """A session: per-layer states P [L, H, F, Dv] and the next position."""

    def __init__(self, c, position=0):
        self.P = np.zeros((c["n_layers"], c["n_heads"], c["qk_head_dim"], c["v_head_dim"]))
        self.position = position

    def copy(self):
        s = State.__new__(State)
        s.P = self.P.copy()
        s.position = self.position
        return s


class SupraModel:
    def __init__(self, config, weights):
        """config: the config.json dict; weights: name -> float64 array as stored."""
        c = resolve_config(config)
        self.c = c
        self.D = c["dim"]
        self.L = c["n_layers"]
        self.H = c["n_heads"]
        self.Hkv = c["n_heads_kv"]
        self.F = c["qk_head_dim"]
        self.Dh = self.D // self.H
        self.Dv = c["v_head_dim"]
        self.FFN = c["intermediate_dim_ffn"]
        self.V = c["vocab_size"]
        self.eps = float(c["norm_eps"])
        self.gamma = np.array(decay_gammas(c), dtype=np.float64)  # [H]
        self.group = np.arange(self.H) // (self.H // self.Hkv)  # query head -> kv head
        self.w = self._check_weights(weights)

    def _check_weights(self, weights):
        w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
        emb, out = "model.tok_embeddings.weight", "model.output.weight"
        if self.c["weight_tying"]:
            if emb in w and out in w:
                assert np.array_equal(w[emb], w[out]), "tied weights differ"
            elif emb in w:
                w[out] = w[emb]
            else:
                w[emb] = w[out]
        D, H, Hkv, Dh, F, Dv, FFN, V = (self.D, self.H, self.Hkv, self.Dh, self.F, self.Dv,
                                          self.FFN, self.V)
        shapes = {emb: (V, D), out: (V, D), "model.norm.weight": (D,)}
        if self.c["post_embed_norm"]:
            shapes["model.post_embed_norm.weight"] = (D,)
        for i in range(self.L):
            p = "model.layers.%d." % i
            shapes[p + "attention_norm.weight"] = (D,)
            shapes[p + "attention.in_proj.weight"] = (H * Dh + Hkv * Dh + Hkv * Dv, D)
            shapes[p + "attention._totrain_embed.weight"] = (H * F, H * Dh)
            shapes[p + "attention._totrain_embed.bias"] = (H * F,)
            if Hkv != H:
                shapes[p + "attention._totrain_embed_kv.weight"] = (Hkv * F, Hkv * Dh)
                shapes[p + "attention._totrain_embed_kv.bias"] = (Hkv * F,)
            if self.c["apply_qk_norm"]:
                shapes[p + "attention._totrain_q_norm.weight"] = (H * F,)
                shapes[p + "attention._totrain_k_norm.weight"] = (H * F,)
            shapes[p + "attention.out_proj.weight"] = (D, H * Dv)
            shapes[p + "ffn_norm.weight"] = (D,)
            shapes[p + "feed_forward.w12.weight"] = (2 * FFN, D)
            shapes[p + "feed_forward.w3.weight"] = (D, FFN)
        assert set(w) == set(shapes), sorted(set(w) ^ set(shapes))
        for k, shape in shapes.items():
            assert w[k].shape == shape, (k, w[k].shape, shape)
        return w

    # -- pieces shared by both forms: everything but the state recurrence ----

    def _embed(self, tokens):
        x = self.w["model.tok_embeddings.weight"][np.asarray(tokens)]  # [T, D]
        if self.c["post_embed_norm"]:
            x = rms_norm(x, self.w["model.post_embed_norm.weight"], self.eps)
        return x

    def _features(self, i, x, positions):
        """Sections 3.1-3.7 for tokens x [T, D] at `positions`.

        Returns q [T, H, F] (roped), k [T, H, F] (roped, scaled, expanded to
        query heads), v [T, H, Dv] (expanded).
        """
        p = "model.layers.%d.attention." % i
        w = self.w
        H, Hkv, Dh, F, Dv = self.H, self.Hkv, self.Dh, self.F, self.Dv
        T = x.shape[0]
        h = rms_norm(x, w["model.layers.%d.attention_norm.weight" % i], self.eps)
        qkv = h @ w[p + "in_proj.weight"].T
        q = qkv[:, :H * Dh]
        k = qkv[:, H * Dh:H * Dh + Hkv * Dh]
        v = qkv[:, H * Dh + Hkv * Dh:]
        assert v.shape[1] == Hkv * Dv
        fq = np.maximum(q @ w[p + "_totrain_embed.weight"].T + w[p + "_totrain_embed.bias"], 0.0)
        kv_name = "_totrain_embed_kv" if Hkv != H else "_totrain_embed"
        fk = np.maximum(k @ w[p + kv_name + ".weight"].T + w[p + kv_name + ".bias"], 0.0)
        fq = fq.reshape(T, H, F)
        fk = fk.reshape(T, Hkv, F)[:, self.group, :]  # [T, H, F]
        v = v.reshape(T, Hkv, Dv)[:, self.group, :]  # [T, H, Dv]
        if self.c["apply_qk_norm"]:
            fq = rms_norm(fq.reshape(T, H * F), w[p + "_totrain_q_norm.weight"],
                          self.eps).reshape(T, H, F)
            fk = rms_norm(fk.reshape(T, H * F), w[p + "_totrain_k_norm.weight"],
                          self.eps).reshape(T, H, F)
        cos, sin = rope_angles(positions, F, self.c["rotary_base_frequency"],
                               self.c["rotary_scale"])
        fq = apply_rope(fq, cos, sin)
        fk = apply_rope(fk, cos, sin) / math.sqrt(F)
        return fq, fk, v

    def _after_attention(self, i, x, o):
        """Sections 3.10-3.12: o [T, H, Dv] -> new residual stream x [T, D]."""
        w = self.w
        p = "model.layers.%d." % i
        o = group_norm(o)
        x = x + o.reshape(o.shape[0], -1) @ w[p + "attention.out_proj.weight"].T
        g = rms_norm(x, w[p + "ffn_norm.weight"], self.eps)
        ab = g @ w[p + "feed_forward.w12.weight"].T
        a, b = ab[:, :self.FFN], ab[:, self.FFN:]
        return x + (silu(a) * b) @ w[p + "feed_forward.w3.weight"].T

    def _logits(self, x):
        x = rms_norm(x, self.w["model.norm.weight"], self.eps)
        return x @ self.w["model.output.weight"].T

    def _positions(self, state, n):
        positions = np.arange(state.position, state.position + n, dtype=np.int64)
        if n and positions[-1] > MAX_POSITION:
            raise ValueError("position beyond 2^31 - 1")
        return positions

    # -- section 3: token by token -------------------------------------------

    def step(self, token, state):
        """Feeds one token; returns its logits [V] and advances `state`."""
        positions = self._positions(state, 1)
        x = self._embed([token])
        for i in range(self.L):
            q, k, v = self._features(i, x, positions)
            q, k, v = q[0], k[0], v[0]  # [H, F], [H, F], [H, Dv]
            o = np.empty((self.H, self.Dv))
            for h in range(self.H):
                S = state.P[i, h] + np.outer(k[h], v[h])  # [F, Dv]
                o[h] = q[h] @ S
                state.P[i, h] = self.gamma[h] * S
            x = self._after_attention(i, x, o[None])
        state.position += 1
        return self._logits(x)[0]

    def forward_tokens(self, tokens, state):
        """Token-by-token over a sequence; returns logits [T, V]."""
        return np.stack([self.step(t, state) for t in tokens]) if len(tokens) else \
            np.zeros((0, self.V))

    # -- section 4: chunks -----------------------------------------------------

    def forward_chunk(self, tokens, state):
        """Feeds a chunk of C tokens at once (section 4); returns logits [C, V]."""
        C = len(tokens)
        positions = self._positions(state, C)
        x = self._embed(tokens)
        idx = np.arange(C)
        diff = idx[:, None] - idx[None, :]  # i - j
        causal = diff >= 0
        for i in range(self.L):
            q, k, v = self._features(i, x, positions)
            o = np.empty((C, self.H, self.Dv))
            for h in range(self.H):
                g = self.gamma[h]
                P = state.P[i, h]
                decay = np.where(causal, g ** np.where(causal, diff, 0), 0.0)  # [C, C]
                scores = (q[:, h] @ k[:, h].T) * decay
                o[:, h] = (g ** idx)[:, None] * (q[:, h] @ P) + scores @ v[:, h]
                weights = g ** (C - idx)  # gamma^(C - j)
                state.P[i, h] = g**C * P + (k[:, h] * weights[:, None]).T @ v[:, h]
            x = self._after_attention(i, x, o)
        state.position += C
        return self._logits(x)

    def forward_chunked(self, tokens, state, chunk):
        out = [self.forward_chunk(tokens[s:s + chunk], state) for s in range(0, len(tokens), chunk)]
        return np.concatenate(out) if out else np.zeros((0, self.V))


def check_forms_agree(model, tokens, start=0, chunks=(1, 5, 16, 64), tol=1e-10):
    """Asserts chunked == token-by-token (logits and state), relative to scale.

    Returns (logits [T, V], state) of the token-by-token form.
    """
    ref_state = State(model.c, start)
    ref = model.forward_tokens(tokens, ref_state)
    for chunk in chunks:
        s = State(model.c, start)
        got = model.forward_chunked(tokens, s, chunk)
        err = np.max(np.abs(got - ref)) / max(1.0, np.max(np.abs(ref)))
        assert err < tol, ("logits", chunk, err)
        err = np.max(np.abs(s.P - ref_state.P)) / max(1.0, np.max(np.abs(ref_state.P)))
        assert err < tol, ("state", chunk, err)
        assert s.position == ref_state.position
    # Uneven turns: the same tokens split at irregular places.
    s = State(model.c, start)
    cuts = sorted({0, len(tokens)} | {c for c in (1, 4, 11, 12, 30) if c < len(tokens)})
    got = np.concatenate([model.forward_chunk(tokens[a:b], s) for a, b in zip(cuts, cuts[1:])])
    err = np.max(np.abs(got - ref)) / max(1.0, np.max(np.abs(ref)))
    assert err < tol, ("turns", err)
    err = np.max(np.abs(s.P - ref_state.P)) / max(1.0, np.max(np.abs(ref_state.P)))
    assert err < tol, ("turns state", err)
    return ref, ref_state


def greedy(model, prompt, n, state=None):
    """Feeds prompt, then samples n tokens by argmax (ties to the lowest id).

    Every sampled token but the last is fed back. Returns (tokens, margins)
    where margins[i] is the gap between the best and second-best logit.
    """
    state = State(model.c) if state is None else state
    logits = model.forward_tokens(prompt, state)[-1]
    out, margins = [], []
    for step in range(n):
        tok = int(np.argmax(logits))  # first maximum: lowest id on ties
        top2 = np.sort(logits)[-2:]
        margins.append(float(top2[1] - top2[0]))
        out.append(tok)
        if step + 1 < n:
            logits = model.step(tok, state)
    return out, margins
