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
#include <string.h>

#include "gstimagebindmeta.h"
#include "gstimagebindmatchmeta.h"

#define WAIT_US (10 * G_USEC_PER_SEC)

/* ---- the server ---- */

typedef struct {
  gchar *method, *path, *content_type, *body;
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
} Server;

static void
request_free (Request * r)
{
  g_free (r->method);
  g_free (r->path);
  g_free (r->content_type);
  g_free (r->body);
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

static gpointer
server_main (gpointer data)
{
  Server *srv = data;
  GError *err = NULL;
  GSList *uris;

  g_main_context_push_thread_default (srv->ctx);
  srv->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (srv->server, NULL, handler, srv, NULL);
  soup_server_listen_local (srv->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &err);
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

static Server *
server_new (void)
{
  Server *srv = g_new0 (Server, 1);

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
  return g_strdup_printf ("http://127.0.0.1:%u%s", srv->port, path);
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
wait_counter (GstElement * e, const gchar * name, guint64 value)
{
  gint64 end = g_get_monotonic_time () + WAIT_US;

  while (get_u64 (e, name) < value && g_get_monotonic_time () < end)
    g_usleep (5000);
  g_assert_cmpuint (get_u64 (e, name), ==, value);
}

/* The stats message posted at EOS (the last one with eos=TRUE), as a copy. */
static GstStructure *
eos_stats (GstBus * bus)
{
  GstMessage *msg;
  GstStructure *s = NULL;

  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT))) {
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
  g_assert_true (gst_harness_push_event (f.h, gst_event_new_eos ()));
  assert_stats (eos_stats (f.bus), 200, 0, 0, 0);
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
  g_assert_true (gst_harness_push_event (f.h, gst_event_new_eos ()));
  assert_stats (eos_stats (f.bus), 100, 0, 0, 0);
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
  g_assert_true (gst_harness_push_event (f.h, gst_event_new_eos ()));
  assert_stats (eos_stats (f.bus), 6, 3, 0, 0);
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
  g_assert_true (gst_harness_push_event (f.h, gst_event_new_eos ()));
  assert_stats (eos_stats (f.bus), 0, 2, 0, 0);
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
  /* nothing delivered, nothing given up: the 3 records are still queued (being retried) */
  assert_stats (eos_stats (f.bus), 0, 0, 0, 3);
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

/* Non-finite numbers (a broken model or input) still give valid JSON: null scores, 0 in the
 * vector, the finite part at unit length. */
static void
test_non_finite (void)
{
  gchar *dir = g_dir_make_tmp ("publish-XXXXXX", NULL);
  gchar *path = g_build_filename (dir, "out.jsonl", NULL);
  gchar *uri = g_filename_to_uri (path, NULL, NULL);
  gchar *contents = NULL, **lines;
  GstBuffer *buf = gst_buffer_new ();
  gfloat v[3] = { 3.0f, NAN, 4.0f };
  GstImageBindMatchResult r = { 0, (gchar *) "a dog", NAN, INFINITY, FALSE };
  JsonNode *node;
  JsonArray *a;
  Fixture f;

  gst_buffer_add_imagebind_embedding_meta (buf, GST_IMAGE_BIND_MODALITY_AUDIO, v, 3, NAN, "m");
  gst_buffer_add_imagebind_match_meta (buf, GST_IMAGE_BIND_MODALITY_AUDIO,
      GST_IMAGE_BIND_MATCH_MODE_CLASSIFY, &r, 1);
  fixture_setup (&f, uri, NULL);
  g_assert_cmpint (gst_harness_push (f.h, buf), ==, GST_FLOW_OK);
  gst_buffer_unref (gst_harness_pull (f.h));
  g_assert_true (gst_harness_push_event (f.h, gst_event_new_eos ()));
  assert_stats (eos_stats (f.bus), 2, 0, 0, 0);
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  lines = g_strsplit (contents, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 3);
  node = json_from_string (lines[0], NULL);
  g_assert_nonnull (node);
  g_assert_true (json_object_get_null_member (json_node_get_object (node), "logit_scale"));
  g_assert_true (json_object_get_null_member (json_node_get_object (node), "pts"));
  a = json_object_get_array_member (json_node_get_object (node), "vector");
  g_assert_cmpfloat_with_epsilon (json_array_get_double_element (a, 0), 0.6, 1e-6);
  g_assert_cmpfloat_with_epsilon (json_array_get_double_element (a, 1), 0.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (json_array_get_double_element (a, 2), 0.8, 1e-6);
  json_node_unref (node);
  node = json_from_string (lines[1], NULL);
  g_assert_nonnull (node);
  a = json_object_get_array_member (json_node_get_object (node), "scores");
  g_assert_true (json_array_get_null_element (a, 0));
  g_assert_true (json_object_get_null_member (json_node_get_object (node), "top_probability"));
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

/* A location the element cannot use is an error at start, not a crash. */
static void
test_bad_location (void)
{
  const gchar *bad[] = { "ftp://127.0.0.1/x", "file:///nonexistent-dir-publish/x.jsonl",
    "file:relative" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    GstElement *e = gst_element_factory_make ("imagebindpublish", NULL);
    GstBus *bus = gst_bus_new ();
    GstMessage *msg;

    g_object_set (e, "location", bad[i], NULL);
    gst_element_set_bus (e, bus);
    g_assert_cmpint (gst_element_set_state (e, GST_STATE_PAUSED), ==, GST_STATE_CHANGE_FAILURE);
    msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    g_assert_nonnull (msg);
    gst_message_unref (msg);
    gst_element_set_state (e, GST_STATE_NULL);
    gst_element_set_bus (e, NULL);
    gst_bus_set_flushing (bus, TRUE);
    gst_object_unref (bus);
    gst_object_unref (e);
  }
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
  g_test_add_func ("/publish/bad-location", test_bad_location);
  return g_test_run ();
}
