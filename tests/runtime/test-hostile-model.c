/* Hostile model files built from the tiny conformance model (tests/model-edit.c): keys that no
 * front end can handle are refused when the file is loaded, naming the key, before anything
 * is allocated from them (otherwise clips_per_video = 4e9 aborts the audio element with a
 * 417 TB allocation, image_size = 30000 without vision makes 3.6 GB depth tensors,
 * clip_duration = 1e6 makes the audio element buffer forever).
 *
 * Usage: test-hostile-model <tiny model .gguf> [imagebind-embed]  (skips without the model) */
#include "imagebind.h"
#include "imagebind-frontend.h"
#include "model-edit.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static const char *tiny_path, *embed_tool_path;

static gboolean
have_tiny (void)
{
  if (tiny_path && g_file_test (tiny_path, G_FILE_TEST_EXISTS))
    return TRUE;
  g_test_skip ("tiny GGUF not built (needs the conformance fixtures and models/convert.py)");
  return FALSE;
}

/* Loads the edited copy; NULL and the error when refused. */
static ImageBindModel *
load_edited (const char *const *modalities, const IbTestKeyEdit *key, GError **error)
{
  IbTestModelEdit edit = { .modalities = modalities, .keys = key, .n_keys = key ? 1 : 0 };
  g_autofree char *path = ib_test_model_edit (tiny_path, &edit);
  ImageBindModel *model = imagebind_model_load (path, error);

  g_unlink (path);
  return model;
}

typedef struct {
  IbTestKeyEdit key;
  const char *const *modalities;     /* NULL: all */
  const char *message;               /* what the error must say */
} Refusal;

static const char *const depth_only[] = { "depth", NULL };
static const char *const audio_only[] = { "audio", NULL };

static const Refusal refusals[] = {
  /* the three */
  { IB_TEST_U32 ("imagebind.audio.clips_per_video", 4000000000u), NULL,
    "key imagebind.audio.clips_per_video is 4000000000, outside 1..64" },
  { IB_TEST_U32 ("imagebind.vision.image_size", 30000), depth_only,
    "imagebind.vision.image_size 30000" },
  { IB_TEST_F32 ("imagebind.audio.clip_duration", 1e6f), audio_only,
    "key imagebind.audio.clip_duration is 1e+06 s, outside (0, 60]" },
  /* every other pre-processing key */
  { IB_TEST_F32 ("imagebind.audio.clip_duration", NAN), audio_only, "clip_duration is nan" },
  { IB_TEST_F32 ("imagebind.audio.clip_duration", -2.0f), audio_only, "clip_duration is -2" },
  { IB_TEST_F32 ("imagebind.audio.clip_duration", 1e-6f), audio_only,
    "clip duration out of range" },                       /* less than one sample */
  { IB_TEST_U32 ("imagebind.audio.sample_rate", 10000000), audio_only,
    "imagebind.audio.sample_rate is 10000000, outside 100..768000" },
  { IB_TEST_U32 ("imagebind.audio.sample_rate", 50), audio_only, "sample_rate is 50" },
  { IB_TEST_U32 ("imagebind.audio.num_mel_bins", 5000), audio_only, "num_mel_bins is 5000" },
  { IB_TEST_U32 ("imagebind.audio.target_len", 100000), audio_only, "target_len is 100000" },
  { IB_TEST_F32 ("imagebind.audio.fbank_std", 0.0f), audio_only, "fbank_std is 0" },
  { IB_TEST_F32 ("imagebind.audio.fbank_std", INFINITY), audio_only, "fbank_std is inf" },
  { IB_TEST_F32 ("imagebind.audio.fbank_std", NAN), audio_only, "fbank_std is nan" },
  { IB_TEST_F32 ("imagebind.audio.fbank_mean", NAN), audio_only, "fbank_mean is nan" },
  { IB_TEST_U32 ("imagebind.vision.image_size", 40000), NULL, "image_size is 40000" },
  { IB_TEST_U32 ("imagebind.vision.video_frames", 1000), NULL, "video_frames is 1000" },
  { IB_TEST_U32 ("imagebind.text.context_length", 1), NULL, "context_length is 1" },
  { IB_TEST_U32 ("imagebind.imu.num_samples", 1), NULL, "num_samples is 1" },
  { IB_TEST_U32 ("imagebind.imu.num_samples", 1u << 25), NULL, "num_samples is 33554432" },
  /* in range, but not what the depth encoder takes (the depth front end makes image_size) */
  { IB_TEST_U32 ("imagebind.vision.image_size", 448), depth_only,
    "depth: the encoder takes 224x224 images" },
};

