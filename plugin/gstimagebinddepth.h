#ifndef __GST_IMAGE_BIND_DEPTH_H__
#define __GST_IMAGE_BIND_DEPTH_H__

#include <gst/gst.h>
#include <gst/video/video.h>
#include "gstimagebindencoder.h"

G_BEGIN_DECLS

/**
 * GstImageBindDepthFormat:
 * @GST_IMAGE_BIND_DEPTH_FORMAT_MILLIMETRES: GRAY16_LE depth in millimetres, 0 = invalid
 * @GST_IMAGE_BIND_DEPTH_FORMAT_DISPARITY: disparity (larger = nearer)
 *
 * Since: 0.1
 */
typedef enum {
  GST_IMAGE_BIND_DEPTH_FORMAT_MILLIMETRES,
  GST_IMAGE_BIND_DEPTH_FORMAT_DISPARITY,
} GstImageBindDepthFormat;

#define GST_TYPE_IMAGE_BIND_DEPTH_FORMAT (gst_image_bind_depth_format_get_type ())
GType gst_image_bind_depth_format_get_type (void);

#define GST_TYPE_IMAGE_BIND_DEPTH (gst_image_bind_depth_get_type ())
G_DECLARE_FINAL_TYPE (GstImageBindDepth, gst_image_bind_depth, GST, IMAGE_BIND_DEPTH,
    GstImageBindEncoder)

struct _GstImageBindDepth {
  GstImageBindEncoder parent;

  GstVideoInfo info;
  GstImageBindDepthFormat format;       /* property, object lock */
};

GST_ELEMENT_REGISTER_DECLARE (imagebinddepth);

G_END_DECLS

#endif
