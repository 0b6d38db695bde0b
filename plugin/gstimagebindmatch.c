/**
 * SECTION:element-imagebindmatch
 * @title: imagebindmatch
 * @see_also: imagebindvision, imagebindaudio, imagebindtext, #GstImageBindMatchMeta
 *
 * Matches the ImageBind embeddings that upstream encoders attach to buffers
 * (#GstImageBindEmbeddingMeta) against text prompts, or queries composed of texts, reference
 * images and sounds (see "Queries" below), and attaches the result to the same buffer
 * as a #GstImageBindMatchMeta. Buffers of any caps pass through untouched; buffers without an
 * embedding pass without a result.
 *
 * ## Prompts
 *
 * On a command line the prompts are one string, entries separated by `;` (or by `,` when there
 * is no `;`), which needs one level of shell quoting only:
 * `prompt-list="colour bars;a bouncing ball;static noise"`. Applications may set the same list
 * as an array (`prompts`, a #GstValueArray of strings; on a command line `prompts='<dog, cat>'`
 * works only while no prompt has a space). Longer lists go in a file, one prompt or composed
 * query per line, `#` comments and blank lines skipped (`prompts-file=scenes.txt`, as DL
 * Streamer's labels files), matched after the `prompts`.
 *
 * The prompts (`prompts`, `prompt-list` and `prompts-file`) are tokenised and embedded by
 * the model's text encoder once, on READY->PAUSED (the state change waits), never per buffer.
 * They may be changed while PAUSED or PLAYING (so may the application's queries): the new
 * set is then embedded on a thread of its own, and the stream does not wait for it (with the
 * huge model, thousands of prompts take seconds). Until it is ready, buffers are matched
 * against the previous prompts, and the results' labels and indices are the previous ones;
 * buffers that enter after the `imagebind-prompts` "ready" message (see "Messages") are
 * matched against the new set. Changes made while a set is being embedded are embedded after
 * it. PAUSED->READY waits for an embedding under way and drops it (the next READY->PAUSED
 * embeds the prompts as they are then). With no prompts at all, a warning is posted once when
 * the first embedding arrives; when buffers pass but no embedding arrives (no encoder
 * upstream), a warning is posted once after 30 s of stream time or at EOS.
 *
 * For each embedding `e` (as the encoder outputs it: L2-normalised times its modality's logit
 * scale, 1 for vision, 20 for audio, ...) and each prompt embedding `t_j` (L2-normalised times
 * the text logit scale), the element computes, as the official zero-shot code does:
 *
 * - the logit `e · t_j` and the probability `softmax_j (e · t_j)` over all prompts;
 * - the cosine score `e · t_j / (|e| |t_j|)`, in [-1, 1], which does not depend on the
 *   logit scales.
 *
 * In `mode=classify` the results are the `top-k` most probable prompts. In `mode=detect` the
 * cosine score of every prompt is also followed over time, separately per modality: a prompt is
 * detected when its score has stayed above `threshold` for `min-duration` (measured in stream
 * time from the start of the first embedded input above the threshold to the end of the current
 * one), and the detection ends when the score has stayed at or below the threshold for
 * `cooldown`. Detections still open at EOS, at a flushing seek or when the prompts change end
 * there.
 *
 * ## Queries: composing modalities
 *
 * Each entry of `prompts` is a query. A plain text ("a dog") is a text prompt, as above. An
 * entry may also be an expression: a weighted sum of texts, reference media files and (from
 * the application) vectors, as the paper composes modalities (an image plus the text "at
 * night" finds night versions of the scene):
 *
 * |[
 * night street = image:/data/street.png + 0.5 * text:at night - audio:/data/traffic.wav
 * ]|
 *
 * Grammar (gst_image_bind_query_parse()): `[label =] [sign] term {sign term}`, with sign `+`
 * or `-`, term `[weight [*]] kind:payload`, kind one of `text`, `image` (or `vision`),
 * `audio`, `depth`, `thermal`, `imu`, and the payload a text or a file path. Spaces around
 * signs, weights, `*` and `=` are optional; a payload runs to the next sign that is followed
 * by a term, so texts and paths may contain spaces, `+` and `-` ("text:rock - paper" is one
 * text); a payload may also be written in double quotes (`\"` and `\\` inside). The label
 * (what the results call the query) is the part before `=`, else the entry as written. An
 * entry that does not start with a term (nor with `label =` and a term) is a plain prompt,
 * unchanged: to match a text that itself starts with `image:`, write `text:image: ...`. A term
 * whose kind does not exist (`night = imgae:/a.png`, `0.5 * picture:/a.png`) is an error, not
 * a text prompt. Invalid entries fail READY->PAUSED with a RESOURCE SETTINGS error naming the
 * entry (or the prompts file and line), the character position and what was expected; a
 * reference that is a directory or a FIFO is refused saying so.
 *
 * On a gst-launch-1.0 command line: `prompt-list="night = image:/a.png + 0.5 * text:at
 * night;a dog"`. A payload in double quotes is meant for applications and prompts files.
 *
 * Reference files are decoded with the installed GStreamer decoders and embedded by their
 * modality's encoder with the runtime's front ends (as imagebind-embed does), once, on
 * READY->PAUSED (the state change waits; the streaming thread never decodes). They stay
 * embedded until READY->NULL; a query naming a file that was not embedded, set while PAUSED or
 * PLAYING, is refused with a warning (the previous queries stay in use): set it in READY.
 * Texts are embedded with the prompts.
 *
 * The embedding of a composed query is `q = s_text * n(sum_k w_k n(v_k))`, where `v_k` is
 * term k's embedding, `w_k` its weight, `n(x) = x / |x|` and `s_text` the text logit scale.
 * Its score is the cosine `e · q / (|e| |q|)`, its logit `e · q`, exactly as for a text
 * prompt (whose embedding is `s_text * n(t)`): in the softmax a composed query counts as a
 * prompt would. A plain prompt is the text encoder's output as is. A query whose terms
 * cancel out (`text:a - text:a`) is an error.
 *
 * Applications build queries with the #GstImageBindQuery API (libgstimagebind,
 * gstimagebindquery.h) and add them with the #GstImageBindMatch::add-query action signal; they
 * come after the `prompts` in the results' indices. #GstImageBindMatch::clear-queries removes
 * them.
 *
 * The model is the encoders': without a `model` property the element asks the encoder upstream
 * which model it uses (on READY->PAUSED, when the encoders have loaded theirs) and shares that
 * copy in memory; when no encoder answers, the encoders' rules apply ($IMAGEBIND_MODEL, else
 * the shipped default). With `model` set to another model than the encoder's, its embeddings
 * are not matched: a warning is posted once, naming the encoder's file. Nor are embeddings holding
 * a NaN or infinity (which the encoders never output: for them it is an error; a warning is
 * posted for the first one, the others are counted in the debug log).
 *
 * ## Messages
 *
 * If `post-messages` is TRUE, an element message named `imagebind-match` is posted for every
 * matched embedding, with these fields:
 *
 * - `timestamp` (G_TYPE_UINT64, nanoseconds): the timestamp of the input the embedding describes
 *   (the frame, or the first sample of the audio window); it may be earlier than the timestamp
 *   of the buffer carrying the embedding (live encoders attach results to a later buffer)
 * - `stream-time` (G_TYPE_UINT64): `timestamp` in stream time
 * - `running-time` (G_TYPE_UINT64): `timestamp` in running time, as
 *   gst_segment_to_running_time() gives it, to line results up with the clock
 * - `duration` (G_TYPE_UINT64): duration of the input (GST_CLOCK_TIME_NONE if unknown)
 * - `modality` (G_TYPE_STRING): the modality of the embedding: "vision", "audio", "text",
 *   "depth", "thermal" or "imu"
 * - `mode` (G_TYPE_STRING): "classify" or "detect"
 * - `labels` (GstValueArray of G_TYPE_STRING): the `top-k` prompts (all of them when `top-k`
 *   is 0), most probable first; a composed query is named by its label
 * - `indices` (GstValueArray of G_TYPE_UINT): their positions in `prompts`
 * - `scores` (GstValueArray of G_TYPE_DOUBLE): their cosine scores, in [-1, 1]
 * - `probabilities` (GstValueArray of G_TYPE_DOUBLE): their softmax probabilities over all
 *   prompts, in [0, 1]
 * - `detected` (GstValueArray of G_TYPE_BOOLEAN): whether each is currently detected (detect
 *   mode; all FALSE in classify mode)
 * - `top-label` (G_TYPE_STRING): the most probable prompt
 * - `top-index` (G_TYPE_UINT): its position in `prompts`
 * - `top-probability` (G_TYPE_DOUBLE): its probability
 * - `top-score` (G_TYPE_DOUBLE): its cosine score
 * - `labels-strv` (G_TYPE_STRV), `indices-u32`, `scores-f64`, `probabilities-f64`
 *   (G_TYPE_BYTES, native-endian uint32 / float64): the same lists in types that PyGObject
 *   reads without gst-python, e.g. `array.array("d", s.get_value("scores-f64").get_data())`
 * - `regions` (GstValueArray of GstStructure; only when regions of interest of the input were
 *   embedded, see "Regions of interest" below): one `imagebind-region` structure per region,
 *   with the region as its embedding meta names it: `id` (G_TYPE_INT), `roi-type`
 *   (G_TYPE_STRING, "" when unset), `x`, `y`, `w`, `h` (G_TYPE_UINT, as the ROI meta has them,
 *   not clamped), and its results in the fields above: `labels`, `indices`, `scores`,
 *   `probabilities`, `detected`, the plain copies and `top-label`, `top-index`,
 *   `top-probability`, `top-score`
 *
 * In detect mode an element message named `imagebind-detection` is posted whenever a detection
 * starts or stops (regardless of `post-messages`), with all the fields above, describing the
 * embedding that completed the decision, plus:
 *
 * - `label` (G_TYPE_STRING): the prompt detected
 * - `index` (G_TYPE_UINT): its position in `prompts`
 * - `event` (G_TYPE_STRING): "start" or "stop"
 * - `score` (G_TYPE_DOUBLE): the prompt's cosine score in that embedding
 * - `since` (G_TYPE_UINT64): stream time at which the run of scores that caused the event
 *   began (for "start", when the score first rose above the threshold; for "stop", when it
 *   first fell to or below it)
 *
 * When the prompts or the application's queries change while PAUSED or PLAYING, an element
 * message named `imagebind-prompts` is posted (regardless of `post-messages`, from the
 * embedding thread) when the new set, parsed, starts being embedded and when it is ready, with:
 *
 * - `state` (G_TYPE_STRING): "embedding", then "ready"; buffers that enter after "ready" are
 *   matched against the new set. A set that cannot be used (an invalid entry, a reference
 *   file not embedded on READY->PAUSED) gets a WARNING instead of "ready", and the previous
 *   prompts stay in use.
 * - `count` (G_TYPE_UINT): the number of queries (`prompts` entries, `prompts-file` lines and
 *   the application's queries)
 * - `elapsed` (G_TYPE_UINT64, nanoseconds; "ready" only): how long the embedding took
 *
 * A detection still open at EOS, at a flush (seek) or when the prompts change ends with an
 * `imagebind-detection` "stop" message whose
 * `stream-time` and `since` are the end of the last embedding, `score` the last score, with
 * `timestamp`, `running-time` and `duration` GST_CLOCK_TIME_NONE, empty lists and no `top-*`
 * fields.
 *
 * ## Regions of interest
 *
 * An embedding meta that names a region (imagebindvision with `inference-region=roi-list` or
 * `both`) is scored against the prompts as a whole frame is, with these differences:
 *
 * - Its best result is added to the frame's #GstVideoRegionOfInterestMeta that has the same
 *   id, roi_type and rectangle, as a parameter structure named "imagebind-match" (fields in
 *   gstimagebindroi.h: label, index, cosine, probability, detected, mode), as GStreamer's own
 *   detectors and DL Streamer attach classifications to regions; imagebindoverlay draws it.
 *   Type and rectangle count, not only the id, because detectors commonly give every region
 *   the same id (facedetect leaves them all 0). In live mode the embeddings reach a later
 *   buffer than the frame they describe: a region that moved there is not annotated; its
 *   result is in the message, and the embedding meta names the region.
 * - The `imagebind-match` message of its frame lists it in `regions`; when the frame itself
 *   was not embedded (`roi-list`) that message has empty lists and no `top-*` fields.
 * - It gets no #GstImageBindMatchMeta: that meta's readers (imagebindoverlay's panel, the
 *   publishers, the index sink, `text_src`) take it for the frame's result.
 * - Detect mode does not follow regions over time (a region's id is not an identity from frame
 *   to frame): `detected` says whether its cosine score is above `threshold` in that frame, and
 *   no `imagebind-detection` messages are posted for regions.
 * - `text_src` carries the whole frame's tag only; with `roi-list` it carries GAP events.
 *
 * ## Timed text
 *
 * A `text_src` pad can be requested: it carries text/x-raw (utf8) buffers with the current top
 * label (classify mode) or the currently detected labels separated by ", " (detect mode), so
 * that `textoverlay`, subtitle encoders and muxers can carry the tags. A tag lasts until the
 * next result: every buffer that passes gets a text buffer of its own timestamp and duration
 * with the last result's text, so `textoverlay` shows it continuously (a text buffer is never
 * pushed before the media it covers, so the overlay never waits; a longer duration would make
 * it hold the stream until the video reached it). Before the first result, after a flush, when
 * the prompts change and in detect mode while nothing is detected, buffers become GAP events on
 * that pad, so that a `textoverlay` never waits for text; so do buffers of zero duration (with a
 * 1 ns gap). Its stream (stream-start, caps, segment) follows the sink pad's segment; flushes
 * and EOS are forwarded.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -m videotestsrc num-buffers=5 ! videoconvert ! imagebindvision ! imagebindmatch prompt-list="colour bars;a bouncing ball;static noise" ! fakesink
 * ]|
 * Classifies five frames and prints an `imagebind-match` message for each (a test source or
 * a file is not live: every frame is embedded).
 *
 * |[
 * printf '# test scenes, one prompt per line\ncolour bars\na bouncing ball\nstatic noise\n' > /tmp/scenes.txt
 * gst-launch-1.0 -m videotestsrc pattern=ball num-buffers=50 ! videoconvert ! imagebindvision inference-interval=10 ! imagebindmatch name=m prompts-file=/tmp/scenes.txt ! fakesink m.text_src ! queue ! filesink location=/tmp/tags.txt
 * ]|
 * Prompts from a file; every 10th frame is embedded, and the top label, repeated for every
 * frame until the next result, goes to /tmp/tags.txt (link `text_src` to a `textoverlay` to
 * draw it on the video).
 *
 * |[
 * gst-launch-1.0 -q videotestsrc pattern=ball num-buffers=1 ! pngenc ! filesink location=/tmp/ref-ball.png
 * gst-launch-1.0 -q audiotestsrc wave=ticks num-buffers=40 ! wavenc ! filesink location=/tmp/ref-ticks.wav
 * gst-launch-1.0 -m videotestsrc pattern=ball num-buffers=3 ! videoconvert ! imagebindvision ! imagebindmatch top-k=2 prompt-list="like my picture = image:/tmp/ref-ball.png;ticks not bars = audio:/tmp/ref-ticks.wav - 0.5 * text:colour bars;colour bars;snow" ! fakesink
 * ]|
 * With the shipped default model: a reference picture, a reference sound minus a text, and two
 * plain prompts; the first frame scores 1 against its own picture.
 *
 * |[
 * gst-launch-1.0 -m v4l2src ! videoconvert ! imagebindvision interval=500000000 ! imagebindmatch mode=detect threshold=0.25 min-duration=1000000000 prompt-list="a person;a dog;a cat" ! fakesink
 * ]|
 * Announces when a person, a dog or a cat appears in front of the camera and when it leaves
 * (a camera is live: the encoder's worker never holds the video back).
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstimagebindmatch.h"
#include "gstimagebindmeta.h"
#include "gstimagebindmatchqueries.h"
#include "gstimagebindroi.h"

#include <math.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_image_bind_match_debug);
#define GST_CAT_DEFAULT gst_image_bind_match_debug

#define DEFAULT_MODE GST_IMAGE_BIND_MATCH_MODE_CLASSIFY
#define DEFAULT_TOP_K 0
#define DEFAULT_THRESHOLD 0.25
#define DEFAULT_MIN_DURATION (500 * GST_MSECOND)
#define DEFAULT_COOLDOWN (1 * GST_SECOND)
#define DEFAULT_POST_MESSAGES TRUE
#define DEFAULT_N_THREADS 0
#define DEFAULT_CUSTOM_META FALSE

enum {
  PROP_0,
  PROP_MODEL,
  PROP_PROMPTS,
  PROP_MODE,
  PROP_TOP_K,
  PROP_THRESHOLD,
  PROP_MIN_DURATION,
  PROP_COOLDOWN,
  PROP_POST_MESSAGES,
  PROP_N_THREADS,
  PROP_CUSTOM_META,
  PROP_PROMPT_LIST,
  PROP_PROMPTS_FILE,
};

/* Stream time after which buffers without any embedding make the element warn once (sooner
 * at EOS): long enough for a slow model's first result in live mode. */
