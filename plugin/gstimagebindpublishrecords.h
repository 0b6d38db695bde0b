/* imagebindpublish: the JSON records made of the ImageBind metas, and the bodies made of
 * them (streaming thread for the records, worker thread for the bodies). The record fields
 * are documented in the element's doc comment (gstimagebindpublish.c). */
#pragma once

#include <gst/gst.h>
#include <json-glib/json-glib.h>

#include "gstimagebindmeta.h"
#include "gstimagebindmatchmeta.h"

G_BEGIN_DECLS

/* One queued record: the JSON object (sealed, never changed once queued) and, for Qdrant, the
 * point made of it (NULL when the record is not an embedding). */
typedef struct {
  JsonNode *record;
  JsonNode *point;
  gint64 queued_at;             /* g_get_monotonic_time () */
} GstImageBindPublishRecord;

void gst_image_bind_publish_record_free (GstImageBindPublishRecord * r);

/* What a transport sends of @r: the point (Qdrant) or the record; NULL: nothing. */
static inline JsonNode *
gst_image_bind_publish_record_payload (const GstImageBindPublishRecord * r, gboolean qdrant)
{
  return qdrant ? r->point : r->record;
}

/* TRUE when every component of @e's vector is finite: only such embeddings are published. */
gboolean gst_image_bind_publish_embedding_is_finite (const GstImageBindEmbeddingMeta * e);

JsonNode *gst_image_bind_publish_embedding_record (const gchar * source,
    const GstImageBindEmbeddingMeta * e, gboolean include_vector);
/* The Qdrant point of @e; @m: a match meta of the same modality and pts, or NULL. */
JsonNode *gst_image_bind_publish_embedding_point (const gchar * source,
    const GstImageBindEmbeddingMeta * e, const GstImageBindMatchMeta * m);
JsonNode *gst_image_bind_publish_match_record (const gchar * source,
    const GstImageBindMatchMeta * m);
JsonNode *gst_image_bind_publish_detection_record (const gchar * source,
    const GstImageBindMatchMeta * m, const GstImageBindMatchResult * r, gboolean start);
/* The "stop" of a detection still open at EOS or a flush: no span, no score. */
JsonNode *gst_image_bind_publish_detection_end_record (const gchar * source,
    GstImageBindModality modality, const gchar * label, guint index);

/* The payloads of @batch (GstImageBindPublishRecord *): one JSON line each (@lines), or a JSON
 * array ({"points": [...]} for Qdrant). */
gchar *gst_image_bind_publish_batch_body (GPtrArray * batch, gboolean qdrant, gboolean lines);

G_END_DECLS
