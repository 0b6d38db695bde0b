/* A bounds-checked safetensors reader (see safetensors.h).
 *
 * The JSON header is read by a parser of the safetensors schema itself rather than by a
 * general JSON library: libimagebind stays GLib-only, and the schema is small enough that a
 * strict parser is shorter than the checks a general one would need after it: general parsers
 * keep the last of duplicate keys (two entries for one tensor name would silently pick one),
 * read large integers as doubles (data_offsets past 2^53 would round) and recurse on nesting
 * (a hostile header of nested brackets would exhaust the stack). This one has a fixed depth
 * (object -> tensor object -> array), refuses duplicate and unknown keys, and reads offsets
 * and dimensions as exact unsigned 64-bit integers. */
#include "safetensors.h"

#include "gguf.h"
#include "imagebind.h"
#include "ops.h"

#include <string.h>

/* 8-byte header length field, then the JSON header, then the data section. */
#define HEADER_LENGTH_SIZE 8
#define METADATA_KEY "__metadata__"

struct _IbSafetensors {
  GBytes *bytes;
  GArray *tensors;          /* IbSafetensorsTensor; names owned */
  GHashTable *tensor_index; /* name (owned by tensors) -> index + 1 */
  GHashTable *metadata;     /* key (owned) -> value (owned) */
};

static const struct {
  const char *name;
  IbSafetensorsDtype dtype;
  gsize size;
} dtypes[] = {
  { "F32", IB_SAFETENSORS_F32, 4 },
  { "F16", IB_SAFETENSORS_F16, 2 },
  { "BF16", IB_SAFETENSORS_BF16, 2 },
  { "I64", IB_SAFETENSORS_I64, 8 },
};

const char *
ib_safetensors_dtype_name (IbSafetensorsDtype dtype)
{
  for (guint i = 0; i < G_N_ELEMENTS (dtypes); i++)
    if (dtypes[i].dtype == dtype)
      return dtypes[i].name;
  return "?";
}

gsize
ib_safetensors_dtype_size (IbSafetensorsDtype dtype)
{
  for (guint i = 0; i < G_N_ELEMENTS (dtypes); i++)
    if (dtypes[i].dtype == dtype)
      return dtypes[i].size;
  return 0;
}

/* ---- the JSON header ---- */

typedef struct {
  const char *text; /* the header bytes, validated UTF-8 without NULs */
  gsize len;
  gsize pos;
} Json;

static gboolean G_GNUC_PRINTF (3, 4)
json_error (const Json *j, GError **error, const char *format, ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  /* The offset is a file offset, so that a hex dump finds it. */
  g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
      "JSON header at file offset %" G_GSIZE_FORMAT ": %s", HEADER_LENGTH_SIZE + j->pos, message);
  return FALSE;
}

static void
json_skip_ws (Json *j)
{
  while (j->pos < j->len && (j->text[j->pos] == ' ' || j->text[j->pos] == '\t' ||
          j->text[j->pos] == '\n' || j->text[j->pos] == '\r'))
    j->pos++;
}

/* Skips white space, then consumes c if it is next. */
static gboolean
json_accept (Json *j, char c)
{
  json_skip_ws (j);
  if (j->pos < j->len && j->text[j->pos] == c) {
    j->pos++;
    return TRUE;
  }
  return FALSE;
}

static const char *
json_describe_next (const Json *j)
{
  if (j->pos >= j->len)
    return "the end of the header";
  switch (j->text[j->pos]) {
    case '{': return "an object";
    case '[': return "an array";
    case '"': return "a string";
    case 't': case 'f': return "a boolean";
    case 'n': return "null";
    case '}': return "'}'";
    case ']': return "']'";
    case ',': return "','";
    case ':': return "':'";
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9': return "a number";
    default: return "a character that starts no JSON value";
  }
}

static gboolean
json_expect (Json *j, char c, const char *context, GError **error)
{
  if (json_accept (j, c))
    return TRUE;
  return json_error (j, error, "expected '%c' %s, found %s", c, context, json_describe_next (j));
}

