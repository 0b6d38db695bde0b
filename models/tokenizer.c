/* The CLIP byte-level BPE tokenizer (ARCHITECTURE.md §9.4-9.9): splitting of the cleaned
 * text, bytes to symbols, BPE with the merge ranks, ids and the fixed-length sequence.
 * Cleaning (§9.1-9.3) is in text-clean.c.
 *
 * Symbols are handled as vocabulary ids rather than strings: the id of a byte symbol is its
 * position in the byte table, the id of a merged symbol is 512 + the rank of the merge that
 * spells it (the last one if several do, as in the official vocabulary dict). A hash table
 * maps a pair of ids to the rank of its merge and the id of the result.
 */

#include "tokenizer-internal.h"

#include <string.h>
#include <gio/gio.h>

#include "imagebind.h"

#define SOT_TEXT "<|startoftext|>"
#define EOT_TEXT "<|endoftext|>"
/* OpenCLIP's spellings (its tokenizer.py): the regex alternatives for them come first, under
 * IGNORECASE, and its BPE cache maps the lower-case spellings to the special ids. */
#define OPENCLIP_SOT_TEXT "<start_of_text>"
#define OPENCLIP_EOT_TEXT "<end_of_text>"
/* Pieces longer than this many bytes are cut before BPE (see bpe_piece()). */
#define BPE_MAX_PIECE_BYTES 4096

typedef struct {
  guint64 key;      /* (left id + 1) << 32 | (right id + 1); 0 = empty slot */
  gint32 rank;
  gint32 result;
} PairEntry;

struct _ImageBindTokenizer {
  guint n_merges;
  gint32 sot;
  gint32 eot;
  const char *sot_text;  /* the literal spellings of the special tokens */
  const char *eot_text;
  gint32 byte_id[256];   /* id of the symbol of each byte; + 256 for the "</w>" form */
  PairEntry *pairs;
  gsize pairs_mask;
  /* Every id's symbol, for tests and debugging: NUL-separated, with offsets. */
  char *strings;
  guint32 *string_offsets;
};

/* ---- the byte table (§9.5) ---- */

/* Fills @byte_char (the code point each byte stands for) and @byte_id (its id). */
static void
build_byte_table (gunichar byte_char[256], gint32 byte_id[256])
{
  gint32 next_id = 0;
  guint remapped = 0;

  for (guint b = 0; b < 256; b++)
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
      byte_char[b] = b;
      byte_id[b] = next_id++;
    }
  for (guint b = 0; b < 256; b++)
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
      byte_char[b] = 0x100 + remapped++;
      byte_id[b] = next_id++;
    }
}

/* ---- the pair table ---- */

static inline guint64
pair_key (gint32 left, gint32 right)
{
  return ((guint64) (guint32) (left + 1) << 32) | (guint32) (right + 1);
}

static inline gsize
pair_hash (guint64 key)
{
  key ^= key >> 33;
  key *= G_GUINT64_CONSTANT (0xff51afd7ed558ccd);
  key ^= key >> 33;
  return (gsize) key;
}

static void
pair_insert (ImageBindTokenizer *tok, gint32 left, gint32 right, gint32 rank, gint32 result)
{
  guint64 key = pair_key (left, right);
  gsize i = pair_hash (key) & tok->pairs_mask;

  while (tok->pairs[i].key != 0 && tok->pairs[i].key != key)
    i = (i + 1) & tok->pairs_mask;
  /* A repeated pair keeps the later rank, like dict(zip(merges, range(n))). */
  tok->pairs[i].key = key;
  tok->pairs[i].rank = rank;
  tok->pairs[i].result = result;
}

static const PairEntry *
pair_lookup (const ImageBindTokenizer *tok, gint32 left, gint32 right)
{
  guint64 key = pair_key (left, right);
  gsize i = pair_hash (key) & tok->pairs_mask;

  while (tok->pairs[i].key != 0) {
    if (tok->pairs[i].key == key)
      return &tok->pairs[i];
    i = (i + 1) & tok->pairs_mask;
  }
  return NULL;
}

