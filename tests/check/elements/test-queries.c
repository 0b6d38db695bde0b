/* Embedding arithmetic queries: the GstImageBindQuery syntax (valid and invalid
 * entries), gst_image_bind_query_compose() on hand-computed vectors, and imagebindmatch with
 * composed queries (texts, a reference image, a reference sound, negative weights, vectors
 * from the application), whose scores and probabilities are checked against values computed
 * here from the runtime directly (imagebind_embed / imagebind_embed_text on the same inputs);
 * plain prompts give the text encoder's output as before; errors reach the bus.
 *
 * argv[1]: the tiny conformance model (or $IMAGEBIND_TEST_MODEL), argv[2]: GStreamer's plugin
 * directory (decoders of the reference files). Tests skip without the model or fixtures. */
#include <gst/gst.h>
#include <gst/check/gstharness.h>
#include <imagebind.h>
#include <imagebind-tokenizer.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "gstimagebindmediatensor.h"
#include "gstimagebindmeta.h"
#include "gstimagebindmatchmeta.h"
#include "gstimagebindquery.h"
#include "match-prompts.h"

static const gchar *model_path;

#define TOL 1e-5

/* ---- parsing ---- */

typedef struct {
  const gchar *entry;
  const gchar *label;
  guint n_terms;
  /* per term: kind, weight, modality, text */
  struct {
    GstImageBindQueryTermKind kind;
    gdouble weight;
    GstImageBindModality modality;
    const gchar *text;
  } terms[3];
} ParseCase;

#define T GST_IMAGE_BIND_QUERY_TERM_TEXT
#define M GST_IMAGE_BIND_QUERY_TERM_MEDIA
#define MT GST_IMAGE_BIND_MODALITY_TEXT
#define MV GST_IMAGE_BIND_MODALITY_VISION
#define MA GST_IMAGE_BIND_MODALITY_AUDIO

static const ParseCase parse_cases[] = {
  /* plain prompts stay what they were */
  {"a dog", "a dog", 1, {{T, 1, MT, "a dog"}}},
  {"  a dog ", "  a dog ", 1, {{T, 1, MT, "  a dog "}}},
  {"2 dogs", "2 dogs", 1, {{T, 1, MT, "2 dogs"}}},
  {"x = 1", "x = 1", 1, {{T, 1, MT, "x = 1"}}},
  {"rock - paper", "rock - paper", 1, {{T, 1, MT, "rock - paper"}}},
  {"text:a +", NULL, 1, {{T, 1, MT, "a +"}}},
  {"texts: many", "texts: many", 1, {{T, 1, MT, "texts: many"}}},
  /* words that start like "nan" or "inf" but are no weight before a term */
  {"nancy text:a", "nancy text:a", 1, {{T, 1, MT, "nancy text:a"}}},
  {"information", "information", 1, {{T, 1, MT, "information"}}},
  {"ratio = 16:9", "ratio = 16:9", 1, {{T, 1, MT, "ratio = 16:9"}}},
  {"2 dogs: running", "2 dogs: running", 1, {{T, 1, MT, "2 dogs: running"}}},
  {"text:x = imgae:/a.png", "text:x = imgae:/a.png", 1, {{T, 1, MT, "x = imgae:/a.png"}}},
  /* expressions */
  {"text:a dog", "text:a dog", 1, {{T, 1, MT, "a dog"}}},
  {"image:/a b.png + 0.5 * text:at night - audio:/b.wav", NULL, 3,
      {{M, 1, MV, "/a b.png"}, {T, 0.5, MT, "at night"}, {M, -1, MA, "/b.wav"}}},
  {"night = image:/a.png+0.25*text:at night", "night", 2,
      {{M, 1, MV, "/a.png"}, {T, 0.25, MT, "at night"}}},
  {"-2 vision:/x.png + .5 TEXT:y", NULL, 2, {{M, -2, MV, "/x.png"}, {T, 0.5, MT, "y"}}},
  {"text:rock - paper + text:scissors", NULL, 2,
      {{T, 1, MT, "rock - paper"}, {T, 1, MT, "scissors"}}},
  {"text:\"a + text:b\" - 3*text:c", NULL, 2, {{T, 1, MT, "a + text:b"}, {T, -3, MT, "c"}}},
  {"depth:/d.png + thermal:/t.png - imu:/i.csv", NULL, 3,
      {{M, 1, GST_IMAGE_BIND_MODALITY_DEPTH, "/d.png"},
       {M, 1, GST_IMAGE_BIND_MODALITY_THERMAL, "/t.png"},
       {M, -1, GST_IMAGE_BIND_MODALITY_IMU, "/i.csv"}}},
};

