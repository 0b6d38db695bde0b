/**
 * SECTION:element-imagebindaudio
 * @title: imagebindaudio
 * @see_also: imagebindvision, imagebindmatch, #GstImageBindEmbeddingMeta
 *
 * Computes the ImageBind audio embedding of windows of audio and attaches it to the buffers as
 * a #GstImageBindEmbeddingMeta (modality "audio"). Audio passes through untouched.
 *
 * The stream is cut into windows of the model's clip duration (2 s for ImageBind), starting
 * every `hop` nanoseconds (default: one window length, no overlap). Windows are counted in
 * samples from the first buffer after a start, a flush, a discontinuity (DISCONT flag, GAP
 * event, or a buffer whose timestamp is more than 40 ms from where the samples so far end: a
 * jump or a step back) or a change of sample rate; buffers flagged GAP are silence and are
 * embedded as such, so windows do not depend on how the samples are split into buffers (a
 * change of format or channels at the same rate keeps the window going). Window times come
 * from the buffers' timestamps (a stream whose first buffers have none is timed from the first
 * one that has; a source clock that drifts within 40 ms is followed).
 *
 * Reverse playback (a seek with a negative rate): buffers come latest first, and windows are
 * counted backwards from the end of the first one, across buffers that continue each other
 * backwards (decoders flag every reverse chunk DISCONT: within 40 ms of continuing, that does
 * not cut the window). Each window is embedded in time order and carries its earliest time, as
 * in forward playback; at EOS the earliest, partial window is embedded. A window
 * of channel 0 (as the official loader uses) is resampled to the model's rate (16 kHz) when
 * needed and turned into a Kaldi log-mel spectrogram (1, 1, 128, 204) exactly as the official
 * loader does for a 2 s file.
 *
 * The meta of a window rides on the buffer that completes the window (sync mode) or on the
 * first buffer after the inference finished (live mode); its `pts` and `duration` give the
 * window's span. At EOS, a partial window of at least one 25 ms analysis frame that covers
 * samples no earlier window covered is embedded (zero-padded as the official loader pads short
 * files) and delivered, with any result still in progress, on an empty buffer flagged GAP and
 * DROPPABLE.
 *
 * `interval` is applied to window start times: with the default 0 every window is embedded.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -m audiotestsrc wave=ticks num-buffers=100 samplesperbuffer=1600 ! audio/x-raw,format=S16LE,rate=16000,channels=1 ! audioconvert ! imagebindaudio ! imagebindmatch prompt-list="ticking;a steady tone;white noise" ! fakesink
 * ]|
 * Ten seconds of ticks: five 2 s windows, each embedded and classified.
 *
 * |[
 * gst-launch-1.0 autoaudiosrc ! audioconvert ! audioresample ! imagebindaudio hop=1000000000 ! imagebindmatch prompt-list="a dog barking;speech;music" ! fakesink
 * ]|
 * A microphone, a window every second.
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstimagebindaudio.h"
#include "gstimagebindcaps.h"

#include <math.h>
#include <string.h>
#include <imagebind-frontend.h>

GST_DEBUG_CATEGORY_STATIC (gst_image_bind_audio_debug);
#define GST_CAT_DEFAULT gst_image_bind_audio_debug

#define DEFAULT_HOP 0
/* Kaldi fbank frame length: windows shorter than this cannot be embedded. */
#define FBANK_FRAME_SECONDS 0.025

enum {
  PROP_0,
  PROP_HOP,
};

#define AUDIO_CAPS "audio/x-raw, format = (string) { F32LE, S16LE }, " \
    GST_IMAGE_BIND_AUDIO_RATES ", channels = (int) [ 1, MAX ], layout = (string) interleaved"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (AUDIO_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (AUDIO_CAPS));

G_DEFINE_TYPE (GstImageBindAudio, gst_image_bind_audio, GST_TYPE_IMAGE_BIND_ENCODER);
GST_ELEMENT_REGISTER_DEFINE (imagebindaudio, "imagebindaudio", GST_RANK_NONE,
    GST_TYPE_IMAGE_BIND_AUDIO);

/* One window of channel 0, owned by the job that embeds it. */
typedef struct {
  gfloat *samples;
  gsize n;
  guint rate;
} AudioInput;

static void
audio_input_free (AudioInput * input)
{
  g_free (input->samples);
  g_free (input);
}

/* Not GstAudioInfo: it refuses more than two channels without a channel-mask, and channel
 * positions do not matter here (channel 0 is used). */
static gboolean
parse_caps (GstCaps * caps, guint * rate, guint * channels, gboolean * is_float)
{
  GstStructure *s = gst_caps_get_structure (caps, 0);
  const gchar *format = gst_structure_get_string (s, "format");
  gint r, c;

  if (!format || !gst_structure_get_int (s, "rate", &r) ||
      !gst_structure_get_int (s, "channels", &c) || r <= 0 || c <= 0)
    return FALSE;
  *rate = r;
  *channels = c;
  *is_float = g_str_equal (format, "F32LE");
  return TRUE;
}