/* ---- construction ---- */

static gboolean
is_merge_space (char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Splits "a b" (whitespace-separated, like str.split()) into two newly allocated parts. */
static gboolean
parse_merge (const char *line, gsize index, char **a, char **b, GError **error)
{
  const char *parts[3][2];
  guint n = 0;
  const char *p = line;

  if (!g_utf8_validate (line, -1, NULL)) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "BPE merge %" G_GSIZE_FORMAT " is not valid UTF-8", index);
    return FALSE;
  }
  while (*p && n < 3) {
    while (*p && is_merge_space (*p))
      p++;
    if (!*p)
      break;
    parts[n][0] = p;
    while (*p && !is_merge_space (*p))
      p++;
    parts[n][1] = p;
    n++;
  }
  if (n != 2) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "BPE merge %" G_GSIZE_FORMAT " (\"%.40s\") is not two symbols separated by a space",
        index, line);
    return FALSE;
  }
  *a = g_strndup (parts[0][0], parts[0][1] - parts[0][0]);
  *b = g_strndup (parts[1][0], parts[1][1] - parts[1][0]);
  return TRUE;
}

ImageBindTokenizer *
imagebind_tokenizer_new (const char *const *merges, gsize n_merges, GError **error)
{
  return imagebind_tokenizer_new_full (merges, n_merges, IMAGEBIND_SPECIAL_TOKENS_OPENAI, error);
}

ImageBindTokenizer *
imagebind_tokenizer_new_full (const char *const *merges, gsize n_merges,
    ImageBindSpecialTokens special, GError **error)
{
  ImageBindTokenizer *tok;
  GHashTable *ids;   /* symbol string -> id + 1 */
  gunichar byte_char[256];
  char **left, **right;
  gsize table_size = 1024;

  g_return_val_if_fail (merges != NULL || n_merges == 0, NULL);
  g_return_val_if_fail (special == IMAGEBIND_SPECIAL_TOKENS_OPENAI ||
      special == IMAGEBIND_SPECIAL_TOKENS_OPENCLIP, NULL);

  if (n_merges > G_MAXINT32 - 1024) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "too many BPE merges (%" G_GSIZE_FORMAT ")", n_merges);
    return NULL;
  }
  left = g_new0 (char *, n_merges + 1);
  right = g_new0 (char *, n_merges + 1);
  for (gsize r = 0; r < n_merges; r++) {
    if (!merges[r] || !parse_merge (merges[r], r, &left[r], &right[r], error)) {
      if (!merges[r])
        g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT, "BPE merge %" G_GSIZE_FORMAT
            " is missing", r);
      g_strfreev (left);
      g_strfreev (right);
      return NULL;
    }
  }

  tok = g_new0 (ImageBindTokenizer, 1);
  tok->n_merges = n_merges;
  tok->sot = 512 + n_merges;
  tok->eot = tok->sot + 1;
  tok->sot_text = special == IMAGEBIND_SPECIAL_TOKENS_OPENCLIP ? OPENCLIP_SOT_TEXT : SOT_TEXT;
  tok->eot_text = special == IMAGEBIND_SPECIAL_TOKENS_OPENCLIP ? OPENCLIP_EOT_TEXT : EOT_TEXT;
  build_byte_table (byte_char, tok->byte_id);

  /* The vocabulary in id order; a later equal string overrides, as in dict(zip(vocab, ...)). */
  ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint b = 0; b < 256; b++) {
    char sym[16];
    gint n = g_unichar_to_utf8 (byte_char[b], sym);
    sym[n] = '\0';
    g_hash_table_insert (ids, g_strdup (sym), GINT_TO_POINTER (tok->byte_id[b] + 1));
    g_hash_table_insert (ids, g_strconcat (sym, "</w>", NULL),
        GINT_TO_POINTER (tok->byte_id[b] + 256 + 1));
  }
  for (gsize r = 0; r < n_merges; r++)
    g_hash_table_insert (ids, g_strconcat (left[r], right[r], NULL),
        GINT_TO_POINTER ((gint) (512 + r + 1)));
  g_hash_table_insert (ids, g_strdup (tok->sot_text), GINT_TO_POINTER (tok->sot + 1));
  g_hash_table_insert (ids, g_strdup (tok->eot_text), GINT_TO_POINTER (tok->eot + 1));

  while (table_size < 2 * n_merges)
    table_size *= 2;
  tok->pairs = g_new0 (PairEntry, table_size);
  tok->pairs_mask = table_size - 1;
  for (gsize r = 0; r < n_merges; r++) {
    gint a = GPOINTER_TO_INT (g_hash_table_lookup (ids, left[r])) - 1;
    gint b = GPOINTER_TO_INT (g_hash_table_lookup (ids, right[r])) - 1;
    char *joined = g_strconcat (left[r], right[r], NULL);
    gint result = GPOINTER_TO_INT (g_hash_table_lookup (ids, joined)) - 1;

    g_free (joined);
    /* A merge whose parts are not symbols can never apply; it still owns its id. */
    if (a >= 0 && b >= 0)
      pair_insert (tok, a, b, r, result);
  }

  {
    GString *all = g_string_new (NULL);
    guint n_ids = 512 + n_merges + 2;
    tok->string_offsets = g_new (guint32, n_ids);
    for (guint suffix = 0; suffix < 2; suffix++)
      for (guint id = 0; id < 256; id++)
        for (guint b = 0; b < 256; b++)
          if (tok->byte_id[b] == (gint32) id) {
            tok->string_offsets[suffix * 256 + id] = all->len;
            g_string_append_unichar (all, byte_char[b]);
            g_string_append_len (all, suffix ? "</w>" : "", suffix ? 5 : 1);
          }
    for (gsize r = 0; r < n_merges; r++) {
      tok->string_offsets[512 + r] = all->len;
      g_string_append (all, left[r]);
      g_string_append_len (all, right[r], strlen (right[r]) + 1);
    }
    tok->string_offsets[tok->sot] = all->len;
    g_string_append_len (all, tok->sot_text, strlen (tok->sot_text) + 1);
    tok->string_offsets[tok->eot] = all->len;
    g_string_append_len (all, tok->eot_text, strlen (tok->eot_text) + 1);
    tok->strings = g_string_free (all, FALSE);
  }

  g_hash_table_unref (ids);
  g_strfreev (left);
  g_strfreev (right);
  return tok;
}

