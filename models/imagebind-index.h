/* Embedding index files: a flat, append-only list of embeddings with where they came from
 * (source, modality, times, model), searched exactly by one BLAS product over the mapped file.
 * The format is described in models/INDEX.md.
 *
 *   GError *err = NULL;
 *   ImageBindIndexWriter *w = imagebind_index_writer_open ("clips.ibx", 1024, TRUE, &err);
 *   ImageBindIndexEntry e = { .modality = IMAGEBIND_MODALITY_VISION, .source = "a.mp4",
 *       .model_id = "imagebind_huge:m.gguf", .pts = 0, .duration = IMAGEBIND_INDEX_TIME_NONE,
 *       .stream_time = 0, .logit_scale = 1.0f, .vector = v };
 *   imagebind_index_writer_add (w, &e, &err);
 *   imagebind_index_writer_close (w, &err);          // flushes; frees the writer
 *
 *   ImageBindIndex *idx = imagebind_index_open ("clips.ibx", &err);   // mapped read-only
 *   ImageBindIndexHit hits[10];
 *   guint n = imagebind_index_search (idx, query, 10, hits, 0);
 *   imagebind_index_get_entry (idx, hits[0].entry, &e);               // e.source, e.pts ...
 *   imagebind_index_close (idx);
 *
 * Errors are IMAGEBIND_ERROR_FILE (cannot open, read, write or map) and IMAGEBIND_ERROR_FORMAT
 * (not an index file, another version, corrupt or truncated), with messages naming the file and
 * the byte offset of the problem.
 */
#ifndef IMAGEBIND_INDEX_H
#define IMAGEBIND_INDEX_H

#include "imagebind.h"

G_BEGIN_DECLS

/* The format version this library reads and writes. */
#define IMAGEBIND_INDEX_VERSION 1
/* A time that is not known (GST_CLOCK_TIME_NONE). */
#define IMAGEBIND_INDEX_TIME_NONE G_MAXUINT64

typedef struct {
  ImageBindModality modality;
  const char *source;      /* where the embedding came from (URI, file name, label); "" = unknown */
  const char *model_id;    /* "<general.name>:<file basename>"; "" = unknown */
  guint64 pts;             /* ns; IMAGEBIND_INDEX_TIME_NONE if unknown */
  guint64 duration;        /* ns; IMAGEBIND_INDEX_TIME_NONE if unknown */
  guint64 stream_time;     /* ns; IMAGEBIND_INDEX_TIME_NONE if unknown */
  float logit_scale;       /* the factor the model's output carried */
  float norm;              /* read: L2 norm of the vector as it was given to the writer */
  const float *vector;     /* write: dim floats as the model outputs them (stored L2-normalised);
                            * read: the stored unit vector, valid while the index is open */
} ImageBindIndexEntry;

/* ---- writing ---- */

typedef struct _ImageBindIndexWriter ImageBindIndexWriter;

/* Opens @path for writing embeddings of @dim floats. One writer per file at a time: the file
 * is locked (flock) until the writer is closed, and a second writer fails with
 * G_IO_ERROR_BUSY ("being written by another writer") without touching the file.
 * @append: keep the entries of an existing index (which must be valid and of the same @dim; a
 * missing or empty file is created); otherwise the file is truncated. */
IMAGEBIND_API
ImageBindIndexWriter *imagebind_index_writer_open (const char *path, guint dim, gboolean append,
    GError **error);
/* Appends one entry (buffered; the vector is L2-normalised on the way). Refuses a vector with
 * a non-finite value or zero norm, an invalid modality and strings with more than 65535 bytes. */
IMAGEBIND_API
gboolean imagebind_index_writer_add (ImageBindIndexWriter *writer, const ImageBindIndexEntry *entry,
    GError **error);
/* Writes the buffered entries to the file. */
IMAGEBIND_API
gboolean imagebind_index_writer_flush (ImageBindIndexWriter *writer, GError **error);
IMAGEBIND_API
guint64 imagebind_index_writer_n_entries (const ImageBindIndexWriter *writer);
IMAGEBIND_API
guint imagebind_index_writer_dim (const ImageBindIndexWriter *writer);
/* Flushes, closes and frees @writer (also on failure); FALSE if the flush or close failed. */
IMAGEBIND_API
gboolean imagebind_index_writer_close (ImageBindIndexWriter *writer, GError **error);

/* ---- reading and searching ---- */

typedef struct _ImageBindIndex ImageBindIndex;

/* Maps @path read-only and validates every record header and string (not the vectors' values:
 * a non-finite stored value only spoils that entry's score). */
IMAGEBIND_API
ImageBindIndex *imagebind_index_open (const char *path, GError **error);
IMAGEBIND_API
void imagebind_index_close (ImageBindIndex *index);

IMAGEBIND_API
guint imagebind_index_dim (const ImageBindIndex *index);
IMAGEBIND_API
gsize imagebind_index_n_entries (const ImageBindIndex *index);
/* Entry @i (0-based, in the order they were written); FALSE if out of range. The strings and
 * the vector point into the mapping. */
IMAGEBIND_API
gboolean imagebind_index_get_entry (const ImageBindIndex *index, gsize i, ImageBindIndexEntry *entry);

typedef struct {
  gsize entry;   /* index of the entry */
  float score;   /* cosine similarity of the entry with the query */
} ImageBindIndexHit;

/* The @k entries most similar to @query (dim floats, any non-zero norm: it is normalised first),
 * best first; equal scores in entry order. @modality_mask: bit (1 << modality) set for each
 * modality to consider, 0 = all. Returns the number of hits written (min(k, matching entries)).
 * All scores come from one matrix-vector product over the mapped vectors (imagebind_scores). */
IMAGEBIND_API
guint imagebind_index_search (const ImageBindIndex *index, const float *query, guint k,
    guint modality_mask, ImageBindIndexHit *hits, int n_threads);

/* scores[i] = dot (rows + i * row_stride, query) for i < n_rows (row_stride >= dim, in floats),
 * through the runtime's BLAS. */
IMAGEBIND_API
void imagebind_scores (const float *rows, gsize n_rows, gsize row_stride, guint dim,
    const float *query, float *scores, int n_threads);

/* The @k largest of @scores (@n values, NaN never selected), best first, ties in index order;
 * @keep (optional) filters indices. Returns the number written. */
IMAGEBIND_API
guint imagebind_top_k (const float *scores, gsize n, guint k,
    gboolean (*keep) (gsize i, gpointer user_data), gpointer user_data, ImageBindIndexHit *hits);

G_END_DECLS

#endif /* IMAGEBIND_INDEX_H */
