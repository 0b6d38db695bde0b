/**
 * SECTION:element-imagebindvision
 * @title: imagebindvision
 * @see_also: imagebindaudio, imagebindmatch, #GstImageBindEmbeddingMeta
 *
 * Computes the ImageBind vision embedding of video frames and attaches it to the buffers as a
 * #GstImageBindEmbeddingMeta (modality "vision"). Frames pass through untouched.
 *
 * Each embedded frame is converted to RGB with GStreamer's video converter, its short side
 * resized to the model's input size (224) with Pillow-exact bicubic interpolation, centre
 * cropped and CLIP-normalised, as the official image loader does, and embedded as a
 * one-frame clip (1, 3, 224, 224).
 *
 * Which frames are embedded and how (#GstImageBindEncoder): `interval` (nanoseconds) and
 * `inference-interval` (every Nth frame) choose the due frames. With `sync=auto` (the default)
 * a file, or any upstream that is not live, has every due frame embedded on the streaming thread
 * (the same results on every run), while a live source (camera) gets live mode: inference runs
 * on a worker thread and frames never wait; of the frames arriving while the worker is busy the
 * newest is embedded next and the others pass without an embedding (counted as `skipped`), and
 * a result is attached to the first frame that passes after it is ready, with the timestamp
 * (`pts`, `stream-time`, `running-time`) and duration of the frame it describes. The element
 * then adds no latency. `sync=true` and `sync=false` force one mode. `imagebind-encoder-stats`
 * messages report what was embedded and skipped (#GstImageBindEncoder).
 *
 * ## Regions of interest
 *
 * With `inference-region=roi-list` (only the regions) or `both` (the whole frame, then the
 * regions), each #GstVideoRegionOfInterestMeta an upstream detector attached to a due frame
 * is embedded too, as DL Streamer's `inference-region` does: its rectangle is clamped to the
 * frame and its pixels of the frame's RGB conversion go through exactly the front end of a
 * whole frame (short side resized, centre crop, the model's mean and std), so the embedding
 * of a region equals the runtime's (imagebind_image_to_tensor() and imagebind_embed()) on the
 * same pixels cropped out. Regions that are empty once clamped (zero size, outside the frame)
 * are skipped with a debug line. `object-class` keeps the regions of the listed `roi_type`s;
 * `max-regions` (default 16) caps the regions embedded per frame, in the order they are
 * attached, so that a detector flooding regions cannot exhaust time or memory: each region
 * costs one inference. Skipped regions are counted as `regions-skipped`, embedded ones as
 * `regions`, in the `imagebind-encoder-stats` messages.
 *
 * Each region's #GstImageBindEmbeddingMeta names its region (`has_region`, `region`: the ROI
 * meta's id, roi_type and rectangle as attached; gst_image_bind_embedding_meta_get_region()),
 * and carries the frame's timestamps. All embeddings of a frame are one inference job: in live
 * mode a frame is embedded with all its regions or skipped whole, and its embeddings are
 * attached together to one (possibly later) buffer. In `roi-list` mode a due frame without
 * regions passes without an embedding, and the next frame is due. imagebindmatch scores the
 * regions and adds each one's result to its ROI meta.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -m videotestsrc pattern=ball num-buffers=50 ! videoconvert ! imagebindvision interval=500000000 ! imagebindmatch prompt-list="a bouncing ball;colour bars;static noise" ! fakesink
 * ]|
 * Embeds two frames per second of video (the frames of 0, 0.5, 1 and 1.5 s) and classifies
 * them; the encoder's `imagebind-encoder-stats` messages count them.
 *
 * |[
 * gst-launch-1.0 -e videotestsrc pattern=smpte num-buffers=50 ! theoraenc ! oggmux ! filesink location=/tmp/smpte.ogg
 * gst-launch-1.0 -m filesrc location=/tmp/smpte.ogg ! decodebin ! videoconvert ! imagebindvision ! fakesink
 * ]|
 * Embeds every frame of a file, the same way on every run: the totals at EOS say 50
 * embedded, 0 skipped.
 *
 * |[
 * gst-launch-1.0 v4l2src ! videoconvert ! imagebindvision inference-interval=15 ! imagebindmatch prompt-list="a person;a dog;a cat" ! fakesink
 * ]|
 * A camera (live): every 15th frame is offered to the worker thread, the video never waits.
 *
 * |[
 * gst-launch-1.0 -m videotestsrc pattern=ball num-buffers=5 ! videoconvert ! imagebindvision inference-region=both object-class=face,person max-regions=8 ! imagebindmatch prompt-list="a face;a person;a bouncing ball" ! imagebindoverlay ! fakesink
 * ]|
 * The whole frame, and the "face" and "person" regions of interest an upstream detector
 * attached, at most 8 per frame; imagebindoverlay labels each region. A test source has no
 * regions: put a detector that attaches #GstVideoRegionOfInterestMeta before imagebindvision
 * (GStreamer's `facedetect`, from gstreamer1.0-opencv, attaches "face" regions; an
 * application may attach its own in a pad probe); none of the elements this project's CI
 * installs does.
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstimagebindvision.h"
#include "gstimagebindcaps.h"

#include <imagebind-frontend.h>

GST_DEBUG_CATEGORY_STATIC (gst_image_bind_vision_debug);
#define GST_CAT_DEFAULT gst_image_bind_vision_debug

#define VISION_FORMATS "{ RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, ARGB, ABGR, " \
    "I420, NV12, YUY2, GRAY8 }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_IMAGE_BIND_VIDEO_CAPS (VISION_FORMATS)));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_IMAGE_BIND_VIDEO_CAPS (VISION_FORMATS)));

G_DEFINE_TYPE (GstImageBindVision, gst_image_bind_vision, GST_TYPE_IMAGE_BIND_ENCODER);
GST_ELEMENT_REGISTER_DEFINE (imagebindvision, "imagebindvision", GST_RANK_NONE,
    GST_TYPE_IMAGE_BIND_VISION);

#define DEFAULT_INFERENCE_REGION GST_IMAGE_BIND_VISION_INFERENCE_REGION_FULL_FRAME
#define DEFAULT_OBJECT_CLASS NULL
#define DEFAULT_MAX_REGIONS 16

enum {
  PROP_0,
  PROP_INFERENCE_REGION,
  PROP_OBJECT_CLASS,
  PROP_MAX_REGIONS,
};

static const GEnumValue inference_region_values[] = {
  {GST_IMAGE_BIND_VISION_INFERENCE_REGION_FULL_FRAME, "The whole frame", "full-frame"},
  {GST_IMAGE_BIND_VISION_INFERENCE_REGION_ROI_LIST, "Each region of interest "
        "(GstVideoRegionOfInterestMeta) of the frame, not the frame", "roi-list"},
  {GST_IMAGE_BIND_VISION_INFERENCE_REGION_BOTH, "The whole frame and each region of interest",
      "both"},
  {0, NULL, NULL}
};

GType
gst_image_bind_vision_inference_region_get_type (void)
{
  static gsize type = 0;

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstImageBindVisionInferenceRegion",
        inference_region_values);
    g_once_init_leave (&type, t);
  }
  return type;
}

/* A region to embed: as the ROI meta names it, and the part of the frame cropped. */
typedef struct {
  GstImageBindRegion region;
  guint x, y, w, h;             /* the region clamped to the frame: never empty */
} VisionRegion;

