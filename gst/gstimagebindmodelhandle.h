/* GstImageBindModelHandle: an ImageBind model opened by an element, with its inference
 * context. The encoders (GstImageBindEncoder) hold one for their modality; imagebindmatch and
 * imagebindav hold one to embed their prompts (text) and reference media.
 *
 * It finds the model file by the shared rules (the `model` property, else $IMAGEBIND_MODEL,
 * else the shipped default: imagebind_model_find()), shares the loaded model with every other
 * element of the process through the model cache (one mapping per file), checks that the
 * model has the modality the element needs (and a tokenizer for text), and turns a failure
 * into an element error a user can act on. Installed and exported on purpose: it is how the
 * plugin's elements share models with the encoders, through the library's one model cache
 * (internal), so it must live in the shared library; an application's own element can use it
 * the same way.
 *
 *   GError *err = NULL;
 *   GstImageBindModelHandle *h = gst_image_bind_model_handle_open (path_or_null,
 *       IMAGEBIND_MODALITY_TEXT, "imagebindmatch", 0, &err);
 *   if (!h) { gst_image_bind_model_handle_post_error (element, err); ... }
 *   gfloat *emb = gst_image_bind_model_handle_embed_text (h, texts, n, &err);  // n x dim
 *   gst_image_bind_model_handle_close (h);
 *
 * One handle holds one inference context: use it from one thread at a time.
 */
#ifndef __GST_IMAGE_BIND_MODEL_HANDLE_H__
#define __GST_IMAGE_BIND_MODEL_HANDLE_H__

#include <gst/gst.h>
#include <imagebind.h>
#include "gstimagebindprelude.h"

G_BEGIN_DECLS

typedef struct _GstImageBindModelHandle GstImageBindModelHandle;

/* Loads (or shares) the model at @path (NULL or "" = the default rules) and checks that it has
 * @modality (and a tokenizer for text); @user names what needs it in the message (an element
 * name, "embedding text"). @n_threads: threads per inference, 0 = all cores.
 * Errors: G_FILE_ERROR (no model file found, or it cannot be resolved) or IMAGEBIND_ERROR
 * (unreadable, invalid, IMAGEBIND_ERROR_NO_MODALITY, IMAGEBIND_ERROR_NO_TOKENIZER); messages
 * name the file and where its path came from. */
GST_IMAGE_BIND_API
GstImageBindModelHandle *gst_image_bind_model_handle_open (const gchar * path,
    ImageBindModality modality, const gchar * user, gint n_threads, GError ** error);
GST_IMAGE_BIND_API
void gst_image_bind_model_handle_close (GstImageBindModelHandle * handle);

/* Posts @error of gst_image_bind_model_handle_open() as a GST_ELEMENT_ERROR a user can act on:
 * RESOURCE NOT_FOUND (no file), OPEN_READ (unreadable) or FAILED (not a usable model, or not
 * for this element). */
GST_IMAGE_BIND_API
void gst_image_bind_model_handle_post_error (GstElement * element, const GError * error);

GST_IMAGE_BIND_API
ImageBindModel *gst_image_bind_model_handle_get_model (GstImageBindModelHandle * handle);
GST_IMAGE_BIND_API
ImageBindContext *gst_image_bind_model_handle_get_context (GstImageBindModelHandle * handle);
/* The resolved (canonical) file. */
GST_IMAGE_BIND_API
const gchar *gst_image_bind_model_handle_get_path (GstImageBindModelHandle * handle);
/* "<general.name>:<file basename>", as the encoders put in their metas' model_id. */
GST_IMAGE_BIND_API
const gchar *gst_image_bind_model_handle_get_id (GstImageBindModelHandle * handle);
GST_IMAGE_BIND_API
guint gst_image_bind_model_handle_get_dim (GstImageBindModelHandle * handle);
/* The logit scale of the modality the handle was opened for (the factor its embeddings
 * carry). */
GST_IMAGE_BIND_API
gfloat gst_image_bind_model_handle_get_logit_scale (GstImageBindModelHandle * handle);

/* Tokenises and embeds @n_texts UTF-8 strings as one batch (a handle opened for text): a
 * newly allocated array of @n_texts x dim floats (g_free), each row as the model outputs it
 * (L2-normalised times the text logit scale). NULL and @error on invalid UTF-8 or an inference
 * failure. */
GST_IMAGE_BIND_API
gfloat *gst_image_bind_model_handle_embed_text (GstImageBindModelHandle * handle,
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
GST_IMAGE_BIND_API
gchar *gst_image_bind_model_query_upstream (GstPad * sinkpad, gchar ** model_id);
/* The file of the model with id @model_id ("<name>:<file>", an embedding meta's model_id)
 * when it is loaded in this process (by an encoder), else NULL (g_free). */
GST_IMAGE_BIND_API
gchar *gst_image_bind_model_find_loaded (const gchar * model_id);
/* For the encoders: whether @query is the model query, and the answer. */
GST_IMAGE_BIND_API
gboolean gst_image_bind_model_query_is (GstQuery * query);
GST_IMAGE_BIND_API
void gst_image_bind_model_query_set (GstQuery * query, const gchar * path,
    const gchar * model_id);

G_END_DECLS

#endif
