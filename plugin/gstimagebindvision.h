#ifndef __GST_IMAGE_BIND_VISION_H__
#define __GST_IMAGE_BIND_VISION_H__

#include <gst/gst.h>
#include <gst/video/video.h>
#include "gstimagebindencoder.h"

G_BEGIN_DECLS

/**
 * GstImageBindVisionInferenceRegion:
 * @GST_IMAGE_BIND_VISION_INFERENCE_REGION_FULL_FRAME: embed the whole frame
 * @GST_IMAGE_BIND_VISION_INFERENCE_REGION_ROI_LIST: embed each region of interest
 *     (#GstVideoRegionOfInterestMeta) of the frame, not the frame
 * @GST_IMAGE_BIND_VISION_INFERENCE_REGION_BOTH: embed the whole frame and each region
 *
 * What imagebindvision embeds of a frame (its `inference-region` property, named as DL
 * Streamer's).
 *
 * Since: 0.1
 */
typedef enum {
  GST_IMAGE_BIND_VISION_INFERENCE_REGION_FULL_FRAME = 0,
  GST_IMAGE_BIND_VISION_INFERENCE_REGION_ROI_LIST = 1,
  GST_IMAGE_BIND_VISION_INFERENCE_REGION_BOTH = 2,
} GstImageBindVisionInferenceRegion;

#define GST_TYPE_IMAGE_BIND_VISION_INFERENCE_REGION \
    (gst_image_bind_vision_inference_region_get_type ())
GType gst_image_bind_vision_inference_region_get_type (void);

#define GST_TYPE_IMAGE_BIND_VISION (gst_image_bind_vision_get_type ())
G_DECLARE_FINAL_TYPE (GstImageBindVision, gst_image_bind_vision, GST, IMAGE_BIND_VISION,
    GstImageBindEncoder)

struct _GstImageBindVision {
  GstImageBindEncoder parent;

  GstVideoInfo info;            /* negotiated caps, streaming thread */

  /* settings, under the object lock */
  GstImageBindVisionInferenceRegion inference_region;
  gchar *object_class;
  GQuark *object_quarks;        /* object_class split, 0-terminated; NULL = every class */
  guint max_regions;

  /* Conversion to packed RGB, used by prepare() only (one call at a time) */
  GMutex convert_lock;
  GstVideoConverter *converter;
  GstVideoInfo converter_in;
};

GST_ELEMENT_REGISTER_DECLARE (imagebindvision);

G_END_DECLS

#endif
