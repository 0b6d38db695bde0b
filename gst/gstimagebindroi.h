/* The "imagebind-match" parameter structure: an imagebindmatch result for one region of a
 * frame, carried by that region's GstVideoRegionOfInterestMeta (as GStreamer's own detectors
 * and DL Streamer attach classifications to regions).
 *
 * Writers (a matcher scoring regions) add one per region with
 * gst_image_bind_roi_add_match_param(); readers (imagebindoverlay, applications) find it with
 *
 *   GstStructure *s = gst_video_region_of_interest_meta_get_param (roi,
 *       GST_IMAGE_BIND_ROI_MATCH_PARAM_NAME);
 *
 * Fields (only `label` is required: a reader must accept a structure without the others):
 *   label        G_TYPE_STRING   the best prompt (or query label) for the region
 *   index        G_TYPE_UINT     its position in the matcher's prompts
 *   cosine       G_TYPE_DOUBLE   its cosine score, in [-1, 1]
 *   probability  G_TYPE_DOUBLE   its softmax probability over the prompts, in [0, 1]
 *   detected     G_TYPE_BOOLEAN  detect mode: the prompt is detected in the region
 *   mode         G_TYPE_STRING   "classify" or "detect": which score is the one to show
 *                                (probability when classifying, cosine when detecting)
 */
#ifndef __GST_IMAGE_BIND_ROI_H__
#define __GST_IMAGE_BIND_ROI_H__

#include <gst/gst.h>
#include <gst/video/video.h>
#include "gstimagebindmatchmeta.h"
#include "gstimagebindprelude.h"

G_BEGIN_DECLS

/**
 * GST_IMAGE_BIND_ROI_MATCH_PARAM_NAME:
 *
 * Name of the #GstStructure an imagebindmatch result for one region carries in that region's
 * #GstVideoRegionOfInterestMeta parameters (fields in gstimagebindroi.h).
 *
 * Since: 0.1
 */
#define GST_IMAGE_BIND_ROI_MATCH_PARAM_NAME "imagebind-match"

/**
 * gst_image_bind_roi_match_param_new:
 * @result: the region's best result
 * @mode: the matcher's mode
 *
 * Returns: (transfer full): a new "imagebind-match" structure describing @result.
 *
 * Since: 0.1
 */
GST_IMAGE_BIND_API
GstStructure *gst_image_bind_roi_match_param_new (const GstImageBindMatchResult * result,
    GstImageBindMatchMode mode);

/**
 * gst_image_bind_roi_add_match_param:
 * @roi: a region of interest meta
 * @result: the region's best result
 * @mode: the matcher's mode
 *
 * Adds (or replaces) the "imagebind-match" parameter structure of @roi.
 *
 * Since: 0.1
 */
GST_IMAGE_BIND_API
void gst_image_bind_roi_add_match_param (GstVideoRegionOfInterestMeta * roi,
    const GstImageBindMatchResult * result, GstImageBindMatchMode mode);

/**
 * gst_image_bind_roi_get_match_param:
 * @roi: a region of interest meta
 *
 * Returns: (transfer none) (nullable): the "imagebind-match" parameter structure of @roi, or
 *     NULL when it has none.
 *
 * Since: 0.1
 */
GST_IMAGE_BIND_API
const GstStructure *gst_image_bind_roi_get_match_param (GstVideoRegionOfInterestMeta * roi);

G_END_DECLS

#endif