/* Four hex digits after "\u" at j->pos. */
static gboolean
json_hex4 (Json *j, gunichar *out, GError **error)
{
  gunichar v = 0;

  if (j->len - j->pos < 4)
    return json_error (j, error, "truncated \\u escape");
  for (int i = 0; i < 4; i++) {
    int h = g_ascii_xdigit_value (j->text[j->pos + i]);
    if (h < 0)
      return json_error (j, error, "\\u escape with a non-hex digit");
    v = v * 16 + (gunichar) h;
  }
  j->pos += 4;
  *out = v;
  return TRUE;
}

/* A JSON string (white space before it skipped); returns a NUL-terminated UTF-8 copy. The
 * header was validated as UTF-8 without NULs, so only escapes can produce invalid text. */
static char *
json_string (Json *j, const char *what, GError **error)
{
  GString *s;

  json_skip_ws (j);
  if (j->pos >= j->len || j->text[j->pos] != '"') {
    json_error (j, error, "expected %s (a string), found %s", what, json_describe_next (j));
    return NULL;
  }
  j->pos++;
  s = g_string_new (NULL);
  for (;;) {
    gsize run = j->pos;
    unsigned char c;

    while (j->pos < j->len && j->text[j->pos] != '"' && j->text[j->pos] != '\\' &&
        (unsigned char) j->text[j->pos] >= 0x20)
      j->pos++;
    g_string_append_len (s, j->text + run, j->pos - run);
    if (j->pos >= j->len) {
      json_error (j, error, "unterminated string");
      goto fail;
    }
    c = (unsigned char) j->text[j->pos];
    if (c == '"') {
      j->pos++;
      return g_string_free (s, FALSE);
    }
    if (c < 0x20) {
      json_error (j, error, "control character 0x%02x inside a string", c);
      goto fail;
    }
    /* an escape */
    if (j->len - j->pos < 2) {
      j->pos = j->len;
      json_error (j, error, "unterminated string");
      goto fail;
    }
    j->pos += 2;
    switch (j->text[j->pos - 1]) {
      case '"': g_string_append_c (s, '"'); break;
      case '\\': g_string_append_c (s, '\\'); break;
      case '/': g_string_append_c (s, '/'); break;
      case 'b': g_string_append_c (s, '\b'); break;
      case 'f': g_string_append_c (s, '\f'); break;
      case 'n': g_string_append_c (s, '\n'); break;
      case 'r': g_string_append_c (s, '\r'); break;
      case 't': g_string_append_c (s, '\t'); break;
      case 'u': {
        gunichar u, low;

        if (!json_hex4 (j, &u, error))
          goto fail;
        if (u >= 0xdc00 && u <= 0xdfff) {
          json_error (j, error, "unpaired low surrogate \\u%04x in a string", u);
          goto fail;
        }
        if (u >= 0xd800 && u <= 0xdbff) {
          if (j->len - j->pos < 2 || j->text[j->pos] != '\\' || j->text[j->pos + 1] != 'u') {
            json_error (j, error, "high surrogate \\u%04x not followed by a low one", u);
            goto fail;
          }
          j->pos += 2;
          if (!json_hex4 (j, &low, error))
            goto fail;
          if (low < 0xdc00 || low > 0xdfff) {
            json_error (j, error, "high surrogate \\u%04x followed by \\u%04x", u, low);
            goto fail;
          }
          u = 0x10000 + ((u - 0xd800) << 10) + (low - 0xdc00);
        }
        /* Names are handed out NUL-terminated: an embedded NUL would silently cut them. */
        if (u == 0) {
          json_error (j, error, "\\u0000 inside a string");
          goto fail;
        }
        g_string_append_unichar (s, u);
        break;
      }
      default:
        j->pos--;
        json_error (j, error, "invalid escape '\\%c' in a string", j->text[j->pos]);
        goto fail;
    }
  }
fail:
  g_string_free (s, TRUE);
  return NULL;
}

/* A non-negative JSON integer that fits in 64 bits. Other JSON numbers are recognised by the
 * grammar, so that the error says what was wrong with them. */
