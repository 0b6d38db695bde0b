/* GstImageBindEmbeddingMeta: accessors, copies, the structure / custom-meta mirror, and
 * survival through pass-through and converting elements (which drop metas with tags). */
#include <gst/gst.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <string.h>

#include "gstimagebindmeta.h"

static const gfloat vec_a[4] = { 0.5f, -0.25f, 1.0f, 2.0f };
static const gfloat vec_b[4] = { -1.0f, 0.0f, 3.5f, 0.125f };

static GstImageBindEmbeddingMeta *
add_meta (GstBuffer * buf, GstImageBindModality modality, const gfloat * v)
{
  GstImageBindEmbeddingMeta *meta;

  meta = gst_buffer_add_imagebind_embedding_meta (buf, modality, v, 4, 14.5f, "tiny:t.gguf");
  g_assert_nonnull (meta);
  meta->pts = 2 * GST_SECOND;
  meta->duration = GST_SECOND / 2;
  meta->stream_time = 3 * GST_SECOND;
  meta->running_time = 4 * GST_SECOND;
  return meta;
}

static void
assert_meta (GstImageBindEmbeddingMeta * meta, GstImageBindModality modality, const gfloat * v)
{
  guint dim = 0;
  const gfloat *got;

  g_assert_nonnull (meta);
  got = gst_image_bind_embedding_meta_get_vector (meta, &dim);
  g_assert_cmpint (meta->modality, ==, modality);
  g_assert_cmpuint (dim, ==, 4);
  g_assert_cmpmem (got, 4 * sizeof (gfloat), v, 4 * sizeof (gfloat));
  g_assert_cmpfloat (meta->logit_scale, ==, 14.5f);
  g_assert_cmpuint (meta->pts, ==, 2 * GST_SECOND);
  g_assert_cmpuint (meta->duration, ==, GST_SECOND / 2);
  g_assert_cmpuint (meta->stream_time, ==, 3 * GST_SECOND);
  g_assert_cmpuint (meta->running_time, ==, 4 * GST_SECOND);
  g_assert_cmpstr (meta->model_id, ==, "tiny:t.gguf");
}

static void
test_modality_enum (void)
{
  GEnumClass *klass = g_type_class_ref (GST_TYPE_IMAGE_BIND_MODALITY);
  GstImageBindModality m;

  g_assert_cmpuint (klass->n_values, ==, 6);
  g_assert_cmpstr (g_enum_get_value (klass, GST_IMAGE_BIND_MODALITY_IMU)->value_nick, ==, "imu");
  g_assert_cmpstr (gst_image_bind_modality_to_string (GST_IMAGE_BIND_MODALITY_AUDIO), ==, "audio");
  g_assert_null (gst_image_bind_modality_to_string (6));
  g_assert_true (gst_image_bind_modality_from_string ("thermal", &m));
  g_assert_cmpint (m, ==, GST_IMAGE_BIND_MODALITY_THERMAL);
  g_assert_false (gst_image_bind_modality_from_string ("smell", &m));
  g_type_class_unref (klass);
}

static void
test_add_get (void)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, 16, NULL);
  gfloat v[4];
  gpointer state = NULL;
  guint n = 0;
  GstImageBindEmbeddingMeta *meta;

  g_assert_null (gst_buffer_get_imagebind_embedding_meta (buf));
  memcpy (v, vec_a, sizeof (v));
  add_meta (buf, GST_IMAGE_BIND_MODALITY_VISION, v);
  v[0] = 99.0f;                 /* the meta holds its own copy */
  add_meta (buf, GST_IMAGE_BIND_MODALITY_AUDIO, vec_b);

  assert_meta (gst_buffer_get_imagebind_embedding_meta (buf), GST_IMAGE_BIND_MODALITY_VISION,
      vec_a);
  assert_meta (gst_buffer_get_imagebind_embedding_meta_by_modality (buf,
          GST_IMAGE_BIND_MODALITY_AUDIO), GST_IMAGE_BIND_MODALITY_AUDIO, vec_b);
  g_assert_null (gst_buffer_get_imagebind_embedding_meta_by_modality (buf,
          GST_IMAGE_BIND_MODALITY_DEPTH));
  g_assert_cmpuint (gst_buffer_get_n_imagebind_embedding_metas (buf), ==, 2);
  while ((meta = gst_buffer_iterate_imagebind_embedding_meta (buf, &state)))
    n++;
  g_assert_cmpuint (n, ==, 2);

  /* No tags: nothing that filters metas by tag may drop it. */
  {
    const gchar *const *tags = gst_meta_api_type_get_tags (GST_IMAGE_BIND_EMBEDDING_META_API_TYPE);
    g_assert_true (tags == NULL || tags[0] == NULL);
  }
  gst_buffer_unref (buf);
}

