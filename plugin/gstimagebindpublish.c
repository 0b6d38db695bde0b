/**
 * SECTION:element-imagebindpublish
 * @title: imagebindpublish
 * @see_also: imagebindvision, imagebindaudio, imagebindmatch, #GstImageBindEmbeddingMeta,
 *     #GstImageBindMatchMeta
 *
 * Publishes the ImageBind results riding on buffers as JSON: every #GstImageBindEmbeddingMeta
 * and #GstImageBindMatchMeta passing through becomes a record, sent in batches to an HTTP
 * endpoint (a webhook, or a vector database such as Qdrant) or appended to a JSON-lines file.
 * Buffers of any caps pass through untouched and are never held back: the records go into a
 * bounded queue that a thread of the element (with its own main context) empties. When the
 * endpoint is slow or down the queue fills; once it holds `max-queue` records, new records are
 * dropped and counted (`dropped`, and the `imagebind-publish-stats` message).
 *
 * ## Records
 *
 * Each record is a JSON object. Timestamps are integers in nanoseconds, or null when unknown.
 *
 * - `type`: "embedding", "match" or "detection"
 * - `source`: the `source` property (default: the element's name)
 * - `modality`: "vision", "audio", "text", "depth", "thermal" or "imu"
 * - `pts`, `duration`, `stream_time`, `running_time`: the span of the input the result
 *   describes (as in the metas)
 * - embedding records: `model_id`, `dim`, `logit_scale`, and when `include-vector` is TRUE,
 *   `vector`: the embedding divided by its length (unit length, so that cosine, dot product
 *   and Euclidean distance rank alike in a vector database)
 * - match records: `mode` ("classify" or "detect"), `labels`, `indices`, `scores` (cosines),
 *   `probabilities`, `detected` (lists, best first), `top_label`, `top_probability`
 * - detection records (detect mode): `event` ("start" or "stop"), `label`, `index`, `score`:
 *   the same events as imagebindmatch's `imagebind-detection` messages, derived from the
 *   `detected` flags of successive match metas of one modality (so a prompt outside the
 *   matcher's `top-k` is not followed). Detections still open at EOS or at a flush end with
 *   a "stop" record whose timestamps and `score` are null.
 *
 * ## Formats
 *
 * - `format=json`: each batch is POSTed to `location` as a JSON array of records
 *   (Content-Type: application/json), webhook style.
 * - `format=qdrant`: each batch is a Qdrant points upsert: PUT
 *   `{location}/collections/{collection}/points?wait=true` (answered once stored) with `{"points": [{"id": ..., "vector":
 *   [...], "payload": {...}}]}`. Only embeddings become points (a point needs a vector): the
 *   payload is the embedding record without its vector, plus `labels`, `scores`, `top_label`
 *   of a match meta of the same modality and pts on the same buffer; match and detection
 *   records are not sent (and not counted). The id is a UUID derived
 *   from source, model, modality and pts, so a retried or replayed batch overwrites the same
 *   points. The collection must exist (vector size = the model's width).
 * - `location=file:///path/out.jsonl`: no network; each record is appended as one line
 *   (JSON lines; `format=qdrant` writes points instead). The file is created or truncated at
 *   READY->PAUSED. Without `location` (or with `location=-`) the lines go to standard output.
 *
 * ## Delivery
 *
 * A batch is sent when `batch-size` records are queued, or when the oldest queued record has
 * waited `batch-interval`; one batch at a time, in order. Connection errors, timeouts
 * (`request-timeout`) and 5xx answers are retried up to `max-retries` times, after
 * `retry-delay`, doubled at each attempt up to `max-retry-delay`; other answers (4xx) are not
 * retried. A batch that is given up is counted as failed. Delivery is at least once: a batch
 * whose answer timed out is sent again (Qdrant's upsert of the same ids makes that harmless). A batch being sent still counts
 * against `max-queue`. At EOS the element sends what is queued without waiting for a full
 * batch, waits at most `eos-timeout` for it to be delivered (this is the only time the
 * streaming thread waits), posts the stats, and forwards the EOS; what is left is still tried
 * until the element goes to READY and is then discarded (logged).
 *
 * ## Messages
 *
 * An element message named `imagebind-publish-stats` is posted every `stats-interval` when
 * a counter or the last error changed since the last one, and at EOS, with these fields:
 *
 * - `sent` (G_TYPE_UINT64): records delivered (2xx answer, or written to the file)
 * - `failed` (G_TYPE_UINT64): records given up (4xx answer, retries exhausted, write error)
 * - `dropped` (G_TYPE_UINT64): records dropped because the queue was full
 * - `queued` (G_TYPE_UINT64): records waiting, including the batch being sent
 * - `eos` (G_TYPE_BOOLEAN): TRUE for the message posted at EOS
 * - `last-error` (G_TYPE_STRING): the last delivery error, "" if none
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -m videotestsrc num-buffers=10 ! videoconvert ! imagebindvision sync=true ! imagebindmatch prompts='<ball, bars>' ! imagebindpublish location=file:///tmp/imagebind.jsonl ! fakesink
 * ]|
 * Writes 10 embedding records and 10 match records to /tmp/imagebind.jsonl.
 *
 * |[
 * gst-launch-1.0 -m videotestsrc num-buffers=50 ! videoconvert ! imagebindvision interval=500000000 sync=true ! imagebindmatch prompts='<ball, bars>' post-messages=false ! imagebindpublish location=http://127.0.0.1:8080/hook batch-size=4 ! fakesink
 * ]|
 * POSTs two JSON arrays of 4 records (embedding, match, embedding, match) to a webhook
 * listening on port 8080.
 *
 * |[
 * gst-launch-1.0 -m v4l2src ! videoconvert ! imagebindvision interval=1000000000 ! imagebindpublish format=qdrant location=http://localhost:6333 collection=camera ! fakesink
 * ]|
 * Upserts one camera frame embedding a second into the Qdrant collection "camera" (create it
 * first with the model's vector size; not run here: no camera, no Qdrant server).
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <math.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gstimagebindmeta.h"
#include "gstimagebindmatchmeta.h"

GST_DEBUG_CATEGORY_STATIC (gst_image_bind_publish_debug);
#define GST_CAT_DEFAULT gst_image_bind_publish_debug

typedef enum {
  GST_IMAGE_BIND_PUBLISH_FORMAT_JSON = 0,
  GST_IMAGE_BIND_PUBLISH_FORMAT_QDRANT,
} GstImageBindPublishFormat;

#define GST_TYPE_IMAGE_BIND_PUBLISH_FORMAT (gst_image_bind_publish_format_get_type ())
static GType gst_image_bind_publish_format_get_type (void);

#define DEFAULT_FORMAT GST_IMAGE_BIND_PUBLISH_FORMAT_JSON
#define DEFAULT_COLLECTION "imagebind"
#define DEFAULT_INCLUDE_VECTOR TRUE
#define DEFAULT_BATCH_SIZE 16
#define DEFAULT_BATCH_INTERVAL (1 * GST_SECOND)
#define DEFAULT_MAX_QUEUE 1024
#define DEFAULT_MAX_RETRIES 5
#define DEFAULT_RETRY_DELAY (500 * GST_MSECOND)
#define DEFAULT_MAX_RETRY_DELAY (30 * GST_SECOND)
#define DEFAULT_REQUEST_TIMEOUT (10 * GST_SECOND)
#define DEFAULT_EOS_TIMEOUT (5 * GST_SECOND)
#define DEFAULT_STATS_INTERVAL (1 * GST_SECOND)

enum {
  PROP_0,
  PROP_LOCATION,
  PROP_FORMAT,
  PROP_COLLECTION,
  PROP_SOURCE,
  PROP_INCLUDE_VECTOR,
  PROP_BATCH_SIZE,
  PROP_BATCH_INTERVAL,
  PROP_MAX_QUEUE,
  PROP_MAX_RETRIES,
  PROP_RETRY_DELAY,
  PROP_MAX_RETRY_DELAY,
  PROP_REQUEST_TIMEOUT,
  PROP_EOS_TIMEOUT,
  PROP_STATS_INTERVAL,
  PROP_SENT,
  PROP_FAILED,
  PROP_DROPPED,
  PROP_QUEUED,
};

/* One queued record: the JSON object (sealed, never changed once queued) and, for Qdrant, the
 * point made of it (NULL when the record is not an embedding). */
