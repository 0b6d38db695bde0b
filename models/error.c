/* The IMAGEBIND_ERROR domain (imagebind.h), on its own so that every part of libimagebind
 * (the GGUF reader first) can report errors whatever else is built. */
#include "imagebind.h"

G_DEFINE_QUARK (imagebind-error-quark, imagebind_error)
