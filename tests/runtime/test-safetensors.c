/* The safetensors reader: a valid file gives every dtype's values exactly (unaligned data
 * included); every truncation, malformed JSON, bad dtype, absurd shape, out-of-range,
 * overlapping or gapped offset and bad header length gives IMAGEBIND_ERROR_FORMAT with a
 * message naming the problem; the OpenCLIP fixture files read as their state-dict index says,
 * and the Hugging Face file holds the same numbers under the names MAPPING.md gives; the GGUF
 * files convert.py makes from them hold every tensor of open_clip_model.safetensors under the
 * ImageBind names (models/GGUF.md), bit for bit (F16 files: rounded to nearest even). */
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "common.h"
#include "gguf.h"
#include "imagebind.h"
#include "ops.h"
#include "safetensors.h"

/* ---- building files ---- */

/* u64 little-endian header length, the header, then the data. */
static GBytes *
st_bytes (const char *header, gsize header_len, const void *data, gsize data_len)
{
  GByteArray *a = g_byte_array_new ();
  guint64 len = GUINT64_TO_LE ((guint64) header_len);

  g_byte_array_append (a, (const guint8 *) &len, 8);
  g_byte_array_append (a, (const guint8 *) header, (guint) header_len);
  if (data_len)
    g_byte_array_append (a, data, (guint) data_len);
  return g_byte_array_free_to_bytes (a);
}

static GBytes *
st_bytes_str (const char *header, gsize data_len)
{
  g_autofree guint8 *zeros = g_malloc0 (MAX (data_len, 1));

  return st_bytes (header, strlen (header), zeros, data_len);
}

/* Fails the test unless parsing refuses the bytes with a FORMAT error containing want. */
static void
expect_refused (GBytes *bytes, const char *want)
{
  GError *error = NULL;
  IbSafetensors *st = ib_safetensors_new_from_bytes (bytes, &error);

  if (st)
    g_error ("accepted a hostile file (expected an error containing \"%s\")", want);
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
  if (!strstr (error->message, want))
    g_error ("error \"%s\" does not contain \"%s\"", error->message, want);
  g_error_free (error);
}

static void
expect_header_refused (const char *header, gsize data_len, const char *want)
{
  g_autoptr (GBytes) bytes = st_bytes_str (header, data_len);

  expect_refused (bytes, want);
}

/* ---- a valid file with every dtype ---- */

static const float w_f32[6] = { 0.5f, -1.25f, 3.0f, 1e-7f, -0.0f, 65504.0f };
/* IEEE half: 1, -2, 0.333, 65504, the smallest subnormal */
static const guint16 h_f16[5] = { 0x3c00, 0xc000, 0x3555, 0x7bff, 0x0001 };
static const float h_f32[5] = { 1.0f, -2.0f, 0.333251953125f, 65504.0f, 0x1p-24f };
/* bfloat16: 1, -3, +inf */
static const guint16 b_bf16[3] = { 0x3f80, 0xc040, 0x7f80 };
static const gint64 ids_i64[4] = { 0, -1, G_GINT64_CONSTANT (49407), G_MAXINT64 };

/* The header lists tensors out of offset order and is padded with spaces to an odd length, so
 * that the data section (and every F32 tensor in it) starts at an odd address. */
#define VALID_HEADER \
  "{\"ids\":{\"dtype\":\"I64\",\"shape\":[1,4],\"data_offsets\":[40,72]},\n" \
  " \"__metadata__\" : {\"format\":\"pt\",\"esc\\\"aped\":\"\\u00e9\\ud83d\\ude00\\/\"},\n" \
  " \"w\":{\"data_offsets\":[0,24],\"shape\":[2,3],\"dtype\":\"F32\"},\n" \
  " \"h\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[24,34]},\n" \
  " \"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[34,40]},\n" \
  " \"logit_scale\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[72,76]},\n" \
  " \"empty\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[76,76]},\n" \
  " \"na\\u00efve \\\"q\\\"\\n\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[76,80]}}"

static GBytes *
valid_bytes (void)
{
  guint8 data[80];
  const float scale = 2.6592600f, last = -7.5f;
  GString *header = g_string_new (VALID_HEADER);
  GBytes *bytes;

  while (header->len % 8 != 3)
    g_string_append_c (header, ' ');
  memcpy (data, w_f32, 24);
  memcpy (data + 24, h_f16, 10);
  memcpy (data + 34, b_bf16, 6);
  memcpy (data + 40, ids_i64, 32);
  memcpy (data + 72, &scale, 4);
  memcpy (data + 76, &last, 4);
  bytes = st_bytes (header->str, header->len, data, sizeof data);
  g_string_free (header, TRUE);
  return bytes;
}

