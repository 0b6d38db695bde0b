/**
 * SECTION:element-imagebindav
 * @title: imagebindav
 * @see_also: imagebindvision, imagebindaudio, imagebindmatch, #GstImageBindEmbeddingMeta
 *
 * Audio-driven video analysis: joins the output of an imagebindvision (`video` pad) and of an
 * imagebindaudio (`audio` pad) by running time, and outputs the video buffers, unchanged and in
 * order, on its `src` pad. Both sink pads accept any caps: what matters is the
 * #GstImageBindEmbeddingMeta on the buffers; buffers without one only advance time. The audio
 * buffers are consumed.
 *
 * The audio embedding *concurrent* with a video embedding is the one whose span (running time
 * of its window, `[running-time, running-time + duration)`) contains the video embedding's
 * running time; when overlapping windows (`hop` < window) both contain it, the one whose middle
 * is nearest. An audio window's embedding only arrives once the window is complete, so every
 * video buffer is held until the audio stream has advanced one audio window (the longest seen,
 * at most 30 s; 2 s before the first) past it, or the audio stream ended, or, in a live
 * pipeline, the audio is late (GstAggregator's timeout: no audio within the reported latency
 * plus the `latency` property) and the video has advanced one audio window past it: then the
 * buffer goes on without an audio partner. The element adds that horizon to the latency it
 * reports. Video buffers with no embedding go on in order without results.
 *
 * Three results:
 *
 * 1. **Audio-visual correspondence** ("is what we hear visible?"): the cosine of each video
 *    embedding and its concurrent audio embedding, the `av-score`, in [-1, 1].
 * 2. **Audio-triggered windows**: the audio embeddings are scored against `prompts` (cosine
 *    with the prompt's text embedding) and each prompt is detected as imagebindmatch's detect
 *    mode does (above `threshold` for `min-duration` of running time; it ends at the first
 *    audio embedding at or below the threshold). A detection opens a window, from `window`
 *    nanoseconds before the start of the first audio input above the threshold to `window`
 *    after the end of the input that completed the detection, in which every video embedding is
 *    scored against the same prompt (including the frames before the detection, which are kept
 *    for that). When the video passes the window's end (or at EOS, or a flush), an
 *    `imagebind-av-event` message reports the `n-best` best frames.
 * 3. **Fusion**: the sum of the L2-normalised video and audio embeddings, normalised again (the
 *    paper's composition of modalities), is matched against `prompts` as imagebindmatch matches
 *    an embedding: cosine per prompt and softmax over prompts of the logits `f · t_j`, where
 *    `f` is the unit fused vector and `t_j` the prompt embedding as the model outputs it (so the
 *    logit is the cosine times the text logit scale).
 *
 * The prompts (`prompt-list`, `prompts` or `prompts-file`, as imagebindmatch's) are embedded
 * once on READY->PAUSED by the text encoder of the encoders' model (asked upstream, shared in
 * memory with them; or `model` when set; when no encoder answers, $IMAGEBIND_MODEL, else the
 * shipped default). An entry may also be a composed query in
 * imagebindmatch's grammar, embedded the same way: a **reference sound**
 * (`bark = audio:/data/bark.wav`: the audio is then compared with that sound, and the video in
 * the window with it too), a reference image, or a weighted sum
 * (`audio:/data/bark.wav + 0.5 * text:a dog`); messages carry the label before `=`. Without
 * prompts no model is loaded and only the av-score is computed. Embeddings of another width
 * than the model's are not matched.
 *
 * ## Meta
 *
 * Each output video buffer whose embedding had an audio partner carries a GstCustomMeta named
 * "GstImageBindAVCustomMeta" (#GST_IMAGE_BIND_AV_CUSTOM_META_NAME; read it with
 * gst_buffer_get_custom_meta(), in Python `buf.get_custom_meta("GstImageBindAVCustomMeta")`).
 * Its structure has `av-score`, `running-time`, `audio-running-time`, `audio-duration` as in
 * the `imagebind-av` message below and, with prompts, the `imagebind-av-fused` fields `labels`,
 * `indices`, `scores`, `probabilities`, `top-label`, `top-index`, `top-probability`,
 * `top-score` and their plain copies (`labels-strv`, `scores-f64`, ...).
 *
 * ## Messages
 *
 * `imagebind-av` (if `post-messages`), one per video embedding with an audio partner:
 *
 * - `timestamp` (G_TYPE_UINT64, ns): timestamp of the frame the video embedding describes
 * - `stream-time`, `running-time` (G_TYPE_UINT64): that timestamp in stream / running time
 * - `duration` (G_TYPE_UINT64): the frame's duration (GST_CLOCK_TIME_NONE if unknown)
 * - `av-score` (G_TYPE_DOUBLE): cosine of the video and the audio embedding, in [-1, 1]
 * - `audio-timestamp`, `audio-running-time`, `audio-duration` (G_TYPE_UINT64): the span of the
 *   concurrent audio window (its timestamp, running time and length)
 *
 * `imagebind-av-fused` (if `post-messages` and there are prompts), for the same embeddings:
 * `timestamp`, `stream-time`, `running-time`, `duration` as above, and
 *
 * - `labels` (GstValueArray of G_TYPE_STRING): all prompts, most probable first
 * - `indices` (GstValueArray of G_TYPE_UINT): their positions in `prompts`
 * - `scores` (GstValueArray of G_TYPE_DOUBLE): cosines of the fused vector and the prompts
 * - `probabilities` (GstValueArray of G_TYPE_DOUBLE): softmax over prompts, in [0, 1]
 * - `top-label` (G_TYPE_STRING), `top-index` (G_TYPE_UINT), `top-probability`, `top-score`
 *   (G_TYPE_DOUBLE): the most probable prompt
 * - `labels-strv` (G_TYPE_STRV), `indices-u32`, `scores-f64`, `probabilities-f64`
 *   (G_TYPE_BYTES): the same lists for PyGObject without gst-python (as imagebindmatch)
 *
 * `imagebind-av-event` (always), when a window closes:
 *
 * - `label` (G_TYPE_STRING), `index` (G_TYPE_UINT): the prompt detected in the audio
 * - `audio-timestamp`, `audio-stream-time`, `audio-running-time` (G_TYPE_UINT64): start of the
 *   first audio window above the threshold (the detection's `since`)
 * - `audio-score` (G_TYPE_DOUBLE): the prompt's cosine in the audio embedding that completed the
 *   detection
 * - `window-start`, `window-end` (G_TYPE_UINT64): the window, in running time
 * - `n-frames` (G_TYPE_UINT): number of video embeddings scored in the window
 * - `frame-timestamps`, `frame-stream-times`, `frame-running-times` (GstValueArray of
 *   G_TYPE_UINT64): the `n-best` best frames, best first
 * - `frame-scores` (GstValueArray of G_TYPE_DOUBLE): their cosines with the prompt
 * - `best-timestamp` (G_TYPE_UINT64), `best-score` (G_TYPE_DOUBLE): the first of them
 *   (GST_CLOCK_TIME_NONE and 0 when no frame was in the window)
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -m imagebindav name=av prompt-list="ticking;a steady tone" ! fakesink \
 *   videotestsrc num-buffers=60 pattern=ball ! video/x-raw,framerate=10/1 ! videoconvert ! imagebindvision ! av.video \
 *   audiotestsrc num-buffers=96 samplesperbuffer=1000 wave=ticks ! audio/x-raw,format=S16LE,rate=16000,channels=1 ! imagebindaudio ! av.audio
 * ]|
 * With the shipped default model: 60 `imagebind-av` and 60 `imagebind-av-fused` messages (one
 * per frame: with test sources, which are not live, the encoders embed every frame and
 * window) and one `imagebind-av-event` for the ticking. pipelines/av-events.sh does the same over a file.
 *
 * In a live pipeline the output is delayed by one audio window (2 s) plus `latency`; with no
 * audio at all (e.g. `valve drop=true` on the audio branch) the video still flows, without
 * results, after that delay.
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstimagebindav.h"
#include "gstimagebindmeta.h"
#include "gstimagebindmatchmeta.h"
#include "gstimagebindmatchscore.h"
#include "gstimagebindmatchqueries.h"
#include "gstimagebindquery.h"
#include "gstimagebindmodelhandle.h"

#include <math.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_image_bind_av_debug);
#define GST_CAT_DEFAULT gst_image_bind_av_debug

#define DEFAULT_THRESHOLD 0.25
#define DEFAULT_MIN_DURATION 0
#define DEFAULT_WINDOW (2 * GST_SECOND)
#define DEFAULT_N_BEST 3
#define DEFAULT_POST_MESSAGES TRUE
#define DEFAULT_N_THREADS 0
/* ImageBind's audio clip: the horizon before any audio embedding told its length */
#define DEFAULT_AUDIO_SPAN (2 * GST_SECOND)
/* a bound on how long video waits for audio (and is held in memory), whatever spans audio
 * embeddings claim */
