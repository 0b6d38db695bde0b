/* imagebind-embed: embeds a tensor given as .npy, in the official layout, and writes the
 * embeddings as a float32 (B, out_dim) .npy.
 *
 *   imagebind-embed --model M.gguf --modality vision --output OUT.npy INPUT.npy
 *
 * Inputs: vision (B,3,224,224) or (B,S,3,T,224,224), audio (B,S,1,128,204), depth/thermal
 * (B,1,224,224), imu (B,6,2000), all float; text (B,77) integer token ids. */
#include "imagebind.h"
#include "npy.h"

#include <stdlib.h>

static gboolean
embed (const char *model_path, const char *modality_name, const char *input_path,
    const char *output_path, int n_threads, GError **error)
{
  ImageBindModality modality;
  g_autoptr (IbNpy) input = NULL;
  ImageBindModel *model = NULL;
  ImageBindContext *ctx = NULL;
  g_autofree float *out = NULL;
  g_autofree float *data = NULL;
  g_autofree gint32 *ids = NULL;
  gboolean ok = FALSE;
  guint out_dim;
  gint64 batch, out_shape[2];

  if (!imagebind_modality_from_name (modality_name, &modality)) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "unknown modality \"%s\" (vision, text, audio, depth, thermal or imu)", modality_name);
    return FALSE;
  }
  input = ib_npy_load (input_path, error);
  if (!input) {
    g_prefix_error (error, "%s: ", input_path);
    return FALSE;
  }
  if (input->n_dims < 1 || input->shape[0] < 1) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT, "%s: empty input", input_path);
    return FALSE;
  }
  model = imagebind_model_load (model_path, error);
  if (!model)
    return FALSE;
  ImageBindContextParams params = imagebind_context_default_params ();
  params.n_threads = n_threads;
  ctx = imagebind_context_new (model, &params);
  out_dim = imagebind_model_out_dim (model);
  batch = input->shape[0];

  if (modality == IMAGEBIND_MODALITY_TEXT) {
    ImageBindInputGeometry geometry;
    imagebind_model_input_geometry (model, &geometry);
    if (input->n_dims != 2 || input->shape[1] != geometry.context_length ||
        (input->dtype != IB_NPY_I64 && input->dtype != IB_NPY_I32)) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
          "%s: text input must be (B, %u) int64 or int32 token ids", input_path,
          geometry.context_length);
      goto out;
    }
    ids = g_new (gint32, input->n_elements);
    for (gsize i = 0; i < input->n_elements; i++) {
      gint64 v = input->dtype == IB_NPY_I64 ? ((const gint64 *) input->data)[i] :
          ((const gint32 *) input->data)[i];
      if (v < 0 || v > G_MAXINT32) {
        g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
            "%s: token id %" G_GINT64_FORMAT " at index %" G_GSIZE_FORMAT " is out of range",
            input_path, v, i);
        goto out;
      }
      ids[i] = (gint32) v;
    }
    out = g_new (float, batch * out_dim);
    if (!imagebind_embed_text (ctx, ids, batch, out, error))
      goto out;
  } else {
    data = ib_npy_to_f32 (input);
    out = g_new (float, batch * out_dim);
    if (!imagebind_embed (ctx, modality, data, input->shape, input->n_dims, out, error))
      goto out;
  }

  out_shape[0] = batch;
  out_shape[1] = out_dim;
  ok = ib_npy_save (output_path, IB_NPY_F32, out_shape, 2, out, error);

out:
  imagebind_context_free (ctx);
  imagebind_model_unref (model);
  return ok;
}

int
main (int argc, char **argv)
{
  g_autofree char *model_path = NULL, *modality = NULL, *output = NULL;
  int n_threads = 0;
  g_auto (GStrv) inputs = NULL;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "Model file (GGUF)", "FILE" },
    { "modality", 'M', 0, G_OPTION_ARG_STRING, &modality,
      "vision, text, audio, depth, thermal or imu", "NAME" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Output .npy: float32 (B, out_dim)", "FILE" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "Threads (default: all cores)", "N" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &inputs, NULL, "INPUT.npy" },
    { NULL }
  };
  g_autoptr (GOptionContext) octx = g_option_context_new ("INPUT.npy - embed a tensor with ImageBind");
  GError *error = NULL;

  g_option_context_add_main_entries (octx, entries, NULL);
  g_option_context_set_description (octx,
      "INPUT.npy is in the official layout: vision (B,3,224,224) or (B,S,3,T,224,224) float,\n"
      "audio (B,S,1,128,204), depth/thermal (B,1,224,224), imu (B,6,2000), text (B,77) int64 ids.\n");
  if (!g_option_context_parse (octx, &argc, &argv, &error)) {
    g_printerr ("imagebind-embed: %s\n", error->message);
    g_error_free (error);
    return 2;
  }
  if (!model_path || !modality || !output || !inputs || !inputs[0] || inputs[1]) {
    g_printerr ("imagebind-embed: need --model, --modality, --output and exactly one INPUT.npy\n"
        "(see --help)\n");
    return 2;
  }
  if (!embed (model_path, modality, inputs[0], output, n_threads, &error)) {
    g_printerr ("imagebind-embed: %s\n", error->message);
    g_error_free (error);
    return 1;
  }
  return 0;
}
