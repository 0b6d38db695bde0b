/* GstImageBindTextModel: the text side of an ImageBind model, for the elements that embed text
 * (imagebindmatch for its prompts, imagebindtext for text buffers).
 *
 * It finds the model file with the encoders' rules (the `model` property, else
 * $IMAGEBIND_MODEL, else the shipped default), shares the loaded model with every other element
 * of the process through the model cache (one mapping per file), and tokenises and embeds
 * strings. Not installed: an interface between libgstimagebind and the plugin (the model cache
 * itself is internal to the library).
 *
 *   GError *err = NULL;
 *   GstImageBindTextModel *tm = gst_image_bind_text_model_open (path_or_null, 0, &err);
 *   if (!tm) { gst_image_bind_text_model_post_error (element, err); ... }
 *   gfloat *emb = gst_image_bind_text_model_embed (tm, texts, n, &err);  // n x dim
 *   gst_image_bind_text_model_close (tm);
 *
 * One GstImageBindTextModel holds one inference context: use it from one thread at a time.
 */
#ifndef __GST_IMAGE_BIND_TEXT_MODEL_H__
#define __GST_IMAGE_BIND_TEXT_MODEL_H__

#include <gst/gst.h>
#include <imagebind.h>

G_BEGIN_DECLS

typedef struct _GstImageBindTextModel GstImageBindTextModel;

/* Loads (or shares) the model at @path (NULL or "" = the default rules) and checks that it has
 * a text encoder and a tokenizer. @n_threads: threads per inference, 0 = all cores.
 * Errors: G_FILE_ERROR (no model file found, or it cannot be resolved) or IMAGEBIND_ERROR
 * (unreadable, invalid, no text encoder, no tokenizer); messages name the file. */
GstImageBindTextModel *gst_image_bind_text_model_open (const gchar * path, gint n_threads,
    GError ** error);
void gst_image_bind_text_model_close (GstImageBindTextModel * tm);

/* Posts @error of gst_image_bind_text_model_open() as a GST_ELEMENT_ERROR a user can act on
 * (RESOURCE NOT_FOUND / OPEN_READ / FAILED). */
void gst_image_bind_text_model_post_error (GstElement * element, const GError * error);

ImageBindModel *gst_image_bind_text_model_get_model (GstImageBindTextModel * tm);
/* The resolved file. */
const gchar *gst_image_bind_text_model_get_path (GstImageBindTextModel * tm);
/* "<general.name>:<file basename>", as the encoders put in their metas' model_id. */
const gchar *gst_image_bind_text_model_get_id (GstImageBindTextModel * tm);
guint gst_image_bind_text_model_get_dim (GstImageBindTextModel * tm);
/* The text head's logit scale (the factor the text embeddings carry). */
gfloat gst_image_bind_text_model_get_logit_scale (GstImageBindTextModel * tm);

/* Tokenises and embeds @n_texts UTF-8 strings as one batch: a newly allocated array of
 * @n_texts x dim floats (g_free), each row as the model outputs it (L2-normalised times the
 * text logit scale). NULL and @error on invalid UTF-8 or an inference failure. */
gfloat *gst_image_bind_text_model_embed (GstImageBindTextModel * tm,
    const gchar * const *texts, guint n_texts, GError ** error);

/* ---- the encoders' model ----
 *
 * imagebindmatch and imagebindav embed their prompts with the model of the encoders upstream
 * when their own `model` is unset. They ask with a custom query (GST_QUERY_CUSTOM, structure
 * "GstImageBindModelQuery") that travels upstream through ordinary elements (queue,
 * videoconvert, tee, ...) to the nearest encoder, which answers from READY on (its model is
 * loaded on NULL->READY, before downstream elements go READY->PAUSED). */

/* Asks upstream of @sinkpad: the canonical path of the encoder's model file (g_free), or NULL
 * when no encoder answers (@model_id, optional, receives its "<name>:<file>"). */
gchar *gst_image_bind_model_query_upstream (GstPad * sinkpad, gchar ** model_id);
/* The file of the model with id @model_id ("<name>:<file>", an embedding meta's model_id)
 * when it is loaded in this process (by an encoder), else NULL (g_free). */
gchar *gst_image_bind_model_find_loaded (const gchar * model_id);
/* For the encoders: whether @query is the model query, and the answer. */
gboolean gst_image_bind_model_query_is (GstQuery * query);
void gst_image_bind_model_query_set (GstQuery * query, const gchar * path,
    const gchar * model_id);

G_END_DECLS

#endif
