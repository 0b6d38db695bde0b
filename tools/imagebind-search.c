/* imagebind-search: finds the index entries (imagebind-index, imagebindindexsink) closest to a
 * query: a text, an image, a sound, or a weighted sum of them (the paper's composition of
 * modalities: the sum of the L2-normalised embeddings).
 *
 *   imagebind-search -x clips.ibx --text "a dog barking"
 *   imagebind-search -x clips.ibx --image beach.jpg --text "0.5=at night" -k 5
 *   imagebind-search -x clips.ibx --audio bark.wav --modality vision
 *   imagebind-search --bench 1000000 --dim 1024           (search time over random vectors)
 *
 * The search is exact: the cosine similarity of the query with every entry, from one BLAS
 * matrix-vector product over the mapped index (imagebind_index_search()). */
#include "imagebind.h"
#include "imagebind-index.h"
#include "imagebind-tokenizer.h"
#include "gstimagebindmediatensor.h"
#include "tool-common.h"

#ifdef HAVE_JSON_GLIB
#include <json-glib/json-glib.h>
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  ImageBindModality modality;
  double weight;
  const char *value;        /* the text, or the file name */
} QueryTerm;

/* "W=VALUE" gives a weight W (a number, may be negative); anything else weighs 1. */
static void
parse_term (const char *arg, ImageBindModality modality, GArray *terms)
{
  QueryTerm t = { modality, 1.0, arg };
  char *end = NULL;
  double w = g_ascii_strtod (arg, &end);

  if (end && end != arg && *end == '=' && isfinite (w)) {
    t.weight = w;
    t.value = end + 1;
  }
  g_array_append_val (terms, t);
}

/* The embedding of one term, as the model outputs it. */
static gboolean
embed_term (ImageBindContext *ctx, const ImageBindModel *model, const QueryTerm *t, float *out,
    GError **error)
{
  ImageBindInputGeometry geometry;
  GstImageBindMediaOptions options = { IMAGEBIND_DEPTH_MILLIMETRES };

  imagebind_model_input_geometry (model, &geometry);
  if (t->modality == IMAGEBIND_MODALITY_TEXT) {
    const ImageBindTokenizer *tok = imagebind_model_get_tokenizer (model, error);
    g_autofree gint32 *ids = g_new (gint32, geometry.context_length);
    return tok && imagebind_tokenize (tok, t->value, -1, ids, geometry.context_length, error) &&
        imagebind_embed_text (ctx, ids, 1, out, error);
  }
  return gst_image_bind_media_embed (ctx, model, t->modality, &options, t->value, out, error);
}

/* sum_i w_i e_i / |e_i| */
static gboolean
compose_query (ImageBindModel *model, const char *model_path, GArray *terms, int n_threads,
    float **query, guint *dim, char **model_id, GError **error)
{
  ImageBindContextParams params = imagebind_context_default_params ();
  ImageBindContext *ctx;
  g_autofree float *e = NULL;
  g_autofree double *sum = NULL;
  gboolean ok = TRUE;

  *dim = imagebind_model_out_dim (model);
  *model_id = g_strdup_printf ("%s:%s", imagebind_model_name (model),
      strrchr (model_path, '/') ? strrchr (model_path, '/') + 1 : model_path);
  params.n_threads = n_threads;
  ctx = imagebind_context_new (model, &params);
  e = g_new (float, *dim);
  sum = g_new0 (double, *dim);
  for (guint i = 0; ok && i < terms->len; i++) {
    const QueryTerm *t = &g_array_index (terms, QueryTerm, i);
    double norm = 0;
    if (!imagebind_model_require_modality (model, t->modality, model_path,
            "imagebind-search", error)) {
      ok = FALSE;
      break;
    }
    ok = embed_term (ctx, model, t, e, error);
    if (!ok) {
      g_prefix_error (error, "%s query \"%s\": ", imagebind_modality_name (t->modality), t->value);
      break;
    }
    for (guint d = 0; d < *dim; d++)
      norm += (double) e[d] * e[d];
    norm = sqrt (norm);
    for (guint d = 0; d < *dim && norm > 0; d++)
      sum[d] += t->weight * e[d] / norm;
  }
  imagebind_context_free (ctx);
  if (!ok)
    return FALSE;
  *query = g_new (float, *dim);
  for (guint d = 0; d < *dim; d++)
    (*query)[d] = (float) sum[d];
  return TRUE;
}

