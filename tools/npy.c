/* .npy reader and writer: the header is a Python dict literal; we read the three keys NumPy
 * always writes (descr, fortran_order, shape) and refuse anything we do not understand. */
#include "npy.h"

#include <string.h>

static const struct { IbNpyDtype dtype; const char *descr; gsize size; } dtypes[] = {
  { IB_NPY_F32, "<f4", 4 }, { IB_NPY_F64, "<f8", 8 }, { IB_NPY_I64, "<i8", 8 },
  { IB_NPY_I32, "<i4", 4 }, { IB_NPY_U8, "|u1", 1 }, { IB_NPY_U16, "<u2", 2 },
  { IB_NPY_I16, "<i2", 2 },
};

static gboolean
fail (GError **error, const char *path, const char *why)
{
  g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: not a supported .npy file: %s", path, why);
  return FALSE;
}

static gboolean
parse_header (const char *h, IbNpy *npy, const char *path, GError **error)
{
  const char *p = strstr (h, "'descr':");
  gboolean found = FALSE;

  if (!p)
    return fail (error, path, "no descr");
  p = strchr (p + 8, '\'');
  if (!p)
    return fail (error, path, "bad descr");
  for (guint i = 0; i < G_N_ELEMENTS (dtypes); i++) {
    gsize l = strlen (dtypes[i].descr);
    if (strncmp (p + 1, dtypes[i].descr, l) == 0 && p[1 + l] == '\'') {
      npy->dtype = dtypes[i].dtype;
      npy->item_size = dtypes[i].size;
      found = TRUE;
    }
  }
  if (!found)
    return fail (error, path, "unsupported dtype (want little-endian f4, f8, i8, i4, u1, u2, i2)");
  if (!strstr (h, "'fortran_order': False"))
    return fail (error, path, "Fortran order");
  p = strstr (h, "'shape':");
  if (!p || !(p = strchr (p, '(')))
    return fail (error, path, "no shape");
  p++;
  npy->n_dims = 0;
  npy->n_elements = 1;
  while (*p && *p != ')') {
    char *end;
    guint64 v;
    while (*p == ' ' || *p == ',')
      p++;
    if (*p == ')')
      break;
    v = g_ascii_strtoull (p, &end, 10);
    if (end == p || npy->n_dims == IB_NPY_MAX_DIMS || v > G_MAXINT32)
      return fail (error, path, "bad shape");
    if (v != 0 && npy->n_elements > G_MAXSIZE / 16 / v)
      return fail (error, path, "shape too large");
    npy->shape[npy->n_dims++] = (gint64) v;
    npy->n_elements *= v;
    p = end;
  }
  return TRUE;
}

IbNpy *
ib_npy_load (const char *path, GError **error)
{
  g_autofree gchar *contents = NULL;
  gsize length, header_len, offset;
  g_autofree gchar *header = NULL;
  IbNpy *npy;

  if (!g_file_get_contents (path, &contents, &length, error))
    return NULL;
  if (length < 10 || memcmp (contents, "\x93NUMPY", 6) != 0) {
    fail (error, path, "bad magic");
    return NULL;
  }
  if (contents[6] == 1) {
    header_len = (guint8) contents[8] | ((gsize) (guint8) contents[9] << 8);
    offset = 10;
  } else {
    if (length < 12) {
      fail (error, path, "truncated");
      return NULL;
    }
    header_len = (guint8) contents[8] | ((gsize) (guint8) contents[9] << 8) |
        ((gsize) (guint8) contents[10] << 16) | ((gsize) (guint8) contents[11] << 24);
    offset = 12;
  }
  if (header_len > length - offset) {
    fail (error, path, "truncated header");
    return NULL;
  }
  header = g_strndup (contents + offset, header_len);
  npy = g_new0 (IbNpy, 1);
  if (!parse_header (header, npy, path, error)) {
    g_free (npy);
    return NULL;
  }
  offset += header_len;
  if (npy->n_elements * npy->item_size != length - offset) {
    g_free (npy);
    fail (error, path, "data size does not match the shape");
    return NULL;
  }
  npy->data = g_memdup2 (contents + offset, npy->n_elements * npy->item_size + 1);
  return npy;
}

void
ib_npy_free (IbNpy *npy)
{
  if (!npy)
    return;
  g_free (npy->data);
  g_free (npy);
}

float *
ib_npy_to_f32 (const IbNpy *npy)
{
  float *out = g_new (float, MAX (npy->n_elements, 1));

  for (gsize i = 0; i < npy->n_elements; i++) {
    switch (npy->dtype) {
      case IB_NPY_F32: out[i] = ((const float *) npy->data)[i]; break;
      case IB_NPY_F64: out[i] = (float) ((const double *) npy->data)[i]; break;
      case IB_NPY_I64: out[i] = (float) ((const gint64 *) npy->data)[i]; break;
      case IB_NPY_I32: out[i] = (float) ((const gint32 *) npy->data)[i]; break;
      case IB_NPY_U8: out[i] = ((const guint8 *) npy->data)[i]; break;
      case IB_NPY_U16: out[i] = ((const guint16 *) npy->data)[i]; break;
      case IB_NPY_I16: out[i] = ((const gint16 *) npy->data)[i]; break;
    }
  }
  return out;
}

gboolean
ib_npy_save (const char *path, IbNpyDtype dtype, const gint64 *shape, guint n_dims,
    gconstpointer data, GError **error)
{
  GString *h = g_string_new (NULL);
  gsize n = 1, item = 0, pad;
  const char *descr = NULL;
  gboolean ok;

  for (guint i = 0; i < G_N_ELEMENTS (dtypes); i++)
    if (dtypes[i].dtype == dtype) {
      descr = dtypes[i].descr;
      item = dtypes[i].size;
    }
  g_string_append_printf (h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (guint i = 0; i < n_dims; i++) {
    g_string_append_printf (h, "%" G_GINT64_FORMAT "%s", shape[i], n_dims == 1 ? "," : (i + 1 < n_dims ? ", " : ""));
    n *= (gsize) shape[i];
  }
  g_string_append (h, "), }");
  /* magic(6) + version(2) + len(2) + header + '\n' is a multiple of 64 */
  pad = 64 - (10 + h->len + 1) % 64;
  if (pad == 64)
    pad = 0;
  for (gsize i = 0; i < pad; i++)
    g_string_append_c (h, ' ');
  g_string_append_c (h, '\n');
  {
    GString *file = g_string_sized_new (10 + h->len + n * item);
    guint8 pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (guint8) (h->len & 0xff), (guint8) (h->len >> 8) };
    g_string_append_len (file, (const char *) pre, 10);
    g_string_append_len (file, h->str, h->len);
    g_string_append_len (file, data, n * item);
    ok = g_file_set_contents (path, file->str, file->len, error);
    g_string_free (file, TRUE);
  }
  g_string_free (h, TRUE);
  return ok;
}
