/* imagebindav: alignment of video and audio embeddings by running time (different buffer
 * rates, overlapping windows, a late and an absent audio stream), the av-score and the fused
 * scores against values computed here from the vectors and the runtime's prompt embeddings,
 * the audio-triggered window on synthetic embeddings; and, with the shipped default model, a
 * generated clip whose ticking starts at a known time.
 *
 * Synthetic embeddings ride on buffers as the encoders put them: a video embedding on its
 * frame, an audio window's embedding on the audio buffer that completes it. The tiny model
 * (argv[1] or $IMAGEBIND_TEST_MODEL) embeds the prompts; tests that need it skip without it. */
#include <gst/gst.h>
#include <gst/check/gstharness.h>
#include <imagebind.h>
#include <imagebind-tokenizer.h>
#include <math.h>
#include <string.h>

#include "common.h"
#include "gstimagebindmediatensor.h"
#include "gstimagebindmeta.h"

static const gchar *model_path;
static const gchar *plugins_dir;

#define TOL 1e-5
#define MS GST_MSECOND

/* ---- vectors ---- */

static gfloat *
random_vector (GRand * rand, guint dim, gdouble scale)
{
  gfloat *v = g_new (gfloat, dim);

  for (guint i = 0; i < dim; i++)
    v[i] = (gfloat) (g_rand_double_range (rand, -1.0, 1.0) * scale);
  return v;
}

static gdouble
norm (const gfloat * v, guint dim)
{
  gdouble s = 0;

  for (guint i = 0; i < dim; i++)
    s += (gdouble) v[i] * v[i];
  return sqrt (s);
}

static gdouble
cosine (const gfloat * a, const gfloat * b, guint dim)
{
  gdouble d = 0;

  for (guint i = 0; i < dim; i++)
    d += (gdouble) a[i] * b[i];
  return d / (norm (a, dim) * norm (b, dim));
}

/* The runtime's audio embedding of the sound file @path (dim floats), computed directly. */
static gfloat *
runtime_sound_embedding (const gchar * path, guint dim)
{
  GError *err = NULL;
  ImageBindModel *model;
  ImageBindContext *ctx = ib_test_open_model (model_path, &model);
  GstImageBindMediaOptions options = { IMAGEBIND_DEPTH_DISPARITY };
  gfloat *out = g_new (gfloat, dim);

  g_assert_cmpuint (imagebind_model_out_dim (model), ==, dim);
  g_assert_true (gst_image_bind_media_embed (ctx, model, IMAGEBIND_MODALITY_AUDIO, &options, path,
          out, &err));
  g_assert_no_error (err);
  imagebind_context_free (ctx);
  imagebind_model_unref (model);
  return out;
}

/* ---- streams ---- */

/* One buffer to push: its span and, optionally, an embedding with its own span. */
typedef struct {
  GstClockTime pts, duration;
  const gfloat *vec;            /* NULL: no embedding */
  GstClockTime emb_pts, emb_duration;
} Item;

typedef struct {
  GstHarness *h;
  GArray *items;                /* Item */
  GstImageBindModality modality;
  gfloat scale;
  guint dim;
} Stream;

static gpointer
push_stream (gpointer data)
{
  Stream *s = data;

  for (guint i = 0; i < s->items->len; i++) {
    const Item *it = &g_array_index (s->items, Item, i);
    GstBuffer *buf = gst_buffer_new_allocate (NULL, 16, NULL);

    GST_BUFFER_PTS (buf) = it->pts;
    GST_BUFFER_DURATION (buf) = it->duration;
    if (it->vec) {
      gfloat *scaled = g_new (gfloat, s->dim);
      GstImageBindEmbeddingMeta *m;

      for (guint k = 0; k < s->dim; k++)
        scaled[k] = it->vec[k] * s->scale;
      m = gst_buffer_add_imagebind_embedding_meta (buf, s->modality, scaled, s->dim, s->scale,
          "test");
      /* the segments start at 0: running time and stream time are the timestamps */
      m->pts = m->running_time = m->stream_time = it->emb_pts;
      m->duration = it->emb_duration;
      g_free (scaled);
    }
    g_assert_cmpint (gst_harness_push (s->h, buf), ==, GST_FLOW_OK);
  }
  g_assert_true (gst_harness_push_event (s->h, gst_event_new_eos ()));
  return NULL;
}

typedef struct {
  GstElement *element;
  GstHarness *hv, *ha;
  GstBus *bus;
  GList *posted;                /* messages not asked for yet */
} Fixture;

