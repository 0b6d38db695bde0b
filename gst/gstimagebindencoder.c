/**
 * SECTION:gstimagebindencoder
 * @title: GstImageBindEncoder
 * @short_description: Base class of the ImageBind encoder elements
 * @see_also: #GstImageBindEmbeddingMeta
 *
 * A pass-through #GstBaseTransform: media buffers flow on untouched (no copy of their memory)
 * and carry a #GstImageBindEmbeddingMeta when an embedding is ready.
 *
 * Model: the #GstImageBindEncoder:model file (else $IMAGEBIND_MODEL, else the shipped default
 * model) is loaded on NULL->READY; a missing, unreadable or invalid file, or one without the
 * element's modality, fails that state change with a RESOURCE error naming the file and the
 * reason. Elements of one process using the same file (whatever the path) share one mapping.
 *
 * Live mode (#GstImageBindEncoder:sync FALSE, the default): inference runs on a worker thread.
 * The streaming thread copies the input of an embedding when one is due
 * (#GstImageBindEncoder:interval) and never waits: a due input that arrives while the worker is
 * busy waits for it in a single slot, where a newer due input replaces it, so the worker goes
 * on with the newest input as soon as it is done and the others pass without an embedding (work
 * is dropped, never buffers).
 * A result is attached to the first buffer that passes after it is ready and carries the span
 * (pts, duration, stream-time, running-time) of the input it describes. The element adds no
 * latency in this mode and answers latency queries with upstream's latency unchanged.
 *
 * Sync mode: the streaming thread embeds every due input and attaches the result to the buffer
 * that completes it: reproducible, for files and tests. Latency queries then add the inference
 * time (the longest measured so far, estimated from the model's FLOPs before the first
 * inference); a latency message is posted when inference turns out slower than reported.
 *
 * Errors: an inference that fails (an input the front end refuses, or an embedding that is not
 * finite: NaN or infinite weights in the model file, or an overflow inside the encoder) posts
 * one GST_ELEMENT_ERROR (STREAM, FAILED, naming the cause) and the element returns
 * GST_FLOW_ERROR from then on, without further messages, until it is stopped (PAUSED->READY).
 * An error rather than a counted warning, also in live pipelines: a model that produces NaN
 * produces it for every input, and a stream going on without embeddings would hide that.
 *
 * Flushes drop pending work and results and restart windows; PAUSED->READY stops the worker.
 * At EOS the partial window (windowed modalities) is embedded, inference in progress is waited
 * for, and embeddings not yet attached are pushed on an empty buffer flagged GAP and DROPPABLE
 * just before EOS.
 *
 * Since: 0.1
 */

/* GstImageBindEncoder: pass-through base class of the ImageBind encoder elements.
 *
 * Threads. The streaming thread never waits for inference in live mode: per buffer it decides
 * whether an embedding is due (interval), copies what the subclass needs, puts the copy in the
 * worker's one-job slot (replacing a job the busy worker has not started: so the worker always
 * takes the newest input, without idling until the next one arrives) and attaches any finished
 * result to the buffer passing at that moment. In sync mode it runs inference itself, so every due buffer gets its own embedding.
 * Flushes bump an epoch; results of an older epoch are dropped.
 *
 * Buffers: the element is in pass-through mode, and a buffer is only made writable (a shallow
 * copy of the GstBuffer when it is shared: memory is never copied) when a meta is added.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstimagebindencoder.h"
#include "gstimagebindmeta.h"
#include "gstimagebindmodelcache.h"

#include <imagebind-tokenizer.h>

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_image_bind_encoder_debug);
#define GST_CAT_DEFAULT gst_image_bind_encoder_debug

#define DEFAULT_N_THREADS 0
#define DEFAULT_INTERVAL 0
#define DEFAULT_SYNC FALSE
#define DEFAULT_CUSTOM_META FALSE
#define DEFAULT_SIMULATE_LATENCY 0
/* Inference speed assumed for the latency estimate before the first measurement. */
#define ESTIMATED_GFLOPS_PER_SECOND 10.0

enum {
  PROP_0,
  PROP_MODEL,
  PROP_N_THREADS,
  PROP_INTERVAL,
  PROP_SYNC,
  PROP_CUSTOM_META,
  PROP_SIMULATE_LATENCY,
};

/* Work for the model: a copy of the input and the span it covers. */
typedef struct {
  gpointer input;
  GDestroyNotify free_input;
  GstClockTime pts, duration, stream_time, running_time;
  guint epoch;
} Job;

typedef struct {
  gfloat *vector;
  GstClockTime pts, duration, stream_time, running_time;
  guint epoch;
} Result;

