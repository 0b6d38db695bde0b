/**
 * SECTION:element-imagebindpublish
 * @title: imagebindpublish
 * @see_also: imagebindvision, imagebindaudio, imagebindmatch, #GstImageBindEmbeddingMeta,
 *     #GstImageBindMatchMeta
 *
 * Publishes the ImageBind results riding on buffers as JSON: every #GstImageBindEmbeddingMeta
 * and #GstImageBindMatchMeta passing through becomes a record, sent in batches to an HTTP
 * endpoint (a webhook, or a vector database such as Qdrant), published to an MQTT broker, or
 * appended to a JSON-lines file.
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
 *   and Euclidean distance rank alike in a vector database). An embedding with a NaN or an
 *   infinity in its vector (a broken model or input) is not published at all, neither as a
 *   record nor as a point: it is counted in `rejected`, and the first one of a run posts a
 *   warning. Other non-finite numbers (a score, the logit scale) become null.
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
 * - `location=mqtt://host[:port]/topic` (or `mqtts://` for TLS; default ports 1883 and
 *   8883): each record is one MQTT message (a JSON object; `format=qdrant`: a point) on the
 *   topic, with QoS `qos` (0 or 1), never retained. A batch is done when all its messages are:
 *   QoS 1, acknowledged by the broker; QoS 0, written to the socket (a broker dying then may
 *   lose them: QoS 0 is at most once). The connection is made at the first batch and kept,
 *   with a keepalive of 30 s; the client id is random, the session clean. The topic is the
 *   URL's path without its first '/', percent-decoded; it must not be empty nor have
 *   wildcards (+, #). Needs a build with libmosquitto, else such a location is an error.
 * - `location=file:///absolute/path/out.jsonl`: no network; each record is appended as one
 *   line (JSON lines; `format=qdrant` writes points instead). The file is created or
 *   truncated at READY->PAUSED. The path must be absolute: `file://relative/x.jsonl` names
 *   the host "relative" and is refused (only `file://localhost/...` is taken as local).
 *   With `location=-` the lines go to standard output. Without `location` the element
 *   fails to start (an error message saying so): it never writes to standard output unasked.
 *
 * Locations are checked at READY->PAUSED: a URL without a host (`http://`, `http:///hook`),
 * an invalid port, an MQTT URL without a topic, an unknown scheme or an unwritable file is an
 * error then, not at the first record.
 *
 * ## Authentication and TLS
 *
 * - `username` / `password`: MQTT credentials; with HTTP, Basic authentication.
 * - `extra-headers` (HTTP): headers added to every request, as a structure, e.g.
 *   `extra-headers="headers,api-key=SECRET"` for a Qdrant server with an API key.
 * - `tls-ca-file`: the certificate authorities to trust instead of the system's;
 *   `tls-cert-file` and `tls-key-file`: a client certificate. They apply to `https://` and
 *   `mqtts://` locations, and are an error with any other. Server certificates are always
 *   verified (with MQTT, the host name too).
 *
 * ## Delivery
 *
 * A batch is sent when `batch-size` records are queued, or when the oldest queued record has
 * waited `batch-interval`; one batch at a time, in order. `request-timeout` bounds one
 * attempt as a whole (connecting, sending, and the entire answer, however slowly it trickles
 * in; MQTT: until every message of the batch is done). Connection errors, lost connections,
 * timed out attempts and 5xx answers are retried up to `max-retries` times, after
 * `retry-delay`, doubled at each attempt up to `max-retry-delay` (the back-off of MQTT's
 * reconnections too); other answers (4xx, an MQTT broker refusing the credentials) are not
 * retried. A batch that is given up is counted as failed. Delivery is at least once: a batch
 * whose answer timed out is sent again (Qdrant's upsert of the same ids makes that harmless;
 * MQTT publishes again only the messages that were not acknowledged). Only the first 64 KiB
 * of an HTTP answer's body are read (they explain a refused batch in `last-error`); a longer
 * body is not read on, its connection is closed. A batch being sent still counts against
 * `max-queue`. At EOS the element sends what is queued without waiting for a full batch,
 * waits at most `eos-timeout` for it to be delivered (this is the only time the streaming
 * thread waits), and forwards the EOS; what is still undelivered then is dropped and counted
 * in `dropped`, with a warning message, before the EOS stats are posted. Records still
 * undelivered when the element stops (PAUSED->READY without EOS) are dropped and counted the
 * same way, with a warning.
 *
 * ## Messages
 *
 * An element message named `imagebind-publish-stats` is posted every `stats-interval` when
 * a counter or the last error changed since the last one, and at EOS, with these fields:
 *
 * - `sent` (G_TYPE_UINT64): records delivered (2xx answer, MQTT messages done, or written to
 *   the file)
 * - `failed` (G_TYPE_UINT64): records given up (4xx answer, connection refused for good,
 *   retries exhausted, write error)
 * - `dropped` (G_TYPE_UINT64): records dropped because the queue was full, or still
 *   undelivered after `eos-timeout` at EOS
 * - `rejected` (G_TYPE_UINT64): embeddings not published because of NaN or infinite values
 * - `queued` (G_TYPE_UINT64): records waiting, including the batch being sent
 * - `eos` (G_TYPE_BOOLEAN): TRUE for the message posted at EOS
 * - `last-error` (G_TYPE_STRING): the error of the last failed attempt, "" if none; cleared
 *   when a batch is delivered again (the endpoint has recovered)
 *
 * Warning messages: records dropped at EOS or at stop (how many, and the last error), and
 * the first embedding rejected for non-finite values.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -m videotestsrc num-buffers=10 ! videoconvert ! imagebindvision ! imagebindmatch prompt-list="a bouncing ball;colour bars" ! imagebindpublish location=file:///tmp/imagebind.jsonl ! fakesink
 * ]|
 * Writes 10 embedding records and 10 match records to /tmp/imagebind.jsonl.
 *
 * |[
 * gst-launch-1.0 -m videotestsrc num-buffers=50 ! videoconvert ! imagebindvision interval=500000000 ! imagebindmatch prompt-list="a bouncing ball;colour bars" post-messages=false ! imagebindpublish location=http://127.0.0.1:8080/hook batch-size=4 ! fakesink
 * ]|
 * POSTs two JSON arrays of 4 records (embedding, match, embedding, match) to a webhook
 * listening on port 8080.
 *
 * |[
 * gst-launch-1.0 -m v4l2src ! videoconvert ! imagebindvision interval=1000000000 ! imagebindpublish format=qdrant location=http://localhost:6333 collection=camera ! fakesink
 * ]|
 * Upserts one camera frame embedding a second into the Qdrant collection "camera" (create it
 * first with the model's vector size; not run here: no camera, no Qdrant server). For a
 * Qdrant server with an API key, add `extra-headers="headers,api-key=SECRET"`.
 *
 * |[
 * gst-launch-1.0 -m videotestsrc num-buffers=50 ! videoconvert ! imagebindvision interval=500000000 sync=true ! imagebindpublish location=mqtt://127.0.0.1:1883/cameras/test qos=1 include-vector=false ! fakesink
 * ]|
 * Publishes 4 embedding records (frames at 0, 0.5, 1 and 1.5 s, without their vectors), one
 * message each, to the topic cameras/test of a broker on this machine, e.g. Debian's
 * `mosquitto` (`mosquitto_sub -t cameras/test -v` shows them).
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gstimagebindpublishqueue.h"

GST_DEBUG_CATEGORY (gst_image_bind_publish_debug);
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
#define DEFAULT_QOS 1

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
  PROP_QOS,
  PROP_USERNAME,
  PROP_PASSWORD,
  PROP_TLS_CA_FILE,
  PROP_TLS_CERT_FILE,
  PROP_TLS_KEY_FILE,
  PROP_EXTRA_HEADERS,
  PROP_SENT,
  PROP_FAILED,
  PROP_DROPPED,
  PROP_REJECTED,
  PROP_QUEUED,
};

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
  guint qos;
  gchar *username, *password;
  gchar *tls_ca_file, *tls_cert_file, *tls_key_file;
  GstStructure *extra_headers;

  /* the queue of the running (or last) stream: the pointer under the object lock; kept after
   * stop for the counters */
  GstImageBindPublishQueue *queue;

  /* streaming thread only */
  gchar *cur_source;
  gboolean cur_include_vector;
  gboolean cur_qdrant;
  GHashTable *detected;         /* "modality/index" -> label, prompts currently detected */
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