static gboolean
json_uint (Json *j, guint64 *out, const char *what, GError **error)
{
  gsize start, digits_start, digits_end;
  gboolean negative = FALSE, fraction = FALSE;
  guint64 v = 0;

  json_skip_ws (j);
  start = j->pos;
  if (j->pos < j->len && j->text[j->pos] == '-') {
    negative = TRUE;
    j->pos++;
  }
  digits_start = j->pos;
  while (j->pos < j->len && g_ascii_isdigit (j->text[j->pos]))
    j->pos++;
  digits_end = j->pos;
  if (digits_end == digits_start) {
    j->pos = start;
    return json_error (j, error, "expected %s (an integer), found %s", what,
        json_describe_next (j));
  }
  if (digits_end - digits_start > 1 && j->text[digits_start] == '0') {
    j->pos = start;
    return json_error (j, error, "%s has a leading zero (not JSON)", what);
  }
  if (j->pos < j->len && j->text[j->pos] == '.') {
    fraction = TRUE;
    j->pos++;
    if (j->pos >= j->len || !g_ascii_isdigit (j->text[j->pos]))
      return json_error (j, error, "%s: a number needs digits after '.'", what);
    while (j->pos < j->len && g_ascii_isdigit (j->text[j->pos]))
      j->pos++;
  }
  if (j->pos < j->len && (j->text[j->pos] == 'e' || j->text[j->pos] == 'E')) {
    fraction = TRUE;
    j->pos++;
    if (j->pos < j->len && (j->text[j->pos] == '+' || j->text[j->pos] == '-'))
      j->pos++;
    if (j->pos >= j->len || !g_ascii_isdigit (j->text[j->pos]))
      return json_error (j, error, "%s: a number needs digits in its exponent", what);
    while (j->pos < j->len && g_ascii_isdigit (j->text[j->pos]))
      j->pos++;
  }
  if (negative || fraction) {
    gsize end = j->pos;
    j->pos = start;
    return json_error (j, error, "%s is %.*s, not a non-negative integer", what,
        (int) MIN (end - start, 40), j->text + start);
  }
  for (gsize i = digits_start; i < digits_end; i++) {
    guint d = (guint) (j->text[i] - '0');
    if (v > (G_MAXUINT64 - d) / 10) {
      j->pos = start;
      return json_error (j, error, "%s %.*s does not fit in 64 bits", what,
          (int) MIN (digits_end - digits_start, 40), j->text + digits_start);
    }
    v = v * 10 + d;
  }
  *out = v;
  return TRUE;
}

/* [u, u, ...] with at most max values. */
static gboolean
json_uint_array (Json *j, guint64 *values, guint max, guint *n, const char *what,
    GError **error)
{
  *n = 0;
  json_skip_ws (j);
  if (!json_accept (j, '['))
    return json_error (j, error, "expected %s (an array of integers), found %s", what,
        json_describe_next (j));
  if (json_accept (j, ']'))
    return TRUE;
  do {
    if (*n == max)
      return json_error (j, error, "%s has more than %u entries", what, max);
    if (!json_uint (j, &values[*n], what, error))
      return FALSE;
    (*n)++;
  } while (json_accept (j, ','));
  return json_expect (j, ']', "after the last entry of an array", error);
}

/* ---- header entries ---- */

/* One tensor entry's parsed fields; its data range is checked once the whole header is read. */
typedef struct {
  guint64 begin, end;
} Range;

static gboolean
parse_dtype (Json *j, const char *name, IbSafetensorsDtype *dtype, GError **error)
{
  gsize at = j->pos;
  g_autofree char *s = json_string (j, "the dtype", error);

  if (!s)
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (dtypes); i++) {
    if (strcmp (s, dtypes[i].name) == 0) {
      *dtype = dtypes[i].dtype;
      return TRUE;
    }
  }
  j->pos = at;
  json_skip_ws (j);
  return json_error (j, error, "tensor '%s': dtype '%.40s' is not supported (only F32, F16, "
      "BF16 and I64 are)", name, s);
}

