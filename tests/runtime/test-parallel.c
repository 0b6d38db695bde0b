/* ib_parallel_for(): every task runs exactly once, whatever the thread count, from nested calls
 * and from several callers at once. */

#include "parallel.h"

typedef struct {
  gint *hits;          /* per task, atomic */
  gint *busy;          /* per thread index: tasks running with it now (atomic) */
  guint max_threads;
  guint n_tasks;
  int inner_threads;   /* > 0: each task runs a nested ib_parallel_for of 3 tasks */
  gint inner_hits;
} Counter;

static void
count_inner (guint task, guint thread, gpointer user_data)
{
  Counter *c = user_data;

  g_atomic_int_inc (&c->inner_hits);
}

static void
count_task (guint task, guint thread, gpointer user_data)
{
  Counter *c = user_data;

  g_assert_cmpuint (task, <, c->n_tasks);
  g_assert_cmpuint (thread, <, c->max_threads);
  /* No other thread of this job uses the same index meanwhile. */
  g_assert_cmpint (g_atomic_int_add (&c->busy[thread], 1), ==, 0);
  g_atomic_int_inc (&c->hits[task]);
  if (c->inner_threads > 0)
    ib_parallel_for (3, c->inner_threads, count_inner, c);
  g_atomic_int_add (&c->busy[thread], -1);
}

static void
run_and_check (guint n_tasks, int n_threads, int inner_threads)
{
  guint max_threads = ib_parallel_max_threads (n_threads);
  Counter c = { g_new0 (gint, MAX (1, n_tasks)), g_new0 (gint, max_threads), max_threads,
    n_tasks, inner_threads, 0 };
  guint i;

  g_assert_cmpuint (max_threads, >=, 1);
  g_assert_cmpuint (max_threads, <=, g_get_num_processors ());
  ib_parallel_for (n_tasks, n_threads, count_task, &c);
  for (i = 0; i < n_tasks; i++)
    g_assert_cmpint (c.hits[i], ==, 1);
  g_assert_cmpint (c.inner_hits, ==, inner_threads > 0 ? 3 * (int) n_tasks : 0);
  g_free (c.hits);
  g_free (c.busy);
}

static void
test_every_task_once (void)
{
  static const guint tasks[] = { 0, 1, 2, 3, 7, 64, 1000 };
  static const int threads[] = { 0, 1, 2, 3, 16 };
  guint t, h, rep;

  for (rep = 0; rep < 20; rep++)
    for (t = 0; t < G_N_ELEMENTS (tasks); t++)
      for (h = 0; h < G_N_ELEMENTS (threads); h++)
        run_and_check (tasks[t], threads[h], 0);
}

/* A task that calls ib_parallel_for again (ib_sgemm inside a parallel op) runs it inline. */
static void
test_nested (void)
{
  run_and_check (8, 0, 2);
  run_and_check (5, 2, 0);
}

static gpointer
caller_main (gpointer data)
{
  int i;

  for (i = 0; i < 300; i++)
    run_and_check (1 + i % 17, 0, i % 3 == 0 ? 2 : 0);
  return NULL;
}

/* Two callers at once: one gets the pool, the other runs inline; both complete. */
static void
test_concurrent_callers (void)
{
  GThread *a = g_thread_new ("caller-a", caller_main, NULL);
  GThread *b = g_thread_new ("caller-b", caller_main, NULL);

  g_thread_join (a);
  g_thread_join (b);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/parallel/every-task-once", test_every_task_once);
  g_test_add_func ("/parallel/nested", test_nested);
  g_test_add_func ("/parallel/concurrent-callers", test_concurrent_callers);
  return g_test_run ();
}
