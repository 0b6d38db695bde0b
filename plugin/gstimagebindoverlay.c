/**
 * SECTION:element-imagebindoverlay
 * @title: imagebindoverlay
 * @see_also: imagebindmatch, textoverlay, #GstImageBindMatchMeta
 *
 * Draws the results of an upstream imagebindmatch on raw video: a panel with the top labels
 * of the newest #GstImageBindMatchMeta and their scores as bars, detected prompts highlighted,
 * and a labelled box for every #GstVideoRegionOfInterestMeta that carries an "imagebind-match"
 * parameter structure (GST_IMAGE_BIND_ROI_MATCH_PARAM_NAME, fields in gstimagebindroi.h:
 * `label` (string, required), `probability`, `cosine` (double), `detected` (boolean), `mode`
 * ("classify" or "detect")).
 *
 * The panel shows the newest result attached to the frame or to an earlier one: encoders
 * embed one frame in N (`interval`, or whatever the live worker keeps up with), so a result
 * stays on screen until the next one. It is cleared by a flush (seek) and by going to READY.
 * In classify mode the bars are the softmax probabilities; in detect mode they are the cosine
 * scores (negative scores draw an empty bar) and the detected prompts are drawn in amber with
 * a frame around their row. When a buffer carries results of several modalities, the vision
 * one is shown. Region boxes are drawn on the frame that carries them only. Empty buffers (the
 * GAP buffer on which encoders deliver their last results at EOS) pass untouched.
 *
 * Labels are rendered with Pango and Cairo into ARGB rectangles of a
 * #GstVideoOverlayComposition. When downstream announces #GstVideoOverlayCompositionMeta
 * support in its allocation query (hardware sinks, compositors), the composition is attached
 * to the buffer and the pixels are left untouched; otherwise it is blended into the frame.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 videotestsrc pattern=ball num-buffers=60 ! videoconvert ! imagebindvision sync=true interval=250000000 ! imagebindmatch top-k=3 prompts='"<\"a bouncing ball\", \"colour bars\", \"static noise\">"' ! imagebindoverlay ! videoconvert ! pngenc snapshot=true ! filesink location=/tmp/imagebindoverlay.png
 * ]|
 * With the shipped default model: tags the bouncing ball and writes the first frame, with its
 * labels and bars, to /tmp/imagebindoverlay.png (use autovideosink instead of pngenc to watch).
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>
#include <gst/video/video.h>
#include <gst/video/gstvideofilter.h>
#include <pango/pangocairo.h>
#include <math.h>
#include <string.h>

#include "gstimagebindmatchmeta.h"
#include "gstimagebindroi.h"

GST_DEBUG_CATEGORY_STATIC (gst_image_bind_overlay_debug);
#define GST_CAT_DEFAULT gst_image_bind_overlay_debug

/**
 * GstImageBindOverlayPosition:
 * @GST_IMAGE_BIND_OVERLAY_POSITION_TOP_LEFT: top left corner
 * @GST_IMAGE_BIND_OVERLAY_POSITION_TOP_RIGHT: top right corner
 * @GST_IMAGE_BIND_OVERLAY_POSITION_BOTTOM_LEFT: bottom left corner
 * @GST_IMAGE_BIND_OVERLAY_POSITION_BOTTOM_RIGHT: bottom right corner
 *
 * Where imagebindoverlay puts the panel of labels.
 *
 * Since: 0.1
 */
typedef enum {
  GST_IMAGE_BIND_OVERLAY_POSITION_TOP_LEFT,
  GST_IMAGE_BIND_OVERLAY_POSITION_TOP_RIGHT,
  GST_IMAGE_BIND_OVERLAY_POSITION_BOTTOM_LEFT,
  GST_IMAGE_BIND_OVERLAY_POSITION_BOTTOM_RIGHT,
} GstImageBindOverlayPosition;

