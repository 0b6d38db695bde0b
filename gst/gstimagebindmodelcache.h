/* Process-wide cache of loaded models, keyed by canonical file path, so that several elements
 * using the same file share one ImageBindModel (one mapping). Entries are dropped when their
 * last user releases them. Internal to libgstimagebind. */
#ifndef __GST_IMAGE_BIND_MODEL_CACHE_H__
#define __GST_IMAGE_BIND_MODEL_CACHE_H__

#include <gst/gst.h>
#include <imagebind.h>

G_BEGIN_DECLS

/* A reference to the model at @path (loaded on first use); NULL and @error on failure
 * (G_FILE_ERROR when the path cannot be resolved, IMAGEBIND_ERROR from the loader).
 * @canonical_path (optional) receives the resolved path (g_free). */
G_GNUC_INTERNAL
ImageBindModel *gst_image_bind_model_cache_acquire (const gchar * path, gchar ** canonical_path,
    GError ** error);

/* The model an element loads (@property, else $IMAGEBIND_MODEL, else the shipped default:
 * imagebind_model_find()), from the cache. NULL and @error, a sentence a user can act on,
 * naming the file and where its path came from: G_FILE_ERROR when there is no file (NOENT:
 * none found or the path does not exist; ISDIR: a directory; other codes from realpath),
 * IMAGEBIND_ERROR from the loader. @canonical_path (optional) receives the resolved path
 * (g_free). */
G_GNUC_INTERNAL
ImageBindModel *gst_image_bind_model_cache_open (const gchar * property, gchar ** canonical_path,
    GError ** error);

/* The canonical path of the loaded model whose id ("<general.name>:<file basename>", as in
 * the embedding metas) is @model_id, when exactly one loaded model has it; else NULL. */
G_GNUC_INTERNAL
gchar *gst_image_bind_model_cache_find (const gchar * model_id);

/* Gives back a model from gst_image_bind_model_cache_acquire(). */
G_GNUC_INTERNAL
void gst_image_bind_model_cache_release (ImageBindModel * model);

G_END_DECLS

#endif
