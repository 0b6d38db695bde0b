/**
 * SECTION:gstimagebindmeta
 * @title: GstImageBindEmbeddingMeta
 * @short_description: ImageBind embeddings on buffers
 *
 * The encoder elements (imagebindvision, imagebindaudio, imagebinddepth, imagebindthermal,
 * imagebindimu, imagebindtext) attach a #GstImageBindEmbeddingMeta to the buffers they pass.
 * C applications read it with gst_buffer_iterate_imagebind_embedding_meta() or
 * gst_buffer_get_imagebind_embedding_meta_by_modality(); Python applications set the
 * encoder's `custom-meta` property and read the GstCustomMeta
 * "GstImageBindEmbeddingCustomMeta" (see gst_image_bind_embedding_meta_to_structure()).
 *
 * Since: 0.1
 */

/* GstImageBindEmbeddingMeta registration, copy and accessors. */
#include "gstimagebindmeta.h"
#include "gstimagebindmeta-private.h"

#include <string.h>

GType
gst_image_bind_embedding_meta_api_get_type (void)
{
  static gsize type = 0;
  /* No tags: GstBaseTransform's default transform_meta copies tag-less metas always, and
   * elements that drop metas by tag (video, audio, memory) keep ours. */
  static const gchar *tags[] = { NULL };

  if (g_once_init_enter (&type)) {
    GType t = gst_meta_api_type_register ("GstImageBindEmbeddingMetaAPI", tags);
    g_once_init_leave (&type, t);
  }
  return type;
}

static gboolean
embedding_meta_init (GstMeta * meta, gpointer params, GstBuffer * buffer)
{
  GstImageBindEmbeddingMeta *emeta = (GstImageBindEmbeddingMeta *) meta;

  emeta->modality = GST_IMAGE_BIND_MODALITY_VISION;
  emeta->dim = 0;
  emeta->vector = NULL;
  emeta->logit_scale = 1.0f;
  emeta->pts = GST_CLOCK_TIME_NONE;
  emeta->duration = GST_CLOCK_TIME_NONE;
  emeta->stream_time = GST_CLOCK_TIME_NONE;
  emeta->running_time = GST_CLOCK_TIME_NONE;
  emeta->model_id = NULL;
  emeta->has_region = FALSE;
  memset (&emeta->region, 0, sizeof (emeta->region));
  return TRUE;
}

static void
embedding_meta_free (GstMeta * meta, GstBuffer * buffer)
{
  GstImageBindEmbeddingMeta *emeta = (GstImageBindEmbeddingMeta *) meta;

  g_clear_pointer (&emeta->vector, g_free);
  g_clear_pointer (&emeta->model_id, g_free);
}

/* An embedding describes the content, not memory layout or geometry: it stays valid for
 * copies, and for scaled or converted versions of the same frame, so every transform copies
 * it. */
static gboolean
embedding_meta_transform (GstBuffer * dest, GstMeta * meta, GstBuffer * src, GQuark type,
    gpointer data)
{
  GstImageBindEmbeddingMeta *smeta = (GstImageBindEmbeddingMeta *) meta;
  GstImageBindEmbeddingMeta *dmeta;

  dmeta = gst_buffer_add_imagebind_embedding_meta (dest, smeta->modality, smeta->vector,
      smeta->dim, smeta->logit_scale, smeta->model_id);
  if (!dmeta)
    return FALSE;
  dmeta->pts = smeta->pts;
  dmeta->duration = smeta->duration;
  dmeta->stream_time = smeta->stream_time;
  dmeta->running_time = smeta->running_time;
  /* the region stays as the detector attached it: it names that ROI meta (after a scaling
   * element the rectangle is in the encoder's frame, as the embedding is) */
  dmeta->has_region = smeta->has_region;
  dmeta->region = smeta->region;
  return TRUE;
}

/**
 * gst_image_bind_embedding_meta_get_info: (skip)
 *
 * Returns: (transfer none): the registered #GstMetaInfo of #GstImageBindEmbeddingMeta
 */
