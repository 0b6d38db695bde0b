/* imagebindmatch and GstImageBindMatchMeta: scores and probabilities against the runtime,
 * top-k, detection timing on synthetic embeddings, prompts changed while PLAYING, message
 * fields, the text_src pad, state cycling, model errors; and imagebindtext.
 *
 * The model is the tiny conformance model converted by the build (argv[1]) or
 * $IMAGEBIND_TEST_MODEL; the tests skip without it. */
#include <gst/gst.h>
#include <glib/gstdio.h>
#include <gst/check/gstharness.h>
#include <imagebind.h>
#include <imagebind-tokenizer.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "gstimagebindmeta.h"
#include "gstimagebindmatchmeta.h"
#include "model-edit.h"
#include "match-prompts.h"

static const gchar *model_path;

#define TOL 1e-5

typedef struct {
  GstHarness *h;
  GstElement *element;
  GstBus *bus;
} Fixture;

static void
fixture_setup (Fixture * f, const gchar * const *prompts, guint n)
{
  f->element = gst_element_factory_make ("imagebindmatch", NULL);
  g_assert_nonnull (f->element);
  g_object_set (f->element, "model", model_path, "n-threads", 1, NULL);
  ib_test_set_prompts (f->element, prompts, n);
  f->bus = gst_bus_new ();
  gst_element_set_bus (f->element, f->bus);
  f->h = gst_harness_new_with_element (f->element, "sink", "src");
  gst_harness_set_src_caps_str (f->h, "application/x-test");
}

static void
fixture_teardown (Fixture * f)
{
  gst_harness_teardown (f->h);
  gst_element_set_bus (f->element, NULL);
  gst_object_unref (f->element);
  gst_bus_set_flushing (f->bus, TRUE);
  gst_object_unref (f->bus);
}

/* A 4-byte media buffer at @pts carrying the embedding @e (vision). */
static GstBuffer *
embedding_buffer (const gfloat * e, guint dim, GstClockTime pts, GstClockTime duration)
{
  GstBuffer *buf = gst_buffer_new_memdup ("abcd", 4);
  GstImageBindEmbeddingMeta *meta;

  GST_BUFFER_PTS (buf) = pts;
  GST_BUFFER_DURATION (buf) = duration;
  if (e) {
    meta = gst_buffer_add_imagebind_embedding_meta (buf, GST_IMAGE_BIND_MODALITY_VISION, e, dim,
        1.0f, "test");
    meta->pts = pts;
    meta->duration = duration;
  }
  return buf;
}

static GstStructure *
pop_element_message (GstBus * bus, const gchar * name)
{
  GstMessage *msg;
  GstStructure *s = NULL;

  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT))) {
    const GstStructure *ms = gst_message_get_structure (msg);
    if (gst_structure_has_name (ms, name)) {
      s = gst_structure_copy (ms);
      gst_message_unref (msg);
      break;
    }
    gst_message_unref (msg);
  }
  return s;
}

static gdouble
array_double (const GstStructure * s, const gchar * field, guint i)
{
  const GValue *a = gst_structure_get_value (s, field);
  g_assert_nonnull (a);
  g_assert_true (GST_VALUE_HOLDS_ARRAY (a));
  return g_value_get_double (gst_value_array_get_value (a, i));
}

static const gchar *
array_string (const GstStructure * s, const gchar * field, guint i)
{
  const GValue *a = gst_structure_get_value (s, field);
  g_assert_nonnull (a);
  return g_value_get_string (gst_value_array_get_value (a, i));
}

static guint
array_size (const GstStructure * s, const gchar * field)
{
  const GValue *a = gst_structure_get_value (s, field);
  g_assert_nonnull (a);
  return gst_value_array_get_size (a);
}

/* A deterministic embedding unlike the prompts: the text embedding of another sentence, with
 * unit length (as a vision embedding has). */
static gfloat *
probe_embedding (guint * dim)
{
  static const gchar *probe[] = { "a photo of a small brown animal" };
  gfloat *e = ib_test_text_embeddings (model_path, probe, 1, dim);
  gdouble norm = 0;
  guint i;

  for (i = 0; i < *dim; i++)
    norm += (gdouble) e[i] * e[i];
  for (i = 0; i < *dim; i++)
    e[i] = (gfloat) (e[i] / sqrt (norm));
  return e;
}

static void
test_scores (void)
{
  static const gchar *prompts[] = { "a dog", "a cat", "a car", "music" };
  const guint n = G_N_ELEMENTS (prompts);
  Fixture f;
  guint dim, i;
  gfloat *t, *e;
  gdouble cosine[4], prob[4];
  GstBuffer *out;
  GstImageBindMatchMeta *mm;
  GstStructure *s;
  GstMapInfo map;
  guint64 u64;
  gint best = 0;

  if (!ib_test_need_model (model_path))
    return;
  t = ib_test_text_embeddings (model_path, prompts, n, &dim);
  e = probe_embedding (&dim);
  ib_test_reference_scores (e, t, dim, n, cosine, prob);
  for (i = 1; i < n; i++)
    if (prob[i] > prob[best])
      best = i;
  /* The check below would not see a wrong softmax if it were uniform. */
  g_assert_cmpfloat (fabs (prob[0] - prob[1]) + fabs (prob[1] - prob[2]), >, 1e-4);

  fixture_setup (&f, prompts, n);
  gst_harness_play (f.h);

  /* Without an embedding: no result, no message. */
  out = gst_harness_push_and_pull (f.h, embedding_buffer (NULL, dim, 0, 40 * GST_MSECOND));
  g_assert_null (gst_buffer_get_imagebind_match_meta (out));
  gst_buffer_unref (out);
  g_assert_null (pop_element_message (f.bus, "imagebind-match"));

  out = gst_harness_push_and_pull (f.h, embedding_buffer (e, dim, GST_SECOND, 40 * GST_MSECOND));
  g_assert_true (gst_buffer_map (out, &map, GST_MAP_READ));
  g_assert_cmpmem (map.data, map.size, "abcd", 4);
  gst_buffer_unmap (out, &map);

  mm = gst_buffer_get_imagebind_match_meta (out);
  g_assert_nonnull (mm);
  g_assert_cmpint (mm->modality, ==, GST_IMAGE_BIND_MODALITY_VISION);
  g_assert_cmpint (mm->mode, ==, GST_IMAGE_BIND_MATCH_MODE_CLASSIFY);
  g_assert_cmpuint (mm->n_results, ==, n);
  g_assert_cmpint (mm->top_index, ==, best);
  g_assert_cmpstr (mm->top_label, ==, prompts[best]);
  g_assert_cmpfloat_with_epsilon (mm->top_probability, prob[best], TOL);
  g_assert_cmpuint (mm->pts, ==, GST_SECOND);
  g_assert_cmpuint (mm->duration, ==, 40 * GST_MSECOND);
  for (i = 0; i < n; i++) {
    const GstImageBindMatchResult *r = &mm->results[i];
    g_assert_cmpstr (r->label, ==, prompts[r->index]);
    g_assert_cmpfloat_with_epsilon (r->cosine, cosine[r->index], TOL);
    g_assert_cmpfloat_with_epsilon (r->probability, prob[r->index], TOL);
    g_assert_false (r->detected);
    if (i > 0)
      g_assert_cmpfloat (r->probability, <=, mm->results[i - 1].probability);
  }

  s = pop_element_message (f.bus, "imagebind-match");
  g_assert_nonnull (s);
  g_assert_true (gst_structure_get_uint64 (s, "timestamp", &u64));
  g_assert_cmpuint (u64, ==, GST_SECOND);
  g_assert_true (gst_structure_get_uint64 (s, "stream-time", &u64));
  g_assert_cmpuint (u64, ==, GST_SECOND);
  g_assert_true (gst_structure_get_uint64 (s, "running-time", &u64));
  g_assert_cmpuint (u64, ==, GST_SECOND);
  g_assert_true (gst_structure_get_uint64 (s, "duration", &u64));
  g_assert_cmpuint (u64, ==, 40 * GST_MSECOND);
  g_assert_cmpstr (gst_structure_get_string (s, "modality"), ==, "vision");
  g_assert_cmpstr (gst_structure_get_string (s, "mode"), ==, "classify");
  g_assert_cmpuint (array_size (s, "labels"), ==, n);
  g_assert_cmpuint (array_size (s, "scores"), ==, n);
  g_assert_cmpuint (array_size (s, "probabilities"), ==, n);
  g_assert_cmpuint (array_size (s, "indices"), ==, n);
  g_assert_cmpuint (array_size (s, "detected"), ==, n);
  for (i = 0; i < n; i++) {
    guint idx = g_value_get_uint (gst_value_array_get_value (gst_structure_get_value (s,
                "indices"), i));
    g_assert_cmpstr (array_string (s, "labels", i), ==, prompts[idx]);
    g_assert_cmpfloat_with_epsilon (array_double (s, "scores", i), cosine[idx], TOL);
    g_assert_cmpfloat_with_epsilon (array_double (s, "probabilities", i), prob[idx], TOL);
  }
  /* The plain copies for PyGObject */
  {
    const gchar *const *strv = g_value_get_boxed (gst_structure_get_value (s, "labels-strv"));
    GBytes *scores = g_value_get_boxed (gst_structure_get_value (s, "scores-f64"));
    GBytes *probs = g_value_get_boxed (gst_structure_get_value (s, "probabilities-f64"));
    GBytes *idx = g_value_get_boxed (gst_structure_get_value (s, "indices-u32"));
    const gdouble *sv = g_bytes_get_data (scores, NULL), *pv = g_bytes_get_data (probs, NULL);
    const guint32 *iv = g_bytes_get_data (idx, NULL);

    g_assert_cmpuint (g_strv_length ((gchar **) strv), ==, n);
    g_assert_cmpuint (g_bytes_get_size (scores), ==, n * sizeof (gdouble));
    g_assert_cmpuint (g_bytes_get_size (idx), ==, n * sizeof (guint32));
    for (i = 0; i < n; i++) {
      g_assert_cmpstr (strv[i], ==, array_string (s, "labels", i));
      g_assert_cmpstr (strv[i], ==, prompts[iv[i]]);
      g_assert_cmpfloat (sv[i], ==, array_double (s, "scores", i));
      g_assert_cmpfloat (pv[i], ==, array_double (s, "probabilities", i));
    }
  }
  g_assert_cmpstr (gst_structure_get_string (s, "top-label"), ==, prompts[best]);
  {
    gdouble d;
    guint u;
    g_assert_true (gst_structure_get_double (s, "top-probability", &d));
    g_assert_cmpfloat_with_epsilon (d, prob[best], TOL);
    g_assert_true (gst_structure_get_double (s, "top-score", &d));
    g_assert_cmpfloat_with_epsilon (d, cosine[best], TOL);
    g_assert_true (gst_structure_get_uint (s, "top-index", &u));
    g_assert_cmpuint (u, ==, best);
  }
  gst_structure_free (s);

  /* Copies keep the match meta (no tags, copy transform). */
  {
    GstBuffer *copy = gst_buffer_copy_deep (out);
    GstImageBindMatchMeta *cm = gst_buffer_get_imagebind_match_meta (copy);
    g_assert_nonnull (cm);
    g_assert_cmpuint (cm->n_results, ==, n);
    g_assert_cmpstr (cm->top_label, ==, prompts[best]);
    g_assert_cmpfloat (cm->results[2].cosine, ==, mm->results[2].cosine);
    gst_buffer_unref (copy);
  }
  gst_buffer_unref (out);

  fixture_teardown (&f);
  g_free (t);
  g_free (e);
}

