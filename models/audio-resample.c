/* Sample-rate conversion for the audio front end with GStreamer's audio resampler.
 *
 * The official loader uses torchaudio.functional.resample (spec §8 step 2): a windowed sinc,
 * cutoff 0.99 of the lower Nyquist frequency, Hann window over +-6 zero crossings, i.e. about
 * 12 / 0.99 * in/out input samples wide when downsampling. GStreamer has no such window, so we
 * pick the Kaiser design closest to it (measured on the 44.1 kHz conformance file against
 * torchaudio's output, see AUDIO.md):
 *   - cutoff 0.99 (same as torchaudio's rolloff);
 *   - stop-band attenuation 57 dB, i.e. Kaiser beta 5.3, the Kaiser window closest in shape
 *     to Hann;
 *   - a transition bandwidth chosen so that the filter spans the multiple of 8 taps (GStreamer
 *     rounds to 8) nearest to torchaudio's width.
 * Tap interpolation must be off: with it (the default) GStreamer 1.22's cubic interpolation of
 * the oversampled filter table delays the output by 1/oversample input samples (0.25 samples
 * at 44.1 -> 16 kHz), a phase error ten times larger than the filter difference. */
#include "imagebind-preprocess.h"

#include <math.h>
#include <string.h>
#include <gst/audio/audio.h>

#define RESAMPLE_CUTOFF 0.99
#define RESAMPLE_STOP_ATTENUATION 57.0
/* torchaudio's lowpass_filter_width (zero crossings each side) over its rolloff */
#define TORCHAUDIO_HALF_WIDTH (6.0 / 0.99)

/* Number of taps GStreamer ends up with for a Kaiser filter of @pre_taps (before scaling by
 * in/out when downsampling, then rounding up to 8): resampler_calculate_taps() in
 * gst-libs/gst/audio/audio-resampler.c. */
static guint
gst_final_taps (guint pre_taps, guint in_rate, guint out_rate)
{
  guint64 taps = pre_taps;

  if (out_rate < in_rate)
    taps = taps * in_rate / out_rate;
  return (guint) ((taps + 7) & ~(guint64) 7);
}

static guint64
gcd (guint64 a, guint64 b)
{
  while (b) {
    guint64 r = a % b;
    a = b;
    b = r;
  }
  return a;
}

static GstStructure *
make_options (guint in_rate, guint out_rate)
{
  double span = 2.0 * TORCHAUDIO_HALF_WIDTH * MAX ((double) in_rate / out_rate, 1.0);
  double best_diff = G_MAXDOUBLE, dw;
  guint pre, best_pre = 2;
  GstStructure *options;

  for (pre = 2; pre <= 64; pre++) {
    double diff = fabs (gst_final_taps (pre, in_rate, out_rate) - span);
    if (diff < best_diff) {
      best_diff = diff;
      best_pre = pre;
    }
  }
  /* GStreamer: n_taps = (int) ((A - 8) / (2.285 * 2 pi tr_bw)) + 1; aim between two integers */
  dw = 2.285 * 2.0 * G_PI * (best_pre - 0.5);

  options = gst_structure_new_empty ("GstAudioResampler.options");
  gst_structure_set (options,
      GST_AUDIO_RESAMPLER_OPT_CUTOFF, G_TYPE_DOUBLE, RESAMPLE_CUTOFF,
      GST_AUDIO_RESAMPLER_OPT_STOP_ATTENUATION, G_TYPE_DOUBLE, RESAMPLE_STOP_ATTENUATION,
      GST_AUDIO_RESAMPLER_OPT_TRANSITION_BANDWIDTH, G_TYPE_DOUBLE,
      (RESAMPLE_STOP_ATTENUATION - 8.0) / dw,
      GST_AUDIO_RESAMPLER_OPT_FILTER_MODE, GST_TYPE_AUDIO_RESAMPLER_FILTER_MODE,
      GST_AUDIO_RESAMPLER_FILTER_MODE_FULL,
      GST_AUDIO_RESAMPLER_OPT_FILTER_INTERPOLATION,
      GST_TYPE_AUDIO_RESAMPLER_FILTER_INTERPOLATION,
      GST_AUDIO_RESAMPLER_FILTER_INTERPOLATION_NONE, NULL);
  return options;
}

gsize
imagebind_audio_resample (const float *planar, guint channels, gsize n_in, guint in_rate,
    guint out_rate, float **out_planar)
{
  GstAudioResampler *resampler;
  GstStructure *options;
  gsize n_out, latency, got, tail, c;
  gpointer *in_ptrs, *out_ptrs;
  float *out;
  guint64 g;

  g_return_val_if_fail (out_planar != NULL, 0);
  *out_planar = NULL;
  g_return_val_if_fail (channels > 0 && in_rate > 0 && out_rate > 0, 0);
  g_return_val_if_fail (in_rate <= G_MAXINT && out_rate <= G_MAXINT, 0);
  g_return_val_if_fail (planar != NULL || n_in == 0, 0);

  /* torchaudio keeps ceil (n * out / in) samples (with the rates divided by their gcd) */
  g = gcd (in_rate, out_rate);
  n_out = (gsize) (((guint64) n_in * (out_rate / g) + in_rate / g - 1) / (in_rate / g));
  if (n_out == 0)
    return 0;

  out = g_new0 (float, (gsize) channels * n_out);
  *out_planar = out;
  if (in_rate == out_rate) {
    memcpy (out, planar, sizeof (float) * channels * n_in);
    return n_out;
  }

  options = make_options (in_rate, out_rate);
  resampler = gst_audio_resampler_new (GST_AUDIO_RESAMPLER_METHOD_KAISER,
      GST_AUDIO_RESAMPLER_FLAG_NON_INTERLEAVED_IN | GST_AUDIO_RESAMPLER_FLAG_NON_INTERLEAVED_OUT,
      GST_AUDIO_FORMAT_F32, channels, in_rate, out_rate, options);
  gst_structure_free (options);

  in_ptrs = g_new (gpointer, channels);
  out_ptrs = g_new (gpointer, channels);

  /* The resampler starts with half its filter of zeros in its history, so output k is centred
   * on input k * in / out, as torchaudio's; it holds back the last max_latency input samples
   * until more input comes: push that many zeros (plus one for the outputs that fall between
   * the last sample and the next) to flush them, like torchaudio's zero padding. Anything the
   * flush yields beyond n_out goes to a scratch tail and is dropped. */
  latency = gst_audio_resampler_get_max_latency (resampler);
  got = MIN (gst_audio_resampler_get_out_frames (resampler, n_in), n_out);
  for (c = 0; c < channels; c++) {
    in_ptrs[c] = (gpointer) (planar + c * n_in);
    out_ptrs[c] = out + c * n_out;
  }
  gst_audio_resampler_resample (resampler, in_ptrs, n_in, out_ptrs, got);

  tail = gst_audio_resampler_get_out_frames (resampler, latency + 1);
  if (tail > 0) {
    float *scratch = g_new (float, (gsize) channels * tail);
    gsize keep = MIN (tail, n_out - got);

    for (c = 0; c < channels; c++)
      out_ptrs[c] = scratch + c * tail;
    gst_audio_resampler_resample (resampler, NULL, latency + 1, out_ptrs, tail);
    for (c = 0; c < channels; c++)
      memcpy (out + c * n_out + got, scratch + c * tail, keep * sizeof (float));
    g_free (scratch);
  }

  g_free (in_ptrs);
  g_free (out_ptrs);
  gst_audio_resampler_free (resampler);
  return n_out;
}
