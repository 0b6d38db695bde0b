/* imagebind-embed: embeds media files, texts or preprocessed tensors with ImageBind and writes
 * the embeddings as a float32 (B, out_dim) .npy or as JSON.
 *
 *   imagebind-embed -M text --text "a dog"        (the shipped model, or $IMAGEBIND_MODEL)
 *   imagebind-embed -m M.gguf -M vision -o out.npy photo.jpg frame.png
 *   imagebind-embed -m M.gguf -M audio --format json bark.wav        (JSON on stdout)
 *   imagebind-embed -m M.gguf -M text -o t.npy --text "a dog barking" --text "rain"
 *   imagebind-embed -m M.gguf -M vision -o out.npy INPUT.npy          (official tensor layout)
 *
 * A single .npy input is a tensor in the layout the official forward takes: vision
 * (B,3,224,224) or (B,S,3,T,224,224), audio (B,S,1,128,204), depth/thermal (B,1,224,224),
 * imu (B,6,2000), text (B,77) int64 ids. Anything else is a media file decoded by GStreamer
 * and preprocessed by the runtime's front ends (gst/gstimagebindmediatensor.h); a video file
 * given as vision goes through the official video loader (5 clips x 3 crops, averaged by the
 * model). */
#include "imagebind.h"
#include "imagebind-tokenizer.h"
#include "gstimagebindmediatensor.h"
#include "npy.h"
#include "tool-common.h"

#ifdef HAVE_JSON_GLIB
#include <json-glib/json-glib.h>
#endif
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *model_option;      /* --model, else NULL: $IMAGEBIND_MODEL, the shipped model */
  ImageBindModality modality;
  const char *output;
  gboolean json;
  int n_threads;
  GstImageBindMediaOptions media;
} EmbedJob;

/* The embeddings of a run: one name and one row per input. */
typedef struct {
  GPtrArray *names;
  GArray *vectors;
  guint dim;
} Embeddings;

static gboolean
embed_npy (ImageBindContext *ctx, const ImageBindModel *model, const EmbedJob *job,
    const char *path, Embeddings *result, GError **error)
{
  g_autoptr (IbNpy) input = ib_npy_load (path, error);
  g_autofree float *out = NULL;
  gint64 batch;

  if (!input)
    return FALSE;
  if (input->n_dims < 1 || input->shape[0] < 1) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT, "%s: empty input", path);
    return FALSE;
  }
  batch = input->shape[0];
  out = g_new (float, (gsize) batch * result->dim);
  if (job->modality == IMAGEBIND_MODALITY_TEXT) {
    ImageBindInputGeometry geometry;
    g_autofree gint32 *ids = g_new (gint32, MAX (input->n_elements, 1));
    imagebind_model_input_geometry (model, &geometry);
    if (input->n_dims != 2 || input->shape[1] != geometry.context_length ||
        (input->dtype != IB_NPY_I64 && input->dtype != IB_NPY_I32)) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
          "%s: text input must be (B, %u) int64 or int32 token ids", path,
          geometry.context_length);
      return FALSE;
    }
    for (gsize i = 0; i < input->n_elements; i++) {
      gint64 v = input->dtype == IB_NPY_I64 ? ((const gint64 *) input->data)[i] :
          ((const gint32 *) input->data)[i];
      if (v < 0 || v > G_MAXINT32) {
        g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
            "%s: token id %" G_GINT64_FORMAT " at index %" G_GSIZE_FORMAT " is out of range",
            path, v, i);
        return FALSE;
      }
      ids[i] = (gint32) v;
    }
    if (!imagebind_embed_text (ctx, ids, batch, out, error))
      return FALSE;
  } else {
    g_autofree float *data = ib_npy_to_f32 (input);
    if (!imagebind_embed (ctx, job->modality, data, input->shape, input->n_dims, out, error))
      return FALSE;
  }
  for (gint64 b = 0; b < batch; b++)
    g_ptr_array_add (result->names, batch == 1 ? g_strdup (path) :
        g_strdup_printf ("%s[%" G_GINT64_FORMAT "]", path, b));
  g_array_append_vals (result->vectors, out, (guint) (batch * result->dim));
  return TRUE;
}

static gboolean
embed_media (ImageBindContext *ctx, const ImageBindModel *model, const EmbedJob *job,
    const char *path, Embeddings *result, GError **error)
{
  g_autofree float *out = g_new (float, result->dim);

  if (!gst_image_bind_media_embed (ctx, model, job->modality, &job->media, path, out, error))
    return FALSE;
  g_ptr_array_add (result->names, g_strdup (path));
  g_array_append_vals (result->vectors, out, result->dim);
  return TRUE;
}

