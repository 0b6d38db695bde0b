/* GstImageBindModality: the six ImageBind modalities as a registered GEnum. */
#ifndef __GST_IMAGE_BIND_MODALITY_H__
#define __GST_IMAGE_BIND_MODALITY_H__

#include <gst/gst.h>
#include "gstimagebindprelude.h"

G_BEGIN_DECLS

/**
 * GstImageBindModality:
 * @GST_IMAGE_BIND_MODALITY_VISION: images and video frames
 * @GST_IMAGE_BIND_MODALITY_TEXT: text
 * @GST_IMAGE_BIND_MODALITY_AUDIO: audio
 * @GST_IMAGE_BIND_MODALITY_DEPTH: depth maps
 * @GST_IMAGE_BIND_MODALITY_THERMAL: thermal images
 * @GST_IMAGE_BIND_MODALITY_IMU: accelerometer + gyroscope samples
 *
 * The modality an embedding was computed from. The values are those of the runtime's
 * ImageBindModality (models/imagebind.h), so the two convert by a cast.
 *
 * Since: 0.1
 */
typedef enum {
  GST_IMAGE_BIND_MODALITY_VISION = 0,
  GST_IMAGE_BIND_MODALITY_TEXT,
  GST_IMAGE_BIND_MODALITY_AUDIO,
  GST_IMAGE_BIND_MODALITY_DEPTH,
  GST_IMAGE_BIND_MODALITY_THERMAL,
  GST_IMAGE_BIND_MODALITY_IMU,
} GstImageBindModality;

#define GST_IMAGE_BIND_N_MODALITIES 6

#define GST_TYPE_IMAGE_BIND_MODALITY (gst_image_bind_modality_get_type ())
GST_IMAGE_BIND_API
GType gst_image_bind_modality_get_type (void);

/* "vision", "text", "audio", "depth", "thermal", "imu" (the GEnum nicks); NULL if invalid. */
GST_IMAGE_BIND_API
const gchar *gst_image_bind_modality_to_string (GstImageBindModality modality);
GST_IMAGE_BIND_API
gboolean gst_image_bind_modality_from_string (const gchar * name, GstImageBindModality * modality);

G_END_DECLS

#endif
