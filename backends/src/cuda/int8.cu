// Integer kernels for quantized inference: batched i8 x i8 -> i32 GEMM (wrapping accumulation,
// as the CPU backend) and the ternary 1x1 convolution by additions and subtractions only.

#define TILE 16

// C[b] = A[b] B[b] for contiguous row-major A [M, K], B [K, N], C [M, N]; batch entries are
// `*_bs` elements apart (blockIdx.z is the batch entry).
extern "C" __global__ void gemm_i8(const i8* __restrict__ a, const i8* __restrict__ b, i32* __restrict__ c, i64 m,
                                   i64 n, i64 k, i64 a_bs, i64 b_bs, i64 c_bs) {
    __shared__ i32 as[TILE][TILE];
    __shared__ i32 bs[TILE][TILE + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const i64 row = (i64)blockIdx.y * TILE + ty, col = (i64)blockIdx.x * TILE + tx;
    const i8* ab = a + (i64)blockIdx.z * a_bs;
    const i8* bb = b + (i64)blockIdx.z * b_bs;
    u32 acc = 0;
    for (i64 t = 0; t < k; t += TILE) {
        as[ty][tx] = (row < m && t + tx < k) ? (i32)ab[row * k + t + tx] : 0;
        bs[ty][tx] = (t + ty < k && col < n) ? (i32)bb[(t + ty) * n + col] : 0;
        __syncthreads();
        for (int q = 0; q < TILE; ++q) acc += (u32)(as[ty][q] * bs[q][tx]);
        __syncthreads();
    }
    if (row < m && col < n) c[(i64)blockIdx.z * c_bs + row * n + col] = (i32)acc;
}

// y[b, o, p] = sum over c of x[b, c, p] where w[o, c] == 1, minus those where w[o, c] == -1.
extern "C" __global__ void ternary_conv1x1(const i8* __restrict__ x, const i8* __restrict__ w, i32* __restrict__ y,
                                           i64 batch, i64 channels, i64 outs, i64 hw) {
    const i64 total = batch * outs * hw;
    FOR_EACH(i, total) {
        const i64 p = i % hw, o = (i / hw) % outs, b = i / (hw * outs);
        const i8* xb = x + b * channels * hw + p;
        const i8* wo = w + o * channels;
        i32 acc = 0;
        for (i64 c = 0; c < channels; ++c) {
            const i8 wv = wo[c];
            if (wv == 1) acc += xb[c * hw];
            else if (wv == -1) acc -= xb[c * hw];
        }
        y[i] = acc;
    }
}