static gboolean
embed_texts (ImageBindContext *ctx, const ImageBindModel *model, GPtrArray *texts,
    Embeddings *result, GError **error)
{
  const ImageBindTokenizer *tok = imagebind_model_get_tokenizer (model, error);
  ImageBindInputGeometry geometry;
  g_autofree gint32 *ids = NULL;
  g_autofree float *out = NULL;

  if (!tok)
    return FALSE;
  imagebind_model_input_geometry (model, &geometry);
  ids = g_new (gint32, (gsize) texts->len * geometry.context_length);
  for (guint i = 0; i < texts->len; i++)
    if (!imagebind_tokenize (tok, texts->pdata[i], -1, ids + (gsize) i * geometry.context_length,
            geometry.context_length, error)) {
      g_prefix_error (error, "text %u: ", i + 1);
      return FALSE;
    }
  out = g_new (float, (gsize) texts->len * result->dim);
  if (!imagebind_embed_text (ctx, ids, texts->len, out, error))
    return FALSE;
  for (guint i = 0; i < texts->len; i++)
    g_ptr_array_add (result->names, g_strdup (texts->pdata[i]));
  g_array_append_vals (result->vectors, out, texts->len * result->dim);
  return TRUE;
}

#ifdef HAVE_JSON_GLIB
static gboolean
write_json (const EmbedJob *job, const ImageBindModel *model, const Embeddings *e, GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  const float *v = (const float *) e->vectors->data;
  double scale = imagebind_model_logit_scale (model, job->modality);

  json_builder_begin_array (b);
  for (guint i = 0; i < e->names->len; i++) {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "input");
    json_builder_add_string_value (b, e->names->pdata[i]);
    json_builder_set_member_name (b, "modality");
    json_builder_add_string_value (b, imagebind_modality_name (job->modality));
    json_builder_set_member_name (b, "model");
    json_builder_add_string_value (b, imagebind_model_name (model));
    /* As the model outputs it: L2-normalised, then times the modality's logit scale (1 for
     * vision; text and audio are longer): say so, so that cosines are computed right. */
    json_builder_set_member_name (b, "logit_scale");
    json_builder_add_double_value (b, scale);
    json_builder_set_member_name (b, "scaled");
    json_builder_add_boolean_value (b, scale != 1.0);
    json_builder_set_member_name (b, "vector");
    json_builder_begin_array (b);
    for (guint d = 0; d < e->dim; d++)
      json_builder_add_double_value (b, v[(gsize) i * e->dim + d]);
    json_builder_end_array (b);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  if (!job->output || g_str_equal (job->output, "-")) {
    g_autofree char *text = json_generator_to_data (gen, NULL);
    g_print ("%s\n", text);
    return TRUE;
  }
  return json_generator_to_file (gen, job->output, error);
}
#endif

static gboolean
run (const EmbedJob *job, char **inputs, GPtrArray *texts, GError **error)
{
  g_autofree char *model_path = NULL;
  ImageBindModel *model = ib_tool_load_model (job->model_option, &model_path, error);
  ImageBindContext *ctx;
  ImageBindContextParams params = imagebind_context_default_params ();
  Embeddings e = { g_ptr_array_new_with_free_func (g_free), g_array_new (FALSE, FALSE, sizeof (float)), 0 };
  gboolean ok = TRUE;

  if (!model)
    return FALSE;
  if (!imagebind_model_require_modality (model, job->modality, model_path,
          "imagebind-embed", error)) {
    imagebind_model_unref (model);
    return FALSE;
  }
  params.n_threads = job->n_threads;
  ctx = imagebind_context_new (model, &params);
  e.dim = imagebind_model_out_dim (model);

  if (texts->len)
    ok = embed_texts (ctx, model, texts, &e, error);
  for (guint i = 0; ok && inputs && inputs[i]; i++)
    ok = g_str_has_suffix (inputs[i], ".npy") ?
        embed_npy (ctx, model, job, inputs[i], &e, error) :
        embed_media (ctx, model, job, inputs[i], &e, error);
  if (ok && job->json) {
#ifdef HAVE_JSON_GLIB
    ok = write_json (job, model, &e, error);
#endif
  } else if (ok) {
    gint64 shape[2] = { e.names->len, e.dim };
    ok = ib_npy_save (job->output, IB_NPY_F32, shape, 2, e.vectors->data, error);
  }
  imagebind_context_free (ctx);
  imagebind_model_unref (model);
  g_ptr_array_unref (e.names);
  g_array_unref (e.vectors);
  return ok;
}