static void
test_copies (void)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, 16, NULL);
  GstBuffer *copy, *deep, *region;

  add_meta (buf, GST_IMAGE_BIND_MODALITY_VISION, vec_a);
  add_meta (buf, GST_IMAGE_BIND_MODALITY_AUDIO, vec_b);
  copy = gst_buffer_copy (buf);
  deep = gst_buffer_copy_deep (buf);
  region = gst_buffer_copy_region (buf, GST_BUFFER_COPY_ALL, 4, 8);
  gst_buffer_unref (buf);       /* the copies own their vectors */

  assert_meta (gst_buffer_get_imagebind_embedding_meta (copy), GST_IMAGE_BIND_MODALITY_VISION,
      vec_a);
  assert_meta (gst_buffer_get_imagebind_embedding_meta_by_modality (deep,
          GST_IMAGE_BIND_MODALITY_AUDIO), GST_IMAGE_BIND_MODALITY_AUDIO, vec_b);
  g_assert_cmpuint (gst_buffer_get_n_imagebind_embedding_metas (region), ==, 2);
  gst_buffer_unref (copy);
  gst_buffer_unref (deep);
  gst_buffer_unref (region);
}

static void
test_structure (void)
{
  GstBuffer *buf = gst_buffer_new ();
  GstImageBindEmbeddingMeta *meta = add_meta (buf, GST_IMAGE_BIND_MODALITY_DEPTH, vec_b);
  GstStructure *s = gst_image_bind_embedding_meta_to_structure (meta);
  const GValue *vector;
  guint dim, i;
  gfloat scale;
  guint64 t;

  g_assert_cmpstr (gst_structure_get_name (s), ==, GST_IMAGE_BIND_EMBEDDING_CUSTOM_META_NAME);
  g_assert_cmpstr (gst_structure_get_string (s, "modality"), ==, "depth");
  g_assert_true (gst_structure_get_uint (s, "dim", &dim));
  g_assert_cmpuint (dim, ==, 4);
  g_assert_true (gst_structure_get (s, "logit-scale", G_TYPE_FLOAT, &scale, NULL));
  g_assert_cmpfloat (scale, ==, 14.5f);
  g_assert_true (gst_structure_get_uint64 (s, "pts", &t));
  g_assert_cmpuint (t, ==, 2 * GST_SECOND);
  g_assert_true (gst_structure_get_uint64 (s, "running-time", &t));
  g_assert_cmpuint (t, ==, 4 * GST_SECOND);
  g_assert_cmpstr (gst_structure_get_string (s, "model-id"), ==, "tiny:t.gguf");
  vector = gst_structure_get_value (s, "vector");
  g_assert_true (GST_VALUE_HOLDS_ARRAY (vector));
  g_assert_cmpuint (gst_value_array_get_size (vector), ==, 4);
  for (i = 0; i < 4; i++)
    g_assert_cmpfloat (g_value_get_float (gst_value_array_get_value (vector, i)), ==, vec_b[i]);
  {
    GBytes *bytes = NULL;
    g_assert_true (gst_structure_get (s, "vector-f32", G_TYPE_BYTES, &bytes, NULL));
    g_assert_cmpmem (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), vec_b,
        sizeof (vec_b));
    g_bytes_unref (bytes);
  }
  gst_structure_free (s);

  /* The custom-meta mirror carries the same structure and survives copies. */
  {
    GstCustomMeta *cmeta = gst_buffer_add_imagebind_embedding_custom_meta (buf, meta);
    GstBuffer *copy;
    GstStructure *cs;

    g_assert_nonnull (cmeta);
    copy = gst_buffer_copy (buf);
    cmeta = gst_buffer_get_custom_meta (copy, GST_IMAGE_BIND_EMBEDDING_CUSTOM_META_NAME);
    g_assert_nonnull (cmeta);
    cs = gst_custom_meta_get_structure (cmeta);
    g_assert_cmpstr (gst_structure_get_string (cs, "modality"), ==, "depth");
    g_assert_cmpuint (gst_value_array_get_size (gst_structure_get_value (cs, "vector")), ==, 4);
    gst_buffer_unref (copy);
  }
  gst_buffer_unref (buf);
}

