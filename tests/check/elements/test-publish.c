/* imagebindpublish against a local HTTP server (libsoup, 127.0.0.1, ephemeral port, its own
 * thread and main context) that answers normally, holds its answers (slow), is down and comes
 * back, and answers 500 then 200, or 400; and the JSON-lines file form.
 *
 * No model is needed: buffers carry synthetic embedding and match metas. Every wait is bounded
 * (WAIT_US); the tests stop by themselves. */
#include <gst/gst.h>
#include <gst/check/gstharness.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <math.h>
#include <signal.h>
#include <string.h>

#include "common.h"
#include "gstimagebindmeta.h"
#include "gstimagebindmatchmeta.h"

#define WAIT_US (10 * G_USEC_PER_SEC)

/* ---- the server ---- */

typedef struct {
  gchar *method, *path, *content_type, *body;
  gchar *api_key, *x_count, *authorization;     /* request headers, or NULL */
  guint status;
} Request;

typedef struct {
  GThread *thread;
  GMainContext *ctx;
  GMainLoop *loop;
  SoupServer *server;
  guint port;
  GMutex lock;
  GCond cond;
  gboolean ready;
  GPtrArray *requests;          /* Request *, in arrival order */
  GArray *script;               /* statuses to answer with, first first; then 200 */
  gboolean hold;                /* pause answers until server_release () */
  guint delay_ms;               /* answer each request this late */
  GPtrArray *held;              /* SoupServerMessage * */
  GTlsCertificate *tls;         /* HTTPS with this certificate, or NULL: HTTP */
  GTlsDatabase *client_ca;      /* non-NULL: a client certificate of these CAs is required */
} Server;

static void
request_free (Request * r)
{
  g_free (r->method);
  g_free (r->path);
  g_free (r->content_type);
  g_free (r->body);
  g_free (r->api_key);
  g_free (r->x_count);
  g_free (r->authorization);
  g_free (r);
}

static gboolean
unpause_later (gpointer msg)
{
  soup_server_message_unpause (msg);
  return G_SOURCE_REMOVE;
}

static void
handler (SoupServer * server, SoupServerMessage * msg, const char *path, GHashTable * query,
    gpointer data)
{
  Server *srv = data;
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  Request *r = g_new0 (Request, 1);
  gboolean hold;

  r->method = g_strdup (soup_server_message_get_method (msg));
  r->path = g_strdup (path);
  r->content_type = g_strdup (soup_message_headers_get_content_type
      (soup_server_message_get_request_headers (msg), NULL));
  r->body = g_strndup (body->data, body->length);
  {
    SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);
    r->api_key = g_strdup (soup_message_headers_get_one (h, "api-key"));
    r->x_count = g_strdup (soup_message_headers_get_one (h, "x-count"));
    r->authorization = g_strdup (soup_message_headers_get_one (h, "Authorization"));
  }
  g_mutex_lock (&srv->lock);
  r->status = 200;
  if (srv->script->len > 0) {
    r->status = g_array_index (srv->script, guint, 0);
    g_array_remove_index (srv->script, 0);
  }
  g_ptr_array_add (srv->requests, r);
  hold = srv->hold;
  g_cond_broadcast (&srv->cond);
  g_mutex_unlock (&srv->lock);

  soup_server_message_set_status (msg, r->status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC, "{}", 2);
  if (srv->delay_ms > 0) {
    GSource *later = g_timeout_source_new (srv->delay_ms);
    soup_server_message_pause (msg);
    g_source_set_callback (later, unpause_later, g_object_ref (msg), g_object_unref);
    g_source_attach (later, srv->ctx);
    g_source_unref (later);
  } else if (hold) {
    soup_server_message_pause (msg);
    g_ptr_array_add (srv->held, g_object_ref (msg));
  }
}

/* libsoup's server asks its messages whether to take a client certificate even when the
 * CA database found nothing wrong with it; nobody answering is a no */
static gboolean
accept_client_certificate (SoupServerMessage * msg, GTlsCertificate * cert,
    GTlsCertificateFlags errors, gpointer data)
{
  return errors == 0;
}

static void
request_started (SoupServer * server, SoupServerMessage * msg, gpointer data)
{
  g_signal_connect (msg, "accept-certificate", G_CALLBACK (accept_client_certificate), NULL);
}

static gpointer
server_main (gpointer data)
{
  Server *srv = data;
  GError *err = NULL;
  GSList *uris;

  g_main_context_push_thread_default (srv->ctx);
  srv->server = soup_server_new ("tls-certificate", srv->tls, NULL);
  if (srv->client_ca) {
    soup_server_set_tls_database (srv->server, srv->client_ca);
    soup_server_set_tls_auth_mode (srv->server, G_TLS_AUTHENTICATION_REQUIRED);
    g_signal_connect (srv->server, "request-started", G_CALLBACK (request_started), NULL);
  }
  soup_server_add_handler (srv->server, NULL, handler, srv, NULL);
  soup_server_listen_local (srv->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY |
      (srv->tls ? SOUP_SERVER_LISTEN_HTTPS : 0), &err);
  g_assert_no_error (err);
  uris = soup_server_get_uris (srv->server);
  g_assert_nonnull (uris);
  g_mutex_lock (&srv->lock);
  srv->port = g_uri_get_port (uris->data);
  srv->ready = TRUE;
  g_cond_broadcast (&srv->cond);
  g_mutex_unlock (&srv->lock);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  g_main_loop_run (srv->loop);

  g_ptr_array_set_size (srv->held, 0);
  soup_server_disconnect (srv->server);
  g_clear_object (&srv->server);
  while (g_main_context_iteration (srv->ctx, FALSE));
  g_main_context_pop_thread_default (srv->ctx);
  return NULL;
}

/* @tls: HTTPS with this certificate (NULL: HTTP); @client_ca: require a client certificate
 * of these CAs (NULL: none). */
static Server *
server_new_full (GTlsCertificate * tls, GTlsDatabase * client_ca)
{
  Server *srv = g_new0 (Server, 1);

  srv->tls = tls ? g_object_ref (tls) : NULL;
  srv->client_ca = client_ca ? g_object_ref (client_ca) : NULL;

  g_mutex_init (&srv->lock);
  g_cond_init (&srv->cond);
  srv->requests = g_ptr_array_new_with_free_func ((GDestroyNotify) request_free);
  srv->script = g_array_new (FALSE, FALSE, sizeof (guint));
  srv->held = g_ptr_array_new_with_free_func (g_object_unref);
  srv->ctx = g_main_context_new ();
  srv->loop = g_main_loop_new (srv->ctx, FALSE);
  srv->thread = g_thread_new ("test-http-server", server_main, srv);
  g_mutex_lock (&srv->lock);
  while (!srv->ready)
    g_cond_wait (&srv->cond, &srv->lock);
  g_mutex_unlock (&srv->lock);
  return srv;
}

static Server *
server_new (void)
{
  return server_new_full (NULL, NULL);
}

/* Runs @func in the server's thread and waits for it. */
typedef struct {
  Server *srv;
  void (*func) (Server *);
  gboolean done;
} Call;

static gboolean
call_in_server (gpointer data)
{
  Call *c = data;

  c->func (c->srv);
  g_mutex_lock (&c->srv->lock);
  c->done = TRUE;
  g_cond_broadcast (&c->srv->cond);
  g_mutex_unlock (&c->srv->lock);
  return G_SOURCE_REMOVE;
}

static void
server_call (Server * srv, void (*func) (Server *))
{
  Call c = { srv, func, FALSE };

  g_main_context_invoke (srv->ctx, call_in_server, &c);
  g_mutex_lock (&srv->lock);
  while (!c.done)
    g_cond_wait (&srv->cond, &srv->lock);
  g_mutex_unlock (&srv->lock);
}

static void
do_down (Server * srv)
{
  soup_server_disconnect (srv->server);
}

static void
do_up (Server * srv)
{
  GError *err = NULL;

  soup_server_listen_local (srv->server, srv->port, SOUP_SERVER_LISTEN_IPV4_ONLY, &err);
  g_assert_no_error (err);
}

static void
do_release (Server * srv)
{
  guint i;

  g_mutex_lock (&srv->lock);
  srv->hold = FALSE;
  g_mutex_unlock (&srv->lock);
  for (i = 0; i < srv->held->len; i++)
    soup_server_message_unpause (g_ptr_array_index (srv->held, i));
  g_ptr_array_set_size (srv->held, 0);
}

static gboolean
quit_server_loop (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

static void
server_free (Server * srv)
{
  g_main_context_invoke (srv->ctx, quit_server_loop, srv->loop);
  g_thread_join (srv->thread);
  g_main_loop_unref (srv->loop);
  g_main_context_unref (srv->ctx);
  g_ptr_array_unref (srv->requests);
  g_ptr_array_unref (srv->held);
  g_array_unref (srv->script);
  g_clear_object (&srv->tls);
  g_clear_object (&srv->client_ca);
  g_mutex_clear (&srv->lock);
  g_cond_clear (&srv->cond);
  g_free (srv);
}

static guint
server_n_requests (Server * srv)
{
  guint n;

  g_mutex_lock (&srv->lock);
  n = srv->requests->len;
  g_mutex_unlock (&srv->lock);
  return n;
}

static gchar *
server_url (Server * srv, const gchar * path)
{
  return g_strdup_printf ("%s://127.0.0.1:%u%s", srv->tls ? "https" : "http", srv->port,
      path);
}

/* ---- a raw TCP server: what a libsoup server will not do ---- */

/* RAW_TRICKLE answers every request with one byte of a never-ending header line every 50 ms
 * (an idle timeout never fires); RAW_HUGE_BODY answers 200 with a 2 GiB Content-Length and
 * writes the body as fast as it is read, up to RAW_BODY_CAP bytes, then stalls. */
typedef enum {
  RAW_TRICKLE,
  RAW_HUGE_BODY,
  RAW_HANG_UP,                  /* every connection closed at once, its time noted */
} RawMode;

#define RAW_MAX_TIMES 64

#define RAW_BODY_CAP (256 * 1024 * 1024)

typedef struct {
  GThread *thread;
  GSocketListener *listener;
  GCancellable *cancel;
  guint port;
  RawMode mode;
  GMutex lock;
  guint connections;
  guint64 body_written;         /* RAW_HUGE_BODY: body bytes written on the last connection */
  gboolean closed_by_client;    /* the last connection ended with a write error */
  gint64 times[RAW_MAX_TIMES];  /* RAW_HANG_UP: when the first connections were accepted */
} RawServer;

/* Reads one request (headers, then Content-Length bytes of body); FALSE on EOF or error. */
static gboolean
raw_read_request (GInputStream * in, GCancellable * cancel)
{
  GString *s = g_string_new (NULL);
  gchar buf[4096];
  gssize n;
  const gchar *end, *cl;
  gsize want;
  gboolean ok = FALSE;

  while (!(end = strstr (s->str, "\r\n\r\n"))) {
    n = g_input_stream_read (in, buf, sizeof buf, cancel, NULL);
    if (n <= 0)
      goto out;
    g_string_append_len (s, buf, n);
  }
  cl = g_strstr_len (s->str, end - s->str, "Content-Length:");
  want = (end - s->str) + 4 + (cl ? g_ascii_strtoull (cl + 15, NULL, 10) : 0);
  while (s->len < want) {
    n = g_input_stream_read (in, buf, MIN (sizeof buf, want - s->len), cancel, NULL);
    if (n <= 0)
      goto out;
    g_string_append_len (s, buf, n);
  }
  ok = TRUE;
out:
  g_string_free (s, TRUE);
  return ok;
}

static gboolean
raw_write (GOutputStream * out, const gchar * data, gsize len, GCancellable * cancel)
{
  return g_output_stream_write_all (out, data, len, NULL, cancel, NULL);
}

static void
raw_serve (RawServer * srv, GSocketConnection * conn)
{
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (conn));
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (conn));
  gboolean failed = FALSE;

  if (!raw_read_request (in, srv->cancel))
    return;
  if (srv->mode == RAW_TRICKLE) {
    const gchar *head = "HTTP/1.1 200 OK\r\nX-Trickle: ";
    failed = !raw_write (out, head, strlen (head), srv->cancel);
    while (!failed && !g_cancellable_is_cancelled (srv->cancel)) {
      g_usleep (50 * 1000);
      failed = !raw_write (out, "a", 1, srv->cancel);
    }
  } else {
    const gchar *head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "Content-Length: 2147483648\r\n\r\n";
    gchar *zeros = g_malloc (65536);
    guint64 written = 0;

    memset (zeros, '0', 65536);
    failed = !raw_write (out, head, strlen (head), srv->cancel);
    while (!failed && written < RAW_BODY_CAP) {
      failed = !raw_write (out, zeros, 65536, srv->cancel);
      if (!failed)
        written += 65536;
      g_mutex_lock (&srv->lock);
      srv->body_written = written;
      g_mutex_unlock (&srv->lock);
    }
    g_free (zeros);
    /* the cap reached: stall, as a server that never finishes its body */
    while (!failed && !g_cancellable_is_cancelled (srv->cancel))
      g_usleep (10 * 1000);
  }
  g_mutex_lock (&srv->lock);
  srv->closed_by_client = failed && !g_cancellable_is_cancelled (srv->cancel);
  g_mutex_unlock (&srv->lock);
}

