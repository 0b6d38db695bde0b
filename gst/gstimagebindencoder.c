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
 * Which inputs are due: every #GstImageBindEncoder:inference-interval-th frame (or window, for
 * audio and IMU; 1 = every one) that is at least #GstImageBindEncoder:interval nanoseconds of
 * buffer time after the last embedded input. Both count from the last input actually embedded;
 * the first input of a stream, and of each new segment, is due.
 *
 * #GstImageBindEncoder:sync chooses how due inputs are embedded. With the default, `auto`, the
 * element asks upstream whether it is live (a latency query, on the first buffer of a stream):
 * a file (not live) is embedded in sync mode, every due input, with the same results on every
 * run; a camera or a microphone (live) in live mode, where the stream never waits.
 *
 * Live mode (`sync=false`): inference runs on a worker thread. The streaming thread copies the
 * input of an embedding when one is due and never waits: a due input that arrives while the
 * worker is busy waits for it in a single slot, where a newer due input replaces it, so the
 * worker goes on with the newest input as soon as it is done and the others pass without an
 * embedding (work is dropped, never buffers; they are counted as `skipped`). A result is attached to the first buffer that
 * passes after it is ready and carries the span (pts, duration, stream-time, running-time) of
 * the input it describes. The element adds no latency in this mode and answers latency queries
 * with upstream's latency unchanged.
 *
 * Sync mode (`sync=true`): the streaming thread embeds every due input and attaches the result
 * to the buffer that completes it: reproducible, for files and tests. Latency queries then add
 * the inference time (the longest measured so far, estimated from the model's FLOPs before the
 * first inference); a latency message is posted when inference turns out slower than reported.
 *
 * ## Messages
 *
 * Every #GstImageBindEncoder:stats-interval nanoseconds of wall-clock time (checked when a
 * buffer passes; 0 = never) and once at EOS, an element message named `imagebind-encoder-stats`
 * is posted, as `fpsdisplaysink` reports its frame rate, with these fields:
 *
 * - `modality` (G_TYPE_STRING): the encoder's modality ("vision", "audio", ...)
 * - `mode` (G_TYPE_STRING): "sync" or "worker", the mode in use (`sync=auto` resolved)
 * - `embedded` (G_TYPE_UINT64): inputs (frames, windows) embedded since READY->PAUSED
 * - `skipped` (G_TYPE_UINT64): due inputs that passed without an embedding because a newer
 *   one replaced them while the worker was busy, since READY->PAUSED (always 0 in sync mode; inputs that were not due, because of
 *   `interval` or `inference-interval`, are not counted)
 * - `elapsed` (G_TYPE_UINT64, nanoseconds): the wall-clock time the three figures below cover:
 *   since the previous stats message, or, at EOS, since the first buffer
 * - `embeddings-per-second` (G_TYPE_DOUBLE): embeddings computed in `elapsed`, per second
 * - `mean-inference-time`, `max-inference-time` (G_TYPE_UINT64, nanoseconds): of the
 *   inferences finished in `elapsed` (0 when there were none)
 * - `running-time` (G_TYPE_UINT64): running time of the end of the last buffer that passed
 * - `eos` (G_TYPE_BOOLEAN): TRUE for the message posted at EOS (the totals of the run)
 *
 * Encoders that embed regions of interest (imagebindvision) add, since READY->PAUSED:
 *
 * - `regions` (G_TYPE_UINT64): embeddings of regions computed (`embedded` counts the frames
 *   embedded, each with its whole frame and/or its regions, in one inference job)
 * - `regions-skipped` (G_TYPE_UINT64): regions of embedded frames that were not embedded:
 *   beyond the element's `max-regions`, or empty once clamped to the frame (the regions of a
 *   frame counted in `skipped` are not counted again here)
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
#include "gstimagebindmodelhandle.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_image_bind_encoder_debug);
#define GST_CAT_DEFAULT gst_image_bind_encoder_debug

#define DEFAULT_N_THREADS 0
#define DEFAULT_INTERVAL 0
#define DEFAULT_INFERENCE_INTERVAL 1
#define DEFAULT_SYNC GST_IMAGE_BIND_ENCODER_SYNC_AUTO
#define DEFAULT_STATS_INTERVAL GST_SECOND
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
  PROP_INFERENCE_INTERVAL,
  PROP_STATS_INTERVAL,
};

