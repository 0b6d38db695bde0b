#!/usr/bin/env python3
"""Writes the seed corpus of fuzz-gguf (small valid GGUF v3 files) next to this script.

Written independently of tests/gguf-builder.c (from models/GGUF.md), with the standard
library only. Run it again after changing it; the seeds are committed."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def string(s):
    b = s.encode()
    return struct.pack('<Q', len(b)) + b


def kv(key, vtype, payload):
    return string(key) + struct.pack('<I', vtype) + payload


def array(elem_type, count, payload):
    return struct.pack('<IQ', elem_type, count) + payload


def gguf(kvs, tensors, alignment=32):
    """tensors: (name, ggml_type, ne, data bytes); data laid out aligned, no trailing pad."""
    data = b''
    infos = b''
    for name, ttype, ne, blob in tensors:
        data += b'\0' * (-len(data) % alignment)
        infos += string(name) + struct.pack('<I', len(ne)) + b''.join(
            struct.pack('<Q', n) for n in ne) + struct.pack('<IQ', ttype, len(data))
        data += blob
    out = b'GGUF' + struct.pack('<IQQ', 3, len(tensors), len(kvs)) + b''.join(kvs) + infos
    if tensors:
        out += b'\0' * (-len(out) % alignment) + data
    return out


def f32(*v):
    return struct.pack('<%df' % len(v), *v)


def main():
    every_type = [
        kv('general.architecture', 8, string('imagebind')),
        kv('general.alignment', 4, struct.pack('<I', 32)),
        kv('imagebind.out_embed_dim', 4, struct.pack('<I', 8)),
        kv('u8', 0, b'\x07'), kv('i8', 1, b'\xfe'), kv('u16', 2, struct.pack('<H', 600)),
        kv('i16', 3, struct.pack('<h', -3)), kv('i32', 5, struct.pack('<i', -9)),
        kv('imagebind.audio.fbank_mean', 6, struct.pack('<f', -4.268)),
        kv('b', 7, b'\x01'), kv('u64', 10, struct.pack('<Q', 1 << 40)),
        kv('i64', 11, struct.pack('<q', -1)), kv('f64', 12, struct.pack('<d', 0.5)),
        kv('imagebind.vision.kernel_size', 9, array(4, 3, struct.pack('<3I', 2, 14, 14))),
        kv('imagebind.modalities', 9, array(8, 2, string('vision') + string('text'))),
        kv('tokenizer.ggml.model', 8, string('clip-bpe')),
        kv('tokenizer.ggml.merges', 9, array(8, 3, string('i n') + string('t h') + string('\u0120 t'))),
    ]
    tensors = [
        ('w', 0, [3, 2], f32(0.5, -1.0, 2.0, 3.0, 4.0, 5.0)),
        ('h', 1, [4], struct.pack('<4H', 0x3c00, 0xc000, 0x3555, 0x0001)),
        ('logit_scale', 0, [1], f32(2.6592)),
        ('four', 1, [1, 2, 1, 2], bytes(range(8))),
    ]
    seeds = {
        'every-type.gguf': gguf(every_type, tensors),
        'no-tensors.gguf': gguf(every_type[:3], []),
        'empty.gguf': gguf([], []),
        'align8.gguf': gguf([kv('general.alignment', 4, struct.pack('<I', 8))], tensors[:2], 8),
    }
    for name, blob in seeds.items():
        with open(os.path.join(HERE, name), 'wb') as f:
            f.write(blob)


if __name__ == '__main__':
    main()
