/* imagebind-embed on raw media (issue "native preprocessing", item 5): the fixture images,
 * WAV files and strings go through the tool (GStreamer decoding, the runtime's front ends, the
 * converted tiny model) and must reproduce the official end-to-end embeddings
 * (tiny/outputs/e2e.*.npy). Also the JSON output and the tool's errors.
 * argv[1]: the tiny model (F32), argv[2]: the imagebind-embed executable. */
#include "common.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

static const char *model_path, *embed_tool;

static int
run_tool (const char *const *args, char **err_out)
{
  return ib_test_run_embed_tool (embed_tool, model_path, args, err_out);
}

static double
cosine (const float *a, const float *b, gsize n)
{
  double ab = 0, aa = 0, bb = 0;
  for (gsize i = 0; i < n; i++) {
    ab += (double) a[i] * b[i];
    aa += (double) a[i] * a[i];
    bb += (double) b[i] * b[i];
  }
  return ab / sqrt (aa * bb);
}

/* Every row of @got against the golden rows, by cosine (the end-to-end criterion). */
static void
assert_rows (const char *what, const char *got_path, const char *golden, double min_cos)
{
  g_autoptr (IbNpy) ref = ib_test_load_npy (golden);
  g_autoptr (GError) error = NULL;
  g_autoptr (IbNpy) got = ib_npy_load (got_path, &error);
  gsize dim = ref->shape[1];

  g_assert_no_error (error);
  g_assert_cmpint (got->shape[0], ==, ref->shape[0]);
  g_assert_cmpint (got->shape[1], ==, ref->shape[1]);
  for (gint64 r = 0; r < ref->shape[0]; r++) {
    double c = cosine ((const float *) got->data + r * dim, (const float *) ref->data + r * dim, dim);
    g_test_message ("%s row %" G_GINT64_FORMAT ": cosine %.9f", what, r, c);
    g_assert_cmpfloat (c, >=, min_cos);
  }
}

/* The tiny model is converted from the fixtures: without them the meson file passes no paths. */
static gboolean
need_tiny_model (void)
{
  if (!ib_test_need_conformance ())
    return FALSE;
  if (!model_path) {
    g_test_skip ("the tiny model was not built (conformance fixtures absent at configure time)");
    return FALSE;
  }
  return TRUE;
}

static void
test_vision (void)
{
  if (!need_tiny_model ())
    return;
  g_autofree char *a = ib_test_fixture ("preprocess/image_landscape_320x241.png");
  g_autofree char *b = ib_test_fixture ("preprocess/image_portrait_181x292.png");
  g_autofree char *c = ib_test_fixture ("preprocess/image_small_100x80.png");
  g_autofree char *dir = g_dir_make_tmp ("ib-embed-XXXXXX", NULL);
  g_autofree char *out = g_build_filename (dir, "vision.npy", NULL);
  const char *args[] = { "--modality", "vision", "--output", out, a, b, c, NULL };

  g_assert_cmpint (run_tool (args, NULL), ==, 0);
  assert_rows ("vision", out, "tiny/outputs/e2e.vision.npy", 0.99999);
  g_unlink (out);
  g_rmdir (dir);
}

static void
test_audio (void)
{
  if (!need_tiny_model ())
    return;
  /* manifest order */
  const char *names[] = { "audio_16k_mono_5s", "audio_16k_mono_3s", "audio_16k_mono_4p3s",
    "audio_16k_mono_1p2s", "audio_44k1_stereo_3p7s" };
  g_autofree char *dir = g_dir_make_tmp ("ib-embed-XXXXXX", NULL);
  g_autofree char *out = g_build_filename (dir, "audio.npy", NULL);
  g_autoptr (GPtrArray) args = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (args, g_strdup ("--modality"));
  g_ptr_array_add (args, g_strdup ("audio"));
  g_ptr_array_add (args, g_strdup ("--output"));
  g_ptr_array_add (args, g_strdup (out));
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    g_autofree char *rel = g_strdup_printf ("preprocess/%s.wav", names[i]);
    g_ptr_array_add (args, ib_test_fixture (rel));
  }
  g_ptr_array_add (args, NULL);
  g_assert_cmpint (run_tool ((const char *const *) args->pdata, NULL), ==, 0);
  /* 0.999: the 44.1 kHz file is resampled by GStreamer, not torchaudio (models/AUDIO.md) */
  assert_rows ("audio", out, "tiny/outputs/e2e.audio.npy", 0.999);
  g_unlink (out);
  g_rmdir (dir);
}

