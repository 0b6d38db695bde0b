/* The GGUF reader: a valid file round-trips every key/value type and F32/F16 tensors; every
 * kind of hostile file gives IMAGEBIND_ERROR_FORMAT with a message naming the problem. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "gguf-builder.h"
#include "gguf.h"
#include "imagebind.h"

static const float w_f32[6] = { 0.5f, -1.25f, 3.0f, 1e-7f, -0.0f, 65504.0f };
/* IEEE half bit patterns: 1.0, -2.0, 0.333, 65504, smallest subnormal */
static const guint16 h_f16[5] = { 0x3c00, 0xc000, 0x3555, 0x7bff, 0x0001 };
/* A q8 weight's int8 values (models/GGUF.md): any byte is valid, -128 included. */
static const gint8 q_i8[7] = { 127, -127, 0, 1, -1, -128, 64 };

static gboolean
pointer_aligned (const void *p, gsize alignment)
{
  return (guintptr) p % alignment == 0;
}

/* ---- valid files ---- */

static IbGgufBuilder *
full_builder (void)
{
  IbGgufBuilder *b = ib_gguf_builder_new ();
  const guint32 kernel[3] = { 2, 14, 14 };
  const gint64 i64s[3] = { 0, 7, 4294967295 };
  const gint32 negative[2] = { 5, -1 };
  const float floats[2] = { 1.5f, -2.0f };
  const guint8 bools[3] = { 1, 0, 1 };
  const char *const merges[4] = { "i n", "t h", "\xc4\xa0 t", "\xc3\xa9 s</w>" };

  ib_gguf_builder_add_string (b, "general.architecture", "imagebind");
  ib_gguf_builder_add_u8 (b, "t.u8", 200);
  ib_gguf_builder_add_i8 (b, "t.i8", -5);
  ib_gguf_builder_add_i8 (b, "t.i8pos", 100);
  ib_gguf_builder_add_u16 (b, "t.u16", 60000);
  ib_gguf_builder_add_i16 (b, "t.i16", -300);
  ib_gguf_builder_add_u32 (b, "t.u32", 4000000000u);
  ib_gguf_builder_add_i32 (b, "t.i32", -7);
  ib_gguf_builder_add_i32 (b, "t.i32pos", 1024);
  ib_gguf_builder_add_u64 (b, "t.u64", 77);
  ib_gguf_builder_add_u64 (b, "t.u64big", G_GUINT64_CONSTANT (1) << 40);
  ib_gguf_builder_add_i64 (b, "t.i64", -1);
  ib_gguf_builder_add_i64 (b, "t.i64pos", 4294967295);
  ib_gguf_builder_add_f32 (b, "t.f32", -4.268f);
  ib_gguf_builder_add_f64 (b, "t.f64", 9.138);
  ib_gguf_builder_add_f64 (b, "t.f64big", 1e300);
  ib_gguf_builder_add_f64 (b, "t.f64inf", -INFINITY);
  ib_gguf_builder_add_bool (b, "t.bool", TRUE);
  ib_gguf_builder_add_string (b, "t.empty", "");
  ib_gguf_builder_add_array (b, "t.kernel", IB_GGUF_U32, kernel, 3);
  ib_gguf_builder_add_array (b, "t.i64s", IB_GGUF_I64, i64s, 3);
  ib_gguf_builder_add_array (b, "t.negative", IB_GGUF_I32, negative, 2);
  ib_gguf_builder_add_array (b, "t.floats", IB_GGUF_F32, floats, 2);
  ib_gguf_builder_add_array (b, "t.bools", IB_GGUF_BOOL, bools, 3);
  ib_gguf_builder_add_array (b, "t.none", IB_GGUF_U32, NULL, 0);
  ib_gguf_builder_add_string_array (b, "tokenizer.ggml.merges", merges, 4);
  ib_gguf_builder_add_tensor (b, "w", IB_GGUF_TENSOR_F32, 2, (guint64[]) { 3, 2 }, w_f32);
  ib_gguf_builder_add_tensor (b, "h", IB_GGUF_TENSOR_F16, 1, (guint64[]) { 5 }, h_f16);
  ib_gguf_builder_add_tensor (b, "logit_scale", IB_GGUF_TENSOR_F32, 1, (guint64[]) { 1 }, w_f32);
  ib_gguf_builder_add_tensor (b, "four.d", IB_GGUF_TENSOR_F16, 4, (guint64[]) { 3, 1, 2, 2 }, NULL);
  ib_gguf_builder_add_tensor (b, "q", IB_GGUF_TENSOR_I8, 1, (guint64[]) { 7 }, q_i8);
  return b;
}