static void
check_valid (const IbSafetensors *st)
{
  const IbSafetensorsTensor *t;
  float f[6];
  gint64 i64[4];
  GError *error = NULL;

  g_assert_cmpuint (ib_safetensors_n_tensors (st), ==, 7);
  /* header order */
  g_assert_cmpstr (ib_safetensors_tensor (st, 0)->name, ==, "ids");
  g_assert_cmpstr (ib_safetensors_tensor (st, 1)->name, ==, "w");
  g_assert_cmpstr (ib_safetensors_tensor (st, 6)->name, ==, "na\xc3\xafve \"q\"\n");
  g_assert_cmpstr (ib_safetensors_get_metadata (st, "format"), ==, "pt");
  g_assert_cmpstr (ib_safetensors_get_metadata (st, "esc\"aped"), ==, "\xc3\xa9\xf0\x9f\x98\x80/");
  g_assert_null (ib_safetensors_get_metadata (st, "absent"));
  g_assert_null (ib_safetensors_find_tensor (st, "absent"));
  g_assert_null (ib_safetensors_find_tensor (st, "__metadata__"));

  t = ib_safetensors_find_tensor (st, "w");
  g_assert_nonnull (t);
  g_assert_cmpint (t->dtype, ==, IB_SAFETENSORS_F32);
  g_assert_cmpuint (t->n_dims, ==, 2);
  g_assert_cmpuint (t->shape[0], ==, 2);
  g_assert_cmpuint (t->shape[1], ==, 3);
  g_assert_cmpuint (t->n_elements, ==, 6);
  g_assert_cmpuint (t->n_bytes, ==, 24);
  /* the data section starts at an odd offset: nothing may rely on alignment */
  g_assert_cmpuint ((guintptr) t->data % 2, ==, 1);
  g_assert_true (ib_safetensors_tensor_to_f32 (t, f, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (f, 24, w_f32, 24);

  t = ib_safetensors_find_tensor (st, "h");
  g_assert_cmpint (t->dtype, ==, IB_SAFETENSORS_F16);
  g_assert_true (ib_safetensors_tensor_to_f32 (t, f, &error));
  g_assert_cmpmem (f, 20, h_f32, 20);

  t = ib_safetensors_find_tensor (st, "b");
  g_assert_cmpint (t->dtype, ==, IB_SAFETENSORS_BF16);
  g_assert_cmpuint (t->n_bytes, ==, 6);
  g_assert_true (ib_safetensors_tensor_to_f32 (t, f, &error));
  g_assert_cmpfloat (f[0], ==, 1.0f);
  g_assert_cmpfloat (f[1], ==, -3.0f);
  g_assert_cmpfloat (f[2], ==, INFINITY);

  t = ib_safetensors_find_tensor (st, "ids");
  g_assert_cmpint (t->dtype, ==, IB_SAFETENSORS_I64);
  g_assert_true (ib_safetensors_tensor_to_i64 (t, i64, &error));
  g_assert_cmpmem (i64, 32, ids_i64, 32);
  /* ids are not weights, and weights are not ids */
  g_assert_false (ib_safetensors_tensor_to_f32 (t, f, &error));
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "'ids' holds I64 values"));
  g_clear_error (&error);
  g_assert_false (ib_safetensors_tensor_to_i64 (ib_safetensors_find_tensor (st, "w"), i64, &error));
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
  g_clear_error (&error);

  t = ib_safetensors_find_tensor (st, "logit_scale");
  g_assert_cmpuint (t->n_dims, ==, 0);
  g_assert_cmpuint (t->n_elements, ==, 1);
  g_assert_true (ib_safetensors_tensor_to_f32 (t, f, NULL));
  g_assert_cmpfloat (f[0], ==, 2.6592600f);

  t = ib_safetensors_find_tensor (st, "empty");
  g_assert_cmpuint (t->n_dims, ==, 2);
  g_assert_cmpuint (t->n_elements, ==, 0);
  g_assert_cmpuint (t->n_bytes, ==, 0);
  g_assert_true (ib_safetensors_tensor_to_f32 (t, f, NULL));

  t = ib_safetensors_find_tensor (st, "na\xc3\xafve \"q\"\n");
  g_assert_true (ib_safetensors_tensor_to_f32 (t, f, NULL));
  g_assert_cmpfloat (f[0], ==, -7.5f);
  g_assert_true (t == ib_safetensors_tensor (st, 6));

  g_assert_cmpstr (ib_safetensors_dtype_name (IB_SAFETENSORS_BF16), ==, "BF16");
  g_assert_cmpuint (ib_safetensors_dtype_size (IB_SAFETENSORS_I64), ==, 8);
}

static void
test_valid_bytes (void)
{
  g_autoptr (GBytes) bytes = valid_bytes ();
  GError *error = NULL;
  IbSafetensors *st = ib_safetensors_new_from_bytes (bytes, &error);

  g_assert_no_error (error);
  check_valid (st);
  ib_safetensors_free (st);
}

static char *
temp_path (const char *name)
{
  static char *dir;

  if (!dir)
    dir = g_dir_make_tmp ("ib-safetensors-XXXXXX", NULL);
  g_assert_nonnull (dir);
  return g_build_filename (dir, name, NULL);
}

