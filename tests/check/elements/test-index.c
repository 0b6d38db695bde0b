/* Retrieval: index files, imagebindindexsink, search, and the tools.
 *
 * - the sink (GstHarness, buffers carrying embedding metas) writes every meta, and the file
 *   reads back exactly (fields, strings, vector = meta vector / its norm, bit for bit);
 *   append and truncate; a second width is refused
 * - imagebind_scores and imagebind_index_search against a brute-force computation in double
 *   (same top-k order, scores within 1e-5), modality filters, top-k ties in entry order
 * - hostile files (every truncation, bad magic / version / byte order / width / slot size,
 *   unknown record kinds, absurd string lengths and slot counts, dangling string ids) give
 *   IMAGEBIND_ERROR_FORMAT errors naming the problem, never a crash
 * - imagebind-index and imagebind-search on fixture PNGs and WAVs with the tiny model
 * - with the shipped model: test-source scenes indexed by the sink are found by their captions
 *
 * argv: imagebind-index, imagebind-search, then the tiny model (optional: those tests skip). */
#include <gst/gst.h>
#include <gst/check/gstharness.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include <imagebind.h>
#include <imagebind-index.h>
#include <imagebind-tokenizer.h>
#include <math.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "common.h"
#include "gstimagebindmeta.h"

static const char *index_tool, *search_tool, *model_path;
/* this process's own directory: other build directories run this test at the same time */
static char *temp_dir;

static char *
temp_path (const char *name)
{
  return g_build_filename (temp_dir, name, NULL);
}

/* Rewrites @path in place: thousands of files are written, and creating, renaming and
 * removing as many on a busy disk takes seconds. */
static void
write_file (const char *path, const guint8 *data, gsize len)
{
  int fd = g_open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, data, len), ==, (gssize) len);
  g_assert_cmpint (close (fd), ==, 0);
}

/* What the writer stores for @v: v / |v| with |v| summed in double. */
static void
normalised (const float *v, guint dim, float *out, float *norm)
{
  double n = 0;
  for (guint d = 0; d < dim; d++)
    n += (double) v[d] * v[d];
  n = sqrt (n);
  for (guint d = 0; d < dim; d++)
    out[d] = (float) (v[d] / n);
  *norm = (float) n;
}

static GstBuffer *
buffer_with_metas (guint n, const GstImageBindModality *modalities, float *const *vectors,
    guint dim, GstClockTime pts)
{
  GstBuffer *buf = gst_buffer_new ();

  GST_BUFFER_PTS (buf) = pts;
  for (guint i = 0; i < n; i++) {
    GstImageBindEmbeddingMeta *m = gst_buffer_add_imagebind_embedding_meta (buf, modalities[i],
        vectors[i], dim, modalities[i] == GST_IMAGE_BIND_MODALITY_VISION ? 1.0f : 20.0f,
        "tiny:model.gguf");
    m->pts = pts + i * 1000;
    m->duration = i == 0 ? GST_CLOCK_TIME_NONE : 2 * GST_SECOND;
    m->stream_time = pts + 7;
    m->running_time = pts;
  }
  return buf;
}

/* The harness starts the element: its properties are set before. */
static GstHarness *
index_harness (const char *location, gboolean append, const char *source)
{
  GstElement *sink = gst_element_factory_make ("imagebindindexsink", NULL);
  GstHarness *h;

  g_assert_nonnull (sink);
  g_object_set (sink, "location", location, "append", append, NULL);
  if (source)
    g_object_set (sink, "source", source, NULL);
  {
    /* a bus of its own, so that tests can read the element's errors */
    GstBus *bus = gst_bus_new ();
    gst_element_set_bus (sink, bus);
    gst_object_unref (bus);
  }
  h = gst_harness_new_with_element (sink, "sink", NULL);
  gst_object_unref (sink);
  gst_harness_set_src_caps_str (h, "application/x-test");
  return h;
}

static void
assert_entry (const ImageBindIndex *idx, gsize i, ImageBindModality modality, const char *source,
    const float *vector, guint dim, guint64 pts, guint64 duration, guint64 stream_time,
    float logit_scale)
{
  ImageBindIndexEntry e;
  g_autofree float *want = g_new (float, dim);
  float norm;

  g_assert_true (imagebind_index_get_entry (idx, i, &e));
  normalised (vector, dim, want, &norm);
  g_assert_cmpint (e.modality, ==, modality);
  g_assert_cmpstr (e.source, ==, source);
  g_assert_cmpstr (e.model_id, ==, "tiny:model.gguf");
  g_assert_cmpuint (e.pts, ==, pts);
  g_assert_cmpuint (e.duration, ==, duration);
  g_assert_cmpuint (e.stream_time, ==, stream_time);
  g_assert_cmpfloat (e.logit_scale, ==, logit_scale);
  g_assert_cmpfloat (e.norm, ==, norm);
  g_assert_cmpmem (e.vector, dim * sizeof (float), want, dim * sizeof (float));
}