static gpointer
raw_main (gpointer data)
{
  RawServer *srv = data;
  GSocketConnection *conn;

  while ((conn = g_socket_listener_accept (srv->listener, NULL, srv->cancel, NULL))) {
    g_mutex_lock (&srv->lock);
    if (srv->connections < RAW_MAX_TIMES)
      srv->times[srv->connections] = g_get_monotonic_time ();
    srv->connections++;
    srv->closed_by_client = FALSE;
    g_mutex_unlock (&srv->lock);
    if (srv->mode != RAW_HANG_UP)
      raw_serve (srv, conn);
    g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
    g_object_unref (conn);
  }
  return NULL;
}

static RawServer *
raw_server_new (RawMode mode)
{
  RawServer *srv = g_new0 (RawServer, 1);
  GInetAddress *lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *addr = g_inet_socket_address_new (lo, 0), *bound = NULL;
  GError *err = NULL;

  srv->mode = mode;
  srv->cancel = g_cancellable_new ();
  srv->listener = g_socket_listener_new ();
  g_mutex_init (&srv->lock);
  g_socket_listener_add_address (srv->listener, addr, G_SOCKET_TYPE_STREAM,
      G_SOCKET_PROTOCOL_TCP, NULL, &bound, &err);
  g_assert_no_error (err);
  srv->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_object_unref (bound);
  g_object_unref (addr);
  g_object_unref (lo);
  srv->thread = g_thread_new ("test-raw-server", raw_main, srv);
  return srv;
}

static void
raw_server_free (RawServer * srv)
{
  g_cancellable_cancel (srv->cancel);
  g_thread_join (srv->thread);
  g_socket_listener_close (srv->listener);
  g_object_unref (srv->listener);
  g_object_unref (srv->cancel);
  g_mutex_clear (&srv->lock);
  g_free (srv);
}

static guint
raw_connections (RawServer * srv)
{
  guint n;

  g_mutex_lock (&srv->lock);
  n = srv->connections;
  g_mutex_unlock (&srv->lock);
  return n;
}

/* The records of all requests answered with a 2xx status, in order (a JSON array each). */
static JsonArray *
delivered_records (Server * srv)
{
  JsonArray *all = json_array_new ();
  guint i;

  g_mutex_lock (&srv->lock);
  for (i = 0; i < srv->requests->len; i++) {
    Request *r = g_ptr_array_index (srv->requests, i);
    JsonNode *root;
    JsonArray *a;
    guint j;

    if (r->status / 100 != 2)
      continue;
    root = json_from_string (r->body, NULL);
    g_assert_nonnull (root);
    g_assert_true (JSON_NODE_HOLDS_ARRAY (root));
    a = json_node_get_array (root);
    for (j = 0; j < json_array_get_length (a); j++)
      json_array_add_element (all, json_node_copy (json_array_get_element (a, j)));
    json_node_unref (root);
  }
  g_mutex_unlock (&srv->lock);
  return all;
}

/* ---- the element ---- */

/* messages popped from a fixture's bus, kept for a later look (see pop_message ()) */
static GQueue kept_messages = G_QUEUE_INIT;

typedef struct {
  GstHarness *h;
  GstElement *element;
  GstBus *bus;
} Fixture;

static void
fixture_setup (Fixture * f, const gchar * location, const gchar * first_property, ...)
{
  va_list args;

  f->element = gst_element_factory_make ("imagebindpublish", NULL);
  g_assert_nonnull (f->element);
  g_object_set (f->element, "location", location, "eos-timeout", (guint64) WAIT_US * 1000,
      "stats-interval", (guint64) 20 * GST_MSECOND, NULL);
  va_start (args, first_property);
  if (first_property)
    g_object_set_valist (G_OBJECT (f->element), first_property, args);
  va_end (args);
  f->bus = gst_bus_new ();
  gst_element_set_bus (f->element, f->bus);
  f->h = gst_harness_new_with_element (f->element, "sink", "src");
  gst_harness_set_src_caps_str (f->h, "application/x-test");
}

static void
fixture_teardown (Fixture * f)
{
  g_queue_clear_full (&kept_messages, (GDestroyNotify) gst_message_unref);
  gst_harness_teardown (f->h);
  gst_element_set_bus (f->element, NULL);
  gst_object_unref (f->element);
  gst_bus_set_flushing (f->bus, TRUE);
  gst_object_unref (f->bus);
}

static guint64
get_u64 (GstElement * e, const gchar * name)
{
  guint64 v;

  g_object_get (e, name, &v, NULL);
  return v;
}

/* Waits (bounded) until the counter @name reaches @value. */
static void
wait_counter_within (GstElement * e, const gchar * name, guint64 value, gint64 timeout_us)
{
  gint64 end = g_get_monotonic_time () + timeout_us;

  while (get_u64 (e, name) < value && g_get_monotonic_time () < end)
    g_usleep (5000);
  g_assert_cmpuint (get_u64 (e, name), ==, value);
}

static void
wait_counter (GstElement * e, const gchar * name, guint64 value)
{
  wait_counter_within (e, name, value, WAIT_US);
}

/* gst_bus_pop_filtered () discards the messages of other types: the tests that look for
 * several types take them through here, which keeps the others for later. */

static GstMessage *
pop_message (GstBus * bus, GstMessageType type)
{
  GstMessage *msg;
  GList *l;

  while ((msg = gst_bus_pop (bus)))
    g_queue_push_tail (&kept_messages, msg);
  for (l = kept_messages.head; l; l = l->next) {
    if (GST_MESSAGE_TYPE (l->data) & type) {
      msg = l->data;
      g_queue_delete_link (&kept_messages, l);
      return msg;
    }
  }
  return NULL;
}

/* The stats message posted at EOS (the last one with eos=TRUE), as a copy. */
static GstStructure *
eos_stats (GstBus * bus)
{
  GstMessage *msg;
  GstStructure *s = NULL;

  while ((msg = pop_message (bus, GST_MESSAGE_ELEMENT))) {
    const GstStructure *ms = gst_message_get_structure (msg);
    gboolean eos = FALSE;
    if (gst_structure_has_name (ms, "imagebind-publish-stats")
        && gst_structure_get_boolean (ms, "eos", &eos) && eos) {
      if (s)
        gst_structure_free (s);
      s = gst_structure_copy (ms);
    }
    gst_message_unref (msg);
  }
  g_assert_nonnull (s);
  return s;
}

/* Ends @f's stream: EOS on its sink pad, then its stats message posted at EOS (a copy). */
static GstStructure *
end_stream (Fixture * f)
{
  g_assert_true (gst_harness_push_event (f->h, gst_event_new_eos ()));
  return eos_stats (f->bus);
}

/* The last non-empty `last-error` of the stats messages on @bus so far (popped), or NULL. */
static gchar *
bus_last_error (GstBus * bus)
{
  GstMessage *msg;
  gchar *last = NULL;

  while ((msg = pop_message (bus, GST_MESSAGE_ELEMENT))) {
    const gchar *e = gst_structure_get_string (gst_message_get_structure (msg), "last-error");
    if (e && *e) {
      g_free (last);
      last = g_strdup (e);
    }
    gst_message_unref (msg);
  }
  return last;
}

/* Polls the stats messages for up to WAIT_US until one carries a `last-error`: that error
 * (asserted to come), logged after @what. */
static gchar *
wait_last_error (GstBus * bus, const gchar * what)
{
  gint64 end = g_get_monotonic_time () + WAIT_US;
  gchar *last = NULL;

  while (!last && g_get_monotonic_time () < end) {
    g_usleep (20 * 1000);
    last = bus_last_error (bus);
  }
  g_assert_nonnull (last);
  g_test_message ("%s: %s", what, last);
  return last;
}

/* Pops the messages of @type on @bus; returns how many there were and the text of the last. */
static guint
bus_count (GstBus * bus, GstMessageType type, gchar ** last_text)
{
  GstMessage *msg;
  guint n = 0;

  while ((msg = pop_message (bus, type))) {
    GError *err = NULL;
    gchar *debug = NULL;

    if (type == GST_MESSAGE_WARNING)
      gst_message_parse_warning (msg, &err, &debug);
    else if (type == GST_MESSAGE_ERROR)
      gst_message_parse_error (msg, &err, &debug);
    if (err && last_text) {
      g_free (*last_text);
      *last_text = g_strdup_printf ("%s (%s)", err->message, debug ? debug : "");
    }
    g_clear_error (&err);
    g_free (debug);
    gst_message_unref (msg);
    n++;
  }
  return n;
}

static void
assert_stats (GstStructure * s, guint64 sent, guint64 failed, guint64 dropped, guint64 queued)
{
  guint64 v;

  g_assert_true (gst_structure_get_uint64 (s, "sent", &v));
  g_assert_cmpuint (v, ==, sent);
  g_assert_true (gst_structure_get_uint64 (s, "failed", &v));
  g_assert_cmpuint (v, ==, failed);
  g_assert_true (gst_structure_get_uint64 (s, "dropped", &v));
  g_assert_cmpuint (v, ==, dropped);
  g_assert_true (gst_structure_get_uint64 (s, "queued", &v));
  g_assert_cmpuint (v, ==, queued);
  g_assert_nonnull (gst_structure_get_string (s, "last-error"));
  gst_structure_free (s);
}

/* Buffer @i: an embedding (vision, dim 4: (3, 4, i, 0) times 20, as a scaled model output),
 * at pts i * 100 ms, and optionally a detect-mode match meta whose prompt "a dog" is detected
 * while @dog, "a cat" never. */