static GType
gst_image_bind_overlay_position_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_IMAGE_BIND_OVERLAY_POSITION_TOP_LEFT, "Top left corner", "top-left"},
    {GST_IMAGE_BIND_OVERLAY_POSITION_TOP_RIGHT, "Top right corner", "top-right"},
    {GST_IMAGE_BIND_OVERLAY_POSITION_BOTTOM_LEFT, "Bottom left corner", "bottom-left"},
    {GST_IMAGE_BIND_OVERLAY_POSITION_BOTTOM_RIGHT, "Bottom right corner", "bottom-right"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type, g_enum_register_static ("GstImageBindOverlayPosition", values));
  return type;
}

#define DEFAULT_TOP_K 3
#define DEFAULT_FONT_DESC "Sans 10"
#define DEFAULT_POSITION GST_IMAGE_BIND_OVERLAY_POSITION_TOP_LEFT
#define DEFAULT_BAR_WIDTH 100
#define DEFAULT_MARGIN 8
#define DEFAULT_SHOW_REGIONS TRUE

enum {
  PROP_0,
  PROP_TOP_K,
  PROP_FONT_DESC,
  PROP_POSITION,
  PROP_BAR_WIDTH,
  PROP_MARGIN,
  PROP_SHOW_REGIONS,
};

/* One row of the panel: a copy of one result of the newest match meta. */
typedef struct {
  gchar *label;
  gdouble score;                /* what the bar shows: probability, or cosine in detect mode */
  gboolean detected;
} Row;

#define GST_TYPE_IMAGE_BIND_OVERLAY (gst_image_bind_overlay_get_type ())
G_DECLARE_FINAL_TYPE (GstImageBindOverlay, gst_image_bind_overlay, GST, IMAGE_BIND_OVERLAY,
    GstVideoFilter);

struct _GstImageBindOverlay {
  GstVideoFilter parent;

  /* properties, under the object lock */
  guint top_k;
  gchar *font_desc;
  GstImageBindOverlayPosition position;
  guint bar_width;
  guint margin;
  gboolean show_regions;

  /* streaming thread only */
  GArray *rows;                 /* of Row: the newest result; empty before the first */
  gboolean have_result;
  GstVideoOverlayRectangle *panel;      /* rendered rows, NULL when stale or nothing to draw */
  gint panel_stale;             /* atomic: rows, properties or frame size changed */
  gboolean attach;              /* downstream takes GstVideoOverlayCompositionMeta */
  gint allocation_checked;      /* atomic: FALSE after caps changes and RECONFIGURE */
  PangoFontMap *font_map;
  PangoContext *pango;
};

