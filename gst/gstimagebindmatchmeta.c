/* GstImageBindMatchMeta registration, copy and accessors, and the match mode GEnum. */
#include "gstimagebindmatchmeta.h"
#include "gstimagebindmeta-private.h"

#include <stdlib.h>

static const GEnumValue match_mode_values[] = {
  {GST_IMAGE_BIND_MATCH_MODE_CLASSIFY,
      "Zero-shot classification: softmax over the prompts, top-k", "classify"},
  {GST_IMAGE_BIND_MATCH_MODE_DETECT,
      "Detection: per-prompt cosine against a threshold, with start/stop events", "detect"},
  {0, NULL, NULL}
};

GType
gst_image_bind_match_mode_get_type (void)
{
  static gsize type = 0;

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstImageBindMatchMode", match_mode_values);
    g_once_init_leave (&type, t);
  }
  return type;
}

/**
 * gst_image_bind_match_mode_to_string:
 * @mode: a match mode
 *
 * Returns: (nullable): "classify" or "detect", NULL when @mode is neither
 */
const gchar *
gst_image_bind_match_mode_to_string (GstImageBindMatchMode mode)
{
  if ((guint) mode > GST_IMAGE_BIND_MATCH_MODE_DETECT)
    return NULL;
  return match_mode_values[mode].value_nick;
}

GType
gst_image_bind_match_meta_api_get_type (void)
{
  static gsize type = 0;
  /* No tags, as the embedding meta: elements that drop metas by tag keep this one. */
  static const gchar *tags[] = { NULL };

  if (g_once_init_enter (&type)) {
    GType t = gst_meta_api_type_register ("GstImageBindMatchMetaAPI", tags);
    g_once_init_leave (&type, t);
  }
  return type;
}

static gboolean
match_meta_init (GstMeta * meta, gpointer params, GstBuffer * buffer)
{
  GstImageBindMatchMeta *mmeta = (GstImageBindMatchMeta *) meta;

  mmeta->modality = GST_IMAGE_BIND_MODALITY_VISION;
  mmeta->mode = GST_IMAGE_BIND_MATCH_MODE_CLASSIFY;
  mmeta->n_results = 0;
  mmeta->results = NULL;
  mmeta->top_index = -1;
  mmeta->top_label = NULL;
  mmeta->top_probability = 0.0;
  mmeta->pts = GST_CLOCK_TIME_NONE;
  mmeta->duration = GST_CLOCK_TIME_NONE;
  mmeta->stream_time = GST_CLOCK_TIME_NONE;
  mmeta->running_time = GST_CLOCK_TIME_NONE;
  return TRUE;
}

static void
match_meta_free (GstMeta * meta, GstBuffer * buffer)
{
  GstImageBindMatchMeta *mmeta = (GstImageBindMatchMeta *) meta;
  guint i;

  for (i = 0; i < mmeta->n_results; i++)
    g_free (mmeta->results[i].label);
  g_clear_pointer (&mmeta->results, g_free);
  mmeta->n_results = 0;
  g_clear_pointer (&mmeta->top_label, g_free);
}

/* A match describes the content, so every copy and transform keeps it (as the embedding). */
static gboolean
match_meta_transform (GstBuffer * dest, GstMeta * meta, GstBuffer * src, GQuark type,
    gpointer data)
{
  GstImageBindMatchMeta *smeta = (GstImageBindMatchMeta *) meta;
  GstImageBindMatchMeta *dmeta;

  dmeta = gst_buffer_add_imagebind_match_meta (dest, smeta->modality, smeta->mode,
      smeta->results, smeta->n_results);
  if (!dmeta)
    return FALSE;
  dmeta->pts = smeta->pts;
  dmeta->duration = smeta->duration;
  dmeta->stream_time = smeta->stream_time;
  dmeta->running_time = smeta->running_time;
  return TRUE;
}

/**
 * gst_image_bind_match_meta_get_info: (skip)
 *
 * Returns: (transfer none): the registered #GstMetaInfo of #GstImageBindMatchMeta
 */
