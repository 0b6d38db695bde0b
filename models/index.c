/* Embedding index files (models/INDEX.md): writer, validating reader, exact search.
 *
 * The file is a header and a run of fixed-size slots. An entry takes one slot (a 64-byte
 * record header, then its vector); a string (source or model id) takes as many slots as its
 * bytes need and is written once, before the first entry that names it. Because every slot has
 * the same size and every entry's vector sits at the same offset in its slot, the mapped file
 * is one strided matrix: a single BLAS product scores every slot, and the few string slots'
 * meaningless scores are skipped. */
#include "imagebind-index.h"
#include "blas.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gio/gio.h>

#define MAGIC "IBINDEX"            /* + NUL: 8 bytes */
#define HEADER_SIZE 64
#define RECORD_HEADER 64           /* an entry's vector starts here in its slot */
#define STRING_HEADER 16
#define BYTE_ORDER_MARK 0x01020304u
#define MAX_DIM 65536
#define MAX_STRING 65535
#define KIND_ENTRY 1u
#define KIND_STRING 2u
#define NO_ENTRY G_MAXUINT32
#define WRITE_BUFFER (1 << 20)

static gsize
slot_size_for (guint dim)
{
  return RECORD_HEADER + (gsize) dim * sizeof (float);
}

static guint32
rd32 (const guint8 *p)
{
  guint32 v;
  memcpy (&v, p, 4);
  return v;
}

static guint64
rd64 (const guint8 *p)
{
  guint64 v;
  memcpy (&v, p, 8);
  return v;
}

static float
rdf (const guint8 *p)
{
  float v;
  memcpy (&v, p, 4);
  return v;
}

/* ---- reading ---- */

struct _ImageBindIndex {
  GMappedFile *file;
  const guint8 *data;
  gsize size;
  guint dim;
  gsize slot_size;
  gsize n_slots;
  GArray *entry_slots;        /* guint32: slot of entry i */
  guint32 *slot_entries;      /* n_slots: entry in slot s, or NO_ENTRY */
  GPtrArray *strings;         /* const char * into the mapping, by string id */
};

static gboolean
format_error (GError **error, const char *path, gsize offset, const char *fmt, ...) G_GNUC_PRINTF (4, 5);

static gboolean
format_error (GError **error, const char *path, gsize offset, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *what = NULL;

  va_start (ap, fmt);
  what = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT,
      "%s: not a valid ImageBind index (byte %" G_GSIZE_FORMAT "): %s", path, offset, what);
  return FALSE;
}

static gboolean
check_header (const guint8 *d, gsize size, const char *path, guint *dim, GError **error)
{
  guint32 version, header_size, slot_size, bom;

  if (size >= 8 && memcmp (d, MAGIC, 8) != 0)
    return format_error (error, path, 0, "no \"IBINDEX\" magic (another kind of file)");
  if (size < HEADER_SIZE)
    return format_error (error, path, size, "file of %" G_GSIZE_FORMAT " bytes is shorter "
        "than the %u-byte header (truncated)", size, HEADER_SIZE);
  version = rd32 (d + 8);
  if (version != IMAGEBIND_INDEX_VERSION)
    return format_error (error, path, 8, "format version %u; this library reads version %u",
        version, IMAGEBIND_INDEX_VERSION);
  bom = rd32 (d + 24);
  if (bom != BYTE_ORDER_MARK)
    return format_error (error, path, 24, "byte-order mark 0x%08x (written on a machine of "
        "the other byte order, or corrupt)", bom);
  header_size = rd32 (d + 12);
  if (header_size != HEADER_SIZE)
    return format_error (error, path, 12, "header size %u, expected %u", header_size, HEADER_SIZE);
  *dim = rd32 (d + 16);
  if (*dim == 0 || *dim > MAX_DIM)
    return format_error (error, path, 16, "embedding width %u outside [1, %u]", *dim, MAX_DIM);
  slot_size = rd32 (d + 20);
  if (slot_size != slot_size_for (*dim))
    return format_error (error, path, 20, "slot size %u, expected %" G_GSIZE_FORMAT
        " for width %u", slot_size, slot_size_for (*dim), *dim);
  return TRUE;
}