/* A private copy of one frame, owned by the job that embeds it, and what to embed of it. */
typedef struct {
  GstVideoInfo info;
  GstBuffer *buffer;
  gboolean full_frame;
  GArray *regions;              /* VisionRegion */
  /* prepare_nth(): the frame in packed RGB, converted once for all its embeddings */
  GstVideoFrame rgb;
  gboolean rgb_mapped;
} VisionInput;

static void
vision_input_free (VisionInput * input)
{
  if (input->rgb_mapped)
    gst_video_frame_unmap (&input->rgb);
  gst_buffer_unref (input->buffer);
  g_array_unref (input->regions);
  g_free (input);
}

/* What to embed of a frame, read once per frame under the object lock. */
typedef struct {
  GstImageBindVisionInferenceRegion mode;
  GQuark *classes;              /* owned copy, or NULL = every class */
  guint max_regions;
} RegionSettings;

static RegionSettings
read_region_settings (GstImageBindVision * self)
{
  RegionSettings set;
  guint n = 0;

  GST_OBJECT_LOCK (self);
  set.mode = self->inference_region;
  set.max_regions = self->max_regions;
  set.classes = NULL;
  if (self->object_quarks) {
    while (self->object_quarks[n])
      n++;
    set.classes = g_memdup2 (self->object_quarks, (n + 1) * sizeof (GQuark));
  }
  GST_OBJECT_UNLOCK (self);
  return set;
}

