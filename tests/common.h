/* Helpers shared by the tests. */
#ifndef IB_TEST_COMMON_H
#define IB_TEST_COMMON_H

#include <glib.h>
#include <gst/gst.h>
#include <imagebind.h>
#include "npy.h"

/* The conformance directory ($IMAGEBIND_CONFORMANCE_DIR, else the build's default), or NULL
 * when it does not exist; then the caller should g_test_skip() with the returned reason. */
const char *ib_test_conformance_dir (void);
/* Path inside the conformance directory (newly allocated). */
char *ib_test_fixture (const char *relative);
/* Loads a fixture .npy; fails the test if it cannot be read. */
IbNpy *ib_test_load_npy (const char *relative);
/* max|a - b| / max|ref|, the conformance README's relative error. */
double ib_test_rel_error (const float *got, const float *ref, gsize n);
/* Skips the current test (with the reason) when fixtures are absent; returns FALSE then. */
gboolean ib_test_need_conformance (void);
/* Fails the test (naming @what) unless @got (n_got floats) is within @tol x max|golden| of the
 * float32 @golden; logs and returns the relative error. */
double ib_test_assert_close (const char *what, const float *got, gsize n_got, const IbNpy *golden,
    double tol);
/* The same against @n floats at @ref. */
double ib_test_assert_close_data (const char *what, const float *got, const float *ref, gsize n,
    double tol);

/* Collects a runtime's traced stages (an ImageBindTraceFunc with a table from
 * ib_test_capture_new() as user data): stage name -> GArray of float, passes appended. */
GHashTable *ib_test_capture_new (void);
void ib_test_capture_stage (const char *stage, const float *data, guint n, guint rows,
    guint cols, gpointer table);

/* Runs imagebind-embed @tool --model @model --threads 1 @args (NULL-terminated) with the
 * system's GStreamer plugins (which the test environment hides) and a registry of its own;
 * returns the exit status and, if @err_out, its stderr. */
int ib_test_run_embed_tool (const char *tool, const char *model, const char *const *args,
    char **err_out);

/* The text embeddings of @n @prompts (n x *@dim floats, g_free) by the model at @model_path,
 * computed with the runtime directly: what the elements' results are compared with. */
float *ib_test_text_embeddings (const char *model_path, const char *const *prompts, guint n,
    guint *dim);

/* The cosines of @e (@dim floats) with the @n rows of @t (n x dim), and the softmax of their
 * dot products (the logits: the text embeddings carry the logit scale), in double precision:
 * the reference for the scores imagebindmatch gives. */
void ib_test_reference_scores (const float *e, const float *t, guint dim, guint n,
    double *cosine, double *prob);

/* Loads the model file @path (asserting it loads) into *@model and returns a context of one
 * thread on it: the tests compare elements with the runtime run directly, single-threaded so
 * that the two give the same bits whatever the machine. */
ImageBindContext *ib_test_open_model (const char *path, ImageBindModel **model);

/* -- GStreamer -- */

/* Skips the current test when no model file was given (@path NULL); returns FALSE then. */
gboolean ib_test_need_model (const char *path);

/* Initialises GStreamer with a registry of the test's own, @registry_name next to the test
 * program (argv[0]), and scans @plugins_dir into it when it is set: GStreamer's own plugins
 * (test sources, converters, decoders), which the test environment hides. Under
 * AddressSanitizer plugins are scanned in this process (the uninstrumented
 * gst-plugin-scanner cannot load this build's plugin). */
void ib_test_gst_init (int *argc, char ***argv, const char *registry_name,
    const char *plugins_dir);

/* Sets the "prompts" property (a GstValueArray of strings) of @element to @n @prompts. */
void ib_test_set_prompts (GstElement *element, const char *const *prompts, guint n);

/* Pops the error message that must be on @bus; returns its "message (debug)" text (g_free). */
char *ib_test_pop_error_text (GstBus *bus);

/* Called for each element message and warning of a pipeline run by ib_test_run_to_eos(). */
typedef void (*IbTestMessageFunc) (GstMessage *msg, gpointer user_data);

/* Sets @pipeline PLAYING and reads its bus until EOS (60 s at most per message), giving every
 * element message and warning to @func (may be NULL); an error fails the test. Leaves
 * @pipeline in NULL. */
void ib_test_run_to_eos (GstElement *pipeline, IbTestMessageFunc func, gpointer user_data);
/* The same for a gst-launch @description, which must parse. */
void ib_test_run_launch (const char *description, IbTestMessageFunc func, gpointer user_data);

#endif
