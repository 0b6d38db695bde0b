/* imagebindpublish: the MQTT transport (libmosquitto, driven from the worker's main context:
 * its socket is watched by a GSource, no thread of libmosquitto's).
 *
 * Each record of a batch is one message on the topic; the batch is delivered when every
 * message is done (QoS 0: written to the socket; QoS 1: acknowledged by the broker). The
 * connection is made at the first batch and kept. When it fails (refused, lost, no
 * acknowledgement within request-timeout) the client is destroyed with whatever libmosquitto
 * still held, the queue's retry makes a new one after its back-off, and only the messages not
 * yet acknowledged are published again: libmosquitto never holds more than the batch, so the
 * element's bounded queue is the only queue and its drop count is exact. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <string.h>
#include <mosquitto.h>

#include "gstimagebindpublishrecords.h"
#include "gstimagebindpublishtransport.h"

#define GST_CAT_DEFAULT gst_image_bind_publish_debug

/* seconds between the pings that keep an idle connection open */
#define KEEPALIVE 30

typedef struct {
  GstImageBindPublishTransport parent;
  struct mosquitto *mosq;
  GSource *io;                  /* the socket */
  gpointer io_tag;
  GSource *misc;                /* once a second: mosquitto_loop_misc (keepalive) */
  gboolean writable;            /* the socket has been writable: its TCP connection is made */
  gboolean connected;           /* CONNACK accepted */
  gboolean published;           /* the batch was published on this connection */

  /* set by libmosquitto's callbacks: the connection is gone (handled after the call) */
  gboolean broken;
  GstImageBindPublishResult broken_result;
  gchar *broken_reason;

  /* the batch under way (NULL: none), and what of it the broker has */
  GPtrArray *batch;
  gboolean *acked;
  guint n_acked, n_acked_len;
  GHashTable *mids;             /* message id -> index + 1, messages in flight */
  gint publishing_mid;          /* written by mosquitto_publish () before it may call back */
  guint publishing_index;
  gboolean publishing;
} MqttTransport;

gboolean
gst_image_bind_publish_mqtt_configure (GstElement * element, const gchar * location,
    gboolean tls, GstImageBindPublishConfig * cfg)
{
  GError *err = NULL;
  GUri *uri = g_uri_parse (location, G_URI_FLAGS_SCHEME_NORMALIZE, &err);
  const gchar *path;
  gint port;

  cfg->target = GST_IMAGE_BIND_PUBLISH_TARGET_MQTT;
  cfg->tls = tls;
  if (!uri) {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND, ("Invalid MQTT URL '%s'.", location),
        ("%s; write it as mqtt://host[:port]/topic", err->message));
    g_clear_error (&err);
    return FALSE;
  }
  /* '#' starts a URL's fragment: mqtt://host/a/# would quietly publish to "a/" */
  if (g_uri_get_query (uri) || g_uri_get_fragment (uri)) {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND, ("The MQTT URL '%s' has a '?' or '#'.",
            location), ("the path after the host is the topic, which cannot have the "
            "wildcard # (nor +) when publishing, e.g. mqtt://127.0.0.1/cameras/cam1"));
    g_uri_unref (uri);
    return FALSE;
  }
  port = g_uri_get_port (uri);
  path = g_uri_get_path (uri);
  cfg->host = g_strdup (g_uri_get_host (uri));
  cfg->topic = g_strdup (path[0] == '/' ? path + 1 : path);
  cfg->port = port > 0 ? (guint) port : tls ? 8883 : 1883;
  g_uri_unref (uri);
  if (!cfg->host || !*cfg->host) {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND, ("The MQTT URL '%s' has no host.",
            location), ("write it as mqtt://host[:port]/topic, e.g. "
            "mqtt://127.0.0.1:1883/cameras/cam1"));
    return FALSE;
  }
  if (port == 0) {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND, ("The MQTT URL '%s' has port 0.",
            location), ("leave the port out for the default (1883, mqtts: 8883)"));
    return FALSE;
  }
  if (!*cfg->topic || mosquitto_pub_topic_check (cfg->topic) != MOSQ_ERR_SUCCESS) {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND,
        ("The MQTT URL '%s' names no topic to publish to.", location),
        ("the path after the host is the topic (\"%s\"): it must not be empty nor contain the "
            "wildcards + and #, e.g. mqtt://127.0.0.1/cameras/cam1", cfg->topic));
    return FALSE;
  }
  cfg->display = g_strdup_printf ("%s://%s:%u/%s", tls ? "mqtts" : "mqtt", cfg->host,
      cfg->port, cfg->topic);
  return TRUE;
}

