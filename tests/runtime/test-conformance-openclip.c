/* CLIP-family model files: conformance with OpenCLIP's own outputs and the runtime
 * side of the file's CLIP keys (models/GGUF.md).
 *
 * shared/conformance/openclip/tiny holds one tiny OpenCLIP model as three weight files; each,
 * converted by models/convert.py, must reproduce every output and intermediate of OpenCLIP
 * within 1e-5 x max|golden| (the fixture README's tolerance), token ids and end-of-text indices
 * exactly, and through imagebind-embed (PNGs, strings) within 1e-4. A QuickGELU variant, with
 * another logit scale, is checked against an independent float64 implementation in this file
 * (OpenCLIP's goldens only cover exact GELU). The key checks (activation, LayerNorm eps,
 * mean/std, special-token rule, family) also run on a vision+text copy of the ImageBind tiny
 * model, so they need no converter. A generated CLIP of other sizes (test_convert.py's
 * synthetic_openclip: QuickGELU, patch 16, 3 and 5 heads, context 16, vocabulary 600), converted
 * from OpenCLIP .safetensors, .bin and HF safetensors with position_ids, is held to the same
 * tolerances against the float64 implementation, raw PNGs and strings included: what the
 * held-out CLIP-family model checks.
 *
 * Usage: test-conformance-openclip NAME=FILE ...
 *   openclip-bin=, openclip-safetensors=, hf-safetensors=  converted F32 files
 *   f16=        a converted F16 file          embed=      the imagebind-embed executable
 *   imagebind=  the converted ImageBind tiny model (F32)
 *   synthetic-oc-safetensors=, synthetic-oc-bin=, synthetic-hf=  the generated CLIP, converted
 * Any may be absent: what needs it is skipped, saying so. Run with --verbose (meson test -v)
 * for the relative error of every tensor. */
#include "common.h"
#include "gguf.h"
#include "model-edit.h"
#include "imagebind.h"
#include "imagebind-frontend.h"
#include "imagebind-tokenizer.h"
#include "ops.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#define TOLERANCE 1e-5
/* F16 weights: rounding of the weights, not of the computation (the ImageBind tiny bound) */
#define TOLERANCE_F16 1e-3
/* raw PNGs and strings through imagebind-embed (the bound) */
#define TOLERANCE_E2E 1e-4
#define N_TEXTS 14

static const char *const f32_names[] = { "openclip-bin", "openclip-safetensors", "hf-safetensors" };
static GHashTable *files;   /* NAME -> path */

static const char *
file_arg (const char *name)
{
  const char *path = g_hash_table_lookup (files, name);
  return path && g_file_test (path, G_FILE_TEST_EXISTS) ? path : NULL;
}

/* The file called @name, or a skip saying why there is none. */
static const char *
need_file (const char *name)
{
  const char *path;

  if (!ib_test_need_conformance ())
    return NULL;
  path = file_arg (name);
  if (!path) {
    g_autofree char *why = g_strdup_printf ("no %s model given (tests/meson.build converts it "
        "from the fixtures with models/convert.py)", name);
    g_test_skip (why);
  }
  return path;
}

static ImageBindModel *
load (const char *path)
{
  GError *error = NULL;
  ImageBindModel *model = imagebind_model_load (path, &error);
  g_assert_no_error (error);
  return model;
}

/* ---- running the runtime on the fixture inputs ---- */

typedef struct {
  float *image;          /* (3, out_dim) vision embeddings */
  float *text;           /* (N_TEXTS, out_dim) text embeddings */
  GHashTable *image_stages, *text_stages;   /* traced intermediates */
} Outputs;

static void
outputs_clear (Outputs *o)
{
  g_free (o->image);
  g_free (o->text);
  if (o->image_stages)
    g_hash_table_unref (o->image_stages);
  if (o->text_stages)
    g_hash_table_unref (o->text_stages);
}

static gint32 *
fixture_ids (void)
{
  g_autoptr (IbNpy) ids = ib_test_load_npy ("openclip/tiny/inputs/text_tokens.npy");
  gint32 *out = g_new (gint32, ids->n_elements);

  g_assert_cmpint (ids->dtype, ==, IB_NPY_I64);
  g_assert_cmpint (ids->shape[0], ==, N_TEXTS);
  for (gsize i = 0; i < ids->n_elements; i++)
    out[i] = (gint32) ((const gint64 *) ids->data)[i];
  return out;
}

/* The three preprocess images and the 14 fixture token sequences through @model. */
static Outputs
run_fixtures (ImageBindModel *model, gboolean trace)
{
  g_autoptr (IbNpy) images = ib_test_load_npy ("preprocess/vision_tensors.npy");
  g_autofree gint32 *ids = fixture_ids ();
  ImageBindContextParams params = imagebind_context_default_params ();
  ImageBindContext *ctx;
  guint dim = imagebind_model_out_dim (model);
  GError *error = NULL;
  Outputs o = { 0 };

  params.n_threads = 2;
  ctx = imagebind_context_new (model, &params);
  o.image = g_new (float, images->shape[0] * dim);
  o.text = g_new (float, N_TEXTS * dim);
  if (trace) {
    o.image_stages = ib_test_capture_new ();
    imagebind_context_set_trace (ctx, ib_test_capture_stage, o.image_stages);
  }
  g_assert_true (imagebind_embed (ctx, IMAGEBIND_MODALITY_VISION, images->data, images->shape,
      images->n_dims, o.image, &error));
  g_assert_no_error (error);
  if (trace) {
    o.text_stages = ib_test_capture_new ();
    imagebind_context_set_trace (ctx, ib_test_capture_stage, o.text_stages);
  }
  g_assert_true (imagebind_embed_text (ctx, ids, N_TEXTS, o.text, &error));
  g_assert_no_error (error);
  imagebind_context_free (ctx);
  return o;
}

static GArray *
stage (GHashTable *stages, const char *name)
{
  GArray *a = g_hash_table_lookup (stages, name);
  if (!a)
    g_error ("the runtime did not report stage %s", name);
  return a;
}

/* Unit rows of @x (rows x n), times @scale. */
static float *
normalized (const float *x, gsize rows, gsize n, double scale)
{
  float *out = g_new (float, rows * n);
  for (gsize r = 0; r < rows; r++) {
    double sq = 0;
    for (gsize j = 0; j < n; j++)
      sq += (double) x[r * n + j] * x[r * n + j];
    for (gsize j = 0; j < n; j++)
      out[r * n + j] = (float) (x[r * n + j] / MAX (sqrt (sq), 1e-12) * scale);
  }
  return out;
}

/* Every golden of openclip/tiny/outputs against @model's run, at @tol; returns the worst
 * relative error. */
