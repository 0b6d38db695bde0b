"""OpenCLIP and Hugging Face CLIP checkpoints as gst-imagebind model files.

A CLIP ViT is ImageBind's vision and text design (pre-LN blocks, class-token pooling, EOT
pooling), so a CLIP file stores its tensors under the ImageBind names the runtime loads
(/work/wt/CLIPKEYS.md, models/GGUF.md "CLIP-family files"):

  OpenCLIP                               Hugging Face CLIPModel
  visual.conv1.weight (D,3,P,P)          vision_model.embeddings.patch_embedding.weight
      -> modality_preprocessors.vision.rgbt_stem.proj.1.weight, kernel [1,P,P], 1 frame
  visual.class_embedding (D)             vision_model.embeddings.class_embedding
      -> modality_preprocessors.vision.cls_token (1,1,D)
  visual.positional_embedding (N,D)      vision_model.embeddings.position_embedding.weight
      -> modality_preprocessors.vision.pos_embedding_helper.pos_embed (1,N,D)
  visual.ln_pre                          vision_model.pre_layrnorm
      -> modality_trunks.vision.pre_transformer_layer.0
  *.resblocks.{i}.attn.in_proj_*         *.layers.{i}.self_attn.{q,k,v}_proj.* (rows q,k,v)
      -> modality_trunks.<m>.blocks.{i}.attn.in_proj_*  (out_proj, ln_1/2 -> norm_1/2,
         c_fc/c_proj or fc1/fc2 -> mlp.fc1/fc2 alike)
  visual.ln_post, visual.proj (D,E)^T    vision_model.post_layernorm, visual_projection.weight
      -> modality_heads.vision.0, modality_heads.vision.2.weight (E,D)
  token_embedding.weight, positional_embedding (L,D), ln_final, text_projection (D,E)^T,
  logit_scale; HF text_model.embeddings.*, final_layer_norm, text_projection.weight (E,D)
      -> modality_preprocessors.text.*, modality_heads.text.proj.0/1,
         modality_postprocessors.text.1.log_logit_scale

Sizes come from the tensors; the head counts, activation and LayerNorm epsilon (which no
tensor shows) from the configuration, which must agree with the tensors on everything both
state. Other families built on OpenCLIP (SigLIP, EVA, CoCa, ConvNeXt, ModifiedResNet) are
recognised by their tensor names and refused by name.
"""

import collections
import json
import re

from .architecture import GEOMETRY_DEFAULTS, NOT_STORED, ConfigError, ModelConfig, listing
from .checkpoint import FLOAT_DTYPES, ITEM_SIZES, ShapedTensor, transpose_raw

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

FAMILY_NAMES = {'imagebind': 'ImageBind', 'openclip': 'OpenCLIP', 'hf-clip': 'Hugging Face CLIP'}
KNOWN = 'ImageBind, OpenCLIP CLIP ViT or Hugging Face transformers CLIPModel'


class ClipError(Exception):
    """A CLIP checkpoint or configuration that cannot be converted; the message is for the user."""


# -- presets: OpenCLIP's published model configs (src/open_clip/model_configs/*.json) --

def _openclip_preset(embed_dim, v_width, v_layers, patch, t_width, t_heads, t_layers,
                     head_width=64):
    return {'embed_dim': embed_dim,
            'vision_cfg': {'image_size': 224, 'layers': v_layers, 'width': v_width,
                           'head_width': head_width, 'patch_size': patch},
            'text_cfg': {'context_length': 77, 'vocab_size': 49408, 'width': t_width,
                         'heads': t_heads, 'layers': t_layers}}


_BASE_PRESETS = {
    'ViT-B-32': _openclip_preset(512, 768, 12, 32, 512, 8, 12),
    'ViT-B-16': _openclip_preset(512, 768, 12, 16, 512, 8, 12),
    'ViT-L-14': _openclip_preset(768, 1024, 24, 14, 768, 12, 12),
    'ViT-H-14': _openclip_preset(1024, 1280, 32, 14, 1024, 16, 24, head_width=80),
}
CLIP_PRESETS = {}
for _name, _cfg in _BASE_PRESETS.items():
    CLIP_PRESETS[_name] = dict(_cfg, quick_gelu=False)
    CLIP_PRESETS[_name + '-quickgelu'] = dict(_cfg, quick_gelu=True)


# -- family recognition --

