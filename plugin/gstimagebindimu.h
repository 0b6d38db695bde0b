#ifndef __GST_IMAGE_BIND_IMU_H__
#define __GST_IMAGE_BIND_IMU_H__

#include <gst/gst.h>
#include <gst/audio/audio.h>
#include "gstimagebindencoder.h"
#include "gstimagebindwindow.h"

G_BEGIN_DECLS

#define GST_TYPE_IMAGE_BIND_IMU (gst_image_bind_imu_get_type ())
G_DECLARE_FINAL_TYPE (GstImageBindImu, gst_image_bind_imu, GST, IMAGE_BIND_IMU,
    GstImageBindEncoder)

struct _GstImageBindImu {
  GstImageBindEncoder parent;

  guint64 window_ns;            /* properties, object lock */
  guint64 hop;

  /* streaming thread */
  guint rate;
  GstImageBindWindow window;    /* 6 interleaved floats per frame */
};

GST_ELEMENT_REGISTER_DECLARE (imagebindimu);

G_END_DECLS

#endif
