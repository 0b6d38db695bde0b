/* The int8 path of q8 model files (models/q8.c): the AVX-512 VNNI kernels against the plain C
 * reference, to the bit (integer sums and F32 layer outputs, every tile edge, both kernels);
 * the activation quantiser's two versions; weight quantisation against hand-computed values;
 * the layer's error against the F32 product; random models in q8 against F32; and q8 model
 * files the loader must refuse. */
#include "gguf-builder.h"
#include "imagebind.h"
#include "model-private.h"
#include "ops.h"
#include "q8.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

static guint64 rng_state = 0x243f6a8885a308d3ull;

static guint32
rnd (void)
{
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (guint32) (rng_state >> 33);
}

static float
rnd_float (void)
{
  return (float) (rnd () % 20001) / 10000.0f - 1.0f;
}

static gboolean
need_vnni (void)
{
  if (!ib_q8_have_vnni ()) {
    g_test_skip ("this CPU has no AVX-512 VNNI: only the reference path exists here");
    return FALSE;
  }
  return TRUE;
}

/* Integer sums: every size around the kernels' tiles (4 x 4 dot products below 16 rows,
 * 6 x 64 packed tiles from 16 rows), K around the 64-byte steps and the 4-byte groups, and
 * the extreme values (255 x -128, which no converter writes but a file may hold). */
static void
test_gemm_exact (void)
{
  static const gsize rows_list[] = { 1, 3, 4, 5, 15, 16, 17, 23, 64, 65, 257 };
  static const gsize out_list[] = { 1, 4, 7, 16, 63, 64, 65, 130 };
  static const gsize k_list[] = { 1, 3, 4, 5, 48, 63, 64, 65, 129, 256, 1176 };

  if (!need_vnni ())
    return;
  for (guint extreme = 0; extreme < 2; extreme++)
    for (gsize a = 0; a < G_N_ELEMENTS (rows_list); a++)
      for (gsize b = 0; b < G_N_ELEMENTS (out_list); b++)
        for (gsize c = 0; c < G_N_ELEMENTS (k_list); c++) {
          gsize rows = rows_list[a], out = out_list[b], K = k_list[c], ldu = K + 3;
          if (rows * out * K > 3000000)
            continue;     /* the reference's time, under the sanitizers */
          g_autofree guint8 *u = g_malloc (rows * ldu);
          g_autofree gint8 *q = g_malloc (out * K);
          g_autofree gint32 *got = g_new (gint32, rows * (out + 2));
          g_autofree gint32 *want = g_new (gint32, rows * (out + 2));
          for (gsize i = 0; i < rows * ldu; i++)
            u[i] = extreme ? 255 : (guint8) rnd ();
          for (gsize i = 0; i < out * K; i++)
            q[i] = extreme ? -128 : (gint8) rnd ();
          memset (got, 0x55, rows * (out + 2) * sizeof (gint32));
          memset (want, 0x55, rows * (out + 2) * sizeof (gint32));
          ib_q8_gemm_s32 (u, ldu, rows, q, out, K, got, out + 2, 2);
          ib_q8_gemm_s32_ref (u, ldu, rows, q, out, K, want, out + 2);
          /* Equal everywhere, the untouched stride padding included. */
          if (memcmp (got, want, rows * (out + 2) * sizeof (gint32)) != 0)
            g_error ("int8 sums differ from the reference: rows %" G_GSIZE_FORMAT ", out %"
                G_GSIZE_FORMAT ", K %" G_GSIZE_FORMAT "%s", rows, out, K, extreme ? " (extremes)" : "");
          if (extreme)
            g_assert_cmpint (want[0], ==, -255 * 128 * (gint32) K);
        }
}

/* An I8 IbWeight over @q / @scale with its sums' storage. */
static IbWeight
make_weight (const gint8 *q, const float *scale, gsize rows, gsize cols)
{
  IbWeight w = { IB_GGUF_TENSOR_I8, q, rows, cols, scale, NULL };
  w.q8 = g_malloc0 (sizeof (IbQ8Sums) + rows * sizeof (gint32));
  w.q8->sums = (gint32 *) (w.q8 + 1);
  return w;
}

