/* libFuzzer target for the tokenizer: arbitrary bytes as text (invalid UTF-8, NUL bytes,
 * entities, mojibake, huge pieces) and, with a leading 0x00 byte, as a merges list.
 *
 *   CC=clang meson setup -Dfuzzing=true build-fuzz && meson compile -C build-fuzz
 *   build-fuzz/tests/fuzz-tokenizer -max_total_time=60 tests/fuzz/corpus-tokenizer
 *
 * The official vocabulary is read from $IMAGEBIND_BPE_VOCAB or the conformance fixtures when
 * present, else a small built-in merges list is used. */

#include <string.h>

#include "imagebind.h"
#include "tokenizer-internal.h"

#ifndef IB_FUZZ_BPE_VOCAB
#define IB_FUZZ_BPE_VOCAB ""
#endif

static ImageBindTokenizer *tok;

static void
setup (void)
{
  static const char *const fallback[] = {
    "i n", "t h", "a n", "r e", "a r", "e r", "th e</w>", "in g</w>", "o u", "\xc3 \xa9",
  };
  const char *path = g_getenv ("IMAGEBIND_BPE_VOCAB");

  if (!path || !*path)
    path = IB_FUZZ_BPE_VOCAB;
  if (*path)
    tok = imagebind_tokenizer_new_from_file (path, 48894, NULL);
  if (!tok)
    tok = imagebind_tokenizer_new (fallback, G_N_ELEMENTS (fallback), NULL);
  g_assert (tok);
}

static void
check_sequence (const ImageBindTokenizer *t, const gint32 *ids, guint n)
{
  guint i = 1;

  g_assert (ids[0] == imagebind_tokenizer_sot (t));
  /* the EOT that ends the sequence is followed by zeros only */
  for (guint k = n; k > 1; k--)
    if (ids[k - 1] != 0) {
      i = k - 1;
      break;
    }
  g_assert (ids[i] == imagebind_tokenizer_eot (t));
  for (guint k = 0; k < n; k++)
    g_assert (ids[k] >= 0 && (guint) ids[k] < imagebind_tokenizer_vocab_size (t));
}

static void
fuzz_merges (const guint8 *data, size_t size)
{
  char *text = g_strndup ((const char *) data, size);   /* stops at the first NUL */
  char **lines = g_strsplit (text, "\n", 64);
  ImageBindTokenizer *t = imagebind_tokenizer_new ((const char *const *) lines,
      g_strv_length (lines), NULL);

  if (t) {
    gint32 ids[16];
    g_assert (imagebind_tokenize (t, text, -1, ids, 16, NULL) || !g_utf8_validate (text, -1, NULL));
    imagebind_tokenizer_free (t);
  }
  g_strfreev (lines);
  g_free (text);
}

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  gint32 ids[77];
  GError *err = NULL;
  char *clean;

  if (!tok)
    setup ();
  if (size > 0 && data[0] == 0) {
    fuzz_merges (data + 1, size - 1);
    return 0;
  }

  if (imagebind_tokenize (tok, (const char *) data, size, ids, 77, &err)) {
    check_sequence (tok, ids, 77);
    clean = imagebind_tokenizer_clean ((const char *) data, size);
    g_assert (clean && g_utf8_validate (clean, -1, NULL));
    g_free (clean);
  } else {
    g_assert (err && err->code == IMAGEBIND_ERROR_INPUT);
    g_error_free (err);
  }
  /* a short context too */
  if (imagebind_tokenize (tok, (const char *) data, size, ids, 3, NULL))
    check_sequence (tok, ids, 3);
  return 0;
}
