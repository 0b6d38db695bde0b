/* libFuzzer target: ib_gguf_new_from_bytes over arbitrary bytes must either fail with a
 * GError or give a reader whose every tensor and value can be read in full without leaving
 * the buffer (AddressSanitizer checks the reads).
 *
 *   CC=clang meson setup build-fuzz -Dfuzzing=true && meson compile -C build-fuzz tests/fuzz-gguf
 *   mkdir -p /tmp/gguf-corpus    # new inputs go to the first directory, seeds stay clean
 *   build-fuzz/tests/fuzz-gguf -max_total_time=60 -max_len=4096 /tmp/gguf-corpus tests/fuzz/corpus-gguf
 *
 * The seeds (small valid files) come from tests/fuzz/corpus-gguf/make-seeds.py.
 */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "gguf.h"
#include "imagebind.h"

/* The reader is compiled into this program without the rest of libimagebind, so the error
 * domain is defined here (models/error.c defines it for the library). */
G_DEFINE_QUARK (imagebind-error-quark, imagebind_error)

/* Keys the runtime reads, so that their getters run on whatever the input put there. */
static const char *const keys[] = {
  "general.architecture", "general.name", "general.alignment", "imagebind.out_embed_dim",
  "imagebind.modalities", "imagebind.vision.kernel_size", "imagebind.audio.fbank_mean",
  "tokenizer.ggml.model", "tokenizer.ggml.merges", "a", "k",
};

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GBytes *bytes = g_bytes_new_static (data, size);
  GError *error = NULL;
  IbGguf *gguf = ib_gguf_new_from_bytes (bytes, &error);
  volatile guint8 sink = 0;

  g_bytes_unref (bytes);
  if (!gguf) {
    g_assert (error != NULL && error->domain == IMAGEBIND_ERROR &&
        error->code == IMAGEBIND_ERROR_FORMAT);
    g_error_free (error);
    return 0;
  }

  for (guint i = 0; i < ib_gguf_n_tensors (gguf); i++) {
    const IbGgufTensor *t = ib_gguf_tensor (gguf, i);
    const guint8 *p = t->data;

    g_assert (ib_gguf_find_tensor (gguf, t->name) == t);
    g_assert (t->n_dims >= 1 && t->n_dims <= IB_GGUF_MAX_DIMS);
    /* aligned to its elements: F32 4 bytes, F16 2, I8 (q8 weights) 1 */
    g_assert ((guintptr) p % (t->type == IB_GGUF_TENSOR_F32 ? 4 :
            t->type == IB_GGUF_TENSOR_F16 ? 2 : 1) == 0);
    /* The first and last bytes are enough for ASan to see an out-of-bounds range. */
    sink ^= p[0];
    sink ^= p[t->n_bytes - 1];
  }
  for (guint k = 0; k < G_N_ELEMENTS (keys); k++) {
    guint32 u;
    float f;
    const guint32 *u32s;
    gsize n;
    const char *s = ib_gguf_get_string (gguf, keys[k]);
    const char *const *strv = ib_gguf_get_string_array (gguf, keys[k], &n);

    if (s)
      sink ^= (guint8) s[strlen (s)];
    if (strv) {
      for (gsize i = 0; i < n; i++)
        sink ^= (guint8) strv[i][strlen (strv[i])];
      g_assert (strv[n] == NULL);
    }
    if (ib_gguf_get_u32_array (gguf, keys[k], &u32s, &n) && n > 0)
      sink ^= (guint8) (u32s[0] ^ u32s[n - 1]);
    if (ib_gguf_get_u32 (gguf, keys[k], &u))
      sink ^= (guint8) u;
    if (ib_gguf_get_f32 (gguf, keys[k], &f)) {
      guint32 bits;
      memcpy (&bits, &f, 4);
      sink ^= (guint8) bits;
    }
  }
  ib_gguf_free (gguf);
  (void) sink;
  return 0;
}
