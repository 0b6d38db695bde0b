/* The imagebind plugin: one GST_PLUGIN_DEFINE registering every element.
 *
 * Adding an element: one GST_ELEMENT_REGISTER_DECLARE line and one GST_ELEMENT_REGISTER line in
 * its section below (and its source file in plugin/meson.build). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>

/* -- encoders -- */
GST_ELEMENT_REGISTER_DECLARE (imagebindvision);
GST_ELEMENT_REGISTER_DECLARE (imagebindaudio);
GST_ELEMENT_REGISTER_DECLARE (imagebinddepth);
GST_ELEMENT_REGISTER_DECLARE (imagebindthermal);
GST_ELEMENT_REGISTER_DECLARE (imagebindimu);
/* -- match -- */
GST_ELEMENT_REGISTER_DECLARE (imagebindmatch);
GST_ELEMENT_REGISTER_DECLARE (imagebindtext);

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean any = FALSE;

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

  return any;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, imagebind,
    "ImageBind embeddings (vision, text, audio, depth, thermal, IMU) and prompt matching",
    plugin_init, PACKAGE_VERSION, "MIT/X11", "gst-imagebind", "https://github.com/gst-imagebind")