/* ---- the location, checked at start ---- */

static gboolean
readable_file (GstImageBindPublish * self, const gchar * property, const gchar * path)
{
  if (!path || (g_file_test (path, G_FILE_TEST_IS_REGULAR) && g_access (path, R_OK) == 0))
    return TRUE;
  GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("Cannot read the %s '%s'.", property, path),
      ("%s", g_file_test (path, G_FILE_TEST_EXISTS) ? "not a readable file" : "no such file"));
  return FALSE;
}

/* TLS files: readable, only for https:// and mqtts:// (silently unused security settings
 * would be worse than an error), and for HTTP made into GTlsDatabase / GTlsCertificate now,
 * so that a bad file is an error at start. */
static gboolean
configure_tls (GstImageBindPublish * self, const gchar * location, gboolean tls,
    GstImageBindPublishConfig * cfg)
{
  GError *err = NULL;
  const gchar *set = cfg->tls_ca_file ? "tls-ca-file" : cfg->tls_cert_file ? "tls-cert-file" :
      cfg->tls_key_file ? "tls-key-file" : NULL;

  if (!set)
    return TRUE;
  if (!tls) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s is set but '%s' does not use TLS.", set,
            location), ("the TLS properties apply to https:// and mqtts:// locations"));
    return FALSE;
  }
  if (!readable_file (self, "tls-ca-file", cfg->tls_ca_file)
      || !readable_file (self, "tls-cert-file", cfg->tls_cert_file)
      || !readable_file (self, "tls-key-file", cfg->tls_key_file))
    return FALSE;
  if (!cfg->tls_cert_file != !cfg->tls_key_file && cfg->target ==
      GST_IMAGE_BIND_PUBLISH_TARGET_MQTT) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("A client certificate needs both "
            "tls-cert-file and tls-key-file."), (NULL));
    return FALSE;
  }
  if (cfg->target != GST_IMAGE_BIND_PUBLISH_TARGET_HTTP)
    return TRUE;
  if (cfg->tls_ca_file && !(cfg->tls_database = g_tls_file_database_new (cfg->tls_ca_file,
              &err))) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("Cannot use the tls-ca-file '%s'.",
            cfg->tls_ca_file), ("%s", err->message));
    g_clear_error (&err);
    return FALSE;
  }
  if (cfg->tls_cert_file && !(cfg->tls_certificate = g_tls_certificate_new_from_files
          (cfg->tls_cert_file, cfg->tls_key_file ? cfg->tls_key_file : cfg->tls_cert_file,
              &err))) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("Cannot use the client certificate '%s'.",
            cfg->tls_cert_file), ("%s", err->message));
    g_clear_error (&err);
    return FALSE;
  }
  return TRUE;
}

