/* GstImageBindQuery: weighted sums of text, media and vector terms, their string syntax and
 * their arithmetic. */
#include "gstimagebindquery.h"

#include <math.h>
#include <string.h>

struct _GstImageBindQuery {
  gint refcount;
  gchar *label;
  GArray *terms;                /* GstImageBindQueryTerm */
  gchar *expression;            /* cache for get_label() without a label */
};

G_DEFINE_QUARK (gst-image-bind-query-error-quark, gst_image_bind_query_error);

G_DEFINE_BOXED_TYPE (GstImageBindQuery, gst_image_bind_query, gst_image_bind_query_ref,
    gst_image_bind_query_unref);

static void
term_clear (gpointer data)
{
  GstImageBindQueryTerm *t = data;

  g_free (t->text);
  g_free (t->vector);
}

GstImageBindQuery *
gst_image_bind_query_new (const gchar * label)
{
  GstImageBindQuery *q = g_new0 (GstImageBindQuery, 1);

  q->refcount = 1;
  q->label = (label && *label) ? g_strdup (label) : NULL;
  q->terms = g_array_new (FALSE, TRUE, sizeof (GstImageBindQueryTerm));
  g_array_set_clear_func (q->terms, term_clear);
  return q;
}

GstImageBindQuery *
gst_image_bind_query_ref (GstImageBindQuery * query)
{
  g_return_val_if_fail (query != NULL, NULL);
  g_atomic_int_inc (&query->refcount);
  return query;
}

void
gst_image_bind_query_unref (GstImageBindQuery * query)
{
  g_return_if_fail (query != NULL);
  if (!g_atomic_int_dec_and_test (&query->refcount))
    return;
  g_array_unref (query->terms);
  g_free (query->label);
  g_free (query->expression);
  g_free (query);
}

static void
add_term (GstImageBindQuery * q, GstImageBindQueryTerm * t)
{
  g_array_append_val (q->terms, *t);
  g_clear_pointer (&q->expression, g_free);
}

gboolean
gst_image_bind_query_add_text (GstImageBindQuery * query, gdouble weight, const gchar * text)
{
  GstImageBindQueryTerm t = { GST_IMAGE_BIND_QUERY_TERM_TEXT, weight,
    GST_IMAGE_BIND_MODALITY_TEXT, NULL, NULL, 0
  };

  g_return_val_if_fail (query != NULL, FALSE);
  g_return_val_if_fail (text != NULL, FALSE);
  g_return_val_if_fail (isfinite (weight), FALSE);
  t.text = g_strdup (text);
  add_term (query, &t);
  return TRUE;
}

gboolean
gst_image_bind_query_add_media (GstImageBindQuery * query, gdouble weight,
    GstImageBindModality modality, const gchar * path)
{
  GstImageBindQueryTerm t = { GST_IMAGE_BIND_QUERY_TERM_MEDIA, weight, modality, NULL, NULL, 0 };

  g_return_val_if_fail (query != NULL, FALSE);
  g_return_val_if_fail (path != NULL && *path, FALSE);
  g_return_val_if_fail (isfinite (weight), FALSE);
  g_return_val_if_fail (gst_image_bind_modality_to_string (modality) != NULL, FALSE);
  g_return_val_if_fail (modality != GST_IMAGE_BIND_MODALITY_TEXT, FALSE);
  t.text = g_strdup (path);
  add_term (query, &t);
  return TRUE;
}

gboolean
gst_image_bind_query_add_vector (GstImageBindQuery * query, gdouble weight,
    GstImageBindModality modality, const gfloat * vector, guint dim)
{
  GstImageBindQueryTerm t = { GST_IMAGE_BIND_QUERY_TERM_VECTOR, weight, modality, NULL, NULL,
    dim
  };

  g_return_val_if_fail (query != NULL, FALSE);
  g_return_val_if_fail (vector != NULL && dim > 0, FALSE);
  g_return_val_if_fail (isfinite (weight), FALSE);
  g_return_val_if_fail (gst_image_bind_modality_to_string (modality) != NULL, FALSE);
  t.vector = g_memdup2 (vector, (gsize) dim * sizeof (gfloat));
  add_term (query, &t);
  return TRUE;
}