typedef struct {
  /* settings, under the object lock */
  gchar *model_path;
  gint n_threads;
  guint64 interval;
  gboolean sync;
  gboolean custom_meta;
  guint64 simulate_latency;

  /* model, set on NULL->READY, cleared on READY->NULL */
  ImageBindModel *model;
  ImageBindContext *ctx;
  gchar *model_file;
  gchar *model_id;
  guint out_dim;
  gfloat logit_scale;

  /* worker: everything below is under `lock` */
  GMutex lock;
  GCond cond;
  GThread *thread;
  gboolean stopping;
  Job *job;                     /* waiting for the worker */
  gboolean busy;                /* the worker is running a job */
  GQueue results;               /* Result *, ready to attach */
  guint epoch;
  GError *error;                /* inference failure, reported by the streaming thread */
  GstClockTime inference_time;  /* longest inference measured */
  GstClockTime reported_latency;

  /* streaming thread only */
  gboolean failed;              /* an error was posted: GST_FLOW_ERROR until stopped */
  GstClockTime last_taken;     /* pts of the last input embedded (interval) */
  gboolean draining;
  GstClockTime last_end;        /* end of the last buffer pushed, for the EOS buffer */
} GstImageBindEncoderPrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_CODE (GstImageBindEncoder, gst_image_bind_encoder,
    GST_TYPE_BASE_TRANSFORM, G_ADD_PRIVATE (GstImageBindEncoder);
    GST_DEBUG_CATEGORY_INIT (gst_image_bind_encoder_debug, "imagebindencoder", 0,
        "ImageBind encoder base class"));

#define GET_PRIV(self) ((GstImageBindEncoderPrivate *) \
    gst_image_bind_encoder_get_instance_private (GST_IMAGE_BIND_ENCODER (self)))

static void
job_free (Job * job)
{
  if (job->input && job->free_input)
    job->free_input (job->input);
  g_free (job);
}

static void
result_free (Result * result)
{
  g_free (result->vector);
  g_free (result);
}

/* ---- model loading ---- */

/* The path to load (gst_image_bind_model_path_resolve's rules); NULL with a message naming what
 * was tried when none exists. */
static gchar *
resolve_model_path (GstImageBindEncoder * self, gchar ** tried)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  gchar *property, *path;

  GST_OBJECT_LOCK (self);
  property = g_strdup (priv->model_path);
  GST_OBJECT_UNLOCK (self);
  path = gst_image_bind_model_path_resolve (property, tried);
  g_free (property);
  return path;
}

/* The element's factory name ("imagebindaudio"), for messages; the type name without one. */
static const gchar *
element_name (GstImageBindEncoder * self)
{
  GstElementFactory *factory = gst_element_get_factory (GST_ELEMENT (self));

  return factory ? GST_OBJECT_NAME (factory) : G_OBJECT_TYPE_NAME (self);
}

static gboolean
load_model (GstImageBindEncoder * self)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  GstImageBindEncoderClass *klass = GST_IMAGE_BIND_ENCODER_GET_CLASS (self);
  ImageBindModality modality = (ImageBindModality) klass->modality;
  ImageBindContextParams params = imagebind_context_default_params ();
  GError *err = NULL;
  gchar *tried = NULL, *path, *canonical = NULL, *base;
  const gchar *name;

  path = resolve_model_path (self, &tried);
  if (!path) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No ImageBind model: set the 'model' property to a .gguf file (see README); %s.",
            tried), ("no model file found"));
    g_free (tried);
    return FALSE;
  }

  priv->model = gst_image_bind_model_cache_acquire (path, &canonical, &err);
  if (!priv->model) {
    if (err->domain == G_FILE_ERROR) {
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
          ("ImageBind model file \"%s\" cannot be opened: %s.", path, err->message),
          ("realpath(%s) failed", path));
    } else if (err->domain == IMAGEBIND_ERROR && err->code == IMAGEBIND_ERROR_FILE) {
      GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
          ("Could not read ImageBind model file \"%s\": %s.", path, err->message),
          ("imagebind_model_load failed"));
    } else {
      GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
          ("\"%s\" is not a usable ImageBind model: %s.", path, err->message),
          ("imagebind_model_load failed"));
    }
    g_clear_error (&err);
    g_free (path);
    return FALSE;
  }

  /* e.g. a CLIP-family file (vision and text only) in imagebindaudio */
  if (!imagebind_model_require_modality (priv->model, modality, path, element_name (self),
          &err)) {
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED, ("%s.", err->message),
        ("choose a model with this modality"));
    g_clear_error (&err);
    gst_image_bind_model_cache_release (priv->model);
    priv->model = NULL;
    g_free (canonical);
    g_free (path);
    return FALSE;
  }

  if (modality == IMAGEBIND_MODALITY_TEXT && !imagebind_model_get_tokenizer (priv->model, &err)) {
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
        ("ImageBind model \"%s\" cannot tokenise text: %s.", path, err->message),
        ("the model has a text encoder but no tokenizer"));
    g_clear_error (&err);
    gst_image_bind_model_cache_release (priv->model);
    priv->model = NULL;
    g_free (canonical);
    g_free (path);
    return FALSE;
  }

  GST_OBJECT_LOCK (self);
  params.n_threads = priv->n_threads;
  GST_OBJECT_UNLOCK (self);
  priv->ctx = imagebind_context_new (priv->model, &params);
  priv->model_file = canonical;
  priv->out_dim = imagebind_model_out_dim (priv->model);
  priv->logit_scale = imagebind_model_logit_scale (priv->model, modality);
  name = imagebind_model_name (priv->model);
  base = g_path_get_basename (canonical);
  priv->model_id = g_strdup_printf ("%s:%s", name ? name : "", base);
  g_free (base);

  GST_INFO_OBJECT (self, "loaded %s (%s), %u-dimensional, logit scale %g", path,
      priv->model_id, priv->out_dim, priv->logit_scale);
  g_free (path);
  return TRUE;
}