static void
init_library (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done)) {
    mosquitto_lib_init ();
    g_once_init_leave (&done, 1);
  }
}

static const gchar *
describe (int rc)
{
  return rc == MOSQ_ERR_ERRNO ? g_strerror (errno) : mosquitto_strerror (rc);
}

static void
mark_broken (MqttTransport * t, GstImageBindPublishResult result, gchar * reason)
{
  if (t->broken) {
    g_free (reason);
    return;                     /* the first reason is the one that explains it */
  }
  t->broken = TRUE;
  t->broken_result = result;
  t->broken_reason = reason;
}

static void
on_connect (struct mosquitto *mosq, void *data, int rc)
{
  MqttTransport *t = data;

  if (rc == 0) {
    GST_DEBUG_OBJECT (t->parent.element, "connected to %s", t->parent.cfg->display);
    t->connected = TRUE;
    return;
  }
  /* refused: "server unavailable" passes; a bad name or password, or no right to connect,
   * does not (as a 4xx answer) */
  mark_broken (t, rc == 3 ? GST_IMAGE_BIND_PUBLISH_RETRY : GST_IMAGE_BIND_PUBLISH_FAIL,
      g_strdup_printf ("%s: the broker refused the connection: %s", t->parent.cfg->display,
          mosquitto_connack_string (rc)));
}

static void
on_disconnect (struct mosquitto *mosq, void *data, int rc)
{
  MqttTransport *t = data;

  mark_broken (t, GST_IMAGE_BIND_PUBLISH_RETRY, g_strdup_printf ("%s: connection lost (%s)",
          t->parent.cfg->display, mosquitto_strerror (rc)));
}

static void
on_publish (struct mosquitto *mosq, void *data, int mid)
{
  MqttTransport *t = data;
  gpointer v = g_hash_table_lookup (t->mids, GINT_TO_POINTER (mid));
  guint index;

  if (v)
    index = GPOINTER_TO_UINT (v) - 1;
  else if (t->publishing && mid == t->publishing_mid)
    index = t->publishing_index;        /* QoS 0, written within mosquitto_publish () */
  else
    return;
  g_hash_table_remove (t->mids, GINT_TO_POINTER (mid));
  if (t->batch && index < t->n_acked_len && !t->acked[index]) {
    t->acked[index] = TRUE;
    t->n_acked++;
  }
}

static void
drop_connection (MqttTransport * t)
{
  if (t->io) {
    g_source_destroy (t->io);
    g_source_unref (t->io);
    t->io = NULL;
  }
  if (t->misc) {
    g_source_destroy (t->misc);
    g_source_unref (t->misc);
    t->misc = NULL;
  }
  if (t->mosq) {
    if (t->connected)
      mosquitto_disconnect (t->mosq);
    mosquitto_destroy (t->mosq);
    t->mosq = NULL;
  }
  t->connected = FALSE;
  t->writable = FALSE;
  t->published = FALSE;
  t->broken = FALSE;
  g_clear_pointer (&t->broken_reason, g_free);
  /* message ids start again with a new client; what they stood for was not acknowledged */
  g_hash_table_remove_all (t->mids);
}