static char *
format_time (guint64 t)
{
  if (t == IMAGEBIND_INDEX_TIME_NONE)
    return g_strdup ("-");
  return g_strdup_printf ("%u:%02u:%02u.%03u", (guint) (t / (3600 * G_GUINT64_CONSTANT (1000000000))),
      (guint) (t / (60 * G_GUINT64_CONSTANT (1000000000)) % 60),
      (guint) (t / G_GUINT64_CONSTANT (1000000000) % 60), (guint) (t / 1000000 % 1000));
}

#ifdef HAVE_JSON_GLIB
/* --format json: {"index", "model", "query": [{modality, weight, value}], "results":
 * [{rank, score, modality, pts, duration (ns, null when unknown), time, source, model}]} */
static void
print_json (const char *index_path, const char *model_id, GArray *terms, ImageBindIndex *idx,
    const ImageBindIndexHit *hits, guint n)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "index");
  json_builder_add_string_value (b, index_path);
  json_builder_set_member_name (b, "model");
  json_builder_add_string_value (b, model_id);
  json_builder_set_member_name (b, "query");
  json_builder_begin_array (b);
  for (guint i = 0; i < terms->len; i++) {
    const QueryTerm *t = &g_array_index (terms, QueryTerm, i);
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "modality");
    json_builder_add_string_value (b, imagebind_modality_name (t->modality));
    json_builder_set_member_name (b, "weight");
    json_builder_add_double_value (b, t->weight);
    json_builder_set_member_name (b, "value");
    json_builder_add_string_value (b, t->value);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "results");
  json_builder_begin_array (b);
  for (guint i = 0; i < n; i++) {
    ImageBindIndexEntry e;
    g_autofree char *t = NULL;
    imagebind_index_get_entry (idx, hits[i].entry, &e);
    t = format_time (e.pts);
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "rank");
    json_builder_add_int_value (b, i + 1);
    json_builder_set_member_name (b, "score");
    json_builder_add_double_value (b, hits[i].score);
    json_builder_set_member_name (b, "modality");
    json_builder_add_string_value (b, imagebind_modality_name (e.modality));
    json_builder_set_member_name (b, "pts");
    if (e.pts == IMAGEBIND_INDEX_TIME_NONE)
      json_builder_add_null_value (b);
    else
      json_builder_add_int_value (b, (gint64) e.pts);
    json_builder_set_member_name (b, "duration");
    if (e.duration == IMAGEBIND_INDEX_TIME_NONE)
      json_builder_add_null_value (b);
    else
      json_builder_add_int_value (b, (gint64) e.duration);
    json_builder_set_member_name (b, "time");
    json_builder_add_string_value (b, t);
    json_builder_set_member_name (b, "source");
    json_builder_add_string_value (b, e.source);
    json_builder_set_member_name (b, "model");
    json_builder_add_string_value (b, e.model_id);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  text = json_generator_to_data (gen, NULL);
  g_print ("%s\n", text);
}
#endif

