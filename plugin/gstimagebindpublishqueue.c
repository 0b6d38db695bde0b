/* imagebindpublish: the queue and its worker (see gstimagebindpublishqueue.h). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <string.h>

#include "gstimagebindpublishqueue.h"

#define GST_CAT_DEFAULT gst_image_bind_publish_debug

struct _GstImageBindPublishQueue {
  GstElement *element;          /* not a reference: the element owns the queue */
  GstImageBindPublishConfig cfg;

  /* shared between the streaming thread and the worker */
  GMutex lock;
  GCond cond;
  GQueue queue;                 /* GstImageBindPublishRecord *, oldest first */
  guint in_flight;              /* records of the batch being sent */
  guint64 sent, failed, dropped, rejected;
  gchar *last_error;
  gboolean flush_all;           /* EOS: send without waiting for a full batch */
  gboolean kick_pending;
  gboolean abandoned;           /* the worker has run abandon () */

  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;

  /* worker thread only */
  GstImageBindPublishTransport *transport;
  GPtrArray *batch;             /* GstImageBindPublishRecord * being sent */
  guint attempt;
  gboolean sending;             /* transport->send () under way */
  gboolean waiting_retry;
  gboolean pumping, repump;
  GSource *timer;               /* batch-interval or retry wait */
  GSource *request_timer;       /* request-timeout of the send under way */
  GSource *stats;
  guint64 posted_sent, posted_failed, posted_dropped, posted_rejected, posted_queued;
  gchar *posted_error;
  gboolean posted_once;
};

void
gst_image_bind_publish_config_clear (GstImageBindPublishConfig * c)
{
  g_clear_pointer (&c->display, g_free);
  g_clear_pointer (&c->path, g_free);
  if (c->file && c->file != stdout)
    fclose (c->file);
  c->file = NULL;
  g_clear_pointer (&c->uri, g_uri_unref);
  g_clear_pointer (&c->extra_headers, gst_structure_free);
  g_clear_object (&c->tls_database);
  g_clear_object (&c->tls_certificate);
  g_clear_pointer (&c->host, g_free);
  g_clear_pointer (&c->topic, g_free);
  g_clear_pointer (&c->tls_ca_file, g_free);
  g_clear_pointer (&c->tls_cert_file, g_free);
  g_clear_pointer (&c->tls_key_file, g_free);
  g_clear_pointer (&c->username, g_free);
  g_clear_pointer (&c->password, g_free);
}

/* ---- the worker ---- */

static void pump (GstImageBindPublishQueue * q);

static void
destroy_source (GSource ** s)
{
  if (*s) {
    g_source_destroy (*s);
    g_source_unref (*s);
    *s = NULL;
  }
}

static GSource *
add_timeout (GstImageBindPublishQueue * q, GstClockTime delay, GSourceFunc func)
{
  GSource *s = g_timeout_source_new (MAX (1, (guint) MIN (delay / GST_MSECOND, G_MAXUINT)));

  g_source_set_callback (s, func, q, NULL);
  g_source_attach (s, q->context);
  return s;
}

static gboolean
timer_fired (gpointer data)
{
  GstImageBindPublishQueue *q = data;

  destroy_source (&q->timer);
  pump (q);
  return G_SOURCE_REMOVE;
}

static void
start_timer (GstImageBindPublishQueue * q, GstClockTime delay)
{
  destroy_source (&q->timer);
  q->timer = add_timeout (q, delay, timer_fired);
}

