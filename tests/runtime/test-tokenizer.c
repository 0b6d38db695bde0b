/* The CLIP BPE tokenizer against the official fixtures (ids, and every intermediate stage of
 * text_details.json), plus edge cases: invalid UTF-8, embedded NUL, whitespace or emoji
 * only, a 10 MB input, special tokens, small vocabularies, Python-specific cleaning rules. */

#include <string.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "common.h"
#include "imagebind.h"
#include "tokenizer-internal.h"

#define CONTEXT 77

static ImageBindTokenizer *official;

/* The official tokenizer (48,894 merges of the fixture vocabulary), or NULL after skipping. */
static const ImageBindTokenizer *
get_official (void)
{
  if (!official && ib_test_need_conformance ()) {
    g_autofree char *path = ib_test_fixture ("preprocess/bpe_simple_vocab_16e6.txt.gz");
    g_autoptr (GError) err = NULL;
    official = imagebind_tokenizer_new_from_file (path, 48894, &err);
    g_assert_no_error (err);
  }
  return official;
}

static JsonArray *
load_json_array (const char *relative, JsonParser **parser)
{
  g_autofree char *path = ib_test_fixture (relative);
  g_autoptr (GError) err = NULL;

  *parser = json_parser_new ();
  json_parser_load_from_file (*parser, path, &err);
  g_assert_no_error (err);
  return json_node_get_array (json_parser_get_root (*parser));
}

static char *
clean_stage (void (*stage) (const IbUStr *, IbUStr *), const char *text)
{
  IbUStr in, out;
  char *utf8;

  ib_ustr_init (&in, 16);
  ib_ustr_init (&out, 16);
  g_assert_true (ib_utf8_decode (text, strlen (text), &in, NULL));
  stage (&in, &out);
  utf8 = ib_ustr_to_utf8 (out.data, out.len);
  ib_ustr_clear (&in);
  ib_ustr_clear (&out);
  return utf8;
}

static void
test_vocabulary (void)
{
  const ImageBindTokenizer *tok = get_official ();

  if (!tok)
    return;
  g_assert_cmpuint (imagebind_tokenizer_vocab_size (tok), ==, 49408);
  g_assert_cmpint (imagebind_tokenizer_sot (tok), ==, 49406);
  g_assert_cmpint (imagebind_tokenizer_eot (tok), ==, 49407);
  /* Byte table order: "!" is id 0, "~" 93, "¡" 94, U+0100 (byte 0) 188, and " " (byte 32,
   * U+0120) 220; "</w>" forms follow at 256. */
  g_assert_cmpstr (ib_tokenizer_id_to_string (tok, 0), ==, "!");
  g_assert_cmpstr (ib_tokenizer_id_to_string (tok, 93), ==, "~");
  g_assert_cmpstr (ib_tokenizer_id_to_string (tok, 94), ==, "\u00a1");
  g_assert_cmpstr (ib_tokenizer_id_to_string (tok, 188), ==, "\u0100");
  g_assert_cmpstr (ib_tokenizer_id_to_string (tok, 220), ==, "\u0120");
  g_assert_cmpstr (ib_tokenizer_id_to_string (tok, 256 + 64), ==, "a</w>");
  g_assert_cmpstr (ib_tokenizer_id_to_string (tok, 512), ==, "in");       /* first merge "i n" */
  g_assert_cmpstr (ib_tokenizer_id_to_string (tok, 49405), ==, "jekyll</w>");
  g_assert_cmpstr (ib_tokenizer_id_to_string (tok, 49407), ==, "<|endoftext|>");
  g_assert_null (ib_tokenizer_id_to_string (tok, 49408));
}

/* Every string of text_strings.json gives exactly the 77 official ids. */
static void
test_fixture_ids (void)
{
  const ImageBindTokenizer *tok = get_official ();
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (IbNpy) ref = NULL;
  JsonArray *strings;

  if (!tok)
    return;
  strings = load_json_array ("preprocess/text_strings.json", &parser);
  ref = ib_test_load_npy ("preprocess/text_tokens.npy");
  g_assert_cmpint (ref->dtype, ==, IB_NPY_I64);
  g_assert_cmpint (ref->shape[0], ==, json_array_get_length (strings));
  g_assert_cmpint (ref->shape[1], ==, CONTEXT);

  for (guint s = 0; s < json_array_get_length (strings); s++) {
    JsonObject *o = json_array_get_object_element (strings, s);
    const char *text = json_object_get_string_member (o, "text");
    guint row = json_object_get_int_member (o, "id");
    const gint64 *want = (const gint64 *) ref->data + row * CONTEXT;
    gint32 ids[CONTEXT];
    g_autoptr (GError) err = NULL;
    guint mismatches = 0;

    g_assert_true (imagebind_tokenize (tok, text, -1, ids, CONTEXT, &err));
    g_assert_no_error (err);
    for (guint i = 0; i < CONTEXT; i++)
      if (ids[i] != want[i]) {
        if (mismatches++ == 0)
          g_test_message ("%s: id %u is %d, official %" G_GINT64_FORMAT,
              json_object_get_string_member (o, "category"), i, ids[i], want[i]);
      }
    g_assert_cmpuint (mismatches, ==, 0);
  }
}

