#ifndef __GST_IMAGE_BIND_AV_H__
#define __GST_IMAGE_BIND_AV_H__

#include <gst/gst.h>
#include <gst/base/gstaggregator.h>

G_BEGIN_DECLS

#define GST_TYPE_IMAGE_BIND_AV (gst_image_bind_av_get_type ())
G_DECLARE_FINAL_TYPE (GstImageBindAV, gst_image_bind_av, GST, IMAGE_BIND_AV, GstAggregator)

/**
 * GST_IMAGE_BIND_AV_CUSTOM_META_NAME:
 *
 * Name of the GstCustomMeta that imagebindav attaches to the video buffers it scored (fields
 * in the element documentation).
 *
 * Since: 0.1
 */
#define GST_IMAGE_BIND_AV_CUSTOM_META_NAME "GstImageBindAVCustomMeta"

GST_ELEMENT_REGISTER_DECLARE (imagebindav);

G_END_DECLS

#endif
