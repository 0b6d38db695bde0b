/* imagebind-tokenize: texts -> CLIP token ids, one text per input line.
 *
 *   imagebind-tokenize --vocab bpe_simple_vocab_16e6.txt.gz < prompts.txt
 *   imagebind-tokenize --vocab ... --all < texts.txt     # every BPE id, no SOT/EOT/cut
 *   imagebind-tokenize --vocab ... --clean < texts.txt   # the cleaned text only
 *
 * In input lines, "\n", "\r" and "\\" stand for a newline, a carriage return and a
 * backslash, so that multi-line texts fit on one line. tools/check-tokenizer.py compares
 * the output with the official Python tokenizer. */

#include <stdio.h>
#include <string.h>

#include "imagebind.h"
#include "tokenizer-internal.h"

static GString *
unescape_line (const char *line, gsize n)
{
  GString *s = g_string_sized_new (n);

  for (gsize i = 0; i < n; i++) {
    if (line[i] == '\\' && i + 1 < n && strchr ("nr\\", line[i + 1])) {
      i++;
      g_string_append_c (s, line[i] == 'n' ? '\n' : line[i] == 'r' ? '\r' : '\\');
    } else {
      g_string_append_c (s, line[i]);
    }
  }
  return s;
}

static void
print_ids (const gint32 *ids, guint n)
{
  for (guint i = 0; i < n; i++)
    printf ("%s%d", i ? " " : "", ids[i]);
  printf ("\n");
}

int
main (int argc, char **argv)
{
  g_autofree char *vocab = NULL;
  gint64 merges = 48894;
  gint context = 77;
  gboolean all = FALSE, clean_only = FALSE;
  GOptionEntry entries[] = {
    { "vocab", 0, 0, G_OPTION_ARG_FILENAME, &vocab, "CLIP BPE vocabulary (.txt or .txt.gz)", "FILE" },
    { "merges", 0, 0, G_OPTION_ARG_INT64, &merges, "Merges to use (default 48894, the official count; 0 = all)", "N" },
    { "context", 0, 0, G_OPTION_ARG_INT, &context, "Sequence length (default 77)", "N" },
    { "all", 0, 0, G_OPTION_ARG_NONE, &all, "Print every BPE id, without SOT, EOT or cut", NULL },
    { "clean", 0, 0, G_OPTION_ARG_NONE, &clean_only, "Print the cleaned text only", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) options = g_option_context_new ("< texts");
  g_autoptr (GError) err = NULL;
  ImageBindTokenizer *tok = NULL;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &err)) {
    g_printerr ("%s\n", err->message);
    return 2;
  }
  if (!clean_only) {
    if (!vocab || merges < 0 || context < 2) {
      g_printerr ("--vocab is required (and --merges >= 0, --context >= 2)\n");
      return 2;
    }
    tok = imagebind_tokenizer_new_from_file (vocab, merges, &err);
    if (!tok) {
      g_printerr ("%s\n", err->message);
      return 1;
    }
  }

  while ((n = getline (&line, &cap, stdin)) > 0) {
    GString *text;

    if (line[n - 1] == '\n')
      n--;
    text = unescape_line (line, n);
    if (clean_only || all) {
      g_autofree char *clean = imagebind_tokenizer_clean (text->str, text->len);
      if (!clean) {
        printf ("ERROR invalid UTF-8\n");
      } else if (clean_only) {
        printf ("%s\n", clean);
      } else {
        GArray *ids = ib_tokenizer_encode_all (tok, clean);
        print_ids ((const gint32 *) ids->data, ids->len);
        g_array_unref (ids);
      }
    } else {
      gint32 *ids = g_new (gint32, context);
      g_clear_error (&err);
      if (imagebind_tokenize (tok, text->str, text->len, ids, context, &err))
        print_ids (ids, context);
      else
        printf ("ERROR %s\n", err->message);
      g_free (ids);
    }
    g_string_free (text, TRUE);
  }
  free (line);
  imagebind_tokenizer_free (tok);
  return 0;
}
