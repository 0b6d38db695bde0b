/* GstImageBindQuery: a query for imagebindmatch built from terms, each a text, a reference
 * media file (image, sound, depth or thermal image, IMU recording) or a ready embedding, with a
 * weight: the paper's "composing modalities" (e.g. an image plus the text "at night").
 *
 *   GstImageBindQuery *q = gst_image_bind_query_new ("street at night");
 *   gst_image_bind_query_add_media (q, 1.0, GST_IMAGE_BIND_MODALITY_VISION, "/data/street.png");
 *   gst_image_bind_query_add_text (q, 0.5, "at night");
 *   g_signal_emit_by_name (match, "add-query", q, &index);
 *   gst_image_bind_query_unref (q);
 *
 * The same query as a string (the `prompts` property of imagebindmatch):
 *   street at night = image:/data/street.png + 0.5 * text:at night
 * (grammar: gst_image_bind_query_parse()).
 *
 * The embedding of a query is gst_image_bind_query_compose() of its terms' embeddings.
 */
#ifndef __GST_IMAGE_BIND_QUERY_H__
#define __GST_IMAGE_BIND_QUERY_H__

#include <gst/gst.h>
#include "gstimagebindmodality.h"
#include "gstimagebindprelude.h"

G_BEGIN_DECLS

/**
 * GstImageBindQueryTermKind:
 * @GST_IMAGE_BIND_QUERY_TERM_TEXT: a text, embedded by the model's text encoder
 * @GST_IMAGE_BIND_QUERY_TERM_MEDIA: a media file, decoded and embedded by its modality's
 *   encoder when the element starts
 * @GST_IMAGE_BIND_QUERY_TERM_VECTOR: an embedding given by the application
 *
 * Since: 0.1
 */
typedef enum {
  GST_IMAGE_BIND_QUERY_TERM_TEXT,
  GST_IMAGE_BIND_QUERY_TERM_MEDIA,
  GST_IMAGE_BIND_QUERY_TERM_VECTOR,
} GstImageBindQueryTermKind;

/**
 * GstImageBindQueryTerm:
 * @kind: what the term is
 * @weight: its weight in the sum (may be negative)
 * @modality: %GST_IMAGE_BIND_MODALITY_TEXT for a text, else the modality of the file or vector
 * @text: the text (TEXT) or the file path (MEDIA); NULL for a vector
 * @vector: (array length=dim): the embedding (VECTOR), else NULL
 * @dim: the number of floats in @vector, else 0
 *
 * One term of a query, owned by the query.
 *
 * Since: 0.1
 */
typedef struct {
  GstImageBindQueryTermKind kind;
  gdouble weight;
  GstImageBindModality modality;
  gchar *text;
  gfloat *vector;
  guint dim;
} GstImageBindQueryTerm;

typedef struct _GstImageBindQuery GstImageBindQuery;

/* Errors of gst_image_bind_query_parse() (SYNTAX) and gst_image_bind_query_compose() (COMPOSE). */
#define GST_IMAGE_BIND_QUERY_ERROR (gst_image_bind_query_error_quark ())
GST_IMAGE_BIND_API
GQuark gst_image_bind_query_error_quark (void);
typedef enum {
  GST_IMAGE_BIND_QUERY_ERROR_SYNTAX,
  GST_IMAGE_BIND_QUERY_ERROR_COMPOSE,
} GstImageBindQueryError;

#define GST_TYPE_IMAGE_BIND_QUERY (gst_image_bind_query_get_type ())
GST_IMAGE_BIND_API
GType gst_image_bind_query_get_type (void);

/* A new empty query (refcount 1). @label: the name results carry (NULL: the query written as
 * an expression, see gst_image_bind_query_to_string()). */
GST_IMAGE_BIND_API
GstImageBindQuery *gst_image_bind_query_new (const gchar * label);
GST_IMAGE_BIND_API
GstImageBindQuery *gst_image_bind_query_ref (GstImageBindQuery * query);
GST_IMAGE_BIND_API
void gst_image_bind_query_unref (GstImageBindQuery * query);

/* Terms; @weight must be finite. _add_media: @modality is not TEXT (a text is not a file).
 * _add_vector copies @dim floats; the vector is normalised when composed, so its scale does
 * not matter (an encoder's output can be given as is). FALSE (and a g_critical) on invalid
 * arguments. */