static void
test_top_k_and_custom_meta (void)
{
  static const gchar *prompts[] = { "a dog", "a cat", "a car", "music" };
  const guint n = G_N_ELEMENTS (prompts);
  Fixture f;
  guint dim, i;
  gfloat *t, *e;
  gdouble cosine[4], prob[4];
  gint order[4] = { 0, 1, 2, 3 };
  GstBuffer *out;
  GstImageBindMatchMeta *mm;
  GstCustomMeta *cm;
  GstStructure *s;

  if (!ib_test_need_model (model_path))
    return;
  t = ib_test_text_embeddings (model_path, prompts, n, &dim);
  e = probe_embedding (&dim);
  ib_test_reference_scores (e, t, dim, n, cosine, prob);
  /* Reference order: decreasing probability (selection sort of 4). */
  for (i = 0; i < n; i++)
    for (guint j = i + 1; j < n; j++)
      if (prob[order[j]] > prob[order[i]]) {
        gint tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
      }

  fixture_setup (&f, prompts, n);
  g_object_set (f.element, "top-k", 2, "custom-meta", TRUE, NULL);
  gst_harness_play (f.h);
  out = gst_harness_push_and_pull (f.h, embedding_buffer (e, dim, 0, GST_MSECOND));
  mm = gst_buffer_get_imagebind_match_meta (out);
  g_assert_cmpuint (mm->n_results, ==, 2);
  g_assert_cmpuint (mm->results[0].index, ==, order[0]);
  g_assert_cmpuint (mm->results[1].index, ==, order[1]);
  /* Probabilities are still the softmax over all prompts. */
  g_assert_cmpfloat_with_epsilon (mm->results[1].probability, prob[order[1]], TOL);
  g_assert_nonnull (gst_image_bind_match_meta_find_result (mm, order[1]));
  g_assert_null (gst_image_bind_match_meta_find_result (mm, order[3]));

  cm = gst_buffer_get_custom_meta (out, GST_IMAGE_BIND_MATCH_CUSTOM_META_NAME);
  g_assert_nonnull (cm);
  s = gst_custom_meta_get_structure (cm);
  g_assert_cmpstr (gst_structure_get_string (s, "top-label"), ==, prompts[order[0]]);
  g_assert_cmpuint (array_size (s, "labels"), ==, 2);
  g_assert_cmpfloat_with_epsilon (array_double (s, "scores", 1), cosine[order[1]], TOL);
  gst_buffer_unref (out);

  s = pop_element_message (f.bus, "imagebind-match");
  g_assert_cmpuint (array_size (s, "labels"), ==, 2);
  g_assert_cmpstr (array_string (s, "labels", 1), ==, prompts[order[1]]);
  gst_structure_free (s);

  fixture_teardown (&f);
  g_free (t);
  g_free (e);
}

/* Unit vector u and a unit vector w orthogonal to it: c*u + sqrt(1-c^2)*w has cosine c with u
 * (and with any positive multiple of u, such as the text embedding). */
static void
orthonormal_pair (const gfloat * t, guint dim, gdouble * u, gdouble * w)
{
  gdouble n = 0, d = 0;
  guint i;

  for (i = 0; i < dim; i++)
    n += (gdouble) t[i] * t[i];
  for (i = 0; i < dim; i++)
    u[i] = t[i] / sqrt (n);
  for (i = 0; i < dim; i++)
    w[i] = ((i * 7919) % 13) - 6.0;
  for (i = 0; i < dim; i++)
    d += w[i] * u[i];
  n = 0;
  for (i = 0; i < dim; i++) {
    w[i] -= d * u[i];
    n += w[i] * w[i];
  }
  for (i = 0; i < dim; i++)
    w[i] /= sqrt (n);
}

static gfloat *
with_cosine (const gdouble * u, const gdouble * w, guint dim, gdouble c)
{
  gfloat *e = g_new (gfloat, dim);
  guint i;

  for (i = 0; i < dim; i++)
    e[i] = (gfloat) (c * u[i] + sqrt (1 - c * c) * w[i]);
  return e;
}