static void
check_full (const IbGguf *g)
{
  guint32 u;
  float f;
  const guint32 *u32s;
  gsize n;
  const char *const *strv;
  const IbGgufTensor *t;

  /* Integer getters take any integer type whose value fits in u32. */
  g_assert_true (ib_gguf_get_u32 (g, "t.u8", &u)); g_assert_cmpuint (u, ==, 200);
  g_assert_true (ib_gguf_get_u32 (g, "t.i8pos", &u)); g_assert_cmpuint (u, ==, 100);
  g_assert_true (ib_gguf_get_u32 (g, "t.u16", &u)); g_assert_cmpuint (u, ==, 60000);
  g_assert_true (ib_gguf_get_u32 (g, "t.u32", &u)); g_assert_cmpuint (u, ==, 4000000000u);
  g_assert_true (ib_gguf_get_u32 (g, "t.i32pos", &u)); g_assert_cmpuint (u, ==, 1024);
  g_assert_true (ib_gguf_get_u32 (g, "t.u64", &u)); g_assert_cmpuint (u, ==, 77);
  g_assert_true (ib_gguf_get_u32 (g, "t.i64pos", &u)); g_assert_cmpuint (u, ==, 4294967295u);
  /* ...and refuse those that do not fit, and non-integers. */
  u = 12345;
  g_assert_false (ib_gguf_get_u32 (g, "t.i8", &u));
  g_assert_false (ib_gguf_get_u32 (g, "t.i16", &u));
  g_assert_false (ib_gguf_get_u32 (g, "t.i32", &u));
  g_assert_false (ib_gguf_get_u32 (g, "t.i64", &u));
  g_assert_false (ib_gguf_get_u32 (g, "t.u64big", &u));
  g_assert_false (ib_gguf_get_u32 (g, "t.f32", &u));
  g_assert_false (ib_gguf_get_u32 (g, "t.bool", &u));
  g_assert_false (ib_gguf_get_u32 (g, "general.architecture", &u));
  g_assert_false (ib_gguf_get_u32 (g, "t.kernel", &u));
  g_assert_false (ib_gguf_get_u32 (g, "absent", &u));
  g_assert_cmpuint (u, ==, 12345);

  g_assert_true (ib_gguf_get_f32 (g, "t.f32", &f)); g_assert_cmpfloat (f, ==, -4.268f);
  g_assert_true (ib_gguf_get_f32 (g, "t.f64", &f)); g_assert_cmpfloat (f, ==, 9.138f);
  g_assert_true (ib_gguf_get_f32 (g, "t.f64inf", &f)); g_assert_cmpfloat (f, ==, -INFINITY);
  f = 42.0f;
  g_assert_false (ib_gguf_get_f32 (g, "t.f64big", &f)); /* does not fit in a float */
  g_assert_false (ib_gguf_get_f32 (g, "t.u32", &f));
  g_assert_cmpfloat (f, ==, 42.0f);
  g_assert_false (ib_gguf_get_f32 (g, "absent", &f));

  g_assert_cmpstr (ib_gguf_get_string (g, "general.architecture"), ==, "imagebind");
  g_assert_cmpstr (ib_gguf_get_string (g, "t.empty"), ==, "");
  g_assert_null (ib_gguf_get_string (g, "t.u8"));
  g_assert_null (ib_gguf_get_string (g, "tokenizer.ggml.merges"));
  g_assert_null (ib_gguf_get_string (g, "absent"));

  g_assert_true (ib_gguf_get_u32_array (g, "t.kernel", &u32s, &n));
  g_assert_cmpuint (n, ==, 3);
  g_assert_true (pointer_aligned (u32s, 4));
  g_assert_cmpuint (u32s[0], ==, 2); g_assert_cmpuint (u32s[1], ==, 14); g_assert_cmpuint (u32s[2], ==, 14);
  g_assert_true (ib_gguf_get_u32_array (g, "t.i64s", &u32s, &n));
  g_assert_cmpuint (n, ==, 3);
  g_assert_cmpuint (u32s[0], ==, 0); g_assert_cmpuint (u32s[1], ==, 7); g_assert_cmpuint (u32s[2], ==, 4294967295u);
  g_assert_true (ib_gguf_get_u32_array (g, "t.none", &u32s, &n));
  g_assert_cmpuint (n, ==, 0);
  g_assert_false (ib_gguf_get_u32_array (g, "t.negative", &u32s, &n));
  g_assert_false (ib_gguf_get_u32_array (g, "t.floats", &u32s, &n));
  g_assert_false (ib_gguf_get_u32_array (g, "t.bools", &u32s, &n));
  g_assert_false (ib_gguf_get_u32_array (g, "t.u32", &u32s, &n));
  g_assert_false (ib_gguf_get_u32_array (g, "tokenizer.ggml.merges", &u32s, &n));

  strv = ib_gguf_get_string_array (g, "tokenizer.ggml.merges", &n);
  g_assert_nonnull (strv);
  g_assert_cmpuint (n, ==, 4);
  g_assert_cmpstr (strv[0], ==, "i n");
  g_assert_cmpstr (strv[2], ==, "\xc4\xa0 t");
  g_assert_cmpstr (strv[3], ==, "\xc3\xa9 s</w>");
  g_assert_null (strv[4]);
  g_assert_null (ib_gguf_get_string_array (g, "t.kernel", &n));
  g_assert_null (ib_gguf_get_string_array (g, "general.architecture", &n));

  g_assert_cmpuint (ib_gguf_n_tensors (g), ==, 5);
  g_assert_cmpstr (ib_gguf_tensor (g, 0)->name, ==, "w");
  g_assert_cmpstr (ib_gguf_tensor (g, 3)->name, ==, "four.d");
  g_assert_null (ib_gguf_find_tensor (g, "absent"));

  t = ib_gguf_find_tensor (g, "w");
  g_assert_true (t == ib_gguf_tensor (g, 0));
  g_assert_cmpuint (t->type, ==, IB_GGUF_TENSOR_F32);
  g_assert_cmpuint (t->n_dims, ==, 2);
  g_assert_cmpuint (t->ne[0], ==, 3);
  g_assert_cmpuint (t->ne[1], ==, 2);
  g_assert_cmpuint (t->n_elements, ==, 6);
  g_assert_cmpuint (t->n_bytes, ==, sizeof w_f32);
  g_assert_true (pointer_aligned (t->data, 32));
  g_assert_cmpmem (t->data, t->n_bytes, w_f32, sizeof w_f32);

  t = ib_gguf_find_tensor (g, "h");
  g_assert_cmpuint (t->type, ==, IB_GGUF_TENSOR_F16);
  g_assert_cmpuint (t->n_elements, ==, 5);
  g_assert_cmpuint (t->n_bytes, ==, 10);
  g_assert_true (pointer_aligned (t->data, 32));
  g_assert_cmpmem (t->data, t->n_bytes, h_f16, sizeof h_f16);

  t = ib_gguf_find_tensor (g, "logit_scale");
  g_assert_cmpuint (t->n_dims, ==, 1);
  g_assert_cmpuint (t->ne[0], ==, 1);
  g_assert_cmpfloat (((const float *) t->data)[0], ==, 0.5f);

  t = ib_gguf_find_tensor (g, "four.d");
  g_assert_cmpuint (t->n_dims, ==, 4);
  g_assert_cmpuint (t->ne[3], ==, 2);
  g_assert_cmpuint (t->n_elements, ==, 12);
  g_assert_cmpuint (t->n_bytes, ==, 24);
  for (guint i = 0; i < 24; i++)
    g_assert_cmpuint (((const guint8 *) t->data)[i], ==, i);

  /* I8 (GGML type 24): one byte per element, right after an F16 tensor of 24 bytes. */
  t = ib_gguf_find_tensor (g, "q");
  g_assert_cmpuint (t->type, ==, IB_GGUF_TENSOR_I8);
  g_assert_cmpuint (t->n_elements, ==, 7);
  g_assert_cmpuint (t->n_bytes, ==, 7);
  g_assert_true (pointer_aligned (t->data, 32));
  g_assert_cmpmem (t->data, t->n_bytes, q_i8, sizeof q_i8);
}