typedef struct {
  JsonNode *record;
  JsonNode *point;
  gint64 queued_at;             /* g_get_monotonic_time () */
} Record;

/* Settings copied at start(): the worker thread reads these, never the properties. */
typedef struct {
  gchar *url;                   /* http(s) endpoint, already with the Qdrant path */
  gchar *path;                  /* file to write, or NULL */
  GstImageBindPublishFormat format;
  guint batch_size;
  GstClockTime batch_interval, retry_delay, max_retry_delay, request_timeout, stats_interval;
  guint max_retries;
} Config;

#define GST_TYPE_IMAGE_BIND_PUBLISH (gst_image_bind_publish_get_type ())
G_DECLARE_FINAL_TYPE (GstImageBindPublish, gst_image_bind_publish, GST, IMAGE_BIND_PUBLISH,
    GstBaseTransform)

struct _GstImageBindPublish {
  GstBaseTransform parent;

  /* properties, under the object lock */
  gchar *location;
  GstImageBindPublishFormat format;
  gchar *collection;
  gchar *source;
  gboolean include_vector;
  guint batch_size;
  guint64 batch_interval;
  guint max_queue;
  guint max_retries;
  guint64 retry_delay;
  guint64 max_retry_delay;
  guint64 request_timeout;
  guint64 eos_timeout;
  guint64 stats_interval;

  /* streaming thread only */
  gchar *cur_source;
  gboolean cur_include_vector;
  GstImageBindPublishFormat cur_format;
  GHashTable *detected;         /* "modality/index" -> label, prompts currently detected */

  /* shared between the streaming thread and the worker, under `lock` */
  GMutex lock;
  GCond cond;
  GQueue queue;                 /* Record *, oldest first */
  guint in_flight;              /* records of the batch being sent */
  guint max_queue_now;
  guint64 sent, failed, dropped;
  gchar *last_error;
  gboolean flush_all;           /* EOS: send without waiting for a full batch */
  gboolean kick_pending;

  /* the worker: its thread, context and loop (created in start(), joined in stop()) */
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  Config cfg;
  /* worker thread only */
  SoupSession *session;
  GCancellable *cancellable;
  FILE *file;
  GPtrArray *batch;             /* Record * being sent */
  guint attempt;
  GSource *timer;               /* batch-interval or retry wait */
  gboolean waiting_retry;
  guint64 posted_sent, posted_failed, posted_dropped, posted_queued;
  gchar *posted_error;
  gboolean posted_once;
};

G_DEFINE_TYPE (GstImageBindPublish, gst_image_bind_publish, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE (imagebindpublish, "imagebindpublish", GST_RANK_NONE,
    GST_TYPE_IMAGE_BIND_PUBLISH);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static GType
gst_image_bind_publish_format_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_IMAGE_BIND_PUBLISH_FORMAT_JSON, "A JSON array of records per batch (POST)", "json"},
    {GST_IMAGE_BIND_PUBLISH_FORMAT_QDRANT,
        "Qdrant points upsert (PUT {location}/collections/{collection}/points)", "qdrant"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type, g_enum_register_static ("GstImageBindPublishFormat", values));
  return type;
}

static void
record_free (Record * r)
{
  json_node_unref (r->record);
  if (r->point)
    json_node_unref (r->point);
  g_free (r);
}

/* ---- records (streaming thread) ---- */

static void
add_time (JsonBuilder * b, const gchar * name, GstClockTime t)
{
  json_builder_set_member_name (b, name);
  if (GST_CLOCK_TIME_IS_VALID (t))
    json_builder_add_int_value (b, (gint64) t);
  else
    json_builder_add_null_value (b);
}

/* JSON has no NaN or infinity: such a value (a broken model or input) becomes null. */
static void
add_number (JsonBuilder * b, gdouble v)
{
  if (isfinite (v))
    json_builder_add_double_value (b, v);
  else
    json_builder_add_null_value (b);
}

static void
add_common (GstImageBindPublish * self, JsonBuilder * b, const gchar * type,
    GstImageBindModality modality, GstClockTime pts, GstClockTime duration,
    GstClockTime stream_time, GstClockTime running_time)
{
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, type);
  json_builder_set_member_name (b, "source");
  json_builder_add_string_value (b, self->cur_source);
  json_builder_set_member_name (b, "modality");
  json_builder_add_string_value (b, gst_image_bind_modality_to_string (modality));
  add_time (b, "pts", pts);
  add_time (b, "duration", duration);
  add_time (b, "stream_time", stream_time);
  add_time (b, "running_time", running_time);
}