static gboolean
class_wanted (const RegionSettings * set, GQuark roi_type)
{
  const GQuark *q;

  if (!set->classes)
    return TRUE;
  for (q = set->classes; *q; q++)
    if (*q == roi_type)
      return TRUE;
  return FALSE;
}

/* The regions of interest of @buffer to embed, in the order the metas are attached: those of a
 * wanted class, clamped to the frame, empty ones left out (with a debug line), at most
 * max_regions. Appends them to @out (NULL: only counts, stopping at the first). Returns the
 * number appended (or found), and the number left out for being empty or over the cap in
 * @n_skipped. */
static guint
collect_regions (GstImageBindVision * self, GstBuffer * buffer, const RegionSettings * set,
    GArray * out, guint * n_skipped)
{
  guint frame_w = GST_VIDEO_INFO_WIDTH (&self->info);
  guint frame_h = GST_VIDEO_INFO_HEIGHT (&self->info);
  gpointer state = NULL;
  GstMeta *meta;
  guint n = 0, skipped = 0;

  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) meta;
    VisionRegion r;
    guint64 x1, y1;

    if (!class_wanted (set, roi->roi_type))
      continue;
    /* clamped in 64 bits: x + w may overflow 32 */
    r.x = MIN (roi->x, frame_w);
    r.y = MIN (roi->y, frame_h);
    x1 = MIN ((guint64) roi->x + roi->w, (guint64) frame_w);
    y1 = MIN ((guint64) roi->y + roi->h, (guint64) frame_h);
    r.w = (guint) (x1 - r.x);
    r.h = (guint) (y1 - r.y);
    if (r.w == 0 || r.h == 0) {
      GST_DEBUG_OBJECT (self, "region %d (%s) %ux%u at %u,%u is empty in the %ux%u frame: "
          "not embedded", roi->id, g_quark_to_string (roi->roi_type), roi->w, roi->h, roi->x,
          roi->y, frame_w, frame_h);
      skipped++;
      continue;
    }
    if (n >= set->max_regions) {
      GST_DEBUG_OBJECT (self, "region %d (%s) is over max-regions=%u: not embedded", roi->id,
          g_quark_to_string (roi->roi_type), set->max_regions);
      skipped++;
      continue;
    }
    if (!out) {
      n = 1;
      break;
    }
    r.region.id = roi->id;
    r.region.roi_type = roi->roi_type;
    r.region.x = roi->x;
    r.region.y = roi->y;
    r.region.w = roi->w;
    r.region.h = roi->h;
    g_array_append_val (out, r);
    n++;
  }
  if (n_skipped)
    *n_skipped = skipped;
  return n;
}

static gboolean
gst_image_bind_vision_has_input (GstImageBindEncoder * encoder, GstBuffer * buffer)
{
  GstImageBindVision *self = GST_IMAGE_BIND_VISION (encoder);
  RegionSettings set = read_region_settings (self);
  gboolean has;

  has = set.mode != GST_IMAGE_BIND_VISION_INFERENCE_REGION_ROI_LIST ||
      collect_regions (self, buffer, &set, NULL, NULL) > 0;
  g_free (set.classes);
  if (!has)
    GST_LOG_OBJECT (self, "no region of interest to embed at %" GST_TIME_FORMAT,
        GST_TIME_ARGS (GST_BUFFER_PTS (buffer)));
  return has;
}

