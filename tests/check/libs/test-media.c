/* gst/gstimagebindmedia.c: which frames of a video the official video loader's clip sampling
 * takes. A 6 s, 10 fps video whose frame i is a flat grey of level 4 i is written with GStreamer
 * (appsrc ! jpegenc ! avimux), then decoded: 5 clips of 2 s over [0, 6 s) start at 0, 1, 2, 3,
 * 4 s, so clip k must give frames 10 k (first) and 10 k + 19 (last). */
#include "gstimagebindmedia.h"

#include <gst/gst.h>
#include <gst/app/gstappsrc.h>
#include <glib/gstdio.h>

#include "common.h"

#define W 64
#define H 48
#define FPS 10
#define N_FRAMES 60

static gboolean have_elements;

static char *
write_video (void)
{
  g_autofree char *dir = g_dir_make_tmp ("ib-media-XXXXXX", NULL);
  char *path = g_build_filename (dir, "grey.avi", NULL);
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch ("appsrc name=src format=time ! videoconvert ! "
      "jpegenc quality=100 ! avimux ! filesink name=sink", &error);
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GstCaps *caps = gst_caps_new_simple ("video/x-raw", "format", G_TYPE_STRING, "GRAY8",
      "width", G_TYPE_INT, W, "height", G_TYPE_INT, H, "framerate", GST_TYPE_FRACTION, FPS, 1,
      NULL);

  g_assert_no_error (error);
  g_object_set (sink, "location", path, NULL);
  gst_app_src_set_caps (GST_APP_SRC (src), caps);
  gst_caps_unref (caps);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  for (guint i = 0; i < N_FRAMES; i++) {
    GstBuffer *buf = gst_buffer_new_allocate (NULL, W * H, NULL);
    gst_buffer_memset (buf, 0, 4 * i, W * H);
    GST_BUFFER_PTS (buf) = gst_util_uint64_scale (i, GST_SECOND, FPS);
    GST_BUFFER_DURATION (buf) = GST_SECOND / FPS;
    g_assert_cmpint (gst_app_src_push_buffer (GST_APP_SRC (src), buf), ==, GST_FLOW_OK);
  }
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  ib_test_run_to_eos (pipeline, NULL, NULL);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  return path;
}

/* The frame index a decoded flat frame shows (level 4 i, JPEG-rounded). */
static guint
frame_index (const guint8 *rgb)
{
  guint sum = 0;
  for (guint p = 0; p < W * H; p++)
    sum += rgb[3 * p + 1];
  return (sum / (W * H) + 2) / 4;
}

static void
test_clip_frames (void)
{
  g_autofree char *path = NULL;
  GstImageBindMediaFrames frames;
  GError *error = NULL;

  if (!have_elements) {
    g_test_skip ("appsrc, videoconvert, jpegenc, avimux or avidemux missing");
    return;
  }
  path = write_video ();
  g_assert_true (gst_image_bind_media_decode_clip_frames (path, 2.0, 5, &frames, &error));
  g_assert_no_error (error);
  g_assert_true (frames.is_video);
  g_assert_cmpuint (frames.width, ==, W);
  g_assert_cmpuint (frames.height, ==, H);
  g_assert_cmpuint (frames.n_frames, ==, 10);
  for (guint k = 0; k < 5; k++) {
    g_assert_cmpuint (frame_index (frames.frames[2 * k]), ==, 10 * k);
    g_assert_cmpuint (frame_index (frames.frames[2 * k + 1]), ==, 10 * k + 19);
  }
  gst_image_bind_media_frames_clear (&frames);

  /* one clip as long as the video: first and last frame */
  g_assert_true (gst_image_bind_media_decode_clip_frames (path, 6.0, 1, &frames, &error));
  g_assert_cmpuint (frame_index (frames.frames[0]), ==, 0);
  g_assert_cmpuint (frame_index (frames.frames[1]), ==, N_FRAMES - 1);
  gst_image_bind_media_frames_clear (&frames);
  g_unlink (path);
}

/* A still image is not a video: one frame, is_video FALSE. */
static void
test_still_image (void)
{
  const char *dir = g_getenv ("IMAGEBIND_CONFORMANCE_DIR");
  g_autofree char *png = NULL;
  GstImageBindMediaFrames frames;
  GError *error = NULL;

  if (!dir || !*dir)
    dir = g_getenv ("IMAGEBIND_CONFORMANCE_DIR_DEFAULT");
  png = g_build_filename (dir ? dir : ".", "preprocess", "image_small_100x80.png", NULL);
  if (!g_file_test (png, G_FILE_TEST_EXISTS)) {
    g_test_skip ("conformance fixtures not found");
    return;
  }
  g_assert_true (gst_image_bind_media_decode_clip_frames (png, 2.0, 5, &frames, &error));
  g_assert_no_error (error);
  g_assert_false (frames.is_video);
  g_assert_cmpuint (frames.n_frames, ==, 1);
  g_assert_cmpuint (frames.width, ==, 100);
  g_assert_cmpuint (frames.height, ==, 80);
  gst_image_bind_media_frames_clear (&frames);
}

int
main (int argc, char **argv)
{
  const char *needed[] = { "appsrc", "videoconvert", "jpegenc", "avimux", "avidemux", "jpegdec" };

  /* decoding uses the system's plugins, which the test environment hides from plugin tests */
  g_unsetenv ("GST_PLUGIN_SYSTEM_PATH_1_0");
  {
    g_autofree char *registry = g_build_filename (g_get_tmp_dir (), "ib-test-media-registry.bin", NULL);
    g_setenv ("GST_REGISTRY_1_0", registry, TRUE);
  }
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  have_elements = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (needed); i++) {
    GstElementFactory *f = gst_element_factory_find (needed[i]);
    have_elements &= f != NULL;
    if (f)
      gst_object_unref (f);
  }
  g_test_add_func ("/media/video-clip-frames", test_clip_frames);
  g_test_add_func ("/media/still-image", test_still_image);
  return g_test_run ();
}