static int
search (const char *index_path, const char *model_option, GArray *terms, guint k, guint mask,
    int n_threads, gboolean json)
{
  GError *error = NULL;
  ImageBindIndex *idx = imagebind_index_open (index_path, &error);
  ImageBindModel *model = NULL;
  g_autofree float *query = NULL;
  g_autofree char *model_id = NULL, *model_path = NULL;
  g_autofree ImageBindIndexHit *hits = NULL;
  guint dim = 0, n;
  double norm = 0;

  if (idx)
    model = ib_tool_load_model (model_option, &model_path, &error);
  if (!idx || !model || !compose_query (model, model_path, terms, n_threads, &query, &dim,
          &model_id, &error)) {
    g_printerr ("imagebind-search: %s\n", error->message);
    g_error_free (error);
    imagebind_index_close (idx);
    if (model)
      imagebind_model_unref (model);
    return 1;
  }
  imagebind_model_unref (model);
  if (dim != imagebind_index_dim (idx)) {
    g_printerr ("imagebind-search: %s holds embeddings of width %u, but the query model %s "
        "gives width %u: search with the model the index was made with (--model)\n",
        index_path, imagebind_index_dim (idx), model_path, dim);
    imagebind_index_close (idx);
    return 1;
  }
  for (guint d = 0; d < dim; d++)
    norm += (double) query[d] * query[d];
  if (!(norm > 0)) {
    g_printerr ("imagebind-search: the weighted sum of the query embeddings is zero\n");
    imagebind_index_close (idx);
    return 1;
  }
  hits = g_new (ImageBindIndexHit, MAX (k, 1));
  n = imagebind_index_search (idx, query, k, mask, hits, n_threads);
  if (n > 0) {
    ImageBindIndexEntry e;
    imagebind_index_get_entry (idx, hits[0].entry, &e);
    if (*e.model_id && !g_str_equal (e.model_id, model_id))
      g_printerr ("imagebind-search: note: entries were made with model %s, the query with %s\n",
          e.model_id, model_id);
  }
#ifdef HAVE_JSON_GLIB
  if (json) {
    print_json (index_path, model_id, terms, idx, hits, n);
    imagebind_index_close (idx);
    return 0;
  }
#endif
  g_print ("%4s  %7s  %-8s  %-12s  %-12s  %s\n", "rank", "score", "modality", "time",
      "duration", "source");
  for (guint i = 0; i < n; i++) {
    ImageBindIndexEntry e;
    g_autofree char *t = NULL, *dur = NULL;
    imagebind_index_get_entry (idx, hits[i].entry, &e);
    t = format_time (e.pts);
    dur = format_time (e.duration);
    g_print ("%4u  %7.4f  %-8s  %-12s  %-12s  %s\n", i + 1, hits[i].score,
        imagebind_modality_name (e.modality), t, dur, *e.source ? e.source : "(unknown)");
  }
  if (n == 0)
    g_print ("(no entries%s)\n", mask ? " of that modality" : "");
  imagebind_index_close (idx);
  return 0;
}

/* ---- --bench: search time over random unit vectors held in memory ---- */