static void
unload_model (GstImageBindEncoder * self)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);

  g_clear_pointer (&priv->ctx, imagebind_context_free);
  if (priv->model) {
    gst_image_bind_model_cache_release (priv->model);
    priv->model = NULL;
  }
  g_clear_pointer (&priv->model_file, g_free);
  g_clear_pointer (&priv->model_id, g_free);
}

ImageBindModel *
gst_image_bind_encoder_get_model (GstImageBindEncoder * self)
{
  g_return_val_if_fail (GST_IS_IMAGE_BIND_ENCODER (self), NULL);
  return GET_PRIV (self)->model;
}

/* ---- inference ---- */

/* Any thread; never concurrently (sync mode waits for the worker to be idle). */
static Result *
run_job (GstImageBindEncoder * self, Job * job, GError ** error)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  GstImageBindEncoderClass *klass = GST_IMAGE_BIND_ENCODER_GET_CLASS (self);
  gfloat *tensor = NULL;
  gint64 shape[8] = { 0 };
  guint n_dims = 0;
  gint64 start, elapsed;
  guint64 simulate;
  Result *result;
  gboolean ok;

  start = g_get_monotonic_time ();
  result = g_new0 (Result, 1);
  result->vector = g_new0 (gfloat, priv->out_dim);
  if (klass->modality == GST_IMAGE_BIND_MODALITY_TEXT) {
    /* Text has no float tensor: the input is one sequence of token ids. */
    ok = imagebind_embed_text (priv->ctx, job->input, 1, result->vector, error);
  } else {
    ok = klass->prepare (self, job->input, &tensor, shape, &n_dims, error) &&
        imagebind_embed (priv->ctx, (ImageBindModality) klass->modality, tensor, shape, n_dims,
        result->vector, error);
    g_free (tensor);
  }
  if (!ok) {
    result_free (result);
    return NULL;
  }
  result->pts = job->pts;
  result->duration = job->duration;
  result->stream_time = job->stream_time;
  result->running_time = job->running_time;
  result->epoch = job->epoch;

  GST_OBJECT_LOCK (self);
  simulate = priv->simulate_latency;
  GST_OBJECT_UNLOCK (self);

  g_mutex_lock (&priv->lock);
  if (simulate > 0) {
    /* Test hook: a slow model. Interrupted when the element stops. */
    gint64 deadline = g_get_monotonic_time () + (gint64) (simulate / GST_USECOND);
    while (!priv->stopping && g_cond_wait_until (&priv->cond, &priv->lock, deadline));
  }
  elapsed = g_get_monotonic_time () - start;
  priv->inference_time = MAX (priv->inference_time, (GstClockTime) elapsed * GST_USECOND);
  g_mutex_unlock (&priv->lock);

  GST_LOG_OBJECT (self, "embedded input at %" GST_TIME_FORMAT " in %" G_GINT64_FORMAT " us",
      GST_TIME_ARGS (job->pts), elapsed);
  return result;
}

static gpointer
worker_main (gpointer data)
{
  GstImageBindEncoder *self = data;
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);

  g_mutex_lock (&priv->lock);
  while (TRUE) {
    Job *job;
    Result *result;
    GError *err = NULL;

    while (!priv->stopping && !priv->job)
      g_cond_wait (&priv->cond, &priv->lock);
    if (priv->stopping)
      break;
    job = priv->job;
    priv->job = NULL;
    priv->busy = TRUE;
    g_mutex_unlock (&priv->lock);

    result = run_job (self, job, &err);
    job_free (job);

    g_mutex_lock (&priv->lock);
    priv->busy = FALSE;
    if (result && result->epoch == priv->epoch)
      g_queue_push_tail (&priv->results, result);
    else if (result)
      result_free (result);
    if (err && !priv->error && !priv->stopping)
      priv->error = err;
    else
      g_clear_error (&err);
    g_cond_broadcast (&priv->cond);
  }
  g_mutex_unlock (&priv->lock);
  return NULL;
}