#define MAX_AUDIO_SPAN (30 * GST_SECOND)

enum {
  PROP_0,
  PROP_MODEL,
  PROP_PROMPTS,
  PROP_THRESHOLD,
  PROP_MIN_DURATION,
  PROP_WINDOW,
  PROP_N_BEST,
  PROP_POST_MESSAGES,
  PROP_N_THREADS,
  PROP_PROMPT_LIST,
  PROP_PROMPTS_FILE,
};

/* An embedding, unit-normalised, with its span in running time. */
typedef struct {
  gfloat *vec;
  guint dim;
  GstClockTime pts, stream_time, running_time, duration;
} Embedding;

/* A video buffer waiting for its audio partner. */
typedef struct {
  GstBuffer *buffer;
  GstCaps *caps;
  GstSegment segment;
  GstClockTime rt;              /* alignment time: the embedding's running time (or the buffer's) */
  gboolean has_embedding;
} Pending;

typedef struct {
  GstClockTime pts, stream_time, running_time;
  gdouble score;
} Candidate;

/* An audio-triggered window. */
typedef struct {
  guint prompt;
  GstClockTime audio_pts, audio_stream_time, audio_rt;
  gdouble audio_score;
  GstClockTime start, end;      /* running time */
  guint n_frames;
  GArray *best;                 /* Candidate, best first, at most n_best */
} Window;

struct _GstImageBindAV {
  GstAggregator parent;

  GstAggregatorPad *video_pad, *audio_pad;

  /* properties, under the object lock */
  gchar *model_path;
  gchar **prompts;
  gchar *prompts_file;
  gdouble threshold;
  guint64 min_duration;
  guint64 window;
  guint n_best;
  gboolean post_messages;
  gint n_threads;

  /* between start() and stop(); streaming thread */
  GstImageBindModelHandle *handle;
  gchar **labels;
  guint n_prompts;
  gfloat *prompt_emb;           /* n_prompts x dim, as the model outputs them */
  guint dim;
  GstImageBindDetector *detectors;
  gdouble threshold_now;
  GstClockTime min_duration_now, window_now;
  guint n_best_now;

  GQueue pending;               /* Pending */
  GQueue audio;                 /* Embedding: audio embeddings that may still have partners */
  GQueue history;               /* Embedding: recent video embeddings, for windows opening late */
  GList *windows;               /* Window, open */
  GstClockTime audio_time;      /* running time the audio stream has reached */
  GstClockTime audio_span;      /* longest audio embedding seen */
  GstClockTime video_time;      /* running time of the last video buffer taken */
  GstClockTime released_rt;     /* alignment time of the last video buffer sent */
  GstCaps *src_caps;
  GstSegment src_segment;
  gboolean have_src_segment;
  gboolean warned_dim;
};

static GstStaticPadTemplate video_template = GST_STATIC_PAD_TEMPLATE ("video",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate audio_template = GST_STATIC_PAD_TEMPLATE ("audio",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

G_DEFINE_TYPE (GstImageBindAV, gst_image_bind_av, GST_TYPE_AGGREGATOR);
GST_ELEMENT_REGISTER_DEFINE (imagebindav, "imagebindav", GST_RANK_NONE, GST_TYPE_IMAGE_BIND_AV);

static const GstMetaInfo *
av_custom_meta_info (void)
{
  static const GstMetaInfo *info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) & info)) {
    static const gchar *tags[] = { NULL };
    const GstMetaInfo *i = gst_meta_register_custom (GST_IMAGE_BIND_AV_CUSTOM_META_NAME, tags,
        NULL, NULL, NULL);
    g_once_init_leave ((GstMetaInfo **) & info, (GstMetaInfo *) i);
  }
  return info;
}

/* ---- small helpers ---- */

/* @a + @b, saturating (a `window` of G_MAXUINT64 means "until the end") */
static GstClockTime
add_sat (GstClockTime a, GstClockTime b)
{
  return a > G_MAXUINT64 - 1 - b ? G_MAXUINT64 - 1 : a + b;
}

static void
embedding_free (Embedding * e)
{
  g_free (e->vec);
  g_free (e);
}

static void
pending_free (Pending * p)
{
  gst_clear_buffer (&p->buffer);
  gst_clear_caps (&p->caps);
  g_free (p);
}

static void
window_free (Window * w)
{
  g_array_unref (w->best);
  g_free (w);
}