/* The F32 layer: the VNNI kernels' outputs equal the reference's bit for bit, with and without
 * bias and accumulation, on row strides wider than the rows. */
static void
test_linear_exact (void)
{
  static const gsize rows_list[] = { 1, 2, 7, 16, 21, 100 };
  static const gsize out_list[] = { 3, 16, 64, 100 };
  static const gsize k_list[] = { 5, 64, 200 };

  if (!need_vnni ())
    return;
  for (gsize a = 0; a < G_N_ELEMENTS (rows_list); a++)
    for (gsize b = 0; b < G_N_ELEMENTS (out_list); b++)
      for (gsize c = 0; c < G_N_ELEMENTS (k_list); c++)
        for (guint mode = 0; mode < 4; mode++) {
          gsize rows = rows_list[a], out = out_list[b], K = k_list[c], ldx = K + 1, ldy = out + 5;
          gboolean bias = mode & 1, accumulate = (mode & 2) != 0;
          g_autofree float *x = g_new (float, rows * ldx);
          g_autofree float *wf = g_new (float, out * K);
          g_autofree gint8 *q = g_new (gint8, out * K);
          g_autofree float *scale = g_new (float, out);
          g_autofree float *bvec = g_new (float, out);
          g_autofree float *y1 = g_new (float, rows * ldy);
          g_autofree float *y2 = g_new (float, rows * ldy);
          IbWeight w;
          for (gsize i = 0; i < rows * ldx; i++)
            x[i] = 3.0f * rnd_float () + (i % 7 == 0 ? 0.5f : 0.0f);
          for (gsize i = 0; i < out * K; i++)
            wf[i] = 0.1f * rnd_float ();
          for (gsize i = 0; i < out; i++)
            bvec[i] = rnd_float ();
          for (gsize i = 0; i < rows * ldy; i++)
            y1[i] = y2[i] = rnd_float ();
          ib_q8_quantize_weight (wf, out, K, q, scale);
          w = make_weight (q, scale, out, K);
          ib_q8_linear (x, ldx, rows, &w, bias ? bvec : NULL, y1, ldy, accumulate, 2, FALSE);
          ib_q8_linear (x, ldx, rows, &w, bias ? bvec : NULL, y2, ldy, accumulate, 2, TRUE);
          if (memcmp (y1, y2, rows * ldy * sizeof (float)) != 0)
            g_error ("int8 layer differs from the reference: rows %" G_GSIZE_FORMAT ", out %"
                G_GSIZE_FORMAT ", K %" G_GSIZE_FORMAT ", bias %d, accumulate %d", rows, out, K,
                bias, accumulate);
          g_free (w.q8);
        }
}

/* The layer's error against the F32 product of the same (quantised) weights: activation
 * quantisation costs at most half a step (range / 255 / 2) per element. */
static void
test_linear_accuracy (void)
{
  gsize rows = 40, out = 70, K = 300;
  g_autofree float *x = g_new (float, rows * K);
  g_autofree float *wf = g_new (float, out * K);
  g_autofree float *wide = g_new (float, out * K);
  g_autofree gint8 *q = g_new (gint8, out * K);
  g_autofree float *scale = g_new (float, out);
  g_autofree float *y = g_new (float, rows * out);
  IbWeight w;

  for (gsize i = 0; i < rows * K; i++)
    x[i] = rnd_float () * (i % 13 == 0 ? 4.0f : 1.0f);
  for (gsize i = 0; i < out * K; i++)
    wf[i] = rnd_float () / sqrtf ((float) K);
  ib_q8_quantize_weight (wf, out, K, q, scale);
  w = make_weight (q, scale, out, K);
  ib_q8_widen_rows (&w, 0, out, wide);
  /* Weight rounding: within half a step of the row's scale. */
  for (gsize o = 0; o < out; o++)
    for (gsize k = 0; k < K; k++)
      g_assert_cmpfloat (fabsf (wide[o * K + k] - wf[o * K + k]), <=, 0.5f * scale[o] * 1.0001f);
  ib_q8_linear (x, K, rows, &w, NULL, y, out, FALSE, 2, !ib_q8_have_vnni ());
  for (gsize r = 0; r < rows; r++) {
    float mn = 0, mx = 0;
    for (gsize k = 0; k < K; k++) {
      mn = MIN (mn, x[r * K + k]);
      mx = MAX (mx, x[r * K + k]);
    }
    for (gsize o = 0; o < out; o++) {
      double exact = 0, bound = 0;
      for (gsize k = 0; k < K; k++) {
        exact += (double) x[r * K + k] * wide[o * K + k];
        bound += fabs (wide[o * K + k]);
      }
      /* half a step per activation, plus float rounding */
      bound = bound * (mx - mn) / 255.0 * 0.5 * 1.01 + 1e-5;
      g_assert_cmpfloat (fabs (y[r * out + o] - exact), <=, bound);
    }
  }
  g_free (w.q8);
}

