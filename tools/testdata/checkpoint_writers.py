"""Writes model weights as safetensors or PyTorch checkpoints, whole or sharded.

Python: Debian's /usr/bin/python3 (3.11) with python3-numpy and python3-torch 1.13.

Weights arrive as an ordered list of (name, float32 numpy array). The stored
dtype ("F32", "BF16" or "F16") rounds them to nearest-even; both writers round
the same way (checked by `check_rounding_agrees`).
"""

import collections
import json
import os

import numpy as np
import torch

import safetensors_io

TORCH_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def check_rounding_agrees():
    """Asserts numpy's bf16/f16 rounding equals torch's on awkward values."""
    rng = np.random.default_rng(7)
    a = np.concatenate([
        rng.standard_normal(4096).astype(np.float32),
        # Exact ties between two bf16 / f16 neighbours.
        np.array([1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-11, 1 + 3 * 2**-11, -1 - 2**-8],
                 dtype=np.float32),
    ])
    t = torch.from_numpy(a)
    bf16_torch = t.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(bf16_torch, safetensors_io.f32_to_bf16_bits(a))
    f16_torch = t.to(torch.float16).numpy()
    assert np.array_equal(f16_torch.view(np.uint16), a.astype(np.float16).view(np.uint16))


def _split_shards(weights, n_shards):
    """Splits the ordered weights into n contiguous groups of similar byte size."""
    sizes = [w.nbytes for _, w in weights]
    total = sum(sizes)
    shards = [[] for _ in range(n_shards)]
    acc = 0
    for (name, w), size in zip(weights, sizes):
        # A tensor goes to the shard its byte midpoint falls in.
        idx = min(n_shards - 1, ((2 * acc + size) * n_shards) // (2 * total))
        shards[idx].append((name, w))
        acc += size
    assert all(shards), "a shard would be empty"
    return shards


def _write_index(path, weight_map, total_size):
    with open(path, "w") as f:
        json.dump({"metadata": {"total_size": int(total_size)}, "weight_map": weight_map},
                  f, indent=2)
        f.write("\n")


def write_safetensors(path, weights, dtype):
    tensors = [(name, dtype, w) for name, w in weights]
    return safetensors_io.write(path, tensors, metadata={"format": "pt"})


def write_safetensors_sharded(model_dir, weights, dtype, n_shards):
    """model-0000k-of-0000n.safetensors plus model.safetensors.index.json."""
    weight_map = {}
    total = 0
    for k, shard in enumerate(_split_shards(weights, n_shards)):
        fname = "model-%05d-of-%05d.safetensors" % (k + 1, n_shards)
        total += write_safetensors(os.path.join(model_dir, fname), shard, dtype)
        for name, _ in shard:
            weight_map[name] = fname
    _write_index(os.path.join(model_dir, "model.safetensors.index.json"), weight_map, total)


def _state_dict(weights, dtype, tied=None):
    """An OrderedDict of torch tensors, each with its own storage.

    `tied` = (alias, target): `alias` becomes a second tensor object viewing
    the storage of `target`, which is what `module.state_dict()` returns for
    tied parameters, so torch.save writes one storage referenced twice.
    """
    sd = collections.OrderedDict()
    for name, w in weights:
        if tied is not None and name == tied[0]:
            sd[name] = sd[tied[1]].detach()
        else:
            sd[name] = torch.from_numpy(np.array(w, dtype=np.float32)).to(TORCH_DTYPES[dtype])
    return sd


def write_torch(path, weights, dtype, tied=None):
    """torch.save of an OrderedDict state_dict (zip format). Returns data bytes."""
    sd = _state_dict(weights, dtype, tied)
    torch.save(sd, path, _use_new_zipfile_serialization=True)
    storages = {t.storage().data_ptr(): t.storage().nbytes() for t in sd.values()}
    return sum(storages.values())


def write_torch_sharded(model_dir, weights, dtype, n_shards):
    """pytorch_model-0000k-of-0000n.bin plus pytorch_model.bin.index.json."""
    weight_map = {}
    total = 0
    for k, shard in enumerate(_split_shards(weights, n_shards)):
        fname = "pytorch_model-%05d-of-%05d.bin" % (k + 1, n_shards)
        total += write_torch(os.path.join(model_dir, fname), shard, dtype)
        for name, _ in shard:
            weight_map[name] = fname
    _write_index(os.path.join(model_dir, "pytorch_model.bin.index.json"), weight_map, total)
