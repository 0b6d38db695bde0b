/* The worker pool behind ib_parallel_for(): cores - 1 threads, started on first use, sleeping
 * on a condition variable between jobs. One job at a time; the caller works too.
 *
 * Before sleeping, a worker polls for the next job, and a caller for its job's end, for at most
 * IB_SPIN_US. Waking a sleeping thread took 50-80 us on the 2-core VM this was measured on
 * (futex wake-up, then the vCPU leaving its idle state), on the critical path twice per job: the
 * encoders run about 8 jobs per transformer block, 1 to 10 ms each for the imagebind_huge
 * encoders, so the hand-overs alone cost several percent of the smaller ones. A forward posts its
 * next job within microseconds of the last one's end, so the polls almost always succeed; after
 * the forward's last job a worker gives up after IB_SPIN_US, which is too short to take a core
 * away from anyone for long (unlike libgomp's ~15 ms, see parallel.h). */

#include "parallel.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause ()
#else
#define cpu_relax() do { } while (0)
#endif

#define IB_SPIN_US 100

typedef struct {
  IbTaskFunc func;
  gpointer user_data;
  guint n_tasks;
  gint next;            /* next task to hand out (atomic) */
  guint wanted;         /* workers that may join */
  guint joined;         /* workers that joined (under pool.lock) */
  gint running;         /* joined workers not yet finished (changed under pool.lock, atomic) */
  gboolean waiting;     /* the caller sleeps on pool.done (under pool.lock) */
} Job;

static struct {
  GMutex busy;          /* held by the caller whose job the pool runs */
  GMutex lock;          /* protects job and the counters of *job */
  GCond wake;           /* workers: a job was posted */
  GCond done;           /* caller: a worker left the job */
  Job *job;             /* NULL when no job accepts workers */
  gint generation;      /* bumped per job (under lock, atomic), so that a worker joins each job
                         * at most once */
  guint sleeping;       /* workers waiting on wake (under lock) */
  guint n_workers;
} pool;

/* Polls until *@value differs from @old, for at most IB_SPIN_US; TRUE if it did. */
static gboolean
spin_while_equal (const gint *value, gint old)
{
  gint64 deadline = g_get_monotonic_time () + IB_SPIN_US;

  do {
    for (int i = 0; i < 64; i++) {
      if (g_atomic_int_get (value) != old)
        return TRUE;
      cpu_relax ();
    }
  } while (g_get_monotonic_time () < deadline);
  return FALSE;
}

static void
run_tasks (Job *job, guint thread)
{
  guint task;

  while ((task = (guint) g_atomic_int_add (&job->next, 1)) < job->n_tasks)
    job->func (task, thread, job->user_data);
}

/* pool.lock is held for a few instructions at a time: a thread that finds it taken polls for
 * it first rather than sleep in the kernel (and pay the wake-up above). */
static void
lock_pool (void)
{
  for (int i = 0; i < 4096; i++) {
    if (g_mutex_trylock (&pool.lock))
      return;
    cpu_relax ();
  }
  g_mutex_lock (&pool.lock);
}

static gpointer
worker_main (gpointer unused)
{
  gint seen = 0;

  for (;;) {
    Job *job;
    guint thread;

    spin_while_equal (&pool.generation, seen);
    lock_pool ();
    while (pool.generation == seen) {
      pool.sleeping++;
      g_cond_wait (&pool.wake, &pool.lock);
      pool.sleeping--;
    }
    seen = pool.generation;
    job = pool.job;
    if (!job || job->joined >= job->wanted) {
      g_mutex_unlock (&pool.lock);
      continue;
    }
    thread = ++job->joined;
    g_atomic_int_inc (&job->running);
    g_mutex_unlock (&pool.lock);
    run_tasks (job, thread);
    /* The last access to *job: once running is 0 the caller may return and free it. */
    lock_pool ();
    if (g_atomic_int_dec_and_test (&job->running) && job->waiting)
      g_cond_signal (&pool.done);
    g_mutex_unlock (&pool.lock);
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

typedef struct { gpointer data; gsize size; } ThreadBuffer;

void
ib_thread_buffer_free (gpointer buffer)
{
  ThreadBuffer *b = buffer;
  g_aligned_free (b->data);
  g_free (b);
}

gpointer
ib_thread_buffer (GPrivate *key, gsize bytes)
{
  ThreadBuffer *b = g_private_get (key);

  if (!b) {
    b = g_new0 (ThreadBuffer, 1);
    g_private_set (key, b);
  }
  if (b->size < bytes) {
    g_aligned_free (b->data);
    b->data = g_aligned_alloc (1, bytes, 64);
    b->size = bytes;
  }
  return b->data;
}

guint
ib_parallel_max_threads (int n_threads)
{
  /* Asked once: g_get_num_processors() reads /sys (open, read, close: 30 us on a VM, as much as
   * the rest of a hand-over), and the pool's size is fixed at its start anyway. */
  static gsize cached = 0;
  guint cores;

  if (g_once_init_enter (&cached))
    g_once_init_leave (&cached, MAX (1, g_get_num_processors ()));
  cores = cached;

  return n_threads > 0 ? MIN ((guint) n_threads, cores) : cores;
}

void
ib_parallel_for (guint n_tasks, int n_threads, IbTaskFunc func, gpointer user_data)
{
  static GOnce started = G_ONCE_INIT;
  Job job = { func, user_data, n_tasks, 0, 0, 0, 0, FALSE };
  guint threads = MIN (ib_parallel_max_threads (n_threads), n_tasks);
  guint task;

  if (threads <= 1 || !g_mutex_trylock (&pool.busy)) {
    for (task = 0; task < n_tasks; task++)
      func (task, 0, user_data);
    return;
  }
  g_once (&started, start_workers, NULL);

  lock_pool ();
  job.wanted = MIN (threads - 1, pool.n_workers);
  pool.job = &job;
  g_atomic_int_inc (&pool.generation);
  if (pool.sleeping > 0)
    g_cond_broadcast (&pool.wake);
  g_mutex_unlock (&pool.lock);

  run_tasks (&job, 0);

  /* No worker may join any more; wait for those that did (job lives on this stack). */
  lock_pool ();
  pool.job = NULL;
  g_mutex_unlock (&pool.lock);
  for (gint running; (running = g_atomic_int_get (&job.running)) > 0;)
    if (!spin_while_equal (&job.running, running))
      break;
  if (g_atomic_int_get (&job.running) > 0) {
    g_mutex_lock (&pool.lock);
    job.waiting = TRUE;
    while (g_atomic_int_get (&job.running) > 0)
      g_cond_wait (&pool.done, &pool.lock);
    g_mutex_unlock (&pool.lock);
  }
  g_mutex_unlock (&pool.busy);
}