/* The two activation quantisers give the same bytes, scale and zero point. */
static void
test_quantize_row (void)
{
  static const gsize sizes[] = { 1, 5, 16, 17, 64, 100, 1280 };

  if (!need_vnni ())
    return;
  for (gsize s = 0; s < G_N_ELEMENTS (sizes); s++)
    for (guint kind = 0; kind < 4; kind++) {
      gsize n = sizes[s];
      g_autofree float *x = g_new (float, n);
      g_autofree guint8 *u1 = g_malloc (n), *u2 = g_malloc (n);
      float s1, s2;
      gint32 z1, z2;
      for (gsize i = 0; i < n; i++)
        x[i] = kind == 0 ? 0.0f : kind == 1 ? fabsf (rnd_float ()) : kind == 2 ? -fabsf (rnd_float ())
            : 5.0f * rnd_float ();
      ib_q8_quantize_row (x, n, u1, &s1, &z1);
      ib_q8_set_vnni_enabled (FALSE);
      ib_q8_quantize_row (x, n, u2, &s2, &z2);
      ib_q8_set_vnni_enabled (TRUE);
      g_assert_cmpmem (u1, n, u2, n);
      g_assert_cmpfloat (s1, ==, s2);
      g_assert_cmpint (z1, ==, z2);
      /* The row's range (0 included) maps into 0..255 around the zero point. */
      g_assert_cmpint (z1, >=, 0);
      g_assert_cmpint (z1, <=, 255);
      for (gsize i = 0; i < n; i++)
        g_assert_cmpfloat (fabsf (s1 * ((float) u1[i] - z1) - x[i]), <=, 0.5f * s1 * 1.001f + 1e-7f);
    }
}

/* Weight quantisation, by hand: s = max|w| / 127, halves to even, zero rows. */
static void
test_quantize_weight (void)
{
  const float w[2][4] = { { 1.0f, -0.5f, 0.25f, 0.0f }, { 0.0f, 0.0f, 0.0f, 0.0f } };
  gint8 q[8];
  float scale[2];

  ib_q8_quantize_weight (&w[0][0], 2, 4, q, scale);
  g_assert_cmpfloat (scale[0], ==, (float) (1.0 / 127.0));
  g_assert_cmpint (q[0], ==, 127);
  g_assert_cmpint (q[1], ==, -64);    /* -63.5 -> -64 (even) */
  g_assert_cmpint (q[2], ==, 32);     /* 31.75 */
  g_assert_cmpint (q[3], ==, 0);
  g_assert_cmpfloat (scale[1], ==, 0.0f);
  for (int i = 4; i < 8; i++)
    g_assert_cmpint (q[i], ==, 0);
}

/* A random model in q8 against the same weights in F32, every modality, small sizes: cosine
 * per embedding >= 0.999, through the kernels and through the widening path. */
