/* A bounds-checked GGUF v3 reader (see gguf.h and GGUF.md).
 *
 * The file is untrusted: every read goes through a cursor that checks the bytes left first,
 * every count is bounded by the bytes that could hold it before anything is allocated, and
 * every size is computed with overflow-checked arithmetic. Multi-byte fields are read with
 * memcpy (the file's fields are not aligned) and converted from little-endian. Key/value
 * arrays are copied out into aligned storage owned by the reader; tensor data stays in the
 * mapping and is only pointed to. */
#include "gguf.h"

#include "imagebind.h"

#include <float.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GGUF_VERSION 3
#define GGUF_DEFAULT_ALIGNMENT 32
/* The GGUF specification limits keys to 65535 bytes; we apply the same limit to tensor
 * names. Anything longer is a corrupt length field, not a name. */
#define GGUF_MAX_NAME_LEN 65535
/* Smallest encodings of one key/value pair (length, 1-byte key, type, 1-byte value) and of
 * one tensor info (length, 1-byte name, n_dims, one ne, type, offset): they bound the counts
 * in the header by the size of the file before any allocation. */
#define GGUF_MIN_KV_SIZE (8 + 1 + 4 + 1)
#define GGUF_MIN_TENSOR_INFO_SIZE (8 + 1 + 4 + 8 + 4 + 8)
/* Tensor data pointers are guaranteed aligned to min (general.alignment, this); a buffer
 * whose address is not is copied once (mappings are page-aligned and never are). */
#define GGUF_MAX_POINTER_ALIGNMENT 64

typedef struct {
  IbGgufValueType type;
  /* Scalars: unsigned integers and bools in u, signed integers in i, floats in f. */
  union {
    guint64 u;
    gint64 i;
    double f;
  } scalar;
  char *string;
  /* Arrays: element type and count; fixed-size elements copied (host order) into elems,
   * integer arrays whose every value fits also as u32s (aliasing elems for U32 arrays),
   * string arrays as a NULL-terminated strv. */
  IbGgufValueType elem_type;
  gsize count;
  gpointer elems;
  guint32 *u32s;
  char **strv;
} GgufValue;

struct _IbGguf {
  GBytes *bytes;
  gpointer aligned_copy; /* owned copy of bytes when their address was not aligned */
  gboolean file_mapped;  /* the tensors are in a read-only mapping of the file */
  guint32 alignment;
  IbGgufTensor *tensors;
  guint n_tensors;
  GHashTable *tensor_index; /* name (owned by tensors) -> IbGgufTensor * */
  GHashTable *values;       /* key (owned) -> GgufValue * (owned) */
};

/* ---- cursor over the untrusted bytes ---- */

typedef struct {
  const guint8 *data;
  gsize size;
  gsize pos;
} Cursor;

static gsize
cursor_left (const Cursor *c)
{
  return c->size - c->pos;
}

static const guint8 *
cursor_take (Cursor *c, gsize n, const char *what, GError **error)
{
  const guint8 *p;

  if (n > cursor_left (c)) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "file truncated: %s needs %" G_GSIZE_FORMAT " bytes at offset %" G_GSIZE_FORMAT
        " but the file ends at %" G_GSIZE_FORMAT, what, n, c->pos, c->size);
    return NULL;
  }
  p = c->data + c->pos;
  c->pos += n;
  return p;
}

static gboolean
cursor_u32 (Cursor *c, guint32 *out, const char *what, GError **error)
{
  const guint8 *p = cursor_take (c, 4, what, error);
  guint32 v;

  if (!p)
    return FALSE;
  memcpy (&v, p, 4);
  *out = GUINT32_FROM_LE (v);
  return TRUE;
}

static gboolean
cursor_u64 (Cursor *c, guint64 *out, const char *what, GError **error)
{
  const guint8 *p = cursor_take (c, 8, what, error);
  guint64 v;

  if (!p)
    return FALSE;
  memcpy (&v, p, 8);
  *out = GUINT64_FROM_LE (v);
  return TRUE;
}

