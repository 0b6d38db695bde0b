/* The front ends (numeric pre-processing): raw media to the tensors the encoders take, as the
 * official loaders make them (../shared/spec/ARCHITECTURE.md §7, §8) and the project's
 * documented mappings for depth, thermal and IMU (README, "Sensor mappings").
 *
 * All outputs are float32, C order, written to caller-provided memory whose size the
 * *_tensor_size() functions give. All functions are thread-safe and validate their input:
 * bad sizes, empty or too short input give IMAGEBIND_ERROR_INPUT.
 */
#ifndef IMAGEBIND_FRONTEND_H
#define IMAGEBIND_FRONTEND_H

#include <glib.h>
#include "imagebind.h"

G_BEGIN_DECLS

/* ---- images (vision) ---- */

typedef struct {
  guint size;          /* 224: short side after resize and crop side */
  float mean[3];       /* CLIP: 0.48145466, 0.4578275, 0.40821073 */
  float std[3];        /* CLIP: 0.26862954, 0.26130258, 0.27577711 */
} ImageBindImageParams;

IMAGEBIND_API
ImageBindImageParams imagebind_image_default_params (void);
/* The model's image size, mean and std (the file's imagebind.vision.* keys): what every image
 * front end must use for that model. */
IMAGEBIND_API
ImageBindImageParams imagebind_image_params_from_model (const ImageBindModel *model);

/* Largest accepted width or height (input, output, tensor size), so that a corrupt or hostile
 * size is refused instead of allocated. */
#define IMAGEBIND_IMAGE_MAX_SIDE 32768

/* Largest input tensor of one sample (one image, clip, audio window or IMU window) that the
 * front ends make: 2^26 floats, 256 MB. imagebind_model_load() refuses a model file whose
 * geometry keys (image_size x video_frames, mel bins x target_len x clips, IMU samples) would
 * need more, so that a hostile file cannot make an element allocate gigabytes per frame. */
#define IMAGEBIND_MAX_INPUT_FLOATS (1 << 26)
/* Most frames per video clip (the official model: 2). */
#define IMAGEBIND_VIDEO_MAX_FRAMES 64

/* Pillow's 8-bit two-pass bicubic resize (bit-exact with Pillow 9.4): packed RGB in and out. */
IMAGEBIND_API
gboolean imagebind_image_resize_bicubic (const guint8 *rgb, guint width, guint height, gsize stride,
    guint8 *out, guint out_width, guint out_height, GError **error);

/* Packed 8-bit RGB (stride in bytes) to (3, size, size): short side to size, centre crop
 * (half-to-even offsets), CLIP normalisation. */
IMAGEBIND_API
gboolean imagebind_image_to_tensor (const ImageBindImageParams *params, const guint8 *rgb,
    guint width, guint height, gsize stride, float *out, GError **error);

/* ---- video ---- */

/* The official video loader's spatial path (load_and_transform_video_data, spec §7) for the
 * frames of one clip (the official clips have 2: the first and last decoded frame): each
 * packed 8-bit RGB frame becomes x / 255 in float32, its short side is scaled to params->size
 * with bilinear interpolation (PyTorch, align_corners False, no antialias; long side
 * floor(long / short * size)), CLIP-normalised, and cropped to size x size at @crop_index:
 * 0 = start, 1 = centre (offset ceil((long - size) / 2)), 2 = end of the long side (the
 * official loader makes all three: clips x 3 crops). Writes (3, n_frames, size, size), the
 * part of a (S, 3, T, size, size) clip tensor for one clip.
 * Note: the plugin's live video path does not use this; it embeds single frames with
 * imagebind_image_to_tensor (the model repeats an image to T = 2 frames). */
IMAGEBIND_API
gboolean imagebind_video_clip_to_tensor (const ImageBindImageParams *params,
    const guint8 *const *frames, guint n_frames, guint width, guint height, gsize stride,
    guint crop_index, float *out, GError **error);

/* ---- audio ---- */

