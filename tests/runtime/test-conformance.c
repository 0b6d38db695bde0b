/* Conformance of the runtime with the official ImageBind code: the tiny model of
 * shared/conformance/tiny, converted to GGUF (argv[1] F32, argv[2] F16; argv[3] the imagebind-embed tool;
 * argv[4] q8: cosine >= 0.999 per embedding against F32), must reproduce every
 * intermediate and final tensor of the official forward within 1e-5 x max|golden| (the
 * README's tolerance, 6x its measured noise floor), with cosine >= 0.999999 per embedding.
 * Also: partial models, input checks, concurrent contexts, random models, FLOP counts. */
#include "common.h"
#include "gguf-builder.h"
#include "imagebind.h"
#include "imagebind-tokenizer.h"
#include "model-private.h"
#include "ops.h"
#include "q8.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#define TOLERANCE 1e-5
#define MIN_COSINE 0.999999
/* F16 files (the converter keeps the attention input projections in F32): measured worst
 * case 8.6e-4 (text, whose 2.5x-sharpened attention amplifies weight rounding), 3e-4..8e-4
 * for the other modalities; the bound is 1e-3. */
#define TOLERANCE_F16 1e-3

/* q8 files (models/GGUF.md): cosine per embedding against the F32 file, the bound. */
#define MIN_COSINE_Q8 0.999

static const char *tiny_path, *tiny_f16_path, *embed_tool_path, *tiny_q8_path;
static gsize max_chunk;   /* samples per pass in run_case (0: the library's choice) */

static const char *const stages[] = {
  "after_stem", "after_preprocessor", "after_ln_pre", "after_block0", "after_trunk",
  "after_head", "after_postprocessor",
};

typedef struct {
  const char *name;               /* fixture name */
  ImageBindModality modality;
  guint n_stages;                 /* intermediates the fixture has */
} Case;

static const Case cases[] = {
  { "vision", IMAGEBIND_MODALITY_VISION, 6 },
  { "vision_video", IMAGEBIND_MODALITY_VISION, 7 },
  { "text", IMAGEBIND_MODALITY_TEXT, 5 },
  { "audio", IMAGEBIND_MODALITY_AUDIO, 6 },
  { "depth", IMAGEBIND_MODALITY_DEPTH, 5 },
  { "thermal", IMAGEBIND_MODALITY_THERMAL, 5 },
  { "imu", IMAGEBIND_MODALITY_IMU, 5 },
};

/* ---- helpers ---- */

/* Whether the tiny GGUF is there; skips the test (saying why) when not. */
static gboolean
have_tiny (const char *path)
{
  if (!ib_test_need_conformance ())
    return FALSE;
  if (!path || !g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_test_skip ("tiny GGUF not built (needs the conformance fixtures and models/convert.py)");
    return FALSE;
  }
  return TRUE;
}

static ImageBindModel *
load_tiny (const char *path)
{
  GError *error = NULL;
  ImageBindModel *model;

  if (!have_tiny (path))
    return NULL;
  model = imagebind_model_load (path, &error);
  g_assert_no_error (error);
  return model;
}

/* Runs fixture @c's input through @model; the outputs are newly allocated (B x out_dim). */
static float *
run_case (ImageBindModel *model, const Case *c, int n_threads, GHashTable *cap, gsize *n_out)
{
  g_autofree char *input_name = g_strdup_printf ("tiny/inputs/%s.npy", c->name);
  g_autoptr (IbNpy) input = ib_test_load_npy (input_name);
  ImageBindContextParams params = imagebind_context_default_params ();
  ImageBindContext *ctx;
  GError *error = NULL;
  guint out_dim = imagebind_model_out_dim (model);
  float *out = g_new (float, input->shape[0] * out_dim);

  params.n_threads = n_threads;
  ctx = imagebind_context_new (model, &params);
  ib_context_set_max_chunk (ctx, max_chunk);
  if (cap)
    imagebind_context_set_trace (ctx, ib_test_capture_stage, cap);
  if (c->modality == IMAGEBIND_MODALITY_TEXT) {
    g_autofree gint32 *ids = g_new (gint32, input->n_elements);
    g_assert_cmpint (input->dtype, ==, IB_NPY_I64);
    for (gsize i = 0; i < input->n_elements; i++)
      ids[i] = (gint32) ((const gint64 *) input->data)[i];
    g_assert_true (imagebind_embed_text (ctx, ids, input->shape[0], out, &error));
  } else {
    g_assert_cmpint (input->dtype, ==, IB_NPY_F32);
    g_assert_true (imagebind_embed (ctx, c->modality, input->data, input->shape, input->n_dims,
        out, &error));
  }
  g_assert_no_error (error);
  imagebind_context_free (ctx);
  *n_out = input->shape[0] * out_dim;
  return out;
}

/* The smallest cosine between the rows of @a and @b. */
static double
min_cosine (const float *a, const float *b, gsize rows, gsize cols)
{
  double worst = 1.0;
  for (gsize r = 0; r < rows; r++) {
    double dot = 0, na = 0, nb = 0;
    for (gsize j = 0; j < cols; j++) {
      dot += (double) a[r * cols + j] * b[r * cols + j];
      na += (double) a[r * cols + j] * a[r * cols + j];
      nb += (double) b[r * cols + j] * b[r * cols + j];
    }
    worst = MIN (worst, dot / sqrt (na * nb));
  }
  return worst;
}

