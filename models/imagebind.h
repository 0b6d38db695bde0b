/* libimagebind: ImageBind (Girdhar et al., CVPR 2023) embeddings in C.
 *
 * One model file (GGUF, see models/GGUF.md) holds the six encoders; each turns a tensor, laid
 * out as the official PyTorch forward takes it, into a vector of the shared embedding space,
 * exactly as the official model does (L2-normalised, times the modality's logit scale,
 * averaged over clips).
 *
 * Usage:
 *
 *   GError *err = NULL;
 *   ImageBindModel *model = imagebind_model_load ("model.gguf", &err);   // read-only, shared
 *   if (!model) { g_printerr ("%s\n", err->message); ... }
 *   ImageBindContextParams params = imagebind_context_default_params ();
 *   params.n_threads = 2;
 *   ImageBindContext *ctx = imagebind_context_new (model, &params);     // one per thread
 *   gint64 shape[4] = { 1, 3, 224, 224 };
 *   float *emb = g_new (float, imagebind_model_out_dim (model));
 *   if (!imagebind_embed (ctx, IMAGEBIND_MODALITY_VISION, pixels, shape, 4, emb, &err)) ...
 *   imagebind_context_free (ctx);
 *   imagebind_model_unref (model);
 *
 * Threads: a model is immutable after loading and may be used by any number of contexts in any
 * number of threads at once. A context holds the scratch memory of one call at a time: use one
 * context per thread.
 */
#ifndef IMAGEBIND_H
#define IMAGEBIND_H

#include <glib.h>
#include <stdint.h>

#include "imagebind-prelude.h"

G_BEGIN_DECLS

typedef enum {
  IMAGEBIND_MODALITY_VISION = 0,
  IMAGEBIND_MODALITY_TEXT,
  IMAGEBIND_MODALITY_AUDIO,
  IMAGEBIND_MODALITY_DEPTH,
  IMAGEBIND_MODALITY_THERMAL,
  IMAGEBIND_MODALITY_IMU,
  IMAGEBIND_N_MODALITIES
} ImageBindModality;

#define IMAGEBIND_ERROR (imagebind_error_quark ())
IMAGEBIND_API
GQuark imagebind_error_quark (void);

typedef enum {
  IMAGEBIND_ERROR_FILE,         /* cannot open / read / map the file */
  IMAGEBIND_ERROR_FORMAT,       /* not a valid GGUF file, or corrupt */
  IMAGEBIND_ERROR_MODEL,        /* valid GGUF, but not a consistent ImageBind model */
  IMAGEBIND_ERROR_NO_MODALITY,  /* the model does not contain the requested modality */
  IMAGEBIND_ERROR_INPUT,        /* input tensor of the wrong shape, or unusable values */
  IMAGEBIND_ERROR_NO_TOKENIZER, /* the model file has no BPE vocabulary */
  IMAGEBIND_ERROR_NUMERIC,      /* the model produced a NaN or infinite embedding */
} ImageBindError;

/* "vision", "text", "audio", "depth", "thermal", "imu" */
IMAGEBIND_API
const char *imagebind_modality_name (ImageBindModality modality);
IMAGEBIND_API
gboolean imagebind_modality_from_name (const char *name, ImageBindModality *modality);

/* ---- model: weights and hyper-parameters, read-only, reference counted ---- */

typedef struct _ImageBindModel ImageBindModel;

/* Maps the file read-only (F32 weights are used in place). NULL and @error on failure. */
IMAGEBIND_API
ImageBindModel *imagebind_model_load (const char *path, GError **error);
IMAGEBIND_API
ImageBindModel *imagebind_model_ref (ImageBindModel *model);
IMAGEBIND_API
void imagebind_model_unref (ImageBindModel *model);

/* Where imagebind_model_find() took a model path from. */
typedef enum {
  IMAGEBIND_MODEL_ORIGIN_GIVEN,         /* the caller's setting: a `model` property, --model */
  IMAGEBIND_MODEL_ORIGIN_ENVIRONMENT,   /* $IMAGEBIND_MODEL */
  IMAGEBIND_MODEL_ORIGIN_INSTALLED,     /* the shipped default model, installed */
  IMAGEBIND_MODEL_ORIGIN_SOURCE_TREE,   /* the shipped default model of an uninstalled build */
} ImageBindModelOrigin;

