/* libFuzzer target: ib_safetensors_new_from_bytes over arbitrary bytes must either fail with a
 * GError or give a reader whose every tensor lies inside the buffer with the size its shape
 * and dtype say, and converts in full (AddressSanitizer checks the reads).
 *
 *   CC=clang meson setup build-fuzz -Dfuzzing=true && meson compile -C build-fuzz tests/fuzz-safetensors
 *   mkdir -p /tmp/st-corpus    # new inputs go to the first directory, seeds stay clean
 *   build-fuzz/tests/fuzz-safetensors -max_total_time=60 -max_len=4096 /tmp/st-corpus \
 *     tests/fuzz/corpus-safetensors
 *
 * The seeds (small valid files) come from tests/fuzz/corpus-safetensors/make-seeds.py.
 */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "imagebind.h"
#include "safetensors.h"

/* The reader is compiled into this program without the rest of libimagebind, so the error
 * domain is defined here (models/error.c defines it for the library). */
G_DEFINE_QUARK (imagebind-error-quark, imagebind_error)

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GBytes *bytes = g_bytes_new_static (data, size);
  GError *error = NULL;
  IbSafetensors *st = ib_safetensors_new_from_bytes (bytes, &error);
  volatile guint8 sink = 0;

  g_bytes_unref (bytes);
  if (!st) {
    g_assert (error != NULL && error->domain == IMAGEBIND_ERROR &&
        error->code == IMAGEBIND_ERROR_FORMAT);
    g_error_free (error);
    return 0;
  }

  for (guint i = 0; i < ib_safetensors_n_tensors (st); i++) {
    const IbSafetensorsTensor *t = ib_safetensors_tensor (st, i);
    guint64 n = 1;

    g_assert (ib_safetensors_find_tensor (st, t->name) == t);
    g_assert (t->n_dims <= IB_SAFETENSORS_MAX_DIMS);
    for (guint d = 0; d < t->n_dims; d++)
      n *= t->shape[d];
    g_assert (n == t->n_elements);
    g_assert (t->n_bytes == n * ib_safetensors_dtype_size (t->dtype));
    g_assert (t->data >= data && t->data + t->n_bytes <= data + size);
    sink ^= (guint8) t->name[strlen (t->name)];
    /* Converting reads every byte; inputs are small (libFuzzer's -max_len), so is this. */
    if (t->dtype == IB_SAFETENSORS_I64) {
      gint64 *v = g_new (gint64, MAX (n, 1));
      g_assert (ib_safetensors_tensor_to_i64 (t, v, NULL));
      if (n)
        sink ^= (guint8) v[n - 1];
      g_free (v);
    } else {
      float *v = g_new (float, MAX (n, 1));
      g_assert (ib_safetensors_tensor_to_f32 (t, v, NULL));
      if (n)
        sink ^= (guint8) (v[n - 1] > 0);
      g_free (v);
    }
  }
  (void) ib_safetensors_get_metadata (st, "format");
  ib_safetensors_free (st);
  (void) sink;
  return 0;
}