/* A unit-length copy of the meta's vector, with its span; NULL for a zero vector. */
static Embedding *
embedding_from_meta (GstImageBindEmbeddingMeta * meta, const GstSegment * segment)
{
  guint dim, i;
  const gfloat *v = gst_image_bind_embedding_meta_get_vector (meta, &dim);
  gdouble norm = 0.0;
  Embedding *e;

  for (i = 0; i < dim; i++)
    norm += (gdouble) v[i] * v[i];
  norm = sqrt (norm);
  if (!(norm > 0.0) || !isfinite (norm))
    return NULL;
  e = g_new0 (Embedding, 1);
  e->dim = dim;
  e->vec = g_new (gfloat, dim);
  for (i = 0; i < dim; i++)
    e->vec[i] = (gfloat) (v[i] / norm);
  e->pts = meta->pts;
  e->duration = meta->duration;
  e->stream_time = meta->stream_time;
  e->running_time = meta->running_time;
  if (!GST_CLOCK_TIME_IS_VALID (e->running_time) && GST_CLOCK_TIME_IS_VALID (e->pts)
      && segment->format == GST_FORMAT_TIME)
    e->running_time = gst_segment_to_running_time (segment, GST_FORMAT_TIME, e->pts);
  if (!GST_CLOCK_TIME_IS_VALID (e->stream_time) && GST_CLOCK_TIME_IS_VALID (e->pts)
      && segment->format == GST_FORMAT_TIME)
    e->stream_time = gst_segment_to_stream_time (segment, GST_FORMAT_TIME, e->pts);
  return e;
}

static gdouble
dot (const gfloat * a, const gfloat * b, guint dim)
{
  gdouble s = 0.0;
  guint i;

  for (i = 0; i < dim; i++)
    s += (gdouble) a[i] * b[i];
  return s;
}

/* The whole-frame embedding meta of @modality on @buf, else the first whole-frame one; a
 * region of interest's embedding (imagebindvision inference-region) is not the frame's. */
static GstImageBindEmbeddingMeta *
find_meta (GstBuffer * buf, GstImageBindModality modality)
{
  GstImageBindEmbeddingMeta *m, *first = NULL;
  gpointer state = NULL;

  while ((m = gst_buffer_iterate_imagebind_embedding_meta (buf, &state))) {
    if (m->has_region)
      continue;
    if (m->modality == modality)
      return m;
    if (!first)
      first = m;
  }
  return first;
}

/* Running time of @buf's start on @pad (NONE when unknown). */
static GstClockTime
buffer_running_time (GstAggregatorPad * pad, GstBuffer * buf, gboolean end)
{
  GstClockTime t = GST_BUFFER_PTS (buf);

  if (!GST_CLOCK_TIME_IS_VALID (t) || pad->segment.format != GST_FORMAT_TIME)
    return GST_CLOCK_TIME_NONE;
  if (end && GST_BUFFER_DURATION_IS_VALID (buf))
    t += GST_BUFFER_DURATION (buf);
  return gst_segment_to_running_time (&pad->segment, GST_FORMAT_TIME, t);
}

static gboolean
dim_ok (GstImageBindAV * self, guint dim)
{
  if (self->n_prompts == 0 || dim == self->dim)
    return TRUE;
  if (!self->warned_dim) {
    GST_ELEMENT_WARNING (self, STREAM, FORMAT, ("Embedding width does not match the model"),
        ("embeddings have %u values but the model's text embeddings %u: use the encoders' model "
            "in the 'model' property; these embeddings are not matched against the prompts",
            dim, self->dim));
    self->warned_dim = TRUE;
  }
  return FALSE;
}

/* ---- windows ---- */

static void
window_offer (GstImageBindAV * self, Window * w, const Embedding * v)
{
  Candidate c;
  guint i;

  if (!GST_CLOCK_TIME_IS_VALID (v->running_time) || v->running_time < w->start
      || v->running_time > w->end || !dim_ok (self, v->dim))
    return;
  c.pts = v->pts;
  c.stream_time = v->stream_time;
  c.running_time = v->running_time;
  c.score = dot (v->vec, self->prompt_emb + (gsize) w->prompt * self->dim, self->dim)
      / sqrt (dot (self->prompt_emb + (gsize) w->prompt * self->dim,
          self->prompt_emb + (gsize) w->prompt * self->dim, self->dim));
  w->n_frames++;
  for (i = 0; i < w->best->len && g_array_index (w->best, Candidate, i).score >= c.score; i++);
  if (i < self->n_best_now) {
    g_array_insert_val (w->best, i, c);
    if (w->best->len > self->n_best_now)
      g_array_set_size (w->best, self->n_best_now);
  }
}

static void
append_u64 (GValue * array, guint64 x)
{
  GValue v = G_VALUE_INIT;

  g_value_init (&v, G_TYPE_UINT64);
  g_value_set_uint64 (&v, x);
  gst_value_array_append_and_take_value (array, &v);
}

static void
append_double (GValue * array, gdouble x)
{
  GValue v = G_VALUE_INIT;

  g_value_init (&v, G_TYPE_DOUBLE);
  g_value_set_double (&v, x);
  gst_value_array_append_and_take_value (array, &v);
}

static void
window_close (GstImageBindAV * self, Window * w)
{
  GValue ts = G_VALUE_INIT, sts = G_VALUE_INIT, rts = G_VALUE_INIT, scores = G_VALUE_INIT;
  GstStructure *s;
  guint i;

  g_value_init (&ts, GST_TYPE_ARRAY);
  g_value_init (&sts, GST_TYPE_ARRAY);
  g_value_init (&rts, GST_TYPE_ARRAY);
  g_value_init (&scores, GST_TYPE_ARRAY);
  for (i = 0; i < w->best->len; i++) {
    const Candidate *c = &g_array_index (w->best, Candidate, i);
    append_u64 (&ts, c->pts);
    append_u64 (&sts, c->stream_time);
    append_u64 (&rts, c->running_time);
    append_double (&scores, c->score);
  }
  s = gst_structure_new ("imagebind-av-event",
      "label", G_TYPE_STRING, self->labels[w->prompt],
      "index", G_TYPE_UINT, w->prompt,
      "audio-timestamp", G_TYPE_UINT64, w->audio_pts,
      "audio-stream-time", G_TYPE_UINT64, w->audio_stream_time,
      "audio-running-time", G_TYPE_UINT64, w->audio_rt,
      "audio-score", G_TYPE_DOUBLE, w->audio_score,
      "window-start", G_TYPE_UINT64, w->start,
      "window-end", G_TYPE_UINT64, w->end,
      "n-frames", G_TYPE_UINT, w->n_frames,
      "best-timestamp", G_TYPE_UINT64,
      w->best->len ? g_array_index (w->best, Candidate, 0).pts : GST_CLOCK_TIME_NONE,
      "best-score", G_TYPE_DOUBLE,
      w->best->len ? g_array_index (w->best, Candidate, 0).score : 0.0, NULL);
  gst_structure_take_value (s, "frame-timestamps", &ts);
  gst_structure_take_value (s, "frame-stream-times", &sts);
  gst_structure_take_value (s, "frame-running-times", &rts);
  gst_structure_take_value (s, "frame-scores", &scores);
  GST_INFO_OBJECT (self, "event: %" GST_PTR_FORMAT, s);
  gst_element_post_message (GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), s));
  window_free (w);
}

/* Closes the windows that end before @rt (all of them for GST_CLOCK_TIME_NONE). */
static void
close_windows (GstImageBindAV * self, GstClockTime rt)
{
  GList *l = self->windows;

  while (l) {
    GList *next = l->next;
    Window *w = l->data;

    if (!GST_CLOCK_TIME_IS_VALID (rt) || w->end < rt) {
      self->windows = g_list_delete_link (self->windows, l);
      window_close (self, w);
    }
    l = next;
  }
}