const GstMetaInfo *
gst_image_bind_embedding_meta_get_info (void)
{
  static const GstMetaInfo *info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) & info)) {
    const GstMetaInfo *i = gst_meta_register (GST_IMAGE_BIND_EMBEDDING_META_API_TYPE,
        "GstImageBindEmbeddingMeta", sizeof (GstImageBindEmbeddingMeta),
        embedding_meta_init, embedding_meta_free, embedding_meta_transform);
    g_once_init_leave ((GstMetaInfo **) & info, (GstMetaInfo *) i);
  }
  return info;
}

/**
 * gst_buffer_add_imagebind_embedding_meta:
 * @buffer: a writable #GstBuffer
 * @modality: the modality the embedding was computed from
 * @vector: (array length=dim): the embedding, copied
 * @dim: number of floats in @vector
 * @logit_scale: the scale the model's head multiplied by
 * @model_id: (nullable): identifies the model
 *
 * Adds an embedding meta; the span fields start as GST_CLOCK_TIME_NONE.
 *
 * Returns: (transfer none) (nullable): the meta, owned by @buffer
 */
GstImageBindEmbeddingMeta *
gst_buffer_add_imagebind_embedding_meta (GstBuffer * buffer, GstImageBindModality modality,
    const gfloat * vector, guint dim, gfloat logit_scale, const gchar * model_id)
{
  GstImageBindEmbeddingMeta *meta;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (gst_buffer_is_writable (buffer), NULL);
  g_return_val_if_fail ((guint) modality < GST_IMAGE_BIND_N_MODALITIES, NULL);
  g_return_val_if_fail (vector != NULL || dim == 0, NULL);

  meta = (GstImageBindEmbeddingMeta *) gst_buffer_add_meta (buffer,
      GST_IMAGE_BIND_EMBEDDING_META_INFO, NULL);
  if (!meta)
    return NULL;
  meta->modality = modality;
  meta->dim = dim;
  meta->vector = dim ? g_memdup2 (vector, (gsize) dim * sizeof (gfloat)) : NULL;
  meta->logit_scale = logit_scale;
  meta->model_id = g_strdup (model_id ? model_id : "");
  return meta;
}

/**
 * gst_buffer_get_imagebind_embedding_meta:
 * @buffer: a #GstBuffer
 *
 * Returns: (transfer none) (nullable): the first embedding meta of @buffer, owned by it
 */
GstImageBindEmbeddingMeta *
gst_buffer_get_imagebind_embedding_meta (GstBuffer * buffer)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);

  return (GstImageBindEmbeddingMeta *) gst_buffer_get_meta (buffer,
      GST_IMAGE_BIND_EMBEDDING_META_API_TYPE);
}

/**
 * gst_buffer_iterate_imagebind_embedding_meta: (skip)
 * @buffer: a #GstBuffer
 * @state: (inout): iteration state, NULL to start
 *
 * Introspected languages use gst_buffer_get_n_imagebind_embedding_metas() and
 * gst_buffer_get_imagebind_embedding_meta_nth().
 *
 * Returns: (transfer none) (nullable): the next embedding meta of @buffer
 */
GstImageBindEmbeddingMeta *
gst_buffer_iterate_imagebind_embedding_meta (GstBuffer * buffer, gpointer * state)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (state != NULL, NULL);

  return (GstImageBindEmbeddingMeta *) gst_buffer_iterate_meta_filtered (buffer, state,
      GST_IMAGE_BIND_EMBEDDING_META_API_TYPE);
}

/**
 * gst_buffer_get_imagebind_embedding_meta_by_modality:
 * @buffer: a #GstBuffer
 * @modality: a modality
 *
 * Returns: (transfer none) (nullable): the first embedding meta of @modality on @buffer
 */
GstImageBindEmbeddingMeta *
gst_buffer_get_imagebind_embedding_meta_by_modality (GstBuffer * buffer,
    GstImageBindModality modality)
{
  gpointer state = NULL;
  GstImageBindEmbeddingMeta *meta;

  while ((meta = gst_buffer_iterate_imagebind_embedding_meta (buffer, &state)))
    if (meta->modality == modality)
      return meta;
  return NULL;
}