def _refused_family(names, has):
    """(family, evidence) for the towers out of scope, or None."""
    if 'logit_bias' in names:
        return 'SigLIP', 'logit_bias'
    if has('vision_model.head.'):
        return 'SigLIP', 'vision_model.head.*'
    if has('text_decoder.'):
        return 'CoCa', 'text_decoder.*'
    if has('visual.trunk.'):
        if has('visual.trunk.stages.') or has('visual.trunk.stem.'):
            return 'ConvNeXt', 'visual.trunk.stages.*'
        if has('visual.trunk.attn_pool.'):
            return 'SigLIP', 'visual.trunk.attn_pool.*'
        if any('rope' in n for n in names):
            return 'EVA', 'visual.trunk.*rope*'
        return 'timm image tower', 'visual.trunk.*'
    if has('visual.attnpool.') or has('visual.layer1.'):
        return 'ModifiedResNet', 'visual.attnpool.*, visual.layer1.*'
    if (has('visual.blocks.') and has('visual.patch_embed.')) or has('visual.rope.'):
        return 'EVA', 'visual.patch_embed.*, visual.blocks.*'
    if has('text.transformer.embeddings.') or has('text.transformer.encoder.'):
        return 'OpenCLIP with a Hugging Face text tower', 'text.transformer.embeddings.*'
    if has('text_model.embeddings.word_embeddings.'):
        return 'CLIP with a BERT-style text tower (AltCLIP, Chinese-CLIP)', \
            'text_model.embeddings.word_embeddings.*'
    return None


def _prefix_summary(names):
    counts = collections.Counter(n.split('.', 1)[0] for n in names)
    return ', '.join('%s (%d)' % (p, c) for p, c in counts.most_common(6))


def detect_family(names, path):
    """'imagebind', 'openclip' or 'hf-clip' from the tensor names; ClipError otherwise."""
    names = list(names)
    prefixes = tuple(sorted({n.split('.', 1)[0] + '.' for n in names}))

    def has(prefix):
        return any(n.startswith(prefix) for n in names)

    if any(p in prefixes for p in ('modality_preprocessors.', 'modality_trunks.',
                                   'modality_heads.', 'modality_postprocessors.')):
        return 'imagebind'
    refused = _refused_family(set(names), has)
    if refused:
        raise ClipError('%s is a %s checkpoint (it has %s): out of scope; the converter reads '
                        '%s checkpoints' % (path, refused[0], refused[1], KNOWN))
    if 'visual.conv1.weight' in names or has('visual.transformer.resblocks.'):
        return 'openclip'
    if has('vision_model.embeddings.') or has('text_model.embeddings.'):
        return 'hf-clip'
    if not names:
        raise ClipError('%s holds no tensor' % path)
    raise ClipError('%s is not a checkpoint of a known family (%s): its %d tensors are named '
                    'like %s; by prefix: %s'
                    % (path, KNOWN, len(names), ', '.join(names[:3]), _prefix_summary(names)))


# -- configurations --

class Tower:
    """What a configuration says about one tower (None: not stated)."""

    def __init__(self):
        self.width = self.layers = self.heads = self.mlp_width = None
        self.activation = 'gelu'
        self.eps = 1e-5


class ClipConfig:
    """A configuration normalised from OpenCLIP or Hugging Face form."""

    def __init__(self, origin):
        self.origin = origin
        self.embed_dim = self.image_size = self.patch_size = None
        self.context_length = self.vocab_size = None
        self.vision, self.text = Tower(), Tower()
        self.mean, self.std = OPENAI_MEAN, OPENAI_STD
        self.warnings = []


def config_kind(doc):
    """'imagebind', 'openclip', 'hf-clip' or None for a parsed JSON config."""
    if not isinstance(doc, dict):
        return None
    if 'constructor_args' in doc or any(k.endswith('_embed_dim') for k in doc):
        return 'imagebind'
    if any(k in doc for k in ('model_cfg', 'vision_cfg', 'text_cfg')):
        return 'openclip'
    if any(k in doc for k in ('vision_config', 'text_config', 'vision_config_dict',
                              'text_config_dict', 'model_type')):
        return 'hf-clip'
    return None


def read_config(path):
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError('cannot read config %s: %s' % (path, e)) from None


def _int(value, what, problems):
    if isinstance(value, (list, tuple)) and len(value) == 2 and value[0] == value[1]:
        value = value[0]      # OpenCLIP allows (h, w) pairs; square ones are plain sizes
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        problems.append('%s must be a positive integer, got %.60r' % (what, value))
        return None
    return value


# OpenCLIP options: those that do not change inference, and those accepted only at their
# default because the runtime computes the default (CLIP ViT, class-token and argmax pooling).
_OC_TOP_INERT = {'embed_dim', 'quick_gelu', 'vision_cfg', 'text_cfg', 'custom_text',
                 'cast_dtype', 'output_dict', 'init_logit_scale'}