static void
add_match_lists (JsonBuilder * b, const GstImageBindMatchMeta * m, gboolean all)
{
  guint i;

  json_builder_set_member_name (b, "labels");
  json_builder_begin_array (b);
  for (i = 0; i < m->n_results; i++)
    json_builder_add_string_value (b, m->results[i].label ? m->results[i].label : "");
  json_builder_end_array (b);
  json_builder_set_member_name (b, "scores");
  json_builder_begin_array (b);
  for (i = 0; i < m->n_results; i++)
    add_number (b, m->results[i].cosine);
  json_builder_end_array (b);
  if (all) {
    json_builder_set_member_name (b, "indices");
    json_builder_begin_array (b);
    for (i = 0; i < m->n_results; i++)
      json_builder_add_int_value (b, m->results[i].index);
    json_builder_end_array (b);
    json_builder_set_member_name (b, "probabilities");
    json_builder_begin_array (b);
    for (i = 0; i < m->n_results; i++)
      add_number (b, m->results[i].probability);
    json_builder_end_array (b);
    json_builder_set_member_name (b, "detected");
    json_builder_begin_array (b);
    for (i = 0; i < m->n_results; i++)
      json_builder_add_boolean_value (b, m->results[i].detected);
    json_builder_end_array (b);
  }
  json_builder_set_member_name (b, "top_label");
  if (m->top_label)
    json_builder_add_string_value (b, m->top_label);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "top_probability");
  add_number (b, m->top_probability);
}

/* The embedding's fields, without the vector (shared by the record and the point payload). */
static void
add_embedding_fields (GstImageBindPublish * self, JsonBuilder * b,
    const GstImageBindEmbeddingMeta * e)
{
  add_common (self, b, "embedding", e->modality, e->pts, e->duration, e->stream_time,
      e->running_time);
  json_builder_set_member_name (b, "model_id");
  json_builder_add_string_value (b, e->model_id ? e->model_id : "");
  json_builder_set_member_name (b, "dim");
  json_builder_add_int_value (b, e->dim);
  json_builder_set_member_name (b, "logit_scale");
  add_number (b, e->logit_scale);
}

/* The vector at unit length: the scale a modality's head applies means nothing to a vector
 * database. A zero vector stays zero; non-finite components become 0. */
static void
add_unit_vector (JsonBuilder * b, const GstImageBindEmbeddingMeta * e)
{
  gdouble norm = 0;
  guint i;

  for (i = 0; i < e->dim; i++)
    if (isfinite (e->vector[i]))
      norm += (gdouble) e->vector[i] * e->vector[i];
  norm = norm > 0 ? sqrt (norm) : 1.0;
  json_builder_set_member_name (b, "vector");
  json_builder_begin_array (b);
  for (i = 0; i < e->dim; i++) {
    gdouble v = e->vector[i] / norm;
    /* JSON has no NaN or infinity */
    json_builder_add_double_value (b, isfinite (v) ? v : 0.0);
  }
  json_builder_end_array (b);
}

/* A stable point id: a UUID (version 8 layout) from a hash of what identifies the embedding. */
static gchar *
point_id (GstImageBindPublish * self, const GstImageBindEmbeddingMeta * e)
{
  GChecksum *sum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 d[32];
  gsize len = sizeof (d);
  gchar *key = g_strdup_printf ("%s|%s|%s|%" G_GUINT64_FORMAT, self->cur_source,
      e->model_id ? e->model_id : "", gst_image_bind_modality_to_string (e->modality),
      (guint64) e->pts);
  gchar *id;

  g_checksum_update (sum, (const guchar *) key, -1);
  g_checksum_get_digest (sum, d, &len);
  d[6] = (d[6] & 0x0f) | 0x80;
  d[8] = (d[8] & 0x3f) | 0x80;
  id = g_strdup_printf ("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
      "%02x%02x%02x%02x%02x%02x", d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9],
      d[10], d[11], d[12], d[13], d[14], d[15]);
  g_checksum_free (sum);
  g_free (key);
  return id;
}

static JsonNode *
embedding_record (GstImageBindPublish * self, const GstImageBindEmbeddingMeta * e)
{
  JsonBuilder *b = json_builder_new_immutable ();
  JsonNode *n;

  json_builder_begin_object (b);
  add_embedding_fields (self, b, e);
  if (self->cur_include_vector)
    add_unit_vector (b, e);
  json_builder_end_object (b);
  n = json_builder_get_root (b);
  g_object_unref (b);
  return n;
}

static JsonNode *
embedding_point (GstImageBindPublish * self, const GstImageBindEmbeddingMeta * e,
    const GstImageBindMatchMeta * m)
{
  JsonBuilder *b = json_builder_new_immutable ();
  gchar *id = point_id (self, e);
  JsonNode *n;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, id);
  add_unit_vector (b, e);
  json_builder_set_member_name (b, "payload");
  json_builder_begin_object (b);
  add_embedding_fields (self, b, e);
  if (m)
    add_match_lists (b, m, FALSE);
  json_builder_end_object (b);
  json_builder_end_object (b);
  n = json_builder_get_root (b);
  g_object_unref (b);
  g_free (id);
  return n;
}

static JsonNode *
match_record (GstImageBindPublish * self, const GstImageBindMatchMeta * m)
{
  JsonBuilder *b = json_builder_new_immutable ();
  JsonNode *n;

  json_builder_begin_object (b);
  add_common (self, b, "match", m->modality, m->pts, m->duration, m->stream_time,
      m->running_time);
  json_builder_set_member_name (b, "mode");
  json_builder_add_string_value (b, gst_image_bind_match_mode_to_string (m->mode));
  add_match_lists (b, m, TRUE);
  json_builder_end_object (b);
  n = json_builder_get_root (b);
  g_object_unref (b);
  return n;
}

static JsonNode *
detection_record (GstImageBindPublish * self, const GstImageBindMatchMeta * m,
    const GstImageBindMatchResult * r, gboolean start)
{
  JsonBuilder *b = json_builder_new_immutable ();
  JsonNode *n;

  json_builder_begin_object (b);
  add_common (self, b, "detection", m->modality, m->pts, m->duration, m->stream_time,
      m->running_time);
  json_builder_set_member_name (b, "event");
  json_builder_add_string_value (b, start ? "start" : "stop");
  json_builder_set_member_name (b, "label");
  json_builder_add_string_value (b, r->label ? r->label : "");
  json_builder_set_member_name (b, "index");
  json_builder_add_int_value (b, r->index);
  json_builder_set_member_name (b, "score");
  add_number (b, r->cosine);
  json_builder_end_object (b);
  n = json_builder_get_root (b);
  g_object_unref (b);
  return n;
}

/* ---- the queue ---- */

static void worker_kick (GstImageBindPublish * self);

/* Queues @record (taking it), or drops and counts it when the queue is full. */
static void
enqueue (GstImageBindPublish * self, JsonNode * record, JsonNode * point)
{
  gboolean dropped = FALSE;

  g_mutex_lock (&self->lock);
  if (self->queue.length + self->in_flight >= self->max_queue_now) {
    self->dropped++;
    dropped = TRUE;
  } else {
    Record *r = g_new0 (Record, 1);
    r->record = record;
    r->point = point;
    r->queued_at = g_get_monotonic_time ();
    g_queue_push_tail (&self->queue, r);
    record = point = NULL;
  }
  g_mutex_unlock (&self->lock);
  if (dropped) {
    GST_LOG_OBJECT (self, "queue full: record dropped");
    json_node_unref (record);
    if (point)
      json_node_unref (point);
  } else {
    worker_kick (self);
  }
}