static gboolean
parse_tensor_entry (Json *j, char *name, IbSafetensorsTensor *t, Range *range, GError **error)
{
  gboolean have_dtype = FALSE, have_shape = FALSE, have_offsets = FALSE;

  t->name = name;
  if (!json_accept (j, '{'))
    return json_error (j, error, "tensor '%s': expected an object {dtype, shape, data_offsets}, "
        "found %s", name, json_describe_next (j));
  if (json_accept (j, '}'))
    return json_error (j, error, "tensor '%s' has no dtype, shape or data_offsets", name);
  do {
    gsize key_at;
    g_autofree char *key = NULL;

    json_skip_ws (j);
    key_at = j->pos;
    key = json_string (j, "a field name", error);
    if (!key || !json_expect (j, ':', "after a field name", error))
      return FALSE;
    if (strcmp (key, "dtype") == 0 && !have_dtype) {
      if (!parse_dtype (j, name, &t->dtype, error))
        return FALSE;
      have_dtype = TRUE;
    } else if (strcmp (key, "shape") == 0 && !have_shape) {
      if (!json_uint_array (j, t->shape, IB_SAFETENSORS_MAX_DIMS, &t->n_dims, "a dimension",
              error)) {
        g_prefix_error (error, "tensor '%s': shape: ", name);
        return FALSE;
      }
      have_shape = TRUE;
    } else if (strcmp (key, "data_offsets") == 0 && !have_offsets) {
      guint64 offsets[2];
      guint n;

      if (!json_uint_array (j, offsets, 2, &n, "a data offset", error)) {
        g_prefix_error (error, "tensor '%s': data_offsets: ", name);
        return FALSE;
      }
      if (n != 2)
        return json_error (j, error, "tensor '%s': data_offsets has %u entries, not 2 "
            "[begin, end]", name, n);
      range->begin = offsets[0];
      range->end = offsets[1];
      have_offsets = TRUE;
    } else {
      gboolean known = strcmp (key, "dtype") == 0 || strcmp (key, "shape") == 0 ||
          strcmp (key, "data_offsets") == 0;
      j->pos = key_at;
      return json_error (j, error, "tensor '%s': %s field '%.40s'", name,
          known ? "duplicate" : "unknown", key);
    }
  } while (json_accept (j, ','));
  if (!json_expect (j, '}', "after the last field of a tensor", error))
    return FALSE;
  if (!have_dtype || !have_shape || !have_offsets)
    return json_error (j, error, "tensor '%s' has no %s", name,
        !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
  return TRUE;
}

static gboolean
parse_metadata (IbSafetensors *st, Json *j, GError **error)
{
  if (!json_accept (j, '{'))
    return json_error (j, error, "__metadata__ must be an object of strings, found %s",
        json_describe_next (j));
  if (json_accept (j, '}'))
    return TRUE;
  do {
    gsize key_at;
    char *key, *value;

    json_skip_ws (j);
    key_at = j->pos;
    key = json_string (j, "a metadata key", error);
    if (!key)
      return FALSE;
    if (!json_expect (j, ':', "after a metadata key", error) ||
        !(value = json_string (j, "a metadata value", error))) {
      g_free (key);
      return FALSE;
    }
    if (g_hash_table_contains (st->metadata, key)) {
      j->pos = key_at;
      json_error (j, error, "duplicate metadata key '%.40s'", key);
      g_free (key);
      g_free (value);
      return FALSE;
    }
    g_hash_table_insert (st->metadata, key, value);
  } while (json_accept (j, ','));
  return json_expect (j, '}', "after the last metadata entry", error);
}

static gboolean
parse_header (IbSafetensors *st, Json *j, GArray *ranges, GError **error)
{
  gboolean have_metadata = FALSE;

  json_skip_ws (j);
  if (!json_accept (j, '{'))
    return json_error (j, error, "the header must be a JSON object, found %s",
        json_describe_next (j));
  if (!json_accept (j, '}')) {
    do {
      gsize key_at;
      char *name;

      json_skip_ws (j);
      key_at = j->pos;
      name = json_string (j, "a tensor name", error);
      if (!name)
        return FALSE;
      if (!json_expect (j, ':', "after a tensor name", error)) {
        g_free (name);
        return FALSE;
      }
      if (strcmp (name, METADATA_KEY) == 0) {
        g_free (name);
        if (have_metadata) {
          j->pos = key_at;
          return json_error (j, error, "duplicate __metadata__");
        }
        have_metadata = TRUE;
        if (!parse_metadata (st, j, error))
          return FALSE;
      } else {
        IbSafetensorsTensor t = { 0 };
        Range r = { 0 };
        gboolean ok;

        if (!*name || g_hash_table_contains (st->tensor_index, name)) {
          j->pos = key_at;
          if (*name)
            json_error (j, error, "duplicate tensor name '%s'", name);
          else
            json_error (j, error, "empty tensor name");
          g_free (name);
          return FALSE;
        }
        ok = parse_tensor_entry (j, name, &t, &r, error);
        /* Appended even on failure, so that ib_safetensors_free frees the name. */
        g_array_append_val (st->tensors, t);
        if (!ok)
          return FALSE;
        g_array_append_val (ranges, r);
        g_hash_table_insert (st->tensor_index, name, GUINT_TO_POINTER (st->tensors->len));
      }
    } while (json_accept (j, ','));
    if (!json_expect (j, '}', "after the last tensor of the header", error))
      return FALSE;
  }
  /* Writers pad the header with spaces (to align the data section); nothing else may follow. */
  json_skip_ws (j);
  if (j->pos != j->len)
    return json_error (j, error, "data after the end of the header object");
  return TRUE;
}

/* ---- data section ---- */

static gboolean
check_sizes (IbSafetensors *st, const Range *ranges, guint64 data_len, GError **error)
{
  for (guint i = 0; i < st->tensors->len; i++) {
    IbSafetensorsTensor *t = &g_array_index (st->tensors, IbSafetensorsTensor, i);
    gsize itemsize = ib_safetensors_dtype_size (t->dtype);
    guint64 n = 1, bound = 1;

    /* Bound the product of the non-zero dimensions too, so that a zero among absurd
     * dimensions does not hide them. */
    for (guint d = 0; d < t->n_dims; d++) {
      if (!g_uint64_checked_mul (&bound, bound, MAX (t->shape[d], 1)) ||
          bound > G_MAXINT64 / itemsize) {
        g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
            "tensor '%s': shape is absurd (the element count overflows at dimension %u)",
            t->name, d);
        return FALSE;
      }
      n *= t->shape[d];
    }
    if (ranges[i].begin > ranges[i].end) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
          "tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
          "] begin after they end", t->name, ranges[i].begin, ranges[i].end);
      return FALSE;
    }
    if (ranges[i].end > data_len) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
          "tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
          "] reach past the end of the data section (%" G_GUINT64_FORMAT " bytes): "
          "file truncated?", t->name, ranges[i].begin, ranges[i].end, data_len);
      return FALSE;
    }
    if (ranges[i].end - ranges[i].begin != n * itemsize) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
          "tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
          "] hold %" G_GUINT64_FORMAT " bytes, but %" G_GUINT64_FORMAT " %s elements take %"
          G_GUINT64_FORMAT, t->name, ranges[i].begin, ranges[i].end,
          ranges[i].end - ranges[i].begin, n, ib_safetensors_dtype_name (t->dtype),
          n * itemsize);
      return FALSE;
    }
    t->n_elements = n;
    t->n_bytes = (gsize) (n * itemsize);
  }
  return TRUE;
}

