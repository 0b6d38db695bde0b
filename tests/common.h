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

#endif