/* Non-empty lines of a UTF-8 text file. */
static gboolean
read_lines (const char *path, GPtrArray *texts, GError **error)
{
  g_autofree char *contents = NULL;
  g_auto (GStrv) lines = NULL;

  if (!g_file_get_contents (path, &contents, NULL, error))
    return FALSE;
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    g_strchomp (lines[i]);
    if (*lines[i])
      g_ptr_array_add (texts, g_strdup (lines[i]));
  }
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autofree char *model_path = NULL, *modality = NULL, *output = NULL, *format = NULL;
  g_autofree char *text_file = NULL, *depth_format = NULL;
  g_auto (GStrv) inputs = NULL, text_args = NULL;
  int n_threads = 0;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path,
      "Model file (GGUF; default: $IMAGEBIND_MODEL, else the shipped default model)", "FILE" },
    { "modality", 'M', 0, G_OPTION_ARG_STRING, &modality,
      "vision, text, audio, depth, thermal or imu", "NAME" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
      "Output file: .npy float32 (B, out_dim), or JSON with --format json (default: stdout)", "FILE" },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format,
      "npy or json (default: json if the output ends in .json or is stdout, else npy)", "FORMAT" },
    /* FILENAME: no conversion from the locale's charset; texts are UTF-8 whatever LANG says,
     * and the tokenizer refuses invalid UTF-8 */
    { "text", 'T', 0, G_OPTION_ARG_FILENAME_ARRAY, &text_args, "A text to embed (repeatable)", "TEXT" },
    { "text-file", 0, 0, G_OPTION_ARG_FILENAME, &text_file, "Embed every non-empty line", "FILE" },
    { "depth-format", 0, 0, G_OPTION_ARG_STRING, &depth_format,
      "16-bit depth images hold millimetres (default) or disparity", "mm|disparity" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "Threads (default: all cores)", "N" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &inputs, NULL, "INPUT..." },
    { NULL }
  };
  g_autoptr (GOptionContext) octx = g_option_context_new ("INPUT... - embed media, texts or tensors with ImageBind");
  g_autoptr (GPtrArray) texts = g_ptr_array_new_with_free_func (g_free);
  EmbedJob job = { 0 };
  GError *error = NULL;

  g_option_context_add_main_entries (octx, entries, NULL);
  g_option_context_set_description (octx,
      "INPUT is a media file (any image, audio or video GStreamer decodes; IMU: .csv or raw\n"
      "float32 6-channel samples) or one .npy tensor in the official layout: vision (B,3,224,224)\n"
      "or (B,S,3,T,224,224), audio (B,S,1,128,204), depth/thermal (B,1,224,224), imu (B,6,2000),\n"
      "text (B,77) int64 ids. Texts come from --text or --text-file.\n"
      "\n"
      "Vectors are as the model outputs them: L2-normalised, then multiplied by the modality's\n"
      "logit scale (1 for vision; larger for text and audio, e.g. 20). The JSON objects carry\n"
      "it (\"logit_scale\", and \"scaled\": true when it is not 1): divide by it, or normalise,\n"
      "before comparing vectors of two modalities.\n");
  if (!g_option_context_parse (octx, &argc, &argv, &error)) {
    g_printerr ("imagebind-embed: %s\n", error->message);
    g_error_free (error);
    return 2;
  }
  for (guint i = 0; text_args && text_args[i]; i++)
    g_ptr_array_add (texts, g_strdup (text_args[i]));
  if (text_file && !read_lines (text_file, texts, &error)) {
    g_printerr ("imagebind-embed: %s\n", error->message);
    g_error_free (error);
    return 1;
  }
  if (!modality || !imagebind_modality_from_name (modality, &job.modality)) {
    g_printerr ("imagebind-embed: need --modality (vision, text, audio, depth, thermal or "
        "imu); see --help\n");
    return 2;
  }
  if ((!inputs || !inputs[0]) && texts->len == 0) {
    g_printerr ("imagebind-embed: nothing to embed: give input files%s\n",
        job.modality == IMAGEBIND_MODALITY_TEXT ? ", --text or --text-file" : "");
    return 2;
  }
  if (texts->len && job.modality != IMAGEBIND_MODALITY_TEXT) {
    g_printerr ("imagebind-embed: --text needs --modality text\n");
    return 2;
  }
  job.json = format ? g_str_equal (format, "json") :
      (!output || g_str_equal (output, "-") || g_str_has_suffix (output, ".json"));
  if (format && !job.json && !g_str_equal (format, "npy")) {
    g_printerr ("imagebind-embed: --format is npy or json\n");
    return 2;
  }
#ifndef HAVE_JSON_GLIB
  if (job.json) {
    g_printerr ("imagebind-embed: JSON output (--format json, the default for standard output "
        "and *.json files) is not available: this imagebind-embed was built without json-glib; "
        "write .npy with --output FILE.npy\n");
    return 2;
  }
#endif
  if (!job.json && (!output || g_str_equal (output, "-"))) {
    g_printerr ("imagebind-embed: .npy output needs --output FILE\n");
    return 2;
  }
  job.media.depth_format = IMAGEBIND_DEPTH_MILLIMETRES;
  if (depth_format && g_str_equal (depth_format, "disparity"))
    job.media.depth_format = IMAGEBIND_DEPTH_DISPARITY;
  else if (depth_format && !g_str_equal (depth_format, "mm")) {
    g_printerr ("imagebind-embed: --depth-format is mm or disparity\n");
    return 2;
  }
  job.model_option = model_path;
  job.output = output;
  job.n_threads = n_threads;
  if (!run (&job, inputs, texts, &error)) {
    g_printerr ("imagebind-embed: %s\n", error->message);
    g_error_free (error);
    return 1;
  }
  return 0;
}