_OC_TOP_DEFAULTS = {'init_logit_bias': None, 'multimodal_cfg': None}
_OC_VISION_INERT = {'image_size', 'patch_size', 'width', 'layers', 'head_width', 'mlp_ratio',
                    'patch_dropout', 'image_resolution', 'drop_path_rate', 'output_tokens',
                    'name', 'final_ln_after_pool', 'norm_kwargs', 'timm_model_pretrained',
                    'timm_pool', 'timm_proj', 'timm_proj_bias', 'timm_drop', 'timm_drop_path',
                    'n_queries', 'attn_pooler_heads'}
_OC_VISION_DEFAULTS = {'ls_init_value': None, 'input_patchnorm': False,
                       'global_average_pool': False, 'attentional_pool': False,
                       'pool_type': 'tok', 'no_ln_pre': False, 'pos_embed_type': 'learnable',
                       'timm_model_name': None, 'eva_model_name': None, 'act_kwargs': None}
_OC_TEXT_INERT = {'context_length', 'vocab_size', 'width', 'heads', 'layers', 'mlp_ratio',
                  'output_tokens', 'pad_id', 'final_ln_after_pool', 'hf_model_pretrained',
                  'hf_proj_type', 'hf_pooler_type', 'norm_kwargs', 'output_dim'}
_OC_TEXT_DEFAULTS = {'ls_init_value': None, 'embed_cls': False, 'no_causal_mask': False,
                     'pool_type': 'argmax', 'proj_bias': False, 'proj_type': 'linear',
                     'hf_model_name': None, 'hf_tokenizer_name': None,
                     'tokenizer_kwargs': None, 'act_kwargs': None, 'attn_mask': True}


def _options(section, where, inert, defaults, problems):
    for key, value in section.items():
        if key in inert:
            continue
        if key in defaults:
            if value != defaults[key] and not (defaults[key] is None and value in ({}, [])):
                problems.append('%s%s = %.60r is not supported (the runtime computes %r)'
                                % (where, key, value, defaults[key]))
        else:
            problems.append('%s%s: unknown option (it may change the computation)'
                            % (where, key))


def _openclip_tower(section, tower, where, problems):
    tower.width = _int(section.get('width', 768 if where == 'vision_cfg.' else 512),
                       where + 'width', problems)
    layers = section.get('layers', 12)
    if isinstance(layers, (list, tuple)):
        problems.append('%slayers is a list: a ModifiedResNet image tower (out of scope)' % where)
    else:
        tower.layers = _int(layers, where + 'layers', problems)
    ratio = section.get('mlp_ratio', 4.0)
    if ratio != 4:
        problems.append('%smlp_ratio %r is not supported (the runtime computes MLP ratio 4)'
                        % (where, ratio))
    elif tower.width:
        tower.mlp_width = 4 * tower.width
    norm = section.get('norm_kwargs') or {}
    if not isinstance(norm, dict) or set(norm) - {'eps'}:
        problems.append('%snorm_kwargs %.60r: only eps is supported' % (where, norm))
    elif 'eps' in norm:
        tower.eps = norm['eps']


def parse_openclip(doc, origin):
    """An OpenCLIP model config, bare or as the hub's {"model_cfg", "preprocess_cfg"}."""
    cfg = ClipConfig(origin)
    problems = []
    model = doc.get('model_cfg', doc)
    pre = doc.get('preprocess_cfg') or {}
    if not isinstance(model, dict) or not isinstance(pre, dict):
        raise ClipError('%s: model_cfg and preprocess_cfg must be JSON objects' % origin)
    vision, text = model.get('vision_cfg', {}), model.get('text_cfg', {})
    if not isinstance(vision, dict) or not isinstance(text, dict):
        raise ClipError('%s: vision_cfg and text_cfg must be JSON objects' % origin)
    _options(model, '', _OC_TOP_INERT, _OC_TOP_DEFAULTS, problems)
    _options(vision, 'vision_cfg.', _OC_VISION_INERT, _OC_VISION_DEFAULTS, problems)
    _options(text, 'text_cfg.', _OC_TEXT_INERT, _OC_TEXT_DEFAULTS, problems)
    cfg.embed_dim = _int(model.get('embed_dim'), 'embed_dim', problems)
    quick = model.get('quick_gelu', False)
    if not isinstance(quick, bool):
        problems.append('quick_gelu must be true or false, got %.60r' % (quick,))
    for tower in (cfg.vision, cfg.text):
        tower.activation = 'quick_gelu' if quick is True else 'gelu'
    _openclip_tower(vision, cfg.vision, 'vision_cfg.', problems)
    _openclip_tower(text, cfg.text, 'text_cfg.', problems)
    cfg.image_size = _int(vision.get('image_size', 224), 'vision_cfg.image_size', problems)
    cfg.patch_size = _int(vision.get('patch_size', 16), 'vision_cfg.patch_size', problems)
    head_width = _int(vision.get('head_width', 64), 'vision_cfg.head_width', problems)
    if head_width and cfg.vision.width:
        if cfg.vision.width % head_width:
            problems.append('vision_cfg.width %d is not a multiple of head_width %d'
                            % (cfg.vision.width, head_width))
        else:
            cfg.vision.heads = cfg.vision.width // head_width   # OpenCLIP gives the head size
    cfg.text.heads = _int(text.get('heads', 8), 'text_cfg.heads', problems)
    cfg.context_length = _int(text.get('context_length', 77), 'text_cfg.context_length',
                              problems)
    cfg.vocab_size = _int(text.get('vocab_size', 49408), 'text_cfg.vocab_size', problems)
    for key, default in (('mean', OPENAI_MEAN), ('std', OPENAI_STD)):
        value = pre.get(key, default)
        if (not isinstance(value, (list, tuple)) or len(value) != 3
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           for v in value) or (key == 'std' and min(value) <= 0)):
            problems.append('preprocess_cfg.%s must be three numbers%s, got %.60r'
                            % (key, ' > 0' if key == 'std' else '', value))
        else:
            setattr(cfg, key, tuple(float(v) for v in value))
    for key, usual in (('interpolation', 'bicubic'), ('resize_mode', 'shortest')):
        if pre.get(key, usual) != usual:
            cfg.warnings.append('preprocess_cfg.%s is %r; the runtime resizes the short side '
                                '(bicubic) and crops the centre, as OpenCLIP does by default'
                                % (key, pre[key]))
    if problems:
        raise ClipError('\n'.join(['%s cannot describe a CLIP ViT this runtime computes:'
                                   % origin] + ['  ' + p for p in problems]))
    return cfg


