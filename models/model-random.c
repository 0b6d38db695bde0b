/* Models with deterministic pseudo-random weights, built in memory at the official sizes
 * (imagebind_huge, OpenCLIP's presets) or any consistent config: imagebind-bench measures the
 * encoders at real sizes without a 4.8 GB file, and the tests run the forward on them. Not
 * part of the public API (model-private.h). */
#include "model-private.h"
#include "imagebind-frontend.h"
#include "ops.h"
#include "q8.h"

#include <math.h>
#include <string.h>

IbModelConfig
ib_model_config_huge (void)
{
  IbModelConfig c;
  static const guint sizes[IMAGEBIND_N_MODALITIES][3] = {
    { 1280, 32, 16 }, { 1024, 24, 16 }, { 768, 12, 12 },
    { 384, 12, 8 }, { 768, 12, 12 }, { 512, 6, 8 },
  };
  memset (&c, 0, sizeof c);
  for (guint m = 0; m < IMAGEBIND_N_MODALITIES; m++) {
    c.modality[m].present = TRUE;
    c.modality[m].embed_dim = sizes[m][0];
    c.modality[m].num_blocks = sizes[m][1];
    c.modality[m].num_heads = sizes[m][2];
  }
  c.out_dim = 1024;
  c.weight_type = IB_GGUF_TENSOR_F32;
  return c;
}

gboolean
ib_model_config_openclip (const char *name, IbModelConfig *config)
{
  /* open_clip/model_configs/<name>.json: embed_dim; vision width, layers, patch, head width;
   * text width, heads, layers. Image size 224 and context 77 in all four. */
  static const struct {
    const char *name;
    guint embed, v_width, v_layers, patch, head_width, t_width, t_heads, t_layers;
  } presets[] = {
    { "ViT-B-32", 512, 768, 12, 32, 64, 512, 8, 12 },
    { "ViT-B-16", 512, 768, 12, 16, 64, 512, 8, 12 },
    { "ViT-L-14", 768, 1024, 24, 14, 64, 768, 12, 12 },
    { "ViT-H-14", 1024, 1280, 32, 14, 80, 1024, 16, 24 },
  };

  g_return_val_if_fail (name != NULL && config != NULL, FALSE);
  for (guint i = 0; i < G_N_ELEMENTS (presets); i++) {
    if (g_ascii_strcasecmp (name, presets[i].name) != 0)
      continue;
    memset (config, 0, sizeof *config);
    config->modality[IMAGEBIND_MODALITY_VISION] = (IbModalityConfig) { TRUE,
      presets[i].v_width, presets[i].v_layers, presets[i].v_width / presets[i].head_width };
    config->modality[IMAGEBIND_MODALITY_TEXT] = (IbModalityConfig) { TRUE,
      presets[i].t_width, presets[i].t_layers, presets[i].t_heads };
    config->out_dim = presets[i].embed;
    config->weight_type = IB_GGUF_TENSOR_F32;
    config->patch_size = presets[i].patch;
    config->image_size = 224;
    return TRUE;
  }
  return FALSE;
}

typedef struct {
  guint64 state;
} Rng;