static void
test_detection (void)
{
  static const gchar *prompts[] = { "a dog" };
  /* Frames of 100 ms. threshold 0.5, min-duration 250 ms, cooldown 200 ms:
   *  - 1, 2 above, then a dip: 200 ms is too short, no start;
   *  - 4, 5, 6 above: at 6, 300 ms (400..700) >= 250: start, since 400 ms;
   *  - 7 below, 8 above: the 100 ms dip is shorter than the cooldown;
   *  - 9, 10 below: at 10, 200 ms (900..1100) >= 200: stop, since 900 ms. */
  static const gdouble seq[] = { 0.2, 0.8, 0.8, 0.2, 0.8, 0.8, 0.8, 0.3, 0.9, 0.3, 0.3, 0.3 };
  static const gboolean expect_detected[] = { 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0 };
  Fixture f;
  guint dim, i, n_start = 0, n_stop = 0;
  gfloat *t;
  gdouble *u, *w;
  GstStructure *s;
  GstMessage *msg;

  if (!ib_test_need_model (model_path))
    return;
  t = ib_test_text_embeddings (model_path, prompts, 1, &dim);
  u = g_new (gdouble, dim);
  w = g_new (gdouble, dim);
  orthonormal_pair (t, dim, u, w);

  fixture_setup (&f, prompts, 1);
  g_object_set (f.element, "mode", GST_IMAGE_BIND_MATCH_MODE_DETECT, "threshold", 0.5,
      "min-duration", (guint64) 250 * GST_MSECOND, "cooldown", (guint64) 200 * GST_MSECOND,
      "post-messages", FALSE, NULL);
  gst_harness_play (f.h);

  for (i = 0; i < G_N_ELEMENTS (seq); i++) {
    gfloat *e = with_cosine (u, w, dim, seq[i]);
    GstBuffer *out = gst_harness_push_and_pull (f.h,
        embedding_buffer (e, dim, i * 100 * GST_MSECOND, 100 * GST_MSECOND));
    GstImageBindMatchMeta *mm = gst_buffer_get_imagebind_match_meta (out);

    g_assert_nonnull (mm);
    g_assert_cmpint (mm->mode, ==, GST_IMAGE_BIND_MATCH_MODE_DETECT);
    g_assert_cmpfloat_with_epsilon (mm->results[0].cosine, seq[i], TOL);
    g_assert_cmpfloat_with_epsilon (mm->results[0].probability, 1.0, 1e-12);
    g_assert_cmpint (mm->results[0].detected, ==, expect_detected[i]);
    gst_buffer_unref (out);
    g_free (e);

    while ((msg = gst_bus_pop_filtered (f.bus, GST_MESSAGE_ELEMENT))) {
      const gchar *event;
      guint64 since, ts;
      gdouble score;

      s = gst_structure_copy (gst_message_get_structure (msg));
      gst_message_unref (msg);
      /* post-messages=FALSE: only the detection messages */
      g_assert_cmpstr (gst_structure_get_name (s), ==, "imagebind-detection");
      event = gst_structure_get_string (s, "event");

      g_assert_cmpstr (gst_structure_get_string (s, "label"), ==, "a dog");
      g_assert_cmpstr (gst_structure_get_string (s, "modality"), ==, "vision");
      g_assert_true (gst_structure_get_uint64 (s, "since", &since));
      g_assert_true (gst_structure_get_uint64 (s, "timestamp", &ts));
      g_assert_true (gst_structure_get_double (s, "score", &score));
      g_assert_cmpfloat_with_epsilon (score, seq[i], TOL);
      if (g_str_equal (event, "start")) {
        g_assert_cmpuint (i, ==, 6);
        g_assert_cmpuint (since, ==, 400 * GST_MSECOND);
        g_assert_cmpuint (ts, ==, 600 * GST_MSECOND);
        n_start++;
      } else {
        g_assert_cmpstr (event, ==, "stop");
        g_assert_cmpuint (i, ==, 10);
        g_assert_cmpuint (since, ==, 900 * GST_MSECOND);
        n_stop++;
      }
      gst_structure_free (s);
    }
  }
  g_assert_cmpuint (n_start, ==, 1);
  g_assert_cmpuint (n_stop, ==, 1);

  /* A detection open at EOS ends there (min-duration 0: starts at once). */
  g_object_set (f.element, "min-duration", (guint64) 0, NULL);
  {
    gfloat *e = with_cosine (u, w, dim, 0.9);
    gst_buffer_unref (gst_harness_push_and_pull (f.h,
            embedding_buffer (e, dim, 2 * GST_SECOND, 100 * GST_MSECOND)));
    g_free (e);
  }
  s = pop_element_message (f.bus, "imagebind-detection");
  g_assert_cmpstr (gst_structure_get_string (s, "event"), ==, "start");
  gst_structure_free (s);

  /* New prompts: the old detection stops (at the end of its last input), the new one starts. */
  ib_test_set_prompts (f.element, prompts, 1);
  wait_prompts_ready (f.bus, 1);
  {
    gfloat *e = with_cosine (u, w, dim, 0.9);
    gst_buffer_unref (gst_harness_push_and_pull (f.h,
            embedding_buffer (e, dim, 2 * GST_SECOND + 100 * GST_MSECOND, 100 * GST_MSECOND)));
    g_free (e);
  }
  {
    static const gchar *events[] = { "stop", "start" };
    static const guint64 sinces[] = { 2100 * GST_MSECOND, 2100 * GST_MSECOND };
    guint k;
    for (k = 0; k < 2; k++) {
      guint64 since;
      s = pop_element_message (f.bus, "imagebind-detection");
      g_assert_nonnull (s);
      g_assert_cmpstr (gst_structure_get_string (s, "event"), ==, events[k]);
      g_assert_true (gst_structure_get_uint64 (s, "since", &since));
      g_assert_cmpuint (since, ==, sinces[k]);
      gst_structure_free (s);
    }
  }

  gst_harness_push_event (f.h, gst_event_new_eos ());
  s = pop_element_message (f.bus, "imagebind-detection");
  g_assert_nonnull (s);
  g_assert_cmpstr (gst_structure_get_string (s, "event"), ==, "stop");
  g_assert_cmpstr (gst_structure_get_string (s, "label"), ==, "a dog");
  {
    guint64 since;
    g_assert_true (gst_structure_get_uint64 (s, "since", &since));
    g_assert_cmpuint (since, ==, 2 * GST_SECOND + 200 * GST_MSECOND);
  }
  gst_structure_free (s);
  g_assert_null (pop_element_message (f.bus, "imagebind-detection"));

  fixture_teardown (&f);
  g_free (t);
  g_free (u);
  g_free (w);
}

/* The prompts of the tests that change them while PLAYING. */
static const gchar *first_prompts[] = { "a dog", "a cat" };
static const gchar *second_prompts[] = { "rain", "a car", "a violin" };

static void
test_prompts_while_playing (void)
{
  Fixture f;
  guint dim, i;
  gfloat *t, *e;
  gdouble cosine[3], prob[3];
  GstBuffer *out;
  GstImageBindMatchMeta *mm;
  GValue v = G_VALUE_INIT;

  if (!ib_test_need_model (model_path))
    return;
  e = probe_embedding (&dim);
  fixture_setup (&f, first_prompts, 2);
  gst_harness_play (f.h);
  out = gst_harness_push_and_pull (f.h, embedding_buffer (e, dim, 0, GST_MSECOND));
  g_assert_cmpuint (gst_buffer_get_imagebind_match_meta (out)->n_results, ==, 2);
  gst_buffer_unref (out);

  ib_test_set_prompts (f.element, second_prompts, 3);
  g_value_init (&v, GST_TYPE_ARRAY);
  g_object_get_property (G_OBJECT (f.element), "prompts", &v);
  g_assert_cmpuint (gst_value_array_get_size (&v), ==, 3);
  g_assert_cmpstr (g_value_get_string (gst_value_array_get_value (&v, 2)), ==, "a violin");
  g_value_unset (&v);
  wait_prompts_ready (f.bus, 3);

  t = ib_test_text_embeddings (model_path, second_prompts, 3, &dim);
  ib_test_reference_scores (e, t, dim, 3, cosine, prob);
  out = gst_harness_push_and_pull (f.h, embedding_buffer (e, dim, GST_MSECOND, GST_MSECOND));
  mm = gst_buffer_get_imagebind_match_meta (out);
  g_assert_cmpuint (mm->n_results, ==, 3);
  for (i = 0; i < 3; i++) {
    g_assert_cmpstr (mm->results[i].label, ==, second_prompts[mm->results[i].index]);
    g_assert_cmpfloat_with_epsilon (mm->results[i].cosine, cosine[mm->results[i].index], TOL);
    g_assert_cmpfloat_with_epsilon (mm->results[i].probability, prob[mm->results[i].index],
        TOL);
  }
  gst_buffer_unref (out);

  /* No prompts: buffers pass without a result. */
  ib_test_set_prompts (f.element, NULL, 0);
  wait_prompts_ready (f.bus, 0);
  out = gst_harness_push_and_pull (f.h, embedding_buffer (e, dim, 2 * GST_MSECOND, GST_MSECOND));
  g_assert_null (gst_buffer_get_imagebind_match_meta (out));
  gst_buffer_unref (out);

  fixture_teardown (&f);
  g_free (t);
  g_free (e);
}

/* Holds the thread that posts the first `imagebind-prompts` "embedding" message (the
 * embedding thread) until the test lets it go. */
typedef struct {
  GMutex lock;
  GCond cond;
  gboolean entered, release;
  GThread *thread;
} Gate;

static GstBusSyncReply
gate_sync (GstBus * bus, GstMessage * msg, gpointer data)
{
  Gate *g = data;
  const GstStructure *s = gst_message_get_structure (msg);

  if (GST_MESSAGE_TYPE (msg) != GST_MESSAGE_ELEMENT ||
      !gst_structure_has_name (s, "imagebind-prompts") ||
      g_strcmp0 (gst_structure_get_string (s, "state"), "embedding") != 0)
    return GST_BUS_PASS;
  g_mutex_lock (&g->lock);
  if (!g->entered) {
    g->entered = TRUE;
    g->thread = g_thread_self ();
    g_cond_broadcast (&g->cond);
    while (!g->release)
      g_cond_wait (&g->cond, &g->lock);
  }
  g_mutex_unlock (&g->lock);
  return GST_BUS_PASS;
}

/* Prompts set while PLAYING are embedded on a thread of their own (5,000 of them on the
 * streaming thread would stall a live camera for seconds): a buffer pushed
 * while they are being embedded (the embedding thread is held at its start) goes through at
 * once, matched against the previous prompts; the new ones apply after the "ready" message,
 * and a change made during the embedding is embedded after it. */