G_DEFINE_TYPE (GstImageBindOverlay, gst_image_bind_overlay, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE (imagebindoverlay, "imagebindoverlay", GST_RANK_NONE,
    GST_TYPE_IMAGE_BIND_OVERLAY);

/* Pango's fontconfig back end is not safe for concurrent use from several threads (several
 * overlays in one process render from their own streaming threads): textoverlay serialises
 * its rendering the same way. */
static GMutex render_lock;

#define CAPS_STR GST_VIDEO_CAPS_MAKE (GST_VIDEO_OVERLAY_COMPOSITION_BLEND_FORMATS)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (CAPS_STR));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (CAPS_STR));

/* Cairo's ARGB32 (premultiplied, native-endian 32-bit words) as a GstVideoFormat. */
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
#define OVERLAY_FORMAT GST_VIDEO_FORMAT_BGRA
#else
#define OVERLAY_FORMAT GST_VIDEO_FORMAT_ARGB
#endif

static void
row_clear (gpointer data)
{
  g_free (((Row *) data)->label);
}

/* The panel is re-rendered by the streaming thread at its next frame. */
static void
invalidate_panel (GstImageBindOverlay * self)
{
  g_atomic_int_set (&self->panel_stale, TRUE);
}

static void
forget_result (GstImageBindOverlay * self)
{
  g_array_set_size (self->rows, 0);
  self->have_result = FALSE;
  invalidate_panel (self);
}

/* The number to draw for a result: classify ranks by probability, detect thresholds cosines. */
static gdouble
shown_score (GstImageBindMatchMode mode, gdouble probability, gdouble cosine)
{
  return mode == GST_IMAGE_BIND_MATCH_MODE_DETECT ? cosine : probability;
}

/* Takes the newest match meta of @buf (the vision one when there are several modalities). */
static void
update_result (GstImageBindOverlay * self, GstBuffer * buf)
{
  GstImageBindMatchMeta *meta, *chosen = NULL;
  gpointer state = NULL;
  guint i;

  while ((meta = gst_buffer_iterate_imagebind_match_meta (buf, &state))) {
    if (!chosen || meta->modality == GST_IMAGE_BIND_MODALITY_VISION)
      chosen = meta;
    if (meta->modality == GST_IMAGE_BIND_MODALITY_VISION)
      break;
  }
  if (!chosen)
    return;

  g_array_set_size (self->rows, 0);
  for (i = 0; i < chosen->n_results; i++) {
    const GstImageBindMatchResult *r = &chosen->results[i];
    Row row;

    row.label = g_strdup (r->label ? r->label : "");
    row.score = shown_score (chosen->mode, r->probability, r->cosine);
    row.detected = r->detected;
    g_array_append_val (self->rows, row);
  }
  self->have_result = TRUE;
  invalidate_panel (self);
  GST_LOG_OBJECT (self, "new %s result, %u rows, top '%s'",
      gst_image_bind_modality_to_string (chosen->modality), chosen->n_results,
      chosen->top_label ? chosen->top_label : "");
}

static PangoLayout *
new_layout (GstImageBindOverlay * self, const gchar * font_desc, const gchar * text)
{
  PangoLayout *layout = pango_layout_new (self->pango);
  PangoFontDescription *desc = pango_font_description_from_string (font_desc);

  pango_layout_set_font_description (layout, desc);
  pango_font_description_free (desc);
  pango_layout_set_text (layout, text, -1);
  return layout;
}

/* A cairo surface of @width x @height drawing into a new buffer, and the rectangle showing
 * that buffer at (@x, @y): the rectangle keeps the buffer, the surface must be finished with
 * surface_to_rectangle(). */
typedef struct {
  GstBuffer *buffer;
  GstMapInfo map;
  cairo_surface_t *surface;
  cairo_t *cr;
} Canvas;

static void
canvas_init (Canvas * c, gint width, gint height)
{
  gint stride = cairo_format_stride_for_width (CAIRO_FORMAT_ARGB32, width);

  c->buffer = gst_buffer_new_allocate (NULL, (gsize) stride * height, NULL);
  gst_buffer_map (c->buffer, &c->map, GST_MAP_READWRITE);
  memset (c->map.data, 0, c->map.size);
  c->surface = cairo_image_surface_create_for_data (c->map.data, CAIRO_FORMAT_ARGB32, width,
      height, stride);
  c->cr = cairo_create (c->surface);
}

static GstVideoOverlayRectangle *
canvas_finish (Canvas * c, gint x, gint y)
{
  gint width = cairo_image_surface_get_width (c->surface);
  gint height = cairo_image_surface_get_height (c->surface);
  gsize offset[GST_VIDEO_MAX_PLANES] = { 0, };
  gint stride[GST_VIDEO_MAX_PLANES] = { cairo_image_surface_get_stride (c->surface), };
  GstVideoOverlayRectangle *rect;

  cairo_destroy (c->cr);
  cairo_surface_destroy (c->surface);
  gst_buffer_unmap (c->buffer, &c->map);
  gst_buffer_add_video_meta_full (c->buffer, GST_VIDEO_FRAME_FLAG_NONE, OVERLAY_FORMAT, width,
      height, 1, offset, stride);
  rect = gst_video_overlay_rectangle_new_raw (c->buffer, x, y, width, height,
      GST_VIDEO_OVERLAY_FORMAT_FLAG_PREMULTIPLIED_ALPHA);
  gst_buffer_unref (c->buffer);
  return rect;
}

/* Amber for detections, blue otherwise. */
static void
set_accent (cairo_t * cr, gboolean detected, gdouble alpha)
{
  if (detected)
    cairo_set_source_rgba (cr, 1.0, 0.75, 0.0, alpha);
  else
    cairo_set_source_rgba (cr, 0.25, 0.6, 1.0, alpha);
}

/* The panel: one row per result, "label  [bar]  0.87", on a translucent dark background. */
static GstVideoOverlayRectangle *
render_panel (GstImageBindOverlay * self, gint frame_w, gint frame_h)
{
  const gint pad = 4, gap = 6;
  guint top_k, bar_width, margin, n, i;
  GstImageBindOverlayPosition position;
  gchar *font_desc;
  PangoLayout **labels, **scores;
  gint label_w = 0, score_w = 0, row_h = 0, panel_w, panel_h, x, y, w, h;
  Canvas c;

  GST_OBJECT_LOCK (self);
  top_k = self->top_k;
  bar_width = self->bar_width;
  margin = self->margin;
  position = self->position;
  font_desc = g_strdup (self->font_desc);
  GST_OBJECT_UNLOCK (self);

  n = self->rows->len;
  if (top_k > 0)
    n = MIN (n, top_k);
  if (n == 0) {
    g_free (font_desc);
    return NULL;
  }

  labels = g_new0 (PangoLayout *, n);
  scores = g_new0 (PangoLayout *, n);
  for (i = 0; i < n; i++) {
    const Row *row = &g_array_index (self->rows, Row, i);
    gchar num[G_ASCII_DTOSTR_BUF_SIZE];
    gint lw, lh, sw, sh;

    g_ascii_formatd (num, sizeof num, "%.2f", row->score);
    labels[i] = new_layout (self, font_desc, row->label);
    scores[i] = new_layout (self, font_desc, num);
    pango_layout_get_pixel_size (labels[i], &lw, &lh);
    pango_layout_get_pixel_size (scores[i], &sw, &sh);
    label_w = MAX (label_w, lw);
    score_w = MAX (score_w, sw);
    row_h = MAX (row_h, MAX (lh, sh));
  }
  row_h += 2;
  panel_w = pad + label_w + gap + (gint) bar_width + gap + score_w + pad;
  panel_h = pad + (gint) n * row_h + pad;

  /* the panel never extends past the frame: it is cut to the frame's size */
  x = (position == GST_IMAGE_BIND_OVERLAY_POSITION_TOP_RIGHT ||
      position == GST_IMAGE_BIND_OVERLAY_POSITION_BOTTOM_RIGHT) ?
      frame_w - (gint) margin - panel_w : (gint) margin;
  y = (position == GST_IMAGE_BIND_OVERLAY_POSITION_BOTTOM_LEFT ||
      position == GST_IMAGE_BIND_OVERLAY_POSITION_BOTTOM_RIGHT) ?
      frame_h - (gint) margin - panel_h : (gint) margin;
  x = CLAMP (x, 0, MAX (frame_w - 1, 0));
  y = CLAMP (y, 0, MAX (frame_h - 1, 0));
  w = MIN (panel_w, frame_w - x);
  h = MIN (panel_h, frame_h - y);

  canvas_init (&c, w, h);
  cairo_set_source_rgba (c.cr, 0.0, 0.0, 0.0, 0.6);
  cairo_paint (c.cr);
  for (i = 0; i < n; i++) {
    const Row *row = &g_array_index (self->rows, Row, i);
    gdouble ry = pad + (gdouble) i * row_h, bx = pad + label_w + gap;
    gdouble fill = CLAMP (row->score, 0.0, 1.0) * bar_width;

    if (row->detected) {
      set_accent (c.cr, TRUE, 1.0);
      cairo_set_line_width (c.cr, 1.0);
      cairo_rectangle (c.cr, 1.5, ry + 0.5, panel_w - 3.0, row_h - 1.0);
      cairo_stroke (c.cr);
    }
    cairo_set_source_rgba (c.cr, 1.0, 1.0, 1.0, 0.2);
    cairo_rectangle (c.cr, bx, ry + 3, bar_width, row_h - 6);
    cairo_fill (c.cr);
    set_accent (c.cr, row->detected, 1.0);
    cairo_rectangle (c.cr, bx, ry + 3, fill, row_h - 6);
    cairo_fill (c.cr);

    if (row->detected)
      set_accent (c.cr, TRUE, 1.0);
    else
      cairo_set_source_rgba (c.cr, 1.0, 1.0, 1.0, 1.0);
    cairo_move_to (c.cr, pad, ry + 1);
    pango_cairo_show_layout (c.cr, labels[i]);
    cairo_move_to (c.cr, bx + bar_width + gap, ry + 1);
    pango_cairo_show_layout (c.cr, scores[i]);
    g_object_unref (labels[i]);
    g_object_unref (scores[i]);
  }
  g_free (labels);
  g_free (scores);
  g_free (font_desc);
  return canvas_finish (&c, x, y);
}

/* A region: its box outlined and a tag "label 0.87" above it (inside it at the top edge). */
static void
render_region (GstImageBindOverlay * self, GstVideoOverlayComposition * comp,
    const GstVideoRegionOfInterestMeta * roi, const GstStructure * s, const gchar * font_desc,
    gint frame_w, gint frame_h)
{
  const gchar *label = gst_structure_get_string (s, "label");
  const gchar *mode = gst_structure_get_string (s, "mode");
  gboolean detected = FALSE, have_score;
  gdouble probability = 0.0, cosine = 0.0, score = 0.0;
  gint x0, y0, x1, y1, tw, th, ty;
  GstVideoOverlayRectangle *rect;
  PangoLayout *layout;
  gchar *text;
  Canvas c;

  if (!label) {
    GST_DEBUG_OBJECT (self, "region %u: %s without a label, not drawn", roi->id,
        GST_IMAGE_BIND_ROI_MATCH_PARAM_NAME);
    return;
  }
  gst_structure_get_boolean (s, "detected", &detected);
  if (g_strcmp0 (mode, "detect") == 0)
    have_score = gst_structure_get_double (s, "cosine", &score);
  else if ((have_score = gst_structure_get_double (s, "probability", &probability)))
    score = probability;
  else if ((have_score = gst_structure_get_double (s, "cosine", &cosine)))
    score = cosine;

  /* the box, clipped to the frame (a detector's box may stick out) */
  x0 = MIN ((gint) MIN (roi->x, (guint) G_MAXINT), frame_w);
  y0 = MIN ((gint) MIN (roi->y, (guint) G_MAXINT), frame_h);
  x1 = (gint) MIN ((guint64) roi->x + roi->w, (guint64) frame_w);
  y1 = (gint) MIN ((guint64) roi->y + roi->h, (guint64) frame_h);
  if (x1 - x0 < 2 || y1 - y0 < 2)
    return;

  canvas_init (&c, x1 - x0, y1 - y0);
  set_accent (c.cr, detected, 1.0);
  cairo_set_line_width (c.cr, 2.0);
  cairo_rectangle (c.cr, 1.0, 1.0, x1 - x0 - 2.0, y1 - y0 - 2.0);
  cairo_stroke (c.cr);
  rect = canvas_finish (&c, x0, y0);
  gst_video_overlay_composition_add_rectangle (comp, rect);
  gst_video_overlay_rectangle_unref (rect);

  if (have_score) {
    gchar num[G_ASCII_DTOSTR_BUF_SIZE];

    g_ascii_formatd (num, sizeof num, "%.2f", score);
    text = g_strdup_printf ("%s %s", label, num);
  } else {
    text = g_strdup (label);
  }
  layout = new_layout (self, font_desc, text);
  g_free (text);
  pango_layout_get_pixel_size (layout, &tw, &th);
  tw = MIN (tw + 4, frame_w - x0);
  th = MIN (th + 2, frame_h);
  ty = y0 - th >= 0 ? y0 - th : y0;
  if (tw > 0 && th > 0) {
    canvas_init (&c, tw, th);
    set_accent (c.cr, detected, 0.85);
    cairo_paint (c.cr);
    cairo_set_source_rgba (c.cr, 0.0, 0.0, 0.0, 1.0);
    cairo_move_to (c.cr, 2, 1);
    pango_cairo_show_layout (c.cr, layout);
    rect = canvas_finish (&c, x0, MIN (ty, frame_h - th));
    gst_video_overlay_composition_add_rectangle (comp, rect);
    gst_video_overlay_rectangle_unref (rect);
  }
  g_object_unref (layout);
}

/* Whether downstream takes the composition as a meta (then the frame stays untouched). The
 * base class makes no allocation query for in-place filters, so the element asks itself. */
static void
check_allocation (GstImageBindOverlay * self)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);
  GstCaps *caps = gst_pad_get_current_caps (trans->srcpad);
  GstQuery *query;

  g_atomic_int_set (&self->allocation_checked, TRUE);
  self->attach = FALSE;
  if (!caps)
    return;
  query = gst_query_new_allocation (caps, FALSE);
  if (gst_pad_peer_query (trans->srcpad, query))
    self->attach = gst_query_find_allocation_meta (query,
        GST_VIDEO_OVERLAY_COMPOSITION_META_API_TYPE, NULL);
  gst_query_unref (query);
  gst_caps_unref (caps);
  GST_INFO_OBJECT (self, "downstream %s overlay composition metas: %s",
      self->attach ? "takes" : "does not take", self->attach ? "attaching" : "blending");
}