/* A GGUF string: u64 length then that many bytes, which must be UTF-8 without NULs (the
 * reader hands out NUL-terminated copies, so an embedded NUL would silently truncate). */
static char *
cursor_string (Cursor *c, guint64 max_len, const char *what, GError **error)
{
  guint64 len;
  const guint8 *p;

  if (!cursor_u64 (c, &len, what, error))
    return NULL;
  if (len > max_len) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "%s at offset %" G_GSIZE_FORMAT " has an absurd length %" G_GUINT64_FORMAT
        " (limit %" G_GUINT64_FORMAT ")", what, c->pos - 8, len, max_len);
    return NULL;
  }
  if (len > cursor_left (c)) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "%s at offset %" G_GSIZE_FORMAT " has length %" G_GUINT64_FORMAT
        " but only %" G_GSIZE_FORMAT " bytes are left in the file",
        what, c->pos - 8, len, cursor_left (c));
    return NULL;
  }
  p = cursor_take (c, (gsize) len, what, error);
  if (!g_utf8_validate_len ((const char *) p, (gsize) len, NULL)) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "%s at offset %" G_GSIZE_FORMAT " is not valid UTF-8 or contains a NUL byte",
        what, c->pos - (gsize) len);
    return NULL;
  }
  return g_strndup ((const char *) p, (gsize) len);
}

/* ---- key/value pairs ---- */

/* Encoded size of a fixed-size value type; 0 for strings, arrays and unknown types. */
static gsize
fixed_size (guint32 type)
{
  switch (type) {
    case IB_GGUF_U8: case IB_GGUF_I8: case IB_GGUF_BOOL: return 1;
    case IB_GGUF_U16: case IB_GGUF_I16: return 2;
    case IB_GGUF_U32: case IB_GGUF_I32: case IB_GGUF_F32: return 4;
    case IB_GGUF_U64: case IB_GGUF_I64: case IB_GGUF_F64: return 8;
    default: return 0;
  }
}

static gboolean
is_integer_type (IbGgufValueType type)
{
  switch (type) {
    case IB_GGUF_U8: case IB_GGUF_I8: case IB_GGUF_U16: case IB_GGUF_I16:
    case IB_GGUF_U32: case IB_GGUF_I32: case IB_GGUF_U64: case IB_GGUF_I64:
      return TRUE;
    default:
      return FALSE;
  }
}

static gboolean
is_signed_type (IbGgufValueType type)
{
  return type == IB_GGUF_I8 || type == IB_GGUF_I16 || type == IB_GGUF_I32 || type == IB_GGUF_I64;
}

static void
gguf_value_free (gpointer data)
{
  GgufValue *v = data;

  if (v->u32s != v->elems)
    g_free (v->u32s);
  g_free (v->elems);
  g_free (v->string);
  g_strfreev (v->strv);
  g_free (v);
}

/* Decodes one little-endian fixed-size element at p into dst (host order, same size). */
static void
decode_fixed (const guint8 *p, gsize size, void *dst)
{
  memcpy (dst, p, size);
#if G_BYTE_ORDER == G_BIG_ENDIAN
  {
    guint8 *b = dst;
    for (gsize i = 0; i < size / 2; i++) {
      guint8 t = b[i];
      b[i] = b[size - 1 - i];
      b[size - 1 - i] = t;
    }
  }
#endif
}