static void
assert_cosines (const char *what, const float *got, const float *ref, gsize rows, gsize cols,
    double min_cos)
{
  double worst = min_cosine (got, ref, rows, cols);
  if (!(worst >= min_cos))
    g_error ("%s: cosine %.9f < %.9f", what, worst, min_cos);
}

/* ---- conformance ---- */

static void
test_tiny_case (gconstpointer data)
{
  const Case *c = data;
  ImageBindModel *model = load_tiny (tiny_path);
  GHashTable *cap;
  gsize n_out;
  guint compared = 0;

  if (!model)
    return;
  cap = ib_test_capture_new ();
  g_autofree float *out = run_case (model, c, 2, cap, &n_out);

  for (guint i = 0; i < G_N_ELEMENTS (stages); i++) {
    g_autofree char *rel = g_strdup_printf ("tiny/outputs/%s.%s.npy", c->name, stages[i]);
    g_autofree char *path = ib_test_fixture (rel);
    if (!g_file_test (path, G_FILE_TEST_EXISTS))
      continue;
    g_autoptr (IbNpy) golden = ib_test_load_npy (rel);
    GArray *got = g_hash_table_lookup (cap, stages[i]);
    g_autofree char *what = g_strdup_printf ("%s %s", c->name, stages[i]);
    if (!got)
      g_error ("%s: the runtime did not report this stage", what);
    ib_test_assert_close (what, (const float *) got->data, got->len, golden, TOLERANCE);
    compared++;
  }
  g_assert_cmpuint (compared, ==, c->n_stages);

  g_autofree char *rel = g_strdup_printf ("tiny/outputs/%s.npy", c->name);
  g_autoptr (IbNpy) golden = ib_test_load_npy (rel);
  ib_test_assert_close (c->name, out, n_out, golden, TOLERANCE);
  assert_cosines (c->name, out, golden->data, golden->shape[0], golden->shape[1], MIN_COSINE);

  g_hash_table_unref (cap);
  imagebind_model_unref (model);
}

/* The same goldens when the batch goes through the trunk one or two samples at a time. */
static void
test_tiny_in_passes (void)
{
  static const guint which[] = { 1, 2, 3 };   /* vision_video, text, audio */
  for (gsize chunk = 1; chunk <= 2; chunk++) {
    max_chunk = chunk;
    for (guint i = 0; i < G_N_ELEMENTS (which); i++)
      test_tiny_case (&cases[which[i]]);
  }
  max_chunk = 0;
}

static void
test_tiny_f16 (void)
{
  ImageBindModel *model = load_tiny (tiny_f16_path);
  if (!model)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    gsize n_out;
    g_autofree float *out = run_case (model, &cases[i], 2, NULL, &n_out);
    g_autofree char *rel = g_strdup_printf ("tiny/outputs/%s.npy", cases[i].name);
    g_autoptr (IbNpy) golden = ib_test_load_npy (rel);
    g_autofree char *what = g_strdup_printf ("%s (F16 weights)", cases[i].name);
    ib_test_assert_close (what, out, n_out, golden, TOLERANCE_F16);
    assert_cosines (what, out, golden->data, golden->shape[0], golden->shape[1], 0.99999);
  }
  imagebind_model_unref (model);
}

/* q8 against F32, per embedding, for every case: with the int8 kernels (when this CPU has
 * them) and through the F32 widening path that CPUs without AVX-512 VNNI take. */
static void
test_tiny_q8 (void)
{
  ImageBindModel *f32 = load_tiny (tiny_path), *q8;
  if (!f32)
    return;
  q8 = load_tiny (tiny_q8_path);
  if (!q8) {
    imagebind_model_unref (f32);
    return;
  }
  for (int pass = 0; pass < 2; pass++) {
    gboolean kernels = pass == 0;
    if (kernels && !ib_q8_have_vnni ()) {
      g_test_message ("no AVX-512 VNNI here: only the widening path is checked");
      continue;
    }
    ib_q8_set_vnni_enabled (kernels);
    for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
      gsize n_ref, n_out;
      g_autofree float *ref = run_case (f32, &cases[i], 2, NULL, &n_ref);
      g_autofree float *out = run_case (q8, &cases[i], 2, NULL, &n_out);
      guint out_dim = imagebind_model_out_dim (f32);
      double worst = min_cosine (out, ref, n_out / out_dim, out_dim);
      g_assert_cmpuint (n_out, ==, n_ref);
      g_test_message ("q8 %s, %s: min cosine vs F32 %.6f", kernels ? "int8 kernels" : "widened",
          cases[i].name, worst);
      if (!(worst >= MIN_COSINE_Q8))
        g_error ("q8 (%s) %s: cosine %.6f < %.3f", kernels ? "int8 kernels" : "widened",
            cases[i].name, worst, MIN_COSINE_Q8);
    }
  }
  ib_q8_set_vnni_enabled (TRUE);
  imagebind_model_unref (q8);
  imagebind_model_unref (f32);
}

static void
collect_log (GLogLevelFlags level, const char *message, gpointer user_data)
{
  GString *log = user_data;
  g_string_append_printf (log, "%d %s\n", (int) level, message);
}

/* The run-time fallback, forced: a q8 file loaded as on a CPU without AVX-512 VNNI says at
 * debug level that its matrices are widened (and then runs, checked by test_tiny_q8). */