static void
fixture_setup (Fixture * f, const gchar * const *prompts, guint n, const gchar * first_prop,
    ...)
{
  va_list args;

  f->element = gst_element_factory_make ("imagebindav", NULL);
  g_assert_nonnull (f->element);
  if (n > 0) {
    ib_test_set_prompts (f->element, prompts, n);
    g_object_set (f->element, "model", model_path, "n-threads", 1, NULL);
  }
  va_start (args, first_prop);
  if (first_prop)
    g_object_set_valist (G_OBJECT (f->element), first_prop, args);
  va_end (args);

  f->posted = NULL;
  f->bus = gst_bus_new ();
  gst_element_set_bus (f->element, f->bus);
  f->hv = gst_harness_new_with_element (f->element, "video", "src");
  f->ha = gst_harness_new_with_element (f->element, "audio", NULL);
  /* not live: the aggregator waits for both inputs, so the results do not depend on timing */
  gst_harness_set_live (f->hv, FALSE);
  gst_harness_set_live (f->ha, FALSE);
  gst_harness_set_src_caps_str (f->hv, "video/x-raw,format=RGB,width=4,height=4,"
      "framerate=10/1");
  gst_harness_set_src_caps_str (f->ha, "audio/x-raw,format=F32LE,rate=16000,channels=1,"
      "layout=interleaved");
}

/* Pushes both streams (each from its own thread: a non-live aggregator blocks a stream that is
 * ahead) and waits for EOS on the output. */
static void
run (Fixture * f, Stream * video, Stream * audio)
{
  GThread *tv, *ta;
  GstEvent *ev;

  video->h = f->hv;
  audio->h = f->ha;
  tv = g_thread_new ("video", push_stream, video);
  ta = g_thread_new ("audio", push_stream, audio);
  g_thread_join (tv);
  g_thread_join (ta);
  while ((ev = gst_harness_pull_event (f->hv))) {
    gboolean eos = GST_EVENT_TYPE (ev) == GST_EVENT_EOS;
    gst_event_unref (ev);
    if (eos)
      break;
  }
}

static void
fixture_teardown (Fixture * f)
{
  gst_harness_teardown (f->ha);
  gst_harness_teardown (f->hv);
  g_list_free_full (f->posted, (GDestroyNotify) gst_message_unref);
  gst_bus_set_flushing (f->bus, TRUE);
  gst_object_unref (f->bus);
  gst_object_unref (f->element);
}

/* The element messages named @name posted so far (a list of GstMessage, to unref); messages
 * of other names stay for later calls. */
static GList *
messages (Fixture * f, const gchar * name)
{
  GList *list = NULL;
  GstMessage *msg;

  while ((msg = gst_bus_pop_filtered (f->bus, GST_MESSAGE_ELEMENT | GST_MESSAGE_ERROR
              | GST_MESSAGE_WARNING))) {
    g_assert_cmpint (GST_MESSAGE_TYPE (msg), ==, GST_MESSAGE_ELEMENT);
    f->posted = g_list_append (f->posted, msg);
  }
  for (GList * l = f->posted, *next; l; l = next) {
    next = l->next;
    if (gst_message_has_name (l->data, name)) {
      list = g_list_append (list, l->data);
      f->posted = g_list_delete_link (f->posted, l);
    }
  }
  return list;
}

static Stream
stream_new (GstImageBindModality modality, gfloat scale, guint dim)
{
  Stream s = { NULL, g_array_new (FALSE, TRUE, sizeof (Item)), modality, scale, dim };
  return s;
}

/* Video: @n frames of 100 ms from @start, each with its embedding vecs[k] (NULL: none). */
static void
add_video (Stream * s, GstClockTime start, guint n, gfloat ** vecs)
{
  for (guint k = 0; k < n; k++) {
    GstClockTime t = start + k * 100 * MS;
    Item it = { t, 100 * MS, vecs ? vecs[k] : NULL, t, 100 * MS };
    g_array_append_val (s->items, it);
  }
}

/* Audio: buffers of @buf_dur from @start to @end; windows of 2 s every @hop from @start, window
 * w's embedding vecs[w] on the buffer that ends with it (as imagebindaudio does). Returns the
 * number of windows. */
static guint
add_audio (Stream * s, GstClockTime start, GstClockTime end, GstClockTime buf_dur,
    GstClockTime hop, gfloat ** vecs)
{
  guint w = 0;

  for (GstClockTime t = start; t + buf_dur <= end; t += buf_dur) {
    Item it = { t, buf_dur, NULL, 0, 0 };
    GstClockTime wstart = start + w * hop;

    if (wstart + 2 * GST_SECOND <= t + buf_dur) {
      it.vec = vecs[w];
      it.emb_pts = wstart;
      it.emb_duration = 2 * GST_SECOND;
      w++;
    }
    g_array_append_val (s->items, it);
  }
  return w;
}

/* The av-score the element should give the frame at @t: cosine with the audio window that
 * contains it, the one whose middle is nearest when several do; NAN when none. */
static gdouble
expected_av (const gfloat * v, GstClockTime t, GstClockTime astart, GstClockTime hop,
    guint n_windows, gfloat ** avecs, guint dim)
{
  gint best = -1;
  GstClockTimeDiff best_dist = G_MAXINT64;

  for (guint w = 0; w < n_windows; w++) {
    GstClockTime ws = astart + w * hop;
    GstClockTimeDiff dist = ABS ((GstClockTimeDiff) (ws + GST_SECOND) - (GstClockTimeDiff) t);
    if (t >= ws && t < ws + 2 * GST_SECOND && dist < best_dist) {
      best = w;
      best_dist = dist;
    }
  }
  return best < 0 ? NAN : cosine (v, avecs[best], dim);
}