/* after_ftfy, after_basic_clean, after_whitespace_clean_lower, regex_pieces, bpe, ids. */
static void
test_fixture_stages (void)
{
  const ImageBindTokenizer *tok = get_official ();
  g_autoptr (JsonParser) parser = NULL;
  JsonArray *details;

  if (!tok)
    return;
  details = load_json_array ("preprocess/text_details.json", &parser);
  g_assert_cmpuint (json_array_get_length (details), ==, 14);

  for (guint s = 0; s < json_array_get_length (details); s++) {
    JsonObject *o = json_array_get_object_element (details, s);
    const char *text = json_object_get_string_member (o, "text");
    const char *category = json_object_get_string_member (o, "category");
    JsonArray *want_pieces = json_object_get_array_member (o, "regex_pieces");
    JsonArray *want_bpe = json_object_get_array_member (o, "bpe");
    JsonArray *want_ids = json_object_get_array_member (o, "ids_without_sot_eot");
    g_autofree char *ftfy = clean_stage (ib_text_ftfy, text);
    g_autofree char *basic = clean_stage (ib_text_basic_clean, text);
    g_autofree char *clean = imagebind_tokenizer_clean (text, -1);
    g_autoptr (GPtrArray) pieces = NULL;
    g_autoptr (GArray) all_ids = NULL;
    guint n_ids = 0;

    g_test_message ("stages of %s", category);
    g_assert_cmpstr (ftfy, ==, json_object_get_string_member (o, "after_ftfy"));
    g_assert_cmpstr (basic, ==, json_object_get_string_member (o, "after_basic_clean"));
    g_assert_cmpstr (clean, ==, json_object_get_string_member (o, "after_whitespace_clean_lower"));

    pieces = ib_tokenizer_split (clean);
    g_assert_cmpuint (pieces->len, ==, json_array_get_length (want_pieces));
    g_assert_cmpuint (pieces->len, ==, json_array_get_length (want_bpe));
    for (guint p = 0; p < pieces->len; p++) {
      g_autoptr (GArray) ids = ib_tokenizer_encode_all (tok, pieces->pdata[p]);
      g_autoptr (GString) joined = g_string_new (NULL);

      g_assert_cmpstr (pieces->pdata[p], ==, json_array_get_string_element (want_pieces, p));
      for (guint k = 0; k < ids->len; k++) {
        gint32 id = g_array_index (ids, gint32, k);
        g_string_append_printf (joined, "%s%s", k ? " " : "", ib_tokenizer_id_to_string (tok, id));
        g_assert_cmpuint (n_ids, <, json_array_get_length (want_ids));
        g_assert_cmpint (id, ==, json_array_get_int_element (want_ids, n_ids));
        n_ids++;
      }
      g_assert_cmpstr (joined->str, ==, json_array_get_string_element (want_bpe, p));
    }
    g_assert_cmpuint (n_ids, ==, json_array_get_length (want_ids));

    all_ids = ib_tokenizer_encode_all (tok, clean);
    g_assert_cmpuint (all_ids->len, ==, json_object_get_int_member (o, "n_ids"));
  }
}

static guint
count_nonzero (const gint32 *ids)
{
  guint n = 0;
  for (guint i = 0; i < CONTEXT; i++)
    n += ids[i] != 0;
  return n;
}

static void
test_invalid_utf8 (void)
{
  const ImageBindTokenizer *tok = get_official ();
  static const char *const bad[] = {
    "abc\xff", "caf\xc3", "\xc0\xaf", "ok \xed\xa0\x80 surrogate", "\xf4\x90\x80\x80", "\x80",
  };
  static const gsize offsets[] = { 3, 3, 0, 3, 0, 0 };
  gint32 ids[CONTEXT];

  if (!tok)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GError) err = NULL;
    g_autofree char *where = g_strdup_printf ("offset %" G_GSIZE_FORMAT, offsets[i]);

    g_assert_false (imagebind_tokenize (tok, bad[i], -1, ids, CONTEXT, &err));
    g_assert_error (err, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT);
    g_assert_nonnull (strstr (err->message, where));
    g_assert_null (imagebind_tokenizer_clean (bad[i], -1));
  }
}