static void
test_tiny_q8_fallback_log (void)
{
  g_autoptr (GString) log = g_string_new (NULL);
  g_autofree char *expect = g_strdup_printf ("%d ", (int) G_LOG_LEVEL_DEBUG);
  ImageBindModel *model;
  const char *line;

  if (!have_tiny (tiny_q8_path))
    return;
  imagebind_set_log_func (collect_log, log);
  ib_q8_set_vnni_enabled (FALSE);
  model = load_tiny (tiny_q8_path);
  ib_q8_set_vnni_enabled (TRUE);
  imagebind_set_log_func (NULL, NULL);
  g_test_message ("%s", log->str);
  line = strstr (log->str, "no AVX-512 VNNI");
  g_assert_nonnull (line);
  while (line > log->str && line[-1] != '\n')
    line--;
  g_assert_true (g_str_has_prefix (line, expect));   /* a debug line */
  g_assert_nonnull (strstr (line, "widened to F32"));
  imagebind_model_unref (model);
  /* With the kernels available the line is not there. */
  if (ib_q8_have_vnni ()) {
    g_string_truncate (log, 0);
    imagebind_set_log_func (collect_log, log);
    model = load_tiny (tiny_q8_path);
    imagebind_set_log_func (NULL, NULL);
    g_assert_null (strstr (log->str, "no AVX-512 VNNI"));
    imagebind_model_unref (model);
  }
}

static void
test_tiny_model_info (void)
{
  ImageBindModel *model = load_tiny (tiny_path);
  ImageBindEncoderInfo info;
  /* From config.json: widths, depths, heads, tokens and applied logit scales. */
  static const guint dims[6][4] = {
    { 64, 2, 4, 257 }, { 64, 2, 8, 77 }, { 48, 2, 4, 229 },
    { 40, 2, 5, 197 }, { 48, 2, 3, 197 }, { 32, 2, 2, 251 },
  };
  static const double scales[6] = { 1.0, 18.17414710266471, 20.000000677601832,
    5.000000150353914, 10.000000319754372, 5.000000150353914 };

  if (!model)
    return;
  g_assert_cmpuint (imagebind_model_out_dim (model), ==, 32);
  for (guint m = 0; m < IMAGEBIND_N_MODALITIES; m++) {
    g_assert_true (imagebind_model_has_modality (model, m));
    g_assert_true (imagebind_model_encoder_info (model, m, &info));
    g_assert_cmpuint (info.embed_dim, ==, dims[m][0]);
    g_assert_cmpuint (info.num_blocks, ==, dims[m][1]);
    g_assert_cmpuint (info.num_heads, ==, dims[m][2]);
    g_assert_cmpuint (info.num_tokens, ==, dims[m][3]);
    g_assert_cmpfloat_with_epsilon (imagebind_model_logit_scale (model, m), scales[m], 1e-5);
  }
  /* The tiny vision encoder by hand: stem 1176*64, cls 64, positions 257*64, ln_pre 128,
   * 2 blocks of 12*64^2 + 13*64, head LN 128, projection 64*32. */
  g_assert_true (imagebind_model_encoder_info (model, IMAGEBIND_MODALITY_VISION, &info));
  g_assert_cmpuint (info.n_params, ==, 1176 * 64 + 64 + 257 * 64 + 128 + 2 * (12 * 64 * 64 + 13 * 64) + 128 + 64 * 32);
  imagebind_model_unref (model);
}

/* The tokenizer stored in the file, through the model, gives the fixture's ids; the tiny model
 * applied to the preprocessing fixtures gives the e2e goldens. */
static void
test_tiny_tokenizer_and_e2e (void)
{
  ImageBindModel *model = load_tiny (tiny_path);
  const ImageBindTokenizer *tok;
  ImageBindContext *ctx;
  GError *error = NULL;
  gint32 ids[77];

  if (!model)
    return;
  tok = imagebind_model_get_tokenizer (model, &error);
  g_assert_no_error (error);
  g_assert_nonnull (tok);
  g_assert_true (tok == imagebind_model_get_tokenizer (model, NULL));   /* built once */
  g_assert_true (imagebind_tokenize (tok, "a dog playing in the park", -1, ids, 77, &error));
  g_assert_no_error (error);
  {
    g_autoptr (IbNpy) text = ib_test_load_npy ("tiny/inputs/text.npy");
    for (int i = 0; i < 77; i++)
      g_assert_cmpint (ids[i], ==, ((const gint64 *) text->data)[i]);
  }

  ctx = imagebind_context_new (model, NULL);
  {
    g_autoptr (IbNpy) tokens = ib_test_load_npy ("preprocess/text_tokens.npy");
    g_autoptr (IbNpy) golden = ib_test_load_npy ("tiny/outputs/e2e.text.npy");
    g_autofree gint32 *all = g_new (gint32, tokens->n_elements);
    g_autofree float *out = g_new (float, tokens->shape[0] * 32);
    for (gsize i = 0; i < tokens->n_elements; i++)
      all[i] = ((const gint64 *) tokens->data)[i];
    g_assert_true (imagebind_embed_text (ctx, all, tokens->shape[0], out, &error));
    g_assert_no_error (error);
    ib_test_assert_close ("e2e text", out, tokens->shape[0] * 32, golden, TOLERANCE);
  }
  {
    g_autoptr (IbNpy) pixels = ib_test_load_npy ("preprocess/vision_tensors.npy");
    g_autoptr (IbNpy) golden = ib_test_load_npy ("tiny/outputs/e2e.vision.npy");
    g_autofree float *out = g_new (float, pixels->shape[0] * 32);
    g_assert_true (imagebind_embed (ctx, IMAGEBIND_MODALITY_VISION, pixels->data, pixels->shape,
        pixels->n_dims, out, &error));
    g_assert_no_error (error);
    ib_test_assert_close ("e2e vision", out, pixels->shape[0] * 32, golden, TOLERANCE);
  }
  imagebind_context_free (ctx);
  imagebind_model_unref (model);
}