/* ---- alignment ---- */

typedef struct {
  GstClockTime audio_start, audio_end, audio_buf, hop;
} AlignCase;

static void
check_alignment (const AlignCase * c)
{
  const guint dim = 16, n_frames = 60;
  GRand *rand = g_rand_new_with_seed (7);
  gfloat *vvecs[60], *avecs[64];
  Stream video = stream_new (GST_IMAGE_BIND_MODALITY_VISION, 1.0f, dim);
  Stream audio = stream_new (GST_IMAGE_BIND_MODALITY_AUDIO, 20.0f, dim);
  Fixture f;
  guint n_windows = 0, n_expected = 0;
  GList *msgs, *l;

  for (guint k = 0; k < n_frames; k++)
    vvecs[k] = random_vector (rand, dim, 1.0);
  for (guint w = 0; w < G_N_ELEMENTS (avecs); w++)
    avecs[w] = random_vector (rand, dim, 1.0);
  add_video (&video, 0, n_frames, vvecs);
  if (GST_CLOCK_TIME_IS_VALID (c->audio_start))
    n_windows = add_audio (&audio, c->audio_start, c->audio_end, c->audio_buf, c->hop, avecs);

  fixture_setup (&f, NULL, 0, NULL);
  run (&f, &video, &audio);

  /* every frame comes out, in order, untouched, with the meta exactly when it has a partner */
  g_assert_cmpuint (gst_harness_buffers_in_queue (f.hv), ==, n_frames);
  for (guint k = 0; k < n_frames; k++) {
    GstBuffer *buf = gst_harness_pull (f.hv);
    GstClockTime t = k * 100 * MS;
    gdouble want = expected_av (vvecs[k], t, c->audio_start, c->hop, n_windows, avecs, dim);
    GstCustomMeta *cm = gst_buffer_get_custom_meta (buf, "GstImageBindAVCustomMeta");

    g_assert_cmpuint (GST_BUFFER_PTS (buf), ==, t);
    g_assert_nonnull (gst_buffer_get_imagebind_embedding_meta (buf));
    if (isnan (want)) {
      g_assert_null (cm);
    } else {
      gdouble got;
      g_assert_nonnull (cm);
      g_assert_true (gst_structure_get_double (gst_custom_meta_get_structure (cm), "av-score",
              &got));
      g_assert_cmpfloat_with_epsilon (got, want, TOL);
      n_expected++;
    }
    gst_buffer_unref (buf);
  }

  /* one imagebind-av message per frame with a partner, with the same score and the window */
  msgs = messages (&f, "imagebind-av");
  g_assert_cmpuint (g_list_length (msgs), ==, n_expected);
  for (l = msgs; l; l = l->next) {
    const GstStructure *s = gst_message_get_structure (l->data);
    guint64 ts, rt, art, adur;
    gdouble got;

    g_assert_true (gst_structure_get (s, "timestamp", G_TYPE_UINT64, &ts, "running-time",
            G_TYPE_UINT64, &rt, "audio-running-time", G_TYPE_UINT64, &art, "audio-duration",
            G_TYPE_UINT64, &adur, "av-score", G_TYPE_DOUBLE, &got, NULL));
    g_assert_cmpuint (ts, ==, rt);
    g_assert_cmpuint (adur, ==, 2 * GST_SECOND);
    g_assert_cmpuint (art, <=, ts);
    g_assert_cmpuint (ts, <, art + adur);
    g_assert_cmpfloat_with_epsilon (got, expected_av (vvecs[ts / (100 * MS)], ts,
            c->audio_start, c->hop, n_windows, avecs, dim), TOL);
  }
  g_list_free_full (msgs, (GDestroyNotify) gst_message_unref);
  g_test_message ("%u of %u frames had an audio partner", n_expected, n_frames);

  fixture_teardown (&f);
  g_array_unref (video.items);
  g_array_unref (audio.items);
  for (guint k = 0; k < n_frames; k++)
    g_free (vvecs[k]);
  for (guint w = 0; w < G_N_ELEMENTS (avecs); w++)
    g_free (avecs[w]);
  g_rand_free (rand);
}

/* Video at 10 fps, audio in buffers of 62.5 ms (1000 samples at 16 kHz), windows of 2 s. */
static void
test_alignment_rates (void)
{
  AlignCase c = { 0, 6 * GST_SECOND, 62500 * GST_USECOND, 2 * GST_SECOND };
  check_alignment (&c);
}

/* Windows overlapping (hop 1 s): the one whose middle is nearest the frame. */
static void
test_alignment_overlap (void)
{
  AlignCase c = { 0, 6 * GST_SECOND, 250 * MS, GST_SECOND };
  check_alignment (&c);
}