static void
test_sink_roundtrip (void)
{
  g_autofree char *path = temp_path ("ib-test-index-sink.ibx");
  const guint dim = 8;
  float a[8], b[8], c[8], w[4] = { 1, 2, 3, 4 };
  float *ab[2] = { a, b }, *cc[1] = { c }, *ww[1] = { w };
  GstImageBindModality va[2] = { GST_IMAGE_BIND_MODALITY_VISION, GST_IMAGE_BIND_MODALITY_AUDIO };
  GstImageBindModality t[1] = { GST_IMAGE_BIND_MODALITY_TEXT };
  GstHarness *h;
  ImageBindIndex *idx;
  GError *err = NULL;
  guint64 n;

  for (guint d = 0; d < dim; d++) {
    a[d] = 0.1f * (d + 1);
    b[d] = 20.0f * sinf (d);
    c[d] = (d % 2 ? -3.0f : 5.0f) + d;
  }
  g_unlink (path);

  /* first run: source from the location tag (the harness answers no URI query) */
  h = index_harness (path, FALSE, NULL);
  gst_harness_push_event (h, gst_event_new_tag (gst_tag_list_new (GST_TAG_LOCATION,
              "file:///media/clip.webm", NULL)));
  g_assert_cmpint (gst_harness_push (h, buffer_with_metas (2, va, ab, dim, 5 * GST_SECOND)), ==,
      GST_FLOW_OK);
  g_assert_cmpint (gst_harness_push (h, gst_buffer_new ()), ==, GST_FLOW_OK);  /* no meta */
  g_assert_cmpint (gst_harness_push (h, buffer_with_metas (1, t, cc, dim, 9 * GST_SECOND)), ==,
      GST_FLOW_OK);
  g_object_get (h->element, "entries", &n, NULL);
  g_assert_cmpuint (n, ==, 3);
  g_assert_true (gst_harness_push_event (h, gst_event_new_eos ()));
  gst_harness_teardown (h);

  idx = imagebind_index_open (path, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (imagebind_index_dim (idx), ==, dim);
  g_assert_cmpuint (imagebind_index_n_entries (idx), ==, 3);
  assert_entry (idx, 0, IMAGEBIND_MODALITY_VISION, "file:///media/clip.webm", a, dim,
      5 * GST_SECOND, IMAGEBIND_INDEX_TIME_NONE, 5 * GST_SECOND + 7, 1.0f);
  assert_entry (idx, 1, IMAGEBIND_MODALITY_AUDIO, "file:///media/clip.webm", b, dim,
      5 * GST_SECOND + 1000, 2 * GST_SECOND, 5 * GST_SECOND + 7, 20.0f);
  assert_entry (idx, 2, IMAGEBIND_MODALITY_TEXT, "file:///media/clip.webm", c, dim,
      9 * GST_SECOND, IMAGEBIND_INDEX_TIME_NONE, 9 * GST_SECOND + 7, 20.0f);
  g_assert_false (imagebind_index_get_entry (idx, 3, &(ImageBindIndexEntry) { 0 }));
  imagebind_index_close (idx);

  /* append, with a source label */
  h = index_harness (path, TRUE, "my label");
  g_assert_cmpint (gst_harness_push (h, buffer_with_metas (1, t, cc, dim, 0)), ==, GST_FLOW_OK);
  gst_harness_teardown (h);
  idx = imagebind_index_open (path, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (imagebind_index_n_entries (idx), ==, 4);
  assert_entry (idx, 0, IMAGEBIND_MODALITY_VISION, "file:///media/clip.webm", a, dim,
      5 * GST_SECOND, IMAGEBIND_INDEX_TIME_NONE, 5 * GST_SECOND + 7, 1.0f);
  assert_entry (idx, 3, IMAGEBIND_MODALITY_TEXT, "my label", c, dim, 0,
      IMAGEBIND_INDEX_TIME_NONE, 7, 20.0f);
  imagebind_index_close (idx);

  /* appending embeddings of another width is refused, the file is left as it was */
  h = index_harness (path, TRUE, NULL);
  g_assert_cmpint (gst_harness_push (h, buffer_with_metas (1, t, ww, 4, 0)), ==, GST_FLOW_ERROR);
  gst_harness_teardown (h);
  idx = imagebind_index_open (path, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (imagebind_index_n_entries (idx), ==, 4);
  imagebind_index_close (idx);

  /* truncate (the default) */
  h = index_harness (path, FALSE, "x");
  g_assert_cmpint (gst_harness_push (h, buffer_with_metas (1, t, ww, 4, 0)), ==, GST_FLOW_OK);
  gst_harness_teardown (h);
  idx = imagebind_index_open (path, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (imagebind_index_n_entries (idx), ==, 1);
  g_assert_cmpuint (imagebind_index_dim (idx), ==, 4);
  imagebind_index_close (idx);
  g_unlink (path);
}

/* The error message the element posted on @h's bus (there must be one), as its text. */
static char *
harness_error_text (GstHarness *h)
{
  GstBus *bus = gst_element_get_bus (h->element);
  char *text;

  g_assert_nonnull (bus);
  text = ib_test_pop_error_text (bus);
  gst_object_unref (bus);
  return text;
}

/* Two sinks on one file, appending or truncating: the second is refused with an
 * error (RESOURCE BUSY) while the first holds the file, and the first one's entries all read
 * back. Once the first has stopped, the file can be written again. */
static void
test_sink_two_writers (void)
{
  g_autofree char *path = temp_path ("ib-test-index-two-writers.ibx");
  float a[8], *aa[1] = { a };
  GstImageBindModality t[1] = { GST_IMAGE_BIND_MODALITY_TEXT };
  ImageBindIndex *idx;
  GError *err = NULL;

  for (guint d = 0; d < 8; d++)
    a[d] = 1.0f + d;
  for (int append = 0; append <= 1; append++) {
    for (int second_append = 0; second_append <= 1; second_append++) {
      GstHarness *first, *second;
      char *text;

      g_unlink (path);
      first = index_harness (path, append, "first");
      second = index_harness (path, second_append, "second");
      for (guint i = 0; i < 3; i++)
        g_assert_cmpint (gst_harness_push (first, buffer_with_metas (1, t, aa, 8,
                    i * GST_SECOND)), ==, GST_FLOW_OK);
      /* the first flushes what it has (as at EOS): the second must not clobber it */
      g_assert_true (gst_harness_push_event (first, gst_event_new_eos ()));
      g_assert_cmpint (gst_harness_push (second, buffer_with_metas (1, t, aa, 8, 0)), ==,
          GST_FLOW_ERROR);
      text = harness_error_text (second);
      g_test_message ("second writer (append=%d after append=%d): %s", second_append, append,
          text);
      g_assert_nonnull (strstr (text, "another writer"));
      g_free (text);
      gst_harness_teardown (second);
      gst_harness_teardown (first);

      idx = imagebind_index_open (path, &err);
      g_assert_no_error (err);
      g_assert_cmpuint (imagebind_index_n_entries (idx), ==, 3);
      for (guint i = 0; i < 3; i++)
        assert_entry (idx, i, IMAGEBIND_MODALITY_TEXT, "first", a, 8, i * GST_SECOND,
            IMAGEBIND_INDEX_TIME_NONE, i * GST_SECOND + 7, 20.0f);
      imagebind_index_close (idx);

      /* the lock went with the first writer */
      second = index_harness (path, TRUE, "second");
      g_assert_cmpint (gst_harness_push (second, buffer_with_metas (1, t, aa, 8, 0)), ==,
          GST_FLOW_OK);
      gst_harness_teardown (second);
      idx = imagebind_index_open (path, &err);
      g_assert_no_error (err);
      g_assert_cmpuint (imagebind_index_n_entries (idx), ==, 4);
      imagebind_index_close (idx);
    }
  }

  /* the library's writer itself: a second open fails with IMAGEBIND_ERROR_FILE */
  {
    ImageBindIndexWriter *w1 = imagebind_index_writer_open (path, 8, TRUE, &err);
    ImageBindIndexWriter *w2;

    g_assert_no_error (err);
    w2 = imagebind_index_writer_open (path, 8, FALSE, &err);
    g_assert_null (w2);
    g_assert_error (err, G_IO_ERROR, G_IO_ERROR_BUSY);
    g_clear_error (&err);
    g_assert_true (imagebind_index_writer_close (w1, &err));
    g_assert_no_error (err);
  }
  idx = imagebind_index_open (path, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (imagebind_index_n_entries (idx), ==, 4);
  imagebind_index_close (idx);
  g_unlink (path);
}

static void
test_sink_no_location (void)
{
  /* buffers without embeddings are fine; the first embedding is an error */
  GstHarness *h = gst_harness_new ("imagebindindexsink");
  float v[2] = { 1, 0 }, *vv[1] = { v };
  GstImageBindModality m[1] = { GST_IMAGE_BIND_MODALITY_VISION };

  gst_harness_set_src_caps_str (h, "application/x-test");
  g_assert_cmpint (gst_harness_push (h, gst_buffer_new ()), ==, GST_FLOW_OK);
  g_assert_cmpint (gst_harness_push (h, buffer_with_metas (1, m, vv, 2, 0)), ==, GST_FLOW_ERROR);
  gst_harness_teardown (h);
}

typedef struct {
  gsize entry;
  double score;
} RefHit;

static int
compare_ref (gconstpointer pa, gconstpointer pb)
{
  const RefHit *a = pa, *b = pb;
  if (a->score != b->score)
    return a->score > b->score ? -1 : 1;
  return a->entry < b->entry ? -1 : a->entry > b->entry;
}

static float
rand_float (GRand *r)
{
  return (float) g_rand_double_range (r, -1, 1);
}

/* Brute force in double: (entry, cosine) sorted best first, only entries in @mask. */
static RefHit *
brute_force (const ImageBindIndex *idx, const float *query, guint mask, gsize *n_out)
{
  guint dim = imagebind_index_dim (idx);
  gsize n = imagebind_index_n_entries (idx), m = 0;
  RefHit *ref = g_new (RefHit, n);
  double qn = 0;

  for (guint d = 0; d < dim; d++)
    qn += (double) query[d] * query[d];
  qn = sqrt (qn);
  for (gsize i = 0; i < n; i++) {
    ImageBindIndexEntry e;
    double s = 0;
    imagebind_index_get_entry (idx, i, &e);
    if (mask && !((mask >> e.modality) & 1))
      continue;
    for (guint d = 0; d < dim; d++)
      s += (double) e.vector[d] * query[d];
    ref[m].entry = i;
    ref[m++].score = s / qn;
  }
  qsort (ref, m, sizeof *ref, compare_ref);
  *n_out = m;
  return ref;
}

static void
check_search (const ImageBindIndex *idx, const float *query, guint k, guint mask)
{
  gsize n_ref;
  g_autofree RefHit *ref = brute_force (idx, query, mask, &n_ref);
  g_autofree ImageBindIndexHit *hits = g_new (ImageBindIndexHit, k);
  guint n = imagebind_index_search (idx, query, k, mask, hits, 0);

  g_assert_cmpuint (n, ==, MIN (k, n_ref));
  for (guint i = 0; i < n; i++) {
    g_assert_cmpfloat_with_epsilon (hits[i].score, ref[i].score, 1e-5);
    /* the order is the brute-force order wherever the reference scores are not a near tie */
    if ((i == 0 || ref[i - 1].score - ref[i].score > 1e-5) &&
        (i + 1 >= n_ref || ref[i].score - ref[i + 1].score > 1e-5))
      g_assert_cmpuint (hits[i].entry, ==, ref[i].entry);
  }
}

static void
test_search_brute_force (void)
{
  g_autofree char *path = temp_path ("ib-test-index-search.ibx");
  const guint dim = 64, n = 3000;
  GRand *r = g_rand_new_with_seed (42);
  g_autofree float *v = g_new (float, dim), *q = g_new (float, dim);
  GError *err = NULL;
  ImageBindIndexWriter *w = imagebind_index_writer_open (path, dim, FALSE, &err);
  ImageBindIndex *idx;
  g_autofree char *long_source = g_strnfill (1000, 'x');  /* a string of 4 slots */

  g_assert_no_error (err);
  for (guint i = 0; i < n; i++) {
    g_autofree char *src = g_strdup_printf ("%s/file-%u.mp4", i % 97 == 0 ? long_source : "",
        i / 10);
    ImageBindIndexEntry e = { i % 3 == 0 ? IMAGEBIND_MODALITY_AUDIO : IMAGEBIND_MODALITY_VISION,
      src, "m:tiny", i * GST_SECOND, GST_SECOND, i * GST_SECOND, 1.0f, 0, v };
    for (guint d = 0; d < dim; d++)
      v[d] = rand_float (r) * (1 + i % 5);
    g_assert_true (imagebind_index_writer_add (w, &e, &err));
    g_assert_no_error (err);
  }
  g_assert_cmpuint (imagebind_index_writer_n_entries (w), ==, n);
  g_assert_true (imagebind_index_writer_close (w, &err));
  g_assert_no_error (err);

  idx = imagebind_index_open (path, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (imagebind_index_n_entries (idx), ==, n);
  for (guint t = 0; t < 5; t++) {
    for (guint d = 0; d < dim; d++)
      q[d] = rand_float (r) * 3;
    check_search (idx, q, 10, 0);
    check_search (idx, q, 1, 0);
    check_search (idx, q, 25, 1u << IMAGEBIND_MODALITY_AUDIO);
    check_search (idx, q, 5, 1u << IMAGEBIND_MODALITY_TEXT);   /* none */
  }
  check_search (idx, q, n + 10, 0);                            /* everything, in order */
  {
    /* an entry as the query finds itself with score 1 */
    ImageBindIndexEntry e;
    ImageBindIndexHit hit;
    imagebind_index_get_entry (idx, 1234, &e);
    g_assert_cmpuint (imagebind_index_search (idx, e.vector, 1, 0, &hit, 1), ==, 1);
    g_assert_cmpuint (hit.entry, ==, 1234);
    g_assert_cmpfloat_with_epsilon (hit.score, 1.0, 1e-5);
    g_assert_true (g_str_has_prefix (e.source, "/file-123"));
  }
  imagebind_index_close (idx);
  g_rand_free (r);
  g_unlink (path);
}

static void
test_scores_and_top_k (void)
{
  const guint dim = 37, n = 501, stride = 40;
  GRand *r = g_rand_new_with_seed (7);
  g_autofree float *rows = g_new0 (float, n * stride), *q = g_new (float, dim),
      *scores = g_new (float, n);
  float tied[6] = { 0.5f, 0.9f, NAN, 0.9f, -1.0f, 0.9f };
  ImageBindIndexHit hits[6];

  for (guint i = 0; i < n * stride; i++)
    rows[i] = rand_float (r);
  for (guint d = 0; d < dim; d++)
    q[d] = rand_float (r);
  imagebind_scores (rows, n, stride, dim, q, scores, 0);
  for (guint i = 0; i < n; i++) {
    double s = 0;
    for (guint d = 0; d < dim; d++)
      s += (double) rows[i * stride + d] * q[d];
    g_assert_cmpfloat_with_epsilon (scores[i], s, 1e-5);
  }
  /* ties in index order, NaN never selected */
  g_assert_cmpuint (imagebind_top_k (tied, 6, 6, NULL, NULL, hits), ==, 5);
  g_assert_cmpuint (hits[0].entry, ==, 1);
  g_assert_cmpuint (hits[1].entry, ==, 3);
  g_assert_cmpuint (hits[2].entry, ==, 5);
  g_assert_cmpuint (hits[3].entry, ==, 0);
  g_assert_cmpuint (hits[4].entry, ==, 4);
  g_assert_cmpuint (imagebind_top_k (tied, 6, 2, NULL, NULL, hits), ==, 2);
  g_assert_cmpuint (hits[0].entry, ==, 1);
  g_assert_cmpuint (hits[1].entry, ==, 3);
  g_assert_cmpuint (imagebind_top_k (tied, 6, 0, NULL, NULL, hits), ==, 0);
  g_rand_free (r);
}

/* ---- hostile files ---- */

/* A valid index of width 4: header, string "src" (id 0), string "m" (id 1), two entries. */
static GByteArray *
valid_index (void)
{
  g_autofree char *path = temp_path ("ib-test-index-valid.ibx");
  float v[4] = { 1, 2, 3, 4 };
  ImageBindIndexEntry e = { IMAGEBIND_MODALITY_AUDIO, "src", "m", 1, 2, 3, 20.0f, 0, v };
  GError *err = NULL;
  ImageBindIndexWriter *w = imagebind_index_writer_open (path, 4, FALSE, &err);
  gchar *data;
  gsize len;

  g_assert_no_error (err);
  g_assert_true (imagebind_index_writer_add (w, &e, &err));
  g_assert_true (imagebind_index_writer_add (w, &e, &err));
  g_assert_true (imagebind_index_writer_close (w, &err));
  g_assert_true (g_file_get_contents (path, &data, &len, &err));
  g_unlink (path);
  g_assert_cmpuint (len, ==, 64 + 4 * 80);
  return g_byte_array_new_take ((guint8 *) data, len);
}

static void
put32 (GByteArray *b, gsize off, guint32 v)
{
  memcpy (b->data + off, &v, 4);
}

/* Opens @len bytes of @data: NULL and a FORMAT error containing @expect, or (expect NULL) an
 * index. */
static ImageBindIndex *
open_bytes (const guint8 *data, gsize len, const char *expect)
{
  g_autofree char *path = temp_path ("ib-test-index-hostile.ibx");
  GError *err = NULL;
  ImageBindIndex *idx;

  write_file (path, data, len);     /* the same file each time: left for main() to remove */
  idx = imagebind_index_open (path, &err);
  if (expect) {
    g_assert_null (idx);
    g_assert_error (err, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
    if (!strstr (err->message, expect))
      g_error ("expected \"%s\" in: %s", expect, err->message);
    g_assert_nonnull (strstr (err->message, "ib-test-index-hostile.ibx"));
    g_error_free (err);
  } else {
    g_assert_no_error (err);
  }
  return idx;
}

typedef struct {
  gsize offset;
  guint32 value;
  const char *expect;
} Corruption;

static void
test_hostile (void)
{
  g_autoptr (GByteArray) good = valid_index ();
  const Corruption cases[] = {
    { 0, 0x46554747, "magic" },                     /* "GGUF" */
    { 8, 2, "version 2" },
    { 8, 0, "version 0" },
    { 12, 128, "header size 128" },
    { 16, 0, "width 0" },
    { 16, 0x80000000u, "width 2147483648" },
    { 20, 81, "slot size 81" },
    { 24, 0x04030201, "byte-order mark" },
    { 64, 7, "record kind 7" },                       /* first slot: string "src" */
    { 64 + 4, 5, "string id 5" },
    { 64 + 8, 0xffffffffu, "bytes (at most 65535)" },
    { 64 + 8, 60000, "claims 1 slots" },
    { 64 + 12, 0xffffffffu, "claims 4294967295 slots" },
    { 64 + 12, 0, "claims 0 slots" },
    { 64 + 8, 1, "not 1 bytes followed by a NUL" },   /* "s" then 'r', not NUL */
    { 64 + 8, 2 + 0, "not 2 bytes" },
    { 64 + 160 + 4, 6, "modality 6" },                 /* first entry */
    { 64 + 160 + 8, 2, "names string 2" },
    { 64 + 240 + 12, 0xffffffffu, "names string 4294967295" },
  };
  ImageBindIndex *idx;
  GError *err = NULL;

  /* the untouched file */
  idx = open_bytes (good->data, good->len, NULL);
  g_assert_cmpuint (imagebind_index_n_entries (idx), ==, 2);
  imagebind_index_close (idx);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (GByteArray) bad = g_byte_array_new ();
    g_byte_array_append (bad, good->data, good->len);
    put32 (bad, cases[i].offset, cases[i].value);
    open_bytes (bad->data, bad->len, cases[i].expect);
  }
  {
    /* string "m" (slot 1) claiming 250 bytes and the 4 slots they need: 3 are left */
    g_autoptr (GByteArray) bad = g_byte_array_new ();
    g_byte_array_append (bad, good->data, good->len);
    put32 (bad, 64 + 80 + 8, 250);
    put32 (bad, 64 + 80 + 12, 4);
    open_bytes (bad->data, bad->len, "runs past the end");
  }
  {
    /* a NUL inside a string */
    g_autoptr (GByteArray) bad = g_byte_array_new ();
    g_byte_array_append (bad, good->data, good->len);
    bad->data[64 + 16 + 1] = 0;
    open_bytes (bad->data, bad->len, "followed by a NUL");
  }

  /* every truncation: an error unless it ends on a slot boundary after whole strings */
  for (gsize len = 0; len < good->len; len++) {
    const char *expect = len < 8 ? "shorter than the 64-byte header" :
        len < 64 ? "shorter than the 64-byte header" :
        (len - 64) % 80 != 0 ? "truncated" : NULL;
    idx = open_bytes (good->data, len, expect);
    if (idx) {
      g_assert_cmpuint (imagebind_index_n_entries (idx), ==, len <= 64 + 160 ? 0 : (len - 224) / 80);
      imagebind_index_close (idx);
    }
  }

  /* another kind of file, and no file */
  {
    guint8 gguf[90] = { 'G', 'G', 'U', 'F', 3 };
    open_bytes (gguf, sizeof gguf, "magic");
  }
  idx = imagebind_index_open ("/nonexistent/index.ibx", &err);
  g_assert_null (idx);
  g_assert_error (err, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FILE);
  g_clear_error (&err);

  {
    /* appending to a hostile file or with another width is refused; bad entries are refused */
    g_autofree char *path = temp_path ("ib-test-index-append.ibx");
    float v[4] = { 1, NAN, 0, 0 }, z[4] = { 0 };
    ImageBindIndexEntry e = { IMAGEBIND_MODALITY_VISION, "", "", 0, 0, 0, 1.0f, 0, v };
    ImageBindIndexWriter *w;

    g_assert_true (g_file_set_contents (path, (const char *) good->data, 100, NULL));
    g_assert_null (imagebind_index_writer_open (path, 4, TRUE, &err));
    g_assert_error (err, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
    g_assert_nonnull (strstr (err->message, "cannot append"));
    g_clear_error (&err);
    g_assert_true (g_file_set_contents (path, (const char *) good->data, good->len, NULL));
    g_assert_null (imagebind_index_writer_open (path, 8, TRUE, &err));
    g_assert_error (err, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
    g_assert_nonnull (strstr (err->message, "width 4"));
    g_clear_error (&err);
    g_assert_null (imagebind_index_writer_open (path, 0, FALSE, &err));
    g_assert_error (err, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT);
    g_clear_error (&err);

    w = imagebind_index_writer_open (path, 4, TRUE, &err);
    g_assert_no_error (err);
    g_assert_cmpuint (imagebind_index_writer_n_entries (w), ==, 2);
    g_assert_false (imagebind_index_writer_add (w, &e, &err));      /* NaN */
    g_assert_error (err, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT);
    g_clear_error (&err);
    e.vector = z;
    g_assert_false (imagebind_index_writer_add (w, &e, &err));      /* zero norm */
    g_assert_error (err, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT);
    g_clear_error (&err);
    e.vector = v;
    v[1] = 1;
    e.modality = 6;
    g_assert_false (imagebind_index_writer_add (w, &e, &err));
    g_assert_error (err, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT);
    g_clear_error (&err);
    e.modality = IMAGEBIND_MODALITY_DEPTH;
    e.source = "src";                                             /* an existing string */
    g_assert_true (imagebind_index_writer_add (w, &e, &err));
    g_assert_true (imagebind_index_writer_close (w, &err));
    g_assert_no_error (err);
    idx = imagebind_index_open (path, &err);
    g_assert_no_error (err);
    g_assert_cmpuint (imagebind_index_n_entries (idx), ==, 3);
    {
      ImageBindIndexEntry got;
      GStatBuf st;
      imagebind_index_get_entry (idx, 2, &got);
      g_assert_cmpstr (got.source, ==, "src");
      g_assert_cmpstr (got.model_id, ==, "");
      g_assert_cmpint (got.modality, ==, IMAGEBIND_MODALITY_DEPTH);
      /* "src" reused, "" is new: one string slot and one entry slot added */
      g_assert_cmpint (g_stat (path, &st), ==, 0);
      g_assert_cmpint (st.st_size, ==, good->len + 2 * 80);
    }
    imagebind_index_close (idx);
    g_unlink (path);
  }
}

/* Random corruptions of a valid file (a fixed seed): each opens or is refused, never reads out
 * of bounds (run under AddressSanitizer); what opens can be read and searched. */
static void
test_mutations (void)
{
  g_autoptr (GByteArray) good = valid_index ();
  GRand *r = g_rand_new_with_seed (2024);
  float q[4] = { 1, 0, 0, 0 };
  guint opened = 0;

  for (guint t = 0; t < 3000; t++) {
    g_autoptr (GByteArray) bad = g_byte_array_new ();
    g_autofree char *path = temp_path ("ib-test-index-mutation.ibx");
    guint n_changes = g_rand_int_range (r, 1, 4);
    ImageBindIndex *idx;
    GError *err = NULL;

    g_byte_array_append (bad, good->data, good->len);
    for (guint c = 0; c < n_changes; c++) {
      guint off = g_rand_int_range (r, 0, bad->len);
      /* small values where the fields are, so that some corruptions stay plausible */
      bad->data[off] = g_rand_boolean (r) ? (guint8) g_rand_int_range (r, 0, 8) :
          (guint8) g_rand_int_range (r, 0, 256);
    }
    if (g_rand_int_range (r, 0, 8) == 0)
      g_byte_array_set_size (bad, g_rand_int_range (r, 0, bad->len + 1));
    write_file (path, bad->data, bad->len);
    idx = imagebind_index_open (path, &err);
    if (!idx) {
      g_assert_error (err, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
      g_error_free (err);
      continue;
    }
    opened++;
    for (gsize i = 0; i < imagebind_index_n_entries (idx); i++) {
      ImageBindIndexEntry e;
      g_assert_true (imagebind_index_get_entry (idx, i, &e));
      g_assert_cmpint (e.modality, <, IMAGEBIND_N_MODALITIES);
      g_assert_nonnull (e.source);
      g_assert_nonnull (e.model_id);
    }
    if (imagebind_index_dim (idx) == 4) {
      ImageBindIndexHit hits[4];
      g_assert_cmpuint (imagebind_index_search (idx, q, 4, 0, hits, 1), <=, 2);
    }
    imagebind_index_close (idx);
  }
  g_test_message ("%u of 3000 mutated files opened", opened);
  g_assert_cmpuint (opened, >, 0);
  g_rand_free (r);
}

/* ---- the tools ---- */

static int
run_tool (const char *tool, const char *const *args, char **out)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_auto (GStrv) envp = NULL;
  g_autofree char *registry = temp_path ("registry-tools.bin");
  g_autofree char *err_out = NULL;
  GError *error = NULL;
  int status;

  g_ptr_array_add (argv, (gpointer) tool);
  for (guint i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  /* the tools decode with the system's plugins, which the test environment hides */
  envp = g_environ_unsetenv (g_get_environ (), "GST_PLUGIN_SYSTEM_PATH_1_0");
  envp = g_environ_setenv (envp, "GST_REGISTRY_1_0", registry, TRUE);
  g_spawn_sync (NULL, (char **) argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL, out, &err_out,
      &status, &error);
  g_assert_no_error (error);
  if (err_out && *err_out)
    g_test_message ("%s stderr: %s", tool, err_out);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static void
test_tools (void)
{
  g_autofree char *png = NULL, *png2 = NULL, *wav = NULL, *out = NULL;
  g_autofree char *path = temp_path ("ib-test-index-tools.ibx");
  g_autofree char *missing = temp_path ("ib-test-index-no-such-file.png");
  g_auto (GStrv) lines = NULL;
  ImageBindIndex *idx;
  GError *err = NULL;
  ImageBindIndexEntry e;

  if (!model_path || !index_tool || !search_tool) {
    g_test_skip ("needs the tools and the tiny model (argv)");
    return;
  }
  if (!ib_test_need_conformance ())
    return;
  png = ib_test_fixture ("preprocess/image_small_100x80.png");
  png2 = ib_test_fixture ("preprocess/image_portrait_181x292.png");
  wav = ib_test_fixture ("preprocess/audio_16k_mono_3s.wav");
  {
    const char *args[] = { "-m", model_path, "-t", "1", "-o", path, png, wav, missing, png2, NULL };
    /* the missing file is reported and skipped: status 1, the others indexed */
    g_assert_cmpint (run_tool (index_tool, args, &out), ==, 1);
    g_test_message ("%s", out);
  }
  idx = imagebind_index_open (path, &err);
  g_assert_no_error (err);
  /* image: 1 vision; 3 s sound: windows [0, 2) and [2, 3) s; image: 1 vision */
  g_assert_cmpuint (imagebind_index_n_entries (idx), ==, 4);
  g_assert_true (imagebind_index_get_entry (idx, 0, &e));
  g_assert_cmpint (e.modality, ==, IMAGEBIND_MODALITY_VISION);
  g_assert_cmpstr (e.source, ==, png);
  g_assert_true (g_str_has_prefix (e.model_id, "imagebind-tiny-conformance:"));
  g_assert_true (imagebind_index_get_entry (idx, 1, &e));
  g_assert_cmpint (e.modality, ==, IMAGEBIND_MODALITY_AUDIO);
  g_assert_cmpstr (e.source, ==, wav);
  g_assert_cmpuint (e.pts, ==, 0);
  g_assert_cmpuint (e.duration, ==, 2 * GST_SECOND);
  g_assert_true (imagebind_index_get_entry (idx, 2, &e));
  g_assert_cmpint (e.modality, ==, IMAGEBIND_MODALITY_AUDIO);
  g_assert_cmpuint (e.pts, ==, 2 * GST_SECOND);
  g_assert_true (imagebind_index_get_entry (idx, 3, &e));
  g_assert_cmpstr (e.source, ==, png2);
  imagebind_index_close (idx);

  /* the image finds itself first (the tool's media path equals the encoder's: score 1) */
  {
    const char *args[] = { "-m", model_path, "-t", "1", "-x", path, "--image", png, "-k", "2",
      NULL };
    g_clear_pointer (&out, g_free);
    g_assert_cmpint (run_tool (search_tool, args, &out), ==, 0);
    g_test_message ("%s", out);
    lines = g_strsplit (out, "\n", -1);
    g_assert_cmpuint (g_strv_length (lines), ==, 4);   /* header, 2 hits, "" */
    g_assert_true (g_str_has_prefix (lines[1], "   1   1.0000  vision "));
    g_assert_true (g_str_has_suffix (lines[1], png));
    g_assert_true (g_str_has_prefix (lines[2], "   2 "));
    g_assert_true (g_str_has_suffix (lines[2], png2));
    g_clear_pointer (&lines, g_strfreev);
  }
  /* a sound, restricted to audio entries, with a negatively weighted text */
  {
    const char *args[] = { "-m", model_path, "-x", path, "--audio", wav, "--text",
      "-0.25=a photo", "-M", "audio", NULL };
    g_clear_pointer (&out, g_free);
    g_assert_cmpint (run_tool (search_tool, args, &out), ==, 0);
    g_test_message ("%s", out);
    lines = g_strsplit (out, "\n", -1);
    g_assert_cmpuint (g_strv_length (lines), ==, 4);
    g_assert_nonnull (strstr (lines[1], " audio "));
    g_assert_nonnull (strstr (lines[2], " audio "));
    g_clear_pointer (&lines, g_strfreev);
  }
  /* a weighted sum of texts: the printed scores are the cosines of the stored vectors with
   * e1/|e1| - 0.5 e2/|e2|, the embeddings computed here by the runtime directly */
  {
    const char *args[] = { "-m", model_path, "-x", path, "--text", "a dog barking", "--text",
      "-0.5=a photo of a beach", "-k", "4", NULL };
    const char *texts[2] = { "a dog barking", "a photo of a beach" };
    const double weights[2] = { 1.0, -0.5 };
    ImageBindModel *model = imagebind_model_load (model_path, &err);
    ImageBindInputGeometry geo;
    const ImageBindTokenizer *tok;
    ImageBindContext *ctx;
    guint dim;
    g_autofree gint32 *ids = NULL;
    g_autofree float *emb = NULL, *q = NULL;
    g_autofree RefHit *ref = NULL;
    gsize n_ref;

    g_assert_no_error (err);
    imagebind_model_input_geometry (model, &geo);
    dim = imagebind_model_out_dim (model);
    tok = imagebind_model_get_tokenizer (model, &err);
    g_assert_no_error (err);
    ids = g_new (gint32, 2 * geo.context_length);
    for (guint i = 0; i < 2; i++)
      g_assert_true (imagebind_tokenize (tok, texts[i], -1, ids + i * geo.context_length,
              geo.context_length, &err));
    ctx = imagebind_context_new (model, NULL);
    emb = g_new (float, 2 * dim);
    g_assert_true (imagebind_embed_text (ctx, ids, 2, emb, &err));
    g_assert_no_error (err);
    q = g_new0 (float, dim);
    for (guint i = 0; i < 2; i++) {
      double norm = 0;
      for (guint d = 0; d < dim; d++)
        norm += (double) emb[i * dim + d] * emb[i * dim + d];
      for (guint d = 0; d < dim; d++)
        q[d] += (float) (weights[i] * emb[i * dim + d] / sqrt (norm));
    }
    imagebind_context_free (ctx);
    imagebind_model_unref (model);
    idx = imagebind_index_open (path, &err);
    g_assert_no_error (err);
    ref = brute_force (idx, q, 0, &n_ref);
    g_assert_cmpuint (n_ref, ==, 4);

    g_clear_pointer (&out, g_free);
    g_assert_cmpint (run_tool (search_tool, args, &out), ==, 0);
    g_test_message ("%s", out);
    lines = g_strsplit (out, "\n", -1);
    g_assert_cmpuint (g_strv_length (lines), ==, 6);
    for (guint i = 0; i < 4; i++) {
      g_auto (GStrv) f = g_strsplit_set (g_strstrip (lines[i + 1]), " ", -1);
      g_autoptr (GPtrArray) fields = g_ptr_array_new ();
      ImageBindIndexEntry want;
      for (guint j = 0; f[j]; j++)
        if (*f[j])
          g_ptr_array_add (fields, f[j]);
      g_assert_cmpuint (fields->len, ==, 6);
      g_assert_cmpfloat_with_epsilon (g_ascii_strtod (fields->pdata[1], NULL), ref[i].score, 6e-5);
      imagebind_index_get_entry (idx, ref[i].entry, &want);
      g_assert_cmpstr (fields->pdata[2], ==, imagebind_modality_name (want.modality));
      g_assert_cmpstr (fields->pdata[5], ==, want.source);
    }
    g_clear_pointer (&lines, g_strfreev);
    imagebind_index_close (idx);
  }
  /* a folder: its media files are indexed (recursively), other files only mentioned */
  {
    g_autofree char *folder = temp_path ("media"), *sub = g_build_filename (folder, "sub", NULL);
    g_autofree char *copy = g_build_filename (sub, "small.png", NULL);
    g_autofree char *notes = g_build_filename (folder, "notes.txt", NULL);
    g_autofree char *png_data = NULL;
    gsize png_len;
    const char *args[] = { "-m", model_path, "-t", "1", "-o", path, folder, NULL };

    g_assert_cmpint (g_mkdir_with_parents (sub, 0755), ==, 0);
    g_assert_true (g_file_get_contents (png, &png_data, &png_len, NULL));
    write_file (copy, (const guint8 *) png_data, png_len);
    write_file (notes, (const guint8 *) "not media\n", 10);
    g_clear_pointer (&out, g_free);
    g_assert_cmpint (run_tool (index_tool, args, &out), ==, 0);
    g_test_message ("%s", out);
    g_assert_nonnull (strstr (out, "notes.txt: not a media file, ignored"));
    idx = imagebind_index_open (path, &err);
    g_assert_no_error (err);
    g_assert_cmpuint (imagebind_index_n_entries (idx), ==, 1);   /* truncated, then the PNG */
    g_assert_true (imagebind_index_get_entry (idx, 0, &e));
    g_assert_cmpstr (e.source, ==, copy);
    imagebind_index_close (idx);
    g_unlink (copy);
    g_unlink (notes);
    g_rmdir (sub);
    g_rmdir (folder);
  }
  /* errors: an index that is not one, a query file that is not media */
  {
    const char *args[] = { "-m", model_path, "-x", png, "--text", "a dog", NULL };
    g_clear_pointer (&out, g_free);
    g_assert_cmpint (run_tool (search_tool, args, &out), ==, 1);
  }
  {
    const char *args[] = { "-m", model_path, "-x", path, "--image", missing, NULL };
    g_clear_pointer (&out, g_free);
    g_assert_cmpint (run_tool (search_tool, args, &out), ==, 1);
  }
  g_unlink (path);
}

/* With the shipped model: test-source scenes recorded by imagebindindexsink behind
 * imagebindvision, then found by their captions through imagebind-search. */
static void
test_default_model_retrieval (void)
{
  static const struct {
    const char *source, *label, *caption;
  } scenes[] = {
    { "pattern=smpte", "bars", "colour bars" },
    { "pattern=ball foreground-color=0xffffdd00", "ball", "a bouncing ball" },
    { "pattern=checkers-4", "checkers", "a checkerboard" },
    { "pattern=zone-plate kx2=20 ky2=20", "rings", "circular rings" },
  };
  g_autofree char *path = temp_path ("ib-test-index-default.ibx");
  ImageBindIndex *idx;
  GError *err = NULL;

  if (!search_tool || !g_file_test (GST_IMAGE_BIND_DEFAULT_MODEL_SOURCE, G_FILE_TEST_EXISTS) ||
      !gst_registry_check_feature_version (gst_registry_get (), "videotestsrc", 1, 0, 0)) {
    g_test_skip ("needs imagebind-search, the shipped model and videotestsrc");
    return;
  }
  for (guint i = 0; i < G_N_ELEMENTS (scenes); i++) {
    g_autofree char *desc = g_strdup_printf ("videotestsrc num-buffers=2 %s ! video/x-raw,"
        "width=320,height=240,framerate=10/1 ! videoconvert ! imagebindvision sync=true "
        "model=\"%s\" ! imagebindindexsink location=\"%s\" source=%s append=%s",
        scenes[i].source, GST_IMAGE_BIND_DEFAULT_MODEL_SOURCE, path, scenes[i].label,
        i > 0 ? "true" : "false");

    ib_test_run_launch (desc, NULL, NULL);
  }
  idx = imagebind_index_open (path, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (imagebind_index_n_entries (idx), ==, 2 * G_N_ELEMENTS (scenes));
  imagebind_index_close (idx);

  for (guint i = 0; i < G_N_ELEMENTS (scenes); i++) {
    const char *args[] = { "-m", GST_IMAGE_BIND_DEFAULT_MODEL_SOURCE, "-t", "1", "-x", path,
      "--text", scenes[i].caption, "-k", "2", NULL };
    g_autofree char *out = NULL;
    g_auto (GStrv) lines = NULL;

    g_assert_cmpint (run_tool (search_tool, args, &out), ==, 0);
    g_test_message ("%s", out);
    lines = g_strsplit (out, "\n", -1);
    g_assert_cmpuint (g_strv_length (lines), ==, 4);
    /* both frames of the scene, before any other scene's */
    g_assert_true (g_str_has_suffix (lines[1], scenes[i].label));
    g_assert_true (g_str_has_suffix (lines[2], scenes[i].label));
  }
  g_unlink (path);
}

int
main (int argc, char **argv)
{
  int ret;

  /* the test sources are GStreamer's own plugins */
  ib_test_gst_init (&argc, &argv, "registry-index.bin", IB_TEST_GST_PLUGINS_DIR);
  g_test_init (&argc, &argv, NULL);
  gst_image_bind_embedding_meta_api_get_type ();
  index_tool = argc > 1 ? argv[1] : NULL;
  search_tool = argc > 2 ? argv[2] : NULL;
  model_path = argc > 3 ? argv[3] : g_getenv ("IMAGEBIND_TEST_MODEL");

  g_test_add_func ("/index/sink-roundtrip", test_sink_roundtrip);
  g_test_add_func ("/index/sink-no-location", test_sink_no_location);
  g_test_add_func ("/index/sink-two-writers", test_sink_two_writers);
  g_test_add_func ("/index/scores-top-k", test_scores_and_top_k);
  g_test_add_func ("/index/search-brute-force", test_search_brute_force);
  g_test_add_func ("/index/hostile", test_hostile);
  g_test_add_func ("/index/mutations", test_mutations);
  g_test_add_func ("/index/tools", test_tools);
  g_test_add_func ("/index/default-model-retrieval", test_default_model_retrieval);
  temp_dir = g_dir_make_tmp ("ib-test-index-XXXXXX", NULL);
  g_assert_nonnull (temp_dir);
  ret = g_test_run ();
  {
    /* what a failed test left behind */
    GDir *d = g_dir_open (temp_dir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name (d))) {
      g_autofree char *p = temp_path (name);
      g_unlink (p);
    }
    if (d)
      g_dir_close (d);
    g_rmdir (temp_dir);
  }
  g_free (temp_dir);
  return ret;
}
