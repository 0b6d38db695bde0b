/* One media file -> one model input tensor. Decoding is GStreamer's (gstimagebindmedia.c); the
 * numbers are the runtime's front ends, so what a tool embeds is what the elements embed. */
#include "gstimagebindmediatensor.h"
#include "gstimagebindmedia.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CLIPS GST_IMAGE_BIND_MEDIA_VIDEO_CLIPS
#define CROPS GST_IMAGE_BIND_MEDIA_VIDEO_CROPS

/* IMU files larger than this are refused: the model sees one window of a few seconds. */
#define MAX_IMU_BYTES (256u << 20)

/* Sets @shape (batch 1 first) and returns the number of floats. */
static gsize
set_shape (gint64 *shape, guint *n_dims, guint n, ...)
{
  va_list ap;
  gsize total = 1;

  va_start (ap, n);
  for (guint d = 0; d < n; d++) {
    shape[d] = va_arg (ap, gint64);
    total *= (gsize) shape[d];
  }
  va_end (ap);
  *n_dims = n;
  return total;
}

/* The audio front end's parameters are the model's (imagebind_audio_params_from_model(), as
 * imagebindaudio takes them), so a file embeds as the element embeds the same sound. */
static gboolean
audio_to_tensor (const ImageBindAudioParams *params, const char *path, float *out,
    GError **error)
{
  g_autofree float *planar = NULL, *resampled = NULL;
  guint channels, rate;
  gsize n;

  if (!gst_image_bind_media_decode_audio (path, &planar, &channels, &n, &rate, error))
    return FALSE;
  if (rate != params->sample_rate) {
    /* as the official loader: resample every channel, then take clips */
    n = imagebind_audio_resample (planar, channels, n, rate, params->sample_rate, &resampled);
    if (!resampled) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
          "%s: cannot resample %u Hz audio to %u Hz", path, rate, params->sample_rate);
      return FALSE;
    }
  }
  if (!imagebind_audio_to_tensor (params, resampled ? resampled : planar, channels, n, out,
          error)) {
    g_prefix_error (error, "%s: ", path);
    return FALSE;
  }
  return TRUE;
}

/* Parses one CSV line of 6 (or 7, time first) numbers; FALSE for a line that is not numeric. */
static gboolean
parse_imu_line (const char *line, float *sample)
{
  double v[7];
  guint n = 0;
  const char *p = line;

  while (*p && n < 7) {
    char *end;
    while (*p == ' ' || *p == '\t')
      p++;
    v[n] = g_ascii_strtod (p, &end);
    if (end == p)
      return FALSE;
    n++;
    p = end;
    while (*p == ' ' || *p == '\t' || *p == '\r')
      p++;
    if (*p == ',' || *p == ';')
      p++;
    else if (*p)
      return FALSE;
  }
  if (*p || (n != 6 && n != 7))
    return FALSE;
  for (guint i = 0; i < 6; i++)
    sample[i] = (float) v[n - 6 + i];
  return TRUE;
}

static gboolean
imu_to_tensor (const ImageBindInputGeometry *g, const char *path, float *out, GError **error)
{
  g_autofree char *contents = NULL;
  gsize len;
  g_autoptr (GArray) samples = g_array_new (FALSE, FALSE, 6 * sizeof (float));

  if (!g_file_get_contents (path, &contents, &len, error))
    return FALSE;
  if (len > MAX_IMU_BYTES) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "%s: %" G_GSIZE_FORMAT " bytes is too much IMU data for one window; cut it first", path, len);
    return FALSE;
  }
  if (g_str_has_suffix (path, ".csv") || g_str_has_suffix (path, ".CSV")) {
    g_auto (GStrv) lines = g_strsplit (contents, "\n", -1);
    for (guint i = 0; lines[i]; i++) {
      float s[6];
      if (!*g_strstrip (lines[i]))
        continue;
      if (parse_imu_line (lines[i], s)) {
        g_array_append_val (samples, s);
      } else if (samples->len > 0 || i > 0) {
        /* only the first line may be a header */
        g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
            "%s:%u: expected 6 numbers (ax,ay,az,gx,gy,gz) or 7 (time first)", path, i + 1);
        return FALSE;
      }
    }
  } else {
    if (len % (6 * sizeof (float)) != 0) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
          "%s: raw IMU data must be float32 samples of 6 channels (%" G_GSIZE_FORMAT
          " bytes is not a multiple of 24)", path, len);
      return FALSE;
    }
    for (gsize i = 0; i < len / 24; i++) {
      float s[6];
      memcpy (s, contents + i * 24, 24);
      if (G_BYTE_ORDER == G_BIG_ENDIAN)
        for (guint c = 0; c < 6; c++) {
          guint32 u;
          memcpy (&u, &s[c], 4);
          u = GUINT32_SWAP_LE_BE (u);
          memcpy (&s[c], &u, 4);
        }
      g_array_append_val (samples, s);
    }
  }
  if (!imagebind_imu_to_tensor (g->imu_num_samples, (const float *) samples->data, samples->len,
          out, error)) {
    g_prefix_error (error, "%s: ", path);
    return FALSE;
  }
  return TRUE;
}

/* An image through the image path; a video through the official video loader's clips. A
 * model with a 2D patch stem (CLIP: video_frames 1) embeds each of a clip's two frames as a
 * sample of its own; the clip mean then averages them with the other clips and crops. */