/* The audio starts late (1.5 s) and ends early (5.5 s): frames outside have no partner. */
static void
test_alignment_late_audio (void)
{
  AlignCase c = { 1500 * MS, 5500 * MS, 500 * MS, 2 * GST_SECOND };
  check_alignment (&c);
}

/* No audio at all (only EOS): every frame goes through without a result. */
static void
test_alignment_absent_audio (void)
{
  AlignCase c = { GST_CLOCK_TIME_NONE, 0, 0, 0 };
  check_alignment (&c);
}

/* Live, and the audio is late: nothing arrives on the audio pad until the video is 4 s in.
 * GstAggregator's timeout (on a test clock) lets the video go on once it is one audio window
 * (2 s) ahead of a frame: at least 20 of the 40 frames come out before any audio, without an
 * audio partner; all of them in order by EOS. */
static gpointer
push_eos_later (gpointer data)
{
  GstHarness *ha = data;
  /* refused when the element already ended: a live video that ended need not wait for audio */
  gst_harness_push_event (ha, gst_event_new_eos ());
  return NULL;
}

static void
test_live_late_audio (void)
{
  const guint dim = 16, n_frames = 40;
  GRand *rand = g_rand_new_with_seed (5);
  gfloat *vvecs[40];
  Stream video = stream_new (GST_IMAGE_BIND_MODALITY_VISION, 1.0f, dim);
  Fixture f;
  GThread *tv, *ta;
  GstEvent *ev;
  guint before;

  for (guint k = 0; k < n_frames; k++)
    vvecs[k] = random_vector (rand, dim, 1.0);
  add_video (&video, 0, n_frames, vvecs);
  fixture_setup (&f, NULL, 0, NULL);
  gst_harness_set_live (f.hv, TRUE);
  gst_harness_set_live (f.ha, TRUE);
  gst_harness_use_testclock (f.hv);
  video.h = f.hv;
  tv = g_thread_new ("video", push_stream, &video);
  /* the aggregator waits on the clock for the audio: let the time pass */
  while (gst_harness_buffers_received (f.hv) < n_frames / 2)
    g_assert_true (gst_harness_crank_single_clock_wait (f.hv));
  before = gst_harness_buffers_received (f.hv);
  g_test_message ("%u frames out before any audio", before);
  ta = g_thread_new ("audio", push_eos_later, f.ha);
  g_thread_join (ta);
  g_thread_join (tv);
  while ((ev = gst_harness_pull_event (f.hv))) {
    gboolean eos = GST_EVENT_TYPE (ev) == GST_EVENT_EOS;
    gst_event_unref (ev);
    if (eos)
      break;
  }
  g_assert_cmpuint (before, >=, n_frames / 2);
  g_assert_cmpuint (gst_harness_buffers_in_queue (f.hv), ==, n_frames);
  for (guint k = 0; k < n_frames; k++) {
    GstBuffer *buf = gst_harness_pull (f.hv);
    g_assert_cmpuint (GST_BUFFER_PTS (buf), ==, k * 100 * MS);
    g_assert_null (gst_buffer_get_custom_meta (buf, "GstImageBindAVCustomMeta"));
    gst_buffer_unref (buf);
  }
  g_assert_null (messages (&f, "imagebind-av"));

  fixture_teardown (&f);
  g_array_unref (video.items);
  for (guint k = 0; k < n_frames; k++)
    g_free (vvecs[k]);
  g_rand_free (rand);
}

/* ---- fused scores ---- */