static void
test_valid_file (void)
{
  g_autoptr (GBytes) bytes = valid_bytes ();
  g_autofree char *path = temp_path ("valid.safetensors");
  GError *error = NULL;
  IbSafetensors *st;
  gsize size;
  const char *data = g_bytes_get_data (bytes, &size);

  g_assert_true (g_file_set_contents (path, data, (gssize) size, NULL));
  st = ib_safetensors_open (path, &error);
  g_assert_no_error (error);
  check_valid (st);
  ib_safetensors_free (st);
  g_unlink (path);
}

static void
test_empty_header (void)
{
  g_autoptr (GBytes) bytes = st_bytes_str ("  {  }  ", 0);
  GError *error = NULL;
  IbSafetensors *st = ib_safetensors_new_from_bytes (bytes, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (ib_safetensors_n_tensors (st), ==, 0);
  ib_safetensors_free (st);
}

static void
test_missing_file (void)
{
  GError *error = NULL;

  g_assert_null (ib_safetensors_open ("/nonexistent/x.safetensors", &error));
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FILE);
  g_assert_nonnull (strstr (error->message, "/nonexistent/x.safetensors"));
  g_error_free (error);
}

static void
test_corrupt_file_names_path (void)
{
  g_autofree char *path = temp_path ("corrupt.safetensors");
  GError *error = NULL;

  g_assert_true (g_file_set_contents (path, "\x05\0\0\0\0\0\0\0{\"a\":", 13, NULL));
  g_assert_null (ib_safetensors_open (path, &error));
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
  g_assert_true (g_str_has_prefix (error->message, path));
  g_error_free (error);
  g_unlink (path);
}

/* ---- hostile files ---- */

/* Every proper prefix of a valid file is refused (the tensors tile the data section, so a
 * shorter data section always leaves a tensor short), and so is one extra byte. Each prefix is
 * an exact-size copy, so that AddressSanitizer sees any read past its end. */
static void
test_truncated_everywhere (void)
{
  g_autoptr (GBytes) bytes = valid_bytes ();
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);
  g_autofree guint8 *longer = g_malloc (size + 1);

  for (gsize len = 0; len < size; len++) {
    g_autoptr (GBytes) prefix = g_bytes_new (data, len);
    GError *error = NULL;

    g_assert_null (ib_safetensors_new_from_bytes (prefix, &error));
    g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
    g_error_free (error);
  }
  memcpy (longer, data, size);
  longer[size] = 0;
  {
    g_autoptr (GBytes) b = g_bytes_new (longer, size + 1);
    expect_refused (b, "1 bytes after the last tensor");
  }
}

static void
test_header_length (void)
{
  static const struct {
    guint64 len;
    const char *want;
  } cases[] = {
    { 100, "file truncated: header length 100 but only 20 bytes follow" },
    { 21, "file truncated: header length 21" },
    { IB_SAFETENSORS_MAX_HEADER + 1ull, "exceeds the limit" },
    { G_MAXUINT64, "exceeds the limit" },
    { G_GUINT64_CONSTANT (1) << 63, "exceeds the limit" },
    { 0, "the header must be a JSON object, found the end of the header" },
  };
  guint8 file[28];

  memset (file + 8, ' ', 20);
  memcpy (file + 8, "{}", 2);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    guint64 le = GUINT64_TO_LE (cases[i].len);
    g_autoptr (GBytes) b = NULL;

    memcpy (file, &le, 8);
    b = g_bytes_new (file, sizeof file);
    expect_refused (b, cases[i].want);
  }
  {
    g_autoptr (GBytes) b = g_bytes_new (file, 7);
    expect_refused (b, "file too small");
  }
  {
    g_autoptr (GBytes) b = g_bytes_new (NULL, 0);
    expect_refused (b, "file too small");
  }
}

/* A tensor entry with the given shape and offsets, as JSON text. */
#define T(name, dtype, shape, offsets) \
  "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offsets "}"