#define NO_EMBEDDINGS_WARNING_AFTER (30 * GST_SECOND)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static GstStaticPadTemplate text_src_template = GST_STATIC_PAD_TEMPLATE ("text_src",
    GST_PAD_SRC, GST_PAD_REQUEST, GST_STATIC_CAPS ("text/x-raw, format = (string) utf8"));

G_DEFINE_TYPE (GstImageBindMatch, gst_image_bind_match, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE (imagebindmatch, "imagebindmatch", GST_RANK_NONE,
    GST_TYPE_IMAGE_BIND_MATCH);

/* The span of one embedding, in the forms the messages report. */
typedef struct {
  GstClockTime pts, duration, stream_time, running_time;
} Span;

/* Settings read once per buffer, so that one buffer is handled with one set of values. */
typedef struct {
  GstImageBindMatchMode mode;
  guint top_k;
  gdouble threshold;
  GstClockTime min_duration, cooldown;
  gboolean post_messages;
  gboolean custom_meta;
} Settings;

/* ---- prompt embeddings ---- */

static void
free_query_embeddings (GstImageBindMatch * self)
{
  g_clear_pointer (&self->query_labels, g_strfreev);
  g_clear_pointer (&self->query_embeddings, g_free);
  g_clear_pointer (&self->detectors, g_free);
  self->n_queries = 0;
}

static void
clear_queries (GstImageBindMatch * self)
{
  free_query_embeddings (self);
  GST_OBJECT_LOCK (self);
  self->have_queries = FALSE;
  GST_OBJECT_UNLOCK (self);
}

static void
reset_detectors (GstImageBindMatch * self)
{
  guint i;

  for (i = 0; self->detectors && i < GST_IMAGE_BIND_N_MODALITIES * self->n_queries; i++)
    gst_image_bind_detector_reset (&self->detectors[i]);
}

static void stop_open_detections (GstImageBindMatch * self);

/* The queries: one per entry of `prompts`, then one per line of `prompts-file` (parsed:
 * gst_image_bind_query_parse()), then the application's. */
static GPtrArray *
collect_queries (gchar ** prompts, const gchar * prompts_file, GPtrArray * app_queries,
    GError ** error)
{
  GPtrArray *queries = gst_image_bind_queries_from_prompts (prompts, prompts_file, error);
  guint i;

  if (!queries)
    return NULL;
  for (i = 0; i < app_queries->len; i++)
    g_ptr_array_add (queries, gst_image_bind_query_ref (app_queries->pdata[i]));
  return queries;
}

/* One set of query embeddings: a snapshot of `prompts` and the application's queries, then
 * their embeddings (or why they could not be made), installed by the streaming thread or
 * start(). */
typedef struct {
  GstImageBindMatch *self;
  guint cookie;                 /* the prompts_cookie of the snapshot */
  gchar **prompts;
  gchar *prompts_file;
  GPtrArray *app_queries;
  gint n_threads;
  /* the result */
  gchar **labels;
  guint n;
  gfloat *emb;
  GError *error;
} QuerySet;

static void
query_set_free (QuerySet * qs)
{
  g_strfreev (qs->prompts);
  g_free (qs->prompts_file);
  g_ptr_array_free (qs->app_queries, TRUE);
  g_strfreev (qs->labels);
  g_free (qs->emb);
  g_clear_error (&qs->error);
  g_free (qs);
}

/* A snapshot of the queries, or NULL when the installed ones are up to date. Called with the
 * object lock. */
static QuerySet *
query_set_snapshot (GstImageBindMatch * self)
{
  QuerySet *qs;
  guint i;

  if (self->have_queries && self->prompts_cookie == self->query_cookie)
    return NULL;
  qs = g_new0 (QuerySet, 1);
  qs->self = self;
  qs->cookie = self->prompts_cookie;
  qs->prompts = g_strdupv (self->prompts);
  qs->prompts_file = g_strdup (self->prompts_file);
  qs->app_queries = g_ptr_array_new_with_free_func ((GDestroyNotify)
      gst_image_bind_query_unref);
  for (i = 0; i < self->app_queries->len; i++)
    g_ptr_array_add (qs->app_queries, gst_image_bind_query_ref (self->app_queries->pdata[i]));
  qs->n_threads = self->n_threads;
  return qs;
}

/* Posts the `imagebind-prompts` element message (see "Messages"). */
static void
post_prompts_message (GstImageBindMatch * self, const gchar * state, guint count,
    GstClockTime elapsed)
{
  GstStructure *s = gst_structure_new ("imagebind-prompts",
      "state", G_TYPE_STRING, state, "count", G_TYPE_UINT, count, NULL);

  if (GST_CLOCK_TIME_IS_VALID (elapsed))
    gst_structure_set (s, "elapsed", G_TYPE_UINT64, elapsed, NULL);
  gst_element_post_message (GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), s));
}

