/**
 * SECTION:element-imagebindtext
 * @title: imagebindtext
 * @see_also: imagebindmatch, imagebindvision, #GstImageBindEmbeddingMeta
 *
 * Computes the ImageBind text embedding of text/x-raw buffers (subtitles, captions, speech
 * transcripts) and attaches it to the buffers as a #GstImageBindEmbeddingMeta (modality
 * "text"). Buffers pass through untouched.
 *
 * Each buffer's UTF-8 text (with pango-markup caps: without its tags) is tokenised with the
 * model's CLIP tokenizer, cut to the model's context length (77 tokens) as the official
 * tokenizer does, and embedded by the text encoder: the vector is L2-normalised and multiplied
 * by the text logit scale, as the official model outputs it. Buffers whose text is empty or
 * blank, and gaps, pass without an embedding.
 *
 * Inference runs on the streaming thread (there is no live/worker mode as in the other
 * encoders): text streams are sparse, and each embedding describes exactly its own buffer. With
 * the huge model one embedding takes a few hundred milliseconds; use `interval` to bound the
 * rate on dense text streams. A buffer holding invalid UTF-8 passes without an embedding and a
 * warning is posted.
 *
 * The model is found as the other encoders find theirs (`model`, else $IMAGEBIND_MODEL, else
 * the shipped default), and the file is shared with them: one copy in memory.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -m filesrc location=movie.srt ! subparse ! imagebindtext sync=true ! imagebindmatch prompts='<dog, cat, car>' ! fakesink
 * ]|
 * Classifies every subtitle of a SubRip file and prints an `imagebind-match` message for each.
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstimagebindtext.h"
#include "gstimagebindmeta.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_image_bind_text_debug);
#define GST_CAT_DEFAULT gst_image_bind_text_debug

#define DEFAULT_N_THREADS 0
#define DEFAULT_INTERVAL 0
#define DEFAULT_CUSTOM_META FALSE

enum {
  PROP_0,
  PROP_MODEL,
  PROP_N_THREADS,
  PROP_INTERVAL,
  PROP_SYNC,
  PROP_CUSTOM_META,
};

#define TEXT_CAPS "text/x-raw, format = (string) { utf8, pango-markup }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (TEXT_CAPS));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (TEXT_CAPS));

G_DEFINE_TYPE (GstImageBindText, gst_image_bind_text, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE (imagebindtext, "imagebindtext", GST_RANK_NONE,
    GST_TYPE_IMAGE_BIND_TEXT);

/* The text to embed: a copy of the buffer's bytes, without markup tags when @markup (the
 * tokenizer decodes the HTML entities itself). NULL when it is empty or blank. */
static gchar *
buffer_text (GstBuffer * buffer, gboolean markup)
{
  GstMapInfo map;
  GString *str;
  gsize i;
  gboolean in_tag = FALSE;
  gchar *text;

  if (!gst_buffer_map (buffer, &map, GST_MAP_READ))
    return NULL;
  str = g_string_sized_new (map.size);
  for (i = 0; i < map.size && map.data[i] != '\0'; i++) {
    gchar c = (gchar) map.data[i];
    if (markup && c == '<')
      in_tag = TRUE;
    else if (markup && c == '>' && in_tag)
      in_tag = FALSE;
    else if (!in_tag)
      g_string_append_c (str, c);
  }
  gst_buffer_unmap (buffer, &map);

  text = g_string_free (str, FALSE);
  if (*g_strstrip (text) == '\0') {
    g_free (text);
    return NULL;
  }
  return text;
}

static gboolean
interval_due (GstImageBindText * self, GstClockTime pts)
{
  return !GST_CLOCK_TIME_IS_VALID (pts) || !GST_CLOCK_TIME_IS_VALID (self->next_due) ||
      pts >= self->next_due;
}

/* Embeds in prepare_output_buffer, where the buffer is made writable only when a meta is
 * added (a shallow copy when shared). */