static void
window_open (GstImageBindAV * self, guint prompt, const Embedding * a, GstClockTime since,
    gdouble score)
{
  Window *w = g_new0 (Window, 1);
  GstClockTime end = a->running_time;
  GList *l;

  if (GST_CLOCK_TIME_IS_VALID (a->duration))
    end += a->duration;
  w->prompt = prompt;
  w->audio_rt = since;
  /* the detection's start in the other time domains, by the offset of the audio embedding */
  w->audio_pts = GST_CLOCK_TIME_IS_VALID (a->pts) && a->pts + since >= a->running_time ?
      a->pts + since - a->running_time : GST_CLOCK_TIME_NONE;
  w->audio_stream_time = GST_CLOCK_TIME_IS_VALID (a->stream_time)
      && a->stream_time + since >= a->running_time ?
      a->stream_time + since - a->running_time : GST_CLOCK_TIME_NONE;
  w->audio_score = score;
  w->start = since > self->window_now ? since - self->window_now : 0;
  w->end = add_sat (end, self->window_now);
  w->best = g_array_new (FALSE, FALSE, sizeof (Candidate));
  GST_DEBUG_OBJECT (self, "'%s' heard at %" GST_TIME_FORMAT ": window %" GST_TIME_FORMAT
      " - %" GST_TIME_FORMAT, self->labels[prompt], GST_TIME_ARGS (since),
      GST_TIME_ARGS (w->start), GST_TIME_ARGS (w->end));
  /* the frames already sent that fall in the window */
  for (l = self->history.head; l; l = l->next)
    window_offer (self, w, l->data);
  self->windows = g_list_append (self->windows, w);
}

/* ---- audio ---- */

static void
take_audio (GstImageBindAV * self, GstBuffer * buf)
{
  GstClockTime end = buffer_running_time (self->audio_pad, buf, TRUE);
  gpointer state = NULL;
  GstImageBindEmbeddingMeta *meta;

  while ((meta = gst_buffer_iterate_imagebind_embedding_meta (buf, &state))) {
    Embedding *a = embedding_from_meta (meta, &self->audio_pad->segment);
    GstClockTime a_end;
    guint j;

    if (!a || !GST_CLOCK_TIME_IS_VALID (a->running_time)) {
      g_clear_pointer (&a, embedding_free);
      continue;
    }
    a_end = a->running_time + (GST_CLOCK_TIME_IS_VALID (a->duration) ? a->duration : 0);
    if (GST_CLOCK_TIME_IS_VALID (a->duration))
      self->audio_span = CLAMP (a->duration, self->audio_span, MAX_AUDIO_SPAN);
    if (!GST_CLOCK_TIME_IS_VALID (end) || a_end > end)
      end = a_end;

    if (self->n_prompts > 0 && dim_ok (self, a->dim)) {
      gdouble pnorm;

      for (j = 0; j < self->n_prompts; j++) {
        const gfloat *t = self->prompt_emb + (gsize) j * self->dim;
        GstClockTime since = GST_CLOCK_TIME_NONE;
        gdouble score;

        pnorm = sqrt (dot (t, t, self->dim));
        score = pnorm > 0.0 ? dot (a->vec, t, self->dim) / pnorm : 0.0;
        if (gst_image_bind_detector_update (&self->detectors[j], score, a->running_time, a_end,
                self->threshold_now, self->min_duration_now, 0, &since) ==
            GST_IMAGE_BIND_DETECTION_START)
          window_open (self, j, a, since, score);
      }
    }
    g_queue_push_tail (&self->audio, a);
  }
  if (GST_CLOCK_TIME_IS_VALID (end) && (!GST_CLOCK_TIME_IS_VALID (self->audio_time)
          || end > self->audio_time))
    self->audio_time = end;
  gst_buffer_unref (buf);
}

/* The audio embedding concurrent with running time @rt, or NULL. */
static const Embedding *
concurrent_audio (GstImageBindAV * self, GstClockTime rt)
{
  const Embedding *best = NULL;
  GstClockTimeDiff best_dist = G_MAXINT64;
  GList *l;

  for (l = self->audio.head; l; l = l->next) {
    const Embedding *a = l->data;
    GstClockTime dur = GST_CLOCK_TIME_IS_VALID (a->duration) ? a->duration : 0;
    GstClockTimeDiff dist;

    if (rt < a->running_time || rt >= a->running_time + MAX (dur, 1))
      continue;
    dist = ABS ((GstClockTimeDiff) (a->running_time + dur / 2) - (GstClockTimeDiff) rt);
    if (dist < best_dist) {
      best = a;
      best_dist = dist;
    }
  }
  return best;
}

/* ---- video ---- */

static void
take_video (GstImageBindAV * self, GstBuffer * buf)
{
  Pending *p = g_new0 (Pending, 1);
  GstImageBindEmbeddingMeta *meta = find_meta (buf, GST_IMAGE_BIND_MODALITY_VISION);

  p->buffer = buf;
  p->caps = gst_pad_get_current_caps (GST_PAD (self->video_pad));
  p->segment = self->video_pad->segment;
  p->rt = buffer_running_time (self->video_pad, buf, FALSE);
  if (meta) {
    GstClockTime rt = meta->running_time;
    if (!GST_CLOCK_TIME_IS_VALID (rt) && GST_CLOCK_TIME_IS_VALID (meta->pts)
        && p->segment.format == GST_FORMAT_TIME)
      rt = gst_segment_to_running_time (&p->segment, GST_FORMAT_TIME, meta->pts);
    if (GST_CLOCK_TIME_IS_VALID (rt)) {
      p->rt = rt;
      p->has_embedding = TRUE;
    }
  }
  if (GST_CLOCK_TIME_IS_VALID (p->rt))
    self->video_time = GST_CLOCK_TIME_IS_VALID (self->video_time) ?
        MAX (self->video_time, p->rt) : p->rt;
  g_queue_push_tail (&self->pending, p);
}

static void
add_timing (GstStructure * s, const Embedding * v)
{
  gst_structure_set (s, "timestamp", G_TYPE_UINT64, v->pts,
      "stream-time", G_TYPE_UINT64, v->stream_time,
      "running-time", G_TYPE_UINT64, v->running_time,
      "duration", G_TYPE_UINT64, v->duration, NULL);
}

