#!/usr/bin/env python3
"""Converts a checkpoint into the gst-imagebind model file (models/GGUF.md). Standard library
only: no torch, no numpy. It reads

  - an official ImageBind checkpoint (torch.save of ImageBindModel.state_dict()):
      python3 models/convert.py imagebind_huge.pth imagebind-huge.gguf --preset huge \\
          --dtype f16 --bpe bpe_simple_vocab_16e6.txt.gz
  - an OpenCLIP CLIP ViT (open_clip_pytorch_model.bin or open_clip_model.safetensors) with the
    hub's open_clip_config.json, or a named OpenCLIP config:
      python3 models/convert.py open_clip_model.safetensors vit-b-32.gguf \\
          --config open_clip_config.json --bpe bpe_simple_vocab_16e6.txt.gz
      python3 models/convert.py open_clip_pytorch_model.bin vit-b-32.gguf \\
          --preset ViT-B-32-quickgelu --bpe bpe_simple_vocab_16e6.txt.gz
  - a Hugging Face transformers CLIPModel (model.safetensors or pytorch_model.bin) with the
    repository's config.json (and its merges.txt as the vocabulary):
      python3 models/convert.py model.safetensors clip.gguf --config config.json --bpe merges.txt

The family is recognised from the tensor names. A torch zip's pickle is read with an
unpickler that resolves only the names a state dict uses (a file from the internet cannot run
code here); safetensors headers are checked against the file before any tensor is read; every
expected tensor is checked against the configuration before anything is written; tensors are
streamed one at a time, so multi-gigabyte checkpoints convert in little memory.
"""

import argparse
import gzip
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from imagebind_gguf.architecture import (  # noqa: E402
    IMU_NUM_SAMPLES, IMU_WINDOW, MODALITIES, NOT_STORED, PRESETS, ConfigError, ModelConfig,
    gguf_shape, listing, load_config, modality_of, stored_as_f16)
from imagebind_gguf.checkpoint import (  # noqa: E402
    FLOAT_DTYPES, Checkpoint, CheckpointError, convert_elements)
from imagebind_gguf.clip import (  # noqa: E402
    CLIP_PRESETS, FAMILY_NAMES, ClipCheckpoint, ClipError, config_kind, detect_family,
    load_clip_config, read_config)
from imagebind_gguf.gguf_writer import GGUFWriter  # noqa: E402
from imagebind_gguf.safetensors import SafetensorsFile, is_safetensors  # noqa: E402
from imagebind_gguf.quantize import (  # noqa: E402
    SCALE_SUFFIX, RowQuantizer, is_lookup_table, stored_as_q8)

# Pre-processing constants of the official loaders (ARCHITECTURE.md §7-8); written so that a
# reader never has to assume them.
AUDIO_SAMPLE_RATE = 16000
AUDIO_CLIP_DURATION = 2.0
AUDIO_CLIPS_PER_VIDEO = 3
AUDIO_FBANK_MEAN = -4.268
AUDIO_FBANK_STD = 9.138
SPECIAL_TOKENS = 2        # <|startoftext|>, <|endoftext|>
BYTE_SYMBOLS = 512        # 256 bytes, and the same with </w>



class ConvertError(Exception):
    """A user error: reported in one message, exit status 1, no traceback."""


def read_merges(path, count):
    """The first `count` BPE merges of a CLIP vocabulary file (gzip or plain text): lines after
    the header."""
    try:
        with open(path, 'rb') as f:
            gzipped = f.read(2) == b'\x1f\x8b'
        with (gzip.open if gzipped else open)(path, 'rt', encoding='utf-8') as f:
            text = f.read()
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise ConvertError('cannot read BPE vocabulary %s: %s' % (path, e)) from None
    lines = text.split('\n')
    if lines and lines[-1] == '':
        lines.pop()
    merges = [line.rstrip('\r') for line in lines[1:1 + count]]
    if len(merges) < count:
        raise ConvertError('BPE vocabulary %s has %d merges; the %d-entry token embedding '
                           'needs %d' % (path, len(merges), count + BYTE_SYMBOLS
                                         + SPECIAL_TOKENS, count))
    bad = [i for i, m in enumerate(merges) if len(m.split(' ')) != 2]
    if bad:
        raise ConvertError('BPE vocabulary %s: line %d is not a merge "a b": %.60r'
                           % (path, bad[0] + 2, merges[bad[0]]))
    return merges


