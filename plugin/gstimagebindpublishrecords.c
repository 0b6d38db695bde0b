/* imagebindpublish: the JSON records made of the metas (see gstimagebindpublishrecords.h). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>

#include "gstimagebindpublishrecords.h"

void
gst_image_bind_publish_record_free (GstImageBindPublishRecord * r)
{
  json_node_unref (r->record);
  if (r->point)
    json_node_unref (r->point);
  g_free (r);
}


static void
add_time (JsonBuilder * b, const gchar * name, GstClockTime t)
{
  json_builder_set_member_name (b, name);
  if (GST_CLOCK_TIME_IS_VALID (t))
    json_builder_add_int_value (b, (gint64) t);
  else
    json_builder_add_null_value (b);
}

/* JSON has no NaN or infinity: such a value (a broken model or input) becomes null. */
static void
add_number (JsonBuilder * b, gdouble v)
{
  if (isfinite (v))
    json_builder_add_double_value (b, v);
  else
    json_builder_add_null_value (b);
}

static void
add_common (const gchar * source, JsonBuilder * b, const gchar * type,
    GstImageBindModality modality, GstClockTime pts, GstClockTime duration,
    GstClockTime stream_time, GstClockTime running_time)
{
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, type);
  json_builder_set_member_name (b, "source");
  json_builder_add_string_value (b, source);
  json_builder_set_member_name (b, "modality");
  json_builder_add_string_value (b, gst_image_bind_modality_to_string (modality));
  add_time (b, "pts", pts);
  add_time (b, "duration", duration);
  add_time (b, "stream_time", stream_time);
  add_time (b, "running_time", running_time);
}

static void
add_match_lists (JsonBuilder * b, const GstImageBindMatchMeta * m, gboolean all)
{
  guint i;

  json_builder_set_member_name (b, "labels");
  json_builder_begin_array (b);
  for (i = 0; i < m->n_results; i++)
    json_builder_add_string_value (b, m->results[i].label ? m->results[i].label : "");
  json_builder_end_array (b);
  json_builder_set_member_name (b, "scores");
  json_builder_begin_array (b);
  for (i = 0; i < m->n_results; i++)
    add_number (b, m->results[i].cosine);
  json_builder_end_array (b);
  if (all) {
    json_builder_set_member_name (b, "indices");
    json_builder_begin_array (b);
    for (i = 0; i < m->n_results; i++)
      json_builder_add_int_value (b, m->results[i].index);
    json_builder_end_array (b);
    json_builder_set_member_name (b, "probabilities");
    json_builder_begin_array (b);
    for (i = 0; i < m->n_results; i++)
      add_number (b, m->results[i].probability);
    json_builder_end_array (b);
    json_builder_set_member_name (b, "detected");
    json_builder_begin_array (b);
    for (i = 0; i < m->n_results; i++)
      json_builder_add_boolean_value (b, m->results[i].detected);
    json_builder_end_array (b);
  }
  json_builder_set_member_name (b, "top_label");
  if (m->top_label)
    json_builder_add_string_value (b, m->top_label);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "top_probability");
  add_number (b, m->top_probability);
}

/* The embedding's fields, without the vector (shared by the record and the point payload). */
static void
add_embedding_fields (const gchar * source, JsonBuilder * b,
    const GstImageBindEmbeddingMeta * e)
{
  add_common (source, b, "embedding", e->modality, e->pts, e->duration, e->stream_time,
      e->running_time);
  json_builder_set_member_name (b, "model_id");
  json_builder_add_string_value (b, e->model_id ? e->model_id : "");
  json_builder_set_member_name (b, "dim");
  json_builder_add_int_value (b, e->dim);
  json_builder_set_member_name (b, "logit_scale");
  add_number (b, e->logit_scale);
}

/* The vector at unit length: the scale a modality's head applies means nothing to a vector
 * database. A zero vector stays zero. Only finite vectors get here (see
 * gst_image_bind_publish_embedding_is_finite ()): a NaN is never sent as a number. */
static void
add_unit_vector (JsonBuilder * b, const GstImageBindEmbeddingMeta * e)
{
  gdouble norm = 0;
  guint i;

  for (i = 0; i < e->dim; i++)
    norm += (gdouble) e->vector[i] * e->vector[i];
  norm = norm > 0 ? sqrt (norm) : 1.0;
  json_builder_set_member_name (b, "vector");
  json_builder_begin_array (b);
  for (i = 0; i < e->dim; i++)
    json_builder_add_double_value (b, e->vector[i] / norm);
  json_builder_end_array (b);
}

gboolean
gst_image_bind_publish_embedding_is_finite (const GstImageBindEmbeddingMeta * e)
{
  guint i;

  for (i = 0; i < e->dim; i++)
    if (!isfinite (e->vector[i]))
      return FALSE;
  return TRUE;
}