static double
check_goldens (const char *label, ImageBindModel *model, double tol)
{
  /* golden file -> runtime stage (same layout) */
  static const char *const image_stages[][2] = {
    { "image.patch_embed", "after_stem" }, { "image.after_embed", "after_preprocessor" },
    { "image.after_ln_pre", "after_ln_pre" }, { "image.after_block0", "after_block0" },
    { "image.after_transformer", "after_trunk" }, { "image.after_ln_post", "after_pool" },
    { "image_features", "after_head" },
  };
  static const char *const text_stages[][2] = {
    { "text.after_embed", "after_preprocessor" }, { "text.after_block0", "after_block0" },
    { "text.after_transformer", "after_trunk" }, { "text.pooled", "after_pool" },
    { "text_features", "after_head" },
  };
  Outputs o = run_fixtures (model, TRUE);
  guint dim = imagebind_model_out_dim (model);
  float scale = imagebind_model_logit_scale (model, IMAGEBIND_MODALITY_TEXT);
  double worst = 0;

  for (guint i = 0; i < G_N_ELEMENTS (image_stages) + G_N_ELEMENTS (text_stages); i++) {
    gboolean img = i < G_N_ELEMENTS (image_stages);
    const char *const *pair = img ? image_stages[i] : text_stages[i - G_N_ELEMENTS (image_stages)];
    g_autofree char *rel = g_strdup_printf ("openclip/tiny/outputs/%s.npy", pair[0]);
    g_autofree char *what = g_strdup_printf ("%s %s", label, pair[0]);
    g_autoptr (IbNpy) golden = ib_test_load_npy (rel);
    GArray *got = stage (img ? o.image_stages : o.text_stages, pair[1]);
    worst = MAX (worst, ib_test_assert_close (what, (const float *) got->data, got->len, golden, tol));
  }

  /* after_ln_final is computed by OpenCLIP at all 77 positions, the runtime only at the
   * pooled one: compared there (the pooled rows above), and the pooled position itself */
  {
    g_autoptr (IbNpy) eot = ib_test_load_npy ("openclip/tiny/outputs/text.eot_index.npy");
    g_autoptr (IbNpy) ln_final = ib_test_load_npy ("openclip/tiny/outputs/text.after_ln_final.npy");
    GArray *pooled = stage (o.text_stages, "after_pool");
    gsize L = ln_final->shape[1], D = ln_final->shape[2];
    g_autofree float *rows = g_new (float, N_TEXTS * D);
    for (gsize b = 0; b < N_TEXTS; b++)
      memcpy (rows + b * D, (const float *) ln_final->data + (b * L + ((const gint64 *) eot->data)[b]) * D,
          D * sizeof (float));
    g_autofree char *what = g_strdup_printf ("%s text.after_ln_final at text.eot_index", label);
    g_assert_cmpuint (pooled->len, ==, N_TEXTS * D);
    worst = MAX (worst, ib_test_assert_close_data (what, (const float *) pooled->data, rows,
            N_TEXTS * D, tol));
  }

  /* embeddings as the runtime returns them: vision unit, text unit x exp(logit_scale) */
  {
    g_autoptr (IbNpy) scale_golden = ib_test_load_npy ("openclip/tiny/outputs/logit_scale_exp.npy");
    g_autoptr (IbNpy) img_n = ib_test_load_npy ("openclip/tiny/outputs/image_features_normalized.npy");
    g_autoptr (IbNpy) txt_n = ib_test_load_npy ("openclip/tiny/outputs/text_features_normalized.npy");
    g_autoptr (IbNpy) logits = ib_test_load_npy ("openclip/tiny/outputs/logits_per_image.npy");
    g_autoptr (IbNpy) probs = ib_test_load_npy ("openclip/tiny/outputs/zero_shot_probs.npy");
    float golden_scale = ((const float *) scale_golden->data)[0];
    g_autofree float *txt_ref = normalized (txt_n->data, N_TEXTS, dim, golden_scale);
    g_autofree float *got_logits = g_new (float, 3 * N_TEXTS);
    g_autofree float *got_probs = g_new (float, 3 * N_TEXTS);
    g_autofree char *w1 = g_strdup_printf ("%s image_features_normalized", label);
    g_autofree char *w2 = g_strdup_printf ("%s text_features_normalized x logit_scale_exp", label);
    g_autofree char *w3 = g_strdup_printf ("%s logits_per_image", label);
    g_autofree char *w4 = g_strdup_printf ("%s zero_shot_probs", label);

    g_test_message ("%s logit scale %.9g, golden %.9g", label, scale, golden_scale);
    g_assert_cmpfloat (fabs (scale - golden_scale), <=, 1e-6 * golden_scale);
    worst = MAX (worst, ib_test_assert_close (w1, o.image, 3 * dim, img_n, tol));
    g_assert_cmpuint (txt_n->n_elements, ==, N_TEXTS * dim);
    worst = MAX (worst, ib_test_assert_close_data (w2, o.text, txt_ref, N_TEXTS * dim, tol));
    /* logits = scale * img_n . txt_n = img . txt (the text embedding carries the scale) */
    for (guint i = 0; i < 3; i++) {
      double max = -INFINITY, sum = 0;
      for (guint t = 0; t < N_TEXTS; t++) {
        double dot = 0;
        for (guint j = 0; j < dim; j++)
          dot += (double) o.image[i * dim + j] * o.text[t * dim + j];
        got_logits[i * N_TEXTS + t] = (float) dot;
        max = MAX (max, dot);
      }
      for (guint t = 0; t < N_TEXTS; t++)
        sum += exp (got_logits[i * N_TEXTS + t] - max);
      for (guint t = 0; t < N_TEXTS; t++)
        got_probs[i * N_TEXTS + t] = (float) (exp (got_logits[i * N_TEXTS + t] - max) / sum);
    }
    worst = MAX (worst, ib_test_assert_close (w3, got_logits, 3 * N_TEXTS, logits, tol));
    worst = MAX (worst, ib_test_assert_close (w4, got_probs, 3 * N_TEXTS, probs, tol));
  }
  outputs_clear (&o);
  return worst;
}

static void
test_goldens (gconstpointer data)
{
  const char *name = data;
  const char *path = need_file (name);
  ImageBindModel *model;

  if (!path)
    return;
  model = load (path);
  g_assert_cmpstr (imagebind_model_family (model), ==,
      g_str_has_prefix (name, "hf-") ? "hf-clip" : "openclip");
  g_test_message ("%s: worst relative error %.3g", name,
      check_goldens (name, model, g_str_equal (name, "f16") ? TOLERANCE_F16 : TOLERANCE));
  imagebind_model_unref (model);
}

/* The three weight files hold the same numbers: the same embeddings, bit for bit. */
static void
test_files_agree (void)
{
  Outputs first = { 0 };
  guint compared = 0;

  if (!ib_test_need_conformance ())
    return;
  for (guint i = 0; i < G_N_ELEMENTS (f32_names); i++) {
    const char *path = file_arg (f32_names[i]);
    ImageBindModel *model;
    Outputs o;
    if (!path)
      continue;
    model = load (path);
    o = run_fixtures (model, FALSE);
    if (compared++ == 0) {
      first = o;
    } else {
      guint dim = imagebind_model_out_dim (model);
      g_assert_cmpmem (o.image, 3 * dim * sizeof (float), first.image, 3 * dim * sizeof (float));
      g_assert_cmpmem (o.text, N_TEXTS * dim * sizeof (float), first.text,
          N_TEXTS * dim * sizeof (float));
      outputs_clear (&o);
    }
    imagebind_model_unref (model);
  }
  outputs_clear (&first);
  if (compared < 2)
    g_test_skip ("fewer than two converted files given");
}

/* ---- tokenizer: OpenCLIP's special-token rule ---- */