static void
test_fused_scores (void)
{
  static const gchar *prompts[] = { "a dog", "a cat", "a car horn" };
  const guint n = G_N_ELEMENTS (prompts), n_frames = 30;
  GRand *rand;
  gfloat *vvecs[30], *avecs[2], *t;
  guint dim, n_fused = 0;
  Stream video, audio;
  Fixture f;
  GList *msgs, *l;

  if (!ib_test_need_model (model_path))
    return;
  rand = g_rand_new_with_seed (11);
  t = ib_test_text_embeddings (model_path, prompts, n, &dim);
  video = stream_new (GST_IMAGE_BIND_MODALITY_VISION, 1.0f, dim);
  audio = stream_new (GST_IMAGE_BIND_MODALITY_AUDIO, 20.0f, dim);
  for (guint k = 0; k < n_frames; k++)
    vvecs[k] = random_vector (rand, dim, 0.3);
  for (guint w = 0; w < 2; w++)
    avecs[w] = random_vector (rand, dim, 2.0);
  add_video (&video, 0, n_frames, vvecs);
  add_audio (&audio, 0, 4 * GST_SECOND, 62500 * GST_USECOND, 2 * GST_SECOND, avecs);

  fixture_setup (&f, prompts, n, "threshold", 1.0, NULL);
  run (&f, &video, &audio);
  g_assert_cmpuint (gst_harness_buffers_in_queue (f.hv), ==, n_frames);

  msgs = messages (&f, "imagebind-av-fused");
  for (l = msgs; l; l = l->next) {
    const GstStructure *s = gst_message_get_structure (l->data);
    const GValue *labels = gst_structure_get_value (s, "labels");
    const GValue *indices = gst_structure_get_value (s, "indices");
    const GValue *scores = gst_structure_get_value (s, "scores");
    const GValue *probs = gst_structure_get_value (s, "probabilities");
    gfloat *v, *a, *fused = g_new (gfloat, dim);
    gdouble fn, want_cos[3], want_prob[3], mx = -1e300, sum = 0, top_p;
    guint64 ts;
    guint top;

    g_assert_true (gst_structure_get_uint64 (s, "timestamp", &ts));
    v = vvecs[ts / (100 * MS)];
    a = avecs[ts / (2 * GST_SECOND)];
    /* the paper's fusion: sum of the normalised embeddings, normalised */
    for (guint i = 0; i < dim; i++)
      fused[i] = (gfloat) (v[i] / norm (v, dim) + a[i] / norm (a, dim));
    fn = norm (fused, dim);
    for (guint j = 0; j < n; j++) {
      gdouble logit = 0;
      for (guint i = 0; i < dim; i++)
        logit += fused[i] / fn * t[j * dim + i];
      want_cos[j] = logit / norm (t + j * dim, dim);
      want_prob[j] = logit;
      mx = MAX (mx, logit);
    }
    for (guint j = 0; j < n; j++)
      sum += (want_prob[j] = exp (want_prob[j] - mx));
    for (guint j = 0; j < n; j++)
      want_prob[j] /= sum;

    g_assert_cmpuint (gst_value_array_get_size (labels), ==, n);
    for (guint r = 0; r < n; r++) {
      guint j = g_value_get_uint (gst_value_array_get_value (indices, r));
      g_assert_cmpstr (g_value_get_string (gst_value_array_get_value (labels, r)), ==,
          prompts[j]);
      g_assert_cmpfloat_with_epsilon (g_value_get_double (gst_value_array_get_value (scores, r)),
          want_cos[j], TOL);
      g_assert_cmpfloat_with_epsilon (g_value_get_double (gst_value_array_get_value (probs, r)),
          want_prob[j], TOL);
      if (r > 0)
        g_assert_cmpfloat (g_value_get_double (gst_value_array_get_value (probs, r)), <=,
            g_value_get_double (gst_value_array_get_value (probs, r - 1)));
    }
    g_assert_true (gst_structure_get (s, "top-index", G_TYPE_UINT, &top, "top-probability",
            G_TYPE_DOUBLE, &top_p, NULL));
    for (guint j = 0; j < n; j++)
      g_assert_cmpfloat (want_prob[top], >=, want_prob[j]);
    g_assert_cmpfloat_with_epsilon (top_p, want_prob[top], TOL);
    g_free (fused);
    n_fused++;
  }
  g_assert_cmpuint (n_fused, ==, n_frames);
  g_list_free_full (msgs, (GDestroyNotify) gst_message_unref);

  fixture_teardown (&f);
  g_array_unref (video.items);
  g_array_unref (audio.items);
  for (guint k = 0; k < n_frames; k++)
    g_free (vvecs[k]);
  g_free (avecs[0]);
  g_free (avecs[1]);
  g_free (t);
  g_rand_free (rand);
}

/* ---- audio-triggered window ---- */

