/* imagebind-tags: runs a pipeline with imagebindmatch elements and prints, in plain words, what
 * they see and hear, one line each time a tag changes:
 *
 *   0:00:04  video: colour bars (0.97)          audio: a steady tone (0.91)
 *
 *   imagebind-tags [--all] 'videotestsrc ! imagebindvision ! imagebindmatch prompts=... ! fakesink'
 *
 * The tags are the `top-label` and `top-probability` of the matchers' `imagebind-match` bus
 * messages, at their `running-time`; the modality names the column ("vision" shows as video).
 * Exits 0 at EOS, 1 on an error message (printed). */
#include "tool-common.h"

#include <gst/gst.h>
#include <string.h>

#define N_MODALITIES 6
static const char *const modality_names[N_MODALITIES] =
    { "vision", "audio", "depth", "thermal", "imu", "text" };
static const char *const column_names[N_MODALITIES] =
    { "video", "audio", "depth", "thermal", "imu", "text" };

typedef struct {
  char *label[N_MODALITIES];
  double probability[N_MODALITIES];
  gboolean all;
} Tags;

static int
modality_index (const char *name)
{
  for (int i = 0; i < N_MODALITIES; i++)
    if (g_strcmp0 (name, modality_names[i]) == 0)
      return i;
  return -1;
}

static void
print_tags (const Tags *tags, GstClockTime t)
{
  GString *line = g_string_new (NULL);
  guint64 s = GST_CLOCK_TIME_IS_VALID (t) ? t / GST_SECOND : 0;
  g_string_append_printf (line, "%u:%02u:%02u ", (guint) (s / 3600), (guint) (s / 60 % 60),
      (guint) (s % 60));
  for (int i = 0; i < N_MODALITIES; i++) {
    if (!tags->label[i])
      continue;
    g_autofree char *tag = g_strdup_printf ("%s (%.2f)", tags->label[i], tags->probability[i]);
    g_string_append_printf (line, " %s: %-28s", column_names[i], tag);
  }
  while (line->len && line->str[line->len - 1] == ' ')
    g_string_truncate (line, line->len - 1);
  g_print ("%s\n", line->str);
  g_string_free (line, TRUE);
}

static void
on_match (Tags *tags, const GstStructure *s)
{
  const char *modality = gst_structure_get_string (s, "modality");
  const char *label = gst_structure_get_string (s, "top-label");
  double p = 0;
  guint64 t = GST_CLOCK_TIME_NONE;
  int i = modality_index (modality);

  if (i < 0 || !label)
    return;
  gst_structure_get_double (s, "top-probability", &p);
  gst_structure_get_uint64 (s, "running-time", &t);
  gboolean changed = g_strcmp0 (tags->label[i], label) != 0;
  g_free (tags->label[i]);
  tags->label[i] = g_strdup (label);
  tags->probability[i] = p;
  if (changed || tags->all)
    print_tags (tags, t);
}

int
main (int argc, char **argv)
{
  gboolean all = FALSE;
  g_auto (GStrv) rest = NULL;
  GOptionEntry entries[] = {
    { "all", 'a', 0, G_OPTION_ARG_NONE, &all, "Print every result, not only changes", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &rest, NULL, "PIPELINE" },
    { NULL }
  };
  g_autoptr (GOptionContext) octx = g_option_context_new ("PIPELINE - print ImageBind tags as they change");
  GError *error = NULL;
  Tags tags = { { NULL }, { 0 }, FALSE };
  int status = 0;

  g_option_context_add_main_entries (octx, entries, NULL);
  g_option_context_add_group (octx, gst_init_get_option_group ());
  if (!g_option_context_parse (octx, &argc, &argv, &error)) {
    g_printerr ("imagebind-tags: %s\n", error->message);
    return 2;
  }
  if (!rest || !rest[0]) {
    g_printerr ("imagebind-tags: give a pipeline description (see --help)\n");
    return 2;
  }
  if (!ib_tool_find_plugin ("imagebindmatch", &error)) {
    g_printerr ("imagebind-tags: %s\n", error->message);
    return 1;
  }
  tags.all = all;
  g_autofree char *description = g_strjoinv (" ", rest);
  /* Strict: a missing element or property is an error, not a half-built pipeline. */
  GstElement *pipeline = gst_parse_launch_full (description, NULL, GST_PARSE_FLAG_FATAL_ERRORS |
      GST_PARSE_FLAG_PLACE_IN_BIN, &error);
  if (!pipeline) {
    g_printerr ("imagebind-tags: %s\n", error ? error->message : "cannot build the pipeline");
    g_clear_error (&error);
    return 2;
  }
  if (!GST_IS_PIPELINE (pipeline)) {      /* a single element or bin: give it a bus */
    GstElement *bin = gst_pipeline_new (NULL);
    gst_bin_add (GST_BIN (bin), pipeline);
    pipeline = bin;
  }
  GstBus *bus = gst_element_get_bus (pipeline);
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
    g_printerr ("imagebind-tags: the pipeline does not start\n");
  for (gboolean done = FALSE; !done;) {
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
        GST_MESSAGE_ELEMENT | GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    switch (GST_MESSAGE_TYPE (msg)) {
      case GST_MESSAGE_ELEMENT:
        if (gst_message_has_name (msg, "imagebind-match"))
          on_match (&tags, gst_message_get_structure (msg));
        break;
      case GST_MESSAGE_ERROR: {
        g_autofree char *debug = NULL;
        gst_message_parse_error (msg, &error, &debug);
        g_printerr ("imagebind-tags: error from %s: %s\n%s\n", GST_OBJECT_NAME (msg->src),
            error->message, debug ? debug : "");
        g_clear_error (&error);
        status = 1;
        done = TRUE;
        break;
      }
      default:
        done = TRUE;
        break;
    }
    gst_message_unref (msg);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  for (int i = 0; i < N_MODALITIES; i++)
    g_free (tags.label[i]);
  return status;
}
