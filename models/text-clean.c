/* Text cleaning of the CLIP tokenizer, as the official load_and_transform_text runs it
 * (ARCHITECTURE.md §9.1-9.3): ftfy.fix_text (ftfy 6.3.1, default settings), html.unescape
 * twice, strip, whitespace folding, str.lower().
 *
 * ftfy is a large heuristic library; this file follows its fix_text step by step, in its
 * order and with its loops:
 *
 *   implemented:
 *     - segmentation: lines ending after "\n" (or every 1,000,000 code points), each fixed
 *       independently and repeatedly until it stops changing; HTML unescaping switched off
 *       for this and all later segments once a segment contains "<";
 *     - unescape_html: "&name;" / "&#...;" (1-24 ASCII letters or digits, ";" required)
 *       with the full HTML5 table plus ftfy's all-caps spellings ("&EACUTE;" -> "É");
 *     - fix_encoding, with a mojibake detector of our own (ftfy's heuristic is not used):
 *       mojibake is UTF-8 read with a single-byte code page, so a character whose byte is a
 *       UTF-8 lead (C2-F4) followed by the right number of characters whose bytes are
 *       continuations (80-BF), in one of the code pages ftfy tries (Latin-1, sloppy
 *       Windows-1252/1251/1250/1253/1254/1257, ISO-8859-2, MacRoman, CP437; tables in
 *       ftfy-charmaps.c, facts from Python's codecs), may be one. In ftfy's order: the
 *       first code page that can encode the whole segment and whose bytes (after
 *       restore_byte_a0, and replace_lossy_sequences for the sloppy ones) are valid UTF-8
 *       (ftfy's "utf-8-variants": also CESU-8 surrogate pairs and C0 80 for NUL) gives its
 *       reading ("cafÃ©" -> "café", "â€™" -> "’"); otherwise runs of such
 *       sequences inside good text are re-decoded one by one; otherwise C1 controls are
 *       reread as Windows-1252. A re-reading is taken only when our "weirdness" score
 *       (broken characters, symbols glued to letters, a lower-case letter before a
 *       capital, script changes inside a word, letters foreign to the text around) drops;
 *       on a tie, runs of two or more sequences, and single ones that give everyday Latin
 *       letters or signs in Latin text ("Ãœber"), are repaired. See "our mojibake
 *       detector" below. It decides like ftfy on ordinary mojibake but is not ftfy's
 *       heuristic: on borderline text the two differ (ours repairs more mojibake of
 *       non-Latin scripts and of Windows-1251; ftfy repairs a few lone sequences ours
 *       leaves, such as "Ã " at the start of a word, "Ð—" alone, "ìƒˆ");
 *     - C1 controls U+0080-U+009F reread as Windows-1252 (undefined bytes stay as they are);
 *     - Latin ligatures (ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ Ĳ ĳ ŉ Ǳ-ǌ), half-/full-width forms U+FF01-U+FFEF to their
 *       NFKC form and U+3000 to a space, curly quotes (U+02BC, U+2018-U+201B -> ',
 *       U+201C-U+201F -> "), line breaks (\r\n, \r, U+2028, U+2029, U+0085 -> \n),
 *       ANSI terminal escapes (ESC [ digits/; letter), control characters (U+0000-U+0008,
 *       U+000B, U+000E-U+001F, U+007F, U+206A-U+206F, U+FEFF, U+FFF9-U+FFFC), NFC
 *       (g_utf8_normalize);
 *     - surrogate pairs: cannot occur, the input is UTF-8.
 *   Not implemented: ftfy's own badness heuristic and mojibake-run detector (replaced by
 *   ours, above); of the rest of what fix_text does by default, nothing that we know of. Its
 *   optional fixers (decode_escapes, fix_latin_ligatures off, ...) are not used by CLIP.
 *   tools/check-tokenizer.py compares our ids with ftfy 6.3.1 itself on generated text:
 *   expect differences on mojibake (see above), not elsewhere.
 *
 * Python's html.unescape is complete: numeric references with its replacement rules and the
 * full HTML5 table, including the 106 legacy names accepted without ";" and its longest-prefix
 * rule ("&eacutefoo" -> "éfoo").
 *
 * Lower-casing follows str.lower(): per-character lower-case mapping (GLib's tables, which
 * only cover letters, plus the Roman numerals and circled capitals that Python also maps),
 * U+0130 -> "i" U+0307, and Python's final-sigma rule (Cased and Case_Ignorable from GLib's
 * categories plus the few extra characters Unicode lists; checked against Python 3.11 on
 * every assigned code point below U+30000 in and around "AΣ"). GLib's
 * g_utf8_strdown is not used: it depends on the locale (Turkish, Lithuanian) and its sigma
 * rule differs ("Σ" alone becomes "ς" there, "σ" in Python).
 *
 * Character properties come from GLib's Unicode tables, whose version may be newer than the
 * Unicode 14 of Python 3.11: code points assigned since then may be classified differently.
 */

#include "text-clean.h"

#include <string.h>
#include <stdlib.h>

#include "ftfy-charmaps.h"
#include "html-entities.h"

#define FTFY_MAX_SEGMENT 1000000
/* ftfy loops until the text is stable; every fix is idempotent, so a handful of rounds
 * always suffices. The cap only guards against an unforeseen oscillation. */
#define FTFY_MAX_ROUNDS 16

/* ---- UCS-4 strings ---- */

void
ib_ustr_init (IbUStr *s, gsize reserve)
{
  s->cap = MAX (reserve, 16);
  s->data = g_new (gunichar, s->cap);
  s->len = 0;
}

void
ib_ustr_clear (IbUStr *s)
{
  g_clear_pointer (&s->data, g_free);
  s->len = s->cap = 0;
}

static void
ustr_reserve (IbUStr *s, gsize extra)
{
  if (s->len + extra <= s->cap)
    return;
  s->cap = MAX (s->cap * 2, s->len + extra);
  s->data = g_renew (gunichar, s->data, s->cap);
}

void
ib_ustr_grow (IbUStr *s, gsize extra)
{
  ustr_reserve (s, extra);
}

void
ib_ustr_append_n (IbUStr *s, const gunichar *c, gsize n)
{
  ustr_reserve (s, n);
  memcpy (s->data + s->len, c, n * sizeof (gunichar));
  s->len += n;
}

void
ib_ustr_append_utf8 (IbUStr *s, const char *utf8)
{
  for (const char *p = utf8; *p; p = g_utf8_next_char (p))
    ib_ustr_append (s, g_utf8_get_char (p));
}

static void
ustr_swap (IbUStr *a, IbUStr *b)
{
  IbUStr t = *a;
  *a = *b;
  *b = t;
}

static gboolean
ustr_equal (const IbUStr *a, const IbUStr *b)
{
  return a->len == b->len && memcmp (a->data, b->data, a->len * sizeof (gunichar)) == 0;
}

char *
ib_ustr_to_utf8 (const gunichar *c, gsize n)
{
  char *out = g_malloc (n * 4 + 1);
  gsize o = 0;

  for (gsize i = 0; i < n; i++)
    o += g_unichar_to_utf8 (c[i], out + o);
  out[o] = '\0';
  return out;
}

/* ---- strict UTF-8 ---- */

