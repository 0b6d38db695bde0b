/* The worker pool behind ib_parallel_for(): cores - 1 threads, started on first use, sleeping
 * on a condition variable between jobs. One job at a time; the caller works too. */

#include "parallel.h"

typedef struct {
  IbTaskFunc func;
  gpointer user_data;
  guint n_tasks;
  gint next;            /* next task to hand out (atomic) */
  guint wanted;         /* workers that may join */
  guint joined;         /* workers that joined (under pool.lock) */
  guint running;        /* joined workers not yet finished (under pool.lock) */
} Job;

static struct {
  GMutex busy;          /* held by the caller whose job the pool runs */
  GMutex lock;          /* protects job and the counters of *job */
  GCond wake;           /* workers: a job was posted */
  GCond done;           /* caller: a worker left the job */
  Job *job;             /* NULL when no job accepts workers */
  guint64 generation;   /* bumped per job, so that a worker joins each job at most once */
  guint n_workers;
} pool;

static void
run_tasks (Job *job, guint thread)
{
  guint task;

  while ((task = (guint) g_atomic_int_add (&job->next, 1)) < job->n_tasks)
    job->func (task, thread, job->user_data);
}

static gpointer
worker_main (gpointer unused)
{
  guint64 seen = 0;

  g_mutex_lock (&pool.lock);
  for (;;) {
    Job *job;
    guint thread;
    while (pool.generation == seen)
      g_cond_wait (&pool.wake, &pool.lock);
    seen = pool.generation;
    job = pool.job;
    if (!job || job->joined >= job->wanted)
      continue;
    thread = ++job->joined;
    job->running++;
    g_mutex_unlock (&pool.lock);
    run_tasks (job, thread);
    g_mutex_lock (&pool.lock);
    if (--job->running == 0)
      g_cond_signal (&pool.done);
  }
  return NULL;
}

static gpointer
start_workers (gpointer unused)
{
  guint i, n = ib_parallel_max_threads (0) - 1;

  for (i = 0; i < n; i++)
    g_thread_unref (g_thread_new ("imagebind-worker", worker_main, NULL));
  pool.n_workers = n;
  return NULL;
}

guint
ib_parallel_max_threads (int n_threads)
{
  guint cores = MAX (1, g_get_num_processors ());

  return n_threads > 0 ? MIN ((guint) n_threads, cores) : cores;
}

void
ib_parallel_for (guint n_tasks, int n_threads, IbTaskFunc func, gpointer user_data)
{
  static GOnce started = G_ONCE_INIT;
  Job job = { func, user_data, n_tasks, 0, 0, 0, 0 };
  guint threads = MIN (ib_parallel_max_threads (n_threads), n_tasks);
  guint task;

  if (threads <= 1 || !g_mutex_trylock (&pool.busy)) {
    for (task = 0; task < n_tasks; task++)
      func (task, 0, user_data);
    return;
  }
  g_once (&started, start_workers, NULL);

  g_mutex_lock (&pool.lock);
  job.wanted = MIN (threads - 1, pool.n_workers);
  pool.job = &job;
  pool.generation++;
  g_cond_broadcast (&pool.wake);
  g_mutex_unlock (&pool.lock);

  run_tasks (&job, 0);

  /* No worker may join any more; wait for those that did (job lives on this stack). */
  g_mutex_lock (&pool.lock);
  pool.job = NULL;
  while (job.running > 0)
    g_cond_wait (&pool.done, &pool.lock);
  g_mutex_unlock (&pool.lock);
  g_mutex_unlock (&pool.busy);
}