static GstFlowReturn
gst_image_bind_overlay_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  GstImageBindOverlay *self = GST_IMAGE_BIND_OVERLAY (trans);
  GstVideoInfo *info = &GST_VIDEO_FILTER (self)->in_info;
  gint frame_w = GST_VIDEO_INFO_WIDTH (info), frame_h = GST_VIDEO_INFO_HEIGHT (info);
  GstVideoOverlayComposition *comp = NULL;
  gboolean show_regions;
  gchar *font_desc;
  gpointer state = NULL;
  GstMeta *meta;

  if (!g_atomic_int_get (&self->allocation_checked))
    check_allocation (self);

  update_result (self, buf);

  /* encoders deliver their last results at EOS on an empty GAP buffer: the result is kept
   * (for nothing more, the stream ends) and the buffer passes; there is no frame to draw on */
  if (gst_buffer_get_size (buf) == 0)
    return GST_FLOW_OK;

  GST_OBJECT_LOCK (self);
  show_regions = self->show_regions;
  font_desc = g_strdup (self->font_desc);
  GST_OBJECT_UNLOCK (self);

  g_mutex_lock (&render_lock);
  if (g_atomic_int_get (&self->panel_stale)) {
    g_atomic_int_set (&self->panel_stale, FALSE);
    g_clear_pointer (&self->panel, gst_video_overlay_rectangle_unref);
    if (self->have_result)
      self->panel = render_panel (self, frame_w, frame_h);
  }
  if (self->panel)
    comp = gst_video_overlay_composition_new (self->panel);
  while (show_regions && (meta = gst_buffer_iterate_meta_filtered (buf, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) meta;
    const GstStructure *s = gst_image_bind_roi_get_match_param (roi);

    if (!s)
      continue;
    if (!comp)
      comp = gst_video_overlay_composition_new (NULL);
    render_region (self, comp, roi, s, font_desc, frame_w, frame_h);
  }
  g_mutex_unlock (&render_lock);
  g_free (font_desc);

  if (!comp)
    return GST_FLOW_OK;
  if (gst_video_overlay_composition_n_rectangles (comp) == 0) {
    gst_video_overlay_composition_unref (comp);
    return GST_FLOW_OK;
  }

  if (self->attach) {
    GstVideoOverlayCompositionMeta *upstream = gst_buffer_get_video_overlay_composition_meta (buf);

    /* an upstream overlay attached its own (textoverlay does): one composition with both,
     * since sinks draw the first composition meta only */
    if (upstream) {
      GstVideoOverlayComposition *merged =
          gst_video_overlay_composition_copy (upstream->overlay);
      guint i;

      for (i = 0; i < gst_video_overlay_composition_n_rectangles (comp); i++)
        gst_video_overlay_composition_add_rectangle (merged,
            gst_video_overlay_composition_get_rectangle (comp, i));
      gst_buffer_remove_meta (buf, (GstMeta *) upstream);
      gst_video_overlay_composition_unref (comp);
      comp = merged;
    }
    gst_buffer_add_video_overlay_composition_meta (buf, comp);
  } else {
    GstVideoFrame frame;

    if (!gst_video_frame_map (&frame, info, buf, GST_MAP_READWRITE)) {
      gst_video_overlay_composition_unref (comp);
      GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Could not map the video frame to draw on."),
          ("buffer of %" G_GSIZE_FORMAT " bytes, caps need %" G_GSIZE_FORMAT,
              gst_buffer_get_size (buf), GST_VIDEO_INFO_SIZE (info)));
      return GST_FLOW_ERROR;
    }
    gst_video_overlay_composition_blend (comp, &frame);
    gst_video_frame_unmap (&frame);
  }
  gst_video_overlay_composition_unref (comp);
  return GST_FLOW_OK;
}