static gboolean
scan_slots (ImageBindIndex *idx, const char *path, GError **error)
{
  gsize s = 0;

  while (s < idx->n_slots) {
    gsize off = HEADER_SIZE + s * idx->slot_size;
    const guint8 *rec = idx->data + off;
    guint32 kind = rd32 (rec);

    if (kind == KIND_ENTRY) {
      guint32 modality = rd32 (rec + 4), source = rd32 (rec + 8), model = rd32 (rec + 12);
      guint32 n = idx->entry_slots->len;
      if (modality >= IMAGEBIND_N_MODALITIES)
        return format_error (error, path, off + 4, "entry %u: modality %u", n, modality);
      if (source >= idx->strings->len || model >= idx->strings->len)
        return format_error (error, path, off + 8, "entry %u names string %u, but only %u "
            "strings precede it", n, MAX (source, model), idx->strings->len);
      if (n == NO_ENTRY)
        return format_error (error, path, off, "more than %u entries", NO_ENTRY - 1);
      idx->slot_entries[s] = n;
      g_array_append_val (idx->entry_slots, s);
      s++;
    } else if (kind == KIND_STRING) {
      guint32 id = rd32 (rec + 4), len = rd32 (rec + 8), n_slots = rd32 (rec + 12);
      gsize need;
      if (id != idx->strings->len)
        return format_error (error, path, off + 4, "string id %u, expected %u (ids count up)",
            id, idx->strings->len);
      if (len > MAX_STRING)
        return format_error (error, path, off + 8, "string of %u bytes (at most %u)", len, MAX_STRING);
      need = (STRING_HEADER + (gsize) len + 1 + idx->slot_size - 1) / idx->slot_size;
      if (n_slots != need)
        return format_error (error, path, off + 12, "string of %u bytes claims %u slots, "
            "needs %" G_GSIZE_FORMAT, len, n_slots, need);
      if (need > idx->n_slots - s)
        return format_error (error, path, off + 12, "string of %u slots runs past the end of "
            "the file (truncated)", n_slots);
      if (memchr (rec + STRING_HEADER, 0, len) || rec[STRING_HEADER + len] != 0)
        return format_error (error, path, off + STRING_HEADER, "string %u is not %u bytes "
            "followed by a NUL", id, len);
      g_ptr_array_add (idx->strings, (gpointer) (rec + STRING_HEADER));
      s += need;
    } else {
      return format_error (error, path, off, "slot %" G_GSIZE_FORMAT " has record kind %u "
          "(1 = entry, 2 = string)", s, kind);
    }
  }
  return TRUE;
}

ImageBindIndex *
imagebind_index_open (const char *path, GError **error)
{
  g_autoptr (GError) local = NULL;
  ImageBindIndex *idx;
  GMappedFile *file;

  g_return_val_if_fail (path != NULL, NULL);
  file = g_mapped_file_new (path, FALSE, &local);
  if (!file) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FILE, "cannot map index %s: %s", path,
        local->message);
    return NULL;
  }
  idx = g_new0 (ImageBindIndex, 1);
  idx->file = file;
  idx->data = (const guint8 *) g_mapped_file_get_contents (file);
  idx->size = g_mapped_file_get_length (file);
  idx->entry_slots = g_array_new (FALSE, FALSE, sizeof (guint32));
  idx->strings = g_ptr_array_new ();
  if (!check_header (idx->data, idx->size, path, &idx->dim, error))
    goto fail;
  idx->slot_size = slot_size_for (idx->dim);
  if ((idx->size - HEADER_SIZE) % idx->slot_size != 0) {
    format_error (error, path, idx->size, "truncated: %" G_GSIZE_FORMAT " bytes after the last "
        "whole slot of %" G_GSIZE_FORMAT " bytes", (idx->size - HEADER_SIZE) % idx->slot_size,
        idx->slot_size);
    goto fail;
  }
  idx->n_slots = (idx->size - HEADER_SIZE) / idx->slot_size;
  idx->slot_entries = g_new (guint32, MAX (idx->n_slots, 1));
  for (gsize s = 0; s < idx->n_slots; s++)
    idx->slot_entries[s] = NO_ENTRY;
  if (!scan_slots (idx, path, error))
    goto fail;
  return idx;

