/* The "imagebind-match" region parameter structure (fields in gstimagebindroi.h). */
#include "gstimagebindroi.h"

GstStructure *
gst_image_bind_roi_match_param_new (const GstImageBindMatchResult * result,
    GstImageBindMatchMode mode)
{
  g_return_val_if_fail (result != NULL, NULL);

  return gst_structure_new (GST_IMAGE_BIND_ROI_MATCH_PARAM_NAME,
      "label", G_TYPE_STRING, result->label ? result->label : "",
      "index", G_TYPE_UINT, result->index,
      "cosine", G_TYPE_DOUBLE, result->cosine,
      "probability", G_TYPE_DOUBLE, result->probability,
      "detected", G_TYPE_BOOLEAN, result->detected,
      "mode", G_TYPE_STRING, gst_image_bind_match_mode_to_string (mode), NULL);
}

void
gst_image_bind_roi_add_match_param (GstVideoRegionOfInterestMeta * roi,
    const GstImageBindMatchResult * result, GstImageBindMatchMode mode)
{
  GList *l;

  g_return_if_fail (roi != NULL && result != NULL);

  /* gst_video_region_of_interest_meta_add_param() appends: a region matched twice (the
   * prompts changed) must keep one answer, the newest */
  for (l = roi->params; l; l = l->next) {
    if (gst_structure_has_name (l->data, GST_IMAGE_BIND_ROI_MATCH_PARAM_NAME)) {
      gst_structure_free (l->data);
      roi->params = g_list_delete_link (roi->params, l);
      break;
    }
  }
  gst_video_region_of_interest_meta_add_param (roi,
      gst_image_bind_roi_match_param_new (result, mode));
}

const GstStructure *
gst_image_bind_roi_get_match_param (GstVideoRegionOfInterestMeta * roi)
{
  g_return_val_if_fail (roi != NULL, NULL);

  return gst_video_region_of_interest_meta_get_param (roi, GST_IMAGE_BIND_ROI_MATCH_PARAM_NAME);
}