static GstFlowReturn
gst_image_bind_text_prepare_output_buffer (GstBaseTransform * trans, GstBuffer * inbuf,
    GstBuffer ** outbuf)
{
  GstImageBindText *self = GST_IMAGE_BIND_TEXT (trans);
  GstClockTime pts = GST_BUFFER_PTS (inbuf);
  GstImageBindEmbeddingMeta *meta;
  GError *err = NULL;
  gchar *text;
  const gchar *texts[1];
  gfloat *emb;
  guint64 interval;
  gboolean custom;

  *outbuf = inbuf;
  if (GST_BUFFER_FLAG_IS_SET (inbuf, GST_BUFFER_FLAG_GAP) || !interval_due (self, pts))
    return GST_FLOW_OK;
  text = buffer_text (inbuf, self->markup);
  if (!text)
    return GST_FLOW_OK;

  texts[0] = text;
  emb = gst_image_bind_text_model_embed (self->tm, texts, 1, &err);
  if (!emb) {
    /* Bad text is the stream's problem, not a reason to stop it. */
    GST_ELEMENT_WARNING (self, STREAM, DECODE, ("Text at %" GST_TIME_FORMAT
            " cannot be embedded: %s.", GST_TIME_ARGS (pts), err->message), (NULL));
    g_clear_error (&err);
    g_free (text);
    return GST_FLOW_OK;
  }
  GST_LOG_OBJECT (self, "embedded \"%s\" at %" GST_TIME_FORMAT, text, GST_TIME_ARGS (pts));
  g_free (text);

  GST_OBJECT_LOCK (self);
  interval = self->interval;
  custom = self->custom_meta;
  GST_OBJECT_UNLOCK (self);
  self->next_due = GST_CLOCK_TIME_IS_VALID (pts) ? pts + interval : GST_CLOCK_TIME_NONE;

  *outbuf = gst_buffer_is_writable (inbuf) ? inbuf : gst_buffer_copy (inbuf);
  meta = gst_buffer_add_imagebind_embedding_meta (*outbuf, GST_IMAGE_BIND_MODALITY_TEXT, emb,
      gst_image_bind_text_model_get_dim (self->tm),
      gst_image_bind_text_model_get_logit_scale (self->tm),
      gst_image_bind_text_model_get_id (self->tm));
  g_free (emb);
  meta->pts = pts;
  meta->duration = GST_BUFFER_DURATION (inbuf);
  if (GST_CLOCK_TIME_IS_VALID (pts) && trans->segment.format == GST_FORMAT_TIME) {
    meta->stream_time = gst_segment_to_stream_time (&trans->segment, GST_FORMAT_TIME, pts);
    meta->running_time = gst_segment_to_running_time (&trans->segment, GST_FORMAT_TIME, pts);
  }
  if (custom)
    gst_buffer_add_imagebind_embedding_custom_meta (*outbuf, meta);
  return GST_FLOW_OK;
}

static GstFlowReturn
gst_image_bind_text_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  return GST_FLOW_OK;
}

static gboolean
gst_image_bind_text_set_caps (GstBaseTransform * trans, GstCaps * incaps, GstCaps * outcaps)
{
  GstImageBindText *self = GST_IMAGE_BIND_TEXT (trans);
  const gchar *format = gst_structure_get_string (gst_caps_get_structure (incaps, 0), "format");

  self->markup = g_strcmp0 (format, "pango-markup") == 0;
  return TRUE;
}

static gboolean
gst_image_bind_text_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstImageBindText *self = GST_IMAGE_BIND_TEXT (trans);

  /* A new segment may start earlier (seek): restart the interval. */
  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP || GST_EVENT_TYPE (event) ==
      GST_EVENT_SEGMENT)
    self->next_due = GST_CLOCK_TIME_NONE;
  return GST_BASE_TRANSFORM_CLASS (gst_image_bind_text_parent_class)->sink_event (trans, event);
}

static gboolean
gst_image_bind_text_start (GstBaseTransform * trans)
{
  GstImageBindText *self = GST_IMAGE_BIND_TEXT (trans);

  if (!self->tm) {
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED, ("No ImageBind model loaded."), (NULL));
    return FALSE;
  }
  self->next_due = GST_CLOCK_TIME_NONE;
  return TRUE;
}

static gboolean
gst_image_bind_text_stop (GstBaseTransform * trans)
{
  GST_IMAGE_BIND_TEXT (trans)->next_due = GST_CLOCK_TIME_NONE;
  return TRUE;
}

static GstStateChangeReturn
gst_image_bind_text_change_state (GstElement * element, GstStateChange transition)
{
  GstImageBindText *self = GST_IMAGE_BIND_TEXT (element);
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_NULL_TO_READY) {
    GError *err = NULL;
    gchar *path;
    gint n_threads;

    GST_OBJECT_LOCK (self);
    path = g_strdup (self->model_path);
    n_threads = self->n_threads;
    GST_OBJECT_UNLOCK (self);
    self->tm = gst_image_bind_text_model_open (path, n_threads, &err);
    g_free (path);
    if (!self->tm) {
      gst_image_bind_text_model_post_error (element, err);
      g_clear_error (&err);
      return GST_STATE_CHANGE_FAILURE;
    }
  }

  ret = GST_ELEMENT_CLASS (gst_image_bind_text_parent_class)->change_state (element,
      transition);

  if (transition == GST_STATE_CHANGE_READY_TO_NULL ||
      (transition == GST_STATE_CHANGE_NULL_TO_READY && ret == GST_STATE_CHANGE_FAILURE))
    g_clear_pointer (&self->tm, gst_image_bind_text_model_close);
  return ret;
}