/* The fused result fields (labels, scores, ...) into @s. */
static void
add_fused_fields (GstImageBindAV * self, GstStructure * s, const Embedding * v,
    const Embedding * a)
{
  gfloat *f = g_new (gfloat, self->dim);
  gdouble *cosine = g_new (gdouble, self->n_prompts);
  gdouble *prob = g_new (gdouble, self->n_prompts);
  GstImageBindMatchResult *res = g_new0 (GstImageBindMatchResult, self->n_prompts);
  gdouble norm = 0.0;
  guint i;

  for (i = 0; i < self->dim; i++) {
    f[i] = v->vec[i] + a->vec[i];
    norm += (gdouble) f[i] * f[i];
  }
  norm = sqrt (norm);
  for (i = 0; i < self->dim; i++)
    f[i] = norm > 0.0 ? (gfloat) (f[i] / norm) : 0.0f;
  gst_image_bind_match_score (f, self->prompt_emb, self->dim, self->n_prompts, cosine, prob);

  for (i = 0; i < self->n_prompts; i++) {
    res[i].index = i;
    res[i].label = self->labels[i];
    res[i].cosine = cosine[i];
    res[i].probability = prob[i];
  }
  gst_image_bind_match_results_sort (res, self->n_prompts);
  /* top-* between the lists and their plain copies, as this element has always written them */
  gst_image_bind_match_results_add_fields (s, res, self->n_prompts,
      GST_IMAGE_BIND_MATCH_RESULTS_LISTS | GST_IMAGE_BIND_MATCH_RESULTS_TOP);
  gst_image_bind_match_results_add_fields (s, res, self->n_prompts,
      GST_IMAGE_BIND_MATCH_RESULTS_PLAIN);

  g_free (res);
  g_free (prob);
  g_free (cosine);
  g_free (f);
}

/* Scores the embedding of @p (if any) and returns the buffer to send. */
static GstBuffer *
score_video (GstImageBindAV * self, Pending * p, gboolean post_messages)
{
  GstBuffer *buf = p->buffer;
  GstImageBindEmbeddingMeta *meta = find_meta (buf, GST_IMAGE_BIND_MODALITY_VISION);
  const Embedding *a;
  Embedding *v;
  GList *l;

  p->buffer = NULL;
  self->released_rt = p->rt;
  if (!p->has_embedding || !meta || !(v = embedding_from_meta (meta, &p->segment)))
    return buf;
  v->running_time = p->rt;

  for (l = self->windows; l; l = l->next)
    window_offer (self, l->data, v);

  a = concurrent_audio (self, v->running_time);
  if (a && a->dim == v->dim) {
    gdouble av = dot (v->vec, a->vec, v->dim);
    gboolean fused = self->n_prompts > 0 && dim_ok (self, v->dim);
    GstStructure *ms = gst_structure_new_empty ("imagebind-av");
    GstCustomMeta *cm;

    add_timing (ms, v);
    gst_structure_set (ms, "av-score", G_TYPE_DOUBLE, av,
        "audio-timestamp", G_TYPE_UINT64, a->pts,
        "audio-running-time", G_TYPE_UINT64, a->running_time,
        "audio-duration", G_TYPE_UINT64, a->duration, NULL);

    buf = gst_buffer_make_writable (buf);
    cm = gst_buffer_add_custom_meta (buf, GST_IMAGE_BIND_AV_CUSTOM_META_NAME);
    gst_structure_set (gst_custom_meta_get_structure (cm),
        "av-score", G_TYPE_DOUBLE, av,
        "running-time", G_TYPE_UINT64, v->running_time,
        "audio-running-time", G_TYPE_UINT64, a->running_time,
        "audio-duration", G_TYPE_UINT64, a->duration, NULL);
    if (fused)
      add_fused_fields (self, gst_custom_meta_get_structure (cm), v, a);

    if (post_messages) {
      gst_element_post_message (GST_ELEMENT (self),
          gst_message_new_element (GST_OBJECT (self), ms));
      if (fused) {
        GstStructure *fs = gst_structure_new_empty ("imagebind-av-fused");

        add_timing (fs, v);
        add_fused_fields (self, fs, v, a);
        gst_element_post_message (GST_ELEMENT (self),
            gst_message_new_element (GST_OBJECT (self), fs));
      }
    } else {
      gst_structure_free (ms);
    }
  }

  /* kept for windows that open later: as long as a window could still reach back to it */
  g_queue_push_tail (&self->history, v);
  while (self->history.length > 0) {
    Embedding *old = g_queue_peek_head (&self->history);
    if (add_sat (old->running_time, add_sat (self->window_now, 2 * self->audio_span))
        >= v->running_time)
      break;
    embedding_free (g_queue_pop_head (&self->history));
  }
  /* audio that ended before this frame can have no later partner */
  while (self->audio.length > 0) {
    Embedding *old = g_queue_peek_head (&self->audio);
    GstClockTime dur = GST_CLOCK_TIME_IS_VALID (old->duration) ? old->duration : 0;
    if (old->running_time + dur > v->running_time)
      break;
    embedding_free (g_queue_pop_head (&self->audio));
  }
  return buf;
}

static GstFlowReturn
send_video (GstImageBindAV * self, Pending * p, gboolean post_messages)
{
  GstAggregator *agg = GST_AGGREGATOR (self);
  GstBuffer *buf = score_video (self, p, post_messages);

  /* windows that the video has now passed */
  if (GST_CLOCK_TIME_IS_VALID (p->rt))
    close_windows (self, p->rt);

  if (p->caps && (!self->src_caps || !gst_caps_is_equal (p->caps, self->src_caps))) {
    gst_caps_replace (&self->src_caps, p->caps);
    gst_aggregator_set_src_caps (agg, p->caps);
  }
  if (!self->have_src_segment || !gst_segment_is_equal (&self->src_segment, &p->segment)) {
    self->src_segment = p->segment;
    self->have_src_segment = TRUE;
    gst_aggregator_update_segment (agg, &p->segment);
  }
  if (GST_BUFFER_PTS_IS_VALID (buf))
    GST_AGGREGATOR_PAD (agg->srcpad)->segment.position = GST_BUFFER_PTS (buf) +
        (GST_BUFFER_DURATION_IS_VALID (buf) ? GST_BUFFER_DURATION (buf) : 0);
  pending_free (p);
  return gst_aggregator_finish_buffer (agg, buf);
}

/* ---- aggregation ---- */

