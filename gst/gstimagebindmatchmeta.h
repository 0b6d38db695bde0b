/* GstImageBindMatchMeta: how one embedding scored against the prompts of an imagebindmatch.
 *
 * Reading it in C:
 *
 *   gpointer state = NULL;
 *   GstImageBindMatchMeta *meta;
 *   while ((meta = gst_buffer_iterate_imagebind_match_meta (buf, &state))) {
 *     if (meta->top_index >= 0)
 *       g_print ("%s: %s (p=%.2f)\n", gst_image_bind_modality_to_string (meta->modality),
 *           meta->top_label, meta->top_probability);
 *     for (guint i = 0; i < meta->n_results; i++)
 *       ... meta->results[i].label, .cosine, .probability, .detected ...
 *   }
 *
 * From Python (or any language without this library's introspection data) set the matcher's
 * `custom-meta` property to TRUE: each match meta is then also attached as a GstCustomMeta
 * named "GstImageBindMatchCustomMeta" whose structure is gst_image_bind_match_meta_to_structure():
 *
 *   meta = buf.get_custom_meta("GstImageBindMatchCustomMeta")   # in a pad probe
 *   if meta:
 *       s = meta.get_structure()
 *       top, p = s.get_string("top-label"), s.get_value("top-probability")
 *       labels = s.get_value("labels-strv")
 *       scores = array.array("d", s.get_value("scores-f64").get_data())
 *
 * (PyGObject alone cannot convert GstValueArray fields such as "labels": hence the plain
 * copies; with gst-python installed, s.get_value("labels") works too.) The matcher's bus
 * messages carry the same plain fields.
 */
#ifndef __GST_IMAGE_BIND_MATCH_META_H__
#define __GST_IMAGE_BIND_MATCH_META_H__

#include <gst/gst.h>
#include "gstimagebindmodality.h"
#include "gstimagebindprelude.h"

G_BEGIN_DECLS

/**
 * GstImageBindMatchMode:
 * @GST_IMAGE_BIND_MATCH_MODE_CLASSIFY: zero-shot classification: every embedding is scored
 *     against all prompts; the result is the softmax over prompts (top-k)
 * @GST_IMAGE_BIND_MATCH_MODE_DETECT: detection: per prompt, the cosine score is compared with
 *     a threshold over time, with hysteresis; start and stop events are announced
 *
 * What imagebindmatch does with the scores.
 *
 * Since: 0.1
 */
typedef enum {
  GST_IMAGE_BIND_MATCH_MODE_CLASSIFY = 0,
  GST_IMAGE_BIND_MATCH_MODE_DETECT,
} GstImageBindMatchMode;

#define GST_TYPE_IMAGE_BIND_MATCH_MODE (gst_image_bind_match_mode_get_type ())
GST_IMAGE_BIND_API
GType gst_image_bind_match_mode_get_type (void);

/* "classify", "detect" (the GEnum nicks); NULL if invalid. */
GST_IMAGE_BIND_API
const gchar *gst_image_bind_match_mode_to_string (GstImageBindMatchMode mode);

#define GST_IMAGE_BIND_MATCH_META_API_TYPE (gst_image_bind_match_meta_api_get_type ())
#define GST_IMAGE_BIND_MATCH_META_INFO (gst_image_bind_match_meta_get_info ())

/**
 * GST_IMAGE_BIND_MATCH_CUSTOM_META_NAME:
 *
 * Name of the GstCustomMeta structure mirror of #GstImageBindMatchMeta (attached when the
 * matcher's `custom-meta` property is TRUE, registered by
 * gst_image_bind_match_custom_meta_register()).
 *
 * Since: 0.1
 */
#define GST_IMAGE_BIND_MATCH_CUSTOM_META_NAME "GstImageBindMatchCustomMeta"

/**
 * GstImageBindMatchResult:
 * @index: the prompt's position in the matcher's `prompts`
 * @label: the prompt text
 * @cosine: cosine similarity of the embedding and the prompt's text embedding, in [-1, 1]
 * @probability: softmax over all prompts of the logits (embedding . text embedding, both as
 *     the model outputs them, i.e. scaled by their modality's logit scale), in [0, 1]
 * @detected: detect mode: the prompt is currently detected for this modality (after this
 *     embedding was taken into account); always FALSE in classify mode
 *
 * One prompt's score.
 *
 * Since: 0.1
 */
typedef struct {
  guint index;
  gchar *label;
  gdouble cosine;
  gdouble probability;
  gboolean detected;
} GstImageBindMatchResult;