/* Reads a host-order fixed-size element into the scalar union of v. */
static void
set_scalar (GgufValue *v, IbGgufValueType type, const void *elem)
{
  switch (type) {
    case IB_GGUF_U8: case IB_GGUF_BOOL: v->scalar.u = *(const guint8 *) elem; break;
    case IB_GGUF_I8: v->scalar.i = *(const gint8 *) elem; break;
    case IB_GGUF_U16: v->scalar.u = *(const guint16 *) elem; break;
    case IB_GGUF_I16: v->scalar.i = *(const gint16 *) elem; break;
    case IB_GGUF_U32: v->scalar.u = *(const guint32 *) elem; break;
    case IB_GGUF_I32: v->scalar.i = *(const gint32 *) elem; break;
    case IB_GGUF_U64: v->scalar.u = *(const guint64 *) elem; break;
    case IB_GGUF_I64: v->scalar.i = *(const gint64 *) elem; break;
    case IB_GGUF_F32: v->scalar.f = *(const float *) elem; break;
    case IB_GGUF_F64: v->scalar.f = *(const double *) elem; break;
    default: g_assert_not_reached ();
  }
}

/* The value of an integer scalar as u32, if it fits. */
static gboolean
scalar_to_u32 (const GgufValue *v, guint32 *out)
{
  if (is_signed_type (v->type)) {
    if (v->scalar.i < 0 || v->scalar.i > G_MAXUINT32)
      return FALSE;
    *out = (guint32) v->scalar.i;
  } else {
    if (v->scalar.u > G_MAXUINT32)
      return FALSE;
    *out = (guint32) v->scalar.u;
  }
  return TRUE;
}

static gboolean
parse_fixed_value (Cursor *c, GgufValue *v, IbGgufValueType type, GError **error)
{
  guint8 host[8];
  gsize size = fixed_size (type);
  const guint8 *p = cursor_take (c, size, "value", error);

  if (!p)
    return FALSE;
  decode_fixed (p, size, host);
  v->type = type;
  set_scalar (v, type, host);
  if (type == IB_GGUF_BOOL && v->scalar.u > 1) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "bool value %u is neither 0 nor 1", (guint) v->scalar.u);
    return FALSE;
  }
  return TRUE;
}

/* For integer arrays: a u32 view of the elements, or NULL when one of them does not fit. */
static guint32 *
array_as_u32 (const GgufValue *v)
{
  gsize size = fixed_size (v->elem_type);
  guint32 *out;

  if (v->elem_type == IB_GGUF_U32)
    return v->elems;
  out = g_new (guint32, MAX (v->count, 1));
  for (gsize i = 0; i < v->count; i++) {
    GgufValue elem = { .type = v->elem_type };
    set_scalar (&elem, v->elem_type, (const guint8 *) v->elems + i * size);
    if (!scalar_to_u32 (&elem, &out[i])) {
      g_free (out);
      return NULL;
    }
  }
  return out;
}

static gboolean
parse_array (Cursor *c, GgufValue *v, GError **error)
{
  guint32 elem_type;
  guint64 count;
  gsize min_elem_size;

  v->type = IB_GGUF_ARRAY;
  if (!cursor_u32 (c, &elem_type, "array element type", error) ||
      !cursor_u64 (c, &count, "array count", error))
    return FALSE;
  if (elem_type == IB_GGUF_ARRAY) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "arrays of arrays are not supported");
    return FALSE;
  }
  if (elem_type > IB_GGUF_F64) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "unknown array element type %u", elem_type);
    return FALSE;
  }
  /* A string element takes at least its 8-byte length. */
  min_elem_size = elem_type == IB_GGUF_STRING ? 8 : fixed_size (elem_type);
  if (count > cursor_left (c) / min_elem_size) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "array count %" G_GUINT64_FORMAT " does not fit in the %" G_GSIZE_FORMAT
        " bytes left in the file", count, cursor_left (c));
    return FALSE;
  }
  v->elem_type = elem_type;
  v->count = (gsize) count;

  if (elem_type == IB_GGUF_STRING) {
    /* g_new0 keeps strv NULL-terminated at every step, so a failure half-way frees cleanly. */
    v->strv = g_new0 (char *, v->count + 1);
    for (gsize i = 0; i < v->count; i++) {
      v->strv[i] = cursor_string (c, G_MAXUINT64, "array string", error);
      if (!v->strv[i]) {
        g_prefix_error (error, "element %" G_GSIZE_FORMAT ": ", i);
        return FALSE;
      }
    }
  } else {
    gsize size = fixed_size (elem_type);
    const guint8 *p = cursor_take (c, v->count * size, "array elements", error);

    if (!p)
      return FALSE;
    /* g_malloc storage is aligned for any scalar type, unlike the elements in the file. */
    v->elems = g_malloc (MAX (v->count * size, 1));
    for (gsize i = 0; i < v->count; i++)
      decode_fixed (p + i * size, size, (guint8 *) v->elems + i * size);
    if (elem_type == IB_GGUF_BOOL) {
      for (gsize i = 0; i < v->count; i++) {
        if (((const guint8 *) v->elems)[i] > 1) {
          g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
              "element %" G_GSIZE_FORMAT ": bool value %u is neither 0 nor 1",
              i, ((const guint8 *) v->elems)[i]);
          return FALSE;
        }
      }
    }
    if (is_integer_type (elem_type))
      v->u32s = array_as_u32 (v);
  }
  return TRUE;
}