guint
gst_image_bind_query_get_n_terms (const GstImageBindQuery * query)
{
  g_return_val_if_fail (query != NULL, 0);
  return query->terms->len;
}

const GstImageBindQueryTerm *
gst_image_bind_query_get_term (const GstImageBindQuery * query, guint index)
{
  g_return_val_if_fail (query != NULL, NULL);
  g_return_val_if_fail (index < query->terms->len, NULL);
  return &g_array_index (query->terms, GstImageBindQueryTerm, index);
}

const gchar *
gst_image_bind_query_get_label (const GstImageBindQuery * query)
{
  GstImageBindQuery *q = (GstImageBindQuery *) query;

  g_return_val_if_fail (query != NULL, NULL);
  if (q->label)
    return q->label;
  if (!q->expression)
    q->expression = gst_image_bind_query_to_string (q);
  return q->expression;
}

gboolean
gst_image_bind_query_is_plain_text (const GstImageBindQuery * query)
{
  const GstImageBindQueryTerm *t;

  g_return_val_if_fail (query != NULL, FALSE);
  if (query->terms->len != 1)
    return FALSE;
  t = &g_array_index (query->terms, GstImageBindQueryTerm, 0);
  return t->kind == GST_IMAGE_BIND_QUERY_TERM_TEXT && t->weight == 1.0;
}

/* The keyword a term is written with. */
static const gchar *
term_keyword (const GstImageBindQueryTerm * t)
{
  if (t->modality == GST_IMAGE_BIND_MODALITY_VISION)
    return "image";
  return gst_image_bind_modality_to_string (t->modality);
}

gchar *
gst_image_bind_query_to_string (const GstImageBindQuery * query)
{
  GString *s = g_string_new (NULL);
  guint i;

  g_return_val_if_fail (query != NULL, NULL);
  for (i = 0; i < query->terms->len; i++) {
    const GstImageBindQueryTerm *t = &g_array_index (query->terms, GstImageBindQueryTerm, i);
    gdouble w = fabs (t->weight);
    gchar num[G_ASCII_DTOSTR_BUF_SIZE];

    if (i > 0)
      g_string_append (s, t->weight < 0 ? " - " : " + ");
    else if (t->weight < 0)
      g_string_append (s, "-");
    if (w != 1.0)
      g_string_append_printf (s, "%s * ", g_ascii_formatd (num, sizeof num, "%g", w));
    if (t->kind == GST_IMAGE_BIND_QUERY_TERM_VECTOR)
      g_string_append_printf (s, "vector:%s[%u]",
          gst_image_bind_modality_to_string (t->modality), t->dim);
    else
      g_string_append_printf (s, "%s:%s", term_keyword (t), t->text);
  }
  return g_string_free (s, FALSE);
}

/* ---- parsing ---- */

static const struct {
  const gchar *keyword;
  GstImageBindModality modality;
} keywords[] = {
  {"text", GST_IMAGE_BIND_MODALITY_TEXT},
  {"image", GST_IMAGE_BIND_MODALITY_VISION},
  {"vision", GST_IMAGE_BIND_MODALITY_VISION},
  {"audio", GST_IMAGE_BIND_MODALITY_AUDIO},
  {"depth", GST_IMAGE_BIND_MODALITY_DEPTH},
  {"thermal", GST_IMAGE_BIND_MODALITY_THERMAL},
  {"imu", GST_IMAGE_BIND_MODALITY_IMU},
};

static const gchar *
skip_spaces (const gchar * p)
{
  while (*p && g_ascii_isspace (*p))
    p++;
  return p;
}