/* What the audio front end accepts (imagebind_audio_params_check()); a model file whose audio
 * keys are outside is refused by imagebind_model_load(). Far above any real model (16 kHz,
 * 2 s, 3 clips, 128 x 204), and small enough that a window of input audio (at most
 * IMAGEBIND_AUDIO_MAX_CLIP_SECONDS at IMAGEBIND_AUDIO_MAX_SAMPLE_RATE, 184 MB as float) and
 * the tensor (IMAGEBIND_MAX_INPUT_FLOATS) can be held in memory. */
#define IMAGEBIND_AUDIO_MIN_SAMPLE_RATE 100
#define IMAGEBIND_AUDIO_MAX_SAMPLE_RATE 768000
#define IMAGEBIND_AUDIO_MAX_CLIPS 64
#define IMAGEBIND_AUDIO_MAX_MEL_BINS 1024
#define IMAGEBIND_AUDIO_MAX_TARGET_LEN 65536
#define IMAGEBIND_AUDIO_MAX_CLIP_SECONDS 60.0
#define IMAGEBIND_AUDIO_MAX_CLIP_SAMPLES (1 << 24)

typedef struct {
  guint sample_rate;     /* 16000 */
  float clip_duration;   /* 2.0 s */
  guint clips;           /* 3 */
  guint num_mel_bins;    /* 128 */
  guint target_len;      /* 204 frames */
  float mean;            /* -4.268 */
  float std;             /* 9.138 */
} ImageBindAudioParams;

IMAGEBIND_API
ImageBindAudioParams imagebind_audio_default_params (void);
/* From a model's input geometry. */
IMAGEBIND_API
ImageBindAudioParams imagebind_audio_params_from_model (const ImageBindModel *model);

/* Resamples planar float audio (channels x n_in) to @out_rate with GStreamer's audio resampler;
 * returns the number of output frames per channel, writes a newly allocated planar buffer
 * (g_free) or NULL when there is no output. Like torchaudio.functional.resample, which the
 * official loader uses: each channel independently, output k centred on input k * in / out
 * (the resampler's latency is flushed with zeros), ceil (n_in * out / in) frames. The filter
 * is a Kaiser-windowed sinc chosen to come close to torchaudio's (models/AUDIO.md gives the
 * measured difference). 0 and NULL for invalid arguments (no channels, zero rates, rates
 * above 1 MHz). */
IMAGEBIND_API
gsize imagebind_audio_resample (const float *planar, guint channels, gsize n_in, guint in_rate,
    guint out_rate, float **out_planar);

/* Clip k's sample range [start, end) in a waveform of n samples, with the official arithmetic
 * (pytorchvideo's clip sampler over a duration n / rate rounded to a double, spec §8 step 3).
 * end is cut at n: audio shorter than a clip gives [0, n) for every clip. */
IMAGEBIND_API
void imagebind_audio_clip_bounds (const ImageBindAudioParams *params, gsize n, guint k,
    gsize *start, gsize *end);

/* Planar float waveform at params->sample_rate (channels x n) to (clips, 1, mel, target_len):
 * clip placement, in-place mean removal (on a private copy), Kaldi fbank of channel 0,
 * padding, normalisation. Fails on audio shorter than one 25 ms frame. */
IMAGEBIND_API
gboolean imagebind_audio_to_tensor (const ImageBindAudioParams *params, const float *planar,
    guint channels, gsize n, float *out, GError **error);

/* One clip's raw log-mel fbank (mel, target_len), before normalisation (for tests): the Kaldi
 * fbank of @samples as given (mono; the clip mean is not subtracted here, the per-frame DC
 * removal makes it irrelevant up to rounding), zero-padded or cut to target_len frames. */
IMAGEBIND_API
gboolean imagebind_audio_fbank (const ImageBindAudioParams *params, const float *samples, gsize n,
    float *out, GError **error);

/* Whether the audio front end accepts @params: the ranges above, clip_duration * sample_rate
 * from 1 to IMAGEBIND_AUDIO_MAX_CLIP_SAMPLES samples, clips x num_mel_bins x target_len at
 * most IMAGEBIND_MAX_INPUT_FLOATS, finite mean and std, std not 0. IMAGEBIND_ERROR_INPUT
 * naming the parameter otherwise. */
IMAGEBIND_API
gboolean imagebind_audio_params_check (const ImageBindAudioParams *params, GError **error);

