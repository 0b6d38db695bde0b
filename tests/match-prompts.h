/* imagebindmatch embeds prompts changed while PAUSED or PLAYING on a thread of its own and
 * posts `imagebind-prompts` messages: what the tests wait for before pushing a buffer that
 * must see the new prompts. */
#ifndef IB_TEST_MATCH_PROMPTS_H
#define IB_TEST_MATCH_PROMPTS_H

#include <gst/gst.h>

/* The next `imagebind-prompts` message whose state is @state, or with @state NULL the next
 * WARNING (a set refused while PLAYING); other element messages are dropped, any other
 * warning or error fails. The five minutes are a guard against a hang, not a timing. */
static inline GstMessage *
wait_prompts_message (GstBus * bus, const gchar * state)
{
  for (;;) {
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, 300 * GST_SECOND,
        GST_MESSAGE_ELEMENT | GST_MESSAGE_WARNING | GST_MESSAGE_ERROR);
    const GstStructure *s;

    g_assert_nonnull (msg);
    s = gst_message_get_structure (msg);
    if (!state && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_WARNING)
      return msg;
    g_assert_cmpstr (GST_MESSAGE_TYPE_NAME (msg), ==, "element");
    if (state && gst_structure_has_name (s, "imagebind-prompts") &&
        g_strcmp0 (gst_structure_get_string (s, "state"), state) == 0)
      return msg;
    gst_message_unref (msg);
  }
}

/* Waits for the new prompts (@count queries) to be ready. */
static inline void
wait_prompts_ready (GstBus * bus, guint count)
{
  GstMessage *msg = wait_prompts_message (bus, "ready");
  guint n = 0;

  g_assert_true (gst_structure_get_uint (gst_message_get_structure (msg), "count", &n));
  g_assert_cmpuint (n, ==, count);
  gst_message_unref (msg);
}

#endif
