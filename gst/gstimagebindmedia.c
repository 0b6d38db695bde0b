/* filesrc ! decodebin ! {videoconvert|audioconvert} ! appsink, one pipeline per file. The
 * converter picks the output format from the appsink's caps, so any decodable input works. */
#include "gstimagebindmedia.h"

#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/video/video.h>
#include <gst/audio/audio.h>
#include <glib/gstdio.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define MEDIA_ERROR (g_quark_from_static_string ("gst-image-bind-media-error"))
/* Audio longer than this is refused rather than decoded into memory. */
#define MAX_AUDIO_SECONDS (4 * 3600)

typedef struct {
  GstElement *pipeline;
  GstElement *convert;
  GstElement *sink;
  gboolean linked;   /* decodebin found a stream of the wanted kind */
  gint no_more_pads; /* decodebin has exposed all its streams (atomic) */
  GstMessage *error; /* the first ERROR message, once seen */
} Decoder;

static void
on_pad_added (GstElement *decodebin, GstPad *pad, gpointer user_data)
{
  Decoder *dec = user_data;
  GstPad *sinkpad = gst_element_get_static_pad (dec->convert, "sink");
  GstCaps *caps = gst_pad_get_current_caps (pad);
  const char *want = strstr (GST_OBJECT_NAME (dec->convert), "video") ? "video/" : "audio/";

  if (caps && g_str_has_prefix (gst_structure_get_name (gst_caps_get_structure (caps, 0)), want)
      && !gst_pad_is_linked (sinkpad))
    dec->linked = gst_pad_link (pad, sinkpad) == GST_PAD_LINK_OK;
  if (caps)
    gst_caps_unref (caps);
  gst_object_unref (sinkpad);
}

static void
on_no_more_pads (GstElement *decodebin, gpointer user_data)
{
  Decoder *dec = user_data;
  g_atomic_int_set (&dec->no_more_pads, 1);
}

/* TRUE once it is certain that the file has no stream of the wanted kind. Checked directly,
 * rather than waited for as an error: how soon an unlinked stream errors out depends on the
 * demuxer and on the machine's load. */
static gboolean
decoder_has_no_stream (Decoder *dec)
{
  return g_atomic_int_get (&dec->no_more_pads) && !dec->linked;
}

/* Whether @path is a file that can be decoded; otherwise @error says what it is instead (a
 * directory or a FIFO would otherwise read as "no such file", or block). */
static gboolean
check_regular_file (const char *path, GError **error)
{
  GStatBuf st;

  if (g_stat (path, &st) != 0) {
    int saved = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "%s: %s", path,
        saved == ENOENT ? "no such file" : g_strerror (saved));
    return FALSE;
  }
  if (S_ISDIR (st.st_mode)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_ISDIR,
        "%s: is a directory, not a media file: name a file inside it", path);
    return FALSE;
  }
  if (!S_ISREG (st.st_mode)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
        "%s: is a %s, not a regular media file: reference media are read whole, from files",
        path, S_ISFIFO (st.st_mode) ? "FIFO (named pipe)" : S_ISSOCK (st.st_mode) ? "socket" :
        "device or special file");
    return FALSE;
  }
  return TRUE;
}

