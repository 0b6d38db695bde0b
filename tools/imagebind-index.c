/* imagebind-index: records the ImageBind embeddings of media files into an index file
 * (models/INDEX.md) for imagebind-search.
 *
 *   imagebind-index -o photos.ibx ~/Pictures               (every file under the folder)
 *   imagebind-index -o clips.ibx --append --interval 0.5 holiday.mp4 birds.wav
 *
 * Each file runs through one pipeline:
 *
 *   uridecodebin ─┬─ queue ! videoconvert ! imagebindvision interval=I sync=true ─┬─ funnel
 *                 └─ queue ! audioconvert ! imagebindaudio sync=true ─────────────┘     │
 *                                                           imagebindindexsink append=true
 *
 * so a still image gives one vision entry, a video one vision entry per interval of frames and
 * one audio entry per 2 s window, a sound its audio windows. Files GStreamer cannot decode are
 * reported and skipped; the exit status is then 1 (files of a folder that are not media at all,
 * such as text files, are only mentioned).
 *
 * Inside a file that takes longer than --progress seconds, a progress line (position, duration,
 * embeddings so far) goes to stderr every --progress seconds: on a terminal one line rewritten
 * in place, otherwise one line each time. */
#include "tool-common.h"

#include <gst/gst.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  const char *output;
  const char *model;
  guint64 interval;         /* ns between embedded video frames */
  int n_threads;
  gboolean video, audio;
  gboolean quiet;
  double progress;          /* seconds between progress lines inside a file; 0 = none */
} IndexJob;

typedef struct {
  const IndexJob *job;
  GstElement *pipeline, *funnel;
  GError *error;            /* the first error of a linking failure */
} FileRun;

/* Adds @desc (a gst-launch fragment ending in an encoder) to the pipeline and links it between
 * the decoder's @pad and a new funnel pad. */
static void
add_branch (FileRun *run, GstPad *pad, const char *desc)
{
  GError *err = NULL;
  GstElement *branch = gst_parse_bin_from_description (desc, TRUE, &err);
  GstPad *sink, *src, *funnel_pad;

  if (!branch) {
    if (!run->error)
      run->error = err;
    else
      g_error_free (err);
    return;
  }
  gst_bin_add (GST_BIN (run->pipeline), branch);
  funnel_pad = gst_element_request_pad_simple (run->funnel, "sink_%u");
  sink = gst_element_get_static_pad (branch, "sink");
  src = gst_element_get_static_pad (branch, "src");
  if (gst_pad_link (src, funnel_pad) != GST_PAD_LINK_OK ||
      gst_pad_link (pad, sink) != GST_PAD_LINK_OK) {
    if (!run->error)
      run->error = g_error_new (GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
          "cannot link the decoder to \"%s\"", desc);
  }
  gst_element_sync_state_with_parent (branch);
  gst_object_unref (sink);
  gst_object_unref (src);
  gst_object_unref (funnel_pad);
}

static void
on_pad_added (GstElement *decoder, GstPad *pad, gpointer user_data)
{
  FileRun *run = user_data;
  GstCaps *caps = gst_pad_get_current_caps (pad);
  const char *name;
  g_autofree char *model = NULL, *desc = NULL;

  if (!caps)
    caps = gst_pad_query_caps (pad, NULL);
  name = gst_structure_get_name (gst_caps_get_structure (caps, 0));
  model = run->job->model ? g_strdup_printf (" model=\"%s\"", run->job->model) : g_strdup ("");
  if (g_str_has_prefix (name, "video/") && run->job->video)
    desc = g_strdup_printf ("queue ! videoconvert ! imagebindvision sync=true interval=%"
        G_GUINT64_FORMAT " n-threads=%d%s", run->job->interval, run->job->n_threads, model);
  else if (g_str_has_prefix (name, "audio/") && run->job->audio)
    desc = g_strdup_printf ("queue ! audioconvert ! imagebindaudio sync=true n-threads=%d%s",
        run->job->n_threads, model);
  else
    desc = g_strdup ("fakesink sync=false async=false");
  gst_caps_unref (caps);
  if (g_str_has_prefix (desc, "fakesink")) {
    GstElement *sink = gst_element_factory_make ("fakesink", NULL);
    GstPad *sinkpad = gst_element_get_static_pad (sink, "sink");
    g_object_set (sink, "sync", FALSE, "async", FALSE, NULL);
    gst_bin_add (GST_BIN (run->pipeline), sink);
    gst_pad_link (pad, sinkpad);
    gst_element_sync_state_with_parent (sink);
    gst_object_unref (sinkpad);
    return;
  }
  add_branch (run, pad, desc);
}

static char *
format_position (gint64 t)
{
  if (t < 0)
    return g_strdup ("?");
  return g_strdup_printf ("%u:%02u:%02u", (guint) (t / (3600 * GST_SECOND)),
      (guint) (t / (60 * GST_SECOND) % 60), (guint) (t / GST_SECOND % 60));
}