static gboolean
gst_image_bind_overlay_set_info (GstVideoFilter * filter, GstCaps * incaps,
    GstVideoInfo * in_info, GstCaps * outcaps, GstVideoInfo * out_info)
{
  GstImageBindOverlay *self = GST_IMAGE_BIND_OVERLAY (filter);

  /* a new frame size moves the panel; downstream may have changed too */
  invalidate_panel (self);
  g_atomic_int_set (&self->allocation_checked, FALSE);
  return TRUE;
}

static gboolean
gst_image_bind_overlay_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstImageBindOverlay *self = GST_IMAGE_BIND_OVERLAY (trans);

  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP)
    forget_result (self);
  return GST_BASE_TRANSFORM_CLASS (gst_image_bind_overlay_parent_class)->sink_event (trans,
      event);
}

static gboolean
gst_image_bind_overlay_src_event (GstBaseTransform * trans, GstEvent * event)
{
  GstImageBindOverlay *self = GST_IMAGE_BIND_OVERLAY (trans);

  /* downstream changed (a sink linked in): ask again whether it takes the meta */
  if (GST_EVENT_TYPE (event) == GST_EVENT_RECONFIGURE)
    g_atomic_int_set (&self->allocation_checked, FALSE);
  return GST_BASE_TRANSFORM_CLASS (gst_image_bind_overlay_parent_class)->src_event (trans,
      event);
}

