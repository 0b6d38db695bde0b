/**
 * SECTION:element-imagebinddepth
 * @title: imagebinddepth
 * @see_also: imagebindvision, imagebindmatch, #GstImageBindEmbeddingMeta
 *
 * Computes the ImageBind depth embedding of depth maps and attaches it to the buffers as a
 * #GstImageBindEmbeddingMeta (modality "depth"). Frames pass through untouched.
 *
 * Input: GRAY16_LE depth in millimetres (`format=millimetres`, the default: what RealSense and
 * Kinect-style cameras give, 0 = no measurement), or disparity (`format=disparity`, larger =
 * nearer) in GRAY16_LE or GRAY8 (GRAY8 is always read as disparity). The map goes through the
 * project's depth mapping (README, "Sensor mappings") to a (1, 1, 224, 224) tensor.
 *
 * Live and sync modes, `interval` and the meta's time fields are as in imagebindvision.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 videotestsrc pattern=gradient num-buffers=10 ! video/x-raw,format=GRAY16_LE,width=640,height=480 ! filesink location=/tmp/depth.raw
 * gst-launch-1.0 -m filesrc location=/tmp/depth.raw ! rawvideoparse format=gray16-le width=640 height=480 framerate=30/1 ! imagebinddepth ! fakesink
 * ]|
 * Embeds every frame of a raw 16-bit depth recording (millimetres).
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstimagebinddepth.h"
#include "gstimagebindgrey.h"
#include "gstimagebindcaps.h"

#include <imagebind-frontend.h>

GST_DEBUG_CATEGORY_STATIC (gst_image_bind_depth_debug);
#define GST_CAT_DEFAULT gst_image_bind_depth_debug

#define DEFAULT_FORMAT GST_IMAGE_BIND_DEPTH_FORMAT_MILLIMETRES

enum {
  PROP_0,
  PROP_FORMAT,
};

#define DEPTH_CAPS GST_IMAGE_BIND_VIDEO_CAPS ("{ GRAY16_LE, GRAY8 }")

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (DEPTH_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (DEPTH_CAPS));

G_DEFINE_TYPE (GstImageBindDepth, gst_image_bind_depth, GST_TYPE_IMAGE_BIND_ENCODER);
GST_ELEMENT_REGISTER_DEFINE (imagebinddepth, "imagebinddepth", GST_RANK_NONE,
    GST_TYPE_IMAGE_BIND_DEPTH);

GType
gst_image_bind_depth_format_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    {GST_IMAGE_BIND_DEPTH_FORMAT_MILLIMETRES, "Depth in millimetres (GRAY16_LE, 0 = invalid)",
        "millimetres"},
    {GST_IMAGE_BIND_DEPTH_FORMAT_DISPARITY, "Disparity (larger = nearer)", "disparity"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstImageBindDepthFormat", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

static gboolean
gst_image_bind_depth_set_caps (GstBaseTransform * trans, GstCaps * incaps, GstCaps * outcaps)
{
  GstImageBindDepth *self = GST_IMAGE_BIND_DEPTH (trans);

  if (!gst_video_info_from_caps (&self->info, incaps))
    return FALSE;
  return TRUE;
}

static gpointer
gst_image_bind_depth_copy_input (GstImageBindEncoder * encoder, GstBuffer * buffer,
    GDestroyNotify * free_func)
{
  GstImageBindDepth *self = GST_IMAGE_BIND_DEPTH (encoder);
  GstImageBindGreyInput *input;

  input = gst_image_bind_grey_input_copy (&self->info, buffer);
  if (!input) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Could not map the depth frame."),
        ("buffer of %" G_GSIZE_FORMAT " bytes", gst_buffer_get_size (buffer)));
    return NULL;
  }
  GST_OBJECT_LOCK (self);
  input->format = input->bits == 8 ? IMAGEBIND_DEPTH_DISPARITY :
      self->format == GST_IMAGE_BIND_DEPTH_FORMAT_DISPARITY ? IMAGEBIND_DEPTH_DISPARITY :
      IMAGEBIND_DEPTH_MILLIMETRES;
  GST_OBJECT_UNLOCK (self);
  *free_func = (GDestroyNotify) gst_image_bind_grey_input_free;
  return input;
}

static gboolean
gst_image_bind_depth_prepare (GstImageBindEncoder * encoder, gpointer data, gfloat ** tensor,
    gint64 * shape, guint * n_dims, GError ** error)
{
  GstImageBindGreyInput *input = data;
  ImageBindInputGeometry geometry;
  guint size;

  imagebind_model_input_geometry (gst_image_bind_encoder_get_model (encoder), &geometry);
  size = geometry.image_size;
  *tensor = g_new (gfloat, (gsize) size * size);
  if (!imagebind_depth_to_tensor (size, (ImageBindDepthFormat) input->format, input->pixels,
          input->bits, input->width, input->height, input->stride, *tensor, error)) {
    g_clear_pointer (tensor, g_free);
    return FALSE;
  }
  shape[0] = 1;
  shape[1] = 1;
  shape[2] = size;
  shape[3] = size;
  *n_dims = 4;
  return TRUE;
}

static void
gst_image_bind_depth_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstImageBindDepth *self = GST_IMAGE_BIND_DEPTH (object);

  switch (prop_id) {
    case PROP_FORMAT:
      GST_OBJECT_LOCK (self);
      self->format = g_value_get_enum (value);
      GST_OBJECT_UNLOCK (self);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_image_bind_depth_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstImageBindDepth *self = GST_IMAGE_BIND_DEPTH (object);

  switch (prop_id) {
    case PROP_FORMAT:
      GST_OBJECT_LOCK (self);
      g_value_set_enum (value, self->format);
      GST_OBJECT_UNLOCK (self);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_image_bind_depth_init (GstImageBindDepth * self)
{
  gst_video_info_init (&self->info);
  self->format = DEFAULT_FORMAT;
}

static void
gst_image_bind_depth_class_init (GstImageBindDepthClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstImageBindEncoderClass *encoder_class = GST_IMAGE_BIND_ENCODER_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_image_bind_depth_debug, "imagebinddepth", 0,
      "ImageBind depth encoder");

  gobject_class->set_property = gst_image_bind_depth_set_property;
  gobject_class->get_property = gst_image_bind_depth_get_property;

  /**
   * GstImageBindDepth:format:
   *
   * What GRAY16_LE pixel values mean. GRAY8 input is always disparity.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_FORMAT,
      g_param_spec_enum ("format", "Format",
          "Meaning of GRAY16_LE pixels: depth in millimetres (0 = invalid) or disparity "
          "(larger = nearer); GRAY8 is always disparity",
          GST_TYPE_IMAGE_BIND_DEPTH_FORMAT, DEFAULT_FORMAT,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "ImageBind depth encoder",
      "Filter/Analyzer/Video",
      "Attaches the ImageBind embedding of depth maps as GstImageBindEmbeddingMeta",
      "gst-imagebind developers");

  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_image_bind_depth_set_caps);

  encoder_class->modality = GST_IMAGE_BIND_MODALITY_DEPTH;
  encoder_class->copy_input = GST_DEBUG_FUNCPTR (gst_image_bind_depth_copy_input);
  encoder_class->prepare = GST_DEBUG_FUNCPTR (gst_image_bind_depth_prepare);

  gst_type_mark_as_plugin_api (GST_TYPE_IMAGE_BIND_DEPTH_FORMAT, 0);
}