/* ---- the worker thread ---- */

static void pump (GstImageBindPublish * self);

static void
clear_timer (GstImageBindPublish * self)
{
  if (self->timer) {
    g_source_destroy (self->timer);
    g_source_unref (self->timer);
    self->timer = NULL;
  }
}

static gboolean
timer_fired (gpointer data)
{
  GstImageBindPublish *self = data;

  g_source_unref (self->timer);
  self->timer = NULL;
  pump (self);
  return G_SOURCE_REMOVE;
}

static void
start_timer (GstImageBindPublish * self, GstClockTime delay)
{
  clear_timer (self);
  self->timer = g_timeout_source_new (MAX (1, (guint) MIN (delay / GST_MSECOND, G_MAXUINT)));
  g_source_set_callback (self->timer, timer_fired, self, NULL);
  g_source_attach (self->timer, self->context);
}

/* Posts the stats if they changed since the last post (or if @force). */
static void
post_stats (GstImageBindPublish * self, gboolean force, gboolean eos)
{
  guint64 sent, failed, dropped, queued;
  gchar *last_error;

  g_mutex_lock (&self->lock);
  sent = self->sent;
  failed = self->failed;
  dropped = self->dropped;
  queued = self->queue.length + self->in_flight;
  last_error = g_strdup (self->last_error ? self->last_error : "");
  if (!force && self->posted_once && sent == self->posted_sent
      && failed == self->posted_failed && dropped == self->posted_dropped
      && queued == self->posted_queued && g_strcmp0 (last_error, self->posted_error) == 0) {
    g_mutex_unlock (&self->lock);
    g_free (last_error);
    return;
  }
  self->posted_sent = sent;
  self->posted_failed = failed;
  self->posted_dropped = dropped;
  self->posted_queued = queued;
  g_free (self->posted_error);
  self->posted_error = g_strdup (last_error);
  self->posted_once = TRUE;
  g_mutex_unlock (&self->lock);

  gst_element_post_message (GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self),
          gst_structure_new ("imagebind-publish-stats", "sent", G_TYPE_UINT64, sent,
              "failed", G_TYPE_UINT64, failed, "dropped", G_TYPE_UINT64, dropped,
              "queued", G_TYPE_UINT64, queued, "eos", G_TYPE_BOOLEAN, eos,
              "last-error", G_TYPE_STRING, last_error, NULL)));
  g_free (last_error);
}

static gboolean
stats_tick (gpointer data)
{
  post_stats (data, FALSE, FALSE);
  return G_SOURCE_CONTINUE;
}

/* The batch is done: delivered (@ok) or given up. */
static void
finish_batch (GstImageBindPublish * self, gboolean ok, const gchar * error)
{
  guint n = self->batch->len;

  g_ptr_array_set_size (self->batch, 0);
  self->attempt = 0;
  g_mutex_lock (&self->lock);
  self->in_flight = 0;
  if (ok) {
    self->sent += n;
  } else {
    self->failed += n;
    g_free (self->last_error);
    self->last_error = g_strdup (error);
  }
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  if (!ok)
    GST_WARNING_OBJECT (self, "gave up on a batch of %u records: %s", n, error);
  else
    GST_DEBUG_OBJECT (self, "delivered %u records", n);
}

static void
note_error (GstImageBindPublish * self, const gchar * error)
{
  g_mutex_lock (&self->lock);
  g_free (self->last_error);
  self->last_error = g_strdup (error);
  g_mutex_unlock (&self->lock);
}

static gchar *
batch_body (GstImageBindPublish * self, gboolean lines)
{
  gboolean qdrant = self->cfg.format == GST_IMAGE_BIND_PUBLISH_FORMAT_QDRANT;
  GString *s = g_string_new (NULL);
  guint i, n = 0;

  if (!lines)
    g_string_append (s, qdrant ? "{\"points\":[" : "[");
  for (i = 0; i < self->batch->len; i++) {
    Record *r = g_ptr_array_index (self->batch, i);
    JsonNode *node = qdrant ? r->point : r->record;
    gchar *json;

    if (!node)
      continue;
    json = json_to_string (node, FALSE);
    if (!lines && n > 0)
      g_string_append_c (s, ',');
    g_string_append (s, json);
    if (lines)
      g_string_append_c (s, '\n');
    g_free (json);
    n++;
  }
  if (!lines)
    g_string_append (s, qdrant ? "]}" : "]");
  return g_string_free (s, FALSE);
}

static void send_batch (GstImageBindPublish * self);

static void
retry_or_fail (GstImageBindPublish * self, const gchar * error)
{
  GstClockTime delay;

  if (self->attempt >= self->cfg.max_retries) {
    finish_batch (self, FALSE, error);
    pump (self);
    return;
  }
  note_error (self, error);
  delay = self->cfg.retry_delay;
  for (guint i = 0; i < self->attempt && delay < self->cfg.max_retry_delay; i++)
    delay *= 2;
  delay = MIN (delay, self->cfg.max_retry_delay);
  self->attempt++;
  GST_INFO_OBJECT (self, "%s: retry %u of %u in %" GST_TIME_FORMAT, error, self->attempt,
      self->cfg.max_retries, GST_TIME_ARGS (delay));
  self->waiting_retry = TRUE;
  start_timer (self, delay);
}

static void
sent_cb (GObject * source, GAsyncResult * res, gpointer data)
{
  GstImageBindPublish *self = data;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (source), res);
  GError *err = NULL;
  GBytes *body = soup_session_send_and_read_finish (SOUP_SESSION (source), res, &err);
  guint status = msg ? soup_message_get_status (msg) : 0;

  if (body)
    g_bytes_unref (body);
  if (err && g_error_matches (err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    g_error_free (err);
    return;                     /* stop(): the element is going away */
  }
  if (err) {
    gchar *e = g_strdup_printf ("%s: %s", self->cfg.url, err->message);
    retry_or_fail (self, e);
    g_free (e);
    g_error_free (err);
  } else if (SOUP_STATUS_IS_SUCCESSFUL (status)) {
    finish_batch (self, TRUE, NULL);
    pump (self);
  } else {
    gchar *e = g_strdup_printf ("%s answered %u %s", self->cfg.url, status,
        soup_message_get_reason_phrase (msg) ? soup_message_get_reason_phrase (msg) : "");
    if (status >= 500)
      retry_or_fail (self, e);
    else {
      finish_batch (self, FALSE, e);
      pump (self);
    }
    g_free (e);
  }
}