static gboolean
read_file_contents (const char *path, GBytes **out, GError **error)
{
  GFile *file = g_file_new_for_path (path);
  char *data = NULL;
  gsize len = 0;
  gboolean ok;

  ok = g_file_load_contents (file, NULL, &data, &len, NULL, error);
  g_object_unref (file);
  if (!ok) {
    g_prefix_error (error, "cannot read BPE vocabulary: ");
    if (error && *error && (*error)->domain != IMAGEBIND_ERROR) {
      GError *e = g_error_new_literal (IMAGEBIND_ERROR, IMAGEBIND_ERROR_FILE, (*error)->message);
      g_clear_error (error);
      g_propagate_error (error, e);
    }
    return FALSE;
  }

  if (len >= 2 && (guint8) data[0] == 0x1f && (guint8) data[1] == 0x8b) {
    GInputStream *raw = g_memory_input_stream_new_from_data (data, len, g_free);
    GConverter *gunzip = G_CONVERTER (g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP));
    GInputStream *in = g_converter_input_stream_new (raw, gunzip);
    GOutputStream *mem = g_memory_output_stream_new_resizable ();
    GError *err = NULL;

    ok = g_output_stream_splice (mem, in, G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE
        | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &err) >= 0;
    if (ok)
      *out = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (mem));
    else {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
          "cannot decompress BPE vocabulary %s: %s", path, err->message);
      g_error_free (err);
    }
    g_object_unref (mem);
    g_object_unref (in);
    g_object_unref (gunzip);
    g_object_unref (raw);
    return ok;
  }
  *out = g_bytes_new_take (data, len);
  return TRUE;
}

