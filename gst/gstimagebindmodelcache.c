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

/* " It holds a.gguf, b.gguf." for a directory given as the model, or "". */
static gchar *
gguf_files_in (const gchar * dir_path)
{
  GDir *dir = g_dir_open (dir_path, 0, NULL);
  GString *list = g_string_new (NULL);
  const gchar *name;
  guint n = 0;

  while (dir && (name = g_dir_read_name (dir))) {
    if (!g_str_has_suffix (name, ".gguf"))
      continue;
    if (n < 3)
      g_string_append_printf (list, "%s%s", n ? ", " : " It holds ", name);
    n++;
  }
  if (n > 3)
    g_string_append_printf (list, " and %u more", n - 3);
  if (n > 0)
    g_string_append (list, ".");
  if (dir)
    g_dir_close (dir);
  return g_string_free (list, FALSE);
}

ImageBindModel *
gst_image_bind_model_cache_open (const gchar * property, gchar ** canonical_path,
    GError ** error)
{
  ImageBindModelOrigin from;
  const gchar *remedy, *described;
  gchar *path, *origin;
  GError *err = NULL;
  ImageBindModel *model;

  path = imagebind_model_find (property, &from, &err);
  if (!path) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
        "No ImageBind model: set the 'model' property to a .gguf file (see README); the "
        "'model' property and $IMAGEBIND_MODEL are unset, and %s.", err->message);
    g_clear_error (&err);
    return NULL;
  }
  /* messages say where the path came from: "" (the 'model' property), " (from
   * $IMAGEBIND_MODEL)" or " (the shipped default model)" */
  described = imagebind_model_origin_describe (from);
  origin = described ? g_strdup_printf (" (%s)", described) : g_strdup ("");
  remedy = from == IMAGEBIND_MODEL_ORIGIN_ENVIRONMENT ?
      " Unset IMAGEBIND_MODEL or point it at a model file, or set the 'model' property." : "";

  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    gchar *holds = gguf_files_in (path);

    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_ISDIR,
        "ImageBind model \"%s\"%s is a directory, not a model file: give the path of a .gguf "
        "file.%s%s", path, origin, holds, remedy);
    g_free (holds);
    g_free (path);
    g_free (origin);
    return NULL;
  }

  model = gst_image_bind_model_cache_acquire (path, canonical_path, &err);
  if (!model) {
    if (err->domain == G_FILE_ERROR)
      g_set_error (error, G_FILE_ERROR, err->code,
          "ImageBind model file \"%s\"%s cannot be opened: %s.%s", path, origin, err->message,
          remedy);
    else if (err->domain == IMAGEBIND_ERROR && err->code == IMAGEBIND_ERROR_FILE)
      g_set_error (error, err->domain, err->code,
          "Could not read ImageBind model file \"%s\"%s: %s.%s", path, origin, err->message,
          remedy);
    else
      g_set_error (error, err->domain, err->code,
          "\"%s\"%s is not a usable ImageBind model: %s.%s", path, origin, err->message,
          remedy);
    g_clear_error (&err);
  }
  g_free (path);
  g_free (origin);
  return model;
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

gchar *
gst_image_bind_model_cache_find (const gchar * model_id)
{
  GHashTableIter iter;
  gpointer key, value;
  gchar *found = NULL;
  guint n = 0;

  g_return_val_if_fail (model_id != NULL, NULL);

  g_mutex_lock (&cache_lock);
  if (cache) {
    g_hash_table_iter_init (&iter, cache);
    while (g_hash_table_iter_next (&iter, &key, &value)) {
      CacheEntry *entry = value;
      const gchar *name = imagebind_model_name (entry->model);
      gchar *base = g_path_get_basename (key);
      gchar *id = g_strdup_printf ("%s:%s", name ? name : "", base);

      if (g_str_equal (id, model_id)) {
        n++;
        g_free (found);
        found = g_strdup (key);
      }
      g_free (id);
      g_free (base);
    }
  }
  g_mutex_unlock (&cache_lock);
  if (n != 1)
    g_clear_pointer (&found, g_free);
  return found;
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
