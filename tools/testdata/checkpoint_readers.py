"""Reads a test model directory back: weights as stored, upcast to float64.

Python: Debian's /usr/bin/python3 (3.11) with python3-numpy and python3-torch 1.13.

The goldens are computed from what is on disk, not from the generator's
in-memory arrays, so a writer bug cannot hide behind matching goldens.
PyTorch files are read with torch.load; safetensors with safetensors_io.
"""

import json
import os

import torch

import safetensors_io


def _load_torch(path):
    sd = torch.load(path, map_location="cpu")
    return {k: v.to(torch.float64).numpy() for k, v in sd.items()}, sd


def _load_safetensors(path):
    tensors, _ = safetensors_io.read(path)
    return {k: v for k, (_, v) in tensors.items()}


def _load_one(path):
    if path.endswith(".safetensors"):
        return _load_safetensors(path)
    return _load_torch(path)[0]


def load(model_dir):
    """Returns (config dict, name -> float64 array) for a model directory."""
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        path = os.path.join(model_dir, index)
        if os.path.exists(path):
            with open(path) as f:
                weight_map = json.load(f)["weight_map"]
            weights = {}
            for shard in sorted(set(weight_map.values())):
                part = _load_one(os.path.join(model_dir, shard))
                for name in part:
                    assert weight_map[name] == shard, name
                weights.update(part)
            assert set(weights) == set(weight_map)
            return config, weights
    for single in ("model.safetensors", "pytorch_model.bin"):
        path = os.path.join(model_dir, single)
        if os.path.exists(path):
            return config, _load_one(path)
    raise FileNotFoundError("no weights in " + model_dir)


def torch_storage_shared(path, a, b):
    """True if tensors a and b of a torch.save file share one storage."""
    _, sd = _load_torch(path)
    return sd[a].storage().data_ptr() == sd[b].storage().data_ptr()
