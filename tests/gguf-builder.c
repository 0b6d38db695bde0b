/* Test-only GGUF writer: see gguf-builder.h. Little-endian regardless of the host. */
#include "gguf-builder.h"

#include <string.h>

#define MAX_WRITTEN_DIMS 8

typedef struct {
  GBytes *name;      /* written verbatim (may be invalid on purpose) */
  guint32 n_dims;
  guint64 ne[MAX_WRITTEN_DIMS];
  guint32 type;
  GBytes *data;
  gboolean offset_set;
  guint64 offset;
} BuilderTensor;

struct _IbGgufBuilder {
  char magic[4];
  guint32 version;
  gboolean n_tensors_set, n_kv_set;
  guint64 n_tensors, n_kv;
  guint64 kv_count;
  GByteArray *kvs;
  guint32 alignment;
  GArray *tensors; /* BuilderTensor */
};

void
ib_gguf_put_u32 (GByteArray *out, guint32 v)
{
  guint32 le = GUINT32_TO_LE (v);
  g_byte_array_append (out, (const guint8 *) &le, 4);
}

void
ib_gguf_put_u64 (GByteArray *out, guint64 v)
{
  guint64 le = GUINT64_TO_LE (v);
  g_byte_array_append (out, (const guint8 *) &le, 8);
}

static void
put_bytes_string (GByteArray *out, const void *s, gsize len)
{
  ib_gguf_put_u64 (out, len);
  g_byte_array_append (out, s, len);
}

void
ib_gguf_put_string (GByteArray *out, const char *s)
{
  put_bytes_string (out, s, strlen (s));
}

/* Appends size bytes of a host-order scalar in little-endian order. */
static void
put_le (GByteArray *out, const void *v, gsize size)
{
  guint8 b[8];
  memcpy (b, v, size);
#if G_BYTE_ORDER == G_BIG_ENDIAN
  for (gsize i = 0; i < size / 2; i++) {
    guint8 t = b[i];
    b[i] = b[size - 1 - i];
    b[size - 1 - i] = t;
  }
#endif
  g_byte_array_append (out, b, size);
}

static void
clear_tensor (gpointer data)
{
  BuilderTensor *t = data;
  g_bytes_unref (t->name);
  g_bytes_unref (t->data);
}

IbGgufBuilder *
ib_gguf_builder_new (void)
{
  IbGgufBuilder *b = g_new0 (IbGgufBuilder, 1);

  memcpy (b->magic, "GGUF", 4);
  b->version = 3;
  b->kvs = g_byte_array_new ();
  b->alignment = 32;
  b->tensors = g_array_new (FALSE, TRUE, sizeof (BuilderTensor));
  g_array_set_clear_func (b->tensors, clear_tensor);
  return b;
}

void
ib_gguf_builder_free (IbGgufBuilder *b)
{
  if (!b)
    return;
  g_byte_array_unref (b->kvs);
  g_array_unref (b->tensors);
  g_free (b);
}

/* ---- key/value pairs ---- */

static void
begin_kv (IbGgufBuilder *b, const char *key, IbGgufValueType type)
{
  ib_gguf_put_string (b->kvs, key);
  ib_gguf_put_u32 (b->kvs, type);
  b->kv_count++;
}

static void
add_scalar (IbGgufBuilder *b, const char *key, IbGgufValueType type, const void *v, gsize size)
{
  begin_kv (b, key, type);
  put_le (b->kvs, v, size);
}

void ib_gguf_builder_add_u8 (IbGgufBuilder *b, const char *k, guint8 v) { add_scalar (b, k, IB_GGUF_U8, &v, 1); }
void ib_gguf_builder_add_i8 (IbGgufBuilder *b, const char *k, gint8 v) { add_scalar (b, k, IB_GGUF_I8, &v, 1); }
void ib_gguf_builder_add_u16 (IbGgufBuilder *b, const char *k, guint16 v) { add_scalar (b, k, IB_GGUF_U16, &v, 2); }
void ib_gguf_builder_add_i16 (IbGgufBuilder *b, const char *k, gint16 v) { add_scalar (b, k, IB_GGUF_I16, &v, 2); }
void ib_gguf_builder_add_u32 (IbGgufBuilder *b, const char *k, guint32 v) { add_scalar (b, k, IB_GGUF_U32, &v, 4); }
void ib_gguf_builder_add_i32 (IbGgufBuilder *b, const char *k, gint32 v) { add_scalar (b, k, IB_GGUF_I32, &v, 4); }
void ib_gguf_builder_add_u64 (IbGgufBuilder *b, const char *k, guint64 v) { add_scalar (b, k, IB_GGUF_U64, &v, 8); }
void ib_gguf_builder_add_i64 (IbGgufBuilder *b, const char *k, gint64 v) { add_scalar (b, k, IB_GGUF_I64, &v, 8); }
void ib_gguf_builder_add_f32 (IbGgufBuilder *b, const char *k, float v) { add_scalar (b, k, IB_GGUF_F32, &v, 4); }
void ib_gguf_builder_add_f64 (IbGgufBuilder *b, const char *k, double v) { add_scalar (b, k, IB_GGUF_F64, &v, 8); }

