/* The runtime's log (internal to libimagebind): messages go to the function an application set
 * with imagebind_set_log_func(), else to g_log() in the "imagebind" domain. A file of its own
 * so that the lowest layers (blas.c) can log without depending on the model (model.c). */
#ifndef IB_LOG_H
#define IB_LOG_H

#include <glib.h>

G_BEGIN_DECLS

void ib_log (GLogLevelFlags level, const char *format, ...) G_GNUC_PRINTF (2, 3);

G_END_DECLS

#endif