fail:
  imagebind_index_close (idx);
  return NULL;
}

void
imagebind_index_close (ImageBindIndex *idx)
{
  if (!idx)
    return;
  g_mapped_file_unref (idx->file);
  g_array_unref (idx->entry_slots);
  g_ptr_array_unref (idx->strings);
  g_free (idx->slot_entries);
  g_free (idx);
}

guint
imagebind_index_dim (const ImageBindIndex *idx)
{
  return idx->dim;
}

gsize
imagebind_index_n_entries (const ImageBindIndex *idx)
{
  return idx->entry_slots->len;
}

gboolean
imagebind_index_get_entry (const ImageBindIndex *idx, gsize i, ImageBindIndexEntry *e)
{
  const guint8 *rec;

  if (i >= idx->entry_slots->len)
    return FALSE;
  rec = idx->data + HEADER_SIZE + g_array_index (idx->entry_slots, guint32, i) * idx->slot_size;
  e->modality = rd32 (rec + 4);
  e->source = idx->strings->pdata[rd32 (rec + 8)];
  e->model_id = idx->strings->pdata[rd32 (rec + 12)];
  e->pts = rd64 (rec + 16);
  e->duration = rd64 (rec + 24);
  e->stream_time = rd64 (rec + 32);
  e->logit_scale = rdf (rec + 40);
  e->norm = rdf (rec + 44);
  e->vector = (const float *) (rec + RECORD_HEADER);
  return TRUE;
}

void
imagebind_scores (const float *rows, gsize n_rows, gsize row_stride, guint dim,
    const float *query, float *scores, int n_threads)
{
  /* (n_rows x dim, strided) times (dim x 1); ib_sgemm takes int sizes, so huge matrices go
   * in blocks. */
  const gsize block = 1u << 24;

  for (gsize r = 0; r < n_rows; r += block)
    ib_sgemm (FALSE, FALSE, MIN (block, n_rows - r), 1, dim, 1.0f, rows + r * row_stride,
        row_stride, query, 1, 0.0f, scores + r, 1, n_threads);
}

/* Hit a ranks before hit b: higher score, or equal score and earlier entry. */
static gboolean
hit_before (const ImageBindIndexHit *a, const ImageBindIndexHit *b)
{
  return a->score > b->score || (a->score == b->score && a->entry < b->entry);
}

/* Min-heap on rank: the root is the worst of the kept hits. */
static void
sift_down (ImageBindIndexHit *h, guint n, guint i)
{
  for (;;) {
    guint worst = i, l = 2 * i + 1, r = l + 1;
    ImageBindIndexHit t;
    if (l < n && hit_before (&h[worst], &h[l]))
      worst = l;
    if (r < n && hit_before (&h[worst], &h[r]))
      worst = r;
    if (worst == i)
      return;
    t = h[i];
    h[i] = h[worst];
    h[worst] = t;
    i = worst;
  }
}

static int
compare_hits (gconstpointer pa, gconstpointer pb)
{
  const ImageBindIndexHit *a = pa, *b = pb;
  return hit_before (a, b) ? -1 : hit_before (b, a) ? 1 : 0;
}