static gboolean
gst_image_bind_audio_set_caps (GstBaseTransform * trans, GstCaps * incaps, GstCaps * outcaps)
{
  GstImageBindAudio *self = GST_IMAGE_BIND_AUDIO (trans);
  ImageBindModel *model = gst_image_bind_encoder_get_model (GST_IMAGE_BIND_ENCODER (self));
  ImageBindAudioParams params;
  guint64 window, hop;

  if (!model || !parse_caps (incaps, &self->rate, &self->channels, &self->is_float))
    return FALSE;

  params = imagebind_audio_params_from_model (model);
  window = (guint64) llround ((double) params.clip_duration * self->rate);
  GST_OBJECT_LOCK (self);
  hop = self->hop ? gst_util_uint64_scale_round (self->hop, self->rate, GST_SECOND) : 0;
  GST_OBJECT_UNLOCK (self);
  if (self->hop && hop == 0)
    hop = 1;

  gst_image_bind_window_configure (&self->window, 1, self->rate, window, hop);
  GST_DEBUG_OBJECT (self, "%d Hz, %d channels: windows of %" G_GUINT64_FORMAT
      " samples every %" G_GUINT64_FORMAT, self->rate, self->channels,
      self->window.window, self->window.hop);
  return TRUE;
}

static void
window_ready (const gfloat * frames, guint64 n_frames, GstClockTime pts, GstClockTime duration,
    gpointer user_data)
{
  GstImageBindAudio *self = user_data;
  AudioInput *input = g_new0 (AudioInput, 1);

  input->samples = g_memdup2 (frames, n_frames * sizeof (gfloat));
  input->n = n_frames;
  input->rate = self->rate;
  gst_image_bind_encoder_submit_input (GST_IMAGE_BIND_ENCODER (self), input,
      (GDestroyNotify) audio_input_free, pts, duration);
}

static inline gfloat
float_from_le (gfloat v)
{
#if G_BYTE_ORDER == G_BIG_ENDIAN
  guint32 u;
  memcpy (&u, &v, 4);
  u = GUINT32_SWAP_LE_BE (u);
  memcpy (&v, &u, 4);
#endif
  return v;
}

static GstFlowReturn
gst_image_bind_audio_collect (GstImageBindEncoder * encoder, GstBuffer * buffer)
{
  GstImageBindAudio *self = GST_IMAGE_BIND_AUDIO (encoder);
  GstMapInfo map;
  gsize n, i;
  guint channels = self->channels;
  gfloat *mono;

  if (!gst_buffer_map (buffer, &map, GST_MAP_READ)) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Could not map the audio buffer."), (NULL));
    return GST_FLOW_ERROR;
  }
  n = map.size / (channels * (self->is_float ? 4 : 2));
  mono = g_new0 (gfloat, MAX (n, 1));
  if (GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_GAP)) {
    /* A GAP buffer holds neutral data: silence, whatever its bytes are. Silence is a sound
     * like any other (a prompt "silence" must be able to match it), so it is embedded. */
  } else if (self->is_float) {
    const gfloat *s = (const gfloat *) map.data;
    for (i = 0; i < n; i++)
      mono[i] = float_from_le (s[i * channels]);
  } else {
    const gint16 *s = (const gint16 *) map.data;
    /* As torchaudio loads 16-bit PCM. */
    for (i = 0; i < n; i++)
      mono[i] = (gint16) GINT16_FROM_LE (s[i * channels]) / 32768.0f;
  }
  gst_buffer_unmap (buffer, &map);

  if (n > 0)
    gst_image_bind_window_push_buffer (&self->window, GST_BASE_TRANSFORM (self), buffer,
        mono, n, window_ready, self);
  g_free (mono);
  return GST_FLOW_OK;
}

static void
gst_image_bind_audio_drain (GstImageBindEncoder * encoder)
{
  GstImageBindAudio *self = GST_IMAGE_BIND_AUDIO (encoder);
  ImageBindAudioParams params = imagebind_audio_params_from_model (gst_image_bind_encoder_get_model
      (encoder));
  /* Resampling may round the length down: keep a 2 ms margin then. */
  double seconds = FBANK_FRAME_SECONDS + (self->rate != params.sample_rate ? 0.002 : 0.0);
  guint64 min_frames = (guint64) ceil (seconds * self->window.rate);

  gst_image_bind_window_drain (&self->window, min_frames, window_ready, self);
}

static void
gst_image_bind_audio_reset (GstImageBindEncoder * encoder)
{
  GstImageBindAudio *self = GST_IMAGE_BIND_AUDIO (encoder);

  gst_image_bind_window_reset (&self->window);
}

