/* IEEE half conversions (declared in ops.h). A file of their own so that programs built
 * without the rest of libimagebind (the safetensors fuzz target, the tests that write model
 * files: imagebind_gguf_internal in models/meson.build) can use them. */
#include "ops.h"

#include <math.h>

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

guint16
ib_f32_to_f16 (float f)
{
  /* Round to nearest even; for random weights and tests only (the converter writes files). */
  union { float f; guint32 u; } v = { .f = f };
  guint32 sign = (v.u >> 16) & 0x8000u;
  guint32 abs = v.u & 0x7fffffffu;
  guint32 mant, exp, h, rest;

  if (abs >= 0x7f800000u)
    return sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u);
  if (abs >= 0x477ff000u)       /* rounds to >= 65520: overflow */
    return sign | 0x7c00u;
  if (abs < 0x38800000u) {      /* below the smallest normal half: subnormal or zero */
    union { guint32 u; float f; } a = { .u = abs };
    float scaled = a.f * 0x1p24f;         /* in units of the smallest subnormal */
    return sign | (guint16) lrintf (scaled);
  }
  mant = abs & 0x7fffffu;
  exp = (abs >> 23) - 127 + 15;
  h = (exp << 10) | (mant >> 13);
  rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
    h++;
  return sign | h;
}