static void
test_round_trip_bytes (void)
{
  g_autoptr (IbGgufBuilder) b = full_builder ();
  g_autoptr (GBytes) bytes = ib_gguf_builder_build (b);
  GError *error = NULL;
  IbGguf *g = ib_gguf_new_from_bytes (bytes, &error);

  g_assert_no_error (error);
  check_full (g);
  ib_gguf_free (g);
}

static void
test_round_trip_file (void)
{
  g_autoptr (IbGgufBuilder) b = full_builder ();
  GError *error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("test-gguf-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "model.gguf", NULL);
  IbGguf *g;

  g_assert_no_error (error);
  g_assert_true (ib_gguf_builder_write_file (b, path, &error));
  g_assert_no_error (error);
  g = ib_gguf_open (path, &error);
  g_assert_no_error (error);
  check_full (g);
  /* The reader keeps the mapping: the data stays readable after the file is gone. */
  g_assert_cmpint (g_unlink (path), ==, 0);
  g_assert_cmpmem (ib_gguf_find_tensor (g, "w")->data, sizeof w_f32, w_f32, sizeof w_f32);
  ib_gguf_free (g);
  g_rmdir (dir);
}

/* A buffer at an odd address still yields tensor data aligned as the file says. */
static void
test_unaligned_buffer (void)
{
  g_autoptr (IbGgufBuilder) b = full_builder ();
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GBytes) shifted = NULL;
  g_autoptr (GBytes) view = NULL;
  GError *error = NULL;
  gsize n;
  const guint8 *p;
  guint8 *buf;
  IbGguf *g;

  ib_gguf_builder_add_alignment (b, 64);
  bytes = ib_gguf_builder_build (b);
  p = g_bytes_get_data (bytes, &n);
  buf = g_malloc (n + 1);
  memcpy (buf + 1, p, n);
  shifted = g_bytes_new_take (buf, n + 1);
  view = g_bytes_new_from_bytes (shifted, 1, n);
  g = ib_gguf_new_from_bytes (view, &error);
  g_assert_no_error (error);
  check_full (g);
  for (guint i = 0; i < ib_gguf_n_tensors (g); i++)
    g_assert_true (pointer_aligned (ib_gguf_tensor (g, i)->data, 64));
  ib_gguf_free (g);
}

