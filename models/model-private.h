/* The inside of an ImageBindModel (internal to libimagebind): the weights of the six encoders,
 * their geometry, and a constructor with random weights for benchmarks at real sizes. */
#ifndef IB_MODEL_PRIVATE_H
#define IB_MODEL_PRIVATE_H

#include "imagebind.h"
#include "imagebind-tokenizer.h"
#include "gguf.h"

G_BEGIN_DECLS

/* Per-row sums of an I8 weight's values (the activation zero-point correction of q8.c),
 * computed on the weight's first product rather than at load, so that a model's unused
 * encoders are never read from the mapping. */
typedef struct {
  gsize once;                /* g_once_init_enter() guard */
  gint32 *sums;              /* rows */
} IbQ8Sums;

/* A matrix weight as stored: F32 is used in place, F16 is widened into a context's scratch
 * right before the product that needs it (no second full-precision copy of the model). I8
 * (q8 files) is used in place by the int8 kernels of q8.c, or widened like F16 on CPUs
 * without AVX-512 VNNI. Shape in PyTorch order, flattened to (rows, cols): rows = output
 * features. */
typedef struct {
  IbGgufTensorType type;
  const void *data;          /* float, guint16 (IEEE half) or gint8 */
  gsize rows, cols;
  const float *scale;        /* I8: one per row, value = data[r][c] * scale[r]; else NULL */
  IbQ8Sums *q8;              /* I8: shared by copies of this IbWeight; else NULL */
  const void *packed;        /* the kernels' packed copy, made at load (ib_weight_pack(): F32
                              * on AVX-512, I8 with VNNI), owned by the model; else NULL */
} IbWeight;

typedef struct {
  const float *norm1_w, *norm1_b;
  IbWeight in_proj_w;        /* (3D, D) */
  const float *in_proj_b;    /* 3D */
  const float *bias_k, *bias_v;  /* D, or NULL when the modality has none */
  IbWeight out_proj_w;       /* (D, D) */
  const float *out_proj_b;
  const float *norm2_w, *norm2_b;
  IbWeight fc1_w;            /* (4D, D) */
  const float *fc1_b;
  IbWeight fc2_w;            /* (D, 4D) */
  const float *fc2_b;
} IbBlock;

/* The MLP activation (imagebind.<m>.activation). */
typedef enum {
  IB_ACTIVATION_GELU,          /* exact: 0.5 x (1 + erf(x / sqrt 2)); ImageBind, most OpenCLIP */
  IB_ACTIVATION_QUICK_GELU,    /* x sigmoid(1.702 x); OpenAI-trained CLIP, "-quickgelu" models */
} IbActivation;

typedef struct {
  gboolean present;
  ImageBindModality modality;
  guint embed_dim, num_blocks, num_heads;
  guint num_tokens;          /* L: sequence length of the trunk (cls included) */
  guint num_patches;         /* P: tokens from the stem (text: context length) */

  /* Stem as a strided patch extraction over a (C, T, H, W) sample, kernel = (kt, kh, kw), then
   * a product with the (D, C*kt*kh*kw) weight. Patch vectors are ordered (c, t, h, w) and
   * tokens in row-major order of the output grid (t, h, w), as the official convolutions. */
  guint in_channels, in_frames, in_height, in_width;
  guint kernel[3], stride[3], grid[3];
  guint patch_dim;

  IbWeight stem_w;           /* (D, patch_dim); text: token embedding (vocab, D) */
  const float *stem_ln_w, *stem_ln_b;   /* NULL for vision and text */
  const float *cls;          /* D, NULL for text */
  const float *pos;          /* (L, D) */
  const float *ln_pre_w, *ln_pre_b;     /* vision only */
  IbBlock *blocks;
  const float *head_ln_w, *head_ln_b;
  IbWeight head_w;           /* (out_dim, D) */
  gboolean has_logit_scale;
  float logit_scale;         /* min(exp(p), 100); 1 when none */
  gboolean causal;           /* text */
  IbActivation activation;   /* of the blocks' MLPs */
  float ln_eps;              /* LayerNorm eps of ln_pre, the blocks and the head (ImageBind 1e-6, CLIP 1e-5) */
  guint vocab_size, context_length;     /* text */
} IbEncoder;

struct _ImageBindModel {
  gint ref_count;
  IbGguf *gguf;              /* the mapping the weights point into; NULL for random models */
  char *name;
  char *family;              /* imagebind.source_family: "imagebind", "openclip", "hf-clip" */
  ImageBindSpecialTokens special_tokens;   /* tokenizer.clip.special_tokens */
  guint out_dim;
  IbEncoder enc[IMAGEBIND_N_MODALITIES];
  ImageBindInputGeometry geometry;
  GPtrArray *owned;          /* memory the model allocated (widened small tensors, random weights) */
  GPtrArray *owned_aligned;  /* the same, from g_aligned_alloc() (packed weights) */
  gsize max_weight_elems;    /* largest IbWeight: bound of a context's F16 widening scratch */
  gboolean any_f16;
  gboolean any_q8;

  GOnce tokenizer_once;
  ImageBindTokenizer *tokenizer;
  char *tokenizer_error;     /* why there is none */
  int tokenizer_error_code;
};