/* splitmix64: deterministic, fast, good enough for benchmark weights. */
static inline guint64
rng_next (Rng *r)
{
  guint64 z = (r->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static inline float
rng_uniform (Rng *r)
{
  return (float) ((rng_next (r) >> 40) * 0x1p-23 - 1.0);
}

static const float *
random_vector (ImageBindModel *model, Rng *r, gsize n, float base, float spread)
{
  float *v = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    v[i] = base + spread * rng_uniform (r);
  g_ptr_array_add (model->owned, v);
  return v;
}

static void
random_weight (ImageBindModel *model, Rng *r, IbGgufTensorType type, gsize rows, gsize cols, IbWeight *w)
{
  gsize n = rows * cols;
  float a = 1.0f / sqrtf ((float) cols);   /* keeps activations of order 1 through the layers */
  memset (w, 0, sizeof *w);
  w->type = type;
  w->rows = rows;
  w->cols = cols;
  if (type == IB_GGUF_TENSOR_I8) {
    /* The F32 weights of the same seed, quantised row by row as convert.py --dtype q8 does. */
    gint8 *q = g_new (gint8, n);
    float *scale = g_new (float, rows), *row = g_new (float, cols);
    for (gsize i = 0; i < rows; i++) {
      for (gsize k = 0; k < cols; k++)
        row[k] = a * rng_uniform (r);
      ib_q8_quantize_weight (row, 1, cols, q + i * cols, scale + i);
    }
    g_free (row);
    w->data = q;
    w->scale = scale;
    w->q8 = g_malloc0 (sizeof (IbQ8Sums) + rows * sizeof (gint32));
    w->q8->sums = (gint32 *) (w->q8 + 1);
    g_ptr_array_add (model->owned, q);
    g_ptr_array_add (model->owned, scale);
    g_ptr_array_add (model->owned, w->q8);
    model->any_q8 = TRUE;
  } else if (type == IB_GGUF_TENSOR_F16) {
    guint16 *h = g_new (guint16, n);
    for (gsize i = 0; i < n; i++)
      h[i] = ib_f32_to_f16 (a * rng_uniform (r));
    w->data = h;
    g_ptr_array_add (model->owned, h);
    model->any_f16 = TRUE;
  } else {
    float *f = g_new (float, n);
    for (gsize i = 0; i < n; i++)
      f[i] = a * rng_uniform (r);
    w->data = f;
    g_ptr_array_add (model->owned, f);
  }
  model->max_weight_elems = MAX (model->max_weight_elems, n);
}

/* The official input geometry of modality @m (spec §2): stem grid, token counts. */
static void
official_geometry (IbEncoder *enc, ImageBindModality m)
{
  enc->modality = m;
  switch (m) {
    case IMAGEBIND_MODALITY_VISION: {
      guint k[3] = { 2, 14, 14 };
      ib_encoder_stem_geometry (enc, 3, 2, 224, 224, k, k);
      break;
    }
    case IMAGEBIND_MODALITY_TEXT:
      enc->vocab_size = 49408;
      enc->context_length = 77;
      enc->num_patches = 77;
      enc->causal = TRUE;
      break;
    case IMAGEBIND_MODALITY_AUDIO: {
      guint k[3] = { 1, 16, 16 }, s[3] = { 1, 10, 10 };
      ib_encoder_stem_geometry (enc, 1, 1, 128, 204, k, s);
      break;
    }
    case IMAGEBIND_MODALITY_DEPTH:
    case IMAGEBIND_MODALITY_THERMAL: {
      guint k[3] = { 1, 16, 16 };
      ib_encoder_stem_geometry (enc, 1, 1, 224, 224, k, k);
      break;
    }
    case IMAGEBIND_MODALITY_IMU: {
      guint k[3] = { 1, 1, 8 };
      ib_encoder_stem_geometry (enc, 6, 1, 1, 2000, k, k);
      break;
    }
    default:
      g_assert_not_reached ();
  }
  enc->num_tokens = m == IMAGEBIND_MODALITY_TEXT ? 77 : enc->num_patches + 1;
}

/* official_geometry, with a CLIP 2D patch stem for vision when the config asks for one. */
static void
config_geometry (IbEncoder *enc, const IbModelConfig *config, ImageBindModality m)
{
  official_geometry (enc, m);
  if (m == IMAGEBIND_MODALITY_VISION && config->patch_size) {
    guint size = config->image_size ? config->image_size : 224;
    guint k[3] = { 1, config->patch_size, config->patch_size };
    ib_encoder_stem_geometry (enc, 3, 1, size, size, k, k);
    enc->num_tokens = enc->num_patches + 1;
  }
}

static gboolean
config_valid (const IbModelConfig *config)
{
  if (config->out_dim == 0 || config->out_dim > 65536 ||
      (config->weight_type != IB_GGUF_TENSOR_F32 && config->weight_type != IB_GGUF_TENSOR_F16 &&
          config->weight_type != IB_GGUF_TENSOR_I8))
    return FALSE;
  for (guint m = 0; m < IMAGEBIND_N_MODALITIES; m++) {
    const IbModalityConfig *mc = &config->modality[m];
    if (mc->present && (mc->embed_dim == 0 || mc->num_blocks == 0 || mc->num_heads == 0 ||
            mc->embed_dim % mc->num_heads != 0 || mc->embed_dim > 65536))
      return FALSE;
  }
  /* a patch stem must tile an image of at most 4096 pixels a side */
  if (config->image_size > 4096 || config->patch_size > 4096 ||
      (config->patch_size && config->patch_size > (config->image_size ? config->image_size : 224)))
    return FALSE;
  return TRUE;
}

gboolean
ib_model_config_encoder_info (const IbModelConfig *config, ImageBindModality m,
    ImageBindEncoderInfo *info)
{
  g_return_val_if_fail (config != NULL && info != NULL, FALSE);
  memset (info, 0, sizeof *info);
  if ((guint) m >= IMAGEBIND_N_MODALITIES || !config_valid (config) || !config->modality[m].present)
    return FALSE;
  ImageBindModel model = { .out_dim = config->out_dim };
  IbEncoder enc = { 0 };
  config_geometry (&enc, config, m);
  enc.embed_dim = config->modality[m].embed_dim;
  enc.num_blocks = config->modality[m].num_blocks;
  enc.num_heads = config->modality[m].num_heads;
  /* Only the presence of these matters to the count. */
  static const float dummy = 0;
  if (m != IMAGEBIND_MODALITY_VISION && m != IMAGEBIND_MODALITY_TEXT)
    enc.stem_ln_w = &dummy;
  if (m == IMAGEBIND_MODALITY_VISION)
    enc.ln_pre_w = &dummy;
  ib_encoder_compute_info (&model, &enc, info);
  return TRUE;
}

ImageBindModel *
ib_model_new_random (const IbModelConfig *config, guint64 seed)
{
  static const float official_log_scales[IMAGEBIND_N_MODALITIES] = {
    0.0f, 2.6592600f /* ln(1/0.07) */, 2.9957323f /* ln 20 */, 1.6094379f /* ln 5 */,
    2.3025851f /* ln 10 */, 1.6094379f /* ln 5 */,
  };
  g_return_val_if_fail (config != NULL, NULL);
  if (!config_valid (config))
    return NULL;

  ImageBindModel *model = ib_model_alloc ();
  Rng rng = { seed };
  model->name = g_strdup ("random");
  model->out_dim = config->out_dim;
  model->geometry = (ImageBindInputGeometry) {
    .image_size = 224, .video_frames = 2, .context_length = 77, .audio_num_mel_bins = 128,
    .audio_target_len = 204, .audio_sample_rate = 16000, .audio_clip_duration = 2.0f,
    .audio_clips = 3, .audio_fbank_mean = -4.268f, .audio_fbank_std = 9.138f,
    .imu_num_samples = 2000,
  };
  ImageBindImageParams clip = imagebind_image_default_params ();
  memcpy (model->geometry.image_mean, clip.mean, sizeof clip.mean);
  memcpy (model->geometry.image_std, clip.std, sizeof clip.std);

  if (config->patch_size) {
    model->geometry.image_size = config->image_size ? config->image_size : 224;
    model->geometry.video_frames = 1;
  }

  for (guint m = 0; m < IMAGEBIND_N_MODALITIES; m++) {
    const IbModalityConfig *mc = &config->modality[m];
    IbEncoder *enc = &model->enc[m];
    if (!mc->present)
      continue;
    guint D = mc->embed_dim;
    enc->present = TRUE;
    enc->embed_dim = D;
    enc->num_blocks = mc->num_blocks;
    enc->num_heads = mc->num_heads;
    gboolean bias_kv = m != IMAGEBIND_MODALITY_VISION && m != IMAGEBIND_MODALITY_TEXT;
    config_geometry (enc, config, m);
    if (m == IMAGEBIND_MODALITY_TEXT)
      random_weight (model, &rng, config->weight_type, enc->vocab_size, D, &enc->stem_w);
    else
      random_weight (model, &rng, config->weight_type, D, enc->patch_dim, &enc->stem_w);
    if (bias_kv) {
      enc->stem_ln_w = random_vector (model, &rng, D, 1.0f, 0.1f);
      enc->stem_ln_b = random_vector (model, &rng, D, 0.0f, 0.1f);
    }
    if (m != IMAGEBIND_MODALITY_TEXT)
      enc->cls = random_vector (model, &rng, D, 0.0f, 0.02f);
    enc->pos = random_vector (model, &rng, (gsize) enc->num_tokens * D, 0.0f, 0.02f);
    if (m == IMAGEBIND_MODALITY_VISION) {
      enc->ln_pre_w = random_vector (model, &rng, D, 1.0f, 0.1f);
      enc->ln_pre_b = random_vector (model, &rng, D, 0.0f, 0.1f);
    }
    enc->blocks = g_new0 (IbBlock, enc->num_blocks);
    g_ptr_array_add (model->owned, enc->blocks);
    for (guint i = 0; i < enc->num_blocks; i++) {
      IbBlock *b = &enc->blocks[i];
      b->norm1_w = random_vector (model, &rng, D, 1.0f, 0.1f);
      b->norm1_b = random_vector (model, &rng, D, 0.0f, 0.1f);
      random_weight (model, &rng, config->weight_type, 3 * D, D, &b->in_proj_w);
      b->in_proj_b = random_vector (model, &rng, 3 * D, 0.0f, 0.02f);
      if (bias_kv) {
        b->bias_k = random_vector (model, &rng, D, 0.0f, 0.02f);
        b->bias_v = random_vector (model, &rng, D, 0.0f, 0.02f);
      }
      random_weight (model, &rng, config->weight_type, D, D, &b->out_proj_w);
      b->out_proj_b = random_vector (model, &rng, D, 0.0f, 0.02f);
      b->norm2_w = random_vector (model, &rng, D, 1.0f, 0.1f);
      b->norm2_b = random_vector (model, &rng, D, 0.0f, 0.1f);
      random_weight (model, &rng, config->weight_type, 4 * D, D, &b->fc1_w);
      b->fc1_b = random_vector (model, &rng, 4 * D, 0.0f, 0.02f);
      random_weight (model, &rng, config->weight_type, D, 4 * D, &b->fc2_w);
      b->fc2_b = random_vector (model, &rng, D, 0.0f, 0.02f);
    }
    enc->head_ln_w = random_vector (model, &rng, D, 1.0f, 0.1f);
    enc->head_ln_b = random_vector (model, &rng, D, 0.0f, 0.1f);
    random_weight (model, &rng, config->weight_type, config->out_dim, D, &enc->head_w);
    enc->logit_scale = 1.0f;
    if (m != IMAGEBIND_MODALITY_VISION)
      ib_encoder_set_logit_scale (enc, official_log_scales[m]);
  }
  ib_model_pack_weights (model);
  return model;
}