static gboolean
gst_image_bind_vision_set_caps (GstBaseTransform * trans, GstCaps * incaps, GstCaps * outcaps)
{
  GstImageBindVision *self = GST_IMAGE_BIND_VISION (trans);

  if (!gst_video_info_from_caps (&self->info, incaps)) {
    GST_ERROR_OBJECT (self, "invalid caps %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  GST_DEBUG_OBJECT (self, "%s %dx%d", gst_video_format_to_string (self->info.finfo->format),
      self->info.width, self->info.height);
  return TRUE;
}

static gpointer
gst_image_bind_vision_copy_input (GstImageBindEncoder * encoder, GstBuffer * buffer,
    GDestroyNotify * free_func)
{
  GstImageBindVision *self = GST_IMAGE_BIND_VISION (encoder);
  GstVideoFrame src, dst;
  VisionInput *input;
  gboolean ok;

  if (!gst_video_frame_map (&src, &self->info, buffer, GST_MAP_READ)) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Could not map the video frame."),
        ("buffer of %" G_GSIZE_FORMAT " bytes for %" G_GSIZE_FORMAT "-byte frames",
            gst_buffer_get_size (buffer), self->info.size));
    return NULL;
  }
  input = g_new0 (VisionInput, 1);
  input->info = self->info;
  input->regions = g_array_new (FALSE, FALSE, sizeof (VisionRegion));
  {
    RegionSettings set = read_region_settings (self);
    guint skipped = 0;

    input->full_frame = set.mode != GST_IMAGE_BIND_VISION_INFERENCE_REGION_ROI_LIST;
    if (set.mode != GST_IMAGE_BIND_VISION_INFERENCE_REGION_FULL_FRAME)
      collect_regions (self, buffer, &set, input->regions, &skipped);
    if (skipped)
      gst_image_bind_encoder_count_skipped_regions (encoder, skipped);
    g_free (set.classes);
  }
  input->buffer = gst_buffer_new_allocate (NULL, self->info.size, NULL);
  gst_video_frame_map (&dst, &input->info, input->buffer, GST_MAP_WRITE);
  ok = gst_video_frame_copy (&dst, &src);
  gst_video_frame_unmap (&dst);
  gst_video_frame_unmap (&src);
  if (!ok) {
    vision_input_free (input);
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Could not copy the video frame."), (NULL));
    return NULL;
  }
  *free_func = (GDestroyNotify) vision_input_free;
  return input;
}

/* Packed RGB of the frame: the frame itself when it is RGB, else a conversion into @rgb. */
static gboolean
convert_to_rgb (GstImageBindVision * self, VisionInput * input, GstVideoFrame * rgb,
    GError ** error)
{
  GstVideoInfo out_info;
  GstVideoFrame src;
  GstBuffer *out;

  if (GST_VIDEO_INFO_FORMAT (&input->info) == GST_VIDEO_FORMAT_RGB)
    return gst_video_frame_map (rgb, &input->info, input->buffer, GST_MAP_READ);

  gst_video_info_set_format (&out_info, GST_VIDEO_FORMAT_RGB, input->info.width,
      input->info.height);
  /* The converter only changes the format: everything else must match. */
  GST_VIDEO_INFO_FPS_N (&out_info) = GST_VIDEO_INFO_FPS_N (&input->info);
  GST_VIDEO_INFO_FPS_D (&out_info) = GST_VIDEO_INFO_FPS_D (&input->info);
  GST_VIDEO_INFO_PAR_N (&out_info) = GST_VIDEO_INFO_PAR_N (&input->info);
  GST_VIDEO_INFO_PAR_D (&out_info) = GST_VIDEO_INFO_PAR_D (&input->info);

  g_mutex_lock (&self->convert_lock);
  if (!self->converter || !gst_video_info_is_equal (&self->converter_in, &input->info)) {
    g_clear_pointer (&self->converter, gst_video_converter_free);
    self->converter = gst_video_converter_new (&input->info, &out_info,
        gst_structure_new ("GstVideoConverter",
            GST_VIDEO_CONVERTER_OPT_DITHER_METHOD, GST_TYPE_VIDEO_DITHER_METHOD,
            GST_VIDEO_DITHER_NONE, GST_VIDEO_CONVERTER_OPT_THREADS, G_TYPE_UINT, 1, NULL));
    self->converter_in = input->info;
  }
  if (!self->converter) {
    g_mutex_unlock (&self->convert_lock);
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "cannot convert %s to RGB", gst_video_format_to_string (input->info.finfo->format));
    return FALSE;
  }
  out = gst_buffer_new_allocate (NULL, out_info.size, NULL);
  gst_video_frame_map (&src, &input->info, input->buffer, GST_MAP_READ);
  gst_video_frame_map (rgb, &out_info, out, GST_MAP_WRITE);
  gst_video_converter_frame (self->converter, &src, rgb);
  gst_video_frame_unmap (&src);
  g_mutex_unlock (&self->convert_lock);
  gst_buffer_unref (out);       /* the mapped frame holds its own reference */
  return TRUE;
}