/* The model file to load, by the rules the elements and the tools share: @given when set
 * (non-empty), else $IMAGEBIND_MODEL when set, else the shipped default model, installed or
 * else in the source tree the library was built from, whichever is a regular file. A given or
 * $IMAGEBIND_MODEL path is returned unchecked: loading it reports what is wrong, and @origin
 * (optional) lets the message say where it came from. A newly allocated path (g_free), or
 * NULL and G_FILE_ERROR_NOENT ("neither <installed> nor <source tree> exists") when nothing is
 * set and no default model exists. */
IMAGEBIND_API
char *imagebind_model_find (const char *given, ImageBindModelOrigin *origin, GError **error);
/* How messages name @origin: "from $IMAGEBIND_MODEL", "the shipped default model", or NULL
 * for IMAGEBIND_MODEL_ORIGIN_GIVEN (the caller knows its own setting). */
IMAGEBIND_API
const char *imagebind_model_origin_describe (ImageBindModelOrigin origin);

/* Width of the shared embedding space. */
IMAGEBIND_API
guint imagebind_model_out_dim (const ImageBindModel *model);
IMAGEBIND_API
gboolean imagebind_model_has_modality (const ImageBindModel *model, ImageBindModality modality);
/* The scale the postprocessor multiplies by: min(exp(log_logit_scale), 100); 1.0 for vision
 * (which has none) and for absent modalities. */
IMAGEBIND_API
float imagebind_model_logit_scale (const ImageBindModel *model, ImageBindModality modality);
/* general.name, or "" */
IMAGEBIND_API
const char *imagebind_model_name (const ImageBindModel *model);
/* Where the weights come from (imagebind.source_family): "imagebind" (the default), "openclip"
 * or "hf-clip". CLIP-family files hold only the vision and text towers. */
IMAGEBIND_API
const char *imagebind_model_family (const ImageBindModel *model);

/* TRUE when @model has @modality; else FALSE and IMAGEBIND_ERROR_NO_MODALITY with a message
 * naming the file (@path), what the model holds and what @user (an element or tool name)
 * needs, e.g. "model vit.gguf (openclip) has only vision and text towers; imagebindaudio needs
 * an audio tower". */
IMAGEBIND_API
gboolean imagebind_model_require_modality (const ImageBindModel *model, ImageBindModality modality,
    const char *path, const char *user, GError **error);

typedef struct {
  guint embed_dim;
  guint num_blocks;
  guint num_heads;
  guint num_tokens;        /* sequence length L the trunk sees (cls included) */
  guint64 n_params;        /* parameters of this modality's encoder */
  double gflops;           /* GFLOP of one forward of one sample (one clip) */
} ImageBindEncoderInfo;

IMAGEBIND_API
gboolean imagebind_model_encoder_info (const ImageBindModel *model, ImageBindModality modality,
    ImageBindEncoderInfo *info);

/* Input geometry and pre-processing constants the model was built for (the GGUF keys). */
typedef struct {
  guint image_size;          /* 224 */
  guint video_frames;        /* 2 */
  guint context_length;      /* 77 */
  guint audio_num_mel_bins;  /* 128 */
  guint audio_target_len;    /* 204 */
  guint audio_sample_rate;   /* 16000 */
  float audio_clip_duration; /* 2.0 s */
  guint audio_clips;         /* 3 */
  float audio_fbank_mean;    /* -4.268 */
  float audio_fbank_std;     /* 9.138 */
  guint imu_num_samples;     /* 2000 */
  float image_mean[3];       /* per RGB channel, of x / 255: OpenAI CLIP's 0.48145466, 0.4578275, 0.40821073 */
  float image_std[3];        /* 0.26862954, 0.26130258, 0.27577711 */
} ImageBindInputGeometry;

IMAGEBIND_API
void imagebind_model_input_geometry (const ImageBindModel *model, ImageBindInputGeometry *geometry);

