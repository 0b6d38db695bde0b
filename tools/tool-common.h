/* What the command-line tools share: finding the model as the elements do, and finding the
 * gst-imagebind plugin of an uninstalled build. */
#pragma once

#include "imagebind.h"

#include <glib.h>

G_BEGIN_DECLS

/* The model a tool loads: @option (--model) when given, else $IMAGEBIND_MODEL, else the
 * shipped default model (installed, then in the source tree): imagebind_model_find(), as the
 * elements find theirs.
 * NULL and @error when none exists or it cannot be loaded; the message names the file and
 * where its path came from ("from $IMAGEBIND_MODEL", "the shipped default model") and says
 * when it is a directory. @path (optional) receives the file used (g_free). */
ImageBindModel *ib_tool_load_model (const char *option, char **path, GError **error);

/* Makes the gst-imagebind elements available to a tool that runs pipelines: when
 * @element_name is not registered (GST_PLUGIN_PATH unset), the plugin of the build tree the
 * tool was built in is loaded. FALSE and @error (saying exactly what to set) when the element
 * is still missing. gst_init() must have been called. */
gboolean ib_tool_find_plugin (const char *element_name, GError **error);

G_END_DECLS