/* Posts the stats if they changed since the last post (or if @force). */
static void
post_stats (GstImageBindPublishQueue * q, gboolean force, gboolean eos)
{
  guint64 sent, failed, dropped, rejected, queued;
  gchar *last_error;

  g_mutex_lock (&q->lock);
  sent = q->sent;
  failed = q->failed;
  dropped = q->dropped;
  rejected = q->rejected;
  queued = q->queue.length + q->in_flight;
  last_error = g_strdup (q->last_error ? q->last_error : "");
  if (!force && q->posted_once && sent == q->posted_sent && failed == q->posted_failed
      && dropped == q->posted_dropped && rejected == q->posted_rejected
      && queued == q->posted_queued && g_strcmp0 (last_error, q->posted_error) == 0) {
    g_mutex_unlock (&q->lock);
    g_free (last_error);
    return;
  }
  q->posted_sent = sent;
  q->posted_failed = failed;
  q->posted_dropped = dropped;
  q->posted_rejected = rejected;
  q->posted_queued = queued;
  g_free (q->posted_error);
  q->posted_error = g_strdup (last_error);
  q->posted_once = TRUE;
  g_mutex_unlock (&q->lock);

  gst_element_post_message (q->element, gst_message_new_element (GST_OBJECT (q->element),
          gst_structure_new ("imagebind-publish-stats", "sent", G_TYPE_UINT64, sent,
              "failed", G_TYPE_UINT64, failed, "dropped", G_TYPE_UINT64, dropped,
              "rejected", G_TYPE_UINT64, rejected, "queued", G_TYPE_UINT64, queued,
              "eos", G_TYPE_BOOLEAN, eos, "last-error", G_TYPE_STRING, last_error, NULL)));
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
finish_batch (GstImageBindPublishQueue * q, gboolean ok, const gchar * error)
{
  guint n = q->batch->len;

  g_ptr_array_set_size (q->batch, 0);
  q->attempt = 0;
  q->waiting_retry = FALSE;
  g_mutex_lock (&q->lock);
  q->in_flight = 0;
  g_free (q->last_error);
  /* a delivery means the endpoint works (again): the last error no longer describes it */
  q->last_error = ok ? NULL : g_strdup (error);
  if (ok)
    q->sent += n;
  else
    q->failed += n;
  g_cond_broadcast (&q->cond);
  g_mutex_unlock (&q->lock);
  if (!ok)
    GST_WARNING_OBJECT (q->element, "gave up on a batch of %u records: %s", n, error);
  else
    GST_DEBUG_OBJECT (q->element, "delivered %u records", n);
}

static void
retry_or_fail (GstImageBindPublishQueue * q, const gchar * error)
{
  GstClockTime delay;
  guint i;

  if (q->attempt >= q->cfg.max_retries) {
    finish_batch (q, FALSE, error);
    return;
  }
  g_mutex_lock (&q->lock);
  g_free (q->last_error);
  q->last_error = g_strdup (error);
  g_mutex_unlock (&q->lock);
  delay = q->cfg.retry_delay;
  for (i = 0; i < q->attempt && delay < q->cfg.max_retry_delay; i++)
    delay *= 2;
  delay = MIN (delay, q->cfg.max_retry_delay);
  q->attempt++;
  GST_INFO_OBJECT (q->element, "%s: retry %u of %u in %" GST_TIME_FORMAT, error, q->attempt,
      q->cfg.max_retries, GST_TIME_ARGS (delay));
  q->waiting_retry = TRUE;
  start_timer (q, delay);
}

/* The transport's answer to send (). */
static void
batch_done (GstImageBindPublishTransport * t, GstImageBindPublishResult result,
    const gchar * error)
{
  GstImageBindPublishQueue *q = t->queue;

  g_return_if_fail (q->sending);
  q->sending = FALSE;
  destroy_source (&q->request_timer);
  if (result == GST_IMAGE_BIND_PUBLISH_OK)
    finish_batch (q, TRUE, NULL);
  else if (result == GST_IMAGE_BIND_PUBLISH_RETRY)
    retry_or_fail (q, error);
  else
    finish_batch (q, FALSE, error);
  pump (q);
}

/* request-timeout: the whole attempt, from the request to the end of its answer (a server
 * trickling its answer a byte at a time must not hold the publisher). */
static gboolean
request_timed_out (gpointer data)
{
  GstImageBindPublishQueue *q = data;
  gchar *e;

  destroy_source (&q->request_timer);
  q->sending = FALSE;
  q->transport->cancel (q->transport);
  e = g_strdup_printf ("%s: request timed out after %.3f s (request-timeout)", q->cfg.display,
      (gdouble) q->cfg.request_timeout / GST_SECOND);
  retry_or_fail (q, e);
  g_free (e);
  pump (q);
  return G_SOURCE_REMOVE;
}

static void
send_batch (GstImageBindPublishQueue * q)
{
  gboolean retry = q->waiting_retry;

  q->waiting_retry = FALSE;
  q->sending = TRUE;
  q->request_timer = add_timeout (q, q->cfg.request_timeout, request_timed_out);
  q->transport->send (q->transport, q->batch, retry);
}

/* Takes the next batch when one is due and sends it; otherwise waits for it to be due. */
static void
pump_once (GstImageBindPublishQueue * q)
{
  if (q->sending)
    return;                     /* a request is under way */
  if (q->waiting_retry) {
    if (!q->timer)
      send_batch (q);           /* the retry's wait is over */
    return;
  }

  while (TRUE) {
    gboolean due = FALSE, any_payload = FALSE;
    GstClockTime wait = 0;

    g_mutex_lock (&q->lock);
    if (q->queue.length == 0) {
      g_mutex_unlock (&q->lock);
      destroy_source (&q->timer);
      return;
    }
    if (q->queue.length >= q->cfg.batch_size || q->flush_all) {
      due = TRUE;
    } else {
      GstImageBindPublishRecord *oldest = g_queue_peek_head (&q->queue);
      gint64 waited = (g_get_monotonic_time () - oldest->queued_at) * GST_USECOND;
      if ((guint64) waited >= q->cfg.batch_interval)
        due = TRUE;
      else
        wait = q->cfg.batch_interval - waited;
    }
    if (!due) {
      g_mutex_unlock (&q->lock);
      if (!q->timer)
        start_timer (q, wait);
      return;
    }
    while (q->batch->len < q->cfg.batch_size && q->queue.length > 0) {
      GstImageBindPublishRecord *r = g_queue_pop_head (&q->queue);
      g_ptr_array_add (q->batch, r);
      any_payload |= gst_image_bind_publish_record_payload (r, q->cfg.qdrant) != NULL;
    }
    q->in_flight = q->batch->len;
    g_mutex_unlock (&q->lock);
    destroy_source (&q->timer);
    if (any_payload) {
      send_batch (q);
      return;
    }
    /* Qdrant without a single point in the batch: nothing to send, nothing failed */
    finish_batch (q, TRUE, NULL);
  }
}

/* Runs whenever something may have changed: a record queued, a batch done, a timer. A
 * transport may answer within send (): the nested call only asks for another round. */
static void
pump (GstImageBindPublishQueue * q)
{
  if (q->pumping) {
    q->repump = TRUE;
    return;
  }
  q->pumping = TRUE;
  do {
    q->repump = FALSE;
    pump_once (q);
  } while (q->repump);
  q->pumping = FALSE;
}

static gboolean
kicked (gpointer data)
{
  GstImageBindPublishQueue *q = data;

  g_mutex_lock (&q->lock);
  q->kick_pending = FALSE;
  g_mutex_unlock (&q->lock);
  pump (q);
  return G_SOURCE_REMOVE;
}

/* Runs @func in the worker soon (any thread). */
static void
invoke (GstImageBindPublishQueue * q, GSourceFunc func)
{
  GSource *idle = g_idle_source_new ();

  g_source_set_callback (idle, func, q, NULL);
  g_source_attach (idle, q->context);
  g_source_unref (idle);
}

/* Any thread: makes the worker look at the queue soon. */
static void
worker_kick (GstImageBindPublishQueue * q)
{
  g_mutex_lock (&q->lock);
  if (q->kick_pending || !q->thread) {
    g_mutex_unlock (&q->lock);
    return;
  }
  q->kick_pending = TRUE;
  g_mutex_unlock (&q->lock);
  invoke (q, kicked);
}

/* Worker: gives up the batch under way (EOS after eos-timeout); counted as dropped. */
static gboolean
abandon (gpointer data)
{
  GstImageBindPublishQueue *q = data;
  guint n = q->batch->len;

  if (q->sending) {
    q->sending = FALSE;
    q->transport->cancel (q->transport);
  }
  destroy_source (&q->request_timer);
  destroy_source (&q->timer);
  q->waiting_retry = FALSE;
  q->attempt = 0;
  g_ptr_array_set_size (q->batch, 0);
  g_mutex_lock (&q->lock);
  q->dropped += n;
  q->in_flight = 0;
  q->abandoned = TRUE;
  g_cond_broadcast (&q->cond);
  g_mutex_unlock (&q->lock);
  return G_SOURCE_REMOVE;
}

static gboolean
quit_worker (gpointer data)
{
  GstImageBindPublishQueue *q = data;

  if (q->sending) {
    q->sending = FALSE;
    q->transport->cancel (q->transport);
  }
  g_main_loop_quit (q->loop);
  return G_SOURCE_REMOVE;
}

static gpointer
worker_main (gpointer data)
{
  GstImageBindPublishQueue *q = data;

  g_main_context_push_thread_default (q->context);
  switch (q->cfg.target) {
    case GST_IMAGE_BIND_PUBLISH_TARGET_FILE:
      q->transport = gst_image_bind_publish_file_new (q->cfg.file);
      q->cfg.file = NULL;
      break;
    case GST_IMAGE_BIND_PUBLISH_TARGET_HTTP:
#ifdef HAVE_SOUP
      q->transport = gst_image_bind_publish_http_new ();
#endif
      break;
    case GST_IMAGE_BIND_PUBLISH_TARGET_MQTT:
#ifdef HAVE_MOSQUITTO
      q->transport = gst_image_bind_publish_mqtt_new ();
#endif
      break;
  }
  g_assert (q->transport);
  q->transport->cfg = &q->cfg;
  q->transport->element = q->element;
  q->transport->context = q->context;
  q->transport->done = batch_done;
  q->transport->queue = q;
  q->stats = add_timeout (q, q->cfg.stats_interval, stats_tick);

  g_main_loop_run (q->loop);

  destroy_source (&q->stats);
  destroy_source (&q->timer);
  destroy_source (&q->request_timer);
  /* let a cancelled request's callbacks run before the transport goes */
  while (g_main_context_iteration (q->context, FALSE));
  q->transport->free (q->transport);
  q->transport = NULL;
  while (g_main_context_iteration (q->context, FALSE));
  g_main_context_pop_thread_default (q->context);
  return NULL;
}

/* ---- the streaming thread's side ---- */

GstImageBindPublishQueue *
gst_image_bind_publish_queue_start (GstElement * element, GstImageBindPublishConfig * cfg)
{
  GstImageBindPublishQueue *q = g_new0 (GstImageBindPublishQueue, 1);

  q->element = element;
  q->cfg = *cfg;
  memset (cfg, 0, sizeof (*cfg));
  g_mutex_init (&q->lock);
  g_cond_init (&q->cond);
  g_queue_init (&q->queue);
  q->batch = g_ptr_array_new_with_free_func ((GDestroyNotify)
      gst_image_bind_publish_record_free);
  q->context = g_main_context_new ();
  q->loop = g_main_loop_new (q->context, FALSE);
  g_mutex_lock (&q->lock);
  q->thread = g_thread_new ("imagebindpublish", worker_main, q);
  g_mutex_unlock (&q->lock);
  return q;
}

gboolean
gst_image_bind_publish_queue_push (GstImageBindPublishQueue * q, JsonNode * record,
    JsonNode * point)
{
  gboolean dropped = FALSE;

  g_mutex_lock (&q->lock);
  if (!q->thread || q->queue.length + q->in_flight >= q->cfg.max_queue) {
    q->dropped++;
    dropped = TRUE;
  } else {
    GstImageBindPublishRecord *r = g_new0 (GstImageBindPublishRecord, 1);
    r->record = record;
    r->point = point;
    r->queued_at = g_get_monotonic_time ();
    g_queue_push_tail (&q->queue, r);
  }
  g_mutex_unlock (&q->lock);
  if (dropped) {
    GST_LOG_OBJECT (q->element, "queue full: record dropped");
    json_node_unref (record);
    if (point)
      json_node_unref (point);
  } else {
    worker_kick (q);
  }
  return !dropped;
}

gboolean
gst_image_bind_publish_queue_reject (GstImageBindPublishQueue * q)
{
  gboolean first;

  g_mutex_lock (&q->lock);
  first = q->rejected++ == 0;
  g_mutex_unlock (&q->lock);
  return first;
}

void
gst_image_bind_publish_queue_drain (GstImageBindPublishQueue * q, GstClockTime timeout)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) MIN (timeout / GST_USECOND,
      G_MAXINT64 / 2);
  guint64 dropped_before, dropped_now;
  guint left;
  gchar *error;

  g_mutex_lock (&q->lock);
  q->flush_all = TRUE;
  g_mutex_unlock (&q->lock);
  worker_kick (q);

  g_mutex_lock (&q->lock);
  while (q->queue.length + q->in_flight > 0)
    if (!g_cond_wait_until (&q->cond, &q->lock, deadline))
      break;
  left = q->queue.length + q->in_flight;
  if (left == 0) {
    g_mutex_unlock (&q->lock);
    post_stats (q, TRUE, TRUE);
    return;
  }

  /* eos-timeout has passed: what is left is dropped and counted now, rather than tried until
   * the element stops and discarded unseen. The worker gives up the batch under way. */
  dropped_before = q->dropped;
  q->dropped += q->queue.length;
  g_queue_clear_full (&q->queue, (GDestroyNotify) gst_image_bind_publish_record_free);
  q->abandoned = FALSE;
  g_mutex_unlock (&q->lock);
  invoke (q, abandon);
  g_mutex_lock (&q->lock);
  /* bounded: a worker stuck in a write to a blocked pipe must not hold the EOS forever */
  deadline = g_get_monotonic_time () + G_USEC_PER_SEC;
  while (!q->abandoned)
    if (!g_cond_wait_until (&q->cond, &q->lock, deadline))
      break;
  dropped_now = q->dropped - dropped_before;
  error = g_strdup (q->last_error ? q->last_error : "none");
  g_mutex_unlock (&q->lock);

  GST_ELEMENT_WARNING (q->element, RESOURCE, WRITE,
      ("%" G_GUINT64_FORMAT " records could not be delivered within eos-timeout and were "
          "dropped.", dropped_now), ("eos-timeout %" GST_TIME_FORMAT "; last error: %s. "
          "Check that the endpoint is reachable, or raise eos-timeout.",
          GST_TIME_ARGS (timeout), error));
  g_free (error);
  post_stats (q, TRUE, TRUE);
}