def select_modalities(ckpt, config, wanted):
    """The modalities to convert: those with tensors in the checkpoint (and in --modalities)."""
    in_checkpoint = [m for m in MODALITIES
                     if any(modality_of(k) == m for k in ckpt.tensors)]
    if not in_checkpoint:
        raise ConvertError('%s holds no ImageBind tensor (keys like %s)'
                           % (ckpt.path, ', '.join(list(ckpt.tensors)[:3]) or 'none'))
    if wanted:
        missing = [m for m in wanted if m not in in_checkpoint]
        if missing:
            raise ConvertError('--modalities: %s not in the checkpoint (it has %s)'
                               % (', '.join(missing), ', '.join(in_checkpoint)))
        chosen = [m for m in in_checkpoint if m in wanted]
    else:
        chosen = in_checkpoint
    undescribed = [m for m in chosen if m not in config.modalities]
    if undescribed:
        raise ConvertError('the checkpoint has %s but the configuration does not describe it '
                           '(no %s_embed_dim/num_blocks/num_heads); add it to the config or '
                           'choose modalities with --modalities'
                           % (' and '.join(undescribed), undescribed[0]))
    return chosen


def validate(ckpt, config, modalities):
    """Checks the checkpoint against the configuration; returns the names to store in file
    order. Raises ConvertError listing missing, unexpected and mismatched tensors."""
    expected = {}
    for m in modalities:
        expected.update(config.expected_tensors(m))
    missing = [k for k in expected if k not in ckpt.tensors and k not in NOT_STORED]
    unexpected, mismatched, not_float = [], [], []
    for name, t in ckpt.tensors.items():
        m = modality_of(name)
        if m is not None and m not in modalities:
            continue     # a modality left out on purpose
        if name not in expected:
            unexpected.append('%s %s' % (name, tuple(t.shape)))
        elif tuple(t.shape) != expected[name]:
            mismatched.append('%s: checkpoint %s, config expects %s'
                              % (name, tuple(t.shape), expected[name]))
        elif t.dtype not in FLOAT_DTYPES:
            not_float.append('%s: %s' % (name, t.dtype))
    if missing or unexpected or mismatched or not_float:
        lines = ['%s does not match the configuration (%s):'
                 % (ckpt.path, ', '.join(modalities))]
        for title, items in (('shape mismatches', mismatched), ('missing tensors', missing),
                             ('unexpected tensors', unexpected),
                             ('tensors that are not floating point', not_float)):
            if items:
                lines += listing(title, items)
        raise ConvertError('\n'.join(lines))
    return [k for k in ckpt.tensors if k in expected and k not in NOT_STORED]


