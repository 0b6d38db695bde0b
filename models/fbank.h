/* Kaldi log-mel filterbank as torchaudio.compliance.kaldi.fbank computes it with the options
 * ImageBind passes (../shared/spec/ARCHITECTURE.md §8 step 4c). Internal to libimagebind.
 *
 * The window, the mel filterbank and the FFT plan are built once by ib_fbank_new(); an IbFbank
 * also owns its scratch memory, so one instance serves one thread at a time. */
#ifndef IB_FBANK_H
#define IB_FBANK_H

#include <glib.h>

G_BEGIN_DECLS

typedef struct _IbFbank IbFbank;

/* 25 ms frames, 10 ms shift, @num_mel_bins triangles between 20 Hz and the Nyquist
 * frequency. NULL if the rate is too low to give a usable frame or mel range. */
IbFbank *ib_fbank_new (guint sample_rate, guint num_mel_bins);
void ib_fbank_free (IbFbank *fbank);

/* Samples per frame (400 at 16 kHz): shorter input gives no frame. */
guint ib_fbank_frame_length (const IbFbank *fbank);
/* Frames of @n samples with snip_edges: 1 + (n - frame_length) / shift, 0 when n is shorter
 * than one frame. */
gsize ib_fbank_num_frames (const IbFbank *fbank, gsize n);

/* Log-mel energies of @samples, transposed to (num_mel_bins, target_len) row-major: column t
 * is frame t; frames beyond target_len are not computed, missing frames are zeros (the
 * official right padding). @n must give at least one frame. */
void ib_fbank_compute (IbFbank *fbank, const float *samples, gsize n, guint target_len,
    float *out);

G_END_DECLS

#endif
