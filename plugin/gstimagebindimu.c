/**
 * SECTION:element-imagebindimu
 * @title: imagebindimu
 * @see_also: imagebindaudio, imagebindmatch, #GstImageBindEmbeddingMeta
 *
 * Computes the ImageBind IMU embedding of windows of accelerometer and gyroscope samples and
 * attaches it to the buffers as a #GstImageBindEmbeddingMeta (modality "imu"). Samples pass
 * through untouched.
 *
 * Input: `audio/x-raw, format=F32LE, channels=6, layout=interleaved` at any rate, one frame per
 * sample time: ax, ay, az in m/s², gx, gy, gz in rad/s (the Ego4D convention ImageBind was
 * trained on). A window (`window`, default 10 s: the 2000 samples at 200 Hz of the official
 * IMU clips) is linearly resampled to the model's 2000 samples, giving a (1, 6, 2000) tensor.
 * Windows start every `hop` nanoseconds and, as in imagebindaudio, are counted in samples from
 * the first buffer after a start, flush or discontinuity (DISCONT, or a timestamp more than
 * 40 ms away from where the samples so far end), independently of buffer sizes, timed by the
 * buffers' timestamps, and counted backwards in reverse playback (see imagebindaudio). At
 * EOS a partial window of at least 2 samples that covers samples no earlier window covered is
 * embedded and delivered, with any result in progress, on an empty buffer flagged GAP and
 * DROPPABLE.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 audiotestsrc num-buffers=25 samplesperbuffer=200 ! audio/x-raw,format=F32LE,rate=200,channels=6 ! filesink location=/tmp/imu.f32
 * gst-launch-1.0 -m filesrc location=/tmp/imu.f32 ! rawaudioparse format=pcm pcm-format=f32le sample-rate=200 num-channels=6 ! imagebindimu ! fakesink
 * ]|
 * Embeds a 25 s recording of 6-channel float samples at 200 Hz: two 10 s windows and the
 * 5 s left at EOS.
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstimagebindimu.h"

#include <string.h>
#include <imagebind-frontend.h>

GST_DEBUG_CATEGORY_STATIC (gst_image_bind_imu_debug);
#define GST_CAT_DEFAULT gst_image_bind_imu_debug

#define IMU_CHANNELS 6
#define DEFAULT_WINDOW (10 * GST_SECOND)
#define MIN_WINDOW GST_MSECOND
#define DEFAULT_HOP 0

enum {
  PROP_0,
  PROP_WINDOW,
  PROP_HOP,
};

#define IMU_CAPS "audio/x-raw, format = (string) F32LE, rate = (int) [ 1, MAX ], " \
    "channels = (int) 6, layout = (string) interleaved"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (IMU_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (IMU_CAPS));

G_DEFINE_TYPE (GstImageBindImu, gst_image_bind_imu, GST_TYPE_IMAGE_BIND_ENCODER);
GST_ELEMENT_REGISTER_DEFINE (imagebindimu, "imagebindimu", GST_RANK_NONE,
    GST_TYPE_IMAGE_BIND_IMU);

typedef struct {
  gfloat *frames;               /* n x 6 interleaved */
  gsize n;
} ImuInput;

static void
imu_input_free (ImuInput * input)
{
  g_free (input->frames);
  g_free (input);
}

