/* Fixed-length windows over a sample stream, independent of how the samples are split into
 * buffers: window k covers frames [k * hop, k * hop + window) counted from the first frame
 * after the last reset. Shared by imagebindaudio and imagebindimu. Streaming thread only.
 *
 * Times come from the buffers' timestamps: each buffer with a PTS anchors the frames around it
 * (a window's time is its first frame's, counted from the nearest anchor), so a stream whose
 * first buffers have no PTS gets times from the first one that has, and a clock that drifts a
 * little is followed. A buffer whose PTS is more than GST_IMAGE_BIND_WINDOW_TOLERANCE (plus one
 * frame) away from where the samples so far end (a jump or a step back, flagged DISCONT or
 * not) starts the windows anew at its time, as a DISCONT flag does.
 *
 * Reverse playback (a segment of negative rate): buffers come latest first, each holding its
 * samples in forward order. Windows are then counted from the end of the first buffer
 * backwards, over buffers that continue each other backwards (DISCONT flags, which reverse
 * decoders set on every chunk, do not break the window when the timestamps continue); a
 * window's frames are given out in forward order, with the time of its earliest frame. */
#ifndef __GST_IMAGE_BIND_WINDOW_H__
#define __GST_IMAGE_BIND_WINDOW_H__

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

/* How far a buffer's PTS may be from where the samples so far end (plus one frame) and still
 * continue the window: audiobasesink's default alignment threshold. */
#define GST_IMAGE_BIND_WINDOW_TOLERANCE (40 * GST_MSECOND)

/* @frames: @n_frames x channels interleaved floats in time order, valid during the call only. */
typedef void (*GstImageBindWindowFunc) (const gfloat * frames, guint64 n_frames,
    GstClockTime pts, GstClockTime duration, gpointer user_data);

typedef struct {
  guint channels;               /* floats per frame */
  guint rate;                   /* frames per second */
  guint64 window;               /* frames per window */
  guint64 hop;                  /* frames between window starts */
  gboolean reverse;             /* buffers come latest first (negative playback rate) */

  GArray *samples;              /* gfloat: frames [first, total), in arrival order */
  GArray *scratch;              /* gfloat: a reverse window in time order */
  guint64 first;                /* frame index of samples[0] */
  guint64 total;                /* frames received since the reset */
  guint64 next_start;           /* start of the next window */
  guint64 covered;              /* end of the last window given out */
  guint64 anchor_frame;         /* frame boundary whose time is anchor_time */
  GstClockTime anchor_time;     /* NONE while no buffer had a timestamp */
  gboolean started;
} GstImageBindWindow;

G_GNUC_INTERNAL void gst_image_bind_window_init (GstImageBindWindow * w);
G_GNUC_INTERNAL void gst_image_bind_window_clear (GstImageBindWindow * w);
/* Sets the geometry and resets when it changed; @hop 0 means @window. */
G_GNUC_INTERNAL void gst_image_bind_window_configure (GstImageBindWindow * w, guint channels,
    guint rate, guint64 window, guint64 hop);
/* Sets the direction (TRUE for a segment of negative rate); resets when it changed. */
G_GNUC_INTERNAL void gst_image_bind_window_set_reverse (GstImageBindWindow * w,
    gboolean reverse);
/* Forgets all samples; the next push starts window 0 at its timestamp. */
G_GNUC_INTERNAL void gst_image_bind_window_reset (GstImageBindWindow * w);
/* Appends @n_frames frames (in time order) whose first has timestamp @pts (NONE if unknown);
 * @discont: the buffer was flagged DISCONT. Calls @func for each window they complete.
 * Returns the number of frames of an unfinished window that were dropped because the buffer
 * does not continue the samples so far (0 when it does). */
G_GNUC_INTERNAL guint64 gst_image_bind_window_push (GstImageBindWindow * w,
    const gfloat * frames, gsize n_frames, GstClockTime pts, gboolean discont,
    GstImageBindWindowFunc func, gpointer user_data);
/* gst_image_bind_window_push() of @frames (@n_frames, what @buffer holds as float) with the
 * direction of @trans's segment, @buffer's PTS and DISCONT flag; logs frames dropped. */
G_GNUC_INTERNAL void gst_image_bind_window_push_buffer (GstImageBindWindow * w,
    GstBaseTransform * trans, GstBuffer * buffer, const gfloat * frames, gsize n_frames,
    GstImageBindWindowFunc func, gpointer user_data);
/* End of stream: when frames after the last window's end exist, gives out the partial window
 * from the next window start to the end if it has at least @min_frames frames. */
G_GNUC_INTERNAL void gst_image_bind_window_drain (GstImageBindWindow * w, guint64 min_frames,
    GstImageBindWindowFunc func, gpointer user_data);

G_END_DECLS

#endif