static GstBuffer *
make_buffer (guint i, gboolean with_match, gboolean dog)
{
  GstBuffer *buf = gst_buffer_new_memdup ("abcd", 4);
  gfloat v[4] = { 60.0f, 80.0f, 20.0f * i, 0.0f };
  GstClockTime pts = i * 100 * GST_MSECOND;
  GstImageBindEmbeddingMeta *e;

  GST_BUFFER_PTS (buf) = pts;
  GST_BUFFER_DURATION (buf) = 100 * GST_MSECOND;
  e = gst_buffer_add_imagebind_embedding_meta (buf, GST_IMAGE_BIND_MODALITY_VISION, v, 4, 20.0f,
      "tiny:test.gguf");
  e->pts = pts;
  e->duration = 100 * GST_MSECOND;
  e->stream_time = pts;
  e->running_time = pts;
  if (with_match) {
    GstImageBindMatchResult r[2] = {
      {0, (gchar *) "a dog", 0.5, 0.75, dog},
      {1, (gchar *) "a cat", 0.25, 0.25, FALSE},
    };
    GstImageBindMatchMeta *m = gst_buffer_add_imagebind_match_meta (buf,
        GST_IMAGE_BIND_MODALITY_VISION, GST_IMAGE_BIND_MATCH_MODE_DETECT, r, 2);
    m->pts = pts;
    m->duration = 100 * GST_MSECOND;
    m->stream_time = pts;
    m->running_time = pts;
  }
  return buf;
}

/* Pushes buffers @first..@last-1 (embedding only) and pulls them back out. */
static void
push_range (GstHarness * h, guint first, guint last)
{
  guint i;

  for (i = first; i < last; i++) {
    GstBuffer *out;
    g_assert_cmpint (gst_harness_push (h, make_buffer (i, FALSE, FALSE)), ==, GST_FLOW_OK);
    out = gst_harness_pull (h);
    g_assert_nonnull (out);
    gst_buffer_unref (out);
  }
}

/* Pushes records @first..@last that cannot be delivered, waits (up to @timeout_us) until they
 * count as failed, ends the stream and returns the last error its stats reported (asserted to
 * exist), logged after @what. */
static gchar *
push_undeliverable (Fixture * f, guint first, guint last, gint64 timeout_us,
    const gchar * what)
{
  gchar *error;

  push_range (f->h, first, last);
  wait_counter_within (f->element, "failed", last - first, timeout_us);
  g_assert_true (gst_harness_push_event (f->h, gst_event_new_eos ()));
  error = bus_last_error (f->bus);
  g_assert_nonnull (error);
  g_test_message ("%s: %s", what, error);
  return error;
}

static gint64
member_int (JsonArray * a, guint i, const gchar * name)
{
  return json_object_get_int_member (json_array_get_object_element (a, i), name);
}

static const gchar *
member_string (JsonArray * a, guint i, const gchar * name)
{
  return json_object_get_string_member (json_array_get_object_element (a, i), name);
}

/* Records of buffers @first..@last-1 (embedding only), in order, and nothing else. */
static void
assert_embedding_range (JsonArray * records, guint first, guint last)
{
  guint i;

  g_assert_cmpuint (json_array_get_length (records), ==, last - first);
  for (i = 0; i < last - first; i++) {
    g_assert_cmpstr (member_string (records, i, "type"), ==, "embedding");
    g_assert_cmpint (member_int (records, i, "pts"), ==, (first + i) * 100 * GST_MSECOND);
  }
}

/* ---- tests ---- */

/* Normal server: every record arrives once, in order, batched, with the right fields. */
static void
test_normal (void)
{
  Server *srv = server_new ();
  gchar *url = server_url (srv, "/hook");
  Fixture f;
  JsonArray *rec;
  JsonObject *o;
  JsonArray *v;
  guint i, k;

  fixture_setup (&f, url, "batch-size", 4, "batch-interval", (guint64) 60 * GST_SECOND,
      "source", "cam1", NULL);
  for (i = 0; i < 10; i++) {
    GstBuffer *in = make_buffer (i, TRUE, i >= 3 && i < 7), *out;
    g_assert_cmpint (gst_harness_push (f.h, in), ==, GST_FLOW_OK);
    out = gst_harness_pull (f.h);
    /* passed through untouched, metas included */
    g_assert_true (out == in);
    g_assert_nonnull (gst_buffer_get_imagebind_embedding_meta (out));
    gst_buffer_unref (out);
  }
  g_assert_true (gst_harness_push_event (f.h, gst_event_new_eos ()));
  /* 10 embeddings, 10 matches, a detection start (buffer 3) and stop (buffer 7) */
  assert_stats (eos_stats (f.bus), 22, 0, 0, 0);
  g_assert_cmpuint (get_u64 (f.element, "sent"), ==, 22);

  /* 22 records in batches of 4: 6 requests, all POST /hook with JSON */
  g_assert_cmpuint (server_n_requests (srv), ==, 6);
  for (i = 0; i < srv->requests->len; i++) {
    Request *r = g_ptr_array_index (srv->requests, i);
    g_assert_cmpstr (r->method, ==, "POST");
    g_assert_cmpstr (r->path, ==, "/hook");
    g_assert_cmpstr (r->content_type, ==, "application/json");
  }
  rec = delivered_records (srv);
  g_assert_cmpuint (json_array_get_length (rec), ==, 22);
  k = 0;
  for (i = 0; i < 10; i++) {
    g_assert_cmpstr (member_string (rec, k, "type"), ==, "embedding");
    g_assert_cmpint (member_int (rec, k, "pts"), ==, i * 100 * GST_MSECOND);
    o = json_array_get_object_element (rec, k);
    g_assert_cmpstr (json_object_get_string_member (o, "source"), ==, "cam1");
    g_assert_cmpstr (json_object_get_string_member (o, "modality"), ==, "vision");
    g_assert_cmpstr (json_object_get_string_member (o, "model_id"), ==, "tiny:test.gguf");
    g_assert_cmpint (json_object_get_int_member (o, "duration"), ==, 100 * GST_MSECOND);
    g_assert_cmpint (json_object_get_int_member (o, "running_time"), ==, i * 100 * GST_MSECOND);
    g_assert_cmpint (json_object_get_int_member (o, "dim"), ==, 4);
    g_assert_cmpfloat_with_epsilon (json_object_get_double_member (o, "logit_scale"), 20.0,
        1e-6);
    /* unit length: (3, 4, i, 0) / sqrt (25 + i^2) */
    v = json_object_get_array_member (o, "vector");
    g_assert_cmpuint (json_array_get_length (v), ==, 4);
    g_assert_cmpfloat_with_epsilon (json_array_get_double_element (v, 0),
        3.0 / sqrt (25.0 + i * i), 1e-6);
    g_assert_cmpfloat_with_epsilon (json_array_get_double_element (v, 2),
        (gdouble) i / sqrt (25.0 + i * i), 1e-6);
    k++;

    o = json_array_get_object_element (rec, k);
    g_assert_cmpstr (json_object_get_string_member (o, "type"), ==, "match");
    g_assert_cmpint (json_object_get_int_member (o, "pts"), ==, i * 100 * GST_MSECOND);
    g_assert_cmpstr (json_object_get_string_member (o, "mode"), ==, "detect");
    g_assert_cmpstr (json_object_get_string_member (o, "top_label"), ==, "a dog");
    g_assert_cmpstr (json_array_get_string_element (json_object_get_array_member (o,
                "labels"), 1), ==, "a cat");
    g_assert_cmpfloat_with_epsilon (json_array_get_double_element
        (json_object_get_array_member (o, "scores"), 0), 0.5, 1e-9);
    g_assert_cmpfloat_with_epsilon (json_array_get_double_element
        (json_object_get_array_member (o, "probabilities"), 1), 0.25, 1e-9);
    g_assert_cmpint (json_array_get_int_element (json_object_get_array_member (o, "indices"),
            1), ==, 1);
    g_assert_true (json_array_get_boolean_element (json_object_get_array_member (o,
                "detected"), 0) == (i >= 3 && i < 7));
    k++;

    if (i == 3 || i == 7) {
      o = json_array_get_object_element (rec, k);
      g_assert_cmpstr (json_object_get_string_member (o, "type"), ==, "detection");
      g_assert_cmpstr (json_object_get_string_member (o, "event"), ==, i == 3 ? "start" :
          "stop");
      g_assert_cmpstr (json_object_get_string_member (o, "label"), ==, "a dog");
      g_assert_cmpint (json_object_get_int_member (o, "index"), ==, 0);
      g_assert_cmpint (json_object_get_int_member (o, "pts"), ==, i * 100 * GST_MSECOND);
      k++;
    }
  }
  json_array_unref (rec);
  fixture_teardown (&f);
  server_free (srv);
  g_free (url);
}

/* format=qdrant: PUT {location}/collections/{collection}/points with points. */
static void
test_qdrant (void)
{
  Server *srv = server_new ();
  gchar *url = server_url (srv, "");
  Fixture f;
  Request *r;
  JsonNode *root;
  JsonArray *points;
  guint i;

  fixture_setup (&f, url, "format", 1, "collection", "clips", "batch-size", 100, NULL);
  for (i = 0; i < 3; i++) {
    g_assert_cmpint (gst_harness_push (f.h, make_buffer (i, TRUE, i == 1)), ==, GST_FLOW_OK);
    gst_buffer_unref (gst_harness_pull (f.h));
  }
  g_assert_true (gst_harness_push_event (f.h, gst_event_new_eos ()));
  /* only the embeddings are points (matches and detections ride on their payload) */
  assert_stats (eos_stats (f.bus), 3, 0, 0, 0);
  g_assert_cmpuint (server_n_requests (srv), ==, 1);
  r = g_ptr_array_index (srv->requests, 0);
  g_assert_cmpstr (r->method, ==, "PUT");
  g_assert_cmpstr (r->path, ==, "/collections/clips/points");
  root = json_from_string (r->body, NULL);
  g_assert_nonnull (root);
  points = json_object_get_array_member (json_node_get_object (root), "points");
  g_assert_cmpuint (json_array_get_length (points), ==, 3);
  for (i = 0; i < 3; i++) {
    JsonObject *p = json_array_get_object_element (points, i);
    JsonObject *payload = json_object_get_object_member (p, "payload");
    const gchar *id = json_object_get_string_member (p, "id");

    g_assert_true (g_uuid_string_is_valid (id));
    if (i > 0)
      g_assert_cmpstr (id, !=, json_object_get_string_member (json_array_get_object_element
              (points, i - 1), "id"));
    g_assert_cmpuint (json_array_get_length (json_object_get_array_member (p, "vector")), ==, 4);
    g_assert_cmpint (json_object_get_int_member (payload, "pts"), ==, i * 100 * GST_MSECOND);
    g_assert_cmpstr (json_object_get_string_member (payload, "modality"), ==, "vision");
    g_assert_false (json_object_has_member (payload, "vector"));
    g_assert_cmpstr (json_object_get_string_member (payload, "top_label"), ==, "a dog");
    g_assert_cmpuint (json_array_get_length (json_object_get_array_member (payload, "labels")),
        ==, 2);
    g_assert_cmpfloat_with_epsilon (json_array_get_double_element
        (json_object_get_array_member (payload, "scores"), 1), 0.25, 1e-9);
  }
  json_node_unref (root);
  fixture_teardown (&f);
  server_free (srv);
  g_free (url);
}

/* A server that does not answer: the stream goes on at full speed, records queue; once it
 * answers, all of them arrive in order. Then a server that answers late. */
