/* Zero-shot scores and the detection state machine of imagebindmatch. */
#include "gstimagebindmatchscore.h"

#include <math.h>

void
gst_image_bind_match_score (const gfloat * embedding, const gfloat * queries, guint dim,
    guint n_queries, gdouble * cosine, gdouble * probability)
{
  gdouble enorm = 0.0, max_logit = -G_MAXDOUBLE, sum = 0.0;
  guint i, j;

  for (i = 0; i < dim; i++)
    enorm += (gdouble) embedding[i] * embedding[i];
  enorm = sqrt (enorm);

  for (j = 0; j < n_queries; j++) {
    const gfloat *q = queries + (gsize) j * dim;
    gdouble dot = 0.0, qnorm = 0.0;

    for (i = 0; i < dim; i++) {
      dot += (gdouble) embedding[i] * q[i];
      qnorm += (gdouble) q[i] * q[i];
    }
    qnorm = sqrt (qnorm);
    cosine[j] = (enorm > 0.0 && qnorm > 0.0) ? dot / (enorm * qnorm) : 0.0;
    probability[j] = dot;       /* the logit, until normalised below */
    max_logit = MAX (max_logit, dot);
  }

  /* Softmax, shifted by the largest logit so that exp() cannot overflow. */
  for (j = 0; j < n_queries; j++) {
    probability[j] = exp (probability[j] - max_logit);
    sum += probability[j];
  }
  for (j = 0; j < n_queries; j++)
    probability[j] /= sum;
}

void
gst_image_bind_detector_reset (GstImageBindDetector * det)
{
  det->active = FALSE;
  det->above_since = GST_CLOCK_TIME_NONE;
  det->below_since = GST_CLOCK_TIME_NONE;
  det->last_score = 0.0;
  det->last_end = GST_CLOCK_TIME_NONE;
}

GstImageBindDetectionEvent
gst_image_bind_detector_update (GstImageBindDetector * det, gdouble score, GstClockTime start,
    GstClockTime end, gdouble threshold, GstClockTime min_duration, GstClockTime cooldown,
    GstClockTime * since)
{
  gboolean above = score > threshold;

  det->last_score = score;
  if (!GST_CLOCK_TIME_IS_VALID (end) || end < start)
    end = start;
  det->last_end = end;

  if (above) {
    det->below_since = GST_CLOCK_TIME_NONE;
    if (det->active)
      return GST_IMAGE_BIND_DETECTION_NONE;
    if (!GST_CLOCK_TIME_IS_VALID (det->above_since) || start < det->above_since)
      det->above_since = start;     /* a new run (or time went back: restart it) */
    if (end - det->above_since >= min_duration) {
      det->active = TRUE;
      *since = det->above_since;
      return GST_IMAGE_BIND_DETECTION_START;
    }
    return GST_IMAGE_BIND_DETECTION_NONE;
  }

  det->above_since = GST_CLOCK_TIME_NONE;
  if (!det->active)
    return GST_IMAGE_BIND_DETECTION_NONE;
  if (!GST_CLOCK_TIME_IS_VALID (det->below_since) || start < det->below_since)
    det->below_since = start;
  if (end - det->below_since >= cooldown) {
    det->active = FALSE;
    *since = det->below_since;
    det->below_since = GST_CLOCK_TIME_NONE;
    return GST_IMAGE_BIND_DETECTION_STOP;
  }
  return GST_IMAGE_BIND_DETECTION_NONE;
}
