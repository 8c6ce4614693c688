// Pooling over contiguous NCHW planes: max (with argmax), average and adaptive average, and
// their gradients. Window rules are PyTorch's (as the CPU backend's `window`).

struct PoolGeom {
    i64 planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw, count_include_pad;
};

// Input range lo..hi (clipped to 0..len) of window i, and its extent clipped to the padded input.
__device__ __forceinline__ void window(i64 i, i64 k, i64 s, i64 p, i64 len, i64& lo, i64& hi, i64& padded) {
    const i64 start = i * s - p;
    const i64 end_padded = min(start + k, len + p);
    padded = max(end_padded - start, (i64)0);
    const i64 l = max(start, (i64)0), h = max(min(end_padded, len), (i64)0);
    lo = min(l, h);
    hi = h;
}

template <typename T> __device__ void max_pool(const T* x, T* y, i64* idx, PoolGeom g) {
    const i64 total = g.planes * g.oh * g.ow;
    FOR_EACH(i, total) {
        const i64 ox = i % g.ow, oy = (i / g.ow) % g.oh, plane = i / (g.ow * g.oh);
        i64 h0, h1, w0, w1, pad;
        window(oy, g.kh, g.sh, g.ph, g.h, h0, h1, pad);
        window(ox, g.kw, g.sw, g.pw, g.w, w0, w1, pad);
        const T* xp = x + plane * g.h * g.w;
        T best = -Num<T>::inf();
        i64 bi = h0 * g.w + w0;
        bool first = true;
        for (i64 r = h0; r < h1; ++r) {
            for (i64 q = w0; q < w1; ++q) {
                const T v = xp[r * g.w + q];
                if (first || v > best || (is_nan(v) && !is_nan(best))) {
                    best = v;
                    bi = r * g.w + q;
                    first = false;
                }
            }
        }
        y[i] = best;
        idx[i] = bi;
    }
}

// Routes each gradient element to its recorded argmax (atomically: windows may overlap).
template <typename T> __device__ void max_pool_backward(const T* gy, const i64* idx, T* gx, i64 planes, i64 ohw, i64 hw, u64* err) {
    const i64 total = planes * ohw;
    FOR_EACH(i, total) {
        const i64 j = idx[i];
        if (j < 0 || j >= hw) {
            report_error(err, i);
            continue;
        }
        atomicAdd(gx + (i / ohw) * hw + j, gy[i]);
    }
}

__device__ __forceinline__ i64 avg_divisor(const PoolGeom& g, i64 h0, i64 h1, i64 hp, i64 w0, i64 w1, i64 wp) {
    return g.count_include_pad ? hp * wp : (h1 - h0) * (w1 - w0);
}

template <typename T> __device__ void avg_pool(const T* x, T* y, PoolGeom g) {
    const i64 total = g.planes * g.oh * g.ow;
    FOR_EACH(i, total) {
        const i64 ox = i % g.ow, oy = (i / g.ow) % g.oh, plane = i / (g.ow * g.oh);
        i64 h0, h1, hp, w0, w1, wp;
        window(oy, g.kh, g.sh, g.ph, g.h, h0, h1, hp);
        window(ox, g.kw, g.sw, g.pw, g.w, w0, w1, wp);
        const T* xp = x + plane * g.h * g.w;
        T s = 0;
        for (i64 r = h0; r < h1; ++r)
            for (i64 q = w0; q < w1; ++q) s += xp[r * g.w + q];
        const i64 d = avg_divisor(g, h0, h1, hp, w0, w1, wp);
        y[i] = d == 0 ? Num<T>::nan() : s / (T)d;
    }
}

// Each input element gathers gy / divisor from the windows that contain it.
template <typename T> __device__ void avg_pool_backward(const T* gy, T* gx, PoolGeom g) {
    const i64 total = g.planes * g.h * g.w;
    FOR_EACH(i, total) {
        const i64 x = i % g.w, y = (i / g.w) % g.h, plane = i / (g.w * g.h);
        const T* gp = gy + plane * g.oh * g.ow;
        const i64 ylo = y + g.ph - g.kh >= 0 ? (y + g.ph - g.kh) / g.sh + 1 : 0, yhi = min((y + g.ph) / g.sh, g.oh - 1);
        const i64 xlo = x + g.pw - g.kw >= 0 ? (x + g.pw - g.kw) / g.sw + 1 : 0, xhi = min((x + g.pw) / g.sw, g.ow - 1);
        T acc = 0;
        for (i64 oy = ylo; oy <= yhi; ++oy) {
            i64 h0, h1, hp;
            window(oy, g.kh, g.sh, g.ph, g.h, h0, h1, hp);
            if (y < h0 || y >= h1) continue;
            for (i64 ox = xlo; ox <= xhi; ++ox) {
                i64 w0, w1, wp;
                window(ox, g.kw, g.sw, g.pw, g.w, w0, w1, wp);
                if (x < w0 || x >= w1) continue;
                const i64 d = avg_divisor(g, h0, h1, hp, w0, w1, wp);
                if (d != 0) acc += gp[oy * g.ow + ox] / (T)d;
            }
        }
        gx[i] = acc;
    }
}