static void
test_embedded_nul (void)
{
  const ImageBindTokenizer *tok = get_official ();
  gint32 with_nul[CONTEXT], without[CONTEXT], cut[CONTEXT];
  g_autoptr (GError) err = NULL;

  if (!tok)
    return;
  /* ftfy removes U+0000, so "a\0dog" reads as "adog" (not "a" at the NUL). */
  g_assert_true (imagebind_tokenize (tok, "a\0dog", 5, with_nul, CONTEXT, &err));
  g_assert_true (imagebind_tokenize (tok, "adog", -1, without, CONTEXT, &err));
  g_assert_true (imagebind_tokenize (tok, "a", -1, cut, CONTEXT, &err));
  g_assert_no_error (err);
  g_assert_cmpmem (with_nul, sizeof with_nul, without, sizeof without);
  g_assert_cmpint (memcmp (with_nul, cut, sizeof cut), !=, 0);
}

static void
assert_empty_sequence (const ImageBindTokenizer *tok, const char *text)
{
  gint32 ids[CONTEXT];
  g_autoptr (GError) err = NULL;

  g_assert_true (imagebind_tokenize (tok, text, -1, ids, CONTEXT, &err));
  g_assert_no_error (err);
  g_assert_cmpint (ids[0], ==, 49406);
  g_assert_cmpint (ids[1], ==, 49407);
  g_assert_cmpuint (count_nonzero (ids), ==, 2);
}

static void
test_empty_and_whitespace (void)
{
  const ImageBindTokenizer *tok = get_official ();

  if (!tok)
    return;
  assert_empty_sequence (tok, "");
  assert_empty_sequence (tok, " \t\r\n\v\f\u00a0\u3000\u2028\u2029\u202f\u205f\u1680");
  /* ftfy drops control characters and the BOM; what is left is whitespace */
  assert_empty_sequence (tok, "\x01\x02\x1b\ufeff \x7f");
  /* NULL text with an explicit length of 0 is the empty string */
  {
    gint32 ids[CONTEXT];
    g_assert_true (imagebind_tokenize (tok, NULL, 0, ids, CONTEXT, NULL));
    g_assert_cmpint (ids[1], ==, 49407);
  }
}

static void
test_emoji_only (void)
{
  const ImageBindTokenizer *tok = get_official ();
  gint32 ids[CONTEXT];
  g_autoptr (GError) err = NULL;
  /* From the emoji fixture: "🍕🍕" is one piece, BPE'd to 31469 23904. */
  static const gint32 want[] = { 49406, 31469, 23904, 49407 };

  if (!tok)
    return;
  g_assert_true (imagebind_tokenize (tok, "\U0001F355\U0001F355", -1, ids, CONTEXT, &err));
  g_assert_no_error (err);
  g_assert_cmpmem (ids, sizeof want, want, sizeof want);
  g_assert_cmpuint (count_nonzero (ids), ==, 4);
}

static void
test_special_tokens (void)
{
  const ImageBindTokenizer *tok = get_official ();
  gint32 ids[CONTEXT];

  if (!tok)
    return;
  /* Matched after lower-casing, so the upper-case spelling is special too. */
  g_assert_true (imagebind_tokenize (tok, "x <|STARTOFTEXT|> <|endoftext|>", -1, ids, CONTEXT, NULL));
  g_assert_cmpint (ids[2], ==, 49406);
  g_assert_cmpint (ids[3], ==, 49407);
  g_assert_cmpint (ids[4], ==, 49407);
  /* "<|ſtartoftext|>" is one piece under IGNORECASE, but BPE'd as text: the official code
   * maps only the exact spelling (its BPE cache) to the special id. */
  g_assert_true (imagebind_tokenize (tok, "<|\u017ftartoftext|>", -1, ids, CONTEXT, NULL));
  g_assert_cmpuint (count_nonzero (ids), >, 3);
  for (guint i = 1; ids[i + 1] != 0; i++)
    g_assert_cmpint (ids[i], <, 49406);
  /* Glued to other punctuation it is not one (the symbol run swallows "<|"). */
  g_assert_true (imagebind_tokenize (tok, ")<|endoftext|>", -1, ids, CONTEXT, NULL));
  for (guint i = 1; ids[i] != 49407 || ids[i + 1] != 0; i++)
    g_assert_cmpint (ids[i], <, 49406);
}