# transformers' CLIPTextConfig / CLIPVisionConfig defaults (configuration_clip.py): a
# config.json may leave out what equals them.
_HF_TEXT_DEFAULTS = {'vocab_size': 49408, 'hidden_size': 512, 'intermediate_size': 2048,
                     'num_hidden_layers': 12, 'num_attention_heads': 8,
                     'max_position_embeddings': 77, 'hidden_act': 'quick_gelu',
                     'layer_norm_eps': 1e-5}
_HF_VISION_DEFAULTS = {'hidden_size': 768, 'intermediate_size': 3072, 'num_hidden_layers': 12,
                       'num_attention_heads': 12, 'num_channels': 3, 'image_size': 224,
                       'patch_size': 32, 'hidden_act': 'quick_gelu', 'layer_norm_eps': 1e-5}
_HF_OTHER_TYPES = {'siglip': 'SigLIP', 'siglip2': 'SigLIP 2', 'chinese_clip': 'Chinese-CLIP',
                   'altclip': 'AltCLIP', 'clipseg': 'CLIPSeg', 'owlvit': 'OWL-ViT',
                   'x_clip': 'X-CLIP', 'blip': 'BLIP', 'eva_clip': 'EVA-CLIP'}


def _hf_tower(section, defaults, where, tower, problems):
    s = dict(defaults, **section)
    tower.width = _int(s['hidden_size'], where + 'hidden_size', problems)
    tower.layers = _int(s['num_hidden_layers'], where + 'num_hidden_layers', problems)
    tower.heads = _int(s['num_attention_heads'], where + 'num_attention_heads', problems)
    tower.mlp_width = _int(s['intermediate_size'], where + 'intermediate_size', problems)
    act = s['hidden_act']
    if act not in ('gelu', 'quick_gelu'):
        problems.append('%shidden_act %.40r is not supported (gelu or quick_gelu)'
                        % (where, act))
    tower.activation = act
    eps = s['layer_norm_eps']
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
        problems.append('%slayer_norm_eps must be a small positive number, got %.40r'
                        % (where, eps))
    else:
        tower.eps = float(eps)
    return s


def parse_hf(doc, origin):
    """A Hugging Face CLIPConfig (config.json of a CLIPModel repository)."""
    cfg = ClipConfig(origin)
    problems = []
    model_type = doc.get('model_type', 'clip')
    if model_type != 'clip':
        family = _HF_OTHER_TYPES.get(model_type)
        raise ClipError('%s: model_type %.40r%s is not a CLIPModel; the converter reads %s '
                        'checkpoints' % (origin, model_type,
                                         ' (%s: out of scope)' % family if family else '',
                                         KNOWN))
    text = doc.get('text_config') or doc.get('text_config_dict') or {}
    vision = doc.get('vision_config') or doc.get('vision_config_dict') or {}
    if not isinstance(text, dict) or not isinstance(vision, dict):
        raise ClipError('%s: text_config and vision_config must be JSON objects' % origin)
    t = _hf_tower(text, _HF_TEXT_DEFAULTS, 'text_config.', cfg.text, problems)
    v = _hf_tower(vision, _HF_VISION_DEFAULTS, 'vision_config.', cfg.vision, problems)
    cfg.embed_dim = _int(doc.get('projection_dim', 512), 'projection_dim', problems)
    cfg.context_length = _int(t['max_position_embeddings'],
                              'text_config.max_position_embeddings', problems)
    cfg.vocab_size = _int(t['vocab_size'], 'text_config.vocab_size', problems)
    cfg.image_size = _int(v['image_size'], 'vision_config.image_size', problems)
    cfg.patch_size = _int(v['patch_size'], 'vision_config.patch_size', problems)
    if v['num_channels'] != 3:
        problems.append('vision_config.num_channels %r is not 3' % (v['num_channels'],))
    if problems:
        raise ClipError('\n'.join(['%s cannot describe a CLIP ViT this runtime computes:'
                                   % origin] + ['  ' + p for p in problems]))
    return cfg


