#ifndef __GST_IMAGE_BIND_TEXT_H__
#define __GST_IMAGE_BIND_TEXT_H__

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>
#include "gstimagebindtextmodel.h"

G_BEGIN_DECLS

#define GST_TYPE_IMAGE_BIND_TEXT (gst_image_bind_text_get_type ())
G_DECLARE_FINAL_TYPE (GstImageBindText, gst_image_bind_text, GST, IMAGE_BIND_TEXT,
    GstBaseTransform)

struct _GstImageBindText {
  GstBaseTransform parent;

  /* properties, under the object lock */
  gchar *model_path;
  gint n_threads;
  guint64 interval;
  gboolean custom_meta;

  /* between READY and NULL */
  GstImageBindTextModel *tm;

  /* streaming thread */
  gboolean markup;              /* pango-markup caps: tags are removed before embedding */
  GstClockTime next_due;
};

GST_ELEMENT_REGISTER_DECLARE (imagebindtext);

G_END_DECLS

#endif