/* Truncation: [SOT] + ids cut to context_length - 1 entries, then EOT. */
static void
test_truncation (void)
{
  const ImageBindTokenizer *tok = get_official ();
  g_autoptr (GString) text = g_string_new (NULL);
  gint32 ids[CONTEXT], small[5];
  g_autoptr (GError) err = NULL;

  if (!tok)
    return;
  for (guint i = 0; i < 200; i++)
    g_string_append (text, "dog ");
  g_assert_true (imagebind_tokenize (tok, text->str, -1, ids, CONTEXT, &err));
  g_assert_no_error (err);
  g_assert_cmpint (ids[0], ==, 49406);
  for (guint i = 1; i < 76; i++)
    g_assert_cmpint (ids[i], ==, 1929);   /* "dog</w>" */
  g_assert_cmpint (ids[76], ==, 49407);

  /* other context lengths */
  g_assert_true (imagebind_tokenize (tok, text->str, -1, small, 5, &err));
  g_assert_cmpint (small[0], ==, 49406);
  g_assert_cmpint (small[3], ==, 1929);
  g_assert_cmpint (small[4], ==, 49407);
  g_assert_true (imagebind_tokenize (tok, text->str, -1, small, 2, &err));
  g_assert_cmpint (small[1], ==, 49407);
  g_assert_false (imagebind_tokenize (tok, text->str, -1, small, 1, &err));
  g_assert_error (err, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT);
}

/* Numbers are single-digit pieces, contractions only with the ASCII apostrophe. */
static void
test_split_rules (void)
{
  static const struct { const char *text; const char *pieces; } cases[] = {
    { "2024", "2|0|2|4" },
    { "\u0663\u0664 \u2167", "\u0663|\u0664|\u2167" },          /* Arabic-Indic digits, Ⅷ */
    { "it's they're we've i'm you'll he'd don't", "it|'s|they|'re|we|'ve|i|'m|you|'ll|he|'d|don|'t" },
    { "it\u2019s", "it|\u2019|s" },                          /* no contraction */
    { "'''s ''", "'''|s|''" },
    { "x'\u017f", "x|'\u017f" },                              /* IGNORECASE: ſ matches s */
    { "a\u0345b", "a|b" },                                     /* regex-module quirk */
    { "hello,world!!", "hello|,|world|!!" },
    { "caf\u00e9\u0301x", "caf\u00e9|\u0301|x" },              /* a mark is neither L nor N */
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (GPtrArray) pieces = ib_tokenizer_split (cases[i].text);
    g_autoptr (GString) joined = g_string_new (NULL);
    for (guint p = 0; p < pieces->len; p++)
      g_string_append_printf (joined, "%s%s", p ? "|" : "", (char *) pieces->pdata[p]);
    g_assert_cmpstr (joined->str, ==, cases[i].pieces);
  }
}

/* Cleaning rules that differ from a naive implementation (expected values from Python 3.11
 * html.unescape / str.lower and ftfy 6.3.1). */
static void
test_clean_rules (void)
{
  static const struct { const char *in; const char *out; } cases[] = {
    /* HTML: ftfy only decodes entities with ';', the stdlib also legacy ones without */
    { "&eacute &eacute; &amp &notit; &eacutex &#233 &#x41; &#0; &#128; &#x110000; &#1;",
      "\u00e9 \u00e9 & \u00acit; \u00e9x \u00e9 a \ufffd \u20ac \ufffd" },
    { "P&EACUTE;REZ &SZLIG;", "p\u00e9rez ss" },                  /* ftfy's all-caps entities */
    { "&amp;amp;amp;amp;", "&" },                                  /* ftfy loops, then 2 more */
    { "<i>&amp;amp;amp;amp;</i>", "<i>&amp;amp;</i>" },                /* "<": ftfy does not unescape */
    { "a &lt;b&gt;\n&amp;amp;", "a <b> &" },                        /* "<" made by unescaping */
    { "x<y\n&amp;amp;amp;", "x<y &amp;" },                          /* off for later lines too */
    /* mojibake and C1 controls */
    { "caf\u00c3\u00a9 \u00e2\xc2\x80\xc2\x99", "caf\u00e9 '" },        /* Latin-1 reading, then uncurled */
    { "na\u00efve caf\u00c3\u00a9", "na\u00efve caf\u00e9" },       /* embedded mojibake */
    { "\u00f0\u0178\u02dc\u20ac", "\U0001F600" },                   /* Windows-1252 reading */
    { "price \xc2\x80 5", "price \u20ac 5" },
    /* (expected values computed with ftfy 6.3.1) */
    { "voil\u00c3 le travail", "voil\u00e0 le travail" },         /* restore_byte_a0 */
    { "\u00e2\u20ac\u00a6 and \u00f0\u0178\u2018 ", "\u2026 and \U0001F460" },
    { "\u0420\u0457\u0421\u0402\u0420\u0451\u0420\u0406\u0420\u00b5\u0421\u201a "
      "\u00d0\u00bf\u00d1\u20ac\u00d0\u00b8\u00d0\u00b2\u00d0\u00b5\u00d1\u201a",
      "\u043f\u0440\u0438\u0432\u0435\u0442 \u043f\u0440\u0438\u0432\u0435\u0442" },  /* 1251, 1252 */
    { "\u00c3\u0192\u00c2\u00a9t\u00c3\u0192\u00c2\u00a9", "\u00e9t\u00e9" },   /* twice */
    { "the \u00c3\u00a2\u00e2\u201a\u00ac\u00c5\u201cdouble mojibake\u00c3\u00a2\u00e2\u201a\u00ac\u00c2\xc2\x9d",
      "the \"double mojibake\"" },
    { "\xef\xac\x82\u00c9", "\u07c3" },                         /* MacRoman: ﬂÉ -> DF 83 */
    { "caf\u00c3? ok", "caf\u00e3? ok" },                          /* not bad enough */
    { "\u00ed\u00a0\u00bd\u00ed\u00b8\xc2\x80 ok", "\U0001F600 ok" },      /* CESU-8 */
    { "x\u00c3\xc2\x80\u00c2\xc2\x80 y", "x y" },                      /* C0 80: NUL */
    /* ligatures, widths, quotes, breaks, escapes, controls, NFC */
    { "\ufb03 \uff21\uff42\uff43\uff01 \uff76\u3000x", "ffi abc! \u30ab x" },
    { "\u201cq\u201d \u2018s\u2019 \u02bcx", "\"q\" 's' 'x" },
    { "\x1b[31mred\x1b[0m\u2028next", "red next" },
    { "a\x1b[\u0663;1mb", "ab" },                                 /* \d is any Nd digit */
    { "e\u0301 \u212b", "\u00e9 \u00e5" },                           /* NFC (Å -> å) */
    { "zero\u200bwidth", "zero\u200bwidth" },                       /* U+200B stays */
    /* lower-casing as str.lower(), which also maps Roman numerals and circled letters */
    { "\u216b \u24b6 \u1fbc \u01c5", "\u217b \u24d0 \u1fb3 d\u017e" },   /* ǅ: ftfy ligature */
    { "\u0130STANBUL \u03a3\u039f\u03a3 \u03a3 A\u03a3.", "i\u0307stanbul \u03c3\u03bf\u03c2 \u03c3 a\u03c2." },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *got = imagebind_tokenizer_clean (cases[i].in, -1);
    g_assert_cmpstr (got, ==, cases[i].out);
  }
}

