/* A bounds-checked reader of safetensors files (Hugging Face's format: a little-endian u64
 * header length, a JSON header, then the tensor data). Internal to libimagebind.
 *
 * Everything in the file is untrusted: the header length is bounded by the file and by
 * IB_SAFETENSORS_MAX_HEADER, the header is parsed by a strict parser of the safetensors schema
 * (no duplicate keys, no unknown fields, integers only where integers belong), the dtype must be
 * one of F32, F16, BF16, I64, every tensor's byte range must lie in the data section and match
 * product(shape) x itemsize, and the ranges must tile the data section exactly (no overlap, no
 * hole, nothing after the last tensor: the format's own rule). A hostile file gives a GError
 * (IMAGEBIND_ERROR_FORMAT), never an out-of-bounds read.
 *
 * Tensor data is NOT aligned: safetensors stores tensors back to back after a header of any
 * length, so a tensor may start at any byte. Read it with ib_safetensors_tensor_to_f32() /
 * _to_i64() or memcpy, never through a cast pointer. */
#ifndef IB_SAFETENSORS_H
#define IB_SAFETENSORS_H

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  IB_SAFETENSORS_F32,
  IB_SAFETENSORS_F16,
  IB_SAFETENSORS_BF16,
  IB_SAFETENSORS_I64,
} IbSafetensorsDtype;

/* The reference implementation has no rank limit; checkpoints of the models we read have at
 * most 5 (video stems), so a longer shape is corrupt, not a tensor. */
#define IB_SAFETENSORS_MAX_DIMS 8
/* The header length limit of the reference implementation (100 MB): a header that long is a
 * corrupt length field or a denial of service, never a checkpoint's table of contents. */
#define IB_SAFETENSORS_MAX_HEADER 100000000u

typedef struct {
  const char *name;                       /* NUL-terminated, UTF-8 */
  IbSafetensorsDtype dtype;
  guint n_dims;                           /* 0 for a scalar */
  guint64 shape[IB_SAFETENSORS_MAX_DIMS]; /* PyTorch order: shape[n_dims - 1] fastest */
  guint64 n_elements;                     /* product of shape; 1 for a scalar */
  const guint8 *data;                     /* inside the buffer, any alignment */
  gsize n_bytes;                          /* n_elements x itemsize */
} IbSafetensorsTensor;

typedef struct _IbSafetensors IbSafetensors;

IbSafetensors *ib_safetensors_open (const char *path, GError **error);
/* Parses a buffer (kept referenced); for tests and fuzzing. */
IbSafetensors *ib_safetensors_new_from_bytes (GBytes *bytes, GError **error);
void ib_safetensors_free (IbSafetensors *st);

/* Tensors in the order of the JSON header. */
guint ib_safetensors_n_tensors (const IbSafetensors *st);
const IbSafetensorsTensor *ib_safetensors_tensor (const IbSafetensors *st, guint index);
const IbSafetensorsTensor *ib_safetensors_find_tensor (const IbSafetensors *st, const char *name);

/* The optional "__metadata__" string map: the value of key, or NULL. */
const char *ib_safetensors_get_metadata (const IbSafetensors *st, const char *key);

const char *ib_safetensors_dtype_name (IbSafetensorsDtype dtype);
gsize ib_safetensors_dtype_size (IbSafetensorsDtype dtype);

/* Copies the tensor into out (n_elements floats): F32 as is, F16 and BF16 widened exactly.
 * I64 is refused (IMAGEBIND_ERROR_FORMAT naming the tensor): ids are not weights. */
gboolean ib_safetensors_tensor_to_f32 (const IbSafetensorsTensor *t, float *out, GError **error);
/* Copies an I64 tensor into out (n_elements values); any other dtype is refused. */
gboolean ib_safetensors_tensor_to_i64 (const IbSafetensorsTensor *t, gint64 *out, GError **error);

G_END_DECLS

#endif