void
gst_image_bind_publish_queue_new_stream (GstImageBindPublishQueue * q)
{
  g_mutex_lock (&q->lock);
  q->flush_all = FALSE;
  g_mutex_unlock (&q->lock);
}

void
gst_image_bind_publish_queue_stop (GstImageBindPublishQueue * q)
{
  GThread *thread;
  guint left;

  g_mutex_lock (&q->lock);
  thread = q->thread;
  g_mutex_unlock (&q->lock);
  if (!thread)
    return;
  invoke (q, quit_worker);
  g_thread_join (thread);
  g_mutex_lock (&q->lock);
  q->thread = NULL;
  left = q->queue.length + q->batch->len;
  g_queue_clear_full (&q->queue, (GDestroyNotify) gst_image_bind_publish_record_free);
  g_ptr_array_set_size (q->batch, 0);
  q->in_flight = 0;
  q->dropped += left;
  g_mutex_unlock (&q->lock);
  if (left > 0)
    GST_ELEMENT_WARNING (q->element, RESOURCE, WRITE,
        ("%u undelivered records were dropped when the element stopped.", left),
        ("the endpoint (%s) was slow or unreachable; EOS before stopping waits up to "
            "eos-timeout for them", q->cfg.display));
}

void
gst_image_bind_publish_queue_get_counts (GstImageBindPublishQueue * q,
    GstImageBindPublishCounts * c)
{
  g_mutex_lock (&q->lock);
  c->sent = q->sent;
  c->failed = q->failed;
  c->dropped = q->dropped;
  c->rejected = q->rejected;
  c->queued = q->queue.length + q->in_flight;
  g_mutex_unlock (&q->lock);
}

void
gst_image_bind_publish_queue_free (GstImageBindPublishQueue * q)
{
  gst_image_bind_publish_queue_stop (q);
  g_ptr_array_unref (q->batch);
  g_main_loop_unref (q->loop);
  g_main_context_unref (q->context);
  gst_image_bind_publish_config_clear (&q->cfg);
  g_free (q->last_error);
  g_free (q->posted_error);
  g_mutex_clear (&q->lock);
  g_cond_clear (&q->cond);
  g_free (q);
}
