/* IEEE half widening (declared in ops.h). A file of its own so that readers compiled without
 * the rest of libimagebind (the safetensors fuzz target) can use it. */
#include "ops.h"

void
ib_f16_to_f32 (const guint16 *src, float *dst, gsize n)
{
  /* Move the half's exponent and mantissa into a float's bits and rescale by 2^(127-15): exact
   * for normals and subnormals alike; inf/NaN get the all-ones exponent back. Branch-free, so
   * the loop vectorises. */
  for (gsize i = 0; i < n; i++) {
    guint32 h = src[i];
    guint32 em = h & 0x7fffu;
    union { guint32 u; float f; } v;
    v.u = em << 13;
    v.f *= 0x1p112f;
    v.u |= (em >= 0x7c00u) ? 0x7f800000u : 0u;
    v.u |= (h & 0x8000u) << 16;
    dst[i] = v.f;
  }
}
