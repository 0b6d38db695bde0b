/**
 * SECTION:element-imagebindindexsink
 * @title: imagebindindexsink
 * @see_also: imagebindvision, imagebindaudio, #GstImageBindEmbeddingMeta
 *
 * Records every ImageBind embedding (#GstImageBindEmbeddingMeta) on the buffers it receives
 * into an index file (format: models/INDEX.md), with where it came from: a source label, its
 * modality, its timestamp, duration and stream time, and the model that computed it.
 * `imagebind-search` then finds the entries closest to a text, an image or a sound. Buffers
 * without an embedding are ignored; buffers of any caps are accepted, so one sink can record a
 * video and an audio encoder together behind a `funnel`.
 *
 * The source label is `source` when set; otherwise the upstream URI (a URI query, answered by
 * `filesrc`, `uridecodebin`, ... at the first embedding), else the `location` tag of the
 * stream, else "" (unknown).
 *
 * With `append` FALSE (the default) the file is truncated when the first embedding arrives;
 * with `append` TRUE the entries are added to those already in the file, which must be a valid
 * index of embeddings of the same width. Entries are buffered and written at EOS, when the
 * element stops and every megabyte.
 *
 * One writer per file: the sink locks the file (flock) when it opens it, before truncating or
 * reading it, until it stops. A second writer of the same file (another sink in the same
 * pipeline, or another process) fails with a RESOURCE BUSY error ("being written by another
 * writer") and leaves the file alone.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -e videotestsrc num-buffers=50 ! theoraenc ! oggmux ! filesink location=/tmp/clip.ogg
 * gst-launch-1.0 filesrc location=/tmp/clip.ogg ! decodebin ! videoconvert ! imagebindvision interval=1000000000 ! imagebindindexsink location=/tmp/clips.ibx append=true
 * ]|
 * Appends the clip's embeddings (two frames, one a second) to /tmp/clips.ibx.
 * `imagebind-index -o clips.ibx clip.ogg` runs such a pipeline for every file, with an
 * `imagebindaudio` branch for the sound too, the two joined by a `funnel`. (Written for
 * gst-launch-1.0, that two-branch form over a short file sometimes never ends with GStreamer
 * 1.22: the EOS is lost between `funnel` and a sink that does not sync to the clock, the
 * same with `identity` in place of the encoders and with `fakesink sync=false`.)
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>
#include <gst/base/gstbasesink.h>
#include <gio/gio.h>
#include "gstimagebindmeta.h"
#include "imagebind-index.h"

GST_DEBUG_CATEGORY_STATIC (gst_image_bind_index_sink_debug);
#define GST_CAT_DEFAULT gst_image_bind_index_sink_debug

#define GST_TYPE_IMAGE_BIND_INDEX_SINK (gst_image_bind_index_sink_get_type ())
G_DECLARE_FINAL_TYPE (GstImageBindIndexSink, gst_image_bind_index_sink, GST, IMAGE_BIND_INDEX_SINK,
    GstBaseSink);

#define DEFAULT_APPEND FALSE

enum {
  PROP_0,
  PROP_LOCATION,
  PROP_SOURCE,
  PROP_APPEND,
  PROP_ENTRIES,
};

struct _GstImageBindIndexSink {
  GstBaseSink parent;

  /* properties (object lock) */
  gchar *location;
  gchar *source;
  gboolean append;

  /* streaming thread */
  ImageBindIndexWriter *writer;
  gchar *detected_source;       /* from the URI query or tags */
  gboolean queried_uri;
  guint64 entries;              /* object lock */
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

G_DEFINE_TYPE (GstImageBindIndexSink, gst_image_bind_index_sink, GST_TYPE_BASE_SINK);
GST_ELEMENT_REGISTER_DEFINE (imagebindindexsink, "imagebindindexsink", GST_RANK_NONE,
    GST_TYPE_IMAGE_BIND_INDEX_SINK);

static void
post_write_error (GstImageBindIndexSink * self, const GError * err)
{
  if (err->domain == IMAGEBIND_ERROR && err->code == IMAGEBIND_ERROR_FORMAT)
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE,
        ("Cannot append to the index file: it is not a valid index of this width."),
        ("%s. Set append=false to overwrite it, or choose another location.", err->message));
  else if (g_error_matches (err, G_IO_ERROR, G_IO_ERROR_BUSY))
    GST_ELEMENT_ERROR (self, RESOURCE, BUSY,
        ("The index file is being written by another writer."),
        ("%s. Two writers of one index would corrupt it.", err->message));
  else if (err->domain == IMAGEBIND_ERROR && err->code == IMAGEBIND_ERROR_INPUT)
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
        ("An embedding cannot be recorded."), ("%s", err->message));
  else
    GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
        ("Cannot write the index file."), ("%s. Check the directory exists and is writable "
            "and the disk is not full.", err->message));
}