const GstMetaInfo *
gst_image_bind_match_meta_get_info (void)
{
  static const GstMetaInfo *info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) & info)) {
    const GstMetaInfo *i = gst_meta_register (GST_IMAGE_BIND_MATCH_META_API_TYPE,
        "GstImageBindMatchMeta", sizeof (GstImageBindMatchMeta),
        match_meta_init, match_meta_free, match_meta_transform);
    g_once_init_leave ((GstMetaInfo **) & info, (GstMetaInfo *) i);
  }
  return info;
}

/**
 * gst_buffer_add_imagebind_match_meta:
 * @buffer: a writable #GstBuffer
 * @modality: modality of the embedding that was matched
 * @mode: the matcher's mode
 * @results: (array length=n_results): the scores, best first, copied
 * @n_results: number of @results
 *
 * Returns: (transfer none) (nullable): the meta, owned by @buffer
 */
GstImageBindMatchMeta *
gst_buffer_add_imagebind_match_meta (GstBuffer * buffer, GstImageBindModality modality,
    GstImageBindMatchMode mode, const GstImageBindMatchResult * results, guint n_results)
{
  GstImageBindMatchMeta *meta;
  guint i;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (gst_buffer_is_writable (buffer), NULL);
  g_return_val_if_fail ((guint) modality < GST_IMAGE_BIND_N_MODALITIES, NULL);
  g_return_val_if_fail (results != NULL || n_results == 0, NULL);

  meta = (GstImageBindMatchMeta *) gst_buffer_add_meta (buffer, GST_IMAGE_BIND_MATCH_META_INFO,
      NULL);
  if (!meta)
    return NULL;
  meta->modality = modality;
  meta->mode = mode;
  meta->n_results = n_results;
  meta->results = n_results ? g_new0 (GstImageBindMatchResult, n_results) : NULL;
  for (i = 0; i < n_results; i++) {
    meta->results[i] = results[i];
    meta->results[i].label = g_strdup (results[i].label ? results[i].label : "");
  }
  if (n_results > 0) {
    meta->top_index = (gint) results[0].index;
    meta->top_label = g_strdup (meta->results[0].label);
    meta->top_probability = results[0].probability;
  }
  return meta;
}

/**
 * gst_buffer_get_imagebind_match_meta:
 * @buffer: a #GstBuffer
 *
 * Returns: (transfer none) (nullable): the first match meta of @buffer, owned by it
 */
GstImageBindMatchMeta *
gst_buffer_get_imagebind_match_meta (GstBuffer * buffer)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);

  return (GstImageBindMatchMeta *) gst_buffer_get_meta (buffer,
      GST_IMAGE_BIND_MATCH_META_API_TYPE);
}

/**
 * gst_buffer_iterate_imagebind_match_meta: (skip)
 * @buffer: a #GstBuffer
 * @state: (inout): iteration state, NULL to start
 *
 * Introspected languages use gst_buffer_get_n_imagebind_match_metas() and
 * gst_buffer_get_imagebind_match_meta_nth().
 *
 * Returns: (transfer none) (nullable): the next match meta of @buffer
 */
GstImageBindMatchMeta *
gst_buffer_iterate_imagebind_match_meta (GstBuffer * buffer, gpointer * state)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (state != NULL, NULL);

  return (GstImageBindMatchMeta *) gst_buffer_iterate_meta_filtered (buffer, state,
      GST_IMAGE_BIND_MATCH_META_API_TYPE);
}

/**
 * gst_buffer_get_imagebind_match_meta_by_modality:
 * @buffer: a #GstBuffer
 * @modality: a modality
 *
 * Returns: (transfer none) (nullable): the first match meta of @modality on @buffer
 */
GstImageBindMatchMeta *
gst_buffer_get_imagebind_match_meta_by_modality (GstBuffer * buffer,
    GstImageBindModality modality)
{
  gpointer state = NULL;
  GstImageBindMatchMeta *meta;

  while ((meta = gst_buffer_iterate_imagebind_match_meta (buffer, &state)))
    if (meta->modality == modality)
      return meta;
  return NULL;
}