/* A tensor's data range and its index in the header, for sorting by offset. */
typedef struct {
  guint64 begin, end;
  guint index;
} Placed;

static int
compare_placed (const void *a, const void *b)
{
  const Placed *pa = a, *pb = b;

  if (pa->begin != pb->begin)
    return pa->begin < pb->begin ? -1 : 1;
  if (pa->end != pb->end)
    return pa->end < pb->end ? -1 : 1;
  return 0;
}

/* The format requires the tensors to tile the data section: sorted by offset, each begins
 * where the previous ends and the last ends with the file. So no two overlap (one tensor's
 * bytes changed through another's), and no bytes hide between them (a polyglot file). */
static gboolean
check_tiling (IbSafetensors *st, const Range *ranges, guint64 data_len, GError **error)
{
  guint n = st->tensors->len;
  g_autofree Placed *order = g_new (Placed, MAX (n, 1));
  guint64 covered = 0;
  const char *previous = NULL;

  for (guint i = 0; i < n; i++)
    order[i] = (Placed) { ranges[i].begin, ranges[i].end, i };
  qsort (order, n, sizeof *order, compare_placed);
  for (guint k = 0; k < n; k++) {
    const Placed *r = &order[k];
    const char *name = g_array_index (st->tensors, IbSafetensorsTensor, r->index).name;

    if (r->begin < covered) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
          "tensor '%s' data [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
          ") overlaps tensor '%s' (which ends at %" G_GUINT64_FORMAT ")",
          name, r->begin, r->end, previous, covered);
      return FALSE;
    }
    if (r->begin > covered) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
          "bytes [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT ") of the data section belong "
          "to no tensor (before tensor '%s')", covered, r->begin, name);
      return FALSE;
    }
    covered = r->end;
    previous = name;
  }
  if (covered != data_len) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "%" G_GUINT64_FORMAT " bytes after the last tensor's data belong to no tensor",
        data_len - covered);
    return FALSE;
  }
  return TRUE;
}