def add_keys(writer, config, modalities, name, merges, clip=None, special_tokens=None):
    """The key/values of the file; `clip` (a ClipCheckpoint) adds the keys of CLIP-family
    files, whose absence means ImageBind's behaviour (an ImageBind file is unchanged)."""
    writer.add_string('general.architecture', 'imagebind')
    writer.add_string('general.name', name)
    writer.add_u32('general.alignment', writer.alignment)
    if clip is not None:
        writer.add_string('imagebind.source_family', clip.family)
    writer.add_u32('imagebind.out_embed_dim', config.out_embed_dim)
    writer.add_string_array('imagebind.modalities', modalities)
    for m in modalities:
        p = config.modalities[m]
        writer.add_u32('imagebind.%s.embed_dim' % m, p.embed_dim)
        writer.add_u32('imagebind.%s.num_blocks' % m, p.num_blocks)
        writer.add_u32('imagebind.%s.num_heads' % m, p.num_heads)
        if m == 'vision':
            writer.add_u32_array('imagebind.vision.kernel_size', config.kernel_size)
            writer.add_u32('imagebind.vision.image_size', config.image_size)
            writer.add_u32('imagebind.vision.video_frames', config.video_frames)
        elif m == 'text':
            writer.add_u32('imagebind.text.context_length', config.context_length)
            writer.add_u32('imagebind.text.vocab_size', config.vocab_size)
        if clip is not None:
            tower = getattr(clip.clip, m)
            writer.add_string('imagebind.%s.activation' % m, tower.activation)
            writer.add_f32('imagebind.%s.layer_norm_eps' % m, tower.eps)
            if m == 'vision':
                writer.add_f32_array('imagebind.vision.image_mean', clip.clip.mean)
                writer.add_f32_array('imagebind.vision.image_std', clip.clip.std)
        elif m == 'audio':
            writer.add_u32('imagebind.audio.kernel_size', config.audio_kernel_size)
            writer.add_u32('imagebind.audio.stride', config.audio_stride)
            writer.add_u32('imagebind.audio.num_mel_bins', config.audio_num_mel_bins)
            writer.add_u32('imagebind.audio.target_len', config.audio_target_len)
            writer.add_u32('imagebind.audio.sample_rate', AUDIO_SAMPLE_RATE)
            writer.add_f32('imagebind.audio.clip_duration', AUDIO_CLIP_DURATION)
            writer.add_u32('imagebind.audio.clips_per_video', AUDIO_CLIPS_PER_VIDEO)
            writer.add_f32('imagebind.audio.fbank_mean', AUDIO_FBANK_MEAN)
            writer.add_f32('imagebind.audio.fbank_std', AUDIO_FBANK_STD)
        elif m in ('depth', 'thermal'):
            writer.add_u32('imagebind.%s.kernel_size' % m, getattr(config, m + '_kernel_size'))
        elif m == 'imu':
            writer.add_u32('imagebind.imu.kernel_size', IMU_WINDOW)
            writer.add_u32('imagebind.imu.num_samples', IMU_NUM_SAMPLES)
    if merges is not None:
        writer.add_string('tokenizer.ggml.model', 'clip-bpe')
        writer.add_string_array('tokenizer.ggml.merges', merges)
    if clip is not None:
        writer.add_string('tokenizer.clip.special_tokens', special_tokens or clip.special_tokens)


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog='convert.py',
        description='Convert an ImageBind, OpenCLIP or Hugging Face CLIP checkpoint to a '
                    'gst-imagebind GGUF file.')
    ap.add_argument('checkpoint', help='torch.save zip (.pth, .bin) or .safetensors file')
    ap.add_argument('output', help='GGUF file to write')
    cfg = ap.add_mutually_exclusive_group(required=True)
    cfg.add_argument('--config', help='ImageBind: JSON with constructor_args (as '
                     'conformance/tiny/config.json); OpenCLIP: open_clip_config.json or a model '
                     'config; Hugging Face: the repository\'s config.json')
    cfg.add_argument('--preset', choices=sorted(PRESETS) + sorted(CLIP_PRESETS),
                     help='a published configuration: huge (ImageBind) or an OpenCLIP model name')
    ap.add_argument('--dtype', choices=('f32', 'f16', 'q8'), default='f32',
                    help='type of weight matrices (vectors, tables and scalars stay f32); q8: '
                    'int8 with one scale per output row (models/GGUF.md)')
    ap.add_argument('--bpe', help='BPE vocabulary to embed: CLIP\'s bpe_simple_vocab_16e6.txt.gz, '
                    'a Hugging Face merges.txt, or any plain-text merges file with a header line '
                    '(its merges must fill the token embedding, 49408 rows officially)')
    ap.add_argument('--name', help='general.name (default: preset or checkpoint name)')
    ap.add_argument('--special-tokens', choices=('openclip', 'openai'),
                    help='CLIP-family files: how a literal special token in input text is '
                         'tokenized. openclip (default): <start_of_text>/<end_of_text> in any '
                         'case are the special ids, <|endoftext|> is ordinary text, as OpenCLIP '
                         'does (also for a Hugging Face file, so that its three files give the '
                         'same ids); openai: <|startoftext|>/<|endoftext|> are, as OpenAI\'s and '
                         'transformers\' CLIPTokenizer do')
    ap.add_argument('--modalities',
                    help='ImageBind: comma-separated subset to convert (default: all in the '
                         'checkpoint)')
    return ap.parse_args(argv)


def open_checkpoint(path):
    """The checkpoint reader for the file's format (by content, not name), with a
    DataParallel `module.` prefix taken off every name."""
    if not os.path.isfile(path):
        raise ConvertError('%s: no such file' % path)
    ckpt = SafetensorsFile(path) if is_safetensors(path) else Checkpoint(path)
    names = list(ckpt.tensors)
    if names and all(n.startswith('module.') for n in names):
        ckpt.tensors = type(ckpt.tensors)((n[len('module.'):], t)
                                          for n, t in ckpt.tensors.items())
    return ckpt


def imagebind_model(ckpt, args):
    """(config, modalities, names, default name) of an ImageBind checkpoint."""
    if args.preset in CLIP_PRESETS:
        raise ConvertError('--preset %s is an OpenCLIP model, but %s is an ImageBind checkpoint '
                           '(use --preset huge or --config)' % (args.preset, ckpt.path))
    if args.preset:
        config_args = dict(PRESETS[args.preset])
        default_name = 'imagebind_' + args.preset
    else:
        kind = config_kind(read_config(args.config))
        if kind in ('openclip', 'hf-clip'):
            raise ConvertError('%s is a %s configuration, but %s is an ImageBind checkpoint'
                               % (args.config, FAMILY_NAMES[kind], ckpt.path))
        config_args = load_config(args.config)
        default_name = os.path.splitext(os.path.basename(args.checkpoint))[0]
    config = ModelConfig(config_args)
    wanted = None
    if args.modalities:
        wanted = [m.strip() for m in args.modalities.split(',') if m.strip()]
        unknown = [m for m in wanted if m not in MODALITIES]
        if unknown:
            raise ConvertError('--modalities: unknown %s (choose from %s)'
                               % (', '.join(unknown), ', '.join(MODALITIES)))
    modalities = select_modalities(ckpt, config, wanted)
    names = validate(ckpt, config, modalities)
    return config, modalities, names, default_name