/* The 14 strings of preprocess/text_strings.json, in id order. */
static GPtrArray *
fixture_strings (void)
{
  g_autofree char *path = ib_test_fixture ("preprocess/text_strings.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  GError *error = NULL;
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  JsonArray *a;

  g_assert_true (json_parser_load_from_file (parser, path, &error));
  g_assert_no_error (error);
  a = json_node_get_array (json_parser_get_root (parser));
  g_assert_cmpuint (json_array_get_length (a), ==, N_TEXTS);
  for (guint i = 0; i < N_TEXTS; i++) {
    JsonObject *o = json_array_get_object_element (a, i);
    g_assert_cmpint (json_object_get_int_member (o, "id"), ==, i);
    g_ptr_array_add (out, g_strdup (json_object_get_string_member (o, "text")));
  }
  return out;
}

static void
tokenize (const ImageBindTokenizer *tok, const char *text, gint32 *ids)
{
  GError *error = NULL;
  g_assert_true (imagebind_tokenize (tok, text, -1, ids, 77, &error));
  g_assert_no_error (error);
}

static void
assert_ids (const ImageBindTokenizer *tok, const char *text, const gint32 *want, guint n)
{
  gint32 ids[77];
  tokenize (tok, text, ids);
  for (guint i = 0; i < 77; i++)
    if (ids[i] != (i < n ? want[i] : 0))
      g_error ("\"%s\": id %u is %d, expected %d", text, i, ids[i], i < n ? want[i] : 0);
}

static void
test_tokenizer (gconstpointer data)
{
  const char *name = data;
  const char *path = need_file (name);
  g_autoptr (GPtrArray) strings = NULL;
  g_autofree gint32 *golden = NULL;
  ImageBindModel *model;
  const ImageBindTokenizer *tok;
  GError *error = NULL;

  if (!path)
    return;
  model = load (path);
  tok = imagebind_model_get_tokenizer (model, &error);
  g_assert_no_error (error);
  strings = fixture_strings ();
  golden = fixture_ids ();
  {
    g_autoptr (IbNpy) eot = ib_test_load_npy ("openclip/tiny/outputs/text.eot_index.npy");
    for (guint r = 0; r < N_TEXTS; r++) {
      gint32 ids[77];
      guint at = 0;
      tokenize (tok, strings->pdata[r], ids);
      if (memcmp (ids, golden + r * 77, sizeof ids) != 0)
        g_error ("%s: the ids of string %u (\"%s\") differ from OpenCLIP's", name, r,
            (const char *) strings->pdata[r]);
      for (guint i = 1; i < 77; i++)
        if (ids[i] > ids[at])
          at = i;    /* where the runtime pools: the first largest id */
      g_assert_cmpint (at, ==, ((const gint64 *) eot->data)[r]);
    }
  }
  /* row 13 spelled out: the literal <|endoftext|> is ordinary text for OpenCLIP */
  assert_ids (tok, "before <|endoftext|> after",
      (const gint32[]) { 49406, 1348, 27, 347, 40786, 4160, 91, 285, 953, 49407 }, 10);
  /* OpenCLIP's own spellings, in any letter case, are the special ids */
  {
    gint32 a[77], b[77];
    tokenize (tok, "a <END_OF_TEXT> b <Start_of_Text>", a);
    tokenize (tok, "a", b);
    g_assert_cmpint (a[0], ==, 49406);
    g_assert_cmpint (a[1], ==, b[1]);
    g_assert_cmpint (a[2], ==, 49407);
    g_assert_cmpint (a[4], ==, 49406);
    g_assert_cmpint (a[5], ==, 49407);
    g_assert_cmpint (a[6], ==, 0);
  }
  imagebind_model_unref (model);
}

/* ---- raw media through imagebind-embed ---- */

/* The tool's (rows, cols) output at @out against @ref. */
static void
assert_tool_output (const char *what, const char *out, const float *ref, gint64 rows, gint64 cols)
{
  GError *error = NULL;
  g_autoptr (IbNpy) got = ib_npy_load (out, &error);
  g_assert_no_error (error);
  g_assert_cmpint (got->dtype, ==, IB_NPY_F32);
  g_assert_cmpint (got->shape[0], ==, rows);
  g_assert_cmpint (got->shape[1], ==, cols);
  ib_test_assert_close_data (what, got->data, ref, rows * cols, TOLERANCE_E2E);
}

static void
test_embed_tool (gconstpointer data)
{
  const char *name = data;
  const char *path = need_file (name);
  const char *tool = path ? need_file ("embed") : NULL;
  g_autofree char *dir = NULL, *out = NULL, *a = NULL, *b = NULL, *c = NULL;
  g_autoptr (GPtrArray) strings = NULL;
  g_autoptr (GPtrArray) args = NULL;
  g_autofree char *err = NULL;

  if (!tool)
    return;
  dir = g_dir_make_tmp ("ib-openclip-embed-XXXXXX", NULL);
  out = g_build_filename (dir, "out.npy", NULL);
  /* the goldens' images: vision_tensors.npy is these three PNGs after the CLIP transform */
  a = ib_test_fixture ("preprocess/image_landscape_320x241.png");
  b = ib_test_fixture ("preprocess/image_portrait_181x292.png");
  c = ib_test_fixture ("preprocess/image_small_100x80.png");
  {
    const char *vargs[] = { "--modality", "vision", "--output", out, a, b, c, NULL };
    g_autoptr (IbNpy) golden = ib_test_load_npy ("openclip/tiny/outputs/image_features_normalized.npy");
    g_autofree char *what = g_strdup_printf ("%s: PNGs through imagebind-embed", name);
    if (ib_test_run_embed_tool (tool, path, vargs, &err) != 0)
      g_error ("imagebind-embed failed: %s", err);
    assert_tool_output (what, out, golden->data, golden->shape[0], golden->shape[1]);
  }
  strings = fixture_strings ();
  args = g_ptr_array_new ();
  g_ptr_array_add (args, (gpointer) "--modality");
  g_ptr_array_add (args, (gpointer) "text");
  g_ptr_array_add (args, (gpointer) "--output");
  g_ptr_array_add (args, out);
  for (guint i = 0; i < N_TEXTS; i++) {
    g_ptr_array_add (args, (gpointer) "--text");
    g_ptr_array_add (args, strings->pdata[i]);
  }
  g_ptr_array_add (args, NULL);
  {
    g_autoptr (IbNpy) txt_n = ib_test_load_npy ("openclip/tiny/outputs/text_features_normalized.npy");
    g_autoptr (IbNpy) scale = ib_test_load_npy ("openclip/tiny/outputs/logit_scale_exp.npy");
    g_autofree float *ref = normalized (txt_n->data, N_TEXTS, txt_n->shape[1],
        ((const float *) scale->data)[0]);
    g_autofree char *what = g_strdup_printf ("%s: strings through imagebind-embed", name);
    g_clear_pointer (&err, g_free);
    if (ib_test_run_embed_tool (tool, path, (const char *const *) args->pdata, &err) != 0)
      g_error ("imagebind-embed failed: %s", err);
    assert_tool_output (what, out, ref, txt_n->shape[0], txt_n->shape[1]);
  }
  g_unlink (out);
  g_rmdir (dir);
}

/* ---- variants of a model file: other key values, another logit scale ---- */

/* A CLIP-family file to make variants of: a converted OpenCLIP file, else the ImageBind tiny
 * model's vision and text towers (*imagebind_source set). NULL (skipped) without either. */
static const char *
variant_source (gboolean *imagebind_source)
{
  const char *path = NULL;

  if (!ib_test_need_conformance ())
    return NULL;
  for (guint i = 0; !path && i < G_N_ELEMENTS (f32_names); i++)
    path = file_arg (f32_names[i]);
  *imagebind_source = path == NULL;
  if (!path)
    path = file_arg ("imagebind");
  if (!path)
    g_test_skip ("neither a converted OpenCLIP file nor the ImageBind tiny model given");
  return path;
}

/* ---- an independent float64 implementation (QuickGELU has no OpenCLIP golden here) ---- */

typedef struct {
  IbGguf *g;
  const char *m;             /* "vision" or "text" */
  gsize D, H, n_blocks;
  double eps;
  gboolean quick;
} RefTower;

static double *
ref_tensor (const RefTower *t, const char *name, gsize n)
{
  const IbGgufTensor *tensor = ib_gguf_find_tensor (t->g, name);
  double *d = g_new (double, n);
  float *f = g_new (float, n);

  if (!tensor)
    g_error ("reference: tensor %s is missing", name);
  g_assert_cmpuint (tensor->n_elements, ==, n);
  if (tensor->type == IB_GGUF_TENSOR_F32)
    memcpy (f, tensor->data, n * sizeof (float));
  else
    ib_f16_to_f32 (tensor->data, f, n);
  for (gsize i = 0; i < n; i++)
    d[i] = f[i];
  g_free (f);
  return d;
}

static guint32
ref_u32 (const RefTower *t, const char *field, guint32 fallback)
{
  g_autofree char *key = g_strdup_printf ("imagebind.%s.%s", t->m, field);
  guint32 v;
  return ib_gguf_get_u32 (t->g, key, &v) ? v : fallback;
}

static RefTower
ref_tower (IbGguf *g, const char *m)
{
  RefTower t = { g, m };
  g_autofree char *act_key = g_strdup_printf ("imagebind.%s.activation", m);
  g_autofree char *eps_key = g_strdup_printf ("imagebind.%s.layer_norm_eps", m);
  const char *family = ib_gguf_get_string (g, "imagebind.source_family");
  const char *act = ib_gguf_get_string (g, act_key);
  float eps;

  t.D = ref_u32 (&t, "embed_dim", 0);
  t.H = ref_u32 (&t, "num_heads", 0);
  t.n_blocks = ref_u32 (&t, "num_blocks", 0);
  t.quick = act && strcmp (act, "quick_gelu") == 0;
  /* GGUF.md: CLIP families default to 1e-5, ImageBind files to 1e-6 */
  t.eps = ib_gguf_get_f32 (g, eps_key, &eps) ? eps :
      family && strcmp (family, "imagebind") != 0 ? 1e-5 : 1e-6;
  return t;
}

static void
ref_layer_norm (const double *x, double *y, gsize rows, gsize D, const double *w,
    const double *b, double eps)
{
  for (gsize r = 0; r < rows; r++) {
    double mean = 0, var = 0;
    for (gsize j = 0; j < D; j++)
      mean += x[r * D + j];
    mean /= D;
    for (gsize j = 0; j < D; j++)
      var += (x[r * D + j] - mean) * (x[r * D + j] - mean);
    var /= D;
    for (gsize j = 0; j < D; j++)
      y[r * D + j] = (x[r * D + j] - mean) / sqrt (var + eps) * w[j] + b[j];
  }
}

/* y (rows, out) (+)= x (rows, in) W^T + b; W is (out, in) as nn.Linear. */
static void
ref_linear (const double *x, gsize rows, gsize in, const double *W, const double *b, gsize out,
    double *y, gboolean add)
{
  for (gsize r = 0; r < rows; r++)
    for (gsize o = 0; o < out; o++) {
      double s = b ? b[o] : 0;
      for (gsize i = 0; i < in; i++)
        s += x[r * in + i] * W[o * in + i];
      y[r * out + o] = add ? y[r * out + o] + s : s;
    }
}

static double *
ref_param (const RefTower *t, const char *prefix, const char *suffix, gsize n)
{
  g_autofree char *name = g_strconcat (prefix, suffix, NULL);
  return ref_tensor (t, name, n);
}

/* One pre-norm residual block on x (L, D), in place. */
static void
ref_block (const RefTower *t, guint index, double *x, gsize L, gboolean causal)
{
  gsize D = t->D, hd = D / t->H;
  g_autofree char *p = g_strdup_printf ("modality_trunks.%s.blocks.%u.", t->m, index);
  g_autofree double *n1w = ref_param (t, p, "norm_1.weight", D);
  g_autofree double *n1b = ref_param (t, p, "norm_1.bias", D);
  g_autofree double *win = ref_param (t, p, "attn.in_proj_weight", 3 * D * D);
  g_autofree double *bin = ref_param (t, p, "attn.in_proj_bias", 3 * D);
  g_autofree double *wout = ref_param (t, p, "attn.out_proj.weight", D * D);
  g_autofree double *bout = ref_param (t, p, "attn.out_proj.bias", D);
  g_autofree double *n2w = ref_param (t, p, "norm_2.weight", D);
  g_autofree double *n2b = ref_param (t, p, "norm_2.bias", D);
  g_autofree double *w1 = ref_param (t, p, "mlp.fc1.weight", 4 * D * D);
  g_autofree double *b1 = ref_param (t, p, "mlp.fc1.bias", 4 * D);
  g_autofree double *w2 = ref_param (t, p, "mlp.fc2.weight", 4 * D * D);
  g_autofree double *b2 = ref_param (t, p, "mlp.fc2.bias", D);
  g_autofree double *h = g_new (double, L * D), *qkv = g_new (double, L * 3 * D);
  g_autofree double *attn = g_new (double, L * D), *mid = g_new (double, L * 4 * D);
  g_autofree double *sc = g_new (double, L);

  ref_layer_norm (x, h, L, D, n1w, n1b, t->eps);
  ref_linear (h, L, D, win, bin, 3 * D, qkv, FALSE);
  for (gsize head = 0; head < t->H; head++)
    for (gsize i = 0; i < L; i++) {
      gsize n_keys = causal ? i + 1 : L;
      double max = -INFINITY, sum = 0;
      for (gsize j = 0; j < n_keys; j++) {
        double s = 0;
        for (gsize d = 0; d < hd; d++)
          s += qkv[i * 3 * D + head * hd + d] * qkv[j * 3 * D + D + head * hd + d];
        sc[j] = s / sqrt ((double) hd);
        max = MAX (max, sc[j]);
      }
      for (gsize j = 0; j < n_keys; j++)
        sum += (sc[j] = exp (sc[j] - max));
      for (gsize d = 0; d < hd; d++) {
        double v = 0;
        for (gsize j = 0; j < n_keys; j++)
          v += sc[j] / sum * qkv[j * 3 * D + 2 * D + head * hd + d];
        attn[i * D + head * hd + d] = v;
      }
    }
  ref_linear (attn, L, D, wout, bout, D, x, TRUE);
  ref_layer_norm (x, h, L, D, n2w, n2b, t->eps);
  ref_linear (h, L, D, w1, b1, 4 * D, mid, FALSE);
  for (gsize i = 0; i < L * 4 * D; i++)
    mid[i] = t->quick ? mid[i] / (1 + exp (-1.702 * mid[i])) : 0.5 * mid[i] * (1 + erf (mid[i] / sqrt (2)));
  ref_linear (mid, L, 4 * D, w2, b2, D, x, TRUE);
}

/* L2-normalises @x (n) into @out as float, times @scale. */
static void
ref_finish (const double *x, gsize n, double scale, float *out)
{
  double sq = 0;
  for (gsize j = 0; j < n; j++)
    sq += x[j] * x[j];
  for (gsize j = 0; j < n; j++)
    out[j] = (float) (x[j] / MAX (sqrt (sq), 1e-12) * scale);
}

/* The pooled token (D) through the head LayerNorm and projection (E, D), then ref_finish. */
static void
ref_head (const RefTower *t, const double *token, const char *ln, const char *proj, double scale,
    float *out)
{
  guint32 E;
  g_autofree char *ln_w = g_strconcat (ln, ".weight", NULL), *ln_b = g_strconcat (ln, ".bias", NULL);
  g_autofree double *w = ref_tensor (t, ln_w, t->D), *b = ref_tensor (t, ln_b, t->D);
  g_autofree double *pooled = g_new (double, t->D);
  g_autofree double *e = NULL, *P = NULL;

  g_assert_true (ib_gguf_get_u32 (t->g, "imagebind.out_embed_dim", &E));
  e = g_new (double, E);
  P = ref_tensor (t, proj, (gsize) E * t->D);
  ref_layer_norm (token, pooled, 1, t->D, w, b, t->eps);
  ref_linear (pooled, 1, t->D, P, NULL, E, e, FALSE);
  ref_finish (e, E, scale, out);
}

/* One image (3, S, S): a patch stem of kernel (kt, P, P) over the image repeated to kt frames
 * (ImageBind) or taken once (CLIP, kt = 1), class token, positions, ln_pre, blocks, head. */
static void
ref_vision (IbGguf *g, const float *image, float *out)
{
  RefTower t = ref_tower (g, "vision");
  guint32 S = ref_u32 (&t, "image_size", 224);
  guint32 k[3] = { 2, 14, 14 };
  const guint32 *kv;
  gsize n_kv, D = t.D;

  if (ib_gguf_get_u32_array (g, "imagebind.vision.kernel_size", &kv, &n_kv) && n_kv == 3)
    memcpy (k, kv, sizeof k);
  gsize P = k[1], grid = S / P, L = 1 + grid * grid, K = 3 * k[0] * P * P;
  g_autofree double *W = ref_tensor (&t, "modality_preprocessors.vision.rgbt_stem.proj.1.weight", D * K);
  g_autofree double *cls = ref_tensor (&t, "modality_preprocessors.vision.cls_token", D);
  g_autofree double *pos = ref_tensor (&t, "modality_preprocessors.vision.pos_embedding_helper.pos_embed", L * D);
  g_autofree double *lw = ref_tensor (&t, "modality_trunks.vision.pre_transformer_layer.0.weight", D);
  g_autofree double *lb = ref_tensor (&t, "modality_trunks.vision.pre_transformer_layer.0.bias", D);
  g_autofree double *x = g_new0 (double, L * D);

  for (gsize d = 0; d < D; d++)
    x[d] = cls[d] + pos[d];
  for (gsize py = 0; py < grid; py++)
    for (gsize px = 0; px < grid; px++) {
      double *tok = x + (1 + py * grid + px) * D;
      for (gsize d = 0; d < D; d++) {
        double s = 0;
        /* weight (D, 3, kt, P, P); every time step sees the same frame */
        for (gsize c = 0; c < 3; c++)
          for (gsize kt = 0; kt < k[0]; kt++)
            for (gsize dy = 0; dy < P; dy++)
              for (gsize dx = 0; dx < P; dx++)
                s += W[d * K + ((c * k[0] + kt) * P + dy) * P + dx] *
                    image[(c * S + py * P + dy) * S + px * P + dx];
        tok[d] = s + pos[(1 + py * grid + px) * D + d];
      }
    }
  ref_layer_norm (x, x, L, D, lw, lb, t.eps);
  for (guint b = 0; b < t.n_blocks; b++)
    ref_block (&t, b, x, L, FALSE);
  ref_head (&t, x, "modality_heads.vision.0", "modality_heads.vision.2.weight", 1.0, out);
}

/* One sequence of ids: token embedding + positions, causal blocks, the head at the first
 * largest id, unit length times min(exp(log scale), 100). */
static void
ref_text (IbGguf *g, const gint32 *ids, float *out)
{
  RefTower t = ref_tower (g, "text");
  gsize D = t.D, L = ref_u32 (&t, "context_length", 77), at = 0;
  const IbGgufTensor *emb = ib_gguf_find_tensor (g, "modality_preprocessors.text.token_embedding.weight");
  g_autofree double *E = NULL;
  g_autofree double *pos = ref_tensor (&t, "modality_preprocessors.text.pos_embed", L * D);
  g_autofree double *log_scale = ref_tensor (&t, "modality_postprocessors.text.1.log_logit_scale", 1);
  g_autofree double *x = g_new (double, L * D);

  g_assert_nonnull (emb);
  E = ref_tensor (&t, emb->name, emb->n_elements);
  for (gsize i = 0; i < L; i++) {
    g_assert_cmpuint ((gsize) ids[i] * D, <, emb->n_elements);
    for (gsize d = 0; d < D; d++)
      x[i * D + d] = E[(gsize) ids[i] * D + d] + pos[i * D + d];
    if (ids[i] > ids[at])
      at = i;
  }
  for (guint b = 0; b < t.n_blocks; b++)
    ref_block (&t, b, x, L, TRUE);
  ref_head (&t, x + at * D, "modality_heads.text.proj.0", "modality_heads.text.proj.1.weight",
      MIN (exp (log_scale[0]), 100.0), out);
}

/* @path's embeddings of the fixture inputs by the runtime and by the float64 reference; both
 * outputs newly allocated (3 + N_TEXTS rows). */
static void
runtime_and_reference (const char *path, float **runtime, float **reference, guint *dim)
{
  ImageBindModel *model = load (path);
  Outputs o = run_fixtures (model, FALSE);
  g_autoptr (IbNpy) images = ib_test_load_npy ("preprocess/vision_tensors.npy");
  g_autofree gint32 *ids = fixture_ids ();
  GError *error = NULL;
  IbGguf *g = ib_gguf_open (path, &error);
  gsize image_size = images->n_elements / images->shape[0];

  g_assert_no_error (error);
  *dim = imagebind_model_out_dim (model);
  *runtime = g_new (float, (3 + N_TEXTS) * *dim);
  *reference = g_new (float, (3 + N_TEXTS) * *dim);
  memcpy (*runtime, o.image, 3 * *dim * sizeof (float));
  memcpy (*runtime + 3 * *dim, o.text, N_TEXTS * *dim * sizeof (float));
  for (guint i = 0; i < 3; i++)
    ref_vision (g, (const float *) images->data + i * image_size, *reference + i * *dim);
  for (guint i = 0; i < N_TEXTS; i++)
    ref_text (g, ids + i * 77, *reference + (3 + i) * *dim);
  ib_gguf_free (g);
  outputs_clear (&o);
  imagebind_model_unref (model);
}

/* The reference reproduces OpenCLIP's goldens (so it is a valid judge of what they do not
 * cover), and the runtime matches it on a QuickGELU variant with another logit scale: the
 * held-out model's kind (-quickgelu configs, OpenAI-trained weights). */
static void
test_quick_gelu (void)
{
  gboolean from_imagebind = FALSE;
  const char *src = variant_source (&from_imagebind);
  static const char *const towers[] = { "vision", "text" };
  g_autofree float *rt = NULL, *ref = NULL, *rt_q = NULL, *ref_q = NULL;
  g_autofree char *variant = NULL;
  guint dim;

  if (!src)
    return;
  runtime_and_reference (src, &rt, &ref, &dim);
  if (!from_imagebind) {
    g_autoptr (IbNpy) img = ib_test_load_npy ("openclip/tiny/outputs/image_features_normalized.npy");
    g_autoptr (IbNpy) txt = ib_test_load_npy ("openclip/tiny/outputs/text_features_normalized.npy");
    g_autoptr (IbNpy) scale = ib_test_load_npy ("openclip/tiny/outputs/logit_scale_exp.npy");
    g_autofree float *txt_ref = normalized (txt->data, N_TEXTS, dim, ((const float *) scale->data)[0]);
    ib_test_assert_close ("float64 reference vs OpenCLIP image", ref, 3 * dim, img, TOLERANCE);
    ib_test_assert_close_data ("float64 reference vs OpenCLIP text", ref + 3 * dim, txt_ref,
        N_TEXTS * dim, TOLERANCE);
  }
  ib_test_assert_close_data ("runtime vs float64 reference, exact GELU (image)", rt, ref,
      3 * dim, TOLERANCE);
  ib_test_assert_close_data ("runtime vs float64 reference, exact GELU (text)", rt + 3 * dim,
      ref + 3 * dim, N_TEXTS * dim, TOLERANCE);

  {
    /* ln 50: another scale than the fixture's 1/0.07, below the clamp at 100 */
    static const char *const vision_text[] = { "vision", "text", NULL };
    IbTestKeyEdit keys[] = {
      IB_TEST_STR ("imagebind.vision.activation", "quick_gelu"),
      IB_TEST_STR ("imagebind.text.activation", "quick_gelu"),
    };
    IbTestModelEdit edit = { .modalities = vision_text, .keys = keys, .n_keys = 2,
      .fill_tensors = "modality_postprocessors.text.1.log_logit_scale", .fill_value = 3.912023f };
    variant = ib_test_model_edit (src, &edit);
  }
  runtime_and_reference (variant, &rt_q, &ref_q, &dim);
  ib_test_assert_close_data ("runtime vs float64 reference, QuickGELU (image)", rt_q, ref_q,
      3 * dim, TOLERANCE);
  ib_test_assert_close_data ("runtime vs float64 reference, QuickGELU (text)", rt_q + 3 * dim,
      ref_q + 3 * dim, N_TEXTS * dim, TOLERANCE);
  /* the switch is real: QuickGELU moves the embeddings far beyond the tolerance */
  for (guint k = 0; k < 2; k++) {
    gsize off = k ? 3 * dim : 0, n = (k ? N_TEXTS : 3) * dim;
    g_autofree float *unit_g = normalized (rt + off, n / dim, dim, 1.0);
    g_autofree float *unit_q = normalized (rt_q + off, n / dim, dim, 1.0);
    double moved = ib_test_rel_error (unit_q, unit_g, n);
    g_test_message ("%s: QuickGELU instead of GELU moves the unit embeddings by %.3g",
        towers[k], moved);
    g_assert_cmpfloat (moved, >, 100 * TOLERANCE);
  }
  {
    ImageBindModel *model = load (variant);
    g_assert_cmpfloat_with_epsilon (imagebind_model_logit_scale (model, IMAGEBIND_MODALITY_TEXT),
        50.0, 1e-4);
    imagebind_model_unref (model);
  }
  g_unlink (variant);
}

/* The activation switch itself, on values where the two functions differ most. */
static void
test_quick_gelu_op (void)
{
  float x[] = { -1e30f, -100.0f, -5.0f, -1.0f, -0.1f, 0.0f, 0.1f, 1.0f, 3.0f, 100.0f, 1e30f };
  float y[G_N_ELEMENTS (x)], z[G_N_ELEMENTS (x)];

  memcpy (y, x, sizeof x);
  memcpy (z, x, sizeof x);
  ib_quick_gelu (y, G_N_ELEMENTS (x), 1);
  ib_gelu (z, G_N_ELEMENTS (x), 1);
  for (guint i = 0; i < G_N_ELEMENTS (x); i++) {
    double q = (double) x[i] / (1.0 + exp (-1.702 * (double) x[i]));
    double e = 0.5 * x[i] * (1.0 + erf (x[i] / sqrt (2.0)));
    if (x[i] < -1e29)
      q = e = 0;   /* the limits; exp overflows in double too */
    g_assert_cmpfloat (fabs (y[i] - q), <=, 2e-7 * MAX (1.0, fabs (q)));
    /* GELU: within 2e-7 on both paths (the AVX-512 path's erf is within about 2 ulps) */
    g_assert_cmpfloat (fabs (z[i] - e), <=, 2e-7 * MAX (1.0, fabs (e)));
  }
  /* at x = 1: 0.8458 (QuickGELU) vs 0.8413 (GELU) */
  g_assert_cmpfloat (fabs (y[7] - z[7]), >, 4e-3);
}

/* ---- the new keys: defaults, values used, invalid values refused at load ---- */

/* @src with the one change @o is refused at load, the error containing @must_contain. */
static void
expect_refused (const char *src, IbTestKeyEdit key, const char *must_contain)
{
  g_autofree char *path = ib_test_clip_variant (src, &key, 1);
  GError *error = NULL;
  ImageBindModel *model = imagebind_model_load (path, &error);

  g_assert_null (model);
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL);
  g_test_message ("%s", error->message);
  if (!strstr (error->message, must_contain))
    g_error ("error \"%s\" does not mention \"%s\"", error->message, must_contain);
  g_error_free (error);
  g_unlink (path);
}