/* Called with priv->lock held. */
static void
wait_worker_idle_locked (GstImageBindEncoderPrivate * priv)
{
  while ((priv->job || priv->busy) && !priv->stopping)
    g_cond_wait (&priv->cond, &priv->lock);
}

static gboolean
interval_due (GstImageBindEncoder * self, GstClockTime pts)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  guint64 interval;

  GST_OBJECT_LOCK (self);
  interval = priv->interval;
  GST_OBJECT_UNLOCK (self);

  if (interval == 0 || !GST_CLOCK_TIME_IS_VALID (pts) ||
      !GST_CLOCK_TIME_IS_VALID (priv->last_taken))
    return TRUE;
  /* Whichever way time goes: reverse playback brings decreasing timestamps. */
  return (pts >= priv->last_taken ? pts - priv->last_taken : priv->last_taken - pts) >= interval;
}

static void
interval_taken (GstImageBindEncoder * self, GstClockTime pts)
{
  GET_PRIV (self)->last_taken = pts;
}

static gboolean
is_sync (GstImageBindEncoder * self)
{
  gboolean sync;

  GST_OBJECT_LOCK (self);
  sync = GET_PRIV (self)->sync;
  GST_OBJECT_UNLOCK (self);
  return sync;
}

void
gst_image_bind_encoder_submit_input (GstImageBindEncoder * self, gpointer input,
    GDestroyNotify free_func, GstClockTime pts, GstClockTime duration)
{
  GstImageBindEncoderPrivate *priv;
  GstSegment *segment;
  Job *job;

  g_return_if_fail (GST_IS_IMAGE_BIND_ENCODER (self));
  priv = GET_PRIV (self);

  if (!priv->draining && !interval_due (self, pts)) {
    GST_LOG_OBJECT (self, "input at %" GST_TIME_FORMAT " not due", GST_TIME_ARGS (pts));
    if (free_func)
      free_func (input);
    return;
  }

  job = g_new0 (Job, 1);
  job->input = input;
  job->free_input = free_func;
  job->pts = pts;
  job->duration = duration;
  segment = &GST_BASE_TRANSFORM (self)->segment;
  job->stream_time = GST_CLOCK_TIME_NONE;
  job->running_time = GST_CLOCK_TIME_NONE;
  if (GST_CLOCK_TIME_IS_VALID (pts) && segment->format == GST_FORMAT_TIME) {
    job->stream_time = gst_segment_to_stream_time (segment, GST_FORMAT_TIME, pts);
    job->running_time = gst_segment_to_running_time (segment, GST_FORMAT_TIME, pts);
  }

  g_mutex_lock (&priv->lock);
  job->epoch = priv->epoch;

  if (is_sync (self)) {
    Result *result;
    GError *err = NULL;

    /* The context serves one call at a time: let a job of live mode finish first. */
    wait_worker_idle_locked (priv);
    g_mutex_unlock (&priv->lock);
    result = run_job (self, job, &err);
    job_free (job);
    g_mutex_lock (&priv->lock);
    if (result)
      g_queue_push_tail (&priv->results, result);
    if (err && !priv->error)
      priv->error = err;
    else
      g_clear_error (&err);
    g_mutex_unlock (&priv->lock);
    interval_taken (self, pts);
    return;
  }

  /* Live: at EOS there is no stream left to stall, so wait for the worker; otherwise the job
   * waits in the slot, replacing one the busy worker has not started (that work is dropped,
   * never the frame). Waiting for the next input after the worker is done would leave it idle
   * for up to a frame: with 40-80 ms inferences at 25 frames/s, half the frames. */
  if (priv->draining)
    wait_worker_idle_locked (priv);
  if (!priv->stopping) {
    Job *older = priv->job;

    priv->job = job;
    g_cond_broadcast (&priv->cond);
    g_mutex_unlock (&priv->lock);
    if (older) {
      GST_LOG_OBJECT (self, "input at %" GST_TIME_FORMAT " replaced by the one at %"
          GST_TIME_FORMAT " before the worker took it", GST_TIME_ARGS (older->pts),
          GST_TIME_ARGS (pts));
      job_free (older);
    }
    interval_taken (self, pts);
  } else {
    g_mutex_unlock (&priv->lock);
    GST_LOG_OBJECT (self, "worker busy, input at %" GST_TIME_FORMAT " passes without embedding",
        GST_TIME_ARGS (pts));
    job_free (job);
  }
}

/* Posts a pending inference error; FALSE if there was one. */
static gboolean
check_error (GstImageBindEncoder * self)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  GError *err;

  g_mutex_lock (&priv->lock);
  err = priv->error;
  priv->error = NULL;
  g_mutex_unlock (&priv->lock);
  if (!err)
    return !priv->failed;
  if (!priv->failed)
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("ImageBind inference failed: %s", err->message),
        ("model %s", priv->model_file));
  priv->failed = TRUE;
  g_error_free (err);
  return FALSE;
}

