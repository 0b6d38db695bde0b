/* Test-only writer of GGUF v3 bytes (models/GGUF.md): key/value pairs of every type, F32/F16
 * tensors, and knobs to corrupt any field on purpose, so that the reader's tests can build
 * valid files and hostile ones from the same description.
 *
 *   IbGgufBuilder *b = ib_gguf_builder_new ();
 *   ib_gguf_builder_add_u32 (b, "imagebind.out_embed_dim", 1024);
 *   ib_gguf_builder_add_tensor (b, "w", IB_GGUF_TENSOR_F32, 2, (guint64[]) { 3, 2 }, data);
 *   ib_gguf_builder_set_version (b, 2);        // corruption: anything, after the fact
 *   GBytes *bytes = ib_gguf_builder_build (b);
 */
#ifndef IB_GGUF_BUILDER_H
#define IB_GGUF_BUILDER_H

#include <glib.h>

#include "gguf.h"

G_BEGIN_DECLS

typedef struct _IbGgufBuilder IbGgufBuilder;

IbGgufBuilder *ib_gguf_builder_new (void);
void ib_gguf_builder_free (IbGgufBuilder *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (IbGgufBuilder, ib_gguf_builder_free)

/* The whole file; the builder can be built again after further changes. */
GBytes *ib_gguf_builder_build (IbGgufBuilder *b);
gboolean ib_gguf_builder_write_file (IbGgufBuilder *b, const char *path, GError **error);

/* ---- key/value pairs, written in the order added ---- */
void ib_gguf_builder_add_u8 (IbGgufBuilder *b, const char *key, guint8 v);
void ib_gguf_builder_add_i8 (IbGgufBuilder *b, const char *key, gint8 v);
void ib_gguf_builder_add_u16 (IbGgufBuilder *b, const char *key, guint16 v);
void ib_gguf_builder_add_i16 (IbGgufBuilder *b, const char *key, gint16 v);
void ib_gguf_builder_add_u32 (IbGgufBuilder *b, const char *key, guint32 v);
void ib_gguf_builder_add_i32 (IbGgufBuilder *b, const char *key, gint32 v);
void ib_gguf_builder_add_u64 (IbGgufBuilder *b, const char *key, guint64 v);
void ib_gguf_builder_add_i64 (IbGgufBuilder *b, const char *key, gint64 v);
void ib_gguf_builder_add_f32 (IbGgufBuilder *b, const char *key, float v);
void ib_gguf_builder_add_f64 (IbGgufBuilder *b, const char *key, double v);
void ib_gguf_builder_add_bool (IbGgufBuilder *b, const char *key, gboolean v);
void ib_gguf_builder_add_string (IbGgufBuilder *b, const char *key, const char *v);
/* An array of count fixed-size elements of elem_type, given in host order. */
void ib_gguf_builder_add_array (IbGgufBuilder *b, const char *key, IbGgufValueType elem_type,
    const void *elems, gsize count);
void ib_gguf_builder_add_string_array (IbGgufBuilder *b, const char *key,
    const char *const *strv, gsize count);
/* Writes general.alignment (u32) and lays the tensor data out with that alignment, even a
 * bad one (0 lays out with 1). */
void ib_gguf_builder_add_alignment (IbGgufBuilder *b, guint32 alignment);
/* One whole key/value pair given as raw bytes (key included): for corrupt entries. */
void ib_gguf_builder_add_raw_kv (IbGgufBuilder *b, const void *bytes, gsize n);

/* ---- tensors: data holds n_elements of the type (NULL: bytes 0, 1, 2, ...) ---- */
guint ib_gguf_builder_add_tensor (IbGgufBuilder *b, const char *name, IbGgufTensorType type,
    guint n_dims, const guint64 *ne, const void *data);

/* ---- corruption, after the fact ---- */
void ib_gguf_builder_set_magic (IbGgufBuilder *b, const char magic[4]);
void ib_gguf_builder_set_version (IbGgufBuilder *b, guint32 version);
/* Written instead of the true counts. */
void ib_gguf_builder_set_n_tensors (IbGgufBuilder *b, guint64 n_tensors);
void ib_gguf_builder_set_n_kv (IbGgufBuilder *b, guint64 n_kv);
/* The tensor's info fields, written verbatim; its data and layout stay as they were. */
void ib_gguf_builder_set_tensor_name_bytes (IbGgufBuilder *b, guint index, const void *name,
    gsize len);
void ib_gguf_builder_set_tensor_dims (IbGgufBuilder *b, guint index, guint32 n_dims,
    const guint64 *ne); /* up to 8 dims are written */
void ib_gguf_builder_set_tensor_type (IbGgufBuilder *b, guint index, guint32 type);
void ib_gguf_builder_set_tensor_offset (IbGgufBuilder *b, guint index, guint64 offset);

/* Little-endian encoders, for raw entries. */
void ib_gguf_put_u32 (GByteArray *out, guint32 v);
void ib_gguf_put_u64 (GByteArray *out, guint64 v);
void ib_gguf_put_string (GByteArray *out, const char *s);

G_END_DECLS

#endif
