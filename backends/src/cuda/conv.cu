// 2-D convolution helpers: im2col / col2im around cuBLAS GEMMs, and direct depthwise kernels.
// Inputs are contiguous NCHW; `Geom` carries every size (as the CPU backend's `Geom`).

struct Geom {
    i64 n, c, h, w, o, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, g;
};

// Unfolds images `n0 .. n0 + nb` of `x` into columns: element (b, row, p) with row = c*kH*kW +
// ki*kW + kj and p = oy*oW + ox lands at col[b * col_bs + row * col_rs + p]; padding reads 0.
template <typename T>
__device__ void im2col(const T* x, T* col, Geom g, i64 n0, i64 nb, i64 col_bs, i64 col_rs) {
    const i64 kk = g.kh * g.kw, ohw = g.oh * g.ow, rows = g.c * kk;
    const i64 total = nb * rows * ohw;
    FOR_EACH(i, total) {
        const i64 p = i % ohw, row = (i / ohw) % rows, b = i / (ohw * rows);
        const i64 c = row / kk, ki = (row % kk) / g.kw, kj = row % g.kw;
        const i64 oy = p / g.ow, ox = p % g.ow;
        const i64 iy = oy * g.sh + ki * g.dh - g.ph, ix = ox * g.sw + kj * g.dw - g.pw;
        T v = 0;
        if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) v = x[(((n0 + b) * g.c + c) * g.h + iy) * g.w + ix];
        col[b * col_bs + row * col_rs + p] = v;
    }
}

// The adjoint of im2col for images n0 .. n0 + nb: each input element sums the columns that read
// it (a gather, so no atomics and a fixed summation order).
template <typename T>
__device__ void col2im(const T* col, T* dx, Geom g, i64 n0, i64 nb, i64 col_bs, i64 col_rs) {
    const i64 kk = g.kh * g.kw;
    const i64 total = nb * g.c * g.h * g.w;
    FOR_EACH(i, total) {
        const i64 ix = i % g.w, iy = (i / g.w) % g.h, c = (i / (g.w * g.h)) % g.c, b = i / (g.w * g.h * g.c);
        T acc = 0;
        for (i64 ki = 0; ki < g.kh; ++ki) {
            const i64 ty = iy + g.ph - ki * g.dh;
            if (ty < 0 || ty % g.sh != 0) continue;
            const i64 oy = ty / g.sh;
            if (oy >= g.oh) continue;
            for (i64 kj = 0; kj < g.kw; ++kj) {
                const i64 tx = ix + g.pw - kj * g.dw;
                if (tx < 0 || tx % g.sw != 0) continue;
                const i64 ox = tx / g.sw;
                if (ox >= g.ow) continue;
                acc += col[b * col_bs + (c * kk + ki * g.kw + kj) * col_rs + oy * g.ow + ox];
            }
        }
        dx[(n0 + b) * g.c * g.h * g.w + (i % (g.c * g.h * g.w))] = acc;
    }
}

// Depthwise forward (groups == C == O): one thread per output element.
template <typename T> __device__ void depthwise_forward(const T* x, const T* w, T* y, Geom g) {
    const i64 total = g.n * g.c * g.oh * g.ow;
    FOR_EACH(i, total) {
        const i64 ox = i % g.ow, oy = (i / g.ow) % g.oh, plane = i / (g.ow * g.oh), c = plane % g.c;
        const T* xp = x + plane * g.h * g.w;
        const T* k = w + c * g.kh * g.kw;
        T acc = 0;
        for (i64 ki = 0; ki < g.kh; ++ki) {
            const i64 iy = oy * g.sh + ki * g.dh - g.ph;
            if (iy < 0 || iy >= g.h) continue;
            for (i64 kj = 0; kj < g.kw; ++kj) {
                const i64 ix = ox * g.sw + kj * g.dw - g.pw;
                if (ix >= 0 && ix < g.w) acc += k[ki * g.kw + kj] * xp[iy * g.w + ix];
            }
        }
        y[i] = acc;
    }
}

