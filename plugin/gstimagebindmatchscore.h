/* The arithmetic of imagebindmatch, apart from the element: zero-shot scores of one embedding
 * against the prompt embeddings, and the per-prompt detection state machine. */
#ifndef __GST_IMAGE_BIND_MATCH_SCORE_H__
#define __GST_IMAGE_BIND_MATCH_SCORE_H__

#include <gst/gst.h>

G_BEGIN_DECLS

/* Scores @embedding (@dim floats, as the model outputs it) against @n_queries rows of
 * @queries (@dim floats each, as the model outputs them):
 *   logit[j]       = embedding . queries[j]       (both carry their logit scales, so this is
 *                                                   the official zero-shot logit)
 *   probability[j] = softmax over j of logit[j]
 *   cosine[j]      = embedding . queries[j] / (|embedding| |queries[j]|)   (0 for a zero vector)
 * Sums in double precision. */
void gst_image_bind_match_score (const gfloat * embedding, const gfloat * queries, guint dim,
    guint n_queries, gdouble * cosine, gdouble * probability);

typedef enum {
  GST_IMAGE_BIND_DETECTION_NONE,
  GST_IMAGE_BIND_DETECTION_START,
  GST_IMAGE_BIND_DETECTION_STOP,
} GstImageBindDetectionEvent;

/* Detection state of one prompt (for one modality). Zero-initialise with
 * gst_image_bind_detector_reset(). */
typedef struct {
  gboolean active;
  GstClockTime above_since;     /* start of the first embedding of the current run above */
  GstClockTime below_since;     /* start of the first embedding of the current run below */
  gdouble last_score;
  GstClockTime last_end;        /* end of the last input fed */
} GstImageBindDetector;

void gst_image_bind_detector_reset (GstImageBindDetector * det);

/* Feeds one score for the input spanning [@start, @end) (stream time; @end = @start for an
 * instant). A detection starts when the scores have been > @threshold without interruption
 * from the start of the first such input to the end of the current one for at least
 * @min_duration, and stops when they have been <= @threshold for at least @cooldown, measured
 * the same way. On an event, *@since receives the start of the run that caused it. */
GstImageBindDetectionEvent gst_image_bind_detector_update (GstImageBindDetector * det,
    gdouble score, GstClockTime start, GstClockTime end, gdouble threshold,
    GstClockTime min_duration, GstClockTime cooldown, GstClockTime * since);

G_END_DECLS

#endif
