/* Query embeddings of imagebindmatch: media cache, text batch, composition. */
#include "gstimagebindmatchqueries.h"

#include <imagebind.h>
#include "gstimagebindmediatensor.h"
#include <string.h>

/* ---- the prompts as a user writes them ---- */

gchar **
gst_image_bind_prompt_list_split (const gchar * list)
{
  GPtrArray *out = g_ptr_array_new ();
  gchar **parts;
  guint i;

  if (!list)
    list = "";
  parts = g_strsplit (list, strchr (list, ';') ? ";" : ",", -1);
  for (i = 0; parts[i]; i++) {
    gchar *entry = g_strstrip (g_strdup (parts[i]));

    if (*entry)
      g_ptr_array_add (out, entry);
    else
      g_free (entry);
  }
  g_strfreev (parts);
  g_ptr_array_add (out, NULL);
  return (gchar **) g_ptr_array_free (out, FALSE);
}

gchar *
gst_image_bind_prompt_list_join (gchar ** prompts)
{
  return g_strjoinv (";", prompts ? prompts : (gchar *[]) { NULL });
}

void
gst_image_bind_install_prompt_properties (GObjectClass * klass, guint prop_list,
    guint prop_file, GParamFlags mutable)
{
  g_object_class_install_property (klass, prop_list,
      g_param_spec_string ("prompt-list", "Prompt list",
          "The prompts as one string: entries separated by ';' (or by ',' when there is no "
          "';'), e.g. prompt-list=\"colour bars;a bouncing ball\"; the same list as 'prompts'",
          NULL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | mutable));
  g_object_class_install_property (klass, prop_file,
      g_param_spec_string ("prompts-file", "Prompts file",
          "Text file with one prompt or composed query per line ('#' comments, blank lines "
          "skipped), matched after 'prompts'", NULL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | mutable));
}

/* Appends the queries of the lines of @path to @queries. */
static gboolean
queries_from_file (const gchar * path, GPtrArray * queries, GError ** error)
{
  gchar *contents = NULL, **lines;
  GError *err = NULL;
  gboolean ok = TRUE;
  guint i;

  if (!g_file_get_contents (path, &contents, NULL, &err)) {
    g_set_error (error, err->domain, err->code, "prompts-file: %s", err->message);
    g_error_free (err);
    return FALSE;
  }
  lines = g_strsplit (contents, "\n", -1);
  g_free (contents);
  for (i = 0; ok && lines[i]; i++) {
    gchar *line = g_strstrip (lines[i]);
    GstImageBindQuery *q;

    if (!*line || *line == '#')
      continue;
    if (!g_utf8_validate (line, -1, NULL)) {
      g_set_error (error, GST_IMAGE_BIND_QUERY_ERROR, GST_IMAGE_BIND_QUERY_ERROR_SYNTAX,
          "prompts-file \"%s\" line %u: not valid UTF-8", path, i + 1);
      ok = FALSE;
    } else if ((q = gst_image_bind_query_parse (line, error))) {
      g_ptr_array_add (queries, q);
    } else {
      g_prefix_error (error, "prompts-file \"%s\" line %u: ", path, i + 1);
      ok = FALSE;
    }
  }
  g_strfreev (lines);
  return ok;
}

GPtrArray *
gst_image_bind_queries_from_prompts (gchar ** prompts, const gchar * prompts_file,
    GError ** error)
{
  GPtrArray *queries = g_ptr_array_new_with_free_func ((GDestroyNotify)
      gst_image_bind_query_unref);
  guint i;

  for (i = 0; prompts && prompts[i]; i++) {
    GstImageBindQuery *q = gst_image_bind_query_parse (prompts[i], error);

    if (!q) {
      g_prefix_error (error, "prompts entry %u: ", i);
      g_ptr_array_free (queries, TRUE);
      return NULL;
    }
    g_ptr_array_add (queries, q);
  }
  if (prompts_file && *prompts_file && !queries_from_file (prompts_file, queries, error)) {
    g_ptr_array_free (queries, TRUE);
    return NULL;
  }
  return queries;
}

