/* GstImageBindTextModel: model lookup, sharing and text embedding for the text elements. */
#include "gstimagebindtextmodel.h"
#include "gstimagebindmodelcache.h"

#include <imagebind-tokenizer.h>

/* Sequences embedded per runtime call: bounds the scratch memory of a long prompt list. */
#define TEXT_BATCH 16

struct _GstImageBindTextModel {
  ImageBindModel *model;        /* from the model cache */
  ImageBindContext *ctx;
  const ImageBindTokenizer *tok;        /* owned by the model */
  gchar *path;
  gchar *id;
  guint dim;
  guint context_length;
  gfloat logit_scale;
};

GstImageBindTextModel *
gst_image_bind_text_model_open (const gchar * path, gint n_threads, GError ** error)
{
  GstImageBindTextModel *tm;
  ImageBindContextParams params = imagebind_context_default_params ();
  ImageBindInputGeometry geometry;
  GError *err = NULL;
  gchar *canonical = NULL, *base;
  const gchar *name;

  tm = g_new0 (GstImageBindTextModel, 1);
  tm->model = gst_image_bind_model_cache_open (path, &canonical, error);
  if (!tm->model)
    goto fail;
  tm->path = canonical;

  if (!imagebind_model_require_modality (tm->model, IMAGEBIND_MODALITY_TEXT, tm->path,
          "embedding text", error))
    goto fail;
  tm->tok = imagebind_model_get_tokenizer (tm->model, &err);
  if (!tm->tok) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_NO_TOKENIZER,
        "ImageBind model \"%s\" cannot tokenise text: %s.", tm->path, err->message);
    goto fail;
  }

  params.n_threads = n_threads;
  tm->ctx = imagebind_context_new (tm->model, &params);
  imagebind_model_input_geometry (tm->model, &geometry);
  tm->context_length = geometry.context_length;
  tm->dim = imagebind_model_out_dim (tm->model);
  tm->logit_scale = imagebind_model_logit_scale (tm->model, IMAGEBIND_MODALITY_TEXT);
  name = imagebind_model_name (tm->model);
  base = g_path_get_basename (canonical);
  tm->id = g_strdup_printf ("%s:%s", name ? name : "", base);
  g_free (base);
  return tm;

fail:
  g_clear_error (&err);
  gst_image_bind_text_model_close (tm);
  return NULL;
}

void
gst_image_bind_text_model_close (GstImageBindTextModel * tm)
{
  if (!tm)
    return;
  g_clear_pointer (&tm->ctx, imagebind_context_free);
  if (tm->model)
    gst_image_bind_model_cache_release (tm->model);
  g_free (tm->path);
  g_free (tm->id);
  g_free (tm);
}

void
gst_image_bind_text_model_post_error (GstElement * element, const GError * error)
{
  /* The messages of gst_image_bind_text_model_open() are those of the model cache. */
  gst_image_bind_model_post_error (element, error);
}

ImageBindModel *
gst_image_bind_text_model_get_model (GstImageBindTextModel * tm)
{
  g_return_val_if_fail (tm != NULL, NULL);
  return tm->model;
}

const gchar *
gst_image_bind_text_model_get_path (GstImageBindTextModel * tm)
{
  g_return_val_if_fail (tm != NULL, NULL);
  return tm->path;
}

const gchar *
gst_image_bind_text_model_get_id (GstImageBindTextModel * tm)
{
  g_return_val_if_fail (tm != NULL, NULL);
  return tm->id;
}

guint
gst_image_bind_text_model_get_dim (GstImageBindTextModel * tm)
{
  g_return_val_if_fail (tm != NULL, 0);
  return tm->dim;
}

gfloat
gst_image_bind_text_model_get_logit_scale (GstImageBindTextModel * tm)
{
  g_return_val_if_fail (tm != NULL, 1.0f);
  return tm->logit_scale;
}

gfloat *
gst_image_bind_text_model_embed (GstImageBindTextModel * tm, const gchar * const *texts,
    guint n_texts, GError ** error)
{
  gint32 *ids;
  gfloat *out;
  guint i, first;

  g_return_val_if_fail (tm != NULL, NULL);
  g_return_val_if_fail (texts != NULL || n_texts == 0, NULL);

  out = g_new0 (gfloat, (gsize) MAX (n_texts, 1) * tm->dim);
  ids = g_new0 (gint32, (gsize) TEXT_BATCH * tm->context_length);
  for (first = 0; first < n_texts; first += TEXT_BATCH) {
    guint n = MIN (TEXT_BATCH, n_texts - first);

    for (i = 0; i < n; i++) {
      if (!imagebind_tokenize (tm->tok, texts[first + i], -1,
              ids + (gsize) i * tm->context_length, tm->context_length, error))
        goto fail;
    }
    if (!imagebind_embed_text (tm->ctx, ids, n, out + (gsize) first * tm->dim, error))
      goto fail;
  }
  g_free (ids);
  return out;

fail:
  g_free (ids);
  g_free (out);
  return NULL;
}

/* ---- the encoders' model ---- */

#define MODEL_QUERY_NAME "GstImageBindModelQuery"

gboolean
gst_image_bind_model_query_is (GstQuery * query)
{
  const GstStructure *s;

  if (GST_QUERY_TYPE (query) != GST_QUERY_CUSTOM)
    return FALSE;
  s = gst_query_get_structure (query);
  return s && gst_structure_has_name (s, MODEL_QUERY_NAME);
}

void
gst_image_bind_model_query_set (GstQuery * query, const gchar * path, const gchar * model_id)
{
  GstStructure *s;

  g_return_if_fail (gst_image_bind_model_query_is (query));
  s = gst_query_writable_structure (query);
  gst_structure_set (s, "path", G_TYPE_STRING, path, "model-id", G_TYPE_STRING,
      model_id ? model_id : "", NULL);
}

gchar *
gst_image_bind_model_query_upstream (GstPad * sinkpad, gchar ** model_id)
{
  GstQuery *query;
  const GstStructure *s;
  gchar *path = NULL;

  g_return_val_if_fail (GST_IS_PAD (sinkpad), NULL);

  query = gst_query_new_custom (GST_QUERY_CUSTOM, gst_structure_new_empty (MODEL_QUERY_NAME));
  if (gst_pad_peer_query (sinkpad, query)) {
    s = gst_query_get_structure (query);
    path = g_strdup (gst_structure_get_string (s, "path"));
    if (model_id)
      *model_id = g_strdup (gst_structure_get_string (s, "model-id"));
  }
  gst_query_unref (query);
  return path;
}

gchar *
gst_image_bind_model_find_loaded (const gchar * model_id)
{
  g_return_val_if_fail (model_id != NULL, NULL);
  return gst_image_bind_model_cache_find (model_id);
}