static guint
gst_image_bind_vision_n_tensors (GstImageBindEncoder * encoder, gpointer data)
{
  VisionInput *input = data;

  return (input->full_frame ? 1 : 0) + input->regions->len;
}

/* Embedding @n of the frame: the whole frame first (when it is embedded), then the regions.
 * A region goes through the very front end a whole frame does, on its pixels of the frame in
 * RGB: the same as imagebind_image_to_tensor() on those pixels cropped out. */
static gboolean
gst_image_bind_vision_prepare_nth (GstImageBindEncoder * encoder, gpointer data, guint n,
    gfloat ** tensor, gint64 * shape, guint * n_dims, const GstImageBindRegion ** region,
    GError ** error)
{
  GstImageBindVision *self = GST_IMAGE_BIND_VISION (encoder);
  VisionInput *input = data;
  /* size, mean and std of the model file (CLIP-family models may differ from ImageBind's) */
  ImageBindImageParams params =
      imagebind_image_params_from_model (gst_image_bind_encoder_get_model (encoder));
  const guint8 *pixels;
  guint width, height;
  gsize stride;
  gboolean ok;

  if (!input->rgb_mapped) {
    if (!convert_to_rgb (self, input, &input->rgb, error))
      return FALSE;
    input->rgb_mapped = TRUE;
  }
  pixels = GST_VIDEO_FRAME_PLANE_DATA (&input->rgb, 0);
  stride = GST_VIDEO_FRAME_PLANE_STRIDE (&input->rgb, 0);
  width = GST_VIDEO_FRAME_WIDTH (&input->rgb);
  height = GST_VIDEO_FRAME_HEIGHT (&input->rgb);
  *region = NULL;
  if (!input->full_frame || n > 0) {
    const VisionRegion *r =
        &g_array_index (input->regions, VisionRegion, n - (input->full_frame ? 1 : 0));

    pixels += (gsize) r->y * stride + (gsize) r->x * 3;
    width = r->w;
    height = r->h;
    *region = &r->region;
  }

  *tensor = g_new (gfloat, 3 * (gsize) params.size * params.size);
  ok = imagebind_image_to_tensor (&params, pixels, width, height, stride, *tensor, error);
  if (!ok) {
    g_clear_pointer (tensor, g_free);
    return FALSE;
  }
  shape[0] = 1;
  shape[1] = 3;
  shape[2] = params.size;
  shape[3] = params.size;
  *n_dims = 4;
  return TRUE;
}

/* "face, person" -> { face, person, 0 }; NULL or blank -> NULL (every class). */
static GQuark *
parse_object_class (const gchar * str)
{
  gchar **names;
  GArray *quarks;
  guint i;

  if (!str)
    return NULL;
  names = g_strsplit (str, ",", -1);
  quarks = g_array_new (TRUE, TRUE, sizeof (GQuark));
  for (i = 0; names[i]; i++) {
    GQuark q;

    g_strstrip (names[i]);
    if (!*names[i])
      continue;
    q = g_quark_from_string (names[i]);
    g_array_append_val (quarks, q);
  }
  g_strfreev (names);
  if (quarks->len == 0) {
    g_array_free (quarks, TRUE);
    return NULL;
  }
  return (GQuark *) g_array_free (quarks, FALSE);
}

