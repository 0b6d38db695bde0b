/* Kaldi log-mel filterbank (torchaudio.compliance.kaldi.fbank with ImageBind's options: Hann
 * window, no dither, snip_edges, per-frame DC removal, pre-emphasis 0.97, power spectrum,
 * use_energy false, log with a FLT_EPSILON floor).
 *
 * The official code runs in float32; the per-sample steps below are done in float in the same
 * order so that they round alike. The two sums (frame mean, mel energies) are accumulated in
 * double: float32 sums of a different order would not round like torch's anyway, and double
 * keeps the error in low-energy mel bins (where the log amplifies it) at float32 rounding of
 * the result. */
#include "fbank.h"

#include <float.h>
#include <math.h>
#include <string.h>
#include <gst/fft/gstfftf32.h>

#define PREEMPHASIS 0.97f
#define LOW_FREQ 20.0

struct _IbFbank {
  guint frame_length;   /* window_size: 25 ms */
  guint frame_shift;    /* 10 ms */
  guint padded_length;  /* next power of two >= frame_length: the FFT size */
  guint num_mel_bins;

  float *window;        /* frame_length: symmetric Hann */
  /* Sparse mel filterbank: filter b has weights mel_weights[mel_offset[b] ..] for the FFT
   * bins mel_first[b] .. mel_first[b] + mel_count[b] - 1. */
  guint *mel_first;
  guint *mel_count;
  guint *mel_offset;
  float *mel_weights;

  GstFFTF32 *fft;
  float *frame;               /* padded_length: scratch */
  GstFFTF32Complex *spectrum; /* padded_length / 2 + 1: scratch */
  float *power;               /* padded_length / 2 + 1: scratch */
};

/* torchaudio computes mel(f) = 1127 ln(1 + f / 700) in double for the band edges (Python
 * floats) and in float32 for the FFT bin frequencies (a tensor). */
static double
mel_scale_double (double freq)
{
  return 1127.0 * log (1.0 + freq / 700.0);
}

static float
mel_scale_float (float freq)
{
  return 1127.0f * logf (1.0f + freq / 700.0f);
}

/* torch.hann_window (n, periodic=False) in float32: 0.5 - 0.5 cos (2 pi i / (n - 1)). */
static void
make_window (float *window, guint n)
{
  float step = (float) (2.0 * G_PI / (double) (n - 1));
  guint i;

  for (i = 0; i < n; i++)
    window[i] = cosf ((float) i * step) * -0.5f + 0.5f;
}

/* torchaudio.compliance.kaldi.get_mel_banks without VTLN, in its float32 arithmetic: filter b
 * rises from left_mel = lo + b delta to centre lo + (b + 1) delta and falls to lo + (b + 2) delta,
 * evaluated at the mel value of each FFT bin j < padded / 2 (the Nyquist bin gets weight 0). */
static void
make_mel_banks (IbFbank *self, guint sample_rate)
{
  guint n_fft_bins = self->padded_length / 2;
  double nyquist = 0.5 * sample_rate;
  double mel_low = mel_scale_double (LOW_FREQ);
  double mel_high = mel_scale_double (nyquist);
  float delta = (float) ((mel_high - mel_low) / (self->num_mel_bins + 1));
  float bin_width = (float) ((double) sample_rate / self->padded_length);
  float *bin_mel = g_new (float, n_fft_bins);
  float *dense = g_new0 (float, (gsize) self->num_mel_bins * n_fft_bins);
  guint b, j, total = 0;

  for (j = 0; j < n_fft_bins; j++)
    bin_mel[j] = mel_scale_float (bin_width * (float) j);

  self->mel_first = g_new0 (guint, self->num_mel_bins);
  self->mel_count = g_new0 (guint, self->num_mel_bins);
  self->mel_offset = g_new0 (guint, self->num_mel_bins);

  for (b = 0; b < self->num_mel_bins; b++) {
    float left = (float) mel_low + (float) b * delta;
    float center = (float) mel_low + ((float) b + 1.0f) * delta;
    float right = (float) mel_low + ((float) b + 2.0f) * delta;
    float *row = dense + (gsize) b * n_fft_bins;
    gint first = -1, last = -1;

    for (j = 0; j < n_fft_bins; j++) {
      float up = (bin_mel[j] - left) / (center - left);
      float down = (right - bin_mel[j]) / (right - center);
      float w = MAX (0.0f, MIN (up, down));

      row[j] = w;
      if (w > 0.0f) {
        if (first < 0)
          first = j;
        last = j;
      }
    }
    self->mel_offset[b] = total;
    if (first >= 0) {
      self->mel_first[b] = first;
      self->mel_count[b] = last - first + 1;
      total += self->mel_count[b];
    }
  }

  self->mel_weights = g_new (float, MAX (total, 1));
  for (b = 0; b < self->num_mel_bins; b++)
    memcpy (self->mel_weights + self->mel_offset[b],
        dense + (gsize) b * n_fft_bins + self->mel_first[b], self->mel_count[b] * sizeof (float));

  g_free (dense);
  g_free (bin_mel);
}

