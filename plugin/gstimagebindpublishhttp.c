/* imagebindpublish: the HTTP transport (libsoup 3). One request per batch: a JSON array
 * POSTed (webhook) or a Qdrant points upsert PUT. Only the first MAX_ANSWER bytes of an
 * answer's body are read (they go into the error of a refused batch); the rest is never
 * read, the connection is dropped instead, so that a huge or endless body costs neither
 * memory nor time. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <libsoup/soup.h>
#include <string.h>

#include "gstimagebindpublishrecords.h"
#include "gstimagebindpublishtransport.h"

#define GST_CAT_DEFAULT gst_image_bind_publish_debug

/* enough for any error a webhook or Qdrant explains itself with */
#define MAX_ANSWER (64 * 1024)

typedef struct _HttpTransport HttpTransport;

/* One attempt. It outlives a cancel (): its callbacks then only free it. */
typedef struct {
  HttpTransport *t;
  SoupMessage *msg;
  GCancellable *cancellable;
  GInputStream *stream;
  GByteArray *answer;
  guint status;
} Request;

struct _HttpTransport {
  GstImageBindPublishTransport parent;
  SoupSession *session;
  Request *current;             /* the attempt under way, or NULL */
};

gboolean
gst_image_bind_publish_http_configure (GstElement * element, const gchar * location,
    const gchar * collection, gboolean qdrant, GstImageBindPublishConfig * cfg)
{
  GError *err = NULL;
  gchar *url;

  cfg->target = GST_IMAGE_BIND_PUBLISH_TARGET_HTTP;
  cfg->method = qdrant ? "PUT" : "POST";
  if (qdrant) {
    const gchar *slash = g_str_has_suffix (location, "/") ? "" : "/";
    gchar *escaped = g_uri_escape_string (collection, NULL, FALSE);
    url = g_strdup_printf ("%s%scollections/%s/points?wait=true", location, slash, escaped);
    g_free (escaped);
  } else {
    url = g_strdup (location);
  }
  cfg->uri = g_uri_parse (url, SOUP_HTTP_URI_FLAGS, &err);
  g_free (url);
  if (!cfg->uri) {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND, ("Invalid URL '%s'.", location),
        ("%s", err->message));
    g_clear_error (&err);
    return FALSE;
  }
  /* http:// and http:///hook parse, with an empty host: libsoup would refuse every request
   * with a CRITICAL */
  if (!g_uri_get_host (cfg->uri) || !*g_uri_get_host (cfg->uri)) {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND, ("The URL '%s' has no host.", location),
        ("write it as http://host[:port]/path, e.g. http://127.0.0.1:8080/hook"));
    return FALSE;
  }
  cfg->display = g_uri_to_string_partial (cfg->uri, G_URI_HIDE_USERINFO);
  return TRUE;
}

static void
request_free (Request * r)
{
  g_clear_object (&r->msg);
  g_clear_object (&r->cancellable);
  g_clear_object (&r->stream);
  g_byte_array_unref (r->answer);
  g_free (r);
}

static gboolean
request_cancelled (Request * r)
{
  return g_cancellable_is_cancelled (r->cancellable);
}

static void
stream_closed (GObject * source, GAsyncResult * res, gpointer data)
{
  g_input_stream_close_finish (G_INPUT_STREAM (source), res, NULL);
  request_free (data);
}

/* Closes the answer's stream and frees @r. A body not read to its end is not read on (the
 * close only ends the message): libsoup drops the connection instead of reusing it. Not with
 * the request's cancellable, which may be cancelled: the message would never end. */
static void
request_close (Request * r)
{
  if (r->stream && !g_input_stream_is_closed (r->stream)) {
    g_input_stream_close_async (r->stream, G_PRIORITY_DEFAULT, NULL, stream_closed, r);
  } else {
    request_free (r);
  }
}

/* The answer is complete (or bounded): reports it and ends the attempt. */
static void
request_finish (Request * r)
{
  HttpTransport *t = r->t;
  GstImageBindPublishTransport *base = &t->parent;
  const gchar *url = base->cfg->display;

  t->current = NULL;
  if (SOUP_STATUS_IS_SUCCESSFUL (r->status)) {
    request_close (r);
    base->done (base, GST_IMAGE_BIND_PUBLISH_OK, NULL);
  } else {
    const gchar *reason = soup_message_get_reason_phrase (r->msg);
    GString *e = g_string_new (NULL);
    guint i;

    g_string_printf (e, "%s answered %u %s", url, r->status, reason ? reason : "");
    if (r->answer->len > 0) {
      /* the start of the body, printable, on one line: the server's explanation */
      g_string_append (e, ": ");
      for (i = 0; i < MIN (r->answer->len, 300); i++) {
        guchar c = r->answer->data[i];
        g_string_append_c (e, c >= 0x20 && c < 0x7f ? c : ' ');
      }
    }
    request_close (r);
    base->done (base, r->status >= 500 ? GST_IMAGE_BIND_PUBLISH_RETRY :
        GST_IMAGE_BIND_PUBLISH_FAIL, e->str);
    g_string_free (e, TRUE);
  }
}

static void read_more (Request * r);