typedef struct _GstImageBindMatchMeta GstImageBindMatchMeta;

/**
 * GstImageBindMatchMeta:
 * @meta: parent #GstMeta
 * @modality: modality of the embedding that was matched
 * @mode: the matcher's mode when it matched
 * @n_results: number of entries in @results (the matcher's top-k, or all prompts)
 * @results: (array length=n_results): scores, best first (decreasing probability)
 * @top_index: prompt index of the most probable prompt, -1 when there were no prompts
 * @top_label: (nullable): its text, NULL when there were no prompts
 * @top_probability: its probability (0 when there were no prompts)
 * @pts: span of the input the embedding describes, as in #GstImageBindEmbeddingMeta
 * @duration: its duration, or GST_CLOCK_TIME_NONE
 * @stream_time: @pts in stream time
 * @running_time: @pts in running time
 *
 * The result of matching one #GstImageBindEmbeddingMeta against the prompts of an
 * imagebindmatch element: a buffer carries one per embedding meta that was matched.
 *
 * The API type has no tags, so GstBaseTransform based elements keep it, and it is copied by
 * every buffer copy or transform (it describes content, not memory).
 *
 * Since: 0.1
 */
struct _GstImageBindMatchMeta {
  GstMeta meta;

  GstImageBindModality modality;
  GstImageBindMatchMode mode;

  guint n_results;
  GstImageBindMatchResult *results;

  gint top_index;
  gchar *top_label;
  gdouble top_probability;

  GstClockTime pts;
  GstClockTime duration;
  GstClockTime stream_time;
  GstClockTime running_time;
};

GST_IMAGE_BIND_API
GType gst_image_bind_match_meta_api_get_type (void);
GST_IMAGE_BIND_API
const GstMetaInfo *gst_image_bind_match_meta_get_info (void);

/* Adds a match meta with a copy of @results (@n_results entries, labels copied), which must be
 * ordered best first; top_* are taken from @results[0] (-1 / NULL / 0 when @n_results is 0).
 * The span fields start as GST_CLOCK_TIME_NONE. @buffer must be writable. */
GST_IMAGE_BIND_API
GstImageBindMatchMeta *gst_buffer_add_imagebind_match_meta (GstBuffer * buffer,
    GstImageBindModality modality, GstImageBindMatchMode mode,
    const GstImageBindMatchResult * results, guint n_results);

/* The first match meta on @buffer, or NULL. */
GST_IMAGE_BIND_API
GstImageBindMatchMeta *gst_buffer_get_imagebind_match_meta (GstBuffer * buffer);

/* The first match meta of @modality on @buffer, or NULL. */
GST_IMAGE_BIND_API
GstImageBindMatchMeta *gst_buffer_get_imagebind_match_meta_by_modality (GstBuffer * buffer,
    GstImageBindModality modality);

/* Iterates over all match metas of @buffer; *@state must start as NULL. */
GST_IMAGE_BIND_API
GstImageBindMatchMeta *gst_buffer_iterate_imagebind_match_meta (GstBuffer * buffer,
    gpointer * state);

/* The result for prompt @index (its position in `prompts`), or NULL when it is not among the
 * meta's results (top-k). */
GST_IMAGE_BIND_API
const GstImageBindMatchResult *gst_image_bind_match_meta_find_result (
    const GstImageBindMatchMeta * meta, guint index);

/* Number of match metas on @buffer. */
GST_IMAGE_BIND_API
guint gst_buffer_get_n_imagebind_match_metas (GstBuffer * buffer);

/* The @n-th match meta of @buffer (from 0), or NULL: iteration for introspected languages. */
GST_IMAGE_BIND_API
GstImageBindMatchMeta *gst_buffer_get_imagebind_match_meta_nth (GstBuffer * buffer, guint n);

/* The @i-th result (best first), or NULL when @i >= n_results: for introspected languages,
 * which cannot read the results array. */
GST_IMAGE_BIND_API
const GstImageBindMatchResult *gst_image_bind_match_meta_get_result (
    const GstImageBindMatchMeta * meta, guint i);