IbFbank *
ib_fbank_new (guint sample_rate, guint num_mel_bins)
{
  IbFbank *self;
  /* torchaudio: int (sample_frequency * frame_length_ms * 0.001), evaluated left to right */
  guint frame_length = (guint) ((double) sample_rate * 25.0 * 0.001);
  guint frame_shift = (guint) ((double) sample_rate * 10.0 * 0.001);
  guint padded = 1;

  /* Below 2 * 20 Hz there is no mel range; a frame needs 2 samples for the symmetric window. */
  if (num_mel_bins == 0 || sample_rate <= 2 * LOW_FREQ || frame_length < 2 || frame_shift < 1)
    return NULL;
  while (padded < frame_length)
    padded <<= 1;

  self = g_new0 (IbFbank, 1);
  self->frame_length = frame_length;
  self->frame_shift = frame_shift;
  self->padded_length = padded;
  self->num_mel_bins = num_mel_bins;

  self->window = g_new (float, frame_length);
  make_window (self->window, frame_length);
  make_mel_banks (self, sample_rate);

  self->fft = gst_fft_f32_new (padded, FALSE);
  self->frame = g_new0 (float, padded);
  self->spectrum = g_new0 (GstFFTF32Complex, padded / 2 + 1);
  self->power = g_new0 (float, padded / 2 + 1);
  return self;
}

void
ib_fbank_free (IbFbank *self)
{
  if (!self)
    return;
  g_free (self->window);
  g_free (self->mel_first);
  g_free (self->mel_count);
  g_free (self->mel_offset);
  g_free (self->mel_weights);
  gst_fft_f32_free (self->fft);
  g_free (self->frame);
  g_free (self->spectrum);
  g_free (self->power);
  g_free (self);
}

guint
ib_fbank_frame_length (const IbFbank *self)
{
  return self->frame_length;
}

gsize
ib_fbank_num_frames (const IbFbank *self, gsize n)
{
  if (n < self->frame_length)
    return 0;
  return 1 + (n - self->frame_length) / self->frame_shift;
}

/* One frame's power spectrum into self->power (torchaudio _get_window, then |rfft|^2). */
static void
frame_power_spectrum (IbFbank *self, const float *x)
{
  guint len = self->frame_length, n_bins = self->padded_length / 2 + 1;
  float *frame = self->frame;
  double sum = 0.0;
  float mean, prev;
  guint i;

  for (i = 0; i < len; i++)
    sum += x[i];
  mean = (float) sum / (float) len;
  for (i = 0; i < len; i++)
    frame[i] = x[i] - mean;

  /* pre-emphasis backwards so that frame[i - 1] is still the DC-free input; the first
   * sample's predecessor is itself (torch's replicate padding) */
  prev = frame[0];
  for (i = len - 1; i > 0; i--)
    frame[i] = frame[i] - PREEMPHASIS * frame[i - 1];
  frame[0] = prev - PREEMPHASIS * prev;

  for (i = 0; i < len; i++)
    frame[i] *= self->window[i];
  /* frame[len .. padded) stay zero: written once by g_new0, never touched */

  gst_fft_f32_fft (self->fft, frame, self->spectrum);
  for (i = 0; i < n_bins; i++)
    self->power[i] = self->spectrum[i].r * self->spectrum[i].r +
        self->spectrum[i].i * self->spectrum[i].i;
}

void
ib_fbank_compute (IbFbank *self, const float *samples, gsize n, guint target_len, float *out)
{
  gsize n_frames = MIN (ib_fbank_num_frames (self, n), target_len);
  guint b, t;

  for (t = 0; t < n_frames; t++) {
    frame_power_spectrum (self, samples + (gsize) t * self->frame_shift);

    for (b = 0; b < self->num_mel_bins; b++) {
      const float *w = self->mel_weights + self->mel_offset[b];
      const float *p = self->power + self->mel_first[b];
      double energy = 0.0;
      guint j;

      for (j = 0; j < self->mel_count[b]; j++)
        energy += (double) w[j] * p[j];
      out[(gsize) b * target_len + t] = logf (MAX ((float) energy, FLT_EPSILON));
    }
  }

  /* the official right padding of short clips with zeros (before normalisation) */
  for (b = 0; b < self->num_mel_bins; b++)
    for (t = n_frames; t < target_len; t++)
      out[(gsize) b * target_len + t] = 0.0f;
}