static GstFlowReturn
gst_image_bind_av_aggregate (GstAggregator * agg, gboolean timeout)
{
  GstImageBindAV *self = GST_IMAGE_BIND_AV (agg);
  GstBuffer *vb, *ab;
  gboolean video_eos, audio_eos, post_messages;
  GstFlowReturn ret = GST_FLOW_OK;
  guint n_taken = 0;

  GST_OBJECT_LOCK (self);
  post_messages = self->post_messages;
  GST_OBJECT_UNLOCK (self);

  /* Take the input that is behind in time (both on a timeout): neither stream runs away. */
  do {
    GstClockTime vt, at;

    vb = gst_aggregator_pad_peek_buffer (self->video_pad);
    ab = gst_aggregator_pad_peek_buffer (self->audio_pad);
    vt = vb ? buffer_running_time (self->video_pad, vb, FALSE) : GST_CLOCK_TIME_NONE;
    at = ab ? buffer_running_time (self->audio_pad, ab, FALSE) : GST_CLOCK_TIME_NONE;
    if (vb && (!ab || (GST_CLOCK_TIME_IS_VALID (at) && GST_CLOCK_TIME_IS_VALID (vt) && vt <= at)
            || !GST_CLOCK_TIME_IS_VALID (vt))) {
      take_video (self, gst_aggregator_pad_pop_buffer (self->video_pad));
      n_taken++;
    } else if (ab) {
      take_audio (self, gst_aggregator_pad_pop_buffer (self->audio_pad));
      n_taken++;
    }
    gst_clear_buffer (&vb);
    gst_clear_buffer (&ab);
  } while (timeout && (gst_aggregator_pad_has_buffer (self->video_pad)
          || gst_aggregator_pad_has_buffer (self->audio_pad)));

  video_eos = gst_aggregator_pad_is_eos (self->video_pad);
  audio_eos = gst_aggregator_pad_is_eos (self->audio_pad);

  /* Send the video buffers whose audio partner is known, or will not come. */
  while (ret == GST_FLOW_OK && self->pending.length > 0) {
    Pending *p = g_queue_peek_head (&self->pending);
    gboolean ready = !p->has_embedding || audio_eos;

    if (!ready && GST_CLOCK_TIME_IS_VALID (self->audio_time))
      ready = self->audio_time >= add_sat (p->rt, self->audio_span);
    /* live, audio late: give up on it once the video is a horizon ahead */
    if (!ready && timeout && GST_CLOCK_TIME_IS_VALID (self->video_time))
      ready = self->video_time >= add_sat (p->rt, self->audio_span);
    if (!ready && video_eos && !gst_aggregator_pad_has_buffer (self->video_pad)
        && !gst_aggregator_pad_has_buffer (self->audio_pad) && timeout)
      ready = TRUE;
    if (!ready)
      break;
    ret = send_video (self, g_queue_pop_head (&self->pending), post_messages);
  }
  if (ret != GST_FLOW_OK)
    return ret;

  if (timeout && n_taken == 0) {
    /* live and nothing arrived: move on, so that the next deadline is in the future */
    GstSegment *seg = &GST_AGGREGATOR_PAD (agg->srcpad)->segment;
    if (GST_CLOCK_TIME_IS_VALID (seg->position))
      seg->position += 100 * GST_MSECOND;
  }

  if (video_eos && !gst_aggregator_pad_has_buffer (self->video_pad)
      && self->pending.length == 0) {
    close_windows (self, GST_CLOCK_TIME_NONE);
    return GST_FLOW_EOS;
  }
  return GST_FLOW_OK;
}

static GstFlowReturn
gst_image_bind_av_update_src_caps (GstAggregator * agg, GstCaps * downstream_caps,
    GstCaps ** ret)
{
  GstImageBindAV *self = GST_IMAGE_BIND_AV (agg);
  GstCaps *caps;

  /* The caps of the video buffers being sent: those of the last one sent (send_video() sets
   * each buffer's caps as it goes, so that buffers queued before a caps change keep theirs),
   * else the video pad's. */
  caps = self->src_caps ? gst_caps_ref (self->src_caps) :
      gst_pad_get_current_caps (GST_PAD (self->video_pad));
  if (!caps)
    return GST_AGGREGATOR_FLOW_NEED_DATA;
  *ret = caps;
  return GST_FLOW_OK;
}

static void
reset_stream (GstImageBindAV * self)
{
  guint j;

  g_queue_clear_full (&self->pending, (GDestroyNotify) pending_free);
  g_queue_clear_full (&self->audio, (GDestroyNotify) embedding_free);
  g_queue_clear_full (&self->history, (GDestroyNotify) embedding_free);
  g_list_free_full (self->windows, (GDestroyNotify) window_free);
  self->windows = NULL;
  for (j = 0; self->detectors && j < self->n_prompts; j++)
    gst_image_bind_detector_reset (&self->detectors[j]);
  self->audio_time = GST_CLOCK_TIME_NONE;
  self->video_time = GST_CLOCK_TIME_NONE;
  self->released_rt = GST_CLOCK_TIME_NONE;
  self->audio_span = DEFAULT_AUDIO_SPAN;
}

static GstFlowReturn
gst_image_bind_av_flush (GstAggregator * agg)
{
  GstImageBindAV *self = GST_IMAGE_BIND_AV (agg);

  /* open windows end here, reporting what they saw */
  close_windows (self, GST_CLOCK_TIME_NONE);
  reset_stream (self);
  return GST_FLOW_OK;
}

/* Parses the prompts (texts or composed queries, imagebindmatch's grammar), embeds their
 * reference files and composes them: self->labels, self->prompt_emb. */
static gboolean
embed_prompts (GstImageBindAV * self, GPtrArray * queries, gint n_threads)
{
  GHashTable *cache = gst_image_bind_media_cache_new ();
  GError *err = NULL;
  guint i;

  if (!gst_image_bind_media_cache_fill (cache, self->handle, n_threads, queries, &err)) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ, ("Could not embed a reference file of "
            "'prompts'"), ("%s", err->message));
    goto fail;
  }
  self->prompt_emb = gst_image_bind_match_embed_queries (self->handle, cache, queries, &err);
  if (!self->prompt_emb) {
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED, ("Could not embed the prompts"),
        ("%s: check that 'prompts' are UTF-8 text and that their terms do not cancel out",
            err->message));
    goto fail;
  }
  self->labels = g_new0 (gchar *, queries->len + 1);
  for (i = 0; i < queries->len; i++)
    self->labels[i] = g_strdup (gst_image_bind_query_get_label (queries->pdata[i]));
  self->n_prompts = queries->len;
  g_hash_table_unref (cache);
  return TRUE;

fail:
  g_clear_error (&err);
  g_hash_table_unref (cache);
  return FALSE;
}

/* The prompts and the lines of the prompts file, parsed; NULL after posting the error. */
static GPtrArray *
parse_prompts (GstImageBindAV * self, gchar ** prompts, const gchar * prompts_file)
{
  GError *err = NULL;
  GPtrArray *queries = gst_image_bind_queries_from_prompts (prompts, prompts_file, &err);

  if (queries)
    return queries;
  if (err->domain == G_FILE_ERROR)
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ, ("Could not read the prompts: %s.",
            err->message), (NULL));
  else
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("Invalid prompt: %s.", err->message),
        ("An entry is a text (\"a dog\") or a sum of terms such as "
            "\"bark = audio:/path/bark.wav + 0.5 * text:a dog\" (see imagebindmatch)"));
  g_error_free (err);
  return NULL;
}

/* The model whose text encoder embeds the prompts: `model`, else the encoders' (asked
 * upstream of the video pad, then of the audio pad), else the default rules. */
static gboolean
open_model (GstImageBindAV * self, const gchar * model_path, gint n_threads)
{
  GError *err = NULL;
  gchar *path = NULL;

  if (!model_path || !*model_path) {
    path = gst_image_bind_model_query_upstream (GST_PAD (self->video_pad), NULL);
    if (!path)
      path = gst_image_bind_model_query_upstream (GST_PAD (self->audio_pad), NULL);
    GST_INFO_OBJECT (self, "prompts embedded with %s", path ? path :
        "the default model (no encoder answered)");
  }
  self->handle = gst_image_bind_model_handle_open (path ? path : model_path,
      IMAGEBIND_MODALITY_TEXT, "embedding text", n_threads, &err);
  g_free (path);
  if (!self->handle) {
    gst_image_bind_model_handle_post_error (GST_ELEMENT (self), err);
    g_clear_error (&err);
    return FALSE;
  }
  self->dim = gst_image_bind_model_handle_get_dim (self->handle);
  return TRUE;
}

