"""Minimal safetensors writer and reader (no safetensors package needed).

Python: Debian's /usr/bin/python3 (3.11) with python3-numpy.

File layout: 8-byte little-endian header length N, N bytes of JSON (padded with
spaces so the data starts at an 8-byte aligned offset), then the tensor data,
little-endian, row-major, in header order. Each header entry is
{"dtype": ..., "shape": [...], "data_offsets": [begin, end]} with offsets
relative to the start of the data section.
"""

import json
import struct

import numpy as np

# safetensors dtype name -> numpy dtype of the stored bits. BF16 has no numpy
# type: it is kept as its raw uint16 bit pattern.
DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
}


def f32_to_bf16_bits(a):
    """Rounds float32 values to bfloat16 (round to nearest, ties to even).

    Returns the uint16 bit patterns. No NaNs are expected in test data.
    """
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bf16_bits_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def encode(array, dtype):
    """Converts a numpy array to the stored bits of `dtype` (a DTYPES key)."""
    if dtype == "BF16":
        return f32_to_bf16_bits(np.asarray(array, dtype=np.float32))
    return np.ascontiguousarray(array, dtype=DTYPES[dtype])


def write(path, tensors, metadata=None):
    """Writes `tensors`, a list of (name, dtype, array) in file order.

    `array` holds the values (float or int); it is converted to `dtype`.
    Returns the total number of data bytes.
    """
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs = []
    offset = 0
    for name, dtype, array in tensors:
        data = encode(array, dtype).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": [int(s) for s in np.shape(array)],
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode()
    text += b" " * ((-(8 + len(text))) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)
    return offset


def read(path):
    """Reads a safetensors file: returns (dict name -> (dtype, array), metadata).

    Float arrays come back as float64 holding the stored values exactly
    (bf16/f16 upcast); integer arrays as int64.
    """
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8:8 + n].decode())
    metadata = header.pop("__metadata__", None)
    data = memoryview(blob)[8 + n:]
    out = {}
    for name, entry in header.items():
        dtype = entry["dtype"]
        begin, end = entry["data_offsets"]
        raw = np.frombuffer(data[begin:end], dtype=DTYPES[dtype])
        if dtype == "BF16":
            values = bf16_bits_to_f32(raw).astype(np.float64)
        elif dtype.startswith("F"):
            values = raw.astype(np.float64)
        else:
            values = raw.astype(np.int64)
        out[name] = (dtype, values.reshape(entry["shape"]))
    return out, metadata