static GgufValue *
parse_value (Cursor *c, GError **error)
{
  GgufValue *v = g_new0 (GgufValue, 1);
  guint32 type;
  gboolean ok;

  if (!cursor_u32 (c, &type, "value type", error)) {
    gguf_value_free (v);
    return NULL;
  }
  if (type == IB_GGUF_STRING) {
    v->type = IB_GGUF_STRING;
    v->string = cursor_string (c, G_MAXUINT64, "string value", error);
    ok = v->string != NULL;
  } else if (type == IB_GGUF_ARRAY) {
    ok = parse_array (c, v, error);
  } else if (fixed_size (type) != 0) {
    ok = parse_fixed_value (c, v, type, error);
  } else {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT, "unknown value type %u", type);
    ok = FALSE;
  }
  if (!ok) {
    gguf_value_free (v);
    return NULL;
  }
  return v;
}

static gboolean
parse_kvs (IbGguf *gguf, Cursor *c, guint64 n_kv, GError **error)
{
  for (guint64 i = 0; i < n_kv; i++) {
    char *key = cursor_string (c, GGUF_MAX_NAME_LEN, "key", error);
    GgufValue *v;

    if (!key) {
      g_prefix_error (error, "key/value pair %" G_GUINT64_FORMAT ": ", i);
      return FALSE;
    }
    if (!*key) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
          "key/value pair %" G_GUINT64_FORMAT " has an empty key", i);
      g_free (key);
      return FALSE;
    }
    if (g_hash_table_contains (gguf->values, key)) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT, "duplicate key '%s'", key);
      g_free (key);
      return FALSE;
    }
    v = parse_value (c, error);
    if (!v) {
      g_prefix_error (error, "key '%s': ", key);
      g_free (key);
      return FALSE;
    }
    g_hash_table_insert (gguf->values, key, v);
  }
  return TRUE;
}

static gboolean
read_alignment (IbGguf *gguf, GError **error)
{
  const GgufValue *v = g_hash_table_lookup (gguf->values, "general.alignment");

  gguf->alignment = GGUF_DEFAULT_ALIGNMENT;
  if (!v)
    return TRUE;
  if (v->type != IB_GGUF_U32) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "key 'general.alignment' must be a u32 (found value type %u)", v->type);
    return FALSE;
  }
  gguf->alignment = (guint32) v->scalar.u;
  if (gguf->alignment == 0 || (gguf->alignment & (gguf->alignment - 1)) != 0) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "key 'general.alignment': %u is not a power of two", gguf->alignment);
    return FALSE;
  }
  return TRUE;
}

/* ---- tensors ---- */