static gint
compare_desc (gconstpointer a, gconstpointer b)
{
  gdouble x = *(const gdouble *) a, y = *(const gdouble *) b;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* The audio window [4 s, 6 s) sounds like prompt 0 (its embedding is the prompt's), the others
 * like nothing (the opposite of both prompts): a window [2 s, 8 s] opens, and the frames in it
 * are scored against prompt 0; frame 3.3 s shows it exactly (score 1), before the sound was
 * even detected. */
static void
check_event_window (const gchar * sound)
{
  const gchar *texts[] = { "ticking", "a dog" };
  const gchar *prompts[2] = { "ticking", "a dog" };
  const gchar *label = "ticking";
  g_autofree gchar *ref_prompt = NULL;
  const guint n_frames = 100, n_best = 4;
  GRand *rand = g_rand_new_with_seed (3);
  gfloat *vvecs[100], *avecs[5], *t, *quiet;
  gdouble scores[100], cos01;
  guint dim, n_in = 0, n_events = 0;
  Stream video, audio;
  Fixture f;
  GList *msgs, *l;

  t = ib_test_text_embeddings (model_path, texts, 2, &dim);
  if (sound) {
    /* prompt 0 is the reference sound: its direction is the runtime's embedding of the file */
    gfloat *ref = runtime_sound_embedding (sound, dim);
    memcpy (t, ref, dim * sizeof (gfloat));
    g_free (ref);
    ref_prompt = g_strdup_printf ("tick sound = audio:%s", sound);
    prompts[0] = ref_prompt;
    label = "tick sound";
  }
  cos01 = cosine (t, t + dim, dim);
  video = stream_new (GST_IMAGE_BIND_MODALITY_VISION, 1.0f, dim);
  audio = stream_new (GST_IMAGE_BIND_MODALITY_AUDIO, 20.0f, dim);
  quiet = g_new (gfloat, dim);
  for (guint i = 0; i < dim; i++)
    quiet[i] = (gfloat) -(t[i] / norm (t, dim) + t[dim + i] / norm (t + dim, dim));
  for (guint w = 0; w < 5; w++)
    avecs[w] = w == 2 ? t : quiet;
  for (guint k = 0; k < n_frames; k++) {
    vvecs[k] = k == 33 ? g_memdup2 (t, dim * sizeof (gfloat)) : random_vector (rand, dim, 1.0);
    if (k >= 20 && k <= 80) {   /* in [2 s, 8 s] */
      scores[n_in++] = cosine (vvecs[k], t, dim);
    }
  }
  qsort (scores, n_in, sizeof (gdouble), compare_desc);
  add_video (&video, 0, n_frames, vvecs);
  add_audio (&audio, 0, 10 * GST_SECOND, 100 * MS, 2 * GST_SECOND, avecs);

  fixture_setup (&f, prompts, 2, "threshold", 0.9, "n-best", n_best, "post-messages", FALSE,
      NULL);
  run (&f, &video, &audio);
  g_assert_cmpuint (gst_harness_buffers_in_queue (f.hv), ==, n_frames);

  g_assert_null (messages (&f, "imagebind-av"));
  msgs = messages (&f, "imagebind-av-event");
  for (l = msgs; l; l = l->next) {
    const GstStructure *s = gst_message_get_structure (l->data);
    const GValue *ts = gst_structure_get_value (s, "frame-timestamps");
    const GValue *fs = gst_structure_get_value (s, "frame-scores");
    guint64 art, wstart, wend, best_ts;
    guint index, nf;
    gdouble best;

    g_assert_true (gst_structure_get (s, "index", G_TYPE_UINT, &index, "audio-running-time",
            G_TYPE_UINT64, &art, "window-start", G_TYPE_UINT64, &wstart, "window-end",
            G_TYPE_UINT64, &wend, "n-frames", G_TYPE_UINT, &nf, "best-timestamp",
            G_TYPE_UINT64, &best_ts, "best-score", G_TYPE_DOUBLE, &best, NULL));
    n_events++;
    if (index == 1) {
      /* only if the two prompts' embeddings are that close */
      g_assert_cmpfloat (cos01, >, 0.9);
      continue;
    }
    g_assert_cmpstr (gst_structure_get_string (s, "label"), ==, label);
    g_assert_cmpuint (art, ==, 4 * GST_SECOND);
    g_assert_cmpuint (wstart, ==, 2 * GST_SECOND);
    g_assert_cmpuint (wend, ==, 8 * GST_SECOND);
    g_assert_cmpuint (nf, ==, n_in);
    g_assert_cmpuint (best_ts, ==, 3300 * MS);
    g_assert_cmpfloat_with_epsilon (best, 1.0, TOL);
    g_assert_cmpuint (gst_value_array_get_size (ts), ==, n_best);
    g_assert_cmpuint (gst_value_array_get_size (fs), ==, n_best);
    for (guint r = 0; r < n_best; r++) {
      guint64 frame_ts = g_value_get_uint64 (gst_value_array_get_value (ts, r));
      gdouble got = g_value_get_double (gst_value_array_get_value (fs, r));
      g_assert_cmpfloat_with_epsilon (got, scores[r], TOL);
      g_assert_cmpfloat_with_epsilon (got, cosine (vvecs[frame_ts / (100 * MS)], t, dim), TOL);
    }
  }
  g_assert_cmpuint (n_events, ==, cos01 > 0.9 ? 2 : 1);
  g_list_free_full (msgs, (GDestroyNotify) gst_message_unref);

  fixture_teardown (&f);
  g_array_unref (video.items);
  g_array_unref (audio.items);
  for (guint k = 0; k < n_frames; k++)
    g_free (vvecs[k]);
  g_free (quiet);
  g_free (t);
  g_rand_free (rand);
}

static void
test_event_window (void)
{
  if (!ib_test_need_model (model_path))
    return;
  check_event_window (NULL);
}

/* The same with a reference sound as the prompt (`label = audio:file.wav`, imagebindmatch's
 * query grammar): the audio that sounds like the file opens the window, and the frames are
 * scored against the sound's embedding (cross-modal). */
static void
test_event_window_reference_sound (void)
{
  g_autofree gchar *sound = NULL;

  if (!ib_test_need_model (model_path) || !ib_test_need_conformance ())
    return;
  sound = ib_test_fixture ("preprocess/audio_16k_mono_3s.wav");
  check_event_window (sound);
}

/* Unusable prompts fail READY->PAUSED with an error that names the problem. */
static void
test_bad_prompts (void)
{
  static const struct {
    const gchar *prompt, *expected;
  } cases[] = {
    { "x = audio:/nonexistent/bark.wav", "/nonexistent/bark.wav" },
    { "x = 2 * text:", "prompts" },
  };

  if (!ib_test_need_model (model_path))
    return;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    GstElement *e = gst_element_factory_make ("imagebindav", NULL);
    GstBus *bus = gst_bus_new ();
    gchar *text;

    ib_test_set_prompts (e, &cases[i].prompt, 1);
    g_object_set (e, "model", model_path, "n-threads", 1, NULL);
    gst_element_set_bus (e, bus);
    g_assert_cmpint (gst_element_set_state (e, GST_STATE_PAUSED), ==, GST_STATE_CHANGE_FAILURE);
    text = ib_test_pop_error_text (bus);
    g_test_message ("%s: %s", cases[i].prompt, text);
    g_assert_nonnull (strstr (text, cases[i].expected));
    g_free (text);
    gst_element_set_state (e, GST_STATE_NULL);
    gst_bus_set_flushing (bus, TRUE);
    gst_object_unref (bus);
    gst_object_unref (e);
  }
}

/* ---- the shipped default model ---- */

/* An imagebind-av-event of the ticking clip: only the ticking is heard, and where it starts */
static void
on_ticks_event (GstMessage * msg, gpointer user_data)
{
  static const GstClockTime start = 4 * GST_SECOND;
  gboolean *found = user_data;
  const GstStructure *s = gst_message_get_structure (msg);
  g_autofree gchar *text = NULL;
  guint64 heard, best;

  if (!gst_message_has_name (msg, "imagebind-av-event"))
    return;
  text = gst_structure_to_string (s);
  g_test_message ("%s", text);
  g_assert_true (gst_structure_get (s, "audio-running-time", G_TYPE_UINT64, &heard,
          "best-timestamp", G_TYPE_UINT64, &best, NULL));
  /* running time: concat restarts the second source's timestamps */
  g_assert_cmpstr (gst_structure_get_string (s, "label"), ==, "ticking");
  g_assert_false (*found);
  *found = TRUE;
  g_assert_cmpuint (heard + 2 * GST_SECOND, >=, start);
  g_assert_cmpuint (heard, <=, start + 2 * GST_SECOND);
  g_assert_true (GST_CLOCK_TIME_IS_VALID (best));
}

/* A generated clip: a bouncing ball throughout; silence (a sine at -180 dBFS: audiotestsrc's
 * real silence is GAP buffers) for the first 4 s, then the ball's ticks (held-out frequency
 * and rate). The element must report "ticking" heard within one audio window (2 s) of 4 s. */
static void
test_default_model_ticks (void)
{
  gboolean found = FALSE;

  if (!g_file_test (GST_IMAGE_BIND_DEFAULT_MODEL_SOURCE, G_FILE_TEST_IS_REGULAR)) {
    g_test_skip ("models/imagebind-default.gguf is absent");
    return;
  }
  ib_test_run_launch ("imagebindav name=av n-threads=1 threshold=0.5 "
      "prompts=\"<\\\"a steady tone\\\", \\\"white noise\\\", \\\"silence\\\", \\\"ticking\\\">\" "
      "post-messages=false ! fakesink sync=false "
      "videotestsrc num-buffers=80 pattern=ball foreground-color=0xffffdd00 "
      "! video/x-raw,width=320,height=240,framerate=10/1 ! videoconvert "
      "! imagebindvision sync=true n-threads=1 ! av.video "
      "concat name=c ! audioconvert ! imagebindaudio sync=true n-threads=1 ! av.audio "
      "audiotestsrc num-buffers=64 samplesperbuffer=1000 wave=sine volume=0.000000001 "
      "! audio/x-raw,format=S16LE,rate=16000,channels=1 ! c. "
      "audiotestsrc num-buffers=64 samplesperbuffer=1000 wave=ticks freq=1400 "
      "tick-interval=190000000 volume=0.68 ! audio/x-raw,format=S16LE,rate=16000,channels=1 "
      "! c.", on_ticks_event, &found);
  g_assert_true (found);
}

typedef struct {
  gdouble sum;
  guint n;
} ScoreSum;

static void
on_av_score (GstMessage * msg, gpointer user_data)
{
  ScoreSum *total = user_data;
  gdouble score;

  if (!gst_message_has_name (msg, "imagebind-av"))
    return;
  g_assert_true (gst_structure_get_double (gst_message_get_structure (msg), "av-score", &score));
  total->sum += score;
  total->n++;
}

/* Mean av-score of 2 s of @video with 2 s of @audio through the shipped model. */
static gdouble
mean_av_score (const gchar * video, const gchar * audio)
{
  g_autofree gchar *desc = g_strdup_printf ("imagebindav name=av n-threads=1 ! fakesink "
      "sync=false videotestsrc num-buffers=20 %s ! video/x-raw,width=320,height=240,"
      "framerate=10/1 ! videoconvert ! imagebindvision sync=true n-threads=1 ! av.video "
      "audiotestsrc num-buffers=32 samplesperbuffer=1000 %s ! audio/x-raw,format=S16LE,"
      "rate=16000,channels=1 ! imagebindaudio sync=true n-threads=1 ! av.audio", video, audio);
  ScoreSum total = { 0, 0 };

  ib_test_run_launch (desc, on_av_score, &total);
  g_assert_cmpuint (total.n, ==, 20);   /* every frame had its concurrent window */
  return total.sum / total.n;
}

/* "Is what we hear visible?" with the shipped model: four scenes (held-out parameters), each
 * picture with each sound; for every picture, the av-score is highest with its own sound. */
static void
test_default_model_correspondence (void)
{
  static const gchar *videos[] = { "pattern=ball foreground-color=0xffffdd00", "pattern=smpte",
    "pattern=snow", "pattern=black"
  };
  static const gchar *audios[] = {
    "wave=ticks freq=1400 tick-interval=190000000 volume=0.68", "wave=sine freq=720 volume=0.6",
    "wave=white-noise volume=0.6", "wave=sine volume=0.000000001"
  };
  gdouble score[4][4];

  if (!g_file_test (GST_IMAGE_BIND_DEFAULT_MODEL_SOURCE, G_FILE_TEST_IS_REGULAR)) {
    g_test_skip ("models/imagebind-default.gguf is absent");
    return;
  }
  for (guint v = 0; v < 4; v++) {
    for (guint a = 0; a < 4; a++)
      score[v][a] = mean_av_score (videos[v], audios[a]);
    g_test_message ("%s: %.3f %.3f %.3f %.3f", videos[v], score[v][0], score[v][1],
        score[v][2], score[v][3]);
  }
  for (guint v = 0; v < 4; v++)
    for (guint a = 0; a < 4; a++)
      if (a != v)
        g_assert_cmpfloat (score[v][v], >, score[v][a]);
}

/* No warning; counts the imagebind-av-fused messages, each with both prompts */
static void
on_fused (GstMessage * msg, gpointer user_data)
{
  guint *n_fused = user_data;

  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_WARNING) {
    GError *error = NULL;

    gst_message_parse_warning (msg, &error, NULL);
    g_assert_no_error (error);
  } else if (gst_message_has_name (msg, "imagebind-av-fused")) {
    const GValue *labels = gst_structure_get_value (gst_message_get_structure (msg), "labels");

    g_assert_cmpuint (gst_value_array_get_size (labels), ==, 2);
    (*n_fused)++;
  }
}