static void
test_parse_valid (void)
{
  guint c, k;

  for (c = 0; c < G_N_ELEMENTS (parse_cases); c++) {
    const ParseCase *pc = &parse_cases[c];
    GError *err = NULL;
    GstImageBindQuery *q = gst_image_bind_query_parse (pc->entry, &err);

    g_test_message ("entry: %s", pc->entry);
    g_assert_no_error (err);
    g_assert_nonnull (q);
    if (pc->label) {
      g_assert_cmpstr (gst_image_bind_query_get_label (q), ==, pc->label);
    } else {
      gchar *label = g_strstrip (g_strdup (pc->entry));
      g_assert_cmpstr (gst_image_bind_query_get_label (q), ==, label);
      g_free (label);
    }
    g_assert_cmpuint (gst_image_bind_query_get_n_terms (q), ==, pc->n_terms);
    for (k = 0; k < pc->n_terms; k++) {
      const GstImageBindQueryTerm *t = gst_image_bind_query_get_term (q, k);

      g_assert_cmpint (t->kind, ==, pc->terms[k].kind);
      g_assert_cmpfloat (t->weight, ==, pc->terms[k].weight);
      g_assert_cmpint (t->modality, ==, pc->terms[k].modality);
      g_assert_cmpstr (t->text, ==, pc->terms[k].text);
    }
    /* A plain prompt is a plain text query: its embedding is the encoder's output as is. */
    g_assert_cmpint (gst_image_bind_query_is_plain_text (q), ==,
        pc->n_terms == 1 && pc->terms[0].kind == T && pc->terms[0].weight == 1.0);
    gst_image_bind_query_unref (q);
  }
}

static void
test_parse_invalid (void)
{
  static const struct {
    const gchar *entry, *message;
  } cases[] = {
    {"image:", "character 7: empty text or file path"},
    {"text:\"a\" +", "character 11: a sign must be followed by a term"},
    {"text:a + dog", "text:a + dog"},   /* not a term after '+': read as one text, see below */
    {"= text:a", "character 1: empty label"},
    {"text:\"abc", "unterminated double quote"},
    {"text:\"abc\" dog", "character 12: expected '+', '-' or the end after a quoted payload"},
    {"text:a + 1e999 * text:b", "not a finite number"},
    /* not plain text prompts: a weight that is not a finite number is an error */
    {"nan * text:a", "character 1: the weight is not a finite number"},
    {"x = -inf*text:a", "the weight is not a finite number"},
    {"text:a + NaN text:b", "character 10: the weight is not a finite number"},
    {"INFINITY * image:/a.png", "not a finite number"},
    {"text:\"a\" - - text:b", "character 12: expected a term"},
    /* a kind that does not exist is an error, not a text prompt */
    {"night = imgae:/a.png", "character 9: unknown kind \"imgae:\""},
    {"x = 0.5 * picture:/a.png", "character 11: unknown kind \"picture:\""},
    {"-0.5*picture:/a.png", "character 6: unknown kind \"picture:\""},
    {"link = http://example.com/a.png", "write it as text:link = http://example.com/a.png"},
  };
  guint c;

  for (c = 0; c < G_N_ELEMENTS (cases); c++) {
    GError *err = NULL;
    GstImageBindQuery *q = gst_image_bind_query_parse (cases[c].entry, &err);

    g_test_message ("entry: %s", cases[c].entry);
    if (c == 2) {
      /* "+ dog" does not start a term, so it is part of the text. */
      g_assert_no_error (err);
      g_assert_cmpstr (gst_image_bind_query_get_term (q, 0)->text, ==, "a + dog");
      gst_image_bind_query_unref (q);
      continue;
    }
    g_assert_null (q);
    g_assert_error (err, GST_IMAGE_BIND_QUERY_ERROR, GST_IMAGE_BIND_QUERY_ERROR_SYNTAX);
    g_test_message ("  -> %s", err->message);
    g_assert_nonnull (strstr (err->message, cases[c].message));
    g_assert_nonnull (strstr (err->message, cases[c].entry));
    g_error_free (err);
  }
}

static void
test_to_string (void)
{
  GstImageBindQuery *q = gst_image_bind_query_new (NULL);
  const gfloat v[2] = { 1, 2 };
  gchar *s;

  gst_image_bind_query_add_media (q, -1.0, GST_IMAGE_BIND_MODALITY_VISION, "/a.png");
  gst_image_bind_query_add_text (q, 0.5, "at night");
  gst_image_bind_query_add_vector (q, -2.0, GST_IMAGE_BIND_MODALITY_AUDIO, v, 2);
  s = gst_image_bind_query_to_string (q);
  g_assert_cmpstr (s, ==, "-image:/a.png + 0.5 * text:at night - 2 * vector:audio[2]");
  g_assert_cmpstr (gst_image_bind_query_get_label (q), ==, s);
  g_free (s);
  gst_image_bind_query_unref (q);
}

/* ---- arithmetic ---- */