static void
test_bad_json (void)
{
  static const struct {
    const char *header;
    const char *want;
  } cases[] = {
    { "", "the header must be a JSON object, found the end of the header" },
    { "[]", "the header must be a JSON object, found an array" },
    { "{", "expected a tensor name (a string), found the end of the header" },
    { "{" T ("a", "F32", "[1]", "[0,4]"), "expected '}' after the last tensor" },
    { "{" T ("a", "F32", "[1]", "[0,4]") ",}", "expected a tensor name (a string), found '}'" },
    { "{} x", "data after the end of the header object" },
    { "{}{}", "data after the end of the header object" },
    { "{\"a\" " T ("b", "F32", "[1]", "[0,4]") "}", "expected ':' after a tensor name" },
    { "{\"a\":5}", "tensor 'a': expected an object {dtype, shape, data_offsets}, found a number" },
    { "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
      "expected an object" },
    { "{\"a\":{}}", "tensor 'a' has no dtype, shape or data_offsets" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", "tensor 'a' has no data_offsets" },
    { "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", "tensor 'a' has no shape" },
    { "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", "tensor 'a' has no dtype" },
    { "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
      "tensor 'a': duplicate field 'dtype'" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}",
      "tensor 'a': unknown field 'x'" },
    { "{\"a\":{\"dtype\":\"F32\" \"shape\":[1],\"data_offsets\":[0,4]}}",
      "expected '}' after the last field of a tensor" },
    /* strings */
    { "{\"a", "unterminated string" },
    { "{\"a\\", "unterminated string" },
    { "{\"a\\q\":1}", "invalid escape '\\q'" },
    { "{\"a\\u12\"x\":1}", "\\u escape with a non-hex digit" },
    { "{\"a\\u12", "truncated \\u escape" },
    { "{\"a\\u0000b\":1}", "\\u0000 inside a string" },
    { "{\"\\ud800\":1}", "high surrogate \\ud800 not followed by a low one" },
    { "{\"\\ud800\\u0041\":1}", "high surrogate \\ud800 followed by \\u0041" },
    { "{\"\\udc00\":1}", "unpaired low surrogate \\udc00" },
    { "{\"a\nb\":1}", "control character 0x0a inside a string" },
    { "{\"a\xff\":1}", "not valid UTF-8" },
    { "{\"a\xc3\":1}", "not valid UTF-8" },
    { "{'a':1}", "expected a tensor name (a string), found a character that starts no JSON value" },
    /* names */
    { "{" T ("a", "F32", "[1]", "[0,4]") "," T ("a", "F32", "[1]", "[4,8]") "}",
      "duplicate tensor name 'a'" },
    { "{" T ("", "F32", "[1]", "[0,4]") "}", "empty tensor name" },
    { "{\"__metadata__\":{},\"__metadata__\":{}}", "duplicate __metadata__" },
    { "{\"__metadata__\":{\"a\":1}}", "expected a metadata value (a string), found a number" },
    { "{\"__metadata__\":{\"a\":\"x\",\"a\":\"y\"}}", "duplicate metadata key 'a'" },
    { "{\"__metadata__\":[]}", "__metadata__ must be an object of strings, found an array" },
    { "{\"__metadata__\":null}", "__metadata__ must be an object of strings, found null" },
    /* dtypes: only F32, F16, BF16, I64, spelled exactly */
    { "{" T ("a", "F64", "[1]", "[0,8]") "}", "tensor 'a': dtype 'F64' is not supported" },
    { "{" T ("a", "I32", "[1]", "[0,4]") "}", "dtype 'I32' is not supported" },
    { "{" T ("a", "BOOL", "[1]", "[0,1]") "}", "dtype 'BOOL' is not supported" },
    { "{" T ("a", "F8_E4M3", "[1]", "[0,1]") "}", "dtype 'F8_E4M3' is not supported" },
    { "{" T ("a", "f32", "[1]", "[0,4]") "}", "dtype 'f32' is not supported" },
    { "{" T ("a", "", "[1]", "[0,4]") "}", "dtype '' is not supported" },
    { "{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}",
      "expected the dtype (a string), found a number" },
    /* numbers */
    { "{" T ("a", "F32", "[1.0]", "[0,4]") "}", "a dimension is 1.0, not a non-negative integer" },
    { "{" T ("a", "F32", "[-1]", "[0,4]") "}", "a dimension is -1, not a non-negative integer" },
    { "{" T ("a", "F32", "[1e0]", "[0,4]") "}", "a dimension is 1e0, not a non-negative integer" },
    { "{" T ("a", "F32", "[01]", "[0,4]") "}", "a dimension has a leading zero" },
    { "{" T ("a", "F32", "[1.]", "[0,4]") "}", "a number needs digits after '.'" },
    { "{" T ("a", "F32", "[1e]", "[0,4]") "}", "a number needs digits in its exponent" },
    { "{" T ("a", "F32", "[18446744073709551616]", "[0,4]") "}",
      "a dimension 18446744073709551616 does not fit in 64 bits" },
    { "{" T ("a", "F32", "[\"1\"]", "[0,4]") "}", "expected a dimension (an integer), found a string" },
    { "{" T ("a", "F32", "[true]", "[0,4]") "}", "expected a dimension (an integer), found a boolean" },
    { "{" T ("a", "F32", "[1,]", "[0,4]") "}", "expected a dimension (an integer), found ']'" },
    { "{" T ("a", "F32", "[1 1]", "[0,4]") "}", "expected ']' after the last entry" },
    { "{" T ("a", "F32", "1", "[0,4]") "}", "expected a dimension (an array of integers), found a number" },
    { "{" T ("a", "F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]") "}",
      "tensor 'a': shape: JSON header at file offset" },
    { "{" T ("a", "F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]") "}", "has more than 8 entries" },
    { "{" T ("a", "F32", "[1]", "[0]") "}", "tensor 'a': data_offsets has 1 entries, not 2" },
    { "{" T ("a", "F32", "[1]", "[]") "}", "data_offsets has 0 entries" },
    { "{" T ("a", "F32", "[1]", "[0,4,8]") "}", "data_offsets: JSON header" },
    { "{" T ("a", "F32", "[1]", "[0,-4]") "}", "a data offset is -4" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    if (g_test_verbose ())
      g_printerr ("case %u: %s\n", i, cases[i].header);
    expect_header_refused (cases[i].header, 4, cases[i].want);
  }
  /* A NUL byte inside the header. */
  {
    static const char header[] = "{\"a\0\":1}";
    g_autoptr (GBytes) b = st_bytes (header, sizeof header - 1, NULL, 0);
    expect_refused (b, "not valid UTF-8 or contains a NUL byte");
  }
  /* Deep nesting is refused at the first bracket, without recursion. */
  {
    gsize n = 1 << 20;
    char *deep = g_malloc (n + 8);
    memcpy (deep, "{\"a\":", 5);
    memset (deep + 5, '[', n);
    deep[n + 5] = '\0';
    expect_header_refused (deep, 0, "expected an object {dtype, shape, data_offsets}, found an array");
    g_free (deep);
  }
  /* The error offset is the file offset (8 + position in the header) of the problem. */
  expect_header_refused ("{\"a\":5}", 0, "JSON header at file offset 13: ");
}

static void
test_bad_offsets (void)
{
  static const struct {
    const char *header;
    gsize data_len;
    const char *want;
  } cases[] = {
    { "{" T ("a", "F32", "[1]", "[4,0]") "}", 4,
      "tensor 'a': data_offsets [4, 0] begin after they end" },
    { "{" T ("a", "F32", "[1]", "[0,4]") "}", 3,
      "tensor 'a': data_offsets [0, 4] reach past the end of the data section (3 bytes)" },
    { "{" T ("a", "F32", "[1]", "[18446744073709551612,18446744073709551615]") "}", 4,
      "reach past the end" },
    { "{" T ("a", "F32", "[2]", "[0,4]") "}", 4,
      "tensor 'a': data_offsets [0, 4] hold 4 bytes, but 2 F32 elements take 8" },
    { "{" T ("a", "F16", "[3]", "[0,4]") "}", 4, "but 3 F16 elements take 6" },
    { "{" T ("a", "I64", "[1]", "[0,4]") "}", 4, "but 1 I64 elements take 8" },
    { "{" T ("a", "F32", "[]", "[0,0]") "}", 0, "but 1 F32 elements take 4" },
    { "{" T ("a", "F32", "[0]", "[0,4]") "}", 4, "but 0 F32 elements take 0" },
    /* overlaps: partial, identical, nested, a zero-size tensor inside another */
    { "{" T ("a", "F32", "[2]", "[0,8]") "," T ("b", "F32", "[2]", "[4,12]") "}", 12,
      "tensor 'b' data [4, 12) overlaps tensor 'a' (which ends at 8)" },
    { "{" T ("a", "F32", "[1]", "[0,4]") "," T ("b", "F32", "[1]", "[0,4]") "}", 4,
      "overlaps tensor" },
    { "{" T ("a", "F32", "[4]", "[0,16]") "," T ("b", "F32", "[1]", "[4,8]") "}", 16,
      "tensor 'b' data [4, 8) overlaps tensor 'a'" },
    { "{" T ("a", "F32", "[1]", "[0,4]") "," T ("e", "F32", "[0]", "[2,2]") "}", 4,
      "tensor 'e' data [2, 2) overlaps tensor 'a'" },
    /* holes and trailing bytes */
    { "{" T ("a", "F32", "[1]", "[0,4]") "," T ("b", "F32", "[1]", "[8,12]") "}", 12,
      "bytes [4, 8) of the data section belong to no tensor (before tensor 'b')" },
    { "{" T ("a", "F32", "[1]", "[4,8]") "}", 8, "bytes [0, 4) of the data section belong" },
    { "{" T ("a", "F32", "[1]", "[0,4]") "}", 9, "5 bytes after the last tensor" },
    { "{}", 1, "1 bytes after the last tensor" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    expect_header_refused (cases[i].header, cases[i].data_len, cases[i].want);
}

static void
test_absurd_shapes (void)
{
  static const struct {
    const char *header;
    const char *want;
  } cases[] = {
    { "{" T ("a", "F32", "[4294967296,4294967296,4]", "[0,4]") "}",
      "tensor 'a': shape is absurd (the element count overflows at dimension 1)" },
    { "{" T ("a", "F32", "[3037000500,3037000500]", "[0,4]") "}", "shape is absurd" },
    { "{" T ("a", "F32", "[2305843009213693952]", "[0,4]") "}",
      "shape is absurd (the element count overflows at dimension 0)" },
    { "{" T ("a", "I64", "[1152921504606846976]", "[0,4]") "}", "shape is absurd" },
    /* a zero does not hide absurd dimensions after it */
    { "{" T ("a", "F32", "[0,2147483648,2147483648]", "[0,0]") "}",
      "shape is absurd (the element count overflows at dimension 2)" },
    { "{" T ("a", "F32", "[18446744073709551615]", "[0,4]") "}", "shape is absurd" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    expect_header_refused (cases[i].header, 4, cases[i].want);
}

/* ---- the OpenCLIP fixture files ---- */

static IbSafetensors *
open_fixture (const char *relative)
{
  g_autofree char *path = ib_test_fixture (relative);
  GError *error = NULL;
  IbSafetensors *st = ib_safetensors_open (path, &error);

  g_assert_no_error (error);
  return st;
}

static float *
tensor_f32 (const IbSafetensorsTensor *t)
{
  float *v = g_new (float, MAX (t->n_elements, 1));
  GError *error = NULL;

  g_assert_true (ib_safetensors_tensor_to_f32 (t, v, &error));
  g_assert_no_error (error);
  return v;
}

/* "rows a:b" of a (rows, cols) tensor, or the transpose, or a copy: MAPPING.md's operations. */
static float *
apply_transform (const char *transform, const IbSafetensorsTensor *t, const float *v, gsize *n)
{
  gsize cols = t->n_dims >= 2 ? (gsize) t->shape[1] : 1;
  guint a, b;

  if (strcmp (transform, "copy") == 0) {
    *n = t->n_elements;
    return g_memdup2 (v, MAX (*n, 1) * sizeof (float));
  }
  if (strcmp (transform, "transpose") == 0) {
    gsize rows = (gsize) t->shape[0];
    float *out = g_new (float, rows * cols);
    g_assert_cmpuint (t->n_dims, ==, 2);
    for (gsize r = 0; r < rows; r++)
      for (gsize c = 0; c < cols; c++)
        out[c * rows + r] = v[r * cols + c];
    *n = rows * cols;
    return out;
  }
  g_assert_cmpint (sscanf (transform, "rows %u:%u", &a, &b), ==, 2);
  g_assert_cmpuint (a, <, b);
  g_assert_cmpuint (b, <=, t->shape[0]);
  *n = (gsize) (b - a) * cols;
  return g_memdup2 (v + (gsize) a * cols, *n * sizeof (float));
}

/* Every OpenCLIP tensor of state_dict_index.json: shape, element count, sum and first values
 * as listed; every Hugging Face tensor: bit for bit the listed operation on the OpenCLIP one;
 * and no tensor in either file that the index does not list. */
static void
test_openclip_fixtures (void)
{
  g_autofree char *index_path = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  GError *error = NULL;
  JsonArray *tensors;
  IbSafetensors *oc, *hf;
  guint n_hf = 0;

  if (!ib_test_need_conformance ())
    return;
  index_path = ib_test_fixture ("openclip/tiny/state_dict_index.json");
  if (!g_file_test (index_path, G_FILE_TEST_EXISTS)) {
    g_test_skip ("openclip/tiny fixtures not found");
    return;
  }
  g_assert_true (json_parser_load_from_file (parser, index_path, &error));
  g_assert_no_error (error);
  tensors = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
      "tensors");
  oc = open_fixture ("openclip/tiny/open_clip_model.safetensors");
  hf = open_fixture ("openclip/tiny/hf_model.safetensors");
  g_assert_cmpuint (ib_safetensors_n_tensors (oc), ==, json_array_get_length (tensors));
  g_assert_null (ib_safetensors_get_metadata (oc, "format"));
  g_assert_cmpstr (ib_safetensors_get_metadata (hf, "format"), ==, "pt");

  for (guint i = 0; i < json_array_get_length (tensors); i++) {
    JsonObject *e = json_array_get_object_element (tensors, i);
    const char *name = json_object_get_string_member (e, "name");
    JsonArray *shape = json_object_get_array_member (e, "shape");
    JsonArray *first = json_object_get_array_member (e, "first");
    JsonArray *hf_entries = json_object_get_array_member (e, "hf");
    const IbSafetensorsTensor *t = ib_safetensors_find_tensor (oc, name);
    g_autofree float *v = NULL;
    double sum = 0, abs_sum = 0;

    g_assert_nonnull (t);
    g_assert_cmpint (t->dtype, ==, IB_SAFETENSORS_F32);
    g_assert_cmpuint (t->n_dims, ==, json_array_get_length (shape));
    for (guint d = 0; d < t->n_dims; d++)
      g_assert_cmpuint (t->shape[d], ==, json_array_get_int_element (shape, d));
    g_assert_cmpuint (t->n_elements, ==, json_object_get_int_member (e, "numel"));
    v = tensor_f32 (t);
    for (guint64 k = 0; k < t->n_elements; k++) {
      sum += v[k];
      abs_sum += fabs (v[k]);
    }
    /* the index's sum is float64 over the same float32 values: only the order differs */
    g_assert_cmpfloat (fabs (sum - json_object_get_double_member (e, "sum")), <=,
        1e-12 * MAX (abs_sum, 1.0));
    for (guint k = 0; k < json_array_get_length (first); k++)
      g_assert_cmpfloat (v[k], ==, (float) json_array_get_double_element (first, k));

    for (guint h = 0; h < json_array_get_length (hf_entries); h++) {
      JsonObject *m = json_array_get_object_element (hf_entries, h);
      const char *hf_name = json_object_get_string_member (m, "name");
      const IbSafetensorsTensor *ht = ib_safetensors_find_tensor (hf, hf_name);
      g_autofree float *hv = NULL, *want = NULL;
      gsize n;

      if (!ht)
        g_error ("%s: no tensor '%s' in hf_model.safetensors", name, hf_name);
      want = apply_transform (json_object_get_string_member (m, "transform"), t, v, &n);
      g_assert_cmpuint (ht->n_elements, ==, n);
      hv = tensor_f32 (ht);
      if (memcmp (hv, want, n * sizeof (float)) != 0)
        g_error ("%s != %s(%s)", hf_name, json_object_get_string_member (m, "transform"), name);
      n_hf++;
    }
  }
  /* tiny's HF file has no position_ids buffers: every HF tensor was checked */
  g_assert_cmpuint (n_hf, ==, ib_safetensors_n_tensors (hf));
  ib_safetensors_free (oc);
  ib_safetensors_free (hf);
}

/* ---- converted GGUF files vs the safetensors they came from ---- */

/* The GGUF files to check (build/tests/openclip-tiny-*.gguf, given by meson). */
static char **gguf_paths;

/* OpenCLIP name -> GGUF (ImageBind) name, written from MAPPING.md and the agreed layout rather
 * than from convert.py, so that the two are independent. Projections are stored (E, D):
 * OpenCLIP's x @ proj (D, E) transposed. */
static char *
gguf_name_of (const char *oc, gboolean *transpose)
{
  static const char *const fixed[][2] = {
    { "visual.conv1.weight", "modality_preprocessors.vision.rgbt_stem.proj.1.weight" },
    { "visual.class_embedding", "modality_preprocessors.vision.cls_token" },
    { "visual.positional_embedding", "modality_preprocessors.vision.pos_embedding_helper.pos_embed" },
    { "visual.ln_pre.weight", "modality_trunks.vision.pre_transformer_layer.0.weight" },
    { "visual.ln_pre.bias", "modality_trunks.vision.pre_transformer_layer.0.bias" },
    { "visual.ln_post.weight", "modality_heads.vision.0.weight" },
    { "visual.ln_post.bias", "modality_heads.vision.0.bias" },
    { "visual.proj", "modality_heads.vision.2.weight" },
    { "token_embedding.weight", "modality_preprocessors.text.token_embedding.weight" },
    { "positional_embedding", "modality_preprocessors.text.pos_embed" },
    { "ln_final.weight", "modality_heads.text.proj.0.weight" },
    { "ln_final.bias", "modality_heads.text.proj.0.bias" },
    { "text_projection", "modality_heads.text.proj.1.weight" },
    { "logit_scale", "modality_postprocessors.text.1.log_logit_scale" },
  };
  static const char *const block_parts[][2] = {
    { "ln_1.", "norm_1." }, { "ln_2.", "norm_2." }, { "attn.in_proj_", "attn.in_proj_" },
    { "attn.out_proj.", "attn.out_proj." }, { "mlp.c_fc.", "mlp.fc1." },
    { "mlp.c_proj.", "mlp.fc2." },
  };
  const char *tower = "text", *rest = oc;
  guint block;
  int used = 0;

  *transpose = g_str_equal (oc, "visual.proj") || g_str_equal (oc, "text_projection");
  for (guint i = 0; i < G_N_ELEMENTS (fixed); i++)
    if (g_str_equal (oc, fixed[i][0]))
      return g_strdup (fixed[i][1]);
  if (g_str_has_prefix (oc, "visual.")) {
    tower = "vision";
    rest = oc + strlen ("visual.");
  }
  if (sscanf (rest, "transformer.resblocks.%u.%n", &block, &used) < 1 || used == 0)
    return NULL;
  for (guint i = 0; i < G_N_ELEMENTS (block_parts); i++)
    if (g_str_has_prefix (rest + used, block_parts[i][0]))
      return g_strdup_printf ("modality_trunks.%s.blocks.%u.%s%s", tower, block, block_parts[i][1],
          rest + used + strlen (block_parts[i][0]));
  return NULL;
}

static void
check_converted_gguf (const char *path, const IbSafetensors *oc)
{
  GError *error = NULL;
  IbGguf *gguf = ib_gguf_open (path, &error);
  guint n_f16 = 0;

  g_assert_no_error (error);
  /* no tensor more, none less (the text mask is implied, position ids dropped) */
  g_assert_cmpuint (ib_gguf_n_tensors (gguf), ==, ib_safetensors_n_tensors (oc));
  for (guint i = 0; i < ib_safetensors_n_tensors (oc); i++) {
    const IbSafetensorsTensor *t = ib_safetensors_tensor (oc, i);
    gboolean transpose;
    g_autofree char *name = gguf_name_of (t->name, &transpose);
    const IbGgufTensor *g;
    g_autofree float *v = tensor_f32 (t);
    g_autofree float *want = NULL;
    gsize n;

    if (!name)
      g_error ("%s: no GGUF name for OpenCLIP tensor '%s'", path, t->name);
    g = ib_gguf_find_tensor (gguf, name);
    if (!g)
      g_error ("%s: no tensor '%s' (from '%s')", path, name, t->name);
    g_assert_cmpuint (g->n_elements, ==, t->n_elements);
    want = apply_transform (transpose ? "transpose" : "copy", t, v, &n);
    /* GGML order: ne[0] is the last PyTorch dimension; the stem keeps (D, 3, P, P) */
    if (t->n_dims >= 2) {
      g_assert_cmpuint (g->ne[0], ==, transpose ? t->shape[0] : t->shape[t->n_dims - 1]);
      if (transpose)
        g_assert_cmpuint (g->ne[1], ==, t->shape[1]);
    }
    if (g->type == IB_GGUF_TENSOR_F32) {
      if (memcmp (g->data, want, n * sizeof (float)) != 0)
        g_error ("%s: '%s' differs from '%s' of open_clip_model.safetensors", path, name, t->name);
    } else {
      const guint16 *h = g->data;
      n_f16++;
      for (gsize k = 0; k < n; k++)
        if (h[k] != ib_f32_to_f16 (want[k]))
          g_error ("%s: '%s'[%" G_GSIZE_FORMAT "] = 0x%04x, not the half of %.9g", path, name, k,
              h[k], want[k]);
    }
  }
  /* the F16 file really stores its matrices in F16 */
  if (strstr (path, "f16"))
    g_assert_cmpuint (n_f16, >, 0);
  ib_gguf_free (gguf);
}

/* Each GGUF that convert.py makes from the tiny OpenCLIP model (from its .bin, .safetensors or
 * Hugging Face file, F32 or F16) holds open_clip_model.safetensors's tensors. */
static void
test_converted_gguf (void)
{
  IbSafetensors *oc;

  if (!ib_test_need_conformance ())
    return;
  if (!gguf_paths || !gguf_paths[0]) {
    g_test_skip ("no converted OpenCLIP GGUF given (fixtures absent)");
    return;
  }
  oc = open_fixture ("openclip/tiny/open_clip_model.safetensors");
  for (guint i = 0; gguf_paths[i]; i++)
    check_converted_gguf (gguf_paths[i], oc);
  ib_safetensors_free (oc);
}

/* Every truncation within the real header, and a few in the data, refused; exact-size copies
 * so that AddressSanitizer sees reads past the end. */
static void
test_fixture_truncated (void)
{
  g_autofree char *path = NULL;
  g_autofree char *contents = NULL;
  gsize size;
  guint64 header_len;

  if (!ib_test_need_conformance ())
    return;
  path = ib_test_fixture ("openclip/tiny/hf_model.safetensors");
  if (!g_file_get_contents (path, &contents, &size, NULL)) {
    g_test_skip ("openclip/tiny fixtures not found");
    return;
  }
  memcpy (&header_len, contents, 8);
  header_len = GUINT64_FROM_LE (header_len);
  g_assert_cmpuint (header_len, <, size);
  for (gsize len = 0; len < 8 + header_len + 64; len++) {
    g_autoptr (GBytes) prefix = g_bytes_new (contents, len);
    GError *error = NULL;

    g_assert_null (ib_safetensors_new_from_bytes (prefix, &error));
    g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
    g_error_free (error);
  }
  for (gsize cut = 1; cut <= 4096; cut *= 2) {
    g_autoptr (GBytes) prefix = g_bytes_new (contents, size - cut);
    expect_refused (prefix, "reach past the end of the data section");
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  gguf_paths = argv + 1;
  g_test_add_func ("/safetensors/valid/bytes", test_valid_bytes);
  g_test_add_func ("/safetensors/valid/file", test_valid_file);
  g_test_add_func ("/safetensors/valid/empty-header", test_empty_header);
  g_test_add_func ("/safetensors/open/missing-file", test_missing_file);
  g_test_add_func ("/safetensors/open/corrupt-file", test_corrupt_file_names_path);
  g_test_add_func ("/safetensors/hostile/truncated-everywhere", test_truncated_everywhere);
  g_test_add_func ("/safetensors/hostile/header-length", test_header_length);
  g_test_add_func ("/safetensors/hostile/json", test_bad_json);
  g_test_add_func ("/safetensors/hostile/offsets", test_bad_offsets);
  g_test_add_func ("/safetensors/hostile/absurd-shapes", test_absurd_shapes);
  g_test_add_func ("/safetensors/fixtures/openclip-vs-hf", test_openclip_fixtures);
  g_test_add_func ("/safetensors/fixtures/truncated", test_fixture_truncated);
  g_test_add_func ("/safetensors/fixtures/converted-gguf", test_converted_gguf);
  return g_test_run ();
}