/* Parses and embeds @qs with the text model. Touches no state of the element but the text
 * model and (when @allow_media, in start() only) the media cache: it runs either in start() or
 * on the embedding thread, never both at once (see maybe_start_job()). With @announce, posts
 * the "embedding" message once the queries are parsed (the prompts file read), so that its
 * count is the set's. */
static void
query_set_embed (QuerySet * qs, gboolean allow_media, gboolean announce)
{
  GstImageBindMatch *self = qs->self;
  GPtrArray *queries;
  guint n, i;

  queries = collect_queries (qs->prompts, qs->prompts_file, qs->app_queries, &qs->error);
  if (!queries)
    return;
  if (allow_media && !gst_image_bind_media_cache_fill (self->media_cache, self->handle,
          qs->n_threads, queries, &qs->error)) {
    g_ptr_array_free (queries, TRUE);
    return;
  }

  n = queries->len;
  if (announce)
    post_prompts_message (self, "embedding", n, GST_CLOCK_TIME_NONE);
  if (n > 0) {
    gint64 start = g_get_monotonic_time ();

    qs->emb = gst_image_bind_match_embed_queries (self->handle, self->media_cache, queries,
        &qs->error);
    if (!qs->emb) {
      g_ptr_array_free (queries, TRUE);
      return;
    }
    GST_INFO_OBJECT (self, "embedded %u queries in %" G_GINT64_FORMAT " ms", n,
        (g_get_monotonic_time () - start) / 1000);
  }
  qs->labels = g_new0 (gchar *, n + 1);
  for (i = 0; i < n; i++)
    qs->labels[i] = g_strdup (gst_image_bind_query_get_label (queries->pdata[i]));
  qs->n = n;
  g_ptr_array_free (queries, TRUE);
}

/* Records that the queries of @qs are in use (or, when it failed, that they are not to be
 * tried again until they change), for query_set_snapshot(). Called with the object lock. */
static void
query_set_mark_done (GstImageBindMatch * self, QuerySet * qs)
{
  self->query_cookie = qs->cookie;
  if (!qs->error)
    self->have_queries = TRUE;
}

/* Makes @qs the queries in use (streaming thread, or start()). One that failed leaves the
 * previous ones in use. */
static void
query_set_install (GstImageBindMatch * self, QuerySet * qs)
{
  if (!qs->error) {
    /* Detections of the old queries end here, so that every "start" has its "stop". */
    stop_open_detections (self);
    free_query_embeddings (self);
    self->query_labels = g_steal_pointer (&qs->labels);
    self->n_queries = qs->n;
    self->query_embeddings = g_steal_pointer (&qs->emb);
    self->detectors = g_new (GstImageBindDetector,
        MAX (qs->n, 1) * GST_IMAGE_BIND_N_MODALITIES);
    reset_detectors (self);
    /* the tag of the old queries does not stand for the new ones */
    g_clear_pointer (&self->last_text, g_free);
  }
  GST_OBJECT_LOCK (self);
  query_set_mark_done (self, qs);
  GST_OBJECT_UNLOCK (self);
}

/* The embedding thread: embeds one snapshot while the streaming thread goes on with the
 * previous queries, then flags it done; the streaming thread swaps it in at its next buffer. */
static gpointer
query_set_job (gpointer data)
{
  QuerySet *qs = data;
  GstImageBindMatch *self = qs->self;
  gint64 start = g_get_monotonic_time ();

  query_set_embed (qs, FALSE, TRUE);
  if (qs->error) {
    /* Keep matching with the previous prompts: a bad prompt must not stop a live stream. */
    if (qs->error->domain == GST_IMAGE_BIND_QUERY_ERROR)
      GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
          ("Invalid query: %s. The previous prompts stay in use.", qs->error->message), (NULL));
    else if (qs->error->domain == G_FILE_ERROR)
      GST_ELEMENT_WARNING (self, RESOURCE, OPEN_READ,
          ("Could not read the prompts: %s. The previous prompts stay in use.",
              qs->error->message), (NULL));
    else
      GST_ELEMENT_WARNING (self, LIBRARY, FAILED,
          ("Could not embed the prompts: %s. The previous prompts stay in use.",
              qs->error->message), (NULL));
  }
  g_mutex_lock (&self->job_lock);
  self->job_done = TRUE;
  g_mutex_unlock (&self->job_lock);
  /* After job_done: a buffer that enters after this message is matched with the new set. */
  if (!qs->error)
    post_prompts_message (self, "ready", qs->n,
        (GstClockTime) (g_get_monotonic_time () - start) * GST_USECOND);
  return NULL;
}

/* Starts embedding the queries on a thread of their own if they changed, the element is
 * started and no embedding is under way (one at a time: changes made meanwhile are embedded
 * after it). Called from any thread, without the object lock. */
static void
maybe_start_job (GstImageBindMatch * self)
{
  QuerySet *qs = NULL;
  GError *err = NULL;

  g_mutex_lock (&self->job_lock);
  if (self->started && !self->job) {
    GST_OBJECT_LOCK (self);
    qs = query_set_snapshot (self);
    GST_OBJECT_UNLOCK (self);
  }
  if (qs) {
    self->job = g_thread_try_new ("ibmatch-prompts", query_set_job, qs, &err);
    if (self->job) {
      self->job_data = qs;
      self->job_done = FALSE;
    }
  }
  g_mutex_unlock (&self->job_lock);
  if (qs && err) {
    GST_ELEMENT_WARNING (self, RESOURCE, FAILED,
        ("Could not start a thread to embed the new prompts: %s. The previous prompts stay "
            "in use.", err->message), (NULL));
    g_error_free (err);
    GST_OBJECT_LOCK (self);
    self->query_cookie = qs->cookie;
    GST_OBJECT_UNLOCK (self);
    query_set_free (qs);
  }
}

/* Takes the embedding thread and its result (NULL if none, or if @only_done and it is still
 * working), and joins it. */
static QuerySet *
take_job (GstImageBindMatch * self, gboolean only_done)
{
  GThread *thread = NULL;
  QuerySet *qs = NULL;

  g_mutex_lock (&self->job_lock);
  if (self->job && (self->job_done || !only_done)) {
    thread = g_steal_pointer (&self->job);
    qs = g_steal_pointer (&self->job_data);
    /* A done set is marked in use before the job slot looks free, so that a change racing
     * with its installation does not embed the same set again (stop() drops it instead). */
    if (only_done) {
      GST_OBJECT_LOCK (self);
      query_set_mark_done (self, qs);
      GST_OBJECT_UNLOCK (self);
    }
    self->job_done = FALSE;
  }
  g_mutex_unlock (&self->job_lock);
  if (thread)
    g_thread_join (thread);
  return qs;
}

/* Streaming thread, at every buffer: swaps in embeddings that are ready, and starts embedding
 * changed queries. Never waits for an embedding. */
static void
update_queries (GstImageBindMatch * self)
{
  QuerySet *qs = take_job (self, TRUE);

  if (qs) {
    query_set_install (self, qs);
    query_set_free (qs);
  }
  maybe_start_job (self);
}

/* ---- text pad ---- */

/* The text pad (a reference) and which request it came from. */
static GstPad *
get_text_pad (GstImageBindMatch * self, guint * generation)
{
  GstPad *pad;

  GST_OBJECT_LOCK (self);
  pad = self->text_pad ? gst_object_ref (self->text_pad) : NULL;
  *generation = self->text_pad_generation;
  GST_OBJECT_UNLOCK (self);
  return pad;
}

/* Sends what must precede data on the text pad: stream-start and caps once, then the segment
 * whenever the sink segment changed. FALSE when the sink segment is not in time (no timed
 * text can be made then). */
static gboolean
text_pad_prepare (GstImageBindMatch * self, GstPad * pad, guint generation)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);

  if (trans->segment.format != GST_FORMAT_TIME)
    return FALSE;
  /* A pad requested since the last time starts its own stream. */
  if (generation != self->text_started_generation) {
    self->text_started_generation = generation;
    self->text_need_start = TRUE;
  }
  if (self->text_need_start) {
    gchar *id = gst_pad_create_stream_id (pad, GST_ELEMENT (self), "text");
    GstCaps *caps = gst_static_pad_template_get_caps (&text_src_template);

    gst_pad_push_event (pad, gst_event_new_stream_start (id));
    gst_pad_push_event (pad, gst_event_new_caps (caps));
    gst_caps_unref (caps);
    g_free (id);
    self->text_need_start = FALSE;
    self->text_need_segment = TRUE;
  }
  if (self->text_need_segment) {
    gst_pad_push_event (pad, gst_event_new_segment (&trans->segment));
    self->text_need_segment = FALSE;
  }
  return TRUE;
}