static gboolean
gst_image_bind_imu_set_caps (GstBaseTransform * trans, GstCaps * incaps, GstCaps * outcaps)
{
  GstImageBindImu *self = GST_IMAGE_BIND_IMU (trans);
  guint64 window, hop, window_ns;
  gint rate;

  /* Not GstAudioInfo: six channels have no audio positions (no channel-mask needed). */
  if (!gst_structure_get_int (gst_caps_get_structure (incaps, 0), "rate", &rate) || rate <= 0)
    return FALSE;
  self->rate = rate;

  GST_OBJECT_LOCK (self);
  window_ns = self->window_ns;
  window = gst_util_uint64_scale_round (window_ns, self->rate, GST_SECOND);
  hop = self->hop ? gst_util_uint64_scale_round (self->hop, self->rate, GST_SECOND) : 0;
  if (self->hop && hop == 0)
    hop = 1;
  GST_OBJECT_UNLOCK (self);
  /* imagebind_imu_to_tensor interpolates between at least two samples. */
  window = MAX (window, 2);
  /* The window is held in memory (6 floats per sample): bounded as every input is. */
  if (window > IMAGEBIND_MAX_INPUT_FLOATS / IMU_CHANNELS) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
        ("An IMU window of %" GST_TIME_FORMAT " at %d Hz is %" G_GUINT64_FORMAT " samples, "
            "more than the %d that can be held: lower the 'window' property or the rate.",
            GST_TIME_ARGS (window_ns), self->rate, window,
            IMAGEBIND_MAX_INPUT_FLOATS / IMU_CHANNELS), (NULL));
    return FALSE;
  }

  gst_image_bind_window_configure (&self->window, IMU_CHANNELS, self->rate, window, hop);
  GST_DEBUG_OBJECT (self, "%d Hz: windows of %" G_GUINT64_FORMAT " samples every %"
      G_GUINT64_FORMAT, self->rate, self->window.window, self->window.hop);
  return TRUE;
}

static void
window_ready (const gfloat * frames, guint64 n_frames, GstClockTime pts, GstClockTime duration,
    gpointer user_data)
{
  GstImageBindImu *self = user_data;
  ImuInput *input = g_new0 (ImuInput, 1);

  input->frames = g_memdup2 (frames, n_frames * IMU_CHANNELS * sizeof (gfloat));
  input->n = n_frames;
  gst_image_bind_encoder_submit_input (GST_IMAGE_BIND_ENCODER (self), input,
      (GDestroyNotify) imu_input_free, pts, duration);
}

static GstFlowReturn
gst_image_bind_imu_collect (GstImageBindEncoder * encoder, GstBuffer * buffer)
{
  GstImageBindImu *self = GST_IMAGE_BIND_IMU (encoder);
  GstMapInfo map;
  gsize n;

  if (GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_GAP)) {
    /* no motion data: zeros would be a device in free fall, so start a new window instead */
    gst_image_bind_window_reset (&self->window);
    return GST_FLOW_OK;
  }
  if (!gst_buffer_map (buffer, &map, GST_MAP_READ)) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Could not map the IMU buffer."), (NULL));
    return GST_FLOW_ERROR;
  }
  n = map.size / (IMU_CHANNELS * sizeof (gfloat));
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
  if (n > 0)
    gst_image_bind_window_push_buffer (&self->window, GST_BASE_TRANSFORM (self), buffer,
        (const gfloat *) map.data, n, window_ready, self);
#else
  {
    guint32 *swapped = g_memdup2 (map.data, n * IMU_CHANNELS * 4);
    gsize i;
    for (i = 0; i < n * IMU_CHANNELS; i++)
      swapped[i] = GUINT32_SWAP_LE_BE (swapped[i]);
    if (n > 0)
      gst_image_bind_window_push_buffer (&self->window, GST_BASE_TRANSFORM (self), buffer,
        (const gfloat *) swapped, n, window_ready, self);
    g_free (swapped);
  }
#endif
  gst_buffer_unmap (buffer, &map);
  return GST_FLOW_OK;
}

static void
gst_image_bind_imu_drain (GstImageBindEncoder * encoder)
{
  GstImageBindImu *self = GST_IMAGE_BIND_IMU (encoder);

  gst_image_bind_window_drain (&self->window, 2, window_ready, self);
}

static void
gst_image_bind_imu_reset (GstImageBindEncoder * encoder)
{
  GstImageBindImu *self = GST_IMAGE_BIND_IMU (encoder);

  gst_image_bind_window_reset (&self->window);
}

