/* Fixed-length windows over a sample stream, independent of how the samples are split into
 * buffers: window k covers frames [k * hop, k * hop + window) counted from the first frame
 * after the last reset. Shared by imagebindaudio and imagebindimu. Streaming thread only. */
#ifndef __GST_IMAGE_BIND_WINDOW_H__
#define __GST_IMAGE_BIND_WINDOW_H__

#include <gst/gst.h>

G_BEGIN_DECLS

/* @frames: @n_frames x channels interleaved floats, valid during the call only. */
typedef void (*GstImageBindWindowFunc) (const gfloat * frames, guint64 n_frames,
    GstClockTime pts, GstClockTime duration, gpointer user_data);

typedef struct {
  guint channels;               /* floats per frame */
  guint rate;                   /* frames per second */
  guint64 window;               /* frames per window */
  guint64 hop;                  /* frames between window starts */

  GArray *samples;              /* gfloat: frames [first, total) */
  guint64 first;                /* frame index of samples[0] */
  guint64 total;                /* frames received since the reset */
  guint64 next_start;           /* start of the next window */
  guint64 covered;              /* end of the last window given out */
  GstClockTime base_pts;        /* time of frame 0, NONE if the stream has no timestamps */
  gboolean started;
} GstImageBindWindow;

G_GNUC_INTERNAL void gst_image_bind_window_init (GstImageBindWindow * w);
G_GNUC_INTERNAL void gst_image_bind_window_clear (GstImageBindWindow * w);
/* Sets the geometry and resets when it changed; @hop 0 means @window. */
G_GNUC_INTERNAL void gst_image_bind_window_configure (GstImageBindWindow * w, guint channels,
    guint rate, guint64 window, guint64 hop);
/* Forgets all samples; the next push starts window 0 at its timestamp. */
G_GNUC_INTERNAL void gst_image_bind_window_reset (GstImageBindWindow * w);
/* Appends @n_frames frames whose first has timestamp @pts and calls @func for each window
 * they complete. */
G_GNUC_INTERNAL void gst_image_bind_window_push (GstImageBindWindow * w, const gfloat * frames,
    gsize n_frames, GstClockTime pts, GstImageBindWindowFunc func, gpointer user_data);
/* End of stream: when frames after the last window's end exist, gives out the partial window
 * from the next window start to the end if it has at least @min_frames frames. */
G_GNUC_INTERNAL void gst_image_bind_window_drain (GstImageBindWindow * w, guint64 min_frames,
    GstImageBindWindowFunc func, gpointer user_data);

G_END_DECLS

#endif
