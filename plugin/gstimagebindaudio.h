#ifndef __GST_IMAGE_BIND_AUDIO_H__
#define __GST_IMAGE_BIND_AUDIO_H__

#include <gst/gst.h>
#include <gst/audio/audio.h>
#include "gstimagebindencoder.h"
#include "gstimagebindwindow.h"
#include <imagebind-frontend.h>

G_BEGIN_DECLS

#define GST_TYPE_IMAGE_BIND_AUDIO (gst_image_bind_audio_get_type ())
G_DECLARE_FINAL_TYPE (GstImageBindAudio, gst_image_bind_audio, GST, IMAGE_BIND_AUDIO,
    GstImageBindEncoder)

struct _GstImageBindAudio {
  GstImageBindEncoder parent;

  guint64 hop;                  /* property (ns), object lock */

  /* streaming thread */
  guint rate, channels;
  gboolean is_float;            /* F32LE, else S16LE */
  GstImageBindWindow window;    /* channel 0 as float, at the input rate */

  /* where windows become spectrograms (worker thread, or streaming thread in sync mode):
   * the window, mel filters and FFT plan built once per model, not per window */
  GMutex frontend_lock;
  ImageBindAudioFrontend *frontend;
};

GST_ELEMENT_REGISTER_DECLARE (imagebindaudio);

G_END_DECLS

#endif