guint
imagebind_top_k (const float *scores, gsize n, guint k,
    gboolean (*keep) (gsize i, gpointer user_data), gpointer user_data, ImageBindIndexHit *hits)
{
  guint len = 0;

  if (k == 0)
    return 0;
  for (gsize i = 0; i < n; i++) {
    ImageBindIndexHit h = { i, scores[i] };
    if (isnan (scores[i]) || (keep && !keep (i, user_data)))
      continue;
    if (len < k) {
      /* sift up */
      guint c = len++;
      hits[c] = h;
      while (c > 0 && hit_before (&hits[(c - 1) / 2], &hits[c])) {
        ImageBindIndexHit t = hits[c];
        hits[c] = hits[(c - 1) / 2];
        hits[(c - 1) / 2] = t;
        c = (c - 1) / 2;
      }
    } else if (hit_before (&h, &hits[0])) {
      hits[0] = h;
      sift_down (hits, len, 0);
    }
  }
  qsort (hits, len, sizeof *hits, compare_hits);
  return len;
}

typedef struct {
  const ImageBindIndex *idx;
  guint mask;
} SlotFilter;

static gboolean
keep_slot (gsize s, gpointer user_data)
{
  const SlotFilter *f = user_data;
  const guint8 *rec;

  if (f->idx->slot_entries[s] == NO_ENTRY)
    return FALSE;
  if (!f->mask)
    return TRUE;
  rec = f->idx->data + HEADER_SIZE + s * f->idx->slot_size;
  return (f->mask >> rd32 (rec + 4)) & 1;
}

guint
imagebind_index_search (const ImageBindIndex *idx, const float *query, guint k,
    guint modality_mask, ImageBindIndexHit *hits, int n_threads)
{
  g_autofree float *q = g_new (float, idx->dim);
  g_autofree float *scores = NULL;
  SlotFilter filter = { idx, modality_mask };
  double norm = 0;
  guint n;

  for (guint d = 0; d < idx->dim; d++)
    norm += (double) query[d] * query[d];
  norm = sqrt (norm);
  for (guint d = 0; d < idx->dim; d++)
    q[d] = norm > 0 ? (float) (query[d] / norm) : 0.0f;
  if (idx->n_slots == 0)
    return 0;
  scores = g_new (float, idx->n_slots);
  imagebind_scores ((const float *) (idx->data + HEADER_SIZE + RECORD_HEADER), idx->n_slots,
      idx->slot_size / sizeof (float), idx->dim, q, scores, n_threads);
  /* ranks slots; slots hold entries in entry order, so slot order breaks ties as entry order */
  n = imagebind_top_k (scores, idx->n_slots, k, keep_slot, &filter, hits);
  for (guint i = 0; i < n; i++)
    hits[i].entry = idx->slot_entries[hits[i].entry];
  return n;
}

/* ---- writing ---- */

struct _ImageBindIndexWriter {
  char *path;
  int fd;
  guint dim;
  gsize slot_size;
  GByteArray *buffer;
  GHashTable *string_ids;     /* char * -> id + 1 */
  guint32 n_strings;
  guint64 n_entries;
};

static gboolean
write_all (int fd, const guint8 *data, gsize n, const char *path, GError **error)
{
  while (n > 0) {
    ssize_t w = write (fd, data, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      int e = errno;
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FILE, "cannot write index %s: %s",
          path, g_strerror (e));
      return FALSE;
    }
    data += w;
    n -= (gsize) w;
  }
  return TRUE;
}

static void
writer_free (ImageBindIndexWriter *w)
{
  if (w->fd >= 0)
    close (w->fd);
  g_byte_array_unref (w->buffer);
  g_hash_table_unref (w->string_ids);
  g_free (w->path);
  g_free (w);
}

/* Takes over the strings of an existing index so that appended entries reuse their ids. */
static gboolean
writer_load_existing (ImageBindIndexWriter *w, gboolean *empty, GError **error)
{
  GStatBuf st;
  ImageBindIndex *idx;

  *empty = fstat (w->fd, &st) != 0 || st.st_size == 0;
  if (*empty)
    return TRUE;
  idx = imagebind_index_open (w->path, error);
  if (!idx) {
    g_prefix_error (error, "cannot append: ");
    return FALSE;
  }
  if (idx->dim != w->dim) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FORMAT, "cannot append embeddings of "
        "width %u to %s, whose embeddings have width %u (another model): use another file",
        w->dim, w->path, idx->dim);
    imagebind_index_close (idx);
    return FALSE;
  }
  for (guint i = 0; i < idx->strings->len; i++)
    g_hash_table_insert (w->string_ids, g_strdup (idx->strings->pdata[i]), GUINT_TO_POINTER (i + 1));
  w->n_strings = idx->strings->len;
  w->n_entries = idx->entry_slots->len;
  imagebind_index_close (idx);
  return TRUE;
}