static gsize
tensor_element_size (IbGgufTensorType type)
{
  switch (type) {
    case IB_GGUF_TENSOR_F32: return 4;
    case IB_GGUF_TENSOR_F16: return 2;
    case IB_GGUF_TENSOR_I8: return 1;
  }
  g_assert_not_reached ();
}

/* Reads one tensor info; the file offset of its data (relative to the data section) goes to
 * *offset, the data pointer is set once the data section is known. */
static gboolean
parse_tensor_info (IbGguf *gguf, Cursor *c, IbGgufTensor *t, guint64 *offset, GError **error)
{
  guint32 n_dims, type;
  guint64 n_elements = 1, n_bytes;
  char *name = cursor_string (c, GGUF_MAX_NAME_LEN, "tensor name", error);

  if (!name)
    return FALSE;
  t->name = name;
  if (!*name) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT, "empty tensor name");
    return FALSE;
  }
  if (g_hash_table_contains (gguf->tensor_index, name)) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "duplicate tensor name '%s'", name);
    return FALSE;
  }
  if (!cursor_u32 (c, &n_dims, "tensor n_dims", error))
    goto prefix;
  if (n_dims < 1 || n_dims > IB_GGUF_MAX_DIMS) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "tensor '%s': n_dims %u is not in 1..%d", name, n_dims, IB_GGUF_MAX_DIMS);
    return FALSE;
  }
  t->n_dims = n_dims;
  for (guint d = 0; d < n_dims; d++) {
    guint64 ne;

    if (!cursor_u64 (c, &ne, "tensor dimension", error))
      goto prefix;
    /* GGML stores dimensions as int64: 0 and values past INT64_MAX are corrupt. */
    if (ne == 0 || ne > G_MAXINT64) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
          "tensor '%s': dimension %u has invalid size %" G_GUINT64_FORMAT, name, d, ne);
      return FALSE;
    }
    if (!g_uint64_checked_mul (&n_elements, n_elements, ne)) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
          "tensor '%s': the element count overflows at dimension %u", name, d);
      return FALSE;
    }
    t->ne[d] = ne;
  }
  if (!cursor_u32 (c, &type, "tensor type", error))
    goto prefix;
  if (type != IB_GGUF_TENSOR_F32 && type != IB_GGUF_TENSOR_F16 && type != IB_GGUF_TENSOR_I8) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "tensor '%s': unsupported tensor type %u (only F32 = 0, F16 = 1 and I8 = 24)", name, type);
    return FALSE;
  }
  t->type = type;
  if (!g_uint64_checked_mul (&n_bytes, n_elements, tensor_element_size (t->type)) ||
      n_bytes > G_MAXSIZE) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "tensor '%s': the byte size of %" G_GUINT64_FORMAT " elements overflows",
        name, n_elements);
    return FALSE;
  }
  t->n_elements = n_elements;
  t->n_bytes = (gsize) n_bytes;
  if (!cursor_u64 (c, offset, "tensor offset", error))
    goto prefix;
  if (*offset % gguf->alignment != 0) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "tensor '%s': offset %" G_GUINT64_FORMAT " is not a multiple of the alignment %u",
        name, *offset, gguf->alignment);
    return FALSE;
  }
  g_hash_table_insert (gguf->tensor_index, name, t);
  return TRUE;

prefix:
  g_prefix_error (error, "tensor '%s': ", name);
  return FALSE;
}

