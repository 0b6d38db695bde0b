/* IMAGEBIND_API: what libimagebind exports. The library is built with hidden visibility
 * (models/meson.build), so only the functions declared with this macro in its installed
 * headers are part of its ABI; everything else (the ib_* internals) stays inside the library.
 * As GStreamer's GST_VIDEO_API (gst/video/video-prelude.h). */
#ifndef IMAGEBIND_PRELUDE_H
#define IMAGEBIND_PRELUDE_H

#ifndef IMAGEBIND_API
# if defined (BUILDING_IMAGEBIND) && defined (_MSC_VER)
#  define IMAGEBIND_API __declspec (dllexport) extern
# elif defined (BUILDING_IMAGEBIND) && (defined (__GNUC__) || defined (__clang__))
#  define IMAGEBIND_API extern __attribute__ ((visibility ("default")))
# elif defined (_MSC_VER)
#  define IMAGEBIND_API __declspec (dllimport) extern
# else
#  define IMAGEBIND_API extern
# endif
#endif

#endif
