/* GstImageBindModelHandle: model lookup, sharing, checks and errors for the elements. */
#include "gstimagebindmodelhandle.h"
#include "gstimagebindmodelcache.h"

#include <imagebind-tokenizer.h>

/* Sequences embedded per runtime call: bounds the scratch memory of a long prompt list. */
#define TEXT_BATCH 16

struct _GstImageBindModelHandle {
  ImageBindModel *model;        /* from the model cache */
  ImageBindContext *ctx;
  const ImageBindTokenizer *tok;        /* owned by the model; text handles only */
  gchar *path;
  gchar *id;
  guint dim;
  guint context_length;
  gfloat logit_scale;
};

GstImageBindModelHandle *
gst_image_bind_model_handle_open (const gchar * path, ImageBindModality modality,
    const gchar * user, gint n_threads, GError ** error)
{
  GstImageBindModelHandle *h;
  ImageBindContextParams params = imagebind_context_default_params ();
  ImageBindInputGeometry geometry;
  GError *err = NULL;
  gchar *base;
  const gchar *name;

  h = g_new0 (GstImageBindModelHandle, 1);
  h->model = gst_image_bind_model_cache_open (path, &h->path, error);
  if (!h->model)
    goto fail;

  /* e.g. a CLIP-family file (vision and text only) in imagebindaudio */
  if (!imagebind_model_require_modality (h->model, modality, h->path, user, &err)) {
    g_set_error (error, err->domain, err->code, "%s.", err->message);
    goto fail;
  }
  if (modality == IMAGEBIND_MODALITY_TEXT) {
    h->tok = imagebind_model_get_tokenizer (h->model, &err);
    if (!h->tok) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_NO_TOKENIZER,
          "ImageBind model \"%s\" cannot tokenise text: %s.", h->path, err->message);
      goto fail;
    }
  }

  params.n_threads = n_threads;
  h->ctx = imagebind_context_new (h->model, &params);
  imagebind_model_input_geometry (h->model, &geometry);
  h->context_length = geometry.context_length;
  h->dim = imagebind_model_out_dim (h->model);
  h->logit_scale = imagebind_model_logit_scale (h->model, modality);
  name = imagebind_model_name (h->model);
  base = g_path_get_basename (h->path);
  h->id = g_strdup_printf ("%s:%s", name ? name : "", base);
  g_free (base);
  return h;

fail:
  g_clear_error (&err);
  gst_image_bind_model_handle_close (h);
  return NULL;
}

void
gst_image_bind_model_handle_close (GstImageBindModelHandle * h)
{
  if (!h)
    return;
  g_clear_pointer (&h->ctx, imagebind_context_free);
  if (h->model)
    gst_image_bind_model_cache_release (h->model);
  g_free (h->path);
  g_free (h->id);
  g_free (h);
}

void
gst_image_bind_model_handle_post_error (GstElement * element, const GError * error)
{
  g_return_if_fail (GST_IS_ELEMENT (element));
  g_return_if_fail (error != NULL);

  /* The messages end with a full stop or a remedy already. */
  if (error->domain == G_FILE_ERROR) {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND, ("%s", error->message),
        ("no usable model file"));
  } else if (error->domain == IMAGEBIND_ERROR && error->code == IMAGEBIND_ERROR_FILE) {
    GST_ELEMENT_ERROR (element, RESOURCE, OPEN_READ, ("%s", error->message),
        ("imagebind_model_load failed"));
  } else {
    const gchar *debug = "the model cannot be used";

    if (g_error_matches (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_NO_MODALITY))
      debug = "choose a model with this modality";
    else if (g_error_matches (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_NO_TOKENIZER))
      debug = "the model has a text encoder but no tokenizer";
    GST_ELEMENT_ERROR (element, RESOURCE, FAILED, ("%s", error->message), ("%s", debug));
  }
}

ImageBindModel *
gst_image_bind_model_handle_get_model (GstImageBindModelHandle * h)
{
  g_return_val_if_fail (h != NULL, NULL);
  return h->model;
}

ImageBindContext *
gst_image_bind_model_handle_get_context (GstImageBindModelHandle * h)
{
  g_return_val_if_fail (h != NULL, NULL);
  return h->ctx;
}

const gchar *
gst_image_bind_model_handle_get_path (GstImageBindModelHandle * h)
{
  g_return_val_if_fail (h != NULL, NULL);
  return h->path;
}

const gchar *
gst_image_bind_model_handle_get_id (GstImageBindModelHandle * h)
{
  g_return_val_if_fail (h != NULL, NULL);
  return h->id;
}

guint
gst_image_bind_model_handle_get_dim (GstImageBindModelHandle * h)
{
  g_return_val_if_fail (h != NULL, 0);
  return h->dim;
}

gfloat
gst_image_bind_model_handle_get_logit_scale (GstImageBindModelHandle * h)
{
  g_return_val_if_fail (h != NULL, 1.0f);
  return h->logit_scale;
}

gfloat *
gst_image_bind_model_handle_embed_text (GstImageBindModelHandle * h, const gchar * const *texts,
    guint n_texts, GError ** error)
{
  gint32 *ids;
  gfloat *out;
  guint i, first;

  g_return_val_if_fail (h != NULL, NULL);
  g_return_val_if_fail (texts != NULL || n_texts == 0, NULL);
  g_return_val_if_fail (h->tok != NULL, NULL);

  out = g_new0 (gfloat, (gsize) MAX (n_texts, 1) * h->dim);
  ids = g_new0 (gint32, (gsize) TEXT_BATCH * h->context_length);
  for (first = 0; first < n_texts; first += TEXT_BATCH) {
    guint n = MIN (TEXT_BATCH, n_texts - first);

    for (i = 0; i < n; i++) {
      if (!imagebind_tokenize (h->tok, texts[first + i], -1,
              ids + (gsize) i * h->context_length, h->context_length, error))
        goto fail;
    }
    if (!imagebind_embed_text (h->ctx, ids, n, out + (gsize) first * h->dim, error))
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