/* imagebind-embed on .npy files gives the golden embeddings (text: int64 ids). */
static void
test_embed_tool (void)
{
  static const char *const names[] = { "text", "depth", "audio" };
  static const char *const modalities[] = { "text", "depth", "audio" };

  if (!have_tiny (tiny_path))
    return;
  if (!embed_tool_path || !g_file_test (embed_tool_path, G_FILE_TEST_IS_EXECUTABLE)) {
    g_test_skip ("imagebind-embed not given");
    return;
  }
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    g_autofree char *rel_in = g_strdup_printf ("tiny/inputs/%s.npy", names[i]);
    g_autofree char *rel_out = g_strdup_printf ("tiny/outputs/%s.npy", names[i]);
    g_autofree char *input = ib_test_fixture (rel_in);
    g_autofree char *dir = g_dir_make_tmp ("ib-embed-XXXXXX", NULL);
    g_autofree char *output = g_build_filename (dir, "out.npy", NULL);
    const char *argv[] = { embed_tool_path, "--model", tiny_path, "--modality", modalities[i],
      "--threads", "1", "--output", output, input, NULL };
    GError *error = NULL;
    int status;
    g_autofree char *err_text = NULL;

    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL,
        &err_text, &status, &error));
    g_assert_no_error (error);
    if (!g_spawn_check_wait_status (status, NULL))
      g_error ("imagebind-embed failed: %s", err_text);
    {
      g_autoptr (IbNpy) got = ib_npy_load (output, &error);
      g_autoptr (IbNpy) golden = ib_test_load_npy (rel_out);
      g_assert_no_error (error);
      g_assert_cmpint (got->dtype, ==, IB_NPY_F32);
      g_assert_cmpuint (got->n_dims, ==, 2);
      g_assert_cmpint (got->shape[0], ==, golden->shape[0]);
      g_assert_cmpint (got->shape[1], ==, golden->shape[1]);
      ib_test_assert_close (names[i], got->data, got->n_elements, golden, TOLERANCE);
    }
    g_unlink (output);
    g_rmdir (dir);
  }
}

/* ---- concurrency: two contexts on one model in two threads give the one-thread result ---- */

typedef struct {
  ImageBindModel *model;
  const Case *c;
  float *out;
  gsize n_out;
} ThreadJob;

static gpointer
thread_job (gpointer data)
{
  ThreadJob *job = data;
  for (int rep = 0; rep < 2; rep++) {
    g_free (job->out);
    job->out = run_case (job->model, job->c, 1, NULL, &job->n_out);
  }
  return NULL;
}

static void
test_two_threads (void)
{
  ImageBindModel *model = load_tiny (tiny_path);
  ThreadJob jobs[2] = { { model, &cases[0] }, { model, &cases[3] } };   /* vision, audio */
  GThread *threads[2];
  float *ref[2];
  gsize n_ref[2];

  if (!model)
    return;
  for (int i = 0; i < 2; i++)
    ref[i] = run_case (model, jobs[i].c, 1, NULL, &n_ref[i]);
  for (int i = 0; i < 2; i++)
    threads[i] = g_thread_new ("embed", thread_job, &jobs[i]);
  for (int i = 0; i < 2; i++) {
    g_thread_join (threads[i]);
    g_assert_cmpuint (jobs[i].n_out, ==, n_ref[i]);
    /* Same thread count, same code path: bit-identical. */
    g_assert_cmpmem (jobs[i].out, jobs[i].n_out * sizeof (float), ref[i], n_ref[i] * sizeof (float));
    g_free (jobs[i].out);
    g_free (ref[i]);
  }
  imagebind_model_unref (model);
}

/* ---- input checks ---- */

static void
expect_input_error (ImageBindContext *ctx, ImageBindModality m, const gint64 *shape, guint n_dims,
    const char *substring)
{
  gsize n = 1;
  GError *error = NULL;
  for (guint i = 0; i < n_dims; i++)
    n *= shape[i];
  g_autofree float *data = g_new0 (float, MAX (n, 1));
  float out[64 * 32];
  g_assert_false (imagebind_embed (ctx, m, data, shape, n_dims, out, &error));
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT);
  g_test_message ("%s", error->message);
  if (substring && !strstr (error->message, substring))
    g_error ("error \"%s\" does not mention \"%s\"", error->message, substring);
  g_error_free (error);
}

