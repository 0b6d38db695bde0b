/* Sample windows independent of buffer boundaries (see gstimagebindwindow.h). */
#include "gstimagebindwindow.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_image_bind_window_debug);
#define GST_CAT_DEFAULT gst_image_bind_window_debug

void
gst_image_bind_window_init (GstImageBindWindow * w)
{
  GST_DEBUG_CATEGORY_INIT (gst_image_bind_window_debug, "imagebindwindow", 0,
      "ImageBind sample windows (audio, IMU)");
  memset (w, 0, sizeof (*w));
  w->samples = g_array_new (FALSE, FALSE, sizeof (gfloat));
  w->scratch = g_array_new (FALSE, FALSE, sizeof (gfloat));
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
  g_clear_pointer (&w->scratch, g_array_unref);
}

void
gst_image_bind_window_reset (GstImageBindWindow * w)
{
  g_array_set_size (w->samples, 0);
  g_array_set_size (w->scratch, 0);
  w->first = 0;
  w->total = 0;
  w->next_start = 0;
  w->covered = 0;
  w->anchor_frame = 0;
  w->anchor_time = GST_CLOCK_TIME_NONE;
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

void
gst_image_bind_window_set_reverse (GstImageBindWindow * w, gboolean reverse)
{
  reverse = ! !reverse;
  if (w->reverse == reverse)
    return;
  w->reverse = reverse;
  gst_image_bind_window_reset (w);
}

static GstClockTime
frames_to_time (GstImageBindWindow * w, guint64 frames)
{
  return gst_util_uint64_scale (frames, GST_SECOND, w->rate);
}

/* The time of frame boundary @b (frames counted in arrival order: later in time going
 * forward, earlier in reverse), from the anchor; NONE while no buffer had a timestamp. */
static GstClockTime
boundary_time (GstImageBindWindow * w, guint64 b)
{
  GstClockTime offset;
  gboolean later;

  if (!GST_CLOCK_TIME_IS_VALID (w->anchor_time))
    return GST_CLOCK_TIME_NONE;
  offset = frames_to_time (w, b >= w->anchor_frame ? b - w->anchor_frame : w->anchor_frame - b);
  later = (b >= w->anchor_frame) != w->reverse;
  if (later)
    return w->anchor_time + offset;
  return w->anchor_time > offset ? w->anchor_time - offset : 0;
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
  GstClockTime t_start = boundary_time (w, start), t_end = boundary_time (w, end);
  GstClockTime pts, duration;
  guint64 n = end - start, i;

  if (w->reverse) {
    /* stored latest first: the window in time order, timed by its earliest frame */
    gfloat *dst;

    g_array_set_size (w->scratch, (guint) (n * w->channels));
    dst = (gfloat *) w->scratch->data;
    for (i = 0; i < n; i++)
      memcpy (dst + i * w->channels, data + (n - 1 - i) * w->channels,
          w->channels * sizeof (gfloat));
    data = dst;
    pts = t_end;
    duration = GST_CLOCK_TIME_IS_VALID (pts) ? t_start - t_end : frames_to_time (w, n);
  } else {
    pts = t_start;
    duration = GST_CLOCK_TIME_IS_VALID (pts) ? t_end - t_start : frames_to_time (w, n);
  }
  func (data, n, pts, duration, user_data);
  w->covered = MAX (w->covered, end);
}

/* Whether a buffer whose time at the boundary `total` is @t continues the samples so far;
 * sets @drift to how far it is from where they end. */
static gboolean
continues (GstImageBindWindow * w, GstClockTime t, gboolean discont, GstClockTime * drift)
{
  GstClockTime expected = boundary_time (w, w->total);

  *drift = 0;
  if (!GST_CLOCK_TIME_IS_VALID (t) || !GST_CLOCK_TIME_IS_VALID (expected))
    /* nothing to compare: trust the flag (reverse decoders flag every chunk, but then the
     * chunks have timestamps) */
    return !discont;
  *drift = t > expected ? t - expected : expected - t;
  if (*drift > GST_IMAGE_BIND_WINDOW_TOLERANCE + frames_to_time (w, 1))
    return FALSE;
  /* Going forward a DISCONT flag means lost data even when the timestamps go on. */
  return !discont || w->reverse;
}

guint64
gst_image_bind_window_push (GstImageBindWindow * w, const gfloat * frames, gsize n_frames,
    GstClockTime pts, gboolean discont, GstImageBindWindowFunc func, gpointer user_data)
{
  guint64 dropped = 0, skip = 0, n;
  GstClockTime t = GST_CLOCK_TIME_NONE, drift = 0;

  if (n_frames == 0)
    return 0;
  /* the buffer's time at the boundary it shares with the samples so far: its start going
   * forward, its end in reverse */
  if (GST_CLOCK_TIME_IS_VALID (pts))
    t = w->reverse ? pts + frames_to_time (w, n_frames) : pts;

  if (w->started && !continues (w, t, discont, &drift)) {
    guint64 from = MAX (w->first, w->covered);

    dropped = w->total > from ? w->total - from : 0;
    gst_image_bind_window_reset (w);
  } else if (w->started && drift * 2 > frames_to_time (w, 1)) {
    /* within the tolerance but off by more than half a frame: follow the buffers' clock */
    w->anchor_frame = w->total;
    w->anchor_time = t;
  }
  if (!w->started || (!GST_CLOCK_TIME_IS_VALID (w->anchor_time) && GST_CLOCK_TIME_IS_VALID (t))) {
    /* the first timestamp also times the frames that came before it */
    w->anchor_frame = w->total;
    w->anchor_time = t;
    w->started = TRUE;
  }

  /* With hop > window the frames between windows are never needed (in reverse: the buffer's
   * latest frames come first). */
  if (w->total < w->next_start)
    skip = MIN ((guint64) n_frames, w->next_start - w->total);
  w->total += skip;
  if (w->samples->len == 0)
    w->first = w->total;
  n = n_frames - skip;
  if (w->reverse) {
    guint len = w->samples->len;
    gfloat *dst;
    guint64 i;

    g_array_set_size (w->samples, (guint) (len + n * w->channels));
    dst = &g_array_index (w->samples, gfloat, len);
    for (i = 0; i < n; i++)
      memcpy (dst + i * w->channels, frames + (n - 1 - i) * w->channels,
          w->channels * sizeof (gfloat));
  } else {
    g_array_append_vals (w->samples, frames + skip * w->channels, (guint) (n * w->channels));
  }
  w->total += n;

  while (w->next_start + w->window <= w->total) {
    emit (w, w->next_start, w->next_start + w->window, func, user_data);
    w->next_start += w->hop;
    trim (w);
  }
  return dropped;
}

void
gst_image_bind_window_push_buffer (GstImageBindWindow * w, GstBaseTransform * trans,
    GstBuffer * buffer, const gfloat * frames, gsize n_frames, GstImageBindWindowFunc func,
    gpointer user_data)
{
  GstClockTime pts = GST_BUFFER_PTS (buffer);
  guint64 dropped;

  gst_image_bind_window_set_reverse (w, trans->segment.rate < 0);
  dropped = gst_image_bind_window_push (w, frames, n_frames, pts,
      GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DISCONT), func, user_data);
  if (dropped > 0)
    GST_INFO_OBJECT (trans, "buffer at %" GST_TIME_FORMAT " does not continue the stream "
        "(DISCONT or a timestamp jump): new window, %" G_GUINT64_FORMAT " frames of the "
        "unfinished one dropped", GST_TIME_ARGS (pts), dropped);
}

void
gst_image_bind_window_drain (GstImageBindWindow * w, guint64 min_frames,
    GstImageBindWindowFunc func, gpointer user_data)
{
  if (w->total > w->covered && w->total > w->next_start &&
      w->total - w->next_start >= MAX (min_frames, 1))
    emit (w, w->next_start, w->total, func, user_data);
}