void
ib_gguf_builder_add_bool (IbGgufBuilder *b, const char *key, gboolean v)
{
  guint8 byte = v ? 1 : 0;
  add_scalar (b, key, IB_GGUF_BOOL, &byte, 1);
}

void
ib_gguf_builder_add_string (IbGgufBuilder *b, const char *key, const char *v)
{
  begin_kv (b, key, IB_GGUF_STRING);
  ib_gguf_put_string (b->kvs, v);
}

static gsize
element_size (IbGgufValueType type)
{
  switch (type) {
    case IB_GGUF_U8: case IB_GGUF_I8: case IB_GGUF_BOOL: return 1;
    case IB_GGUF_U16: case IB_GGUF_I16: return 2;
    case IB_GGUF_U32: case IB_GGUF_I32: case IB_GGUF_F32: return 4;
    case IB_GGUF_U64: case IB_GGUF_I64: case IB_GGUF_F64: return 8;
    default: g_assert_not_reached ();
  }
}

void
ib_gguf_builder_add_array (IbGgufBuilder *b, const char *key, IbGgufValueType elem_type,
    const void *elems, gsize count)
{
  gsize size = element_size (elem_type);

  begin_kv (b, key, IB_GGUF_ARRAY);
  ib_gguf_put_u32 (b->kvs, elem_type);
  ib_gguf_put_u64 (b->kvs, count);
  for (gsize i = 0; i < count; i++)
    put_le (b->kvs, (const guint8 *) elems + i * size, size);
}

void
ib_gguf_builder_add_string_array (IbGgufBuilder *b, const char *key, const char *const *strv,
    gsize count)
{
  begin_kv (b, key, IB_GGUF_ARRAY);
  ib_gguf_put_u32 (b->kvs, IB_GGUF_STRING);
  ib_gguf_put_u64 (b->kvs, count);
  for (gsize i = 0; i < count; i++)
    ib_gguf_put_string (b->kvs, strv[i]);
}

void
ib_gguf_builder_add_alignment (IbGgufBuilder *b, guint32 alignment)
{
  ib_gguf_builder_add_u32 (b, "general.alignment", alignment);
  b->alignment = MAX (alignment, 1);
}

void
ib_gguf_builder_add_raw_kv (IbGgufBuilder *b, const void *bytes, gsize n)
{
  g_byte_array_append (b->kvs, bytes, n);
  b->kv_count++;
}

/* ---- tensors ---- */

guint
ib_gguf_builder_add_tensor (IbGgufBuilder *b, const char *name, IbGgufTensorType type,
    guint n_dims, const guint64 *ne, const void *data)
{
  BuilderTensor t = { 0 };
  gsize n_bytes = type == IB_GGUF_TENSOR_F32 ? 4 : type == IB_GGUF_TENSOR_I8 ? 1 : 2;

  g_assert (n_dims >= 1 && n_dims <= MAX_WRITTEN_DIMS);
  t.name = g_bytes_new (name, strlen (name));
  t.n_dims = n_dims;
  for (guint d = 0; d < n_dims; d++) {
    t.ne[d] = ne[d];
    n_bytes *= ne[d];
  }
  t.type = type;
  if (data) {
    t.data = g_bytes_new (data, n_bytes);
  } else {
    guint8 *pattern = g_malloc (n_bytes);
    for (gsize i = 0; i < n_bytes; i++)
      pattern[i] = (guint8) i;
    t.data = g_bytes_new_take (pattern, n_bytes);
  }
  g_array_append_val (b->tensors, t);
  return b->tensors->len - 1;
}

static BuilderTensor *
tensor_at (IbGgufBuilder *b, guint index)
{
  g_assert (index < b->tensors->len);
  return &g_array_index (b->tensors, BuilderTensor, index);
}

