/**
 * SECTION:element-imagebindvision
 * @title: imagebindvision
 * @see_also: imagebindaudio, imagebindmatch, #GstImageBindEmbeddingMeta
 *
 * Computes the ImageBind vision embedding of video frames and attaches it to the buffers as a
 * #GstImageBindEmbeddingMeta (modality "vision"). Frames pass through untouched.
 *
 * Each embedded frame is converted to RGB with GStreamer's video converter, its short side
 * resized to the model's input size (224) with Pillow-exact bicubic interpolation, centre
 * cropped and CLIP-normalised, as the official image loader does, and embedded as a
 * one-frame clip (1, 3, 224, 224).
 *
 * Which frames are embedded and how (#GstImageBindEncoder): `interval` (nanoseconds) and
 * `inference-interval` (every Nth frame) choose the due frames. With `sync=auto` (the default)
 * a file, or any upstream that is not live, has every due frame embedded on the streaming thread
 * (the same results on every run), while a live source (camera) gets live mode: inference runs
 * on a worker thread and frames never wait; of the frames arriving while the worker is busy the
 * newest is embedded next and the others pass without an embedding (counted as `skipped`), and
 * a result is attached to the first frame that passes after it is ready, with the timestamp
 * (`pts`, `stream-time`, `running-time`) and duration of the frame it describes. The element
 * then adds no latency. `sync=true` and `sync=false` force one mode. `imagebind-encoder-stats`
 * messages report what was embedded and skipped (#GstImageBindEncoder).
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -m videotestsrc pattern=ball num-buffers=50 ! videoconvert ! imagebindvision interval=500000000 ! imagebindmatch prompt-list="a bouncing ball;colour bars;static noise" ! fakesink
 * ]|
 * Embeds two frames per second of video (the frames of 0, 0.5, 1 and 1.5 s) and classifies
 * them; the encoder's `imagebind-encoder-stats` messages count them.
 *
 * |[
 * gst-launch-1.0 -e videotestsrc pattern=smpte num-buffers=50 ! theoraenc ! oggmux ! filesink location=/tmp/smpte.ogg
 * gst-launch-1.0 -m filesrc location=/tmp/smpte.ogg ! decodebin ! videoconvert ! imagebindvision ! fakesink
 * ]|
 * Embeds every frame of a file, the same way on every run: the totals at EOS say 50
 * embedded, 0 skipped.
 *
 * |[
 * gst-launch-1.0 v4l2src ! videoconvert ! imagebindvision inference-interval=15 ! imagebindmatch prompt-list="a person;a dog;a cat" ! fakesink
 * ]|
 * A camera (live): every 15th frame is offered to the worker thread, the video never waits.
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstimagebindvision.h"
#include "gstimagebindcaps.h"

#include <imagebind-frontend.h>

GST_DEBUG_CATEGORY_STATIC (gst_image_bind_vision_debug);
#define GST_CAT_DEFAULT gst_image_bind_vision_debug

#define VISION_FORMATS "{ RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, ARGB, ABGR, " \
    "I420, NV12, YUY2, GRAY8 }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_IMAGE_BIND_VIDEO_CAPS (VISION_FORMATS)));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_IMAGE_BIND_VIDEO_CAPS (VISION_FORMATS)));

G_DEFINE_TYPE (GstImageBindVision, gst_image_bind_vision, GST_TYPE_IMAGE_BIND_ENCODER);
GST_ELEMENT_REGISTER_DEFINE (imagebindvision, "imagebindvision", GST_RANK_NONE,
    GST_TYPE_IMAGE_BIND_VISION);

/* A private copy of one frame, owned by the job that embeds it. */
typedef struct {
  GstVideoInfo info;
  GstBuffer *buffer;
} VisionInput;

static void
vision_input_free (VisionInput * input)
{
  gst_buffer_unref (input->buffer);
  g_free (input);
}

static gboolean
gst_image_bind_vision_set_caps (GstBaseTransform * trans, GstCaps * incaps, GstCaps * outcaps)
{
  GstImageBindVision *self = GST_IMAGE_BIND_VISION (trans);

  if (!gst_video_info_from_caps (&self->info, incaps)) {
    GST_ERROR_OBJECT (self, "invalid caps %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  GST_DEBUG_OBJECT (self, "%s %dx%d", gst_video_format_to_string (self->info.finfo->format),
      self->info.width, self->info.height);
  return TRUE;
}

static gpointer
gst_image_bind_vision_copy_input (GstImageBindEncoder * encoder, GstBuffer * buffer,
    GDestroyNotify * free_func)
{
  GstImageBindVision *self = GST_IMAGE_BIND_VISION (encoder);
  GstVideoFrame src, dst;
  VisionInput *input;
  gboolean ok;

  if (!gst_video_frame_map (&src, &self->info, buffer, GST_MAP_READ)) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Could not map the video frame."),
        ("buffer of %" G_GSIZE_FORMAT " bytes for %" G_GSIZE_FORMAT "-byte frames",
            gst_buffer_get_size (buffer), self->info.size));
    return NULL;
  }
  input = g_new0 (VisionInput, 1);
  input->info = self->info;
  input->buffer = gst_buffer_new_allocate (NULL, self->info.size, NULL);
  gst_video_frame_map (&dst, &input->info, input->buffer, GST_MAP_WRITE);
  ok = gst_video_frame_copy (&dst, &src);
  gst_video_frame_unmap (&dst);
  gst_video_frame_unmap (&src);
  if (!ok) {
    vision_input_free (input);
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Could not copy the video frame."), (NULL));
    return NULL;
  }
  *free_func = (GDestroyNotify) vision_input_free;
  return input;
}