static gboolean
gst_image_bind_av_start (GstAggregator * agg)
{
  GstImageBindAV *self = GST_IMAGE_BIND_AV (agg);
  gchar *model_path, **prompts, *prompts_file;
  GPtrArray *queries = NULL;
  gint n_threads;

  GST_OBJECT_LOCK (self);
  prompts = g_strdupv (self->prompts);
  prompts_file = g_strdup (self->prompts_file);
  self->threshold_now = self->threshold;
  self->min_duration_now = self->min_duration;
  self->window_now = self->window;
  self->n_best_now = self->n_best;
  model_path = g_strdup (self->model_path);
  n_threads = self->n_threads;
  GST_OBJECT_UNLOCK (self);

  self->n_prompts = 0;
  self->warned_dim = FALSE;
  queries = parse_prompts (self, prompts, prompts_file);
  if (!queries)
    goto fail;
  if (queries->len > 0) {
    if (!open_model (self, model_path, n_threads) || !embed_prompts (self, queries, n_threads))
      goto fail;
    self->detectors = g_new (GstImageBindDetector, self->n_prompts);
  }
  g_ptr_array_free (queries, TRUE);
  g_free (model_path);
  g_free (prompts_file);
  g_strfreev (prompts);
  reset_stream (self);
  gst_caps_replace (&self->src_caps, NULL);
  self->have_src_segment = FALSE;
  /* video waits up to one audio window for its partner */
  gst_aggregator_set_latency (agg, DEFAULT_AUDIO_SPAN, DEFAULT_AUDIO_SPAN);
  return TRUE;

fail:
  if (queries)
    g_ptr_array_free (queries, TRUE);
  g_free (model_path);
  g_free (prompts_file);
  g_strfreev (prompts);
  g_clear_pointer (&self->handle, gst_image_bind_model_handle_close);
  return FALSE;
}

static gboolean
gst_image_bind_av_stop (GstAggregator * agg)
{
  GstImageBindAV *self = GST_IMAGE_BIND_AV (agg);

  g_list_free_full (self->windows, (GDestroyNotify) window_free);
  self->windows = NULL;
  reset_stream (self);
  g_clear_pointer (&self->prompt_emb, g_free);
  g_clear_pointer (&self->detectors, g_free);
  g_clear_pointer (&self->labels, g_strfreev);
  self->n_prompts = 0;
  g_clear_pointer (&self->handle, gst_image_bind_model_handle_close);
  gst_caps_replace (&self->src_caps, NULL);
  return TRUE;
}

/* ---- GObject ---- */