static void
send_batch (GstImageBindPublish * self)
{
  gchar *body;
  SoupMessage *msg;

  self->waiting_retry = FALSE;
  if (self->file) {
    body = batch_body (self, TRUE);
    if (fputs (body, self->file) < 0 || fflush (self->file) != 0) {
      gchar *e = g_strdup_printf ("writing %s: %s", self->cfg.path, g_strerror (errno));
      finish_batch (self, FALSE, e);
      g_free (e);
    } else {
      finish_batch (self, TRUE, NULL);
    }
    g_free (body);
    return;
  }

  body = batch_body (self, FALSE);
  msg = soup_message_new (self->cfg.format == GST_IMAGE_BIND_PUBLISH_FORMAT_QDRANT ?
      "PUT" : "POST", self->cfg.url);
  {
    GBytes *bytes = g_bytes_new_take (body, strlen (body));
    soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
    g_bytes_unref (bytes);
  }
  soup_session_send_and_read_async (self->session, msg, G_PRIORITY_DEFAULT, self->cancellable,
      sent_cb, self);
  g_object_unref (msg);
}

/* Takes the next batch when one is due and sends it; otherwise waits for it to be due. Runs
 * whenever something may have changed: a record queued, a batch done, a timer. */
static void
pump (GstImageBindPublish * self)
{
  gboolean due = FALSE;
  GstClockTime wait = 0;

  if (self->waiting_retry) {
    if (self->timer)
      return;                   /* the retry's wait is not over */
    send_batch (self);
    return;
  }
  if (self->batch->len > 0)
    return;                     /* a request is under way */

  while (TRUE) {
    g_mutex_lock (&self->lock);
    if (self->queue.length == 0) {
      g_mutex_unlock (&self->lock);
      clear_timer (self);
      return;
    }
    if (self->queue.length >= self->cfg.batch_size || self->flush_all) {
      due = TRUE;
    } else {
      Record *oldest = g_queue_peek_head (&self->queue);
      gint64 waited = (g_get_monotonic_time () - oldest->queued_at) * GST_USECOND;
      if ((guint64) waited >= self->cfg.batch_interval)
        due = TRUE;
      else
        wait = self->cfg.batch_interval - waited;
    }
    if (due) {
      gboolean any_payload = FALSE;
      while (self->batch->len < self->cfg.batch_size && self->queue.length > 0) {
        Record *r = g_queue_pop_head (&self->queue);
        g_ptr_array_add (self->batch, r);
        any_payload |= self->file || self->cfg.format != GST_IMAGE_BIND_PUBLISH_FORMAT_QDRANT
            || r->point;
      }
      self->in_flight = self->batch->len;
      g_mutex_unlock (&self->lock);
      clear_timer (self);
      if (!any_payload) {
        /* Qdrant without a single point in the batch: nothing to send, nothing failed */
        finish_batch (self, TRUE, NULL);
        continue;
      }
      send_batch (self);
      if (self->batch->len > 0)
        return;                 /* a request is under way */
      continue;                 /* written to the file: next batch */
    }
    g_mutex_unlock (&self->lock);
    if (!self->timer)
      start_timer (self, wait);
    return;
  }
}

static gboolean
kicked (gpointer data)
{
  GstImageBindPublish *self = data;

  g_mutex_lock (&self->lock);
  self->kick_pending = FALSE;
  g_mutex_unlock (&self->lock);
  pump (self);
  return G_SOURCE_REMOVE;
}

/* Any thread: makes the worker look at the queue soon. */
static void
worker_kick (GstImageBindPublish * self)
{
  GSource *idle;

  g_mutex_lock (&self->lock);
  if (self->kick_pending || !self->context) {
    g_mutex_unlock (&self->lock);
    return;
  }
  self->kick_pending = TRUE;
  g_mutex_unlock (&self->lock);
  idle = g_idle_source_new ();
  g_source_set_callback (idle, kicked, gst_object_ref (self), gst_object_unref);
  g_source_attach (idle, self->context);
  g_source_unref (idle);
}

static gpointer
worker_main (gpointer data)
{
  GstImageBindPublish *self = data;
  GSource *stats;

  g_main_context_push_thread_default (self->context);
  if (!self->cfg.path) {
    self->session = soup_session_new_with_options ("timeout",
        (guint) MAX (1, self->cfg.request_timeout / GST_SECOND), "user-agent",
        "gst-imagebind/" PACKAGE_VERSION, NULL);
  }
  stats = g_timeout_source_new (MAX (1, (guint) MIN (self->cfg.stats_interval / GST_MSECOND,
              G_MAXUINT)));
  g_source_set_callback (stats, stats_tick, self, NULL);
  g_source_attach (stats, self->context);

  g_main_loop_run (self->loop);

  g_source_destroy (stats);
  g_source_unref (stats);
  clear_timer (self);
  /* let a cancelled request's callback run before the session goes */
  while (g_main_context_iteration (self->context, FALSE));
  g_clear_object (&self->session);
  g_main_context_pop_thread_default (self->context);
  return NULL;
}

static gboolean
quit_loop (gpointer data)
{
  GstImageBindPublish *self = data;

  g_cancellable_cancel (self->cancellable);
  g_main_loop_quit (self->loop);
  return G_SOURCE_REMOVE;
}

/* ---- GstBaseTransform ---- */

static void
config_clear (Config * c)
{
  g_clear_pointer (&c->url, g_free);
  g_clear_pointer (&c->path, g_free);
}

