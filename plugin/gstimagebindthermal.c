/**
 * SECTION:element-imagebindthermal
 * @title: imagebindthermal
 * @see_also: imagebindvision, imagebindmatch, #GstImageBindEmbeddingMeta
 *
 * Computes the ImageBind thermal embedding of thermal images and attaches it to the buffers as
 * a #GstImageBindEmbeddingMeta (modality "thermal"). Frames pass through untouched.
 *
 * Input: GRAY8 or GRAY16_LE thermal images (radiometric 16-bit or 8-bit palette-free), mapped
 * by the project's thermal mapping (README, "Sensor mappings") to a (1, 1, 224, 224) tensor.
 *
 * Live and sync modes, `interval` and the meta's time fields are as in imagebindvision.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -m videotestsrc pattern=ball num-buffers=10 ! video/x-raw,format=GRAY8 ! imagebindthermal ! fakesink
 * ]|
 * Embeds ten 8-bit grey frames as thermal images.
 *
 * |[
 * gst-launch-1.0 v4l2src device=/dev/video2 ! video/x-raw,format=GRAY16_LE ! imagebindthermal ! fakesink
 * ]|
 * A radiometric thermal camera.
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstimagebindthermal.h"
#include "gstimagebindgrey.h"
#include "gstimagebindcaps.h"

#include <imagebind-frontend.h>

GST_DEBUG_CATEGORY_STATIC (gst_image_bind_thermal_debug);
#define GST_CAT_DEFAULT gst_image_bind_thermal_debug

#define THERMAL_CAPS GST_IMAGE_BIND_VIDEO_CAPS ("{ GRAY16_LE, GRAY8 }")

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (THERMAL_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (THERMAL_CAPS));

G_DEFINE_TYPE (GstImageBindThermal, gst_image_bind_thermal, GST_TYPE_IMAGE_BIND_ENCODER);
GST_ELEMENT_REGISTER_DEFINE (imagebindthermal, "imagebindthermal", GST_RANK_NONE,
    GST_TYPE_IMAGE_BIND_THERMAL);

static gboolean
gst_image_bind_thermal_set_caps (GstBaseTransform * trans, GstCaps * incaps, GstCaps * outcaps)
{
  GstImageBindThermal *self = GST_IMAGE_BIND_THERMAL (trans);

  return gst_video_info_from_caps (&self->info, incaps);
}

static gpointer
gst_image_bind_thermal_copy_input (GstImageBindEncoder * encoder, GstBuffer * buffer,
    GDestroyNotify * free_func)
{
  GstImageBindThermal *self = GST_IMAGE_BIND_THERMAL (encoder);
  GstImageBindGreyInput *input;

  input = gst_image_bind_grey_input_copy (&self->info, buffer);
  if (!input) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Could not map the thermal frame."),
        ("buffer of %" G_GSIZE_FORMAT " bytes", gst_buffer_get_size (buffer)));
    return NULL;
  }
  *free_func = (GDestroyNotify) gst_image_bind_grey_input_free;
  return input;
}

static gboolean
gst_image_bind_thermal_prepare (GstImageBindEncoder * encoder, gpointer data, gfloat ** tensor,
    gint64 * shape, guint * n_dims, GError ** error)
{
  GstImageBindGreyInput *input = data;
  ImageBindInputGeometry geometry;
  guint size;

  imagebind_model_input_geometry (gst_image_bind_encoder_get_model (encoder), &geometry);
  size = geometry.image_size;
  *tensor = g_new (gfloat, (gsize) size * size);
  if (!imagebind_thermal_to_tensor (size, input->pixels, input->bits, input->width,
          input->height, input->stride, *tensor, error)) {
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
gst_image_bind_thermal_init (GstImageBindThermal * self)
{
  gst_video_info_init (&self->info);
}

static void
gst_image_bind_thermal_class_init (GstImageBindThermalClass * klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstImageBindEncoderClass *encoder_class = GST_IMAGE_BIND_ENCODER_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_image_bind_thermal_debug, "imagebindthermal", 0,
      "ImageBind thermal encoder");

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "ImageBind thermal encoder",
      "Filter/Analyzer/Video",
      "Attaches the ImageBind embedding of thermal images as GstImageBindEmbeddingMeta",
      "gst-imagebind developers");

  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_image_bind_thermal_set_caps);

  encoder_class->modality = GST_IMAGE_BIND_MODALITY_THERMAL;
  encoder_class->copy_input = GST_DEBUG_FUNCPTR (gst_image_bind_thermal_copy_input);
  encoder_class->prepare = GST_DEBUG_FUNCPTR (gst_image_bind_thermal_prepare);
}