def load_clip_config(path=None, preset=None):
    if preset is not None:
        return parse_openclip(CLIP_PRESETS[preset], 'preset %s' % preset)
    doc = read_config(path)
    kind = config_kind(doc)
    if kind == 'openclip':
        return parse_openclip(doc, path)
    if kind == 'hf-clip':
        return parse_hf(doc, path)
    if kind == 'imagebind':
        raise ClipError('%s is an ImageBind configuration, but the checkpoint is a CLIP model: '
                        'give its open_clip_config.json (OpenCLIP), config.json (Hugging Face) '
                        'or --preset' % path)
    raise ClipError('%s is neither an OpenCLIP config (model_cfg / vision_cfg, text_cfg) nor a '
                    'Hugging Face CLIPConfig (vision_config, text_config)' % path)


# -- the tensors --

_TOWERS = {
    # family -> (vision block prefix, text block prefix)
    'openclip': ('visual.transformer.resblocks.%d.', '%stransformer.resblocks.%d.'),
    'hf-clip': ('vision_model.encoder.layers.%d.', 'text_model.encoder.layers.%d.'),
}  # (the OpenCLIP text prefix %s is '' or, for CustomTextCLIP, 'text.')
# ImageBind block tensor -> (op, source suffixes) per family
_BLOCK = {
    'openclip': {
        'attn.in_proj_weight': ('copy', ['attn.in_proj_weight']),
        'attn.in_proj_bias': ('copy', ['attn.in_proj_bias']),
        'attn.out_proj.weight': ('copy', ['attn.out_proj.weight']),
        'attn.out_proj.bias': ('copy', ['attn.out_proj.bias']),
        'norm_1.weight': ('copy', ['ln_1.weight']), 'norm_1.bias': ('copy', ['ln_1.bias']),
        'mlp.fc1.weight': ('copy', ['mlp.c_fc.weight']),
        'mlp.fc1.bias': ('copy', ['mlp.c_fc.bias']),
        'mlp.fc2.weight': ('copy', ['mlp.c_proj.weight']),
        'mlp.fc2.bias': ('copy', ['mlp.c_proj.bias']),
        'norm_2.weight': ('copy', ['ln_2.weight']), 'norm_2.bias': ('copy', ['ln_2.bias']),
    },
    'hf-clip': {
        'attn.in_proj_weight': ('cat', ['self_attn.%s_proj.weight' % x for x in 'qkv']),
        'attn.in_proj_bias': ('cat', ['self_attn.%s_proj.bias' % x for x in 'qkv']),
        'attn.out_proj.weight': ('copy', ['self_attn.out_proj.weight']),
        'attn.out_proj.bias': ('copy', ['self_attn.out_proj.bias']),
        'norm_1.weight': ('copy', ['layer_norm1.weight']),
        'norm_1.bias': ('copy', ['layer_norm1.bias']),
        'mlp.fc1.weight': ('copy', ['mlp.fc1.weight']), 'mlp.fc1.bias': ('copy', ['mlp.fc1.bias']),
        'mlp.fc2.weight': ('copy', ['mlp.fc2.weight']), 'mlp.fc2.bias': ('copy', ['mlp.fc2.bias']),
        'norm_2.weight': ('copy', ['layer_norm2.weight']),
        'norm_2.bias': ('copy', ['layer_norm2.bias']),
    },
}