static void
test_prompts_off_streaming_thread (void)
{
  static const gchar *third[] = { "a boat" };
  const guint n_big = 200;
  gchar **big = g_new0 (gchar *, n_big + 1);
  Gate gate = { 0 };
  Fixture f;
  guint dim, i;
  gfloat *t, *e;
  gdouble cosine[3], prob[3];
  GstBuffer *out;
  GstImageBindMatchMeta *mm;
  gint64 deadline;

  if (!ib_test_need_model (model_path)) {
    g_free (big);
    return;
  }
  for (i = 0; i < n_big; i++)
    big[i] = i < 3 ? g_strdup (second_prompts[i]) :
        g_strdup_printf ("a photo of thing number %u", i);
  e = probe_embedding (&dim);
  g_mutex_init (&gate.lock);
  g_cond_init (&gate.cond);
  fixture_setup (&f, first_prompts, 2);
  gst_bus_set_sync_handler (f.bus, gate_sync, &gate, NULL);
  gst_harness_play (f.h);
  out = gst_harness_push_and_pull (f.h, embedding_buffer (e, dim, 0, GST_MSECOND));
  g_assert_cmpuint (gst_buffer_get_imagebind_match_meta (out)->n_results, ==, 2);
  gst_buffer_unref (out);

  /* The big set starts being embedded as it is set, on another thread (held there: its size
   * does not matter to the test, which is on the order of events). */
  ib_test_set_prompts (f.element, (const gchar * const *) big, n_big);
  g_mutex_lock (&gate.lock);
  deadline = g_get_monotonic_time () + 300 * G_TIME_SPAN_SECOND;      /* hang guard */
  while (!gate.entered && g_cond_wait_until (&gate.cond, &gate.lock, deadline));
  g_assert_true (gate.entered);
  g_assert_true (gate.thread != g_thread_self ());
  g_mutex_unlock (&gate.lock);

  /* Meanwhile buffers go through (this thread is the streaming thread), with the old prompts. */
  for (i = 1; i <= 3; i++) {
    out = gst_harness_push_and_pull (f.h, embedding_buffer (e, dim, i * GST_MSECOND,
            GST_MSECOND));
    mm = gst_buffer_get_imagebind_match_meta (out);
    g_assert_cmpuint (mm->n_results, ==, 2);
    g_assert_cmpstr (mm->results[0].label, ==, first_prompts[mm->results[0].index]);
    gst_buffer_unref (out);
  }
  /* A change during the embedding: embedded after it. */
  ib_test_set_prompts (f.element, third, 1);
  g_mutex_lock (&gate.lock);
  g_assert_false (gate.release);
  gate.release = TRUE;
  g_cond_broadcast (&gate.cond);
  g_mutex_unlock (&gate.lock);

  /* The big set is ready: the next buffer uses it (and starts embedding the third set). */
  wait_prompts_ready (f.bus, n_big);
  t = ib_test_text_embeddings (model_path, second_prompts, 3, &dim);
  ib_test_reference_scores (e, t, dim, 3, cosine, prob);
  out = gst_harness_push_and_pull (f.h, embedding_buffer (e, dim, 4 * GST_MSECOND,
          GST_MSECOND));
  mm = gst_buffer_get_imagebind_match_meta (out);
  g_assert_cmpuint (mm->n_results, ==, n_big);
  for (i = 0; i < n_big; i++) {
    guint k = mm->results[i].index;

    g_assert_cmpstr (mm->results[i].label, ==, big[k]);
    if (k < 3)
      g_assert_cmpfloat_with_epsilon (mm->results[i].cosine, cosine[k], TOL);
  }
  gst_buffer_unref (out);

  wait_prompts_ready (f.bus, 1);
  out = gst_harness_push_and_pull (f.h, embedding_buffer (e, dim, 5 * GST_MSECOND,
          GST_MSECOND));
  mm = gst_buffer_get_imagebind_match_meta (out);
  g_assert_cmpuint (mm->n_results, ==, 1);
  g_assert_cmpstr (mm->results[0].label, ==, "a boat");
  gst_buffer_unref (out);

  gst_bus_set_sync_handler (f.bus, NULL, NULL, NULL);
  fixture_teardown (&f);
  g_mutex_clear (&gate.lock);
  g_cond_clear (&gate.cond);
  g_strfreev (big);
  g_free (t);
  g_free (e);
}

/* A change while PLAYING then PAUSED->READY at once: the embedding under way is waited for
 * and dropped, READY->PAUSED embeds the prompts as they are then (no leak, no race). */
static void
test_prompts_change_then_stop (void)
{
  Fixture f;
  guint dim, i;
  gfloat *e;
  GstBuffer *out;

  if (!ib_test_need_model (model_path))
    return;
  e = probe_embedding (&dim);
  fixture_setup (&f, first_prompts, 2);
  for (i = 0; i < 5; i++) {
    gst_harness_play (f.h);
    ib_test_set_prompts (f.element, i % 2 ? first_prompts : second_prompts, i % 2 ? 2 : 3);
    g_assert_cmpint (gst_element_set_state (f.element, GST_STATE_READY), ==,
        GST_STATE_CHANGE_SUCCESS);
  }
  gst_harness_play (f.h);
  out = gst_harness_push_and_pull (f.h, embedding_buffer (e, dim, 0, GST_MSECOND));
  g_assert_cmpuint (gst_buffer_get_imagebind_match_meta (out)->n_results, ==, 3);
  gst_buffer_unref (out);
  fixture_teardown (&f);
  g_free (e);
}

static void
test_dimension_mismatch (void)
{
  static const gchar *prompts[] = { "a dog" };
  static const gfloat narrow[3] = { 1, 0, 0 };
  Fixture f;
  GstBuffer *out;
  GstMessage *msg;

  if (!ib_test_need_model (model_path))
    return;
  fixture_setup (&f, prompts, 1);
  gst_harness_play (f.h);
  out = gst_harness_push_and_pull (f.h, embedding_buffer (narrow, 3, 0, GST_MSECOND));
  g_assert_null (gst_buffer_get_imagebind_match_meta (out));
  gst_buffer_unref (out);
  msg = gst_bus_pop_filtered (f.bus, GST_MESSAGE_WARNING);
  g_assert_nonnull (msg);
  gst_message_unref (msg);
  /* Non-finite values: not matched (no NaN in messages). */
  {
    guint d, k;
    gfloat *e = probe_embedding (&d);
    e[d / 2] = NAN;
    out = gst_harness_push_and_pull (f.h, embedding_buffer (e, d, 2, 1));
    g_assert_null (gst_buffer_get_imagebind_match_meta (out));
    gst_buffer_unref (out);
    /* ...and said once on the bus */
    msg = gst_bus_pop_filtered (f.bus, GST_MESSAGE_WARNING);
    g_assert_nonnull (msg);
    {
      GError *err = NULL;
      gst_message_parse_warning (msg, &err, NULL);
      g_assert_nonnull (strstr (err->message, "non-finite value (NaN or infinity)"));
      g_error_free (err);
    }
    gst_message_unref (msg);
    for (k = 0; k < d; k++)
      e[k] = k == 0 ? INFINITY : 0.0f;
    out = gst_harness_push_and_pull (f.h, embedding_buffer (e, d, 3, 1));
    g_assert_null (gst_buffer_get_imagebind_match_meta (out));
    gst_buffer_unref (out);
    g_free (e);
    g_assert_null (pop_element_message (f.bus, "imagebind-match"));
    g_assert_null (gst_bus_pop_filtered (f.bus, GST_MESSAGE_WARNING));
  }
  /* Once per stream. */
  gst_buffer_unref (gst_harness_push_and_pull (f.h, embedding_buffer (narrow, 3, 1, 1)));
  g_assert_null (gst_bus_pop_filtered (f.bus, GST_MESSAGE_WARNING));
  fixture_teardown (&f);
}