static gboolean
gst_image_bind_overlay_stop (GstBaseTransform * trans)
{
  GstImageBindOverlay *self = GST_IMAGE_BIND_OVERLAY (trans);

  forget_result (self);
  g_clear_pointer (&self->panel, gst_video_overlay_rectangle_unref);
  g_atomic_int_set (&self->allocation_checked, FALSE);
  return TRUE;
}

static void
gst_image_bind_overlay_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstImageBindOverlay *self = GST_IMAGE_BIND_OVERLAY (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_TOP_K:
      self->top_k = g_value_get_uint (value);
      break;
    case PROP_FONT_DESC:
      g_free (self->font_desc);
      self->font_desc = g_value_dup_string (value);
      if (!self->font_desc)
        self->font_desc = g_strdup (DEFAULT_FONT_DESC);
      break;
    case PROP_POSITION:
      self->position = g_value_get_enum (value);
      break;
    case PROP_BAR_WIDTH:
      self->bar_width = g_value_get_uint (value);
      break;
    case PROP_MARGIN:
      self->margin = g_value_get_uint (value);
      break;
    case PROP_SHOW_REGIONS:
      self->show_regions = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      GST_OBJECT_UNLOCK (self);
      return;
  }
  /* read by the streaming thread, which re-renders at its next frame */
  g_atomic_int_set (&self->panel_stale, TRUE);
  GST_OBJECT_UNLOCK (self);
}