/* A GstStructure mirror, named GST_IMAGE_BIND_MATCH_CUSTOM_META_NAME, with fields:
 *   modality        G_TYPE_STRING   "vision", "audio", ...
 *   mode            G_TYPE_STRING   "classify" or "detect"
 *   labels          GST_TYPE_ARRAY of G_TYPE_STRING    best first
 *   indices         GST_TYPE_ARRAY of G_TYPE_UINT      prompt positions, same order
 *   scores          GST_TYPE_ARRAY of G_TYPE_DOUBLE    cosines, same order
 *   probabilities   GST_TYPE_ARRAY of G_TYPE_DOUBLE    softmax probabilities, same order
 *   detected        GST_TYPE_ARRAY of G_TYPE_BOOLEAN   same order
 *   top-index       G_TYPE_INT      -1 without prompts
 *   top-label       G_TYPE_STRING   "" without prompts
 *   top-probability G_TYPE_DOUBLE
 *   pts, duration, stream-time, running-time   G_TYPE_UINT64 (GST_CLOCK_TIME_NONE if unknown)
 * and the lists again in types PyGObject reads without gst-python (which alone converts
 * GstValueArray), see gst_image_bind_match_results_add_plain_fields().
 * Free with gst_structure_free(). */
GST_IMAGE_BIND_API
GstStructure *gst_image_bind_match_meta_to_structure (const GstImageBindMatchMeta * meta);

/* Adds the result lists to @s in plain GLib types (for PyGObject without gst-python):
 *   labels-strv         G_TYPE_STRV    the labels, best first
 *   indices-u32         G_TYPE_BYTES   their prompt positions, native-endian uint32
 *   scores-f64          G_TYPE_BYTES   their cosines, native-endian float64
 *   probabilities-f64   G_TYPE_BYTES   their probabilities, native-endian float64
 * In Python: s.get_value("labels-strv"),
 *   array.array("d", s.get_value("scores-f64").get_data()). */
GST_IMAGE_BIND_API
void gst_image_bind_match_results_add_plain_fields (GstStructure * s,
    const GstImageBindMatchResult * results, guint n_results);

/**
 * GstImageBindMatchResultsFields:
 * @GST_IMAGE_BIND_MATCH_RESULTS_LISTS: "labels" (G_TYPE_STRING), "indices" (G_TYPE_UINT),
 *     "scores" (cosines, G_TYPE_DOUBLE), "probabilities" (G_TYPE_DOUBLE): GST_TYPE_ARRAYs in
 *     the order of the results
 * @GST_IMAGE_BIND_MATCH_RESULTS_DETECTED: "detected": GST_TYPE_ARRAY of G_TYPE_BOOLEAN, same
 *     order
 * @GST_IMAGE_BIND_MATCH_RESULTS_PLAIN: the same lists in plain GLib types, as
 *     gst_image_bind_match_results_add_plain_fields() adds them
 * @GST_IMAGE_BIND_MATCH_RESULTS_TOP: "top-label" (G_TYPE_STRING), "top-index" (G_TYPE_UINT),
 *     "top-probability" and "top-score" (the cosine, G_TYPE_DOUBLE) of the first result; none
 *     of them when there are no results
 *
 * The groups of fields gst_image_bind_match_results_add_fields() writes.
 *
 * Since: 0.1
 */
typedef enum {
  GST_IMAGE_BIND_MATCH_RESULTS_LISTS = 1 << 0,
  GST_IMAGE_BIND_MATCH_RESULTS_DETECTED = 1 << 1,
  GST_IMAGE_BIND_MATCH_RESULTS_PLAIN = 1 << 2,
  GST_IMAGE_BIND_MATCH_RESULTS_TOP = 1 << 3,
} GstImageBindMatchResultsFields;

/* The one serializer of match results into structures (the match meta's mirror, the bus
 * messages of imagebindmatch and imagebindav): sets the @fields groups of @results on @s, in
 * the order LISTS, DETECTED, PLAIN, TOP (call it once per group for another order).
 * @results must already be ordered (gst_image_bind_match_results_sort()). */
GST_IMAGE_BIND_API
void gst_image_bind_match_results_add_fields (GstStructure * s,
    const GstImageBindMatchResult * results, guint n_results,
    GstImageBindMatchResultsFields fields);

/* Sorts @results best first: decreasing probability, then increasing prompt index (the order
 * of GstImageBindMatchMeta.results and of every results message). */
GST_IMAGE_BIND_API
void gst_image_bind_match_results_sort (GstImageBindMatchResult * results, guint n_results);

/* Registers the GstCustomMeta mirror (idempotent, thread-safe); returns its info. */
GST_IMAGE_BIND_API
const GstMetaInfo *gst_image_bind_match_custom_meta_register (void);

/* Attaches the structure mirror of @meta to @buffer (writable) as a GstCustomMeta. */
GST_IMAGE_BIND_API
GstCustomMeta *gst_buffer_add_imagebind_match_custom_meta (GstBuffer * buffer,
    const GstImageBindMatchMeta * meta);

G_END_DECLS

#endif
