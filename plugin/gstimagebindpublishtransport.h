/* imagebindpublish: what the worker delivers through (a JSON-lines file, HTTP, MQTT): the
 * configuration checked at start, and the interface every transport implements, one file
 * each (gstimagebindpublishfile.c, -http.c, -mqtt.c). The queue
 * (gstimagebindpublishqueue.h) drives a transport from its worker thread. */
#pragma once

#include <stdio.h>
#include <gst/gst.h>
#include <gio/gio.h>

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

/* Each transport's location, checked at start: fills @cfg (target, display and the
 * transport's fields) from @location, or posts an actionable error on @element and returns
 * FALSE (@cfg is then cleared by the caller). The constructors run in the worker thread. */

/* gstimagebindpublishfile.c: file:///absolute/path.jsonl, JSON lines */
gboolean gst_image_bind_publish_file_configure (GstElement * element, const gchar * location,
    GstImageBindPublishConfig * cfg);
/* Takes @file (not closed if it is stdout). */
GstImageBindPublishTransport *gst_image_bind_publish_file_new (FILE * file);

#ifdef HAVE_SOUP
/* gstimagebindpublishhttp.c (libsoup 3): http(s)://, a POST per batch, or with @qdrant the
 * points upsert of @collection under the base URL @location */
gboolean gst_image_bind_publish_http_configure (GstElement * element, const gchar * location,
    const gchar * collection, gboolean qdrant, GstImageBindPublishConfig * cfg);
GstImageBindPublishTransport *gst_image_bind_publish_http_new (void);
#endif

#ifdef HAVE_MOSQUITTO
/* gstimagebindpublishmqtt.c (libmosquitto): mqtt(s)://host[:port]/topic, a message per
 * record */
gboolean gst_image_bind_publish_mqtt_configure (GstElement * element, const gchar * location,
    gboolean tls, GstImageBindPublishConfig * cfg);
GstImageBindPublishTransport *gst_image_bind_publish_mqtt_new (void);
#endif

G_END_DECLS