/* What the stats messages report, over a period or the whole run. */
typedef struct {
  guint64 embedded;
  guint64 skipped;
  guint64 regions;              /* embeddings of regions of interest */
  guint64 regions_skipped;
  GstClockTime time_sum, time_max;      /* of the inferences */
} Stats;

/* Work for the model: a copy of the input and the span it covers. */
typedef struct {
  gpointer input;
  GDestroyNotify free_input;
  GstClockTime pts, duration, stream_time, running_time;
  guint epoch;
} Job;

/* One embedding of an input: of the whole frame (or window), or of a region of interest. */
typedef struct {
  gfloat *vector;
  gboolean has_region;
  GstImageBindRegion region;
} ResultItem;

/* All embeddings of one input, attached together. */
typedef struct {
  ResultItem *items;
  guint n_items;
  GstClockTime pts, duration, stream_time, running_time;
  guint epoch;
} Result;

typedef struct {
  /* settings, under the object lock */
  gchar *model_path;
  gint n_threads;
  guint64 interval;
  guint inference_interval;
  GstImageBindEncoderSync sync;
  guint64 stats_interval;
  gboolean custom_meta;
  guint64 simulate_latency;

  /* model, opened on NULL->READY, closed on READY->NULL */
  GstImageBindModelHandle *handle;

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
  Stats total, period;
  gint upstream_live;           /* sync=auto: -1 not asked yet, else whether upstream is live */

  /* streaming thread only */
  gboolean failed;              /* an error was posted: GST_FLOW_ERROR until stopped */
  GstClockTime last_taken;     /* pts of the last input embedded (interval) */
  gboolean taken_any;           /* an input was embedded in this segment */
  guint since_taken;            /* inputs offered since the last one embedded */
  gint64 stats_start, stats_last;       /* monotonic us: first buffer, last stats message */
  GstClockTime last_running_time;       /* end of the last buffer, in running time */
  gboolean draining;
  GstClockTime last_end;        /* end of the last buffer pushed, for the EOS buffer */
} GstImageBindEncoderPrivate;

static const GEnumValue sync_values[] = {
  {GST_IMAGE_BIND_ENCODER_SYNC_FALSE, "Worker thread: the stream never waits; due inputs "
        "arriving while it is busy pass without an embedding", "false"},
  {GST_IMAGE_BIND_ENCODER_SYNC_TRUE, "Streaming thread: every due input is embedded "
        "(reproducible; adds the inference time to the latency)", "true"},
  {GST_IMAGE_BIND_ENCODER_SYNC_AUTO, "true when upstream is not live (files), false when it "
        "is (cameras, microphones)", "auto"},
  {0, NULL, NULL}
};

GType
gst_image_bind_encoder_sync_get_type (void)
{
  static gsize type = 0;

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstImageBindEncoderSync", sync_values);
    g_once_init_leave (&type, t);
  }
  return type;
}

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
  guint i;

  for (i = 0; i < result->n_items; i++)
    g_free (result->items[i].vector);
  g_free (result->items);
  g_free (result);
}

/* ---- model loading ---- */

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
  GError *err = NULL;
  gchar *property;
  gint n_threads;

  GST_OBJECT_LOCK (self);
  property = g_strdup (priv->model_path);
  n_threads = priv->n_threads;
  GST_OBJECT_UNLOCK (self);
  priv->handle = gst_image_bind_model_handle_open (property,
      (ImageBindModality) klass->modality, element_name (self), n_threads, &err);
  g_free (property);
  if (!priv->handle) {
    gst_image_bind_model_handle_post_error (GST_ELEMENT (self), err);
    g_clear_error (&err);
    return FALSE;
  }

  GST_INFO_OBJECT (self, "loaded %s (%s), %u-dimensional, logit scale %g",
      gst_image_bind_model_handle_get_path (priv->handle),
      gst_image_bind_model_handle_get_id (priv->handle),
      gst_image_bind_model_handle_get_dim (priv->handle),
      gst_image_bind_model_handle_get_logit_scale (priv->handle));
  return TRUE;
}