/* Floats in one audio tensor: clips x 1 x num_mel_bins x target_len. 0 for invalid params. */
IMAGEBIND_API
gsize imagebind_audio_tensor_size (const ImageBindAudioParams *params);

/* A reusable audio front end: the Hann window, the mel filterbank and the FFT plan (GstFFT) for
 * one set of parameters, built once, plus scratch memory. imagebind_audio_to_tensor() and
 * imagebind_audio_fbank() build one per call; a caller that converts many windows (the audio
 * element) keeps one. Not thread-safe: one front end per thread.
 *
 * Input errors (IMAGEBIND_ERROR_INPUT), for all the audio functions: no channels, a clip
 * shorter than one frame (imagebind_audio_frontend_min_samples(), 400 at 16 kHz: the
 * official code divides by zero there), and NaN or infinite samples anywhere in the input
 * (the message names channel and sample index). Silence is fine: the log is floored at
 * FLT_EPSILON as in the official code. */
typedef struct _ImageBindAudioFrontend ImageBindAudioFrontend;

/* NULL and IMAGEBIND_ERROR_INPUT for unusable parameters. */
IMAGEBIND_API
ImageBindAudioFrontend *imagebind_audio_frontend_new (const ImageBindAudioParams *params,
    GError **error);
IMAGEBIND_API
void imagebind_audio_frontend_free (ImageBindAudioFrontend *frontend);
IMAGEBIND_API
const ImageBindAudioParams *imagebind_audio_frontend_get_params (
    const ImageBindAudioFrontend *frontend);
/* Shortest usable input: one 25 ms frame. */
IMAGEBIND_API
gsize imagebind_audio_frontend_min_samples (const ImageBindAudioFrontend *frontend);
/* As imagebind_audio_to_tensor() / imagebind_audio_fbank() with this front end's params. */
IMAGEBIND_API
gboolean imagebind_audio_frontend_to_tensor (ImageBindAudioFrontend *frontend,
    const float *planar, guint channels, gsize n, float *out, GError **error);
IMAGEBIND_API
gboolean imagebind_audio_frontend_fbank (ImageBindAudioFrontend *frontend, const float *samples,
    gsize n, float *out, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ImageBindAudioFrontend, imagebind_audio_frontend_free)

/* ---- depth, thermal, IMU: the project's mappings (README, "Sensor mappings") ---- */

typedef enum {
  IMAGEBIND_DEPTH_MILLIMETRES,   /* GRAY16: depth in mm, 0 = invalid */
  IMAGEBIND_DEPTH_DISPARITY,     /* GRAY8 / GRAY16: disparity, larger = nearer */
} ImageBindDepthFormat;

/* One grey plane (8 or 16 bits per pixel, native endian for 16; stride in bytes, even for 16)
 * to (1, size, size), geometry as images (short side, centre crop, bicubic).
 * Depth: Omnivore's disparity in DepthNorm units, no mean/std: millimetres z (0 = invalid ->
 * far) give clamp(38.914 / clamp(8 z / 1000, 0.01, 50), 0.01, 75) / 75; a disparity image's full
 * scale (255 / 65535) is 1.0. Thermal: white-hot grey as x / 255, no mean/std; 16-bit frames
 * are first stretched from their min..max to 0..255. Why: models/SENSORS.md. */
IMAGEBIND_API
gboolean imagebind_depth_to_tensor (guint size, ImageBindDepthFormat format, const void *pixels,
    guint bits, guint width, guint height, gsize stride, float *out, GError **error);
IMAGEBIND_API
gboolean imagebind_thermal_to_tensor (guint size, const void *pixels, guint bits, guint width,
    guint height, gsize stride, float *out, GError **error);

/* Interleaved 6-channel samples (ax, ay, az in m/s^2, gx, gy, gz in rad/s) at any rate, any
 * count >= 2, to (6, num_samples) by linear resampling over the window (endpoints aligned),
 * values unscaled. The model's window is 5 s as 2000 samples. NaN or infinity is refused. */
IMAGEBIND_API
gboolean imagebind_imu_to_tensor (guint num_samples, const float *interleaved, gsize n_frames,
    float *out, GError **error);

G_END_DECLS

#endif