static void
test_bad_inputs (void)
{
  ImageBindModel *model = load_tiny (tiny_path);
  ImageBindContext *ctx;
  GError *error = NULL;
  float out[4 * 32];

  if (!model)
    return;
  ctx = imagebind_context_new (model, NULL);
  expect_input_error (ctx, IMAGEBIND_MODALITY_VISION, (gint64[]) { 1, 3, 224, 223 }, 4, "got (1, 3, 224, 223)");
  /* A 5-D video without the clip axis is read as clips of (3?, ...) samples and refused, as
   * the official forward does. */
  expect_input_error (ctx, IMAGEBIND_MODALITY_VISION, (gint64[]) { 1, 3, 2, 224, 224 }, 5, "(B, 3, 224, 224)");
  expect_input_error (ctx, IMAGEBIND_MODALITY_VISION, (gint64[]) { 1, 1, 3, 3, 224, 224 }, 6, NULL);
  expect_input_error (ctx, IMAGEBIND_MODALITY_AUDIO, (gint64[]) { 1, 2, 128, 204 }, 4, "(B, 1, 128, 204)");
  expect_input_error (ctx, IMAGEBIND_MODALITY_AUDIO, (gint64[]) { 1, 3, 1, 128, 200 }, 5, NULL);
  expect_input_error (ctx, IMAGEBIND_MODALITY_DEPTH, (gint64[]) { 2, 1, 224 }, 3, NULL);
  expect_input_error (ctx, IMAGEBIND_MODALITY_IMU, (gint64[]) { 1, 6, 1999 }, 3, "(B, 6, 2000)");
  expect_input_error (ctx, IMAGEBIND_MODALITY_IMU, (gint64[]) { 0, 6, 2000 }, 3, NULL);
  expect_input_error (ctx, IMAGEBIND_MODALITY_TEXT, (gint64[]) { 1, 77 }, 2, "imagebind_embed_text");

  /* Non-finite values are refused, naming the position. */
  g_autofree float *imu = g_new0 (float, 6 * 2000);
  imu[4321] = NAN;
  g_assert_false (imagebind_embed (ctx, IMAGEBIND_MODALITY_IMU, imu, (gint64[]) { 1, 6, 2000 }, 3, out, &error));
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT);
  g_assert_nonnull (strstr (error->message, "4321"));
  g_clear_error (&error);

  /* Ids outside the vocabulary. */
  gint32 ids[77] = { 49406, 320, 49407 };
  ids[5] = 49408;
  g_assert_false (imagebind_embed_text (ctx, ids, 1, out, &error));
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT);
  g_assert_nonnull (strstr (error->message, "49408"));
  g_clear_error (&error);
  ids[5] = -1;
  g_assert_false (imagebind_embed_text (ctx, ids, 1, out, &error));
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT);
  g_clear_error (&error);

  /* The context still works after errors. */
  ids[5] = 0;
  g_assert_true (imagebind_embed_text (ctx, ids, 1, out, &error));
  g_assert_no_error (error);

  imagebind_context_free (ctx);
  imagebind_model_unref (model);
}

/* ---- partial and inconsistent model files, rebuilt from the tiny one ---- */

typedef enum { EDIT_NONE, EDIT_DROP_TENSOR, EDIT_RESHAPE_TENSOR, EDIT_HEADS, EDIT_SCALE } Edit;

/* Copies the tiny file's keys and the tensors of @modalities into a new file, with one edit. */
static char *
write_subset (const char *const *modalities, Edit edit, const char *edit_name)
{
  GError *error = NULL;
  IbGguf *src = ib_gguf_open (tiny_path, &error);
  g_autoptr (IbGgufBuilder) b = ib_gguf_builder_new ();
  guint32 u;
  static const char *const geometry_keys[] = {
    "imagebind.vision.image_size", "imagebind.vision.video_frames", "imagebind.text.context_length",
    "imagebind.text.vocab_size", "imagebind.audio.kernel_size", "imagebind.audio.stride",
    "imagebind.audio.num_mel_bins", "imagebind.audio.target_len", "imagebind.depth.kernel_size",
    "imagebind.thermal.kernel_size", "imagebind.imu.kernel_size", "imagebind.imu.num_samples",
  };

  g_assert_no_error (error);
  ib_gguf_builder_add_string (b, "general.architecture", "imagebind");
  ib_gguf_builder_add_string (b, "general.name", "subset");
  g_assert_true (ib_gguf_get_u32 (src, "imagebind.out_embed_dim", &u));
  ib_gguf_builder_add_u32 (b, "imagebind.out_embed_dim", u);
  ib_gguf_builder_add_string_array (b, "imagebind.modalities", modalities, g_strv_length ((char **) modalities));
  for (guint i = 0; i < G_N_ELEMENTS (geometry_keys); i++)
    if (ib_gguf_get_u32 (src, geometry_keys[i], &u))
      ib_gguf_builder_add_u32 (b, geometry_keys[i], u);
  for (guint i = 0; modalities[i]; i++) {
    const char *fields[] = { "embed_dim", "num_blocks", "num_heads" };
    for (guint f = 0; f < 3; f++) {
      g_autofree char *key = g_strdup_printf ("imagebind.%s.%s", modalities[i], fields[f]);
      g_assert_true (ib_gguf_get_u32 (src, key, &u));
      if (edit == EDIT_HEADS && f == 2)
        u = 7;    /* does not divide any width of the tiny model */
      ib_gguf_builder_add_u32 (b, key, u);
    }
  }
  for (guint t = 0; t < ib_gguf_n_tensors (src); t++) {
    const IbGgufTensor *tensor = ib_gguf_tensor (src, t);
    gboolean keep = FALSE;
    for (guint i = 0; modalities[i]; i++) {
      g_autofree char *part = g_strdup_printf (".%s.", modalities[i]);
      keep = keep || strstr (tensor->name, part) != NULL;
    }
    if (!keep || (edit == EDIT_DROP_TENSOR && strcmp (tensor->name, edit_name) == 0))
      continue;
    guint64 ne[IB_GGUF_MAX_DIMS];
    memcpy (ne, tensor->ne, sizeof ne);
    if (edit == EDIT_RESHAPE_TENSOR && strcmp (tensor->name, edit_name) == 0) {
      /* Same bytes, another shape: (rows, cols) -> (cols, rows). */
      g_assert_cmpuint (tensor->n_dims, ==, 2);
      ne[0] = tensor->ne[1];
      ne[1] = tensor->ne[0];
    }
    if (edit == EDIT_SCALE && strcmp (tensor->name, edit_name) == 0) {
      /* log scale 5: exp(5) = 148.4, which the official postprocessor clamps to 100 */
      static const float five = 5.0f;
      g_assert_cmpint (tensor->type, ==, IB_GGUF_TENSOR_F32);
      ib_gguf_builder_add_tensor (b, tensor->name, tensor->type, tensor->n_dims, ne, &five);
      continue;
    }
    ib_gguf_builder_add_tensor (b, tensor->name, tensor->type, tensor->n_dims, ne, tensor->data);
  }
  ib_gguf_free (src);

  char *path = NULL;
  int fd = g_file_open_tmp ("ib-subset-XXXXXX.gguf", &path, &error);
  g_assert_no_error (error);
  close (fd);
  g_assert_true (ib_gguf_builder_write_file (b, path, &error));
  g_assert_no_error (error);
  return path;
}