static GList *
take_results (GstImageBindEncoder * self)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  GList *list;

  g_mutex_lock (&priv->lock);
  list = priv->results.head;
  g_queue_init (&priv->results);
  g_mutex_unlock (&priv->lock);
  return list;
}

static void
attach_results (GstImageBindEncoder * self, GstBuffer * buffer, GList * results)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  GstImageBindEncoderClass *klass = GST_IMAGE_BIND_ENCODER_GET_CLASS (self);
  gboolean custom;
  GList *l;

  GST_OBJECT_LOCK (self);
  custom = priv->custom_meta;
  GST_OBJECT_UNLOCK (self);

  for (l = results; l; l = l->next) {
    Result *r = l->data;
    GstImageBindEmbeddingMeta *meta;

    meta = gst_buffer_add_imagebind_embedding_meta (buffer, klass->modality, r->vector,
        priv->out_dim, priv->logit_scale, priv->model_id);
    meta->pts = r->pts;
    meta->duration = r->duration;
    meta->stream_time = r->stream_time;
    meta->running_time = r->running_time;
    if (custom)
      gst_buffer_add_imagebind_embedding_custom_meta (buffer, meta);
  }
}

/* When inference turned out slower than the latency reported in sync mode, ask the pipeline to
 * query again. */
static void
maybe_post_latency (GstImageBindEncoder * self)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  gboolean post;

  if (!is_sync (self))
    return;
  g_mutex_lock (&priv->lock);
  post = GST_CLOCK_TIME_IS_VALID (priv->reported_latency) &&
      priv->inference_time > priv->reported_latency + priv->reported_latency / 4;
  if (post)
    priv->reported_latency = GST_CLOCK_TIME_NONE;
  g_mutex_unlock (&priv->lock);
  if (post)
    gst_element_post_message (GST_ELEMENT (self), gst_message_new_latency (GST_OBJECT (self)));
}

/* ---- GstBaseTransform ---- */

static GstFlowReturn
gst_image_bind_encoder_prepare_output_buffer (GstBaseTransform * trans, GstBuffer * inbuf,
    GstBuffer ** outbuf)
{
  GstImageBindEncoder *self = GST_IMAGE_BIND_ENCODER (trans);
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  GstImageBindEncoderClass *klass = GST_IMAGE_BIND_ENCODER_GET_CLASS (self);
  GstClockTime pts = GST_BUFFER_PTS (inbuf);
  GstFlowReturn ret = GST_FLOW_OK;
  GList *results;

  if (priv->failed)
    return GST_FLOW_ERROR;      /* the error was posted once */
  if (klass->collect) {
    /* GAP buffers too: what they mean is the modality's business (audio: silence); so are
     * DISCONT flags (in reverse playback decoders flag every chunk, yet the chunks continue
     * each other backwards) */
    ret = klass->collect (self, inbuf);
  } else if (interval_due (self, pts)) {
    GDestroyNotify free_func = NULL;
    gpointer input = klass->copy_input (self, inbuf, &free_func);

    if (!input)
      ret = GST_FLOW_ERROR;     /* the subclass posted the error */
    else
      gst_image_bind_encoder_submit_input (self, input, free_func, pts,
          GST_BUFFER_DURATION (inbuf));
  }

  if (ret != GST_FLOW_OK) {
    priv->failed = ret == GST_FLOW_ERROR;       /* the subclass posted the error */
    return ret;
  }
  if (!check_error (self))
    return GST_FLOW_ERROR;
  maybe_post_latency (self);

  results = take_results (self);
  if (!results) {
    *outbuf = inbuf;
  } else {
    /* A shared buffer becomes a new GstBuffer sharing the same memory: no media copy. */
    *outbuf = gst_buffer_is_writable (inbuf) ? inbuf : gst_buffer_copy (inbuf);
    attach_results (self, *outbuf, results);
    g_list_free_full (results, (GDestroyNotify) result_free);
  }

  if (GST_BUFFER_PTS_IS_VALID (inbuf))
    priv->last_end = pts + (GST_BUFFER_DURATION_IS_VALID (inbuf) ? GST_BUFFER_DURATION (inbuf) : 0);
  return GST_FLOW_OK;
}

/* Nothing to do: the work happens in prepare_output_buffer, which decides whether the buffer
 * has to become writable. */
static GstFlowReturn
gst_image_bind_encoder_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  return GST_FLOW_OK;
}

