#ifndef __GST_IMAGE_BIND_VISION_H__
#define __GST_IMAGE_BIND_VISION_H__

#include <gst/gst.h>
#include <gst/video/video.h>
#include "gstimagebindencoder.h"

G_BEGIN_DECLS

#define GST_TYPE_IMAGE_BIND_VISION (gst_image_bind_vision_get_type ())
G_DECLARE_FINAL_TYPE (GstImageBindVision, gst_image_bind_vision, GST, IMAGE_BIND_VISION,
    GstImageBindEncoder)

struct _GstImageBindVision {
  GstImageBindEncoder parent;

  GstVideoInfo info;            /* negotiated caps, streaming thread */

  /* Conversion to packed RGB, used by prepare() only (one call at a time) */
  GMutex convert_lock;
  GstVideoConverter *converter;
  GstVideoInfo converter_in;
};

GST_ELEMENT_REGISTER_DECLARE (imagebindvision);

G_END_DECLS

#endif