static void
test_text_pad (void)
{
  static const gchar *prompts[] = { "a dog", "a cat", "a car" };
  Fixture f;
  GstHarness *th;
  guint dim;
  gfloat *e;
  GstBuffer *out, *text;
  GstEvent *ev;
  GstCaps *caps;
  GstMapInfo map;
  gchar *label;
  GstClockTime gap_ts, gap_dur;

  if (!ib_test_need_model (model_path))
    return;
  e = probe_embedding (&dim);
  fixture_setup (&f, prompts, 3);
  th = gst_harness_new_with_element (f.element, NULL, "text_src");
  gst_harness_play (f.h);

  out = gst_harness_push_and_pull (f.h, embedding_buffer (e, dim, 3 * GST_SECOND,
          50 * GST_MSECOND));
  label = g_strdup (gst_buffer_get_imagebind_match_meta (out)->top_label);
  gst_buffer_unref (out);

  ev = gst_harness_pull_event (th);
  g_assert_cmpint (GST_EVENT_TYPE (ev), ==, GST_EVENT_STREAM_START);
  gst_event_unref (ev);
  ev = gst_harness_pull_event (th);
  g_assert_cmpint (GST_EVENT_TYPE (ev), ==, GST_EVENT_CAPS);
  gst_event_parse_caps (ev, &caps);
  {
    GstCaps *want = gst_caps_from_string ("text/x-raw, format=(string)utf8");
    g_assert_true (gst_caps_is_equal (caps, want));
    gst_caps_unref (want);
  }
  gst_event_unref (ev);
  ev = gst_harness_pull_event (th);
  g_assert_cmpint (GST_EVENT_TYPE (ev), ==, GST_EVENT_SEGMENT);
  gst_event_unref (ev);

  text = gst_harness_pull (th);
  g_assert_cmpuint (GST_BUFFER_PTS (text), ==, 3 * GST_SECOND);
  g_assert_cmpuint (GST_BUFFER_DURATION (text), ==, 50 * GST_MSECOND);
  g_assert_true (gst_buffer_map (text, &map, GST_MAP_READ));
  g_assert_cmpmem (map.data, map.size, label, strlen (label));
  gst_buffer_unmap (text, &map);
  gst_buffer_unref (text);

  /* Buffers without a result: the tag lasts until the next result, each buffer's span
   * covered by the same text (textoverlay shows it continuously, subtitles have no holes). */
  for (guint k = 0; k < 3; k++) {
    gst_buffer_unref (gst_harness_push_and_pull (f.h, embedding_buffer (NULL, dim,
                4 * GST_SECOND + k * 20 * GST_MSECOND, 20 * GST_MSECOND)));
    text = gst_harness_pull (th);
    g_assert_cmpuint (GST_BUFFER_PTS (text), ==, 4 * GST_SECOND + k * 20 * GST_MSECOND);
    g_assert_cmpuint (GST_BUFFER_DURATION (text), ==, 20 * GST_MSECOND);
    g_assert_true (gst_buffer_map (text, &map, GST_MAP_READ));
    g_assert_cmpmem (map.data, map.size, label, strlen (label));
    gst_buffer_unmap (text, &map);
    gst_buffer_unref (text);
  }

  /* Flushes and EOS are forwarded; a new segment follows a flush. */
  gst_harness_push_event (f.h, gst_event_new_flush_start ());
  gst_harness_push_event (f.h, gst_event_new_flush_stop (TRUE));
  ev = gst_harness_pull_event (th);
  g_assert_cmpint (GST_EVENT_TYPE (ev), ==, GST_EVENT_FLUSH_START);
  gst_event_unref (ev);
  ev = gst_harness_pull_event (th);
  g_assert_cmpint (GST_EVENT_TYPE (ev), ==, GST_EVENT_FLUSH_STOP);
  gst_event_unref (ev);
  {
    GstSegment seg;
    gst_segment_init (&seg, GST_FORMAT_TIME);
    gst_harness_push_event (f.h, gst_event_new_segment (&seg));
  }
  /* After a flush the old tag is gone: a buffer without a result is a gap. */
  gst_buffer_unref (gst_harness_push_and_pull (f.h, embedding_buffer (NULL, dim,
              5 * GST_SECOND, 20 * GST_MSECOND)));
  ev = gst_harness_pull_event (th);
  g_assert_cmpint (GST_EVENT_TYPE (ev), ==, GST_EVENT_SEGMENT);
  gst_event_unref (ev);
  ev = gst_harness_pull_event (th);
  g_assert_cmpint (GST_EVENT_TYPE (ev), ==, GST_EVENT_GAP);
  gst_event_parse_gap (ev, &gap_ts, &gap_dur);
  g_assert_cmpuint (gap_ts, ==, 5 * GST_SECOND);
  g_assert_cmpuint (gap_dur, ==, 20 * GST_MSECOND);
  gst_event_unref (ev);
  gst_harness_push_event (f.h, gst_event_new_eos ());
  ev = gst_harness_pull_event (th);
  g_assert_cmpint (GST_EVENT_TYPE (ev), ==, GST_EVENT_EOS);
  gst_event_unref (ev);

  /* Only one text_src pad. */
  g_assert_null (gst_element_request_pad (f.element,
          gst_element_get_pad_template (f.element, "text_src"), NULL, NULL));

  gst_harness_teardown (th);
  fixture_teardown (&f);
  g_free (label);
  g_free (e);
}

/* A text_src pad requested while PLAYING starts its own stream before its first text. */
static void
test_text_pad_while_playing (void)
{
  static const gchar *prompts[] = { "a dog", "a cat" };
  Fixture f;
  GstHarness *th;
  guint dim;
  gfloat *e;
  GstEvent *ev;
  GstBuffer *text;

  if (!ib_test_need_model (model_path))
    return;
  e = probe_embedding (&dim);
  fixture_setup (&f, prompts, 2);
  gst_harness_play (f.h);
  gst_buffer_unref (gst_harness_push_and_pull (f.h, embedding_buffer (e, dim, 0, GST_MSECOND)));

  th = gst_harness_new_with_element (f.element, NULL, "text_src");
  gst_buffer_unref (gst_harness_push_and_pull (f.h, embedding_buffer (e, dim, GST_SECOND,
              GST_MSECOND)));
  ev = gst_harness_pull_event (th);
  g_assert_cmpint (GST_EVENT_TYPE (ev), ==, GST_EVENT_STREAM_START);
  gst_event_unref (ev);
  ev = gst_harness_pull_event (th);
  g_assert_cmpint (GST_EVENT_TYPE (ev), ==, GST_EVENT_CAPS);
  gst_event_unref (ev);
  ev = gst_harness_pull_event (th);
  g_assert_cmpint (GST_EVENT_TYPE (ev), ==, GST_EVENT_SEGMENT);
  gst_event_unref (ev);
  text = gst_harness_pull (th);
  g_assert_cmpuint (GST_BUFFER_PTS (text), ==, GST_SECOND);
  gst_buffer_unref (text);
  g_assert_cmpuint (gst_harness_buffers_in_queue (th), ==, 0);

  gst_harness_teardown (th);
  fixture_teardown (&f);
  g_free (e);
}

static void
test_state_cycling (void)
{
  static const gchar *prompts[] = { "a dog", "a cat" };
  GstElement *element;
  guint i;

  if (!ib_test_need_model (model_path))
    return;
  element = gst_element_factory_make ("imagebindmatch", NULL);
  g_object_set (element, "model", model_path, "n-threads", 1, NULL);
  ib_test_set_prompts (element, prompts, 2);
  for (i = 0; i < 10; i++) {
    g_assert_cmpint (gst_element_set_state (element, GST_STATE_PLAYING), !=,
        GST_STATE_CHANGE_FAILURE);
    g_assert_cmpint (gst_element_set_state (element, i % 2 ? GST_STATE_READY :
            GST_STATE_NULL), ==, GST_STATE_CHANGE_SUCCESS);
  }
  gst_element_set_state (element, GST_STATE_NULL);
  gst_object_unref (element);
}