static void
unload_model (GstImageBindEncoder * self)
{
  g_clear_pointer (&GET_PRIV (self)->handle, gst_image_bind_model_handle_close);
}

ImageBindModel *
gst_image_bind_encoder_get_model (GstImageBindEncoder * self)
{
  GstImageBindEncoderPrivate *priv;

  g_return_val_if_fail (GST_IS_IMAGE_BIND_ENCODER (self), NULL);
  priv = GET_PRIV (self);
  return priv->handle ? gst_image_bind_model_handle_get_model (priv->handle) : NULL;
}

/* ---- inference ---- */

static void
stats_add_inference (Stats * stats, GstClockTime time)
{
  stats->embedded++;
  stats->time_sum += time;
  stats->time_max = MAX (stats->time_max, time);
}

/* The @n-th embedding of @input into @item (n_tensors()/prepare_nth() subclasses). */
static gboolean
embed_nth (GstImageBindEncoder * self, gpointer input, guint n, ResultItem * item,
    GError ** error)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  GstImageBindEncoderClass *klass = GST_IMAGE_BIND_ENCODER_GET_CLASS (self);
  const GstImageBindRegion *region = NULL;
  gfloat *tensor = NULL;
  gint64 shape[8] = { 0 };
  guint n_dims = 0;
  gboolean ok;

  ok = klass->prepare_nth (self, input, n, &tensor, shape, &n_dims, &region, error) &&
      imagebind_embed (gst_image_bind_model_handle_get_context (priv->handle),
      (ImageBindModality) klass->modality, tensor, shape, n_dims, item->vector, error);
  g_free (tensor);
  item->has_region = region != NULL;
  if (region)
    item->region = *region;
  return ok;
}

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
  ImageBindContext *ctx = gst_image_bind_model_handle_get_context (priv->handle);
  guint i, n_regions = 0, dim = gst_image_bind_model_handle_get_dim (priv->handle);
  gboolean ok = TRUE;

  start = g_get_monotonic_time ();
  result = g_new0 (Result, 1);
  result->n_items = klass->n_tensors ? klass->n_tensors (self, job->input) : 1;
  result->items = g_new0 (ResultItem, result->n_items);
  for (i = 0; i < result->n_items; i++)
    result->items[i].vector = g_new0 (gfloat, dim);
  if (klass->n_tensors) {
    for (i = 0; ok && i < result->n_items; i++) {
      ok = embed_nth (self, job->input, i, &result->items[i], error);
      n_regions += result->items[i].has_region;
    }
  } else if (klass->modality == GST_IMAGE_BIND_MODALITY_TEXT) {
    /* Text has no float tensor: the input is one sequence of token ids. */
    ok = imagebind_embed_text (ctx, job->input, 1, result->items[0].vector, error);
  } else {
    ok = klass->prepare (self, job->input, &tensor, shape, &n_dims, error) &&
        imagebind_embed (ctx, (ImageBindModality) klass->modality, tensor, shape, n_dims,
        result->items[0].vector, error);
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
  stats_add_inference (&priv->total, (GstClockTime) elapsed * GST_USECOND);
  stats_add_inference (&priv->period, (GstClockTime) elapsed * GST_USECOND);
  priv->total.regions += n_regions;
  priv->period.regions += n_regions;
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

/* Streaming thread: whether the input at @pts is due (inference-interval and interval, both
 * counted from the last input embedded). */
static gboolean
input_due (GstImageBindEncoder * self, GstClockTime pts)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  guint64 interval;
  guint every;

  GST_OBJECT_LOCK (self);
  interval = priv->interval;
  every = priv->inference_interval;
  GST_OBJECT_UNLOCK (self);

  if (priv->taken_any && priv->since_taken + 1 < every)
    return FALSE;
  if (interval == 0 || !GST_CLOCK_TIME_IS_VALID (pts) ||
      !GST_CLOCK_TIME_IS_VALID (priv->last_taken))
    return TRUE;
  /* Whichever way time goes: reverse playback brings decreasing timestamps. */
  return (pts >= priv->last_taken ? pts - priv->last_taken : priv->last_taken - pts) >= interval;
}