/* Pushes a buffer carrying the meta through @launch and checks it comes out. */
static void
check_survives (const gchar * launch, const gchar * in_caps, const gchar * out_caps, gsize size)
{
  GstHarness *h;
  GstBuffer *buf, *out;

  if (!gst_registry_check_feature_version (gst_registry_get (), "videoconvert", 1, 0, 0)) {
    g_test_skip ("gst-plugins-base elements (videoconvert, audioconvert) not installed");
    return;
  }
  h = gst_harness_new_parse (launch);
  gst_harness_set_src_caps_str (h, in_caps);
  if (out_caps)
    gst_harness_set_sink_caps_str (h, out_caps);
  buf = gst_buffer_new_allocate (NULL, size, NULL);
  gst_buffer_memset (buf, 0, 0x40, size);
  GST_BUFFER_PTS (buf) = 0;
  add_meta (buf, GST_IMAGE_BIND_MODALITY_VISION, vec_a);
  g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  assert_meta (gst_buffer_get_imagebind_embedding_meta (out), GST_IMAGE_BIND_MODALITY_VISION,
      vec_a);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

static void
test_passthrough_elements (void)
{
  check_survives ("identity", "video/x-raw,format=RGB,width=4,height=4,framerate=1/1", NULL,
      4 * 12);
  check_survives ("queue", "video/x-raw,format=RGB,width=4,height=4,framerate=1/1", NULL,
      4 * 12);
  /* Real conversions: a new output buffer, metas copied by transform_meta. */
  check_survives ("videoconvert", "video/x-raw,format=RGB,width=4,height=4,framerate=1/1",
      "video/x-raw,format=I420,width=4,height=4,framerate=1/1", 4 * 12);
  check_survives ("videoscale", "video/x-raw,format=RGB,width=4,height=4,framerate=1/1",
      "video/x-raw,format=RGB,width=8,height=8,framerate=1/1", 4 * 12);
  check_survives ("audioconvert",
      "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved",
      "audio/x-raw,format=S16LE,rate=16000,channels=1,layout=interleaved", 64 * 4);
}

int
main (int argc, char **argv)
{
  /* The meson environment isolates the project's plugin; this test wants the system's
   * elements too, in a registry of its own. */
  const gchar *registry = g_getenv ("GST_REGISTRY_1_0");
  gchar *own = g_strdup_printf ("%s-meta", registry ? registry : "registry");

  g_setenv ("GST_REGISTRY_1_0", own, TRUE);
  g_unsetenv ("GST_PLUGIN_SYSTEM_PATH_1_0");
  g_free (own);

  g_test_init (&argc, &argv, NULL);
  gst_init (&argc, &argv);

  g_test_add_func ("/meta/modality-enum", test_modality_enum);
  g_test_add_func ("/meta/add-get", test_add_get);
  g_test_add_func ("/meta/copies", test_copies);
  g_test_add_func ("/meta/structure", test_structure);
  g_test_add_func ("/meta/through-elements", test_passthrough_elements);
  return g_test_run ();
}
