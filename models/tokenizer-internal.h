/* Tokenizer internals exported for the tests (not installed). */
#ifndef IB_TOKENIZER_INTERNAL_H
#define IB_TOKENIZER_INTERNAL_H

#include "imagebind-tokenizer.h"
#include "text-clean.h"

G_BEGIN_DECLS

/* The ids of every piece of already-cleaned UTF-8 text (no SOT/EOT, no length limit; pieces
 * longer than 4096 bytes are cut as in imagebind_tokenize). Free with g_array_unref. */
GArray *ib_tokenizer_encode_all (const ImageBindTokenizer *tok, const char *clean_utf8);

/* The symbol string of @id ("a</w>", "<|endoftext|>"), or NULL when out of range. */
const char *ib_tokenizer_id_to_string (const ImageBindTokenizer *tok, gint32 id);
/* The regex pieces of already-cleaned UTF-8 text (newly allocated strings). */
GPtrArray *ib_tokenizer_split (const char *clean_utf8);

G_END_DECLS

#endif