static void
test_invalid_keys (void)
{
  gboolean from_imagebind;
  const char *src = variant_source (&from_imagebind);

  if (!src)
    return;
  expect_refused (src, (IbTestKeyEdit) IB_TEST_STR ("imagebind.vision.activation", "swish"),
      "imagebind.vision.activation is \"swish\": expected the string \"gelu\"");
  expect_refused (src, (IbTestKeyEdit) IB_TEST_U32 ("imagebind.text.activation", 1),
      "imagebind.text.activation is not a string");
  expect_refused (src,
      (IbTestKeyEdit) IB_TEST_STR ("tokenizer.clip.special_tokens", "sentencepiece"),
      "tokenizer.clip.special_tokens is \"sentencepiece\": expected \"openai\"");
  expect_refused (src, (IbTestKeyEdit) IB_TEST_STR ("imagebind.source_family", "siglip"),
      "imagebind.source_family is \"siglip\"");
  expect_refused (src,
      (IbTestKeyEdit) IB_TEST_F32S ("imagebind.vision.image_mean", 2, 0.5f, 0.5f),
      "imagebind.vision.image_mean must be an array of 3 finite floats");
  expect_refused (src,
      (IbTestKeyEdit) IB_TEST_F32S ("imagebind.vision.image_mean", 3, 0.5f, NAN, 0.5f),
      "imagebind.vision.image_mean must be an array of 3 finite floats");
  expect_refused (src,
      (IbTestKeyEdit) IB_TEST_F32 ("imagebind.vision.image_mean", 0.5f),
      "imagebind.vision.image_mean must be an array");
  expect_refused (src,
      (IbTestKeyEdit) IB_TEST_F32S ("imagebind.vision.image_std", 3, 0.2f, 0.0f, 0.2f),
      "imagebind.vision.image_std must be an array of 3 finite floats (R, G, B), each > 0");
  expect_refused (src,
      (IbTestKeyEdit) IB_TEST_F32S ("imagebind.vision.image_std", 3, 0.2f, -0.2f, 0.2f),
      "each > 0");
  expect_refused (src,
      (IbTestKeyEdit) IB_TEST_F32S ("imagebind.vision.image_std", 4, 0.2f, 0.2f, 0.2f, 0.2f),
      "imagebind.vision.image_std must be an array of 3");
  expect_refused (src,
      (IbTestKeyEdit) IB_TEST_F32 ("imagebind.text.layer_norm_eps", 0.0f),
      "imagebind.text.layer_norm_eps must be a float in (0, 1)");
}