/* If a keyword and ':' start @p, returns the position after the ':' and sets @modality. */
static const gchar *
match_keyword (const gchar * p, GstImageBindModality * modality)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (keywords); i++) {
    gsize len = strlen (keywords[i].keyword);

    if (g_ascii_strncasecmp (p, keywords[i].keyword, len) == 0 && p[len] == ':') {
      *modality = keywords[i].modality;
      return p + len + 1;
    }
  }
  return NULL;
}

/* Whether a number starts at @p (what g_ascii_strtod would read, without its sign). "nan" and
 * "inf" count: "nan * text:a" is a term with an invalid weight, refused as such, not a plain
 * prompt spelled that way. */
static gboolean
starts_number (const gchar * p)
{
  return g_ascii_isdigit (p[0]) || (p[0] == '.' && g_ascii_isdigit (p[1])) ||
      g_ascii_strncasecmp (p, "nan", 3) == 0 || g_ascii_strncasecmp (p, "inf", 3) == 0;
}

/* Reads an optional weight ("0.5", "0.5 *", "2*") and a keyword with its ':' at @p. Returns
 * the position of the payload, or NULL if no term starts at @p. */
static const gchar *
match_term_start (const gchar * p, gdouble * weight, GstImageBindModality * modality)
{
  const gchar *kw;

  *weight = 1.0;
  p = skip_spaces (p);
  if (starts_number (p)) {
    gchar *end;

    *weight = g_ascii_strtod (p, &end);
    p = skip_spaces (end);
    if (*p == '*')
      p = skip_spaces (p + 1);
  }
  kw = match_keyword (p, modality);
  return kw;
}

/* Whether a sign at @p starts the next term. */
static gboolean
is_term_separator (const gchar * p)
{
  gdouble w;
  GstImageBindModality m;

  return (*p == '+' || *p == '-') && match_term_start (p + 1, &w, &m) != NULL;
}

static gboolean
parse_error (GError ** error, const gchar * entry, const gchar * at, const gchar * what)
{
  g_set_error (error, GST_IMAGE_BIND_QUERY_ERROR, GST_IMAGE_BIND_QUERY_ERROR_SYNTAX,
      "invalid query \"%s\" at character %ld: %s", entry, (long) (at - entry) + 1, what);
  return FALSE;
}

/* Reads a payload at @p up to the next term or the end. Returns the position after it. */
static const gchar *
read_payload (const gchar * entry, const gchar * p, gchar ** payload, GError ** error)
{
  const gchar *start;

  p = skip_spaces (p);
  if (*p == '"') {
    GString *s = g_string_new (NULL);

    for (p++; *p && *p != '"'; p++) {
      if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
        p++;
      g_string_append_c (s, *p);
    }
    if (*p != '"') {
      g_string_free (s, TRUE);
      parse_error (error, entry, p, "unterminated double quote");
      return NULL;
    }
    *payload = g_string_free (s, FALSE);
    p = skip_spaces (p + 1);
    if (*p && *p != '+' && *p != '-') {
      g_clear_pointer (payload, g_free);
      parse_error (error, entry, p, "expected '+', '-' or the end after a quoted payload");
      return NULL;
    }
    return p;
  }

  start = p;
  while (*p && !is_term_separator (p))
    p++;
  *payload = g_strstrip (g_strndup (start, p - start));
  return p;
}