static void
answer_read (GObject * source, GAsyncResult * res, gpointer data)
{
  Request *r = data;
  GError *err = NULL;
  GBytes *bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), res, &err);

  if (request_cancelled (r)) {
    g_clear_error (&err);
    if (bytes)
      g_bytes_unref (bytes);
    request_close (r);
    return;
  }
  if (!bytes) {
    /* the status line and headers arrived: the answer stands, without its body */
    GST_DEBUG_OBJECT (r->t->parent.element, "reading the answer: %s", err->message);
    g_error_free (err);
    request_finish (r);
    return;
  }
  if (g_bytes_get_size (bytes) == 0 || r->answer->len + g_bytes_get_size (bytes) >= MAX_ANSWER) {
    g_byte_array_append (r->answer, g_bytes_get_data (bytes, NULL),
        MIN (g_bytes_get_size (bytes), MAX_ANSWER - r->answer->len));
    g_bytes_unref (bytes);
    request_finish (r);
    return;
  }
  g_byte_array_append (r->answer, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_bytes_unref (bytes);
  read_more (r);
}

static void
read_more (Request * r)
{
  g_input_stream_read_bytes_async (r->stream, MIN (16384, MAX_ANSWER - r->answer->len),
      G_PRIORITY_DEFAULT, r->cancellable, answer_read, r);
}

static void
sent (GObject * source, GAsyncResult * res, gpointer data)
{
  Request *r = data;
  GError *err = NULL;
  GstImageBindPublishTransport *base;

  r->stream = soup_session_send_finish (SOUP_SESSION (source), res, &err);
  if (request_cancelled (r)) {
    g_clear_error (&err);
    request_close (r);
    return;
  }
  base = &r->t->parent;
  if (!r->stream) {
    gchar *e = g_strdup_printf ("%s: %s", base->cfg->display, err->message);
    r->t->current = NULL;
    request_free (r);
    base->done (base, GST_IMAGE_BIND_PUBLISH_RETRY, e);
    g_free (e);
    g_error_free (err);
    return;
  }
  r->status = soup_message_get_status (r->msg);
  read_more (r);
}

static gboolean
add_header (GQuark field, const GValue * value, gpointer data)
{
  SoupMessageHeaders *headers = data;
  GValue s = G_VALUE_INIT;

  g_value_init (&s, G_TYPE_STRING);
  if (g_value_transform (value, &s) && g_value_get_string (&s))
    soup_message_headers_replace (headers, g_quark_to_string (field), g_value_get_string (&s));
  g_value_unset (&s);
  return TRUE;
}

/* At the first send (the queue has set cfg and context by then): the session is made in, and
 * belongs to, the worker's context. */
static void
http_ensure_session (HttpTransport * t)
{
  const GstImageBindPublishConfig *cfg = t->parent.cfg;

  if (t->session)
    return;
  /* no I/O timeout of libsoup's: request-timeout (the queue's) bounds the whole attempt */
  t->session = soup_session_new_with_options ("timeout", 0, "user-agent",
      "gst-imagebind/" PACKAGE_VERSION, NULL);
  if (cfg->tls_database)
    soup_session_set_tls_database (t->session, cfg->tls_database);
}

static void
http_send (GstImageBindPublishTransport * base, GPtrArray * batch, gboolean retry)
{
  HttpTransport *t = (HttpTransport *) base;
  const GstImageBindPublishConfig *cfg = base->cfg;
  gchar *body = gst_image_bind_publish_batch_body (batch, cfg->qdrant, FALSE);
  GBytes *bytes = g_bytes_new_take (body, strlen (body));
  Request *r = g_new0 (Request, 1);
  SoupMessageHeaders *headers;

  http_ensure_session (t);
  r->t = t;
  r->answer = g_byte_array_new ();
  r->cancellable = g_cancellable_new ();
  r->msg = soup_message_new_from_uri (cfg->method, cfg->uri);
  soup_message_set_request_body_from_bytes (r->msg, "application/json", bytes);
  g_bytes_unref (bytes);
  headers = soup_message_get_request_headers (r->msg);
  if (cfg->username) {
    gchar *pair = g_strdup_printf ("%s:%s", cfg->username, cfg->password ? cfg->password : "");
    gchar *b64 = g_base64_encode ((const guchar *) pair, strlen (pair));
    gchar *auth = g_strdup_printf ("Basic %s", b64);
    soup_message_headers_replace (headers, "Authorization", auth);
    g_free (auth);
    g_free (b64);
    g_free (pair);
  }
  if (cfg->extra_headers)
    gst_structure_foreach (cfg->extra_headers, add_header, headers);
  if (cfg->tls_certificate)
    soup_message_set_tls_client_certificate (r->msg, cfg->tls_certificate);
  t->current = r;
  soup_session_send_async (t->session, r->msg, G_PRIORITY_DEFAULT, r->cancellable, sent, r);
}

static void
http_cancel (GstImageBindPublishTransport * base)
{
  HttpTransport *t = (HttpTransport *) base;

  if (t->current) {
    /* its callback sees the cancellation and frees it */
    g_cancellable_cancel (t->current->cancellable);
    t->current = NULL;
  }
}

static void
http_free (GstImageBindPublishTransport * base)
{
  HttpTransport *t = (HttpTransport *) base;

  http_cancel (base);
  /* the cancelled callbacks run in the worker's context before the session goes */
  while (g_main_context_iteration (base->context, FALSE));
  g_clear_object (&t->session);
  g_free (t);
}

GstImageBindPublishTransport *
gst_image_bind_publish_http_new (void)
{
  HttpTransport *t = g_new0 (HttpTransport, 1);

  t->parent.send = http_send;
  t->parent.cancel = http_cancel;
  t->parent.free = http_free;
  return &t->parent;
}