/**
 * gst_image_bind_match_meta_find_result:
 * @meta: a match meta
 * @index: a prompt's position in the matcher's `prompts`
 *
 * Returns: (transfer none) (nullable): the result for that prompt, NULL when it is not among
 *     the meta's results (top-k)
 */
const GstImageBindMatchResult *
gst_image_bind_match_meta_find_result (const GstImageBindMatchMeta * meta, guint index)
{
  guint i;

  g_return_val_if_fail (meta != NULL, NULL);

  for (i = 0; i < meta->n_results; i++)
    if (meta->results[i].index == index)
      return &meta->results[i];
  return NULL;
}

/**
 * gst_buffer_get_n_imagebind_match_metas:
 * @buffer: a #GstBuffer
 *
 * Returns: the number of match metas on @buffer
 */
guint
gst_buffer_get_n_imagebind_match_metas (GstBuffer * buffer)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), 0);

  return gst_image_bind_buffer_count_metas (buffer, GST_IMAGE_BIND_MATCH_META_API_TYPE);
}

/**
 * gst_buffer_get_imagebind_match_meta_nth:
 * @buffer: a #GstBuffer
 * @n: which one, from 0
 *
 * For languages without C's iteration state (Python through GObject introspection): the
 * @n-th match meta of @buffer, in the order gst_buffer_iterate_imagebind_match_meta() gives.
 *
 * Returns: (transfer none) (nullable): the meta, NULL when @buffer has @n or fewer
 */
GstImageBindMatchMeta *
gst_buffer_get_imagebind_match_meta_nth (GstBuffer * buffer, guint n)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);

  return (GstImageBindMatchMeta *) gst_image_bind_buffer_nth_meta (buffer,
      GST_IMAGE_BIND_MATCH_META_API_TYPE, n);
}

/**
 * gst_image_bind_match_meta_get_result:
 * @meta: a match meta
 * @i: position in the results, from 0 (best first)
 *
 * The @i-th result: for introspected languages, which cannot read the @results array field.
 *
 * Returns: (transfer none) (nullable): the result, owned by @meta; NULL when @i is not below
 *     @n_results
 */
const GstImageBindMatchResult *
gst_image_bind_match_meta_get_result (const GstImageBindMatchMeta * meta, guint i)
{
  g_return_val_if_fail (meta != NULL, NULL);

  return i < meta->n_results ? &meta->results[i] : NULL;
}

/**
 * gst_image_bind_match_meta_to_structure:
 * @meta: a match meta
 *
 * Returns: (transfer full): the structure mirror of @meta (fields in gstimagebindmatchmeta.h)
 */
GstStructure *
gst_image_bind_match_meta_to_structure (const GstImageBindMatchMeta * meta)
{
  GstStructure *s;

  g_return_val_if_fail (meta != NULL, NULL);

  s = gst_structure_new (GST_IMAGE_BIND_MATCH_CUSTOM_META_NAME,
      "modality", G_TYPE_STRING, gst_image_bind_modality_to_string (meta->modality),
      "mode", G_TYPE_STRING, gst_image_bind_match_mode_to_string (meta->mode),
      "top-index", G_TYPE_INT, meta->top_index,
      "top-label", G_TYPE_STRING, meta->top_label ? meta->top_label : "",
      "top-probability", G_TYPE_DOUBLE, meta->top_probability,
      "pts", G_TYPE_UINT64, meta->pts,
      "duration", G_TYPE_UINT64, meta->duration,
      "stream-time", G_TYPE_UINT64, meta->stream_time,
      "running-time", G_TYPE_UINT64, meta->running_time, NULL);

  gst_image_bind_match_results_add_fields (s, meta->results, meta->n_results,
      GST_IMAGE_BIND_MATCH_RESULTS_LISTS | GST_IMAGE_BIND_MATCH_RESULTS_DETECTED |
      GST_IMAGE_BIND_MATCH_RESULTS_PLAIN);
  return s;
}

