#ifndef __GST_IMAGE_BIND_TEXT_H__
#define __GST_IMAGE_BIND_TEXT_H__

#include <gst/gst.h>
#include "gstimagebindencoder.h"

G_BEGIN_DECLS

#define GST_TYPE_IMAGE_BIND_TEXT (gst_image_bind_text_get_type ())
G_DECLARE_FINAL_TYPE (GstImageBindText, gst_image_bind_text, GST, IMAGE_BIND_TEXT,
    GstImageBindEncoder)

struct _GstImageBindText {
  GstImageBindEncoder parent;

  /* streaming thread */
  gboolean markup;              /* pango-markup caps: tags are removed before embedding */
};

GST_ELEMENT_REGISTER_DECLARE (imagebindtext);

G_END_DECLS

#endif
