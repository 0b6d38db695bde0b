/* A process-wide pool of worker threads that wait passively (internal; after a job they poll
 * for the next one for 100 us first, see parallel.c).
 *
 * Why not OpenMP: libgomp's idle threads busy-wait for ~15 ms after every parallel region
 * (OMP_WAIT_POLICY can only be changed in the environment before libgomp loads, which a
 * library cannot do). When anything else wants the cores — the other elements of a GStreamer
 * pipeline, other processes — the spinning threads hold the CPU that the thread they wait for
 * needs: on 2 loaded cores the imagebind_huge audio encoder ran 2.5-5x slower with spinning
 * than with passive waiting, and equally fast on idle cores (tools/imagebind-bench). */
#ifndef IB_PARALLEL_H
#define IB_PARALLEL_H

#include <glib.h>

G_BEGIN_DECLS

/* @thread: which of the job's threads runs this task, 0 .. ib_parallel_max_threads() - 1 (the
 * caller is 0); no two threads of one job run with the same index at the same time, so it
 * can pick per-thread scratch memory of that job. */
typedef void (*IbTaskFunc) (guint task, guint thread, gpointer user_data);

/* Runs @func (task, thread, @user_data) for task = 0 .. @n_tasks - 1 on up to @n_threads
 * threads (the caller's included; 0 = all cores) and returns when all are done. Tasks are
 * handed out in order to whichever thread is free. When the pool is already busy (another
 * caller, or a call from inside a task) the tasks run on the calling thread, one after the
 * other, as thread 0: results never depend on the number of threads, only the speed does. */
void ib_parallel_for (guint n_tasks, int n_threads, IbTaskFunc func, gpointer user_data);

/* The most threads a call with @n_threads (0 = all cores) uses: min(n_threads, cores). */
guint ib_parallel_max_threads (int n_threads);

/* Scratch memory of the calling thread for one user (@key, declared
 * `static GPrivate key = G_PRIVATE_INIT (ib_thread_buffer_free);`): at least @bytes, 64-byte
 * aligned, kept for the thread's next call (the pool's workers live as long as the process),
 * grown when asked for more, freed when the thread exits. Its contents do not survive growing. */
gpointer ib_thread_buffer (GPrivate *key, gsize bytes);
void ib_thread_buffer_free (gpointer buffer);

G_END_DECLS

#endif