static void
test_empty_file_without_tensors (void)
{
  g_autoptr (IbGgufBuilder) b = ib_gguf_builder_new ();
  g_autoptr (GBytes) bytes = ib_gguf_builder_build (b);
  GError *error = NULL;
  IbGguf *g = ib_gguf_new_from_bytes (bytes, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (bytes), ==, 24);
  g_assert_cmpuint (ib_gguf_n_tensors (g), ==, 0);
  g_assert_null (ib_gguf_get_string (g, "general.architecture"));
  ib_gguf_free (g);
}

static void
test_missing_file (void)
{
  GError *error = NULL;
  IbGguf *g = ib_gguf_open ("/nonexistent/dir/model.gguf", &error);

  g_assert_null (g);
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FILE);
  g_assert_nonnull (strstr (error->message, "/nonexistent/dir/model.gguf"));
  g_clear_error (&error);
}

/* A file on disk that is not GGUF: the error names the path and is a format error. */
static void
test_corrupt_file_names_path (void)
{
  GError *error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("test-gguf-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "empty.gguf", NULL);

  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (path, "", 0, &error));
  g_assert_null (ib_gguf_open (path, &error));
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, path));
  g_assert_nonnull (strstr (error->message, "too small"));
  g_clear_error (&error);
  g_unlink (path);
  g_rmdir (dir);
}

/* ---- hostile files ---- */

/* Parses bytes, expecting a format error whose message contains each of the needles. */
static void
expect_format_error_bytes (GBytes *bytes, const char *const *needles)
{
  GError *error = NULL;
  IbGguf *g = ib_gguf_new_from_bytes (bytes, &error);

  g_assert_null (g);
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
  g_test_message ("error: %s", error->message);
  for (guint i = 0; needles[i]; i++) {
    if (!strstr (error->message, needles[i]))
      g_error ("error message \"%s\" does not mention \"%s\"", error->message, needles[i]);
  }
  g_clear_error (&error);
}

#define expect_format_error(b, ...) \
  G_STMT_START { \
    g_autoptr (GBytes) _bytes = ib_gguf_builder_build (b); \
    expect_format_error_bytes (_bytes, (const char *const[]) { __VA_ARGS__, NULL }); \
  } G_STMT_END