static void
test_slow (void)
{
  Server *srv = server_new ();
  gchar *url = server_url (srv, "/hook");
  Fixture f;
  JsonArray *rec;
  gint64 t0, t1;

  srv->hold = TRUE;
  fixture_setup (&f, url, "batch-size", 5, NULL);
  t0 = g_get_monotonic_time ();
  push_range (f.h, 0, 200);
  t1 = g_get_monotonic_time ();
  g_test_message ("200 buffers through while the server held its answers: %.1f ms",
      (t1 - t0) / 1000.0);
  /* nothing answered: every buffer went through without waiting for the server; at most the
   * first batch is at the server, and all 200 records are held by the element */
  g_assert_cmpuint (server_n_requests (srv), <=, 1);
  g_assert_cmpuint (get_u64 (f.element, "queued"), ==, 200);
  g_assert_cmpuint (get_u64 (f.element, "sent"), ==, 0);
  g_assert_cmpuint (get_u64 (f.element, "dropped"), ==, 0);

  server_call (srv, do_release);
  assert_stats (end_stream (&f), 200, 0, 0, 0);
  rec = delivered_records (srv);
  assert_embedding_range (rec, 0, 200);
  json_array_unref (rec);
  fixture_teardown (&f);
  server_free (srv);
  g_free (url);

  /* a server answering each request 50 ms late: 20 batches of 5 take it 1 s, while the 100
   * buffers go through at once and the records queue */
  srv = server_new ();
  url = server_url (srv, "/hook");
  srv->delay_ms = 50;
  fixture_setup (&f, url, "batch-size", 5, NULL);
  t0 = g_get_monotonic_time ();
  push_range (f.h, 0, 100);
  t1 = g_get_monotonic_time ();
  g_test_message ("100 buffers through in %.1f ms with a server answering in 50 ms; "
      "%" G_GUINT64_FORMAT " records delivered, %" G_GUINT64_FORMAT " queued by then",
      (t1 - t0) / 1000.0, get_u64 (f.element, "sent"), get_u64 (f.element, "queued"));
  g_assert_cmpuint (get_u64 (f.element, "queued"), >, 0);
  assert_stats (end_stream (&f), 100, 0, 0, 0);
  g_assert_cmpuint (server_n_requests (srv), ==, 20);
  rec = delivered_records (srv);
  assert_embedding_range (rec, 0, 100);
  json_array_unref (rec);
  fixture_teardown (&f);
  server_free (srv);
  g_free (url);
}

/* Server down (connection refused), then back: nothing lost while the queue has room; once it
 * is full, drops are counted exactly. */
static void
test_down_then_up (void)
{
  Server *srv = server_new ();
  gchar *url = server_url (srv, "/hook");
  Fixture f;
  JsonArray *rec;
  GstStructure *s;
  guint64 v;

  server_call (srv, do_down);
  fixture_setup (&f, url, "batch-size", 5, "max-queue", 20, "max-retries", 1000000,
      "retry-delay", (guint64) 5 * GST_MSECOND, "max-retry-delay", (guint64) 40 * GST_MSECOND,
      NULL);
  /* 15 records: room for all */
  push_range (f.h, 0, 15);
  g_assert_cmpuint (get_u64 (f.element, "dropped"), ==, 0);
  /* the first batch is being retried: wait until at least 3 attempts failed */
  {
    gint64 end = g_get_monotonic_time () + WAIT_US;
    gchar *last = NULL;
    while (g_get_monotonic_time () < end) {
      GstMessage *msg = gst_bus_timed_pop_filtered (f.bus, 10 * GST_MSECOND,
          GST_MESSAGE_ELEMENT);
      if (msg) {
        const gchar *e = gst_structure_get_string (gst_message_get_structure (msg),
            "last-error");
        if (e && *e) {
          g_free (last);
          last = g_strdup (e);
          gst_message_unref (msg);
          break;
        }
        gst_message_unref (msg);
      }
    }
    g_assert_nonnull (last);
    g_test_message ("while down: %s", last);
    g_free (last);
  }
  g_assert_cmpuint (get_u64 (f.element, "sent"), ==, 0);
  g_assert_cmpuint (get_u64 (f.element, "failed"), ==, 0);
  g_assert_cmpuint (get_u64 (f.element, "queued"), ==, 15);
  /* 15 more: 5 fit, 10 are dropped */
  push_range (f.h, 15, 30);
  g_assert_cmpuint (get_u64 (f.element, "dropped"), ==, 10);
  g_assert_cmpuint (get_u64 (f.element, "queued"), ==, 20);
  /* the periodic stats report the drops */
  {
    gint64 end = g_get_monotonic_time () + WAIT_US;
    gboolean seen = FALSE;
    while (!seen && g_get_monotonic_time () < end) {
      GstMessage *msg = gst_bus_timed_pop_filtered (f.bus, 10 * GST_MSECOND,
          GST_MESSAGE_ELEMENT);
      if (msg) {
        seen = gst_structure_get_uint64 (gst_message_get_structure (msg), "dropped", &v)
            && v == 10;
        gst_message_unref (msg);
      }
    }
    g_assert_true (seen);
  }

  server_call (srv, do_up);
  g_assert_true (gst_harness_push_event (f.h, gst_event_new_eos ()));
  s = eos_stats (f.bus);
  /* the endpoint is back: the error of the failed attempts is cleared */
  g_assert_cmpstr (gst_structure_get_string (s, "last-error"), ==, "");
  assert_stats (s, 20, 0, 10, 0);
  g_assert_cmpuint (get_u64 (f.element, "dropped"), ==, 10);
  rec = delivered_records (srv);
  assert_embedding_range (rec, 0, 20);
  json_array_unref (rec);
  fixture_teardown (&f);
  server_free (srv);
  g_free (url);
}

/* 500 then 200: retried and delivered once; 400: not retried, counted as failed. */
static void
test_errors (void)
{
  Server *srv = server_new ();
  gchar *url = server_url (srv, "/hook");
  guint statuses[] = { 500, 503, 200, 400 };
  Fixture f;
  JsonArray *rec;

  g_array_append_vals (srv->script, statuses, G_N_ELEMENTS (statuses));
  fixture_setup (&f, url, "batch-size", 3, "retry-delay", (guint64) 5 * GST_MSECOND, NULL);
  push_range (f.h, 0, 3);
  wait_counter (f.element, "sent", 3);
  /* two 5xx answers, then 200: three requests with the same batch */
  g_assert_cmpuint (server_n_requests (srv), ==, 3);
  g_assert_cmpstr (((Request *) srv->requests->pdata[0])->body, ==,
      ((Request *) srv->requests->pdata[2])->body);
  g_assert_cmpuint (get_u64 (f.element, "failed"), ==, 0);

  push_range (f.h, 3, 6);
  wait_counter (f.element, "failed", 3);
  g_assert_cmpuint (server_n_requests (srv), ==, 4);

  push_range (f.h, 6, 9);
  assert_stats (end_stream (&f), 6, 3, 0, 0);
  g_assert_cmpuint (server_n_requests (srv), ==, 5);
  rec = delivered_records (srv);
  g_assert_cmpuint (json_array_get_length (rec), ==, 6);
  g_assert_cmpint (member_int (rec, 2, "pts"), ==, 2 * 100 * GST_MSECOND);
  g_assert_cmpint (member_int (rec, 3, "pts"), ==, 6 * 100 * GST_MSECOND);
  json_array_unref (rec);
  fixture_teardown (&f);

  /* max-retries=0: a 500 is given up at once */
  g_array_set_size (srv->script, 0);
  g_array_append_val (srv->script, statuses[0]);
  fixture_setup (&f, url, "batch-size", 2, "max-retries", 0, NULL);
  push_range (f.h, 0, 2);
  assert_stats (end_stream (&f), 0, 2, 0, 0);
  g_assert_cmpuint (server_n_requests (srv), ==, 6);
  fixture_teardown (&f);
  server_free (srv);
  g_free (url);
}

/* EOS with the server down: EOS waits at most eos-timeout, then reports what is left. */
static void
test_eos_timeout (void)
{
  Server *srv = server_new ();
  gchar *url = server_url (srv, "/hook");
  Fixture f;

  server_call (srv, do_down);
  fixture_setup (&f, url, "batch-size", 100, "max-retries", 1000000,
      "retry-delay", (guint64) 5 * GST_MSECOND, "max-retry-delay", (guint64) 20 * GST_MSECOND,
      NULL);
  g_object_set (f.element, "eos-timeout", (guint64) 100 * GST_MSECOND, NULL);
  push_range (f.h, 0, 3);
  g_assert_true (gst_harness_push_event (f.h, gst_event_new_eos ()));
  /* nothing delivered: the 3 records left at EOS are counted as dropped, not left to vanish
   * at READY, and a warning says so */
  {
    GstStructure *s = eos_stats (f.bus);
    gchar *text = NULL;

    g_assert_cmpstr (gst_structure_get_string (s, "last-error"), !=, "");
    assert_stats (s, 0, 0, 3, 0);
    g_assert_cmpuint (bus_count (f.bus, GST_MESSAGE_WARNING, &text), ==, 1);
    g_test_message ("warning: %s", text);
    g_assert_nonnull (strstr (text, "3 records"));
    g_free (text);
  }
  g_assert_cmpuint (get_u64 (f.element, "dropped"), ==, 3);
  g_assert_cmpuint (get_u64 (f.element, "queued"), ==, 0);
  g_assert_cmpuint (server_n_requests (srv), ==, 0);
  fixture_teardown (&f);
  server_free (srv);
  g_free (url);
}

/* Going to NULL while the server holds a request: no hang, no crash, no leak (ASan). */
static void
test_stop_while_sending (void)
{
  Server *srv = server_new ();
  gchar *url = server_url (srv, "/hook");
  gint64 end;
  Fixture f;

  srv->hold = TRUE;
  fixture_setup (&f, url, "batch-size", 2, NULL);
  push_range (f.h, 0, 6);
  end = g_get_monotonic_time () + WAIT_US;
  while (server_n_requests (srv) < 1 && g_get_monotonic_time () < end)
    g_usleep (5000);
  g_assert_cmpuint (server_n_requests (srv), ==, 1);
  g_assert_cmpuint (get_u64 (f.element, "queued"), ==, 6);
  /* what is discarded when the element stops is counted as dropped, with a warning */
  gst_element_set_state (f.element, GST_STATE_READY);
  g_assert_cmpuint (get_u64 (f.element, "dropped"), ==, 6);
  g_assert_cmpuint (get_u64 (f.element, "queued"), ==, 0);
  g_assert_cmpuint (bus_count (f.bus, GST_MESSAGE_WARNING, NULL), ==, 1);
  fixture_teardown (&f);
  server_free (srv);
  g_free (url);
}

