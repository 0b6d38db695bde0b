/* Audio to the tensor the audio encoder takes, as the official load_and_transform_audio_data
 * makes it (../shared/spec/ARCHITECTURE.md §8): clip placement with pytorchvideo's exact
 * arithmetic, the in-place mean removal that carries over between overlapping clips, the Kaldi
 * fbank of channel 0 (fbank.c), padding to target_len and normalisation. */
#include "imagebind-frontend.h"
#include "fbank.h"

#include <math.h>
#include <string.h>

struct _ImageBindAudioFrontend {
  ImageBindAudioParams params;
  IbFbank *fbank;
  gsize clip_length;   /* samples per clip: clip_duration * sample_rate */
  gsize *starts;       /* clips: scratch clip ranges */
  gsize *ends;
  float *means;        /* clips: the mean each clip subtracted */
  float *channel0;     /* clip_length: channel 0 of the current clip, mean-free */
  float *other;        /* clip_length: another channel of the current clip */
};

ImageBindAudioParams
imagebind_audio_default_params (void)
{
  ImageBindAudioParams params = {
    .sample_rate = 16000,
    .clip_duration = 2.0f,
    .clips = 3,
    .num_mel_bins = 128,
    .target_len = 204,
    .mean = -4.268f,
    .std = 9.138f,
  };
  return params;
}

/* Zero (absent) geometry fields keep the official defaults. */
ImageBindAudioParams
imagebind_audio_params_from_model (const ImageBindModel *model)
{
  ImageBindAudioParams params = imagebind_audio_default_params ();
  ImageBindInputGeometry geometry;

  g_return_val_if_fail (model != NULL, params);

  memset (&geometry, 0, sizeof (geometry));
  imagebind_model_input_geometry (model, &geometry);
  if (geometry.audio_sample_rate)
    params.sample_rate = geometry.audio_sample_rate;
  if (geometry.audio_clip_duration > 0.0f)
    params.clip_duration = geometry.audio_clip_duration;
  if (geometry.audio_clips)
    params.clips = geometry.audio_clips;
  if (geometry.audio_num_mel_bins)
    params.num_mel_bins = geometry.audio_num_mel_bins;
  if (geometry.audio_target_len)
    params.target_len = geometry.audio_target_len;
  if (geometry.audio_fbank_std != 0.0f) {
    params.mean = geometry.audio_fbank_mean;
    params.std = geometry.audio_fbank_std;
  }
  return params;
}

static gsize
clip_length (const ImageBindAudioParams *params)
{
  return (gsize) llround ((double) params->clip_duration * params->sample_rate);
}

gboolean
imagebind_audio_params_check (const ImageBindAudioParams *params, GError **error)
{
  const char *problem = NULL;

  if (!params)
    problem = "no parameters";
  else if (params->sample_rate < IMAGEBIND_AUDIO_MIN_SAMPLE_RATE
      || params->sample_rate > IMAGEBIND_AUDIO_MAX_SAMPLE_RATE)
    problem = "sample rate out of range (100 .. 768000 Hz)";
  else if (params->clips < 1 || params->clips > IMAGEBIND_AUDIO_MAX_CLIPS)
    problem = "number of clips out of range (1 .. 64)";
  else if (params->num_mel_bins < 1 || params->num_mel_bins > IMAGEBIND_AUDIO_MAX_MEL_BINS)
    problem = "number of mel bins out of range (1 .. 1024)";
  else if (params->target_len < 1 || params->target_len > IMAGEBIND_AUDIO_MAX_TARGET_LEN)
    problem = "target length out of range (1 .. 65536 frames)";
  else if (!(params->clip_duration > 0.0f && params->clip_duration <= IMAGEBIND_AUDIO_MAX_CLIP_SECONDS)
      || clip_length (params) < 1 || clip_length (params) > IMAGEBIND_AUDIO_MAX_CLIP_SAMPLES)
    problem = "clip duration out of range (above 0, at most 60 s and 2^24 samples)";
  else if ((guint64) params->clips * params->num_mel_bins * params->target_len > IMAGEBIND_MAX_INPUT_FLOATS)
    problem = "tensor too large (clips x mel bins x target length > 2^26)";
  else if (!isfinite (params->mean) || !isfinite (params->std) || params->std == 0.0f)
    problem = "normalisation mean/std not finite or std zero";

  if (problem) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT, "audio parameters: %s", problem);
    return FALSE;
  }
  return TRUE;
}

gsize
imagebind_audio_tensor_size (const ImageBindAudioParams *params)
{
  if (!imagebind_audio_params_check (params, NULL))
    return 0;
  return (gsize) params->clips * params->num_mel_bins * params->target_len;
}

