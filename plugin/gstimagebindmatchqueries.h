/* The query embeddings of imagebindmatch, apart from the element: reference media files
 * embedded into a cache (on READY->PAUSED, never on the streaming thread), text terms embedded
 * as one batch, and each query composed from its terms (gst_image_bind_query_compose()). */
#ifndef __GST_IMAGE_BIND_MATCH_QUERIES_H__
#define __GST_IMAGE_BIND_MATCH_QUERIES_H__

#include <gst/gst.h>
#include "gstimagebindquery.h"
#include "gstimagebindmodelhandle.h"

G_BEGIN_DECLS

/* ---- the prompts as a user writes them ---- */

/* `prompt-list`: "colour bars;a bouncing ball;static noise" -> its entries (g_strfreev): split
 * at ';' when there is one, else at ','; each entry without its surrounding spaces; empty
 * entries dropped (so "a dog, running;" is one prompt holding a comma). */
gchar **gst_image_bind_prompt_list_split (const gchar * list);
/* The inverse for reading the property back: the entries joined with ";" (g_free). */
gchar *gst_image_bind_prompt_list_join (gchar ** prompts);

/* Installs the `prompt-list` and `prompts-file` properties (ids @prop_list, @prop_file) of
 * imagebindmatch and imagebindav; @mutable: GST_PARAM_MUTABLE_READY or _PLAYING. */
void gst_image_bind_install_prompt_properties (GObjectClass * klass, guint prop_list,
    guint prop_file, GParamFlags mutable);

/* The queries of @prompts (the entries of `prompts`), then of the lines of @prompts_file when
 * set (one prompt or composed query per line; blank lines and lines starting with '#', after
 * spaces, are skipped; surrounding spaces removed), parsed with gst_image_bind_query_parse(),
 * in a GPtrArray of GstImageBindQuery. NULL and @error naming the entry (its index, or the file
 * and line number): GST_IMAGE_BIND_QUERY_ERROR for syntax and invalid UTF-8, G_FILE_ERROR when
 * the file cannot be read. */
GPtrArray *gst_image_bind_queries_from_prompts (gchar ** prompts, const gchar * prompts_file,
    GError ** error);

/* A cache of media embeddings: key "<modality>:<path>", value dim floats as the model outputs
 * them (g_free). */
GHashTable *gst_image_bind_media_cache_new (void);

/* Decodes and embeds every media term of @queries (GstImageBindQuery) not yet in @cache, with
 * the model of @handle and a context of @n_threads threads. Slow (decoding, an encoder pass per
 * file): call it where waiting is allowed (a state change). FALSE and @error naming the file
 * when one cannot be read or the model lacks its modality. */
gboolean gst_image_bind_media_cache_fill (GHashTable * cache, GstImageBindModelHandle * handle,
    gint n_threads, GPtrArray * queries, GError ** error);

/* The embeddings of @queries: a newly allocated array of n x dim floats (g_free), dim the
 * model's. A plain text query (gst_image_bind_query_is_plain_text()) is the text encoder's
 * output as is (L2-normalised times the text logit scale); any other query is composed from
 * its terms (texts embedded now, media from @cache, vectors as given) and multiplied by the
 * text logit scale. NULL and @error when a media term is not in @cache (say so), a vector has
 * another width than the model's, the terms cancel out, or the text encoder fails. */
gfloat *gst_image_bind_match_embed_queries (GstImageBindModelHandle * handle, GHashTable * cache,
    GPtrArray * queries, GError ** error);

G_END_DECLS

#endif