void
ib_gguf_builder_set_tensor_name_bytes (IbGgufBuilder *b, guint index, const void *name, gsize len)
{
  BuilderTensor *t = tensor_at (b, index);
  g_bytes_unref (t->name);
  t->name = g_bytes_new (name, len);
}

void
ib_gguf_builder_set_tensor_dims (IbGgufBuilder *b, guint index, guint32 n_dims, const guint64 *ne)
{
  BuilderTensor *t = tensor_at (b, index);
  t->n_dims = n_dims;
  memset (t->ne, 0, sizeof t->ne);
  for (guint d = 0; d < MIN (n_dims, MAX_WRITTEN_DIMS); d++)
    t->ne[d] = ne[d];
}

void
ib_gguf_builder_set_tensor_type (IbGgufBuilder *b, guint index, guint32 type)
{
  tensor_at (b, index)->type = type;
}

void
ib_gguf_builder_set_tensor_offset (IbGgufBuilder *b, guint index, guint64 offset)
{
  BuilderTensor *t = tensor_at (b, index);
  t->offset_set = TRUE;
  t->offset = offset;
}

/* ---- header and layout ---- */

void ib_gguf_builder_set_magic (IbGgufBuilder *b, const char magic[4]) { memcpy (b->magic, magic, 4); }
void ib_gguf_builder_set_version (IbGgufBuilder *b, guint32 version) { b->version = version; }

void
ib_gguf_builder_set_n_tensors (IbGgufBuilder *b, guint64 n_tensors)
{
  b->n_tensors_set = TRUE;
  b->n_tensors = n_tensors;
}

void
ib_gguf_builder_set_n_kv (IbGgufBuilder *b, guint64 n_kv)
{
  b->n_kv_set = TRUE;
  b->n_kv = n_kv;
}

static void
pad_to (GByteArray *out, gsize alignment)
{
  static const guint8 zero[1] = { 0 };
  while (out->len % alignment != 0)
    g_byte_array_append (out, zero, 1);
}

GBytes *
ib_gguf_builder_build (IbGgufBuilder *b)
{
  GByteArray *out = g_byte_array_new ();
  GByteArray *data = g_byte_array_new ();
  guint64 *offsets = g_new0 (guint64, MAX (b->tensors->len, 1));

  /* Tensor data first, to know the offsets: each tensor starts aligned, the last one ends
   * the file (no trailing padding, so that every strict prefix of the file is truncated). */
  for (guint i = 0; i < b->tensors->len; i++) {
    BuilderTensor *t = tensor_at (b, i);
    gsize n;
    const guint8 *p = g_bytes_get_data (t->data, &n);
    pad_to (data, b->alignment);
    offsets[i] = t->offset_set ? t->offset : data->len;
    g_byte_array_append (data, p, n);
  }

  g_byte_array_append (out, (const guint8 *) b->magic, 4);
  ib_gguf_put_u32 (out, b->version);
  ib_gguf_put_u64 (out, b->n_tensors_set ? b->n_tensors : b->tensors->len);
  ib_gguf_put_u64 (out, b->n_kv_set ? b->n_kv : b->kv_count);
  g_byte_array_append (out, b->kvs->data, b->kvs->len);
  for (guint i = 0; i < b->tensors->len; i++) {
    BuilderTensor *t = tensor_at (b, i);
    gsize name_len;
    const void *name = g_bytes_get_data (t->name, &name_len);
    put_bytes_string (out, name, name_len);
    ib_gguf_put_u32 (out, t->n_dims);
    for (guint d = 0; d < MIN (t->n_dims, MAX_WRITTEN_DIMS); d++)
      ib_gguf_put_u64 (out, t->ne[d]);
    ib_gguf_put_u32 (out, t->type);
    ib_gguf_put_u64 (out, offsets[i]);
  }
  if (b->tensors->len > 0) {
    pad_to (out, b->alignment);
    g_byte_array_append (out, data->data, data->len);
  }
  g_free (offsets);
  g_byte_array_unref (data);
  return g_byte_array_free_to_bytes (out);
}

gboolean
ib_gguf_builder_write_file (IbGgufBuilder *b, const char *path, GError **error)
{
  g_autoptr (GBytes) bytes = ib_gguf_builder_build (b);
  gsize n;
  const char *p = g_bytes_get_data (bytes, &n);
  return g_file_set_contents (path, p, n, error);
}