static gboolean
decoder_start (Decoder *dec, const char *path, gboolean video, const char *caps_str, GError **error)
{
  GstElement *src, *decodebin;
  GstCaps *caps;

  if (!gst_init_check (NULL, NULL, error))
    return FALSE;
  if (!check_regular_file (path, error))
    return FALSE;
  dec->pipeline = gst_pipeline_new (NULL);
  src = gst_element_factory_make ("filesrc", NULL);
  decodebin = gst_element_factory_make ("decodebin", NULL);
  dec->convert = gst_element_factory_make (video ? "videoconvert" : "audioconvert",
      video ? "videoconvert" : "audioconvert");
  dec->sink = gst_element_factory_make ("appsink", NULL);
  if (!src || !decodebin || !dec->convert || !dec->sink) {
    g_set_error (error, MEDIA_ERROR, 0, "GStreamer elements missing (filesrc, decodebin, %s, "
        "appsink): install gstreamer1.0-plugins-base", video ? "videoconvert" : "audioconvert");
    gst_clear_object (&dec->pipeline);
    return FALSE;
  }
  g_object_set (src, "location", path, NULL);
  caps = gst_caps_from_string (caps_str);
  g_object_set (dec->sink, "caps", caps, "sync", FALSE, NULL);
  gst_caps_unref (caps);
  gst_bin_add_many (GST_BIN (dec->pipeline), src, decodebin, dec->convert, dec->sink, NULL);
  gst_element_link (src, decodebin);
  gst_element_link (dec->convert, dec->sink);
  g_signal_connect (decodebin, "pad-added", G_CALLBACK (on_pad_added), dec);
  g_signal_connect (decodebin, "no-more-pads", G_CALLBACK (on_no_more_pads), dec);
  if (gst_element_set_state (dec->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    /* the error message on the bus says why; read it below */
  }
  return TRUE;
}

/* Turns the reason decoding stopped (an ERROR on the bus, or no stream of the wanted kind) into
 * @error; returns TRUE if there was one. */
static gboolean
decoder_bus_error (Decoder *dec, const char *path, GError **error)
{
  GstBus *bus = gst_element_get_bus (dec->pipeline);
  GstMessage *msg = dec->error ? dec->error : gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  gboolean had = msg != NULL || decoder_has_no_stream (dec);

  dec->error = NULL;
  if (had && !dec->linked) {
    g_set_error (error, MEDIA_ERROR, 2, "%s: no %s stream in this file", path,
        strstr (GST_OBJECT_NAME (dec->convert), "video") ? "video or image" : "audio");
  } else if (msg) {
    GError *err = NULL;
    gst_message_parse_error (msg, &err, NULL);
    g_set_error (error, MEDIA_ERROR, 1, "%s: cannot decode: %s", path, err->message);
    g_error_free (err);
  }
  if (msg)
    gst_message_unref (msg);
  gst_object_unref (bus);
  return had;
}

/* The next decoded sample; NULL at EOS, on an error (kept in dec->error) or after a minute
 * without progress. Polls so that an error that stops the stream without EOS cannot hang us. */
static GstSample *
decoder_pull (Decoder *dec)
{
  GstBus *bus = gst_element_get_bus (dec->pipeline);
  GstSample *sample = NULL;

  for (int waited = 0; waited < 600 && !sample && !dec->error && !decoder_has_no_stream (dec);
      waited++) {
    sample = gst_app_sink_try_pull_sample (GST_APP_SINK (dec->sink), GST_SECOND / 10);
    if (sample || gst_app_sink_is_eos (GST_APP_SINK (dec->sink)))
      break;
    /* other messages are dropped: nobody else reads this bus */
    dec->error = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  }
  gst_object_unref (bus);
  return sample;
}

static void
decoder_stop (Decoder *dec)
{
  if (dec->error)
    gst_clear_message (&dec->error);
  if (dec->pipeline) {
    gst_element_set_state (dec->pipeline, GST_STATE_NULL);
    gst_clear_object (&dec->pipeline);
  }
}

static GstSample *
decoder_first_frame (Decoder *dec, const char *path, const char *caps_str, GError **error)
{
  GstSample *sample;

  if (!decoder_start (dec, path, TRUE, caps_str, error))
    return NULL;
  sample = decoder_pull (dec);
  if (!sample && !decoder_bus_error (dec, path, error))
    g_set_error (error, MEDIA_ERROR, 2, "%s: no video frame or image in this file", path);
  return sample;
}

/* Packed copy (rows without padding) of plane 0 of a decoded frame; @bytes_per_pixel receives
 * its pixel size. NULL if it cannot be mapped, or if *width is set and the frame has another
 * size (videos must not change size between the frames kept). */
static guint8 *
copy_plane (GstSample *sample, guint *width, guint *height, guint *bytes_per_pixel)
{
  GstVideoInfo info;
  GstVideoFrame frame;
  guint8 *out;
  gsize row;

  if (!gst_video_info_from_caps (&info, gst_sample_get_caps (sample)) ||
      (*width && ((guint) GST_VIDEO_INFO_WIDTH (&info) != *width ||
          (guint) GST_VIDEO_INFO_HEIGHT (&info) != *height)) ||
      !gst_video_frame_map (&frame, &info, gst_sample_get_buffer (sample), GST_MAP_READ))
    return NULL;
  *width = GST_VIDEO_INFO_WIDTH (&info);
  *height = GST_VIDEO_INFO_HEIGHT (&info);
  *bytes_per_pixel = GST_VIDEO_FORMAT_INFO_PSTRIDE (info.finfo, 0);
  row = (gsize) *width * *bytes_per_pixel;
  out = g_malloc (row * *height);
  for (guint y = 0; y < *height; y++)
    memcpy (out + y * row, (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&frame, 0) +
        y * GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0), row);
  gst_video_frame_unmap (&frame);
  return out;
}

