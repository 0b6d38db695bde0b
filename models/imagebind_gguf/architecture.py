"""The ImageBind hyper-parameters and the state-dict keys and shapes they imply.

Written from ../shared/spec/ARCHITECTURE.md sections 2-6: every key of the official
`ImageBindModel.state_dict()`, with each width replaced by the modality's D and the head output
by out_embed_dim. The number of heads cannot be read from shapes, hence a config or a preset.
"""

import collections
import json

MODALITIES = ('vision', 'text', 'audio', 'depth', 'thermal', 'imu')
# Modalities whose attention has learned bias_k / bias_v (ARCHITECTURE.md §3).
BIAS_KV_MODALITIES = ('audio', 'depth', 'thermal', 'imu')

# Fixed by the official code, not constructor arguments.
IMAGE_SIZE = 224
CONTEXT_LENGTH = 77
VOCAB_SIZE = 49408
IMU_WINDOW = 8            # imu_kernel_size is ignored by the official code: 8 and 48 hard-coded
IMU_CHANNELS = 6
IMU_NUM_SAMPLES = 2000

# Constructor arguments that shape the stems; the official defaults.
GEOMETRY_DEFAULTS = {
    'video_frames': 2,
    'kernel_size': [2, 14, 14],
    'audio_kernel_size': 16,
    'audio_stride': 10,
    'audio_num_mel_bins': 128,
    'audio_target_len': 204,
    'depth_kernel_size': 16,
    'thermal_kernel_size': 16,
    'imu_kernel_size': 8,
}

# imagebind_huge(): ARCHITECTURE.md §6.
HUGE_PRESET = dict(GEOMETRY_DEFAULTS, **{
    'out_embed_dim': 1024,
    'vision_embed_dim': 1280, 'vision_num_blocks': 32, 'vision_num_heads': 16,
    'text_embed_dim': 1024, 'text_num_blocks': 24, 'text_num_heads': 16,
    'audio_embed_dim': 768, 'audio_num_blocks': 12, 'audio_num_heads': 12,
    'depth_embed_dim': 384, 'depth_num_blocks': 12, 'depth_num_heads': 8,
    'thermal_embed_dim': 768, 'thermal_num_blocks': 12, 'thermal_num_heads': 12,
    'imu_embed_dim': 512, 'imu_num_blocks': 6, 'imu_num_heads': 8,
})
PRESETS = {'huge': HUGE_PRESET}


class ConfigError(Exception):
    """A configuration that cannot describe a model; the message is for the user."""


MAX_LISTED = 8            # problems of each kind shown before "... and N more"


