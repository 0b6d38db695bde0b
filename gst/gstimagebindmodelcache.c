/* Process-wide model cache: canonical path -> (model, number of users). */
#include "gstimagebindmodelcache.h"

#include <errno.h>
#include <stdlib.h>

typedef struct {
  ImageBindModel *model;
  guint users;
} CacheEntry;

static GMutex cache_lock;
static GHashTable *cache;       /* gchar *canonical path -> CacheEntry * */

static void
cache_entry_free (CacheEntry * entry)
{
  imagebind_model_unref (entry->model);
  g_free (entry);
}

gchar *
gst_image_bind_model_path_resolve (const gchar * property, gchar ** tried)
{
  const gchar *env = g_getenv ("IMAGEBIND_MODEL");

  if (property && *property)
    return g_strdup (property);
  if (env && *env)
    return g_strdup (env);
  if (g_file_test (GST_IMAGEBIND_DEFAULT_MODEL_INSTALLED, G_FILE_TEST_IS_REGULAR))
    return g_strdup (GST_IMAGEBIND_DEFAULT_MODEL_INSTALLED);
  if (g_file_test (GST_IMAGEBIND_DEFAULT_MODEL_SOURCE, G_FILE_TEST_IS_REGULAR))
    return g_strdup (GST_IMAGEBIND_DEFAULT_MODEL_SOURCE);
  if (tried)
    *tried = g_strdup_printf ("the 'model' property and $IMAGEBIND_MODEL are unset, and "
        "neither %s nor %s exists", GST_IMAGEBIND_DEFAULT_MODEL_INSTALLED,
        GST_IMAGEBIND_DEFAULT_MODEL_SOURCE);
  return NULL;
}

ImageBindModel *
gst_image_bind_model_cache_acquire (const gchar * path, gchar ** canonical_path, GError ** error)
{
  char *resolved;
  CacheEntry *entry;
  ImageBindModel *model = NULL;

  g_return_val_if_fail (path != NULL, NULL);

  /* Symlinks and relative paths resolve to one key, so one file is mapped once. */
  resolved = realpath (path, NULL);
  if (!resolved) {
    int saved = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "%s", g_strerror (saved));
    return NULL;
  }

  g_mutex_lock (&cache_lock);
  if (!cache)
    cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
        (GDestroyNotify) cache_entry_free);

  entry = g_hash_table_lookup (cache, resolved);
  if (entry) {
    entry->users++;
    model = imagebind_model_ref (entry->model);
  } else {
    /* Loading under the lock: a second element asking for the same file waits and then
     * shares the result instead of mapping the file again. */
    model = imagebind_model_load (resolved, error);
    if (model) {
      entry = g_new0 (CacheEntry, 1);
      entry->model = imagebind_model_ref (model);
      entry->users = 1;
      g_hash_table_insert (cache, g_strdup (resolved), entry);
    }
  }
  g_mutex_unlock (&cache_lock);

  if (model && canonical_path)
    *canonical_path = g_strdup (resolved);
  free (resolved);
  return model;
}

void
gst_image_bind_model_cache_release (ImageBindModel * model)
{
  GHashTableIter iter;
  gpointer key, value;

  if (!model)
    return;

  g_mutex_lock (&cache_lock);
  if (cache) {
    g_hash_table_iter_init (&iter, cache);
    while (g_hash_table_iter_next (&iter, &key, &value)) {
      CacheEntry *entry = value;
      if (entry->model == model) {
        if (--entry->users == 0)
          g_hash_table_iter_remove (&iter);
        break;
      }
    }
    if (g_hash_table_size (cache) == 0)
      g_clear_pointer (&cache, g_hash_table_unref);
  }
  g_mutex_unlock (&cache_lock);

  imagebind_model_unref (model);
}