/* Streaming thread: the input at @pts is being embedded. */
static void
input_taken (GstImageBindEncoder * self, GstClockTime pts)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);

  priv->last_taken = pts;
  priv->taken_any = TRUE;
  priv->since_taken = 0;
}

/* Streaming thread: an input passed without being embedded; @skipped when it was due (the
 * worker was busy). */
static void
input_passed (GstImageBindEncoder * self, gboolean skipped)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);

  if (priv->since_taken < G_MAXUINT)
    priv->since_taken++;
  if (skipped) {
    g_mutex_lock (&priv->lock);
    priv->total.skipped++;
    priv->period.skipped++;
    g_mutex_unlock (&priv->lock);
  }
}

/* The next input is due whatever came before (new stream or segment). */
static void
restart_schedule (GstImageBindEncoderPrivate * priv)
{
  priv->last_taken = GST_CLOCK_TIME_NONE;
  priv->taken_any = FALSE;
  priv->since_taken = 0;
}

/* Streaming thread (sync=auto): whether upstream is live, asked once per stream with a
 * latency query. Upstream that does not answer counts as live: the worker never stalls it. */
static gboolean
upstream_is_live (GstImageBindEncoder * self)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  GstQuery *query;
  gboolean live = TRUE;
  gint known;

  g_mutex_lock (&priv->lock);
  known = priv->upstream_live;
  g_mutex_unlock (&priv->lock);
  if (known >= 0)
    return known;

  query = gst_query_new_latency ();
  if (gst_pad_peer_query (GST_BASE_TRANSFORM_SINK_PAD (self), query))
    gst_query_parse_latency (query, &live, NULL, NULL);
  else
    GST_INFO_OBJECT (self, "upstream does not answer the latency query: taken as live");
  gst_query_unref (query);
  GST_INFO_OBJECT (self, "upstream is %s: %s", live ? "live" : "not live",
      live ? "inference on a worker thread, the stream never waits" :
      "every due input embedded on the streaming thread");

  g_mutex_lock (&priv->lock);
  priv->upstream_live = live;
  g_mutex_unlock (&priv->lock);
  return live;
}

static GstImageBindEncoderSync
get_sync_setting (GstImageBindEncoder * self)
{
  GstImageBindEncoderSync sync;

  GST_OBJECT_LOCK (self);
  sync = GET_PRIV (self)->sync;
  GST_OBJECT_UNLOCK (self);
  return sync;
}

/* Streaming thread: whether due inputs are embedded on it (sync=auto resolved). */
static gboolean
is_sync (GstImageBindEncoder * self)
{
  GstImageBindEncoderSync sync = get_sync_setting (self);

  if (sync == GST_IMAGE_BIND_ENCODER_SYNC_AUTO)
    return !upstream_is_live (self);
  return sync == GST_IMAGE_BIND_ENCODER_SYNC_TRUE;
}

