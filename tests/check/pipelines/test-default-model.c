/* The shipped default model (models/imagebind-default.gguf, models/train/):
 *
 * - its tokenizer gives the ids the text encoder was trained on;
 * - through the elements, GStreamer's test sources with held-out parameters (values the model
 *   never trained on) go through imagebindvision / imagebindaudio and imagebindmatch, and the
 *   top prompt must be the scene's. No `model` property is set: the elements must find the
 *   shipped file by themselves (source tree, or installed).
 *
 * The same scenes also through its q8 version (argv[2], written by models/gguf-to-q8.py at
 * build time), set as every element's `model` and nothing else changed.
 *
 * A change that breaks the model file, the runtime, a front end or the default lookup fails
 * here. The audio tags are the paper's emergent zero-shot: the audio encoder never saw text. */
#include <gst/gst.h>
#include <imagebind.h>
#include <imagebind-tokenizer.h>
#include <string.h>

#include "common.h"

/* The prompts, in the order of models/train/world.py's classes. */
#define SCENE_PROMPTS "\"<\\\"colour bars\\\", \\\"static noise\\\", \\\"a black screen\\\", " \
  "\\\"a bouncing ball\\\", \\\"a checkerboard\\\", \\\"circular rings\\\", \\\"a red screen\\\", " \
  "\\\"a white screen\\\", \\\"a blue screen\\\", \\\"a pinwheel\\\">\""
#define SOUND_PROMPTS "\"<\\\"a steady tone\\\", \\\"white noise\\\", \\\"silence\\\", " \
  "\\\"ticking\\\", \\\"a buzzing square wave\\\", \\\"a sawtooth wave\\\", \\\"a low hum\\\", " \
  "\\\"a high whistle\\\", \\\"a deep rumble\\\", \\\"wind\\\">\""

enum { BARS, SNOW, BLACK, BALL, CHECKERS, RINGS, RED, WHITE, BLUE, PINWHEEL };

typedef struct {
  const char *source;      /* source and caps, up to the encoder */
  guint expected;
} Case;

static const char *q8_path;    /* the q8 version, or NULL: the shipped F32 file by default */

static gboolean
have_model (void)
{
  if (!g_file_test (GST_IMAGE_BIND_DEFAULT_MODEL_SOURCE, G_FILE_TEST_IS_REGULAR)) {
    g_test_skip ("models/imagebind-default.gguf is absent");
    return FALSE;
  }
  return TRUE;
}

static void
on_match (GstMessage * msg, gpointer user_data)
{
  GArray *tops = user_data;
  guint top;

  if (!gst_message_has_name (msg, "imagebind-match"))
    return;
  g_assert_true (gst_structure_get_uint (gst_message_get_structure (msg), "top-index", &top));
  g_array_append_val (tops, top);
}

/* Runs @description to EOS; returns the top index of every imagebind-match message. */
static GArray *
run_pipeline (const char *description)
{
  GArray *tops = g_array_new (FALSE, FALSE, sizeof (guint));

  ib_test_run_launch (description, on_match, tops);
  return tops;
}

static void
check_cases (const Case *cases, guint n, const char *encoder, const char *prompts)
{
  g_autofree char *model = q8_path ? g_strdup_printf (" model=\"%s\"", q8_path) : g_strdup ("");
  for (guint i = 0; i < n; i++) {
    g_autofree char *description = g_strdup_printf ("%s ! %s%s sync=true n-threads=1 ! "
        "imagebindmatch%s prompts=%s ! fakesink", cases[i].source, encoder, model, model, prompts);
    GArray *tops = run_pipeline (description);
    g_test_message ("%s: %u results", cases[i].source, tops->len);
    g_assert_cmpuint (tops->len, >=, 1);
    for (guint k = 0; k < tops->len; k++)
      g_assert_cmpuint (g_array_index (tops, guint, k), ==, cases[i].expected);
    g_array_unref (tops);
  }
}

#define VIDEO(props) "videotestsrc num-buffers=3 " props \
  " ! video/x-raw,width=320,height=240,framerate=10/1 ! videoconvert"

static void
test_video_scenes (void)
{
  static const Case cases[] = {
    { VIDEO ("pattern=smpte"), BARS },
    { VIDEO ("pattern=snow"), SNOW },
    { VIDEO ("pattern=black"), BLACK },
    { VIDEO ("pattern=ball foreground-color=0xffffdd00"), BALL },
    { VIDEO ("pattern=checkers-4"), CHECKERS },
    { VIDEO ("pattern=zone-plate kx2=20 ky2=20"), RINGS },
    { VIDEO ("pattern=solid-color foreground-color=0xffff100c"), RED },
    { VIDEO ("pattern=solid-color foreground-color=0xff183af7"), BLUE },
  };
  if (!have_model ())
    return;
  check_cases (cases, G_N_ELEMENTS (cases), "imagebindvision", SCENE_PROMPTS);
}