/* A small valid file with one of everything: keys, an array, strings and two tensors. */
static IbGgufBuilder *
small_builder (void)
{
  IbGgufBuilder *b = ib_gguf_builder_new ();
  const guint32 kernel[3] = { 2, 14, 14 };
  const char *const merges[2] = { "a b", "c d" };

  ib_gguf_builder_add_string (b, "general.architecture", "imagebind");
  ib_gguf_builder_add_u32 (b, "k", 7);
  ib_gguf_builder_add_array (b, "kernel", IB_GGUF_U32, kernel, 3);
  ib_gguf_builder_add_string_array (b, "merges", merges, 2);
  ib_gguf_builder_add_tensor (b, "w", IB_GGUF_TENSOR_F32, 2, (guint64[]) { 3, 2 }, w_f32);
  ib_gguf_builder_add_tensor (b, "h", IB_GGUF_TENSOR_F16, 1, (guint64[]) { 5 }, h_f16);
  return b;
}

static void
test_truncated_everywhere (void)
{
  g_autoptr (IbGgufBuilder) b = small_builder ();
  g_autoptr (GBytes) bytes = ib_gguf_builder_build (b);
  gsize size = g_bytes_get_size (bytes);
  GError *error = NULL;
  IbGguf *g = ib_gguf_new_from_bytes (bytes, &error);

  g_assert_no_error (error);
  ib_gguf_free (g);
  g_assert_cmpuint (size, >, 200);
  for (gsize len = 0; len < size; len++) {
    /* A copy of exactly len bytes, so that ASan sees any read past its end. */
    g_autoptr (GBytes) prefix = g_bytes_new (g_bytes_get_data (bytes, NULL), len);
    g = ib_gguf_new_from_bytes (prefix, &error);
    if (g)
      g_error ("a prefix of %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes was accepted", len, size);
    g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
    g_clear_error (&error);
  }
}

static void
test_bad_magic (void)
{
  g_autoptr (IbGgufBuilder) b = small_builder ();

  ib_gguf_builder_set_magic (b, "GGML");
  expect_format_error (b, "not a GGUF file", "47 47 4d 4c");
}

static void
test_bad_version (void)
{
  g_autoptr (IbGgufBuilder) b = small_builder ();

  ib_gguf_builder_set_version (b, 2);
  expect_format_error (b, "version 2");
  ib_gguf_builder_set_version (b, 4);
  expect_format_error (b, "version 4");
}

static void
test_huge_counts (void)
{
  const guint64 huge[] = { G_MAXUINT64, G_GUINT64_CONSTANT (1) << 32, 1000000 };

  for (guint i = 0; i < G_N_ELEMENTS (huge); i++) {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_set_n_tensors (b, huge[i]);
    expect_format_error (b, "n_tensors");
  }
  for (guint i = 0; i < G_N_ELEMENTS (huge); i++) {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_set_n_kv (b, huge[i]);
    expect_format_error (b, "n_kv");
  }
  {
    /* Plausible counts that the file does not honour: one more of each than present. */
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_set_n_tensors (b, 3);
    expect_format_error (b, "tensor info 2");
  }
}

/* Appends a raw key/value pair: key, type, then the given value bytes. */
static void
add_raw (IbGgufBuilder *b, const char *key, guint32 type, const GByteArray *value)
{
  g_autoptr (GByteArray) kv = g_byte_array_new ();

  ib_gguf_put_string (kv, key);
  ib_gguf_put_u32 (kv, type);
  g_byte_array_append (kv, value->data, value->len);
  ib_gguf_builder_add_raw_kv (b, kv->data, kv->len);
}