ImageBindTokenizer *
imagebind_tokenizer_new_from_file (const char *path, gsize max_merges, GError **error)
{
  GBytes *bytes = NULL;
  GPtrArray *lines;
  char *text, *p, *end;
  gsize n_merges, size;
  const char *data;
  ImageBindTokenizer *tok = NULL;

  g_return_val_if_fail (path != NULL, NULL);

  if (!read_file_contents (path, &bytes, error))
    return NULL;
  data = g_bytes_get_data (bytes, &size);
  if (memchr (data, '\0', size)) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "BPE vocabulary %s contains a NUL byte", path);
    g_bytes_unref (bytes);
    return NULL;
  }
  text = g_strndup (data, size);
  g_bytes_unref (bytes);

  /* Lines in place (like str.split("\n")); only as many as needed. */
  lines = g_ptr_array_new ();
  for (p = text, end = text + size; ; ) {
    char *nl = memchr (p, '\n', end - p);
    g_ptr_array_add (lines, p);
    if (!nl || (max_merges > 0 && lines->len > max_merges + 1))
      break;
    *nl = '\0';
    p = nl + 1;
  }
  /* Line 0 is the header; a final newline leaves one empty string at the end. */
  n_merges = lines->len - 1;
  if (n_merges > 0 && ((char *) lines->pdata[lines->len - 1])[0] == '\0')
    n_merges--;
  if (max_merges > 0 && max_merges > n_merges) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "BPE vocabulary %s has %" G_GSIZE_FORMAT " merges, %" G_GSIZE_FORMAT " requested",
        path, n_merges, max_merges);
  } else {
    if (max_merges > 0)
      n_merges = max_merges;
    tok = imagebind_tokenizer_new ((const char *const *) lines->pdata + 1, n_merges, error);
  }
  g_ptr_array_free (lines, TRUE);
  g_free (text);
  return tok;
}

void
imagebind_tokenizer_free (ImageBindTokenizer *tok)
{
  if (!tok)
    return;
  g_free (tok->pairs);
  g_free (tok->strings);
  g_free (tok->string_offsets);
  g_free (tok);
}

guint
imagebind_tokenizer_vocab_size (const ImageBindTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, 0);
  return 512 + tok->n_merges + 2;
}

gint32
imagebind_tokenizer_sot (const ImageBindTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, 0);
  return tok->sot;
}

gint32
imagebind_tokenizer_eot (const ImageBindTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, 0);
  return tok->eot;
}

/* ---- BPE (§9.6) ---- */

typedef struct {
  gint32 rank;
  gint32 pos;     /* index of the left symbol */
  gint32 left;    /* ids when the entry was made: a stale entry no longer matches */
  gint32 right;
} Candidate;

