"""q8 model files (models/GGUF.md): weight matrices as int8 with one F32 scale per output row.

A matrix W of shape (rows, ...) is stored as the GGUF I8 tensor `<name>` (same shape) and the
F32 tensor `<name>.q8_scale` of shape (rows,):

    s[r] = float32(max_k |W[r, k]| / 127)          (0 for an all-zero row)
    q[r, k] = round_half_even(W[r, k] / s[r])      in -127..127

so that W[r, k] ~ q[r, k] * s[r]. The C runtime (models/q8.c, ib_q8_quantize_weight) computes
the same values for its random benchmark weights. Standard library only: about a minute per
100 M parameters here (imagebind_huge: ~20 minutes).
"""

import struct
from array import array

SCALE_SUFFIX = '.q8_scale'


def is_lookup_table(name):
    """The text token embedding: rows are looked up, never multiplied, so int8 would save
    only file size, and its rounding reaches every token of the text encoder directly (on the
    tiny conformance model: text cosine 0.9992 with it F32, 0.9988 with it int8). In q8 files
    it is F16."""
    return name.endswith('token_embedding.weight')


def stored_as_q8(name, shape):
    """--dtype q8 policy: every weight matrix and stem kernel (2-D or more, named *weight)
    but the token embedding (F16, see is_lookup_table), the attention input projections
    included (unlike F16 files: leaving them F32 keeps a quarter of each block's products in
    F32 and 0.3 GB more resident for huge vision, which the speed and memory goals of
    models/PERFORMANCE.md cannot afford; the per-row scale and the per-token activation scale
    keep their error within the q8 accuracy bound there). Vectors, positional tables, class
    tokens, bias_k/v and scalars stay F32."""
    return (len(shape) >= 2 and (name.endswith('.weight') or name.endswith('_weight'))
            and not is_lookup_table(name))


def _f32(x):
    return struct.unpack('<f', struct.pack('<f', x))[0]


def quantize_row(values):
    """(int8 bytes, scale) of one row of floats."""
    m = max((abs(v) for v in values), default=0.0)
    s = _f32(m / 127.0)
    if s == 0.0:
        return bytes(len(values)), 0.0
    q = array('b', (max(-127, min(127, round(v / s))) for v in values))
    return q.tobytes(), s


class RowQuantizer:
    """Turns a stream of F32 chunks (little-endian bytes, C order) of a (rows, cols) matrix
    into int8 chunks, one or more whole rows at a time; the scales collect in `scales`."""

    def __init__(self, cols):
        self.cols = cols
        self.scales = []
        self._pending = array('f')

    def feed(self, f32_bytes):
        """Quantised bytes of the rows completed by this chunk (possibly empty)."""
        chunk = array('f')
        chunk.frombytes(f32_bytes)
        if struct.pack('=f', 1.0) != struct.pack('<f', 1.0):
            chunk.byteswap()
        self._pending.extend(chunk)
        n_rows = len(self._pending) // self.cols
        out = []
        for r in range(n_rows):
            q, s = quantize_row(self._pending[r * self.cols:(r + 1) * self.cols])
            out.append(q)
            self.scales.append(s)
        del self._pending[:n_rows * self.cols]
        return b''.join(out)

    def finish(self):
        if len(self._pending):
            raise ValueError('q8: the tensor does not end on a row boundary')
        return struct.pack('<%df' % len(self.scales), *self.scales)