static void
test_huge_string_lengths (void)
{
  {
    /* A key whose length field is absurd. */
    g_autoptr (IbGgufBuilder) b = small_builder ();
    g_autoptr (GByteArray) kv = g_byte_array_new ();
    ib_gguf_put_u64 (kv, G_MAXUINT64);
    g_byte_array_append (kv, (const guint8 *) "key", 3);
    ib_gguf_builder_add_raw_kv (b, kv->data, kv->len);
    expect_format_error (b, "key", "absurd length 18446744073709551615");
  }
  {
    /* A key length within the limit but past the end of the file. */
    g_autoptr (IbGgufBuilder) b = small_builder ();
    g_autoptr (GByteArray) kv = g_byte_array_new ();
    ib_gguf_put_u64 (kv, 60000);
    g_byte_array_append (kv, (const guint8 *) "key", 3);
    ib_gguf_builder_add_raw_kv (b, kv->data, kv->len);
    expect_format_error (b, "key", "length 60000", "bytes are left");
  }
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    g_autoptr (GByteArray) value = g_byte_array_new ();
    ib_gguf_put_u64 (value, G_GUINT64_CONSTANT (1) << 62);
    g_byte_array_append (value, (const guint8 *) "abc", 3);
    add_raw (b, "general.name", IB_GGUF_STRING, value);
    expect_format_error (b, "key 'general.name'", "string value", "4611686018427387904");
  }
  {
    /* A string inside a string array. */
    g_autoptr (IbGgufBuilder) b = small_builder ();
    g_autoptr (GByteArray) value = g_byte_array_new ();
    ib_gguf_put_u32 (value, IB_GGUF_STRING);
    ib_gguf_put_u64 (value, 2);
    ib_gguf_put_string (value, "a b");
    ib_gguf_put_u64 (value, G_MAXUINT64 - 2);
    add_raw (b, "tokenizer.ggml.merges", IB_GGUF_ARRAY, value);
    expect_format_error (b, "key 'tokenizer.ggml.merges'", "element 1");
  }
  {
    /* A tensor name of absurd length. */
    g_autoptr (IbGgufBuilder) b = small_builder ();
    g_autofree char *long_name = g_strnfill (70000, 'x');
    ib_gguf_builder_set_tensor_name_bytes (b, 1, long_name, 70000);
    expect_format_error (b, "tensor info 1", "tensor name", "absurd length 70000");
  }
}

static void
test_huge_array_count (void)
{
  const guint32 elem_types[] = { IB_GGUF_U8, IB_GGUF_U32, IB_GGUF_F64, IB_GGUF_STRING };

  for (guint i = 0; i < G_N_ELEMENTS (elem_types); i++) {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    g_autoptr (GByteArray) value = g_byte_array_new ();
    ib_gguf_put_u32 (value, elem_types[i]);
    ib_gguf_put_u64 (value, G_GUINT64_CONSTANT (1) << 61);
    ib_gguf_put_u32 (value, 1);
    add_raw (b, "imagebind.modalities", IB_GGUF_ARRAY, value);
    expect_format_error (b, "key 'imagebind.modalities'", "array count 2305843009213693952");
  }
}

static void
test_bad_value_types (void)
{
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    g_autoptr (GByteArray) value = g_byte_array_new ();
    ib_gguf_put_u32 (value, 0);
    add_raw (b, "odd", 13, value);
    expect_format_error (b, "key 'odd'", "unknown value type 13");
  }
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    g_autoptr (GByteArray) value = g_byte_array_new ();
    ib_gguf_put_u32 (value, 0xffffffff);
    ib_gguf_put_u64 (value, 1);
    ib_gguf_put_u32 (value, 0);
    add_raw (b, "odd", IB_GGUF_ARRAY, value);
    expect_format_error (b, "key 'odd'", "unknown array element type 4294967295");
  }
  {
    /* An array of arrays. */
    g_autoptr (IbGgufBuilder) b = small_builder ();
    g_autoptr (GByteArray) value = g_byte_array_new ();
    ib_gguf_put_u32 (value, IB_GGUF_ARRAY);
    ib_gguf_put_u64 (value, 1);
    ib_gguf_put_u32 (value, IB_GGUF_U32);
    ib_gguf_put_u64 (value, 1);
    ib_gguf_put_u32 (value, 5);
    add_raw (b, "nested", IB_GGUF_ARRAY, value);
    expect_format_error (b, "key 'nested'", "arrays of arrays");
  }
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    g_autoptr (GByteArray) value = g_byte_array_new ();
    g_byte_array_append (value, (const guint8 *) "\x02", 1);
    add_raw (b, "flag", IB_GGUF_BOOL, value);
    expect_format_error (b, "key 'flag'", "bool value 2");
  }
}