void
gst_image_bind_encoder_submit_input (GstImageBindEncoder * self, gpointer input,
    GDestroyNotify free_func, GstClockTime pts, GstClockTime duration)
{
  GstImageBindEncoderPrivate *priv;
  GstSegment *segment;
  gboolean sync;
  Job *job;

  g_return_if_fail (GST_IS_IMAGE_BIND_ENCODER (self));
  priv = GET_PRIV (self);

  if (!priv->draining && !input_due (self, pts)) {
    GST_LOG_OBJECT (self, "input at %" GST_TIME_FORMAT " not due", GST_TIME_ARGS (pts));
    if (free_func)
      free_func (input);
    input_passed (self, FALSE);
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

  sync = is_sync (self);         /* may ask upstream: not under the lock */
  g_mutex_lock (&priv->lock);
  job->epoch = priv->epoch;

  if (sync) {
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
    input_taken (self, pts);
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
      input_passed (self, TRUE);        /* its embedding is dropped: counted as skipped */
    }
    input_taken (self, pts);
  } else {
    g_mutex_unlock (&priv->lock);
    GST_LOG_OBJECT (self, "worker busy, input at %" GST_TIME_FORMAT " passes without embedding",
        GST_TIME_ARGS (pts));
    job_free (job);
    input_passed (self, TRUE);
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
        ("model %s", gst_image_bind_model_handle_get_path (priv->handle)));
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
    guint i;

    for (i = 0; i < r->n_items; i++) {
      GstImageBindEmbeddingMeta *meta;

      meta = gst_buffer_add_imagebind_embedding_meta (buffer, klass->modality,
          r->items[i].vector, gst_image_bind_model_handle_get_dim (priv->handle),
          gst_image_bind_model_handle_get_logit_scale (priv->handle),
          gst_image_bind_model_handle_get_id (priv->handle));
      meta->pts = r->pts;
      meta->duration = r->duration;
      meta->stream_time = r->stream_time;
      meta->running_time = r->running_time;
      gst_image_bind_embedding_meta_set_region (meta,
          r->items[i].has_region ? &r->items[i].region : NULL);
      if (custom)
        gst_buffer_add_imagebind_embedding_custom_meta (buffer, meta);
    }
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

/* ---- statistics ---- */

void
gst_image_bind_encoder_count_skipped_regions (GstImageBindEncoder * self, guint n)
{
  GstImageBindEncoderPrivate *priv;

  g_return_if_fail (GST_IS_IMAGE_BIND_ENCODER (self));
  priv = GET_PRIV (self);

  g_mutex_lock (&priv->lock);
  priv->total.regions_skipped += n;
  priv->period.regions_skipped += n;
  g_mutex_unlock (&priv->lock);
}

/* Streaming thread: the stats message; at EOS (@eos) the totals since the first buffer,
 * otherwise the period since the previous message. */
static void
post_stats (GstImageBindEncoder * self, gboolean eos)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  GstImageBindEncoderClass *klass = GST_IMAGE_BIND_ENCODER_GET_CLASS (self);
  gint64 now = g_get_monotonic_time ();
  gint64 since = eos ? priv->stats_start : priv->stats_last;
  GstClockTime elapsed;
  Stats total, covered;
  gboolean sync = is_sync (self);
  GstStructure *s;

  g_mutex_lock (&priv->lock);
  total = priv->total;
  covered = eos ? priv->total : priv->period;
  memset (&priv->period, 0, sizeof (Stats));
  g_mutex_unlock (&priv->lock);
  priv->stats_last = now;

  elapsed = since > 0 && now > since ? (GstClockTime) (now - since) * GST_USECOND : 0;
  s = gst_structure_new ("imagebind-encoder-stats",
      "modality", G_TYPE_STRING, gst_image_bind_modality_to_string (klass->modality),
      "mode", G_TYPE_STRING, sync ? "sync" : "worker",
      "embedded", G_TYPE_UINT64, total.embedded,
      "skipped", G_TYPE_UINT64, total.skipped,
      "elapsed", G_TYPE_UINT64, elapsed,
      "embeddings-per-second", G_TYPE_DOUBLE,
      elapsed > 0 ? (gdouble) covered.embedded * GST_SECOND / elapsed : 0.0,
      "mean-inference-time", G_TYPE_UINT64,
      covered.embedded > 0 ? covered.time_sum / covered.embedded : (guint64) 0,
      "max-inference-time", G_TYPE_UINT64, covered.time_max,
      "running-time", G_TYPE_UINT64, priv->last_running_time,
      "eos", G_TYPE_BOOLEAN, eos, NULL);
  if (klass->prepare_nth)
    gst_structure_set (s,
        "regions", G_TYPE_UINT64, total.regions,
        "regions-skipped", G_TYPE_UINT64, total.regions_skipped, NULL);
  GST_DEBUG_OBJECT (self, "%" GST_PTR_FORMAT, s);
  gst_element_post_message (GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), s));
}

