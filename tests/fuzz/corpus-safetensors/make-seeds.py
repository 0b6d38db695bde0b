#!/usr/bin/env python3
"""Writes the seed corpus of fuzz-safetensors (small valid safetensors files) next to this
script, with the standard library only (the layout of Hugging Face's format: u64 little-endian
header length, JSON header, tensor data tiling the rest). Run it again after changing it; the
seeds are committed."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def safetensors(tensors, metadata=None, pad_to=8):
    """tensors: (name, dtype, shape, data bytes), laid out in the given order."""
    header = {}
    if metadata is not None:
        header['__metadata__'] = metadata
    data = b''
    for name, dtype, shape, blob in tensors:
        header[name] = {'dtype': dtype, 'shape': shape,
                        'data_offsets': [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header, separators=(',', ':')).encode()
    if pad_to:
        text += b' ' * (-len(text) % pad_to)
    return struct.pack('<Q', len(text)) + text + data


def f32(*v):
    return struct.pack('<%df' % len(v), *v)


SEEDS = {
    'empty': safetensors([]),
    'metadata-only': safetensors([], {'format': 'pt'}),
    # every dtype, a scalar and an empty tensor; odd header length: unaligned data
    'every-dtype': safetensors([
        ('logit_scale', 'F32', [], f32(2.65926)),
        ('w', 'F32', [2, 3], f32(0.5, -1.25, 3.0, 1e-7, -0.0, 65504.0)),
        ('h', 'F16', [3], struct.pack('<3H', 0x3c00, 0xc000, 0x0001)),
        ('b', 'BF16', [2], struct.pack('<2H', 0x3f80, 0x7f80)),
        ('position_ids', 'I64', [1, 4], struct.pack('<4q', 0, 1, 2, 3)),
        ('empty', 'F32', [0, 4], b''),
    ], {'format': 'pt'}, pad_to=0),
    # escapes in names and metadata
    'escapes': safetensors([('na\u00efve "q"\n\U0001f600', 'F32', [1], f32(1.0))],
                           {'k\\/': '\u00e9'}, pad_to=0),
    # an OpenCLIP-like layout in miniature
    'clip-like': safetensors([
        ('logit_scale', 'F32', [], f32(2.65926)),
        ('visual.conv1.weight', 'F32', [2, 3, 2, 2], f32(*range(24))),
        ('visual.proj', 'F32', [2, 2], f32(1, 2, 3, 4)),
        ('text_projection', 'F32', [2, 2], f32(5, 6, 7, 8)),
    ]),
}

for name, blob in SEEDS.items():
    with open(os.path.join(HERE, name + '.safetensors'), 'wb') as f:
        f.write(blob)