def clip_model(source, family, args):
    """A ClipCheckpoint (the CLIP checkpoint under ImageBind names), checked."""
    if args.preset in PRESETS:
        raise ConvertError('--preset %s is ImageBind\'s, but %s is a %s checkpoint: give its '
                           'config (--config) or an OpenCLIP preset (%s)'
                           % (args.preset, source.path, FAMILY_NAMES[family],
                              ', '.join(sorted(CLIP_PRESETS))))
    if args.modalities:
        raise ConvertError('--modalities applies to ImageBind checkpoints; a CLIP model file '
                           'holds vision and text')
    cfg = load_clip_config(args.config, args.preset)
    for w in cfg.warnings:
        print('convert.py: warning: %s' % w, file=sys.stderr)
    return ClipCheckpoint(source, family, cfg)


def convert(args):
    ckpt = open_checkpoint(args.checkpoint)
    try:
        family = detect_family(ckpt.tensors, ckpt.path)
        clip = None
        if family == 'imagebind':
            config, modalities, names, default_name = imagebind_model(ckpt, args)
        else:
            ckpt = clip = clip_model(ckpt, family, args)
            config, modalities = clip.config, ['vision', 'text']
            names = validate(ckpt, config, modalities)
            default_name = (args.preset if args.preset else
                            os.path.splitext(os.path.basename(args.checkpoint))[0])
        merges = None
        if args.bpe:
            merges = read_merges(args.bpe, config.vocab_size - BYTE_SYMBOLS - SPECIAL_TOKENS)

        writer = GGUFWriter()
        if args.special_tokens and clip is None:
            raise ConvertError('--special-tokens applies to OpenCLIP and Hugging Face CLIP '
                               'checkpoints; ImageBind\'s tokenizer is OpenAI\'s')
        add_keys(writer, config, modalities, args.name or default_name, merges, clip,
                 args.special_tokens)
        quantizers = {}     # q8: weight name -> its RowQuantizer, whose scales follow it
        for name in names:
            shape = ckpt.tensors[name].shape
            if args.dtype == 'q8' and stored_as_q8(name, shape):
                writer.add_tensor(name, gguf_shape(shape), 'I8')
                writer.add_tensor(name + SCALE_SUFFIX, (shape[0],), 'F32')
                continue
            f16 = ((args.dtype == 'f16' and stored_as_f16(name, shape))
                   or (args.dtype == 'q8' and is_lookup_table(name)))
            writer.add_tensor(name, gguf_shape(shape), 'F16' if f16 else 'F32')

        def chunks(info):
            if info.name.endswith(SCALE_SUFFIX) and info.name not in ckpt.tensors:
                yield quantizers.pop(info.name[:-len(SCALE_SUFFIX)]).finish()
                return
            t = ckpt.tensors[info.name]
            if info.ttype == 'I8':
                rq = quantizers[info.name] = RowQuantizer(info.numel // info.shape[0])
                for raw in ckpt.iter_raw(t):
                    try:
                        yield rq.feed(convert_elements(raw, t.dtype, 'F32'))
                    except CheckpointError as e:
                        raise ConvertError('tensor %s: %s' % (info.name, e)) from None
                return
            for raw in ckpt.iter_raw(t):
                try:
                    yield convert_elements(raw, t.dtype, info.ttype)
                except CheckpointError as e:
                    raise ConvertError('tensor %s: %s; use --dtype f32' % (info.name, e)) from None

        size = writer.write(args.output, chunks)
    finally:
        ckpt.close()

    n_params = sum(t.numel for t in writer.tensors if not t.name.endswith(SCALE_SUFFIX))
    print('wrote %s: %d tensors, %d parameters, %d bytes (%s weights)'
          % (args.output, len(writer.tensors), n_params, size, args.dtype))
    if clip is not None:
        print('  %s checkpoint; activation %s; image %dx%d, patch %d'
              % (FAMILY_NAMES[family], clip.clip.vision.activation, config.image_size,
                 config.image_size, config.kernel_size[2]))
    print('  out_embed_dim %d' % config.out_embed_dim)
    for m in modalities:
        p = config.modalities[m]
        count = sum(t.numel for t in writer.tensors if modality_of(t.name) == m)
        print('  %-8s D %5d  blocks %3d  heads %3d  tokens %4d  parameters %d'
              % (m, p.embed_dim, p.num_blocks, p.num_heads, config.num_tokens(m), count))
    print('  tokenizer: %s' % ('%d BPE merges' % len(merges) if merges is not None
                               else 'none (no --bpe)'))


def main(argv=None):
    args = parse_args(argv)
    try:
        convert(args)
    except (ConvertError, ConfigError, CheckpointError, ClipError) as e:
        print('convert.py: error: %s' % e, file=sys.stderr)
        return 1
    except OSError as e:
        print('convert.py: error: %s' % e, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