/* Packed RGB of the frame: the frame itself when it is RGB, else a conversion into @rgb. */
static gboolean
convert_to_rgb (GstImageBindVision * self, VisionInput * input, GstVideoFrame * rgb,
    GError ** error)
{
  GstVideoInfo out_info;
  GstVideoFrame src;
  GstBuffer *out;

  if (GST_VIDEO_INFO_FORMAT (&input->info) == GST_VIDEO_FORMAT_RGB)
    return gst_video_frame_map (rgb, &input->info, input->buffer, GST_MAP_READ);

  gst_video_info_set_format (&out_info, GST_VIDEO_FORMAT_RGB, input->info.width,
      input->info.height);
  /* The converter only changes the format: everything else must match. */
  GST_VIDEO_INFO_FPS_N (&out_info) = GST_VIDEO_INFO_FPS_N (&input->info);
  GST_VIDEO_INFO_FPS_D (&out_info) = GST_VIDEO_INFO_FPS_D (&input->info);
  GST_VIDEO_INFO_PAR_N (&out_info) = GST_VIDEO_INFO_PAR_N (&input->info);
  GST_VIDEO_INFO_PAR_D (&out_info) = GST_VIDEO_INFO_PAR_D (&input->info);

  g_mutex_lock (&self->convert_lock);
  if (!self->converter || !gst_video_info_is_equal (&self->converter_in, &input->info)) {
    g_clear_pointer (&self->converter, gst_video_converter_free);
    self->converter = gst_video_converter_new (&input->info, &out_info,
        gst_structure_new ("GstVideoConverter",
            GST_VIDEO_CONVERTER_OPT_DITHER_METHOD, GST_TYPE_VIDEO_DITHER_METHOD,
            GST_VIDEO_DITHER_NONE, GST_VIDEO_CONVERTER_OPT_THREADS, G_TYPE_UINT, 1, NULL));
    self->converter_in = input->info;
  }
  if (!self->converter) {
    g_mutex_unlock (&self->convert_lock);
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "cannot convert %s to RGB", gst_video_format_to_string (input->info.finfo->format));
    return FALSE;
  }
  out = gst_buffer_new_allocate (NULL, out_info.size, NULL);
  gst_video_frame_map (&src, &input->info, input->buffer, GST_MAP_READ);
  gst_video_frame_map (rgb, &out_info, out, GST_MAP_WRITE);
  gst_video_converter_frame (self->converter, &src, rgb);
  gst_video_frame_unmap (&src);
  g_mutex_unlock (&self->convert_lock);
  gst_buffer_unref (out);       /* the mapped frame holds its own reference */
  return TRUE;
}

static gboolean
gst_image_bind_vision_prepare (GstImageBindEncoder * encoder, gpointer data, gfloat ** tensor,
    gint64 * shape, guint * n_dims, GError ** error)
{
  GstImageBindVision *self = GST_IMAGE_BIND_VISION (encoder);
  VisionInput *input = data;
  /* size, mean and std of the model file (CLIP-family models may differ from ImageBind's) */
  ImageBindImageParams params =
      imagebind_image_params_from_model (gst_image_bind_encoder_get_model (encoder));
  GstVideoFrame rgb;
  gboolean ok;

  if (!convert_to_rgb (self, input, &rgb, error))
    return FALSE;
  *tensor = g_new (gfloat, 3 * (gsize) params.size * params.size);
  ok = imagebind_image_to_tensor (&params, GST_VIDEO_FRAME_PLANE_DATA (&rgb, 0),
      GST_VIDEO_FRAME_WIDTH (&rgb), GST_VIDEO_FRAME_HEIGHT (&rgb),
      GST_VIDEO_FRAME_PLANE_STRIDE (&rgb, 0), *tensor, error);
  gst_video_frame_unmap (&rgb);
  if (!ok) {
    g_clear_pointer (tensor, g_free);
    return FALSE;
  }
  shape[0] = 1;
  shape[1] = 3;
  shape[2] = params.size;
  shape[3] = params.size;
  *n_dims = 4;
  return TRUE;
}

static void
gst_image_bind_vision_finalize (GObject * object)
{
  GstImageBindVision *self = GST_IMAGE_BIND_VISION (object);

  g_clear_pointer (&self->converter, gst_video_converter_free);
  g_mutex_clear (&self->convert_lock);
  G_OBJECT_CLASS (gst_image_bind_vision_parent_class)->finalize (object);
}

static void
gst_image_bind_vision_init (GstImageBindVision * self)
{
  gst_video_info_init (&self->info);
  g_mutex_init (&self->convert_lock);
}

static void
gst_image_bind_vision_class_init (GstImageBindVisionClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstImageBindEncoderClass *encoder_class = GST_IMAGE_BIND_ENCODER_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_image_bind_vision_debug, "imagebindvision", 0,
      "ImageBind vision encoder");

  gobject_class->finalize = gst_image_bind_vision_finalize;

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "ImageBind vision encoder",
      "Filter/Analyzer/Video",
      "Attaches the ImageBind embedding of video frames as GstImageBindEmbeddingMeta",
      "gst-imagebind developers");

  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_image_bind_vision_set_caps);

  encoder_class->modality = GST_IMAGE_BIND_MODALITY_VISION;
  encoder_class->copy_input = GST_DEBUG_FUNCPTR (gst_image_bind_vision_copy_input);
  encoder_class->prepare = GST_DEBUG_FUNCPTR (gst_image_bind_vision_prepare);
}