static guint64
xorshift (guint64 *s)
{
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static int
compare_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static int
bench (gsize n, guint dim, guint k, guint repeats, int n_threads)
{
  guint64 seed = 0x9E3779B97F4A7C15ull;
  float *rows = g_try_new (float, n * dim);
  g_autofree float *query = g_new (float, dim), *scores = g_try_new (float, n);
  g_autofree ImageBindIndexHit *hits = g_new (ImageBindIndexHit, MAX (k, 1));
  g_autofree double *t_scores = g_new (double, repeats), *t_total = g_new (double, repeats);

  if (!rows || !scores) {
    g_printerr ("imagebind-search: cannot allocate %" G_GSIZE_FORMAT " x %u floats\n", n, dim);
    g_free (rows);
    return 1;
  }
  for (gsize i = 0; i <= n; i++) {
    float *v = i < n ? rows + i * dim : query;
    double norm = 0;
    for (guint d = 0; d < dim; d++) {
      v[d] = (float) ((double) (xorshift (&seed) >> 11) / (double) (1ull << 53) - 0.5);
      norm += (double) v[d] * v[d];
    }
    for (guint d = 0; d < dim; d++)
      v[d] = (float) (v[d] / sqrt (norm));
  }
  /* one untimed run: page in the matrix, start the BLAS threads */
  imagebind_scores (rows, n, dim, dim, query, scores, n_threads);
  for (guint r = 0; r < repeats; r++) {
    gint64 t0 = g_get_monotonic_time (), t1;
    imagebind_scores (rows, n, dim, dim, query, scores, n_threads);
    t1 = g_get_monotonic_time ();
    imagebind_top_k (scores, n, k, NULL, NULL, hits);
    t_scores[r] = (t1 - t0) / 1000.0;
    t_total[r] = (g_get_monotonic_time () - t0) / 1000.0;
  }
  qsort (t_scores, repeats, sizeof (double), compare_double);
  qsort (t_total, repeats, sizeof (double), compare_double);
  g_print ("bench: %" G_GSIZE_FORMAT " vectors x %u (%.1f MB), top-%u, %d threads: "
      "search %.3f ms median (%.3f min), of which scores %.3f ms (%.2f GB/s)\n",
      n, dim, n * dim * 4.0 / 1e6, k, n_threads,
      t_total[repeats / 2], t_total[0], t_scores[repeats / 2],
      n * dim * 4.0 / 1e6 / t_scores[repeats / 2]);
  g_free (rows);
  return 0;
}

/* --bench-index: R searches of the mapped index with random unit queries */
static int
bench_index (const char *path, guint k, guint repeats, int n_threads)
{
  GError *error = NULL;
  ImageBindIndex *idx = imagebind_index_open (path, &error);
  guint64 seed = 0x2545F4914F6CDD1Dull;
  g_autofree double *t = g_new (double, repeats);
  g_autofree ImageBindIndexHit *hits = g_new (ImageBindIndexHit, MAX (k, 1));
  g_autofree float *query = NULL;
  gsize n;
  guint dim;

  if (!idx) {
    g_printerr ("imagebind-search: %s\n", error->message);
    g_error_free (error);
    return 1;
  }
  dim = imagebind_index_dim (idx);
  n = imagebind_index_n_entries (idx);
  query = g_new (float, dim);
  for (guint r = 0; r <= repeats; r++) {
    gint64 t0;
    for (guint d = 0; d < dim; d++)
      query[d] = (float) ((double) (xorshift (&seed) >> 11) / (double) (1ull << 53) - 0.5);
    t0 = g_get_monotonic_time ();
    imagebind_index_search (idx, query, k, 0, hits, n_threads);
    if (r > 0)    /* the first one pages the file in */
      t[r - 1] = (g_get_monotonic_time () - t0) / 1000.0;
  }
  qsort (t, repeats, sizeof (double), compare_double);
  g_print ("bench: %s: %" G_GSIZE_FORMAT " entries x %u, top-%u: search %.3f ms median "
      "(%.3f min)\n", path, n, dim, k, t[repeats / 2], t[0]);
  imagebind_index_close (idx);
  return 0;
}

static gboolean
parse_modalities (const char *list, guint *mask)
{
  g_auto (GStrv) names = g_strsplit (list, ",", -1);

  *mask = 0;
  for (guint i = 0; names[i]; i++) {
    ImageBindModality m;
    if (!imagebind_modality_from_name (g_strstrip (names[i]), &m))
      return FALSE;
    *mask |= 1u << m;
  }
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autofree char *index_path = NULL, *model = NULL, *modalities = NULL, *format = NULL;
  g_auto (GStrv) texts = NULL, images = NULL, audios = NULL;
  int k = 10, n_threads = 0, dim = 0, repeats = 5;
  gint64 bench_n = 0;
  gboolean bench_idx = FALSE;
  guint mask = 0;
  GOptionEntry entries[] = {
    { "index", 'x', 0, G_OPTION_ARG_FILENAME, &index_path, "Index file to search", "FILE" },
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model,
      "Model file for the query (default: $IMAGEBIND_MODEL, else the shipped default model)", "FILE" },
    { "text", 'T', 0, G_OPTION_ARG_FILENAME_ARRAY, &texts, "Query text (repeatable)", "[W=]TEXT" },
    { "image", 'I', 0, G_OPTION_ARG_FILENAME_ARRAY, &images,
      "Query image, or a video's first frame (repeatable)", "[W=]FILE" },
    { "audio", 'A', 0, G_OPTION_ARG_FILENAME_ARRAY, &audios, "Query sound (repeatable)", "[W=]FILE" },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format,
      "text (a table, the default) or json (on stdout)", "FORMAT" },
    { "top", 'k', 0, G_OPTION_ARG_INT, &k, "Number of matches to print (default 10)", "K" },
    { "modality", 'M', 0, G_OPTION_ARG_STRING, &modalities,
      "Only entries of these modalities, e.g. vision,audio", "LIST" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "Threads (default: all cores)", "N" },
    { "bench", 0, 0, G_OPTION_ARG_INT64, &bench_n,
      "Measure the search over N random unit vectors in memory (no index, no model needed "
      "with --dim)", "N" },
    { "bench-index", 0, 0, G_OPTION_ARG_NONE, &bench_idx,
      "Measure R searches of --index with random queries", NULL },
    { "dim", 0, 0, G_OPTION_ARG_INT, &dim, "--bench: vector width (default: the model's)", "D" },
    { "repeat", 0, 0, G_OPTION_ARG_INT, &repeats, "--bench: timed runs (default 5)", "R" },
    { NULL }
  };
  g_autoptr (GOptionContext) octx = g_option_context_new ("- search an ImageBind index");
  g_autoptr (GArray) terms = g_array_new (FALSE, FALSE, sizeof (QueryTerm));
  GError *error = NULL;

  g_option_context_add_main_entries (octx, entries, NULL);
  g_option_context_set_description (octx,
      "The query is the sum of the L2-normalised embeddings of all --text, --image and --audio\n"
      "terms, each multiplied by its weight W (default 1; may be negative), as the ImageBind\n"
      "paper composes modalities: e.g. --image beach.jpg --text \"0.5=at night\".\n"
      "Scores are cosine similarities in [-1, 1].\n");
  if (!g_option_context_parse (octx, &argc, &argv, &error)) {
    g_printerr ("imagebind-search: %s\n", error->message);
    g_error_free (error);
    return 2;
  }
  if (k < 1 || n_threads < 0 || repeats < 1 || dim < 0 || bench_n < 0) {
    g_printerr ("imagebind-search: --top, --repeat must be >= 1; --threads, --dim, --bench >= 0\n");
    return 2;
  }
  if (modalities && !parse_modalities (modalities, &mask)) {
    g_printerr ("imagebind-search: --modality takes a comma-separated list of vision, text, "
        "audio, depth, thermal, imu\n");
    return 2;
  }
  if (format && !g_str_equal (format, "text") && !g_str_equal (format, "json")) {
    g_printerr ("imagebind-search: --format is text or json\n");
    return 2;
  }