/* Decodes one sequence at @p (@avail bytes left); returns its length, 0 if invalid. */
static guint
utf8_decode_one (const guint8 *p, gsize avail, gunichar *out)
{
  guint8 b0 = p[0];
  guint n;
  gunichar c, min;

  if (b0 < 0x80) {
    *out = b0;
    return 1;
  } else if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2; c = b0 & 0x1F; min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3; c = b0 & 0x0F; min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4; c = b0 & 0x07; min = 0x10000;
  } else {
    return 0;
  }
  if (avail < n)
    return 0;
  for (guint i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
    c = (c << 6) | (p[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
    return 0;
  *out = c;
  return n;
}

gboolean
ib_utf8_decode (const char *text, gsize len, IbUStr *out, gsize *bad_offset)
{
  const guint8 *p = (const guint8 *) text;
  gsize i = 0;

  ustr_reserve (out, len);
  while (i < len) {
    gunichar c;
    guint n = utf8_decode_one (p + i, len - i, &c);

    if (n == 0) {
      if (bad_offset)
        *bad_offset = i;
      return FALSE;
    }
    out->data[out->len++] = c;
    i += n;
  }
  return TRUE;
}

/* ftfy's "utf-8-variants" decoding: UTF-8 plus Java's C0 80 for U+0000 and CESU-8 surrogate
 * pairs (ED A0-AF xx ED B0-BF xx); anything else invalid fails. On valid UTF-8 it is plain
 * UTF-8, so ftfy's choice (variants only when the bytes contain C0 or ED) needs no test. */
static gboolean
decode_utf8_variants (const guint8 *p, gsize len, IbUStr *out)
{
  gsize mark = out->len, i = 0;

  while (i < len) {
    gunichar c;
    guint n;

    if (p[i] == 0xC0 && i + 1 < len && p[i + 1] == 0x80) {
      ib_ustr_append (out, 0);
      i += 2;
      continue;
    }
    if (p[i] == 0xED && i + 5 < len && p[i + 1] >= 0xA0 && p[i + 1] <= 0xAF
        && (p[i + 2] & 0xC0) == 0x80 && p[i + 3] == 0xED && p[i + 4] >= 0xB0 && p[i + 4] <= 0xBF
        && (p[i + 5] & 0xC0) == 0x80) {
      ib_ustr_append (out, (((p[i + 1] & 0x0F) << 16) | ((p[i + 2] & 0x3F) << 10)
          | ((p[i + 4] & 0x0F) << 6) | (p[i + 5] & 0x3F)) + 0x10000);
      i += 6;
      continue;
    }
    n = utf8_decode_one (p + i, len - i, &c);
    if (n == 0) {
      out->len = mark;
      return FALSE;
    }
    ib_ustr_append (out, c);
    i += n;
  }
  return TRUE;
}

/* ---- single-byte encodings used by the mojibake repair ---- */

/* Windows-1252 bytes 0x80-0x9F; 0 where the code page leaves the byte undefined (ftfy's
 * "sloppy" variant then maps the byte to the same-numbered C1 control). */
static const gunichar cp1252_high[32] = {
  0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
  0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
  0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
  0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
};

static gunichar
sloppy1252_decode (guint8 b)
{
  if (b >= 0x80 && b < 0xA0 && cp1252_high[b - 0x80])
    return cp1252_high[b - 0x80];
  return b;
}

typedef struct {
  gunichar c;
  guint8 byte;
} CharByte;

static int
compare_char_byte (const void *a, const void *b)
{
  gunichar x = ((const CharByte *) a)->c, y = ((const CharByte *) b)->c;
  return x < y ? -1 : x > y;
}

/* Per charmap, its 128 high characters sorted, for encoding. */
static const CharByte *
charmap_reverse (guint index)
{
  static gsize once;
  static CharByte *reverse;

  if (g_once_init_enter (&once)) {
    reverse = g_new (CharByte, 128 * ib_ftfy_charmaps_count);
    for (guint m = 0; m < ib_ftfy_charmaps_count; m++) {
      CharByte *r = reverse + 128 * m;
      for (guint b = 0; b < 128; b++) {
        r[b].c = ib_ftfy_charmaps[m].high[b];
        r[b].byte = 0x80 + b;
      }
      qsort (r, 128, sizeof (CharByte), compare_char_byte);
    }
    g_once_init_leave (&once, 1);
  }
  return reverse + 128 * index;
}

/* The text's bytes in charmap @index; FALSE if a character has no byte there (ftfy's
 * possible_encoding). */
static gboolean
encode_charmap (guint index, const gunichar *c, gsize n, GByteArray *out)
{
  const IbCharmap *map = &ib_ftfy_charmaps[index];
  const CharByte *reverse = charmap_reverse (index);

  g_byte_array_set_size (out, n);
  for (gsize i = 0; i < n; i++) {
    CharByte key = { c[i], 0 };
    const CharByte *found;

    if (map->sloppy && c[i] == 0x1A)
      return FALSE;
    if (map->sloppy && c[i] == 0xFFFD) {
      out->data[i] = 0x1A;
    } else if (c[i] < 0x80) {
      out->data[i] = c[i];
    } else {
      found = bsearch (&key, reverse, 128, sizeof (CharByte), compare_char_byte);
      if (!found)
        return FALSE;
      out->data[i] = found->byte;
    }
  }
  return TRUE;
}

typedef struct {
  const char *set[6];   /* per position: pairs of (low, high) bytes, NUL-terminated */
} BytePattern;

#define RANGE_C1 "\x80\x84\x86\x9f\xa1\xbf"   /* [\x80-\x84\x86-\x9f\xa1-\xbf] */
#define CONT "\x80\xbf"

/* ftfy's ALTERED_UTF8_RE: UTF-8 sequences whose byte A0 became a space. */
static const BytePattern altered_utf8[] = {
  { { "\xc2\xc3\xc5\xc5\xce\xce\xd0\xd0\xd9\xd9", "  ", NULL } },
  { { "\xe2\xe3", "  ", RANGE_C1, NULL } },
  { { "\xe0\xe3", RANGE_C1, "  ", NULL } },
  { { "\xf0\xf0", "  ", CONT, CONT, NULL } },
  { { "\xf0\xf0", CONT, "  ", CONT, NULL } },
  { { "\xf0\xf0", CONT, CONT, "  ", NULL } },
};

#define LOSSY_MARK "\x1a\x1a??"
#define LOSSY_CONT "\x1a\x1a\x80\xbf"
#define LOSSY_ANY "\x1a\x1a??\x80\xbf"

/* ftfy's LOSSY_UTF8_RE: UTF-8 sequences with a byte lost to "?" or U+001A. */
static const BytePattern lossy_utf8[] = {
  { { "\xc2\xdf", "\x1a\x1a", NULL } },
  { { "\xc2\xc3", "??", NULL } },
  { { "\xed\xed", "\xa0\xaf", LOSSY_MARK, "\xed\xed", "\xb0\xbf", LOSSY_ANY } },
  { { "\xed\xed", "\xa0\xaf", LOSSY_ANY, "\xed\xed", "\xb0\xbf", LOSSY_MARK } },
  { { "\xe0\xef", LOSSY_MARK, LOSSY_CONT, NULL } },
  { { "\xe0\xef", LOSSY_CONT, LOSSY_MARK, NULL } },
  { { "\xf0\xf4", LOSSY_MARK, LOSSY_CONT, LOSSY_CONT, NULL } },
  { { "\xf0\xf4", LOSSY_CONT, LOSSY_MARK, LOSSY_CONT, NULL } },
  { { "\xf0\xf4", LOSSY_CONT, LOSSY_CONT, LOSSY_MARK, NULL } },
  { { "\x1a\x1a", NULL } },
};

static gboolean
byte_in_set (guint8 b, const char *set)
{
  for (const char *r = set; r[0]; r += 2)
    if (b >= (guint8) r[0] && b <= (guint8) r[1])
      return TRUE;
  return FALSE;
}

/* Length of the first of @patterns matching at @p, or 0. */
static guint
match_byte_patterns (const BytePattern *patterns, guint n_patterns, const guint8 *p, gsize avail)
{
  for (guint k = 0; k < n_patterns; k++) {
    guint len = 0;
    while (len < G_N_ELEMENTS (patterns[k].set) && patterns[k].set[len])
      len++;
    if (len > avail)
      continue;
    guint i;
    for (i = 0; i < len && byte_in_set (p[i], patterns[k].set[i]); i++)
      ;
    if (i == len)
      return len;
  }
  return 0;
}

static gboolean
search_byte_patterns (const BytePattern *patterns, guint n_patterns, const GByteArray *b)
{
  for (gsize i = 0; i < b->len; i++)
    if (match_byte_patterns (patterns, n_patterns, b->data + i, b->len - i))
      return TRUE;
  return FALSE;
}

static gboolean
has_prefix_at (const GByteArray *b, gsize i, const char *prefix)
{
  gsize n = strlen (prefix);
  return i + n <= b->len && memcmp (b->data + i, prefix, n) == 0;
}

/* ftfy's restore_byte_a0: "Ã " (not before " ", "quele", "quela", "quilo", "s ") becomes
 * "à ", then the ALTERED_UTF8_RE sequences get their A0 back. */
static void
restore_byte_a0 (GByteArray *b)
{
  GByteArray *out = g_byte_array_sized_new (b->len + 16);
  gsize i = 0;

  while (i < b->len) {
    if (b->data[i] == 0xC3 && i + 1 < b->len && b->data[i + 1] == ' '
        && !has_prefix_at (b, i + 2, " ") && !has_prefix_at (b, i + 2, "quele")
        && !has_prefix_at (b, i + 2, "quela") && !has_prefix_at (b, i + 2, "quilo")
        && !has_prefix_at (b, i + 2, "s ")) {
      g_byte_array_append (out, (const guint8 *) "\xc3\xa0 ", 3);
      i += 2;
    } else {
      g_byte_array_append (out, b->data + i, 1);
      i++;
    }
  }
  g_byte_array_set_size (b, 0);
  for (i = 0; i < out->len; ) {
    guint len = match_byte_patterns (altered_utf8, G_N_ELEMENTS (altered_utf8), out->data + i,
        out->len - i);
    if (len == 0)
      len = 1;
    else
      for (guint k = 0; k < len; k++)
        if (out->data[i + k] == ' ')
          out->data[i + k] = 0xA0;
    g_byte_array_append (b, out->data + i, len);
    i += len;
  }
  g_byte_array_unref (out);
}

/* ftfy's replace_lossy_sequences: each lossy sequence becomes U+FFFD. */
static void
replace_lossy_sequences (GByteArray *b)
{
  GByteArray *out = g_byte_array_sized_new (b->len + 16);

  for (gsize i = 0; i < b->len; ) {
    guint len = match_byte_patterns (lossy_utf8, G_N_ELEMENTS (lossy_utf8), b->data + i,
        b->len - i);
    if (len) {
      g_byte_array_append (out, (const guint8 *) "\xef\xbf\xbd", 3);
      i += len;
    } else {
      g_byte_array_append (out, b->data + i, 1);
      i++;
    }
  }
  g_byte_array_set_size (b, 0);
  g_byte_array_append (b, out->data, out->len);
  g_byte_array_unref (out);
}

static gboolean
has_c1 (const IbUStr *s)
{
  for (gsize i = 0; i < s->len; i++)
    if (s->data[i] >= 0x80 && s->data[i] <= 0x9F)
      return TRUE;
  return FALSE;
}

static void
fix_c1_controls (IbUStr *s)
{
  for (gsize i = 0; i < s->len; i++)
    if (s->data[i] >= 0x80 && s->data[i] <= 0x9F)
      s->data[i] = sloppy1252_decode (s->data[i]);
}

static gboolean fix_encoding_step (IbUStr *s, IbUStr *tmp);

/* ftfy.fix_encoding: steps until the text stops changing. */
static void
fix_encoding (IbUStr *s)
{
  IbUStr tmp;

  ib_ustr_init (&tmp, s->len);
  for (int step = 0; step < FTFY_MAX_ROUNDS && fix_encoding_step (s, &tmp); step++)
    ;
  ib_ustr_clear (&tmp);
}

/* ---- our mojibake detector ----
 *
 * Mojibake is UTF-8 read with a single-byte code page: a character of two to four UTF-8
 * bytes becomes two to four characters, the first standing for a lead byte (C2-DF, E0-EF,
 * F0-F4), the others for continuation bytes (80-BF). Re-encoding them in that code page
 * gives the original bytes back. Whether to do so is a judgement: legitimate text can also
 * contain such sequences ("Сё" is D1 B8 in Windows-1251, the UTF-8 of "Ѹ"). We judge by
 * comparing how odd the text looks before and after (weirdness below), and repair only when
 * the re-decoded text is less odd. This is our own scoring, not ftfy's: it decides like ftfy
 * on ordinary mojibake, and may differ on borderline text. */

typedef enum {
  KIND_NEUTRAL,   /* ASCII digits, punctuation and spaces; all spaces */
  KIND_LOWER,     /* lower-case letters */
  KIND_UPPER,     /* upper- and title-case letters */
  KIND_LETTER,    /* uncased letters, marks, non-ASCII digits */
  KIND_OPEN,      /* opening brackets, which ordinary text puts before a word */
  KIND_CLOSE,     /* closing brackets, which ordinary text puts after a word */
  KIND_PUNCT,     /* other punctuation, quotation marks included (languages disagree on
                   * which of them open and which close: „…“, »…«, ”…”) */
  KIND_SYMBOL,    /* symbols, other numbers, modifiers, format characters */
  KIND_BROKEN,    /* controls, U+FFFD, unassigned and private-use code points */
} CharKind;

static CharKind
char_kind (gunichar c)
{
  if (c < 0x80) {
    if (g_ascii_islower (c))
      return KIND_LOWER;
    if (g_ascii_isupper (c))
      return KIND_UPPER;
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F)
      return KIND_BROKEN;
    return KIND_NEUTRAL;
  }
  /* The ordinal indicators and the micro sign are letters to Unicode but symbols in use;
   * the inverted marks open a sentence. */
  switch (c) {
    case 0xAA: case 0xBA: case 0xB5: return KIND_SYMBOL;
    case 0xA1: case 0xBF: return KIND_OPEN;
    case 0xFFFD: return KIND_BROKEN;
    default: break;
  }
  switch (g_unichar_type (c)) {
    case G_UNICODE_LOWERCASE_LETTER:
      return KIND_LOWER;
    case G_UNICODE_UPPERCASE_LETTER:
    case G_UNICODE_TITLECASE_LETTER:
      return KIND_UPPER;
    case G_UNICODE_OTHER_LETTER:
    case G_UNICODE_NON_SPACING_MARK:
    case G_UNICODE_SPACING_MARK:
    case G_UNICODE_ENCLOSING_MARK:
    case G_UNICODE_DECIMAL_NUMBER:
    case G_UNICODE_LETTER_NUMBER:
    case G_UNICODE_MODIFIER_LETTER:   /* ʻ ʼ ˆ: apostrophes and accents inside words */
      return KIND_LETTER;
    case G_UNICODE_SPACE_SEPARATOR:
    case G_UNICODE_LINE_SEPARATOR:
    case G_UNICODE_PARAGRAPH_SEPARATOR:
      return KIND_NEUTRAL;
    case G_UNICODE_OPEN_PUNCTUATION:
      return KIND_OPEN;
    case G_UNICODE_CLOSE_PUNCTUATION:
      return KIND_CLOSE;
    case G_UNICODE_INITIAL_PUNCTUATION:
    case G_UNICODE_FINAL_PUNCTUATION:
    case G_UNICODE_CONNECT_PUNCTUATION:
    case G_UNICODE_DASH_PUNCTUATION:
    case G_UNICODE_OTHER_PUNCTUATION:
      return KIND_PUNCT;
    case G_UNICODE_CONTROL:
    case G_UNICODE_UNASSIGNED:
    case G_UNICODE_PRIVATE_USE:
    case G_UNICODE_SURROGATE:
      return KIND_BROKEN;
    default:   /* symbols, other numbers, format characters */
      return KIND_SYMBOL;
  }
}

static gboolean
kind_is_letter (CharKind k)
{
  return k == KIND_LOWER || k == KIND_UPPER || k == KIND_LETTER;
}

/* The script of a letter for the "script changes inside a word" clue; Japanese mixes three
 * scripts legitimately, so they count as one. */
static GUnicodeScript
letter_script (gunichar c)
{
  GUnicodeScript s = g_unichar_get_script (c);
  if (s == G_UNICODE_SCRIPT_HIRAGANA || s == G_UNICODE_SCRIPT_KATAKANA)
    return G_UNICODE_SCRIPT_HAN;
  return s;
}

/* Whether ordinary writing rarely puts @a (kind @ka) right before @b (kind @kb). */
static gboolean
odd_pair (gunichar a, CharKind ka, gunichar b, CharKind kb)
{
  if (ka == KIND_BROKEN || kb == KIND_BROKEN)
    return ka != KIND_NEUTRAL && kb != KIND_NEUTRAL;
  /* a symbol against a letter or punctuation ("Ã©", "â€"); symbols among themselves are
   * ordinary (box drawing, emoji sequences) */
  if (ka == KIND_SYMBOL || kb == KIND_SYMBOL)
    return ka != KIND_NEUTRAL && kb != KIND_NEUTRAL && ka != kb;
  if (g_unichar_ismark (b) && !kind_is_letter (ka))
    return TRUE;   /* a combining mark with no letter to combine with */
  if (kind_is_letter (ka) && kb == KIND_OPEN)
    return TRUE;
  if (ka == KIND_CLOSE && kind_is_letter (kb))
    return TRUE;
  if (ka == KIND_LOWER && kb == KIND_UPPER)
    return TRUE;
  if (kind_is_letter (ka) && kind_is_letter (kb)) {
    GUnicodeScript sa = letter_script (a), sb = letter_script (b);
    return sa != sb && sa != G_UNICODE_SCRIPT_COMMON && sa != G_UNICODE_SCRIPT_INHERITED
        && sb != G_UNICODE_SCRIPT_COMMON && sb != G_UNICODE_SCRIPT_INHERITED;
  }
  return FALSE;
}

/* How odd @c looks: 3 per broken character, plus 1 per pair of neighbours (one of them not
 * ASCII) that ordinary writing rarely puts together: a symbol against a letter or
 * punctuation, a letter before an opening bracket or after a closing one, a combining mark
 * after anything but a letter, a lower-case letter before a capital, letters of two
 * scripts, anything against a broken character. Mojibake scores high ("Ã©", "â€™",
 * "Ð¿Ñ€", "РїСЂ", "Ã\x81"); its repair removes the oddities. */
static guint
weirdness (const gunichar *c, gsize n)
{
  guint score = 0;
  CharKind prev = KIND_NEUTRAL;

  for (gsize i = 0; i < n; i++) {
    CharKind k = char_kind (c[i]);

    if (k == KIND_BROKEN)
      score += 3;
    if (i == 0 && g_unichar_ismark (c[0]))
      score++;
    if (i > 0 && (c[i] >= 0x80 || c[i - 1] >= 0x80) && odd_pair (c[i - 1], prev, c[i], k))
      score++;
    prev = k;
  }
  return score;
}

/* The byte of @c (not ASCII) in charmap @index, or -1. */
static int
charmap_byte (guint index, gunichar c)
{
  CharByte key = { c, 0 };
  const CharByte *found = bsearch (&key, charmap_reverse (index), 128, sizeof (CharByte),
      compare_char_byte);
  return found ? found->byte : -1;
}

/* A UTF-8 character written as single-byte characters at c[0..]: the first code page (in
 * the order of ib_ftfy_charmaps) in which c[0] is a lead byte, the next characters are
 * continuation bytes and the bytes are valid UTF-8. Returns the number of characters used
 * (2-4) and the decoded character, or 0. */
static guint
match_mojibake_char (const gunichar *c, gsize avail, gunichar *decoded)
{
  if (c[0] < 0x80 || avail < 2)
    return 0;
  for (guint m = 0; m < ib_ftfy_charmaps_count; m++) {
    guint8 bytes[4];
    int lead = charmap_byte (m, c[0]);
    guint need, k;

    if (lead < 0xC2 || lead > 0xF4)
      continue;
    need = lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    if (need > avail)
      continue;
    bytes[0] = lead;
    for (k = 1; k < need; k++) {
      int b = c[k] < 0x80 ? -1 : charmap_byte (m, c[k]);
      if (b < 0x80 || b > 0xBF)
        break;
      bytes[k] = b;
    }
    if (k == need && utf8_decode_one (bytes, need, decoded) == need)
      return need;
  }
  return 0;
}

/* Whether @c is one of the characters of the single-byte code pages: the letters and signs
 * that languages written with them use every day (unlike "Ѹ" or "ӣ"). */
static gboolean
in_some_charmap (gunichar c)
{
  if (c < 0x100 || (c >= 0x1EA0 && c <= 0x1EF9))
    return TRUE;   /* Latin-1; Vietnamese, whose code page composes its letters */
  for (guint m = 0; m < ib_ftfy_charmaps_count; m++)
    if (charmap_byte (m, c) >= 0)
      return TRUE;
  return FALSE;
}

/* The script of the nearest non-ASCII letter of a definite script among @n characters from
 * @c (backwards when @step is -1), or G_UNICODE_SCRIPT_INVALID_CODE. ASCII letters tell
 * nothing: every script's text quotes names, codes and words in them. Forwards, the text is
 * not repaired yet: mojibake characters are skipped, they say nothing of the script. */
static GUnicodeScript
nearest_script (const gunichar *c, gsize n, int step)
{
  for (gsize k = 0; k < n && k < 16; k++) {
    gunichar x = step < 0 ? *(c - k) : c[k], d;
    guint used;
    if (step > 0 && (used = match_mojibake_char (c + k, n - k, &d))) {
      k += used - 1;
      continue;
    }
    if (x >= 0x80 && kind_is_letter (char_kind (x))) {
      GUnicodeScript s = letter_script (x);
      if (s != G_UNICODE_SCRIPT_COMMON && s != G_UNICODE_SCRIPT_INHERITED)
        return s;
    }
  }
  return G_UNICODE_SCRIPT_INVALID_CODE;
}

/* The scripts of the nearest non-ASCII letters before a run and after it. */
typedef struct {
  GUnicodeScript left, right;   /* G_UNICODE_SCRIPT_INVALID_CODE: none */
} RunContext;

/* @before is the text before the run, already repaired; the run ends at in[end]. */
static RunContext
run_context (const IbUStr *before, const IbUStr *in, gsize end)
{
  RunContext ctx;

  ctx.left = before->len ? nearest_script (before->data + before->len - 1, before->len, -1)
      : G_UNICODE_SCRIPT_INVALID_CODE;
  ctx.right = nearest_script (in->data + end, in->len - end, 1);
  return ctx;
}

/* Whether letters of script @s fit the text around a run: the nearest letters on both sides
 * are of that script, when there are any. */
static gboolean
script_fits (GUnicodeScript s, RunContext ctx)
{
  return (ctx.left == G_UNICODE_SCRIPT_INVALID_CODE || ctx.left == s)
      && (ctx.right == G_UNICODE_SCRIPT_INVALID_CODE || ctx.right == s);
}

/* When the score cannot tell, the common cases decide. Several UTF-8 characters in a row
 * are no accident of good text: a run of two or more that re-decodes to letters of one
 * script is repaired ("å§”å†…ç‘žæ‹‰" for "委内瑞拉"). A single one is repaired when it is
 * mojibake of Western text, whose repair gives letters and signs of the code pages, in the
 * Latin script of the text around ("Ãœber" for "Über", "ÅŸehir" for "şehir", "â–‘" for
 * "░"). Other single letters need evidence: "Рік" is good Ukrainian although "Рі" reads
 * as "г". */
static gboolean
run_tie_repairs (gunichar first, const IbUStr *decoded, RunContext ctx)
{
  if (decoded->len >= 2) {
    GUnicodeScript script = G_UNICODE_SCRIPT_INVALID_CODE;
    gboolean one_script = TRUE;

    for (gsize k = 0; k < decoded->len && one_script; k++) {
      gunichar d = decoded->data[k];
      GUnicodeScript s = letter_script (d);
      if (char_kind (d) == KIND_BROKEN)
        one_script = FALSE;
      else if (kind_is_letter (char_kind (d)) && s != G_UNICODE_SCRIPT_COMMON
          && s != G_UNICODE_SCRIPT_INHERITED) {
        one_script = script == G_UNICODE_SCRIPT_INVALID_CODE || script == s;
        script = s;
      }
    }
    if (one_script)
      return TRUE;
  }
  for (gsize k = 0; k < decoded->len; k++) {
    gunichar d = decoded->data[k];
    GUnicodeScript s = g_unichar_get_script (d);

    if (char_kind (d) == KIND_BROKEN || !in_some_charmap (d))
      return FALSE;
    if (s == G_UNICODE_SCRIPT_COMMON || s == G_UNICODE_SCRIPT_INHERITED)
      continue;
    if (s != G_UNICODE_SCRIPT_LATIN || !script_fits (s, ctx))
      return FALSE;
  }
  /* with no letters around, the run's own first letter must be Latin ("Её" is "her") */
  if (ctx.left == G_UNICODE_SCRIPT_INVALID_CODE && ctx.right == G_UNICODE_SCRIPT_INVALID_CODE
      && kind_is_letter (char_kind (first)))
    return g_unichar_get_script (first) == G_UNICODE_SCRIPT_LATIN;
  return TRUE;
}

/* 1 when @c has a letter whose script is not the one of the non-ASCII letters around (the
 * window of run_is_mojibake sees only the nearest neighbours): "ФОРМАТ“" is no mojibake of
 * "ФОРМАғ", "Ñƒ" in Ukrainian text is "у". */
static guint
foreign_letters (const gunichar *c, gsize n, RunContext ctx)
{
  for (gsize k = 0; k < n; k++) {
    GUnicodeScript s = letter_script (c[k]);
    if (kind_is_letter (char_kind (c[k])) && s != G_UNICODE_SCRIPT_COMMON
        && s != G_UNICODE_SCRIPT_INHERITED && !script_fits (s, ctx))
      return 1;
  }
  return 0;
}

/* Decides on a run of mojibake characters in[start..end) whose re-decoding is @decoded,
 * @before being the text before it (already repaired): repair when the run with one
 * neighbour on each side is less weird re-decoded, or as odd and run_tie_repairs. */
static gboolean
run_is_mojibake (const IbUStr *before, const IbUStr *in, gsize start, gsize end,
    const IbUStr *decoded)
{
  gsize after_end = end < in->len ? end + 1 : end;
  RunContext ctx = run_context (before, in, end);
  guint odd_now, odd_repaired;
  IbUStr w;

  ib_ustr_init (&w, end - start + 2);
  if (before->len > 0)
    ib_ustr_append (&w, before->data[before->len - 1]);
  ib_ustr_append_n (&w, in->data + start, after_end - start);
  odd_now = weirdness (w.data, w.len) + foreign_letters (in->data + start, end - start, ctx);
  w.len = before->len > 0 ? 1 : 0;
  ib_ustr_append_n (&w, decoded->data, decoded->len);
  ib_ustr_append_n (&w, in->data + end, after_end - end);
  odd_repaired = weirdness (w.data, w.len);
  /* Two or more UTF-8 characters in a row are their own context ("æ–‡ä»¶" in English text
   * is "文件"); a single one must fit the text around. */
  if (decoded->len == 1)
    odd_repaired += foreign_letters (decoded->data, decoded->len, ctx);
  ib_ustr_clear (&w);
  return odd_repaired < odd_now
      || (odd_repaired == odd_now && run_tie_repairs (in->data[start], decoded, ctx));
}

/* Mojibake inside otherwise good text (which no single code page can encode as a whole):
 * each run of consecutive mojibake characters is repaired on its own when run_is_mojibake
 * says so. TRUE if @out differs from @in. */
static gboolean
repair_mojibake_runs (const IbUStr *in, IbUStr *out)
{
  gboolean changed = FALSE;
  IbUStr decoded;
  gsize i = 0;

  out->len = 0;
  ib_ustr_init (&decoded, 16);
  while (i < in->len) {
    gsize j = i;
    gunichar d;
    guint used;

    decoded.len = 0;
    while (j < in->len && (used = match_mojibake_char (in->data + j, in->len - j, &d))) {
      ib_ustr_append (&decoded, d);
      j += used;
    }
    if (j == i) {
      ib_ustr_append (out, in->data[i++]);
      continue;
    }
    if (run_is_mojibake (out, in, i, j, &decoded)) {
      ib_ustr_append_n (out, decoded.data, decoded.len);
      changed = TRUE;
    } else {
      ib_ustr_append_n (out, in->data + i, j - i);
    }
    i = j;
  }
  ib_ustr_clear (&decoded);
  return changed;
}

/* One step of fix_encoding; TRUE if @s changed. Like ftfy: the whole text re-read through the
 * first code page (ftfy's order) that can encode it and whose bytes are UTF-8 (after
 * restore_byte_a0, and replace_lossy_sequences for the sloppy ones); else mojibake runs
 * inside good text; else C1 controls reread as Windows-1252. Unlike ftfy, our weirdness
 * score decides whether the re-reading is taken. */
static gboolean
fix_encoding_step (IbUStr *s, IbUStr *tmp)
{
  gboolean ascii = TRUE;
  GByteArray *bytes;

  for (gsize i = 0; i < s->len && ascii; i++)
    ascii = s->data[i] < 0x80;
  if (ascii)
    return FALSE;

  bytes = g_byte_array_new ();
  for (guint m = 0; m < ib_ftfy_charmaps_count; m++) {
    const IbCharmap *map = &ib_ftfy_charmaps[m];

    if (!encode_charmap (m, s->data, s->len, bytes))
      continue;
    if (map->restore_byte_a0
        && search_byte_patterns (altered_utf8, G_N_ELEMENTS (altered_utf8), bytes))
      restore_byte_a0 (bytes);
    if (map->lossy)
      replace_lossy_sequences (bytes);
    tmp->len = 0;
    if (decode_utf8_variants (bytes->data, bytes->len, tmp)) {
      guint odd_now = weirdness (s->data, s->len), odd_repaired;
      gboolean better = FALSE;
      if (!ustr_equal (s, tmp)) {
        odd_repaired = weirdness (tmp->data, tmp->len);
        better = odd_repaired < odd_now;
      }
      g_byte_array_unref (bytes);
      if (better) {
        ustr_swap (s, tmp);
        return TRUE;
      }
      /* Not an improvement as a whole; its mojibake runs may still be. */
      bytes = NULL;
      break;
    }
  }
  if (bytes)
    g_byte_array_unref (bytes);

  if (repair_mojibake_runs (s, tmp)) {
    ustr_swap (s, tmp);
    return TRUE;
  }
  /* Latin-1 text with C1 controls: reread as Windows-1252 (the undefined bytes make the
   * strict decoder fail in ftfy, and fix_c1_controls then maps the others the same way). */
  if (has_c1 (s)) {
    fix_c1_controls (s);
    return TRUE;
  }
  return FALSE;
}

/* ---- HTML ---- */

static int
entity_cmp (const void *key, const void *elem)
{
  return strcmp (key, ((const IbHtmlEntity *) elem)->name);
}

static const char *
lookup_entity (const IbHtmlEntity *table, unsigned count, const char *name)
{
  const IbHtmlEntity *e = bsearch (name, table, count, sizeof (IbHtmlEntity), entity_cmp);
  return e ? e->value : NULL;
}

static const char *
lookup_html5 (const gunichar *name, gsize n)
{
  char buf[4 * 40];

  if (n == 0 || n > 33)
    return NULL;
  for (gsize i = 0; i < n; i++) {
    /* Every HTML5 name is ASCII; anything else cannot be in the table. */
    if (name[i] >= 0x80 || name[i] == 0)
      return NULL;
    buf[i] = name[i];
  }
  buf[n] = '\0';
  return lookup_entity (ib_html5_entities, ib_html5_entities_count, buf);
}

static gboolean
is_html_invalid_codepoint (guint64 num)
{
  return (num >= 0x1 && num <= 0x8) || num == 0xB || (num >= 0xE && num <= 0x1F)
      || (num >= 0x7F && num <= 0x9F) || (num >= 0xFDD0 && num <= 0xFDEF)
      || (num & 0xFFFE) == 0xFFFE;
}

/* Python's html._replace_charref for a numeric reference. */
static void
append_numeric_charref (IbUStr *out, guint64 num)
{
  if (num == 0)
    ib_ustr_append (out, 0xFFFD);
  else if (num == 0x0D)
    ib_ustr_append (out, 0x0D);
  else if (num >= 0x80 && num <= 0x9F)
    ib_ustr_append (out, sloppy1252_decode (num));
  else if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF)
    ib_ustr_append (out, 0xFFFD);
  else if (!is_html_invalid_codepoint (num))
    ib_ustr_append (out, (gunichar) num);
}