static gboolean
candidate_before (const Candidate *a, const Candidate *b)
{
  return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void
candidate_swap (Candidate *a, Candidate *b)
{
  Candidate t = *a;
  *a = *b;
  *b = t;
}

static void
heap_push (GArray *heap, Candidate c)
{
  Candidate *h;
  guint i;

  g_array_append_val (heap, c);
  h = (Candidate *) heap->data;
  for (i = heap->len - 1; i > 0; ) {
    guint parent = (i - 1) / 2;
    if (!candidate_before (&h[i], &h[parent]))
      break;
    candidate_swap (&h[i], &h[parent]);
    i = parent;
  }
}

static Candidate
heap_pop (GArray *heap)
{
  Candidate *h = (Candidate *) heap->data;
  Candidate top = h[0];
  guint n = heap->len - 1, i = 0;

  h[0] = h[n];
  g_array_set_size (heap, n);
  for (;;) {
    guint l = 2 * i + 1, r = l + 1, best = i;
    if (l < n && candidate_before (&h[l], &h[best]))
      best = l;
    if (r < n && candidate_before (&h[r], &h[best]))
      best = r;
    if (best == i)
      break;
    candidate_swap (&h[i], &h[best]);
    i = best;
  }
  return top;
}

typedef struct {
  gint32 *sym;
  gint32 *prev;
  gint32 *next;
  GArray *heap;
} BpeWork;

static void
push_pair (const ImageBindTokenizer *tok, BpeWork *w, gint32 pos)
{
  gint32 right;
  const PairEntry *e;

  if (pos < 0)
    return;
  right = w->next[pos];
  if (right < 0)
    return;
  e = pair_lookup (tok, w->sym[pos], w->sym[right]);
  if (e) {
    Candidate c = { e->rank, pos, w->sym[pos], w->sym[right] };
    heap_push (w->heap, c);
  }
}

static gboolean
candidate_valid (const BpeWork *w, const Candidate *c)
{
  gint32 right = w->next[c->pos];
  return w->sym[c->pos] == c->left && right >= 0 && w->sym[right] == c->right;
}

static int
compare_pos (gconstpointer a, gconstpointer b)
{
  return ((const Candidate *) a)->pos - ((const Candidate *) b)->pos;
}

/* Applies BPE to the bytes of one piece and appends the ids to @out.
 *
 * The official loop takes the lowest-ranked adjacent pair and merges all its non-overlapping
 * occurrences left to right, then repeats. Here all candidates of the lowest rank are taken
 * from a heap together, merged left to right (skipping ones an earlier merge consumed), and
 * only then are the new neighbour pairs queued: the same passes in O(n log n).
 *
 * A piece longer than BPE_MAX_PIECE_BYTES (a run of letters or symbols without any space) is
 * cut to its first BPE_MAX_PIECE_BYTES bytes, without the end-of-word mark. At most 75 ids are
 * kept, which come from the first few hundred bytes; a merge decision depends on its
 * neighbours only, so for the cut to change one of them a chain of conflicting merges would
 * have to run over thousands of bytes, which the CLIP merges do not produce (the official
 * code would take minutes on such a piece anyway). This bounds the work. */
static void
bpe_piece (const ImageBindTokenizer *tok, const guint8 *bytes, gsize n, GArray *out,
    BpeWork *w, GArray *batch)
{
  gboolean cut = n > BPE_MAX_PIECE_BYTES;
  gint32 count;

  if (cut)
    n = BPE_MAX_PIECE_BYTES;
  count = n;
  for (gint32 i = 0; i < count; i++) {
    w->sym[i] = tok->byte_id[bytes[i]];
    w->prev[i] = i - 1;
    w->next[i] = i + 1 < count ? i + 1 : -1;
  }
  if (!cut)
    w->sym[count - 1] += 256;

  g_array_set_size (w->heap, 0);
  for (gint32 i = 0; i + 1 < count; i++)
    push_pair (tok, w, i);

  while (w->heap->len > 0) {
    Candidate top = heap_pop (w->heap);
    guint merged_from;

    if (!candidate_valid (w, &top))
      continue;
    /* All current occurrences of this pair (same rank = same pair). */
    g_array_set_size (batch, 0);
    g_array_append_val (batch, top);
    while (w->heap->len > 0 && ((Candidate *) w->heap->data)[0].rank == top.rank) {
      Candidate c = heap_pop (w->heap);
      if (candidate_valid (w, &c))
        g_array_append_val (batch, c);
    }
    g_array_sort (batch, compare_pos);
    merged_from = 0;
    for (guint k = 0; k < batch->len; k++) {
      Candidate *c = &g_array_index (batch, Candidate, k);
      gint32 right;

      if (!candidate_valid (w, c))
        continue;   /* consumed by the merge just before it ("a a a") */
      right = w->next[c->pos];
      w->sym[c->pos] = pair_lookup (tok, c->left, c->right)->result;
      w->next[c->pos] = w->next[right];
      if (w->next[right] >= 0)
        w->prev[w->next[right]] = c->pos;
      w->sym[right] = -1;
      g_array_index (batch, Candidate, merged_from++) = *c;
    }
    for (guint k = 0; k < merged_from; k++) {
      Candidate *c = &g_array_index (batch, Candidate, k);
      push_pair (tok, w, w->prev[c->pos]);
      push_pair (tok, w, c->pos);
    }
  }

  /* Symbol 0 stays first: a merge keeps the position of its left symbol. */
  for (gint32 i = 0; i >= 0; i = w->next[i])
    g_array_append_val (out, w->sym[i]);
}

/* ---- splitting (§9.4) ---- */

typedef enum { CLASS_SPACE, CLASS_LETTER, CLASS_NUMBER, CLASS_OTHER, CLASS_NONE } CharClass;

static CharClass
char_class (gunichar c)
{
  if (c < 0x80) {
    if (g_ascii_isalpha (c))
      return CLASS_LETTER;
    if (g_ascii_isdigit (c))
      return CLASS_NUMBER;
    return ib_unichar_is_regex_space (c) ? CLASS_SPACE : CLASS_OTHER;
  }
  if (ib_unichar_is_regex_space (c))
    return CLASS_SPACE;
  /* Under IGNORECASE the regex module treats U+0345 (which case-folds to a Greek letter) as
   * a letter for the negated class but not for [\p{L}]+, so no alternative matches it. */
  if (c == 0x345)
    return CLASS_NONE;
  switch (g_unichar_type (c)) {
    case G_UNICODE_UPPERCASE_LETTER:
    case G_UNICODE_LOWERCASE_LETTER:
    case G_UNICODE_TITLECASE_LETTER:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_OTHER_LETTER:
      return CLASS_LETTER;
    case G_UNICODE_DECIMAL_NUMBER:
    case G_UNICODE_LETTER_NUMBER:
    case G_UNICODE_OTHER_NUMBER:
      return CLASS_NUMBER;
    default:
      return CLASS_OTHER;
  }
}

/* Case-insensitive literal match of ASCII @lit at @c (the text is already lower-case; under
 * IGNORECASE "ſ" also matches "s"). *exact tells whether it matched without "ſ". */
static gboolean
match_literal (const gunichar *c, gsize n, const char *lit, gboolean *exact)
{
  gboolean plain = TRUE;

  gsize i;

  for (i = 0; lit[i]; i++) {
    if (i >= n)
      return FALSE;
    if (c[i] == (gunichar) lit[i] || (c[i] < 0x80 && g_ascii_tolower (c[i]) == lit[i]))
      continue;
    if (lit[i] == 's' && c[i] == 0x17F) {
      plain = FALSE;
      continue;
    }
    return FALSE;
  }
  if (exact)
    *exact = plain;
  return TRUE;
}

typedef struct {
  gsize start;
  gsize len;
  gint special;   /* 0, or 1 for SOT, 2 for EOT */
} Piece;

/* The regex alternative matching at text[i]; FALSE when none does (whitespace). @sot_text
 * and @eot_text are the special tokens' spellings, the first alternatives. */
static gboolean
next_piece (const gunichar *text, gsize n, gsize i, const char *sot_text, const char *eot_text,
    Piece *p)
{
  static const char *const contractions[] = { "'s", "'t", "'re", "'ve", "'m", "'ll", "'d" };
  CharClass cls = char_class (text[i]);
  gsize j;

  p->start = i;
  p->special = 0;
  if (text[i] == '<') {
    gboolean exact;
    /* "<|ſtartoftext|>" (or OpenCLIP's "<ſtart_of_text>") is one piece too, but the
     * official code only maps the exact spelling to the special id (its BPE cache lookup);
     * the other is BPE'd as text. */
    if (match_literal (text + i, n - i, sot_text, &exact)) {
      p->len = strlen (sot_text);
      p->special = exact ? 1 : 0;
      return TRUE;
    }
    if (match_literal (text + i, n - i, eot_text, &exact)) {
      p->len = strlen (eot_text);
      p->special = exact ? 2 : 0;
      return TRUE;
    }
  }
  if (text[i] == '\'') {
    for (guint k = 0; k < G_N_ELEMENTS (contractions); k++)
      if (match_literal (text + i, n - i, contractions[k], NULL)) {
        p->len = strlen (contractions[k]);
        return TRUE;
      }
  }
  switch (cls) {
    case CLASS_LETTER:
    case CLASS_OTHER:
      for (j = i + 1; j < n && char_class (text[j]) == cls; j++)
        ;
      p->len = j - i;
      return TRUE;
    case CLASS_NUMBER:
      p->len = 1;
      return TRUE;
    default:
      return FALSE;
  }
}

/* Splits @text and appends ids to @ids until it holds @want ids (or the text ends). */
static void
encode_text (const ImageBindTokenizer *tok, const IbUStr *text, GArray *ids, guint want)
{
  GByteArray *bytes = g_byte_array_new ();
  GArray *batch = g_array_new (FALSE, FALSE, sizeof (Candidate));
  BpeWork w;
  gsize i = 0;

  w.sym = g_new (gint32, BPE_MAX_PIECE_BYTES);
  w.prev = g_new (gint32, BPE_MAX_PIECE_BYTES);
  w.next = g_new (gint32, BPE_MAX_PIECE_BYTES);
  w.heap = g_array_new (FALSE, FALSE, sizeof (Candidate));

  while (i < text->len && ids->len < want) {
    Piece p;

    if (!next_piece (text->data, text->len, i, tok->sot_text, tok->eot_text, &p)) {
      i++;
      continue;
    }
    i = p.start + p.len;
    if (p.special) {
      gint32 id = p.special == 1 ? tok->sot : tok->eot;
      g_array_append_val (ids, id);
      continue;
    }
    g_byte_array_set_size (bytes, 0);
    for (gsize k = 0; k < p.len && bytes->len <= BPE_MAX_PIECE_BYTES; k++) {
      guint8 buf[8];
      gint m = g_unichar_to_utf8 (text->data[p.start + k], (char *) buf);
      g_byte_array_append (bytes, buf, m);
    }
    bpe_piece (tok, bytes->data, bytes->len, ids, &w, batch);
  }

  g_free (w.sym);
  g_free (w.prev);
  g_free (w.next);
  g_array_free (w.heap, TRUE);
  g_array_free (batch, TRUE);
  g_byte_array_free (bytes, TRUE);
}

/* ---- public entry points ---- */

static gboolean
decode_input (const char *text, gssize len, IbUStr *out, GError **error)
{
  gsize n = len < 0 ? strlen (text) : (gsize) len;
  gsize bad = 0;

  ib_ustr_init (out, n);
  if (!ib_utf8_decode (text, n, out, &bad)) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "text is not valid UTF-8: invalid byte 0x%02x at offset %" G_GSIZE_FORMAT,
        (guint8) text[bad], bad);
    ib_ustr_clear (out);
    return FALSE;
  }
  return TRUE;
}

