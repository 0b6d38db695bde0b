/* Test-only model file editing: see model-edit.h. */
#include "model-edit.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "gguf-builder.h"
#include "ops.h"

static const char *const modality_names[] = {
  "vision", "text", "audio", "depth", "thermal", "imu",
};

/* The keys of models/GGUF.md by type; modality keys are filtered by the modalities kept. */
static const char *const string_keys[] = {
  "general.architecture", "general.name", "tokenizer.ggml.model", "imagebind.source_family",
  "imagebind.vision.activation", "imagebind.text.activation", "tokenizer.clip.special_tokens",
};
static const char *const u32_keys[] = {
  "imagebind.out_embed_dim",
  "imagebind.vision.image_size", "imagebind.vision.video_frames",
  "imagebind.text.context_length", "imagebind.text.vocab_size",
  "imagebind.audio.kernel_size", "imagebind.audio.stride", "imagebind.audio.num_mel_bins",
  "imagebind.audio.target_len", "imagebind.audio.sample_rate",
  "imagebind.audio.clips_per_video", "imagebind.depth.kernel_size",
  "imagebind.thermal.kernel_size", "imagebind.imu.kernel_size", "imagebind.imu.num_samples",
};
static const char *const f32_keys[] = {
  "imagebind.audio.clip_duration", "imagebind.audio.fbank_mean", "imagebind.audio.fbank_std",
  "imagebind.vision.layer_norm_eps", "imagebind.text.layer_norm_eps",
};
static const char *const f32_array_keys[] = {
  "imagebind.vision.image_mean", "imagebind.vision.image_std",
};
static const char *const modality_fields[] = { "embed_dim", "num_blocks", "num_heads" };

static const IbTestKeyEdit *
find_edit (const IbTestModelEdit *edit, const char *key)
{
  for (guint i = 0; i < edit->n_keys; i++)
    if (strcmp (edit->keys[i].key, key) == 0)
      return &edit->keys[i];
  return NULL;
}

/* Adds @key as edited, if it is edited; FALSE if it is not (the caller copies it). */
static gboolean
add_edited (IbGgufBuilder *b, const IbTestModelEdit *edit, const char *key, GHashTable *done)
{
  const IbTestKeyEdit *e = find_edit (edit, key);

  if (!e)
    return FALSE;
  g_hash_table_add (done, (gpointer) e->key);
  if (e->kind == IB_TEST_KEY_U32)
    ib_gguf_builder_add_u32 (b, key, e->u32);
  else if (e->kind == IB_TEST_KEY_F32)
    ib_gguf_builder_add_f32 (b, key, e->f32);
  else if (e->kind == IB_TEST_KEY_STR)
    ib_gguf_builder_add_string (b, key, e->str);
  else if (e->kind == IB_TEST_KEY_F32S)
    ib_gguf_builder_add_array (b, key, IB_GGUF_F32, e->f32s, e->n_f32s);
  return TRUE;
}

static gboolean
kept (const char *name, const char *const *modalities)
{
  for (guint m = 0; m < G_N_ELEMENTS (modality_names); m++) {
    g_autofree char *part = g_strdup_printf (".%s.", modality_names[m]);
    if (strstr (name, part) && !g_strv_contains (modalities, modality_names[m]))
      return FALSE;
  }
  return TRUE;
}