/* ---- GstBaseTransform ---- */

static gboolean
gst_image_bind_publish_start (GstBaseTransform * trans)
{
  GstImageBindPublish *self = GST_IMAGE_BIND_PUBLISH (trans);
  GstImageBindPublishConfig cfg = { 0 };
  GstImageBindPublishQueue *old;
  gchar *location, *collection;
  gboolean ok, qdrant, tls = FALSE;

  GST_OBJECT_LOCK (self);
  location = g_strdup (self->location);
  collection = g_strdup (self->collection);
  qdrant = self->format == GST_IMAGE_BIND_PUBLISH_FORMAT_QDRANT;
  cfg.qdrant = qdrant;
  cfg.batch_size = MAX (1, self->batch_size);
  cfg.batch_interval = self->batch_interval;
  cfg.max_queue = MAX (1, self->max_queue);
  cfg.max_retries = self->max_retries;
  cfg.retry_delay = self->retry_delay;
  cfg.max_retry_delay = MAX (self->max_retry_delay, self->retry_delay);
  cfg.request_timeout = MAX (GST_MSECOND, self->request_timeout);
  cfg.stats_interval = MAX (GST_MSECOND, self->stats_interval);
  cfg.qos = self->qos;
  cfg.username = g_strdup (self->username);
  cfg.password = g_strdup (self->password);
  cfg.tls_ca_file = g_strdup (self->tls_ca_file);
  cfg.tls_cert_file = g_strdup (self->tls_cert_file);
  cfg.tls_key_file = g_strdup (self->tls_key_file);
  cfg.extra_headers = self->extra_headers ? gst_structure_copy (self->extra_headers) : NULL;
  g_free (self->cur_source);
  self->cur_source = g_strdup (self->source ? self->source : GST_OBJECT_NAME (self));
  self->cur_include_vector = self->include_vector;
  self->cur_qdrant = qdrant;
  GST_OBJECT_UNLOCK (self);

  if (!location || !*location) {
    /* an element printing to standard output by default would mix its records into
     * whatever else writes there (gst-launch-1.0 -m): the destination is always chosen */
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("No location set."),
        ("Set location to an http:// or https:// URL, mqtt://host[:port]/topic (or mqtts://), "
            "file:///path/out.jsonl, or - for JSON lines on standard output"));
    ok = FALSE;
  } else if (g_str_equal (location, "-")) {
    /* asked for: JSON lines on standard output (e.g. piped into jq) */
    cfg.target = GST_IMAGE_BIND_PUBLISH_TARGET_FILE;
    cfg.display = g_strdup ("<stdout>");
    cfg.path = g_strdup ("<stdout>");
    cfg.file = stdout;
    ok = TRUE;
  } else if (g_str_has_prefix (location, "file:")) {
    ok = gst_image_bind_publish_file_configure (GST_ELEMENT (self), location, &cfg);
  } else if (g_str_has_prefix (location, "http://") || g_str_has_prefix (location,
          "https://")) {
    tls = g_str_has_prefix (location, "https://");
#ifdef HAVE_SOUP
    ok = gst_image_bind_publish_http_configure (GST_ELEMENT (self), location,
        collection ? collection : DEFAULT_COLLECTION, qdrant, &cfg);
#else
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("This build of imagebindpublish has no HTTP support ('%s').", location),
        ("libsoup 3 was not found when gst-imagebind was built (or -Dsoup=disabled): install "
            "libsoup-3.0-dev (Debian) and build again"));
    ok = FALSE;