def _fixed_map(family, tp):
    """ImageBind name -> (op, source names) outside the blocks. tp: OpenCLIP text prefix."""
    if family == 'openclip':
        v = 'visual.'
        return {
            'modality_preprocessors.vision.cls_token': ('copy', [v + 'class_embedding']),
            'modality_preprocessors.vision.rgbt_stem.proj.1.weight': ('copy', [v + 'conv1.weight']),
            'modality_preprocessors.vision.pos_embedding_helper.pos_embed':
                ('copy', [v + 'positional_embedding']),
            'modality_trunks.vision.pre_transformer_layer.0.weight':
                ('copy', [v + 'ln_pre.weight']),
            'modality_trunks.vision.pre_transformer_layer.0.bias': ('copy', [v + 'ln_pre.bias']),
            'modality_heads.vision.0.weight': ('copy', [v + 'ln_post.weight']),
            'modality_heads.vision.0.bias': ('copy', [v + 'ln_post.bias']),
            'modality_heads.vision.2.weight': ('T', [v + 'proj']),
            'modality_preprocessors.text.pos_embed': ('copy', [tp + 'positional_embedding']),
            'modality_preprocessors.text.token_embedding.weight':
                ('copy', [tp + 'token_embedding.weight']),
            'modality_heads.text.proj.0.weight': ('copy', [tp + 'ln_final.weight']),
            'modality_heads.text.proj.0.bias': ('copy', [tp + 'ln_final.bias']),
            'modality_heads.text.proj.1.weight': ('T', [tp + 'text_projection']),
            'modality_postprocessors.text.1.log_logit_scale': ('copy', ['logit_scale']),
        }
    e, t = 'vision_model.embeddings.', 'text_model.'
    return {
        'modality_preprocessors.vision.cls_token': ('copy', [e + 'class_embedding']),
        'modality_preprocessors.vision.rgbt_stem.proj.1.weight':
            ('copy', [e + 'patch_embedding.weight']),
        'modality_preprocessors.vision.pos_embedding_helper.pos_embed':
            ('copy', [e + 'position_embedding.weight']),
        'modality_trunks.vision.pre_transformer_layer.0.weight':
            ('copy', ['vision_model.pre_layrnorm.weight']),
        'modality_trunks.vision.pre_transformer_layer.0.bias':
            ('copy', ['vision_model.pre_layrnorm.bias']),
        'modality_heads.vision.0.weight': ('copy', ['vision_model.post_layernorm.weight']),
        'modality_heads.vision.0.bias': ('copy', ['vision_model.post_layernorm.bias']),
        'modality_heads.vision.2.weight': ('copy', ['visual_projection.weight']),
        'modality_preprocessors.text.pos_embed':
            ('copy', [t + 'embeddings.position_embedding.weight']),
        'modality_preprocessors.text.token_embedding.weight':
            ('copy', [t + 'embeddings.token_embedding.weight']),
        'modality_heads.text.proj.0.weight': ('copy', [t + 'final_layer_norm.weight']),
        'modality_heads.text.proj.0.bias': ('copy', [t + 'final_layer_norm.bias']),
        'modality_heads.text.proj.1.weight': ('copy', ['text_projection.weight']),
        'modality_postprocessors.text.1.log_logit_scale': ('copy', ['logit_scale']),
    }