/* One progress line for @path: where the pipeline is in the file and what it recorded. */
static void
print_progress (GstElement *pipeline, GstElement *sink, const char *path, gboolean tty)
{
  gint64 pos = -1, dur = -1;
  guint64 entries = 0;
  g_autofree char *p = NULL, *d = NULL, *percent = NULL;

  if (!gst_element_query_position (pipeline, GST_FORMAT_TIME, &pos))
    pos = -1;
  if (!gst_element_query_duration (pipeline, GST_FORMAT_TIME, &dur))
    dur = -1;
  g_object_get (sink, "entries", &entries, NULL);
  p = format_position (pos);
  d = format_position (dur);
  percent = pos >= 0 && dur > 0 ? g_strdup_printf (" (%d%%)", (int) (100.0 * pos / dur)) :
      g_strdup ("");
  g_printerr ("%s%s: %s of %s%s, %" G_GUINT64_FORMAT " embeddings%s", tty ? "\r" : "", path,
      p, d, percent, entries, tty ? "\033[K" : "\n");
}

/* Runs the pipeline of one file to EOS; @n_entries: the number of entries it recorded. */
static gboolean
index_file (const IndexJob *job, const char *path, gboolean append, guint64 *n_entries,
    GError **error)
{
  FileRun run = { job, NULL, NULL, NULL };
  GstElement *decoder, *sink;
  GstBus *bus;
  gboolean ok = FALSE, done = FALSE, progress_shown = FALSE;
  g_autofree char *uri = gst_filename_to_uri (path, error);

  if (!uri)
    return FALSE;
  run.pipeline = gst_pipeline_new ("index");
  decoder = gst_element_factory_make ("uridecodebin", NULL);
  run.funnel = gst_element_factory_make ("funnel", NULL);
  sink = gst_element_factory_make ("imagebindindexsink", NULL);
  if (!decoder || !run.funnel || !sink) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN, "missing element: %s",
        !decoder ? "uridecodebin (gstreamer1.0-plugins-base)" : !run.funnel ?
        "funnel (GStreamer's core elements)" : "imagebindindexsink");
    g_clear_object (&decoder);
    g_clear_object (&run.funnel);
    g_clear_object (&sink);
    gst_object_unref (run.pipeline);
    return FALSE;
  }
  g_object_set (decoder, "uri", uri, NULL);
  g_object_set (sink, "location", job->output, "append", append, "source", path, NULL);
  gst_bin_add_many (GST_BIN (run.pipeline), decoder, run.funnel, sink, NULL);
  gst_element_link (run.funnel, sink);
  g_signal_connect (decoder, "pad-added", G_CALLBACK (on_pad_added), &run);

  bus = gst_element_get_bus (run.pipeline);
  /* a file that cannot be opened fails the state change, with its reason on the bus */
  if (gst_element_set_state (run.pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE &&
      !gst_bus_have_pending (bus))
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_STATE_CHANGE, "%s: cannot start the "
        "pipeline", path);
  else
    while (!done) {
      gboolean show = !job->quiet && job->progress > 0;
      GstMessage *msg = gst_bus_timed_pop_filtered (bus, show ?
          (GstClockTime) (job->progress * GST_SECOND) : GST_CLOCK_TIME_NONE,
          GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
      if (!msg) {
        print_progress (run.pipeline, sink, path, isatty (2));
        progress_shown = TRUE;
        continue;
      }
      if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
        GError *err = NULL;
        g_autofree char *debug = NULL;
        gst_message_parse_error (msg, &err, &debug);
        g_set_error (error, err->domain, err->code, "%s: %s (%s)", path, err->message,
            debug ? debug : "no details");
        g_error_free (err);
      } else {
        ok = TRUE;
      }
      done = TRUE;
      gst_message_unref (msg);
    }
  if (ok && run.error) {
    g_propagate_prefixed_error (error, run.error, "%s: ", path);
    run.error = NULL;
    ok = FALSE;
  }
  g_clear_error (&run.error);
  if (progress_shown && isatty (2))
    g_printerr ("\r\033[K");    /* the file's result line replaces the progress line */
  gst_element_set_state (run.pipeline, GST_STATE_NULL);
  g_object_get (sink, "entries", n_entries, NULL);
  gst_object_unref (bus);
  gst_object_unref (run.pipeline);
  return ok;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Regular files under @path (itself if it is one), sorted, into @files; @in_folder gets TRUE
 * for the files found in a folder. */
static void
collect_files (const char *path, gboolean from_folder, GPtrArray *files, GArray *in_folder)
{
  GDir *dir;
  const char *name;
  GPtrArray *names;

  if (!g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_ptr_array_add (files, g_strdup (path));
    g_array_append_val (in_folder, from_folder);
    return;
  }
  dir = g_dir_open (path, 0, NULL);
  if (!dir)
    return;
  names = g_ptr_array_new_with_free_func (g_free);
  while ((name = g_dir_read_name (dir)))
    if (name[0] != '.')
      g_ptr_array_add (names, g_build_filename (path, name, NULL));
  g_dir_close (dir);
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    collect_files (names->pdata[i], TRUE, files, in_folder);
  g_ptr_array_unref (names);
}

