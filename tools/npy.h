/* Reading and writing NumPy .npy files (format 1.0-3.0, little-endian, C order) for the tools
 * and tests. */
#ifndef IB_NPY_H
#define IB_NPY_H

#include <glib.h>

G_BEGIN_DECLS

typedef enum { IB_NPY_F32, IB_NPY_F64, IB_NPY_I64, IB_NPY_I32, IB_NPY_U8, IB_NPY_U16, IB_NPY_I16 } IbNpyDtype;

#define IB_NPY_MAX_DIMS 8

typedef struct {
  IbNpyDtype dtype;
  guint n_dims;
  gint64 shape[IB_NPY_MAX_DIMS];
  gsize n_elements;
  gsize item_size;
  gpointer data;     /* n_elements * item_size bytes, owned */
} IbNpy;

IbNpy *ib_npy_load (const char *path, GError **error);
void ib_npy_free (IbNpy *npy);
/* Converts any numeric dtype to a newly allocated float array. */
float *ib_npy_to_f32 (const IbNpy *npy);

gboolean ib_npy_save (const char *path, IbNpyDtype dtype, const gint64 *shape, guint n_dims,
    gconstpointer data, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (IbNpy, ib_npy_free)

G_END_DECLS

#endif
