/* Sample-rate conversion for the audio front end with GStreamer's audio resampler.
 *
 * The official loader uses torchaudio.functional.resample (spec §8 step 2): a sinc with cutoff
 * Fc = 0.99 of the lower Nyquist frequency under a Hann window reaching 6 zero crossings each
 * side, i.e. half a width W = 6 / Fc input samples (Fc in input-rate units: 0.99 * out / in when
 * downsampling). GStreamer has no Hann window; its Kaiser design comes closest (measured
 * against torchaudio, see AUDIO.md), configured per rate pair:
 *   - cutoff 0.99, as torchaudio's rolloff;
 *   - the number of taps (GStreamer rounds it up to a multiple of 8) nearest to torchaudio's
 *     2 W, through the transition bandwidth that yields it;
 *   - the Kaiser beta whose sinc-weighted window best fits torchaudio's sinc-weighted Hann
 *     window over the taps (least squares), passed as the stop-band attenuation that gives it.
 *     It compensates for the rounded tap count: 5.3 at 44.1 -> 16 kHz (32 taps for W = 16.7),
 *     7.0 at 48 -> 16 kHz (40 taps for W = 18.2), 10 when upsampling (16 taps for W = 6.1); a
 *     grid search over beta on real signals finds the same optima.
 * Tap interpolation must be off: with it (the default) GStreamer 1.22's cubic interpolation of
 * the oversampled filter table delays the output by 1/oversample input samples (0.25 samples
 * at 44.1 -> 16 kHz), a phase error ten times larger than the filter difference. */
#include "imagebind-frontend.h"

#include <math.h>
#include <string.h>
#include <gst/audio/audio.h>

#define ROLLOFF 0.99
#define ZERO_CROSSINGS 6.0   /* torchaudio's lowpass_filter_width */
#define FIT_POINTS 200
#define MAX_RATE 1000000

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

/* Number of taps GStreamer ends up with for a Kaiser filter of @pre_taps: scaled by in/out
 * when downsampling, then rounded up to 8 (resampler_calculate_taps() in audio-resampler.c). */
static guint
gst_final_taps (guint pre_taps, guint in_rate, guint out_rate)
{
  guint64 taps = pre_taps;

  if (out_rate < in_rate)
    taps = taps * in_rate / out_rate;
  return (guint) ((taps + 7) & ~(guint64) 7);
}

/* Modified Bessel function of the first kind, order 0 (power series; x <= 20 here). */
static double
bessel_i0 (double x)
{
  double term = 1.0, sum = 1.0, q = x * x / 4.0;
  int k;

  for (k = 1; k < 100 && term > 1e-16 * sum; k++) {
    term *= q / ((double) k * k);
    sum += term;
  }
  return sum;
}

/* Least-squares misfit between the sinc-weighted Kaiser window (beta, half length
 * @half_taps, optimally scaled) and the sinc-weighted Hann window of half width @w. */
static double
window_misfit (double beta, double half_taps, double w, double fc)
{
  double kk = 0.0, kh = 0.0, hh = 0.0;
  int i;

  for (i = 0; i <= FIT_POINTS; i++) {
    double x = half_taps * i / FIT_POINTS;
    double y = G_PI * fc * x;
    double sinc = x == 0.0 ? 1.0 : sin (y) / y;
    double u = x / half_taps;
    double k = sinc * bessel_i0 (beta * sqrt (MAX (1.0 - u * u, 0.0)));
    double c = cos (G_PI * x / (2.0 * w));
    double h = x < w ? sinc * c * c : 0.0;

    kk += k * k;
    kh += k * h;
    hh += h * h;
  }
  return hh - kh * kh / kk;
}

/* Golden-section search of beta in [0, 20] (the misfit is unimodal in beta). */
static double
fit_kaiser_beta (double half_taps, double w, double fc)
{
  const double r = 0.5 * (sqrt (5.0) - 1.0);
  double a = 0.0, b = 20.0;
  double c = b - r * (b - a), d = a + r * (b - a);
  double fc_ = window_misfit (c, half_taps, w, fc), fd = window_misfit (d, half_taps, w, fc);
  int i;

  for (i = 0; i < 40; i++) {
    if (fc_ < fd) {
      b = d;
      d = c;
      fd = fc_;
      c = b - r * (b - a);
      fc_ = window_misfit (c, half_taps, w, fc);
    } else {
      a = c;
      c = d;
      fc_ = fd;
      d = a + r * (b - a);
      fd = window_misfit (d, half_taps, w, fc);
    }
  }
  return 0.5 * (a + b);
}

/* GStreamer derives beta from the stop-band attenuation A (Kaiser's formulas); invert them. */
static double
attenuation_for_beta (double beta)
{
  double lo = 21.0, hi = 50.0;
  int i;

  if (beta >= 0.1102 * (50.0 - 8.7))
    return beta / 0.1102 + 8.7;
  if (beta <= 0.0)
    return 20.0;
  for (i = 0; i < 60; i++) {
    double mid = 0.5 * (lo + hi);
    double b = 0.5842 * pow (mid - 21.0, 0.4) + 0.07886 * (mid - 21.0);
    if (b < beta)
      lo = mid;
    else
      hi = mid;
  }
  return 0.5 * (lo + hi);
}

static GstStructure *
make_options (guint in_rate, guint out_rate)
{
  /* torchaudio's cutoff in input-rate units and its window's half width in input samples */
  double fc = ROLLOFF * MIN ((double) out_rate / in_rate, 1.0);
  double w = ZERO_CROSSINGS / fc;
  double best_diff = G_MAXDOUBLE, beta, attenuation, dw;
  guint pre, best_pre = 2;
  GstStructure *options;

  for (pre = 2; pre <= 256; pre++) {
    double diff = fabs (gst_final_taps (pre, in_rate, out_rate) - 2.0 * w);
    if (diff < best_diff) {
      best_diff = diff;
      best_pre = pre;
    }
  }
  beta = fit_kaiser_beta (gst_final_taps (best_pre, in_rate, out_rate) / 2.0, w, fc);
  attenuation = attenuation_for_beta (beta);
  /* GStreamer: n_taps = (int) ((A - 8) / (2.285 * 2 pi tr_bw)) + 1; aim between two integers */
  dw = 2.285 * 2.0 * G_PI * (best_pre - 0.5);

  options = gst_structure_new_empty ("GstAudioResampler.options");
  gst_structure_set (options,
      GST_AUDIO_RESAMPLER_OPT_CUTOFF, G_TYPE_DOUBLE, ROLLOFF,
      GST_AUDIO_RESAMPLER_OPT_STOP_ATTENUATION, G_TYPE_DOUBLE, attenuation,
      GST_AUDIO_RESAMPLER_OPT_TRANSITION_BANDWIDTH, G_TYPE_DOUBLE, (attenuation - 8.0) / dw,
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
  g_return_val_if_fail (channels <= G_MAXINT, 0);
  g_return_val_if_fail (planar != NULL || n_in == 0, 0);
  /* Rates come from caps or files: refuse (quietly, the caller sees no output) those whose
   * filter table (taps x phases) would not fit in memory; 1 MHz gives 64 MB at most. */
  if (in_rate > MAX_RATE || out_rate > MAX_RATE)
    return 0;

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
