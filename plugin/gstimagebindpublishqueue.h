/* imagebindpublish: the bounded queue of records and the worker thread that delivers them
 * through a transport (gstimagebindpublishtransport.h), with batches, a whole-request time
 * limit, retries with back-off and counted drops.
 *
 * Threads: the streaming thread pushes records (never waits, except at EOS in _drain ());
 * the worker thread (its own GMainContext) runs the transport. The element creates the queue
 * at READY->PAUSED with a finished configuration and stops it at PAUSED->READY; a stopped
 * queue keeps its counters (the element's read-only properties) until it is freed. */
#pragma once

#include <gst/gst.h>

#include "gstimagebindpublishrecords.h"
#include "gstimagebindpublishtransport.h"

G_BEGIN_DECLS

/* ---- the queue ---- */

typedef struct _GstImageBindPublishQueue GstImageBindPublishQueue;

typedef struct {
  guint64 sent, failed, dropped, rejected, queued;
} GstImageBindPublishCounts;

/* Takes @cfg (cleared on return) and starts the worker. */
GstImageBindPublishQueue *gst_image_bind_publish_queue_start (GstElement * element,
    GstImageBindPublishConfig * cfg);
/* Streaming thread: queues @record and @point (taken), or drops and counts them when the
 * queue is full. FALSE when dropped. */
gboolean gst_image_bind_publish_queue_push (GstImageBindPublishQueue * q, JsonNode * record,
    JsonNode * point);
/* Counts an embedding refused before queueing (non-finite vector); TRUE for the first. */
gboolean gst_image_bind_publish_queue_reject (GstImageBindPublishQueue * q);
/* EOS: sends what is queued, waits at most @timeout for it, drops and counts (with a
 * warning) what is left, and posts the stats. */
void gst_image_bind_publish_queue_drain (GstImageBindPublishQueue * q, GstClockTime timeout);
/* A new stream (after EOS, or a flush): batches are full ones again. */
void gst_image_bind_publish_queue_new_stream (GstImageBindPublishQueue * q);
/* Stops the worker; what was not delivered is dropped and counted, with a warning. */
void gst_image_bind_publish_queue_stop (GstImageBindPublishQueue * q);
void gst_image_bind_publish_queue_get_counts (GstImageBindPublishQueue * q,
    GstImageBindPublishCounts * counts);
void gst_image_bind_publish_queue_free (GstImageBindPublishQueue * q);

G_END_DECLS
