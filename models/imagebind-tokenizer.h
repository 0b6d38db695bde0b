/* The CLIP byte-level BPE tokenizer of ImageBind (../shared/spec/ARCHITECTURE.md §9).
 *
 *   ImageBindTokenizer *tok = imagebind_model_get_tokenizer (model);   // owned by the model
 *   gint32 ids[77];
 *   if (!imagebind_tokenize (tok, "a dog barking", -1, ids, 77, &err)) ...
 *
 * A tokenizer is immutable once built and may be used from several threads at once.
 */
#ifndef IMAGEBIND_TOKENIZER_H
#define IMAGEBIND_TOKENIZER_H

#include <glib.h>

#include "imagebind-prelude.h"

G_BEGIN_DECLS

typedef struct _ImageBindTokenizer ImageBindTokenizer;

/* Which literal texts in the input become the start/end ids (a model file's
 * tokenizer.clip.special_tokens). */
typedef enum {
  /* "<|startoftext|>", "<|endoftext|>" (OpenAI CLIP, ImageBind, Hugging Face CLIP) */
  IMAGEBIND_SPECIAL_TOKENS_OPENAI,
  /* OpenCLIP: "<start_of_text>", "<end_of_text>" in any letter case; "<|endoftext|>" is
   * ordinary text */
  IMAGEBIND_SPECIAL_TOKENS_OPENCLIP,
} ImageBindSpecialTokens;

/* From merges "a b" in rank order (no header line), OpenAI special tokens. */
IMAGEBIND_API
ImageBindTokenizer *imagebind_tokenizer_new (const char *const *merges, gsize n_merges, GError **error);
/* The same with the given special-token rule. */
IMAGEBIND_API
ImageBindTokenizer *imagebind_tokenizer_new_full (const char *const *merges, gsize n_merges,
    ImageBindSpecialTokens special, GError **error);
/* From a CLIP vocabulary file (bpe_simple_vocab_16e6.txt.gz, gzip or plain text, header line
 * first); @max_merges 0 = all lines (the official tokenizer uses 48894; the official file holds
 * 262144, so pass 48894 to get the official 49408-id vocabulary). */
IMAGEBIND_API
ImageBindTokenizer *imagebind_tokenizer_new_from_file (const char *path, gsize max_merges, GError **error);
IMAGEBIND_API
void imagebind_tokenizer_free (ImageBindTokenizer *tok);

/* Number of ids: 512 + merges + 2. */
IMAGEBIND_API
guint imagebind_tokenizer_vocab_size (const ImageBindTokenizer *tok);
IMAGEBIND_API
gint32 imagebind_tokenizer_sot (const ImageBindTokenizer *tok);
IMAGEBIND_API
gint32 imagebind_tokenizer_eot (const ImageBindTokenizer *tok);

/* Cleans @text (UTF-8, @len bytes or -1), splits, applies BPE and writes exactly
 * @context_length ids: SOT, up to context_length - 2 token ids, EOT, zeros.
 * Fails (IMAGEBIND_ERROR_INPUT) on invalid UTF-8. */
IMAGEBIND_API
gboolean imagebind_tokenize (const ImageBindTokenizer *tok, const char *text, gssize len,
    gint32 *ids, guint context_length, GError **error);

/* The cleaning stage alone (ftfy subset, HTML unescape, whitespace, lower-case): newly
 * allocated UTF-8 (NULL if @text is not valid UTF-8); for tests against text_details.json. */
IMAGEBIND_API
char *imagebind_tokenizer_clean (const char *text, gssize len);

/* The tokenizer stored in the model file, or NULL (error IMAGEBIND_ERROR_NO_TOKENIZER). */
struct _ImageBindModel;
IMAGEBIND_API
const ImageBindTokenizer *imagebind_model_get_tokenizer (const struct _ImageBindModel *model,
    GError **error);

G_END_DECLS

#endif
