"""Reads the zip file that torch.save writes, without torch and without trusting it.

Layout (PyTorch >= 1.6): one zip with `<prefix>/data.pkl` (a pickle of the state dict whose
tensors refer to storages by persistent id), `<prefix>/data/<key>` (the raw little-endian
storage bytes) and `<prefix>/version`. The prefix is the file stem when saved, so it is looked
up, not assumed.

Unpickling runs code named by the file; a checkpoint from the internet must not get to run
anything. The unpickler below resolves only the handful of names a state dict uses, each to a
stand-in defined here (fresh for each file, and refusing the BUILD opcode that would set its
attributes), and refuses every other global. The pickle is bounded before it is unpickled: its
size (a state dict's pickle is kilobytes; the tensor data lives in other zip entries) and the
number of objects it memoises. Tensors come back as `LazyTensor` records (storage, offset,
size, stride); their bytes are read from the zip only when written.
"""

import collections
import io
import math
import pickle
import pickletools
import struct
import zipfile
import zlib
from array import array

# Bounds on data.pkl, far above real files (ImageBind huge, OpenCLIP ViT-H: about 100 kB and
# 10,000 memo entries; a training checkpoint with optimizer state a few times more) and far
# below what hurts: a pickle is inflated into memory, and each memo entry keeps an object.
MAX_PICKLE_BYTES = 16 << 20
MAX_MEMO_ENTRIES = 1 << 18
_MEMO_OPCODES = ('PUT', 'BINPUT', 'LONG_BINPUT', 'MEMOIZE')


class CheckpointError(Exception):
    """A checkpoint that cannot or must not be read; the message is for the user."""


class _StandIn:
    """Base of the objects the unpickler hands to the file (allow-listed globals, storages,
    tensors). A pickle may apply BUILD to any object it holds, which sets attributes (Python's
    default) or calls __setstate__; a state dict never does that to these, so it is refused
    (OrderedDict, whose `_metadata` torch sets with BUILD, is the real class, not a stand-in)."""

    def __setstate__(self, state):
        raise CheckpointError('refusing to set attributes of %r (a BUILD opcode): a state dict '
                              'never does that; this file may be malicious' % (self,))


class StorageType(_StandIn):
    """Stand-in for torch.FloatStorage and friends: only the element type matters."""

    def __init__(self, name, dtype, itemsize):
        self.name = name
        self.dtype = dtype          # 'F32', 'F16', 'F64', 'BF16' or an integer type name
        self.itemsize = itemsize

    def __repr__(self):
        return 'torch.%s' % self.name


_STORAGE_TYPES = {
    'FloatStorage': ('F32', 4), 'HalfStorage': ('F16', 2), 'DoubleStorage': ('F64', 8),
    'BFloat16Storage': ('BF16', 2), 'LongStorage': ('I64', 8), 'IntStorage': ('I32', 4),
    'ShortStorage': ('I16', 2), 'CharStorage': ('I8', 1), 'ByteStorage': ('U8', 1),
    'BoolStorage': ('BOOL', 1),
}
# torch.float32 etc. may appear as dtype arguments in newer files; mapped to the same markers.
_DTYPE_NAMES = {
    'float32': 'FloatStorage', 'float': 'FloatStorage', 'float16': 'HalfStorage',
    'half': 'HalfStorage', 'float64': 'DoubleStorage', 'double': 'DoubleStorage',
    'bfloat16': 'BFloat16Storage', 'int64': 'LongStorage', 'long': 'LongStorage',
    'int32': 'IntStorage', 'int': 'IntStorage', 'int16': 'ShortStorage', 'int8': 'CharStorage',
    'uint8': 'ByteStorage', 'bool': 'BoolStorage',
}
FLOAT_DTYPES = ('F32', 'F16', 'F64', 'BF16')
ITEM_SIZES = {'F32': 4, 'F16': 2, 'F64': 8, 'BF16': 2}


class StorageRef(_StandIn):
    """One `<prefix>/data/<key>` entry, as named by a persistent id."""

    def __init__(self, stype, key, location, numel):
        self.stype = stype
        self.key = key
        self.location = location
        self.numel = numel

    def __repr__(self):
        return 'storage data/%s' % self.key


class ShapedTensor:
    """Base of the tensor records of every reader: a `shape`, and its element count."""

    @property
    def numel(self):
        return math.prod(self.shape)


