/* What the command-line tools share (tool-common.h). */
#include "tool-common.h"

#include <gst/gst.h>

ImageBindModel *
ib_tool_load_model (const char *option, char **path_out, GError **error)
{
  const char *remedy = "", *described;
  g_autofree char *path = NULL, *origin = NULL;
  ImageBindModelOrigin from;
  ImageBindModel *model;
  GError *err = NULL;

  path = imagebind_model_find (option, &from, &err);
  if (!path) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "no model: give --model FILE.gguf "
        "or set IMAGEBIND_MODEL (%s)", err->message);
    g_error_free (err);
    return NULL;
  }
  described = imagebind_model_origin_describe (from);
  origin = described ? g_strdup_printf (" (%s)", described) : g_strdup ("");
  if (from == IMAGEBIND_MODEL_ORIGIN_ENVIRONMENT)
    remedy = " Unset IMAGEBIND_MODEL or point it at a model file, or give --model FILE.";
  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_ISDIR, "model \"%s\"%s is a directory, not "
        "a model file: give the path of a .gguf file.%s", path, origin, remedy);
    return NULL;
  }
  model = imagebind_model_load (path, &err);
  if (!model) {
    g_set_error (error, err->domain, err->code, "model \"%s\"%s: %s.%s", path, origin,
        err->message, remedy);
    g_error_free (err);
    return NULL;
  }
  if (path_out)
    *path_out = g_steal_pointer (&path);
  return model;
}

gboolean
ib_tool_find_plugin (const char *element_name, GError **error)
{
  GstElementFactory *factory = gst_element_factory_find (element_name);

  /* An uninstalled build: the plugin next to the tools, as pipelines/common.sh does. Only
   * when the element is missing, so that an installed or GST_PLUGIN_PATH plugin wins. */
  if (!factory && g_file_test (IB_BUILD_PLUGIN_DIR, G_FILE_TEST_IS_DIR)) {
    gst_registry_scan_path (gst_registry_get (), IB_BUILD_PLUGIN_DIR);
    factory = gst_element_factory_find (element_name);
  }
  if (factory) {
    gst_object_unref (factory);
    return TRUE;
  }
  g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN, "the GStreamer element "
      "%s is missing: install gst-imagebind (meson install -C build), or set "
      "GST_PLUGIN_PATH to the directory holding libgstimagebind.so (an uninstalled build: "
      "GST_PLUGIN_PATH=<build directory>/plugin)%s", element_name,
      g_file_test (IB_BUILD_PLUGIN_DIR, G_FILE_TEST_IS_DIR) ? "" :
      "; the build tree these tools came from (" IB_BUILD_PLUGIN_DIR ") is gone");
  return FALSE;
}