/* Sends @text for the span of @buffer, or a GAP event for it when @text is NULL. */
static void
text_pad_push (GstImageBindMatch * self, GstBuffer * buffer, const gchar * text)
{
  GstClockTime pts = GST_BUFFER_PTS (buffer);
  GstFlowReturn ret;
  guint generation;
  GstPad *pad = get_text_pad (self, &generation);

  if (!pad)
    return;
  if (!GST_CLOCK_TIME_IS_VALID (pts) || !text_pad_prepare (self, pad, generation)) {
    gst_object_unref (pad);
    return;
  }
  /* An empty span (e.g. the empty buffer that carries an encoder's last results at EOS) has
   * no room for text. A gap reaching 1 ns past it moves downstream's text position beyond the
   * buffer: textoverlay would otherwise wait for text to cover it, forever. */
  if (GST_BUFFER_DURATION (buffer) == 0) {
    gst_pad_push_event (pad, gst_event_new_gap (pts, 1));
    gst_object_unref (pad);
    return;
  }

  if (text) {
    gsize len = strlen (text);
    GstBuffer *out = gst_buffer_new_memdup (text, len);

    GST_BUFFER_PTS (out) = pts;
    GST_BUFFER_DURATION (out) = GST_BUFFER_DURATION (buffer);
    ret = gst_pad_push (pad, out);
    /* The tags are a side output: a text branch that is unlinked or fails does not stop the
     * media. */
    if (ret != GST_FLOW_OK)
      GST_DEBUG_OBJECT (self, "text_src push: %s", gst_flow_get_name (ret));
  } else {
    gst_pad_push_event (pad, gst_event_new_gap (pts, GST_BUFFER_DURATION (buffer)));
  }
  gst_object_unref (pad);
}

static void
text_pad_push_event (GstImageBindMatch * self, GstEvent * event)
{
  guint generation;
  GstPad *pad = get_text_pad (self, &generation);

  if (pad) {
    if (GST_EVENT_TYPE (event) == GST_EVENT_EOS)
      text_pad_prepare (self, pad, generation);     /* downstream of the pad must see a stream end */
    gst_pad_push_event (pad, gst_event_ref (event));
    gst_object_unref (pad);
  }
}

/* ---- results ---- */

static void
append_string (GValue * array, const gchar * str)
{
  GValue v = G_VALUE_INIT;

  g_value_init (&v, G_TYPE_STRING);
  g_value_set_string (&v, str);
  gst_value_array_append_and_take_value (array, &v);
}

/* The result fields of the messages (and of their regions). */
#define MESSAGE_FIELDS (GST_IMAGE_BIND_MATCH_RESULTS_LISTS | \
    GST_IMAGE_BIND_MATCH_RESULTS_DETECTED | GST_IMAGE_BIND_MATCH_RESULTS_PLAIN | \
    GST_IMAGE_BIND_MATCH_RESULTS_TOP)

/* The fields shared by both messages. */
static GstStructure *
results_structure (const gchar * name, GstImageBindModality modality,
    GstImageBindMatchMode mode, const Span * span, const GstImageBindMatchResult * results,
    guint n_results)
{
  GstStructure *s;

  s = gst_structure_new (name,
      "timestamp", G_TYPE_UINT64, span->pts,
      "stream-time", G_TYPE_UINT64, span->stream_time,
      "running-time", G_TYPE_UINT64, span->running_time,
      "duration", G_TYPE_UINT64, span->duration,
      "modality", G_TYPE_STRING, gst_image_bind_modality_to_string (modality),
      "mode", G_TYPE_STRING, gst_image_bind_match_mode_to_string (mode), NULL);
  gst_image_bind_match_results_add_fields (s, results, n_results, MESSAGE_FIELDS);
  return s;
}

static Span
embedding_span (GstImageBindMatch * self, GstBuffer * buffer,
    const GstImageBindEmbeddingMeta * emeta)
{
  GstSegment *segment = &GST_BASE_TRANSFORM (self)->segment;
  Span span;

  if (GST_CLOCK_TIME_IS_VALID (emeta->pts)) {
    span.pts = emeta->pts;
    span.duration = emeta->duration;
  } else {
    span.pts = GST_BUFFER_PTS (buffer);
    span.duration = GST_BUFFER_DURATION (buffer);
  }
  span.stream_time = emeta->stream_time;
  span.running_time = emeta->running_time;
  if (GST_CLOCK_TIME_IS_VALID (span.pts) && segment->format == GST_FORMAT_TIME) {
    span.stream_time = gst_segment_to_stream_time (segment, GST_FORMAT_TIME, span.pts);
    span.running_time = gst_segment_to_running_time (segment, GST_FORMAT_TIME, span.pts);
  }
  return span;
}

static void
post_detection (GstImageBindMatch * self, GstImageBindModality modality, const Span * span,
    const GstImageBindMatchResult * results, guint n_results, guint index,
    GstImageBindDetectionEvent event, gdouble score, GstClockTime since)
{
  GstStructure *s;

  s = results_structure ("imagebind-detection", modality, GST_IMAGE_BIND_MATCH_MODE_DETECT,
      span, results, n_results);
  gst_structure_set (s,
      "label", G_TYPE_STRING, self->query_labels[index],
      "index", G_TYPE_UINT, index,
      "event", G_TYPE_STRING, event == GST_IMAGE_BIND_DETECTION_START ? "start" : "stop",
      "score", G_TYPE_DOUBLE, score,
      "since", G_TYPE_UINT64, since, NULL);
  GST_INFO_OBJECT (self, "%s: \"%s\" %s (score %.3f)", gst_image_bind_modality_to_string
      (modality), self->query_labels[index], event == GST_IMAGE_BIND_DETECTION_START ?
      "start" : "stop", score);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
}

/* Whether @emeta can be matched against the prompts (its width, finite values); warns once
 * when it cannot. */
static gboolean
embedding_usable (GstImageBindMatch * self, const GstImageBindEmbeddingMeta * emeta)
{
  guint i, dim = gst_image_bind_model_handle_get_dim (self->handle);

  if (emeta->dim != dim || !emeta->vector) {
    if (!self->warned_dim) {
      /* The encoder's file, when it was loaded in this process (the model cache knows it). */
      gchar *file = emeta->model_id ? gst_image_bind_model_find_loaded (emeta->model_id) : NULL;
      gchar *remedy = file ? g_strdup_printf (" (set model=%s, or leave 'model' unset to use "
          "the encoder's)", file) : g_strdup ("");

      GST_ELEMENT_WARNING (self, STREAM, FORMAT,
          ("Embeddings of width %u (model \"%s\") cannot be matched with the %u-wide prompt "
              "embeddings of model \"%s\": use the same model in the encoder and the "
              "matcher%s.", emeta->dim, emeta->model_id, dim,
              gst_image_bind_model_handle_get_id (self->handle), remedy), (NULL));
      self->warned_dim = TRUE;
      g_free (remedy);
      g_free (file);
    }
    return FALSE;
  }
  if (!self->warned_model && emeta->model_id && *emeta->model_id &&
      g_strcmp0 (emeta->model_id, gst_image_bind_model_handle_get_id (self->handle)) != 0) {
    GST_WARNING_OBJECT (self, "embedding from model %s matched with prompts of model %s",
        emeta->model_id, gst_image_bind_model_handle_get_id (self->handle));
    self->warned_model = TRUE;
  }

  for (i = 0; i < dim; i++) {
    if (!isfinite (emeta->vector[i])) {
      /* Our encoders never output one (an error there); an application's meta may. */
      self->n_non_finite++;
      if (self->n_non_finite == 1)
        GST_ELEMENT_WARNING (self, STREAM, FORMAT,
            ("An embedding (model \"%s\", %s) holds a non-finite value (NaN or infinity) and "
                "cannot be matched; it and any further such embeddings are skipped.",
                emeta->model_id ? emeta->model_id : "",
                gst_image_bind_modality_to_string (emeta->modality)),
            ("value %g at index %u", emeta->vector[i], i));
      GST_INFO_OBJECT (self, "%" G_GUINT64_FORMAT " non-finite embeddings skipped so far",
          self->n_non_finite);
      return FALSE;
    }
  }
  return TRUE;
}

/* Every prompt's result for @emeta, in prompt order (labels owned by the element); the cosine
 * scores also in *@cosine (g_free both). */
static GstImageBindMatchResult *
score_embedding (GstImageBindMatch * self, const GstImageBindEmbeddingMeta * emeta,
    gdouble ** cosine)
{
  guint i, n = self->n_queries, dim = gst_image_bind_model_handle_get_dim (self->handle);
  GstImageBindMatchResult *all;
  gdouble *prob;

  *cosine = g_new (gdouble, n);
  prob = g_new (gdouble, n);
  all = g_new0 (GstImageBindMatchResult, n);
  gst_image_bind_match_score (emeta->vector, self->query_embeddings, dim, n, *cosine, prob);
  for (i = 0; i < n; i++) {
    all[i].index = i;
    all[i].label = self->query_labels[i];
    all[i].cosine = (*cosine)[i];
    all[i].probability = prob[i];
  }
  g_free (prob);
  return all;
}

/* Scores one whole-input embedding meta of @buffer (writable), attaches the match meta and
 * posts the messages, the match message with @regions (a GstValueArray of "imagebind-region"
 * structures, taken) when not NULL. Returns the match meta, or NULL when the embedding cannot
 * be matched. */