class LazyTensor(ShapedTensor, _StandIn):
    """A tensor view: elements at storage[offset + sum(i_k * stride_k)], not yet read."""

    def __init__(self, storage, offset, shape, stride):
        self.storage = storage
        self.offset = offset
        self.shape = shape
        self.stride = stride

    @property
    def dtype(self):
        return self.storage.stype.dtype

    def __repr__(self):
        return 'a tensor of shape %s' % (self.shape,)

    def is_contiguous(self):
        expected = 1
        for d, s in zip(reversed(self.shape), reversed(self.stride)):
            if d != 1 and s != expected:
                return False
            expected *= d
        return True


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    # Covers _rebuild_tensor (4 arguments) and _rebuild_tensor_v2 (plus requires_grad,
    # backward_hooks and, in newer files, metadata: none of which matter for the values).
    if not isinstance(storage, StorageRef):
        raise CheckpointError('malformed tensor record: storage is %r' % type(storage).__name__)
    if not _is_int(storage_offset) or storage_offset < 0:
        raise CheckpointError('malformed tensor record: storage offset %r' % (storage_offset,))
    for seq, what in ((size, 'size'), (stride, 'stride')):
        if not isinstance(seq, tuple) or not all(_is_int(v) and v >= 0 for v in seq):
            raise CheckpointError('malformed tensor record: %s %r' % (what, seq))
    if len(size) != len(stride):
        raise CheckpointError('malformed tensor record: size %r and stride %r differ in length'
                              % (size, stride))
    return LazyTensor(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad, backward_hooks, *state):
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    # Newer torch wraps tensor subclasses (Parameter) this way; the values are func(*args).
    if (not isinstance(func, _Function) or func.func not in (_rebuild_tensor, _rebuild_parameter)
            or not isinstance(args, tuple)):
        raise CheckpointError('malformed tensor record in _rebuild_from_type_v2')
    return func(*args)