/* Parses @expr (an expression, after any label) into @q. */
static gboolean
parse_expression (const gchar * entry, const gchar * expr, GstImageBindQuery * q,
    GError ** error)
{
  const gchar *p = skip_spaces (expr);
  gboolean first = TRUE;

  while (TRUE) {
    gdouble sign = 1.0, weight;
    GstImageBindModality modality;
    const gchar *payload_at;
    gchar *payload = NULL;

    p = skip_spaces (p);
    if (*p == '+' || *p == '-') {
      sign = *p == '-' ? -1.0 : 1.0;
      p = skip_spaces (p + 1);
    } else if (!first) {
      return parse_error (error, entry, p, "expected '+' or '-' between terms");
    }
    if (!*p)
      return parse_error (error, entry, p, "a sign must be followed by a term");
    payload_at = match_term_start (p, &weight, &modality);
    if (!payload_at)
      return parse_error (error, entry, p, "expected a term: [weight [*]] text:, image:, "
          "audio:, depth:, thermal: or imu: followed by the text or the file path");
    if (!isfinite (weight))
      return parse_error (error, entry, p, "the weight is not a finite number");
    p = read_payload (entry, payload_at, &payload, error);
    if (!p)
      return FALSE;
    if (!*payload) {
      g_free (payload);
      return parse_error (error, entry, payload_at, "empty text or file path");
    }
    if (modality == GST_IMAGE_BIND_MODALITY_TEXT)
      gst_image_bind_query_add_text (q, sign * weight, payload);
    else
      gst_image_bind_query_add_media (q, sign * weight, modality, payload);
    g_free (payload);
    first = FALSE;
    p = skip_spaces (p);
    if (!*p)
      return TRUE;
  }
}

/* Whether an expression starts at @p: an optional sign, then a term. */
static gboolean
starts_expression (const gchar * p)
{
  gdouble w;
  GstImageBindModality m;

  p = skip_spaces (p);
  if (*p == '+' || *p == '-')
    p++;
  return match_term_start (p, &w, &m) != NULL;
}

/* If @p (after a label's '=', or at the start of an entry with a '*') looks like a term whose
 * kind is not a known one, `[sign] [weight [*]] word:`, returns the position of the word and
 * sets @len to its length; NULL otherwise. @need_star: only count it with a '*' after the
 * weight (at the start of an unlabelled entry, where "2 dogs: ..." is a plain prompt). */
static const gchar *
find_unknown_kind (const gchar * p, gboolean need_star, gsize * len)
{
  const gchar *word;
  gboolean star = FALSE;

  p = skip_spaces (p);
  if (*p == '+' || *p == '-')
    p = skip_spaces (p + 1);
  if (starts_number (p)) {
    gchar *end;

    g_ascii_strtod (p, &end);
    p = skip_spaces (end);
    if (*p == '*') {
      star = TRUE;
      p = skip_spaces (p + 1);
    }
  }
  if (need_star && !star)
    return NULL;
  if (!g_ascii_isalpha (*p))
    return NULL;
  word = p;
  while (g_ascii_isalnum (*p) || *p == '_' || *p == '-')
    p++;
  if (*p != ':')
    return NULL;
  *len = p - word;
  return word;
}

/* The error of an entry that writes a term with a kind that does not exist. */
static gboolean
unknown_kind_error (GError ** error, const gchar * entry, const gchar * word, gsize len)
{
  gchar *what = g_strdup_printf ("unknown kind \"%.*s:\": a term is text:, image: (or "
      "vision:), audio:, depth:, thermal: or imu: followed by the text or the file path (to "
      "match the whole entry as a text, write it as text:%s)", (int) len, word, entry);

  parse_error (error, entry, word, what);
  g_free (what);
  return FALSE;
}

GstImageBindQuery *
gst_image_bind_query_parse (const gchar * entry, GError ** error)
{
  const gchar *unknown;
  gsize len = 0;

  GstImageBindQuery *q;
  const gchar *eq;

  g_return_val_if_fail (entry != NULL, NULL);

  if (starts_expression (entry)) {
    gchar *label = g_strstrip (g_strdup (entry));

    /* The label is the entry as written (without surrounding spaces). */
    q = gst_image_bind_query_new (label);
    g_free (label);
    if (!parse_expression (entry, entry, q, error)) {
      gst_image_bind_query_unref (q);
      return NULL;
    }
    return q;
  }

  eq = strchr (entry, '=');
  if (eq && starts_expression (eq + 1)) {
    gchar *label = g_strstrip (g_strndup (entry, eq - entry));

    if (!*label) {
      g_free (label);
      parse_error (error, entry, entry, "empty label before '='");
      return NULL;
    }
    q = gst_image_bind_query_new (label);
    g_free (label);
    if (!parse_expression (entry, eq + 1, q, error)) {
      gst_image_bind_query_unref (q);
      return NULL;
    }
    return q;
  }

  /* A typo in a kind ("night = imgae:/a.png", "0.5 * picture:/a.png") would otherwise
   * silently become a text prompt that matches nothing in particular. */
  unknown = eq ? find_unknown_kind (eq + 1, FALSE, &len) : NULL;
  if (!unknown)
    unknown = find_unknown_kind (entry, TRUE, &len);
  if (unknown) {
    unknown_kind_error (error, entry, unknown, len);
    return NULL;
  }

  /* A plain prompt: the entry as it is is the text and the label. */
  q = gst_image_bind_query_new (entry);
  gst_image_bind_query_add_text (q, 1.0, entry);
  return q;
}

