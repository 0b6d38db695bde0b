/* GstImageBindEncoder: the base class of the ImageBind encoder elements.
 *
 * A pass-through GstBaseTransform (media untouched, no copies) that attaches a
 * #GstImageBindEmbeddingMeta to buffers. It owns what all encoders share: the model (loaded on
 * NULL->READY from a process-wide cache), the properties (model, n-threads, interval,
 * inference-interval, sync, stats-interval, custom-meta), the inference worker thread of live
 * mode, the interval bookkeeping, the statistics, flushing, EOS draining and latency reporting.
 *
 * A subclass sets `modality` and pad templates in class_init and provides:
 *  - frame modalities (vision, depth, thermal): copy_input(), which copies on the streaming
 *    thread what prepare() needs of a buffer the base class has chosen to embed;
 *  - windowed modalities (audio, IMU): collect(), which accumulates every buffer's samples and
 *    hands each completed window to gst_image_bind_encoder_submit_input() (a DISCONT flag or
 *    a timestamp that does not continue the samples starts a new window: collect()'s call,
 *    since in reverse playback DISCONT buffers may continue the window); drain() at EOS;
 *    reset() on flushes, GAP events and stops;
 *  - prepare(): input copy -> model tensor. It runs on the worker thread (live mode) or the
 *    streaming thread (sync mode), never on both at once, and must use only its input and
 *    gst_image_bind_encoder_get_model().
 * A frame modality whose input gives several embeddings (imagebindvision: the whole frame
 * and/or its regions of interest) provides n_tensors() and prepare_nth() instead of prepare():
 * all embeddings of one input are one job, so live mode drops whole frames, never single
 * regions, and they are attached together, each meta naming its region. has_input() lets
 * such a subclass pass a due buffer that has nothing to embed (no regions of interest).
 * The text modality (imagebindtext) is a windowed modality of one buffer per window: its
 * collect() tokenises each buffer (cheap) and submits the token ids (context_length gint32 as
 * imagebind_tokenize() writes them, freed with g_free), which the base class embeds with
 * imagebind_embed_text(); prepare() is not used. A text encoder's model must hold a tokenizer.
 */
#ifndef __GST_IMAGE_BIND_ENCODER_H__
#define __GST_IMAGE_BIND_ENCODER_H__

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>
#include <imagebind.h>
#include "gstimagebindmodality.h"
#include "gstimagebindmeta.h"
#include "gstimagebindprelude.h"

G_BEGIN_DECLS

/**
 * GstImageBindEncoderSync:
 * @GST_IMAGE_BIND_ENCODER_SYNC_FALSE: inference on a worker thread that never blocks the
 *     stream: due inputs that arrive while it is busy pass without an embedding
 * @GST_IMAGE_BIND_ENCODER_SYNC_TRUE: every due input is embedded on the streaming thread
 *     (reproducible; the inference time is added to the latency)
 * @GST_IMAGE_BIND_ENCODER_SYNC_AUTO: TRUE when upstream is not live (files: every frame,
 *     the same results on every run), FALSE when it is (cameras, microphones: never a stall)
 *
 * How an encoder schedules inference (its `sync` property). The nicks are "false", "true" and
 * "auto", so `sync=true` and `sync=false` read as they did when the property was a boolean.
 *
 * Since: 0.1
 */
typedef enum {
  GST_IMAGE_BIND_ENCODER_SYNC_FALSE = 0,
  GST_IMAGE_BIND_ENCODER_SYNC_TRUE = 1,
  GST_IMAGE_BIND_ENCODER_SYNC_AUTO = 2,
} GstImageBindEncoderSync;

#define GST_TYPE_IMAGE_BIND_ENCODER_SYNC (gst_image_bind_encoder_sync_get_type ())
GST_IMAGE_BIND_API
GType gst_image_bind_encoder_sync_get_type (void);

#define GST_TYPE_IMAGE_BIND_ENCODER (gst_image_bind_encoder_get_type ())
GST_IMAGE_BIND_API
G_DECLARE_DERIVABLE_TYPE (GstImageBindEncoder, gst_image_bind_encoder, GST, IMAGE_BIND_ENCODER,
    GstBaseTransform)

/**
 * GstImageBindEncoderClass:
 * @modality: the modality the subclass embeds
 * @copy_input: (frame modalities) streaming thread: a copy of what prepare() needs of @buffer
 *     (never a reference on @buffer itself: buffer pools of live sources are small), freed
 *     with *@free_func
 * @collect: (windowed modalities) streaming thread: accumulate @buffer and submit every
 *     window it completes with gst_image_bind_encoder_submit_input()
 * @drain: (windowed modalities) at EOS: submit the partial window, if any
 * @reset: forget accumulated samples (flush, GAP event, stop)
 * @prepare: input copy -> newly allocated float tensor (g_free) laid out as imagebind_embed()
 *     takes it, with its shape (not used by the text modality, whose inputs are token ids)
 * @has_input: (optional, frame modalities) streaming thread, for a due buffer: FALSE when it
 *     has nothing to embed; it then passes as a buffer that was not due
 * @n_tensors: (optional, with @prepare_nth) the number of embeddings @input gives
 * @prepare_nth: (optional) as @prepare, for the @n-th embedding of @input; *@region is set to
 *     the region of interest it describes (owned by @input), or NULL for the whole frame
 *
 * Since: 0.1
 */
struct _GstImageBindEncoderClass {
  GstBaseTransformClass parent_class;

  GstImageBindModality modality;

  gpointer (*copy_input) (GstImageBindEncoder * self, GstBuffer * buffer,
      GDestroyNotify * free_func);

  GstFlowReturn (*collect) (GstImageBindEncoder * self, GstBuffer * buffer);
  void (*drain) (GstImageBindEncoder * self);
  void (*reset) (GstImageBindEncoder * self);

  gboolean (*prepare) (GstImageBindEncoder * self, gpointer input, gfloat ** tensor,
      gint64 * shape, guint * n_dims, GError ** error);

  gboolean (*has_input) (GstImageBindEncoder * self, GstBuffer * buffer);
  guint (*n_tensors) (GstImageBindEncoder * self, gpointer input);
  gboolean (*prepare_nth) (GstImageBindEncoder * self, gpointer input, guint n,
      gfloat ** tensor, gint64 * shape, guint * n_dims, const GstImageBindRegion ** region,
      GError ** error);

  gpointer _gst_reserved[GST_PADDING];
};

/* The loaded model (between READY and NULL), or NULL. No reference is transferred. */
GST_IMAGE_BIND_API
ImageBindModel *gst_image_bind_encoder_get_model (GstImageBindEncoder * self);

/* Windowed modalities, from collect() or drain(): offers the window starting at @pts (buffer
 * time) lasting @duration. The base class decides (interval, worker busy) and takes ownership
 * of @input in every case: it embeds it, or frees it with @free_func. */
GST_IMAGE_BIND_API
void gst_image_bind_encoder_submit_input (GstImageBindEncoder * self, gpointer input,
    GDestroyNotify free_func, GstClockTime pts, GstClockTime duration);

/* Subclasses embedding regions of interest, streaming thread: @n regions of a frame were not
 * embedded (over the subclass's cap, or empty once clamped to the frame); reported as
 * `regions-skipped` in the stats messages. */
GST_IMAGE_BIND_API
void gst_image_bind_encoder_count_skipped_regions (GstImageBindEncoder * self, guint n);

G_END_DECLS

#endif