static void
test_compose (void)
{
  const gfloat a[3] = { 3, 4, 0 }, b[3] = { 0, 0, 2 }, c[3] = { 0, 0, 0 };
  const gfloat *vectors[3] = { a, b, a };
  gdouble weights[3] = { 1.0, -0.5, 0.0 };
  gfloat out[3];
  GError *err = NULL;
  gdouble n;

  /* (0.6, 0.8, 0) - 0.5 (0, 0, 1) = (0.6, 0.8, -0.5); norm sqrt(1.25); times 20 */
  g_assert_true (gst_image_bind_query_compose (vectors, weights, 2, 3, 20.0f, out, &err));
  g_assert_no_error (err);
  n = sqrt (1.25);
  g_assert_cmpfloat_with_epsilon (out[0], 0.6 / n * 20, 1e-5);
  g_assert_cmpfloat_with_epsilon (out[1], 0.8 / n * 20, 1e-5);
  g_assert_cmpfloat_with_epsilon (out[2], -0.5 / n * 20, 1e-5);

  /* Scale of a term does not matter: 2a and a are the same term. */
  {
    const gfloat a2[3] = { 6, 8, 0 };
    const gfloat *v2[2] = { a2, b };
    gfloat out2[3];

    g_assert_true (gst_image_bind_query_compose (v2, weights, 2, 3, 20.0f, out2, &err));
    g_assert_cmpfloat_with_epsilon (out2[0], out[0], 1e-5);
    g_assert_cmpfloat_with_epsilon (out2[2], out[2], 1e-5);
  }

  /* a - a: nothing left */
  weights[0] = 1.0;
  weights[1] = -1.0;
  vectors[1] = a;
  g_assert_false (gst_image_bind_query_compose (vectors, weights, 2, 3, 1.0f, out, &err));
  g_assert_error (err, GST_IMAGE_BIND_QUERY_ERROR, GST_IMAGE_BIND_QUERY_ERROR_COMPOSE);
  g_assert_nonnull (strstr (err->message, "cancel"));
  g_clear_error (&err);

  /* 1e300 * a + 1e300 * b must not overflow the sum (and be called "cancel out"): only the
   * direction counts, so it is a + b */
  {
    const gfloat *vb[2] = { a, b };
    const gdouble unit[2] = { 1.0, 1.0 }, huge[2] = { 1e300, 1e300 }, tiny[2] = { 1e-300, 1e-300 };
    gfloat ref[3], got[3];

    g_assert_true (gst_image_bind_query_compose (vb, unit, 2, 3, 1.0f, ref, &err));
    g_assert_true (gst_image_bind_query_compose (vb, huge, 2, 3, 1.0f, got, &err));
    g_assert_no_error (err);
    for (guint i = 0; i < 3; i++)
      g_assert_cmpfloat_with_epsilon (got[i], ref[i], 1e-6);
    g_assert_true (gst_image_bind_query_compose (vb, tiny, 2, 3, 1.0f, got, &err));
    g_assert_no_error (err);
    for (guint i = 0; i < 3; i++)
      g_assert_cmpfloat_with_epsilon (got[i], ref[i], 1e-6);
  }

  /* non-finite and all-zero weights: said as such (compose is public API) */
  {
    const gfloat *vb[2] = { a, b };
    const gdouble nan_w[2] = { 1.0, NAN }, zero[2] = { 0.0, -0.0 };

    g_assert_false (gst_image_bind_query_compose (vb, nan_w, 2, 3, 1.0f, out, &err));
    g_assert_error (err, GST_IMAGE_BIND_QUERY_ERROR, GST_IMAGE_BIND_QUERY_ERROR_COMPOSE);
    g_assert_nonnull (strstr (err->message, "term 2 has a non-finite weight"));
    g_clear_error (&err);
    g_assert_false (gst_image_bind_query_compose (vb, zero, 2, 3, 1.0f, out, &err));
    g_assert_error (err, GST_IMAGE_BIND_QUERY_ERROR, GST_IMAGE_BIND_QUERY_ERROR_COMPOSE);
    g_assert_nonnull (strstr (err->message, "every weight is zero"));
    g_clear_error (&err);
  }

  /* a zero term */
  vectors[1] = c;
  g_assert_false (gst_image_bind_query_compose (vectors, weights, 2, 3, 1.0f, out, &err));
  g_assert_error (err, GST_IMAGE_BIND_QUERY_ERROR, GST_IMAGE_BIND_QUERY_ERROR_COMPOSE);
  g_assert_nonnull (strstr (err->message, "term 2"));
  g_clear_error (&err);
}

/* ---- the element, against the runtime ---- */

typedef struct {
  ImageBindModel *model;
  ImageBindContext *ctx;
  guint dim;
  gfloat text_scale;
} Runtime;

static void
runtime_open (Runtime * rt)
{
  rt->ctx = ib_test_open_model (model_path, &rt->model);
  rt->dim = imagebind_model_out_dim (rt->model);
  rt->text_scale = imagebind_model_logit_scale (rt->model, IMAGEBIND_MODALITY_TEXT);
}