static void
publish_batch (MqttTransport * t)
{
  const GstImageBindPublishConfig *cfg = t->parent.cfg;
  guint i;

  t->published = TRUE;
  for (i = 0; i < t->batch->len && !t->broken; i++) {
    JsonNode *node;
    gchar *payload;
    int rc;

    if (t->acked[i])
      continue;
    node = gst_image_bind_publish_record_payload (g_ptr_array_index (t->batch, i), cfg->qdrant);
    payload = json_to_string (node, FALSE);
    t->publishing = TRUE;
    t->publishing_index = i;
    t->publishing_mid = 0;
    rc = mosquitto_publish (t->mosq, &t->publishing_mid, cfg->topic, (int) strlen (payload),
        payload, (int) cfg->qos, false);
    t->publishing = FALSE;
    g_free (payload);
    if (rc != MOSQ_ERR_SUCCESS)
      mark_broken (t, GST_IMAGE_BIND_PUBLISH_RETRY, g_strdup_printf ("%s: publishing: %s",
              cfg->display, describe (rc)));
    else if (!t->acked[i])
      g_hash_table_insert (t->mids, GINT_TO_POINTER (t->publishing_mid),
          GUINT_TO_POINTER (i + 1));
  }
}

/* After anything libmosquitto did: a broken connection is dropped (and the batch given back),
 * a new connection gets the batch, a batch wholly done is reported. FALSE when the
 * connection was dropped. */
static gboolean
settle (MqttTransport * t)
{
  GstImageBindPublishTransport *base = &t->parent;

  if (!t->broken && t->connected && t->batch && !t->published)
    publish_batch (t);
  if (t->broken) {
    gchar *reason = g_strdup (t->broken_reason);
    GstImageBindPublishResult result = t->broken_result;
    GPtrArray *batch = t->batch;

    GST_INFO_OBJECT (base->element, "%s", reason);
    drop_connection (t);
    t->batch = NULL;
    if (batch)
      base->done (base, result, reason);
    g_free (reason);
    return FALSE;
  }
  if (t->batch && t->n_acked == t->batch->len) {
    t->batch = NULL;
    base->done (base, GST_IMAGE_BIND_PUBLISH_OK, NULL);
  }
  /* until the socket has been writable once, its connection is still being made: a TLS
   * handshake that could not start yet says it wants neither reading nor writing */
  if (t->mosq && t->io)
    g_source_modify_unix_fd (t->io, t->io_tag, G_IO_IN | G_IO_HUP | G_IO_ERR |
        (!t->writable || mosquitto_want_write (t->mosq) ? G_IO_OUT : 0));
  return TRUE;
}