/* The first @want ids of @raw (or all, if fewer), without cleaning more than needed.
 *
 * Only the first context_length - 2 ids are kept, so a long text need not be cleaned to its
 * end. ftfy works on segments, so its output for the first k segments is exact. Cutting that
 * output just before a space, tab, newline or form feed changes nothing before the cut in the
 * later stages: no HTML reference contains them, they end every regex piece, and the final
 * sigma test stops at them. So once a cut prefix yields @want ids, they are the ids of the
 * whole text. Prefixes are tried at doubling sizes, which keeps the work linear. */
static GArray *
encode_prefix (const ImageBindTokenizer *tok, const IbUStr *raw, guint want)
{
  GArray *tokens = g_array_new (FALSE, FALSE, sizeof (gint32));
  IbUStr fixed, clean;
  IbFtfyState ftfy;
  gsize next_check = 4096, last_cut = 0;

  ib_ustr_init (&fixed, MIN (raw->len, 1 << 20));
  ib_ustr_init (&clean, 256);
  ib_ftfy_begin (&ftfy, raw);
  while (ib_ftfy_next_segment (&ftfy, &fixed)) {
    gsize cut;

    if (fixed.len < next_check)
      continue;
    next_check = fixed.len * 2;
    for (cut = fixed.len; cut > last_cut && !ib_text_is_cut_space (fixed.data[cut - 1]); cut--)
      ;
    if (cut <= last_cut)
      continue;
    last_cut = cut;
    clean.len = 0;
    ib_text_clean_after_ftfy (fixed.data, cut - 1, &clean);
    g_array_set_size (tokens, 0);
    encode_text (tok, &clean, tokens, want);
    if (tokens->len >= want)
      goto done;
  }
  clean.len = 0;
  ib_text_clean_after_ftfy (fixed.data, fixed.len, &clean);
  g_array_set_size (tokens, 0);
  encode_text (tok, &clean, tokens, want);
done:
  ib_ustr_clear (&fixed);
  ib_ustr_clear (&clean);
  return tokens;
}