static void
test_refused (gconstpointer data)
{
  const Refusal *r = data;
  GError *error = NULL;
  ImageBindModel *model;

  if (!have_tiny ())
    return;
  model = load_edited (r->modalities, &r->key, &error);
  g_assert_null (model);
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL);
  g_test_message ("%s", error->message);
  if (!strstr (error->message, r->message))
    g_error ("error \"%s\" does not say \"%s\"", error->message, r->message);
  g_error_free (error);
}

/* Two keys at once, each in range: clips x mel bins x target_len > 2^26, clip_duration x
 * sample_rate above 2^24 samples, 3 x video_frames x image_size^2 > 2^26. */
static void
test_refused_products (void)
{
  static const IbTestKeyEdit clips[] = {
    IB_TEST_U32 ("imagebind.vision.video_frames", 64),
    IB_TEST_U32 ("imagebind.vision.image_size", 1024),
  };
  static const IbTestKeyEdit tensor[] = {
    IB_TEST_U32 ("imagebind.audio.clips_per_video", 64),
    IB_TEST_U32 ("imagebind.audio.target_len", 65536),
  };
  static const IbTestKeyEdit samples[] = {
    IB_TEST_U32 ("imagebind.audio.sample_rate", 768000),
    IB_TEST_F32 ("imagebind.audio.clip_duration", 30.0f),
  };
  const IbTestKeyEdit *edits[] = { tensor, samples, clips };
  const char *messages[] = { "tensor too large", "clip duration out of range",
    "imagebind.vision.image_size 1024 and video_frames 64 make clips of 201326592 floats" };

  if (!have_tiny ())
    return;
  for (guint i = 0; i < G_N_ELEMENTS (edits); i++) {
    IbTestModelEdit edit = { .modalities = i < 2 ? audio_only : depth_only, .keys = edits[i],
      .n_keys = 2 };
    g_autofree char *path = ib_test_model_edit (tiny_path, &edit);
    GError *error = NULL;

    g_assert_null (imagebind_model_load (path, &error));
    g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL);
    g_test_message ("%s", error->message);
    g_assert_nonnull (strstr (error->message, messages[i]));
    g_assert_nonnull (strstr (error->message, i < 2 ? "imagebind.audio" : "imagebind.vision"));
    g_error_free (error);
    g_unlink (path);
  }
}

/* The limits themselves are accepted: a model at the edge of every audio range loads, and its
 * front end can be made. */
static void
test_limits_accepted (void)
{
  static const IbTestKeyEdit edge[] = {
    IB_TEST_F32 ("imagebind.audio.clip_duration", 20.0f),
    IB_TEST_U32 ("imagebind.audio.sample_rate", 768000),
    IB_TEST_U32 ("imagebind.audio.clips_per_video", 64),
  };
  IbTestModelEdit edit = { .modalities = audio_only, .keys = edge, .n_keys = G_N_ELEMENTS (edge) };
  g_autofree char *path = NULL;
  ImageBindAudioFrontend *frontend;
  ImageBindAudioParams params;
  ImageBindModel *model;
  GError *error = NULL;

  if (!have_tiny ())
    return;
  path = ib_test_model_edit (tiny_path, &edit);
  model = imagebind_model_load (path, &error);
  g_assert_no_error (error);
  params = imagebind_audio_params_from_model (model);
  g_assert_cmpuint (params.clips, ==, 64);
  frontend = imagebind_audio_frontend_new (&params, &error);
  g_assert_no_error (error);
  imagebind_audio_frontend_free (frontend);
  imagebind_model_unref (model);
  g_unlink (path);
}