#ifndef HAVE_JSON_GLIB
  if (format && g_str_equal (format, "json")) {
    g_printerr ("imagebind-search: --format json is not available: this imagebind-search was "
        "built without json-glib; use --format text\n");
    return 2;
  }
#endif
  if (bench_idx && index_path)
    return bench_index (index_path, (guint) k, (guint) repeats, n_threads);
  if (bench_n > 0) {
    if (dim == 0) {
      ImageBindModel *m = ib_tool_load_model (model, NULL, &error);
      if (!m) {
        g_printerr ("imagebind-search: --bench without --dim needs a model: %s\n", error->message);
        g_error_free (error);
        return 1;
      }
      dim = imagebind_model_out_dim (m);
      imagebind_model_unref (m);
    }
    return bench ((gsize) bench_n, (guint) dim, (guint) k, (guint) repeats, n_threads);
  }
  for (guint i = 0; texts && texts[i]; i++)
    parse_term (texts[i], IMAGEBIND_MODALITY_TEXT, terms);
  for (guint i = 0; images && images[i]; i++)
    parse_term (images[i], IMAGEBIND_MODALITY_VISION, terms);
  for (guint i = 0; audios && audios[i]; i++)
    parse_term (audios[i], IMAGEBIND_MODALITY_AUDIO, terms);
  if (!index_path || terms->len == 0) {
    g_printerr ("imagebind-search: need --index FILE and a query (--text, --image or --audio); "
        "see --help\n");
    return 2;
  }
  return search (index_path, model, terms, (guint) k, mask, n_threads,
      format && g_str_equal (format, "json"));
}
