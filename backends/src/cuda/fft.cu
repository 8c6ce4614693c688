// Helpers around cuFFT's real 2-D transforms: split interleaved complex output into real and
// imaginary planes, interleave them back (from any views), and scale.

#define FFT(T)                                                                                            \
    extern "C" __global__ void split_##T(const T* __restrict__ c, T* __restrict__ re, T* __restrict__ im, i64 n) { \
        FOR_EACH(i, n) {                                                                                  \
            re[i] = c[2 * i];                                                                             \
            im[i] = c[2 * i + 1];                                                                         \
        }                                                                                                 \
    }                                                                                                     \
    extern "C" __global__ void interleave_##T(const T* __restrict__ re, const T* __restrict__ im, T* __restrict__ c, \
                                              i64 n, Walk w) {                                            \
        FOR_EACH(i, n) {                                                                                  \
            i64 o[2];                                                                                     \
            walk_at_n<2>(w, i, o);                                                                        \
            c[2 * i] = re[o[0]];                                                                          \
            c[2 * i + 1] = im[o[1]];                                                                      \
        }                                                                                                 \
    }                                                                                                     \
    extern "C" __global__ void scale_##T(T* y, i64 n, T s) {                                             \
        FOR_EACH(i, n) { y[i] = y[i] * s; }                                                               \
    }

FFT(f32)
FFT(f64)