class _TypeMarker(_StandIn):
    """Stand-in for torch.Tensor / torch.nn.Parameter when named as a type argument."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


class _Function(_StandIn):
    """An allow-listed torch function, as the pickle names it: the module-level function it
    stands for is never handed out, so nothing in the file can reach it but a call."""

    def __init__(self, name, func):
        self.name = name
        self.func = func

    def __call__(self, *args):
        return self.func(*args)

    def __repr__(self):
        return self.name


def _allowed_globals():
    """A fresh allow-list for one file: (module, name) -> stand-in."""
    functions = {
        ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
        ('torch._utils', '_rebuild_tensor'): _rebuild_tensor,
        ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
        ('torch._utils', '_rebuild_parameter_with_state'): _rebuild_parameter,
        ('torch._tensor', '_rebuild_from_type_v2'): _rebuild_from_type_v2,
    }
    allowed = {key: _Function('%s.%s' % key, func) for key, func in functions.items()}
    allowed.update({
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('torch', 'Tensor'): _TypeMarker('torch.Tensor'),
        ('torch.nn.parameter', 'Parameter'): _TypeMarker('torch.nn.Parameter'),
    })
    for name, (dtype, itemsize) in _STORAGE_TYPES.items():
        allowed[('torch', name)] = StorageType(name, dtype, itemsize)
    for name, storage_name in _DTYPE_NAMES.items():
        allowed[('torch', name)] = allowed[('torch', storage_name)]
    return allowed


class _StateDictUnpickler(pickle.Unpickler):
    """Resolves only what a state dict needs; every other global is refused unexecuted."""

    def __init__(self, file, storages):
        super().__init__(file)
        self._storages = storages    # key -> StorageRef, shared between tensors (views)
        self._allowed = _allowed_globals()

    def find_class(self, module, name):
        found = self._allowed.get((module, name))
        if found is None:
            raise CheckpointError('refusing to load %s.%s: a state dict never needs it; '
                                  'this file may be malicious' % (module, name))
        return found

    def persistent_load(self, pid):
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != 'storage'
                or not isinstance(pid[1], StorageType) or not isinstance(pid[2], str)
                or not _is_int(pid[4]) or pid[4] < 0):
            raise CheckpointError('unsupported persistent id in data.pkl: %.100r' % (pid,))
        _, stype, key, location, numel = pid
        ref = self._storages.get(key)
        if ref is None:
            ref = self._storages[key] = StorageRef(stype, key, location, numel)
        elif ref.stype is not stype:
            raise CheckpointError('storage %s is used with two element types' % key)
        return ref


def _check_memo(data):
    """Refuses a pickle that memoises more than MAX_MEMO_ENTRIES objects, by a scan of its
    opcodes (which builds nothing) before it is unpickled."""
    count = 0
    try:
        for opcode, _, _ in pickletools.genops(data):
            if opcode.name in _MEMO_OPCODES:
                count += 1
                if count > MAX_MEMO_ENTRIES:
                    raise CheckpointError('data.pkl memoises more than %d objects; a state dict '
                                          'needs a few thousand: this file may be malicious'
                                          % MAX_MEMO_ENTRIES)
    except (ValueError, KeyError, IndexError, struct.error, UnicodeDecodeError) as e:
        raise CheckpointError('cannot read data.pkl: not a valid pickle (%s)' % e) from None


# OpenAI's TorchScript releases and where the same weights exist as plain checkpoints.
TORCHSCRIPT_HELP = (
    'OpenAI\'s original CLIP files (ViT-B-32.pt, ...) are TorchScript: a compiled program, '
    'which this converter does not run. The same weights are published as ordinary files: '
    'as OpenCLIP checkpoints (model <name>-quickgelu, pretrained "openai"), e.g. the Hugging '
    'Face hub repository timm/vit_base_patch32_clip_224.openai (open_clip_model.safetensors or '
    'open_clip_pytorch_model.bin: convert with --preset ViT-B-32-quickgelu; likewise '
    'timm/vit_base_patch16_clip_224.openai and timm/vit_large_patch14_clip_224.openai), or as '
    'Hugging Face transformers checkpoints, e.g. openai/clip-vit-base-patch32 (model.safetensors '
    'with --config config.json and --bpe merges.txt; likewise openai/clip-vit-base-patch16 and '
    'openai/clip-vit-large-patch14)')


def _find_prefix(names):
    pickles = [n for n in names if n.endswith('/data.pkl') or n == 'data.pkl']
    if len(pickles) != 1:
        raise CheckpointError('expected exactly one data.pkl in the zip, found %d: '
                              'is this a torch.save checkpoint?' % len(pickles))
    return pickles[0][:-len('data.pkl')]


class Checkpoint:
    """An opened checkpoint: `tensors` maps state-dict keys to LazyTensors, in file order."""

    def __init__(self, path):
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise CheckpointError('%s is not a zip file: only the zip format that torch.save '
                                  'writes since PyTorch 1.6 is supported' % path) from None
        try:
            self._open()
        except BaseException:
            self._zip.close()
            raise

    def _open(self):
        path = self.path
        self._entries = {info.filename: info for info in self._zip.infolist()}
        self.prefix = _find_prefix(self._entries)
        if (self.prefix + 'constants.pkl' in self._entries
                or any(n.startswith(self.prefix + 'code/') for n in self._entries)):
            raise CheckpointError('%s is a TorchScript archive, not a state dict. %s'
                                  % (path, TORCHSCRIPT_HELP))
        byteorder = self._entries.get(self.prefix + 'byteorder')
        if byteorder is not None:
            order = self._zip.read(byteorder).decode('ascii', 'replace').strip()
            if order != 'little':
                raise CheckpointError('checkpoint byte order is %r; only little is supported'
                                      % order)
        data = self._read_pickle(self._entries[self.prefix + 'data.pkl'])
        _check_memo(data)
        storages = {}
        try:
            obj = _StateDictUnpickler(io.BytesIO(data), storages).load()
        except CheckpointError:
            raise
        except Exception as e:   # any malformed pickle: report, never a traceback
            raise CheckpointError('cannot read data.pkl: %s: %s'
                                  % (type(e).__name__, e)) from None
        self.tensors = self._as_state_dict(obj)
        for ref in storages.values():
            self._check_storage(ref)
        for name, t in self.tensors.items():
            self._check_view(name, t)

    def _read_pickle(self, entry):
        """data.pkl's bytes, refused when its declared size is beyond MAX_PICKLE_BYTES (before
        anything is inflated) and read in bounded chunks, so a size that lies cannot inflate
        more than the bound either."""
        if entry.file_size > MAX_PICKLE_BYTES:
            raise CheckpointError('data.pkl inflates to %d bytes, beyond the %d-byte limit (a '
                                  'state dict\'s pickle is kilobytes): this file may be malicious'
                                  % (entry.file_size, MAX_PICKLE_BYTES))
        buf = bytearray()
        try:
            with self._zip.open(entry) as f:
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    buf += chunk
                    if len(buf) > MAX_PICKLE_BYTES:
                        raise CheckpointError('data.pkl inflates beyond %d bytes: this file '
                                              'may be malicious' % MAX_PICKLE_BYTES)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
            raise CheckpointError('cannot read data.pkl from the zip: %s' % e) from None
        return bytes(buf)

    @staticmethod
    def _as_state_dict(obj):
        # Training checkpoints sometimes nest the weights; the official file does not.
        if isinstance(obj, dict) and not any(isinstance(v, LazyTensor) for v in obj.values()):
            for key in ('state_dict', 'model'):
                if isinstance(obj.get(key), dict):
                    obj = obj[key]
                    break
        if not isinstance(obj, dict):
            raise CheckpointError('data.pkl holds a %s, not a state dict' % type(obj).__name__)
        tensors = collections.OrderedDict()
        for k, v in obj.items():
            if not isinstance(k, str) or not isinstance(v, LazyTensor):
                raise CheckpointError('state dict entry %.80r is not a named tensor' % (k,))
            tensors[k] = v
        return tensors

    def _check_storage(self, ref):
        entry = self._entries.get(self.prefix + 'data/' + ref.key)
        if entry is None:
            raise CheckpointError('storage data/%s is missing from the zip' % ref.key)
        if entry.file_size < ref.numel * ref.stype.itemsize:
            raise CheckpointError('storage data/%s holds %d bytes, %d %s elements need %d'
                                  % (ref.key, entry.file_size, ref.numel, ref.stype.name,
                                     ref.numel * ref.stype.itemsize))
        ref.entry = entry

    @staticmethod
    def _check_view(name, t):
        if t.numel == 0:
            return
        last = t.offset + sum((d - 1) * s for d, s in zip(t.shape, t.stride))
        if last >= t.storage.numel:
            raise CheckpointError('tensor %s reads element %d of a storage of %d'
                                  % (name, last, t.storage.numel))

    def close(self):
        self._zip.close()

    # -- reading tensor data --

    def iter_raw(self, t, chunk_elements=1 << 20):
        """Yields the tensor's elements in C order as raw little-endian bytes of its storage
        type, in chunks, reading only the part of the storage the view covers."""
        itemsize = t.storage.stype.itemsize
        n = t.numel
        if n == 0:
            return
        with self._zip.open(t.storage.entry) as f:
            if t.is_contiguous():
                f.seek(t.offset * itemsize)
                left = n
                while left:
                    k = min(left, chunk_elements)
                    data = f.read(k * itemsize)
                    if len(data) != k * itemsize:
                        raise CheckpointError('storage data/%s is truncated' % t.storage.key)
                    yield data
                    left -= k
                return
            # A strided view (rare in a state dict): read the span it covers, gather in C order.
            last = t.offset + sum((d - 1) * s for d, s in zip(t.shape, t.stride))
            f.seek(t.offset * itemsize)
            span = f.read((last - t.offset + 1) * itemsize)
            if len(span) != (last - t.offset + 1) * itemsize:
                raise CheckpointError('storage data/%s is truncated' % t.storage.key)
            yield _gather(span, itemsize, t.shape, t.stride)


_RAW_TYPECODE = {1: 'B', 2: 'H', 4: 'I', 8: 'Q'}


def _gather(span, itemsize, shape, stride):
    """Elements of a strided view over `span` (which starts at the view's offset), C order."""
    src = array(_RAW_TYPECODE[itemsize])
    assert src.itemsize == itemsize
    src.frombytes(span)            # bit patterns only: byte order is preserved as is
    out = array(src.typecode)
    inner_n, inner_s = shape[-1], stride[-1]
    outer = shape[:-1]
    index = [0] * len(outer)
    while True:
        base = sum(i * s for i, s in zip(index, stride))
        if inner_s == 0:
            out.extend(src[base:base + 1] * inner_n)
        else:
            out.extend(src[base:base + (inner_n - 1) * inner_s + 1:inner_s])
        # advance the outer index like an odometer
        k = len(outer) - 1
        while k >= 0:
            index[k] += 1
            if index[k] < outer[k]:
                break
            index[k] = 0
            k -= 1
        if k < 0:
            return out.tobytes()


def transpose_raw(data, itemsize, rows, cols):
    """The (cols, rows) transpose of a C-order (rows, cols) matrix of raw elements."""
    return _gather(data, itemsize, (cols, rows), (1, cols))


# -- element type conversion (all data little-endian) --

def convert_elements(data, src, dst):
    """Converts raw little-endian elements of type src ('F32', 'F16', 'F64', 'BF16') to dst
    ('F32' or 'F16'). F16 rounding is to nearest, ties to even (struct 'e')."""
    if src == dst:
        return data
    if src == 'BF16':
        # bfloat16 is the top half of a float32: put its two bytes above two zero bytes.
        f32 = bytearray(len(data) * 2)
        f32[2::4] = data[0::2]
        f32[3::4] = data[1::2]
        return convert_elements(bytes(f32), 'F32', dst)
    src_code = {'F32': 'f', 'F16': 'e', 'F64': 'd'}[src]
    n = len(data) // struct.calcsize(src_code)
    values = struct.unpack('<%d%s' % (n, src_code), data)
    if dst == 'F16' and src == 'F64':
        # round once to float32 first, as torch's .float() then .half() would, then to half
        values = struct.unpack('<%df' % n, struct.pack('<%df' % n, *values))
    try:
        return struct.pack('<%d%s' % (n, 'e' if dst == 'F16' else 'f'), *values)
    except (OverflowError, struct.error):
        raise CheckpointError('a value does not fit in %s (largest %s magnitude: %g)'
                              % (dst, dst, max(abs(v) for v in values))) from None