/* A copy of the tiny model whose heads' weights (every modality) are @value. */
static char *
write_model_with_heads (float value)
{
  IbTestModelEdit edit = { .fill_tensors = "modality_heads.", .fill_value = value };

  return ib_test_model_edit (tiny_path, &edit);
}

/* NaN or infinite weights: every embedding call fails with IMAGEBIND_ERROR_NUMERIC, never
 * a NaN embedding (which imagebind-embed would print as `nan.0`, invalid JSON, exiting 0). */
static void
test_nan_weights (void)
{
  static const float values[] = { NAN, INFINITY };

  if (!have_tiny ())
    return;
  for (guint v = 0; v < G_N_ELEMENTS (values); v++) {
    g_autofree char *path = write_model_with_heads (values[v]);
    GError *error = NULL;
    ImageBindModel *model = imagebind_model_load (path, &error);
    ImageBindContext *ctx;
    g_autofree float *pixels = g_new0 (float, 2 * 3 * 224 * 224);
    g_autofree float *imu = g_new0 (float, 6 * 2000);
    float out[2 * 32];
    gint32 ids[77] = { 49406, 320, 49407 };

    g_assert_no_error (error);
    ctx = imagebind_context_new (model, NULL);
    g_assert_false (imagebind_embed (ctx, IMAGEBIND_MODALITY_VISION, pixels,
            (gint64[]) { 2, 3, 224, 224 }, 4, out, &error));
    g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_NUMERIC);
    g_test_message ("%s", error->message);
    g_assert_nonnull (strstr (error->message, "vision: the model produced a non-finite embedding"));
    g_clear_error (&error);
    g_assert_false (imagebind_embed (ctx, IMAGEBIND_MODALITY_IMU, imu, (gint64[]) { 1, 6, 2000 },
            3, out, &error));
    g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_NUMERIC);
    g_clear_error (&error);
    g_assert_false (imagebind_embed_text (ctx, ids, 1, out, &error));
    g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_NUMERIC);
    g_assert_nonnull (strstr (error->message, "text:"));
    g_clear_error (&error);
    imagebind_context_free (ctx);
    imagebind_model_unref (model);
    g_unlink (path);
  }
}

/* imagebind-embed with NaN weights: exit status 1, the reason on stderr, nothing on stdout (it
 * printed `[{"vector": [nan.0, ...]}]` and exited 0). */
static void
test_nan_weights_tool (void)
{
  g_autofree char *path = NULL, *out = NULL, *err = NULL;
  GError *error = NULL;
  int status;

  if (!have_tiny ())
    return;
  if (!embed_tool_path || !g_file_test (embed_tool_path, G_FILE_TEST_IS_EXECUTABLE)) {
    g_test_skip ("imagebind-embed not given (meson gives it only with json-glib: this case "
        "reads its JSON output)");
    return;
  }
  path = write_model_with_heads (NAN);
  {
    const char *argv[] = { embed_tool_path, "--model", path, "--modality", "text",
      "--threads", "1", "--format", "json", "--text", "a dog", NULL };
    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
            &err, &status, &error));
  }
  g_assert_no_error (error);
  g_test_message ("status %d, stdout \"%s\", stderr \"%s\"", status, out, err);
  g_assert_false (g_spawn_check_wait_status (status, NULL));
  g_assert_cmpstr (out, ==, "");
  g_assert_nonnull (strstr (err, "non-finite embedding"));
  g_unlink (path);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc > 1 && *argv[1])
    tiny_path = argv[1];
  if (argc > 2 && *argv[2])
    embed_tool_path = argv[2];

  for (guint i = 0; i < G_N_ELEMENTS (refusals); i++) {
    g_autofree char *name = g_strdup_printf ("/hostile-model/refused/%u-%s", i,
        strrchr (refusals[i].key.key, '.') + 1);
    g_test_add_data_func (name, &refusals[i], test_refused);
  }
  g_test_add_func ("/hostile-model/refused-products", test_refused_products);
  g_test_add_func ("/hostile-model/limits-accepted", test_limits_accepted);
  g_test_add_func ("/hostile-model/nan-weights", test_nan_weights);
  g_test_add_func ("/hostile-model/nan-weights-tool", test_nan_weights_tool);
  return g_test_run ();
}