static int
hex_value (gunichar c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static gboolean
memchr_unichar (const gunichar *c, gsize n, gunichar wanted)
{
  for (gsize i = 0; i < n; i++)
    if (c[i] == wanted)
      return TRUE;
  return FALSE;
}

/* Tries Python's charref pattern at in[i] == '&'; appends the replacement and returns the
 * number of code points consumed, or 0 when the pattern does not match there. */
static gsize
unescape_one (const gunichar *in, gsize n, gsize i, IbUStr *out)
{
  gsize j = i + 1;

  if (j < n && in[j] == '#') {
    gboolean hex = j + 1 < n && (in[j + 1] == 'x' || in[j + 1] == 'X');
    gsize start = j + (hex ? 2 : 1);
    guint64 num = 0;

    for (j = start; j < n && (hex ? hex_value (in[j]) >= 0 : (in[j] >= '0' && in[j] <= '9')); j++) {
      num = num * (hex ? 16 : 10) + (hex ? hex_value (in[j]) : (int) (in[j] - '0'));
      if (num > 0x10FFFF)
        num = 0x110000;   /* saturate: any larger value gives the same answer */
    }
    if (j == start)
      return 0;
    if (j < n && in[j] == ';')
      j++;
    append_numeric_charref (out, num);
    return j - i;
  }

  /* Named: [^\t\n\f <&#;]{1,32};? */
  {
    gsize len = 0, total;
    const char *value;

    while (j + len < n && len < 32) {
      gunichar c = in[j + len];
      if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#'
          || c == ';')
        break;
      len++;
    }
    if (len == 0)
      return 0;
    total = len + ((j + len < n && in[j + len] == ';') ? 1 : 0);
    value = lookup_html5 (in + j, total);
    if (value) {
      ib_ustr_append_utf8 (out, value);
      return 1 + total;
    }
    /* The longest prefix (of at least 2 characters) that is an entity. */
    for (gsize x = total - 1; x > 1; x--) {
      value = lookup_html5 (in + j, x);
      if (value) {
        ib_ustr_append_utf8 (out, value);
        ib_ustr_append_n (out, in + j + x, total - x);
        return 1 + total;
      }
    }
    ib_ustr_append (out, '&');
    ib_ustr_append_n (out, in + j, total);
    return 1 + total;
  }
}