GST_IMAGE_BIND_API
gboolean gst_image_bind_query_add_text (GstImageBindQuery * query, gdouble weight,
    const gchar * text);
GST_IMAGE_BIND_API
gboolean gst_image_bind_query_add_media (GstImageBindQuery * query, gdouble weight,
    GstImageBindModality modality, const gchar * path);
GST_IMAGE_BIND_API
gboolean gst_image_bind_query_add_vector (GstImageBindQuery * query, gdouble weight,
    GstImageBindModality modality, const gfloat * vector, guint dim);

GST_IMAGE_BIND_API
guint gst_image_bind_query_get_n_terms (const GstImageBindQuery * query);
GST_IMAGE_BIND_API
const GstImageBindQueryTerm *gst_image_bind_query_get_term (const GstImageBindQuery * query,
    guint index);

/* The label given to gst_image_bind_query_new() (for a parsed entry: the label before '=', else
 * the entry without surrounding spaces), else gst_image_bind_query_to_string(). */
GST_IMAGE_BIND_API
const gchar *gst_image_bind_query_get_label (const GstImageBindQuery * query);

/* TRUE when the query is one text term of weight 1: a plain prompt, whose embedding is the
 * text encoder's output as is. */
GST_IMAGE_BIND_API
gboolean gst_image_bind_query_is_plain_text (const GstImageBindQuery * query);

/* The terms as an expression, e.g. "image:/a.png + 0.5 * text:at night" (vectors are written
 * "vector:<modality>[<dim>]", which does not parse back). g_free. */
GST_IMAGE_BIND_API
gchar *gst_image_bind_query_to_string (const GstImageBindQuery * query);

/* Parses one entry of imagebindmatch's `prompts`:
 *
 *   entry  := expr | label '=' expr | plain-text
 *   expr   := [sign] term { sign term }
 *   sign   := '+' | '-'
 *   term   := [number ['*']] kind ':' payload
 *   kind   := "text" | "image" | "vision" | "audio" | "depth" | "thermal" | "imu"
 *
 * Spaces around signs, numbers, '*' and '=' are optional. A payload (the text, or the file
 * path) runs to the end of the entry or to the next sign that is followed by a term (an
 * optional number and '*', a kind and ':'), so texts and paths may contain '+', '-' and
 * spaces: "text:rock - paper" is one text, and so is "text:a +". A payload in double quotes
 * ("...", with \" and \\) may contain anything, including "+ text:". Leading and trailing
 * spaces of a payload are dropped. "image" and "vision" are the same modality; kinds are
 * case-insensitive.
 *
 * An entry that does not start with a term, nor with a label (no '=') and '=' followed by a
 * term, is a plain text prompt (the whole entry, as it is): "a dog" stays the text "a dog".
 * To match a text that starts like a term, write it as one: "text:image: a photo".
 *
 * NULL and @error (GST_IMAGE_BIND_QUERY_ERROR_SYNTAX, naming the entry, the character position
 * (from 1) and what was expected) for a malformed expression: an empty payload, a sign (after
 * a quoted payload) without a term, an unterminated quote, an empty label, a non-finite
 * weight. */
GST_IMAGE_BIND_API
GstImageBindQuery *gst_image_bind_query_parse (const gchar * entry, GError ** error);

/* The embedding of a query from those of its terms: each term's vector divided by its L2
 * norm, times its weight, summed; the sum divided by its L2 norm and multiplied by @scale
 * (imagebindmatch uses the text logit scale, so a composed query carries the same factor as a
 * text prompt in the softmax). @vectors: @n_terms rows of @dim floats. Sums in double.
 * FALSE and @error (GST_IMAGE_BIND_QUERY_ERROR_COMPOSE) when a term's vector is zero or not
 * finite, or when the weighted sum is zero (the terms cancel out: its norm is below 1e-6 times
 * the sum of the absolute weights, i.e. rounding noise). */
GST_IMAGE_BIND_API
gboolean gst_image_bind_query_compose (const gfloat * const *vectors, const gdouble * weights,
    guint n_terms, guint dim, gfloat scale, gfloat * out, GError ** error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GstImageBindQuery, gst_image_bind_query_unref)

G_END_DECLS

#endif