/* Checks every tensor's data against the data section, which starts at data_start. */
static gboolean
check_tensor_data (IbGguf *gguf, gsize file_size, guint64 data_start, const guint64 *offsets,
    GError **error)
{
  for (guint i = 0; i < gguf->n_tensors; i++) {
    IbGgufTensor *t = &gguf->tensors[i];
    guint64 begin, end;

    if (!g_uint64_checked_add (&begin, data_start, offsets[i]) ||
        !g_uint64_checked_add (&end, begin, t->n_bytes)) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
          "tensor '%s': offset %" G_GUINT64_FORMAT " + size %" G_GSIZE_FORMAT
          " overflows", t->name, offsets[i], t->n_bytes);
      return FALSE;
    }
    if (end > file_size) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
          "tensor '%s' data [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
          ") lies past the end of the file (size %" G_GSIZE_FORMAT ")",
          t->name, begin, end, file_size);
      return FALSE;
    }
    /* With a small general.alignment the data could still be misaligned for its type. */
    if (begin % tensor_element_size (t->type) != 0) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
          "tensor '%s': data at file offset %" G_GUINT64_FORMAT
          " is not aligned to its %" G_GSIZE_FORMAT "-byte elements",
          t->name, begin, tensor_element_size (t->type));
      return FALSE;
    }
  }
  return TRUE;
}

/* The bytes the tensors point into: the caller's buffer, or an aligned copy of it when its
 * address does not honour the file's alignment (only small test/fuzz buffers, in practice). */
static const guint8 *
aligned_base (IbGguf *gguf, const guint8 *data, gsize size)
{
  gsize want = MAX (MIN (gguf->alignment, GGUF_MAX_POINTER_ALIGNMENT), 4);

  if ((guintptr) data % want == 0)
    return data;
  gguf->aligned_copy = g_aligned_alloc (size, 1, GGUF_MAX_POINTER_ALIGNMENT);
  memcpy (gguf->aligned_copy, data, size);
  return gguf->aligned_copy;
}

static gboolean
parse (IbGguf *gguf, const guint8 *data, gsize size, GError **error)
{
  Cursor c = { data, size, 0 };
  const guint8 *magic;
  guint32 version;
  guint64 n_tensors, n_kv, data_start;
  g_autofree guint64 *offsets = NULL;
  const guint8 *base;

  if (size < 4 + 4 + 8 + 8) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "file too small for a GGUF header (%" G_GSIZE_FORMAT " bytes)", size);
    return FALSE;
  }
  magic = cursor_take (&c, 4, "magic", error);
  if (memcmp (magic, "GGUF", 4) != 0) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "not a GGUF file: magic is %02x %02x %02x %02x, expected \"GGUF\"",
        magic[0], magic[1], magic[2], magic[3]);
    return FALSE;
  }
  if (!cursor_u32 (&c, &version, "version", error))
    return FALSE;
  if (version != GGUF_VERSION) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "unsupported GGUF version %u (only version %d is supported)", version, GGUF_VERSION);
    return FALSE;
  }
  if (!cursor_u64 (&c, &n_tensors, "tensor count", error) ||
      !cursor_u64 (&c, &n_kv, "key/value count", error))
    return FALSE;
  if (n_kv > cursor_left (&c) / GGUF_MIN_KV_SIZE) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "n_kv %" G_GUINT64_FORMAT " is impossible in a file of %" G_GSIZE_FORMAT " bytes",
        n_kv, size);
    return FALSE;
  }
  if (n_tensors > (cursor_left (&c) - n_kv * GGUF_MIN_KV_SIZE) / GGUF_MIN_TENSOR_INFO_SIZE ||
      n_tensors > G_MAXUINT) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "n_tensors %" G_GUINT64_FORMAT " is impossible in a file of %" G_GSIZE_FORMAT " bytes",
        n_tensors, size);
    return FALSE;
  }

  if (!parse_kvs (gguf, &c, n_kv, error) || !read_alignment (gguf, error))
    return FALSE;

  gguf->tensors = g_new0 (IbGgufTensor, MAX (n_tensors, 1));
  offsets = g_new0 (guint64, MAX (n_tensors, 1));
  for (guint i = 0; i < n_tensors; i++) {
    /* Count the tensor before parsing it so that ib_gguf_free frees a half-read name. */
    gguf->n_tensors = i + 1;
    if (!parse_tensor_info (gguf, &c, &gguf->tensors[i], &offsets[i], error)) {
      /* Errors after the name name the tensor already; earlier ones need its index. */
      const char *name = gguf->tensors[i].name;
      if (!name || !*name)
        g_prefix_error (error, "tensor info %u: ", i);
      return FALSE;
    }
  }

  /* The data section starts at the next multiple of the alignment; a file without tensors
   * may end right after its header. */
  data_start = ((guint64) c.pos + gguf->alignment - 1) / gguf->alignment * gguf->alignment;
  if (n_tensors > 0 && data_start > size) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "file truncated: the tensor data section would start at %" G_GUINT64_FORMAT
        ", past the end of the file (size %" G_GSIZE_FORMAT ")", data_start, size);
    return FALSE;
  }
  if (!check_tensor_data (gguf, size, data_start, offsets, error))
    return FALSE;

  base = aligned_base (gguf, data, size);
  for (guint i = 0; i < gguf->n_tensors; i++)
    gguf->tensors[i].data = base + data_start + offsets[i];
  return TRUE;
}