int
main (int argc, char **argv)
{
  g_autofree char *output = NULL, *model = NULL;
  g_auto (GStrv) inputs = NULL;
  gboolean append = FALSE, no_audio = FALSE, no_video = FALSE, quiet = FALSE;
  double interval = 1.0, progress = 2.0;
  int n_threads = 0;
  GOptionEntry entries[] = {
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Index file to write", "FILE" },
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model,
      "Model file (default: $IMAGEBIND_MODEL, else the shipped default model)", "FILE" },
    { "append", 'a', 0, G_OPTION_ARG_NONE, &append,
      "Add to an existing index instead of overwriting it", NULL },
    { "interval", 'i', 0, G_OPTION_ARG_DOUBLE, &interval,
      "Seconds between embedded video frames (default 1; 0 = every frame)", "SECONDS" },
    { "no-audio", 0, 0, G_OPTION_ARG_NONE, &no_audio, "Skip audio streams", NULL },
    { "no-video", 0, 0, G_OPTION_ARG_NONE, &no_video, "Skip video streams and images", NULL },
    { "threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "Threads per inference (default: all cores)", "N" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "Print only errors", NULL },
    { "progress", 0, 0, G_OPTION_ARG_DOUBLE, &progress,
      "Seconds between progress lines inside a file, on stderr (default 2; 0 = none)", "SECONDS" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &inputs, NULL, "FILE|FOLDER..." },
    { NULL }
  };
  g_autoptr (GOptionContext) octx =
      g_option_context_new ("FILE|FOLDER... - record ImageBind embeddings of media files into an index");
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  GError *error = NULL;
  IndexJob job = { 0 };
  guint64 total = 0;
  g_autoptr (GArray) in_folder = g_array_new (FALSE, FALSE, sizeof (gboolean));
  guint failed = 0, ignored = 0;

  g_option_context_add_main_entries (octx, entries, NULL);
  g_option_context_add_group (octx, gst_init_get_option_group ());
  g_option_context_set_description (octx,
      "Images give one vision embedding, videos one per --interval of frames plus one audio\n"
      "embedding per 2 s window, sounds one per 2 s window. Search with imagebind-search.\n");
  if (!g_option_context_parse (octx, &argc, &argv, &error)) {
    g_printerr ("imagebind-index: %s\n", error->message);
    g_error_free (error);
    return 2;
  }
  if (!output || !inputs || !inputs[0]) {
    g_printerr ("imagebind-index: need --output FILE and at least one file or folder; see --help\n");
    return 2;
  }
  if (!(interval >= 0 && interval < 1e9) || !(progress >= 0 && progress < 1e9) ||
      n_threads < 0 || (no_audio && no_video)) {
    g_printerr ("imagebind-index: --interval and --progress must be >= 0 seconds, --threads "
        ">= 0, and not both --no-audio and --no-video\n");
    return 2;
  }
  if (!ib_tool_find_plugin ("imagebindindexsink", &error)) {
    g_printerr ("imagebind-index: %s\n", error->message);
    g_error_free (error);
    return 1;
  }
  job.output = output;
  job.model = model;
  job.interval = (guint64) (interval * GST_SECOND + 0.5);
  job.n_threads = n_threads;
  job.video = !no_video;
  job.audio = !no_audio;
  job.quiet = quiet;
  job.progress = progress;

  for (guint i = 0; inputs[i]; i++)
    collect_files (inputs[i], FALSE, files, in_folder);
  for (guint i = 0; i < files->len; i++) {
    const char *path = files->pdata[i];
    guint64 n = 0;
    /* the index is truncated until the first embedding is recorded (unless --append) */
    gboolean ok = index_file (&job, path, append || total > 0, &n, &error);
    total += n;
    if (!ok && g_array_index (in_folder, gboolean, i) &&
        (g_error_matches (error, GST_STREAM_ERROR, GST_STREAM_ERROR_TYPE_NOT_FOUND) ||
            g_error_matches (error, GST_STREAM_ERROR, GST_STREAM_ERROR_WRONG_TYPE))) {
      /* a folder's other files (notes, thumbnails databases, ...) are not errors */
      ignored++;
      if (!quiet)
        g_print ("%s: not a media file, ignored\n", path);
      g_clear_error (&error);
    } else if (!ok) {
      g_printerr ("imagebind-index: skipped %s\n", error->message);
      g_clear_error (&error);
      failed++;
    } else if (!quiet) {
      g_print ("%s: %" G_GUINT64_FORMAT " embeddings\n", path, n);
    }
  }
  if (!quiet)
    g_print ("%s: %" G_GUINT64_FORMAT " embeddings from %u files (%u skipped, %u not media)\n",
        output, total, files->len - failed - ignored, failed, ignored);
  return failed ? 1 : 0;
}
