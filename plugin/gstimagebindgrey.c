/* Copies of grey planes for the depth and thermal encoders. */
#include "gstimagebindgrey.h"

#include <string.h>

GstImageBindGreyInput *
gst_image_bind_grey_input_copy (const GstVideoInfo * info, GstBuffer * buffer)
{
  GstImageBindGreyInput *input;
  GstVideoFrame frame;
  guint row;

  if (!gst_video_frame_map (&frame, (GstVideoInfo *) info, buffer, GST_MAP_READ))
    return NULL;

  input = g_new0 (GstImageBindGreyInput, 1);
  input->bits = GST_VIDEO_INFO_FORMAT (info) == GST_VIDEO_FORMAT_GRAY8 ? 8 : 16;
  input->width = GST_VIDEO_INFO_WIDTH (info);
  input->height = GST_VIDEO_INFO_HEIGHT (info);
  input->stride = (gsize) input->width * (input->bits / 8);
  input->pixels = g_malloc (input->stride * input->height);
  for (row = 0; row < input->height; row++) {
    const guint8 *src = (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&frame, 0) +
        (gsize) row * GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0);
    memcpy (input->pixels + row * input->stride, src, input->stride);
  }
  gst_video_frame_unmap (&frame);

#if G_BYTE_ORDER == G_BIG_ENDIAN
  /* The caps say little endian; the pre-processing reads native 16-bit values. */
  if (input->bits == 16) {
    guint16 *p = (guint16 *) input->pixels;
    gsize i, n = (gsize) input->width * input->height;
    for (i = 0; i < n; i++)
      p[i] = GUINT16_FROM_LE (p[i]);
  }
#endif
  return input;
}

void
gst_image_bind_grey_input_free (GstImageBindGreyInput * input)
{
  if (!input)
    return;
  g_free (input->pixels);
  g_free (input);
}