/* ---- reference media ---- */

GHashTable *
gst_image_bind_media_cache_new (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

static gchar *
media_key (const GstImageBindQueryTerm * t)
{
  return g_strdup_printf ("%s:%s", gst_image_bind_modality_to_string (t->modality), t->text);
}

/* One file -> its embedding (dim floats), through the runtime's front ends. */
static gfloat *
embed_media (ImageBindContext * ctx, ImageBindModel * model, const gchar * model_path,
    const GstImageBindQueryTerm * t, GError ** error)
{
  ImageBindModality modality = (ImageBindModality) t->modality;
  GstImageBindMediaOptions options = { IMAGEBIND_DEPTH_DISPARITY };
  gfloat *out;
  gchar *user = g_strdup_printf ("the query term %s:%s",
      imagebind_modality_name (modality), t->text);
  gboolean have = imagebind_model_require_modality (model, modality, model_path, user, error);

  g_free (user);
  if (!have)
    return NULL;
  out = g_new (gfloat, imagebind_model_out_dim (model));
  if (!gst_image_bind_media_embed (ctx, model, modality, &options, t->text, out, error))
    g_clear_pointer (&out, g_free);
  return out;
}

gboolean
gst_image_bind_media_cache_fill (GHashTable * cache, GstImageBindModelHandle * handle,
    gint n_threads, GPtrArray * queries, GError ** error)
{
  ImageBindModel *model = gst_image_bind_model_handle_get_model (handle);
  ImageBindContext *ctx = NULL;
  gboolean ok = TRUE;
  guint i, k;

  for (i = 0; ok && i < queries->len; i++) {
    GstImageBindQuery *q = queries->pdata[i];

    for (k = 0; ok && k < gst_image_bind_query_get_n_terms (q); k++) {
      const GstImageBindQueryTerm *t = gst_image_bind_query_get_term (q, k);
      gchar *key;
      gfloat *emb;

      if (t->kind != GST_IMAGE_BIND_QUERY_TERM_MEDIA)
        continue;
      key = media_key (t);
      if (g_hash_table_contains (cache, key)) {
        g_free (key);
        continue;
      }
      if (!ctx) {
        ImageBindContextParams params = imagebind_context_default_params ();

        params.n_threads = n_threads;
        ctx = imagebind_context_new (model, &params);
      }
      emb = embed_media (ctx, model, gst_image_bind_model_handle_get_path (handle), t, error);
      if (emb)
        g_hash_table_insert (cache, key, emb);
      else {
        g_free (key);
        ok = FALSE;
      }
    }
  }
  g_clear_pointer (&ctx, imagebind_context_free);
  return ok;
}

gfloat *
gst_image_bind_match_embed_queries (GstImageBindModelHandle * handle, GHashTable * cache,
    GPtrArray * queries, GError ** error)
{
  guint dim = gst_image_bind_model_handle_get_dim (handle);
  gfloat scale = gst_image_bind_model_handle_get_logit_scale (handle);
  GPtrArray *texts = g_ptr_array_new ();
  gfloat *text_emb = NULL, *out;
  guint i, k, next_text = 0;

  /* All texts of all queries in one batch, in order; the other terms are checked first, so
   * that a query that cannot be used costs no text inference. */
  for (i = 0; i < queries->len; i++) {
    GstImageBindQuery *q = queries->pdata[i];

    for (k = 0; k < gst_image_bind_query_get_n_terms (q); k++) {
      const GstImageBindQueryTerm *t = gst_image_bind_query_get_term (q, k);
      gchar *key;
      gboolean missing;

      switch (t->kind) {
        case GST_IMAGE_BIND_QUERY_TERM_TEXT:
          g_ptr_array_add (texts, t->text);
          break;
        case GST_IMAGE_BIND_QUERY_TERM_MEDIA:
          key = media_key (t);
          missing = !g_hash_table_contains (cache, key);
          g_free (key);
          if (missing) {
            g_set_error (error, GST_IMAGE_BIND_QUERY_ERROR, GST_IMAGE_BIND_QUERY_ERROR_COMPOSE,
                "query \"%s\": the %s file \"%s\" was not embedded: reference files are "
                "embedded on READY->PAUSED, so queries naming new files must be set before "
                "the element leaves READY", gst_image_bind_query_get_label (q),
                gst_image_bind_modality_to_string (t->modality), t->text);
            g_ptr_array_free (texts, TRUE);
            return NULL;
          }
          break;
        case GST_IMAGE_BIND_QUERY_TERM_VECTOR:
          if (t->dim != dim) {
            g_set_error (error, GST_IMAGE_BIND_QUERY_ERROR, GST_IMAGE_BIND_QUERY_ERROR_COMPOSE,
                "query \"%s\": a vector of %u floats cannot be added to the model's %u-wide "
                "embeddings", gst_image_bind_query_get_label (q), t->dim, dim);
            g_ptr_array_free (texts, TRUE);
            return NULL;
          }
          break;
      }
    }
  }
  if (texts->len > 0) {
    text_emb = gst_image_bind_model_handle_embed_text (handle, (const gchar * const *) texts->pdata,
        texts->len, error);
    if (!text_emb) {
      g_ptr_array_free (texts, TRUE);
      return NULL;
    }
  }
  g_ptr_array_free (texts, TRUE);

  out = g_new0 (gfloat, (gsize) MAX (queries->len, 1) * dim);
  for (i = 0; i < queries->len; i++) {
    GstImageBindQuery *q = queries->pdata[i];
    guint n = gst_image_bind_query_get_n_terms (q);
    const gfloat **vectors = g_new0 (const gfloat *, MAX (n, 1));
    gdouble *weights = g_new0 (gdouble, MAX (n, 1));
    gboolean ok = TRUE;

    if (gst_image_bind_query_is_plain_text (q)) {
      /* Unchanged: the text encoder's output is the query, bit for bit. */
      memcpy (out + (gsize) i * dim, text_emb + (gsize) next_text * dim, dim * sizeof (gfloat));
      next_text++;
      g_free (vectors);
      g_free (weights);
      continue;
    }
    for (k = 0; ok && k < n; k++) {
      const GstImageBindQueryTerm *t = gst_image_bind_query_get_term (q, k);
      gchar *key;

      weights[k] = t->weight;
      switch (t->kind) {
        case GST_IMAGE_BIND_QUERY_TERM_TEXT:
          vectors[k] = text_emb + (gsize) next_text++ * dim;
          break;
        case GST_IMAGE_BIND_QUERY_TERM_MEDIA:     /* present: checked above */
          key = media_key (t);
          vectors[k] = g_hash_table_lookup (cache, key);
          g_free (key);
          break;
        case GST_IMAGE_BIND_QUERY_TERM_VECTOR:    /* of the model's width: checked above */
          vectors[k] = t->vector;
          break;
      }
    }
    if (ok && n == 0) {
      g_set_error (error, GST_IMAGE_BIND_QUERY_ERROR, GST_IMAGE_BIND_QUERY_ERROR_COMPOSE,
          "query \"%s\" has no terms", gst_image_bind_query_get_label (q));
      ok = FALSE;
    }
    if (ok && !gst_image_bind_query_compose (vectors, weights, n, dim, scale,
            out + (gsize) i * dim, error)) {
      g_prefix_error (error, "query \"%s\": ", gst_image_bind_query_get_label (q));
      ok = FALSE;
    }
    g_free (vectors);
    g_free (weights);
    if (!ok) {
      g_free (out);
      g_free (text_emb);
      return NULL;
    }
  }
  g_free (text_emb);
  return out;
}