static guint8 *
copy_rgb (GstSample *sample, guint *width, guint *height)
{
  guint bpp;
  return copy_plane (sample, width, height, &bpp);
}

gboolean
gst_image_bind_media_decode_rgb (const char *path, guint8 **rgb, guint *width, guint *height,
    GError **error)
{
  Decoder dec = { 0 };
  GstSample *sample = decoder_first_frame (&dec, path, "video/x-raw,format=RGB", error);

  *width = *height = 0;
  *rgb = sample ? copy_rgb (sample, width, height) : NULL;
  if (sample && !*rgb)
    g_set_error (error, MEDIA_ERROR, 3, "%s: cannot map the decoded frame", path);
  if (sample)
    gst_sample_unref (sample);
  decoder_stop (&dec);
  return *rgb != NULL;
}

/* Keeps @sample as the first (if none yet) and the last frame of every clip whose time span
 * [start, start + clip) holds its timestamp. */
static void
assign_to_clips (GstSample *sample, double clip, double latest, guint n_clips,
    GstSample **clip_first, GstSample **clip_last)
{
  GstBuffer *buf = gst_sample_get_buffer (sample);
  double t;

  if (!GST_BUFFER_PTS_IS_VALID (buf))
    return;
  t = gst_segment_to_stream_time (gst_sample_get_segment (sample), GST_FORMAT_TIME,
      GST_BUFFER_PTS (buf)) / 1e9;
  for (guint k = 0; k < n_clips; k++) {
    double start = n_clips > 1 ? k * latest / (n_clips - 1) : 0.0;
    if (t < start || t >= start + clip)
      continue;
    if (!clip_first[k])
      clip_first[k] = gst_sample_ref (sample);
    if (clip_last[k])
      gst_sample_unref (clip_last[k]);
    clip_last[k] = gst_sample_ref (sample);
  }
}

void
gst_image_bind_media_frames_clear (GstImageBindMediaFrames *frames)
{
  for (guint i = 0; frames->frames && i < frames->n_frames; i++)
    g_free (frames->frames[i]);
  g_clear_pointer (&frames->frames, g_free);
  frames->n_frames = 0;
}

gboolean
gst_image_bind_media_decode_clip_frames (const char *path, double clip_duration, guint n_clips,
    GstImageBindMediaFrames *out, GError **error)
{
  Decoder dec = { 0 };
  GstSample *first = decoder_first_frame (&dec, path, "video/x-raw,format=RGB", error);
  GstSample **clip_first = NULL, **clip_last = NULL;
  GstSample *sample;
  gint64 duration_ns = -1;
  double duration, latest;
  gboolean ok = FALSE;
  guint64 n_decoded = 0;

  memset (out, 0, sizeof (*out));
  if (!first)
    goto done;
  /* after the first frame the pipeline is prerolled: the duration is known if there is one */
  if (!gst_element_query_duration (dec.pipeline, GST_FORMAT_TIME, &duration_ns))
    duration_ns = -1;
  sample = duration_ns > 0 ? decoder_pull (&dec) : NULL;
  if (!sample) {
    /* one frame, or no duration: a still image */
    if (decoder_bus_error (&dec, path, error))
      goto done;
    out->frames = g_new0 (guint8 *, 1);
    out->frames[0] = copy_rgb (first, &out->width, &out->height);
    out->n_frames = 1;
    ok = out->frames[0] != NULL;
    goto done;
  }

  /* the official sampler: clip k starts at k * max(d - clip, 0) / (n_clips - 1) */
  duration = duration_ns / 1e9;
  latest = MAX (duration - clip_duration, 0.0);
  clip_first = g_new0 (GstSample *, n_clips);
  clip_last = g_new0 (GstSample *, n_clips);
  assign_to_clips (first, clip_duration, latest, n_clips, clip_first, clip_last);
  if (first) {
    gst_sample_unref (first);
    first = NULL;
  }
  n_decoded = 1;
  for (; sample; sample = decoder_pull (&dec)) {
    assign_to_clips (sample, clip_duration, latest, n_clips, clip_first, clip_last);
    gst_sample_unref (sample);
    n_decoded++;
  }
  if (decoder_bus_error (&dec, path, error))
    goto done;

  out->is_video = TRUE;
  out->n_frames = 2 * n_clips;
  out->frames = g_new0 (guint8 *, out->n_frames);
  for (guint k = 0; k < n_clips; k++) {
    if (!clip_first[k]) {
      g_set_error (error, MEDIA_ERROR, 5, "%s: no frame between %.3f s and %.3f s (the file "
          "says it lasts %.3f s; %" G_GUINT64_FORMAT " frames decoded)", path,
          n_clips > 1 ? k * latest / (n_clips - 1) : 0.0,
          (n_clips > 1 ? k * latest / (n_clips - 1) : 0.0) + clip_duration, duration, n_decoded);
      goto done;
    }
    out->frames[2 * k] = copy_rgb (clip_first[k], &out->width, &out->height);
    out->frames[2 * k + 1] = copy_rgb (clip_last[k], &out->width, &out->height);
    if (!out->frames[2 * k] || !out->frames[2 * k + 1]) {
      g_set_error (error, MEDIA_ERROR, 3, "%s: frames change size or cannot be mapped", path);
      goto done;
    }
  }
  ok = TRUE;

done:
  for (guint k = 0; clip_first && k < n_clips; k++) {
    if (clip_first[k])
      gst_sample_unref (clip_first[k]);
    if (clip_last[k])
      gst_sample_unref (clip_last[k]);
  }
  g_free (clip_first);
  g_free (clip_last);
  if (first) {
    gst_sample_unref (first);
    first = NULL;
  }
  decoder_stop (&dec);
  if (!ok)
    gst_image_bind_media_frames_clear (out);
  return ok;
}