/* location=file://...: JSON lines, one record a line, no network. */
static void
test_file (void)
{
  gchar *dir = g_dir_make_tmp ("publish-XXXXXX", NULL);
  gchar *path = g_build_filename (dir, "out.jsonl", NULL);
  gchar *uri = g_filename_to_uri (path, NULL, NULL);
  gchar *contents = NULL, **lines;
  Fixture f;
  guint i, k = 0;

  fixture_setup (&f, uri, "batch-size", 3, "include-vector", FALSE, NULL);
  for (i = 0; i < 5; i++) {
    g_assert_cmpint (gst_harness_push (f.h, make_buffer (i, TRUE, i == 2 || i == 4)), ==,
        GST_FLOW_OK);
    gst_buffer_unref (gst_harness_pull (f.h));
  }
  g_assert_true (gst_harness_push_event (f.h, gst_event_new_eos ()));
  /* 5 embeddings, 5 matches, detection start at 2, stop at 3, start at 4, stop at EOS */
  assert_stats (eos_stats (f.bus), 14, 0, 0, 0);
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  lines = g_strsplit (contents, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 15);
  g_assert_cmpstr (lines[14], ==, "");
  for (i = 0; i < 5; i++) {
    const gchar *types[] = { "embedding", "match", "detection" };
    guint n = i >= 2 ? 3 : 2, t;
    for (t = 0; t < n; t++, k++) {
      JsonNode *node = json_from_string (lines[k], NULL);
      JsonObject *o;
      g_assert_nonnull (node);
      o = json_node_get_object (node);
      g_assert_cmpstr (json_object_get_string_member (o, "type"), ==, types[t]);
      g_assert_cmpint (json_object_get_int_member (o, "pts"), ==, i * 100 * GST_MSECOND);
      if (t == 0)
        g_assert_false (json_object_has_member (o, "vector"));
      if (t == 2)
        g_assert_cmpstr (json_object_get_string_member (o, "event"), ==, i == 3 ? "stop" :
            "start");
      json_node_unref (node);
    }
  }
  {
    /* the detection still open at EOS ends without span or score */
    JsonNode *node = json_from_string (lines[13], NULL);
    JsonObject *o = json_node_get_object (node);
    g_assert_cmpstr (json_object_get_string_member (o, "type"), ==, "detection");
    g_assert_cmpstr (json_object_get_string_member (o, "event"), ==, "stop");
    g_assert_cmpstr (json_object_get_string_member (o, "label"), ==, "a dog");
    g_assert_true (json_object_get_null_member (o, "pts"));
    g_assert_true (json_object_get_null_member (o, "score"));
    json_node_unref (node);
  }
  g_strfreev (lines);
  g_free (contents);
  fixture_teardown (&f);
  g_unlink (path);
  g_rmdir (dir);
  g_free (uri);
  g_free (path);
  g_free (dir);
}

/* Non-finite numbers (a broken model or input): an embedding whose vector has a NaN or an
 * infinity is not published (never as zeros): it is counted in `rejected`, with one warning
 * per stream. Non-finite scores of a match become null, valid JSON. */
static void
test_non_finite (void)
{
  gchar *dir = g_dir_make_tmp ("publish-XXXXXX", NULL);
  gchar *path = g_build_filename (dir, "out.jsonl", NULL);
  gchar *uri = g_filename_to_uri (path, NULL, NULL);
  gchar *contents = NULL, **lines, *text = NULL;
  GstBuffer *buf = gst_buffer_new ();
  gfloat v[3] = { 3.0f, NAN, 4.0f }, inf[3] = { 1.0f, INFINITY, 0.0f }, ok[3] = { 3, 0, 4 };
  GstImageBindMatchResult r = { 0, (gchar *) "a dog", NAN, INFINITY, FALSE };
  GstStructure *s;
  JsonNode *node;
  JsonArray *a;
  Fixture f;
  guint64 n;

  gst_buffer_add_imagebind_embedding_meta (buf, GST_IMAGE_BIND_MODALITY_AUDIO, v, 3, NAN, "m");
  gst_buffer_add_imagebind_match_meta (buf, GST_IMAGE_BIND_MODALITY_AUDIO,
      GST_IMAGE_BIND_MATCH_MODE_CLASSIFY, &r, 1);
  fixture_setup (&f, uri, NULL);
  g_assert_cmpint (gst_harness_push (f.h, buf), ==, GST_FLOW_OK);
  gst_buffer_unref (gst_harness_pull (f.h));
  buf = gst_buffer_new ();
  gst_buffer_add_imagebind_embedding_meta (buf, GST_IMAGE_BIND_MODALITY_AUDIO, inf, 3, 1, "m");
  g_assert_cmpint (gst_harness_push (f.h, buf), ==, GST_FLOW_OK);
  gst_buffer_unref (gst_harness_pull (f.h));
  buf = gst_buffer_new ();
  gst_buffer_add_imagebind_embedding_meta (buf, GST_IMAGE_BIND_MODALITY_AUDIO, ok, 3, NAN, "m");
  g_assert_cmpint (gst_harness_push (f.h, buf), ==, GST_FLOW_OK);
  gst_buffer_unref (gst_harness_pull (f.h));
  g_assert_true (gst_harness_push_event (f.h, gst_event_new_eos ()));
  s = eos_stats (f.bus);
  g_assert_true (gst_structure_get_uint64 (s, "rejected", &n));
  g_assert_cmpuint (n, ==, 2);
  assert_stats (s, 2, 0, 0, 0);
  g_object_get (f.element, "rejected", &n, NULL);
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpuint (bus_count (f.bus, GST_MESSAGE_WARNING, &text), ==, 1);
  g_test_message ("warning: %s", text);
  g_assert_nonnull (strstr (text, "NaN"));
  g_free (text);

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  lines = g_strsplit (contents, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 3);
  /* the match of the first buffer, with null scores */
  node = json_from_string (lines[0], NULL);
  g_assert_nonnull (node);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (node), "type"), ==,
      "match");
  a = json_object_get_array_member (json_node_get_object (node), "scores");
  g_assert_true (json_array_get_null_element (a, 0));
  g_assert_true (json_object_get_null_member (json_node_get_object (node), "top_probability"));
  json_node_unref (node);
  /* the finite embedding, at unit length, its NaN logit scale as null */
  node = json_from_string (lines[1], NULL);
  g_assert_nonnull (node);
  g_assert_true (json_object_get_null_member (json_node_get_object (node), "logit_scale"));
  g_assert_true (json_object_get_null_member (json_node_get_object (node), "pts"));
  a = json_object_get_array_member (json_node_get_object (node), "vector");
  g_assert_cmpfloat_with_epsilon (json_array_get_double_element (a, 0), 0.6, 1e-6);
  g_assert_cmpfloat_with_epsilon (json_array_get_double_element (a, 1), 0.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (json_array_get_double_element (a, 2), 0.8, 1e-6);
  json_node_unref (node);
  g_strfreev (lines);
  g_free (contents);
  fixture_teardown (&f);
  g_unlink (path);
  g_rmdir (dir);
  g_free (uri);
  g_free (path);
  g_free (dir);
}

/* An element with these properties fails to start: the text of its error (message and
 * debug detail). */
static gchar *
start_error (const gchar * first_property, ...)
{
  GstElement *e = gst_element_factory_make ("imagebindpublish", NULL);
  GstBus *bus = gst_bus_new ();
  gchar *text;
  va_list args;

  va_start (args, first_property);
  g_object_set_valist (G_OBJECT (e), first_property, args);
  va_end (args);
  gst_element_set_bus (e, bus);
  g_assert_cmpint (gst_element_set_state (e, GST_STATE_PAUSED), ==, GST_STATE_CHANGE_FAILURE);
  text = ib_test_pop_error_text (bus);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, NULL);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  gst_object_unref (e);
  return text;
}

/* Without a location the element refuses to start, saying what to set: it never writes to
 * standard output unasked (location=- asks for that). */
static void
test_no_location (void)
{
  gchar *text = start_error (NULL, NULL);

  g_test_message ("%s", text);
  g_assert_nonnull (strstr (text, "No location set."));
  g_assert_nonnull (strstr (text, "Set location to"));
  g_free (text);
}

/* A location the element cannot use is an error at start, not a crash. */
static void
test_bad_location (void)
{
  /* with what the error must say; URLs without a host used to be accepted, then libsoup
   * CRITICALs at the first request (fatal here), and file://relative/x wrote /x */
  const gchar *bad[][2] = {
    {"ftp://127.0.0.1/x", "Unsupported location"},
    {"file:///nonexistent-dir-publish/x.jsonl", "Could not open"},
    {"file:relative", "Invalid file URI"},
    {"file://relative/x.jsonl", "names the host"},
    {"http://", "no host"},
    {"http:///hook", "no host"},
    {"https://", "no host"},
    {"http://:8080/hook", "no host"},
    {"http://127.0.0.1:99999/hook", "Invalid URL"},
    {"mqtt://", "MQTT"},
    {"mqtt://127.0.0.1", "MQTT"},
    {"mqtt://127.0.0.1:1883/", "MQTT"},
    {"mqtt:///topic", "MQTT"},
    {"mqtt://127.0.0.1/a/#", "MQTT"},
    {"mqtt://127.0.0.1/a/+/b", "MQTT"},
    {"mqtt://127.0.0.1:0/t", "MQTT"},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    gchar *text = start_error ("location", bad[i][0], NULL);

    g_test_message ("%s: %s", bad[i][0], text);
    g_assert_nonnull (strstr (text, bad[i][1]));
    g_free (text);
  }
}

/* extra-headers (e.g. Qdrant's api-key) and username/password (HTTP Basic) reach the server;
 * TLS properties on a location without TLS are an error, not silently unused. */
static void
test_headers (void)
{
  Server *srv = server_new ();
  gchar *url = server_url (srv, "/hook");
  GstStructure *headers = gst_structure_from_string ("headers, api-key=SECRET, "
      "x-count=(int)3", NULL);
  Request *r;
  Fixture f;

  g_assert_nonnull (headers);
  fixture_setup (&f, url, "batch-size", 2, "extra-headers", headers, "username", "cam",
      "password", "pw", NULL);
  push_range (f.h, 0, 2);
  assert_stats (end_stream (&f), 2, 0, 0, 0);
  g_assert_cmpuint (server_n_requests (srv), ==, 1);
  r = g_ptr_array_index (srv->requests, 0);
  g_assert_cmpstr (r->api_key, ==, "SECRET");
  g_assert_cmpstr (r->x_count, ==, "3");
  g_assert_cmpstr (r->authorization, ==, "Basic Y2FtOnB3");     /* "cam:pw" */
  fixture_teardown (&f);

  {
    gchar *text = start_error ("location", url, "tls-ca-file", "/etc/hostname", NULL);
    g_test_message ("%s", text);
    g_assert_nonnull (strstr (text, "does not use TLS"));
    g_free (text);
  }
  gst_structure_free (headers);
  server_free (srv);
  g_free (url);
}

/* A server that trickles its headers (a byte every 50 ms, never done): request-timeout bounds
 * the whole request, not the time between two bytes, so each attempt ends after it, is
 * retried, and the batch is given up after max-retries with the timeout as last error
 * (never waiting forever on one request, without retry or error). */
static void
test_trickle (void)
{
  RawServer *srv = raw_server_new (RAW_TRICKLE);
  gchar *url = g_strdup_printf ("http://127.0.0.1:%u/hook", srv->port);
  gint64 t0 = g_get_monotonic_time ();
  gchar *last;
  Fixture f;

  fixture_setup (&f, url, "batch-size", 2, "request-timeout", (guint64) 300 * GST_MSECOND,
      "max-retries", 2, "retry-delay", (guint64) 10 * GST_MSECOND, "max-retry-delay",
      (guint64) 10 * GST_MSECOND, NULL);
  push_range (f.h, 0, 2);
  wait_counter (f.element, "failed", 2);
  g_test_message ("3 attempts of 300 ms given up after %.2f s",
      (g_get_monotonic_time () - t0) / 1e6);
  /* the server serves one connection at a time: the last attempt may still wait in its
   * backlog for the one before to end */
  {
    gint64 end = g_get_monotonic_time () + WAIT_US;
    while (raw_connections (srv) < 3 && g_get_monotonic_time () < end)
      g_usleep (10 * 1000);
    g_usleep (200 * 1000);
  }
  g_assert_cmpuint (raw_connections (srv), ==, 3);
  g_assert_cmpuint (get_u64 (f.element, "sent"), ==, 0);
  /* the stats carry the timeout */
  last = wait_last_error (f.bus, "last-error");
  g_assert_nonnull (strstr (last, "timed out"));
  g_free (last);
  assert_stats (end_stream (&f), 0, 2, 0, 0);
  fixture_teardown (&f);
  raw_server_free (srv);
  g_free (url);
}