/**
 * gst_buffer_get_n_imagebind_embedding_metas:
 * @buffer: a #GstBuffer
 *
 * Returns: the number of embedding metas on @buffer
 */
guint
gst_image_bind_buffer_count_metas (GstBuffer * buffer, GType api)
{
  gpointer state = NULL;
  guint n = 0;

  while (gst_buffer_iterate_meta_filtered (buffer, &state, api))
    n++;
  return n;
}

GstMeta *
gst_image_bind_buffer_nth_meta (GstBuffer * buffer, GType api, guint n)
{
  gpointer state = NULL;
  GstMeta *meta;

  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &state, api)))
    if (n-- == 0)
      return meta;
  return NULL;
}

guint
gst_buffer_get_n_imagebind_embedding_metas (GstBuffer * buffer)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), 0);

  return gst_image_bind_buffer_count_metas (buffer, GST_IMAGE_BIND_EMBEDDING_META_API_TYPE);
}

/**
 * gst_buffer_get_imagebind_embedding_meta_nth:
 * @buffer: a #GstBuffer
 * @n: which one, from 0
 *
 * For languages without C's iteration state (Python through GObject introspection): the
 * @n-th embedding meta of @buffer, in the order gst_buffer_iterate_imagebind_embedding_meta()
 * gives.
 *
 * Returns: (transfer none) (nullable): the meta, NULL when @buffer has @n or fewer
 */
GstImageBindEmbeddingMeta *
gst_buffer_get_imagebind_embedding_meta_nth (GstBuffer * buffer, guint n)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);

  return (GstImageBindEmbeddingMeta *) gst_image_bind_buffer_nth_meta (buffer,
      GST_IMAGE_BIND_EMBEDDING_META_API_TYPE, n);
}

/**
 * gst_image_bind_embedding_meta_get_vector:
 * @meta: an embedding meta
 * @dim: (out) (optional): number of floats
 *
 * Returns: (array length=dim) (transfer none): the embedding, owned by @meta (a list of
 *     floats in Python)
 */
const gfloat *
gst_image_bind_embedding_meta_get_vector (const GstImageBindEmbeddingMeta * meta, guint * dim)
{
  g_return_val_if_fail (meta != NULL, NULL);

  if (dim)
    *dim = meta->dim;
  return meta->vector;
}

/**
 * gst_image_bind_embedding_meta_get_region:
 * @meta: an embedding meta
 *
 * Returns: (transfer none) (nullable): the region of interest @meta describes (fields as in
 *     the #GstVideoRegionOfInterestMeta it came from), or NULL when @meta describes the whole
 *     frame
 */
const GstImageBindRegion *
gst_image_bind_embedding_meta_get_region (const GstImageBindEmbeddingMeta * meta)
{
  g_return_val_if_fail (meta != NULL, NULL);

  return meta->has_region ? &meta->region : NULL;
}

/**
 * gst_image_bind_embedding_meta_set_region:
 * @meta: an embedding meta
 * @region: (nullable): the region of interest it describes, copied; NULL for the whole frame
 */
void
gst_image_bind_embedding_meta_set_region (GstImageBindEmbeddingMeta * meta,
    const GstImageBindRegion * region)
{
  g_return_if_fail (meta != NULL);

  meta->has_region = region != NULL;
  if (region)
    meta->region = *region;
  else
    memset (&meta->region, 0, sizeof (meta->region));
}

/**
 * gst_image_bind_embedding_meta_to_structure:
 * @meta: an embedding meta
 *
 * Returns: (transfer full): the structure mirror of @meta (fields in gstimagebindmeta.h)
 */
