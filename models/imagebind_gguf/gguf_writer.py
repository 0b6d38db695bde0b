"""A minimal GGUF v3 writer (models/GGUF.md): key/values, tensor table, aligned data.

The header is written first (every tensor's name, shape, type and size is known before any
data is read), then each tensor's bytes are streamed from a callback, so a checkpoint larger
than memory converts one tensor at a time.
"""

import os
import struct

GGUF_MAGIC = b'GGUF'
GGUF_VERSION = 3
DEFAULT_ALIGNMENT = 32

# value types
T_U32, T_F32, T_BOOL, T_STRING, T_ARRAY = 4, 6, 7, 8, 9
# tensor types
TENSOR_TYPES = {'F32': (0, 4), 'F16': (1, 2), 'I8': (24, 1)}


def _string(s):
    b = s.encode('utf-8')
    return struct.pack('<Q', len(b)) + b


class TensorInfo:
    def __init__(self, name, shape, ttype):
        self.name = name
        self.shape = tuple(shape)
        self.ttype = ttype
        n = 1
        for d in self.shape:
            n *= d
        self.numel = n
        self.nbytes = n * TENSOR_TYPES[ttype][1]
        self.offset = None

    def ne(self):
        # GGML order: fastest dimension first; a scalar is one element of one dimension.
        return tuple(reversed(self.shape)) if self.shape else (1,)


class GGUFWriter:
    def __init__(self, alignment=DEFAULT_ALIGNMENT):
        self.alignment = alignment
        self._kv = []          # encoded key/value records
        self.tensors = []

    def add_u32(self, key, value):
        self._kv.append(_string(key) + struct.pack('<II', T_U32, value))

    def add_f32(self, key, value):
        self._kv.append(_string(key) + struct.pack('<If', T_F32, value))

    def add_string(self, key, value):
        self._kv.append(_string(key) + struct.pack('<I', T_STRING) + _string(value))

    def add_u32_array(self, key, values):
        self._kv.append(_string(key) + struct.pack('<IIQ', T_ARRAY, T_U32, len(values))
                        + struct.pack('<%dI' % len(values), *values))

    def add_f32_array(self, key, values):
        self._kv.append(_string(key) + struct.pack('<IIQ', T_ARRAY, T_F32, len(values))
                        + struct.pack('<%df' % len(values), *values))

    def add_string_array(self, key, values):
        self._kv.append(_string(key) + struct.pack('<IIQ', T_ARRAY, T_STRING, len(values))
                        + b''.join(_string(v) for v in values))

    def add_raw_kv(self, record):
        """A key/value record already encoded (key, type, value), copied from another file."""
        self._kv.append(bytes(record))

    def add_tensor(self, name, shape, ttype):
        info = TensorInfo(name, shape, ttype)
        self.tensors.append(info)
        return info

    def _pad(self, n):
        return (-n) % self.alignment

    def data_size(self):
        size = 0
        for t in self.tensors:
            size += self._pad(size) + t.nbytes
        return size

    def write(self, path, tensor_chunks):
        """Writes the file at `path` (through a temporary name, renamed when complete).
        tensor_chunks(info) yields the bytes of one tensor, C order, in its GGUF type."""
        offset = 0
        for t in self.tensors:
            offset += self._pad(offset)
            t.offset = offset
            offset += t.nbytes
        header = [GGUF_MAGIC, struct.pack('<IQQ', GGUF_VERSION, len(self.tensors), len(self._kv))]
        header += self._kv
        for t in self.tensors:
            ne = t.ne()
            header.append(_string(t.name) + struct.pack('<I%dQ' % len(ne), len(ne), *ne)
                          + struct.pack('<IQ', TENSOR_TYPES[t.ttype][0], t.offset))
        header = b''.join(header)
        header += b'\0' * self._pad(len(header))
        tmp = path + '.part'
        try:
            with open(tmp, 'wb') as f:
                f.write(header)
                pos = 0
                for t in self.tensors:
                    f.write(b'\0' * (t.offset - pos))
                    written = 0
                    for chunk in tensor_chunks(t):
                        f.write(chunk)
                        written += len(chunk)
                    if written != t.nbytes:
                        raise AssertionError('tensor %s: wrote %d bytes, expected %d'
                                             % (t.name, written, t.nbytes))
                    pos = t.offset + t.nbytes
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return len(header) + pos