/* ---- context: per-caller scratch memory and settings ---- */

typedef struct _ImageBindContext ImageBindContext;

typedef struct {
  int n_threads;             /* threads for this context's calls; 0 = all cores */
} ImageBindContextParams;

IMAGEBIND_API
ImageBindContextParams imagebind_context_default_params (void);

/* Holds a reference on @model. */
IMAGEBIND_API
ImageBindContext *imagebind_context_new (ImageBindModel *model, const ImageBindContextParams *params);
IMAGEBIND_API
void imagebind_context_free (ImageBindContext *ctx);

/* Embeds a batch given as the official forward takes it (float32, C order):
 *   vision   (B,3,224,224) images, or (B,S,3,T,224,224) clips
 *            (T = 1 frames are repeated to the model's 2, as the official stem does; a
 *            CLIP-family model (2D patch stem, video_frames 1) takes T = 1 only; sizes are the
 *            model's image_size)
 *   audio    (B,S,1,128,204) or (B,1,128,204)
 *   depth    (B,1,224,224) or (B,S,1,224,224)
 *   thermal  (B,1,224,224) or (B,S,1,224,224)
 *   imu      (B,6,2000)
 * With 5 or more dimensions the first two are (batch, clips) and the output is the mean over
 * clips of the post-processed embeddings, as in the official forward.
 * @out receives B x out_dim floats. Text goes through imagebind_embed_text().
 * Errors (IMAGEBIND_ERROR_INPUT, message naming expected and actual): a shape other than the
 * above, and any value that is not finite (NaN or infinity: refused rather than propagated,
 * since one would turn the whole embedding into NaN); IMAGEBIND_ERROR_NO_MODALITY when the
 * model lacks the modality; IMAGEBIND_ERROR_NUMERIC when an output is not finite (NaN or
 * infinite weights in the file, or an overflow inside the encoder): never a NaN embedding. */
IMAGEBIND_API
gboolean imagebind_embed (ImageBindContext *ctx, ImageBindModality modality,
    const float *data, const gint64 *shape, guint n_dims, float *out, GError **error);

/* Embeds @batch token sequences of context_length ids each (int32, as the tokenizer gives).
 * The head pools at the first occurrence of the largest id (the first <|endoftext|>).
 * Ids outside [0, vocab_size) give IMAGEBIND_ERROR_INPUT, a non-finite output
 * IMAGEBIND_ERROR_NUMERIC. */
IMAGEBIND_API
gboolean imagebind_embed_text (ImageBindContext *ctx, const gint32 *ids, guint batch,
    float *out, GError **error);

/* Optional: called with each intermediate tensor of the next calls (stage names as the
 * conformance fixtures: "after_stem", "after_preprocessor", "after_ln_pre", "after_block0",
 * "after_trunk", "after_head", "after_postprocessor"; and "after_pool", the pooled token
 * after the head's LayerNorm, before the projection: OpenCLIP's ln_post / ln_final output at
 * the class / end-of-text token); data is (n, rows, cols), valid only
 * during the call. A large batch goes through the encoder in several passes (bounded scratch
 * memory); each pass reports its own samples, in order. For tests and debugging; NULL to
 * switch off. */
typedef void (*ImageBindTraceFunc) (const char *stage, const float *data, guint n, guint rows,
    guint cols, gpointer user_data);
IMAGEBIND_API
void imagebind_context_set_trace (ImageBindContext *ctx, ImageBindTraceFunc func, gpointer user_data);

/* Where log lines go (default: g_log with domain "imagebind" at debug level). */
typedef void (*ImageBindLogFunc) (GLogLevelFlags level, const char *message, gpointer user_data);
IMAGEBIND_API
void imagebind_set_log_func (ImageBindLogFunc func, gpointer user_data);

/* Which BLAS kernels this process got, e.g. "OpenBLAS 0.3.21 SkylakeX (forced: CPU has
 * AVX-512)". Initialises the BLAS backend if needed. */
IMAGEBIND_API
const char *imagebind_blas_info (void);

G_END_DECLS

#endif /* IMAGEBIND_H */