#endif
  } else if (g_str_has_prefix (location, "mqtt://") || g_str_has_prefix (location,
          "mqtts://")) {
    tls = g_str_has_prefix (location, "mqtts://");
#ifdef HAVE_MOSQUITTO
    ok = gst_image_bind_publish_mqtt_configure (GST_ELEMENT (self), location, tls, &cfg);
#else
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("This build of imagebindpublish has no MQTT support ('%s').", location),
        ("libmosquitto was not found when gst-imagebind was built (or -Dmqtt=disabled): "
            "install libmosquitto-dev (Debian) and build again"));
    ok = FALSE;
#endif
  } else {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("Unsupported location '%s'.", location),
        ("Use an http:// or https:// URL, mqtt://host[:port]/topic (or mqtts://), "
            "file:///path/out.jsonl, or - for standard output"));
    ok = FALSE;
  }
  if (ok && cfg.target != GST_IMAGE_BIND_PUBLISH_TARGET_FILE)
    ok = configure_tls (self, location, tls, &cfg);
  g_free (collection);
  if (!ok) {
    gst_image_bind_publish_config_clear (&cfg);
    g_free (location);
    return FALSE;
  }
  GST_INFO_OBJECT (self, "publishing to %s", cfg.display);
  g_free (location);

  g_hash_table_remove_all (self->detected);
  GST_OBJECT_LOCK (self);
  old = self->queue;
  self->queue = gst_image_bind_publish_queue_start (GST_ELEMENT (self), &cfg);
  GST_OBJECT_UNLOCK (self);
  if (old)
    gst_image_bind_publish_queue_free (old);
  return TRUE;
}