static void
runtime_close (Runtime * rt)
{
  imagebind_context_free (rt->ctx);
  imagebind_model_unref (rt->model);
}

static gfloat *
runtime_text (Runtime * rt, const gchar * text)
{
  GError *err = NULL;
  ImageBindInputGeometry geo;
  const ImageBindTokenizer *tok = imagebind_model_get_tokenizer (rt->model, &err);
  gint32 *ids;
  gfloat *out = g_new (gfloat, rt->dim);

  g_assert_no_error (err);
  imagebind_model_input_geometry (rt->model, &geo);
  ids = g_new0 (gint32, geo.context_length);
  imagebind_tokenize (tok, text, -1, ids, geo.context_length, &err);
  g_assert_no_error (err);
  g_assert_true (imagebind_embed_text (rt->ctx, ids, 1, out, &err));
  g_assert_no_error (err);
  g_free (ids);
  return out;
}

static gfloat *
runtime_media (Runtime * rt, ImageBindModality modality, const gchar * path)
{
  GError *err = NULL;
  GstImageBindMediaOptions options = { IMAGEBIND_DEPTH_DISPARITY };
  gfloat *out = g_new (gfloat, rt->dim);

  g_assert_true (gst_image_bind_media_embed (rt->ctx, rt->model, modality, &options, path, out,
          &err));
  g_assert_no_error (err);
  return out;
}

/* The reference query: sum of w_k v_k / |v_k|, normalised, times the text logit scale. */
static gfloat *
reference_query (Runtime * rt, guint n, const gfloat * const *v, const gdouble * w)
{
  gdouble *sum = g_new0 (gdouble, rt->dim), norm = 0;
  gfloat *q = g_new (gfloat, rt->dim);
  guint i, k;

  for (k = 0; k < n; k++) {
    gdouble vn = 0;
    for (i = 0; i < rt->dim; i++)
      vn += (gdouble) v[k][i] * v[k][i];
    for (i = 0; i < rt->dim; i++)
      sum[i] += w[k] * v[k][i] / sqrt (vn);
  }
  for (i = 0; i < rt->dim; i++)
    norm += sum[i] * sum[i];
  for (i = 0; i < rt->dim; i++)
    q[i] = (gfloat) (sum[i] / sqrt (norm) * rt->text_scale);
  g_free (sum);
  return q;
}

/* Cosines and softmax of @e against @n queries (rows of @q), in double. */
static void
reference_scores (const gfloat * e, gfloat ** q, guint dim, guint n, gdouble * cosine,
    gdouble * prob)
{
  g_autofree gfloat *rows = g_new (gfloat, (gsize) n * dim);

  for (guint j = 0; j < n; j++)
    memcpy (rows + (gsize) j * dim, q[j], dim * sizeof (gfloat));
  ib_test_reference_scores (e, rows, dim, n, cosine, prob);
}

static GstElement *
new_match (const gchar * const *prompts, guint n, GstBus ** bus)
{
  GstElement *element = gst_element_factory_make ("imagebindmatch", NULL);

  g_assert_nonnull (element);
  g_object_set (element, "model", model_path, "n-threads", 1, NULL);
  ib_test_set_prompts (element, prompts, n);
  *bus = gst_bus_new ();
  gst_element_set_bus (element, *bus);
  return element;
}

static void
free_match (GstElement * element, GstBus * bus)
{
  gst_element_set_bus (element, NULL);
  gst_object_unref (element);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
}

/* The first warning match_once() saw. */
static GstMessage *last_warning;

/* Pushes one buffer carrying @e (a vision embedding) through @element and returns its
 * `imagebind-match` message, whose lists are in prompt order (top-k 0, sorted by probability:
 * the caller reads them by index). */
static GstStructure *
match_once (GstHarness * h, GstBus * bus, const gfloat * e, guint dim)
{
  GstBuffer *buf = gst_buffer_new_memdup ("abcd", 4);
  GstMessage *msg;
  GstStructure *s = NULL;

  GST_BUFFER_PTS (buf) = 0;
  GST_BUFFER_DURATION (buf) = GST_SECOND;
  gst_buffer_add_imagebind_embedding_meta (buf, GST_IMAGE_BIND_MODALITY_VISION, e, dim, 1.0f,
      "test");
  gst_buffer_unref (gst_harness_push_and_pull (h, buf));
  /* gst_bus_pop_filtered() would drop the warnings: they are kept for the caller. */
  while (!s && (msg = gst_bus_pop (bus))) {
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ELEMENT &&
        gst_structure_has_name (gst_message_get_structure (msg), "imagebind-match"))
      s = gst_structure_copy (gst_message_get_structure (msg));
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_WARNING && !last_warning)
      last_warning = gst_message_ref (msg);
    gst_message_unref (msg);
  }
  g_assert_nonnull (s);
  return s;
}

