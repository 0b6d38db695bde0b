/* GstImageBindModality GEnum registration. */
#include "gstimagebindmodality.h"

#include <imagebind.h>

/* The enum mirrors the runtime's so that a cast converts between them. */
G_STATIC_ASSERT ((int) GST_IMAGE_BIND_MODALITY_VISION == (int) IMAGEBIND_MODALITY_VISION);
G_STATIC_ASSERT ((int) GST_IMAGE_BIND_MODALITY_TEXT == (int) IMAGEBIND_MODALITY_TEXT);
G_STATIC_ASSERT ((int) GST_IMAGE_BIND_MODALITY_AUDIO == (int) IMAGEBIND_MODALITY_AUDIO);
G_STATIC_ASSERT ((int) GST_IMAGE_BIND_MODALITY_DEPTH == (int) IMAGEBIND_MODALITY_DEPTH);
G_STATIC_ASSERT ((int) GST_IMAGE_BIND_MODALITY_THERMAL == (int) IMAGEBIND_MODALITY_THERMAL);
G_STATIC_ASSERT ((int) GST_IMAGE_BIND_MODALITY_IMU == (int) IMAGEBIND_MODALITY_IMU);
G_STATIC_ASSERT (GST_IMAGE_BIND_N_MODALITIES == (int) IMAGEBIND_N_MODALITIES);

static const GEnumValue modality_values[] = {
  {GST_IMAGE_BIND_MODALITY_VISION, "Images and video frames", "vision"},
  {GST_IMAGE_BIND_MODALITY_TEXT, "Text", "text"},
  {GST_IMAGE_BIND_MODALITY_AUDIO, "Audio", "audio"},
  {GST_IMAGE_BIND_MODALITY_DEPTH, "Depth maps", "depth"},
  {GST_IMAGE_BIND_MODALITY_THERMAL, "Thermal images", "thermal"},
  {GST_IMAGE_BIND_MODALITY_IMU, "Accelerometer and gyroscope (IMU)", "imu"},
  {0, NULL, NULL}
};

GType
gst_image_bind_modality_get_type (void)
{
  static gsize type = 0;

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstImageBindModality", modality_values);
    g_once_init_leave (&type, t);
  }
  return type;
}

/**
 * gst_image_bind_modality_to_string:
 * @modality: a modality
 *
 * Returns: (nullable): its nick ("vision", "text", "audio", "depth", "thermal", "imu"), NULL
 *     when @modality is not one
 */
const gchar *
gst_image_bind_modality_to_string (GstImageBindModality modality)
{
  if ((guint) modality >= GST_IMAGE_BIND_N_MODALITIES)
    return NULL;
  return modality_values[modality].value_nick;
}

/**
 * gst_image_bind_modality_from_string:
 * @name: a modality nick ("vision", "audio", ...)
 * @modality: (out) (optional): the modality named @name
 *
 * Returns: whether @name names a modality
 */
gboolean
gst_image_bind_modality_from_string (const gchar * name, GstImageBindModality * modality)
{
  guint i;

  g_return_val_if_fail (name != NULL, FALSE);

  for (i = 0; i < GST_IMAGE_BIND_N_MODALITIES; i++) {
    if (g_str_equal (name, modality_values[i].value_nick)) {
      if (modality)
        *modality = (GstImageBindModality) modality_values[i].value;
      return TRUE;
    }
  }
  return FALSE;
}