/* floor (latest * numerator / denominator) for the exact value of the double @latest >= 0.
 *
 * When numerator / denominator is an integer c (always so for the official 3 clips at an even
 * rate: c = 8000 k), this is the spec's recipe: m = latest * c rounded, e = fma (latest, c, -m)
 * its exact rounding error; the exact product is below m exactly when m is an integer and
 * e < 0. Otherwise the product is formed exactly from latest's 53-bit mantissa in 128 bits. */
static guint64
floor_exact_product (double latest, guint64 numerator, guint64 denominator)
{
  if (latest <= 0.0 || numerator == 0)
    return 0;

  if (numerator % denominator == 0) {
    double c = (double) (numerator / denominator);
    double m = latest * c;
    double e = fma (latest, c, -m);
    double f = floor (m);

    if (f == m && e < 0.0)
      f -= 1.0;
    return (guint64) f;
  }
#ifdef __SIZEOF_INT128__
  {
    int exponent;
    double fraction = frexp (latest, &exponent);
    /* latest = mantissa * 2^shift exactly */
    guint64 mantissa = (guint64) ldexp (fraction, 53);
    int shift = exponent - 53;
    unsigned __int128 product = (unsigned __int128) mantissa * numerator;

    if (shift >= 0)   /* latest >= 2^53 s: not a real duration */
      return (guint64) ((product << MIN (shift, 10)) / denominator);
    if (-shift >= 127)
      return 0;
    return (guint64) ((product >> -shift) / denominator);
  }
#else
  return (guint64) floor (latest * ((double) numerator / denominator));
#endif
}

void
imagebind_audio_clip_bounds (const ImageBindAudioParams *params, gsize n, guint k,
    gsize *start, gsize *end)
{
  gsize length, s;
  double duration, latest;
  guint intervals;

  g_return_if_fail (params != NULL && start != NULL && end != NULL);
  g_return_if_fail (params->sample_rate > 0 && params->clips > 0);

  /* pytorchvideo ConstantClipsPerVideoSampler: the duration is a Python float, the latest
   * start max (duration - clip_duration, 0) another; clip k starts at the exact rational
   * Fraction (latest) * k / (clips - 1) seconds; the loader slices
   * [int (start * rate), int (end * rate)) with end = start + clip_duration. */
  length = clip_length (params);
  duration = (double) n / (double) params->sample_rate;
  latest = MAX (duration - (double) params->clip_duration, 0.0);
  intervals = MAX (params->clips, 2) - 1;

  s = (gsize) floor_exact_product (latest, (guint64) k * params->sample_rate, intervals);
  *start = MIN (s, n);
  *end = MIN (s + length, n);
}

ImageBindAudioFrontend *
imagebind_audio_frontend_new (const ImageBindAudioParams *params, GError **error)
{
  ImageBindAudioFrontend *self;
  IbFbank *fbank;

  if (!imagebind_audio_params_check (params, error))
    return NULL;
  fbank = ib_fbank_new (params->sample_rate, params->num_mel_bins);
  if (!fbank) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "audio parameters: no filterbank for %u Hz", params->sample_rate);
    return NULL;
  }

  self = g_new0 (ImageBindAudioFrontend, 1);
  self->params = *params;
  self->fbank = fbank;
  self->clip_length = clip_length (params);
  self->starts = g_new (gsize, params->clips);
  self->ends = g_new (gsize, params->clips);
  self->means = g_new (float, params->clips);
  self->channel0 = g_new (float, self->clip_length);
  self->other = g_new (float, self->clip_length);
  return self;
}

void
imagebind_audio_frontend_free (ImageBindAudioFrontend *self)
{
  if (!self)
    return;
  ib_fbank_free (self->fbank);
  g_free (self->starts);
  g_free (self->ends);
  g_free (self->means);
  g_free (self->channel0);
  g_free (self->other);
  g_free (self);
}

const ImageBindAudioParams *
imagebind_audio_frontend_get_params (const ImageBindAudioFrontend *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return &self->params;
}

gsize
imagebind_audio_frontend_min_samples (const ImageBindAudioFrontend *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return ib_fbank_frame_length (self->fbank);
}

static gboolean
check_finite (const float *samples, guint channels, gsize n, GError **error)
{
  guint c;
  gsize i;

  for (c = 0; c < channels; c++) {
    const float *x = samples + (gsize) c * n;
    for (i = 0; i < n; i++) {
      if (G_UNLIKELY (!isfinite (x[i]))) {
        g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
            "audio sample %" G_GSIZE_FORMAT " of channel %u is %s", i, c,
            isnan (x[i]) ? "NaN" : "infinite");
        return FALSE;
      }
    }
  }
  return TRUE;
}