/* Checks the message's score and probability of every query against the references. */
static void
check_scores (const GstStructure * s, guint n, const gchar * const *labels,
    const gdouble * cosine, const gdouble * prob)
{
  const GValue *li = gst_structure_get_value (s, "indices");
  const GValue *ll = gst_structure_get_value (s, "labels");
  const GValue *ls = gst_structure_get_value (s, "scores");
  const GValue *lp = gst_structure_get_value (s, "probabilities");
  guint r;

  g_assert_cmpuint (gst_value_array_get_size (li), ==, n);
  for (r = 0; r < n; r++) {
    guint j = g_value_get_uint (gst_value_array_get_value (li, r));

    g_assert_cmpuint (j, <, n);
    g_test_message ("query %u \"%s\": score %.6f (ref %.6f), p %.6f (ref %.6f)", j,
        labels[j], g_value_get_double (gst_value_array_get_value (ls, r)), cosine[j],
        g_value_get_double (gst_value_array_get_value (lp, r)), prob[j]);
    g_assert_cmpstr (g_value_get_string (gst_value_array_get_value (ll, r)), ==, labels[j]);
    g_assert_cmpfloat_with_epsilon (g_value_get_double (gst_value_array_get_value (ls, r)),
        cosine[j], TOL);
    g_assert_cmpfloat_with_epsilon (g_value_get_double (gst_value_array_get_value (lp, r)),
        prob[j], TOL);
  }
}

/* One match of @e by a fresh imagebindmatch with @n prompts, its scores checked against the
 * references (check_scores()); the message, for further checks (free it). */
static GstStructure *
match_checked (const gchar * const *prompts, guint n, const gfloat * e, guint dim,
    const gchar * const *labels, const gdouble * cosine, const gdouble * prob)
{
  GstBus *bus;
  GstElement *element = new_match (prompts, n, &bus);
  GstHarness *h = gst_harness_new_with_element (element, "sink", "src");
  GstStructure *s;

  gst_harness_set_src_caps_str (h, "application/x-test");
  gst_harness_play (h);
  s = match_once (h, bus, e, dim);
  check_scores (s, n, labels, cosine, prob);
  gst_harness_teardown (h);
  free_match (element, bus);
  return s;
}

static gchar *image_a, *image_b, *sound;

static gboolean
need_fixtures (void)
{
  if (!ib_test_need_model (model_path))
    return FALSE;
  if (!image_a) {
    g_test_skip ("no conformance fixtures (preprocess/*.png, *.wav)");
    return FALSE;
  }
  return TRUE;
}

/* Composed queries with texts, two images, a sound and negative weights, and plain prompts
 * next to them: every score and probability as computed from the runtime directly. */
static void
test_element_arithmetic (void)
{
  Runtime rt;
  gchar *prompts[5];
  const gchar *labels[5] = { "a dog", "night", NULL, "diff", "text:a dog" };
  gfloat *q[5], *ta, *tn, *tc, *ia, *ib, *au, *e;
  gdouble cosine[5], prob[5];
  GstStructure *s;

  if (!need_fixtures ())
    return;
  runtime_open (&rt);
  prompts[0] = g_strdup ("a dog");
  prompts[1] = g_strdup_printf ("night = image:%s + 0.5 * text:at night", image_a);
  prompts[2] = g_strdup_printf ("-text:a cat + 2 * audio:%s", sound);
  prompts[3] = g_strdup_printf ("diff = image:%s - 0.75*image:%s", image_b, image_a);
  prompts[4] = g_strdup ("text:a dog");
  labels[2] = prompts[2];

  ta = runtime_text (&rt, "a dog");
  tn = runtime_text (&rt, "at night");
  tc = runtime_text (&rt, "a cat");
  ia = runtime_media (&rt, IMAGEBIND_MODALITY_VISION, image_a);
  ib = runtime_media (&rt, IMAGEBIND_MODALITY_VISION, image_b);
  au = runtime_media (&rt, IMAGEBIND_MODALITY_AUDIO, sound);
  q[0] = g_memdup2 (ta, rt.dim * sizeof (gfloat));     /* a plain prompt: the output as is */
  {
    const gfloat *v1[2] = { ia, tn }, *v2[2] = { tc, au }, *v3[2] = { ib, ia }, *v4[1] = { ta };
    const gdouble w1[2] = { 1, 0.5 }, w2[2] = { -1, 2 }, w3[2] = { 1, -0.75 }, w4[1] = { 1 };

    q[1] = reference_query (&rt, 2, v1, w1);
    q[2] = reference_query (&rt, 2, v2, w2);
    q[3] = reference_query (&rt, 2, v3, w3);
    q[4] = reference_query (&rt, 1, v4, w4);
  }
  /* The input: the runtime's embedding of a third picture... here the second image plus a
   * little of the sound, so that no query is trivially perfect. */
  {
    const gfloat *v[2] = { ib, au };
    const gdouble w[2] = { 1, 0.3 };
    guint i;

    e = reference_query (&rt, 2, v, w);
    for (i = 0; i < rt.dim; i++)
      e[i] /= rt.text_scale;    /* unit length, as a vision embedding has */
  }
  reference_scores (e, q, rt.dim, 5, cosine, prob);
  /* The probabilities must be informative for the check to mean something. */
  g_assert_cmpfloat (fabs (prob[1] - prob[3]) + fabs (prob[0] - prob[2]), >, 1e-3);

  s = match_checked ((const gchar * const *) prompts, 5, e, rt.dim, labels, cosine, prob);
  /* "text:a dog" composes a single text: the same direction as the plain prompt "a dog" */
  g_assert_cmpfloat_with_epsilon (cosine[4], cosine[0], 1e-6);
  gst_structure_free (s);
  for (guint i = 0; i < 5; i++) {
    g_free (q[i]);
    g_free (prompts[i]);
  }
  g_free (ta);
  g_free (tn);
  g_free (tc);
  g_free (ia);
  g_free (ib);
  g_free (au);
  g_free (e);
  runtime_close (&rt);
}

