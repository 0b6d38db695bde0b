/* A bounds-checked reader of GGUF v3 files (models/GGUF.md). Internal to libimagebind.
 * Every offset, size and count in the file is checked against the mapping before use; a
 * hostile file gives a GError (IMAGEBIND_ERROR_FORMAT), never an out-of-bounds read. */
#ifndef IB_GGUF_H
#define IB_GGUF_H

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  IB_GGUF_U8 = 0, IB_GGUF_I8 = 1, IB_GGUF_U16 = 2, IB_GGUF_I16 = 3, IB_GGUF_U32 = 4,
  IB_GGUF_I32 = 5, IB_GGUF_F32 = 6, IB_GGUF_BOOL = 7, IB_GGUF_STRING = 8, IB_GGUF_ARRAY = 9,
  IB_GGUF_U64 = 10, IB_GGUF_I64 = 11, IB_GGUF_F64 = 12,
} IbGgufValueType;

/* Tensor types: GGML's ids. I8 holds signed 8-bit integers (the q8 files' weight matrices,
 * scaled by a companion F32 tensor: models/GGUF.md). */
typedef enum {
  IB_GGUF_TENSOR_F32 = 0, IB_GGUF_TENSOR_F16 = 1, IB_GGUF_TENSOR_I8 = 24
} IbGgufTensorType;

#define IB_GGUF_MAX_DIMS 4

typedef struct {
  const char *name;                 /* NUL-terminated copy */
  guint n_dims;
  guint64 ne[IB_GGUF_MAX_DIMS];     /* GGML order: ne[0] fastest */
  IbGgufTensorType type;
  guint64 n_elements;
  const void *data;                 /* inside the mapping, aligned */
  gsize n_bytes;
} IbGgufTensor;

typedef struct _IbGguf IbGguf;

/* Maps a file read-only (IMAGEBIND_ERROR_FILE naming it on failure); the reader of every model
 * file format starts here. */
GBytes *ib_map_file (const char *path, GError **error);

IbGguf *ib_gguf_open (const char *path, GError **error);
/* Lets the kernel take back the whole pages of [@data, @data + @size), part of a tensor of a
 * file opened by ib_gguf_open(), from this process's memory: they are read again from the file
 * if touched later (the mapping is private and never written). Nothing for other buffers. */
void ib_gguf_release_pages (const IbGguf *gguf, const void *data, gsize size);
/* Parses a buffer (kept referenced); for tests and fuzzing. */
IbGguf *ib_gguf_new_from_bytes (GBytes *bytes, GError **error);
void ib_gguf_free (IbGguf *gguf);

guint ib_gguf_n_tensors (const IbGguf *gguf);
const IbGgufTensor *ib_gguf_tensor (const IbGguf *gguf, guint index);
const IbGgufTensor *ib_gguf_find_tensor (const IbGguf *gguf, const char *name);

/* Whether @key is present, of any type (to tell an absent optional key from a mistyped one). */
gboolean ib_gguf_has_key (const IbGguf *gguf, const char *key);
/* Typed key look-ups: FALSE when the key is absent or of another type. Integer getters
 * accept any integer type whose value fits. */
gboolean ib_gguf_get_u32 (const IbGguf *gguf, const char *key, guint32 *value);
gboolean ib_gguf_get_f32 (const IbGguf *gguf, const char *key, float *value);
/* Returns a NUL-terminated copy owned by the reader, or NULL. */
const char *ib_gguf_get_string (const IbGguf *gguf, const char *key);
/* Arrays: element count and access. NULL/FALSE on absence or type mismatch. */
gboolean ib_gguf_get_u32_array (const IbGguf *gguf, const char *key, const guint32 **values, gsize *n);
/* A float array (F32, or F64 whose values fit a float): its count in @n, its first @max values
 * in @values. */
gboolean ib_gguf_get_f32_array (const IbGguf *gguf, const char *key, float *values, gsize max,
    gsize *n);
/* NULL-terminated array of NUL-terminated strings, owned by the reader. */
const char *const *ib_gguf_get_string_array (const IbGguf *gguf, const char *key, gsize *n);

G_END_DECLS

#endif