static gboolean
gst_image_bind_publish_start (GstBaseTransform * trans)
{
  GstImageBindPublish *self = GST_IMAGE_BIND_PUBLISH (trans);
  gchar *location;
  GError *err = NULL;

  GST_OBJECT_LOCK (self);
  location = g_strdup (self->location);
  config_clear (&self->cfg);
  self->cfg.format = self->format;
  self->cfg.batch_size = MAX (1, self->batch_size);
  self->cfg.batch_interval = self->batch_interval;
  self->cfg.max_retries = self->max_retries;
  self->cfg.retry_delay = self->retry_delay;
  self->cfg.max_retry_delay = MAX (self->max_retry_delay, self->retry_delay);
  self->cfg.request_timeout = self->request_timeout;
  self->cfg.stats_interval = MAX (GST_MSECOND, self->stats_interval);
  g_free (self->cur_source);
  self->cur_source = g_strdup (self->source ? self->source : GST_OBJECT_NAME (self));
  self->cur_include_vector = self->include_vector;
  self->cur_format = self->format;
  self->max_queue_now = MAX (1, self->max_queue);
  if (location && self->format == GST_IMAGE_BIND_PUBLISH_FORMAT_QDRANT
      && (g_str_has_prefix (location, "http://") || g_str_has_prefix (location, "https://"))) {
    const gchar *slash = g_str_has_suffix (location, "/") ? "" : "/";
    gchar *collection = g_uri_escape_string (self->collection ? self->collection :
        DEFAULT_COLLECTION, NULL, FALSE);
    self->cfg.url = g_strdup_printf ("%s%scollections/%s/points?wait=true", location, slash,
        collection);
    g_free (collection);
  }
  GST_OBJECT_UNLOCK (self);

  if (!location || g_str_equal (location, "-")) {
    /* the default: JSON lines on standard output (e.g. piped into jq) */
    self->cfg.path = g_strdup ("<stdout>");
    self->file = stdout;
  } else if (g_str_has_prefix (location, "file:")) {
    self->cfg.path = g_filename_from_uri (location, NULL, &err);
    if (!self->cfg.path) {
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("Invalid file URI '%s'.", location),
          ("%s; write it as file:///absolute/path/out.jsonl", err->message));
      g_clear_error (&err);
      g_free (location);
      return FALSE;
    }
    self->file = fopen (self->cfg.path, "w");
    if (!self->file) {
      GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE, ("Could not open '%s' for writing.",
              self->cfg.path), ("%s: check that the directory exists and is writable",
              g_strerror (errno)));
      g_free (location);
      return FALSE;
    }
  } else if (g_str_has_prefix (location, "http://") || g_str_has_prefix (location, "https://")) {
    GUri *uri = g_uri_parse (location, SOUP_HTTP_URI_FLAGS, &err);
    if (!uri) {
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("Invalid URL '%s'.", location),
          ("%s", err->message));
      g_clear_error (&err);
      g_free (location);
      return FALSE;
    }
    g_uri_unref (uri);
    if (!self->cfg.url)
      self->cfg.url = g_strdup (location);
  } else {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("Unsupported location '%s'.", location),
        ("Use an http:// or https:// URL, file:///path/out.jsonl, or - for standard "
            "output"));
    g_free (location);
    return FALSE;
  }
  g_free (location);

  self->sent = self->failed = self->dropped = 0;
  self->posted_once = FALSE;
  self->flush_all = FALSE;
  self->kick_pending = FALSE;
  self->waiting_retry = FALSE;
  self->attempt = 0;
  g_hash_table_remove_all (self->detected);
  self->cancellable = g_cancellable_new ();
  self->context = g_main_context_new ();
  self->loop = g_main_loop_new (self->context, FALSE);
  self->thread = g_thread_new ("imagebindpublish", worker_main, self);
  return TRUE;
}

static gboolean
gst_image_bind_publish_stop (GstBaseTransform * trans)
{
  GstImageBindPublish *self = GST_IMAGE_BIND_PUBLISH (trans);
  GMainContext *context;
  guint left;

  if (self->thread) {
    GSource *quit = g_idle_source_new ();
    g_source_set_callback (quit, quit_loop, self, NULL);
    g_source_attach (quit, self->context);
    g_source_unref (quit);
    g_thread_join (self->thread);
    self->thread = NULL;
  }
  g_mutex_lock (&self->lock);
  context = self->context;
  self->context = NULL;
  left = self->queue.length + self->batch->len;
  g_queue_clear_full (&self->queue, (GDestroyNotify) record_free);
  self->in_flight = 0;
  g_mutex_unlock (&self->lock);
  if (left > 0)
    GST_WARNING_OBJECT (self, "discarding %u undelivered records", left);
  g_ptr_array_set_size (self->batch, 0);
  g_clear_pointer (&self->loop, g_main_loop_unref);
  g_clear_pointer (&context, g_main_context_unref);
  g_clear_object (&self->cancellable);
  if (self->file) {
    if (self->file != stdout)
      fclose (self->file);
    self->file = NULL;
  }
  config_clear (&self->cfg);
  return TRUE;
}

static gchar *
detected_key (GstImageBindModality modality, guint index)
{
  return g_strdup_printf ("%d/%u", modality, index);
}

/* Detection events from the match meta's `detected` flags (detect mode). */
static void
follow_detections (GstImageBindPublish * self, const GstImageBindMatchMeta * m)
{
  guint i;

  if (m->mode != GST_IMAGE_BIND_MATCH_MODE_DETECT)
    return;
  for (i = 0; i < m->n_results; i++) {
    const GstImageBindMatchResult *r = &m->results[i];
    gchar *key = detected_key (m->modality, r->index);
    gboolean was = g_hash_table_contains (self->detected, key);

    if (r->detected != was) {
      enqueue (self, detection_record (self, m, r, r->detected), NULL);
      if (r->detected)
        g_hash_table_insert (self->detected, g_strdup (key), g_strdup (r->label ? r->label :
                ""));
      else
        g_hash_table_remove (self->detected, key);
    }
    g_free (key);
  }
}

/* EOS or flush: the detections still open end, as imagebindmatch ends them; the record has
 * no span and no score (null), as its message has none. */
static void
close_detections (GstImageBindPublish * self)
{
  GHashTableIter iter;
  gpointer key, label;

  g_hash_table_iter_init (&iter, self->detected);
  while (g_hash_table_iter_next (&iter, &key, &label)) {
    gint modality = 0;
    guint index = 0;
    JsonBuilder *b;

    if (sscanf (key, "%d/%u", &modality, &index) != 2)
      continue;
    b = json_builder_new_immutable ();
    json_builder_begin_object (b);
    add_common (self, b, "detection", modality, GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE,
        GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE);
    json_builder_set_member_name (b, "event");
    json_builder_add_string_value (b, "stop");
    json_builder_set_member_name (b, "label");
    json_builder_add_string_value (b, label);
    json_builder_set_member_name (b, "index");
    json_builder_add_int_value (b, index);
    json_builder_set_member_name (b, "score");
    json_builder_add_null_value (b);
    json_builder_end_object (b);
    enqueue (self, json_builder_get_root (b), NULL);
    g_object_unref (b);
  }
  g_hash_table_remove_all (self->detected);
}

static GstFlowReturn
gst_image_bind_publish_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  GstImageBindPublish *self = GST_IMAGE_BIND_PUBLISH (trans);
  GstImageBindEmbeddingMeta *e;
  GstImageBindMatchMeta *m;
  gpointer state = NULL;
  gboolean qdrant = self->cur_format == GST_IMAGE_BIND_PUBLISH_FORMAT_QDRANT;

  while ((e = gst_buffer_iterate_imagebind_embedding_meta (buf, &state))) {
    JsonNode *point = NULL;
    if (qdrant) {
      GstImageBindMatchMeta *same = NULL;
      gpointer mstate = NULL;
      while ((m = gst_buffer_iterate_imagebind_match_meta (buf, &mstate)))
        if (m->modality == e->modality && m->pts == e->pts)
          same = m;
      point = embedding_point (self, e, same);
    }
    enqueue (self, embedding_record (self, e), point);
  }
  if (qdrant)
    return GST_FLOW_OK;         /* only embeddings become points */
  state = NULL;
  while ((m = gst_buffer_iterate_imagebind_match_meta (buf, &state))) {
    enqueue (self, match_record (self, m), NULL);
    follow_detections (self, m);
  }
  return GST_FLOW_OK;
}