static gboolean
gst_image_bind_imu_prepare (GstImageBindEncoder * encoder, gpointer data, gfloat ** tensor,
    gint64 * shape, guint * n_dims, GError ** error)
{
  ImuInput *input = data;
  ImageBindInputGeometry geometry;

  imagebind_model_input_geometry (gst_image_bind_encoder_get_model (encoder), &geometry);
  *tensor = g_new (gfloat, (gsize) IMU_CHANNELS * geometry.imu_num_samples);
  if (!imagebind_imu_to_tensor (geometry.imu_num_samples, input->frames, input->n, *tensor,
          error)) {
    g_clear_pointer (tensor, g_free);
    return FALSE;
  }
  shape[0] = 1;
  shape[1] = IMU_CHANNELS;
  shape[2] = geometry.imu_num_samples;
  *n_dims = 3;
  return TRUE;
}

static void
gst_image_bind_imu_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstImageBindImu *self = GST_IMAGE_BIND_IMU (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_WINDOW:
      self->window_ns = g_value_get_uint64 (value);
      break;
    case PROP_HOP:
      self->hop = g_value_get_uint64 (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_image_bind_imu_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstImageBindImu *self = GST_IMAGE_BIND_IMU (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_WINDOW:
      g_value_set_uint64 (value, self->window_ns);
      break;
    case PROP_HOP:
      g_value_set_uint64 (value, self->hop);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_image_bind_imu_finalize (GObject * object)
{
  GstImageBindImu *self = GST_IMAGE_BIND_IMU (object);

  gst_image_bind_window_clear (&self->window);
  G_OBJECT_CLASS (gst_image_bind_imu_parent_class)->finalize (object);
}

static void
gst_image_bind_imu_init (GstImageBindImu * self)
{
  self->window_ns = DEFAULT_WINDOW;
  self->hop = DEFAULT_HOP;
  gst_image_bind_window_init (&self->window);
}

static void
gst_image_bind_imu_class_init (GstImageBindImuClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstImageBindEncoderClass *encoder_class = GST_IMAGE_BIND_ENCODER_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_image_bind_imu_debug, "imagebindimu", 0,
      "ImageBind IMU encoder");

  gobject_class->set_property = gst_image_bind_imu_set_property;
  gobject_class->get_property = gst_image_bind_imu_get_property;
  gobject_class->finalize = gst_image_bind_imu_finalize;

  /**
   * GstImageBindImu:window:
   *
   * Length of one window. Read when caps are set.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_WINDOW,
      g_param_spec_uint64 ("window", "Window",
          "Length of one embedded window in nanoseconds (default 10 s: 2000 samples at "
          "200 Hz as in the official IMU clips; min 1 ms, max 18446744073709551615)",
          MIN_WINDOW, G_MAXUINT64, DEFAULT_WINDOW,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));

  /**
   * GstImageBindImu:hop:
   *
   * Time between the starts of two windows; 0 = the window length.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_HOP,
      g_param_spec_uint64 ("hop", "Hop",
          "Time between the starts of two windows in nanoseconds (0 = the window length: no "
          "overlap; min 0, max 18446744073709551615, default 0)",
          0, G_MAXUINT64, DEFAULT_HOP,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "ImageBind IMU encoder",
      "Filter/Analyzer",
      "Attaches the ImageBind embedding of accelerometer + gyroscope windows as "
      "GstImageBindEmbeddingMeta", "gst-imagebind developers");

  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_image_bind_imu_set_caps);

  encoder_class->modality = GST_IMAGE_BIND_MODALITY_IMU;
  encoder_class->collect = GST_DEBUG_FUNCPTR (gst_image_bind_imu_collect);
  encoder_class->drain = GST_DEBUG_FUNCPTR (gst_image_bind_imu_drain);
  encoder_class->reset = GST_DEBUG_FUNCPTR (gst_image_bind_imu_reset);
  encoder_class->prepare = GST_DEBUG_FUNCPTR (gst_image_bind_imu_prepare);
}
