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
 * blank, and gaps, pass without an embedding. A buffer holding invalid UTF-8 passes without an
 * embedding and a warning is posted.
 *
 * The model, `n-threads`, `interval`, `custom-meta` and the inference modes are those of the
 * other encoders (#GstImageBindEncoder), with one difference: `sync` defaults to TRUE here.
 * Text streams are sparse and each embedding then describes, and travels with, exactly its own
 * buffer; with the huge model one embedding takes a few hundred milliseconds of the streaming
 * thread (use `interval` to bound the rate on dense text streams). With `sync=false` inference
 * runs on a worker thread: the stream never waits, of the text arriving while the worker is
 * busy the newest is embedded next and the rest passes without an embedding, and an embedding travels on the next buffer that passes after
 * it is ready (or on an empty GAP buffer at EOS), carrying its own text's timestamps.
 *
 * ## Example launch line
 * |[
 * printf '1\n00:00:00,000 --> 00:00:02,000\nA dog runs on the beach\n\n2\n00:00:02,000 --> 00:00:04,000\nA red car passes\n' > /tmp/movie.srt
 * gst-launch-1.0 -m filesrc location=/tmp/movie.srt ! subparse ! imagebindtext ! imagebindmatch prompt-list="a dog;a cat;a car" ! fakesink
 * ]|
 * Classifies every subtitle of a SubRip file and prints an `imagebind-match` message for each.
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstimagebindtext.h"

#include <imagebind-tokenizer.h>

GST_DEBUG_CATEGORY_STATIC (gst_image_bind_text_debug);
#define GST_CAT_DEFAULT gst_image_bind_text_debug

#define DEFAULT_SYNC GST_IMAGE_BIND_ENCODER_SYNC_TRUE

enum {
  PROP_0,
  PROP_SYNC,
};

#define TEXT_CAPS "text/x-raw, format = (string) { utf8, pango-markup }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (TEXT_CAPS));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (TEXT_CAPS));

G_DEFINE_TYPE (GstImageBindText, gst_image_bind_text, GST_TYPE_IMAGE_BIND_ENCODER);
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

/* Every buffer is a window of its own. Tokenising is cheap enough for the streaming thread and
 * finds invalid UTF-8 here, where it can be reported as the stream's problem (a warning)
 * rather than as an inference failure. The base class decides whether the ids are embedded
 * (interval, worker busy) and embeds them with imagebind_embed_text(). */
static GstFlowReturn
gst_image_bind_text_collect (GstImageBindEncoder * encoder, GstBuffer * buffer)
{
  GstImageBindText *self = GST_IMAGE_BIND_TEXT (encoder);
  ImageBindModel *model = gst_image_bind_encoder_get_model (encoder);
  GstClockTime pts = GST_BUFFER_PTS (buffer);
  ImageBindInputGeometry geometry;
  GError *err = NULL;
  gint32 *ids;
  gchar *text;

  if (GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_GAP))
    return GST_FLOW_OK;
  text = buffer_text (buffer, self->markup);
  if (!text)
    return GST_FLOW_OK;

  /* The base class checked on NULL->READY that the model has a tokenizer. */
  imagebind_model_input_geometry (model, &geometry);
  ids = g_new0 (gint32, geometry.context_length);
  if (!imagebind_tokenize (imagebind_model_get_tokenizer (model, NULL), text, -1, ids,
          geometry.context_length, &err)) {
    GST_ELEMENT_WARNING (self, STREAM, DECODE, ("Text at %" GST_TIME_FORMAT
            " cannot be embedded: %s.", GST_TIME_ARGS (pts), err->message), (NULL));
    g_clear_error (&err);
    g_free (ids);
    g_free (text);
    return GST_FLOW_OK;
  }
  GST_LOG_OBJECT (self, "text at %" GST_TIME_FORMAT ": \"%s\"", GST_TIME_ARGS (pts), text);
  g_free (text);

  gst_image_bind_encoder_submit_input (encoder, ids, g_free, pts,
      GST_BUFFER_DURATION (buffer));
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

/* `sync` is the base class's property with another default: this element's own pspec (it
 * shadows the base class's) forwards to the base class's. */
static void
gst_image_bind_text_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GObjectClass *parent_class = G_OBJECT_CLASS (gst_image_bind_text_parent_class);
  GParamSpec *base;

  switch (prop_id) {
    case PROP_SYNC:
      base = g_object_class_find_property (parent_class, "sync");
      parent_class->set_property (object, base->param_id, value, base);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_image_bind_text_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GObjectClass *parent_class = G_OBJECT_CLASS (gst_image_bind_text_parent_class);
  GParamSpec *base;

  switch (prop_id) {
    case PROP_SYNC:
      base = g_object_class_find_property (parent_class, "sync");
      parent_class->get_property (object, base->param_id, value, base);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_image_bind_text_init (GstImageBindText * self)
{
}

static void
gst_image_bind_text_class_init (GstImageBindTextClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstImageBindEncoderClass *encoder_class = GST_IMAGE_BIND_ENCODER_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_image_bind_text_debug, "imagebindtext", 0,
      "ImageBind text encoder");

  gobject_class->set_property = gst_image_bind_text_set_property;
  gobject_class->get_property = gst_image_bind_text_get_property;

  /**
   * GstImageBindText:sync:
   *
   * `true` (the default here, whether upstream is live or not): the streaming thread embeds
   * every due buffer and the embedding travels on that buffer. `false`: live mode of
   * #GstImageBindEncoder:sync, inference on a worker thread that never blocks the stream; of
   * the text arriving while it is busy the newest is embedded next and the rest passes without
   * an embedding, and an embedding travels on the next buffer that passes after it is ready.
   * `auto`: as the other encoders.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_SYNC,
      g_param_spec_enum ("sync", "Synchronous",
          "true: embed every due buffer on the streaming thread, the embedding travelling with "
          "its own buffer (adds the inference time to the latency); false: on a worker thread "
          "that never blocks the stream; auto: true when upstream is not live, false when it is",
          GST_TYPE_IMAGE_BIND_ENCODER_SYNC, DEFAULT_SYNC,
          G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "ImageBind text encoder",
      "Filter/Analyzer/Text",
      "Attaches the ImageBind embedding of text buffers (subtitles, captions) as "
      "GstImageBindEmbeddingMeta", "gst-imagebind developers");

  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_image_bind_text_set_caps);

  encoder_class->modality = GST_IMAGE_BIND_MODALITY_TEXT;
  encoder_class->collect = GST_DEBUG_FUNCPTR (gst_image_bind_text_collect);
}