static void
expect_model_error (const gchar * path, GQuark domain, gint code)
{
  GstElement *element = gst_element_factory_make ("imagebindmatch", NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  GError *err = NULL;

  gst_element_set_bus (element, bus);
  g_object_set (element, "model", path, NULL);
  g_assert_cmpint (gst_element_set_state (element, GST_STATE_READY), ==,
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  g_assert_nonnull (msg);
  gst_message_parse_error (msg, &err, NULL);
  g_assert_error (err, domain, code);
  g_assert_nonnull (strstr (err->message, path));
  g_clear_error (&err);
  gst_message_unref (msg);
  gst_element_set_state (element, GST_STATE_NULL);
  gst_element_set_bus (element, NULL);
  gst_object_unref (element);
  gst_object_unref (bus);
}

static void
test_bad_model (void)
{
  gchar *dir = g_dir_make_tmp ("ib-match-XXXXXX", NULL);
  gchar *missing = g_build_filename (dir, "missing.gguf", NULL);
  gchar *corrupt = g_build_filename (dir, "corrupt.gguf", NULL);

  g_assert_true (g_file_set_contents (corrupt, "GGUF\003\0\0\0garbage", 15, NULL));
  expect_model_error (missing, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND);
  expect_model_error (corrupt, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_FAILED);
  g_unlink (corrupt);
  g_rmdir (dir);
  g_free (missing);
  g_free (corrupt);
  g_free (dir);
}

/* A model whose text head weights are NaN: the prompts cannot be embedded, and READY->PAUSED
 * fails with an error saying why (not silently). */
static void
test_nan_model (void)
{
  static const gchar *prompts[] = { "a dog" };
  IbTestModelEdit edit = { .fill_tensors = "modality_heads.text", .fill_value = NAN };
  GstElement *element;
  GstBus *bus;
  GstMessage *msg;
  GError *err = NULL;
  gchar *path;

  if (!ib_test_need_model (model_path))
    return;
  path = ib_test_model_edit (model_path, &edit);
  element = gst_element_factory_make ("imagebindmatch", NULL);
  bus = gst_bus_new ();
  gst_element_set_bus (element, bus);
  g_object_set (element, "model", path, "n-threads", 1, NULL);
  ib_test_set_prompts (element, prompts, 1);
  g_assert_cmpint (gst_element_set_state (element, GST_STATE_PAUSED), ==,
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  g_assert_nonnull (msg);
  gst_message_parse_error (msg, &err, NULL);
  g_test_message ("%s", err->message);
  g_assert_nonnull (strstr (err->message, "non-finite embedding"));
  g_clear_error (&err);
  gst_message_unref (msg);
  g_assert_null (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR));
  gst_element_set_state (element, GST_STATE_NULL);
  gst_element_set_bus (element, NULL);
  gst_object_unref (element);
  gst_object_unref (bus);
  g_unlink (path);
  g_free (path);
}

static void
test_meta_api (void)
{
  GstImageBindMatchResult results[2] = {
    {1, (gchar *) "a cat", 0.3, 0.7, TRUE},
    {0, (gchar *) "a dog", 0.1, 0.3, FALSE},
  };
  GstBuffer *buf = gst_buffer_new ();
  GstImageBindMatchMeta *mm;
  GstStructure *s;
  gint top;

  mm = gst_buffer_add_imagebind_match_meta (buf, GST_IMAGE_BIND_MODALITY_AUDIO,
      GST_IMAGE_BIND_MATCH_MODE_DETECT, results, 2);
  g_assert_cmpint (mm->top_index, ==, 1);
  g_assert_cmpstr (mm->top_label, ==, "a cat");
  g_assert_true (mm->results[0].label != results[0].label);     /* copied */
  g_assert_true (gst_buffer_get_imagebind_match_meta_by_modality (buf,
          GST_IMAGE_BIND_MODALITY_AUDIO) == mm);
  g_assert_null (gst_buffer_get_imagebind_match_meta_by_modality (buf,
          GST_IMAGE_BIND_MODALITY_VISION));
  s = gst_image_bind_match_meta_to_structure (mm);
  g_assert_cmpstr (gst_structure_get_name (s), ==, GST_IMAGE_BIND_MATCH_CUSTOM_META_NAME);
  g_assert_cmpstr (gst_structure_get_string (s, "modality"), ==, "audio");
  g_assert_cmpstr (gst_structure_get_string (s, "mode"), ==, "detect");
  g_assert_true (gst_structure_get_int (s, "top-index", &top));
  g_assert_cmpint (top, ==, 1);
  g_assert_cmpfloat (array_double (s, "probabilities", 1), ==, 0.3);
  g_assert_true (g_value_get_boolean (gst_value_array_get_value (gst_structure_get_value (s,
                  "detected"), 0)));
  gst_structure_free (s);
  /* Without prompts */
  mm = gst_buffer_add_imagebind_match_meta (buf, GST_IMAGE_BIND_MODALITY_VISION,
      GST_IMAGE_BIND_MATCH_MODE_CLASSIFY, NULL, 0);
  g_assert_cmpint (mm->top_index, ==, -1);
  g_assert_null (mm->top_label);
  s = gst_image_bind_match_meta_to_structure (mm);
  g_assert_cmpstr (gst_structure_get_string (s, "top-label"), ==, "");
  gst_structure_free (s);
  gst_buffer_unref (buf);
}

static GstBuffer *
text_buffer (const gchar * text, GstClockTime pts)
{
  GstBuffer *buf = gst_buffer_new_memdup (text, strlen (text));

  GST_BUFFER_PTS (buf) = pts;
  GST_BUFFER_DURATION (buf) = GST_SECOND;
  return buf;
}

static void
assert_text_embedding (GstBuffer * buf, const gchar * expected_text, GstClockTime pts)
{
  const gchar *texts[1] = { expected_text };
  GstImageBindEmbeddingMeta *meta = gst_buffer_get_imagebind_embedding_meta (buf);
  guint dim, i;
  gfloat *want = ib_test_text_embeddings (model_path, texts, 1, &dim);
  GError *err = NULL;
  ImageBindModel *model = imagebind_model_load (model_path, &err);

  g_assert_no_error (err);
  g_assert_nonnull (meta);
  g_assert_cmpint (meta->modality, ==, GST_IMAGE_BIND_MODALITY_TEXT);
  g_assert_cmpuint (meta->dim, ==, dim);
  g_assert_cmpfloat (meta->logit_scale, ==, imagebind_model_logit_scale (model,
          IMAGEBIND_MODALITY_TEXT));
  g_assert_cmpuint (meta->pts, ==, pts);
  g_assert_cmpuint (meta->duration, ==, GST_SECOND);
  g_assert_cmpuint (meta->stream_time, ==, pts);
  for (i = 0; i < dim; i++)
    g_assert_cmpfloat_with_epsilon (meta->vector[i], want[i], TOL);
  imagebind_model_unref (model);
  g_free (want);
}

static GstHarness *
text_harness (void)
{
  GstElement *element = gst_element_factory_make ("imagebindtext", NULL);
  GstHarness *h;

  g_object_set (element, "model", model_path, "n-threads", 1, NULL);
  h = gst_harness_new_with_element (element, "sink", "src");
  gst_object_unref (element);
  return h;
}

static void
test_text_encoder (void)
{
  GstHarness *h;
  GstBuffer *out;
  GstMapInfo map;

  if (!ib_test_need_model (model_path))
    return;
  h = text_harness ();
  gst_harness_set_src_caps_str (h, "text/x-raw, format=(string)utf8");
  gst_harness_play (h);

  out = gst_harness_push_and_pull (h, text_buffer ("A dog is barking", GST_SECOND));
  assert_text_embedding (out, "A dog is barking", GST_SECOND);
  g_assert_true (gst_buffer_map (out, &map, GST_MAP_READ));
  g_assert_cmpmem (map.data, map.size, "A dog is barking", 16);
  gst_buffer_unmap (out, &map);
  gst_buffer_unref (out);

  /* Blank text and gaps: no embedding. */
  out = gst_harness_push_and_pull (h, text_buffer (" \n ", 2 * GST_SECOND));
  g_assert_null (gst_buffer_get_imagebind_embedding_meta (out));
  gst_buffer_unref (out);

  /* interval: 5 s after the last embedded buffer */
  g_object_set (h->element, "interval", (guint64) 5 * GST_SECOND, NULL);
  gst_buffer_unref (gst_harness_push_and_pull (h, text_buffer ("one", 10 * GST_SECOND)));
  out = gst_harness_push_and_pull (h, text_buffer ("two", 12 * GST_SECOND));
  g_assert_null (gst_buffer_get_imagebind_embedding_meta (out));
  gst_buffer_unref (out);
  out = gst_harness_push_and_pull (h, text_buffer ("three", 15 * GST_SECOND));
  assert_text_embedding (out, "three", 15 * GST_SECOND);
  gst_buffer_unref (out);
  gst_harness_teardown (h);

  /* pango-markup: the tags are not part of the text. */
  h = text_harness ();
  gst_harness_set_src_caps_str (h, "text/x-raw, format=(string)pango-markup");
  gst_harness_play (h);
  out = gst_harness_push_and_pull (h, text_buffer ("<i>a dog</i> <b>barking</b>", 0));
  assert_text_embedding (out, "a dog barking", 0);
  gst_buffer_unref (out);
  /* Invalid UTF-8: a warning, the buffer passes. */
  out = gst_harness_push_and_pull (h, text_buffer ("bad \xff\xfe text", GST_SECOND));
  g_assert_null (gst_buffer_get_imagebind_embedding_meta (out));
  gst_buffer_unref (out);
  gst_harness_teardown (h);

  /* Caps other than text are refused. */
  h = text_harness ();
  gst_harness_set_src_caps_str (h, "video/x-raw");
  gst_harness_play (h);
  g_assert_cmpint (gst_harness_push (h, text_buffer ("a dog", 0)), ==,
      GST_FLOW_NOT_NEGOTIATED);
  gst_harness_teardown (h);
}

/* imagebindtext ! imagebindmatch (with @match_model, or without a `model` when NULL): the
 * match of a subtitle text equals the runtime's scores with the tiny model. */
static void
check_text_then_match (const gchar * match_model)
{
  static const gchar *prompts[] = { "a dog", "a car" };
  const gchar *probe[1] = { "the dog runs" };
  GstHarness *h;
  GstBuffer *out;
  GstImageBindMatchMeta *mm;
  GstElement *me;
  gfloat *t, *e;
  gdouble cosine[2], prob[2];
  gchar *desc, *m_model = NULL;
  guint dim, i;

  t = ib_test_text_embeddings (model_path, prompts, 2, &dim);
  e = ib_test_text_embeddings (model_path, probe, 1, &dim);
  ib_test_reference_scores (e, t, dim, 2, cosine, prob);

  /* The prompts are in the description: the harness starts the bin as it makes it, and
   * prompts set afterwards would be embedded on a thread of their own (results from the
   * "imagebind-prompts" message on). */
  desc = g_strdup_printf ("imagebindtext model=\"%s\" n-threads=1 ! "
      "imagebindmatch name=m n-threads=1 %s%s%s prompts=\"<\\\"%s\\\", \\\"%s\\\">\"",
      model_path, match_model ? "model=\"" : "", match_model ? match_model : "",
      match_model ? "\"" : "", prompts[0], prompts[1]);
  h = gst_harness_new_parse (desc);
  g_free (desc);
  me = gst_bin_get_by_name (GST_BIN (h->element), "m");
  gst_harness_set_src_caps_str (h, "text/x-raw, format=(string)utf8");
  gst_harness_play (h);
  out = gst_harness_push_and_pull (h, text_buffer (probe[0], 0));
  mm = gst_buffer_get_imagebind_match_meta (out);
  g_assert_nonnull (mm);
  g_assert_cmpint (mm->modality, ==, GST_IMAGE_BIND_MODALITY_TEXT);
  for (i = 0; i < 2; i++) {
    g_assert_cmpfloat_with_epsilon (mm->results[i].cosine, cosine[mm->results[i].index], TOL);
    g_assert_cmpfloat_with_epsilon (mm->results[i].probability, prob[mm->results[i].index],
        TOL);
  }
  gst_buffer_unref (out);
  g_object_get (me, "model", &m_model, NULL);
  g_assert_cmpstr (m_model, ==, match_model);
  g_free (m_model);
  gst_object_unref (me);
  gst_harness_teardown (h);
  g_free (t);
  g_free (e);
}

/* The text encoder feeding the matcher: subtitle text classified against prompts. */
static void
test_text_then_match (void)
{
  if (ib_test_need_model (model_path))
    check_text_then_match (model_path);
}

/* ---- prompts that type easily, warnings, the encoders' model ---- */

/* The labels of the `imagebind-match` message of one buffer carrying @e, in prompt order. */
static gchar **
labels_and_scores (Fixture * f, const gfloat * e, guint dim, gdouble * scores)
{
  GstStructure *s;
  const GValue *li, *ll, *ls;
  gchar **labels;
  guint r, n;

  gst_buffer_unref (gst_harness_push_and_pull (f->h, embedding_buffer (e, dim, 0, GST_SECOND)));
  s = pop_element_message (f->bus, "imagebind-match");
  g_assert_nonnull (s);
  li = gst_structure_get_value (s, "indices");
  ll = gst_structure_get_value (s, "labels");
  ls = gst_structure_get_value (s, "scores");
  n = gst_value_array_get_size (li);
  labels = g_new0 (gchar *, n + 1);
  for (r = 0; r < n; r++) {
    guint j = g_value_get_uint (gst_value_array_get_value (li, r));

    g_assert_cmpuint (j, <, n);
    labels[j] = g_value_dup_string (gst_value_array_get_value (ll, r));
    if (scores)
      scores[j] = g_value_get_double (gst_value_array_get_value (ls, r));
  }
  gst_structure_free (s);
  return labels;
}

/* prompt-list: one string, ';' (or ',') separated, is the same list as `prompts`, with the same
 * scores; spaces around entries and empty entries are dropped. */
static void
test_prompt_list (void)
{
  static const gchar *prompts[] = { "a dog", "a cat", "a car" };
  static const struct {
    const gchar *list;
    const gchar *want[4];
    const gchar *back;
  } cases[] = {
    {"a dog;a cat;a car", {"a dog", "a cat", "a car"}, "a dog;a cat;a car"},
    {" a dog ; a cat;;a car; ", {"a dog", "a cat", "a car"}, "a dog;a cat;a car"},
    {"dog,cat", {"dog", "cat"}, "dog;cat"},
    {"a dog, running;", {"a dog, running"}, "a dog, running"},
    {"night = text:a dark street + text:lamps;a cat", {"night", "a cat"},
        "night = text:a dark street + text:lamps;a cat"},
    {"", {NULL}, ""},
  };
  Fixture f;
  guint dim, c, i;
  gfloat *e;
  gdouble want_scores[3], got_scores[3];
  gchar **labels, *back;

  if (!ib_test_need_model (model_path))
    return;
  e = probe_embedding (&dim);
  /* reference: the same prompts as an array */
  fixture_setup (&f, prompts, 3);
  gst_harness_play (f.h);
  labels = labels_and_scores (&f, e, dim, want_scores);
  g_strfreev (labels);
  fixture_teardown (&f);

  for (c = 0; c < G_N_ELEMENTS (cases); c++) {
    GValue array = G_VALUE_INIT;

    fixture_setup (&f, NULL, 0);
    g_object_set (f.element, "prompt-list", cases[c].list, NULL);
    g_object_get (f.element, "prompt-list", &back, NULL);
    g_assert_cmpstr (back, ==, cases[c].back);
    g_free (back);
    /* the array property holds the same entries (the labels, for plain prompts) */
    g_value_init (&array, GST_TYPE_ARRAY);
    g_object_get_property (G_OBJECT (f.element), "prompts", &array);
    {
      GString *joined = g_string_new (NULL);

      for (i = 0; i < gst_value_array_get_size (&array); i++)
        g_string_append_printf (joined, "%s%s", i ? ";" : "",
            g_value_get_string (gst_value_array_get_value (&array, i)));
      g_assert_cmpstr (joined->str, ==, cases[c].back);
      g_string_free (joined, TRUE);
    }
    for (i = 0; cases[c].want[i]; i++);
    g_assert_cmpuint (gst_value_array_get_size (&array), ==, i);
    g_value_unset (&array);
    if (i > 0) {
      gst_harness_play (f.h);
      /* the harness started the element: the list is embedded on a thread of its own */
      wait_prompts_ready (f.bus, i);
      labels = labels_and_scores (&f, e, dim, got_scores);
      for (i = 0; cases[c].want[i]; i++)
        g_assert_cmpstr (labels[i], ==, cases[c].want[i]);
      if (c == 0)
        for (i = 0; i < 3; i++)
          g_assert_cmpfloat (got_scores[i], ==, want_scores[i]);
      g_strfreev (labels);
    }
    fixture_teardown (&f);
  }
  g_free (e);
}

/* gst-launch syntax: prompt-list with spaces needs one level of shell quoting only. */
static void
test_prompt_list_launch (void)
{
  GError *err = NULL;
  GstElement *pipeline, *m;
  GValue array = G_VALUE_INIT;

  if (!ib_test_need_model (model_path))
    return;
  /* what gst-launch-1.0 receives from: prompt-list="colour bars;a bouncing ball" */
  {
    const gchar *argv[] = { "imagebindmatch", "name=m",
      "prompt-list=colour bars;a bouncing ball;static noise", NULL
    };
    pipeline = gst_parse_launchv (argv, &err);
  }
  g_assert_no_error (err);
  /* a description of one element gives that element */
  m = GST_IS_BIN (pipeline) ? gst_bin_get_by_name (GST_BIN (pipeline), "m") :
      gst_object_ref (pipeline);
  g_value_init (&array, GST_TYPE_ARRAY);
  g_object_get_property (G_OBJECT (m), "prompts", &array);
  g_assert_cmpuint (gst_value_array_get_size (&array), ==, 3);
  g_assert_cmpstr (g_value_get_string (gst_value_array_get_value (&array, 1)), ==,
      "a bouncing ball");
  g_value_unset (&array);
  gst_object_unref (m);
  gst_object_unref (pipeline);
}

/* prompts-file: one prompt or composed query per line after the `prompts`, comments and blank
 * lines skipped, CRLF tolerated; errors name the file and the line. */
static void
test_prompts_file (void)
{
  static const gchar *prompts[] = { "a car" };
  const gchar *contents = "# prompts for the test\n\n  a dog  \r\n"
      "   # indented comment\nboth = text:a dog + text:a cat\na cat";
  gchar *dir = g_dir_make_tmp ("ib-match-XXXXXX", NULL);
  gchar *file = g_build_filename (dir, "prompts.txt", NULL);
  gchar *bad = g_build_filename (dir, "bad.txt", NULL);
  gchar *missing = g_build_filename (dir, "missing.txt", NULL);
  const gchar *want[] = { "a car", "a dog", "both", "a cat", NULL };
  Fixture f;
  guint dim, i;
  gfloat *e;
  gchar **labels;
  GstMessage *msg;
  GError *err = NULL;

  if (!ib_test_need_model (model_path))
    goto out;
  g_assert_true (g_file_set_contents (file, contents, -1, NULL));
  g_assert_true (g_file_set_contents (bad, "a dog\n\nx = imgae:/a.png\n", -1, NULL));
  e = probe_embedding (&dim);

  fixture_setup (&f, prompts, 1);
  g_object_set (f.element, "prompts-file", file, NULL);
  gst_harness_play (f.h);
  /* the harness started the element: the file is embedded on a thread of its own */
  wait_prompts_ready (f.bus, G_N_ELEMENTS (want) - 1);
  labels = labels_and_scores (&f, e, dim, NULL);
  for (i = 0; want[i]; i++)
    g_assert_cmpstr (labels[i], ==, want[i]);
  g_assert_null (labels[i]);
  g_strfreev (labels);
  fixture_teardown (&f);

  /* an invalid line fails READY->PAUSED naming the file and line 3 */
  for (i = 0; i < 2; i++) {
    gchar *text;

    /* not in a harness, which would start the element before the property is set */
    f.element = gst_element_factory_make ("imagebindmatch", NULL);
    f.bus = gst_bus_new ();
    gst_element_set_bus (f.element, f.bus);
    g_object_set (f.element, "model", model_path, "n-threads", 1, "prompts-file",
        i == 0 ? bad : missing, NULL);
    ib_test_set_prompts (f.element, prompts, 1);
    g_assert_cmpint (gst_element_set_state (f.element, GST_STATE_PAUSED), ==,
        GST_STATE_CHANGE_FAILURE);
    msg = gst_bus_pop_filtered (f.bus, GST_MESSAGE_ERROR);
    g_assert_nonnull (msg);
    gst_message_parse_error (msg, &err, NULL);
    text = g_strdup (err->message);
    g_test_message ("%s", text);
    if (i == 0) {
      g_assert_true (g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS));
      g_assert_nonnull (strstr (text, "bad.txt\" line 3: invalid query"));
      g_assert_nonnull (strstr (text, "unknown kind \"imgae:\""));
    } else {
      g_assert_true (g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ));
      g_assert_nonnull (strstr (text, "missing.txt"));
    }
    g_free (text);
    g_clear_error (&err);
    gst_message_unref (msg);
    gst_element_set_state (f.element, GST_STATE_NULL);
    gst_element_set_bus (f.element, NULL);
    gst_object_unref (f.element);
    gst_bus_set_flushing (f.bus, TRUE);
    gst_object_unref (f.bus);
  }
  g_free (e);
out:
  g_unlink (file);
  g_unlink (bad);
  g_rmdir (dir);
  g_free (file);
  g_free (bad);
  g_free (missing);
  g_free (dir);
}