def listing(title, items):
    """Lines of an error message: a title with the count, then the first items indented."""
    shown = ['  ' + s for s in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        shown.append('  ... and %d more' % (len(items) - MAX_LISTED))
    return ['%s (%d):' % (title, len(items))] + shown


def load_config(path):
    """Constructor arguments from a JSON file in the format of conformance/tiny/config.json
    (a `constructor_args` object; a bare object of the same keys is accepted too)."""
    try:
        with open(path, encoding='utf-8') as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError('cannot read config %s: %s' % (path, e)) from None
    if not isinstance(doc, dict):
        raise ConfigError('config %s is not a JSON object' % path)
    args = doc.get('constructor_args', doc)
    if not isinstance(args, dict):
        raise ConfigError('config %s: constructor_args is not an object' % path)
    return dict(GEOMETRY_DEFAULTS, **args)


def _positive_int(args, key):
    v = args.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise ConfigError('config: %s must be a positive integer, got %r' % (key, v))
    return v


def _conv_out(size, kernel, stride):
    if size < kernel:
        raise ConfigError('config: kernel %d is larger than the input size %d' % (kernel, size))
    return (size - kernel) // stride + 1


class Modality:
    """Hyper-parameters of one encoder."""

    def __init__(self, name, args):
        self.name = name
        self.embed_dim = _positive_int(args, name + '_embed_dim')
        self.num_blocks = _positive_int(args, name + '_num_blocks')
        self.num_heads = _positive_int(args, name + '_num_heads')
        if self.embed_dim % self.num_heads:
            raise ConfigError('config: %s_embed_dim %d is not a multiple of %s_num_heads %d'
                              % (name, self.embed_dim, name, self.num_heads))


class ModelConfig:
    """The whole model's hyper-parameters, checked; `modalities` maps name -> Modality for
    the modalities the config describes."""

    def __init__(self, args):
        self.args = args
        self.out_embed_dim = _positive_int(args, 'out_embed_dim')
        self.video_frames = _positive_int(args, 'video_frames')
        kernel = args.get('kernel_size')
        if (not isinstance(kernel, list) or len(kernel) != 3
                or not all(isinstance(k, int) and k > 0 for k in kernel)):
            raise ConfigError('config: kernel_size must be three positive integers, got %r'
                              % (kernel,))
        self.kernel_size = kernel
        for key in ('audio_kernel_size', 'audio_stride', 'audio_num_mel_bins',
                    'audio_target_len', 'depth_kernel_size', 'thermal_kernel_size'):
            setattr(self, key, _positive_int(args, key))
        # Not an official constructor argument (the official vocabulary is fixed): a model with
        # its own, smaller BPE vocabulary (the shipped default model) says how many rows.
        self.vocab_size = args.get('vocab_size', VOCAB_SIZE)
        if (not isinstance(self.vocab_size, int) or isinstance(self.vocab_size, bool)
                or self.vocab_size < 514):
            raise ConfigError('config: vocab_size must be an integer >= 514 (512 byte symbols '
                              'and 2 special tokens), got %r' % (self.vocab_size,))
        # Fixed by the official ImageBind code; CLIP-family models (clip.py) set their own.
        sizes = dict({'image_size': IMAGE_SIZE, 'context_length': CONTEXT_LENGTH}, **args)
        self.image_size = _positive_int(sizes, 'image_size')
        self.context_length = _positive_int(sizes, 'context_length')
        self.modalities = collections.OrderedDict()
        for m in MODALITIES:
            if any(k in args for k in (m + '_embed_dim', m + '_num_blocks', m + '_num_heads')):
                self.modalities[m] = Modality(m, args)

    def num_tokens(self, m):
        """Sequence length L the trunk sees (class token included)."""
        if m == 'vision':
            kt, kh, kw = self.kernel_size
            return (_conv_out(self.video_frames, kt, kt) * _conv_out(self.image_size, kh, kh)
                    * _conv_out(self.image_size, kw, kw) + 1)
        if m == 'text':
            return self.context_length
        if m == 'audio':
            k, s = self.audio_kernel_size, self.audio_stride
            return (_conv_out(self.audio_num_mel_bins, k, s)
                    * _conv_out(self.audio_target_len, k, s) + 1)
        if m in ('depth', 'thermal'):
            k = getattr(self, m + '_kernel_size')
            return _conv_out(IMAGE_SIZE, k, k) ** 2 + 1
        if m == 'imu':
            return IMU_NUM_SAMPLES // IMU_WINDOW + 1
        raise ValueError(m)

    def expected_tensors(self, m):
        """name -> shape of every state-dict entry of modality m (the text mask included),
        in the official file order within each of preprocessor, trunk, head, postprocessor."""
        d = self.modalities[m].embed_dim
        L = self.num_tokens(m)
        pre = 'modality_preprocessors.%s.' % m
        t = collections.OrderedDict()
        if m == 'vision':
            t[pre + 'cls_token'] = (1, 1, d)
            t[pre + 'rgbt_stem.proj.1.weight'] = (d, 3) + tuple(self.kernel_size)
            t[pre + 'pos_embedding_helper.pos_embed'] = (1, L, d)
        elif m == 'text':
            t[pre + 'pos_embed'] = (1, L, d)
            t[pre + 'mask'] = (L, L)
            t[pre + 'token_embedding.weight'] = (self.vocab_size, d)
        elif m == 'imu':
            t[pre + 'pos_embed'] = (1, L, d)
            t[pre + 'cls_token'] = (1, 1, d)
            t[pre + 'imu_stem.proj.weight'] = (d, IMU_CHANNELS * IMU_WINDOW)
            t[pre + 'imu_stem.norm_layer.weight'] = (d,)
            t[pre + 'imu_stem.norm_layer.bias'] = (d,)
        else:   # audio, depth, thermal: a Conv2d stem and its LayerNorm
            stem = 'depth_stem' if m == 'depth' else 'rgbt_stem'
            k = getattr(self, m + '_kernel_size')
            t[pre + 'cls_token'] = (1, 1, d)
            t[pre + stem + '.proj.weight'] = (d, 1, k, k)
            t[pre + stem + '.norm_layer.weight'] = (d,)
            t[pre + stem + '.norm_layer.bias'] = (d,)
            t[pre + 'pos_embedding_helper.pos_embed'] = (1, L, d)
        trunk = 'modality_trunks.%s.' % m
        if m == 'vision':
            t[trunk + 'pre_transformer_layer.0.weight'] = (d,)
            t[trunk + 'pre_transformer_layer.0.bias'] = (d,)
        for i in range(self.modalities[m].num_blocks):
            b = '%sblocks.%d.' % (trunk, i)
            t[b + 'attn.in_proj_weight'] = (3 * d, d)
            t[b + 'attn.in_proj_bias'] = (3 * d,)
            if m in BIAS_KV_MODALITIES:
                t[b + 'attn.bias_k'] = (1, 1, d)
                t[b + 'attn.bias_v'] = (1, 1, d)
            t[b + 'attn.out_proj.weight'] = (d, d)
            t[b + 'attn.out_proj.bias'] = (d,)
            t[b + 'norm_1.weight'] = (d,)
            t[b + 'norm_1.bias'] = (d,)
            t[b + 'mlp.fc1.weight'] = (4 * d, d)
            t[b + 'mlp.fc1.bias'] = (4 * d,)
            t[b + 'mlp.fc2.weight'] = (d, 4 * d)
            t[b + 'mlp.fc2.bias'] = (d,)
            t[b + 'norm_2.weight'] = (d,)
            t[b + 'norm_2.bias'] = (d,)
        head = 'modality_heads.%s.' % m
        ln, proj = {'text': ('proj.0', 'proj.1'), 'imu': ('0', '3')}.get(m, ('0', '2'))
        t[head + ln + '.weight'] = (d,)
        t[head + ln + '.bias'] = (d,)
        t[head + proj + '.weight'] = (self.out_embed_dim, d)
        if m != 'vision':
            t['modality_postprocessors.%s.1.log_logit_scale' % m] = ()
        return t


# Buffers that the official state dict holds but the model file does not (implied by the
# architecture); they are accepted when present and not required.
NOT_STORED = ('modality_preprocessors.text.mask',)


def modality_of(key):
    """The modality a state-dict key belongs to, or None."""
    parts = key.split('.')
    if (len(parts) >= 3 and parts[0] in ('modality_preprocessors', 'modality_trunks',
                                         'modality_heads', 'modality_postprocessors')
            and parts[1] in MODALITIES):
        return parts[1]
    return None


# GGUF readers (ggml's and ours) keep at most 4 dimensions.
MAX_DIMS = 4


def gguf_shape(shape):
    """The shape a tensor is stored with: the PyTorch shape, except that the 5-D vision stem
    kernel (D, 3, kt, kh, kw) becomes (D, 3*kt, kh, kw), merging channel and time, which are
    adjacent in memory (same bytes; the patch vector order (c, t, h, w) is unchanged)."""
    shape = tuple(shape)
    while len(shape) > MAX_DIMS:
        shape = (shape[0], shape[1] * shape[2]) + shape[3:]
    return shape


def stored_as_f16(name, shape):
    """--dtype f16 policy: weight matrices and stem kernels (2-D or more, named *weight) become
    F16; LayerNorm vectors, biases, positional tables, class tokens, bias_k/v, scalars stay
    F32 (GGUF.md). The attention input projections stay F32 too: their rounding error reaches
    the softmax through q.k, where it is amplified (measured on the tiny model: text 1.37e-3 of
    max|golden| with them in F16, 8.6e-4 without; they are a quarter of a block's weights)."""
    return (len(shape) >= 2 and (name.endswith('.weight') or name.endswith('_weight'))
            and not name.endswith('.attn.in_proj_weight'))