static void
flush_work (GstImageBindEncoder * self)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  GstImageBindEncoderClass *klass = GST_IMAGE_BIND_ENCODER_GET_CLASS (self);

  g_mutex_lock (&priv->lock);
  priv->epoch++;
  g_clear_pointer (&priv->job, job_free);
  g_queue_clear_full (&priv->results, (GDestroyNotify) result_free);
  g_mutex_unlock (&priv->lock);
  if (klass->reset)
    klass->reset (self);
  priv->last_taken = GST_CLOCK_TIME_NONE;
  priv->last_end = GST_CLOCK_TIME_NONE;
}

/* At EOS: embed the partial window, wait for the worker, and deliver what is left on an empty
 * buffer flagged GAP and DROPPABLE (there is no later media buffer to carry it). */
static GstFlowReturn
drain (GstImageBindEncoder * self)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  GstImageBindEncoderClass *klass = GST_IMAGE_BIND_ENCODER_GET_CLASS (self);
  GstBuffer *buf;
  GList *results;

  if (priv->failed)
    return GST_FLOW_ERROR;
  priv->draining = TRUE;
  if (klass->drain)
    klass->drain (self);
  priv->draining = FALSE;

  g_mutex_lock (&priv->lock);
  wait_worker_idle_locked (priv);
  g_mutex_unlock (&priv->lock);

  if (!check_error (self))
    return GST_FLOW_ERROR;
  results = take_results (self);
  if (!results)
    return GST_FLOW_OK;

  buf = gst_buffer_new ();
  GST_BUFFER_PTS (buf) = priv->last_end;
  GST_BUFFER_DURATION (buf) = 0;
  GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_GAP);
  GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DROPPABLE);
  attach_results (self, buf, results);
  g_list_free_full (results, (GDestroyNotify) result_free);
  GST_DEBUG_OBJECT (self, "pushing the last embeddings on an empty buffer at %"
      GST_TIME_FORMAT, GST_TIME_ARGS (priv->last_end));
  return gst_pad_push (GST_BASE_TRANSFORM_SRC_PAD (self), buf);
}

static gboolean
gst_image_bind_encoder_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstImageBindEncoder *self = GST_IMAGE_BIND_ENCODER (trans);
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  GstImageBindEncoderClass *klass = GST_IMAGE_BIND_ENCODER_GET_CLASS (self);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_STOP:
      flush_work (self);
      break;
    case GST_EVENT_SEGMENT:
      /* A new segment may start earlier (non-flushing seek): restart the interval. */
      priv->last_taken = GST_CLOCK_TIME_NONE;
      break;
    case GST_EVENT_GAP:
      if (klass->reset)
        klass->reset (self);
      break;
    case GST_EVENT_EOS:
      /* An error is posted by drain(); EOS goes on so that the pipeline ends. */
      drain (self);
      break;
    default:
      break;
  }
  return GST_BASE_TRANSFORM_CLASS (gst_image_bind_encoder_parent_class)->sink_event (trans,
      event);
}

static gboolean
gst_image_bind_encoder_query (GstBaseTransform * trans, GstPadDirection direction,
    GstQuery * query)
{
  GstImageBindEncoder *self = GST_IMAGE_BIND_ENCODER (trans);
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  gboolean ret;

  ret = GST_BASE_TRANSFORM_CLASS (gst_image_bind_encoder_parent_class)->query (trans,
      direction, query);

  if (ret && direction == GST_PAD_SRC && GST_QUERY_TYPE (query) == GST_QUERY_LATENCY
      && is_sync (self)) {
    gboolean live;
    GstClockTime min, max, ours;

    gst_query_parse_latency (query, &live, &min, &max);
    g_mutex_lock (&priv->lock);
    ours = priv->inference_time;
    if (ours == 0 && priv->model) {
      ImageBindEncoderInfo info;
      GstImageBindEncoderClass *klass = GST_IMAGE_BIND_ENCODER_GET_CLASS (self);
      if (imagebind_model_encoder_info (priv->model, (ImageBindModality) klass->modality,
              &info))
        ours = (GstClockTime) (info.gflops / ESTIMATED_GFLOPS_PER_SECOND * GST_SECOND);
    }
    priv->reported_latency = ours;
    g_mutex_unlock (&priv->lock);

    GST_DEBUG_OBJECT (self, "sync mode: adding %" GST_TIME_FORMAT " of inference",
        GST_TIME_ARGS (ours));
    min += ours;
    if (GST_CLOCK_TIME_IS_VALID (max))
      max += ours;
    gst_query_set_latency (query, live, min, max);
  }
  return ret;
}

