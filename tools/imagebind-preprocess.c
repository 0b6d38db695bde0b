/* imagebind-preprocess: raw media files -> the model's input tensor (.npy), through the same
 * front ends (models/imagebind-frontend.h) the elements use, so that training data made
 * with it is what the runtime will see at inference.
 *
 *   imagebind-preprocess --modality vision --width 320 --height 240 -o OUT.npy a.rgb b.rgb
 *   imagebind-preprocess --modality text --merges merges.txt -o OUT.npy "a dog" "a cat"
 *
 * Raw inputs, one file per sample:
 *   vision   packed RGB frames of WxH; the last frame is used     -> (B, 3, 224, 224)
 *            (with --model: that model's image size, mean and std)
 *   audio    F32LE mono at 16 kHz                                 -> (B, 3, 1, 128, 204)
 *   depth    GRAY16 (native endian) millimetres, WxH              -> (B, 1, 224, 224)
 *   thermal  GRAY8, WxH                                           -> (B, 1, 224, 224)
 *   imu      F32LE interleaved ax ay az gx gy gz (SI units)       -> (B, 6, 2000)
 *   text     the arguments are the texts; ids from --merges or --model's vocabulary -> (B, 77)
 */
#include "imagebind.h"
#include "imagebind-frontend.h"
#include "imagebind-tokenizer.h"
#include "npy.h"

#include <string.h>

#define TENSOR_SIZE 224
#define IMU_SAMPLES 2000
#define CONTEXT_LENGTH 77

static gboolean
read_exact (const char *path, gsize unit, gsize min_units, guint8 **data, gsize *n_units,
    GError **error)
{
  gsize len;
  if (!g_file_get_contents (path, (char **) data, &len, error))
    return FALSE;
  if (len % unit != 0 || len / unit < min_units) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "%s: %" G_GSIZE_FORMAT " bytes is not a whole number (>= %" G_GSIZE_FORMAT ") of "
        "%" G_GSIZE_FORMAT "-byte units", path, len, min_units, unit);
    g_clear_pointer (data, g_free);
    return FALSE;
  }
  *n_units = len / unit;
  return TRUE;
}

static gboolean
preprocess_one (const char *modality, const ImageBindImageParams *image, const char *path,
    guint width, guint height, float *out, GError **error)
{
  g_autofree guint8 *data = NULL;
  gsize n;

  if (g_str_equal (modality, "vision")) {
    gsize frame = (gsize) width * height * 3;
    if (!read_exact (path, frame, 1, &data, &n, error))
      return FALSE;
    return imagebind_image_to_tensor (image, data + (n - 1) * frame, width, height,
        (gsize) width * 3, out, error);
  }
  if (g_str_equal (modality, "depth")) {
    gsize frame = (gsize) width * height * 2;
    if (!read_exact (path, frame, 1, &data, &n, error))
      return FALSE;
    return imagebind_depth_to_tensor (TENSOR_SIZE, IMAGEBIND_DEPTH_MILLIMETRES,
        data + (n - 1) * frame, 16, width, height, (gsize) width * 2, out, error);
  }
  if (g_str_equal (modality, "thermal")) {
    gsize frame = (gsize) width * height;
    if (!read_exact (path, frame, 1, &data, &n, error))
      return FALSE;
    return imagebind_thermal_to_tensor (TENSOR_SIZE, data + (n - 1) * frame, 8, width, height,
        width, out, error);
  }
  if (g_str_equal (modality, "imu")) {
    if (!read_exact (path, 6 * sizeof (float), 2, &data, &n, error))
      return FALSE;
    return imagebind_imu_to_tensor (IMU_SAMPLES, (const float *) data, n, out, error);
  }
  if (g_str_equal (modality, "audio")) {
    ImageBindAudioParams params = imagebind_audio_default_params ();
    if (!read_exact (path, sizeof (float), 1, &data, &n, error))
      return FALSE;
    return imagebind_audio_to_tensor (&params, (const float *) data, 1, n, out, error);
  }
  g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
      "unknown modality \"%s\" (vision, text, audio, depth, thermal or imu)", modality);
  return FALSE;
}

static gboolean
tokenize_all (const char *merges_path, const char *model_path, char **texts, guint n,
    const char *output, GError **error)
{
  ImageBindTokenizer *own = NULL;
  ImageBindModel *model = NULL;
  const ImageBindTokenizer *tok;
  gboolean ok = FALSE;
  g_autofree gint32 *ids = g_new0 (gint32, (gsize) n * CONTEXT_LENGTH);
  g_autofree gint64 *ids64 = g_new0 (gint64, (gsize) n * CONTEXT_LENGTH);

  if (merges_path) {
    /* a plain merges file, one "a b" per line, no header */
    tok = own = imagebind_tokenizer_new_from_file (merges_path, 0, error);
  } else {
    model = imagebind_model_load (model_path, error);
    tok = model ? imagebind_model_get_tokenizer (model, error) : NULL;
  }
  if (!tok)
    goto out;
  for (guint i = 0; i < n; i++)
    if (!imagebind_tokenize (tok, texts[i], -1, ids + (gsize) i * CONTEXT_LENGTH,
            CONTEXT_LENGTH, error))
      goto out;
  for (gsize i = 0; i < (gsize) n * CONTEXT_LENGTH; i++)
    ids64[i] = ids[i];
  ok = ib_npy_save (output, IB_NPY_I64, (gint64[]) { n, CONTEXT_LENGTH }, 2, ids64, error);
out:
  if (own)
    imagebind_tokenizer_free (own);
  if (model)
    imagebind_model_unref (model);
  return ok;
}

