#include "common.h"

#include <imagebind-tokenizer.h>
#include <math.h>
#include <sys/wait.h>

const char *
ib_test_conformance_dir (void)
{
  static char *dir = NULL;
  if (!dir) {
    const char *env = g_getenv ("IMAGEBIND_CONFORMANCE_DIR");
    if (!env || !*env)
      env = g_getenv ("IMAGEBIND_CONFORMANCE_DIR_DEFAULT");
    if (!env || !*env)
      env = "../shared/conformance";
    dir = g_strdup (env);
  }
  return g_file_test (dir, G_FILE_TEST_IS_DIR) ? dir : NULL;
}

gboolean
ib_test_need_conformance (void)
{
  if (ib_test_conformance_dir ())
    return TRUE;
  g_test_skip ("conformance fixtures not found: set IMAGEBIND_CONFORMANCE_DIR to shared/conformance");
  return FALSE;
}

char *
ib_test_fixture (const char *relative)
{
  return g_build_filename (ib_test_conformance_dir (), relative, NULL);
}

IbNpy *
ib_test_load_npy (const char *relative)
{
  g_autofree char *path = ib_test_fixture (relative);
  GError *error = NULL;
  IbNpy *npy = ib_npy_load (path, &error);
  g_assert_no_error (error);
  return npy;
}

double
ib_test_rel_error (const float *got, const float *ref, gsize n)
{
  double max_err = 0, max_ref = 0;
  for (gsize i = 0; i < n; i++) {
    double e = fabs ((double) got[i] - (double) ref[i]);
    if (!(e <= max_err))   /* NaN counts as infinite error */
      max_err = isnan (e) ? INFINITY : e;
    if (fabs (ref[i]) > max_ref)
      max_ref = fabs (ref[i]);
  }
  return max_ref > 0 ? max_err / max_ref : max_err;
}

double
ib_test_assert_close (const char *what, const float *got, gsize n_got, const IbNpy *golden,
    double tol)
{
  g_assert_cmpint (golden->dtype, ==, IB_NPY_F32);
  if (n_got != golden->n_elements)
    g_error ("%s: %" G_GSIZE_FORMAT " values, the golden has %" G_GSIZE_FORMAT, what, n_got,
        golden->n_elements);
  return ib_test_assert_close_data (what, got, golden->data, n_got, tol);
}

double
ib_test_assert_close_data (const char *what, const float *got, const float *ref, gsize n,
    double tol)
{
  double rel = ib_test_rel_error (got, ref, n);

  g_test_message ("%s: max|got - golden| / max|golden| = %.3g", what, rel);
  if (!(rel <= tol))
    g_error ("%s: relative error %.3g exceeds %.1g", what, rel, tol);
  return rel;
}

GHashTable *
ib_test_capture_new (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_array_unref);
}

void
ib_test_capture_stage (const char *stage, const float *data, guint n, guint rows, guint cols,
    gpointer table)
{
  GArray *a = g_hash_table_lookup (table, stage);
  /* Batches may come in several passes: append. */
  if (!a) {
    a = g_array_new (FALSE, FALSE, sizeof (float));
    g_hash_table_insert (table, g_strdup (stage), a);
  }
  g_array_append_vals (a, data, (gsize) n * rows * cols);
}