/* A 200 answer with a 2 GiB body: the publisher reads a bounded part of it (it used to read it
 * all into memory: 2.1 GB RSS), counts the batch as delivered and drops the connection. */
static void
test_huge_body (void)
{
  RawServer *srv = raw_server_new (RAW_HUGE_BODY);
  gchar *url = g_strdup_printf ("http://127.0.0.1:%u/hook", srv->port);
  gint64 end;
  gboolean closed = FALSE;
  guint64 written = 0;
  Fixture f;

  fixture_setup (&f, url, "batch-size", 2, "request-timeout", (guint64) 60 * GST_SECOND, NULL);
  push_range (f.h, 0, 2);
  wait_counter (f.element, "sent", 2);
  end = g_get_monotonic_time () + WAIT_US;
  while (!closed && g_get_monotonic_time () < end) {
    g_usleep (10 * 1000);
    g_mutex_lock (&srv->lock);
    closed = srv->closed_by_client;
    written = srv->body_written;
    g_mutex_unlock (&srv->lock);
  }
  g_test_message ("the server wrote %" G_GUINT64_FORMAT " body bytes before the client closed",
      written);
  g_assert_true (closed);
  /* what the client read, plus what the socket buffers held */
  g_assert_cmpuint (written, <, 64 * 1024 * 1024);
  assert_stats (end_stream (&f), 2, 0, 0, 0);
  fixture_teardown (&f);
  raw_server_free (srv);
  g_free (url);
}

/* ---- MQTT, against Debian's mosquitto broker ---- */

/* A mosquitto broker of the test's own on 127.0.0.1 (a free port), with persistence in a
 * temporary directory saved every second, so that a subscriber's session (its subscription
 * and the QoS 1 messages queued for it) survives the broker being killed and restarted. */
typedef struct {
  gchar *exe;
  gchar *dir;
  gchar *conf;
  guint port;
  GSubprocess *proc;
} Broker;

typedef struct {
  GSubprocess *proc;
  gchar *path;                  /* its output: one payload a line */
} Subscriber;

/* The broker's binary (Debian puts it in /usr/sbin, often not in PATH), or NULL. */
static gchar *
find_broker (void)
{
  gchar *exe = g_find_program_in_path ("mosquitto");

  if (!exe && g_file_test ("/usr/sbin/mosquitto", G_FILE_TEST_IS_EXECUTABLE))
    exe = g_strdup ("/usr/sbin/mosquitto");
  return exe;
}

/* Skips the test (saying why) when it cannot run: no broker or clients, or an element built
 * without libmosquitto. */
static gboolean
mqtt_available (void)
{
  gchar *exe = find_broker (), *sub = g_find_program_in_path ("mosquitto_sub"),
      *pub = g_find_program_in_path ("mosquitto_pub");
  gboolean ok = exe && sub && pub;
  GstElement *e;

  g_free (exe);
  g_free (sub);
  g_free (pub);
  if (!ok) {
    g_test_skip ("the mosquitto broker or its clients are not installed (Debian: apt-get "
        "install mosquitto mosquitto-clients)");
    return FALSE;
  }
  /* an element without MQTT refuses the location at start */
  e = gst_element_factory_make ("imagebindpublish", NULL);
  g_object_set (e, "location", "mqtt://127.0.0.1:1/t", NULL);
  ok = gst_element_set_state (e, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE;
  gst_element_set_state (e, GST_STATE_NULL);
  gst_object_unref (e);
  if (!ok)
    g_test_skip ("imagebindpublish was built without libmosquitto (install "
        "libmosquitto-dev and build again)");
  return ok;
}

static gboolean
have_program (const gchar * name)
{
  gchar *path = g_find_program_in_path (name);

  g_free (path);
  return path != NULL;
}

static guint
free_port (void)
{
  GSocket *s = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
      G_SOCKET_PROTOCOL_TCP, NULL);
  GInetAddress *lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *addr = g_inet_socket_address_new (lo, 0), *bound;
  guint port;

  g_assert_true (g_socket_bind (s, addr, FALSE, NULL));
  bound = g_socket_get_local_address (s, NULL);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_object_unref (bound);
  g_object_unref (addr);
  g_object_unref (lo);
  g_object_unref (s);
  return port;
}

static gboolean
port_open (guint port)
{
  GSocketClient *c = g_socket_client_new ();
  GSocketConnection *conn = g_socket_client_connect_to_host (c, "127.0.0.1", port, NULL,
      NULL);

  g_object_unref (c);
  if (!conn)
    return FALSE;
  g_object_unref (conn);
  return TRUE;
}

static void
broker_start (Broker * b)
{
  GSubprocessLauncher *l = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
  gchar *log = g_build_filename (b->dir, "broker.log", NULL);
  GError *err = NULL;
  gint64 end = g_get_monotonic_time () + WAIT_US;

  g_subprocess_launcher_set_stdout_file_path (l, log);
  b->proc = g_subprocess_launcher_spawn (l, &err, b->exe, "-c", b->conf, NULL);
  g_assert_no_error (err);
  while (!port_open (b->port) && g_get_monotonic_time () < end)
    g_usleep (20 * 1000);
  g_assert_true (port_open (b->port));
  g_object_unref (l);
  g_free (log);
}

/* @extra: more lines of configuration (authentication, TLS), or NULL. */
static Broker *
broker_new (const gchar * extra)
{
  Broker *b = g_new0 (Broker, 1);
  gchar *conf;

  b->exe = find_broker ();
  b->dir = g_dir_make_tmp ("publish-mqtt-XXXXXX", NULL);
  b->conf = g_build_filename (b->dir, "mosquitto.conf", NULL);
  b->port = free_port ();
  /* run as root, mosquitto becomes the user "mosquitto", who cannot write the temporary
   * directory: stay who we are */
  conf = g_strdup_printf ("listener %u 127.0.0.1\n%s\npersistence true\n"
      "persistence_location %s/\nautosave_interval 1\nuser %s\n", b->port,
      extra ? extra : "allow_anonymous true", b->dir, g_get_user_name ());
  g_assert_true (g_file_set_contents (b->conf, conf, -1, NULL));
  g_free (conf);
  broker_start (b);
  return b;
}

static void
broker_kill (Broker * b)
{
  g_subprocess_send_signal (b->proc, SIGKILL);
  g_subprocess_wait (b->proc, NULL, NULL);
  g_clear_object (&b->proc);
}

static void
remove_dir (const gchar * dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const gchar *name;

  while (d && (name = g_dir_read_name (d))) {
    gchar *path = g_build_filename (dir, name, NULL);
    g_unlink (path);
    g_free (path);
  }
  if (d)
    g_dir_close (d);
  g_rmdir (dir);
}

static void
broker_free (Broker * b)
{
  if (b->proc)
    broker_kill (b);
  remove_dir (b->dir);
  g_free (b->exe);
  g_free (b->dir);
  g_free (b->conf);
  g_free (b);
}

/* The lines the subscriber has received so far, probes left out. */
static GPtrArray *
subscriber_lines (Subscriber * s)
{
  GPtrArray *lines = g_ptr_array_new_with_free_func (g_free);
  gchar *contents = NULL, **split, **l;

  if (g_file_get_contents (s->path, &contents, NULL, NULL)) {
    split = g_strsplit (contents, "\n", -1);
    /* the last piece is a line still being written (or "") */
    for (l = split; *l && l[1]; l++)
      if (**l && !g_str_has_prefix (*l, "probe"))
        g_ptr_array_add (lines, g_strdup (*l));
    g_strfreev (split);
  }
  g_free (contents);
  return lines;
}

static gboolean
subscriber_has (Subscriber * s, const gchar * text)
{
  gchar *contents = NULL;
  gboolean has = g_file_get_contents (s->path, &contents, NULL, NULL)
      && strstr (contents, text);

  g_free (contents);
  return has;
}

static void
mosquitto_pub (Broker * b, const gchar * topic, const gchar * message,
    const gchar * const *more)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  gchar *port = g_strdup_printf ("%u", b->port);
  const gchar *args[] = { "mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-q", "1", "-t",
    topic, "-m", message, NULL
  };
  GError *err = NULL;
  guint i;

  for (i = 0; args[i]; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  for (i = 0; more && more[i]; i++)
    g_ptr_array_add (argv, g_strdup (more[i]));
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (gchar **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH |
          G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL,
          NULL, &err));
  g_assert_no_error (err);
  g_ptr_array_unref (argv);
  g_free (port);
}

/* mosquitto_sub on @topic with a persistent session (-c, QoS 1): messages published while it
 * is away (the broker restarting) are kept for it. Returns once it is subscribed (a probe it
 * was sent has arrived). @more: options for the broker's authentication or TLS. */