static GstImageBindMatchMeta *
match_embedding (GstImageBindMatch * self, GstBuffer * buffer,
    const GstImageBindEmbeddingMeta * emeta, const Settings * set, GValue * regions)
{
  guint n = self->n_queries;
  GstImageBindMatchResult *all;
  GstImageBindMatchMeta *mmeta;
  GstImageBindDetector *det;
  GstImageBindDetectionEvent *events;
  GstClockTime *since;
  gdouble *cosine;
  guint i, n_results;
  Span span;

  if (!embedding_usable (self, emeta)) {
    if (regions)
      g_value_unset (regions);
    return NULL;
  }

  span = embedding_span (self, buffer, emeta);
  all = score_embedding (self, emeta, &cosine);

  det = self->detectors + (gsize) emeta->modality * n;
  events = g_new0 (GstImageBindDetectionEvent, n);
  since = g_new (GstClockTime, n);
  if (set->mode == GST_IMAGE_BIND_MATCH_MODE_DETECT) {
    GstClockTime start = GST_CLOCK_TIME_IS_VALID (span.stream_time) ? span.stream_time :
        span.pts;
    GstClockTime end = GST_CLOCK_TIME_IS_VALID (span.duration) && GST_CLOCK_TIME_IS_VALID (start)
        ? start + span.duration : start;

    /* Without a time the input cannot be placed on the time line: it does not count. */
    for (i = 0; i < n && GST_CLOCK_TIME_IS_VALID (start); i++) {
      events[i] = gst_image_bind_detector_update (&det[i], cosine[i], start, end,
          set->threshold, set->min_duration, set->cooldown, &since[i]);
      all[i].detected = det[i].active;
    }
  }

  gst_image_bind_match_results_sort (all, n);
  n_results = (set->top_k == 0 || set->top_k > n) ? n : set->top_k;

  mmeta = gst_buffer_add_imagebind_match_meta (buffer, emeta->modality, set->mode, all,
      n_results);
  mmeta->pts = span.pts;
  mmeta->duration = span.duration;
  mmeta->stream_time = span.stream_time;
  mmeta->running_time = span.running_time;
  if (set->custom_meta)
    gst_buffer_add_imagebind_match_custom_meta (buffer, mmeta);

  if (set->post_messages) {
    GstStructure *s = results_structure ("imagebind-match", emeta->modality, set->mode, &span,
        all, n_results);
    if (regions) {
      gst_structure_take_value (s, "regions", regions);
      regions = NULL;           /* the structure owns it */
    }
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_element (GST_OBJECT (self), s));
  }

  /* After the match message, and with the same sorted lists. */
  for (i = 0; i < n; i++) {
    if (events[i] != GST_IMAGE_BIND_DETECTION_NONE)
      post_detection (self, emeta->modality, &span, all, n_results, i, events[i], cosine[i],
          since[i]);
  }

  if (regions)
    g_value_unset (regions);
  g_free (events);
  g_free (since);
  g_free (all);
  g_free (cosine);
  return mmeta;
}

/* ---- regions of interest ---- */

/* The scores of one region's embedding: best first, top-k of them. */
typedef struct {
  const GstImageBindEmbeddingMeta *emeta;
  GstImageBindMatchResult *results;
  guint n_results;
  gboolean reported;            /* in a match message already */
} RegionMatch;

static void
region_match_free (RegionMatch * rm)
{
  g_free (rm->results);
  g_free (rm);
}

/* Scores a region's embedding. Regions have no identity over time (a ROI id names a region of
 * one frame; trackers aside, detectors renumber them), so detect mode does not follow them:
 * `detected` is whether the score is above `threshold` in this frame. */
static RegionMatch *
match_region (GstImageBindMatch * self, const GstImageBindEmbeddingMeta * emeta,
    const Settings * set)
{
  RegionMatch *rm;
  gdouble *cosine;
  guint i, n = self->n_queries;

  if (!embedding_usable (self, emeta))
    return NULL;
  rm = g_new0 (RegionMatch, 1);
  rm->emeta = emeta;
  rm->results = score_embedding (self, emeta, &cosine);
  g_free (cosine);
  for (i = 0; i < n && set->mode == GST_IMAGE_BIND_MATCH_MODE_DETECT; i++)
    rm->results[i].detected = rm->results[i].cosine > set->threshold;
  gst_image_bind_match_results_sort (rm->results, n);
  rm->n_results = (set->top_k == 0 || set->top_k > n) ? n : set->top_k;
  return rm;
}

/* "imagebind-region": the region as its embedding meta names it, and its results. */
static GstStructure *
region_structure (const RegionMatch * rm)
{
  const GstImageBindRegion *r = &rm->emeta->region;
  GstStructure *s;

  s = gst_structure_new ("imagebind-region",
      "id", G_TYPE_INT, r->id,
      "roi-type", G_TYPE_STRING, r->roi_type ? g_quark_to_string (r->roi_type) : "",
      "x", G_TYPE_UINT, r->x,
      "y", G_TYPE_UINT, r->y,
      "w", G_TYPE_UINT, r->w,
      "h", G_TYPE_UINT, r->h, NULL);
  /* the fields of a whole input's message */
  gst_image_bind_match_results_add_fields (s, rm->results, rm->n_results, MESSAGE_FIELDS);
  return s;
}

/* The regions of @matches not reported yet whose embeddings describe the same input as
 * @emeta (modality and timestamp), as a GstValueArray of structures in @array; FALSE when
 * there are none. */
static gboolean
take_regions_of (GPtrArray * matches, const GstImageBindEmbeddingMeta * emeta, GValue * array)
{
  guint i;

  for (i = 0; i < matches->len; i++) {
    RegionMatch *rm = matches->pdata[i];
    GValue v = G_VALUE_INIT;

    if (rm->reported || rm->emeta->modality != emeta->modality || rm->emeta->pts != emeta->pts)
      continue;
    if (!G_IS_VALUE (array))
      g_value_init (array, GST_TYPE_ARRAY);
    g_value_init (&v, GST_TYPE_STRUCTURE);
    g_value_take_boxed (&v, region_structure (rm));
    gst_value_array_append_and_take_value (array, &v);
    rm->reported = TRUE;
  }
  return G_IS_VALUE (array);
}

/* Adds each region's best result to the ROI meta of @buffer that its embedding names (same id,
 * type and rectangle: a detector may give every region the same id, and in live mode the
 * buffer is a later frame, whose regions are not those embedded unless they did not move). */
static void
annotate_rois (GstBuffer * buffer, GPtrArray * matches, GstImageBindMatchMode mode)
{
  gpointer state = NULL;
  GstMeta *meta;
  guint i;

  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) meta;

    for (i = 0; i < matches->len; i++) {
      RegionMatch *rm = matches->pdata[i];
      const GstImageBindRegion *r = &rm->emeta->region;

      if (rm->n_results > 0 && r->id == roi->id && r->roi_type == roi->roi_type &&
          r->x == roi->x && r->y == roi->y && r->w == roi->w && r->h == roi->h) {
        gst_image_bind_roi_add_match_param (roi, &rm->results[0], mode);
        break;
      }
    }
  }
}

/* Match messages for regions whose whole input was not embedded (inference-region=roi-list):
 * one per input, with empty whole-input results. */
static void
post_region_messages (GstImageBindMatch * self, GstBuffer * buffer, GPtrArray * matches,
    const Settings * set)
{
  guint i;

  for (i = 0; i < matches->len; i++) {
    RegionMatch *rm = matches->pdata[i];
    GValue regions = G_VALUE_INIT;
    GstStructure *s;
    Span span;

    if (rm->reported)
      continue;
    span = embedding_span (self, buffer, rm->emeta);
    take_regions_of (matches, rm->emeta, &regions);
    s = results_structure ("imagebind-match", rm->emeta->modality, set->mode, &span, NULL, 0);
    gst_structure_take_value (s, "regions", &regions);
    gst_element_post_message (GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self),
            s));
  }
}

static Settings
read_settings (GstImageBindMatch * self)
{
  Settings set;

  GST_OBJECT_LOCK (self);
  set.mode = self->mode;
  set.top_k = self->top_k;
  set.threshold = self->threshold;
  set.min_duration = self->min_duration;
  set.cooldown = self->cooldown;
  set.post_messages = self->post_messages;
  set.custom_meta = self->custom_meta;
  GST_OBJECT_UNLOCK (self);
  return set;
}

/* What the text pad says for a matched buffer: the top label, or the detected labels. */
static gchar *
text_for (GstImageBindMatch * self, GstImageBindMatchMeta * mmeta)
{
  GString *str;
  GstImageBindDetector *det;
  guint i;

  if (mmeta->mode == GST_IMAGE_BIND_MATCH_MODE_CLASSIFY)
    return g_strdup (mmeta->top_label);

  str = g_string_new (NULL);
  det = self->detectors + (gsize) mmeta->modality * self->n_queries;
  for (i = 0; i < self->n_queries; i++) {
    if (!det[i].active)
      continue;
    if (str->len)
      g_string_append (str, ", ");
    g_string_append (str, self->query_labels[i]);
  }
  if (str->len == 0) {
    g_string_free (str, TRUE);
    return NULL;
  }
  return g_string_free (str, FALSE);
}

/* Warns once when buffers pass but no embedding came for NO_EMBEDDINGS_WARNING_AFTER of stream
 * time (or, with @eos, before the end of a stream): the matcher has nothing to do. */
static void
check_embeddings_arrive (GstImageBindMatch * self, GstBuffer * buffer)
{
  GstSegment *segment = &GST_BASE_TRANSFORM (self)->segment;
  gboolean eos = buffer == NULL;
  GstClockTime rt = GST_CLOCK_TIME_NONE;

  if (self->seen_embedding || self->warned_no_embeddings)
    return;
  if (!eos) {
    self->seen_buffer = TRUE;
    if (GST_BUFFER_PTS_IS_VALID (buffer) && segment->format == GST_FORMAT_TIME)
      rt = gst_segment_to_running_time (segment, GST_FORMAT_TIME, GST_BUFFER_PTS (buffer));
    if (!GST_CLOCK_TIME_IS_VALID (rt))
      return;
    if (!GST_CLOCK_TIME_IS_VALID (self->first_running_time) || rt < self->first_running_time)
      self->first_running_time = rt;
    if (rt - self->first_running_time < NO_EMBEDDINGS_WARNING_AFTER)
      return;
  } else if (!self->seen_buffer) {
    return;
  }
  GST_ELEMENT_WARNING (self, STREAM, FORMAT,
      ("No ImageBind embeddings reached imagebindmatch %s: nothing was matched. Put an "
          "encoder upstream of it, e.g. '... ! videoconvert ! imagebindvision ! imagebindmatch "
          "...' or '... ! audioconvert ! imagebindaudio ! imagebindmatch ...'.",
          eos ? "before the end of the stream" : "in the first 30 s of the stream"),
      ("buffers pass without GstImageBindEmbeddingMeta"));
  self->warned_no_embeddings = TRUE;
}

