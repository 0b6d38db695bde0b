#ifndef __GST_IMAGE_BIND_THERMAL_H__
#define __GST_IMAGE_BIND_THERMAL_H__

#include <gst/gst.h>
#include <gst/video/video.h>
#include "gstimagebindencoder.h"

G_BEGIN_DECLS

#define GST_TYPE_IMAGE_BIND_THERMAL (gst_image_bind_thermal_get_type ())
G_DECLARE_FINAL_TYPE (GstImageBindThermal, gst_image_bind_thermal, GST, IMAGE_BIND_THERMAL,
    GstImageBindEncoder)

struct _GstImageBindThermal {
  GstImageBindEncoder parent;

  GstVideoInfo info;
};

GST_ELEMENT_REGISTER_DECLARE (imagebindthermal);

G_END_DECLS

#endif