static gboolean
gst_image_bind_publish_stop (GstBaseTransform * trans)
{
  GstImageBindPublish *self = GST_IMAGE_BIND_PUBLISH (trans);

  /* the queue stays (stopped) for the counters */
  if (self->queue)
    gst_image_bind_publish_queue_stop (self->queue);
  return TRUE;
}

static void
enqueue (GstImageBindPublish * self, JsonNode * record, JsonNode * point)
{
  gst_image_bind_publish_queue_push (self->queue, record, point);
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
      enqueue (self, gst_image_bind_publish_detection_record (self->cur_source, m, r,
              r->detected), NULL);
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

    if (sscanf (key, "%d/%u", &modality, &index) != 2)
      continue;
    enqueue (self, gst_image_bind_publish_detection_end_record (self->cur_source, modality,
            label, index), NULL);
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

  while ((e = gst_buffer_iterate_imagebind_embedding_meta (buf, &state))) {
    JsonNode *point = NULL;

    /* JSON has no NaN: such a vector sent as zeros (or nulls) would be a wrong point in a
     * vector database. Refused, counted, and said once. */
    if (!gst_image_bind_publish_embedding_is_finite (e)) {
      if (gst_image_bind_publish_queue_reject (self->queue))
        GST_ELEMENT_WARNING (self, STREAM, FORMAT,
            ("An embedding with NaN or infinite values was not published."),
            ("%s embedding at %" GST_TIME_FORMAT " from %s: the model or its input is "
                "broken; further ones are counted in `rejected` without a warning",
                gst_image_bind_modality_to_string (e->modality), GST_TIME_ARGS (e->pts),
                e->model_id ? e->model_id : "an unknown model"));
      continue;
    }
    if (self->cur_qdrant) {
      GstImageBindMatchMeta *same = NULL;
      gpointer mstate = NULL;
      while ((m = gst_buffer_iterate_imagebind_match_meta (buf, &mstate)))
        if (m->modality == e->modality && m->pts == e->pts && !e->has_region)
          same = m;             /* the frame's result, not a region's */
      point = gst_image_bind_publish_embedding_point (self->cur_source, e, same);
    }
    enqueue (self, gst_image_bind_publish_embedding_record (self->cur_source, e,
            self->cur_include_vector), point);
  }
  if (self->cur_qdrant)
    return GST_FLOW_OK;         /* only embeddings become points */
  state = NULL;
  while ((m = gst_buffer_iterate_imagebind_match_meta (buf, &state))) {
    enqueue (self, gst_image_bind_publish_match_record (self->cur_source, m), NULL);
    follow_detections (self, m);
  }
  return GST_FLOW_OK;
}

static gboolean
gst_image_bind_publish_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstImageBindPublish *self = GST_IMAGE_BIND_PUBLISH (trans);
  GstClockTime timeout;

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_EOS:
      if (!self->cur_qdrant)
        close_detections (self);
      GST_OBJECT_LOCK (self);
      timeout = self->eos_timeout;
      GST_OBJECT_UNLOCK (self);
      gst_image_bind_publish_queue_drain (self->queue, timeout);
      break;
    case GST_EVENT_FLUSH_STOP:
    case GST_EVENT_STREAM_START:
      if (!self->cur_qdrant)
        close_detections (self);
      /* a new stream after EOS (or a seek): batches are full ones again */
      gst_image_bind_publish_queue_new_stream (self->queue);
      break;
    default:
      break;
  }
  return GST_BASE_TRANSFORM_CLASS (gst_image_bind_publish_parent_class)->sink_event (trans,
      event);
}

