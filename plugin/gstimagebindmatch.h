#ifndef __GST_IMAGE_BIND_MATCH_H__
#define __GST_IMAGE_BIND_MATCH_H__

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>
#include "gstimagebindmatchmeta.h"
#include "gstimagebindmodelhandle.h"
#include "gstimagebindmatchscore.h"
#include "gstimagebindquery.h"

G_BEGIN_DECLS

#define GST_TYPE_IMAGE_BIND_MATCH (gst_image_bind_match_get_type ())
G_DECLARE_FINAL_TYPE (GstImageBindMatch, gst_image_bind_match, GST, IMAGE_BIND_MATCH,
    GstBaseTransform)

struct _GstImageBindMatch {
  GstBaseTransform parent;

  /* properties, under the object lock */
  gchar *model_path;
  gchar **prompts;
  gchar *prompts_file;
  guint prompts_cookie;         /* bumped whenever `prompts`, `prompts-file` or the application
                                 * queries change */
  GPtrArray *app_queries;       /* GstImageBindQuery from "add-query", after the prompts */
  GstImageBindMatchMode mode;
  guint top_k;
  gdouble threshold;
  guint64 min_duration;
  guint64 cooldown;
  gboolean post_messages;
  gint n_threads;
  gboolean custom_meta;

  /* the text model: between READY and NULL when `model` is set, else the encoders' model,
   * between READY->PAUSED and PAUSED->READY (handle_from_upstream) */
  GstImageBindModelHandle *handle;
  gboolean handle_from_upstream;

  /* the prompt embeddings: installed by start() or by the streaming thread, used by it only */
  gchar **query_labels;
  guint n_queries;
  gfloat *query_embeddings;     /* n_queries x dim, as the model outputs them */
  guint query_cookie;           /* the prompts_cookie they were computed for */
  gboolean have_queries;
  GHashTable *media_cache;      /* reference media embeddings, filled on READY->PAUSED */

  /* Queries changed while PAUSED or PLAYING are embedded on a thread of their own, so that
   * the streaming thread never waits for them. Under job_lock (taken before the object lock): */
  GMutex job_lock;
  gboolean started;             /* between start() and stop(): changes go to the thread */
  GThread *job;                 /* the embedding thread, joined once done (or by stop()) */
  gpointer job_data;            /* its QuerySet */
  gboolean job_done;            /* its result can be swapped in */
  GstImageBindDetector *detectors;      /* GST_IMAGE_BIND_N_MODALITIES x n_queries */
  gboolean warned_dim;
  gboolean warned_model;
  guint64 n_non_finite;         /* embeddings skipped for a NaN or infinity (warned at the first) */
  gboolean warned_no_prompts;
  gboolean warned_no_embeddings;
  gboolean seen_embedding;      /* an embedding arrived since READY->PAUSED */
  gboolean seen_buffer;
  GstClockTime first_running_time;      /* of the first buffer, for the no-embedding warning */
  gchar *last_text;             /* what text_src says until the next result, or NULL */

  /* the text_src request pad (under the object lock), and its stream (streaming thread) */
  GstPad *text_pad;
  guint text_pad_generation;    /* object lock: bumped for every new text_src pad */
  guint text_started_generation;        /* the pad whose stream was started */
  gboolean text_need_start;     /* stream-start + caps not sent yet */
  gboolean text_need_segment;
};

GST_ELEMENT_REGISTER_DECLARE (imagebindmatch);

G_END_DECLS

#endif