static void
gst_image_bind_av_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstImageBindAV *self = GST_IMAGE_BIND_AV (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->model_path);
      self->model_path = g_value_dup_string (value);
      break;
    case PROP_PROMPTS:{
      guint i, n = gst_value_array_get_size (value);
      g_strfreev (self->prompts);
      self->prompts = g_new0 (gchar *, n + 1);
      for (i = 0; i < n; i++) {
        const GValue *v = gst_value_array_get_value (value, i);
        self->prompts[i] = g_strdup (G_VALUE_HOLDS_STRING (v) ? g_value_get_string (v) : "");
      }
      break;
    }
    case PROP_PROMPT_LIST:
      g_strfreev (self->prompts);
      self->prompts = gst_image_bind_prompt_list_split (g_value_get_string (value));
      break;
    case PROP_PROMPTS_FILE:
      g_free (self->prompts_file);
      self->prompts_file = g_value_dup_string (value);
      break;
    case PROP_THRESHOLD:
      self->threshold = g_value_get_double (value);
      break;
    case PROP_MIN_DURATION:
      self->min_duration = g_value_get_uint64 (value);
      break;
    case PROP_WINDOW:
      self->window = g_value_get_uint64 (value);
      break;
    case PROP_N_BEST:
      self->n_best = g_value_get_uint (value);
      break;
    case PROP_POST_MESSAGES:
      self->post_messages = g_value_get_boolean (value);
      break;
    case PROP_N_THREADS:
      self->n_threads = g_value_get_int (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_image_bind_av_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstImageBindAV *self = GST_IMAGE_BIND_AV (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model_path);
      break;
    case PROP_PROMPTS:{
      guint i;
      for (i = 0; self->prompts && self->prompts[i]; i++) {
        GValue v = G_VALUE_INIT;
        g_value_init (&v, G_TYPE_STRING);
        g_value_set_string (&v, self->prompts[i]);
        gst_value_array_append_and_take_value (value, &v);
      }
      break;
    }
    case PROP_PROMPT_LIST:
      g_value_take_string (value, gst_image_bind_prompt_list_join (self->prompts));
      break;
    case PROP_PROMPTS_FILE:
      g_value_set_string (value, self->prompts_file);
      break;
    case PROP_THRESHOLD:
      g_value_set_double (value, self->threshold);
      break;
    case PROP_MIN_DURATION:
      g_value_set_uint64 (value, self->min_duration);
      break;
    case PROP_WINDOW:
      g_value_set_uint64 (value, self->window);
      break;
    case PROP_N_BEST:
      g_value_set_uint (value, self->n_best);
      break;
    case PROP_POST_MESSAGES:
      g_value_set_boolean (value, self->post_messages);
      break;
    case PROP_N_THREADS:
      g_value_set_int (value, self->n_threads);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_image_bind_av_finalize (GObject * object)
{
  GstImageBindAV *self = GST_IMAGE_BIND_AV (object);

  g_free (self->model_path);
  g_strfreev (self->prompts);
  g_free (self->prompts_file);
  G_OBJECT_CLASS (gst_image_bind_av_parent_class)->finalize (object);
}

static void
gst_image_bind_av_init (GstImageBindAV * self)
{
  GstElementClass *klass = GST_ELEMENT_GET_CLASS (self);

  self->threshold = DEFAULT_THRESHOLD;
  self->min_duration = DEFAULT_MIN_DURATION;
  self->window = DEFAULT_WINDOW;
  self->n_best = DEFAULT_N_BEST;
  self->post_messages = DEFAULT_POST_MESSAGES;
  self->n_threads = DEFAULT_N_THREADS;
  g_queue_init (&self->pending);
  g_queue_init (&self->audio);
  g_queue_init (&self->history);
  self->audio_span = DEFAULT_AUDIO_SPAN;

  self->video_pad = g_object_new (GST_TYPE_AGGREGATOR_PAD, "name", "video", "direction",
      GST_PAD_SINK, "template", gst_element_class_get_pad_template (klass, "video"), NULL);
  gst_element_add_pad (GST_ELEMENT (self), GST_PAD (self->video_pad));
  self->audio_pad = g_object_new (GST_TYPE_AGGREGATOR_PAD, "name", "audio", "direction",
      GST_PAD_SINK, "template", gst_element_class_get_pad_template (klass, "audio"), NULL);
  gst_element_add_pad (GST_ELEMENT (self), GST_PAD (self->audio_pad));
}

static void
gst_image_bind_av_class_init (GstImageBindAVClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstAggregatorClass *agg_class = GST_AGGREGATOR_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_image_bind_av_debug, "imagebindav", 0,
      "ImageBind audio-visual events");
  av_custom_meta_info ();

  gobject_class->set_property = gst_image_bind_av_set_property;
  gobject_class->get_property = gst_image_bind_av_get_property;
  gobject_class->finalize = gst_image_bind_av_finalize;

  /**
   * GstImageBindAV:model:
   *
   * The model file whose text encoder embeds the prompts. When unset (the usual case): the
   * model of the encoders upstream (asked on READY->PAUSED through the video pad, then the
   * audio pad); when none answers, $IMAGEBIND_MODEL, else the shipped default model. Not
   * loaded when there are no prompts.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "Path of the ImageBind model file (.gguf) that embeds the prompts. When unset: the "
          "encoders' model (else $IMAGEBIND_MODEL, else the shipped default model). Not loaded "
          "without prompts", NULL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  /**
   * GstImageBindAV:prompts:
   *
   * Prompts detected in the audio, opening windows in which the video is scored against
   * them, and matched against the fused embeddings: texts, or composed queries in
   * imagebindmatch's grammar (e.g. a reference sound `bark = audio:/data/bark.wav`). Embedded
   * on READY->PAUSED.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_PROMPTS,
      gst_param_spec_array ("prompts", "Prompts",
          "Text prompts (or composed queries as imagebindmatch's, e.g. a reference sound "
          "'bark = audio:/data/bark.wav') detected in the audio (opening windows in the video) "
          "and matched against the fused embeddings, as an array (gst-launch: "
          "prompts='<ticking, beep>'; with spaces, use prompt-list); embedded on READY->PAUSED",
          g_param_spec_string ("prompt", "Prompt", "One text prompt (UTF-8)", NULL,
              G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS),
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  /**
   * GstImageBindAV:prompt-list:
   *
   * The same list as #GstImageBindAV:prompts as one string, as imagebindmatch's
   * `prompt-list`: `prompt-list="a steady tone;ticking"` (entries separated by `;`, or by `,`
   * when there is no `;`).
   *
   * Since: 0.1
   */
  /**
   * GstImageBindAV:prompts-file:
   *
   * A text file of prompts, one prompt or composed query per line (`#` comments, blank lines
   * skipped), after the entries of #GstImageBindAV:prompts, as imagebindmatch's. Read on
   * READY->PAUSED.
   *
   * Since: 0.1
   */
  gst_image_bind_install_prompt_properties (gobject_class, PROP_PROMPT_LIST,
      PROP_PROMPTS_FILE, GST_PARAM_MUTABLE_READY);
  /**
   * GstImageBindAV:threshold:
   *
   * Cosine score of an audio embedding and a prompt above which the prompt counts as heard.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_THRESHOLD,
      g_param_spec_double ("threshold", "Threshold",
          "Cosine score (-1 to 1) of an audio embedding and a prompt above which the prompt "
          "counts as heard (min -1, max 1, default 0.25)", -1.0, 1.0, DEFAULT_THRESHOLD,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  /**
   * GstImageBindAV:min-duration:
   *
   * How long, in nanoseconds of running time, the audio score must stay above the threshold
   * before the detection opens a window.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MIN_DURATION,
      g_param_spec_uint64 ("min-duration", "Minimum duration",
          "Running time in nanoseconds the audio score must stay above 'threshold' before a "
          "detection opens a window, from the start of the first audio window above it to the "
          "end of the current one (min 0, max 18446744073709551615, default 0)",
          0, G_MAXUINT64, DEFAULT_MIN_DURATION,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  /**
   * GstImageBindAV:window:
   *
   * Nanoseconds of video scored before the start of a detection and after its end.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_WINDOW,
      g_param_spec_uint64 ("window", "Window",
          "Nanoseconds of video scored before the start and after the end of an audio "
          "detection (min 0, max 18446744073709551615, default 2000000000)",
          0, G_MAXUINT64, DEFAULT_WINDOW,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  /**
   * GstImageBindAV:n-best:
   *
   * Number of best-matching frames an `imagebind-av-event` message reports.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_N_BEST,
      g_param_spec_uint ("n-best", "N best",
          "Number of best-matching video frames an imagebind-av-event reports "
          "(min 1, max 1000, default 3)", 1, 1000, DEFAULT_N_BEST,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  /**
   * GstImageBindAV:post-messages:
   *
   * Post `imagebind-av` and `imagebind-av-fused` messages for every video embedding with an
   * audio partner. `imagebind-av-event` messages are posted either way.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_POST_MESSAGES,
      g_param_spec_boolean ("post-messages", "Post messages",
          "Post 'imagebind-av' and 'imagebind-av-fused' messages for every frame with an audio "
          "partner ('imagebind-av-event' messages are posted either way)",
          DEFAULT_POST_MESSAGES,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstImageBindAV:n-threads:
   *
   * Threads used to embed the prompts; 0 uses all cores.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_N_THREADS,
      g_param_spec_int ("n-threads", "Threads",
          "Threads used to embed the prompts (0 = all cores)", 0, 1024, DEFAULT_N_THREADS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));

  gst_element_class_add_static_pad_template_with_gtype (element_class, &video_template,
      GST_TYPE_AGGREGATOR_PAD);
  gst_element_class_add_static_pad_template_with_gtype (element_class, &audio_template,
      GST_TYPE_AGGREGATOR_PAD);
  gst_element_class_add_static_pad_template_with_gtype (element_class, &src_template,
      GST_TYPE_AGGREGATOR_PAD);
  gst_element_class_set_static_metadata (element_class, "ImageBind audio-visual events",
      "Filter/Analyzer",
      "Aligns video and audio ImageBind embeddings by running time: audio-visual "
      "correspondence, audio-triggered video search, fused matching against prompts",
      "gst-imagebind developers");
  gst_element_class_add_static_metadata (element_class, "messages",
      "imagebind-av (av-score), imagebind-av-fused (labels, scores, probabilities, top-*), "
      "imagebind-av-event (label, audio-running-time, window-start/end, frame-timestamps, "
      "frame-scores, best-timestamp, best-score). Details in the element documentation");

  agg_class->aggregate = GST_DEBUG_FUNCPTR (gst_image_bind_av_aggregate);
  agg_class->update_src_caps = GST_DEBUG_FUNCPTR (gst_image_bind_av_update_src_caps);
  agg_class->flush = GST_DEBUG_FUNCPTR (gst_image_bind_av_flush);
  agg_class->start = GST_DEBUG_FUNCPTR (gst_image_bind_av_start);
  agg_class->stop = GST_DEBUG_FUNCPTR (gst_image_bind_av_stop);
  agg_class->get_next_time = gst_aggregator_simple_get_next_time;
}
