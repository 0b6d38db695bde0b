/* Decoding media files with GStreamer for the command-line tools: whatever the installed
 * GStreamer plugins decode (PNG, JPEG, WAV, FLAC, Ogg, MP4 ...) to raw pixels or samples. */
#ifndef IB_MEDIA_H
#define IB_MEDIA_H

#include <glib.h>

G_BEGIN_DECLS

/* The first video frame (or the image) of @path as packed 8-bit RGB, rows of width * 3 bytes. */
gboolean ib_media_decode_rgb (const char *path, guint8 **rgb, guint *width, guint *height,
    GError **error);

/* The first frame of @path as one grey plane: 16 bits per pixel (native endian) if the file has
 * more than 8 bits per sample, else 8. */
gboolean ib_media_decode_gray (const char *path, gpointer *pixels, guint *bits, guint *width,
    guint *height, GError **error);

/* All audio of @path as planar float32 (channels x n_frames) at the file's own rate. */
gboolean ib_media_decode_audio (const char *path, float **planar, guint *channels,
    gsize *n_frames, guint *rate, GError **error);

G_END_DECLS

#endif