static void
test_partial_model (void)
{
  const char *const subset[] = { "depth", "imu", NULL };
  g_autofree char *path = NULL;
  ImageBindModel *model;
  ImageBindContext *ctx;
  GError *error = NULL;
  float out[2 * 32];
  gsize n_out;

  if (!have_tiny (tiny_path))
    return;

  path = write_subset (subset, EDIT_NONE, NULL);
  model = imagebind_model_load (path, &error);
  g_assert_no_error (error);
  for (guint m = 0; m < IMAGEBIND_N_MODALITIES; m++)
    g_assert_cmpint (imagebind_model_has_modality (model, m), ==,
        m == IMAGEBIND_MODALITY_DEPTH || m == IMAGEBIND_MODALITY_IMU);
  g_assert_cmpfloat (imagebind_model_logit_scale (model, IMAGEBIND_MODALITY_TEXT), ==, 1.0f);
  g_assert_null (imagebind_model_get_tokenizer (model, &error));
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_NO_TOKENIZER);
  g_clear_error (&error);

  /* What is there still matches the golden. */
  g_autofree float *imu = run_case (model, &cases[6], 1, NULL, &n_out);
  g_autoptr (IbNpy) golden = ib_test_load_npy ("tiny/outputs/imu.npy");
  ib_test_assert_close ("imu from a depth+imu file", imu, n_out, golden, TOLERANCE);

  /* What is not gives NO_MODALITY. */
  ctx = imagebind_context_new (model, NULL);
  g_autofree float *pixels = g_new0 (float, 3 * 224 * 224);
  g_assert_false (imagebind_embed (ctx, IMAGEBIND_MODALITY_VISION, pixels, (gint64[]) { 1, 3, 224, 224 }, 4, out, &error));
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_NO_MODALITY);
  g_clear_error (&error);
  gint32 ids[77] = { 49406, 49407 };
  g_assert_false (imagebind_embed_text (ctx, ids, 1, out, &error));
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_NO_MODALITY);
  g_clear_error (&error);
  imagebind_context_free (ctx);
  imagebind_model_unref (model);
  g_unlink (path);
}

/* exp(log scale) is clamped at 100, and the output is scaled by the clamped value. */
static void
test_logit_scale_clamp (void)
{
  const char *const subset[] = { "imu", NULL };
  g_autofree char *path = NULL;
  ImageBindModel *model;
  GError *error = NULL;
  gsize n_out;

  if (!have_tiny (tiny_path))
    return;
  path = write_subset (subset, EDIT_SCALE, "modality_postprocessors.imu.1.log_logit_scale");
  model = imagebind_model_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (imagebind_model_logit_scale (model, IMAGEBIND_MODALITY_IMU), ==, 100.0f);
  {
    g_autofree float *out = run_case (model, &cases[6], 1, NULL, &n_out);
    g_autoptr (IbNpy) golden = ib_test_load_npy ("tiny/outputs/imu.npy");
    /* The golden was scaled by 5: the same directions, 20 times longer. */
    for (gsize i = 0; i < n_out; i++)
      ((float *) golden->data)[i] *= 20.0f;
    ib_test_assert_close ("imu with the scale clamped at 100", out, n_out, golden, TOLERANCE);
  }
  imagebind_model_unref (model);
  g_unlink (path);
}

static void
expect_model_error (Edit edit, const char *tensor, const char *substring)
{
  const char *const subset[] = { "audio", NULL };
  g_autofree char *path = write_subset (subset, edit, tensor);
  GError *error = NULL;
  ImageBindModel *model = imagebind_model_load (path, &error);
  g_assert_null (model);
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL);
  g_test_message ("%s", error->message);
  if (!strstr (error->message, substring))
    g_error ("error \"%s\" does not mention \"%s\"", error->message, substring);
  g_error_free (error);
  g_unlink (path);
}

static void
test_inconsistent_model (void)
{
  if (!have_tiny (tiny_path))
    return;
  expect_model_error (EDIT_DROP_TENSOR, "modality_trunks.audio.blocks.1.mlp.fc2.bias",
      "modality_trunks.audio.blocks.1.mlp.fc2.bias is missing");
  expect_model_error (EDIT_RESHAPE_TENSOR, "modality_trunks.audio.blocks.0.mlp.fc1.weight",
      "modality_trunks.audio.blocks.0.mlp.fc1.weight has shape (48, 192) but the model's "
      "hyper-parameters give (192, 48)");
  expect_model_error (EDIT_DROP_TENSOR, "modality_postprocessors.audio.1.log_logit_scale",
      "log_logit_scale");
  expect_model_error (EDIT_HEADS, NULL, "num_heads 7");
}

