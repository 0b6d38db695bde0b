/* Test-only: a copy of a model file with edits (other keys, fewer modalities, tensors filled
 * with one value), written to a temporary file. For hostile-model tests built from a real model.
 *
 *   IbTestKeyEdit keys[] = { IB_TEST_U32 ("imagebind.audio.clips_per_video", 4000000000u) };
 *   IbTestModelEdit edit = { .keys = keys, .n_keys = G_N_ELEMENTS (keys) };
 *   char *path = ib_test_model_edit (tiny_path, &edit);    // g_unlink + g_free when done
 */
#ifndef IB_TEST_MODEL_EDIT_H
#define IB_TEST_MODEL_EDIT_H

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  IB_TEST_KEY_U32, IB_TEST_KEY_F32, IB_TEST_KEY_DROP, IB_TEST_KEY_STR, IB_TEST_KEY_F32S
} IbTestKeyKind;

typedef struct {
  const char *key;
  IbTestKeyKind kind;
  guint32 u32;
  float f32;
  const char *str;
  float f32s[4];             /* IB_TEST_KEY_F32S: an array of the first n_f32s */
  guint n_f32s;
} IbTestKeyEdit;

#define IB_TEST_U32(k, v) { (k), IB_TEST_KEY_U32, (v), 0.0f, NULL, { 0 }, 0 }
#define IB_TEST_F32(k, v) { (k), IB_TEST_KEY_F32, 0, (v), NULL, { 0 }, 0 }
#define IB_TEST_DROP(k) { (k), IB_TEST_KEY_DROP, 0, 0.0f, NULL, { 0 }, 0 }
#define IB_TEST_STR(k, v) { (k), IB_TEST_KEY_STR, 0, 0.0f, (v), { 0 }, 0 }
/* an f32 array of @n values: IB_TEST_F32S ("imagebind.vision.image_mean", 3, 0.5f, 0.4f, 0.3f) */
#define IB_TEST_F32S(k, n, ...) { (k), IB_TEST_KEY_F32S, 0, 0.0f, NULL, { __VA_ARGS__ }, (n) }

typedef struct {
  const char *const *modalities;   /* NULL-terminated; NULL: those of the source */
  const IbTestKeyEdit *keys;       /* replace, add or drop keys */
  guint n_keys;
  const char *fill_tensors;        /* tensors whose name contains this are filled with... */
  float fill_value;                /* ...this value (F32 and F16 alike) */
} IbTestModelEdit;

/* The copy of @src_path (keys of the gst-imagebind model format, models/GGUF.md, and the
 * tensors of the modalities kept) with @edit applied, in a new temporary file. Aborts the test
 * on I/O errors. */
char *ib_test_model_edit (const char *src_path, const IbTestModelEdit *edit);

/* The vision and text towers of @src_path, as a CLIP-family file has them, with @keys edited
 * (for the CLIP-family tests: an OpenCLIP file with other keys, or ImageBind's towers marked
 * as one). */
char *ib_test_clip_variant (const char *src_path, const IbTestKeyEdit *keys, guint n_keys);

G_END_DECLS

#endif