/* A reference image as the query: the image's own embedding scores 1, and wins the softmax
 * over text prompts. */
static void
test_reference_image (void)
{
  Runtime rt;
  gchar *prompts[3];
  const gchar *labels[3];
  gfloat *q[3], *ia;
  gdouble cosine[3], prob[3];
  GstStructure *s;

  if (!need_fixtures ())
    return;
  runtime_open (&rt);
  prompts[0] = g_strdup_printf ("same picture = image:%s", image_a);
  prompts[1] = g_strdup ("a dog");
  prompts[2] = g_strdup ("a cat");
  labels[0] = "same picture";
  labels[1] = "a dog";
  labels[2] = "a cat";
  ia = runtime_media (&rt, IMAGEBIND_MODALITY_VISION, image_a);
  {
    const gfloat *v[1] = { ia };
    const gdouble w[1] = { 1 };
    q[0] = reference_query (&rt, 1, v, w);
  }
  q[1] = runtime_text (&rt, "a dog");
  q[2] = runtime_text (&rt, "a cat");
  reference_scores (ia, q, rt.dim, 3, cosine, prob);
  g_assert_cmpfloat_with_epsilon (cosine[0], 1.0, 1e-6);

  s = match_checked ((const gchar * const *) prompts, 3, ia, rt.dim, labels, cosine, prob);
  g_assert_cmpstr (gst_structure_get_string (s, "top-label"), ==, "same picture");
  g_assert_cmpfloat_with_epsilon (g_value_get_double (gst_value_array_get_value
          (gst_structure_get_value (s, "scores"), 0)), 1.0, 1e-5);
  gst_structure_free (s);
  for (guint i = 0; i < 3; i++) {
    g_free (q[i]);
    g_free (prompts[i]);
  }
  g_free (ia);
  runtime_close (&rt);
}

/* depth: and thermal: terms (an 8-bit picture read as disparity and as heat), against the
 * runtime's depth and thermal encoders on the same file. */
static void
test_depth_thermal (void)
{
  Runtime rt;
  gchar *prompts[2];
  const gchar *labels[2] = { "heat minus depth", "a dog" };
  gfloat *q[2], *th, *de, *e;
  gdouble cosine[2], prob[2];
  GstStructure *s;

  if (!need_fixtures ())
    return;
  runtime_open (&rt);
  prompts[0] = g_strdup_printf ("heat minus depth = thermal:%s - 0.5 * depth:%s", image_b,
      image_b);
  prompts[1] = g_strdup ("a dog");
  th = runtime_media (&rt, IMAGEBIND_MODALITY_THERMAL, image_b);
  de = runtime_media (&rt, IMAGEBIND_MODALITY_DEPTH, image_b);
  {
    const gfloat *v[2] = { th, de };
    const gdouble w[2] = { 1, -0.5 };
    q[0] = reference_query (&rt, 2, v, w);
  }
  q[1] = runtime_text (&rt, "a dog");
  e = runtime_media (&rt, IMAGEBIND_MODALITY_VISION, image_a);
  reference_scores (e, q, rt.dim, 2, cosine, prob);

  s = match_checked ((const gchar * const *) prompts, 2, e, rt.dim, labels, cosine, prob);
  gst_structure_free (s);
  for (guint i = 0; i < 2; i++) {
    g_free (q[i]);
    g_free (prompts[i]);
  }
  g_free (th);
  g_free (de);
  g_free (e);
  runtime_close (&rt);
}

/* Queries from the application (the add-query action signal): a vector minus a text, after
 * the prompts; clear-queries removes them. */
