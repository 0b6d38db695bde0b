/* Sample windows independent of buffer boundaries (see gstimagebindwindow.h). */
#include "gstimagebindwindow.h"

#include <string.h>

void
gst_image_bind_window_init (GstImageBindWindow * w)
{
  memset (w, 0, sizeof (*w));
  w->samples = g_array_new (FALSE, FALSE, sizeof (gfloat));
  w->channels = 1;
  w->rate = 1;
  w->window = 1;
  w->hop = 1;
  gst_image_bind_window_reset (w);
}

void
gst_image_bind_window_clear (GstImageBindWindow * w)
{
  g_clear_pointer (&w->samples, g_array_unref);
}

void
gst_image_bind_window_reset (GstImageBindWindow * w)
{
  g_array_set_size (w->samples, 0);
  w->first = 0;
  w->total = 0;
  w->next_start = 0;
  w->covered = 0;
  w->base_pts = GST_CLOCK_TIME_NONE;
  w->started = FALSE;
}

void
gst_image_bind_window_configure (GstImageBindWindow * w, guint channels, guint rate,
    guint64 window, guint64 hop)
{
  channels = MAX (channels, 1);
  rate = MAX (rate, 1);
  window = MAX (window, 1);
  hop = hop ? hop : window;
  /* Renegotiation to the same geometry (e.g. a format change, the samples are kept as float)
   * keeps the samples collected so far. */
  if (w->channels == channels && w->rate == rate && w->window == window && w->hop == hop)
    return;
  w->channels = channels;
  w->rate = rate;
  w->window = window;
  w->hop = hop;
  gst_image_bind_window_reset (w);
}

static GstClockTime
frame_time (GstImageBindWindow * w, guint64 frame)
{
  if (!GST_CLOCK_TIME_IS_VALID (w->base_pts))
    return GST_CLOCK_TIME_NONE;
  return w->base_pts + gst_util_uint64_scale (frame, GST_SECOND, w->rate);
}

/* Drops the frames no future window needs. */
static void
trim (GstImageBindWindow * w)
{
  guint64 keep_from = MIN (w->next_start, w->total);

  if (keep_from > w->first) {
    g_array_remove_range (w->samples, 0, (guint) ((keep_from - w->first) * w->channels));
    w->first = keep_from;
  }
}

static void
emit (GstImageBindWindow * w, guint64 start, guint64 end, GstImageBindWindowFunc func,
    gpointer user_data)
{
  const gfloat *data = &g_array_index (w->samples, gfloat, (start - w->first) * w->channels);
  GstClockTime pts = frame_time (w, start);
  GstClockTime duration = GST_CLOCK_TIME_IS_VALID (pts) ? frame_time (w, end) - pts :
      gst_util_uint64_scale (end - start, GST_SECOND, w->rate);

  func (data, end - start, pts, duration, user_data);
  w->covered = MAX (w->covered, end);
}

void
gst_image_bind_window_push (GstImageBindWindow * w, const gfloat * frames, gsize n_frames,
    GstClockTime pts, GstImageBindWindowFunc func, gpointer user_data)
{
  gsize skip = 0;

  if (!w->started) {
    w->base_pts = pts;
    w->started = TRUE;
  }

  /* With hop > window the frames between windows are never needed. */
  if (w->total < w->next_start)
    skip = (gsize) MIN ((guint64) n_frames, w->next_start - w->total);
  w->total += skip;
  if (w->samples->len == 0)
    w->first = w->total;
  g_array_append_vals (w->samples, frames + skip * w->channels,
      (guint) ((n_frames - skip) * w->channels));
  w->total += n_frames - skip;

  while (w->next_start + w->window <= w->total) {
    emit (w, w->next_start, w->next_start + w->window, func, user_data);
    w->next_start += w->hop;
    trim (w);
  }
}

void
gst_image_bind_window_drain (GstImageBindWindow * w, guint64 min_frames,
    GstImageBindWindowFunc func, gpointer user_data)
{
  if (w->total > w->covered && w->total > w->next_start &&
      w->total - w->next_start >= MAX (min_frames, 1))
    emit (w, w->next_start, w->total, func, user_data);
}