static guint
count_warnings (GstBus * bus, const gchar * must_contain)
{
  GstMessage *msg;
  guint n = 0;

  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING))) {
    GError *err = NULL;

    gst_message_parse_warning (msg, &err, NULL);
    g_test_message ("warning: %s", err->message);
    g_assert_nonnull (strstr (err->message, must_contain));
    g_error_free (err);
    gst_message_unref (msg);
    n++;
  }
  return n;
}

/* Pushes @n buffers of 1 s from @first s on, carrying @e (or nothing when NULL). */
static void
push_seconds (Fixture * f, const gfloat * e, guint dim, guint first, guint n)
{
  guint i;

  for (i = first; i < first + n; i++)
    gst_buffer_unref (gst_harness_push_and_pull (f->h, embedding_buffer (e, dim,
                i * GST_SECOND, GST_SECOND)));
}

/* No prompts: one warning when embeddings arrive, not one per buffer. */
static void
test_no_prompts_warning (void)
{
  Fixture f;
  guint dim;
  gfloat *e;

  if (!ib_test_need_model (model_path))
    return;
  e = probe_embedding (&dim);
  fixture_setup (&f, NULL, 0);
  gst_harness_play (f.h);
  /* buffers without embeddings: nothing to say yet */
  push_seconds (&f, NULL, dim, 0, 1);
  g_assert_cmpuint (count_warnings (f.bus, ""), ==, 0);
  push_seconds (&f, e, dim, 1, 3);
  g_assert_cmpuint (count_warnings (f.bus, "has no prompts"), ==, 1);
  fixture_teardown (&f);
  g_free (e);
}