static void
test_bad_dims (void)
{
  const guint64 ne[5] = { 1, 1, 1, 1, 1 };
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_set_tensor_dims (b, 0, 0, ne);
    expect_format_error (b, "tensor 'w'", "n_dims 0");
  }
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_set_tensor_dims (b, 0, 5, ne);
    expect_format_error (b, "tensor 'w'", "n_dims 5");
  }
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_set_tensor_dims (b, 0, 2, (guint64[]) { 3, 0 });
    expect_format_error (b, "tensor 'w'", "dimension 1 has invalid size 0");
  }
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_set_tensor_dims (b, 1, 1, (guint64[]) { G_MAXUINT64 });
    expect_format_error (b, "tensor 'h'", "dimension 0 has invalid size");
  }
  {
    /* The element count overflows 64 bits. */
    g_autoptr (IbGgufBuilder) b = small_builder ();
    guint64 big[3] = { G_GUINT64_CONSTANT (1) << 32, G_GUINT64_CONSTANT (1) << 31, 4 };
    ib_gguf_builder_set_tensor_dims (b, 0, 3, big);
    expect_format_error (b, "tensor 'w'", "element count overflows at dimension 2");
  }
  {
    /* The element count fits, its size in bytes does not. */
    g_autoptr (IbGgufBuilder) b = small_builder ();
    guint64 big[2] = { G_GUINT64_CONSTANT (1) << 32, G_GUINT64_CONSTANT (1) << 30 };
    ib_gguf_builder_set_tensor_dims (b, 0, 2, big);
    expect_format_error (b, "tensor 'w'", "byte size", "overflows");
  }
  {
    /* Large but representable: the data is then far past the end of the file. */
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_set_tensor_dims (b, 1, 2, (guint64[]) { 1 << 20, 1 << 20 });
    expect_format_error (b, "tensor 'h' data [", "lies past the end of the file (size ");
  }
}

static void
test_bad_tensor_type (void)
{
  /* 23 and 25 are GGML's I16 neighbours... of I8 (24, accepted): still refused. */
  const guint32 types[] = { 2, 8, 23, 25, 30, 0xffffffff };

  for (guint i = 0; i < G_N_ELEMENTS (types); i++) {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    g_autofree char *needle = g_strdup_printf ("unsupported tensor type %u", types[i]);
    ib_gguf_builder_set_tensor_type (b, 1, types[i]);
    expect_format_error (b, "tensor 'h'", needle);
  }
}

static void
test_bad_offsets (void)
{
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_set_tensor_offset (b, 1, 36);
    expect_format_error (b, "tensor 'h'", "offset 36 is not a multiple of the alignment 32");
  }
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    g_autoptr (GBytes) bytes = NULL;
    g_autofree char *needle = NULL;
    ib_gguf_builder_set_tensor_offset (b, 1, 1 << 20);
    bytes = ib_gguf_builder_build (b);
    needle = g_strdup_printf ("lies past the end of the file (size %" G_GSIZE_FORMAT ")",
        g_bytes_get_size (bytes));
    expect_format_error_bytes (bytes, (const char *const[]) { "tensor 'h' data [", needle, NULL });
  }
  {
    /* The F16 tensor, last in the file, moved one alignment unit further. */
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_set_tensor_offset (b, 1, 64);
    expect_format_error (b, "tensor 'h' data [");
  }
  {
    /* offset + size wraps around 2^64. */
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_set_tensor_offset (b, 0, G_MAXUINT64 - 31);
    expect_format_error (b, "tensor 'w'", "offset 18446744073709551584 + size 24 overflows");
  }
}

/* With a small general.alignment an F32 tensor can sit at an address that is not a multiple
 * of 4: refused. The header length (set by a padding key) decides where the data starts. */
static void
test_element_misalignment (void)
{
  guint accepted = 0, refused = 0;

  for (guint pad = 0; pad < 4; pad++) {
    g_autoptr (IbGgufBuilder) b = ib_gguf_builder_new ();
    g_autofree char *padding = g_strnfill (pad, 'p');
    g_autoptr (GBytes) bytes = NULL;
    GError *error = NULL;
    IbGguf *g;
    gsize f32_begin;

    ib_gguf_builder_add_alignment (b, 2);
    ib_gguf_builder_add_string (b, "padding", padding);
    ib_gguf_builder_add_tensor (b, "h", IB_GGUF_TENSOR_F16, 1, (guint64[]) { 1 }, h_f16);
    ib_gguf_builder_add_tensor (b, "w", IB_GGUF_TENSOR_F32, 1, (guint64[]) { 1 }, w_f32);
    bytes = ib_gguf_builder_build (b);
    f32_begin = g_bytes_get_size (bytes) - 4;
    g = ib_gguf_new_from_bytes (bytes, &error);
    if (f32_begin % 4 == 0) {
      g_assert_no_error (error);
      g_assert_cmpfloat (*(const float *) ib_gguf_find_tensor (g, "w")->data, ==, w_f32[0]);
      ib_gguf_free (g);
      accepted++;
    } else {
      g_assert_null (g);
      g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
      g_assert_nonnull (strstr (error->message, "not aligned to its 4-byte elements"));
      g_clear_error (&error);
      refused++;
    }
  }
  g_assert_cmpuint (accepted, ==, 2);
  g_assert_cmpuint (refused, ==, 2);
}