/* One writer at a time: two writers of one file interleave their slots and give two strings
 * the same id (the file becomes unreadable), or one truncates what the other wrote. The lock
 * (flock: per open file, so that two sinks of one process exclude each other too) is taken
 * before the file is read or truncated and held until the writer is closed. A file system
 * without locks (some network mounts) is written unlocked, as before. */
static gboolean
writer_lock (ImageBindIndexWriter *w, GError **error)
{
  while (flock (w->fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    if (e == EINTR)
      continue;
    if (e == EWOULDBLOCK) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, "index %s is being written "
          "by another writer (a second imagebindindexsink or imagebind-index on the same "
          "file): give each writer its own file, or wait until the other has finished", w->path);
      return FALSE;
    }
    if (e != ENOLCK && e != EINVAL && e != EOPNOTSUPP) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FILE, "cannot lock index %s: %s",
          w->path, g_strerror (e));
      return FALSE;
    }
    break;
  }
  return TRUE;
}

ImageBindIndexWriter *
imagebind_index_writer_open (const char *path, guint dim, gboolean append, GError **error)
{
  ImageBindIndexWriter *w;
  gboolean empty = TRUE;
  GStatBuf st;

  g_return_val_if_fail (path != NULL, NULL);
  if (dim == 0 || dim > MAX_DIM) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT, "index %s: embedding width %u "
        "outside [1, %u]", path, dim, MAX_DIM);
    return NULL;
  }
  w = g_new0 (ImageBindIndexWriter, 1);
  w->path = g_strdup (path);
  w->dim = dim;
  w->slot_size = slot_size_for (dim);
  w->buffer = g_byte_array_new ();
  w->string_ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  /* neither truncated nor read before the lock is held; O_APPEND: writes go after what is
   * there (nothing once truncated) */
  w->fd = g_open (path, O_WRONLY | O_CREAT | O_CLOEXEC | O_APPEND, 0666);
  if (w->fd < 0) {
    int e = errno;
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FILE, "cannot open index %s for "
        "writing: %s", path, g_strerror (e));
    writer_free (w);
    return NULL;
  }
  if (!writer_lock (w, error) || (append && !writer_load_existing (w, &empty, error))) {
    writer_free (w);
    return NULL;
  }
  if (!append && fstat (w->fd, &st) == 0 && S_ISREG (st.st_mode) && ftruncate (w->fd, 0) != 0) {
    int e = errno;
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FILE, "cannot truncate index %s: %s",
        path, g_strerror (e));
    writer_free (w);
    return NULL;
  }
  if (!append || empty) {
    guint8 header[HEADER_SIZE] = { 0 };
    guint32 v[5] = { IMAGEBIND_INDEX_VERSION, HEADER_SIZE, dim, (guint32) w->slot_size,
      BYTE_ORDER_MARK };
    memcpy (header, MAGIC, 8);
    memcpy (header + 8, v, sizeof v);
    g_byte_array_append (w->buffer, header, HEADER_SIZE);
  }
  return w;
}

/* Appends @n zero bytes to the buffer and returns where they start. */
static guint8 *
buffer_grow (GByteArray *b, gsize n)
{
  guint old = b->len;
  g_byte_array_set_size (b, old + n);
  memset (b->data + old, 0, n);
  return b->data + old;
}