static Subscriber *
subscriber_new (Broker * b, const gchar * topic, const gchar * const *more)
{
  Subscriber *s = g_new0 (Subscriber, 1);
  GSubprocessLauncher *l = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  gchar *port = g_strdup_printf ("%u", b->port);
  gchar *id = g_strdelimit (g_strdup_printf ("sub-%s", topic), "/", '-');
  const gchar *args[] = { "mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-q", "1", "-c",
    "-i", id, "-t", topic, NULL
  };
  gint64 end = g_get_monotonic_time () + WAIT_US;
  GError *err = NULL;
  guint i, n = 0;

  /* a file of its own: the launcher does not truncate an existing one */
  s->path = g_strdup_printf ("%s/%s.txt", b->dir, id);
  g_subprocess_launcher_set_stdout_file_path (l, s->path);
  for (i = 0; args[i]; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  for (i = 0; more && more[i]; i++)
    g_ptr_array_add (argv, g_strdup (more[i]));
  g_ptr_array_add (argv, NULL);
  s->proc = g_subprocess_launcher_spawnv (l, (const gchar * const *) argv->pdata, &err);
  g_assert_no_error (err);
  while (!subscriber_has (s, "probe") && g_get_monotonic_time () < end) {
    gchar *probe = g_strdup_printf ("probe %u", n++);
    mosquitto_pub (b, topic, probe, more);
    g_free (probe);
    g_usleep (50 * 1000);
  }
  g_assert_true (subscriber_has (s, "probe"));
  g_ptr_array_unref (argv);
  g_object_unref (l);
  g_free (port);
  g_free (id);
  return s;
}

static void
subscriber_free (Subscriber * s)
{
  g_subprocess_send_signal (s->proc, SIGTERM);
  g_subprocess_wait (s->proc, NULL, NULL);
  g_object_unref (s->proc);
  g_free (s->path);
  g_free (s);
}

/* Waits (bounded) for @n records at the subscriber, then checks they are the embeddings of
 * buffers @first..@first+@n-1, each once (in any order: QoS 1 redeliveries may reorder). */
static void
assert_received (Subscriber * s, guint first, guint n)
{
  gint64 end = g_get_monotonic_time () + WAIT_US;
  GPtrArray *lines = subscriber_lines (s);
  gboolean *seen;
  guint i;

  while (lines->len < n && g_get_monotonic_time () < end) {
    g_ptr_array_unref (lines);
    g_usleep (20 * 1000);
    lines = subscriber_lines (s);
  }
  /* a moment for anything extra (a duplicate) to show */
  g_usleep (200 * 1000);
  g_ptr_array_unref (lines);
  lines = subscriber_lines (s);
  g_assert_cmpuint (lines->len, ==, n);
  seen = g_new0 (gboolean, n);
  for (i = 0; i < lines->len; i++) {
    JsonNode *node = json_from_string (g_ptr_array_index (lines, i), NULL);
    JsonObject *o;
    gint64 k;

    if (!node)
      g_test_message ("not JSON: %s", (gchar *) g_ptr_array_index (lines, i));
    g_assert_nonnull (node);
    o = json_node_get_object (node);
    g_assert_cmpstr (json_object_get_string_member (o, "type"), ==, "embedding");
    g_assert_cmpuint (json_array_get_length (json_object_get_array_member (o, "vector")), ==,
        4);
    k = json_object_get_int_member (o, "pts") / (100 * GST_MSECOND) - first;
    g_assert_cmpint (k, >=, 0);
    g_assert_cmpint (k, <, n);
    g_assert_false (seen[k]);
    seen[k] = TRUE;
    json_node_unref (node);
  }
  g_free (seen);
  g_ptr_array_unref (lines);
}

static gchar *
mqtt_url (Broker * b, const gchar * topic)
{
  return g_strdup_printf ("mqtt://127.0.0.1:%u/%s", b->port, topic);
}

/* A healthy broker: every record arrives, once, at QoS 1 and at QoS 0. */
static void
test_mqtt (void)
{
  Broker *b;
  guint qos;

  if (!mqtt_available ())
    return;
  b = broker_new (NULL);
  for (qos = 0; qos <= 1; qos++) {
    gchar *topic = g_strdup_printf ("imagebind/qos%u", qos);
    Subscriber *s = subscriber_new (b, topic, NULL);
    gchar *url = mqtt_url (b, topic);
    Fixture f;

    fixture_setup (&f, url, "batch-size", 7, "qos", qos, NULL);
    push_range (f.h, 0, 50);
    assert_stats (end_stream (&f), 50, 0, 0, 0);
    assert_received (s, 0, 50);
    fixture_teardown (&f);
    subscriber_free (s);
    g_free (url);
    g_free (topic);
  }
  broker_free (b);
}

/* Reconnecting backs off: to a server that hangs up on every connection (a broker or web
 * server going down), the attempts come retry-delay apart, doubled each time up to
 * max-retry-delay; not as fast as the publisher can reconnect. MQTT and HTTP alike. */
static void
test_backoff (void)
{
  const gchar *schemes[] = { "mqtt", "http" };
  /* retry-delay 50 ms, max-retry-delay 200 ms: attempts 50, 100, 200, 200, 200, 200, 200
   * ms apart (without the cap the last four would be 0.4, 0.8, 1.6 and 3.2 s) */
  const gint64 gaps_ms[] = { 50, 100, 200, 200, 200, 200, 200 };
  guint k, i;

  if (!mqtt_available ())
    return;
  for (k = 0; k < G_N_ELEMENTS (schemes); k++) {
    RawServer *srv = raw_server_new (RAW_HANG_UP);
    gchar *url = g_strdup_printf ("%s://127.0.0.1:%u/imagebind/backoff", schemes[k],
        srv->port);
    gint64 end = g_get_monotonic_time () + WAIT_US;
    gchar *last = NULL;
    gint64 capped = 0;
    Fixture f;

    fixture_setup (&f, url, "batch-size", 1, "max-retries", 1000000,
        "retry-delay", (guint64) 50 * GST_MSECOND,
        "max-retry-delay", (guint64) 200 * GST_MSECOND, NULL);
    push_range (f.h, 0, 1);
    while (raw_connections (srv) < G_N_ELEMENTS (gaps_ms) + 1
        && g_get_monotonic_time () < end)
      g_usleep (10 * 1000);
    g_assert_cmpuint (raw_connections (srv), >=, G_N_ELEMENTS (gaps_ms) + 1);
    for (i = 0; i < G_N_ELEMENTS (gaps_ms); i++) {
      gint64 gap = srv->times[i + 1] - srv->times[i];

      g_test_message ("%s: attempt %u came %.3f s after the one before", schemes[k], i + 2,
          gap / 1e6);
      /* never sooner than the back-off (less 5 ms for the clocks) */
      g_assert_cmpint (gap, >=, gaps_ms[i] * 1000 - 5000);
      if (i >= 3)
        capped += gap;
    }
    /* the cap holds: 0.8 s, not 6 s (the slack is for a loaded machine's delays) */
    g_assert_cmpint (capped, <, 4 * G_USEC_PER_SEC);
    g_assert_cmpuint (get_u64 (f.element, "sent"), ==, 0);
    g_assert_cmpuint (get_u64 (f.element, "failed"), ==, 0);
    g_assert_cmpuint (get_u64 (f.element, "queued"), ==, 1);
    last = wait_last_error (f.bus, schemes[k]);
    g_free (last);
    fixture_teardown (&f);
    raw_server_free (srv);
    g_free (url);
  }
}

/* Waits until the broker has saved its database since @since (g_get_real_time ()). */
static void
wait_saved (Broker * b, gint64 since)
{
  gchar *db = g_build_filename (b->dir, "mosquitto.db", NULL);
  gint64 end = g_get_monotonic_time () + WAIT_US;
  GStatBuf st;

  while (g_get_monotonic_time () < end) {
    if (g_stat (db, &st) == 0 && (gint64) st.st_mtim.tv_sec * G_USEC_PER_SEC +
        st.st_mtim.tv_nsec / 1000 > since)
      break;
    g_usleep (50 * 1000);
  }
  g_assert_cmpint (g_stat (db, &st), ==, 0);
  g_free (db);
}

/* The broker killed (SIGKILL) and restarted mid-stream: the records queue meanwhile (no loss
 * while the queue has room), the drops beyond max-queue are counted exactly, the publisher
 * reconnects with its back-off once the broker is back and delivers every queued record, and
 * last-error is cleared. */
static void
test_mqtt_broker_restart (void)
{
  Broker *b;
  Subscriber *s;
  gchar *url, *last;
  gint64 since;
  Fixture f;

  if (!mqtt_available ())
    return;
  b = broker_new (NULL);
  s = subscriber_new (b, "imagebind/restart", NULL);
  url = mqtt_url (b, "imagebind/restart");
  fixture_setup (&f, url, "batch-size", 5, "max-queue", 20, "max-retries", 1000000,
      "retry-delay", (guint64) 5 * GST_MSECOND, "max-retry-delay", (guint64) 40 * GST_MSECOND,
      "request-timeout", (guint64) 2 * GST_SECOND, NULL);
  push_range (f.h, 0, 10);
  wait_counter (f.element, "sent", 10);
  /* the subscriber's session is on disk before the broker dies */
  since = g_get_real_time ();
  wait_saved (b, since);
  broker_kill (b);

  /* 15 records: room for all */
  push_range (f.h, 10, 25);
  g_assert_cmpuint (get_u64 (f.element, "dropped"), ==, 0);
  last = wait_last_error (f.bus, "while the broker is down");
  g_free (last);
  g_assert_cmpuint (get_u64 (f.element, "sent"), ==, 10);
  g_assert_cmpuint (get_u64 (f.element, "failed"), ==, 0);
  g_assert_cmpuint (get_u64 (f.element, "queued"), ==, 15);
  /* 15 more: 5 fit, 10 are dropped */
  push_range (f.h, 25, 40);
  g_assert_cmpuint (get_u64 (f.element, "dropped"), ==, 10);
  g_assert_cmpuint (get_u64 (f.element, "queued"), ==, 20);

  broker_start (b);
  wait_counter (f.element, "sent", 30);
  g_assert_true (gst_harness_push_event (f.h, gst_event_new_eos ()));
  {
    GstStructure *st = eos_stats (f.bus);
    g_assert_cmpstr (gst_structure_get_string (st, "last-error"), ==, "");
    assert_stats (st, 30, 0, 10, 0);
  }
  /* records 0..29 arrive, each once; 30..39 were dropped */
  assert_received (s, 0, 30);
  fixture_teardown (&f);
  subscriber_free (s);
  broker_free (b);
  g_free (url);
}

/* The broker frozen (SIGSTOP) while a batch is on its way, then killed and restarted: the
 * messages it never acknowledged are published again on the new connection, so every record
 * arrives, each once (the dead broker had not read them). */
static void
test_mqtt_broker_killed_in_flight (void)
{
  Broker *b;
  Subscriber *s;
  gchar *url;
  Fixture f;

  if (!mqtt_available ())
    return;
  b = broker_new (NULL);
  s = subscriber_new (b, "imagebind/in-flight", NULL);
  url = mqtt_url (b, "imagebind/in-flight");
  fixture_setup (&f, url, "batch-size", 5, "qos", 1, "max-retries", 1000000,
      "retry-delay", (guint64) 5 * GST_MSECOND, "max-retry-delay", (guint64) 40 * GST_MSECOND,
      "request-timeout", (guint64) 30 * GST_SECOND, NULL);
  push_range (f.h, 0, 10);
  wait_counter (f.element, "sent", 10);
  wait_saved (b, g_get_real_time ());

  /* kill (), not g_subprocess_send_signal (): that one signals later, from GLib's worker */
  g_assert_cmpint (kill ((pid_t) g_ascii_strtoll (g_subprocess_get_identifier (b->proc), NULL,
              10), SIGSTOP), ==, 0);
  push_range (f.h, 10, 15);
  /* the batch is written to the frozen broker's socket; no acknowledgement comes */
  g_usleep (300 * 1000);
  g_assert_cmpuint (get_u64 (f.element, "sent"), ==, 10);
  g_assert_cmpuint (get_u64 (f.element, "queued"), ==, 5);
  broker_kill (b);
  broker_start (b);
  wait_counter (f.element, "sent", 15);
  assert_stats (end_stream (&f), 15, 0, 0, 0);
  assert_received (s, 0, 15);
  fixture_teardown (&f);
  subscriber_free (s);
  broker_free (b);
  g_free (url);
}

/* A broker that wants a name and password: the right ones deliver; a wrong password is
 * refused by the broker and the batch is given up without retries (as a 4xx answer). */
static void
test_mqtt_auth (void)
{
  const gchar *creds[] = { "-u", "cam", "-P", "s3cret", NULL };
  Broker *b;
  Subscriber *s;
  gchar *passwd, *extra, *url, *last;
  gint status = 1;
  Fixture f;

  if (!mqtt_available ())
    return;
  if (!have_program ("mosquitto_passwd")) {
    g_test_skip ("mosquitto_passwd is not installed");
    return;
  }
  passwd = g_build_filename (g_get_tmp_dir (), "publish-mqtt-passwd-XXXXXX", NULL);
  g_close (g_mkstemp (passwd), NULL);
  {
    gchar *argv[] = { (gchar *) "mosquitto_passwd", (gchar *) "-b", passwd, (gchar *) "cam",
      (gchar *) "s3cret", NULL
    };
    g_assert_true (g_spawn_sync (NULL, argv, NULL, G_SPAWN_SEARCH_PATH |
            G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL,
            &status, NULL));
    g_assert_cmpint (status, ==, 0);
  }
  extra = g_strdup_printf ("allow_anonymous false\npassword_file %s", passwd);
  b = broker_new (extra);
  s = subscriber_new (b, "imagebind/auth", creds);
  url = mqtt_url (b, "imagebind/auth");

  fixture_setup (&f, url, "batch-size", 3, "username", "cam", "password", "s3cret", NULL);
  push_range (f.h, 0, 6);
  assert_stats (end_stream (&f), 6, 0, 0, 0);
  assert_received (s, 0, 6);
  fixture_teardown (&f);

  fixture_setup (&f, url, "batch-size", 3, "username", "cam", "password", "wrong",
      "max-retries", 1000000, "retry-delay", (guint64) 5 * GST_MSECOND, NULL);
  last = push_undeliverable (&f, 6, 9, WAIT_US, "wrong password");
  g_assert_nonnull (strstr (last, "refused"));
  g_free (last);
  fixture_teardown (&f);

  subscriber_free (s);
  broker_free (b);
  g_unlink (passwd);
  g_free (passwd);
  g_free (extra);
  g_free (url);
}

static gboolean
run_quietly (const gchar * const *argv, const gchar * dir)
{
  gint status = 1;

  return g_spawn_sync (dir, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH |
      G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL, &status,
      NULL) && g_spawn_check_wait_status (status, NULL);
}

/* mqtts:// to a broker with a certificate of a test CA (made here with openssl, for
 * 127.0.0.1): delivered with tls-ca-file naming the CA; refused (TLS error, given up) with
 * another CA. Then a broker that requires a client certificate of that CA: delivered with
 * tls-cert-file and tls-key-file, refused without them. (Not the system's CAs: loading them
 * all takes OpenSSL seconds under ASan.) */
/* Makes in a new temporary directory (returned) with openssl: a test CA (ca.pem, ca.key),
 * another CA (other.pem), a server certificate of the CA for 127.0.0.1 (server.pem,
 * server.key) and a client certificate of the CA (client.pem, client.key). NULL (the test
 * skipped) without openssl. */
static gchar *
make_certificates (void)
{
  const gchar *ca_args[] = { "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
    "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=imagebind test CA",
    NULL
  };
  const gchar *other_args[] = { "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
    "-keyout", "other.key", "-out", "other.pem", "-days", "2", "-subj", "/CN=another CA",
    NULL
  };
  const gchar *csr_args[] = { "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout",
    "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", NULL
  };
  const gchar *sign_args[] = { "openssl", "x509", "-req", "-in", "server.csr", "-CA",
    "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2",
    "-extfile", "ext", NULL
  };
  const gchar *client_csr_args[] = { "openssl", "req", "-newkey", "rsa:2048", "-nodes",
    "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=camera", NULL
  };
  const gchar *client_sign_args[] = { "openssl", "x509", "-req", "-in", "client.csr", "-CA",
    "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.pem", "-days", "2",
    "-extfile", "client-ext", NULL
  };
  gchar *dir, *ext;

  if (!have_program ("openssl")) {
    g_test_skip ("openssl is not installed: no test certificates");
    return NULL;
  }
  dir = g_dir_make_tmp ("publish-tls-XXXXXX", NULL);
  ext = g_build_filename (dir, "ext", NULL);
  g_assert_true (g_file_set_contents (ext, "subjectAltName=IP:127.0.0.1\n", -1, NULL));
  g_free (ext);
  /* the client certificate: X.509 v3, marked for client authentication */
  ext = g_build_filename (dir, "client-ext", NULL);
  g_assert_true (g_file_set_contents (ext, "extendedKeyUsage=clientAuth\n", -1, NULL));
  g_assert_true (run_quietly (ca_args, dir));
  g_assert_true (run_quietly (other_args, dir));
  g_assert_true (run_quietly (csr_args, dir));
  g_assert_true (run_quietly (sign_args, dir));
  g_assert_true (run_quietly (client_csr_args, dir));
  g_assert_true (run_quietly (client_sign_args, dir));
  g_free (ext);
  return dir;
}

static void
test_mqtt_tls (void)
{
  gchar *client_cert, *client_key, *extra_client;
  const gchar *more_client[7] = { "--cafile", NULL, "--cert", NULL, "--key", NULL, NULL };
  gchar *dir, *ca, *other, *extra, *url, *last;
  const gchar *more[3] = { "--cafile", NULL, NULL };
  Broker *b;
  Subscriber *s;
  Fixture f;

  if (!mqtt_available () || !(dir = make_certificates ()))
    return;
  ca = g_build_filename (dir, "ca.pem", NULL);
  client_cert = g_build_filename (dir, "client.pem", NULL);
  client_key = g_build_filename (dir, "client.key", NULL);
  other = g_build_filename (dir, "other.pem", NULL);
  extra = g_strdup_printf ("allow_anonymous true\ncafile %s\ncertfile %s/server.pem\n"
      "keyfile %s/server.key", ca, dir, dir);
  b = broker_new (extra);
  more[1] = ca;
  s = subscriber_new (b, "imagebind/tls", more);
  url = g_strdup_printf ("mqtts://127.0.0.1:%u/imagebind/tls", b->port);

  fixture_setup (&f, url, "batch-size", 4, "tls-ca-file", ca, NULL);
  push_range (f.h, 0, 10);
  assert_stats (end_stream (&f), 10, 0, 0, 0);
  assert_received (s, 0, 10);
  fixture_teardown (&f);

  fixture_setup (&f, url, "batch-size", 4, "max-retries", 0, "tls-ca-file", other, NULL);
  last = push_undeliverable (&f, 10, 14, WAIT_US, "with another CA");
  g_free (last);
  fixture_teardown (&f);
  subscriber_free (s);
  broker_free (b);

  /* a broker that wants a client certificate of the CA */
  extra_client = g_strdup_printf ("%s\nrequire_certificate true", extra);
  b = broker_new (extra_client);
  more_client[1] = ca;
  more_client[3] = client_cert;
  more_client[5] = client_key;
  s = subscriber_new (b, "imagebind/tls-client", more_client);
  g_free (url);
  url = g_strdup_printf ("mqtts://127.0.0.1:%u/imagebind/tls-client", b->port);

  fixture_setup (&f, url, "batch-size", 4, "tls-ca-file", ca, "tls-cert-file", client_cert,
      "tls-key-file", client_key, NULL);
  push_range (f.h, 0, 6);
  assert_stats (end_stream (&f), 6, 0, 0, 0);
  assert_received (s, 0, 6);
  fixture_teardown (&f);

  fixture_setup (&f, url, "batch-size", 4, "max-retries", 0, "tls-ca-file", ca, NULL);
  last = push_undeliverable (&f, 6, 10, WAIT_US, "without a client certificate");
  g_free (last);
  fixture_teardown (&f);
  /* nothing of the refused client reached the topic */
  assert_received (s, 0, 6);

  subscriber_free (s);
  broker_free (b);
  g_free (client_cert);
  g_free (client_key);
  g_free (extra_client);
  remove_dir (dir);
  g_free (dir);
  g_free (ca);
  g_free (other);
  g_free (extra);
  g_free (url);
}

/* Both ends of a TLS handshake in this process: under ASan (full stacks at each of GnuTLS's
 * many allocations) on a loaded machine one takes up to ~10 s. Limits that never bind
 * otherwise (the refusals are immediate). */
#define TLS_SLOW "request-timeout", (guint64) 60 * GST_SECOND, "eos-timeout", \
    (guint64) 120 * GST_SECOND

/* https:// to a server with a certificate of a test CA: delivered with tls-ca-file naming
 * the CA, refused (a TLS error, given up) with another CA; a server that requires a client
 * certificate of the CA: delivered with tls-cert-file and tls-key-file, refused without. */
static void
test_https (void)
{
  gchar *dir, *ca, *other, *server_cert, *server_key, *client_cert, *client_key, *url, *last;
  GTlsCertificate *cert;
  GTlsDatabase *client_ca;
  GError *err = NULL;
  Server *srv;
  Fixture f;

  if (!(dir = make_certificates ()))
    return;
  ca = g_build_filename (dir, "ca.pem", NULL);
  other = g_build_filename (dir, "other.pem", NULL);
  server_cert = g_build_filename (dir, "server.pem", NULL);
  server_key = g_build_filename (dir, "server.key", NULL);
  client_cert = g_build_filename (dir, "client.pem", NULL);
  client_key = g_build_filename (dir, "client.key", NULL);
  cert = g_tls_certificate_new_from_files (server_cert, server_key, &err);
  g_assert_no_error (err);

  srv = server_new_full (cert, NULL);
  url = server_url (srv, "/hook");
  fixture_setup (&f, url, "batch-size", 3, "tls-ca-file", ca, TLS_SLOW, NULL);
  push_range (f.h, 0, 6);
  assert_stats (end_stream (&f), 6, 0, 0, 0);
  g_assert_cmpuint (server_n_requests (srv), ==, 2);
  fixture_teardown (&f);

  fixture_setup (&f, url, "batch-size", 3, "max-retries", 0, "tls-ca-file", other, TLS_SLOW,
      NULL);
  last = push_undeliverable (&f, 6, 9, 120 * G_USEC_PER_SEC, "with another CA");
  g_free (last);
  fixture_teardown (&f);
  g_assert_cmpuint (server_n_requests (srv), ==, 2);
  server_free (srv);
  g_free (url);

  client_ca = g_tls_file_database_new (ca, &err);
  g_assert_no_error (err);
  srv = server_new_full (cert, client_ca);
  url = server_url (srv, "/hook");
  fixture_setup (&f, url, "batch-size", 3, "tls-ca-file", ca, "tls-cert-file", client_cert,
      "tls-key-file", client_key, TLS_SLOW, NULL);
  push_range (f.h, 0, 3);
  assert_stats (end_stream (&f), 3, 0, 0, 0);
  g_assert_cmpuint (server_n_requests (srv), ==, 1);
  fixture_teardown (&f);

  fixture_setup (&f, url, "batch-size", 3, "max-retries", 0, "tls-ca-file", ca, TLS_SLOW,
      NULL);
  last = push_undeliverable (&f, 3, 6, 120 * G_USEC_PER_SEC, "without a client certificate");
  g_free (last);
  fixture_teardown (&f);
  g_assert_cmpuint (server_n_requests (srv), ==, 1);
  server_free (srv);

  g_object_unref (client_ca);
  g_object_unref (cert);
  remove_dir (dir);
  g_free (dir);
  g_free (ca);
  g_free (other);
  g_free (server_cert);
  g_free (server_key);
  g_free (client_cert);
  g_free (client_key);
  g_free (url);
  /* the handshakes ran in GLib's thread pool: its idle threads are ended now, not while
   * LeakSanitizer's check at exit stops the world (its tracer crashed on them) */
  g_thread_pool_set_max_unused_threads (0);
  g_thread_pool_stop_unused_threads ();
  g_usleep (G_USEC_PER_SEC);
}

int
main (int argc, char **argv)
{
  g_setenv ("GST_REGISTRY_FORK", "no", TRUE);
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/publish/normal", test_normal);
  g_test_add_func ("/publish/qdrant", test_qdrant);
  g_test_add_func ("/publish/slow", test_slow);
  g_test_add_func ("/publish/down-then-up", test_down_then_up);
  g_test_add_func ("/publish/errors", test_errors);
  g_test_add_func ("/publish/eos-timeout", test_eos_timeout);
  g_test_add_func ("/publish/stop-while-sending", test_stop_while_sending);
  g_test_add_func ("/publish/file", test_file);
  g_test_add_func ("/publish/non-finite", test_non_finite);
  g_test_add_func ("/publish/no-location", test_no_location);
  g_test_add_func ("/publish/bad-location", test_bad_location);
  g_test_add_func ("/publish/headers", test_headers);
  g_test_add_func ("/publish/trickle", test_trickle);
  g_test_add_func ("/publish/huge-body", test_huge_body);
  g_test_add_func ("/publish/mqtt", test_mqtt);
  g_test_add_func ("/publish/backoff", test_backoff);
  g_test_add_func ("/publish/mqtt-broker-restart", test_mqtt_broker_restart);
  g_test_add_func ("/publish/mqtt-broker-killed-in-flight",
      test_mqtt_broker_killed_in_flight);
  g_test_add_func ("/publish/mqtt-auth", test_mqtt_auth);
  g_test_add_func ("/publish/mqtt-tls", test_mqtt_tls);
  g_test_add_func ("/publish/https", test_https);
  return g_test_run ();
}