int
main (int argc, char **argv)
{
  g_autofree char *modality = NULL, *output = NULL, *merges = NULL, *model = NULL;
  int width = 0, height = 0;
  g_auto (GStrv) inputs = NULL;
  GOptionEntry entries[] = {
    { "modality", 'M', 0, G_OPTION_ARG_STRING, &modality,
      "vision, text, audio, depth, thermal or imu", "NAME" },
    { "width", 'W', 0, G_OPTION_ARG_INT, &width, "Frame width (vision, depth, thermal)", "PX" },
    { "height", 'H', 0, G_OPTION_ARG_INT, &height, "Frame height (vision, depth, thermal)", "PX" },
    { "merges", 0, 0, G_OPTION_ARG_FILENAME, &merges,
      "text: BPE merges file (\"a b\" per line; a header line is expected)", "FILE" },
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model,
      "text: the model whose vocabulary to use; vision: whose image size, mean and std", "FILE" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Output .npy", "FILE" },
    /* FILENAME_ARRAY: no conversion from the locale, so texts stay the UTF-8 they are */
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &inputs, NULL, "INPUT..." },
    { NULL }
  };
  g_autoptr (GOptionContext) octx =
      g_option_context_new ("INPUT... - raw media to an ImageBind input tensor");
  GError *error = NULL;
  ImageBindModality m;
  gint64 shape[5];
  guint n_dims;

  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error)) {
    g_printerr ("imagebind-preprocess: %s\n", error->message);
    g_error_free (error);
    return 2;
  }
  if (!modality || !output || !inputs || !inputs[0]
      || !imagebind_modality_from_name (modality, &m)) {
    g_printerr ("imagebind-preprocess: need a known --modality, --output and inputs (--help)\n");
    return 2;
  }
  guint n = g_strv_length (inputs);
  if (m == IMAGEBIND_MODALITY_TEXT) {
    if (!merges == !model) {
      g_printerr ("imagebind-preprocess: text needs one of --merges or --model\n");
      return 2;
    }
    if (!tokenize_all (merges, model, inputs, n, output, &error)) {
      g_printerr ("imagebind-preprocess: %s\n", error->message);
      g_error_free (error);
      return 1;
    }
    return 0;
  }
  if ((m == IMAGEBIND_MODALITY_VISION || m == IMAGEBIND_MODALITY_DEPTH
          || m == IMAGEBIND_MODALITY_THERMAL) && (width <= 0 || height <= 0)) {
    g_printerr ("imagebind-preprocess: %s needs --width and --height\n", modality);
    return 2;
  }
  ImageBindImageParams image = imagebind_image_default_params ();
  if (m == IMAGEBIND_MODALITY_VISION && model) {
    ImageBindModel *loaded = imagebind_model_load (model, &error);
    if (!loaded) {
      g_printerr ("imagebind-preprocess: %s\n", error->message);
      g_error_free (error);
      return 1;
    }
    image = imagebind_image_params_from_model (loaded);
    imagebind_model_unref (loaded);
  }
  shape[0] = n;
  switch (m) {
    case IMAGEBIND_MODALITY_VISION:
      shape[1] = 3; shape[2] = image.size; shape[3] = image.size; n_dims = 4;
      break;
    case IMAGEBIND_MODALITY_AUDIO:
      shape[1] = 3; shape[2] = 1; shape[3] = 128; shape[4] = 204; n_dims = 5;
      break;
    case IMAGEBIND_MODALITY_IMU:
      shape[1] = 6; shape[2] = IMU_SAMPLES; n_dims = 3;
      break;
    default:
      shape[1] = 1; shape[2] = TENSOR_SIZE; shape[3] = TENSOR_SIZE; n_dims = 4;
      break;
  }
  gsize per = 1;
  for (guint d = 1; d < n_dims; d++)
    per *= shape[d];
  g_autofree float *out = g_new (float, per * n);
  for (guint i = 0; i < n; i++) {
    if (!preprocess_one (modality, &image, inputs[i], width, height, out + per * i, &error)) {
      g_printerr ("imagebind-preprocess: %s\n", error->message);
      g_error_free (error);
      return 1;
    }
  }
  if (!ib_npy_save (output, IB_NPY_F32, shape, n_dims, out, &error)) {
    g_printerr ("imagebind-preprocess: %s\n", error->message);
    g_error_free (error);
    return 1;
  }
  return 0;
}