static void
test_random_model (void)
{
  IbModelConfig config = { .out_dim = 24, .weight_type = IB_GGUF_TENSOR_F32 };
  ImageBindModel *f32, *q8;
  static const guint dims[IMAGEBIND_N_MODALITIES] = { 32, 48, 32, 24, 32, 16 };

  for (guint m = 0; m < IMAGEBIND_N_MODALITIES; m++)
    config.modality[m] = (IbModalityConfig) { TRUE, dims[m], 2, 4 };
  f32 = ib_model_new_random (&config, 7);
  config.weight_type = IB_GGUF_TENSOR_I8;
  q8 = ib_model_new_random (&config, 7);
  g_assert_nonnull (f32);
  g_assert_nonnull (q8);
  for (int pass = 0; pass < 2; pass++) {
    ImageBindContext *c32 = imagebind_context_new (f32, NULL);
    ImageBindContext *c8;
    ib_q8_set_vnni_enabled (pass == 0);
    c8 = imagebind_context_new (q8, NULL);
    for (guint m = 0; m < IMAGEBIND_N_MODALITIES; m++) {
      ImageBindInputGeometry g;
      float e32[24], e8[24];
      GError *error = NULL;
      double dot = 0, n1 = 0, n2 = 0;
      imagebind_model_input_geometry (f32, &g);
      if (m == IMAGEBIND_MODALITY_TEXT) {
        gint32 ids[77] = { 49406, 320, 1929, 539, 49407 };
        g_assert_true (imagebind_embed_text (c32, ids, 1, e32, &error));
        g_assert_true (imagebind_embed_text (c8, ids, 1, e8, &error));
      } else {
        gint64 shape[4] = { 1, m == IMAGEBIND_MODALITY_VISION ? 3 : 1, g.image_size, g.image_size };
        guint n_dims = 4;
        gsize n;
        float *x;
        if (m == IMAGEBIND_MODALITY_AUDIO) {
          shape[2] = g.audio_num_mel_bins;
          shape[3] = g.audio_target_len;
        } else if (m == IMAGEBIND_MODALITY_IMU) {
          shape[1] = 6;
          shape[2] = g.imu_num_samples;
          n_dims = 3;
        }
        n = shape[0] * shape[1] * shape[2] * (n_dims == 4 ? shape[3] : 1);
        x = g_new (float, n);
        for (gsize i = 0; i < n; i++)
          x[i] = sinf (0.01f * i);
        g_assert_true (imagebind_embed (c32, m, x, shape, n_dims, e32, &error));
        g_assert_true (imagebind_embed (c8, m, x, shape, n_dims, e8, &error));
        g_free (x);
      }
      g_assert_no_error (error);
      for (int i = 0; i < 24; i++) {
        dot += (double) e32[i] * e8[i];
        n1 += (double) e32[i] * e32[i];
        n2 += (double) e8[i] * e8[i];
      }
      g_test_message ("random %s, %s: cosine %.6f", imagebind_modality_name (m),
          pass == 0 ? "int8 kernels" : "widened", dot / sqrt (n1 * n2));
      g_assert_cmpfloat (dot / sqrt (n1 * n2), >=, 0.999);
    }
    imagebind_context_free (c32);
    imagebind_context_free (c8);
  }
  ib_q8_set_vnni_enabled (TRUE);
  imagebind_model_unref (f32);
  imagebind_model_unref (q8);
}

/* ---- q8 files the loader refuses ---- */

/* A one-modality (IMU, the smallest) model file, every matrix I8 with its scales, through
 * @edit of the scale of the first block's fc1 (the tensor named in the messages). */
typedef enum { EDIT_NONE, EDIT_NO_SCALE, EDIT_SHORT_SCALE, EDIT_NAN_SCALE, EDIT_NEG_SCALE,
  EDIT_F16_SCALE, EDIT_I8_VECTOR } Edit;

