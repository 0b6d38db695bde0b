#include "common.h"

#include <math.h>

const char *
ib_test_conformance_dir (void)
{
  static char *dir = NULL;
  if (!dir) {
    const char *env = g_getenv ("IMAGEBIND_CONFORMANCE_DIR");
    if (!env || !*env)
      env = g_getenv ("IMAGEBIND_CONFORMANCE_DIR_DEFAULT");
    if (!env || !*env)
      env = "../shared/conformance";
    dir = g_strdup (env);
  }
  return g_file_test (dir, G_FILE_TEST_IS_DIR) ? dir : NULL;
}

gboolean
ib_test_need_conformance (void)
{
  if (ib_test_conformance_dir ())
    return TRUE;
  g_test_skip ("conformance fixtures not found: set IMAGEBIND_CONFORMANCE_DIR to shared/conformance");
  return FALSE;
}

char *
ib_test_fixture (const char *relative)
{
  return g_build_filename (ib_test_conformance_dir (), relative, NULL);
}

IbNpy *
ib_test_load_npy (const char *relative)
{
  g_autofree char *path = ib_test_fixture (relative);
  GError *error = NULL;
  IbNpy *npy = ib_npy_load (path, &error);
  g_assert_no_error (error);
  return npy;
}

double
ib_test_rel_error (const float *got, const float *ref, gsize n)
{
  double max_err = 0, max_ref = 0;
  for (gsize i = 0; i < n; i++) {
    double e = fabs ((double) got[i] - (double) ref[i]);
    if (!(e <= max_err))   /* NaN counts as infinite error */
      max_err = isnan (e) ? INFINITY : e;
    if (fabs (ref[i]) > max_ref)
      max_ref = fabs (ref[i]);
  }
  return max_ref > 0 ? max_err / max_ref : max_err;
}