/* ---- public API ---- */

IbGguf *
ib_gguf_new_from_bytes (GBytes *bytes, GError **error)
{
  IbGguf *gguf;
  gsize size;
  const guint8 *data;

  g_return_val_if_fail (bytes != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  gguf = g_new0 (IbGguf, 1);
  gguf->bytes = g_bytes_ref (bytes);
  gguf->alignment = GGUF_DEFAULT_ALIGNMENT;
  gguf->tensor_index = g_hash_table_new (g_str_hash, g_str_equal);
  gguf->values = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, gguf_value_free);
  data = g_bytes_get_data (bytes, &size);
  if (!parse (gguf, data, size, error)) {
    ib_gguf_free (gguf);
    return NULL;
  }
  return gguf;
}

GBytes *
ib_map_file (const char *path, GError **error)
{
  GError *local = NULL;
  GMappedFile *mapped;
  GBytes *bytes;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  mapped = g_mapped_file_new (path, FALSE, &local);
  if (!mapped) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FILE, "cannot map %s: %s",
        path, local->message);
    g_error_free (local);
    return NULL;
  }
  /* The GBytes keeps the mapping alive for as long as it is referenced. */
  bytes = g_mapped_file_get_bytes (mapped);
  g_mapped_file_unref (mapped);
  return bytes;
}

IbGguf *
ib_gguf_open (const char *path, GError **error)
{
  GBytes *bytes = ib_map_file (path, error);
  IbGguf *gguf;

  if (!bytes)
    return NULL;
  gguf = ib_gguf_new_from_bytes (bytes, error);
  g_bytes_unref (bytes);
  if (!gguf)
    g_prefix_error (error, "%s: ", path);
  else
    gguf->file_mapped = gguf->aligned_copy == NULL;
  return gguf;
}

void
ib_gguf_release_pages (const IbGguf *gguf, const void *data, gsize size)
{
  gsize page = (gsize) sysconf (_SC_PAGESIZE);
  guintptr start = ((guintptr) data + page - 1) / page * page;
  guintptr end = ((guintptr) data + size) / page * page;

  /* Only pages of the file's own mapping: elsewhere (a buffer, an aligned copy) MADV_DONTNEED
   * would drop the data itself. Pages shared with neighbouring tensors stay. */
  if (!gguf || !gguf->file_mapped || end <= start)
    return;
  madvise ((void *) start, end - start, MADV_DONTNEED);
}

void
ib_gguf_free (IbGguf *gguf)
{
  if (!gguf)
    return;
  for (guint i = 0; i < gguf->n_tensors; i++)
    g_free ((char *) gguf->tensors[i].name);
  g_free (gguf->tensors);
  g_hash_table_unref (gguf->tensor_index);
  g_hash_table_unref (gguf->values);
  g_aligned_free (gguf->aligned_copy);
  g_bytes_unref (gguf->bytes);
  g_free (gguf);
}

