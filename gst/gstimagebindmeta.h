/* GstImageBindEmbeddingMeta: an ImageBind embedding riding on a buffer.
 *
 * Reading it in C:
 *
 *   gpointer state = NULL;
 *   GstImageBindEmbeddingMeta *meta;
 *   while ((meta = gst_buffer_iterate_imagebind_embedding_meta (buf, &state))) {
 *     guint dim;
 *     const gfloat *v = gst_image_bind_embedding_meta_get_vector (meta, &dim);
 *     ... meta->modality, meta->logit_scale, meta->pts, meta->duration ...
 *     if (meta->has_region)   // a region of interest of the frame, not the whole frame
 *       ... meta->region.id, g_quark_to_string (meta->region.roi_type), meta->region.x ...
 *   }
 *
 * From Python (or any language without this library's introspection data) set the encoder's
 * `custom-meta` property to TRUE: each embedding is then also attached as a GstCustomMeta named
 * "GstImageBindEmbeddingCustomMeta" whose structure is gst_image_bind_embedding_meta_to_structure():
 *
 *   meta = buf.get_custom_meta("GstImageBindEmbeddingCustomMeta")   # in a pad probe
 *   if meta:
 *       s = meta.get_structure()
 *       vector = array.array("f", s.get_value("vector-f32").get_data())
 *       modality, pts = s.get_string("modality"), s.get_value("pts")
 *
 * (with gst-python installed, s.get_value("vector") gives a Gst.ValueArray of the same floats).
 */
#ifndef __GST_IMAGE_BIND_META_H__
#define __GST_IMAGE_BIND_META_H__

#include <gst/gst.h>
#include "gstimagebindmodality.h"
#include "gstimagebindprelude.h"

G_BEGIN_DECLS

#define GST_IMAGE_BIND_EMBEDDING_META_API_TYPE (gst_image_bind_embedding_meta_api_get_type ())
#define GST_IMAGE_BIND_EMBEDDING_META_INFO (gst_image_bind_embedding_meta_get_info ())

/**
 * GST_IMAGE_BIND_EMBEDDING_CUSTOM_META_NAME:
 *
 * Name of the GstCustomMeta structure mirror of #GstImageBindEmbeddingMeta (attached when an
 * encoder's `custom-meta` property is TRUE, registered by
 * gst_image_bind_embedding_custom_meta_register()).
 *
 * Since: 0.1
 */
#define GST_IMAGE_BIND_EMBEDDING_CUSTOM_META_NAME "GstImageBindEmbeddingCustomMeta"

typedef struct _GstImageBindEmbeddingMeta GstImageBindEmbeddingMeta;

/**
 * GstImageBindRegion:
 * @id: the `id` of the #GstVideoRegionOfInterestMeta the embedding was computed from
 * @roi_type: its `roi_type` (a #GQuark: g_quark_to_string() gives the name, e.g. "face")
 * @x: its `x`, as in the ROI meta (the crop is this rectangle clamped to the frame)
 * @y: its `y`
 * @w: its `w`
 * @h: its `h`
 *
 * The region of interest of a frame that an embedding describes (imagebindvision with
 * `inference-region=roi-list` or `both`). The fields are the ROI meta's, unchanged, so that a
 * reader finds that meta by id, type and rectangle, also on a later buffer (live mode attaches
 * results to the first buffer that passes after they are ready).
 *
 * Since: 0.1
 */
typedef struct {
  gint id;
  GQuark roi_type;
  guint x;
  guint y;
  guint w;
  guint h;
} GstImageBindRegion;

/**
 * GstImageBindEmbeddingMeta:
 * @meta: parent #GstMeta
 * @modality: the modality the embedding was computed from
 * @dim: number of floats in @vector (the model's embedding width)
 * @vector: (array length=dim): the embedding as the model outputs it: L2-normalised and
 *     multiplied by @logit_scale (averaged over clips where the modality has several), so
 *     `vector / logit_scale` is (close to) unit length. Owned by the meta.
 * @logit_scale: the scale the model's head multiplied by (1.0 for vision)
 * @pts: buffer timestamp of the start of the input the embedding describes
 *     (of the frame, or of the first sample of the window); this may be earlier than the
 *     timestamp of the buffer carrying the meta (live mode, windowed modalities)
 * @duration: duration of that input (frame duration or window length), or
 *     GST_CLOCK_TIME_NONE
 * @stream_time: @pts converted to stream time with the segment then current
 * @running_time: @pts converted to running time with the segment then current
 * @model_id: identifies the model: "<general.name>:<file basename>"
 * @has_region: TRUE when the embedding describes a region of interest of the frame rather
 *     than the whole frame
 * @region: that region (meaningful only when @has_region is TRUE)
 *
 * Metadata carrying one ImageBind embedding. A buffer may carry several (several windows
 * completed by one audio buffer, or one per modality after a mixer): iterate with
 * gst_buffer_iterate_imagebind_embedding_meta().
 *
 * The API type has no tags, so GstBaseTransform based elements (videoconvert, queue, tee, ...)
 * keep it, and it is copied by every buffer copy or transform (an embedding describes content,
 * not memory or geometry).
 *
 * Since: 0.1
 */
