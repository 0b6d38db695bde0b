/* imagebindpublish: the bounded queue of records and the worker thread that delivers them
 * through a transport (a JSON-lines file, HTTP, MQTT), with batches, a whole-request time
 * limit, retries with back-off and counted drops.
 *
 * Threads: the streaming thread pushes records (never waits, except at EOS in _drain ());
 * the worker thread (its own GMainContext) runs the transport. The element creates the queue
 * at READY->PAUSED with a finished configuration and stops it at PAUSED->READY; a stopped
 * queue keeps its counters (the element's read-only properties) until it is freed. */
#pragma once

#include <stdio.h>
#include <gst/gst.h>
#include <gio/gio.h>

#include "gstimagebindpublishrecords.h"

G_BEGIN_DECLS

/* the element's debug category, shared by its files */
GST_DEBUG_CATEGORY_EXTERN (gst_image_bind_publish_debug);

typedef enum {
  GST_IMAGE_BIND_PUBLISH_TARGET_FILE,   /* JSON lines to `file` */
  GST_IMAGE_BIND_PUBLISH_TARGET_HTTP,
  GST_IMAGE_BIND_PUBLISH_TARGET_MQTT,
} GstImageBindPublishTarget;

/* Everything the worker and the transports read: copied from the properties and checked at
 * start, never changed while the queue runs. */
typedef struct {
  GstImageBindPublishTarget target;
  gboolean qdrant;              /* payloads are Qdrant points */
  gchar *display;               /* the location as shown in errors (no password) */

  /* file */
  gchar *path;
  FILE *file;                   /* taken by the file transport */

  /* http */
  GUri *uri;
  const gchar *method;          /* "POST" or "PUT" */
  GstStructure *extra_headers;  /* or NULL */
  GTlsDatabase *tls_database;   /* from tls-ca-file, or NULL: the system's */
  GTlsCertificate *tls_certificate;     /* client certificate, or NULL */

  /* mqtt */
  gchar *host;
  guint port;
  gchar *topic;
  guint qos;
  gboolean tls;
  gchar *tls_ca_file, *tls_cert_file, *tls_key_file;

  /* http (Basic) and mqtt */
  gchar *username, *password;

  /* delivery */
  guint batch_size, max_retries, max_queue;
  GstClockTime batch_interval, retry_delay, max_retry_delay, request_timeout, stats_interval;
} GstImageBindPublishConfig;

void gst_image_bind_publish_config_clear (GstImageBindPublishConfig * cfg);

/* ---- transports (worker thread only) ---- */

typedef enum {
  GST_IMAGE_BIND_PUBLISH_OK,            /* delivered */
  GST_IMAGE_BIND_PUBLISH_RETRY,         /* not delivered; worth trying again */
  GST_IMAGE_BIND_PUBLISH_FAIL,          /* refused: retrying would not help (4xx, not authorised) */
} GstImageBindPublishResult;

typedef struct _GstImageBindPublishTransport GstImageBindPublishTransport;

struct _GstImageBindPublishTransport {
  /* Sends the records of @batch (GstImageBindPublishRecord *, a payload of NULL is skipped)
   * and calls done () exactly once, possibly before returning, unless cancel () comes first.
   * @retry: the same batch as the last send () (a transport may skip what it delivered). */
  void (*send) (GstImageBindPublishTransport * t, GPtrArray * batch, gboolean retry);
  /* Abandons the send () under way (time limit, EOS, stop): done () is not called for it. */
  void (*cancel) (GstImageBindPublishTransport * t);
  void (*free) (GstImageBindPublishTransport * t);

  /* set by the queue */
  const GstImageBindPublishConfig *cfg;
  GstElement *element;          /* for logs */
  GMainContext *context;
  void (*done) (GstImageBindPublishTransport * t, GstImageBindPublishResult result,
      const gchar * error);
  gpointer queue;
};

GstImageBindPublishTransport *gst_image_bind_publish_http_new (void);
#ifdef HAVE_MOSQUITTO
GstImageBindPublishTransport *gst_image_bind_publish_mqtt_new (void);
#endif

/* ---- the queue ---- */

typedef struct _GstImageBindPublishQueue GstImageBindPublishQueue;

typedef struct {
  guint64 sent, failed, dropped, rejected, queued;
} GstImageBindPublishCounts;

/* Takes @cfg (cleared on return) and starts the worker. */
GstImageBindPublishQueue *gst_image_bind_publish_queue_start (GstElement * element,
    GstImageBindPublishConfig * cfg);
/* Streaming thread: queues @record and @point (taken), or drops and counts them when the
 * queue is full. FALSE when dropped. */
gboolean gst_image_bind_publish_queue_push (GstImageBindPublishQueue * q, JsonNode * record,
    JsonNode * point);
/* Counts an embedding refused before queueing (non-finite vector); TRUE for the first. */
gboolean gst_image_bind_publish_queue_reject (GstImageBindPublishQueue * q);
/* EOS: sends what is queued, waits at most @timeout for it, drops and counts (with a
 * warning) what is left, and posts the stats. */
void gst_image_bind_publish_queue_drain (GstImageBindPublishQueue * q, GstClockTime timeout);
/* A new stream (after EOS, or a flush): batches are full ones again. */
void gst_image_bind_publish_queue_new_stream (GstImageBindPublishQueue * q);
/* Stops the worker; what was not delivered is dropped and counted, with a warning. */
void gst_image_bind_publish_queue_stop (GstImageBindPublishQueue * q);
void gst_image_bind_publish_queue_get_counts (GstImageBindPublishQueue * q,
    GstImageBindPublishCounts * counts);
void gst_image_bind_publish_queue_free (GstImageBindPublishQueue * q);

G_END_DECLS
