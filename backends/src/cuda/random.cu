// Counter-based random numbers: Philox4x32-10 keyed by the seed, countered by element index,
// reproducing the CPU backend's formulas bit for bit (see `cpu/random.rs`): element i of a fill
// uses counter (j, j >> 32, 0, 0) with j = offset + i, and the separately rounded multiplies and
// adds below (__fmul_rn / __dmul_rn keep the compiler from fusing them).

__device__ __forceinline__ void philox(u32 c[4], u32 k0, u32 k1) {
    for (int r = 0; r < 10; ++r) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        const u32 lo0 = 0xD2511F53u * c[0], hi0 = __umulhi(0xD2511F53u, c[0]);
        const u32 lo1 = 0xCD9E8D57u * c[2], hi1 = __umulhi(0xCD9E8D57u, c[2]);
        const u32 n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
        c[0] = n0;
        c[1] = lo1;
        c[2] = n2;
        c[3] = lo0;
    }
}

__device__ __forceinline__ void words(u64 seed, u64 j, u32 w[4]) {
    w[0] = (u32)j;
    w[1] = (u32)(j >> 32);
    w[2] = 0;
    w[3] = 0;
    philox(w, (u32)seed, (u32)(seed >> 32));
}

__device__ __forceinline__ f32 u24(u32 x) { return __fmul_rn((f32)(x >> 8), 1.0f / 16777216.0f); }
__device__ __forceinline__ u64 bits53(u32 a, u32 b) { return (((u64)a << 32) | (u64)b) >> 11; }
__device__ __forceinline__ f64 u53(u32 a, u32 b) { return __dmul_rn((f64)bits53(a, b), 1.0 / 9007199254740992.0); }

extern "C" __global__ void uniform_f32(f32* y, i64 n, u64 seed, u64 offset, f32 lo, f32 hi, f32 scale) {
    FOR_EACH(i, n) {
        u32 w[4];
        words(seed, offset + (u64)i, w);
        const f32 v = __fadd_rn(__fmul_rn(u24(w[0]), scale), lo);
        y[i] = v >= hi ? lo : v;
    }
}

extern "C" __global__ void uniform_f64(f64* y, i64 n, u64 seed, u64 offset, f64 lo, f64 hi, f64 scale) {
    FOR_EACH(i, n) {
        u32 w[4];
        words(seed, offset + (u64)i, w);
        const f64 v = __dadd_rn(__dmul_rn(u53(w[0], w[1]), scale), lo);
        y[i] = v >= hi ? lo : v;
    }
}

extern "C" __global__ void normal_f32(f32* y, i64 n, u64 seed, u64 offset, f32 mean, f32 std) {
    const f32 tau = 6.28318530717958647692f;
    FOR_EACH(i, n) {
        u32 w[4];
        words(seed, offset + (u64)i, w);
        const f32 u1 = __fmul_rn((f32)((w[0] >> 8) + 1), 1.0f / 16777216.0f);
        const f32 u2 = u24(w[1]);
        const f32 z = __fmul_rn(sqrtf(__fmul_rn(-2.0f, logf(u1))), cosf(__fmul_rn(tau, u2)));
        y[i] = __fadd_rn(__fmul_rn(z, std), mean);
    }
}

extern "C" __global__ void normal_f64(f64* y, i64 n, u64 seed, u64 offset, f64 mean, f64 std) {
    const f64 tau = 6.28318530717958647692;
    FOR_EACH(i, n) {
        u32 w[4];
        words(seed, offset + (u64)i, w);
        const f64 u1 = __dmul_rn((f64)(bits53(w[0], w[1]) + 1), 1.0 / 9007199254740992.0);
        const f64 u2 = u53(w[2], w[3]);
        const f64 z = __dmul_rn(sqrt(__dmul_rn(-2.0, log(u1))), cos(__dmul_rn(tau, u2)));
        y[i] = __dadd_rn(__dmul_rn(z, std), mean);
    }
}

#define BERNOULLI(T)                                                                        \
    extern "C" __global__ void bernoulli_##T(T* y, i64 n, u64 seed, u64 offset, f64 p) {   \
        FOR_EACH(i, n) {                                                                    \
            u32 w[4];                                                                       \
            words(seed, offset + (u64)i, w);                                                \
            y[i] = ((f64)u24(w[0]) < p) ? (T)1 : (T)0;                                      \
        }                                                                                   \
    }
BERNOULLI(f32)
BERNOULLI(f64)
BERNOULLI(u8)