void
ib_text_html_unescape (const gunichar *in, gsize n, IbUStr *out)
{
  gsize i = 0;

  if (!memchr_unichar (in, n, '&')) {
    ib_ustr_append_n (out, in, n);
    return;
  }

  while (i < n) {
    gsize used = 0;

    if (in[i] == '&')
      used = unescape_one (in, n, i, out);
    if (used) {
      i += used;
    } else {
      ib_ustr_append (out, in[i]);
      i++;
    }
  }
}

static gboolean
is_ascii_alnum (gunichar c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ftfy's unescape_html: &#?[0-9A-Za-z]{1,24}; only. TRUE if anything changed. */
static gboolean
ftfy_unescape_html (const IbUStr *in, IbUStr *out)
{
  gboolean changed = FALSE;
  gsize i = 0;

  out->len = 0;
  while (i < in->len) {
    gsize j = i + 1, k;
    const char *value = NULL;
    gboolean numeric;

    if (in->data[i] != '&') {
      ib_ustr_append (out, in->data[i++]);
      continue;
    }
    numeric = j < in->len && in->data[j] == '#';
    if (numeric)
      j++;
    for (k = j; k < in->len && k - j < 25 && is_ascii_alnum (in->data[k]); k++)
      ;
    if (k == j || k - j > 24 || k >= in->len || in->data[k] != ';') {
      ib_ustr_append (out, in->data[i++]);
      continue;
    }
    /* in[i..k] is "&#?name;" */
    if (!numeric) {
      char name[32];
      gsize m = 0;
      for (gsize q = j; q <= k; q++)
        name[m++] = in->data[q];
      name[m] = '\0';
      value = lookup_entity (ib_html5_entities, ib_html5_entities_count, name);
      if (!value)
        value = lookup_entity (ib_ftfy_upper_entities, ib_ftfy_upper_entities_count, name);
      if (value) {
        ib_ustr_append_utf8 (out, value);
        changed = TRUE;
      } else {
        ib_ustr_append_n (out, in->data + i, k + 1 - i);
      }
    } else {
      /* html.unescape of the reference alone; kept unless it consumed the ';'. */
      gsize mark = out->len;
      gboolean has_semicolon = FALSE;
      ib_text_html_unescape (in->data + i, k + 1 - i, out);
      for (gsize q = mark; q < out->len; q++)
        has_semicolon |= out->data[q] == ';';
      if (has_semicolon) {
        out->len = mark;
        ib_ustr_append_n (out, in->data + i, k + 1 - i);
      } else {
        changed = TRUE;
      }
    }
    i = k + 1;
  }
  return changed;
}

/* ---- the character-level fixers ---- */

static const char *
latin_ligature (gunichar c)
{
  switch (c) {
    case 0x0132: return "IJ";
    case 0x0133: return "ij";
    case 0x0149: return "\xca\xbcn";   /* ʼn */
    case 0x01F1: return "DZ";
    case 0x01F2: return "Dz";
    case 0x01F3: return "dz";
    case 0x01C4: return "D\xc5\xbd";   /* DŽ */
    case 0x01C5: return "D\xc5\xbe";   /* Dž */
    case 0x01C6: return "d\xc5\xbe";   /* dž */
    case 0x01C7: return "LJ";
    case 0x01C8: return "Lj";
    case 0x01C9: return "lj";
    case 0x01CA: return "NJ";
    case 0x01CB: return "Nj";
    case 0x01CC: return "nj";
    case 0xFB00: return "ff";
    case 0xFB01: return "fi";
    case 0xFB02: return "fl";
    case 0xFB03: return "ffi";
    case 0xFB04: return "ffl";
    case 0xFB05: return "\xc5\xbft";  /* ſt */
    case 0xFB06: return "st";
    default: return NULL;
  }
}

static gboolean
is_removed_control (gunichar c)
{
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F
      || (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

/* Appends the standard-width form of a U+FF01-U+FFEF character (its NFKC form, when that
 * differs), or the character itself. */
static void
append_width_fixed (IbUStr *out, gunichar c)
{
  char utf8[8], *norm;
  gint n = g_unichar_to_utf8 (c, utf8);

  norm = g_utf8_normalize (utf8, n, G_NORMALIZE_NFKC);
  if (norm && *norm)
    ib_ustr_append_utf8 (out, norm);
  else
    ib_ustr_append (out, c);
  g_free (norm);
}

/* fix_latin_ligatures, fix_character_width, uncurl_quotes, fix_line_breaks,
 * remove_terminal_escapes and remove_control_chars, in ftfy's order. Each is a pure
 * character mapping except the last three, which only ever drop or merge characters that
 * the earlier ones never produce, so running them as successive passes is exact. */
static void
fix_characters (IbUStr *s, IbUStr *tmp)
{
  /* ligatures and width */
  tmp->len = 0;
  for (gsize i = 0; i < s->len; i++) {
    gunichar c = s->data[i];
    const char *lig = latin_ligature (c);
    if (lig)
      ib_ustr_append_utf8 (tmp, lig);
    else if (c == 0x3000)
      ib_ustr_append (tmp, ' ');
    else if (c >= 0xFF01 && c < 0xFFF0)
      append_width_fixed (tmp, c);
    else
      ib_ustr_append (tmp, c);
  }
  ustr_swap (s, tmp);

  /* quotes and line breaks */
  tmp->len = 0;
  for (gsize i = 0; i < s->len; i++) {
    gunichar c = s->data[i];
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B))
      ib_ustr_append (tmp, '\'');
    else if (c >= 0x201C && c <= 0x201F)
      ib_ustr_append (tmp, '"');
    else if (c == '\r') {
      ib_ustr_append (tmp, '\n');
      if (i + 1 < s->len && s->data[i + 1] == '\n')
        i++;
    } else if (c == 0x2028 || c == 0x2029 || c == 0x85)
      ib_ustr_append (tmp, '\n');
    else
      ib_ustr_append (tmp, c);
  }
  ustr_swap (s, tmp);

  /* terminal escapes: ESC [ [0-9;]* [A-Za-z] */
  tmp->len = 0;
  for (gsize i = 0; i < s->len; i++) {
    if (s->data[i] == 0x1B && i + 1 < s->len && s->data[i + 1] == '[') {
      gsize j = i + 2;
      /* Python's \d: any decimal digit (Nd), not only ASCII */
      while (j < s->len && (g_unichar_isdigit (s->data[j]) || s->data[j] == ';'))
        j++;
      if (j < s->len && s->data[j] < 0x80 && g_ascii_isalpha (s->data[j])) {
        i = j;
        continue;
      }
    }
    ib_ustr_append (tmp, s->data[i]);
  }
  ustr_swap (s, tmp);

  /* control characters */
  {
    gsize o = 0;
    for (gsize i = 0; i < s->len; i++)
      if (!is_removed_control (s->data[i]))
        s->data[o++] = s->data[i];
    s->len = o;
  }
}

static void
normalize_nfc (IbUStr *s, IbUStr *tmp)
{
  gboolean below_combining = TRUE;
  char *utf8, *norm;

  /* Text made only of code points below U+0300 is already in NFC. */
  for (gsize i = 0; i < s->len && below_combining; i++)
    below_combining = s->data[i] < 0x300;
  if (below_combining)
    return;
  utf8 = ib_ustr_to_utf8 (s->data, s->len);
  norm = g_utf8_normalize (utf8, -1, G_NORMALIZE_NFC);
  if (norm) {
    tmp->len = 0;
    ib_ustr_append_utf8 (tmp, norm);
    ustr_swap (s, tmp);
  }
  g_free (norm);
  g_free (utf8);
}

/* TRUE when no fixer can change @seg: printable ASCII, tabs and newlines only, and no "&"
 * that could start an entity. */
static gboolean
segment_is_plain (const IbUStr *seg, gboolean unescape_html)
{
  for (gsize i = 0; i < seg->len; i++) {
    gunichar c = seg->data[i];
    if ((c < 0x20 && c != '\t' && c != '\n') || c > 0x7E || (c == '&' && unescape_html))
      return FALSE;
  }
  return TRUE;
}

/* ftfy's fix_and_explain for one segment (without explanations). */
static void
fix_segment (IbUStr *seg, gboolean unescape_html)
{
  IbUStr orig, tmp;

  if (segment_is_plain (seg, unescape_html))
    return;

  ib_ustr_init (&orig, seg->len);
  ib_ustr_init (&tmp, seg->len);
  for (int round = 0; round < FTFY_MAX_ROUNDS; round++) {
    orig.len = 0;
    ib_ustr_append_n (&orig, seg->data, seg->len);

    if (unescape_html && ftfy_unescape_html (seg, &tmp))
      ustr_swap (seg, &tmp);
    fix_encoding (seg);
    fix_c1_controls (seg);
    fix_characters (seg, &tmp);
    normalize_nfc (seg, &tmp);

    if (ustr_equal (seg, &orig))
      break;
  }
  ib_ustr_clear (&orig);
  ib_ustr_clear (&tmp);
}

void
ib_ftfy_begin (IbFtfyState *state, const IbUStr *in)
{
  state->in = in;
  state->pos = 0;
  state->unescape_html = TRUE;
}

gboolean
ib_ftfy_next_segment (IbFtfyState *state, IbUStr *out)
{
  const IbUStr *in = state->in;
  gsize pos = state->pos, end = pos;
  IbUStr seg;

  if (pos >= in->len)
    return FALSE;
  while (end < in->len && end - pos < FTFY_MAX_SEGMENT && in->data[end] != '\n')
    end++;
  if (end < in->len && end - pos < FTFY_MAX_SEGMENT)
    end++;   /* the "\n" belongs to its segment */

  ib_ustr_init (&seg, end - pos);
  ib_ustr_append_n (&seg, in->data + pos, end - pos);
  for (gsize i = 0; i < seg.len && state->unescape_html; i++)
    if (seg.data[i] == '<')
      state->unescape_html = FALSE;
  fix_segment (&seg, state->unescape_html);
  ib_ustr_append_n (out, seg.data, seg.len);
  ib_ustr_clear (&seg);
  state->pos = end;
  return TRUE;
}

void
ib_text_ftfy (const IbUStr *in, IbUStr *out)
{
  IbFtfyState state;

  ib_ftfy_begin (&state, in);
  while (ib_ftfy_next_segment (&state, out))
    ;
}

/* ---- whitespace and case ---- */

gboolean
ib_unichar_is_regex_space (gunichar c)
{
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680
      || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F
      || c == 0x205F || c == 0x3000;
}

/* str.isspace(): White_Space plus the information separators U+001C-U+001F. */
static gboolean
is_python_space (gunichar c)
{
  return ib_unichar_is_regex_space (c) || (c >= 0x1C && c <= 0x1F);
}

static void
append_stripped (IbUStr *out, const gunichar *c, gsize n)
{
  gsize a = 0, b = n;

  while (a < b && is_python_space (c[a]))
    a++;
  while (b > a && is_python_space (c[b - 1]))
    b--;
  ib_ustr_append_n (out, c + a, b - a);
}

/* html.unescape twice, then str.strip(). */
static void
unescape_twice_strip (const gunichar *in, gsize n, IbUStr *out)
{
  IbUStr a, b;

  ib_ustr_init (&a, n);
  ib_ustr_init (&b, n);
  ib_text_html_unescape (in, n, &a);
  ib_text_html_unescape (a.data, a.len, &b);
  append_stripped (out, b.data, b.len);
  ib_ustr_clear (&a);
  ib_ustr_clear (&b);
}

void
ib_text_basic_clean (const IbUStr *in, IbUStr *out)
{
  IbUStr fixed;

  ib_ustr_init (&fixed, in->len);
  ib_text_ftfy (in, &fixed);
  unescape_twice_strip (fixed.data, fixed.len, out);
  ib_ustr_clear (&fixed);
}

/* Unicode's Cased property: Lu, Ll, Lt, plus Other_Lowercase / Other_Uppercase. */
static gboolean
is_cased (gunichar c)
{
  GUnicodeType t = g_unichar_type (c);
  if (t == G_UNICODE_UPPERCASE_LETTER || t == G_UNICODE_LOWERCASE_LETTER
      || t == G_UNICODE_TITLECASE_LETTER)
    return TRUE;
  return c == 0xAA || c == 0xBA || (c >= 0x2B0 && c <= 0x2B8) || c == 0x2C0 || c == 0x2C1
      || (c >= 0x2E0 && c <= 0x2E4) || c == 0x345 || c == 0x37A
      || (c >= 0x1D2C && c <= 0x1D6A) || c == 0x1D78 || (c >= 0x1D9B && c <= 0x1DBF)
      || c == 0x2071 || c == 0x207F || (c >= 0x2090 && c <= 0x209C)
      || (c >= 0x2160 && c <= 0x217F) || (c >= 0x24B6 && c <= 0x24E9)
      || c == 0x2C7C || c == 0x2C7D || c == 0xA69C || c == 0xA69D || c == 0xA770
      || c == 0xA7F8 || c == 0xA7F9 || (c >= 0xAB5C && c <= 0xAB5F)
      || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169)
      || (c >= 0x1F170 && c <= 0x1F189);
}