static void
append_value (GValue * array, GType type, gconstpointer x)
{
  GValue v = G_VALUE_INIT;

  g_value_init (&v, type);
  switch (type) {
    case G_TYPE_STRING:
      g_value_set_string (&v, x);
      break;
    case G_TYPE_UINT:
      g_value_set_uint (&v, *(const guint *) x);
      break;
    case G_TYPE_DOUBLE:
      g_value_set_double (&v, *(const gdouble *) x);
      break;
    case G_TYPE_BOOLEAN:
      g_value_set_boolean (&v, *(const gboolean *) x);
      break;
    default:
      g_assert_not_reached ();
  }
  gst_value_array_append_and_take_value (array, &v);
}

/**
 * gst_image_bind_match_results_add_fields:
 * @s: a #GstStructure
 * @results: (array length=n_results): results, ordered as they are to be listed
 * @n_results: their number
 * @fields: the groups of fields to set
 *
 * Sets the @fields groups of @results on @s (see #GstImageBindMatchResultsFields), in the
 * order LISTS, DETECTED, PLAIN, TOP. The match meta's structure mirror and the results bus
 * messages of imagebindmatch and imagebindav are all written by this function.
 */
void
gst_image_bind_match_results_add_fields (GstStructure * s,
    const GstImageBindMatchResult * results, guint n_results,
    GstImageBindMatchResultsFields fields)
{
  guint i;

  g_return_if_fail (s != NULL);
  g_return_if_fail (results != NULL || n_results == 0);

  if (fields & (GST_IMAGE_BIND_MATCH_RESULTS_LISTS | GST_IMAGE_BIND_MATCH_RESULTS_DETECTED)) {
    GValue labels = G_VALUE_INIT, indices = G_VALUE_INIT, scores = G_VALUE_INIT;
    GValue probs = G_VALUE_INIT, detected = G_VALUE_INIT;

    g_value_init (&labels, GST_TYPE_ARRAY);
    g_value_init (&indices, GST_TYPE_ARRAY);
    g_value_init (&scores, GST_TYPE_ARRAY);
    g_value_init (&probs, GST_TYPE_ARRAY);
    g_value_init (&detected, GST_TYPE_ARRAY);
    for (i = 0; i < n_results; i++) {
      append_value (&labels, G_TYPE_STRING, results[i].label);
      append_value (&indices, G_TYPE_UINT, &results[i].index);
      append_value (&scores, G_TYPE_DOUBLE, &results[i].cosine);
      append_value (&probs, G_TYPE_DOUBLE, &results[i].probability);
      append_value (&detected, G_TYPE_BOOLEAN, &results[i].detected);
    }
    if (fields & GST_IMAGE_BIND_MATCH_RESULTS_LISTS) {
      gst_structure_take_value (s, "labels", &labels);
      gst_structure_take_value (s, "indices", &indices);
      gst_structure_take_value (s, "scores", &scores);
      gst_structure_take_value (s, "probabilities", &probs);
    } else {
      g_value_unset (&labels);
      g_value_unset (&indices);
      g_value_unset (&scores);
      g_value_unset (&probs);
    }
    if (fields & GST_IMAGE_BIND_MATCH_RESULTS_DETECTED)
      gst_structure_take_value (s, "detected", &detected);
    else
      g_value_unset (&detected);
  }
  if (fields & GST_IMAGE_BIND_MATCH_RESULTS_PLAIN)
    gst_image_bind_match_results_add_plain_fields (s, results, n_results);
  if ((fields & GST_IMAGE_BIND_MATCH_RESULTS_TOP) && n_results > 0)
    gst_structure_set (s,
        "top-label", G_TYPE_STRING, results[0].label,
        "top-index", G_TYPE_UINT, results[0].index,
        "top-probability", G_TYPE_DOUBLE, results[0].probability,
        "top-score", G_TYPE_DOUBLE, results[0].cosine, NULL);
}

static gint
compare_results (gconstpointer a, gconstpointer b)
{
  const GstImageBindMatchResult *ra = a, *rb = b;

  if (ra->probability != rb->probability)
    return ra->probability > rb->probability ? -1 : 1;
  return ra->index < rb->index ? -1 : (ra->index > rb->index ? 1 : 0);
}