/* ---- GstBaseTransform ---- */

/* All the work happens here, where the buffer can be made writable only when a meta is to be
 * added (a shallow copy when it is shared: media memory is never copied). */
static GstFlowReturn
gst_image_bind_match_prepare_output_buffer (GstBaseTransform * trans, GstBuffer * inbuf,
    GstBuffer ** outbuf)
{
  GstImageBindMatch *self = GST_IMAGE_BIND_MATCH (trans);
  GstImageBindEmbeddingMeta *emeta;
  GstImageBindMatchMeta *first = NULL;
  gpointer state = NULL;
  GPtrArray *embeddings, *regions;
  Settings set;
  gchar *text = NULL;
  guint i;

  *outbuf = inbuf;

  update_queries (self);

  if (gst_buffer_get_n_imagebind_embedding_metas (inbuf) == 0) {
    check_embeddings_arrive (self, inbuf);
    /* the last result's tag lasts until the next result */
    text_pad_push (self, inbuf, self->last_text);
    return GST_FLOW_OK;
  }
  self->seen_embedding = TRUE;
  if (self->n_queries == 0) {
    if (!self->warned_no_prompts) {
      GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
          ("imagebindmatch has no prompts: the embeddings pass without being matched."),
          ("set prompt-list=\"a dog;a cat\", prompts-file=FILE (one prompt per line) or "
              "prompts='<dog, cat>', or add queries with the add-query signal"));
      self->warned_no_prompts = TRUE;
    }
    text_pad_push (self, inbuf, NULL);
    return GST_FLOW_OK;
  }

  *outbuf = gst_buffer_is_writable (inbuf) ? inbuf : gst_buffer_copy (inbuf);
  set = read_settings (self);

  /* Collected first: adding metas while iterating would disturb the iteration. Regions are
   * scored first, so that the match message of their whole frame can list them. */
  embeddings = g_ptr_array_new ();
  regions = g_ptr_array_new_with_free_func ((GDestroyNotify) region_match_free);
  while ((emeta = gst_buffer_iterate_imagebind_embedding_meta (*outbuf, &state))) {
    if (!emeta->has_region) {
      g_ptr_array_add (embeddings, emeta);
    } else {
      RegionMatch *rm = match_region (self, emeta, &set);
      if (rm)
        g_ptr_array_add (regions, rm);
    }
  }
  for (i = 0; i < embeddings->len; i++) {
    GValue listed = G_VALUE_INIT;
    GstImageBindMatchMeta *m;

    emeta = embeddings->pdata[i];
    m = match_embedding (self, *outbuf, emeta, &set,
        set.post_messages && take_regions_of (regions, emeta, &listed) ? &listed : NULL);
    if (!first)
      first = m;
  }
  if (regions->len > 0) {
    annotate_rois (*outbuf, regions, set.mode);
    if (set.post_messages)
      post_region_messages (self, *outbuf, regions, &set);
  }
  g_ptr_array_free (regions, TRUE);
  g_ptr_array_free (embeddings, TRUE);

  if (first) {
    text = text_for (self, first);
    g_free (self->last_text);
    self->last_text = text;
  }
  text_pad_push (self, *outbuf, self->last_text);
  return GST_FLOW_OK;
}

static GstFlowReturn
gst_image_bind_match_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  return GST_FLOW_OK;
}

/* Detections still open end with the stream (EOS, flush) or with their prompts. */
static void
stop_open_detections (GstImageBindMatch * self)
{
  guint m, i, n = self->n_queries;

  for (m = 0; m < GST_IMAGE_BIND_N_MODALITIES && self->detectors; m++) {
    GstImageBindDetector *det = self->detectors + (gsize) m * n;

    for (i = 0; i < n; i++) {
      GstStructure *s;
      Span span;
      GstClockTime end;

      if (!det[i].active)
        continue;
      end = det[i].last_end;
      span.pts = GST_CLOCK_TIME_NONE;
      span.duration = GST_CLOCK_TIME_NONE;
      span.stream_time = end;
      span.running_time = GST_CLOCK_TIME_NONE;
      s = results_structure ("imagebind-detection", (GstImageBindModality) m,
          GST_IMAGE_BIND_MATCH_MODE_DETECT, &span, NULL, 0);
      gst_structure_set (s,
          "label", G_TYPE_STRING, self->query_labels[i],
          "index", G_TYPE_UINT, i,
          "event", G_TYPE_STRING, "stop",
          "score", G_TYPE_DOUBLE, det[i].last_score,
          "since", G_TYPE_UINT64, end, NULL);
      gst_element_post_message (GST_ELEMENT (self),
          gst_message_new_element (GST_OBJECT (self), s));
      gst_image_bind_detector_reset (&det[i]);
    }
  }
}

static gboolean
gst_image_bind_match_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstImageBindMatch *self = GST_IMAGE_BIND_MATCH (trans);
  gboolean ret;

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_STOP:
      stop_open_detections (self);
      g_clear_pointer (&self->last_text, g_free);
      break;
    case GST_EVENT_EOS:
      stop_open_detections (self);
      check_embeddings_arrive (self, NULL);
      break;
    default:
      break;
  }

  /* Chained up first: the segment is stored by the base class. */
  ret = GST_BASE_TRANSFORM_CLASS (gst_image_bind_match_parent_class)->sink_event (trans,
      gst_event_ref (event));

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_START:
    case GST_EVENT_FLUSH_STOP:
      text_pad_push_event (self, event);
      if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP)
        self->text_need_segment = TRUE;
      break;
    case GST_EVENT_SEGMENT:
      self->text_need_segment = TRUE;
      break;
    case GST_EVENT_EOS:
      text_pad_push_event (self, event);
      break;
    default:
      break;
  }
  gst_event_unref (event);
  return ret;
}

static void
reset_stream_state (GstImageBindMatch * self)
{
  reset_detectors (self);
  self->warned_dim = FALSE;
  self->warned_model = FALSE;
  self->n_non_finite = 0;
  self->warned_no_prompts = FALSE;
  self->warned_no_embeddings = FALSE;
  self->seen_embedding = FALSE;
  self->seen_buffer = FALSE;
  self->first_running_time = GST_CLOCK_TIME_NONE;
  g_clear_pointer (&self->last_text, g_free);
  self->text_need_start = TRUE;
  self->text_need_segment = TRUE;
}

static void
close_model (GstImageBindMatch * self)
{
  clear_queries (self);
  g_hash_table_remove_all (self->media_cache);
  g_clear_pointer (&self->handle, gst_image_bind_model_handle_close);
  self->handle_from_upstream = FALSE;
}

/* Without a `model`, the prompts are embedded with the model of the encoders upstream: they
 * answer the model query from READY on, and are in READY when this element goes to PAUSED
 * (state changes go from the sinks to the sources). Without an answer (no encoder linked yet),
 * the default rules: $IMAGEBIND_MODEL, else the shipped model. */
static gboolean
open_upstream_model (GstImageBindMatch * self)
{
  GError *err = NULL;
  gchar *path;
  gint n_threads;

  path = gst_image_bind_model_query_upstream (GST_BASE_TRANSFORM_SINK_PAD (self), NULL);
  GST_OBJECT_LOCK (self);
  n_threads = self->n_threads;
  GST_OBJECT_UNLOCK (self);
  self->handle = gst_image_bind_model_handle_open (path, IMAGEBIND_MODALITY_TEXT,
      "embedding text", n_threads, &err);
  if (!self->handle) {
    gst_image_bind_model_handle_post_error (GST_ELEMENT (self), err);
    g_clear_error (&err);
    g_free (path);
    return FALSE;
  }
  self->handle_from_upstream = TRUE;
  GST_INFO_OBJECT (self, "prompts embedded with %s (%s)", gst_image_bind_model_handle_get_id
      (self->handle), path ? "the encoder's model" : "no encoder answered: the default model");
  g_free (path);
  return TRUE;
}

static gboolean
gst_image_bind_match_start (GstBaseTransform * trans)
{
  GstImageBindMatch *self = GST_IMAGE_BIND_MATCH (trans);
  QuerySet *qs;

  if (!self->handle && !open_upstream_model (self))
    return FALSE;
  /* Embedding the prompts now keeps the delay off the first buffer. */
  GST_OBJECT_LOCK (self);
  qs = query_set_snapshot (self);
  GST_OBJECT_UNLOCK (self);
  if (qs) {
    query_set_embed (qs, TRUE, FALSE);
    if (qs->error) {
      const gchar *model = gst_image_bind_model_handle_get_path (self->handle);

      if (qs->error->domain == GST_IMAGE_BIND_QUERY_ERROR)
        GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("Invalid query: %s.", qs->error->message),
            ("model %s", model));
      else if (qs->error->domain == G_FILE_ERROR)
        GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ, ("Could not read the prompts: %s.",
                qs->error->message), ("model %s", model));
      else
        GST_ELEMENT_ERROR (self, LIBRARY, FAILED, ("Could not embed the prompts: %s.",
                qs->error->message), ("model %s", model));
      query_set_free (qs);
      return FALSE;
    }
    query_set_install (self, qs);
    query_set_free (qs);
  }
  /* From now on, changed prompts are embedded on a thread of their own. */
  g_mutex_lock (&self->job_lock);
  self->started = TRUE;
  g_mutex_unlock (&self->job_lock);
  reset_stream_state (self);
  return TRUE;
}

static gboolean
gst_image_bind_match_stop (GstBaseTransform * trans)
{
  GstImageBindMatch *self = GST_IMAGE_BIND_MATCH (trans);
  QuerySet *qs;

  /* An embedding under way is waited for and dropped: the next start() embeds the queries
   * as they are then. */
  g_mutex_lock (&self->job_lock);
  self->started = FALSE;
  g_mutex_unlock (&self->job_lock);
  qs = take_job (self, FALSE);
  if (qs)
    query_set_free (qs);
  reset_stream_state (self);
  /* The encoders' model is asked again on the next READY->PAUSED: it may have changed. */
  if (self->handle_from_upstream)
    close_model (self);
  return TRUE;
}