static void
test_add_query (void)
{
  static const gchar *prompts[] = { "a dog" };
  Runtime rt;
  const gchar *labels[2] = { "a dog", "app" };
  gfloat *q[2], *tc, *v, *e;
  gdouble cosine[2], prob[2];
  GstImageBindQuery *query;
  GstElement *element;
  GstHarness *h;
  GstBus *bus;
  GstStructure *s;
  guint i;

  if (!ib_test_need_model (model_path))
    return;
  runtime_open (&rt);
  tc = runtime_text (&rt, "a cat");
  v = runtime_text (&rt, "a red car");
  for (i = 0; i < rt.dim; i++)
    v[i] *= 3.0f;               /* any scale: vectors are normalised */
  e = runtime_text (&rt, "a small animal");
  q[0] = runtime_text (&rt, "a dog");
  {
    const gfloat *vv[2] = { v, tc };
    const gdouble w[2] = { 1.5, -0.5 };
    q[1] = reference_query (&rt, 2, vv, w);
  }
  reference_scores (e, q, rt.dim, 2, cosine, prob);

  element = new_match (prompts, 1, &bus);
  query = gst_image_bind_query_new ("app");
  g_assert_true (gst_image_bind_query_add_vector (query, 1.5, GST_IMAGE_BIND_MODALITY_TEXT, v,
          rt.dim));
  g_assert_true (gst_image_bind_query_add_text (query, -0.5, "a cat"));
  g_signal_emit_by_name (element, "add-query", query);
  gst_image_bind_query_unref (query);

  h = gst_harness_new_with_element (element, "sink", "src");
  gst_harness_set_src_caps_str (h, "application/x-test");
  gst_harness_play (h);
  s = match_once (h, bus, e, rt.dim);
  check_scores (s, 2, labels, cosine, prob);
  gst_structure_free (s);

  /* Removed while PLAYING: the next buffer is matched against the prompts alone. */
  g_signal_emit_by_name (element, "clear-queries");
  wait_prompts_ready (bus, 1);
  s = match_once (h, bus, e, rt.dim);
  g_assert_cmpuint (gst_value_array_get_size (gst_structure_get_value (s, "labels")), ==, 1);
  g_assert_cmpstr (gst_structure_get_string (s, "top-label"), ==, "a dog");
  gst_structure_free (s);

  gst_harness_teardown (h);
  free_match (element, bus);
  for (i = 0; i < 2; i++)
    g_free (q[i]);
  g_free (tc);
  g_free (v);
  g_free (e);
  runtime_close (&rt);
}

/* Invalid entries and unreadable files fail READY->PAUSED with an error that says what. */
static void
test_errors_on_bus (void)
{
  const gchar *cases[][2] = {
    {"text:\"a\" + ", "a sign must be followed by a term"},
    {"night = image:", "empty text or file path"},
    {"image:/nonexistent/reference.png", "/nonexistent/reference.png"},
    {"text:a dog - text:a dog", "cancel out"},
    {"nan * text:a dog", "the weight is not a finite number"},
    {"night = imgae:/a.png", "prompts entry 1: invalid query \"night = imgae:/a.png\" at "
          "character 9: unknown kind \"imgae:\""},
  };
  GstElement *element;
  GstBus *bus;
  gchar *text;
  guint c;

  if (!ib_test_need_model (model_path))
    return;
  for (c = 0; c < G_N_ELEMENTS (cases) + 2; c++) {
    gchar *dir = g_dir_make_tmp ("ib-queries-XXXXXX", NULL);
    gchar *fifo = g_build_filename (dir, "pipe.png", NULL);
    gchar *entry = NULL;
    const gchar *want;
    const gchar *prompts[2] = { "a dog", NULL };

    /* a directory or a FIFO as a reference says what it is, not "no such file"
     * (a FIFO would otherwise block the state change) */
    if (c == G_N_ELEMENTS (cases)) {
      entry = g_strdup_printf ("d = image:%s", dir);
      want = "is a directory, not a media file";
    } else if (c == G_N_ELEMENTS (cases) + 1) {
      g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
      entry = g_strdup_printf ("p = audio:%s", fifo);
      want = "is a FIFO (named pipe), not a regular media file";
    } else {
      entry = g_strdup (cases[c][0]);
      want = cases[c][1];
    }
    prompts[1] = entry;
    element = new_match (prompts, 2, &bus);
    g_assert_cmpint (gst_element_set_state (element, GST_STATE_PAUSED), ==,
        GST_STATE_CHANGE_FAILURE);
    text = ib_test_pop_error_text (bus);
    g_test_message ("%s -> %s", entry, text);
    g_assert_nonnull (strstr (text, want));
    g_free (text);
    gst_element_set_state (element, GST_STATE_NULL);
    free_match (element, bus);
    g_unlink (fifo);
    g_rmdir (dir);
    g_free (fifo);
    g_free (dir);
    g_free (entry);
  }

  /* A vector of another width than the model's. */
  {
    const gchar *prompts[1] = { "a dog" };
    const gfloat v[5] = { 1, 2, 3, 4, 5 };
    GstImageBindQuery *query = gst_image_bind_query_new ("short");

    element = new_match (prompts, 1, &bus);

    gst_image_bind_query_add_vector (query, 1.0, GST_IMAGE_BIND_MODALITY_AUDIO, v, 5);
    g_signal_emit_by_name (element, "add-query", query);
    gst_image_bind_query_unref (query);
    g_assert_cmpint (gst_element_set_state (element, GST_STATE_PAUSED), ==,
        GST_STATE_CHANGE_FAILURE);
    text = ib_test_pop_error_text (bus);
    g_test_message ("vector of 5 -> %s", text);
    g_assert_nonnull (strstr (text, "query \"short\": a vector of 5 floats"));
    g_free (text);
    gst_element_set_state (element, GST_STATE_NULL);
    free_match (element, bus);
  }
}