/* ---- models without a file ---- */

static void
test_huge_info (void)
{
  IbModelConfig config = ib_model_config_huge ();
  ImageBindEncoderInfo info;
  /* ARCHITECTURE.md §6: measured parameters, and GFLOP per forward (audio: 3 clips). */
  static const guint64 params[6] = { 632829440, 354032641, 86235648, 21871872, 86211072, 19600384 };
  static const double gflops[6] = { 334.98, 47.09, 122.80 / 3, 9.12, 34.98, 10.27 };
  guint64 total = 0;

  for (guint m = 0; m < IMAGEBIND_N_MODALITIES; m++) {
    g_assert_true (ib_model_config_encoder_info (&config, m, &info));
    g_test_message ("%s: %" G_GUINT64_FORMAT " parameters, %.3f GFLOP", imagebind_modality_name (m),
        info.n_params, info.gflops);
    g_assert_cmpuint (info.n_params, ==, params[m]);
    g_assert_cmpfloat (fabs (info.gflops - gflops[m]), <, 0.006);
    total += info.n_params;
  }
  g_assert_cmpuint (total, ==, 1200781057);
}

/* The OpenCLIP presets of imagebind-bench: parameters as OpenCLIP 2.20.0 counts them
 * (sum of model.visual's parameters, and of the rest: text tower and logit_scale), GFLOP as
 * 2 x multiply-adds of the stem, blocks and projection. */
static void
test_openclip_info (void)
{
  static const struct {
    const char *name;
    guint64 params[2];
    double gflops[2];
  } presets[] = {
    { "ViT-B-32", { 87849216, 63428097 }, { 8.818, 5.960 } },
    { "vit-b-16", { 86192640, 63428097 }, { 35.127, 5.960 } },
    { "ViT-L-14", { 303966208, 123650305 }, { 162.026, 13.300 } },
    { "ViT-H-14", { 632076800, 354032641 }, { 334.590, 47.091 } },
  };
  IbModelConfig config;
  ImageBindEncoderInfo info;

  for (guint i = 0; i < G_N_ELEMENTS (presets); i++) {
    g_assert_true (ib_model_config_openclip (presets[i].name, &config));
    for (guint m = 0; m < IMAGEBIND_N_MODALITIES; m++)
      g_assert_cmpint (ib_model_config_encoder_info (&config, m, &info), ==, m < 2);
    for (guint m = 0; m < 2; m++) {
      g_assert_true (ib_model_config_encoder_info (&config, m, &info));
      g_assert_cmpuint (info.n_params, ==, presets[i].params[m]);
      g_assert_cmpfloat (fabs (info.gflops - presets[i].gflops[m]), <, 0.001);
    }
  }
  g_assert_false (ib_model_config_openclip ("ViT-g-14", &config));
}

/* A random model with a CLIP 2D patch stem runs: one-frame geometry, unit-norm vision output,
 * text scaled by the logit scale. */
static void
test_random_patch_stem (void)
{
  IbModelConfig config = { .out_dim = 16, .weight_type = IB_GGUF_TENSOR_F32, .patch_size = 40,
    .image_size = 200 };
  ImageBindInputGeometry g;
  ImageBindEncoderInfo info;
  ImageBindModel *model;
  ImageBindContext *ctx;
  GError *error = NULL;
  float out[16];
  g_autofree float *image = g_new (float, 3 * 200 * 200);
  static const gint64 shape[4] = { 1, 3, 200, 200 };
  gint32 ids[77] = { 49406, 1000, 2000, 49407 };
  double sq = 0;

  config.modality[IMAGEBIND_MODALITY_VISION] = (IbModalityConfig) { TRUE, 24, 2, 3 };
  config.modality[IMAGEBIND_MODALITY_TEXT] = (IbModalityConfig) { TRUE, 16, 1, 2 };
  model = ib_model_new_random (&config, 7);
  g_assert_nonnull (model);
  imagebind_model_input_geometry (model, &g);
  g_assert_cmpuint (g.image_size, ==, 200);
  g_assert_cmpuint (g.video_frames, ==, 1);
  g_assert_true (imagebind_model_encoder_info (model, IMAGEBIND_MODALITY_VISION, &info));
  g_assert_cmpuint (info.num_tokens, ==, 5 * 5 + 1);
  /* stem 3*40*40*24, cls, 26 positions, ln_pre, 2 blocks, head LN and projection */
  g_assert_cmpuint (info.n_params, ==, 4800 * 24 + 24 + 26 * 24 + 48 + 2 * (12 * 24 * 24 + 13 * 24)
      + 48 + 24 * 16);
  ctx = imagebind_context_new (model, NULL);
  for (gsize i = 0; i < 3 * 200 * 200; i++)
    image[i] = sinf (i * 0.001f);
  g_assert_true (imagebind_embed (ctx, IMAGEBIND_MODALITY_VISION, image, shape, 4, out, &error));
  g_assert_no_error (error);
  for (int j = 0; j < 16; j++)
    sq += (double) out[j] * out[j];
  g_assert_cmpfloat_with_epsilon (sqrt (sq), 1.0, 1e-4);
  g_assert_true (imagebind_embed_text (ctx, ids, 1, out, &error));
  g_assert_no_error (error);
  imagebind_context_free (ctx);
  imagebind_model_unref (model);

  config.patch_size = 201;   /* larger than the image */
  g_assert_null (ib_model_new_random (&config, 1));
}