/* Image size, mean and std come from the file, into every image front end: the library's
 * parameters and imagebind-embed on a PNG. */
static void
test_mean_std (void)
{
  gboolean from_imagebind;
  const char *src = variant_source (&from_imagebind);
  const char *tool = file_arg ("embed");
  static const float mean[3] = { 0.5f, 0.4f, 0.3f }, std[3] = { 0.2f, 0.25f, 0.3f };
  IbTestKeyEdit keys[] = {
    IB_TEST_F32S ("imagebind.vision.image_mean", 3, 0.5f, 0.4f, 0.3f),
    IB_TEST_F32S ("imagebind.vision.image_std", 3, 0.2f, 0.25f, 0.3f),
  };
  g_autofree char *path = NULL;
  ImageBindModel *model, *orig;
  ImageBindImageParams p, q;

  if (!src)
    return;
  path = ib_test_clip_variant (src, keys, G_N_ELEMENTS (keys));
  model = load (path);
  orig = load (src);
  p = imagebind_image_params_from_model (model);
  q = imagebind_image_params_from_model (orig);
  g_assert_cmpmem (p.mean, sizeof mean, mean, sizeof mean);
  g_assert_cmpmem (p.std, sizeof std, std, sizeof std);
  {
    ImageBindInputGeometry g;
    imagebind_model_input_geometry (model, &g);
    g_assert_cmpuint (p.size, ==, g.image_size);
  }
  if (tool) {
    /* the tool's embedding of a PNG is the runtime's embedding of the pixels normalised with
     * the file's mean/std, and differs from the one with the original file's values */
    g_autoptr (IbNpy) rgb = ib_test_load_npy ("preprocess/image_small_100x80.rgb.npy");
    g_autofree char *png = ib_test_fixture ("preprocess/image_small_100x80.png");
    g_autofree char *dir = g_dir_make_tmp ("ib-openclip-mean-XXXXXX", NULL);
    g_autofree char *out = g_build_filename (dir, "out.npy", NULL);
    const char *args[] = { "--modality", "vision", "--output", out, png, NULL };
    guint dim = imagebind_model_out_dim (model);
    g_autofree float *tensor = g_new (float, 3 * (gsize) p.size * p.size);
    g_autofree float *want = g_new (float, dim), *other = g_new (float, dim);
    ImageBindContext *ctx = imagebind_context_new (model, NULL);
    ImageBindContext *ctx_orig = imagebind_context_new (orig, NULL);
    gint64 shape[4] = { 1, 3, p.size, p.size };
    g_autofree char *err = NULL;
    GError *error = NULL;

    g_assert_cmpint (rgb->dtype, ==, IB_NPY_U8);
    g_assert_true (imagebind_image_to_tensor (&p, rgb->data, rgb->shape[1], rgb->shape[0],
        rgb->shape[1] * 3, tensor, &error));
    g_assert_true (imagebind_embed (ctx, IMAGEBIND_MODALITY_VISION, tensor, shape, 4, want, &error));
    g_assert_true (imagebind_image_to_tensor (&q, rgb->data, rgb->shape[1], rgb->shape[0],
        rgb->shape[1] * 3, tensor, &error));
    g_assert_true (imagebind_embed (ctx_orig, IMAGEBIND_MODALITY_VISION, tensor, shape, 4, other,
        &error));
    g_assert_no_error (error);
    if (ib_test_run_embed_tool (tool, path, args, &err) != 0)
      g_error ("imagebind-embed failed: %s", err);
    assert_tool_output ("PNG through imagebind-embed with the file's mean/std", out, want, 1, dim);
    g_assert_cmpfloat (ib_test_rel_error (want, other, dim), >, 100 * TOLERANCE_E2E);
    imagebind_context_free (ctx);
    imagebind_context_free (ctx_orig);
    g_unlink (out);
    g_rmdir (dir);
  }
  imagebind_model_unref (model);
  imagebind_model_unref (orig);
  g_unlink (path);
}