/* The upstream URI (filesrc, souphttpsrc, uridecodebin ... answer this query). */
static void
query_source (GstImageBindIndexSink * self)
{
  GstQuery *query = gst_query_new_uri ();
  gchar *uri = NULL;

  self->queried_uri = TRUE;
  if (gst_pad_peer_query (GST_BASE_SINK_PAD (self), query)) {
    gst_query_parse_uri (query, &uri);
    if (uri && *uri) {
      GST_INFO_OBJECT (self, "source from the URI query: %s", uri);
      g_free (self->detected_source);
      self->detected_source = uri;
      uri = NULL;
    }
  }
  g_free (uri);
  gst_query_unref (query);
}

static gboolean
gst_image_bind_index_sink_event (GstBaseSink * sink, GstEvent * event)
{
  GstImageBindIndexSink *self = GST_IMAGE_BIND_INDEX_SINK (sink);

  if (GST_EVENT_TYPE (event) == GST_EVENT_TAG && !self->detected_source) {
    GstTagList *tags;
    gchar *location = NULL;
    gst_event_parse_tag (event, &tags);
    if (gst_tag_list_get_string (tags, GST_TAG_LOCATION, &location) && *location) {
      GST_INFO_OBJECT (self, "source from the location tag: %s", location);
      self->detected_source = location;
    } else {
      g_free (location);
    }
  } else if (GST_EVENT_TYPE (event) == GST_EVENT_EOS && self->writer) {
    GError *err = NULL;
    if (!imagebind_index_writer_flush (self->writer, &err)) {
      post_write_error (self, err);
      g_error_free (err);
    }
  }
  return GST_BASE_SINK_CLASS (gst_image_bind_index_sink_parent_class)->event (sink, event);
}

static gboolean
open_writer (GstImageBindIndexSink * self, guint dim)
{
  GError *err = NULL;
  gchar *location;
  gboolean append;

  GST_OBJECT_LOCK (self);
  location = g_strdup (self->location);
  append = self->append;
  GST_OBJECT_UNLOCK (self);
  if (!location || !*location) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("No index file given."),
        ("Set the `location` property to the index file to write, e.g. location=clips.ibx."));
    g_free (location);
    return FALSE;
  }
  self->writer = imagebind_index_writer_open (location, dim, append, &err);
  if (!self->writer) {
    post_write_error (self, err);
    g_error_free (err);
  } else {
    GST_INFO_OBJECT (self, "recording embeddings of width %u into %s (%s)", dim, location,
        append ? "appending" : "truncated");
  }
  g_free (location);
  return self->writer != NULL;
}

static GstFlowReturn
gst_image_bind_index_sink_render (GstBaseSink * sink, GstBuffer * buffer)
{
  GstImageBindIndexSink *self = GST_IMAGE_BIND_INDEX_SINK (sink);
  GstImageBindEmbeddingMeta *meta;
  gpointer state = NULL;
  gchar *source;

  if (gst_buffer_get_n_imagebind_embedding_metas (buffer) == 0)
    return GST_FLOW_OK;
  if (!self->queried_uri && !self->detected_source)
    query_source (self);
  GST_OBJECT_LOCK (self);
  source = g_strdup (self->source ? self->source :
      self->detected_source ? self->detected_source : "");
  GST_OBJECT_UNLOCK (self);

  while ((meta = gst_buffer_iterate_imagebind_embedding_meta (buffer, &state))) {
    ImageBindIndexEntry e = { 0 };
    GError *err = NULL;

    if (!self->writer && !open_writer (self, meta->dim))
      goto fail;
    e.modality = (ImageBindModality) meta->modality;
    e.source = source;
    e.model_id = meta->model_id;
    e.pts = meta->pts;
    e.duration = meta->duration;
    e.stream_time = meta->stream_time;
    e.logit_scale = meta->logit_scale;
    e.vector = meta->vector;
    if (meta->dim != imagebind_index_writer_dim (self->writer)) {
      GST_ELEMENT_ERROR (self, STREAM, FORMAT,
          ("Embeddings of two different widths arrived: one index holds one model's embeddings."),
          ("an embedding of width %u after embeddings of width %u (model %s); give each "
              "model its own index file", meta->dim,
              imagebind_index_writer_dim (self->writer), meta->model_id));
      goto fail;
    }
    if (!imagebind_index_writer_add (self->writer, &e, &err)) {
      post_write_error (self, err);
      g_error_free (err);
      goto fail;
    }
    GST_OBJECT_LOCK (self);
    self->entries++;
    GST_OBJECT_UNLOCK (self);
    GST_LOG_OBJECT (self, "recorded %s embedding at %" GST_TIME_FORMAT " from %s",
        gst_image_bind_modality_to_string (meta->modality), GST_TIME_ARGS (meta->pts), source);
  }
  g_free (source);
  return GST_FLOW_OK;

fail:
  g_free (source);
  return GST_FLOW_ERROR;
}

