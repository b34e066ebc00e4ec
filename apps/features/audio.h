/*
 * audio.h -- the domain code of mpx-features: a RIFF/WAVE decoder and a
 * fixed set of 64 spectral features per audio file (log mel band energies,
 * their mean and standard deviation over frames), computed with FFTW.
 *
 * Pure C11 plus FFTW3 (double precision); no MPI, no mpx. The numpy
 * reference in tests/py/features_ref.py implements the same specification
 * and must agree to about 1e-4.
 *
 * WAV decoding (mpxf_wav_read)
 *   - Regular files only: the path is opened without blocking and anything
 *     else (a FIFO, a device, a directory) fails at once with "not a
 *     regular file (FIFO)" and the like, instead of waiting for a writer.
 *   - RIFF/WAVE only; the RIFF size field is ignored. Chunks are walked in
 *     order (an odd-sized chunk is followed by one pad byte); unknown chunks
 *     are skipped; the first "fmt " and the first "data" chunk are used.
 *   - Format tags 1 (integer PCM) and 3 (IEEE float), also inside
 *     WAVE_FORMAT_EXTENSIBLE (0xFFFE, the tag is the first two bytes of the
 *     sub-format GUID). Integer samples occupy ceil(bits/8) bytes (1 to 4),
 *     little-endian; 8-bit is unsigned. A sample s of a B-byte container
 *     becomes s / 2^(8B-1) (8-bit: (s-128)/128), so a 16-bit 16384 is 0.5.
 *     Float samples are 4 bytes (float32) or 8 bytes (float64).
 *   - Every frame of C channels is mixed down to one sample, the mean of
 *     the C values computed in double and rounded to float.
 *   - A data chunk whose size field runs past the end of the file (streaming
 *     writers put 0xFFFFFFFF or a guess there) is clamped to the bytes that
 *     are present; a partial last frame is dropped.
 *
 * Features (mpxf_features), for samples x[0..n-1] at rate R, in double:
 *   - Frames of N = 512 samples, hop 256. If n < 512 there is one frame,
 *     x zero-padded to 512; otherwise nframes = 1 + (n - 512) / 256
 *     (integer division; trailing samples that do not fill a frame are
 *     dropped). Frame t covers x[256 t .. 256 t + 511].
 *   - Periodic Hann window w[i] = 0.5 - 0.5 cos(2 pi i / 512).
 *   - Power spectrum P[b] = |sum_i w[i] x[i] e^(-2 pi j i b / 512)|^2 for
 *     the 257 bins b = 0..256 (FFTW r2c, unnormalised), bin frequency
 *     f_b = b R / 512 Hz.
 *   - 32 triangular mel filters. mel(f) = 2595 log10(1 + f / 700) and
 *     hz(m) = 700 (10^(m / 2595) - 1). 34 points m_j = mel(0) + j (mel(R/2)
 *     - mel(0)) / 33, j = 0..33, h_j = hz(m_j). Filter k = 0..31 has
 *     weight W_k(f) = max(0, min((f - h_k) / (h_{k+1} - h_k),
 *                                (h_{k+2} - f) / (h_{k+2} - h_{k+1})))
 *     evaluated at f = f_b (continuous, not rounded to bins).
 *   - Band energy E_k(t) = sum_b W_k(f_b) P_t[b];
 *     log band L_k(t) = log10(E_k(t) + 1e-10).
 *   - out[k] = mean over frames of L_k, out[32 + k] = population standard
 *     deviation (divide by nframes; two-pass: sqrt(mean((L - mean)^2))).
 *     Both are rounded to float only at the end.
 *   - Every sample must be finite (NaN/Inf is an error).
 */
#ifndef MPXF_AUDIO_H
#define MPXF_AUDIO_H

#include <stddef.h>
#include <stdint.h>

/* Number of features per file: 32 band means, then 32 band deviations. */
#define MPXF_NFEAT 64
/* Number of mel bands. */
#define MPXF_NMEL 32
/* Frame length and hop, in samples. */
#define MPXF_FRAME 512
#define MPXF_HOP 256

/* Decodes the WAV file at path into mono float samples in [-1, 1] (float
 * files may exceed that). On success returns 0, *samples is a malloc'ed
 * array of *n >= 1 samples (the caller frees it) and *rate is the sample
 * rate in Hz. On failure returns -1, leaves *samples NULL and writes a
 * message (without the path) into err[errlen], such as "not a RIFF/WAVE
 * file", "truncated fmt chunk", "unsupported format 85 (only PCM and
 * float)", "no data chunk", "0 samples", "not a regular file (FIFO)" or
 * "cannot open: No such file or directory". err may be NULL when errlen is
 * 0. */
int mpxf_wav_read(const char *path, float **samples, size_t *n, int *rate,
                  char *err, size_t errlen);

/* Computes the 64 features specified above for x[0..n-1] at rate Hz into
 * out. Returns 0, or -1 with a message in err (n == 0, rate <= 0, a
 * non-finite sample, out of memory, FFTW failure).
 *
 * Not thread-safe: the FFTW plan and its buffers are created lazily on the
 * first call and reused for the life of the process, so only one thread
 * per process may call mpxf_features / mpxf_file_features. */
int mpxf_features(const float *x, size_t n, int rate, float out[MPXF_NFEAT],
                  char *err, size_t errlen);

/* mpxf_wav_read followed by mpxf_features; the same return convention and
 * the same thread-safety restriction. */
int mpxf_file_features(const char *path, float out[MPXF_NFEAT], char *err,
                       size_t errlen);

/* The label of a data file: the leading decimal digits of the basename of
 * path when they are followed by '_' ("/d/7_m3_150.wav" gives 7,
 * "12_x.wav" gives 12); -1 when the basename does not start with at least
 * one digit and then '_', or when the number exceeds INT32_MAX. */
int32_t mpxf_target_from_path(const char *path);

/* Releases the FFTW plan and buffers (optional, e.g. before exit so that
 * leak checkers stay quiet); a later mpxf_features call recreates them.
 * Same thread-safety restriction as mpxf_features. */
void mpxf_cleanup(void);

#endif