/* 2 s of sound: one window of the audio encoder. 16-bit samples: audiotestsrc (1.22) leaves
 * the first sample of every tick uninitialised (here samples 2040 + 3040 k, whatever the
 * buffer size); as a float that garbage can be 1e30 or inf, which the front end must refuse,
 * as 16-bit PCM it is at worst one full-scale click. */
#define AUDIO(props) "audiotestsrc num-buffers=32 samplesperbuffer=1000 " props \
  " ! audio/x-raw,format=S16LE,rate=16000,channels=1"

static void
test_audio_scenes_emergent (void)
{
  static const Case cases[] = {
    { AUDIO ("wave=sine freq=720 volume=0.6"), BARS },
    { AUDIO ("wave=white-noise volume=0.6"), SNOW },
    /* a sine at -180 dBFS: all zeros as 16-bit PCM (not GAP buffers, so that the silence
     * goes through the same path as the other sounds) */
    { AUDIO ("wave=sine volume=0.000000001"), BLACK },
    { AUDIO ("wave=ticks freq=1400 tick-interval=190000000 volume=0.68"), BALL },
    { AUDIO ("wave=square freq=140 volume=0.6"), CHECKERS },
    { AUDIO ("wave=sine freq=3700 volume=0.6"), WHITE },
  };
  if (!have_model ())
    return;
  check_cases (cases, G_N_ELEMENTS (cases), "imagebindaudio", SOUND_PROMPTS);
}

/* The model file's tokenizer (its own 320 merges) gives the ids models/train/bpe.py gives: the
 * ids the text encoder was trained on. Expected ids from bpe.py with models/train/merges.txt. */
static void
test_tokenizer_matches_training (void)
{
  static const struct {
    const char *text;
    gint32 ids[24];
  } cases[] = {
    { "a video of colour bars", { 832, 320, 528, 514, 656, 614, 833 } },
    { "the sound of a high-pitched whistle",
      { 832, 560, 564, 514, 320, 700, 268, 824, 635, 833 } },
    { "a bouncing yellow ball with a clock ticking",
      { 832, 320, 542, 695, 522, 517, 320, 592, 550, 833 } },
    /* words the grammar never made fall back to bytes and short merges */
    { "an unseen word: zebra 42!", { 832, 570, 84, 77, 82, 68, 529, 86, 78, 81, 323, 281, 89,
        68, 65, 81, 320, 275, 273, 256, 833 } },
  };
  GError *error = NULL;
  ImageBindModel *model;
  const ImageBindTokenizer *tok;

  if (!have_model ())
    return;
  model = imagebind_model_load (GST_IMAGE_BIND_DEFAULT_MODEL_SOURCE, &error);
  g_assert_no_error (error);
  tok = imagebind_model_get_tokenizer (model, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (imagebind_tokenizer_vocab_size (tok), ==, 834);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    gint32 ids[77];
    guint n = 0;
    g_assert_true (imagebind_tokenize (tok, cases[i].text, -1, ids, 77, &error));
    g_assert_no_error (error);
    while (cases[i].ids[n] != 833)
      n++;
    g_assert_cmpmem (ids, (n + 1) * sizeof (gint32), cases[i].ids, (n + 1) * sizeof (gint32));
    for (guint k = n + 1; k < 77; k++)
      g_assert_cmpint (ids[k], ==, 0);
  }
  imagebind_model_unref (model);
}

/* The test named by the path's tail, on the q8 file @data. */
static void
test_q8 (gconstpointer data)
{
  const char *path = g_test_get_path ();
  if (!g_file_test (data, G_FILE_TEST_IS_REGULAR)) {
    g_test_skip ("the q8 default model was not built");
    return;
  }
  q8_path = data;
  if (g_str_has_suffix (path, "video-scenes"))
    test_video_scenes ();
  else
    test_audio_scenes_emergent ();
  q8_path = NULL;
}

int
main (int argc, char **argv)
{
  /* the test sources and converters: GStreamer's plugin directory (argv[1]) */
  ib_test_gst_init (&argc, &argv, "registry-default-model.bin", argc > 1 ? argv[1] : NULL);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/default-model/tokenizer-matches-training", test_tokenizer_matches_training);
  g_test_add_func ("/default-model/video-scenes", test_video_scenes);
  g_test_add_func ("/default-model/audio-scenes-emergent", test_audio_scenes_emergent);
  if (argc > 2 && *argv[2]) {
    g_test_add_data_func ("/default-model/q8/video-scenes", argv[2], test_q8);
    g_test_add_data_func ("/default-model/q8/audio-scenes-emergent", argv[2], test_q8);
  }
  return g_test_run ();
}