/* A stable point id: a UUID (version 8 layout) from a hash of what identifies the embedding. */
static gchar *
point_id (const gchar * source, const GstImageBindEmbeddingMeta * e)
{
  GChecksum *sum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 d[32];
  gsize len = sizeof (d);
  gchar *key = g_strdup_printf ("%s|%s|%s|%" G_GUINT64_FORMAT, source,
      e->model_id ? e->model_id : "", gst_image_bind_modality_to_string (e->modality),
      (guint64) e->pts);
  gchar *id;

  g_checksum_update (sum, (const guchar *) key, -1);
  g_checksum_get_digest (sum, d, &len);
  d[6] = (d[6] & 0x0f) | 0x80;
  d[8] = (d[8] & 0x3f) | 0x80;
  id = g_strdup_printf ("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
      "%02x%02x%02x%02x%02x%02x", d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9],
      d[10], d[11], d[12], d[13], d[14], d[15]);
  g_checksum_free (sum);
  g_free (key);
  return id;
}

/* A builder with an object begun; end_record () closes it and returns the node. */
static JsonBuilder *
begin_record (void)
{
  JsonBuilder *b = json_builder_new_immutable ();

  json_builder_begin_object (b);
  return b;
}

static JsonNode *
end_record (JsonBuilder * b)
{
  JsonNode *n;

  json_builder_end_object (b);
  n = json_builder_get_root (b);
  g_object_unref (b);
  return n;
}

JsonNode *
gst_image_bind_publish_embedding_record (const gchar * source,
    const GstImageBindEmbeddingMeta * e, gboolean include_vector)
{
  JsonBuilder *b = begin_record ();

  add_embedding_fields (source, b, e);
  if (include_vector)
    add_unit_vector (b, e);
  return end_record (b);
}

JsonNode *
gst_image_bind_publish_embedding_point (const gchar * source,
    const GstImageBindEmbeddingMeta * e, const GstImageBindMatchMeta * m)
{
  JsonBuilder *b = begin_record ();
  gchar *id = point_id (source, e);

  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, id);
  g_free (id);
  add_unit_vector (b, e);
  json_builder_set_member_name (b, "payload");
  json_builder_begin_object (b);
  add_embedding_fields (source, b, e);
  if (m)
    add_match_lists (b, m, FALSE);
  json_builder_end_object (b);
  return end_record (b);
}

JsonNode *
gst_image_bind_publish_match_record (const gchar * source, const GstImageBindMatchMeta * m)
{
  JsonBuilder *b = begin_record ();

  add_common (source, b, "match", m->modality, m->pts, m->duration, m->stream_time,
      m->running_time);
  json_builder_set_member_name (b, "mode");
  json_builder_add_string_value (b, gst_image_bind_match_mode_to_string (m->mode));
  add_match_lists (b, m, TRUE);
  return end_record (b);
}

/* @score: NAN for none (null) */
static JsonNode *
detection (const gchar * source, GstImageBindModality modality, GstClockTime pts,
    GstClockTime duration, GstClockTime stream_time, GstClockTime running_time,
    gboolean start, const gchar * label, guint index, gdouble score)
{
  JsonBuilder *b = begin_record ();

  add_common (source, b, "detection", modality, pts, duration, stream_time, running_time);
  json_builder_set_member_name (b, "event");
  json_builder_add_string_value (b, start ? "start" : "stop");
  json_builder_set_member_name (b, "label");
  json_builder_add_string_value (b, label ? label : "");
  json_builder_set_member_name (b, "index");
  json_builder_add_int_value (b, index);
  json_builder_set_member_name (b, "score");
  add_number (b, score);
  return end_record (b);
}

JsonNode *
gst_image_bind_publish_detection_record (const gchar * source, const GstImageBindMatchMeta * m,
    const GstImageBindMatchResult * r, gboolean start)
{
  return detection (source, m->modality, m->pts, m->duration, m->stream_time, m->running_time,
      start, r->label, r->index, r->cosine);
}

JsonNode *
gst_image_bind_publish_detection_end_record (const gchar * source,
    GstImageBindModality modality, const gchar * label, guint index)
{
  return detection (source, modality, GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE,
      GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE, FALSE, label, index, NAN);
}

gchar *
gst_image_bind_publish_batch_body (GPtrArray * batch, gboolean qdrant, gboolean lines)
{
  GString *s = g_string_new (NULL);
  guint i, n = 0;

  if (!lines)
    g_string_append (s, qdrant ? "{\"points\":[" : "[");
  for (i = 0; i < batch->len; i++) {
    JsonNode *node = gst_image_bind_publish_record_payload (g_ptr_array_index (batch, i),
        qdrant);
    gchar *json;

    if (!node)
      continue;
    json = json_to_string (node, FALSE);
    if (!lines && n > 0)
      g_string_append_c (s, ',');
    g_string_append (s, json);
    if (lines)
      g_string_append_c (s, '\n');
    g_free (json);
    n++;
  }
  if (!lines)
    g_string_append (s, qdrant ? "]}" : "]");
  return g_string_free (s, FALSE);
}