struct _GstImageBindEmbeddingMeta {
  GstMeta meta;

  GstImageBindModality modality;
  guint dim;
  gfloat *vector;
  gfloat logit_scale;

  GstClockTime pts;
  GstClockTime duration;
  GstClockTime stream_time;
  GstClockTime running_time;

  gchar *model_id;

  gboolean has_region;
  GstImageBindRegion region;
};

GST_IMAGE_BIND_API
GType gst_image_bind_embedding_meta_api_get_type (void);
GST_IMAGE_BIND_API
const GstMetaInfo *gst_image_bind_embedding_meta_get_info (void);

/* Copies @vector (@dim floats); the span fields start as GST_CLOCK_TIME_NONE. @buffer must be
 * writable. */
GST_IMAGE_BIND_API
GstImageBindEmbeddingMeta *gst_buffer_add_imagebind_embedding_meta (GstBuffer * buffer,
    GstImageBindModality modality, const gfloat * vector, guint dim, gfloat logit_scale,
    const gchar * model_id);

/* The first embedding meta on @buffer, or NULL. */
GST_IMAGE_BIND_API
GstImageBindEmbeddingMeta *gst_buffer_get_imagebind_embedding_meta (GstBuffer * buffer);

/* The first embedding meta of @modality on @buffer, or NULL. */
GST_IMAGE_BIND_API
GstImageBindEmbeddingMeta *gst_buffer_get_imagebind_embedding_meta_by_modality (GstBuffer * buffer,
    GstImageBindModality modality);

/* Iterates over all embedding metas of @buffer; *@state must start as NULL. */
GST_IMAGE_BIND_API
GstImageBindEmbeddingMeta *gst_buffer_iterate_imagebind_embedding_meta (GstBuffer * buffer,
    gpointer * state);

/* Number of embedding metas on @buffer. */
GST_IMAGE_BIND_API
guint gst_buffer_get_n_imagebind_embedding_metas (GstBuffer * buffer);

/* The @n-th embedding meta of @buffer (from 0), or NULL: iteration for introspected
 * languages. */
GST_IMAGE_BIND_API
GstImageBindEmbeddingMeta *gst_buffer_get_imagebind_embedding_meta_nth (GstBuffer * buffer,
    guint n);

GST_IMAGE_BIND_API
const gfloat *gst_image_bind_embedding_meta_get_vector (const GstImageBindEmbeddingMeta * meta,
    guint * dim);

/* The region of interest @meta describes, or NULL when it describes the whole frame. */
GST_IMAGE_BIND_API
const GstImageBindRegion *gst_image_bind_embedding_meta_get_region (
    const GstImageBindEmbeddingMeta * meta);

/* Marks @meta as the embedding of @region (copied); NULL marks it as a whole frame's. */
GST_IMAGE_BIND_API
void gst_image_bind_embedding_meta_set_region (GstImageBindEmbeddingMeta * meta,
    const GstImageBindRegion * region);

/* A GstStructure mirror, named GST_IMAGE_BIND_EMBEDDING_CUSTOM_META_NAME with fields:
 *   modality      G_TYPE_STRING   "vision", "audio", ... (the GstImageBindModality nick)
 *   dim           G_TYPE_UINT
 *   vector        GST_TYPE_ARRAY of G_TYPE_FLOAT (dim values)
 *   vector-f32    G_TYPE_BYTES: the same dim floats, native-endian float32 (for PyGObject
 *                 without gst-python, which cannot convert GstValueArray)
 *   logit-scale   G_TYPE_FLOAT
 *   pts, duration, stream-time, running-time   G_TYPE_UINT64 (GST_CLOCK_TIME_NONE if unknown)
 *   model-id      G_TYPE_STRING
 * and, for the embedding of a region of interest (has_region TRUE), its GstImageBindRegion:
 *   region-id     G_TYPE_INT      the ROI meta's id
 *   region-type   G_TYPE_STRING   its roi_type ("" when it has none)
 *   region-x, region-y, region-w, region-h   G_TYPE_UINT   its rectangle, as in the ROI meta
 * Free with gst_structure_free(). */
GST_IMAGE_BIND_API
GstStructure *gst_image_bind_embedding_meta_to_structure (const GstImageBindEmbeddingMeta * meta);

/* Registers the GstCustomMeta mirror (idempotent, thread-safe); returns its info. */
GST_IMAGE_BIND_API
const GstMetaInfo *gst_image_bind_embedding_custom_meta_register (void);

/* Attaches the structure mirror of @meta to @buffer (writable) as a GstCustomMeta. */
GST_IMAGE_BIND_API
GstCustomMeta *gst_buffer_add_imagebind_embedding_custom_meta (GstBuffer * buffer,
    const GstImageBindEmbeddingMeta * meta);

G_END_DECLS

#endif