static void
test_duplicates (void)
{
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_add_tensor (b, "w", IB_GGUF_TENSOR_F32, 1, (guint64[]) { 2 }, w_f32);
    expect_format_error (b, "duplicate tensor name 'w'");
  }
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_add_u32 (b, "k", 8);
    expect_format_error (b, "duplicate key 'k'");
  }
  {
    /* Same key, other type. */
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_add_string (b, "general.architecture", "other");
    expect_format_error (b, "duplicate key 'general.architecture'");
  }
}

static void
test_bad_alignment (void)
{
  const guint32 bad[] = { 0, 3, 24, 100 };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    g_autofree char *needle = g_strdup_printf ("%u is not a power of two", bad[i]);
    ib_gguf_builder_add_alignment (b, bad[i]);
    expect_format_error (b, "general.alignment", needle);
  }
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_add_u64 (b, "general.alignment", 32);
    expect_format_error (b, "general.alignment", "must be a u32");
  }
  {
    /* A valid but different alignment round-trips, and offsets must honour it. */
    g_autoptr (IbGgufBuilder) b = small_builder ();
    g_autoptr (GBytes) bytes = NULL;
    GError *error = NULL;
    IbGguf *g;
    ib_gguf_builder_add_alignment (b, 128);
    bytes = ib_gguf_builder_build (b);
    g = ib_gguf_new_from_bytes (bytes, &error);
    g_assert_no_error (error);
    g_assert_true (pointer_aligned (ib_gguf_find_tensor (g, "h")->data, 64));
    g_assert_cmpmem (ib_gguf_find_tensor (g, "h")->data, 10, h_f16, 10);
    ib_gguf_free (g);
    ib_gguf_builder_set_tensor_offset (b, 1, 32);
    expect_format_error (b, "tensor 'h'", "offset 32 is not a multiple of the alignment 128");
  }
}

static void
test_bad_names (void)
{
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_set_tensor_name_bytes (b, 1, "\xff\xfe", 2);
    expect_format_error (b, "tensor name", "not valid UTF-8");
  }
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_set_tensor_name_bytes (b, 1, "a\0b", 3);
    expect_format_error (b, "tensor name", "NUL");
  }
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_set_tensor_name_bytes (b, 1, "", 0);
    expect_format_error (b, "empty tensor name");
  }
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_add_u32 (b, "", 1);
    expect_format_error (b, "empty key");
  }
  {
    g_autoptr (IbGgufBuilder) b = small_builder ();
    ib_gguf_builder_add_string (b, "general.name", "bad \xc3");
    expect_format_error (b, "key 'general.name'", "not valid UTF-8");
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/gguf/round-trip/bytes", test_round_trip_bytes);
  g_test_add_func ("/gguf/round-trip/file", test_round_trip_file);
  g_test_add_func ("/gguf/round-trip/unaligned-buffer", test_unaligned_buffer);
  g_test_add_func ("/gguf/round-trip/no-tensors", test_empty_file_without_tensors);
  g_test_add_func ("/gguf/open/missing-file", test_missing_file);
  g_test_add_func ("/gguf/open/corrupt-file", test_corrupt_file_names_path);
  g_test_add_func ("/gguf/hostile/truncated-everywhere", test_truncated_everywhere);
  g_test_add_func ("/gguf/hostile/magic", test_bad_magic);
  g_test_add_func ("/gguf/hostile/version", test_bad_version);
  g_test_add_func ("/gguf/hostile/huge-counts", test_huge_counts);
  g_test_add_func ("/gguf/hostile/huge-string-lengths", test_huge_string_lengths);
  g_test_add_func ("/gguf/hostile/huge-array-count", test_huge_array_count);
  g_test_add_func ("/gguf/hostile/value-types", test_bad_value_types);
  g_test_add_func ("/gguf/hostile/dims", test_bad_dims);
  g_test_add_func ("/gguf/hostile/tensor-type", test_bad_tensor_type);
  g_test_add_func ("/gguf/hostile/offsets", test_bad_offsets);
  g_test_add_func ("/gguf/hostile/element-misalignment", test_element_misalignment);
  g_test_add_func ("/gguf/hostile/duplicates", test_duplicates);
  g_test_add_func ("/gguf/hostile/alignment", test_bad_alignment);
  g_test_add_func ("/gguf/hostile/names", test_bad_names);
  return g_test_run ();
}