/* str.lower() of one character other than U+0130 and U+03A3. GLib maps only letters; Python
 * also lower-cases the Roman numerals (Nl) and the circled Latin capitals (So). */
static gunichar
lower_char (gunichar c)
{
  if (c < 0x80)
    return g_ascii_tolower (c);
  if (c >= 0x2160 && c <= 0x216F)
    return c + 0x10;
  if (c >= 0x24B6 && c <= 0x24CF)
    return c + 26;
  return g_unichar_tolower (c);
}

static gboolean
is_case_ignorable (gunichar c)
{
  switch (g_unichar_type (c)) {
    case G_UNICODE_NON_SPACING_MARK:
    case G_UNICODE_ENCLOSING_MARK:
    case G_UNICODE_FORMAT:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_MODIFIER_SYMBOL:
      return TRUE;
    default:
      break;
  }
  /* Word_Break MidLetter / MidNumLet / Single_Quote */
  switch (c) {
    case '\'': case '.': case ':': case 0xB7: case 0x387: case 0x55F: case 0x5F4:
    case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52:
    case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
      return TRUE;
    default:
      return FALSE;
  }
}

/* Python's choice between σ and ς for U+03A3 at position @i. */
static gunichar
lower_sigma (const gunichar *c, gsize n, gsize i)
{
  gsize j = i;
  gboolean final = FALSE;

  while (j > 0 && is_case_ignorable (c[j - 1]))
    j--;
  if (j > 0 && is_cased (c[j - 1])) {
    gsize k = i + 1;
    while (k < n && is_case_ignorable (c[k]))
      k++;
    final = k == n || !is_cased (c[k]);
  }
  return final ? 0x3C2 : 0x3C3;
}

