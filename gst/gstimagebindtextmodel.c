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

/* The same rules as the encoder elements: gst_image_bind_model_path_resolve(). */
static gchar *
resolve_path (const gchar * path, GError ** error)
{
  gchar *tried = NULL;
  gchar *resolved = gst_image_bind_model_path_resolve (path, &tried);

  if (!resolved)
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
        "No ImageBind model: set the 'model' property to a .gguf file (see README); %s", tried);
  g_free (tried);
  return resolved;
}

GstImageBindTextModel *
gst_image_bind_text_model_open (const gchar * path, gint n_threads, GError ** error)
{
  GstImageBindTextModel *tm;
  ImageBindContextParams params = imagebind_context_default_params ();
  ImageBindInputGeometry geometry;
  GError *err = NULL;
  gchar *resolved, *canonical = NULL, *base;
  const gchar *name;

  resolved = resolve_path (path, error);
  if (!resolved)
    return NULL;

  tm = g_new0 (GstImageBindTextModel, 1);
  tm->model = gst_image_bind_model_cache_acquire (resolved, &canonical, &err);
  if (!tm->model) {
    if (err->domain == G_FILE_ERROR)
      g_set_error (error, G_FILE_ERROR, err->code,
          "ImageBind model file \"%s\" cannot be opened: %s", resolved, err->message);
    else
      g_set_error (error, err->domain, err->code, "\"%s\" is not a usable ImageBind model: %s",
          resolved, err->message);
    goto fail;
  }
  tm->path = canonical;

  if (!imagebind_model_require_modality (tm->model, IMAGEBIND_MODALITY_TEXT, resolved,
          "embedding text", error))
    goto fail;
  tm->tok = imagebind_model_get_tokenizer (tm->model, &err);
  if (!tm->tok) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_NO_TOKENIZER,
        "ImageBind model \"%s\" cannot tokenise text: %s", resolved, err->message);
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
  g_free (resolved);
  return tm;

fail:
  g_clear_error (&err);
  g_free (resolved);
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
  g_return_if_fail (GST_IS_ELEMENT (element));
  g_return_if_fail (error != NULL);

  if (error->domain == G_FILE_ERROR) {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND, ("%s.", error->message),
        ("no usable model file"));
  } else if (error->domain == IMAGEBIND_ERROR && error->code == IMAGEBIND_ERROR_FILE) {
    GST_ELEMENT_ERROR (element, RESOURCE, OPEN_READ, ("%s.", error->message),
        ("imagebind_model_load failed"));
  } else {
    GST_ELEMENT_ERROR (element, RESOURCE, FAILED, ("%s.", error->message),
        ("the model cannot embed text"));
  }
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
