"""Reads a .safetensors file without trusting it, streaming tensor data.

Layout: u64 little-endian header length N, N bytes of JSON (an object: tensor name ->
{"dtype", "shape", "data_offsets": [begin, end]}, plus an optional "__metadata__" object of
strings), then the data section; offsets are relative to its start. Nothing else is assumed:
the data of a tensor may sit at any byte (the OpenCLIP fixture's are only 4-byte aligned).

Every claim of the header is checked against the file before any tensor is read, like the
GGUF reader does (models/gguf.c): the header length against the file size and a cap, the JSON
strictly (duplicate keys, NaN, non-string metadata refused), each dtype against an allow-list,
each shape against its byte size, each byte range against the data section and the others
(they must tile it, as in models/safetensors.c).
The file is read in bounded chunks, never whole (the ViT-H-14 file is 3.9 GB).
"""

import collections
import json
import math
import os
import struct

from .checkpoint import CheckpointError, ShapedTensor

# safetensors' own reference implementation refuses headers above 100 MB; real headers are
# a few hundred kB (ViT-H-14: about 100 kB).
MAX_HEADER_BYTES = 100 * 1000 * 1000
# bytes per element of the accepted element types
DTYPE_SIZES = {'F32': 4, 'F16': 2, 'BF16': 2, 'I64': 8}
MAX_RANK = 8
MAX_DIM = 1 << 40          # a dimension beyond this is an absurd claim, whatever the data size
CHUNK_BYTES = 4 << 20


class SafeTensor(ShapedTensor):
    """One tensor of the file: name, dtype, shape and its absolute byte range."""

    def __init__(self, name, dtype, shape, start, end):
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.start = start
        self.end = end


def is_safetensors(path):
    """True when the file starts like a safetensors file (a length, then a JSON object)."""
    try:
        with open(path, 'rb') as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b'{'


def _reject_constant(name):
    raise ValueError('%s is not JSON' % name)


def _unique_object(pairs):
    obj = collections.OrderedDict()
    for k, v in pairs:
        if k in obj:
            raise ValueError('duplicate key %.80r' % k)
        obj[k] = v
    return obj


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


class SafetensorsFile:
    """An opened file: `tensors` maps names to SafeTensors in header order; `metadata` is the
    `__metadata__` object (or empty). Errors are CheckpointErrors naming the file."""

    def __init__(self, path):
        self.path = path
        self._f = open(path, 'rb')
        try:
            self._parse()
        except BaseException:
            self._f.close()
            raise

    def _error(self, text):
        return CheckpointError('%s: %s' % (self.path, text))

    def _parse(self):
        size = os.fstat(self._f.fileno()).st_size
        head = self._f.read(8)
        if len(head) != 8:
            raise self._error('not a safetensors file: %d bytes, shorter than the 8-byte '
                              'header length' % len(head))
        (n,) = struct.unpack('<Q', head)
        if n > MAX_HEADER_BYTES:
            raise self._error('header length %d is beyond the %d-byte limit of safetensors'
                              % (n, MAX_HEADER_BYTES))
        if n > size - 8:
            raise self._error('header length %d is beyond the end of the file (%d bytes): '
                              'truncated or not a safetensors file' % (n, size))
        raw = self._f.read(n)
        if len(raw) != n:
            raise self._error('file shrank while reading its header')
        try:
            header = json.loads(raw.decode('utf-8'), object_pairs_hook=_unique_object,
                                parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as e:
            raise self._error('header is not valid JSON: %s' % e) from None
        if not isinstance(header, dict):
            raise self._error('header is a JSON %s, not an object' % type(header).__name__)
        data_start = 8 + n
        data_len = size - data_start
        self.metadata = header.pop('__metadata__', {})
        if not isinstance(self.metadata, dict) or not all(
                isinstance(v, str) for v in self.metadata.values()):
            raise self._error('__metadata__ must be an object of strings')
        self.tensors = collections.OrderedDict()
        for name, entry in header.items():
            self.tensors[name] = self._tensor(name, entry, data_start, data_len)
        # The tensors must tile the data section, as safetensors writes it and as the
        # runtime's reader (models/safetensors.c) demands: no overlap, no hole, nothing after.
        pos, previous = data_start, None
        for start, end, name in sorted((t.start, t.end, t.name) for t in self.tensors.values()):
            if start < pos:
                raise self._error('tensors %s and %s overlap (at byte %d of the data section)'
                                  % (previous, name, start - data_start))
            if start > pos:
                raise self._error('%d bytes of the data section before tensor %s belong to no '
                                  'tensor' % (start - pos, name))
            pos, previous = end, name
        if pos != size:
            raise self._error('%d bytes after the last tensor belong to no tensor'
                              % (size - pos))

    def _tensor(self, name, entry, data_start, data_len):
        what = 'tensor %.100r' % name
        if not isinstance(entry, dict) or set(entry) != {'dtype', 'shape', 'data_offsets'}:
            raise self._error('%s: expected an object with dtype, shape and data_offsets'
                              % what)
        dtype, shape, offsets = entry['dtype'], entry['shape'], entry['data_offsets']
        if dtype not in DTYPE_SIZES:
            raise self._error('%s: dtype %.20r is not supported (only %s)'
                              % (what, dtype, ', '.join(DTYPE_SIZES)))
        if (not isinstance(shape, list) or len(shape) > MAX_RANK
                or not all(_is_int(d) and 0 <= d <= MAX_DIM for d in shape)):
            raise self._error('%s: absurd shape %.100r (at most %d dimensions of at most %d)'
                              % (what, shape, MAX_RANK, MAX_DIM))
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(_is_int(o) for o in offsets)):
            raise self._error('%s: data_offsets must be two integers, got %.100r'
                              % (what, offsets))
        begin, end = offsets
        if not 0 <= begin <= end <= data_len:
            raise self._error('%s: bytes %d..%d are outside the data section (%d bytes): '
                              'truncated or corrupt file' % (what, begin, end, data_len))
        numel = math.prod(shape)
        if numel * DTYPE_SIZES[dtype] != end - begin:
            raise self._error('%s: shape %s of %s needs %d bytes, data_offsets give %d'
                              % (what, shape, dtype, numel * DTYPE_SIZES[dtype], end - begin))
        return SafeTensor(name, dtype, tuple(shape), data_start + begin, data_start + end)

    def close(self):
        self._f.close()

    def iter_raw(self, t, chunk_bytes=CHUNK_BYTES):
        """Yields the tensor's bytes (little-endian, C order) in chunks of whole elements."""
        chunk = max(1, chunk_bytes // DTYPE_SIZES[t.dtype]) * DTYPE_SIZES[t.dtype]
        self._f.seek(t.start)
        left = t.end - t.start
        while left:
            want = min(left, chunk)
            data = self._f.read(want)
            if len(data) != want:
                raise self._error('tensor %s: file truncated while reading' % t.name)
            left -= len(data)
            yield data
