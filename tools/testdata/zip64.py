"""Rewrites a torch.save zip so that it uses ZIP64 records everywhere.

Python: Debian's /usr/bin/python3 (3.11); torch 1.13 only for the load check.

The released Mistral-SUPRA pytorch_model.bin is 31 GB, so its zip needs ZIP64
records; a test file of a few hundred KB never would. This produces a small
file with the same structure a large one forces:

- the same entry names, in the same order, stored (method 0), as torch writes;
- each entry's data aligned to 64 bytes, as torch does, with a padding extra
  field "FB" (id 0x4246, filled with 'Z') after the ZIP64 extra field;
- local headers: real CRC-32, both sizes 0xFFFFFFFF, and a ZIP64 extended
  information extra field (id 0x0001) holding uncompressed and compressed size;
  no data descriptors;
- central headers: sizes and local-header offset 0xFFFFFFFF, and a ZIP64 extra
  field holding uncompressed size, compressed size and local-header offset;
- a ZIP64 end-of-central-directory record and its locator, then the classic
  end-of-central-directory record with every count 0xFFFF and the central
  directory size and offset 0xFFFFFFFF.
"""

import struct
import zipfile
import zlib

ALIGNMENT = 64
VERSION = 45  # 4.5: ZIP64
FLAGS = 0x0800  # UTF-8 names (torch also sets it); no data descriptor
U16 = 0xFFFF
U32 = 0xFFFFFFFF


def rewrite(src, dst):
    with zipfile.ZipFile(src) as z:
        entries = [(info.filename, z.read(info.filename)) for info in z.infolist()]

    out = bytearray()
    central = bytearray()
    for name, data in entries:
        name_b = name.encode("utf-8")
        crc = zlib.crc32(data) & U32
        size = len(data)
        offset = len(out)

        zip64_local = struct.pack("<HHQQ", 0x0001, 16, size, size)
        data_start = offset + 30 + len(name_b) + len(zip64_local) + 4
        pad = (-data_start) % ALIGNMENT
        padding = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        extra = zip64_local + padding
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, VERSION, FLAGS, 0, 0, 0, crc,
                           U32, U32, len(name_b), len(extra))
        out += name_b + extra
        assert len(out) % ALIGNMENT == 0
        out += data

        zip64_central = struct.pack("<HHQQQ", 0x0001, 24, size, size, offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, VERSION, VERSION, FLAGS,
                               0, 0, 0, crc, U32, U32, len(name_b), len(zip64_central),
                               0, 0, 0, 0, U32)
        central += name_b + zip64_central

    cd_offset = len(out)
    out += central
    eocd64_offset = len(out)
    n = len(entries)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, VERSION, VERSION, 0, 0, n, n,
                       len(central), cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, eocd64_offset, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, U16, U16, U16, U16, U32, U32, 0)
    with open(dst, "wb") as f:
        f.write(out)


def verify(src, dst):
    """Checks dst reads back with zipfile and torch.load, equal to src."""
    import torch

    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst) as b:
        assert [i.filename for i in a.infolist()] == [i.filename for i in b.infolist()]
        for info in b.infolist():
            assert info.extract_version == VERSION
            assert b.read(info.filename) == a.read(info.filename)
            assert b.testzip() is None
    sa = torch.load(src)
    sb = torch.load(dst)
    assert list(sa.keys()) == list(sb.keys())
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k
