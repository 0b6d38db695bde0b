/* Media files to the model's input tensors, for the command-line tools: decoding through
 * GStreamer (tools/media.h), then the runtime's front ends (models/imagebind-preprocess.h),
 * with the model's input geometry. */
#ifndef IB_MEDIA_TENSOR_H
#define IB_MEDIA_TENSOR_H

#include "imagebind.h"
#include "imagebind-preprocess.h"

G_BEGIN_DECLS

typedef struct {
  ImageBindDepthFormat depth_format;   /* for 16-bit depth images; 8-bit ones are disparity */
} IbMediaTensorOptions;

/* Shape of one sample's tensor (without the batch axis) and its number of floats. */
gsize ib_media_tensor_shape (const ImageBindInputGeometry *geometry, ImageBindModality modality,
    gint64 *shape, guint *n_dims);

/* Decodes @path and writes one sample of @modality to @out (ib_media_tensor_shape() floats):
 *   vision   an image, or the first frame of a video     -> (3, size, size)
 *   audio    any audio (resampled to the model's rate)    -> (clips, 1, mel, frames)
 *   depth    a 16-bit (millimetres, or disparity) or 8-bit (disparity) grey image
 *   thermal  an 8- or 16-bit grey image                   -> (1, size, size)
 *   imu      .csv (6 columns ax,ay,az,gx,gy,gz or 7 with a leading time column; a header line
 *            is skipped) or raw little-endian float32 interleaved 6-channel samples -> (6, 2000)
 * Text is not a media file. */
gboolean ib_media_to_tensor (const ImageBindInputGeometry *geometry, ImageBindModality modality,
    const IbMediaTensorOptions *options, const char *path, float *out, GError **error);

G_END_DECLS

#endif