void
ib_text_whitespace_lower (const IbUStr *in, IbUStr *out)
{
  IbUStr folded;
  gsize i = 0;

  /* re.sub(r'\s+', ' ', text).strip() */
  ib_ustr_init (&folded, in->len);
  while (i < in->len) {
    if (ib_unichar_is_regex_space (in->data[i])) {
      while (i < in->len && ib_unichar_is_regex_space (in->data[i]))
        i++;
      ib_ustr_append (&folded, ' ');
    } else {
      ib_ustr_append (&folded, in->data[i++]);
    }
  }

  {
    IbUStr stripped;
    ib_ustr_init (&stripped, folded.len);
    append_stripped (&stripped, folded.data, folded.len);
    ustr_swap (&folded, &stripped);
    ib_ustr_clear (&stripped);
  }

  /* str.lower() */
  ustr_reserve (out, folded.len);
  for (i = 0; i < folded.len; i++) {
    gunichar c = folded.data[i];
    if (c == 0x130) {
      ib_ustr_append (out, 'i');
      ib_ustr_append (out, 0x307);
    } else if (c == 0x3A3)
      ib_ustr_append (out, lower_sigma (folded.data, folded.len, i));
    else
      ib_ustr_append (out, lower_char (c));
  }
  ib_ustr_clear (&folded);
}

void
ib_text_clean_after_ftfy (const gunichar *fixed, gsize n, IbUStr *out)
{
  IbUStr basic;

  ib_ustr_init (&basic, n);
  unescape_twice_strip (fixed, n, &basic);
  ib_text_whitespace_lower (&basic, out);
  ib_ustr_clear (&basic);
}

void
ib_text_clean (const IbUStr *in, IbUStr *out)
{
  IbUStr fixed;

  ib_ustr_init (&fixed, in->len);
  ib_text_ftfy (in, &fixed);
  ib_text_clean_after_ftfy (fixed.data, fixed.len, out);
  ib_ustr_clear (&fixed);
}

gboolean
ib_text_is_cut_space (gunichar c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\f';
}