int
ib_test_run_embed_tool (const char *tool, const char *model, const char *const *args,
    char **err_out)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) envp = NULL;
  g_autofree char *registry = NULL;
  int status = -1;

  g_ptr_array_add (argv, (gpointer) tool);
  g_ptr_array_add (argv, (gpointer) "--model");
  g_ptr_array_add (argv, (gpointer) model);
  g_ptr_array_add (argv, (gpointer) "--threads");
  g_ptr_array_add (argv, (gpointer) "1");
  for (guint i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  /* the tool decodes with the system's GStreamer plugins, which the test environment hides
   * from the plugin tests; give it its own registry */
  envp = g_environ_unsetenv (g_get_environ (), "GST_PLUGIN_SYSTEM_PATH_1_0");
  registry = g_build_filename (g_get_tmp_dir (), "ib-test-embed-media-registry.bin", NULL);
  envp = g_environ_setenv (envp, "GST_REGISTRY_1_0", registry, TRUE);
  g_spawn_sync (NULL, (char **) argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL, NULL, err_out,
      &status, &error);
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

void
ib_test_reference_scores (const float *e, const float *t, guint dim, guint n, double *cosine,
    double *prob)
{
  double en = 0, mx = -INFINITY, sum = 0;

  for (guint i = 0; i < dim; i++)
    en += (double) e[i] * e[i];
  for (guint j = 0; j < n; j++) {
    double dot = 0, tn = 0;

    for (guint i = 0; i < dim; i++) {
      dot += (double) e[i] * t[(gsize) j * dim + i];
      tn += (double) t[(gsize) j * dim + i] * t[(gsize) j * dim + i];
    }
    cosine[j] = dot / sqrt (en * tn);
    prob[j] = dot;
    mx = MAX (mx, dot);
  }
  for (guint j = 0; j < n; j++)
    sum += (prob[j] = exp (prob[j] - mx));
  for (guint j = 0; j < n; j++)
    prob[j] /= sum;
}

gboolean
ib_test_need_model (const char *path)
{
  if (path)
    return TRUE;
  g_test_skip ("no test model: tests/meson.build passes the tiny model when the conformance "
      "fixtures exist (or set $IMAGEBIND_TEST_MODEL)");
  return FALSE;
}

void
ib_test_gst_init (int *argc, char ***argv, const char *registry_name, const char *plugins_dir)
{
  g_autofree char *dir = g_path_get_dirname ((*argv)[0]);
  g_autofree char *registry = g_build_filename (dir, registry_name, NULL);

  g_setenv ("GST_REGISTRY_1_0", registry, TRUE);
#ifdef __SANITIZE_ADDRESS__
  g_setenv ("GST_REGISTRY_FORK", "no", TRUE);
#endif
  gst_init (argc, argv);
  if (plugins_dir && *plugins_dir)
    gst_registry_scan_path (gst_registry_get (), plugins_dir);
}

void
ib_test_set_prompts (GstElement *element, const char *const *prompts, guint n)
{
  GValue array = G_VALUE_INIT;

  g_value_init (&array, GST_TYPE_ARRAY);
  for (guint i = 0; i < n; i++) {
    GValue v = G_VALUE_INIT;

    g_value_init (&v, G_TYPE_STRING);
    g_value_set_string (&v, prompts[i]);
    gst_value_array_append_and_take_value (&array, &v);
  }
  g_object_set_property (G_OBJECT (element), "prompts", &array);
  g_value_unset (&array);
}

char *
ib_test_pop_error_text (GstBus *bus)
{
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  GError *err = NULL;
  char *debug = NULL, *text;

  g_assert_nonnull (msg);
  gst_message_parse_error (msg, &err, &debug);
  text = g_strdup_printf ("%s (%s)", err->message, debug ? debug : "");
  g_error_free (err);
  g_free (debug);
  gst_message_unref (msg);
  return text;
}

void
ib_test_run_to_eos (GstElement *pipeline, IbTestMessageFunc func, gpointer user_data)
{
  GstBus *bus = gst_element_get_bus (pipeline);

  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=,
      GST_STATE_CHANGE_FAILURE);
  for (gboolean done = FALSE; !done;) {
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
        GST_MESSAGE_ELEMENT | GST_MESSAGE_WARNING | GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    GError *error = NULL;

    g_assert_nonnull (msg);
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
      gst_message_parse_error (msg, &error, NULL);
      g_assert_no_error (error);
    } else if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS) {
      done = TRUE;
    } else if (func) {
      func (msg, user_data);
    }
    gst_message_unref (msg);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
}

void
ib_test_run_launch (const char *description, IbTestMessageFunc func, gpointer user_data)
{
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch (description, &error);

  g_assert_no_error (error);
  ib_test_run_to_eos (pipeline, func, user_data);
  gst_object_unref (pipeline);
}

ImageBindContext *
ib_test_open_model (const char *path, ImageBindModel **model)
{
  GError *err = NULL;
  ImageBindContextParams params = imagebind_context_default_params ();

  *model = imagebind_model_load (path, &err);
  g_assert_no_error (err);
  params.n_threads = 1;
  return imagebind_context_new (*model, &params);
}

float *
ib_test_text_embeddings (const char *model_path, const char *const *prompts, guint n, guint *dim)
{
  GError *err = NULL;
  ImageBindModel *model;
  ImageBindContext *ctx = ib_test_open_model (model_path, &model);
  ImageBindInputGeometry geo;
  const ImageBindTokenizer *tok;
  gint32 *ids;
  float *out;

  imagebind_model_input_geometry (model, &geo);
  *dim = imagebind_model_out_dim (model);
  tok = imagebind_model_get_tokenizer (model, &err);
  g_assert_no_error (err);
  ids = g_new0 (gint32, (gsize) n * geo.context_length);
  for (guint i = 0; i < n; i++) {
    imagebind_tokenize (tok, prompts[i], -1, ids + (gsize) i * geo.context_length,
        geo.context_length, &err);
    g_assert_no_error (err);
  }
  out = g_new (float, (gsize) n * *dim);
  imagebind_embed_text (ctx, ids, n, out, &err);
  g_assert_no_error (err);
  imagebind_context_free (ctx);
  imagebind_model_unref (model);
  g_free (ids);
  return out;
}