/* While PLAYING, an invalid entry or a new reference file is refused with a warning and the
 * previous queries stay: media are not decoded while PLAYING. */
static void
test_playing_changes (void)
{
  static const gchar *prompts[] = { "a dog", "a cat" };
  Runtime rt;
  GstElement *element;
  GstHarness *h;
  GstBus *bus;
  GstStructure *s;
  GstMessage *msg;
  GError *err = NULL;
  gchar *debug = NULL, *entry;
  const gchar *changed[2];
  gfloat *e;

  if (!need_fixtures ())
    return;
  runtime_open (&rt);
  e = runtime_text (&rt, "a small animal");
  element = new_match (prompts, 2, &bus);
  h = gst_harness_new_with_element (element, "sink", "src");
  gst_harness_set_src_caps_str (h, "application/x-test");
  gst_harness_play (h);
  gst_structure_free (match_once (h, bus, e, rt.dim));
  g_assert_null (last_warning);

  entry = g_strdup_printf ("image:%s", image_b);
  changed[0] = "a bird";
  changed[1] = entry;
  ib_test_set_prompts (element, changed, 2);
  /* refused on the embedding thread, before any buffer */
  last_warning = wait_prompts_message (bus, NULL);
  s = match_once (h, bus, e, rt.dim);
  /* still the old prompts */
  {
    const GValue *l = gst_structure_get_value (s, "labels");
    gboolean has_dog = FALSE;
    for (guint i = 0; i < gst_value_array_get_size (l); i++)
      has_dog |= g_strcmp0 (g_value_get_string (gst_value_array_get_value (l, i)),
          "a dog") == 0;
    g_assert_true (has_dog);
  }
  gst_structure_free (s);
  msg = g_steal_pointer (&last_warning);
  g_assert_nonnull (msg);
  gst_message_parse_warning (msg, &err, &debug);
  g_test_message ("warning: %s", err->message);
  g_assert_nonnull (strstr (err->message, image_b));
  g_assert_nonnull (strstr (err->message, "READY->PAUSED"));
  g_clear_error (&err);
  g_free (debug);
  gst_message_unref (msg);

  gst_harness_teardown (h);
  free_match (element, bus);
  g_free (entry);
  g_free (e);
  runtime_close (&rt);
}

int
main (int argc, char **argv)
{
  /* the decoders of the reference files: GStreamer's plugin directory (argv[2]) */
  ib_test_gst_init (&argc, &argv, "registry-queries.bin", argc > 2 ? argv[2] : NULL);
  g_test_init (&argc, &argv, NULL);
  model_path = argc > 1 ? argv[1] : g_getenv ("IMAGEBIND_TEST_MODEL");
  if (model_path && !*model_path)
    model_path = NULL;
  if (ib_test_conformance_dir ()) {
    image_a = ib_test_fixture ("preprocess/image_landscape_320x241.png");
    image_b = ib_test_fixture ("preprocess/image_portrait_181x292.png");
    sound = ib_test_fixture ("preprocess/audio_16k_mono_3s.wav");
  }

  g_test_add_func ("/queries/parse-valid", test_parse_valid);
  g_test_add_func ("/queries/parse-invalid", test_parse_invalid);
  g_test_add_func ("/queries/to-string", test_to_string);
  g_test_add_func ("/queries/compose", test_compose);
  g_test_add_func ("/queries/element-arithmetic", test_element_arithmetic);
  g_test_add_func ("/queries/reference-image", test_reference_image);
  g_test_add_func ("/queries/depth-thermal", test_depth_thermal);
  g_test_add_func ("/queries/add-query", test_add_query);
  g_test_add_func ("/queries/errors-on-bus", test_errors_on_bus);
  g_test_add_func ("/queries/playing-changes", test_playing_changes);
  return g_test_run ();
}
