/* Helpers shared by the tests. */
#ifndef IB_TEST_COMMON_H
#define IB_TEST_COMMON_H

#include <glib.h>
#include "npy.h"

/* The conformance directory ($IMAGEBIND_CONFORMANCE_DIR, else the build's default), or NULL
 * when it does not exist; then the caller should g_test_skip() with the returned reason. */
const char *ib_test_conformance_dir (void);
/* Path inside the conformance directory (newly allocated). */
char *ib_test_fixture (const char *relative);
/* Loads a fixture .npy; fails the test if it cannot be read. */
IbNpy *ib_test_load_npy (const char *relative);
/* max|a - b| / max|ref|, the conformance README's relative error. */
double ib_test_rel_error (const float *got, const float *ref, gsize n);
/* Skips the current test (with the reason) when fixtures are absent; returns FALSE then. */
gboolean ib_test_need_conformance (void);
/* Fails the test (naming @what) unless @got (n_got floats) is within @tol x max|golden| of the
 * float32 @golden; logs and returns the relative error. */
double ib_test_assert_close (const char *what, const float *got, gsize n_got, const IbNpy *golden,
    double tol);
/* The same against @n floats at @ref. */
double ib_test_assert_close_data (const char *what, const float *got, const float *ref, gsize n,
    double tol);

/* Collects a runtime's traced stages (an ImageBindTraceFunc with a table from
 * ib_test_capture_new() as user data): stage name -> GArray of float, passes appended. */
GHashTable *ib_test_capture_new (void);
void ib_test_capture_stage (const char *stage, const float *data, guint n, guint rows,
    guint cols, gpointer table);

/* Runs imagebind-embed @tool --model @model --threads 1 @args (NULL-terminated) with the
 * system's GStreamer plugins (which the test environment hides) and a registry of its own;
 * returns the exit status and, if @err_out, its stderr. */
int ib_test_run_embed_tool (const char *tool, const char *model, const char *const *args,
    char **err_out);

#endif