static gboolean
parse (IbSafetensors *st, const guint8 *data, gsize size, GError **error)
{
  guint64 header_len, data_len;
  Json j;
  g_autoptr (GArray) ranges = g_array_new (FALSE, TRUE, sizeof (Range));

  if (size < HEADER_LENGTH_SIZE) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "file too small for a safetensors header (%" G_GSIZE_FORMAT " bytes)", size);
    return FALSE;
  }
  memcpy (&header_len, data, 8);
  header_len = GUINT64_FROM_LE (header_len);
  if (header_len > IB_SAFETENSORS_MAX_HEADER) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "header length %" G_GUINT64_FORMAT " exceeds the limit of %u bytes (not a "
        "safetensors file, or a corrupt one)", header_len, IB_SAFETENSORS_MAX_HEADER);
    return FALSE;
  }
  if (header_len > size - HEADER_LENGTH_SIZE) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "file truncated: header length %" G_GUINT64_FORMAT " but only %" G_GSIZE_FORMAT
        " bytes follow the length field", header_len, size - HEADER_LENGTH_SIZE);
    return FALSE;
  }
  /* Validating once up front lets the JSON parser copy string bytes as they are. */
  if (!g_utf8_validate_len ((const char *) data + HEADER_LENGTH_SIZE, (gsize) header_len, NULL)) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "the JSON header is not valid UTF-8 or contains a NUL byte (not a safetensors file?)");
    return FALSE;
  }
  j.text = (const char *) data + HEADER_LENGTH_SIZE;
  j.len = (gsize) header_len;
  j.pos = 0;
  if (!parse_header (st, &j, ranges, error))
    return FALSE;

  data_len = size - HEADER_LENGTH_SIZE - header_len;
  if (!check_sizes (st, (const Range *) ranges->data, data_len, error) ||
      !check_tiling (st, (const Range *) ranges->data, data_len, error))
    return FALSE;
  for (guint i = 0; i < st->tensors->len; i++)
    g_array_index (st->tensors, IbSafetensorsTensor, i).data =
        data + HEADER_LENGTH_SIZE + header_len + g_array_index (ranges, Range, i).begin;
  return TRUE;
}

/* ---- public API ---- */