static char *
write_imu_q8 (Edit edit)
{
  g_autoptr (IbGgufBuilder) b = ib_gguf_builder_new ();
  const guint D = 16, L = 251, out = 8;
  const char *const modalities[] = { "imu" };
  GError *error = NULL;
  char *path = NULL;
  int fd;

  ib_gguf_builder_add_string (b, "general.architecture", "imagebind");
  ib_gguf_builder_add_u32 (b, "imagebind.out_embed_dim", out);
  ib_gguf_builder_add_string_array (b, "imagebind.modalities", modalities, 1);
  ib_gguf_builder_add_u32 (b, "imagebind.imu.embed_dim", D);
  ib_gguf_builder_add_u32 (b, "imagebind.imu.num_blocks", 1);
  ib_gguf_builder_add_u32 (b, "imagebind.imu.num_heads", 2);

#define VEC(name, n) do { \
    g_autofree float *v = g_new (float, (n)); \
    for (gsize i_ = 0; i_ < (gsize) (n); i_++) v[i_] = 0.01f * rnd_float () + (strstr (name, "norm") || strstr (name, "heads.imu.0.weight") ? 1.0f : 0.0f); \
    ib_gguf_builder_add_tensor (b, name, IB_GGUF_TENSOR_F32, 1, (guint64[]) { (n) }, v); \
  } while (0)
#define MAT(name, rows, cols) do { \
    g_autofree gint8 *q = g_new (gint8, (rows) * (cols)); \
    g_autofree float *s = g_new (float, (rows)); \
    for (gsize i_ = 0; i_ < (gsize) (rows) * (cols); i_++) q[i_] = (gint8) rnd (); \
    for (gsize i_ = 0; i_ < (gsize) (rows); i_++) s[i_] = 0.001f; \
    ib_gguf_builder_add_tensor (b, name, IB_GGUF_TENSOR_I8, 2, (guint64[]) { (cols), (rows) }, q); \
    if (strcmp (name, "modality_trunks.imu.blocks.0.mlp.fc1.weight") == 0) { \
      if (edit == EDIT_NAN_SCALE) s[3] = NAN; \
      if (edit == EDIT_NEG_SCALE) s[3] = -1.0f; \
      if (edit == EDIT_F16_SCALE) \
        ib_gguf_builder_add_tensor (b, name ".q8_scale", IB_GGUF_TENSOR_F16, 1, (guint64[]) { (rows) }, NULL); \
      else if (edit == EDIT_SHORT_SCALE) \
        ib_gguf_builder_add_tensor (b, name ".q8_scale", IB_GGUF_TENSOR_F32, 1, (guint64[]) { (rows) - 1 }, s); \
      else if (edit != EDIT_NO_SCALE) \
        ib_gguf_builder_add_tensor (b, name ".q8_scale", IB_GGUF_TENSOR_F32, 1, (guint64[]) { (rows) }, s); \
    } else { \
      ib_gguf_builder_add_tensor (b, name ".q8_scale", IB_GGUF_TENSOR_F32, 1, (guint64[]) { (rows) }, s); \
    } \
  } while (0)

  {
    g_autofree float *pos = g_new0 (float, L * D);
    ib_gguf_builder_add_tensor (b, "modality_preprocessors.imu.pos_embed", IB_GGUF_TENSOR_F32, 3,
        (guint64[]) { D, L, 1 }, pos);
  }
  VEC ("modality_preprocessors.imu.cls_token", D);
  MAT ("modality_preprocessors.imu.imu_stem.proj.weight", D, 48);
  VEC ("modality_preprocessors.imu.imu_stem.norm_layer.weight", D);
  VEC ("modality_preprocessors.imu.imu_stem.norm_layer.bias", D);
  VEC ("modality_trunks.imu.blocks.0.norm_1.weight", D);
  VEC ("modality_trunks.imu.blocks.0.norm_1.bias", D);
  MAT ("modality_trunks.imu.blocks.0.attn.in_proj_weight", 3 * D, D);
  VEC ("modality_trunks.imu.blocks.0.attn.in_proj_bias", 3 * D);
  VEC ("modality_trunks.imu.blocks.0.attn.bias_k", D);
  VEC ("modality_trunks.imu.blocks.0.attn.bias_v", D);
  MAT ("modality_trunks.imu.blocks.0.attn.out_proj.weight", D, D);
  VEC ("modality_trunks.imu.blocks.0.attn.out_proj.bias", D);
  VEC ("modality_trunks.imu.blocks.0.norm_2.weight", D);
  VEC ("modality_trunks.imu.blocks.0.norm_2.bias", D);
  MAT ("modality_trunks.imu.blocks.0.mlp.fc1.weight", 4 * D, D);
  VEC ("modality_trunks.imu.blocks.0.mlp.fc1.bias", 4 * D);
  MAT ("modality_trunks.imu.blocks.0.mlp.fc2.weight", D, 4 * D);
  VEC ("modality_trunks.imu.blocks.0.mlp.fc2.bias", D);
  if (edit == EDIT_I8_VECTOR) {
    gint8 v[16] = { 1 };
    ib_gguf_builder_add_tensor (b, "modality_heads.imu.0.weight", IB_GGUF_TENSOR_I8, 1,
        (guint64[]) { D }, v);
  } else {
    VEC ("modality_heads.imu.0.weight", D);
  }
  VEC ("modality_heads.imu.0.bias", D);
  MAT ("modality_heads.imu.3.weight", out, D);
  VEC ("modality_postprocessors.imu.1.log_logit_scale", 1);