guint
ib_gguf_n_tensors (const IbGguf *gguf)
{
  g_return_val_if_fail (gguf != NULL, 0);
  return gguf->n_tensors;
}

const IbGgufTensor *
ib_gguf_tensor (const IbGguf *gguf, guint index)
{
  g_return_val_if_fail (gguf != NULL, NULL);
  g_return_val_if_fail (index < gguf->n_tensors, NULL);
  return &gguf->tensors[index];
}

const IbGgufTensor *
ib_gguf_find_tensor (const IbGguf *gguf, const char *name)
{
  g_return_val_if_fail (gguf != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);
  return g_hash_table_lookup (gguf->tensor_index, name);
}

static const GgufValue *
lookup (const IbGguf *gguf, const char *key)
{
  g_return_val_if_fail (gguf != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);
  return g_hash_table_lookup (gguf->values, key);
}

gboolean
ib_gguf_has_key (const IbGguf *gguf, const char *key)
{
  return lookup (gguf, key) != NULL;
}

gboolean
ib_gguf_get_u32 (const IbGguf *gguf, const char *key, guint32 *value)
{
  const GgufValue *v = lookup (gguf, key);
  guint32 u;

  if (!v || !is_integer_type (v->type) || !scalar_to_u32 (v, &u))
    return FALSE;
  if (value)
    *value = u;
  return TRUE;
}

gboolean
ib_gguf_get_f32 (const IbGguf *gguf, const char *key, float *value)
{
  const GgufValue *v = lookup (gguf, key);

  /* F64 is accepted too (writers that default to double still mean a float), when its
   * value fits: converting a larger finite double to float is undefined behaviour. */
  if (!v || (v->type != IB_GGUF_F32 && v->type != IB_GGUF_F64))
    return FALSE;
  if (isfinite (v->scalar.f) && fabs (v->scalar.f) > FLT_MAX)
    return FALSE;
  if (value)
    *value = (float) v->scalar.f;
  return TRUE;
}

const char *
ib_gguf_get_string (const IbGguf *gguf, const char *key)
{
  const GgufValue *v = lookup (gguf, key);

  return v && v->type == IB_GGUF_STRING ? v->string : NULL;
}

gboolean
ib_gguf_get_u32_array (const IbGguf *gguf, const char *key, const guint32 **values, gsize *n)
{
  const GgufValue *v = lookup (gguf, key);

  if (!v || v->type != IB_GGUF_ARRAY || !v->u32s)
    return FALSE;
  if (values)
    *values = v->u32s;
  if (n)
    *n = v->count;
  return TRUE;
}

gboolean
ib_gguf_get_f32_array (const IbGguf *gguf, const char *key, float *values, gsize max, gsize *n)
{
  const GgufValue *v = lookup (gguf, key);

  if (!v || v->type != IB_GGUF_ARRAY ||
      (v->elem_type != IB_GGUF_F32 && v->elem_type != IB_GGUF_F64))
    return FALSE;
  /* As ib_gguf_get_f32: a finite double beyond float's range is refused, not converted. */
  for (gsize i = 0; i < v->count; i++) {
    double d;
    if (v->elem_type == IB_GGUF_F32) {
      float f;
      memcpy (&f, (const guint8 *) v->elems + 4 * i, 4);
      d = f;
    } else {
      memcpy (&d, (const guint8 *) v->elems + 8 * i, 8);
    }
    if (isfinite (d) && fabs (d) > FLT_MAX)
      return FALSE;
    if (i < max)
      values[i] = (float) d;
  }
  if (n)
    *n = v->count;
  return TRUE;
}

const char *const *
ib_gguf_get_string_array (const IbGguf *gguf, const char *key, gsize *n)
{
  const GgufValue *v = lookup (gguf, key);

  if (!v || v->type != IB_GGUF_ARRAY || v->elem_type != IB_GGUF_STRING)
    return NULL;
  if (n)
    *n = v->count;
  return (const char *const *) v->strv;
}