static void
gst_image_bind_vision_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstImageBindVision *self = GST_IMAGE_BIND_VISION (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_INFERENCE_REGION:
      self->inference_region = g_value_get_enum (value);
      break;
    case PROP_OBJECT_CLASS:
      g_free (self->object_class);
      g_free (self->object_quarks);
      self->object_class = g_value_dup_string (value);
      self->object_quarks = parse_object_class (self->object_class);
      break;
    case PROP_MAX_REGIONS:
      self->max_regions = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_image_bind_vision_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstImageBindVision *self = GST_IMAGE_BIND_VISION (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_INFERENCE_REGION:
      g_value_set_enum (value, self->inference_region);
      break;
    case PROP_OBJECT_CLASS:
      g_value_set_string (value, self->object_class);
      break;
    case PROP_MAX_REGIONS:
      g_value_set_uint (value, self->max_regions);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_image_bind_vision_finalize (GObject * object)
{
  GstImageBindVision *self = GST_IMAGE_BIND_VISION (object);

  g_free (self->object_class);
  g_free (self->object_quarks);
  g_clear_pointer (&self->converter, gst_video_converter_free);
  g_mutex_clear (&self->convert_lock);
  G_OBJECT_CLASS (gst_image_bind_vision_parent_class)->finalize (object);
}

static void
gst_image_bind_vision_init (GstImageBindVision * self)
{
  gst_video_info_init (&self->info);
  g_mutex_init (&self->convert_lock);
  self->inference_region = DEFAULT_INFERENCE_REGION;
  self->object_class = g_strdup (DEFAULT_OBJECT_CLASS);
  self->object_quarks = NULL;
  self->max_regions = DEFAULT_MAX_REGIONS;
}

static void
gst_image_bind_vision_class_init (GstImageBindVisionClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstImageBindEncoderClass *encoder_class = GST_IMAGE_BIND_ENCODER_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_image_bind_vision_debug, "imagebindvision", 0,
      "ImageBind vision encoder");

  gobject_class->set_property = gst_image_bind_vision_set_property;
  gobject_class->get_property = gst_image_bind_vision_get_property;
  gobject_class->finalize = gst_image_bind_vision_finalize;

  /**
   * GstImageBindVision:inference-region:
   *
   * What is embedded of a due frame: `full-frame` (the default) the whole frame;
   * `roi-list` each region of interest an upstream detector attached
   * (#GstVideoRegionOfInterestMeta), not the frame (a frame without regions passes without
   * an embedding and the next frame is due); `both` the whole frame and each region.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_INFERENCE_REGION,
      g_param_spec_enum ("inference-region", "Inference region",
          "What is embedded of a frame: the whole frame, each region of interest "
          "(GstVideoRegionOfInterestMeta of an upstream detector) or both",
          GST_TYPE_IMAGE_BIND_VISION_INFERENCE_REGION, DEFAULT_INFERENCE_REGION,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindVision:object-class:
   *
   * Regions of interest to embed, by `roi_type`: comma-separated names ("face,person");
   * unset or empty embeds every region.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_OBJECT_CLASS,
      g_param_spec_string ("object-class", "Object class",
          "Embed only regions of interest of these types (comma-separated roi_type names, "
          "e.g. \"face,person\"); unset = every region", DEFAULT_OBJECT_CLASS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstImageBindVision:max-regions:
   *
   * Most regions of interest embedded per frame, the first ones in the order they are
   * attached; the others are counted as `regions-skipped` in the stats messages. Each region
   * costs one inference, so this bounds the time and memory a detector flooding regions can
   * take.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MAX_REGIONS,
      g_param_spec_uint ("max-regions", "Max regions",
          "Most regions of interest embedded per frame (one inference each); the others are "
          "counted as regions-skipped (min 1, max 4096, default 16)",
          1, 4096, DEFAULT_MAX_REGIONS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "ImageBind vision encoder",
      "Filter/Analyzer/Video",
      "Attaches the ImageBind embedding of video frames as GstImageBindEmbeddingMeta",
      "gst-imagebind developers");

  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_image_bind_vision_set_caps);

  encoder_class->modality = GST_IMAGE_BIND_MODALITY_VISION;
  encoder_class->copy_input = GST_DEBUG_FUNCPTR (gst_image_bind_vision_copy_input);
  encoder_class->has_input = GST_DEBUG_FUNCPTR (gst_image_bind_vision_has_input);
  encoder_class->n_tensors = GST_DEBUG_FUNCPTR (gst_image_bind_vision_n_tensors);
  encoder_class->prepare_nth = GST_DEBUG_FUNCPTR (gst_image_bind_vision_prepare_nth);

  gst_type_mark_as_plugin_api (GST_TYPE_IMAGE_BIND_VISION_INFERENCE_REGION, 0);
}