static void
gst_image_bind_overlay_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstImageBindOverlay *self = GST_IMAGE_BIND_OVERLAY (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_TOP_K:
      g_value_set_uint (value, self->top_k);
      break;
    case PROP_FONT_DESC:
      g_value_set_string (value, self->font_desc);
      break;
    case PROP_POSITION:
      g_value_set_enum (value, self->position);
      break;
    case PROP_BAR_WIDTH:
      g_value_set_uint (value, self->bar_width);
      break;
    case PROP_MARGIN:
      g_value_set_uint (value, self->margin);
      break;
    case PROP_SHOW_REGIONS:
      g_value_set_boolean (value, self->show_regions);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_image_bind_overlay_finalize (GObject * object)
{
  GstImageBindOverlay *self = GST_IMAGE_BIND_OVERLAY (object);

  g_clear_pointer (&self->panel, gst_video_overlay_rectangle_unref);
  g_array_unref (self->rows);
  g_free (self->font_desc);
  g_object_unref (self->pango);
  g_object_unref (self->font_map);
  G_OBJECT_CLASS (gst_image_bind_overlay_parent_class)->finalize (object);
}

static void
gst_image_bind_overlay_init (GstImageBindOverlay * self)
{
  self->top_k = DEFAULT_TOP_K;
  self->font_desc = g_strdup (DEFAULT_FONT_DESC);
  self->position = DEFAULT_POSITION;
  self->bar_width = DEFAULT_BAR_WIDTH;
  self->margin = DEFAULT_MARGIN;
  self->show_regions = DEFAULT_SHOW_REGIONS;
  self->rows = g_array_new (FALSE, FALSE, sizeof (Row));
  g_array_set_clear_func (self->rows, row_clear);
  self->panel_stale = TRUE;
  /* a font map of its own: font sizes do not depend on another element's resolution */
  self->font_map = pango_cairo_font_map_new ();
  self->pango = pango_font_map_create_context (self->font_map);
}

static void
gst_image_bind_overlay_class_init (GstImageBindOverlayClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_image_bind_overlay_debug, "imagebindoverlay", 0,
      "ImageBind result overlay");

  gobject_class->set_property = gst_image_bind_overlay_set_property;
  gobject_class->get_property = gst_image_bind_overlay_get_property;
  gobject_class->finalize = gst_image_bind_overlay_finalize;

  g_object_class_install_property (gobject_class, PROP_TOP_K,
      g_param_spec_uint ("top-k", "Top k",
          "Number of labels drawn, best first (0: every result the match meta carries; the "
          "matcher's own top-k limits what it carries)", 0, G_MAXUINT, DEFAULT_TOP_K,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_FONT_DESC,
      g_param_spec_string ("font-desc", "Font description",
          "Pango font description of the labels, e.g. \"Sans Bold 14\" (size in points at "
          "96 dpi)", DEFAULT_FONT_DESC,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_POSITION,
      g_param_spec_enum ("position", "Position", "Corner of the frame the panel of labels is in",
          gst_image_bind_overlay_position_get_type (), DEFAULT_POSITION,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_BAR_WIDTH,
      g_param_spec_uint ("bar-width", "Bar width",
          "Length in pixels of a full score bar (probability 1, or cosine 1 in detect mode)",
          0, 4096, DEFAULT_BAR_WIDTH,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MARGIN,
      g_param_spec_uint ("margin", "Margin",
          "Distance in pixels between the panel and the frame's edges", 0, 4096,
          DEFAULT_MARGIN, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_SHOW_REGIONS,
      g_param_spec_boolean ("show-regions", "Show regions",
          "Outline and label the regions of interest (GstVideoRegionOfInterestMeta) that carry "
          "an \"imagebind-match\" parameter structure", DEFAULT_SHOW_REGIONS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "ImageBind result overlay",
      "Filter/Editor/Video",
      "Draws the top labels of the newest imagebindmatch result (GstImageBindMatchMeta) with "
      "their scores as bars, detections highlighted, and labelled boxes for regions of "
      "interest carrying an \"imagebind-match\" structure (label, probability, cosine, "
      "detected, mode); blends, or attaches a GstVideoOverlayCompositionMeta when downstream "
      "takes it",
      "gst-imagebind developers");
  gst_element_class_add_static_metadata (element_class, "example",
      "gst-launch-1.0 videotestsrc pattern=ball num-buffers=60 ! videoconvert ! "
      "imagebindvision sync=true interval=250000000 ! imagebindmatch top-k=3 "
      "prompts='\"<\\\"a bouncing ball\\\", \\\"colour bars\\\", \\\"static noise\\\">\"' ! "
      "imagebindoverlay ! videoconvert ! pngenc snapshot=true ! filesink "
      "location=/tmp/imagebindoverlay.png");

  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_image_bind_overlay_transform_ip);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_image_bind_overlay_sink_event);
  trans_class->src_event = GST_DEBUG_FUNCPTR (gst_image_bind_overlay_src_event);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_image_bind_overlay_stop);
  filter_class->set_info = GST_DEBUG_FUNCPTR (gst_image_bind_overlay_set_info);

  gst_type_mark_as_plugin_api (gst_image_bind_overlay_position_get_type (), 0);
}
