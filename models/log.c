/* The runtime's log: imagebind_set_log_func() (imagebind.h) and ib_log() (log.h). */
#include "log.h"
#include "imagebind.h"

G_LOCK_DEFINE_STATIC (log_func);
static ImageBindLogFunc log_func;
static gpointer log_user_data;

void
imagebind_set_log_func (ImageBindLogFunc func, gpointer user_data)
{
  G_LOCK (log_func);
  log_func = func;
  log_user_data = user_data;
  G_UNLOCK (log_func);
}

void
ib_log (GLogLevelFlags level, const char *format, ...)
{
  ImageBindLogFunc func;
  gpointer user_data;
  va_list args;

  G_LOCK (log_func);
  func = log_func;
  user_data = log_user_data;
  G_UNLOCK (log_func);

  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  if (func)
    func (level, message, user_data);
  else
    g_log ("imagebind", level, "%s", message);
}