gboolean
gst_image_bind_media_decode_gray (const char *path, gpointer *pixels, guint *bits, guint *width,
    guint *height, GError **error)
{
  Decoder dec = { 0 };
  GstSample *sample = decoder_first_frame (&dec, path,
      "video/x-raw,format=(string){GRAY16_LE,GRAY8}", error);
  guint bpp = 0;

  *width = *height = 0;
  *pixels = sample ? copy_plane (sample, width, height, &bpp) : NULL;
  *bits = 8 * bpp;
  if (sample && !*pixels)
    g_set_error (error, MEDIA_ERROR, 3, "%s: cannot map the decoded frame", path);
  if (sample)
    gst_sample_unref (sample);
  decoder_stop (&dec);
  return *pixels != NULL;
}

gboolean
gst_image_bind_media_decode_audio (const char *path, float **planar, guint *channels,
    gsize *n_frames, guint *rate, GError **error)
{
  Decoder dec = { 0 };
  GArray *samples = g_array_new (FALSE, FALSE, sizeof (float));
  GstAudioInfo info;
  gboolean have_info = FALSE, ok = FALSE;
  GstSample *sample;

  if (!decoder_start (&dec, path, FALSE, "audio/x-raw,format=F32LE,layout=interleaved", error)) {
    g_array_free (samples, TRUE);
    return FALSE;
  }
  while ((sample = decoder_pull (&dec))) {
    GstBuffer *buf = gst_sample_get_buffer (sample);
    GstMapInfo map;
    if (!have_info)
      have_info = gst_audio_info_from_caps (&info, gst_sample_get_caps (sample));
    if (have_info && gst_buffer_map (buf, &map, GST_MAP_READ)) {
      g_array_append_vals (samples, map.data, map.size / sizeof (float));
      gst_buffer_unmap (buf, &map);
    }
    gst_sample_unref (sample);
    if (have_info && samples->len / MAX (info.channels, 1) > (gsize) MAX_AUDIO_SECONDS * info.rate) {
      g_set_error (error, MEDIA_ERROR, 4, "%s: longer than %d hours; cut it first", path,
          MAX_AUDIO_SECONDS / 3600);
      goto out;
    }
  }
  if (decoder_bus_error (&dec, path, error))
    goto out;
  if (!have_info || samples->len == 0) {
    g_set_error (error, MEDIA_ERROR, 2, "%s: no audio in this file", path);
    goto out;
  }
  {
    guint c = info.channels;
    gsize n = samples->len / c;
    const float *in = (const float *) samples->data;
    float *out = g_new (float, c * n);
    for (gsize i = 0; i < n; i++)
      for (guint ch = 0; ch < c; ch++)
        out[ch * n + i] = in[i * c + ch];
    *planar = out;
    *channels = c;
    *n_frames = n;
    *rate = info.rate;
    ok = TRUE;
  }
out:
  g_array_free (samples, TRUE);
  decoder_stop (&dec);
  return ok;
}