/* Buffers but no embeddings: one warning after 30 s of stream, or at EOS if sooner; none
 * when embeddings come. */
static void
test_no_embeddings_warning (void)
{
  static const gchar *prompts[] = { "a dog", "a cat" };
  Fixture f;
  guint dim, i;
  gfloat *e;

  if (!ib_test_need_model (model_path))
    return;
  e = probe_embedding (&dim);

  /* 40 s of buffers without an embedding: the warning at 30 s, once */
  fixture_setup (&f, prompts, 2);
  gst_harness_play (f.h);
  for (i = 0; i < 40; i++) {
    push_seconds (&f, NULL, dim, i + 5, 1);
    g_assert_cmpuint (count_warnings (f.bus, "in the first 30 s of the stream"), ==,
        i == 30 ? 1 : 0);
  }
  gst_harness_push_event (f.h, gst_event_new_eos ());
  g_assert_cmpuint (count_warnings (f.bus, ""), ==, 0);
  fixture_teardown (&f);

  /* a short stream without an embedding: the warning at EOS, naming the remedy */
  fixture_setup (&f, prompts, 2);
  gst_harness_play (f.h);
  push_seconds (&f, NULL, dim, 0, 1);
  g_assert_cmpuint (count_warnings (f.bus, ""), ==, 0);
  gst_harness_push_event (f.h, gst_event_new_eos ());
  g_assert_cmpuint (count_warnings (f.bus, "before the end of the stream: nothing was matched. "
          "Put an encoder upstream"), ==, 1);
  fixture_teardown (&f);

  /* with an embedding: no warning, even with many buffers without */
  fixture_setup (&f, prompts, 2);
  gst_harness_play (f.h);
  push_seconds (&f, e, dim, 0, 1);
  push_seconds (&f, NULL, dim, 1, 39);
  gst_harness_push_event (f.h, gst_event_new_eos ());
  g_assert_cmpuint (count_warnings (f.bus, ""), ==, 0);
  fixture_teardown (&f);
  g_free (e);
}

/* Without its own `model`, imagebindmatch embeds the prompts with the encoder's model (asked
 * upstream), not with the default one: the scores are the tiny model's, the property stays
 * unset (the model is said once, in the encoder). With an explicit other model, the width
 * warning names the encoder's file. */
static void
test_model_from_encoder (void)
{
  static const gchar *prompts[] = { "a dog", "the dog runs" };
  GstHarness *h;
  GstBuffer *out;
  GstElement *me;
  GstBus *bus;
  gchar *desc, *m_model;

  if (!ib_test_need_model (model_path))
    return;
  g_unsetenv ("IMAGEBIND_MODEL");
  check_text_then_match (NULL);

  /* An explicit other model (the shipped one): the width warning names the encoder's file. */
  if (g_file_test (GST_IMAGE_BIND_DEFAULT_MODEL_SOURCE, G_FILE_TEST_IS_REGULAR)) {
    GstMessage *msg;
    GError *err = NULL;
    gchar *real = realpath (model_path, NULL);

    /* prompts in the description: the harness starts the bin as it makes it */
    desc = g_strdup_printf ("imagebindtext model=\"%s\" n-threads=1 ! imagebindmatch name=m "
        "n-threads=1 model=\"%s\" prompts=\"<\\\"%s\\\", \\\"%s\\\">\"", model_path,
        GST_IMAGE_BIND_DEFAULT_MODEL_SOURCE, prompts[0], prompts[1]);
    h = gst_harness_new_parse (desc);
    g_free (desc);
    me = gst_bin_get_by_name (GST_BIN (h->element), "m");
    bus = gst_bus_new ();
    gst_element_set_bus (h->element, bus);
    gst_harness_set_src_caps_str (h, "text/x-raw, format=(string)utf8");
    gst_harness_play (h);
    out = gst_harness_push_and_pull (h, text_buffer ("a dog runs", 0));
    g_assert_null (gst_buffer_get_imagebind_match_meta (out));
    gst_buffer_unref (out);
    msg = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
    g_assert_nonnull (msg);
    gst_message_parse_warning (msg, &err, NULL);
    g_test_message ("%s", err->message);
    g_assert_nonnull (strstr (err->message, "cannot be matched"));
    m_model = g_strdup_printf ("set model=%s", real);
    g_assert_nonnull (strstr (err->message, m_model));
    g_free (m_model);
    g_error_free (err);
    gst_message_unref (msg);
    gst_object_unref (me);
    gst_element_set_bus (h->element, NULL);
    gst_harness_teardown (h);
    gst_object_unref (bus);
    free (real);
  }
}

int
main (int argc, char **argv)
{
  /* Scan the plugin in this process: the forked scanner is not instrumented and cannot load
   * the plugin of a -Db_sanitize=address build. */
  g_setenv ("GST_REGISTRY_FORK", "no", TRUE);
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);

  model_path = argc > 1 ? argv[1] : g_getenv ("IMAGEBIND_TEST_MODEL");
  if (model_path && !g_file_test (model_path, G_FILE_TEST_IS_REGULAR))
    model_path = NULL;

  g_test_add_func ("/match/meta-api", test_meta_api);
  g_test_add_func ("/match/scores", test_scores);
  g_test_add_func ("/match/top-k-custom-meta", test_top_k_and_custom_meta);
  g_test_add_func ("/match/detection", test_detection);
  g_test_add_func ("/match/prompts-while-playing", test_prompts_while_playing);
  g_test_add_func ("/match/prompts-off-streaming-thread", test_prompts_off_streaming_thread);
  g_test_add_func ("/match/prompts-change-then-stop", test_prompts_change_then_stop);
  g_test_add_func ("/match/dimension-mismatch", test_dimension_mismatch);
  g_test_add_func ("/match/text-pad", test_text_pad);
  g_test_add_func ("/match/text-pad-while-playing", test_text_pad_while_playing);
  g_test_add_func ("/match/state-cycling", test_state_cycling);
  g_test_add_func ("/match/bad-model", test_bad_model);
  g_test_add_func ("/match/nan-model", test_nan_model);
  g_test_add_func ("/match/prompt-list", test_prompt_list);
  g_test_add_func ("/match/prompt-list-launch", test_prompt_list_launch);
  g_test_add_func ("/match/prompts-file", test_prompts_file);
  g_test_add_func ("/match/no-prompts-warning", test_no_prompts_warning);
  g_test_add_func ("/match/no-embeddings-warning", test_no_embeddings_warning);
  g_test_add_func ("/match/model-from-encoder", test_model_from_encoder);
  g_test_add_func ("/text/encoder", test_text_encoder);
  g_test_add_func ("/text/then-match", test_text_then_match);
  return g_test_run ();
}