/* ---- GObject ---- */

static void
set_string (gchar ** field, const GValue * value)
{
  g_free (*field);
  *field = g_value_dup_string (value);
  if (*field && !**field)
    g_clear_pointer (field, g_free);
}

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
    case PROP_QOS:
      self->qos = g_value_get_uint (value);
      break;
    case PROP_USERNAME:
      set_string (&self->username, value);
      break;
    case PROP_PASSWORD:
      set_string (&self->password, value);
      break;
    case PROP_TLS_CA_FILE:
      set_string (&self->tls_ca_file, value);
      break;
    case PROP_TLS_CERT_FILE:
      set_string (&self->tls_cert_file, value);
      break;
    case PROP_TLS_KEY_FILE:
      set_string (&self->tls_key_file, value);
      break;
    case PROP_EXTRA_HEADERS:
      g_clear_pointer (&self->extra_headers, gst_structure_free);
      if (gst_value_get_structure (value))
        self->extra_headers = gst_structure_copy (gst_value_get_structure (value));
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
  GstImageBindPublishCounts counts = { 0 };

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
    case PROP_QOS:
      g_value_set_uint (value, self->qos);
      break;
    case PROP_USERNAME:
      g_value_set_string (value, self->username);
      break;
    case PROP_PASSWORD:
      g_value_set_string (value, self->password);
      break;
    case PROP_TLS_CA_FILE:
      g_value_set_string (value, self->tls_ca_file);
      break;
    case PROP_TLS_CERT_FILE:
      g_value_set_string (value, self->tls_cert_file);
      break;
    case PROP_TLS_KEY_FILE:
      g_value_set_string (value, self->tls_key_file);
      break;
    case PROP_EXTRA_HEADERS:
      gst_value_set_structure (value, self->extra_headers);
      break;
    case PROP_SENT:
    case PROP_FAILED:
    case PROP_DROPPED:
    case PROP_REJECTED:
    case PROP_QUEUED:
      if (self->queue)
        gst_image_bind_publish_queue_get_counts (self->queue, &counts);
      g_value_set_uint64 (value, prop_id == PROP_SENT ? counts.sent :
          prop_id == PROP_FAILED ? counts.failed : prop_id == PROP_DROPPED ? counts.dropped :
          prop_id == PROP_REJECTED ? counts.rejected : counts.queued);
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

  if (self->queue)
    gst_image_bind_publish_queue_free (self->queue);
  g_free (self->location);
  g_free (self->collection);
  g_free (self->source);
  g_free (self->cur_source);
  g_free (self->username);
  g_free (self->password);
  g_free (self->tls_ca_file);
  g_free (self->tls_cert_file);
  g_free (self->tls_key_file);
  if (self->extra_headers)
    gst_structure_free (self->extra_headers);
  g_hash_table_unref (self->detected);
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
  self->qos = DEFAULT_QOS;
  self->detected = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
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
          "URL with format=qdrant), mqtt://host[:port]/topic or mqtts:// (an MQTT broker, one "
          "message per record), or file:///absolute/path/out.jsonl for JSON lines; \"-\": JSON "
          "lines on standard output. Must be set: without it the element fails to start",
          NULL, rw));
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
          "Nanoseconds one attempt to deliver a batch may take in all (connecting, sending, "
          "the whole answer; MQTT: until every message is acknowledged) before it is given "
          "up and retried (at least 1 ms)", 0, G_MAXUINT64, DEFAULT_REQUEST_TIMEOUT, rw));
  g_object_class_install_property (gobject_class, PROP_EOS_TIMEOUT,
      g_param_spec_uint64 ("eos-timeout", "EOS timeout",
          "Nanoseconds EOS waits at most for the queued records to be delivered", 0,
          G_MAXUINT64, DEFAULT_EOS_TIMEOUT, rw));
  g_object_class_install_property (gobject_class, PROP_STATS_INTERVAL,
      g_param_spec_uint64 ("stats-interval", "Stats interval",
          "Nanoseconds between checks for changed counters (imagebind-publish-stats message)",
          GST_MSECOND, G_MAXUINT64, DEFAULT_STATS_INTERVAL, rw));
  g_object_class_install_property (gobject_class, PROP_QOS,
      g_param_spec_uint ("qos", "QoS",
          "MQTT quality of service: 0 (at most once: a message is done once written to the "
          "socket) or 1 (at least once: done when the broker acknowledges it)", 0, 1,
          DEFAULT_QOS, rw));
  g_object_class_install_property (gobject_class, PROP_USERNAME,
      g_param_spec_string ("username", "User name",
          "MQTT user name, or for HTTP the user of Basic authentication; NULL: none", NULL,
          rw));
  g_object_class_install_property (gobject_class, PROP_PASSWORD,
      g_param_spec_string ("password", "Password",
          "Password that goes with `username`", NULL, rw));
  g_object_class_install_property (gobject_class, PROP_TLS_CA_FILE,
      g_param_spec_string ("tls-ca-file", "TLS CA file",
          "PEM file of the certificate authorities to trust (https://, mqtts://); NULL: the "
          "system's", NULL, rw));
  g_object_class_install_property (gobject_class, PROP_TLS_CERT_FILE,
      g_param_spec_string ("tls-cert-file", "TLS certificate file",
          "PEM file of a client certificate to present (https://, mqtts://); NULL: none",
          NULL, rw));
  g_object_class_install_property (gobject_class, PROP_TLS_KEY_FILE,
      g_param_spec_string ("tls-key-file", "TLS key file",
          "PEM file of the client certificate's private key (HTTP: NULL if it is in "
          "tls-cert-file)", NULL, rw));
  g_object_class_install_property (gobject_class, PROP_EXTRA_HEADERS,
      g_param_spec_boxed ("extra-headers", "Extra headers",
          "HTTP headers added to every request: a structure whose fields are header names "
          "and values, e.g. extra-headers=\"headers,api-key=SECRET\" for Qdrant's API key "
          "(not used with MQTT or files)", GST_TYPE_STRUCTURE, rw));
  g_object_class_install_property (gobject_class, PROP_SENT,
      g_param_spec_uint64 ("sent", "Sent", "Records delivered so far", 0, G_MAXUINT64, 0, ro));
  g_object_class_install_property (gobject_class, PROP_FAILED,
      g_param_spec_uint64 ("failed", "Failed",
          "Records given up (4xx answer, retries exhausted, write error)", 0, G_MAXUINT64, 0,
          ro));
  g_object_class_install_property (gobject_class, PROP_DROPPED,
      g_param_spec_uint64 ("dropped", "Dropped",
          "Records dropped: the queue was full, or they were still undelivered at EOS after "
          "eos-timeout or when the element stopped", 0, G_MAXUINT64, 0, ro));
  g_object_class_install_property (gobject_class, PROP_REJECTED,
      g_param_spec_uint64 ("rejected", "Rejected",
          "Embeddings not published because their vector has NaN or infinite values", 0,
          G_MAXUINT64, 0, ro));
  g_object_class_install_property (gobject_class, PROP_QUEUED,
      g_param_spec_uint64 ("queued", "Queued",
          "Records waiting now, including the batch being sent", 0, G_MAXUINT64, 0, ro));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "ImageBind publisher",
      "Filter/Network", "Sends ImageBind embeddings, matches and detections as JSON to an "
      "HTTP endpoint (webhook, Qdrant), an MQTT broker or a JSON-lines file, without blocking "
      "the stream", "gst-imagebind");
  gst_type_mark_as_plugin_api (GST_TYPE_IMAGE_BIND_PUBLISH_FORMAT, 0);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_image_bind_publish_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_image_bind_publish_stop);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_image_bind_publish_transform_ip);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_image_bind_publish_sink_event);
}