#undef VEC
#undef MAT

  fd = g_file_open_tmp ("ib-q8-XXXXXX.gguf", &path, &error);
  g_assert_no_error (error);
  close (fd);
  g_assert_true (ib_gguf_builder_write_file (b, path, &error));
  g_assert_no_error (error);
  return path;
}

static void
test_bad_files (void)
{
  static const struct { Edit edit; const char *needle; } cases[] = {
    { EDIT_NO_SCALE, "fc1.weight.q8_scale is missing" },
    { EDIT_SHORT_SCALE, "fc1.weight.q8_scale is of another length (expected 64 F32 scales" },
    { EDIT_F16_SCALE, "fc1.weight.q8_scale is not F32" },
    { EDIT_NAN_SCALE, "scale nan of row 3 is not a finite value >= 0" },
    { EDIT_NEG_SCALE, "scale -1 of row 3 is not a finite value >= 0" },
    { EDIT_I8_VECTOR, "modality_heads.imu.0.weight has an unsupported type 24 (I8 is for weight matrices only)" },
  };
  g_autofree char *good = write_imu_q8 (EDIT_NONE);
  GError *error = NULL;
  ImageBindModel *model = imagebind_model_load (good, &error);
  ImageBindContext *ctx;
  g_autofree float *x = g_new (float, 6 * 2000);
  float e[8];

  /* The unedited file loads and embeds (both paths agree closely). */
  g_assert_no_error (error);
  for (gsize i = 0; i < 6 * 2000; i++)
    x[i] = cosf (0.003f * i);
  ctx = imagebind_context_new (model, NULL);
  g_assert_true (imagebind_embed (ctx, IMAGEBIND_MODALITY_IMU, x, (gint64[]) { 1, 6, 2000 }, 3, e, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 8; i++)
    g_assert_true (isfinite (e[i]));
  imagebind_context_free (ctx);
  imagebind_model_unref (model);
  g_unlink (good);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *path = write_imu_q8 (cases[i].edit);
    model = imagebind_model_load (path, &error);
    g_assert_null (model);
    g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL);
    if (!strstr (error->message, cases[i].needle))
      g_error ("expected \"%s\" in \"%s\"", cases[i].needle, error->message);
    g_clear_error (&error);
    g_unlink (path);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/q8/gemm-exact", test_gemm_exact);
  g_test_add_func ("/q8/linear-exact", test_linear_exact);
  g_test_add_func ("/q8/linear-accuracy", test_linear_accuracy);
  g_test_add_func ("/q8/quantize-row", test_quantize_row);
  g_test_add_func ("/q8/quantize-weight", test_quantize_weight);
  g_test_add_func ("/q8/random-model", test_random_model);
  g_test_add_func ("/q8/bad-files", test_bad_files);
  return g_test_run ();
}
