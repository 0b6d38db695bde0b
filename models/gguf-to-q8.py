#!/usr/bin/env python3
"""Writes the q8 version of an F32 model file (models/GGUF.md, "q8 files"): the same keys,
every matrix of the q8 policy as int8 + per-row scales, the token embedding F16, the rest as
it is. For models whose checkpoint is not at hand, e.g. the shipped default model:

  python3 models/gguf-to-q8.py models/imagebind-default.gguf /tmp/imagebind-default-q8.gguf

The values are those `convert.py --dtype q8` writes from the checkpoint the F32 file came
from (the F32 values are the checkpoint's). Standard library only.
"""

import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from imagebind_gguf.gguf_writer import GGUFWriter  # noqa: E402
from imagebind_gguf.quantize import (  # noqa: E402
    SCALE_SUFFIX, RowQuantizer, is_lookup_table, stored_as_q8)

FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
T_STRING, T_ARRAY, T_U32 = 8, 9, 4


class Reader:
    def __init__(self, path):
        with open(path, 'rb') as f:
            self.buf = f.read()
        self.pos = 0
        if self.take(4) != b'GGUF':
            raise ValueError('%s: not a GGUF file' % path)
        version, n_tensors, n_kv = self.unpack('<IQQ')
        if version != 3:
            raise ValueError('%s: GGUF version %d (3 expected)' % (path, version))
        self.raw_kvs = []           # (key, encoded record) in file order
        self.alignment = 32
        for _ in range(n_kv):
            start = self.pos
            key = self.string()
            (vtype,) = self.unpack('<I')
            if key == 'general.alignment' and vtype == T_U32:
                (self.alignment,) = self.unpack('<I')
            else:
                self.skip_value(vtype)
            self.raw_kvs.append((key, self.buf[start:self.pos]))
        self.tensors = []           # (name, ne, type, offset)
        for _ in range(n_tensors):
            name = self.string()
            (n_dims,) = self.unpack('<I')
            ne = self.unpack('<%dQ' % n_dims)
            ttype, offset = self.unpack('<IQ')
            self.tensors.append((name, ne, ttype, offset))
        self.data_start = self.pos + (-self.pos) % self.alignment

    def take(self, n):
        if self.pos + n > len(self.buf):
            raise ValueError('truncated file')
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def string(self):
        (n,) = self.unpack('<Q')
        return self.take(n).decode('utf-8')

    def skip_value(self, vtype):
        if vtype == T_STRING:
            self.string()
        elif vtype == T_ARRAY:
            etype, count = self.unpack('<IQ')
            if etype in FIXED:
                self.take(FIXED[etype] * count)
            else:
                for _ in range(count):
                    self.skip_value(etype)
        elif vtype in FIXED:
            self.take(FIXED[vtype])
        else:
            raise ValueError('unknown value type %d' % vtype)

    def data(self, offset, nbytes):
        start = self.data_start + offset
        if start + nbytes > len(self.buf):
            raise ValueError('tensor data past the end of the file')
        return self.buf[start:start + nbytes]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src, dst = argv
    try:
        r = Reader(src)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        print('gguf-to-q8.py: %s: %s' % (src, e), file=sys.stderr)
        return 1
    writer = GGUFWriter()
    writer.add_u32('general.alignment', writer.alignment)
    for key, raw in r.raw_kvs:
        if key != 'general.alignment':
            writer.add_raw_kv(raw)
    sources = {}
    for name, ne, ttype, offset in r.tensors:
        shape = tuple(reversed(ne))
        n = 1
        for d in ne:
            n *= d
        if ttype != 0:
            print('gguf-to-q8.py: %s: tensor %s is not F32 (type %d); give the F32 file'
                  % (src, name, ttype), file=sys.stderr)
            return 1
        sources[name] = (offset, n)
        if stored_as_q8(name, shape):
            writer.add_tensor(name, shape, 'I8')
            writer.add_tensor(name + SCALE_SUFFIX, (shape[0],), 'F32')
        else:
            writer.add_tensor(name, shape, 'F16' if is_lookup_table(name) else 'F32')
    quantizers = {}

    def chunks(info):
        if info.name.endswith(SCALE_SUFFIX) and info.name not in sources:
            yield quantizers.pop(info.name[:-len(SCALE_SUFFIX)]).finish()
            return
        offset, n = sources[info.name]
        data = r.data(offset, 4 * n)
        if info.ttype == 'I8':
            rq = quantizers[info.name] = RowQuantizer(n // info.shape[0])
            yield rq.feed(data)
        elif info.ttype == 'F16':
            yield struct.pack('<%de' % n, *struct.unpack('<%df' % n, data))
        else:
            yield data

    size = writer.write(dst, chunks)
    print('wrote %s: %d bytes (q8 weights)' % (dst, size))
    return 0


if __name__ == '__main__':
    sys.exit(main())