/* EOS: send what is queued now, and wait (bounded) for it to be delivered. */
static void
drain (GstImageBindPublish * self)
{
  gint64 deadline;
  guint64 timeout;
  guint left;

  GST_OBJECT_LOCK (self);
  timeout = self->eos_timeout;
  GST_OBJECT_UNLOCK (self);
  deadline = g_get_monotonic_time () + (gint64) MIN (timeout / GST_USECOND, G_MAXINT64 / 2);

  g_mutex_lock (&self->lock);
  self->flush_all = TRUE;
  g_mutex_unlock (&self->lock);
  worker_kick (self);

  g_mutex_lock (&self->lock);
  while (self->queue.length + self->in_flight > 0)
    if (!g_cond_wait_until (&self->cond, &self->lock, deadline))
      break;
  left = self->queue.length + self->in_flight;
  g_mutex_unlock (&self->lock);
  if (left > 0)
    GST_WARNING_OBJECT (self, "EOS: %u records not delivered within eos-timeout", left);
  post_stats (self, TRUE, TRUE);
}

static gboolean
gst_image_bind_publish_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstImageBindPublish *self = GST_IMAGE_BIND_PUBLISH (trans);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_EOS:
      if (self->cur_format != GST_IMAGE_BIND_PUBLISH_FORMAT_QDRANT)
        close_detections (self);
      if (self->thread)
        drain (self);
      break;
    case GST_EVENT_FLUSH_STOP:
    case GST_EVENT_STREAM_START:
      if (self->cur_format != GST_IMAGE_BIND_PUBLISH_FORMAT_QDRANT)
        close_detections (self);
      /* a new stream after EOS (or a seek): batches are full ones again */
      g_mutex_lock (&self->lock);
      self->flush_all = FALSE;
      g_mutex_unlock (&self->lock);
      break;
    default:
      break;
  }
  return GST_BASE_TRANSFORM_CLASS (gst_image_bind_publish_parent_class)->sink_event (trans,
      event);
}

/* ---- GObject ---- */

static void
gst_image_bind_publish_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstImageBindPublish *self = GST_IMAGE_BIND_PUBLISH (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LOCATION:
      g_free (self->location);
      self->location = g_value_dup_string (value);
      break;
    case PROP_FORMAT:
      self->format = g_value_get_enum (value);
      break;
    case PROP_COLLECTION:
      g_free (self->collection);
      self->collection = g_value_dup_string (value);
      break;
    case PROP_SOURCE:
      g_free (self->source);
      self->source = g_value_dup_string (value);
      break;
    case PROP_INCLUDE_VECTOR:
      self->include_vector = g_value_get_boolean (value);
      break;
    case PROP_BATCH_SIZE:
      self->batch_size = g_value_get_uint (value);
      break;
    case PROP_BATCH_INTERVAL:
      self->batch_interval = g_value_get_uint64 (value);
      break;
    case PROP_MAX_QUEUE:
      self->max_queue = g_value_get_uint (value);
      break;
    case PROP_MAX_RETRIES:
      self->max_retries = g_value_get_uint (value);
      break;
    case PROP_RETRY_DELAY:
      self->retry_delay = g_value_get_uint64 (value);
      break;
    case PROP_MAX_RETRY_DELAY:
      self->max_retry_delay = g_value_get_uint64 (value);
      break;
    case PROP_REQUEST_TIMEOUT:
      self->request_timeout = g_value_get_uint64 (value);
      break;
    case PROP_EOS_TIMEOUT:
      self->eos_timeout = g_value_get_uint64 (value);
      break;
    case PROP_STATS_INTERVAL:
      self->stats_interval = g_value_get_uint64 (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_image_bind_publish_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstImageBindPublish *self = GST_IMAGE_BIND_PUBLISH (object);

  switch (prop_id) {
    case PROP_SENT:
    case PROP_FAILED:
    case PROP_DROPPED:
    case PROP_QUEUED:
      g_mutex_lock (&self->lock);
      g_value_set_uint64 (value, prop_id == PROP_SENT ? self->sent : prop_id == PROP_FAILED ?
          self->failed : prop_id == PROP_DROPPED ? self->dropped :
          self->queue.length + self->in_flight);
      g_mutex_unlock (&self->lock);
      return;
    default:
      break;
  }
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LOCATION:
      g_value_set_string (value, self->location);
      break;
    case PROP_FORMAT:
      g_value_set_enum (value, self->format);
      break;
    case PROP_COLLECTION:
      g_value_set_string (value, self->collection);
      break;
    case PROP_SOURCE:
      g_value_set_string (value, self->source);
      break;
    case PROP_INCLUDE_VECTOR:
      g_value_set_boolean (value, self->include_vector);
      break;
    case PROP_BATCH_SIZE:
      g_value_set_uint (value, self->batch_size);
      break;
    case PROP_BATCH_INTERVAL:
      g_value_set_uint64 (value, self->batch_interval);
      break;
    case PROP_MAX_QUEUE:
      g_value_set_uint (value, self->max_queue);
      break;
    case PROP_MAX_RETRIES:
      g_value_set_uint (value, self->max_retries);
      break;
    case PROP_RETRY_DELAY:
      g_value_set_uint64 (value, self->retry_delay);
      break;
    case PROP_MAX_RETRY_DELAY:
      g_value_set_uint64 (value, self->max_retry_delay);
      break;
    case PROP_REQUEST_TIMEOUT:
      g_value_set_uint64 (value, self->request_timeout);
      break;
    case PROP_EOS_TIMEOUT:
      g_value_set_uint64 (value, self->eos_timeout);
      break;
    case PROP_STATS_INTERVAL:
      g_value_set_uint64 (value, self->stats_interval);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_image_bind_publish_finalize (GObject * object)
{
  GstImageBindPublish *self = GST_IMAGE_BIND_PUBLISH (object);

  g_free (self->location);
  g_free (self->collection);
  g_free (self->source);
  g_free (self->cur_source);
  g_free (self->last_error);
  g_free (self->posted_error);
  g_hash_table_unref (self->detected);
  g_ptr_array_unref (self->batch);
  config_clear (&self->cfg);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (gst_image_bind_publish_parent_class)->finalize (object);
}

static void
gst_image_bind_publish_init (GstImageBindPublish * self)
{
  self->format = DEFAULT_FORMAT;
  self->collection = g_strdup (DEFAULT_COLLECTION);
  self->include_vector = DEFAULT_INCLUDE_VECTOR;
  self->batch_size = DEFAULT_BATCH_SIZE;
  self->batch_interval = DEFAULT_BATCH_INTERVAL;
  self->max_queue = DEFAULT_MAX_QUEUE;
  self->max_retries = DEFAULT_MAX_RETRIES;
  self->retry_delay = DEFAULT_RETRY_DELAY;
  self->max_retry_delay = DEFAULT_MAX_RETRY_DELAY;
  self->request_timeout = DEFAULT_REQUEST_TIMEOUT;
  self->eos_timeout = DEFAULT_EOS_TIMEOUT;
  self->stats_interval = DEFAULT_STATS_INTERVAL;
  self->detected = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->batch = g_ptr_array_new_with_free_func ((GDestroyNotify) record_free);
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->queue);
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), TRUE);
}