gboolean
imagebind_tokenize (const ImageBindTokenizer *tok, const char *text, gssize len,
    gint32 *ids, guint context_length, GError **error)
{
  IbUStr raw;
  GArray *tokens;
  guint keep;

  g_return_val_if_fail (tok != NULL, FALSE);
  g_return_val_if_fail (text != NULL || len == 0, FALSE);
  g_return_val_if_fail (ids != NULL, FALSE);

  if (context_length < 2) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "context length %u cannot hold the start and end tokens", context_length);
    return FALSE;
  }
  if (!decode_input (text ? text : "", len, &raw, error))
    return FALSE;

  /* [SOT] + ids, cut to context_length - 1 entries, then EOT, then zeros (§9.8). */
  keep = context_length - 2;
  tokens = encode_prefix (tok, &raw, keep);
  ib_ustr_clear (&raw);

  memset (ids, 0, context_length * sizeof (gint32));
  ids[0] = tok->sot;
  keep = MIN (keep, tokens->len);
  if (keep > 0)
    memcpy (ids + 1, tokens->data, keep * sizeof (gint32));
  ids[1 + keep] = tok->eot;
  g_array_free (tokens, TRUE);
  return TRUE;
}

char *
imagebind_tokenizer_clean (const char *text, gssize len)
{
  IbUStr raw, clean;
  char *out;

  g_return_val_if_fail (text != NULL || len == 0, NULL);

  if (!decode_input (text ? text : "", len, &raw, NULL))
    return NULL;
  ib_ustr_init (&clean, raw.len);
  ib_text_clean (&raw, &clean);
  out = ib_ustr_to_utf8 (clean.data, clean.len);
  ib_ustr_clear (&raw);
  ib_ustr_clear (&clean);
  return out;
}