// Depthwise input gradient: one thread per input element, gathering the outputs it fed.
template <typename T> __device__ void depthwise_backward_data(const T* gy, const T* w, T* dx, Geom g) {
    const i64 total = g.n * g.c * g.h * g.w;
    FOR_EACH(i, total) {
        const i64 ix = i % g.w, iy = (i / g.w) % g.h, plane = i / (g.w * g.h), c = plane % g.c;
        const T* gp = gy + plane * g.oh * g.ow;
        const T* k = w + c * g.kh * g.kw;
        T acc = 0;
        for (i64 ki = 0; ki < g.kh; ++ki) {
            const i64 ty = iy + g.ph - ki * g.dh;
            if (ty < 0 || ty % g.sh != 0 || ty / g.sh >= g.oh) continue;
            for (i64 kj = 0; kj < g.kw; ++kj) {
                const i64 tx = ix + g.pw - kj * g.dw;
                if (tx < 0 || tx % g.sw != 0 || tx / g.sw >= g.ow) continue;
                acc += k[ki * g.kw + kj] * gp[(ty / g.sh) * g.ow + tx / g.sw];
            }
        }
        dx[i] = acc;
    }
}

#define CTHREADS 256

// Depthwise weight gradient: one block per filter tap (c, ki, kj), reducing over images and
// output positions.
template <typename T> __device__ void depthwise_backward_weight(const T* x, const T* gy, T* dw, Geom g) {
    __shared__ T sh[CTHREADS];
    const i64 kk = g.kh * g.kw, taps = g.c * kk, ohw = g.oh * g.ow;
    for (i64 t = blockIdx.x; t < taps; t += gridDim.x) {
        const i64 c = t / kk, ki = (t % kk) / g.kw, kj = t % g.kw;
        T acc = 0;
        for (i64 j = threadIdx.x; j < g.n * ohw; j += CTHREADS) {
            const i64 b = j / ohw, oy = (j % ohw) / g.ow, ox = j % g.ow;
            const i64 iy = oy * g.sh + ki * g.dh - g.ph, ix = ox * g.sw + kj * g.dw - g.pw;
            if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
            const i64 plane = b * g.c + c;
            acc += x[(plane * g.h + iy) * g.w + ix] * gy[plane * ohw + j % ohw];
        }
        sh[threadIdx.x] = acc;
        __syncthreads();
        for (int s = CTHREADS / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
            __syncthreads();
        }
        if (threadIdx.x == 0) dw[t] = sh[0];
        __syncthreads();
    }
}

#define CONV(T)                                                                                                \
    extern "C" __global__ void im2col_##T(const T* __restrict__ x, T* __restrict__ col, Geom g, i64 n0, i64 nb, \
                                          i64 col_bs, i64 col_rs) {                                          \
        im2col<T>(x, col, g, n0, nb, col_bs, col_rs);                                                        \
    }
#define CONV_FLOAT(T)                                                                                          \
    CONV(T)                                                                                                    \
    extern "C" __global__ void col2im_##T(const T* __restrict__ col, T* __restrict__ dx, Geom g, i64 n0, i64 nb, \
                                          i64 col_bs, i64 col_rs) {                                          \
        col2im<T>(col, dx, g, n0, nb, col_bs, col_rs);                                                       \
    }                                                                                                          \
    extern "C" __global__ void depthwise_forward_##T(const T* __restrict__ x, const T* __restrict__ w,         \
                                                     T* __restrict__ y, Geom g) {                            \
        depthwise_forward<T>(x, w, y, g);                                                                     \
    }                                                                                                          \
    extern "C" __global__ void depthwise_backward_data_##T(const T* __restrict__ gy, const T* __restrict__ w,  \
                                                           T* __restrict__ dx, Geom g) {                     \
        depthwise_backward_data<T>(gy, w, dx, g);                                                             \
    }                                                                                                          \
    extern "C" __global__ void depthwise_backward_weight_##T(const T* __restrict__ x, const T* __restrict__ gy, \
                                                             T* __restrict__ dw, Geom g) {                   \
        depthwise_backward_weight<T>(x, gy, dw, g);                                                           \
    }

CONV_FLOAT(f32)
CONV_FLOAT(f64)
CONV(i8)