static GstStateChangeReturn
gst_image_bind_match_change_state (GstElement * element, GstStateChange transition)
{
  GstImageBindMatch *self = GST_IMAGE_BIND_MATCH (element);
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_NULL_TO_READY) {
    GError *err = NULL;
    gchar *path;
    gint n_threads;

    GST_OBJECT_LOCK (self);
    path = g_strdup (self->model_path);
    n_threads = self->n_threads;
    GST_OBJECT_UNLOCK (self);
    /* Without a `model`, the encoders' model, asked on READY->PAUSED (open_upstream_model()). */
    if (!path || !*path) {
      g_free (path);
      return GST_ELEMENT_CLASS (gst_image_bind_match_parent_class)->change_state (element,
          transition);
    }
    self->handle = gst_image_bind_model_handle_open (path, IMAGEBIND_MODALITY_TEXT,
        "embedding text", n_threads, &err);
    g_free (path);
    if (!self->handle) {
      gst_image_bind_model_handle_post_error (element, err);
      g_clear_error (&err);
      return GST_STATE_CHANGE_FAILURE;
    }
    GST_INFO_OBJECT (self, "text model %s", gst_image_bind_model_handle_get_id (self->handle));
  }

  ret = GST_ELEMENT_CLASS (gst_image_bind_match_parent_class)->change_state (element,
      transition);

  if (transition == GST_STATE_CHANGE_READY_TO_NULL ||
      (transition == GST_STATE_CHANGE_NULL_TO_READY && ret == GST_STATE_CHANGE_FAILURE))
    close_model (self);
  return ret;
}

/* ---- request pad ---- */

static GstPad *
gst_image_bind_match_request_new_pad (GstElement * element, GstPadTemplate * templ,
    const gchar * name, const GstCaps * caps)
{
  GstImageBindMatch *self = GST_IMAGE_BIND_MATCH (element);
  GstPad *pad;

  GST_OBJECT_LOCK (self);
  if (self->text_pad) {
    GST_OBJECT_UNLOCK (self);
    GST_WARNING_OBJECT (self, "there is only one text_src pad");
    return NULL;
  }
  pad = gst_pad_new_from_template (templ, "text_src");
  self->text_pad = pad;
  /* The streaming thread sees the new generation and starts the pad's stream (stream-start,
   * caps, segment) before its first data; no lock on the streaming thread is taken here. */
  self->text_pad_generation++;
  GST_OBJECT_UNLOCK (self);

  gst_pad_use_fixed_caps (pad);
  if (GST_STATE (element) > GST_STATE_READY || GST_STATE_TARGET (element) > GST_STATE_READY)
    gst_pad_set_active (pad, TRUE);
  gst_element_add_pad (element, pad);
  return pad;
}

static void
gst_image_bind_match_release_pad (GstElement * element, GstPad * pad)
{
  GstImageBindMatch *self = GST_IMAGE_BIND_MATCH (element);

  GST_OBJECT_LOCK (self);
  if (pad != self->text_pad) {
    GST_OBJECT_UNLOCK (self);
    return;
  }
  self->text_pad = NULL;
  GST_OBJECT_UNLOCK (self);

  gst_pad_set_active (pad, FALSE);
  gst_element_remove_pad (element, pad);
}

/* ---- GObject ---- */

/* The entries of a `prompts` array. */
static gchar **
prompts_from_array (const GValue * array)
{
  guint i, n = gst_value_array_get_size (array);
  gchar **prompts = g_new0 (gchar *, n + 1);

  for (i = 0; i < n; i++) {
    const GValue *v = gst_value_array_get_value (array, i);
    const gchar *str = G_VALUE_HOLDS_STRING (v) ? g_value_get_string (v) : NULL;

    prompts[i] = g_strdup (str ? str : "");
  }
  return prompts;
}

/* Checked when set only to log early (GST_DEBUG); the error is posted when the queries are
 * embedded (READY->PAUSED, or the next buffer), where a bus message can say so. Called without
 * the object lock: logging an object takes it. */
static void
log_invalid_prompts (GstImageBindMatch * self, gchar ** prompts)
{
  guint i;

  for (i = 0; prompts[i]; i++) {
    GError *err = NULL;
    GstImageBindQuery *q = gst_image_bind_query_parse (prompts[i], &err);

    if (q)
      gst_image_bind_query_unref (q);
    else {
      GST_WARNING_OBJECT (self, "prompts entry %u: %s", i, err->message);
      g_error_free (err);
    }
  }
}

/* Called with the object lock; takes @prompts. */
static void
set_prompts (GstImageBindMatch * self, gchar ** prompts)
{
  g_strfreev (self->prompts);
  self->prompts = prompts;
  self->prompts_cookie++;
}

/* "add-query" and "clear-queries": the application's queries, matched after the prompts.
 * Embedded as the prompts are (on READY->PAUSED, or at once on the embedding thread). */
static void
gst_image_bind_match_add_query (GstImageBindMatch * self, GstImageBindQuery * query)
{
  g_return_if_fail (query != NULL);
  GST_OBJECT_LOCK (self);
  g_ptr_array_add (self->app_queries, gst_image_bind_query_ref (query));
  self->prompts_cookie++;
  GST_OBJECT_UNLOCK (self);
  maybe_start_job (self);
}

static void
gst_image_bind_match_clear_queries (GstImageBindMatch * self)
{
  GST_OBJECT_LOCK (self);
  g_ptr_array_set_size (self->app_queries, 0);
  self->prompts_cookie++;
  GST_OBJECT_UNLOCK (self);
  maybe_start_job (self);
}

static void
gst_image_bind_match_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstImageBindMatch *self = GST_IMAGE_BIND_MATCH (object);
  gchar **prompts = NULL;

  /* `prompts` and `prompt-list` are two spellings of one list */
  if (prop_id == PROP_PROMPTS)
    prompts = prompts_from_array (value);
  else if (prop_id == PROP_PROMPT_LIST)
    prompts = gst_image_bind_prompt_list_split (g_value_get_string (value));
  if (prompts)
    log_invalid_prompts (self, prompts);
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->model_path);
      self->model_path = g_value_dup_string (value);
      break;
    case PROP_PROMPTS:
    case PROP_PROMPT_LIST:
      set_prompts (self, prompts);
      break;
    case PROP_PROMPTS_FILE:
      g_free (self->prompts_file);
      self->prompts_file = g_value_dup_string (value);
      self->prompts_cookie++;
      break;
    case PROP_MODE:
      self->mode = g_value_get_enum (value);
      break;
    case PROP_TOP_K:
      self->top_k = g_value_get_uint (value);
      break;
    case PROP_THRESHOLD:
      self->threshold = g_value_get_double (value);
      break;
    case PROP_MIN_DURATION:
      self->min_duration = g_value_get_uint64 (value);
      break;
    case PROP_COOLDOWN:
      self->cooldown = g_value_get_uint64 (value);
      break;
    case PROP_POST_MESSAGES:
      self->post_messages = g_value_get_boolean (value);
      break;
    case PROP_N_THREADS:
      self->n_threads = g_value_get_int (value);
      break;
    case PROP_CUSTOM_META:
      self->custom_meta = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
  /* While PAUSED or PLAYING: embedded now, on a thread of their own */
  if (prop_id == PROP_PROMPTS || prop_id == PROP_PROMPT_LIST || prop_id == PROP_PROMPTS_FILE)
    maybe_start_job (self);
}

static void
gst_image_bind_match_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstImageBindMatch *self = GST_IMAGE_BIND_MATCH (object);
  guint i;

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model_path);
      break;
    case PROP_PROMPTS:
      for (i = 0; self->prompts && self->prompts[i]; i++)
        append_string (value, self->prompts[i]);
      break;
    case PROP_PROMPT_LIST:
      g_value_take_string (value, gst_image_bind_prompt_list_join (self->prompts));
      break;
    case PROP_PROMPTS_FILE:
      g_value_set_string (value, self->prompts_file);
      break;
    case PROP_MODE:
      g_value_set_enum (value, self->mode);
      break;
    case PROP_TOP_K:
      g_value_set_uint (value, self->top_k);
      break;
    case PROP_THRESHOLD:
      g_value_set_double (value, self->threshold);
      break;
    case PROP_MIN_DURATION:
      g_value_set_uint64 (value, self->min_duration);
      break;
    case PROP_COOLDOWN:
      g_value_set_uint64 (value, self->cooldown);
      break;
    case PROP_POST_MESSAGES:
      g_value_set_boolean (value, self->post_messages);
      break;
    case PROP_N_THREADS:
      g_value_set_int (value, self->n_threads);
      break;
    case PROP_CUSTOM_META:
      g_value_set_boolean (value, self->custom_meta);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_image_bind_match_finalize (GObject * object)
{
  GstImageBindMatch *self = GST_IMAGE_BIND_MATCH (object);

  clear_queries (self);
  g_clear_pointer (&self->handle, gst_image_bind_model_handle_close);
  g_free (self->model_path);
  g_strfreev (self->prompts);
  g_free (self->prompts_file);
  g_free (self->last_text);
  g_ptr_array_unref (self->app_queries);
  g_hash_table_unref (self->media_cache);
  g_mutex_clear (&self->job_lock);
  G_OBJECT_CLASS (gst_image_bind_match_parent_class)->finalize (object);
}

static void
gst_image_bind_match_init (GstImageBindMatch * self)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);

  self->mode = DEFAULT_MODE;
  self->top_k = DEFAULT_TOP_K;
  self->threshold = DEFAULT_THRESHOLD;
  self->min_duration = DEFAULT_MIN_DURATION;
  self->cooldown = DEFAULT_COOLDOWN;
  self->post_messages = DEFAULT_POST_MESSAGES;
  self->n_threads = DEFAULT_N_THREADS;
  self->custom_meta = DEFAULT_CUSTOM_META;
  self->text_need_start = TRUE;
  self->text_need_segment = TRUE;
  self->first_running_time = GST_CLOCK_TIME_NONE;
  self->app_queries = g_ptr_array_new_with_free_func ((GDestroyNotify)
      gst_image_bind_query_unref);
  self->media_cache = gst_image_bind_media_cache_new ();
  g_mutex_init (&self->job_lock);

  gst_base_transform_set_passthrough (trans, TRUE);
  gst_base_transform_set_in_place (trans, TRUE);
  gst_base_transform_set_gap_aware (trans, TRUE);
}