def _source_shapes(target, shape, op, n):
    """The shapes of the n CLIP tensors that make the ImageBind tensor `target`; some ImageBind
    shapes have singleton axes the CLIP tensors lack: the (1,1,D) class token, the (1,L,D)
    positional tables and the (D,3,1,P,P) patch kernel."""
    if op == 'T':
        return [(shape[1], shape[0])]
    if op == 'cat':
        return [(shape[0] // n,) + tuple(shape[1:])] * n
    if target.endswith('.cls_token'):
        return [shape[2:]]
    if target.endswith('pos_embed'):
        return [shape[1:]]
    if target.endswith('rgbt_stem.proj.1.weight'):
        return [shape[:2] + shape[3:]]
    return [shape]


def _ignorable(family, name):
    # HF's position_ids (0..n-1, int64) are buffers older transformers saved; not weights.
    return family == 'hf-clip' and name in ('text_model.embeddings.position_ids',
                                            'vision_model.embeddings.position_ids')


class Sizes:
    """The model's sizes as the tensors give them."""


def _count_blocks(names, pattern):
    rx = re.compile('^' + re.escape(pattern).replace('%d', r'(\d+)'))
    found = {int(m.group(1)) for m in (rx.match(n) for n in names) if m}
    return max(found) + 1 if found else 0


def _sizes(family, tensors, tp, path):
    """Sizes from the anchor tensors, or ClipError listing the missing ones."""
    if family == 'openclip':
        anchors = {'stem': 'visual.conv1.weight', 'vpos': 'visual.positional_embedding',
                   'vproj': 'visual.proj', 'tok': tp + 'token_embedding.weight',
                   'tpos': tp + 'positional_embedding', 'tproj': tp + 'text_projection'}
    else:
        anchors = {'stem': 'vision_model.embeddings.patch_embedding.weight',
                   'vpos': 'vision_model.embeddings.position_embedding.weight',
                   'vproj': 'visual_projection.weight',
                   'tok': 'text_model.embeddings.token_embedding.weight',
                   'tpos': 'text_model.embeddings.position_embedding.weight',
                   'tproj': 'text_projection.weight'}
    missing = [n for n in anchors.values() if n not in tensors]
    if missing:
        raise ClipError('\n'.join(['%s is a %s checkpoint without the tensors that give its '
                                   'sizes (a CLIP model needs both towers):'
                                   % (path, FAMILY_NAMES[family])] + listing('missing', missing)))
    shape = {k: tuple(tensors[n].shape) for k, n in anchors.items()}
    expect = {'stem': 4, 'vpos': 2, 'vproj': 2, 'tok': 2, 'tpos': 2, 'tproj': 2}
    bad = ['%s %s' % (anchors[k], shape[k]) for k, r in expect.items() if len(shape[k]) != r]
    stem = shape['stem']
    if not bad and (stem[1] != 3 or stem[2] != stem[3]):
        bad.append('%s %s: not a square RGB patch kernel' % (anchors['stem'], stem))
    if bad:
        raise ClipError('\n'.join(['%s: tensors of unexpected rank:' % path]
                                  + ['  ' + b for b in bad]))
    s = Sizes()
    s.v_width, s.patch = stem[0], stem[2]
    s.v_tokens = shape['vpos'][0]
    grid = int(round(max(s.v_tokens - 1, 0) ** 0.5))
    s.grid = grid if grid * grid == s.v_tokens - 1 and grid > 0 else None
    s.embed_dim = shape['vproj'][1] if family == 'openclip' else shape['vproj'][0]
    s.vocab, s.t_width = shape['tok']
    s.context = shape['tpos'][0]
    s.v_blocks, s.t_blocks = _TOWERS[family]
    s.t_blocks = s.t_blocks.replace('%s', tp)
    s.v_layers = _count_blocks(tensors, s.v_blocks)
    s.t_layers = _count_blocks(tensors, s.t_blocks)
    fc1 = 'mlp.c_fc.weight' if family == 'openclip' else 'mlp.fc1.weight'
    s.v_mlp = s.t_mlp = None
    for attr, pattern in (('v_mlp', s.v_blocks), ('t_mlp', s.t_blocks)):
        fc = tensors.get((pattern % 0) + fc1)
        if fc is not None and len(fc.shape) == 2:
            setattr(s, attr, fc.shape[0])
    return s


def _compare(cfg, s, path):
    """The configuration against the sizes of the tensors: ClipError listing every mismatch."""
    rows = [('embed_dim (projection width)', cfg.embed_dim, s.embed_dim),
            ('vision width', cfg.vision.width, s.v_width),
            ('vision layers', cfg.vision.layers, s.v_layers),
            ('vision patch_size', cfg.patch_size, s.patch),
            ('vision MLP width', cfg.vision.mlp_width, s.v_mlp),
            ('text width', cfg.text.width, s.t_width),
            ('text layers', cfg.text.layers, s.t_layers),
            ('text MLP width', cfg.text.mlp_width, s.t_mlp),
            ('text context_length', cfg.context_length, s.context),
            ('text vocab_size', cfg.vocab_size, s.vocab)]
    problems = ['%s: config %s, checkpoint %s' % (what, c, k) for what, c, k in rows
                if c is not None and k is not None and c != k]
    if s.grid is None:
        problems.append('vision positional table of %d rows is not 1 + a square grid'
                        % s.v_tokens)
    elif cfg.image_size and cfg.patch_size and cfg.image_size // cfg.patch_size != s.grid:
        problems.append('vision image_size %d / patch_size %d gives a %dx%d grid, the '
                        'positional table holds %dx%d'
                        % (cfg.image_size, cfg.patch_size, cfg.image_size // cfg.patch_size,
                           cfg.image_size // cfg.patch_size, s.grid, s.grid))
    for name, tower, width in (('vision', cfg.vision, s.v_width), ('text', cfg.text, s.t_width)):
        if tower.heads and width % tower.heads:
            problems.append('%s heads %d do not divide the width %d' % (name, tower.heads, width))
    for name, mlp, width in (('vision', s.v_mlp, s.v_width), ('text', s.t_mlp, s.t_width)):
        if mlp is not None and mlp != 4 * width:
            problems.append('%s MLP width %d is not 4 x the width %d: the runtime computes '
                            'MLP ratio 4 only' % (name, mlp, width))
    if problems:
        raise ClipError('\n'.join(['%s does not match %s:' % (path, cfg.origin)]
                                  + ['  ' + p for p in problems]))


class MappedTensor(ShapedTensor):
    """An ImageBind-named tensor made of checkpoint tensors: copied, transposed or
    concatenated by rows."""

    def __init__(self, shape, op, sources):
        self.shape = shape
        self.op = op
        self.sources = sources
        self.dtype = sources[0].dtype


class ClipCheckpoint:
    """A CLIP checkpoint seen under ImageBind names: `tensors`, `iter_raw`, `close`, `path`
    as convert.py expects of a checkpoint, and `config` (architecture.ModelConfig) with the
    keys that only CLIP files carry."""

    def __init__(self, source, family, cfg):
        self.source = source
        self.path = source.path
        self.family = family
        self.clip = cfg
        names = source.tensors
        tp = 'text.' if family == 'openclip' and 'text.token_embedding.weight' in names else ''
        s = _sizes(family, names, tp, self.path)
        _compare(cfg, s, self.path)
        self.config = ModelConfig(dict(GEOMETRY_DEFAULTS, **{
            'out_embed_dim': s.embed_dim, 'video_frames': 1, 'kernel_size': [1, s.patch, s.patch],
            'image_size': cfg.image_size or s.grid * s.patch, 'context_length': s.context,
            'vocab_size': s.vocab,
            'vision_embed_dim': s.v_width, 'vision_num_blocks': s.v_layers,
            'vision_num_heads': cfg.vision.heads,
            'text_embed_dim': s.t_width, 'text_num_blocks': s.t_layers,
            'text_num_heads': cfg.text.heads}))
        self.tensors = self._map(family, tp, s)

    def _map(self, family, tp, s):
        fixed = _fixed_map(family, tp)
        block_rx = re.compile(r'^modality_trunks\.(vision|text)\.blocks\.(\d+)\.(.*)$')
        plan = collections.OrderedDict()
        for m in ('vision', 'text'):
            for target, shape in self.config.expected_tensors(m).items():
                if target in NOT_STORED:
                    continue
                b = block_rx.match(target)
                if b:
                    blocks = s.v_blocks if b.group(1) == 'vision' else s.t_blocks
                    prefix = blocks % int(b.group(2))
                    op, suffixes = _BLOCK[family][b.group(3)]
                    sources = [prefix + x for x in suffixes]
                else:
                    op, sources = fixed[target]
                plan[target] = (shape, op, sources,
                                _source_shapes(target, shape, op, len(sources)))
        used = {n for _, _, sources, _ in plan.values() for n in sources}
        tensors = self.source.tensors
        missing, mismatched, not_float, mixed = [], [], [], []
        for target, (shape, op, sources, shapes) in plan.items():
            for name, want in zip(sources, shapes):
                t = tensors.get(name)
                if t is None:
                    missing.append(name)
                elif tuple(t.shape) != want:
                    mismatched.append('%s: checkpoint %s, expected %s'
                                      % (name, tuple(t.shape), want))
                elif t.dtype not in FLOAT_DTYPES:
                    not_float.append('%s: %s' % (name, t.dtype))
            if len({tensors[n].dtype for n in sources if n in tensors}) > 1:
                mixed.append(', '.join('%s %s' % (n, tensors[n].dtype) for n in sources))
        unexpected = ['%s %s' % (n, tuple(t.shape)) for n, t in tensors.items()
                      if n not in used and not _ignorable(family, n)]
        if missing or mismatched or not_float or mixed or unexpected:
            lines = ['%s does not hold the CLIP model its sizes imply (%s, vision width %d, '
                     '%d layers; text width %d, %d layers):'
                     % (self.path, FAMILY_NAMES[family], s.v_width, s.v_layers, s.t_width,
                        s.t_layers)]
            for title, items in (('shape mismatches', mismatched),
                                 ('missing tensors', missing),
                                 ('unexpected tensors', unexpected),
                                 ('tensors that are not floating point', not_float),
                                 ('q/k/v of different element types', mixed)):
                if items:
                    lines += listing(title, items)
            raise ClipError('\n'.join(lines))
        return collections.OrderedDict(
            (target, MappedTensor(shape, op, [tensors[n] for n in sources]))
            for target, (shape, op, sources, _) in plan.items())

    def iter_raw(self, t):
        if t.op == 'T':
            (src,) = t.sources
            raw = b''.join(self.source.iter_raw(src))
            rows, cols = src.shape
            yield transpose_raw(raw, ITEM_SIZES[src.dtype], rows, cols)
            return
        for src in t.sources:
            yield from self.source.iter_raw(src)

    def close(self):
        self.source.close()

    # -- what the model file records beyond the ImageBind keys --

    @property
    def special_tokens(self):
        # OpenCLIP's tokenizer spells its special tokens <start_of_text>/<end_of_text>;
        # transformers' CLIPTokenizer and OpenAI's use <|startoftext|>/<|endoftext|>. The open
        # Hugging Face CLIP files are mostly OpenCLIP models under transformers' names (LAION's
        # repositories ship both), and the three files of one model must give the same ids, so
        # both families default to OpenCLIP's rule (convert.py --special-tokens
        # openai chooses transformers').
        return 'openclip'