char *
ib_test_model_edit (const char *src_path, const IbTestModelEdit *edit)
{
  GError *error = NULL;
  IbGguf *src = ib_gguf_open (src_path, &error);
  g_autoptr (IbGgufBuilder) b = ib_gguf_builder_new ();
  g_autoptr (GHashTable) done = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GPtrArray) modalities = g_ptr_array_new ();
  const char *const *names;
  const guint32 *array;
  gsize n;
  guint32 u;
  float f;
  const char *str;
  char *path = NULL;
  int fd;

  g_assert_no_error (error);
  names = edit->modalities ? edit->modalities :
      ib_gguf_get_string_array (src, "imagebind.modalities", &n);
  g_assert_nonnull (names);
  for (guint i = 0; names[i]; i++)
    g_ptr_array_add (modalities, (gpointer) names[i]);
  g_ptr_array_add (modalities, NULL);
  const char *const *keep = (const char *const *) modalities->pdata;

  for (guint i = 0; i < G_N_ELEMENTS (string_keys); i++)
    if (!add_edited (b, edit, string_keys[i], done) && (str = ib_gguf_get_string (src, string_keys[i])))
      ib_gguf_builder_add_string (b, string_keys[i], str);
  ib_gguf_builder_add_string_array (b, "imagebind.modalities", keep, modalities->len - 1);
  for (guint i = 0; i < G_N_ELEMENTS (u32_keys); i++)
    if (kept (u32_keys[i], keep) && !add_edited (b, edit, u32_keys[i], done) &&
        ib_gguf_get_u32 (src, u32_keys[i], &u))
      ib_gguf_builder_add_u32 (b, u32_keys[i], u);
  for (guint i = 0; i < G_N_ELEMENTS (f32_keys); i++)
    if (kept (f32_keys[i], keep) && !add_edited (b, edit, f32_keys[i], done) &&
        ib_gguf_get_f32 (src, f32_keys[i], &f))
      ib_gguf_builder_add_f32 (b, f32_keys[i], f);
  for (guint i = 0; i < G_N_ELEMENTS (f32_array_keys); i++) {
    float values[8];
    if (kept (f32_array_keys[i], keep) && !add_edited (b, edit, f32_array_keys[i], done) &&
        ib_gguf_get_f32_array (src, f32_array_keys[i], values, G_N_ELEMENTS (values), &n))
      ib_gguf_builder_add_array (b, f32_array_keys[i], IB_GGUF_F32, values,
          MIN (n, G_N_ELEMENTS (values)));
  }
  for (guint m = 0; keep[m]; m++) {
    for (guint i = 0; i < G_N_ELEMENTS (modality_fields); i++) {
      g_autofree char *key = g_strdup_printf ("imagebind.%s.%s", keep[m], modality_fields[i]);
      if (!add_edited (b, edit, key, done) && ib_gguf_get_u32 (src, key, &u))
        ib_gguf_builder_add_u32 (b, key, u);
    }
  }
  if (!add_edited (b, edit, "imagebind.vision.kernel_size", done) &&
      ib_gguf_get_u32_array (src, "imagebind.vision.kernel_size", &array, &n))
    ib_gguf_builder_add_array (b, "imagebind.vision.kernel_size", IB_GGUF_U32, array, n);
  if ((names = ib_gguf_get_string_array (src, "tokenizer.ggml.merges", &n)))
    ib_gguf_builder_add_string_array (b, "tokenizer.ggml.merges", names, n);
  /* edits of keys the source does not have are added */
  for (guint i = 0; i < edit->n_keys; i++)
    if (!g_hash_table_contains (done, edit->keys[i].key))
      add_edited (b, edit, edit->keys[i].key, done);

  for (guint t = 0; t < ib_gguf_n_tensors (src); t++) {
    const IbGgufTensor *tensor = ib_gguf_tensor (src, t);
    g_autofree guint8 *filled = NULL;

    if (!kept (tensor->name, keep))
      continue;
    if (edit->fill_tensors && strstr (tensor->name, edit->fill_tensors)) {
      filled = g_malloc (tensor->n_bytes);
      for (guint64 i = 0; i < tensor->n_elements; i++) {
        if (tensor->type == IB_GGUF_TENSOR_F32)
          memcpy (filled + 4 * i, &edit->fill_value, 4);
        else {
          guint16 h = ib_f32_to_f16 (edit->fill_value);
          memcpy (filled + 2 * i, &h, 2);
        }
      }
    }
    ib_gguf_builder_add_tensor (b, tensor->name, tensor->type, tensor->n_dims, tensor->ne,
        filled ? filled : tensor->data);
  }
  ib_gguf_free (src);

  fd = g_file_open_tmp ("ib-edited-XXXXXX.gguf", &path, &error);
  g_assert_no_error (error);
  close (fd);
  g_assert_true (ib_gguf_builder_write_file (b, path, &error));
  g_assert_no_error (error);
  return path;
}

char *
ib_test_clip_variant (const char *src_path, const IbTestKeyEdit *keys, guint n_keys)
{
  static const char *const vision_text[] = { "vision", "text", NULL };
  IbTestModelEdit edit = { .modalities = vision_text, .keys = keys, .n_keys = n_keys };

  return ib_test_model_edit (src_path, &edit);
}
