/* Pad caps of the encoders, limited to what the front ends handle (imagebind-frontend.h):
 * caps beyond would be accepted only for the first buffer to fail, and a caps query shows
 * upstream (videoscale, audioresample) what to convert to. */
#ifndef __GST_IMAGE_BIND_CAPS_H__
#define __GST_IMAGE_BIND_CAPS_H__

#include <gst/video/video.h>
#include <imagebind-frontend.h>

#define GST_IMAGE_BIND_VIDEO_CAPS(formats) "video/x-raw, format = (string) " formats ", " \
    "width = (int) [ 1, " G_STRINGIFY (IMAGEBIND_IMAGE_MAX_SIDE) " ], " \
    "height = (int) [ 1, " G_STRINGIFY (IMAGEBIND_IMAGE_MAX_SIDE) " ], " \
    "framerate = " GST_VIDEO_FPS_RANGE

/* Input audio is resampled to the model's rate: any rate the model could have. */
#define GST_IMAGE_BIND_AUDIO_RATES \
    "rate = (int) [ 1, " G_STRINGIFY (IMAGEBIND_AUDIO_MAX_SAMPLE_RATE) " ]"

#endif
