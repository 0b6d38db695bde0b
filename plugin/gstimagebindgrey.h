/* A private copy of one grey plane (GRAY8 or GRAY16_LE, in native endianness), shared by
 * imagebinddepth and imagebindthermal. */
#ifndef __GST_IMAGE_BIND_GREY_H__
#define __GST_IMAGE_BIND_GREY_H__

#include <gst/gst.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

typedef struct {
  guint bits;                   /* 8 or 16 */
  guint width, height;
  gsize stride;                 /* bytes per row of @pixels */
  guint8 *pixels;
  gint format;                  /* subclass data (depth: ImageBindDepthFormat) */
} GstImageBindGreyInput;

/* NULL if the buffer cannot be mapped as @info. */
G_GNUC_INTERNAL GstImageBindGreyInput *gst_image_bind_grey_input_copy (const GstVideoInfo * info,
    GstBuffer * buffer);
G_GNUC_INTERNAL void gst_image_bind_grey_input_free (GstImageBindGreyInput * input);

G_END_DECLS

#endif