/* Our mojibake detector (text-clean.c), which is not ftfy's heuristic: repairs that need its
 * tie rules or its context clues, and good text in which single-byte code pages see UTF-8
 * sequences but that must stay as it is. Expected values: our documented behaviour. ftfy
 * 6.3.1 agrees on all but two: it leaves "kataloÄŸunu" and the Windows-1251 mojibake of
 * Latin text ("CrГЁme") as they are. */
static void
test_mojibake_detector (void)
{
  static const struct { const char *in; const char *out; } cases[] = {
    /* repaired */
    /* Ãœber alles, StraÃŸe => über alles, straße: single Windows-1252 sequences: Latin letters in Latin text (a tie) */
    { "\u00c3\u0153ber alles, Stra\u00c3\u0178e",
      "\u00fcber alles, stra\u00dfe" },
    /* Caption: Ð¿Ñ€Ð¸Ð²ÐµÑ‚ world => caption: привет world: Cyrillic read as Windows-1252 in English text */
    { "Caption: \u00d0\u00bf\u00d1\u20ac\u00d0\u00b8\u00d0\u00b2\u00d0\u00b5\u00d1\u201a world",
      "caption: \u043f\u0440\u0438\u0432\u0435\u0442 world" },
    /* æ–‡ä»¶ file 🍕 => 文件 file 🍕: two sequences in a row re-decode to one script */
    { "\u00e6\u2013\u2021\u00e4\u00bb\u00b6 file \U0001f355",
      "\u6587\u4ef6 file \U0001f355" },
    /* Bir Ã§eviri kataloÄŸunu 🍕 => bir çeviri kataloğunu 🍕: Turkish letters of Latin Extended-A */
    { "Bir \u00c3\u00a7eviri katalo\u00c4\u0178unu \U0001f355",
      "bir \u00e7eviri katalo\u011funu \U0001f355" },
    /* різні масштаби Ñƒ записах => різні масштаби у записах: Latin letters in Ukrainian text, "у" fits */
    { "\u0440\u0456\u0437\u043d\u0456 \u043c\u0430\u0441\u0448\u0442\u0430\u0431\u0438 \u00d1\u0192 \u0437\u0430\u043f\u0438\u0441\u0430\u0445",
      "\u0440\u0456\u0437\u043d\u0456 \u043c\u0430\u0441\u0448\u0442\u0430\u0431\u0438 \u0443 \u0437\u0430\u043f\u0438\u0441\u0430\u0445" },
    /* Î— ÏƒÏ<8D>Î½Î´ÎµÏƒÎ· Î­ÎºÎ»ÎµÎ¹ÏƒÎµ 🍕 => η σύνδεση έκλεισε 🍕: Greek, with an undefined Windows-1252 byte */
    { "\u00ce\u2014 \u00cf\u0192\u00cf\302\215\u00ce\u00bd\u00ce\u00b4\u00ce\u00b5\u00cf\u0192\u00ce\u00b7 \u00ce\u00ad\u00ce\u00ba\u00ce\u00bb\u00ce\u00b5\u00ce\u00b9\u00cf\u0192\u00ce\u00b5 \U0001f355",
      "\u03b7 \u03c3\u03cd\u03bd\u03b4\u03b5\u03c3\u03b7 \u03ad\u03ba\u03bb\u03b5\u03b9\u03c3\u03b5 \U0001f355" },
    /* CrГЁme brГ»lГ©e => crème brûlée: Latin text read as Windows-1251, the whole line */
    { "Cr\u0413\u0401me br\u0413\u00bbl\u0413\u00a9e",
      "cr\u00e8me br\u00fbl\u00e9e" },
    /* left alone */
    /* Сёмга и Её дом => сёмга и её дом: "Сё" is the UTF-8 of "Ѹ" in Windows-1251, "Её" of "Ÿ" */
    { "\u0421\u0451\u043c\u0433\u0430 \u0438 \u0415\u0451 \u0434\u043e\u043c",
      "\u0441\u0451\u043c\u0433\u0430 \u0438 \u0435\u0451 \u0434\u043e\u043c" },
    /* Рік 2024, Рівне => рік 2024, рівне: "Рі" is the UTF-8 of "г" */
    { "\u0420\u0456\u043a 2024, \u0420\u0456\u0432\u043d\u0435",
      "\u0440\u0456\u043a 2024, \u0440\u0456\u0432\u043d\u0435" },
    /* RÓŻA, WÓŁ => róża, wół: Windows-1250: "ӯ", "ӣ" */
    { "R\u00d3\u017bA, W\u00d3\u0141",
      "r\u00f3\u017ca, w\u00f3\u0142" },
    /* et puis…également, mot—élan => et puis…également, mot—élan: MacRoman: "ɏ"; "ю" */
    { "et puis\u2026\u00e9galement, mot\u2014\u00e9lan",
      "et puis\u2026\u00e9galement, mot\u2014\u00e9lan" },
    /* АСКРИ „Е“ означава, ФОРМАТ“ => аскри "е" означава, формат": "Е“" is "œ" in Windows-1251, "Т“" is "ғ" */
    { "\u0410\u0421\u041a\u0420\u0418 \u201e\u0415\u201c \u043e\u0437\u043d\u0430\u0447\u0430\u0432\u0430, \u0424\u041e\u0420\u041c\u0410\u0422\u201c",
      "\u0430\u0441\u043a\u0440\u0438 \042\u0435\042 \u043e\u0437\u043d\u0430\u0447\u0430\u0432\u0430, \u0444\u043e\u0440\u043c\u0430\u0442\042" },
    /* %.2f ГіБ пам'яті => %.2f гіб пам'яті: "Гі" is "ó" */
    { "%.2f \u0413\u0456\u0411 \u043f\u0430\u043c'\u044f\u0442\u0456",
      "%.2f \u0433\u0456\u0431 \u043f\u0430\u043c'\u044f\u0442\u0456" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *got = imagebind_tokenizer_clean (cases[i].in, -1);
    g_assert_cmpstr (got, ==, cases[i].out);
  }
}

static void
test_small_vocabulary (void)
{
  /* "a b" -> "ab", "ab c</w>" -> "abc</w>", "h i</w>" -> "hi</w>" */
  static const char *const merges[] = { "a b", "ab c</w>", "h i</w>", "x y", "q zz" };
  g_autoptr (GError) err = NULL;
  ImageBindTokenizer *tok = imagebind_tokenizer_new (merges, G_N_ELEMENTS (merges), &err);
  gint32 ids[8];
  static const gint32 want[] = { 517, 513, 514, 80 + 256, 518, 0, 0, 0 };
  /* "abc hi q" -> abc</w>=513, hi</w>=514, q</w>: byte 'q' (id 80) + 256, then EOT 518 */

  g_assert_no_error (err);
  g_assert_cmpuint (imagebind_tokenizer_vocab_size (tok), ==, 512 + 5 + 2);
  g_assert_cmpint (imagebind_tokenizer_sot (tok), ==, 517);
  g_assert_cmpint (imagebind_tokenizer_eot (tok), ==, 518);
  g_assert_true (imagebind_tokenize (tok, "ABC hi q", -1, ids, 8, &err));
  g_assert_no_error (err);
  g_test_message ("ids %d %d %d %d %d", ids[0], ids[1], ids[2], ids[3], ids[4]);
  g_assert_cmpmem (ids, sizeof ids, want, sizeof want);
  imagebind_tokenizer_free (tok);

  /* no merges at all: every byte is its own symbol */
  tok = imagebind_tokenizer_new (NULL, 0, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (imagebind_tokenizer_vocab_size (tok), ==, 514);
  g_assert_true (imagebind_tokenize (tok, "ab", -1, ids, 8, &err));
  g_assert_cmpint (ids[0], ==, 512);
  g_assert_cmpint (ids[1], ==, 'a' - 33);
  g_assert_cmpint (ids[2], ==, 'b' - 33 + 256);
  g_assert_cmpint (ids[3], ==, 513);
  imagebind_tokenizer_free (tok);

  /* malformed merges are refused */
  {
    static const char *const bad1[] = { "a b c" };
    static const char *const bad2[] = { "ab" };
    static const char *const bad3[] = { "a \xff" };
    g_assert_null (imagebind_tokenizer_new (bad1, 1, &err));
    g_assert_error (err, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
    g_clear_error (&err);
    g_assert_null (imagebind_tokenizer_new (bad2, 1, &err));
    g_assert_error (err, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
    g_clear_error (&err);
    g_assert_null (imagebind_tokenizer_new (bad3, 1, &err));
    g_assert_error (err, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
    g_clear_error (&err);
  }
}

static void
test_vocab_files (void)
{
  g_autofree char *dir = g_dir_make_tmp ("ib-tok-XXXXXX", NULL);
  g_autofree char *plain = g_build_filename (dir, "merges.txt", NULL);
  g_autofree char *missing = g_build_filename (dir, "missing.txt", NULL);
  g_autoptr (GError) err = NULL;
  ImageBindTokenizer *tok;

  g_assert_true (g_file_set_contents (plain, "#version: 0.2\na b\nab c</w>\n", -1, NULL));
  tok = imagebind_tokenizer_new_from_file (plain, 0, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (imagebind_tokenizer_vocab_size (tok), ==, 516);
  imagebind_tokenizer_free (tok);
  tok = imagebind_tokenizer_new_from_file (plain, 1, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (imagebind_tokenizer_vocab_size (tok), ==, 515);
  imagebind_tokenizer_free (tok);
  g_assert_null (imagebind_tokenizer_new_from_file (plain, 3, &err));
  g_assert_error (err, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
  g_clear_error (&err);
  g_assert_null (imagebind_tokenizer_new_from_file (missing, 0, &err));
  g_assert_error (err, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FILE);
  g_clear_error (&err);
  /* a truncated gzip stream */
  g_assert_true (g_file_set_contents (plain, "\x1f\x8b\x08\x00garbage", 11, NULL));
  g_assert_null (imagebind_tokenizer_new_from_file (plain, 0, &err));
  g_assert_error (err, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT);
  g_clear_error (&err);
  g_remove (plain);
  g_rmdir (dir);

  /* The whole fixture file holds 262,144 merges; the official tokenizer uses the first
   * 48,894. */
  if (ib_test_conformance_dir ()) {
    g_autofree char *path = ib_test_fixture ("preprocess/bpe_simple_vocab_16e6.txt.gz");
    tok = imagebind_tokenizer_new_from_file (path, 0, &err);
    g_assert_no_error (err);
    g_assert_cmpuint (imagebind_tokenizer_vocab_size (tok), ==, 262144 + 514);
    imagebind_tokenizer_free (tok);
  }
}

/* Long inputs must not crash and must stay linear (only the first 75 tokens are kept, and
 * cleaning stops once a prefix provably yields them); their ids equal those of a short
 * prefix. 10 MB for prose and for one 10 MB word, 1 MB for the other shapes. */
static void
test_huge_input (void)
{
  const ImageBindTokenizer *tok = get_official ();
  static const struct { const char *fill; gsize mb; } cases[] = {
    { "a photo of a dog &amp; ", 10 }, { "x", 10 }, { "\xc3\xa9", 1 }, { "!", 1 }, { "7", 1 },
    { " ", 1 }, { "caf\xc3\x83\xc2\xa9 ", 1 }, { "\n", 1 }, { "\xf0\x9f\x8d\x95", 1 },
  };
  gint32 ids[CONTEXT], prefix_ids[CONTEXT];
  g_autoptr (GError) err = NULL;

  if (!tok)
    return;
  for (guint f = 0; f < G_N_ELEMENTS (cases); f++) {
    const char *fill = cases[f].fill;
    gsize flen = strlen (fill), size = cases[f].mb << 20;
    char *text = g_malloc (size + 1);
    gint64 t0 = g_get_monotonic_time ();
    g_autofree char *shown = g_strescape (fill, NULL);

    for (gsize i = 0; i < size; i++)
      text[i] = fill[i % flen];
    text[size - size % flen] = '\0';
    g_assert_true (imagebind_tokenize (tok, text, -1, ids, CONTEXT, &err));
    g_assert_no_error (err);
    g_test_message ("%" G_GSIZE_FORMAT " MB of \"%s\": %.2f s", cases[f].mb, shown,
        (g_get_monotonic_time () - t0) / 1e6);
    g_assert_cmpint (ids[0], ==, 49406);
    /* a prefix of 20 kB gives the same ids (up to the cut) */
    text[20000 - 20000 % flen] = '\0';
    g_assert_true (imagebind_tokenize (tok, text, -1, prefix_ids, CONTEXT, &err));
    if (ids[76] == 49407)
      g_assert_cmpmem (ids, sizeof ids, prefix_ids, sizeof prefix_ids);
    else
      g_assert_cmpuint (count_nonzero (ids), ==, 2);  /* whitespace only */
    g_free (text);
  }
}

static const char *const thread_texts[] = {
  "a dog playing in the park", "caf\u00c3\u00a9 &amp;amp; \u201cquotes\u201d", "\u6771\u4eac 2024!!",
  "\u0130STANBUL \u03a3\u039f\u03a3", "\xef\xac\x81ne \uff26\uff35\uff2c\uff2c <|endoftext|> x",
};

static gpointer
tokenize_in_thread (gpointer data)
{
  const ImageBindTokenizer *tok = data;
  gint32 *ids = g_new (gint32, CONTEXT * G_N_ELEMENTS (thread_texts));

  for (guint round = 0; round < 50; round++)
    for (guint i = 0; i < G_N_ELEMENTS (thread_texts); i++)
      g_assert_true (imagebind_tokenize (tok, thread_texts[i], -1, ids + i * CONTEXT, CONTEXT, NULL));
  return ids;
}

/* One tokenizer shared by several threads gives the single-thread ids. */
static void
test_threads (void)
{
  const ImageBindTokenizer *tok = get_official ();
  gint32 want[CONTEXT * G_N_ELEMENTS (thread_texts)];
  GThread *threads[4];

  if (!tok)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (thread_texts); i++)
    g_assert_true (imagebind_tokenize (tok, thread_texts[i], -1, want + i * CONTEXT, CONTEXT, NULL));
  for (guint t = 0; t < G_N_ELEMENTS (threads); t++)
    threads[t] = g_thread_new ("tokenize", tokenize_in_thread, (gpointer) tok);
  for (guint t = 0; t < G_N_ELEMENTS (threads); t++) {
    gint32 *got = g_thread_join (threads[t]);
    g_assert_cmpmem (got, sizeof want, want, sizeof want);
    g_free (got);
  }
}

/* Not a timed assertion: reports the speed of 1,000 prompts. */
static void
test_benchmark (void)
{
  const ImageBindTokenizer *tok = get_official ();
  static const char *const prompts[] = {
    "a dog playing in the park", "A photo of a cat on a sofa",
    "Cr\xc3\xa8me br\xc3\xbbl\xc3\xa9\x65 at the caf\xc3\xa9, na\xc3\xafve fa\xc3\xa7\x61\x64\x65!",
    "the sound of rain on a tin roof at night", "a red car driving through 42 tunnels",
  };
  gint32 ids[CONTEXT];
  gint64 t0;

  if (!tok)
    return;
  t0 = g_get_monotonic_time ();
  for (guint i = 0; i < 1000; i++)
    g_assert_true (imagebind_tokenize (tok, prompts[i % G_N_ELEMENTS (prompts)], -1, ids,
        CONTEXT, NULL));
  g_test_message ("1000 prompts tokenized in %.1f ms", (g_get_monotonic_time () - t0) / 1e3);
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tokenizer/vocabulary", test_vocabulary);
  g_test_add_func ("/tokenizer/fixture-ids", test_fixture_ids);
  g_test_add_func ("/tokenizer/fixture-stages", test_fixture_stages);
  g_test_add_func ("/tokenizer/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/tokenizer/embedded-nul", test_embedded_nul);
  g_test_add_func ("/tokenizer/empty-and-whitespace", test_empty_and_whitespace);
  g_test_add_func ("/tokenizer/emoji-only", test_emoji_only);
  g_test_add_func ("/tokenizer/special-tokens", test_special_tokens);
  g_test_add_func ("/tokenizer/truncation", test_truncation);
  g_test_add_func ("/tokenizer/split-rules", test_split_rules);
  g_test_add_func ("/tokenizer/clean-rules", test_clean_rules);
  g_test_add_func ("/tokenizer/mojibake-detector", test_mojibake_detector);
  g_test_add_func ("/tokenizer/small-vocabulary", test_small_vocabulary);
  g_test_add_func ("/tokenizer/vocab-files", test_vocab_files);
  g_test_add_func ("/tokenizer/threads", test_threads);
  g_test_add_func ("/tokenizer/huge-input", test_huge_input);
  g_test_add_func ("/tokenizer/benchmark", test_benchmark);
  ret = g_test_run ();
  imagebind_tokenizer_free (official);
  return ret;
}