static gboolean
gst_image_bind_index_sink_start (GstBaseSink * sink)
{
  GstImageBindIndexSink *self = GST_IMAGE_BIND_INDEX_SINK (sink);

  /* a missing `location` is reported with the first embedding, not here, so that the element
   * goes through its states like any other without a configuration */
  self->queried_uri = FALSE;
  g_clear_pointer (&self->detected_source, g_free);
  GST_OBJECT_LOCK (self);
  self->entries = 0;
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

static gboolean
gst_image_bind_index_sink_stop (GstBaseSink * sink)
{
  GstImageBindIndexSink *self = GST_IMAGE_BIND_INDEX_SINK (sink);
  GError *err = NULL;
  gboolean ok = TRUE;

  if (self->writer) {
    ok = imagebind_index_writer_close (self->writer, &err);
    self->writer = NULL;
    if (!ok) {
      post_write_error (self, err);
      g_error_free (err);
    }
  }
  g_clear_pointer (&self->detected_source, g_free);
  return ok;
}

static void
gst_image_bind_index_sink_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstImageBindIndexSink *self = GST_IMAGE_BIND_INDEX_SINK (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LOCATION:
      g_free (self->location);
      self->location = g_value_dup_string (value);
      break;
    case PROP_SOURCE:
      g_free (self->source);
      self->source = g_value_dup_string (value);
      if (self->source && !*self->source)
        g_clear_pointer (&self->source, g_free);
      break;
    case PROP_APPEND:
      self->append = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_image_bind_index_sink_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstImageBindIndexSink *self = GST_IMAGE_BIND_INDEX_SINK (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LOCATION:
      g_value_set_string (value, self->location);
      break;
    case PROP_SOURCE:
      g_value_set_string (value, self->source);
      break;
    case PROP_APPEND:
      g_value_set_boolean (value, self->append);
      break;
    case PROP_ENTRIES:
      g_value_set_uint64 (value, self->entries);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_image_bind_index_sink_finalize (GObject * object)
{
  GstImageBindIndexSink *self = GST_IMAGE_BIND_INDEX_SINK (object);

  if (self->writer)
    imagebind_index_writer_close (self->writer, NULL);
  g_free (self->location);
  g_free (self->source);
  g_free (self->detected_source);
  G_OBJECT_CLASS (gst_image_bind_index_sink_parent_class)->finalize (object);
}

static void
gst_image_bind_index_sink_init (GstImageBindIndexSink * self)
{
  self->append = DEFAULT_APPEND;
  /* an index records content, not presentation: never wait for the clock */
  gst_base_sink_set_sync (GST_BASE_SINK (self), FALSE);
}

static void
gst_image_bind_index_sink_class_init (GstImageBindIndexSinkClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSinkClass *sink_class = GST_BASE_SINK_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_image_bind_index_sink_debug, "imagebindindexsink", 0,
      "ImageBind embedding index sink");

  gobject_class->set_property = gst_image_bind_index_sink_set_property;
  gobject_class->get_property = gst_image_bind_index_sink_get_property;
  gobject_class->finalize = gst_image_bind_index_sink_finalize;

  /**
   * GstImageBindIndexSink:location:
   *
   * The index file to write (models/INDEX.md).
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location",
          "Index file to record the embeddings into (created with the first embedding)",
          NULL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));

  /**
   * GstImageBindIndexSink:source:
   *
   * The source label recorded with every entry; unset: the upstream URI, else the stream's
   * `location` tag, else "".
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_SOURCE,
      g_param_spec_string ("source", "Source",
          "Label recorded as the source of every embedding (unset: the upstream URI from a "
          "URI query, else the stream's location tag)",
          NULL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindIndexSink:append:
   *
   * Add to the entries of an existing index (of the same embedding width) instead of
   * truncating the file.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_APPEND,
      g_param_spec_boolean ("append", "Append",
          "Add to an existing index file (same embedding width) instead of truncating it",
          DEFAULT_APPEND, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));

  /**
   * GstImageBindIndexSink:entries:
   *
   * Number of embeddings recorded since the element started.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_ENTRIES,
      g_param_spec_uint64 ("entries", "Entries",
          "Number of embeddings recorded since the element started", 0, G_MAXUINT64, 0,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_set_static_metadata (element_class, "ImageBind index sink",
      "Sink/Analyzer",
      "Records the ImageBind embeddings of buffers (GstImageBindEmbeddingMeta) into an index "
      "file for imagebind-search", "gst-imagebind developers");

  sink_class->start = GST_DEBUG_FUNCPTR (gst_image_bind_index_sink_start);
  sink_class->stop = GST_DEBUG_FUNCPTR (gst_image_bind_index_sink_stop);
  sink_class->render = GST_DEBUG_FUNCPTR (gst_image_bind_index_sink_render);
  sink_class->event = GST_DEBUG_FUNCPTR (gst_image_bind_index_sink_event);
}
