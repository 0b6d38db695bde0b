/* The cleaning stages of the CLIP tokenizer (ARCHITECTURE.md §9.1-9.3), internal to
 * libimagebind; exported for the tests. Text is UCS-4 between the stages so that every step
 * can follow Python's per-code-point semantics. */
#ifndef IB_TEXT_CLEAN_H
#define IB_TEXT_CLEAN_H

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  gunichar *data;
  gsize len;
  gsize cap;
} IbUStr;

void ib_ustr_init (IbUStr *s, gsize reserve);
void ib_ustr_clear (IbUStr *s);
void ib_ustr_grow (IbUStr *s, gsize extra);
static inline void
ib_ustr_append (IbUStr *s, gunichar c)
{
  if (G_UNLIKELY (s->len == s->cap))
    ib_ustr_grow (s, 1);
  s->data[s->len++] = c;
}
void ib_ustr_append_n (IbUStr *s, const gunichar *c, gsize n);
void ib_ustr_append_utf8 (IbUStr *s, const char *utf8);  /* valid UTF-8 only */
char *ib_ustr_to_utf8 (const gunichar *c, gsize n);

/* Strict UTF-8 decoding (what Python's bytes.decode("utf-8") accepts: no overlongs, no
 * surrogates, nothing above U+10FFFF; NUL bytes are ordinary characters). On failure returns
 * FALSE and sets *bad_offset to the offset of the first invalid byte. */
gboolean ib_utf8_decode (const char *text, gsize len, IbUStr *out, gsize *bad_offset);

/* ftfy.fix_text subset (see the comment at the top of text-clean.c). */
void ib_text_ftfy (const IbUStr *in, IbUStr *out);

/* The same, one segment at a time: ftfy fixes each segment independently, so the output
 * after k segments is exactly a prefix of the whole output. */
typedef struct {
  const IbUStr *in;
  gsize pos;
  gboolean unescape_html;
} IbFtfyState;

void ib_ftfy_begin (IbFtfyState *state, const IbUStr *in);
/* Appends the next fixed segment to @out; FALSE when the input is exhausted. */
gboolean ib_ftfy_next_segment (IbFtfyState *state, IbUStr *out);
/* Python's html.unescape. */
void ib_text_html_unescape (const gunichar *in, gsize n, IbUStr *out);
/* basic_clean: ftfy, html.unescape twice, str.strip(). */
void ib_text_basic_clean (const IbUStr *in, IbUStr *out);
/* whitespace_clean then str.lower(): runs of \s become one space, strip, lower-case. */
void ib_text_whitespace_lower (const IbUStr *in, IbUStr *out);
/* All of the above. */
void ib_text_clean (const IbUStr *in, IbUStr *out);
/* Everything after ftfy: html.unescape twice, strip, whitespace, lower-case. */
void ib_text_clean_after_ftfy (const gunichar *fixed, gsize n, IbUStr *out);

/* Characters at which ftfy's output can be cut without changing what comes before: no HTML
 * character reference, regex piece or final-sigma context extends across them. */
gboolean ib_text_is_cut_space (gunichar c);

/* Python regex's \s (the Unicode White_Space property). */
gboolean ib_unichar_is_regex_space (gunichar c);

G_END_DECLS

#endif