static void
gst_image_bind_match_class_init (GstImageBindMatchClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_image_bind_match_debug, "imagebindmatch", 0,
      "ImageBind prompt matcher");

  gobject_class->set_property = gst_image_bind_match_set_property;
  gobject_class->get_property = gst_image_bind_match_get_property;
  gobject_class->finalize = gst_image_bind_match_finalize;

  /**
   * GstImageBindMatch:model:
   *
   * The model file whose text encoder embeds the prompts. When unset (the usual case): the
   * model of the encoder upstream, asked on READY->PAUSED; when no encoder answers,
   * $IMAGEBIND_MODEL, else the shipped default model. When set: loaded on NULL->READY, and an
   * encoder with another model gives a warning naming both.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "Path of the ImageBind model file (.gguf) that embeds the prompts. When unset: the "
          "model of the encoder upstream (else $IMAGEBIND_MODEL, else the shipped default "
          "model), the same copy in memory",
          NULL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));

  /**
   * GstImageBindMatch:prompts:
   *
   * The text prompts (queries) as an array, for applications (a #GstValueArray of strings);
   * on a gst-launch-1.0 command line #GstImageBindMatch:prompt-list is easier to type. Each
   * may also be a composed query, `label = image:/a.png + 0.5 * text:at night` (see the
   * element documentation). Embedded once on READY->PAUSED; a change while PAUSED or PLAYING
   * is embedded on a thread of its own, and the previous prompts stay in use until the
   * `imagebind-prompts` "ready" message (reference files only on READY->PAUSED).
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_PROMPTS,
      gst_param_spec_array ("prompts", "Prompts",
          "Text prompts to match the embeddings against, as an array (gst-launch: "
          "prompts='<dog, cat>'; with spaces, use prompt-list); each may be a composed query: "
          "'label = image:/a.png + 0.5 * text:at night - audio:/b.wav' (terms text:, image:, "
          "audio:, depth:, thermal:, imu:; weights; + and -); embedded once (on "
          "READY->PAUSED; a change while PLAYING is embedded on a thread of its own, and "
          "applies from the imagebind-prompts \"ready\" message on; reference files only on "
          "READY->PAUSED)",
          g_param_spec_string ("prompt", "Prompt", "One text prompt (UTF-8)", NULL,
              G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS),
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindMatch:prompt-list:
   *
   * The same list as #GstImageBindMatch:prompts, as one string, for command lines:
   * `prompt-list="colour bars;a bouncing ball;static noise"` (one level of shell quoting).
   * Entries are separated by `;`, or by `,` when there is no `;` (`prompt-list=dog,cat`);
   * spaces around entries and empty entries are dropped, so a single prompt holding a comma is
   * written with a trailing `;`. Setting it replaces `prompts`; reading it gives the entries
   * joined with `;`.
   *
   * Since: 0.1
   */
  /**
   * GstImageBindMatch:prompts-file:
   *
   * A UTF-8 text file of prompts, one prompt or composed query per line, matched after the
   * entries of #GstImageBindMatch:prompts (their indices follow). Blank lines and lines
   * starting with `#` are skipped, spaces around a line are dropped. Read on READY->PAUSED and
   * again when the property changes; an unreadable file or an invalid line (named by its
   * number) fails READY->PAUSED, or, while PLAYING, gives a warning and the previous prompts
   * stay.
   *
   * Since: 0.1
   */
  gst_image_bind_install_prompt_properties (gobject_class, PROP_PROMPT_LIST,
      PROP_PROMPTS_FILE, GST_PARAM_MUTABLE_PLAYING);
  /**
   * GstImageBindMatch:mode:
   *
   * classify: zero-shot classification (softmax over the prompts, top-k); detect: also
   * per-prompt detection with start/stop messages.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MODE,
      g_param_spec_enum ("mode", "Mode",
          "classify: softmax over the prompts; detect: also per-prompt start/stop detection "
          "of the cosine score against 'threshold'", GST_TYPE_IMAGE_BIND_MATCH_MODE,
          DEFAULT_MODE, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindMatch:top-k:
   *
   * Number of prompts, most probable first, in the meta and the messages; 0 = all.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_TOP_K,
      g_param_spec_uint ("top-k", "Top k",
          "Number of most probable prompts reported in the meta and messages "
          "(0 = all; min 0, max 4294967295, default 0)", 0, G_MAXUINT, DEFAULT_TOP_K,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindMatch:threshold:
   *
   * Detect mode: cosine score above which a prompt counts as present.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_THRESHOLD,
      g_param_spec_double ("threshold", "Threshold",
          "Detect mode: cosine score (-1 to 1) above which a prompt counts as present "
          "(min -1, max 1, default 0.25)", -1.0, 1.0, DEFAULT_THRESHOLD,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindMatch:min-duration:
   *
   * Detect mode: how long, in nanoseconds of stream time, the score must stay above the
   * threshold before the detection starts.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MIN_DURATION,
      g_param_spec_uint64 ("min-duration", "Minimum duration",
          "Detect mode: stream time in nanoseconds the score must stay above 'threshold' "
          "before a detection starts (min 0, max 18446744073709551615, default 500000000)",
          0, G_MAXUINT64, DEFAULT_MIN_DURATION,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindMatch:cooldown:
   *
   * Detect mode: how long, in nanoseconds of stream time, the score must stay at or below
   * the threshold before the detection stops.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_COOLDOWN,
      g_param_spec_uint64 ("cooldown", "Cooldown",
          "Detect mode: stream time in nanoseconds the score must stay at or below "
          "'threshold' before a detection stops (min 0, max 18446744073709551615, "
          "default 1000000000)", 0, G_MAXUINT64, DEFAULT_COOLDOWN,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindMatch:post-messages:
   *
   * Post an `imagebind-match` element message for every matched embedding. Detection
   * messages are posted in detect mode either way.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_POST_MESSAGES,
      g_param_spec_boolean ("post-messages", "Post messages",
          "Post an 'imagebind-match' element message for every matched embedding "
          "('imagebind-detection' messages are posted in detect mode either way)",
          DEFAULT_POST_MESSAGES,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindMatch:n-threads:
   *
   * Threads used to embed the prompts; 0 uses all cores. Read on NULL->READY.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_N_THREADS,
      g_param_spec_int ("n-threads", "Threads",
          "Threads used to embed the prompts (0 = all cores); applied on NULL->READY",
          0, 1024, DEFAULT_N_THREADS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));

  /**
   * GstImageBindMatch:custom-meta:
   *
   * Also attach every match as a GstCustomMeta named "GstImageBindMatchCustomMeta" (fields:
   * see gst_image_bind_match_meta_to_structure()), readable from Python.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_CUSTOM_META,
      g_param_spec_boolean ("custom-meta", "Custom meta",
          "Also attach each match as a GstCustomMeta \"GstImageBindMatchCustomMeta\" "
          "(a GstStructure, readable from Python)", DEFAULT_CUSTOM_META,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindMatch::add-query:
   * @match: the element
   * @query: a #GstImageBindQuery (the element takes a reference)
   *
   * Action signal: adds a query built with the #GstImageBindQuery API, matched after the
   * entries of `prompts` (its index is the number of prompts plus the number of queries added
   * before it). Embedded as the prompts are: on READY->PAUSED, or on a thread of its own when
   * added later (it applies from the `imagebind-prompts` "ready" message on); queries naming
   * media files must be added before READY->PAUSED.
   *
   * Since: 0.1
   */
  g_signal_new_class_handler ("add-query", G_TYPE_FROM_CLASS (klass),
      G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION, G_CALLBACK (gst_image_bind_match_add_query),
      NULL, NULL, NULL, G_TYPE_NONE, 1, GST_TYPE_IMAGE_BIND_QUERY);

  /**
   * GstImageBindMatch::clear-queries:
   * @match: the element
   *
   * Action signal: removes the queries added with #GstImageBindMatch::add-query (the
   * `prompts` stay).
   *
   * Since: 0.1
   */
  g_signal_new_class_handler ("clear-queries", G_TYPE_FROM_CLASS (klass),
      G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION, G_CALLBACK (gst_image_bind_match_clear_queries),
      NULL, NULL, NULL, G_TYPE_NONE, 0);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_add_static_pad_template (element_class, &text_src_template);
  gst_element_class_set_static_metadata (element_class, "ImageBind prompt matcher",
      "Filter/Analyzer",
      "Scores the ImageBind embeddings on buffers against text prompts (zero-shot "
      "classification and detection); attaches GstImageBindMatchMeta, posts messages",
      "gst-imagebind developers");
  /* gst-inspect-1.0 prints extra metadata keys: the bus messages, where a user looks first */
  gst_element_class_add_static_metadata (element_class, "messages",
      "imagebind-match (every result, if post-messages) and imagebind-detection (start/stop, "
      "detect mode). Fields: timestamp, stream-time, running-time, duration (guint64 ns), "
      "modality, mode (string), labels (array of string), indices (array of guint), scores "
      "(array of double, cosine), probabilities (array of double, softmax), detected (array of "
      "boolean), top-label (string), top-index (guint), top-probability, top-score (double). "
      "imagebind-detection adds label (string), index (guint), event (start or stop), score "
      "(double), since (guint64 ns). Details in the element documentation");

  element_class->change_state = GST_DEBUG_FUNCPTR (gst_image_bind_match_change_state);
  element_class->request_new_pad = GST_DEBUG_FUNCPTR (gst_image_bind_match_request_new_pad);
  element_class->release_pad = GST_DEBUG_FUNCPTR (gst_image_bind_match_release_pad);

  trans_class->passthrough_on_same_caps = FALSE;
  trans_class->transform_ip_on_passthrough = FALSE;
  trans_class->prepare_output_buffer =
      GST_DEBUG_FUNCPTR (gst_image_bind_match_prepare_output_buffer);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_image_bind_match_transform_ip);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_image_bind_match_sink_event);
  trans_class->start = GST_DEBUG_FUNCPTR (gst_image_bind_match_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_image_bind_match_stop);

  gst_type_mark_as_plugin_api (GST_TYPE_IMAGE_BIND_MATCH_MODE, 0);
}