GArray *
ib_tokenizer_encode_all (const ImageBindTokenizer *tok, const char *clean_utf8)
{
  IbUStr text;
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));

  ib_ustr_init (&text, strlen (clean_utf8));
  ib_ustr_append_utf8 (&text, clean_utf8);
  encode_text (tok, &text, ids, G_MAXUINT);
  ib_ustr_clear (&text);
  return ids;
}

const char *
ib_tokenizer_id_to_string (const ImageBindTokenizer *tok, gint32 id)
{
  if (id < 0 || (guint) id >= imagebind_tokenizer_vocab_size (tok))
    return NULL;
  return tok->strings + tok->string_offsets[id];
}

GPtrArray *
ib_tokenizer_split (const char *clean_utf8)
{
  GPtrArray *pieces = g_ptr_array_new_with_free_func (g_free);
  IbUStr text;
  gsize i = 0;

  ib_ustr_init (&text, strlen (clean_utf8));
  ib_ustr_append_utf8 (&text, clean_utf8);
  while (i < text.len) {
    Piece p;
    if (!next_piece (text.data, text.len, i, SOT_TEXT, EOT_TEXT, &p)) {
      i++;
      continue;
    }
    g_ptr_array_add (pieces, ib_ustr_to_utf8 (text.data + p.start, p.len));
    i = p.start + p.len;
  }
  ib_ustr_clear (&text);
  return pieces;
}