static guint32
writer_string_id (ImageBindIndexWriter *w, const char *s)
{
  gpointer v = g_hash_table_lookup (w->string_ids, s);
  gsize len = strlen (s), n_slots = (STRING_HEADER + len + 1 + w->slot_size - 1) / w->slot_size;
  guint8 *rec;
  guint32 hdr[4];

  if (v)
    return GPOINTER_TO_UINT (v) - 1;
  hdr[0] = KIND_STRING;
  hdr[1] = w->n_strings;
  hdr[2] = (guint32) len;
  hdr[3] = (guint32) n_slots;
  rec = buffer_grow (w->buffer, n_slots * w->slot_size);
  memcpy (rec, hdr, sizeof hdr);
  memcpy (rec + STRING_HEADER, s, len);
  g_hash_table_insert (w->string_ids, g_strdup (s), GUINT_TO_POINTER (w->n_strings + 1));
  return w->n_strings++;
}

gboolean
imagebind_index_writer_add (ImageBindIndexWriter *w, const ImageBindIndexEntry *e, GError **error)
{
  const char *source = e->source ? e->source : "", *model = e->model_id ? e->model_id : "";
  double norm = 0;
  guint32 ids[4];
  guint64 times[3] = { e->pts, e->duration, e->stream_time };
  float scales[2];
  float *v;
  guint8 *rec;

  g_return_val_if_fail (w != NULL && e != NULL && e->vector != NULL, FALSE);
  if ((guint) e->modality >= IMAGEBIND_N_MODALITIES) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT, "index %s: invalid modality %d",
        w->path, e->modality);
    return FALSE;
  }
  if (strlen (source) > MAX_STRING || strlen (model) > MAX_STRING) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT, "index %s: source or model id "
        "longer than %u bytes", w->path, MAX_STRING);
    return FALSE;
  }
  for (guint d = 0; d < w->dim; d++) {
    if (!isfinite (e->vector[d])) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT, "index %s: embedding from %s "
          "has a non-finite value at %u", w->path, *source ? source : "(unknown)", d);
      return FALSE;
    }
    norm += (double) e->vector[d] * e->vector[d];
  }
  norm = sqrt (norm);
  if (!(norm > 0) || !isfinite ((float) norm)) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT, "index %s: embedding from %s "
        "has norm %g, cannot be normalised", w->path, *source ? source : "(unknown)", norm);
    return FALSE;
  }
  ids[0] = KIND_ENTRY;
  ids[1] = e->modality;
  ids[2] = writer_string_id (w, source);
  ids[3] = writer_string_id (w, model);
  scales[0] = e->logit_scale;
  scales[1] = (float) norm;
  rec = buffer_grow (w->buffer, w->slot_size);
  memcpy (rec, ids, sizeof ids);
  memcpy (rec + 16, times, sizeof times);
  memcpy (rec + 40, scales, sizeof scales);
  v = (float *) (rec + RECORD_HEADER);  /* the array's data is malloc-aligned */
  for (guint d = 0; d < w->dim; d++)
    v[d] = (float) (e->vector[d] / norm);
  w->n_entries++;
  if (w->buffer->len >= WRITE_BUFFER)
    return imagebind_index_writer_flush (w, error);
  return TRUE;
}

gboolean
imagebind_index_writer_flush (ImageBindIndexWriter *w, GError **error)
{
  gboolean ok = write_all (w->fd, w->buffer->data, w->buffer->len, w->path, error);
  g_byte_array_set_size (w->buffer, 0);
  return ok;
}

guint64
imagebind_index_writer_n_entries (const ImageBindIndexWriter *w)
{
  return w->n_entries;
}

guint
imagebind_index_writer_dim (const ImageBindIndexWriter *w)
{
  return w->dim;
}

gboolean
imagebind_index_writer_close (ImageBindIndexWriter *w, GError **error)
{
  gboolean ok;

  if (!w)
    return TRUE;
  ok = imagebind_index_writer_flush (w, error);
  if (close (w->fd) != 0 && ok) {
    int e = errno;
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FILE, "cannot close index %s: %s",
        w->path, g_strerror (e));
    ok = FALSE;
  }
  w->fd = -1;
  writer_free (w);
  return ok;
}