static void
gst_image_bind_text_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstImageBindText *self = GST_IMAGE_BIND_TEXT (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->model_path);
      self->model_path = g_value_dup_string (value);
      break;
    case PROP_N_THREADS:
      self->n_threads = g_value_get_int (value);
      break;
    case PROP_INTERVAL:
      self->interval = g_value_get_uint64 (value);
      break;
    case PROP_SYNC:
      /* Always synchronous; accepted so that pipelines written for the other encoders work. */
      break;
    case PROP_CUSTOM_META:
      self->custom_meta = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_image_bind_text_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstImageBindText *self = GST_IMAGE_BIND_TEXT (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model_path);
      break;
    case PROP_N_THREADS:
      g_value_set_int (value, self->n_threads);
      break;
    case PROP_INTERVAL:
      g_value_set_uint64 (value, self->interval);
      break;
    case PROP_SYNC:
      g_value_set_boolean (value, TRUE);
      break;
    case PROP_CUSTOM_META:
      g_value_set_boolean (value, self->custom_meta);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_image_bind_text_finalize (GObject * object)
{
  GstImageBindText *self = GST_IMAGE_BIND_TEXT (object);

  g_clear_pointer (&self->tm, gst_image_bind_text_model_close);
  g_free (self->model_path);
  G_OBJECT_CLASS (gst_image_bind_text_parent_class)->finalize (object);
}

static void
gst_image_bind_text_init (GstImageBindText * self)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);

  self->n_threads = DEFAULT_N_THREADS;
  self->interval = DEFAULT_INTERVAL;
  self->custom_meta = DEFAULT_CUSTOM_META;
  self->next_due = GST_CLOCK_TIME_NONE;

  gst_base_transform_set_passthrough (trans, TRUE);
  gst_base_transform_set_in_place (trans, TRUE);
  gst_base_transform_set_gap_aware (trans, TRUE);
}

static void
gst_image_bind_text_class_init (GstImageBindTextClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_image_bind_text_debug, "imagebindtext", 0,
      "ImageBind text encoder");

  gobject_class->set_property = gst_image_bind_text_set_property;
  gobject_class->get_property = gst_image_bind_text_get_property;
  gobject_class->finalize = gst_image_bind_text_finalize;

  /**
   * GstImageBindText:model:
   *
   * The model file. When unset: $IMAGEBIND_MODEL, else the shipped default model. Read when
   * the element goes from NULL to READY.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "Path of the ImageBind model file (.gguf). When unset: $IMAGEBIND_MODEL, else the "
          "shipped default model. Loaded on NULL->READY; elements using the same file share "
          "one copy in memory", NULL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));

  /**
   * GstImageBindText:n-threads:
   *
   * Threads per inference; 0 uses all cores. Read on NULL->READY.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_N_THREADS,
      g_param_spec_int ("n-threads", "Threads",
          "Threads used by one inference (0 = all cores); applied on NULL->READY",
          0, 1024, DEFAULT_N_THREADS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));

  /**
   * GstImageBindText:interval:
   *
   * Minimum time between two embedded buffers, in nanoseconds of buffer time; 0 embeds every
   * buffer that holds text.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_INTERVAL,
      g_param_spec_uint64 ("interval", "Interval",
          "Minimum buffer time between two embedded buffers in nanoseconds "
          "(0 = every buffer; min 0, max 18446744073709551615, default 0)",
          0, G_MAXUINT64, DEFAULT_INTERVAL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindText:sync:
   *
   * Always TRUE: text is embedded on the streaming thread. Present so that pipelines written
   * for the other encoders (`sync=true`) work unchanged.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_SYNC,
      g_param_spec_boolean ("sync", "Synchronous",
          "Always TRUE: text is embedded on the streaming thread (text streams are sparse); "
          "setting it has no effect", TRUE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindText:custom-meta:
   *
   * Also attach every embedding as a GstCustomMeta named "GstImageBindEmbeddingCustomMeta",
   * readable from Python.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_CUSTOM_META,
      g_param_spec_boolean ("custom-meta", "Custom meta",
          "Also attach each embedding as a GstCustomMeta \"GstImageBindEmbeddingCustomMeta\" "
          "(a GstStructure, readable from Python)", DEFAULT_CUSTOM_META,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "ImageBind text encoder",
      "Filter/Analyzer/Text",
      "Attaches the ImageBind embedding of text buffers (subtitles, captions) as "
      "GstImageBindEmbeddingMeta", "gst-imagebind developers");

  element_class->change_state = GST_DEBUG_FUNCPTR (gst_image_bind_text_change_state);

  trans_class->passthrough_on_same_caps = FALSE;
  trans_class->transform_ip_on_passthrough = FALSE;
  trans_class->prepare_output_buffer =
      GST_DEBUG_FUNCPTR (gst_image_bind_text_prepare_output_buffer);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_image_bind_text_transform_ip);
  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_image_bind_text_set_caps);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_image_bind_text_sink_event);
  trans_class->start = GST_DEBUG_FUNCPTR (gst_image_bind_text_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_image_bind_text_stop);
}