static void
test_text (void)
{
  if (!need_tiny_model ())
    return;
  g_autofree char *strings_path = ib_test_fixture ("preprocess/text_strings.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) args = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *dir = g_dir_make_tmp ("ib-embed-XXXXXX", NULL);
  g_autofree char *out = g_build_filename (dir, "text.npy", NULL);
  JsonArray *strings;

  json_parser_load_from_file (parser, strings_path, &error);
  g_assert_no_error (error);
  strings = json_node_get_array (json_parser_get_root (parser));
  g_ptr_array_add (args, g_strdup ("--modality"));
  g_ptr_array_add (args, g_strdup ("text"));
  g_ptr_array_add (args, g_strdup ("--output"));
  g_ptr_array_add (args, g_strdup (out));
  for (guint i = 0; i < json_array_get_length (strings); i++) {
    JsonObject *o = json_array_get_object_element (strings, i);
    g_assert_cmpint (json_object_get_int_member (o, "id"), ==, i);
    g_ptr_array_add (args, g_strdup_printf ("--text=%s", json_object_get_string_member (o, "text")));
  }
  g_ptr_array_add (args, NULL);
  g_assert_cmpint (run_tool ((const char *const *) args->pdata, NULL), ==, 0);
  assert_rows ("text", out, "tiny/outputs/e2e.text.npy", 0.99999);
  g_unlink (out);
  g_rmdir (dir);
}

/* --format json: one record per input with its name and the same vector as the .npy. */
static void
test_json (void)
{
  if (!need_tiny_model ())
    return;
  g_autofree char *img = ib_test_fixture ("preprocess/image_small_100x80.png");
  g_autofree char *dir = g_dir_make_tmp ("ib-embed-XXXXXX", NULL);
  g_autofree char *out = g_build_filename (dir, "v.json", NULL);
  const char *args[] = { "--modality", "vision", "--format", "json", "--output", out, img, NULL };
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (IbNpy) ref = ib_test_load_npy ("tiny/outputs/e2e.vision.npy");
  JsonArray *records, *vector;
  JsonObject *rec;
  g_autofree float *v = NULL;

  g_assert_cmpint (run_tool (args, NULL), ==, 0);
  json_parser_load_from_file (parser, out, &error);
  g_assert_no_error (error);
  records = json_node_get_array (json_parser_get_root (parser));
  g_assert_cmpuint (json_array_get_length (records), ==, 1);
  rec = json_array_get_object_element (records, 0);
  g_assert_cmpstr (json_object_get_string_member (rec, "input"), ==, img);
  g_assert_cmpstr (json_object_get_string_member (rec, "modality"), ==, "vision");
  vector = json_object_get_array_member (rec, "vector");
  g_assert_cmpuint (json_array_get_length (vector), ==, ref->shape[1]);
  v = g_new (float, ref->shape[1]);
  for (guint i = 0; i < ref->shape[1]; i++)
    v[i] = json_array_get_double_element (vector, i);
  /* row 2 of the golden is image_small_100x80 */
  g_assert_cmpfloat (cosine (v, (const float *) ref->data + 2 * ref->shape[1], ref->shape[1]), >=, 0.99999);
  g_unlink (out);
  g_rmdir (dir);
}

/* Unreadable, undecodable and wrong-kind inputs: exit status 1 and a message naming the file. */
static void
test_errors (void)
{
  if (!need_tiny_model ())
    return;
  g_autofree char *wav = ib_test_fixture ("preprocess/audio_16k_mono_5s.wav");
  g_autofree char *json = ib_test_fixture ("preprocess/text_strings.json");
  g_autofree char *dir = g_dir_make_tmp ("ib-embed-XXXXXX", NULL);
  g_autofree char *out = g_build_filename (dir, "x.npy", NULL);
  g_autofree char *empty = g_build_filename (dir, "empty.png", NULL);
  g_autofree char *short_wav = g_build_filename (dir, "short.csv", NULL);
  struct { const char *modality; const char *input; const char *expect; } cases[] = {
    { "vision", "/nonexistent/photo.png", "no such file" },
    { "vision", wav, "no video or image stream" },
    { "audio", json, "no audio stream" },
    { "vision", empty, "empty.png" },
    { "imu", short_wav, "short.csv" },
  };

  g_assert_true (g_file_set_contents (empty, "", 0, NULL));
  g_assert_true (g_file_set_contents (short_wav, "ax,ay,az,gx,gy,gz\n1,2,3,4,5,6\n", -1, NULL));
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    const char *args[] = { "--modality", cases[i].modality, "--output", out, cases[i].input, NULL };
    g_autofree char *err = NULL;
    g_assert_cmpint (run_tool (args, &err), ==, 1);
    g_test_message ("%s", err);
    g_assert_nonnull (strstr (err, cases[i].expect));
    g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
  }
  g_unlink (empty);
  g_unlink (short_wav);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc == 3) {
    model_path = argv[1];
    embed_tool = argv[2];
  }
  g_test_add_func ("/embed-media/vision", test_vision);
  g_test_add_func ("/embed-media/audio", test_audio);
  g_test_add_func ("/embed-media/text", test_text);
  g_test_add_func ("/embed-media/json", test_json);
  g_test_add_func ("/embed-media/errors", test_errors);
  return g_test_run ();
}