/* ---- models with random weights (model-random.c: benchmarks at imagebind_huge sizes without
 * a file) ---- */

typedef struct {
  gboolean present;
  guint embed_dim, num_blocks, num_heads;
} IbModalityConfig;

typedef struct {
  IbModalityConfig modality[IMAGEBIND_N_MODALITIES];  /* indexed by ImageBindModality */
  guint out_dim;
  IbGgufTensorType weight_type;   /* F32, F16 or I8 (q8) for the matrix weights, as a converted
                                   * file; I8 quantises the same random F32 values per row */
  /* Vision: 0 = ImageBind's stem (kernel 2x14x14 over 2 frames of 224x224); P = a CLIP 2D
   * patch stem (kernel 1xPxP, one frame) over images of image_size (0: 224). */
  guint patch_size, image_size;
} IbModelConfig;

/* The official imagebind_huge sizes (spec §6), all six modalities, F32. */
IbModelConfig ib_model_config_huge (void);
/* OpenCLIP's published configs (vision and text towers, GELU): "ViT-B-32", "ViT-B-16",
 * "ViT-L-14", "ViT-H-14" (any letter case). FALSE for another name. */
gboolean ib_model_config_openclip (const char *name, IbModelConfig *config);
/* Builds a model in memory with deterministic pseudo-random weights (LayerNorm weights near 1,
 * small matrices), official input geometry, official logit scales; NULL if the config is
 * inconsistent (a width not divisible by its head count, zero sizes). */
ImageBindModel *ib_model_new_random (const IbModelConfig *config, guint64 seed);

/* Sizes, parameter count and GFLOP of modality @m of @config, without building weights
 * (imagebind_huge figures without 4.8 GB of memory). FALSE when absent or inconsistent. */
gboolean ib_model_config_encoder_info (const IbModelConfig *config, ImageBindModality m,
    ImageBindEncoderInfo *info);

/* Tests: at most @max_samples samples per pass through the trunk (0: by the memory budget,
 * 256 MB of MLP activations), to exercise batches split over several passes. */
void ib_context_set_max_chunk (ImageBindContext *ctx, gsize max_samples);

/* ---- where a forward's time goes (imagebind-bench --profile, models/PERFORMANCE.md) ---- */

typedef enum {
  IB_STAGE_STEM,          /* patches, stem product, stem LayerNorm, positions (text: lookup) */
  IB_STAGE_LAYER_NORM,    /* ln_pre, norm1, norm2 */
  IB_STAGE_QKV,           /* in_proj product (+ bias_k/v rows) */
  IB_STAGE_ATTENTION,     /* per sample and head: q k^T, softmax, p v */
  IB_STAGE_OUT_PROJ,      /* out_proj product + residual */
  IB_STAGE_FC1,           /* fc1 product + GELU (each thread on the part it computed) */
  IB_STAGE_FC2,           /* fc2 product + residual */
  IB_STAGE_HEAD,          /* pooling, head LayerNorm and product, normalisation */
  IB_N_STAGES
} IbStage;

typedef enum {
  IB_ATTN_QK,             /* the scores product */
  IB_ATTN_SOFTMAX,
  IB_ATTN_PV,             /* probabilities x values */
  IB_ATTN_FUSED,          /* all three in one pass (ib_attention_head_avx512()) */
  IB_N_ATTN_PARTS
} IbAttnPart;

/* Accumulated over every forward of the context while set: wall time of each stage on the
 * calling thread (threads that wait for each other inside a stage count in it), the stage's
 * product FLOP, and, inside IB_STAGE_ATTENTION, the time each part took summed over threads.
 * Costs two clock reads per stage (one per part and head in attention). */
typedef struct {
  double seconds[IB_N_STAGES];
  double flop[IB_N_STAGES];
  double attn_thread_seconds[IB_N_ATTN_PARTS];
  guint forwards;
} IbProfile;

/* Starts (@profile) or stops (NULL) profiling @ctx; @profile is not cleared. */
void ib_context_set_profile (ImageBindContext *ctx, IbProfile *profile);
double ib_profile_now (void);

/* ---- shared by model.c, model-random.c and encoder.c ---- */

/* A model with no encoder yet: one reference, ImageBind's defaults (family, LayerNorm eps,
 * GELU, no logit scale). */
ImageBindModel *ib_model_alloc (void);
/* Packed copies of the weights of the linear layers, for this CPU's products (ib_weight_pack());
 * called once the encoders are loaded. */
void ib_model_pack_weights (ImageBindModel *model);
/* Stem output grid of a strided patch extraction over a (C, T, H, W) sample with kernel @k and
 * stride @s; FALSE when the kernel does not fit. */
gboolean ib_encoder_stem_geometry (IbEncoder *enc, guint C, guint T, guint H, guint W,
    const guint k[3], const guint s[3]);
/* The logit scale from its log as stored: min(exp(p), 100). */
void ib_encoder_set_logit_scale (IbEncoder *enc, float log_scale);

/* n_params and gflops of one encoder (spec §6 formulas, from the encoder's sizes). */
void ib_encoder_compute_info (const ImageBindModel *model, const IbEncoder *enc, ImageBindEncoderInfo *info);

G_END_DECLS

#endif