static gboolean
gst_image_bind_audio_prepare (GstImageBindEncoder * encoder, gpointer data, gfloat ** tensor,
    gint64 * shape, guint * n_dims, GError ** error)
{
  GstImageBindAudio *self = GST_IMAGE_BIND_AUDIO (encoder);
  AudioInput *input = data;
  ImageBindAudioParams params =
      imagebind_audio_params_from_model (gst_image_bind_encoder_get_model (encoder));
  gfloat *resampled = NULL;
  const gfloat *wave = input->samples;
  gsize n = input->n, clip_size, s0, e0, s, e;
  guint k, clips;
  gboolean ok, same_clips = TRUE;

  /* imagebind_model_load() refused parameters the front end cannot use; checked again before
   * anything is allocated from them. */
  if (!imagebind_audio_params_check (&params, error))
    return FALSE;
  if (input->rate != params.sample_rate) {
    n = imagebind_audio_resample (input->samples, 1, input->n, input->rate, params.sample_rate,
        &resampled);
    wave = resampled;
  }

  clip_size = (gsize) params.num_mel_bins * params.target_len;
  *tensor = g_new (gfloat, params.clips * clip_size);
  g_mutex_lock (&self->frontend_lock);
  if (self->frontend && memcmp (imagebind_audio_frontend_get_params (self->frontend), &params,
          sizeof (params)) != 0)
    g_clear_pointer (&self->frontend, imagebind_audio_frontend_free);   /* another model */
  if (!self->frontend)
    self->frontend = imagebind_audio_frontend_new (&params, error);
  ok = self->frontend &&
      imagebind_audio_frontend_to_tensor (self->frontend, wave, 1, n, *tensor, error);
  g_mutex_unlock (&self->frontend_lock);
  g_free (resampled);
  if (!ok) {
    g_clear_pointer (tensor, g_free);
    return FALSE;
  }

  /* A window as long as one clip makes every clip the same samples: embedding one of them
   * gives the official mean over identical clips at a third of the cost. */
  imagebind_audio_clip_bounds (&params, n, 0, &s0, &e0);
  for (k = 1; k < params.clips; k++) {
    imagebind_audio_clip_bounds (&params, n, k, &s, &e);
    same_clips &= (s == s0 && e == e0);
  }
  clips = same_clips ? 1 : params.clips;

  shape[0] = 1;
  shape[1] = clips;
  shape[2] = 1;
  shape[3] = params.num_mel_bins;
  shape[4] = params.target_len;
  *n_dims = 5;
  return TRUE;
}

static void
gst_image_bind_audio_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstImageBindAudio *self = GST_IMAGE_BIND_AUDIO (object);

  switch (prop_id) {
    case PROP_HOP:
      GST_OBJECT_LOCK (self);
      self->hop = g_value_get_uint64 (value);
      GST_OBJECT_UNLOCK (self);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_image_bind_audio_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstImageBindAudio *self = GST_IMAGE_BIND_AUDIO (object);

  switch (prop_id) {
    case PROP_HOP:
      GST_OBJECT_LOCK (self);
      g_value_set_uint64 (value, self->hop);
      GST_OBJECT_UNLOCK (self);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_image_bind_audio_finalize (GObject * object)
{
  GstImageBindAudio *self = GST_IMAGE_BIND_AUDIO (object);

  gst_image_bind_window_clear (&self->window);
  g_clear_pointer (&self->frontend, imagebind_audio_frontend_free);
  g_mutex_clear (&self->frontend_lock);
  G_OBJECT_CLASS (gst_image_bind_audio_parent_class)->finalize (object);
}

static void
gst_image_bind_audio_init (GstImageBindAudio * self)
{
  self->hop = DEFAULT_HOP;
  gst_image_bind_window_init (&self->window);
  g_mutex_init (&self->frontend_lock);
}

static void
gst_image_bind_audio_class_init (GstImageBindAudioClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstImageBindEncoderClass *encoder_class = GST_IMAGE_BIND_ENCODER_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_image_bind_audio_debug, "imagebindaudio", 0,
      "ImageBind audio encoder");

  gobject_class->set_property = gst_image_bind_audio_set_property;
  gobject_class->get_property = gst_image_bind_audio_get_property;
  gobject_class->finalize = gst_image_bind_audio_finalize;

  /**
   * GstImageBindAudio:hop:
   *
   * Time between the starts of two windows; 0 = the window length (2 s), so windows do not
   * overlap. Smaller values overlap windows (more embeddings), larger ones skip audio. Read
   * when caps are set.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_HOP,
      g_param_spec_uint64 ("hop", "Hop",
          "Time between the starts of two windows in nanoseconds (0 = the model's clip "
          "duration, 2 s: no overlap; min 0, max 18446744073709551615, default 0)",
          0, G_MAXUINT64, DEFAULT_HOP,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "ImageBind audio encoder",
      "Filter/Analyzer/Audio",
      "Attaches the ImageBind embedding of 2 s audio windows as GstImageBindEmbeddingMeta",
      "gst-imagebind developers");

  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_image_bind_audio_set_caps);

  encoder_class->modality = GST_IMAGE_BIND_MODALITY_AUDIO;
  encoder_class->collect = GST_DEBUG_FUNCPTR (gst_image_bind_audio_collect);
  encoder_class->drain = GST_DEBUG_FUNCPTR (gst_image_bind_audio_drain);
  encoder_class->reset = GST_DEBUG_FUNCPTR (gst_image_bind_audio_reset);
  encoder_class->prepare = GST_DEBUG_FUNCPTR (gst_image_bind_audio_prepare);
}