/* A CLIP file has two towers: the others are refused, naming the file and what it holds. */
static void
test_missing_towers (void)
{
  gboolean from_imagebind;
  const char *src = variant_source (&from_imagebind);
  const char *tool = file_arg ("embed");
  IbTestKeyEdit family = IB_TEST_STR ("imagebind.source_family", "openclip");
  g_autofree char *path = NULL, *want = NULL;
  ImageBindModel *model;
  ImageBindContext *ctx;
  GError *error = NULL;
  float out[64];
  g_autofree float *zeros = g_new0 (float, 3 * 128 * 204);

  if (!src)
    return;
  path = ib_test_clip_variant (src, &family, 1);
  model = load (path);
  g_assert_cmpstr (imagebind_model_family (model), ==, "openclip");
  g_assert_true (imagebind_model_require_modality (model, IMAGEBIND_MODALITY_VISION, path,
      "imagebindvision", &error));
  g_assert_no_error (error);
  g_assert_false (imagebind_model_require_modality (model, IMAGEBIND_MODALITY_AUDIO, path,
      "imagebindaudio", &error));
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_NO_MODALITY);
  want = g_strdup_printf ("model %s (openclip) has only vision and text towers; imagebindaudio "
      "needs an audio tower", path);
  g_assert_cmpstr (error->message, ==, want);
  g_clear_error (&error);
  g_assert_false (imagebind_model_require_modality (model, IMAGEBIND_MODALITY_DEPTH, path,
      "imagebinddepth", &error));
  g_assert_true (g_str_has_suffix (error->message, "imagebinddepth needs a depth tower"));
  g_clear_error (&error);

  ctx = imagebind_context_new (model, NULL);
  g_assert_false (imagebind_embed (ctx, IMAGEBIND_MODALITY_AUDIO, zeros,
      (gint64[]) { 1, 3, 1, 128, 204 }, 5, out, &error));
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_NO_MODALITY);
  g_clear_error (&error);
  imagebind_context_free (ctx);

  if (tool) {
    g_autofree char *wav = ib_test_fixture ("preprocess/audio_16k_mono_3s.wav");
    const char *args[] = { "--modality", "audio", wav, NULL };
    g_autofree char *err = NULL;
    g_autofree char *tool_want = g_strdup_printf ("model %s (openclip) has only vision and text "
        "towers; imagebind-embed needs an audio tower", path);
    g_assert_cmpint (ib_test_run_embed_tool (tool, path, args, &err), !=, 0);
    if (!strstr (err, tool_want))
      g_error ("imagebind-embed said \"%s\", not \"%s\"", err, tool_want);
  }
  imagebind_model_unref (model);
  g_unlink (path);
}