static gboolean
check_length (ImageBindAudioFrontend *self, gsize n, GError **error)
{
  gsize need = ib_fbank_frame_length (self->fbank);

  if (n < need) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "audio clip of %" G_GSIZE_FORMAT " samples is shorter than one %" G_GSIZE_FORMAT
        "-sample (25 ms) frame", n, need);
    return FALSE;
  }
  return TRUE;
}

gboolean
imagebind_audio_frontend_fbank (ImageBindAudioFrontend *self, const float *samples, gsize n,
    float *out, GError **error)
{
  g_return_val_if_fail (self != NULL && out != NULL, FALSE);
  g_return_val_if_fail (samples != NULL || n == 0, FALSE);

  if (!check_length (self, n, error) || !check_finite (samples, 1, n, error))
    return FALSE;
  ib_fbank_compute (self->fbank, samples, n, self->params.target_len, out);
  return TRUE;
}

/* Copies channel @c of clip k into @buf and replays on it the mean subtractions that the
 * earlier clips j < k made in place on the shared official buffer where they overlap clip k:
 * the same float operations in the same order as the official code, without a copy of the
 * whole waveform. Returns the clip's sum in double. */
static double
load_clip_channel (ImageBindAudioFrontend *self, const float *planar, gsize n, guint c, guint k,
    float *buf)
{
  gsize start = self->starts[k], len = self->ends[k] - start, i;
  double sum = 0.0;
  guint j;

  memcpy (buf, planar + (gsize) c * n + start, len * sizeof (float));
  for (j = 0; j < k; j++) {
    gsize lo = MAX (self->starts[j], start), hi = MIN (self->ends[j], self->ends[k]);
    for (i = lo; i < hi; i++)
      buf[i - start] -= self->means[j];
  }
  for (i = 0; i < len; i++)
    sum += buf[i];
  return sum;
}

gboolean
imagebind_audio_frontend_to_tensor (ImageBindAudioFrontend *self, const float *planar,
    guint channels, gsize n, float *out, GError **error)
{
  const ImageBindAudioParams *p;
  gsize plane;
  guint k, c;

  g_return_val_if_fail (self != NULL && out != NULL, FALSE);
  g_return_val_if_fail (planar != NULL || n == 0, FALSE);
  p = &self->params;
  plane = (gsize) p->num_mel_bins * p->target_len;

  if (channels == 0) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT, "audio with no channels");
    return FALSE;
  }
  /* every clip is min (n, clip length) samples long */
  if (!check_length (self, MIN (n, self->clip_length), error) ||
      !check_finite (planar, channels, n, error))
    return FALSE;

  for (k = 0; k < p->clips; k++)
    imagebind_audio_clip_bounds (p, n, k, &self->starts[k], &self->ends[k]);

  for (k = 0; k < p->clips; k++) {
    gsize len = self->ends[k] - self->starts[k], i;
    float *clip_out = out + k * plane;
    double sum = 0.0;

    /* waveform -= waveform.mean (): the mean over all channels of the (already partly
     * mean-removed) clip, in float32 */
    for (c = 0; c < channels; c++)
      sum += load_clip_channel (self, planar, n, c, k, c == 0 ? self->channel0 : self->other);
    self->means[k] = (float) (sum / ((double) len * channels));
    for (i = 0; i < len; i++)
      self->channel0[i] -= self->means[k];

    ib_fbank_compute (self->fbank, self->channel0, len, p->target_len, clip_out);
    /* torchvision Normalize: (x - mean) / std in float32, padding included */
    for (i = 0; i < plane; i++)
      clip_out[i] = (clip_out[i] - p->mean) / p->std;
  }
  return TRUE;
}

gboolean
imagebind_audio_to_tensor (const ImageBindAudioParams *params, const float *planar,
    guint channels, gsize n, float *out, GError **error)
{
  g_autoptr (ImageBindAudioFrontend) frontend = imagebind_audio_frontend_new (params, error);

  if (!frontend)
    return FALSE;
  return imagebind_audio_frontend_to_tensor (frontend, planar, channels, n, out, error);
}

gboolean
imagebind_audio_fbank (const ImageBindAudioParams *params, const float *samples, gsize n,
    float *out, GError **error)
{
  g_autoptr (ImageBindAudioFrontend) frontend = imagebind_audio_frontend_new (params, error);

  if (!frontend)
    return FALSE;
  return imagebind_audio_frontend_fbank (frontend, samples, n, out, error);
}