/**
 * gst_image_bind_match_results_sort:
 * @results: (array length=n_results): results
 * @n_results: their number
 *
 * Sorts @results best first: by decreasing probability, equal probabilities by increasing
 * prompt index.
 */
void
gst_image_bind_match_results_sort (GstImageBindMatchResult * results, guint n_results)
{
  g_return_if_fail (results != NULL || n_results == 0);

  if (n_results > 1)
    qsort (results, n_results, sizeof (GstImageBindMatchResult), compare_results);
}

/**
 * gst_image_bind_match_results_add_plain_fields:
 * @s: a #GstStructure
 * @results: (array length=n_results): results
 * @n_results: their number
 *
 * Adds the result lists to @s in plain GLib types (see gstimagebindmatchmeta.h).
 */
void
gst_image_bind_match_results_add_plain_fields (GstStructure * s,
    const GstImageBindMatchResult * results, guint n_results)
{
  const gchar **labels = g_new0 (const gchar *, n_results + 1);
  guint32 *indices = g_new (guint32, MAX (n_results, 1));
  gdouble *scores = g_new (gdouble, MAX (n_results, 1));
  gdouble *probs = g_new (gdouble, MAX (n_results, 1));
  GBytes *b;
  guint i;

  g_return_if_fail (s != NULL);
  g_return_if_fail (results != NULL || n_results == 0);

  for (i = 0; i < n_results; i++) {
    labels[i] = results[i].label;
    indices[i] = results[i].index;
    scores[i] = results[i].cosine;
    probs[i] = results[i].probability;
  }
  gst_structure_set (s, "labels-strv", G_TYPE_STRV, labels, NULL);
  b = g_bytes_new_take (indices, (gsize) n_results * sizeof (guint32));
  gst_structure_set (s, "indices-u32", G_TYPE_BYTES, b, NULL);
  g_bytes_unref (b);
  b = g_bytes_new_take (scores, (gsize) n_results * sizeof (gdouble));
  gst_structure_set (s, "scores-f64", G_TYPE_BYTES, b, NULL);
  g_bytes_unref (b);
  b = g_bytes_new_take (probs, (gsize) n_results * sizeof (gdouble));
  gst_structure_set (s, "probabilities-f64", G_TYPE_BYTES, b, NULL);
  g_bytes_unref (b);
  g_free (labels);
}

/**
 * gst_image_bind_match_custom_meta_register: (skip)
 *
 * Returns: (transfer none): the #GstMetaInfo of the GstCustomMeta mirror
 */
const GstMetaInfo *
gst_image_bind_match_custom_meta_register (void)
{
  static const GstMetaInfo *info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) & info)) {
    static const gchar *tags[] = { NULL };
    /* No transform function: GstCustomMeta then copies the structure on buffer copies. */
    const GstMetaInfo *i = gst_meta_register_custom (GST_IMAGE_BIND_MATCH_CUSTOM_META_NAME,
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
 * gst_buffer_add_imagebind_match_custom_meta:
 * @buffer: a writable #GstBuffer
 * @meta: a match meta
 *
 * Returns: (transfer none) (nullable): the GstCustomMeta mirror of @meta added to @buffer
 */
GstCustomMeta *
gst_buffer_add_imagebind_match_custom_meta (GstBuffer * buffer,
    const GstImageBindMatchMeta * meta)
{
  GstCustomMeta *cmeta;
  GstStructure *mirror;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (gst_buffer_is_writable (buffer), NULL);
  g_return_val_if_fail (meta != NULL, NULL);

  gst_image_bind_match_custom_meta_register ();
  cmeta = gst_buffer_add_custom_meta (buffer, GST_IMAGE_BIND_MATCH_CUSTOM_META_NAME);
  if (!cmeta)
    return NULL;
  /* The custom meta owns its (empty) structure: fill it field by field. */
  mirror = gst_image_bind_match_meta_to_structure (meta);
  gst_structure_foreach (mirror, copy_field, gst_custom_meta_get_structure (cmeta));
  gst_structure_free (mirror);
  return cmeta;
}