static gboolean
gst_image_bind_encoder_start (GstBaseTransform * trans)
{
  GstImageBindEncoder *self = GST_IMAGE_BIND_ENCODER (trans);
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  GstImageBindEncoderClass *klass = GST_IMAGE_BIND_ENCODER_GET_CLASS (self);

  if (!priv->model) {
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED, ("No ImageBind model loaded."), (NULL));
    return FALSE;
  }
  priv->last_taken = GST_CLOCK_TIME_NONE;
  priv->last_end = GST_CLOCK_TIME_NONE;
  priv->draining = FALSE;
  priv->failed = FALSE;
  if (klass->reset)
    klass->reset (self);

  g_mutex_lock (&priv->lock);
  priv->stopping = FALSE;
  priv->busy = FALSE;
  priv->reported_latency = GST_CLOCK_TIME_NONE;
  g_mutex_unlock (&priv->lock);
  priv->thread = g_thread_new ("imagebind-worker", worker_main, self);
  return TRUE;
}

static gboolean
gst_image_bind_encoder_stop (GstBaseTransform * trans)
{
  GstImageBindEncoder *self = GST_IMAGE_BIND_ENCODER (trans);
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  GstImageBindEncoderClass *klass = GST_IMAGE_BIND_ENCODER_GET_CLASS (self);

  g_mutex_lock (&priv->lock);
  priv->stopping = TRUE;
  g_cond_broadcast (&priv->cond);
  g_mutex_unlock (&priv->lock);
  if (priv->thread)
    g_thread_join (priv->thread);
  priv->thread = NULL;

  g_mutex_lock (&priv->lock);
  priv->epoch++;
  g_clear_pointer (&priv->job, job_free);
  g_queue_clear_full (&priv->results, (GDestroyNotify) result_free);
  g_clear_error (&priv->error);
  priv->busy = FALSE;
  g_mutex_unlock (&priv->lock);
  if (klass->reset)
    klass->reset (self);
  return TRUE;
}

static GstStateChangeReturn
gst_image_bind_encoder_change_state (GstElement * element, GstStateChange transition)
{
  GstImageBindEncoder *self = GST_IMAGE_BIND_ENCODER (element);
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_NULL_TO_READY && !load_model (self))
    return GST_STATE_CHANGE_FAILURE;

  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    /* Deactivating the pads waits for the streaming thread: release it if it waits for the
     * worker (EOS drain, sync mode) and cut a simulated latency short. */
    GstImageBindEncoderPrivate *priv = GET_PRIV (self);
    g_mutex_lock (&priv->lock);
    priv->stopping = TRUE;
    g_cond_broadcast (&priv->cond);
    g_mutex_unlock (&priv->lock);
  }

  ret = GST_ELEMENT_CLASS (gst_image_bind_encoder_parent_class)->change_state (element,
      transition);
  if (ret == GST_STATE_CHANGE_FAILURE && transition == GST_STATE_CHANGE_NULL_TO_READY)
    unload_model (self);

  if (transition == GST_STATE_CHANGE_READY_TO_NULL)
    unload_model (self);
  return ret;
}

/* ---- GObject ---- */

static void
gst_image_bind_encoder_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (object);

  GST_OBJECT_LOCK (object);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (priv->model_path);
      priv->model_path = g_value_dup_string (value);
      break;
    case PROP_N_THREADS:
      priv->n_threads = g_value_get_int (value);
      break;
    case PROP_INTERVAL:
      priv->interval = g_value_get_uint64 (value);
      break;
    case PROP_SYNC:
      priv->sync = g_value_get_boolean (value);
      break;
    case PROP_CUSTOM_META:
      priv->custom_meta = g_value_get_boolean (value);
      break;
    case PROP_SIMULATE_LATENCY:
      priv->simulate_latency = g_value_get_uint64 (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (object);
}

static void
gst_image_bind_encoder_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (object);

  GST_OBJECT_LOCK (object);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, priv->model_path);
      break;
    case PROP_N_THREADS:
      g_value_set_int (value, priv->n_threads);
      break;
    case PROP_INTERVAL:
      g_value_set_uint64 (value, priv->interval);
      break;
    case PROP_SYNC:
      g_value_set_boolean (value, priv->sync);
      break;
    case PROP_CUSTOM_META:
      g_value_set_boolean (value, priv->custom_meta);
      break;
    case PROP_SIMULATE_LATENCY:
      g_value_set_uint64 (value, priv->simulate_latency);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (object);
}

static void
gst_image_bind_encoder_finalize (GObject * object)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (object);

  unload_model (GST_IMAGE_BIND_ENCODER (object));
  g_free (priv->model_path);
  g_mutex_clear (&priv->lock);
  g_cond_clear (&priv->cond);
  G_OBJECT_CLASS (gst_image_bind_encoder_parent_class)->finalize (object);
}

