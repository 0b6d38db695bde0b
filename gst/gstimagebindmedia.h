/* Decoding media files with GStreamer: whatever the installed GStreamer plugins decode (PNG,
 * JPEG, WAV, FLAC, Ogg, MP4 ...) to raw pixels or samples. Used by imagebindmatch (reference
 * images and sounds as queries), the command-line tools and the tests. Not installed and not
 * part of libgstimagebind's API: a static library of gst/ (gst/meson.build). */
#ifndef __GST_IMAGE_BIND_MEDIA_H__
#define __GST_IMAGE_BIND_MEDIA_H__

#include <glib.h>

G_BEGIN_DECLS

/* The first video frame (or the image) of @path as packed 8-bit RGB, rows of width * 3 bytes. */
gboolean gst_image_bind_media_decode_rgb (const char *path, guint8 **rgb, guint *width,
    guint *height, GError **error);

/* The frames the official video loader (load_and_transform_video_data) reads from @path: the
 * file's duration d is cut into @n_clips clips of @clip_duration seconds starting at
 * k * max(d - clip_duration, 0) / (n_clips - 1), and of each clip the first and the last decoded
 * frame whose timestamp lies in [start, start + clip_duration) is kept. A still image (one
 * frame, or no known duration) gives is_video FALSE and its one frame. Frames are packed RGB
 * of width * 3 bytes per row. */
typedef struct {
  gboolean is_video;
  guint width, height;
  guint n_frames;        /* 1 (image) or 2 * n_clips: first and last frame of every clip */
  guint8 **frames;
} GstImageBindMediaFrames;

gboolean gst_image_bind_media_decode_clip_frames (const char *path, double clip_duration,
    guint n_clips, GstImageBindMediaFrames *frames, GError **error);
void gst_image_bind_media_frames_clear (GstImageBindMediaFrames *frames);

/* The first frame of @path as one grey plane: 16 bits per pixel (native endian) if the file has
 * more than 8 bits per sample, else 8. */
gboolean gst_image_bind_media_decode_gray (const char *path, gpointer *pixels, guint *bits,
    guint *width, guint *height, GError **error);

/* All audio of @path as planar float32 (channels x n_frames) at the file's own rate. */
gboolean gst_image_bind_media_decode_audio (const char *path, float **planar, guint *channels,
    gsize *n_frames, guint *rate, GError **error);

G_END_DECLS

#endif
