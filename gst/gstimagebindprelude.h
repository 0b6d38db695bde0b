/* GST_IMAGE_BIND_API: what libgstimagebind exports. The library is built with hidden visibility
 * (gst/meson.build), so only the functions declared with this macro in its installed headers
 * are part of its ABI. As GStreamer's own libraries (GST_VIDEO_API in
 * gst/video/video-prelude.h); the name follows the library's one symbol prefix,
 * gst_image_bind_. */
#ifndef __GST_IMAGE_BIND_PRELUDE_H__
#define __GST_IMAGE_BIND_PRELUDE_H__

#include <gst/gst.h>

#ifndef GST_IMAGE_BIND_API
# ifdef BUILDING_GST_IMAGE_BIND
#  define GST_IMAGE_BIND_API GST_API_EXPORT
# else
#  define GST_IMAGE_BIND_API GST_API_IMPORT
# endif
#endif

#endif