/* ---- a CLIP of other sizes, against the float64 reference (the held-out model's kind) ---- */

/* tests/meson.build's synthetic_clip_gguf: test_convert.py's generated CLIP (QuickGELU,
 * patch 16 at 224, 3 and 5 heads, context 16, vocabulary 600, non-square projections, another
 * logit scale) converted from each of its three files. */
static const char *const synthetic_names[] = {
  "synthetic-oc-safetensors", "synthetic-oc-bin", "synthetic-hf"
};

/* OpenAI CLIP's mean/std, what vision_tensors.npy is normalised with and GGUF.md's default */
static const double clip_mean[3] = { 0.48145466, 0.4578275, 0.40821073 };
static const double clip_std[3] = { 0.26862954, 0.26130258, 0.27577711 };

/* The file's image_mean/std keys, else CLIP's (GGUF.md), read here rather than from the runtime. */
static void
file_mean_std (IbGguf *g, double mean[3], double std[3])
{
  float v[3];
  gsize n;

  for (guint c = 0; c < 3; c++) {
    mean[c] = clip_mean[c];
    std[c] = clip_std[c];
  }
  if (ib_gguf_get_f32_array (g, "imagebind.vision.image_mean", v, 3, &n) && n == 3)
    for (guint c = 0; c < 3; c++)
      mean[c] = v[c];
  if (ib_gguf_get_f32_array (g, "imagebind.vision.image_std", v, 3, &n) && n == 3)
    for (guint c = 0; c < 3; c++)
      std[c] = v[c];
}

/* vision_tensors.npy (the three PNGs, CLIP-normalised) renormalised with @g's mean/std:
 * the pixels are (x * clip_std + clip_mean), then (pixel - mean) / std, in float64. */
static float *
renormalised_images (IbGguf *g, const IbNpy *images)
{
  double mean[3], std[3];
  gsize plane = images->shape[2] * images->shape[3];
  float *out = g_new (float, images->n_elements);

  file_mean_std (g, mean, std);
  for (gsize i = 0; i < images->n_elements; i++) {
    guint c = (i / plane) % 3;
    double pixel = ((const float *) images->data)[i] * clip_std[c] + clip_mean[c];
    out[i] = (float) ((pixel - mean[c]) / std[c]);
  }
  return out;
}

/* The runtime's vision and text embeddings of @name's file (the fixture images, the fixture
 * strings through the file's tokenizer) against the float64 reference, and the same inputs
 * as PNGs and strings through imagebind-embed. */