// PyTorch's adaptive window floor(i*len/out) .. ceil((i+1)*len/out).
__device__ __forceinline__ void adaptive_window(i64 i, i64 len, i64 out, i64& lo, i64& hi) {
    lo = i * len / out;
    hi = ((i + 1) * len + out - 1) / out;
}

template <typename T> __device__ void adaptive_pool(const T* x, T* y, PoolGeom g) {
    const i64 total = g.planes * g.oh * g.ow;
    FOR_EACH(i, total) {
        const i64 ox = i % g.ow, oy = (i / g.ow) % g.oh, plane = i / (g.ow * g.oh);
        i64 h0, h1, w0, w1;
        adaptive_window(oy, g.h, g.oh, h0, h1);
        adaptive_window(ox, g.w, g.ow, w0, w1);
        const T* xp = x + plane * g.h * g.w;
        T s = 0;
        for (i64 r = h0; r < h1; ++r)
            for (i64 q = w0; q < w1; ++q) s += xp[r * g.w + q];
        y[i] = s / (T)((h1 - h0) * (w1 - w0));
    }
}

template <typename T> __device__ void adaptive_pool_backward(const T* gy, T* gx, PoolGeom g) {
    const i64 total = g.planes * g.h * g.w;
    FOR_EACH(i, total) {
        const i64 x = i % g.w, y = (i / g.w) % g.h, plane = i / (g.w * g.h);
        const T* gp = gy + plane * g.oh * g.ow;
        T acc = 0;
        for (i64 oy = 0; oy < g.oh; ++oy) {
            i64 h0, h1;
            adaptive_window(oy, g.h, g.oh, h0, h1);
            if (y < h0 || y >= h1) continue;
            for (i64 ox = 0; ox < g.ow; ++ox) {
                i64 w0, w1;
                adaptive_window(ox, g.w, g.ow, w0, w1);
                if (x < w0 || x >= w1) continue;
                acc += gp[oy * g.ow + ox] / (T)((h1 - h0) * (w1 - w0));
            }
        }
        gx[i] = acc;
    }
}

#define POOL(T)                                                                                                 \
    extern "C" __global__ void max_pool_##T(const T* __restrict__ x, T* __restrict__ y, i64* __restrict__ idx,  \
                                            PoolGeom g) {                                                     \
        max_pool<T>(x, y, idx, g);                                                                             \
    }                                                                                                           \
    extern "C" __global__ void max_pool_backward_##T(const T* __restrict__ gy, const i64* __restrict__ idx, T* gx, \
                                                     i64 planes, i64 ohw, i64 hw, u64* err) {                \
        max_pool_backward<T>(gy, idx, gx, planes, ohw, hw, err);                                               \
    }                                                                                                           \
    extern "C" __global__ void avg_pool_##T(const T* __restrict__ x, T* __restrict__ y, PoolGeom g) {          \
        avg_pool<T>(x, y, g);                                                                                  \
    }                                                                                                           \
    extern "C" __global__ void avg_pool_backward_##T(const T* __restrict__ gy, T* __restrict__ gx, PoolGeom g) { \
        avg_pool_backward<T>(gy, gx, g);                                                                       \
    }                                                                                                           \
    extern "C" __global__ void adaptive_pool_##T(const T* __restrict__ x, T* __restrict__ y, PoolGeom g) {     \
        adaptive_pool<T>(x, y, g);                                                                             \
    }                                                                                                           \
    extern "C" __global__ void adaptive_pool_backward_##T(const T* __restrict__ gy, T* __restrict__ gx, PoolGeom g) { \
        adaptive_pool_backward<T>(gy, gx, g);                                                                  \
    }

POOL(f32)
POOL(f64)
