/* The imagebind plugin: one GST_PLUGIN_DEFINE registering every element.
 *
 * Adding an element: one GST_ELEMENT_REGISTER_DECLARE line and one GST_ELEMENT_REGISTER line in
 * its section below (and its source file in plugin/meson.build). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>
#include "imagebind.h"

/* libimagebind's own log lines (model loading, the BLAS kernels it chose) go to this category,
 * so GST_DEBUG=imagebind-runtime:5 shows them like the elements' own. */
GST_DEBUG_CATEGORY_STATIC (imagebind_runtime_debug);

static void
runtime_log (GLogLevelFlags level, const char *message, gpointer user_data)
{
  GstDebugLevel gst_level = GST_LEVEL_DEBUG;

  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    gst_level = GST_LEVEL_ERROR;
  else if (level & G_LOG_LEVEL_WARNING)
    gst_level = GST_LEVEL_WARNING;
  else if (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
    gst_level = GST_LEVEL_INFO;
  GST_CAT_LEVEL_LOG (imagebind_runtime_debug, gst_level, NULL, "%s", message);
}

/* -- encoders -- */
GST_ELEMENT_REGISTER_DECLARE (imagebindvision);
GST_ELEMENT_REGISTER_DECLARE (imagebindaudio);
GST_ELEMENT_REGISTER_DECLARE (imagebinddepth);
GST_ELEMENT_REGISTER_DECLARE (imagebindthermal);
GST_ELEMENT_REGISTER_DECLARE (imagebindimu);
/* -- match -- */
GST_ELEMENT_REGISTER_DECLARE (imagebindmatch);
GST_ELEMENT_REGISTER_DECLARE (imagebindtext);
/* -- retrieval, audio-visual, publishing -- */
GST_ELEMENT_REGISTER_DECLARE (imagebindindexsink);
GST_ELEMENT_REGISTER_DECLARE (imagebindav);
#ifdef HAVE_PUBLISH
GST_ELEMENT_REGISTER_DECLARE (imagebindpublish);
#endif
/* -- overlay -- */
#ifdef HAVE_PANGOCAIRO
GST_ELEMENT_REGISTER_DECLARE (imagebindoverlay);
#endif

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean any = FALSE;

  GST_DEBUG_CATEGORY_INIT (imagebind_runtime_debug, "imagebind-runtime", 0,
      "libimagebind: model files, BLAS kernels");
  imagebind_set_log_func (runtime_log, NULL);

  /* As gst-plugins-good does: the plugin loads if at least one element registered. */
  /* -- encoders -- */
  any |= GST_ELEMENT_REGISTER (imagebindvision, plugin);
  any |= GST_ELEMENT_REGISTER (imagebindaudio, plugin);
  any |= GST_ELEMENT_REGISTER (imagebinddepth, plugin);
  any |= GST_ELEMENT_REGISTER (imagebindthermal, plugin);
  any |= GST_ELEMENT_REGISTER (imagebindimu, plugin);
  /* -- match -- */
  any |= GST_ELEMENT_REGISTER (imagebindmatch, plugin);
  any |= GST_ELEMENT_REGISTER (imagebindtext, plugin);
  /* -- retrieval, audio-visual, publishing -- */
  any |= GST_ELEMENT_REGISTER (imagebindindexsink, plugin);
  any |= GST_ELEMENT_REGISTER (imagebindav, plugin);
#ifdef HAVE_PUBLISH
  any |= GST_ELEMENT_REGISTER (imagebindpublish, plugin);
#endif
  /* -- overlay -- */
#ifdef HAVE_PANGOCAIRO
  any |= GST_ELEMENT_REGISTER (imagebindoverlay, plugin);
#endif

  return any;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, imagebind,
    "ImageBind embeddings (vision, text, audio, depth, thermal, IMU) and prompt matching",
    plugin_init, PACKAGE_VERSION, "MIT/X11", "gst-imagebind", "https://github.com/gst-imagebind")