/* Without its own `model`, imagebindav embeds its prompts (here a prompt-list) with
 * the encoders' model (the tiny one, 32 wide), not the default one (64 wide): the fused
 * messages carry the prompts and no width warning is posted. */
static void
test_model_from_encoders (void)
{
  g_autofree gchar *desc = NULL;
  guint n_fused = 0;

  if (!model_path || !plugins_dir) {
    g_test_skip ("needs the tiny model and GStreamer's plugins");
    return;
  }
  g_unsetenv ("IMAGEBIND_MODEL");
  desc = g_strdup_printf ("imagebindav name=av n-threads=1 prompt-list=\"ticking;a steady tone\" "
      "! fakesink sync=false "
      "videotestsrc num-buffers=20 ! video/x-raw,width=64,height=48,framerate=10/1 "
      "! videoconvert ! imagebindvision model=\"%s\" n-threads=1 ! av.video "
      "audiotestsrc num-buffers=32 samplesperbuffer=1000 wave=ticks "
      "! audio/x-raw,format=S16LE,rate=16000,channels=1 ! audioconvert "
      "! imagebindaudio model=\"%s\" n-threads=1 ! av.audio", model_path, model_path);
  ib_test_run_launch (desc, on_fused, &n_fused);
  g_test_message ("%u fused messages", n_fused);
  g_assert_cmpuint (n_fused, ==, 20);
}