static void
gst_image_bind_encoder_init (GstImageBindEncoder * self)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);

  priv->n_threads = DEFAULT_N_THREADS;
  priv->interval = DEFAULT_INTERVAL;
  priv->sync = DEFAULT_SYNC;
  priv->custom_meta = DEFAULT_CUSTOM_META;
  priv->simulate_latency = DEFAULT_SIMULATE_LATENCY;
  g_mutex_init (&priv->lock);
  g_cond_init (&priv->cond);
  g_queue_init (&priv->results);
  priv->last_taken = GST_CLOCK_TIME_NONE;
  priv->last_end = GST_CLOCK_TIME_NONE;
  priv->reported_latency = GST_CLOCK_TIME_NONE;

  gst_base_transform_set_passthrough (trans, TRUE);
  gst_base_transform_set_in_place (trans, TRUE);
  gst_base_transform_set_gap_aware (trans, TRUE);
}

static void
gst_image_bind_encoder_class_init (GstImageBindEncoderClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  gobject_class->set_property = gst_image_bind_encoder_set_property;
  gobject_class->get_property = gst_image_bind_encoder_get_property;
  gobject_class->finalize = gst_image_bind_encoder_finalize;

  /**
   * GstImageBindEncoder:model:
   *
   * The model file. When unset: $IMAGEBIND_MODEL, else the shipped default model. Read when
   * the element goes from NULL to READY.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "Path of the ImageBind model file (.gguf). When unset: $IMAGEBIND_MODEL, else the "
          "shipped default model (" GST_IMAGEBIND_DEFAULT_MODEL_INSTALLED "). Loaded on "
          "NULL->READY; elements using the same file share one copy in memory",
          NULL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));

  /**
   * GstImageBindEncoder:n-threads:
   *
   * Threads per inference; 0 uses all cores. Read on NULL->READY.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_N_THREADS,
      g_param_spec_int ("n-threads", "Threads",
          "Threads used by one inference (0 = all cores); applied on NULL->READY",
          0, 1024, DEFAULT_N_THREADS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));

  /**
   * GstImageBindEncoder:interval:
   *
   * Minimum time between the inputs of two embeddings, in nanoseconds of buffer time (either
   * way: in reverse playback timestamps decrease); 0 embeds every frame (every window for
   * audio and IMU).
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_INTERVAL,
      g_param_spec_uint64 ("interval", "Interval",
          "Minimum buffer time between two embedded inputs in nanoseconds "
          "(0 = every frame or window; min 0, max 18446744073709551615, default 0)",
          0, G_MAXUINT64, DEFAULT_INTERVAL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindEncoder:sync:
   *
   * FALSE (live mode): inference runs on a worker thread, buffers never wait; of the due
   * inputs that arrive while the worker is busy the newest is embedded next and the others pass
   * without an embedding, and a result is attached to the first buffer that passes after it is
   * ready. TRUE: the streaming thread runs inference for
   * every due input and attaches the result to the buffer that completes the input:
   * reproducible, for files and tests; the inference time is then added to the latency.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_SYNC,
      g_param_spec_boolean ("sync", "Synchronous",
          "Embed every due input on the streaming thread (reproducible; adds the inference "
          "time to the latency) instead of on a worker thread that never blocks the stream",
          DEFAULT_SYNC, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindEncoder:custom-meta:
   *
   * Also attach every embedding as a GstCustomMeta named "GstImageBindEmbeddingCustomMeta"
   * (fields: see gst_imagebind_embedding_meta_to_structure()), readable from Python with
   * `buf.get_custom_meta("GstImageBindEmbeddingCustomMeta").get_structure()`.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_CUSTOM_META,
      g_param_spec_boolean ("custom-meta", "Custom meta",
          "Also attach each embedding as a GstCustomMeta \"GstImageBindEmbeddingCustomMeta\" "
          "(a GstStructure, readable from Python)", DEFAULT_CUSTOM_META,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindEncoder:simulate-latency:
   *
   * For testing only: every inference takes at least this long, to check that a slow model
   * does not slow the stream.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_SIMULATE_LATENCY,
      g_param_spec_uint64 ("simulate-latency", "Simulate latency",
          "For testing only: make every inference last at least this long, in nanoseconds "
          "(0 = off; min 0, max 18446744073709551615, default 0)",
          0, G_MAXUINT64, DEFAULT_SIMULATE_LATENCY,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  element_class->change_state = GST_DEBUG_FUNCPTR (gst_image_bind_encoder_change_state);

  trans_class->passthrough_on_same_caps = FALSE;
  trans_class->transform_ip_on_passthrough = FALSE;
  trans_class->prepare_output_buffer =
      GST_DEBUG_FUNCPTR (gst_image_bind_encoder_prepare_output_buffer);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_image_bind_encoder_transform_ip);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_image_bind_encoder_sink_event);
  trans_class->query = GST_DEBUG_FUNCPTR (gst_image_bind_encoder_query);
  trans_class->start = GST_DEBUG_FUNCPTR (gst_image_bind_encoder_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_image_bind_encoder_stop);

  gst_type_mark_as_plugin_api (GST_TYPE_IMAGE_BIND_ENCODER, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_IMAGE_BIND_MODALITY, 0);
}