static void
gst_image_bind_publish_class_init (GstImageBindPublishClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_READY;
  const GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;

  GST_DEBUG_CATEGORY_INIT (gst_image_bind_publish_debug, "imagebindpublish", 0,
      "ImageBind results published as JSON");

  gobject_class->set_property = gst_image_bind_publish_set_property;
  gobject_class->get_property = gst_image_bind_publish_get_property;
  gobject_class->finalize = gst_image_bind_publish_finalize;

  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location",
          "Where to publish: an http:// or https:// URL (webhook, or the Qdrant server's base "
          "URL with format=qdrant), or file:///path/out.jsonl for JSON lines; NULL or \"-\": "
          "JSON lines on standard output", NULL, rw));
  g_object_class_install_property (gobject_class, PROP_FORMAT,
      g_param_spec_enum ("format", "Format", "Body of the requests",
          GST_TYPE_IMAGE_BIND_PUBLISH_FORMAT, DEFAULT_FORMAT, rw));
  g_object_class_install_property (gobject_class, PROP_COLLECTION,
      g_param_spec_string ("collection", "Collection",
          "Qdrant collection to upsert points into (format=qdrant)", DEFAULT_COLLECTION, rw));
  g_object_class_install_property (gobject_class, PROP_SOURCE,
      g_param_spec_string ("source", "Source",
          "The records' `source` field (e.g. a camera or file name); NULL: the element's name",
          NULL, rw));
  g_object_class_install_property (gobject_class, PROP_INCLUDE_VECTOR,
      g_param_spec_boolean ("include-vector", "Include vector",
          "Put the (unit length) embedding vector in embedding records (Qdrant points always "
          "have it)", DEFAULT_INCLUDE_VECTOR, rw));
  g_object_class_install_property (gobject_class, PROP_BATCH_SIZE,
      g_param_spec_uint ("batch-size", "Batch size",
          "Records per request (at most); a batch is sent as soon as this many are queued",
          1, 1000000, DEFAULT_BATCH_SIZE, rw));
  g_object_class_install_property (gobject_class, PROP_BATCH_INTERVAL,
      g_param_spec_uint64 ("batch-interval", "Batch interval",
          "Nanoseconds the oldest queued record waits for a full batch before a smaller one "
          "is sent", 0, G_MAXUINT64, DEFAULT_BATCH_INTERVAL, rw));
  g_object_class_install_property (gobject_class, PROP_MAX_QUEUE,
      g_param_spec_uint ("max-queue", "Maximum queue",
          "Records held at most (queued and being sent); beyond, new records are dropped and "
          "counted in `dropped`", 1, G_MAXINT, DEFAULT_MAX_QUEUE, rw));
  g_object_class_install_property (gobject_class, PROP_MAX_RETRIES,
      g_param_spec_uint ("max-retries", "Maximum retries",
          "Retries of a batch after a connection error, a timeout or a 5xx answer before it "
          "is counted as failed", 0, G_MAXINT, DEFAULT_MAX_RETRIES, rw));
  g_object_class_install_property (gobject_class, PROP_RETRY_DELAY,
      g_param_spec_uint64 ("retry-delay", "Retry delay",
          "Nanoseconds before the first retry; doubled at each further retry", 0, G_MAXUINT64,
          DEFAULT_RETRY_DELAY, rw));
  g_object_class_install_property (gobject_class, PROP_MAX_RETRY_DELAY,
      g_param_spec_uint64 ("max-retry-delay", "Maximum retry delay",
          "Nanoseconds the doubled retry delay is capped at", 0, G_MAXUINT64,
          DEFAULT_MAX_RETRY_DELAY, rw));
  g_object_class_install_property (gobject_class, PROP_REQUEST_TIMEOUT,
      g_param_spec_uint64 ("request-timeout", "Request timeout",
          "Nanoseconds (whole seconds, at least 1) a request may take before it is retried",
          0, G_MAXUINT64, DEFAULT_REQUEST_TIMEOUT, rw));
  g_object_class_install_property (gobject_class, PROP_EOS_TIMEOUT,
      g_param_spec_uint64 ("eos-timeout", "EOS timeout",
          "Nanoseconds EOS waits at most for the queued records to be delivered", 0,
          G_MAXUINT64, DEFAULT_EOS_TIMEOUT, rw));
  g_object_class_install_property (gobject_class, PROP_STATS_INTERVAL,
      g_param_spec_uint64 ("stats-interval", "Stats interval",
          "Nanoseconds between checks for changed counters (imagebind-publish-stats message)",
          GST_MSECOND, G_MAXUINT64, DEFAULT_STATS_INTERVAL, rw));
  g_object_class_install_property (gobject_class, PROP_SENT,
      g_param_spec_uint64 ("sent", "Sent", "Records delivered so far", 0, G_MAXUINT64, 0, ro));
  g_object_class_install_property (gobject_class, PROP_FAILED,
      g_param_spec_uint64 ("failed", "Failed",
          "Records given up (4xx answer, retries exhausted, write error)", 0, G_MAXUINT64, 0,
          ro));
  g_object_class_install_property (gobject_class, PROP_DROPPED,
      g_param_spec_uint64 ("dropped", "Dropped",
          "Records dropped because the queue was full", 0, G_MAXUINT64, 0, ro));
  g_object_class_install_property (gobject_class, PROP_QUEUED,
      g_param_spec_uint64 ("queued", "Queued",
          "Records waiting now, including the batch being sent", 0, G_MAXUINT64, 0, ro));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "ImageBind publisher",
      "Filter/Network", "Sends ImageBind embeddings, matches and detections as JSON to an "
      "HTTP endpoint (webhook, Qdrant) or a JSON-lines file, without blocking the stream",
      "gst-imagebind");
  gst_type_mark_as_plugin_api (GST_TYPE_IMAGE_BIND_PUBLISH_FORMAT, 0);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_image_bind_publish_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_image_bind_publish_stop);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_image_bind_publish_transform_ip);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_image_bind_publish_sink_event);
}