GstStructure *
gst_image_bind_embedding_meta_to_structure (const GstImageBindEmbeddingMeta * meta)
{
  GstStructure *s;
  GValue array = G_VALUE_INIT;
  GValue item = G_VALUE_INIT;
  guint i;

  g_return_val_if_fail (meta != NULL, NULL);

  s = gst_structure_new (GST_IMAGE_BIND_EMBEDDING_CUSTOM_META_NAME,
      "modality", G_TYPE_STRING, gst_image_bind_modality_to_string (meta->modality),
      "dim", G_TYPE_UINT, meta->dim,
      "logit-scale", G_TYPE_FLOAT, meta->logit_scale,
      "pts", G_TYPE_UINT64, meta->pts,
      "duration", G_TYPE_UINT64, meta->duration,
      "stream-time", G_TYPE_UINT64, meta->stream_time,
      "running-time", G_TYPE_UINT64, meta->running_time,
      "model-id", G_TYPE_STRING, meta->model_id ? meta->model_id : "", NULL);

  g_value_init (&array, GST_TYPE_ARRAY);
  g_value_init (&item, G_TYPE_FLOAT);
  for (i = 0; i < meta->dim; i++) {
    g_value_set_float (&item, meta->vector[i]);
    gst_value_array_append_value (&array, &item);
  }
  g_value_unset (&item);
  gst_structure_take_value (s, "vector", &array);

  if (meta->has_region) {
    const gchar *type = meta->region.roi_type ? g_quark_to_string (meta->region.roi_type) : "";

    gst_structure_set (s,
        "region-id", G_TYPE_INT, meta->region.id,
        "region-type", G_TYPE_STRING, type,
        "region-x", G_TYPE_UINT, meta->region.x,
        "region-y", G_TYPE_UINT, meta->region.y,
        "region-w", G_TYPE_UINT, meta->region.w,
        "region-h", G_TYPE_UINT, meta->region.h, NULL);
  }

  /* PyGObject without gst-python cannot read a GstValueArray; GBytes it can. */
  {
    GBytes *bytes = g_bytes_new (meta->vector, (gsize) meta->dim * sizeof (gfloat));
    gst_structure_set (s, "vector-f32", G_TYPE_BYTES, bytes, NULL);
    g_bytes_unref (bytes);
  }
  return s;
}

/**
 * gst_image_bind_embedding_custom_meta_register: (skip)
 *
 * Returns: (transfer none): the #GstMetaInfo of the GstCustomMeta mirror
 */
const GstMetaInfo *
gst_image_bind_embedding_custom_meta_register (void)
{
  static const GstMetaInfo *info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) & info)) {
    static const gchar *tags[] = { NULL };
    /* No transform function: GstCustomMeta then copies the structure on buffer copies. */
    const GstMetaInfo *i = gst_meta_register_custom (GST_IMAGE_BIND_EMBEDDING_CUSTOM_META_NAME,
        tags, NULL, NULL, NULL);
    g_once_init_leave ((GstMetaInfo **) & info, (GstMetaInfo *) i);
  }
  return info;
}

static gboolean
copy_field (GQuark field, const GValue * value, gpointer dest)
{
  gst_structure_id_set_value ((GstStructure *) dest, field, value);
  return TRUE;
}

/**
 * gst_buffer_add_imagebind_embedding_custom_meta:
 * @buffer: a writable #GstBuffer
 * @meta: an embedding meta
 *
 * Returns: (transfer none) (nullable): the GstCustomMeta mirror of @meta added to @buffer
 */
GstCustomMeta *
gst_buffer_add_imagebind_embedding_custom_meta (GstBuffer * buffer,
    const GstImageBindEmbeddingMeta * meta)
{
  GstCustomMeta *cmeta;
  GstStructure *s, *mirror;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (gst_buffer_is_writable (buffer), NULL);
  g_return_val_if_fail (meta != NULL, NULL);

  gst_image_bind_embedding_custom_meta_register ();
  cmeta = gst_buffer_add_custom_meta (buffer, GST_IMAGE_BIND_EMBEDDING_CUSTOM_META_NAME);
  if (!cmeta)
    return NULL;
  s = gst_custom_meta_get_structure (cmeta);
  mirror = gst_image_bind_embedding_meta_to_structure (meta);
  /* The custom meta owns its (empty) structure: fill it field by field. */
  gst_structure_foreach (mirror, copy_field, s);
  gst_structure_free (mirror);
  return cmeta;
}