int
main (int argc, char **argv)
{
  /* The default-model test needs GStreamer's test sources and converters */
  plugins_dir = argc > 2 ? argv[2] : NULL;
  ib_test_gst_init (&argc, &argv, "registry-av.bin", plugins_dir);
  g_test_init (&argc, &argv, NULL);
  model_path = argc > 1 && argv[1][0] ? argv[1] : g_getenv ("IMAGEBIND_TEST_MODEL");

  g_test_add_func ("/av/alignment/rates", test_alignment_rates);
  g_test_add_func ("/av/alignment/overlap", test_alignment_overlap);
  g_test_add_func ("/av/alignment/late-audio", test_alignment_late_audio);
  g_test_add_func ("/av/alignment/absent-audio", test_alignment_absent_audio);
  g_test_add_func ("/av/alignment/live-late-audio", test_live_late_audio);
  g_test_add_func ("/av/fused-scores", test_fused_scores);
  g_test_add_func ("/av/event-window", test_event_window);
  g_test_add_func ("/av/event-window-reference-sound", test_event_window_reference_sound);
  g_test_add_func ("/av/bad-prompts", test_bad_prompts);
  g_test_add_func ("/av/model-from-encoders", test_model_from_encoders);
  g_test_add_func ("/av/default-model-ticks", test_default_model_ticks);
  g_test_add_func ("/av/default-model-correspondence", test_default_model_correspondence);
  return g_test_run ();
}