static float *
vision_to_tensor (const ImageBindInputGeometry *g, const char *path, gint64 *shape,
    guint *n_dims, GError **error)
{
  ImageBindImageParams params = imagebind_image_default_params ();
  GstImageBindMediaFrames frames;
  float *out = NULL;
  gsize sample;
  guint T = g->video_frames == 1 ? 1 : 2, per_clip = 2 / T;

  params.size = g->image_size;
  memcpy (params.mean, g->image_mean, sizeof params.mean);
  memcpy (params.std, g->image_std, sizeof params.std);
  if (!gst_image_bind_media_decode_clip_frames (path, GST_IMAGE_BIND_MEDIA_VIDEO_CLIP_SECONDS,
          CLIPS, &frames, error))
    return NULL;
  if (!frames.is_video) {
    out = g_new (float, set_shape (shape, n_dims, 4, (gint64) 1, (gint64) 3,
            (gint64) g->image_size, (gint64) g->image_size));
    if (!imagebind_image_to_tensor (&params, frames.frames[0], frames.width, frames.height,
            (gsize) frames.width * 3, out, error))
      g_clear_pointer (&out, g_free);
    gst_image_bind_media_frames_clear (&frames);
    return out;
  }
  out = g_new (float, set_shape (shape, n_dims, 6, (gint64) 1,
          (gint64) (CLIPS * CROPS * per_clip), (gint64) 3,
          (gint64) T, (gint64) g->image_size, (gint64) g->image_size));
  sample = (gsize) 3 * T * g->image_size * g->image_size;
  /* data.py's order: for each clip its three crops (and, for T = 1, each crop's two frames) */
  for (guint k = 0; k < CLIPS; k++)
    for (guint c = 0; c < CROPS; c++)
      for (guint f = 0; f < per_clip; f++)
        if (!imagebind_video_clip_to_tensor (&params,
                (const guint8 *const *) frames.frames + 2 * k + f, T, frames.width,
                frames.height, (gsize) frames.width * 3, c,
                out + ((k * CROPS + c) * per_clip + f) * sample, error)) {
          g_clear_pointer (&out, g_free);
          goto done;
        }
done:
  gst_image_bind_media_frames_clear (&frames);
  return out;
}

float *
gst_image_bind_media_load_tensor (const ImageBindModel *model, ImageBindModality modality,
    const GstImageBindMediaOptions *options, const char *path, gint64 *shape, guint *n_dims,
    GError **error)
{
  ImageBindInputGeometry geometry;
  const ImageBindInputGeometry *g = &geometry;
  ImageBindAudioParams audio;
  g_autofree void *grey = NULL;
  guint width, height, bits;
  float *out = NULL;
  gboolean ok = FALSE;

  imagebind_model_input_geometry (model, &geometry);
  switch (modality) {
    case IMAGEBIND_MODALITY_VISION:
      out = vision_to_tensor (g, path, shape, n_dims, error);
      ok = out != NULL;
      break;
    case IMAGEBIND_MODALITY_DEPTH:
    case IMAGEBIND_MODALITY_THERMAL:
      out = g_new (float, set_shape (shape, n_dims, 4, (gint64) 1, (gint64) 1,
              (gint64) g->image_size, (gint64) g->image_size));
      ok = gst_image_bind_media_decode_gray (path, &grey, &bits, &width, &height, error) &&
          (modality == IMAGEBIND_MODALITY_DEPTH ?
          imagebind_depth_to_tensor (g->image_size,
              bits == 8 ? IMAGEBIND_DEPTH_DISPARITY : options->depth_format, grey, bits, width,
              height, (gsize) width * bits / 8, out, error) :
          imagebind_thermal_to_tensor (g->image_size, grey, bits, width, height,
              (gsize) width * bits / 8, out, error));
      break;
    case IMAGEBIND_MODALITY_AUDIO:
      audio = imagebind_audio_params_from_model (model);
      out = g_new (float, set_shape (shape, n_dims, 5, (gint64) 1, (gint64) audio.clips,
              (gint64) 1, (gint64) audio.num_mel_bins, (gint64) audio.target_len));
      ok = audio_to_tensor (&audio, path, out, error);
      break;
    case IMAGEBIND_MODALITY_IMU:
      out = g_new (float, set_shape (shape, n_dims, 3, (gint64) 1, (gint64) 6,
              (gint64) g->imu_num_samples));
      ok = imu_to_tensor (g, path, out, error);
      break;
    default:
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
          "%s: text is not read from media files (use --text or --text-file)", path);
      return NULL;
  }
  if (!ok) {
    g_clear_pointer (&out, g_free);
    if (error && *error && !g_str_has_prefix ((*error)->message, path))
      g_prefix_error (error, "%s: ", path);
  }
  return out;
}

gboolean
gst_image_bind_media_embed (ImageBindContext *ctx, const ImageBindModel *model,
    ImageBindModality modality, const GstImageBindMediaOptions *options, const char *path,
    float *out, GError **error)
{
  gint64 shape[8];
  guint n_dims;
  g_autofree float *tensor = NULL;

  tensor = gst_image_bind_media_load_tensor (model, modality, options, path, shape, &n_dims, error);
  return tensor && imagebind_embed (ctx, modality, tensor, shape, n_dims, out, error);
}
