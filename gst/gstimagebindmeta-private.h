/* Helpers shared by the meta implementations (not installed). */
#ifndef __GST_IMAGE_BIND_META_PRIVATE_H__
#define __GST_IMAGE_BIND_META_PRIVATE_H__

#include <gst/gst.h>

G_BEGIN_DECLS

/* Number of metas of API type @api on @buffer. */
G_GNUC_INTERNAL guint gst_image_bind_buffer_count_metas (GstBuffer * buffer, GType api);

/* The @n-th meta (from 0) of API type @api on @buffer, in iteration order, or NULL. */
G_GNUC_INTERNAL GstMeta *gst_image_bind_buffer_nth_meta (GstBuffer * buffer, GType api, guint n);

G_END_DECLS

#endif
