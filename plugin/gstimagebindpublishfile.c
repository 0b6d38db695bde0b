/* imagebindpublish: the file transport. `file:///absolute/path.jsonl` (checked and opened
 * at start), or standard output for `location=-`: each record one JSON line, written and
 * flushed at once. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>

#include "gstimagebindpublishrecords.h"
#include "gstimagebindpublishtransport.h"

#define GST_CAT_DEFAULT gst_image_bind_publish_debug

gboolean
gst_image_bind_publish_file_configure (GstElement * element, const gchar * location,
    GstImageBindPublishConfig * cfg)
{
  GError *err = NULL;
  gchar *host = NULL;

  cfg->target = GST_IMAGE_BIND_PUBLISH_TARGET_FILE;
  cfg->display = g_strdup (location);
  cfg->path = g_filename_from_uri (location, &host, &err);
  if (!cfg->path) {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND, ("Invalid file URI '%s'.", location),
        ("%s; write it as file:///absolute/path/out.jsonl", err->message));
    g_clear_error (&err);
    return FALSE;
  }
  /* file://relative/x.jsonl is the file /x.jsonl on the host "relative": refused rather than
   * written somewhere the user did not mean */
  if (host && *host && g_ascii_strcasecmp (host, "localhost") != 0) {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND, ("The file URI '%s' names the host '%s'.",
            location, host), ("file://%s%s means the file %s on the machine %s, not a "
            "relative path: write the absolute path after file:// (three slashes, as in "
            "file:///home/me/out.jsonl)", host, cfg->path, cfg->path, host));
    g_free (host);
    return FALSE;
  }
  g_free (host);
  cfg->file = fopen (cfg->path, "w");
  if (!cfg->file) {
    GST_ELEMENT_ERROR (element, RESOURCE, OPEN_WRITE, ("Could not open '%s' for writing.",
            cfg->path), ("%s: check that the directory exists and is writable",
            g_strerror (errno)));
    return FALSE;
  }
  return TRUE;
}

typedef struct {
  GstImageBindPublishTransport parent;
  FILE *file;
} FileTransport;

static void
file_send (GstImageBindPublishTransport * t, GPtrArray * batch, gboolean retry)
{
  FileTransport *ft = (FileTransport *) t;
  gchar *body = gst_image_bind_publish_batch_body (batch, t->cfg->qdrant, TRUE);

  if (fputs (body, ft->file) < 0 || fflush (ft->file) != 0) {
    gchar *e = g_strdup_printf ("writing %s: %s", t->cfg->path, g_strerror (errno));
    /* a disk full or a closed pipe: retrying the same bytes would not help */
    t->done (t, GST_IMAGE_BIND_PUBLISH_FAIL, e);
    g_free (e);
  } else {
    t->done (t, GST_IMAGE_BIND_PUBLISH_OK, NULL);
  }
  g_free (body);
}

static void
file_cancel (GstImageBindPublishTransport * t)
{
  /* writes are synchronous: nothing is ever under way */
}

static void
file_free (GstImageBindPublishTransport * t)
{
  FileTransport *ft = (FileTransport *) t;

  if (ft->file != stdout)
    fclose (ft->file);
  g_free (ft);
}

GstImageBindPublishTransport *
gst_image_bind_publish_file_new (FILE * file)
{
  FileTransport *ft = g_new0 (FileTransport, 1);

  ft->parent.send = file_send;
  ft->parent.cancel = file_cancel;
  ft->parent.free = file_free;
  ft->file = file;
  return &ft->parent;
}