/* ---- arithmetic ---- */

gboolean
gst_image_bind_query_compose (const gfloat * const *vectors, const gdouble * weights,
    guint n_terms, guint dim, gfloat scale, gfloat * out, GError ** error)
{
  gdouble *sum, norm = 0.0, wmax = 0.0;
  guint i, k;

  /* Only the direction of the sum matters: the weights are divided by the largest, so that
   * huge weights (1e300 * text:a + 1e300 * text:b) cannot overflow the sum. */
  for (k = 0; k < n_terms; k++) {
    if (!isfinite (weights[k])) {
      g_set_error (error, GST_IMAGE_BIND_QUERY_ERROR, GST_IMAGE_BIND_QUERY_ERROR_COMPOSE,
          "term %u has a non-finite weight (%g)", k + 1, weights[k]);
      return FALSE;
    }
    wmax = MAX (wmax, fabs (weights[k]));
  }
  if (wmax == 0.0) {
    g_set_error (error, GST_IMAGE_BIND_QUERY_ERROR, GST_IMAGE_BIND_QUERY_ERROR_COMPOSE,
        "every weight is zero: nothing to match");
    return FALSE;
  }

  sum = g_new0 (gdouble, dim);
  for (k = 0; k < n_terms; k++) {
    gdouble n = 0.0;

    for (i = 0; i < dim; i++)
      n += (gdouble) vectors[k][i] * vectors[k][i];
    n = sqrt (n);
    if (!(n > 0.0) || !isfinite (n)) {
      g_set_error (error, GST_IMAGE_BIND_QUERY_ERROR,
          GST_IMAGE_BIND_QUERY_ERROR_COMPOSE,
          "term %u has a zero or non-finite embedding", k + 1);
      g_free (sum);
      return FALSE;
    }
    for (i = 0; i < dim; i++)
      sum[i] += weights[k] / wmax * vectors[k][i] / n;
  }
  for (i = 0; i < dim; i++)
    norm += sum[i] * sum[i];
  norm = sqrt (norm);
  if (!isfinite (norm)) {
    /* cannot happen with unit terms and weights at most 1; said as what it is if it does */
    g_set_error (error, GST_IMAGE_BIND_QUERY_ERROR, GST_IMAGE_BIND_QUERY_ERROR_COMPOSE,
        "the weighted sum is not finite (overflow)");
    g_free (sum);
    return FALSE;
  }
  /* Relative to the weights: a sum that is rounding noise left by terms that cancel is zero. */
  {
    gdouble wsum = 0.0;

    for (k = 0; k < n_terms; k++)
      wsum += fabs (weights[k]) / wmax;
    if (!(norm > 1e-6 * wsum)) {
      g_set_error (error, GST_IMAGE_BIND_QUERY_ERROR,
          GST_IMAGE_BIND_QUERY_ERROR_COMPOSE,
          "the weighted terms sum to zero (they cancel out): nothing to match");
      g_free (sum);
      return FALSE;
    }
  }
  for (i = 0; i < dim; i++)
    out[i] = (gfloat) (sum[i] / norm * scale);
  g_free (sum);
  return TRUE;
}