static void
test_synthetic (gconstpointer data)
{
  const char *name = data;
  const char *path = need_file (name);
  const char *tool = path ? need_file ("embed") : NULL;
  g_autoptr (IbNpy) images = NULL;
  g_autoptr (GPtrArray) strings = NULL;
  g_autofree float *input = NULL, *rt = NULL, *ref = NULL;
  g_autofree gint32 *ids = NULL;
  g_autofree char *dir = NULL, *out = NULL, *a = NULL, *b = NULL, *c = NULL, *err = NULL;
  g_autoptr (GPtrArray) args = NULL;
  ImageBindModel *model;
  ImageBindContextParams params = imagebind_context_default_params ();
  ImageBindContext *ctx;
  const ImageBindTokenizer *tok;
  GError *error = NULL;
  IbGguf *g;
  guint32 S, L, V, dim;
  gsize image_n;

  if (!tool)
    return;
  model = load (path);
  g = ib_gguf_open (path, &error);
  g_assert_no_error (error);
  dim = imagebind_model_out_dim (model);
  /* what makes it another model than tiny: the runtime must take every size from the file */
  g_assert_true (ib_gguf_get_u32 (g, "imagebind.vision.image_size", &S));
  g_assert_true (ib_gguf_get_u32 (g, "imagebind.text.context_length", &L));
  g_assert_true (ib_gguf_get_u32 (g, "imagebind.text.vocab_size", &V));
  g_assert_cmpuint (S, ==, 224);
  g_assert_cmpuint (L, ==, 16);
  g_assert_cmpuint (V, ==, 600);
  g_assert_cmpuint (dim, ==, 24);
  g_assert_cmpstr (ib_gguf_get_string (g, "imagebind.vision.activation"), ==, "quick_gelu");
  g_assert_cmpstr (ib_gguf_get_string (g, "imagebind.text.activation"), ==, "quick_gelu");

  params.n_threads = 2;
  ctx = imagebind_context_new (model, &params);
  images = ib_test_load_npy ("preprocess/vision_tensors.npy");
  image_n = images->n_elements / images->shape[0];
  input = renormalised_images (g, images);
  strings = fixture_strings ();
  rt = g_new (float, (3 + N_TEXTS) * dim);
  ref = g_new (float, (3 + N_TEXTS) * dim);
  ids = g_new0 (gint32, N_TEXTS * L);
  g_assert_true (imagebind_embed (ctx, IMAGEBIND_MODALITY_VISION, input, images->shape,
      images->n_dims, rt, &error));
  g_assert_no_error (error);
  tok = imagebind_model_get_tokenizer (model, &error);
  g_assert_no_error (error);
  for (guint r = 0; r < N_TEXTS; r++) {
    gint32 *row = ids + r * L;
    guint last = 0;
    g_assert_true (imagebind_tokenize (tok, strings->pdata[r], -1, row, L, &error));
    g_assert_no_error (error);
    /* the vocabulary's own special ids: start V-2, one end V-1, then padding 0 */
    g_assert_cmpint (row[0], ==, (gint32) V - 2);
    for (guint i = 1; i < L; i++)
      if (row[i] != 0)
        last = i;
    g_assert_cmpint (row[last], ==, (gint32) V - 1);
    for (guint i = 1; i < last; i++)
      g_assert_cmpint (row[i], <, (gint32) V - 2);
  }
  g_assert_true (imagebind_embed_text (ctx, ids, N_TEXTS, rt + 3 * dim, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < 3; i++)
    ref_vision (g, input + i * image_n, ref + i * dim);
  for (guint i = 0; i < N_TEXTS; i++)
    ref_text (g, ids + i * L, ref + (3 + i) * dim);
  {
    g_autofree char *what_v = g_strdup_printf ("%s: runtime vs float64 reference (image)", name);
    g_autofree char *what_t = g_strdup_printf ("%s: runtime vs float64 reference (text)", name);
    ib_test_assert_close_data (what_v, rt, ref, 3 * dim, TOLERANCE);
    ib_test_assert_close_data (what_t, rt + 3 * dim, ref + 3 * dim, N_TEXTS * dim, TOLERANCE);
  }

  /* raw PNGs and strings through imagebind-embed */
  dir = g_dir_make_tmp ("ib-synthetic-embed-XXXXXX", NULL);
  out = g_build_filename (dir, "out.npy", NULL);
  a = ib_test_fixture ("preprocess/image_landscape_320x241.png");
  b = ib_test_fixture ("preprocess/image_portrait_181x292.png");
  c = ib_test_fixture ("preprocess/image_small_100x80.png");
  {
    const char *vargs[] = { "--modality", "vision", "--output", out, a, b, c, NULL };
    g_autofree char *what = g_strdup_printf ("%s: PNGs through imagebind-embed vs reference", name);
    if (ib_test_run_embed_tool (tool, path, vargs, &err) != 0)
      g_error ("imagebind-embed failed: %s", err);
    assert_tool_output (what, out, ref, 3, dim);
  }
  args = g_ptr_array_new ();
  g_ptr_array_add (args, (gpointer) "--modality");
  g_ptr_array_add (args, (gpointer) "text");
  g_ptr_array_add (args, (gpointer) "--output");
  g_ptr_array_add (args, out);
  for (guint i = 0; i < N_TEXTS; i++) {
    g_ptr_array_add (args, (gpointer) "--text");
    g_ptr_array_add (args, strings->pdata[i]);
  }
  g_ptr_array_add (args, NULL);
  {
    g_autofree char *what = g_strdup_printf ("%s: strings through imagebind-embed vs reference",
        name);
    g_clear_pointer (&err, g_free);
    if (ib_test_run_embed_tool (tool, path, (const char *const *) args->pdata, &err) != 0)
      g_error ("imagebind-embed failed: %s", err);
    assert_tool_output (what, out, ref + 3 * dim, N_TEXTS, dim);
  }
  g_unlink (out);
  g_rmdir (dir);
  imagebind_context_free (ctx);
  ib_gguf_free (g);
  imagebind_model_unref (model);
}

/* The three files of the generated model hold the same text tower and tokenizer: the same
 * text embeddings, bit for bit (their images differ only by mean/std: an HF config.json has
 * none, so that file gets CLIP's). */
static void
test_synthetic_agree (void)
{
  g_autoptr (IbNpy) images = NULL;
  g_autoptr (GPtrArray) strings = NULL;
  float *first = NULL;
  guint dim = 0;

  for (guint f = 0; f < G_N_ELEMENTS (synthetic_names); f++) {
    const char *path = need_file (synthetic_names[f]);
    ImageBindModel *model;
    ImageBindContext *ctx;
    ImageBindContextParams params = imagebind_context_default_params ();
    ImageBindInputGeometry geo;
    const ImageBindTokenizer *tok;
    GError *error = NULL;
    g_autofree gint32 *ids = NULL;
    g_autofree float *text = NULL;

    if (!path)
      break;
    model = load (path);
    imagebind_model_input_geometry (model, &geo);
    dim = imagebind_model_out_dim (model);
    tok = imagebind_model_get_tokenizer (model, &error);
    g_assert_no_error (error);
    if (!strings)
      strings = fixture_strings ();
    ids = g_new0 (gint32, N_TEXTS * geo.context_length);
    for (guint r = 0; r < N_TEXTS; r++)
      g_assert_true (imagebind_tokenize (tok, strings->pdata[r], -1,
          ids + r * geo.context_length, geo.context_length, &error));
    text = g_new (float, N_TEXTS * dim);
    ctx = imagebind_context_new (model, &params);
    g_assert_true (imagebind_embed_text (ctx, ids, N_TEXTS, text, &error));
    g_assert_no_error (error);
    if (!first)
      first = g_steal_pointer (&text);
    else
      g_assert_cmpmem (text, N_TEXTS * dim * sizeof (float), first, N_TEXTS * dim * sizeof (float));
    imagebind_context_free (ctx);
    imagebind_model_unref (model);
  }
  g_free (first);
}

/* A file without the new keys is an ImageBind file: OpenAI special tokens (row 13 as
 * ImageBind's tokenizer gives it), CLIP mean/std, family "imagebind". */
static void
test_old_file_defaults (void)
{
  const char *path = need_file ("imagebind");
  g_autoptr (IbNpy) ids = NULL;
  ImageBindModel *model;
  const ImageBindTokenizer *tok;
  ImageBindImageParams p, d = imagebind_image_default_params ();
  GError *error = NULL;
  gint32 got[77];

  if (!path)
    return;
  model = load (path);
  g_assert_cmpstr (imagebind_model_family (model), ==, "imagebind");
  p = imagebind_image_params_from_model (model);
  g_assert_cmpmem (&p, sizeof p, &d, sizeof d);
  tok = imagebind_model_get_tokenizer (model, &error);
  g_assert_no_error (error);
  ids = ib_test_load_npy ("preprocess/text_tokens.npy");
  tokenize (tok, "before <|endoftext|> after", got);
  for (guint i = 0; i < 77; i++)
    g_assert_cmpint (got[i], ==, ((const gint64 *) ids->data)[13 * 77 + i]);
  g_assert_cmpint (got[2], ==, 49407);
  imagebind_model_unref (model);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  files = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (int i = 1; i < argc; i++) {
    const char *eq = strchr (argv[i], '=');
    if (eq && eq[1])
      g_hash_table_insert (files, g_strndup (argv[i], eq - argv[i]), g_strdup (eq + 1));
  }

  for (guint i = 0; i < G_N_ELEMENTS (f32_names); i++) {
    g_autofree char *goldens = g_strdup_printf ("/openclip/goldens/%s", f32_names[i]);
    g_autofree char *tokens = g_strdup_printf ("/openclip/tokenizer/%s", f32_names[i]);
    g_autofree char *tool = g_strdup_printf ("/openclip/embed-tool/%s", f32_names[i]);
    g_test_add_data_func (goldens, f32_names[i], test_goldens);
    g_test_add_data_func (tokens, f32_names[i], test_tokenizer);
    g_test_add_data_func (tool, f32_names[i], test_embed_tool);
  }
  g_test_add_data_func ("/openclip/goldens/f16", "f16", test_goldens);
  g_test_add_func ("/openclip/files-agree", test_files_agree);
  g_test_add_func ("/openclip/quick-gelu", test_quick_gelu);
  g_test_add_func ("/openclip/quick-gelu-op", test_quick_gelu_op);
  g_test_add_func ("/openclip/keys/invalid", test_invalid_keys);
  g_test_add_func ("/openclip/keys/mean-std", test_mean_std);
  g_test_add_func ("/openclip/keys/missing-towers", test_missing_towers);
  g_test_add_func ("/openclip/keys/old-file-defaults", test_old_file_defaults);
  for (guint i = 0; i < G_N_ELEMENTS (synthetic_names); i++) {
    g_autofree char *path = g_strdup_printf ("/openclip/synthetic/%s", synthetic_names[i]);
    g_test_add_data_func (path, synthetic_names[i], test_synthetic);
  }
  g_test_add_func ("/openclip/synthetic/files-agree", test_synthetic_agree);
  return g_test_run ();
}
