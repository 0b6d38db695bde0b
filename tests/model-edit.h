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

typedef enum { IB_TEST_KEY_U32, IB_TEST_KEY_F32, IB_TEST_KEY_DROP } IbTestKeyKind;

typedef struct {
  const char *key;
  IbTestKeyKind kind;
  guint32 u32;
  float f32;
} IbTestKeyEdit;

#define IB_TEST_U32(k, v) { (k), IB_TEST_KEY_U32, (v), 0.0f }
#define IB_TEST_F32(k, v) { (k), IB_TEST_KEY_F32, 0, (v) }
#define IB_TEST_DROP(k) { (k), IB_TEST_KEY_DROP, 0, 0.0f }

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

G_END_DECLS

#endif