/* Streaming thread, after each buffer: the periodic stats message when it is time. */
static void
maybe_post_stats (GstImageBindEncoder * self)
{
  GstImageBindEncoderPrivate *priv = GET_PRIV (self);
  guint64 interval;
  gint64 now = g_get_monotonic_time ();

  GST_OBJECT_LOCK (self);
  interval = priv->stats_interval;
  GST_OBJECT_UNLOCK (self);

  if (interval > 0 && (guint64) (now - priv->stats_last) * GST_USECOND >= interval)
    post_stats (self, FALSE);
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
  if (priv->stats_start == 0)
    priv->stats_start = priv->stats_last = g_get_monotonic_time ();

  if (klass->collect) {
    /* GAP buffers too: what they mean is the modality's business (audio: silence); so are
     * DISCONT flags (in reverse playback decoders flag every chunk, yet the chunks continue
     * each other backwards) */
    ret = klass->collect (self, inbuf);
  } else if (!input_due (self, pts)) {
    input_passed (self, FALSE);
  } else if (klass->has_input && !klass->has_input (self, inbuf)) {
    /* nothing to embed in this one (no regions of interest): the next buffer is due */
    input_passed (self, FALSE);
  } else {
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

  if (GST_BUFFER_PTS_IS_VALID (inbuf)) {
    GstSegment *segment = &trans->segment;

    priv->last_end = pts + (GST_BUFFER_DURATION_IS_VALID (inbuf) ? GST_BUFFER_DURATION (inbuf) : 0);
    if (segment->format == GST_FORMAT_TIME)
      priv->last_running_time = gst_segment_to_running_time (segment, GST_FORMAT_TIME,
          priv->last_end);
  }
  maybe_post_stats (self);
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
  restart_schedule (priv);
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
  post_stats (self, TRUE);
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
      restart_schedule (priv);
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
  GstImageBindEncoderSync sync;
  gboolean ret, live;

  /* Elements downstream (imagebindmatch, imagebindav) ask which model the embeddings come
   * from, to embed their prompts with the same one. */
  if (direction == GST_PAD_SRC && gst_image_bind_model_query_is (query) && priv->handle) {
    gst_image_bind_model_query_set (query, gst_image_bind_model_handle_get_path (priv->handle),
        gst_image_bind_model_handle_get_id (priv->handle));
    return TRUE;
  }

  ret = GST_BASE_TRANSFORM_CLASS (gst_image_bind_encoder_parent_class)->query (trans,
      direction, query);
  if (!ret || direction != GST_PAD_SRC || GST_QUERY_TYPE (query) != GST_QUERY_LATENCY)
    return ret;

  /* sync=auto is resolved with upstream's answer to this very query (the streaming thread
   * asks its own when the first buffer comes). */
  gst_query_parse_latency (query, &live, NULL, NULL);
  sync = get_sync_setting (self);
  if (sync == GST_IMAGE_BIND_ENCODER_SYNC_TRUE ||
      (sync == GST_IMAGE_BIND_ENCODER_SYNC_AUTO && !live)) {
    GstClockTime min, max, ours;

    gst_query_parse_latency (query, &live, &min, &max);
    g_mutex_lock (&priv->lock);
    ours = priv->inference_time;
    if (ours == 0 && priv->handle) {
      ImageBindEncoderInfo info;
      GstImageBindEncoderClass *klass = GST_IMAGE_BIND_ENCODER_GET_CLASS (self);
      if (imagebind_model_encoder_info (gst_image_bind_model_handle_get_model (priv->handle),
              (ImageBindModality) klass->modality, &info))
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

  if (!priv->handle) {
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED, ("No ImageBind model loaded."), (NULL));
    return FALSE;
  }
  restart_schedule (priv);
  priv->last_end = GST_CLOCK_TIME_NONE;
  priv->last_running_time = GST_CLOCK_TIME_NONE;
  priv->draining = FALSE;
  priv->failed = FALSE;
  priv->stats_start = priv->stats_last = 0;
  if (klass->reset)
    klass->reset (self);

  g_mutex_lock (&priv->lock);
  priv->stopping = FALSE;
  priv->busy = FALSE;
  priv->reported_latency = GST_CLOCK_TIME_NONE;
  priv->upstream_live = -1;
  memset (&priv->total, 0, sizeof (Stats));
  memset (&priv->period, 0, sizeof (Stats));
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
      priv->sync = g_value_get_enum (value);
      break;
    case PROP_INFERENCE_INTERVAL:
      priv->inference_interval = g_value_get_uint (value);
      break;
    case PROP_STATS_INTERVAL:
      priv->stats_interval = g_value_get_uint64 (value);
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
      g_value_set_enum (value, priv->sync);
      break;
    case PROP_INFERENCE_INTERVAL:
      g_value_set_uint (value, priv->inference_interval);
      break;
    case PROP_STATS_INTERVAL:
      g_value_set_uint64 (value, priv->stats_interval);
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
  priv->inference_interval = DEFAULT_INFERENCE_INTERVAL;
  priv->sync = DEFAULT_SYNC;
  priv->stats_interval = DEFAULT_STATS_INTERVAL;
  priv->upstream_live = -1;
  priv->custom_meta = DEFAULT_CUSTOM_META;
  priv->simulate_latency = DEFAULT_SIMULATE_LATENCY;
  g_mutex_init (&priv->lock);
  g_cond_init (&priv->cond);
  g_queue_init (&priv->results);
  restart_schedule (priv);
  priv->last_end = GST_CLOCK_TIME_NONE;
  priv->last_running_time = GST_CLOCK_TIME_NONE;
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
          "shipped default model (" GST_IMAGE_BIND_DEFAULT_MODEL_INSTALLED "). Loaded on "
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
   * audio and IMU). Applies together with #GstImageBindEncoder:inference-interval.
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
   * GstImageBindEncoder:inference-interval:
   *
   * Embed every Nth frame (every Nth window for audio and IMU, every Nth text buffer): 1
   * embeds every one, 2 every other one. Counted from the last input embedded, so in live
   * mode, when the worker was busy at the Nth input, the next input is taken. Applies together
   * with #GstImageBindEncoder:interval.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_INFERENCE_INTERVAL,
      g_param_spec_uint ("inference-interval", "Inference interval",
          "Embed every Nth frame (or audio/IMU window): 1 = every one, 2 = every other one "
          "(min 1, max 4294967295, default 1); applies together with 'interval'",
          1, G_MAXUINT, DEFAULT_INFERENCE_INTERVAL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindEncoder:sync:
   *
   * `auto` (the default): `true` when upstream is not live (a file: every due input is
   * embedded, the same results on every run), `false` when it is (a camera, a microphone:
   * the stream never waits). Upstream is asked with a latency query on the first buffer.
   *
   * `false` (live mode): inference runs on a worker thread, buffers never wait; of the due
   * inputs that arrive while the worker is busy the newest is embedded next and the others
   * pass without an embedding (counted as `skipped` in the `imagebind-encoder-stats`
   * messages), and a result is attached to the first buffer that passes after it is ready.
   * `true`: the streaming thread runs inference for every due input and attaches the result
   * to the buffer that completes the input: reproducible; the inference time is then added to
   * the latency.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_SYNC,
      g_param_spec_enum ("sync", "Synchronous",
          "true: embed every due input on the streaming thread (reproducible; adds the "
          "inference time to the latency); false: on a worker thread that never blocks the "
          "stream (of the due inputs arriving while it is busy, the newest is embedded next); auto: true "
          "when upstream is not live (files), false when it is (cameras, microphones)",
          GST_TYPE_IMAGE_BIND_ENCODER_SYNC, DEFAULT_SYNC,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindEncoder:stats-interval:
   *
   * Wall-clock time between two `imagebind-encoder-stats` messages (see the class
   * documentation for the fields), checked when a buffer passes; 0 posts only the totals at
   * EOS.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_STATS_INTERVAL,
      g_param_spec_uint64 ("stats-interval", "Stats interval",
          "Nanoseconds of wall-clock time between two 'imagebind-encoder-stats' messages "
          "(embedded, skipped, embeddings-per-second, mean- and max-inference-time); "
          "0 = only the totals at EOS (min 0, max 18446744073709551615, default 1000000000)",
          0, G_MAXUINT64, DEFAULT_STATS_INTERVAL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindEncoder:custom-meta:
   *
   * Also attach every embedding as a GstCustomMeta named "GstImageBindEmbeddingCustomMeta"
   * (fields: see gst_image_bind_embedding_meta_to_structure()), readable from Python with
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
  gst_type_mark_as_plugin_api (GST_TYPE_IMAGE_BIND_ENCODER_SYNC, 0);
}
