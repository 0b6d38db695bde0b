/* Media files to the model's input tensors: decoding through GStreamer (gstimagebindmedia.h),
 * then the runtime's front ends (models/imagebind-frontend.h), with the model's input
 * geometry. Used by imagebindmatch, the command-line tools and the tests, so that what a tool
 * embeds is what the elements embed. Not installed: a static library of gst/, beside
 * gstimagebindmedia.h. */
#ifndef __GST_IMAGE_BIND_MEDIA_TENSOR_H__
#define __GST_IMAGE_BIND_MEDIA_TENSOR_H__

#include "imagebind.h"
#include "imagebind-frontend.h"

G_BEGIN_DECLS

typedef struct {
  ImageBindDepthFormat depth_format;   /* for 16-bit depth images; 8-bit ones are disparity */
} GstImageBindMediaOptions;

/* The official video loader's clip sampling (data.py: 5 clips of 2 s, 3 spatial crops each). */
#define GST_IMAGE_BIND_MEDIA_VIDEO_CLIPS 5
#define GST_IMAGE_BIND_MEDIA_VIDEO_CLIP_SECONDS 2.0
#define GST_IMAGE_BIND_MEDIA_VIDEO_CROPS 3

/* Decodes @path and returns one sample of @modality as a newly allocated tensor (g_free) in
 * the layout imagebind_embed() takes, batch 1 included, shape in @shape (up to 6 dims):
 *   vision   an image                                  -> (1, 3, size, size)
 *            a video: the official video loader, 5 clips x 3 crops of 2 frames
 *                                                      -> (1, 15, 3, 2, size, size)
 *            (a model with video_frames 1, CLIP: each frame alone -> (1, 30, 3, 1, size, size))
 *            size, mean and std are the model's
 *   audio    any audio (resampled to the model's rate) -> (1, clips, 1, mel, frames)
 *   depth    a 16-bit (millimetres, or disparity) or 8-bit (disparity) grey image
 *   thermal  an 8- or 16-bit grey image                -> (1, 1, size, size)
 *   imu      .csv (6 columns ax,ay,az,gx,gy,gz or 7 with a leading time column; a header line
 *            is skipped) or raw little-endian float32 interleaved 6-channel samples
 *                                                      -> (1, 6, 2000)
 * Text is not a media file. */
float *gst_image_bind_media_load_tensor (const ImageBindModel *model,
    ImageBindModality modality, const GstImageBindMediaOptions *options, const char *path,
    gint64 *shape, guint *n_dims, GError **error);

/* Embeds one media file: gst_image_bind_media_load_tensor(), then imagebind_embed() with
 * @ctx's model. @out receives out_dim floats. */
gboolean gst_image_bind_media_embed (ImageBindContext *ctx, const ImageBindModel *model,
    ImageBindModality modality, const GstImageBindMediaOptions *options, const char *path,
    float *out, GError **error);

G_END_DECLS

#endif