IbSafetensors *
ib_safetensors_new_from_bytes (GBytes *bytes, GError **error)
{
  IbSafetensors *st;
  gsize size;
  const guint8 *data;

  g_return_val_if_fail (bytes != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  st = g_new0 (IbSafetensors, 1);
  st->bytes = g_bytes_ref (bytes);
  st->tensors = g_array_new (FALSE, TRUE, sizeof (IbSafetensorsTensor));
  st->tensor_index = g_hash_table_new (g_str_hash, g_str_equal);
  st->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  data = g_bytes_get_data (bytes, &size);
  /* An empty GBytes may have a NULL data pointer; the size check refuses it first. */
  if (!parse (st, data, size, error)) {
    ib_safetensors_free (st);
    return NULL;
  }
  return st;
}

IbSafetensors *
ib_safetensors_open (const char *path, GError **error)
{
  GBytes *bytes = ib_map_file (path, error);
  IbSafetensors *st;

  if (!bytes)
    return NULL;
  st = ib_safetensors_new_from_bytes (bytes, error);
  g_bytes_unref (bytes);
  if (!st)
    g_prefix_error (error, "%s: ", path);
  return st;
}

void
ib_safetensors_free (IbSafetensors *st)
{
  if (!st)
    return;
  for (guint i = 0; i < st->tensors->len; i++)
    g_free ((char *) g_array_index (st->tensors, IbSafetensorsTensor, i).name);
  g_array_unref (st->tensors);
  g_hash_table_unref (st->tensor_index);
  g_hash_table_unref (st->metadata);
  g_bytes_unref (st->bytes);
  g_free (st);
}

guint
ib_safetensors_n_tensors (const IbSafetensors *st)
{
  g_return_val_if_fail (st != NULL, 0);
  return st->tensors->len;
}

const IbSafetensorsTensor *
ib_safetensors_tensor (const IbSafetensors *st, guint index)
{
  g_return_val_if_fail (st != NULL, NULL);
  g_return_val_if_fail (index < st->tensors->len, NULL);
  return &g_array_index (st->tensors, IbSafetensorsTensor, index);
}

const IbSafetensorsTensor *
ib_safetensors_find_tensor (const IbSafetensors *st, const char *name)
{
  guint index;

  g_return_val_if_fail (st != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);
  index = GPOINTER_TO_UINT (g_hash_table_lookup (st->tensor_index, name));
  return index ? &g_array_index (st->tensors, IbSafetensorsTensor, index - 1) : NULL;
}

const char *
ib_safetensors_get_metadata (const IbSafetensors *st, const char *key)
{
  g_return_val_if_fail (st != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);
  return g_hash_table_lookup (st->metadata, key);
}

/* Elements are little-endian and unaligned: copied through an aligned buffer in chunks. */
#define CHUNK 1024

gboolean
ib_safetensors_tensor_to_f32 (const IbSafetensorsTensor *t, float *out, GError **error)
{
  guint16 half[CHUNK];

  g_return_val_if_fail (t != NULL && out != NULL, FALSE);
  switch (t->dtype) {
    case IB_SAFETENSORS_F32:
      memcpy (out, t->data, t->n_bytes);
#if G_BYTE_ORDER == G_BIG_ENDIAN
      for (guint64 i = 0; i < t->n_elements; i++) {
        guint32 u;
        memcpy (&u, &out[i], 4);
        u = GUINT32_FROM_LE (u);
        memcpy (&out[i], &u, 4);
      }
#endif
      return TRUE;
    case IB_SAFETENSORS_F16:
    case IB_SAFETENSORS_BF16:
      for (guint64 i = 0; i < t->n_elements; i += CHUNK) {
        gsize n = (gsize) MIN (CHUNK, t->n_elements - i);

        memcpy (half, t->data + i * 2, n * 2);
        for (gsize k = 0; k < n; k++)
          half[k] = GUINT16_FROM_LE (half[k]);
        if (t->dtype == IB_SAFETENSORS_F16) {
          ib_f16_to_f32 (half, out + i, n);
        } else {
          /* bfloat16 is the top half of a float32: widening is exact. */
          for (gsize k = 0; k < n; k++) {
            guint32 bits = (guint32) half[k] << 16;
            memcpy (&out[i + k], &bits, 4);
          }
        }
      }
      return TRUE;
    case IB_SAFETENSORS_I64:
    default:
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
          "tensor '%s' holds %s values, not floating-point weights", t->name,
          ib_safetensors_dtype_name (t->dtype));
      return FALSE;
  }
}

gboolean
ib_safetensors_tensor_to_i64 (const IbSafetensorsTensor *t, gint64 *out, GError **error)
{
  g_return_val_if_fail (t != NULL && out != NULL, FALSE);
  if (t->dtype != IB_SAFETENSORS_I64) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
        "tensor '%s' holds %s values, not 64-bit integers", t->name,
        ib_safetensors_dtype_name (t->dtype));
    return FALSE;
  }
  memcpy (out, t->data, t->n_bytes);
#if G_BYTE_ORDER == G_BIG_ENDIAN
  for (guint64 i = 0; i < t->n_elements; i++)
    out[i] = GINT64_FROM_LE (out[i]);
#endif
  return TRUE;
}