static gboolean
io_dispatch (GSource * source, GSourceFunc callback, gpointer data)
{
  MqttTransport *t = ((MqttTransport **) (source + 1))[0];
  GIOCondition cond = g_source_query_unix_fd (source, t->io_tag);
  int rc = MOSQ_ERR_SUCCESS;

  if (cond & G_IO_OUT)
    t->writable = TRUE;
  /* reading also runs the TLS handshake, which may wait for the socket to be writable */
  if (cond & (G_IO_IN | G_IO_HUP | G_IO_ERR | G_IO_OUT))
    rc = mosquitto_loop_read (t->mosq, 1);
  if (rc == MOSQ_ERR_SUCCESS && !t->broken && mosquitto_want_write (t->mosq))
    rc = mosquitto_loop_write (t->mosq, 1);
  if (rc != MOSQ_ERR_SUCCESS)
    mark_broken (t, GST_IMAGE_BIND_PUBLISH_RETRY, g_strdup_printf ("%s: %s",
            t->parent.cfg->display, describe (rc)));
  return settle (t) ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static GSourceFuncs io_funcs = { NULL, NULL, io_dispatch, NULL, NULL, NULL };

static gboolean
misc_tick (gpointer data)
{
  MqttTransport *t = data;
  int rc = mosquitto_loop_misc (t->mosq);

  if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN)
    mark_broken (t, GST_IMAGE_BIND_PUBLISH_RETRY, g_strdup_printf ("%s: %s",
            t->parent.cfg->display, describe (rc)));
  return settle (t) ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* Starts connecting (the socket connects in the background; the host name is resolved here,
 * so a name that takes long to resolve holds the worker, never the stream). */
static gboolean
connect_broker (MqttTransport * t, gchar ** error)
{
  const GstImageBindPublishConfig *cfg = t->parent.cfg;
  int rc;

  t->mosq = mosquitto_new (NULL, true, t);
  if (!t->mosq) {
    *error = g_strdup_printf ("%s: cannot make an MQTT client: %s", cfg->display,
        g_strerror (errno));
    return FALSE;
  }
  mosquitto_connect_callback_set (t->mosq, on_connect);
  mosquitto_disconnect_callback_set (t->mosq, on_disconnect);
  mosquitto_publish_callback_set (t->mosq, on_publish);
  rc = mosquitto_username_pw_set (t->mosq, cfg->username, cfg->password);
  if (rc == MOSQ_ERR_SUCCESS && cfg->tls) {
    if (cfg->tls_ca_file)
      rc = mosquitto_tls_set (t->mosq, cfg->tls_ca_file, NULL, cfg->tls_cert_file,
          cfg->tls_key_file, NULL);
    else
      rc = mosquitto_int_option (t->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
    if (rc == MOSQ_ERR_SUCCESS && !cfg->tls_ca_file && cfg->tls_cert_file)
      rc = mosquitto_tls_set (t->mosq, NULL, NULL, cfg->tls_cert_file, cfg->tls_key_file,
          NULL);
  }
  if (rc == MOSQ_ERR_SUCCESS)
    rc = mosquitto_connect_async (t->mosq, cfg->host, (int) cfg->port, KEEPALIVE);
  if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket (t->mosq) < 0) {
    *error = g_strdup_printf ("%s: cannot connect: %s", cfg->display, describe (rc));
    drop_connection (t);
    return FALSE;
  }
  t->io = g_source_new (&io_funcs, sizeof (GSource) + sizeof (MqttTransport *));
  ((MqttTransport **) (t->io + 1))[0] = t;
  t->io_tag = g_source_add_unix_fd (t->io, mosquitto_socket (t->mosq), G_IO_IN | G_IO_HUP |
      G_IO_ERR | G_IO_OUT);
  g_source_attach (t->io, t->parent.context);
  t->misc = g_timeout_source_new_seconds (1);
  g_source_set_callback (t->misc, misc_tick, t, NULL);
  g_source_attach (t->misc, t->parent.context);
  return TRUE;
}

static void
mqtt_send (GstImageBindPublishTransport * base, GPtrArray * batch, gboolean retry)
{
  MqttTransport *t = (MqttTransport *) base;
  guint i;

  /* a retry keeps what the broker acknowledged before */
  if (!retry || t->n_acked_len != batch->len) {
    g_free (t->acked);
    t->acked = g_new0 (gboolean, batch->len);
    t->n_acked_len = batch->len;
    t->n_acked = 0;
    for (i = 0; i < batch->len; i++)
      if (!gst_image_bind_publish_record_payload (g_ptr_array_index (batch, i),
              base->cfg->qdrant)) {
        t->acked[i] = TRUE;
        t->n_acked++;
      }
  }
  t->batch = batch;
  t->published = FALSE;
  if (!t->mosq) {
    gchar *error = NULL;
    if (!connect_broker (t, &error)) {
      t->batch = NULL;
      base->done (base, GST_IMAGE_BIND_PUBLISH_RETRY, error);
      g_free (error);
      return;
    }
  }
  settle (t);
}

static void
mqtt_cancel (GstImageBindPublishTransport * base)
{
  MqttTransport *t = (MqttTransport *) base;

  /* what libmosquitto holds of the batch goes with the client: a retry publishes again
   * what was not acknowledged, on a new connection */
  if (t->batch) {
    t->batch = NULL;
    drop_connection (t);
  }
}

static void
mqtt_free (GstImageBindPublishTransport * base)
{
  MqttTransport *t = (MqttTransport *) base;

  t->batch = NULL;
  drop_connection (t);
  g_hash_table_unref (t->mids);
  g_free (t->acked);
  g_free (t);
}

GstImageBindPublishTransport *
gst_image_bind_publish_mqtt_new (void)
{
  MqttTransport *t = g_new0 (MqttTransport, 1);

  init_library ();
  t->parent.send = mqtt_send;
  t->parent.cancel = mqtt_cancel;
  t->parent.free = mqtt_free;
  t->mids = g_hash_table_new (NULL, NULL);
  return &t->parent;
}