static void
test_random_model (void)
{
  IbModelConfig config = { .out_dim = 16, .weight_type = IB_GGUF_TENSOR_F32 };
  for (guint m = 0; m < IMAGEBIND_N_MODALITIES; m++)
    config.modality[m] = (IbModalityConfig) { TRUE, 24, 1, 3 };

  for (int f16 = 0; f16 < 2; f16++) {
    config.weight_type = f16 ? IB_GGUF_TENSOR_F16 : IB_GGUF_TENSOR_F32;
    ImageBindModel *model = ib_model_new_random (&config, 42);
    ImageBindContext *ctx = imagebind_context_new (model, NULL);
    GError *error = NULL;
    float out[16];
    g_autofree float *zeros = g_new0 (float, 3 * 2 * 224 * 224);
    static const gint64 shapes[6][4] = {
      { 1, 3, 224, 224 }, { 0 }, { 1, 1, 128, 204 }, { 1, 1, 224, 224 }, { 1, 1, 224, 224 }, { 1, 6, 2000 },
    };
    g_assert_nonnull (model);
    for (guint m = 0; m < IMAGEBIND_N_MODALITIES; m++) {
      if (m == IMAGEBIND_MODALITY_TEXT) {
        gint32 ids[77] = { 49406, 1000, 2000, 49407 };
        g_assert_true (imagebind_embed_text (ctx, ids, 1, out, &error));
      } else {
        for (gsize i = 0; i < 3 * 224 * 224; i++)
          zeros[i] = sinf (i * 0.001f);
        g_assert_true (imagebind_embed (ctx, m, zeros, shapes[m], m == IMAGEBIND_MODALITY_IMU ? 3 : 4, out, &error));
      }
      g_assert_no_error (error);
      /* Post-processed: unit vector times the modality's official logit scale. */
      double sq = 0;
      for (int j = 0; j < 16; j++)
        sq += (double) out[j] * out[j];
      g_assert_cmpfloat_with_epsilon (sqrt (sq), imagebind_model_logit_scale (model, m), 1e-4);
    }
    g_assert_cmpfloat_with_epsilon (imagebind_model_logit_scale (model, IMAGEBIND_MODALITY_AUDIO), 20.0, 1e-4);
    imagebind_context_free (ctx);
    imagebind_model_unref (model);
  }
  config.modality[0].num_heads = 5;   /* 24 % 5 != 0 */
  g_assert_null (ib_model_new_random (&config, 1));
}

/* IEEE half from its fields, in double: an independent reference (clang 14 has no _Float16 on
 * x86). */
static float
half_reference (guint16 h)
{
  int e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? ldexp (m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp (m + 1024, e - 25);
  return (float) ((h & 0x8000) ? -v : v);
}

static void
test_f16_widening (void)
{
  /* Every half against its definition. */
  guint16 all[65536];
  float wide[65536];
  for (guint i = 0; i < 65536; i++)
    all[i] = i;
  ib_f16_to_f32 (all, wide, 65536);
  for (guint i = 0; i < 65536; i++) {
    float ref = half_reference ((guint16) i);
    if (isnan (ref))
      g_assert_true (isnan (wide[i]));
    else
      g_assert_cmpmem (&wide[i], 4, &ref, 4);
    if (!isnan (ref))
      g_assert_cmpuint (ib_f32_to_f16 (ref), ==, i);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc > 1 && *argv[1])
    tiny_path = argv[1];
  if (argc > 2 && *argv[2])
    tiny_f16_path = argv[2];
  if (argc > 3 && *argv[3])
    embed_tool_path = argv[3];
  if (argc > 4 && *argv[4])
    tiny_q8_path = argv[4];

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *name = g_strdup_printf ("/conformance/tiny/%s", cases[i].name);
    g_test_add_data_func (name, &cases[i], test_tiny_case);
  }
  g_test_add_func ("/conformance/tiny/in-passes", test_tiny_in_passes);
  g_test_add_func ("/conformance/tiny/f16", test_tiny_f16);
  g_test_add_func ("/conformance/tiny/q8", test_tiny_q8);
  g_test_add_func ("/conformance/tiny/q8-fallback-log", test_tiny_q8_fallback_log);
  g_test_add_func ("/conformance/tiny/model-info", test_tiny_model_info);
  g_test_add_func ("/conformance/tiny/tokenizer-and-e2e", test_tiny_tokenizer_and_e2e);
  g_test_add_func ("/runtime/embed-tool", test_embed_tool);
  g_test_add_func ("/runtime/two-threads", test_two_threads);
  g_test_add_func ("/runtime/bad-inputs", test_bad_inputs);
  g_test_add_func ("/runtime/partial-model", test_partial_model);
  g_test_add_func ("/runtime/inconsistent-model", test_inconsistent_model);
  g_test_add_func ("/runtime/logit-scale-clamp", test_logit_scale_clamp);
  g_test_add_func ("/runtime/huge-info", test_huge_info);
  g_test_add_func ("/runtime/random-model", test_random_model);
  g_test_add_func ("/runtime/random-model/patch-stem", test_random_patch_stem);
  g_test_add_func ("/runtime/openclip-info", test_openclip_info);
  g_test_add_func ("/runtime/f16-widening", test_f16_widening);
  return g_test_run ();
}
