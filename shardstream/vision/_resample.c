/* Antialiased bicubic or bilinear resizing of many crops of one uint8 image, bit-identical to
 * Pillow.
 *
 * dinov2 and torchvision resize PIL images, so Pillow's resampler defines the pixels users train
 * on. This module computes the same coefficients (double precision, then 22-bit fixed point, a
 * fractional `box` taken in single precision as Pillow takes it) and the same two passes with the
 * intermediate rounded and clipped to uint8, in the order Pillow runs them (Pillow 13 starts with
 * the vertical pass when the height shrinks by more than twice as many pixels as the width; older
 * releases always start horizontally, selected by horizontal_first=True). So every output byte
 * equals Pillow's `crop(box).resize(size, filter, box=span)`. Integer sums are exact, so the
 * order of the terms does not matter and both passes can be vectorised:
 *
 * - every pass combines whole contiguous lines with one weight each ("weigh"), for all channels
 *   of a line in one call, in an AVX-512 VNNI, AVX-512, AVX2 or portable version chosen at import
 *   (kernels() / use_kernel() for tests); the SIMD ones multiply in 16 bits, exactly (see
 *   tap_pairs);
 * - for the horizontal pass the union of the crops is split into per-channel planes and
 *   transposed once per image (SSE2 16 x 16 byte transposes), so columns become lines;
 * - results are written back mirrored when a view is flipped, and the last pass writes into
 *   channels-first or channels-last memory directly (no separate flip, copy or channel split).
 *
 * resize_crops() releases the GIL around the arithmetic and its scratch memory is per thread
 * (kept between calls, so that the pages are not faulted in again for every image), so threads
 * may call it concurrently. Checked against Pillow by tests/vision/test_resize.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS 22 /* Pillow's: 32 bits - 8 for the value - 2 for overshoot */
#define MAX_CHANNELS 4
#define MAX_CROPS 64
/* Largest image or output side, and largest output (h * w * channels bytes), resize_crops
 * takes: every index, tap count and plane size below then fits an int, with room to spare
 * (make_weights' ksize is about 4 * side / out_size + 5). */
#define MAX_SIDE (1 << 28)
#define MAX_OUT_BYTES 0x7FFFFFFFLL

#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_AVX2_PATH 1 /* chosen at import where the CPU has AVX2 */
#else
#define HAVE_AVX2_PATH 0
#endif

typedef struct {
    int *bounds;     /* per output index: first input index, number of taps */
    int32_t *coeffs; /* per output index: ksize fixed-point weights */
    int ksize;
} weights_t;

/* Per-thread scratch memory kept between calls: slot 0 holds the union's transposed planes for
 * a whole call, slot 1 one crop's intermediates. Freshly mapped pages cost a fault and a zeroing
 * each, ~9 % of a DINO sample's resizing when every call allocated its own. */
typedef struct {
    uint8_t *buffer[2];
    size_t size[2];
} arena_t;

static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void
arena_free(void *pointer)
{
    arena_t *arena = pointer;
    free(arena->buffer[0]);
    free(arena->buffer[1]);
    free(arena);
}

static void
arena_make_key(void)
{
    (void)pthread_key_create(&arena_key, arena_free);
}

/* At least `bytes` bytes of this thread's slot `slot` (its earlier contents are not kept), or
 * NULL when out of memory. */
static uint8_t *
arena_get(int slot, size_t bytes)
{
    (void)pthread_once(&arena_once, arena_make_key);
    arena_t *arena = pthread_getspecific(arena_key);
    if (arena == NULL) {
        arena = calloc(1, sizeof(*arena));
        if (arena == NULL || pthread_setspecific(arena_key, arena) != 0) {
            free(arena);
            return NULL;
        }
    }
    if (arena->size[slot] < bytes) {
        free(arena->buffer[slot]);
        arena->buffer[slot] = malloc(bytes);
        arena->size[slot] = arena->buffer[slot] == NULL ? 0 : bytes;
    }
    return arena->buffer[slot];
}

/* Give back this thread's slots over ARENA_KEEP bytes, so that one huge image does not pin its
 * scratch memory for the life of the thread. */
enum { ARENA_KEEP = 16 << 20 };

static void
arena_trim(void)
{
    (void)pthread_once(&arena_once, arena_make_key);
    arena_t *arena = pthread_getspecific(arena_key);
    for (int slot = 0; arena != NULL && slot < 2; slot++) {
        if (arena->size[slot] > ARENA_KEEP) {
            free(arena->buffer[slot]);
            arena->buffer[slot] = NULL;
            arena->size[slot] = 0;
        }
    }
}

/* Pillow's BILINEAR filter: a triangle of support 1 */
static double
bilinear(double x)
{
    if (x < 0.0) {
        x = -x;
    }
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double
bicubic(double x)
{
    /* Keys' cubic convolution with a = -0.5, Pillow's BICUBIC filter (support 2) */
    const double a = -0.5;
    if (x < 0.0) {
        x = -x;
    }
    if (x < 1.0) {
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    }
    if (x < 2.0) {
        return (((x - 5) * x + 8) * x - 4) * a;
    }
    return 0.0;
}

typedef struct {
    double (*function)(double);
    double support;
} filter_t;

static const filter_t FILTERS[] = {{bicubic, 2.0}, {bilinear, 1.0}};

/* Weights resizing the span [in0, in1) of in_size samples to out_size, with Pillow's rounding at
 * every step (the span in single precision, as Pillow takes its box). Returns 0, or -1 when out
 * of memory. */
static int
make_weights(int in_size, float in0, float in1, int out_size, const filter_t *filter, weights_t *w)
{
    double scale = (double)(in1 - in0) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = filter->support * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *taps = malloc(sizeof(double) * ksize);
    w->ksize = ksize;
    w->bounds = malloc(sizeof(int) * 2 * out_size);
    w->coeffs = malloc(sizeof(int32_t) * ksize * out_size);
    if (taps == NULL || w->bounds == NULL || w->coeffs == NULL) {
        free(taps);
        free(w->bounds);
        free(w->coeffs);
        w->bounds = NULL;
        w->coeffs = NULL;
        return -1;
    }
    for (int o = 0; o < out_size; o++) {
        double center = in0 + (o + 0.5) * scale;
        double total = 0.0;
        double inverse = 1.0 / filterscale;
        int first = (int)(center - support + 0.5);
        int last = (int)(center + support + 0.5);
        if (first < 0) {
            first = 0;
        }
        if (last > in_size) {
            last = in_size;
        }
        int count = last - first;
        if (filter->function == bicubic) { /* the common case, with the filter inlined */
            for (int t = 0; t < count; t++) {
                taps[t] = bicubic((t + first - center + 0.5) * inverse);
                total += taps[t];
            }
        } else {
            for (int t = 0; t < count; t++) {
                taps[t] = filter->function((t + first - center + 0.5) * inverse);
                total += taps[t];
            }
        }
        int32_t *k = w->coeffs + (size_t)o * ksize;
        for (int t = 0; t < ksize; t++) {
            double value = t < count ? (total != 0.0 ? taps[t] / total : taps[t]) : 0.0;
            k[t] = value < 0 ? (int32_t)(-0.5 + value * (1 << PRECISION_BITS))
                             : (int32_t)(0.5 + value * (1 << PRECISION_BITS));
        }
        w->bounds[2 * o] = first;
        w->bounds[2 * o + 1] = count;
    }
    free(taps);
    return 0;
}

static void
free_weights(weights_t *w)
{
    free(w->bounds);
    free(w->coeffs);
}

static inline uint8_t
clip8(int32_t value)
{
    value >>= PRECISION_BITS;
    return value < 0 ? 0 : value > 255 ? 255 : (uint8_t)value;
}

/* One output line: dst[i] = clip8(bias + sum over t of k[t] * src[(first + t) * stride + i]),
 * i < n. Portable version (the compiler vectorises it for the baseline instruction set). */
static void
weigh_line(const uint8_t *src, Py_ssize_t stride, int n, int first, int count, const int32_t *k,
           uint8_t *restrict dst)
{
    enum { STRIP = 64 };
    int32_t sums[STRIP];
    src += first * stride;
    for (int i0 = 0; i0 < n; i0 += STRIP) {
        int m = n - i0 < STRIP ? n - i0 : STRIP;
        for (int i = 0; i < m; i++) {
            sums[i] = 1 << (PRECISION_BITS - 1);
        }
        for (int t = 0; t < count; t++) {
            const uint8_t *restrict row = src + t * stride + i0;
            int32_t w = k[t];
            for (int i = 0; i < m; i++) {
                sums[i] += w * (int32_t)row[i];
            }
        }
        for (int i = 0; i < m; i++) {
            dst[i0 + i] = clip8(sums[i]);
        }
    }
}

/* The same output line of `planes` planes with the same weights: plane c reads src + c * s_plane
 * and writes dst + c * d_plane. Every kernel has this signature (one call per line of all
 * channels: the set-up of the weights is shared, and there are a third as many calls). */
static void
weigh_portable(const uint8_t *src, Py_ssize_t stride, int n, int first, int count,
               const int32_t *k, uint8_t *dst, int planes, Py_ssize_t s_plane, Py_ssize_t d_plane)
{
    for (int c = 0; c < planes; c++) {
        weigh_line(src + c * s_plane, stride, n, first, count, k, dst + c * d_plane);
    }
}

#if HAVE_AVX2_PATH
#include <immintrin.h>

/* The SIMD kernels use 16-bit multiplies (pmaddwd), exactly: each 22-bit weight k is split as
 * k = hi * 2^11 + lo with lo in [0, 2^11), so that both halves fit in 16 bits, and
 * sum(k * p) = 2^11 * sum(hi * p) + sum(lo * p) in 32-bit integers. pmaddwd multiplies pairs of
 * words and adds each pair, so two taps go in one instruction per half: the pixels of rows t and
 * t + 1 are interleaved as words (p_t[i], p_t+1[i]) and multiplied by (w_t, w_t+1). That halves
 * the multiply uops of a 32-bit multiply per tap, and the unpacks that interleave and widen the
 * pixels replace the widening a 32-bit multiply needs anyway. */
/* The SIMD kernels keep their tap pairs on the stack; lines with more taps than this (a crop
 * shrunk over a thousand times) take the portable kernel instead. */
#define MAX_SIMD_TAPS 2048

typedef struct {
    const uint8_t *a, *b; /* the two rows of a pair (b = a, with zero weights, for an odd tap) */
    int32_t hi, lo;       /* (w_a, w_b) halves as packed words */
} tap_pair_t;

static int
tap_pairs(const uint8_t *src, Py_ssize_t stride, int count, const int32_t *k, tap_pair_t *pairs)
{
    int n = 0;
    for (int t = 0; t < count; t += 2) {
        int32_t ka = k[t], kb = t + 1 < count ? k[t + 1] : 0;
        pairs[n].a = src + t * stride;
        pairs[n].b = t + 1 < count ? src + (t + 1) * stride : pairs[n].a;
        pairs[n].hi = (int32_t)((uint32_t)(uint16_t)(ka >> 11) | (uint32_t)(uint16_t)(kb >> 11) << 16);
        pairs[n].lo = (int32_t)((uint32_t)(ka & 0x7FF) | (uint32_t)(kb & 0x7FF) << 16);
        n++;
    }
    return n;
}

/* 32 pixels with AVX2. Within each 128-bit lane the unpacks give pixels 0-3, 4-7, 8-11 and 12-15
 * of the lane's 16 in four accumulators, and the in-lane packs put them back in order. */
__attribute__((target("avx2"))) static inline __m256i
weigh_block_avx2(const tap_pair_t *pairs, int n_pairs, Py_ssize_t i)
{
    const __m256i zero = _mm256_setzero_si256();
    __m256i h0 = zero, h1 = zero, h2 = zero, h3 = zero;
    __m256i l0 = _mm256_set1_epi32(1 << (PRECISION_BITS - 1)), l1 = l0, l2 = l0, l3 = l0;
    for (int p = 0; p < n_pairs; p++) {
        __m256i ra = _mm256_loadu_si256((const __m256i *)(pairs[p].a + i));
        __m256i rb = _mm256_loadu_si256((const __m256i *)(pairs[p].b + i));
        __m256i wh = _mm256_set1_epi32(pairs[p].hi), wl = _mm256_set1_epi32(pairs[p].lo);
        __m256i x0 = _mm256_unpacklo_epi8(ra, rb), x1 = _mm256_unpackhi_epi8(ra, rb);
        __m256i v0 = _mm256_unpacklo_epi8(x0, zero), v1 = _mm256_unpackhi_epi8(x0, zero);
        __m256i v2 = _mm256_unpacklo_epi8(x1, zero), v3 = _mm256_unpackhi_epi8(x1, zero);
        h0 = _mm256_add_epi32(h0, _mm256_madd_epi16(v0, wh));
        l0 = _mm256_add_epi32(l0, _mm256_madd_epi16(v0, wl));
        h1 = _mm256_add_epi32(h1, _mm256_madd_epi16(v1, wh));
        l1 = _mm256_add_epi32(l1, _mm256_madd_epi16(v1, wl));
        h2 = _mm256_add_epi32(h2, _mm256_madd_epi16(v2, wh));
        l2 = _mm256_add_epi32(l2, _mm256_madd_epi16(v2, wl));
        h3 = _mm256_add_epi32(h3, _mm256_madd_epi16(v3, wh));
        l3 = _mm256_add_epi32(l3, _mm256_madd_epi16(v3, wl));
    }
    /* (hi sum << 11) + lo sum (+ the bias), then the shift and saturating packs of clip8 */
    h0 = _mm256_srai_epi32(_mm256_add_epi32(_mm256_slli_epi32(h0, 11), l0), PRECISION_BITS);
    h1 = _mm256_srai_epi32(_mm256_add_epi32(_mm256_slli_epi32(h1, 11), l1), PRECISION_BITS);
    h2 = _mm256_srai_epi32(_mm256_add_epi32(_mm256_slli_epi32(h2, 11), l2), PRECISION_BITS);
    h3 = _mm256_srai_epi32(_mm256_add_epi32(_mm256_slli_epi32(h3, 11), l3), PRECISION_BITS);
    return _mm256_packus_epi16(_mm256_packs_epi32(h0, h1), _mm256_packs_epi32(h2, h3));
}

__attribute__((target("avx2"))) static void
weigh_avx2(const uint8_t *src, Py_ssize_t stride, int n, int first, int count, const int32_t *k,
           uint8_t *dst, int planes, Py_ssize_t s_plane, Py_ssize_t d_plane)
{
    if (n < 32 || count > MAX_SIMD_TAPS) {
        weigh_portable(src, stride, n, first, count, k, dst, planes, s_plane, d_plane);
        return;
    }
    tap_pair_t pairs[count / 2 + 1];
    int n_pairs = tap_pairs(src + first * stride, stride, count, k, pairs);
    for (int c = 0; c < planes; c++) {
        for (int i = 0; i < n; i += 32) {
            if (i + 32 > n) {
                i = n - 32; /* a last block overlapping the previous one: same values rewritten */
            }
            _mm256_storeu_si256((__m256i *)(dst + c * d_plane + i),
                                weigh_block_avx2(pairs, n_pairs, c * s_plane + i));
        }
    }
}
#endif

#if HAVE_AVX2_PATH
/* The same with AVX-512 (BW): 64 pixels per block, the same in-lane order; lines shorter than
 * 64, and the ends of longer ones, take 32-pixel AVX2 blocks. MADD_ADD(acc, v, w) adds the pair
 * products of v and w to acc: pmaddwd + add, or one vpdpwssd with AVX-512 VNNI. */
#define WEIGH_AVX512_BODY(MADD_ADD)                                                              \
    if (n < 32 || count > MAX_SIMD_TAPS) {                                                       \
        weigh_portable(src, stride, n, first, count, k, dst, planes, s_plane, d_plane);          \
        return;                                                                                  \
    }                                                                                            \
    tap_pair_t pairs[count / 2 + 1];                                                             \
    int n_pairs = tap_pairs(src + first * stride, stride, count, k, pairs);                      \
    const __m512i zero = _mm512_setzero_si512();                                                 \
    const __m512i bias = _mm512_set1_epi32(1 << (PRECISION_BITS - 1));                           \
    for (int c = 0; c < planes; c++) {                                                           \
        Py_ssize_t from = c * s_plane;                                                           \
        uint8_t *out = dst + c * d_plane;                                                        \
        int i = 0;                                                                               \
        for (; i + 64 <= n; i += 64) {                                                           \
            __m512i h0 = zero, h1 = zero, h2 = zero, h3 = zero;                                  \
            __m512i l0 = bias, l1 = bias, l2 = bias, l3 = bias;                                  \
            for (int p = 0; p < n_pairs; p++) {                                                  \
                __m512i ra = _mm512_loadu_si512((const void *)(pairs[p].a + from + i));          \
                __m512i rb = _mm512_loadu_si512((const void *)(pairs[p].b + from + i));          \
                __m512i wh = _mm512_set1_epi32(pairs[p].hi);                                     \
                __m512i wl = _mm512_set1_epi32(pairs[p].lo);                                     \
                __m512i x0 = _mm512_unpacklo_epi8(ra, rb), x1 = _mm512_unpackhi_epi8(ra, rb);    \
                __m512i v0 = _mm512_unpacklo_epi8(x0, zero);                                     \
                __m512i v1 = _mm512_unpackhi_epi8(x0, zero);                                     \
                __m512i v2 = _mm512_unpacklo_epi8(x1, zero);                                     \
                __m512i v3 = _mm512_unpackhi_epi8(x1, zero);                                     \
                h0 = MADD_ADD(h0, v0, wh);                                                       \
                l0 = MADD_ADD(l0, v0, wl);                                                       \
                h1 = MADD_ADD(h1, v1, wh);                                                       \
                l1 = MADD_ADD(l1, v1, wl);                                                       \
                h2 = MADD_ADD(h2, v2, wh);                                                       \
                l2 = MADD_ADD(l2, v2, wl);                                                       \
                h3 = MADD_ADD(h3, v3, wh);                                                       \
                l3 = MADD_ADD(l3, v3, wl);                                                       \
            }                                                                                    \
            h0 = _mm512_srai_epi32(_mm512_add_epi32(_mm512_slli_epi32(h0, 11), l0), PRECISION_BITS); \
            h1 = _mm512_srai_epi32(_mm512_add_epi32(_mm512_slli_epi32(h1, 11), l1), PRECISION_BITS); \
            h2 = _mm512_srai_epi32(_mm512_add_epi32(_mm512_slli_epi32(h2, 11), l2), PRECISION_BITS); \
            h3 = _mm512_srai_epi32(_mm512_add_epi32(_mm512_slli_epi32(h3, 11), l3), PRECISION_BITS); \
            __m512i low = _mm512_packs_epi32(h0, h1), high = _mm512_packs_epi32(h2, h3);        \
            _mm512_storeu_si512((void *)(out + i), _mm512_packus_epi16(low, high));              \
        }                                                                                        \
        for (; i < n; i += 32) { /* the rest in 32-wide blocks, the last one overlapping */     \
            int at = i + 32 <= n ? i : n - 32;                                                   \
            _mm256_storeu_si256((__m256i *)(out + at), weigh_block_avx2(pairs, n_pairs, from + at)); \
        }                                                                                        \
    }

#define MADD_ADD_512(acc, v, w) _mm512_add_epi32((acc), _mm512_madd_epi16((v), (w)))
#define MADD_ADD_VNNI(acc, v, w) _mm512_dpwssd_epi32((acc), (v), (w))

__attribute__((target("avx512f,avx512bw,avx2"))) static void
weigh_avx512(const uint8_t *src, Py_ssize_t stride, int n, int first, int count,
             const int32_t *k, uint8_t *dst, int planes, Py_ssize_t s_plane, Py_ssize_t d_plane)
{
    WEIGH_AVX512_BODY(MADD_ADD_512)
}

__attribute__((target("avx512f,avx512bw,avx512vnni,avx2"))) static void
weigh_avx512vnni(const uint8_t *src, Py_ssize_t stride, int n, int first, int count,
                 const int32_t *k, uint8_t *dst, int planes, Py_ssize_t s_plane,
                 Py_ssize_t d_plane)
{
    WEIGH_AVX512_BODY(MADD_ADD_VNNI)
}
#endif

typedef void (*weigh_fn)(const uint8_t *, Py_ssize_t, int, int, int, const int32_t *, uint8_t *,
                         int, Py_ssize_t, Py_ssize_t);
static weigh_fn weigh = weigh_portable;

#if defined(__SSE2__)
#include <emmintrin.h>

/* Transpose one 16 x 16 block of bytes: dst row x = src column x. */
static inline void
transpose16(const uint8_t *src, Py_ssize_t s_stride, uint8_t *dst, Py_ssize_t d_stride)
{
    __m128i a[16], b[16];
    for (int i = 0; i < 16; i++) {
        a[i] = _mm_loadu_si128((const __m128i *)(src + i * s_stride));
    }
    /* four perfect shuffles of the rows (row i with row i + 8) transpose 16 x 16 bytes */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 8; i++) {
            b[2 * i] = _mm_unpacklo_epi8(a[i], a[i + 8]);
            b[2 * i + 1] = _mm_unpackhi_epi8(a[i], a[i + 8]);
        }
        for (int i = 0; i < 8; i++) {
            a[2 * i] = _mm_unpacklo_epi8(b[i], b[i + 8]);
            a[2 * i + 1] = _mm_unpackhi_epi8(b[i], b[i + 8]);
        }
    }
    for (int i = 0; i < 16; i++) {
        _mm_storeu_si128((__m128i *)(dst + i * d_stride), a[i]);
    }
}
#endif

/* dst row x = src column x, for a rows x cols byte plane. */
static void
transpose_plane(const uint8_t *src, Py_ssize_t s_stride, int rows, int cols, uint8_t *dst,
                Py_ssize_t d_stride)
{
    enum { BLOCK = 16 };
    for (int y0 = 0; y0 < rows; y0 += BLOCK) {
        int y1 = y0 + BLOCK < rows ? y0 + BLOCK : rows;
        for (int x0 = 0; x0 < cols; x0 += BLOCK) {
            int x1 = x0 + BLOCK < cols ? x0 + BLOCK : cols;
#if defined(__SSE2__)
            if (y1 - y0 == BLOCK && x1 - x0 == BLOCK) {
                transpose16(src + y0 * s_stride + x0, s_stride, dst + x0 * d_stride + y0, d_stride);
                continue;
            }
#endif
            for (int x = x0; x < x1; x++) {
                uint8_t *out = dst + (Py_ssize_t)x * d_stride;
                for (int y = y0; y < y1; y++) {
                    out[y] = src[y * s_stride + x];
                }
            }
        }
    }
}

/* One row of RGB pixels into three planes; `from` is the first pixel not yet written. */
static void
split3_scalar(const uint8_t *restrict in, int from, int cols, uint8_t *restrict r,
              uint8_t *restrict g, uint8_t *restrict b)
{
    for (int x = from; x < cols; x++) {
        r[x] = in[3 * x];
        g[x] = in[3 * x + 1];
        b[x] = in[3 * x + 2];
    }
}

#if HAVE_AVX2_PATH
/* pshufb masks: SPLIT3_MASKS[c][v] gathers channel c's bytes found in the v-th 16 bytes of 16
 * interleaved RGB pixels into their places (0x80 elsewhere); filled at import. */
static uint8_t SPLIT3_MASKS[3][3][16];
static int have_ssse3 = 0;

static void
make_split3_masks(void)
{
    for (int c = 0; c < 3; c++) {
        for (int v = 0; v < 3; v++) {
            for (int j = 0; j < 16; j++) {
                int at = 3 * j + c - 16 * v;
                SPLIT3_MASKS[c][v][j] = at >= 0 && at < 16 ? (uint8_t)at : 0x80;
            }
        }
    }
    __builtin_cpu_init();
    have_ssse3 = __builtin_cpu_supports("ssse3");
}

/* The same with SSSE3: 16 pixels per step, three shuffles and two ors per plane. */
__attribute__((target("ssse3"))) static void
split3_ssse3(const uint8_t *in, int cols, uint8_t *r, uint8_t *g, uint8_t *b)
{
    __m128i m[3][3];
    for (int c = 0; c < 3; c++) {
        for (int v = 0; v < 3; v++) {
            m[c][v] = _mm_loadu_si128((const __m128i *)SPLIT3_MASKS[c][v]);
        }
    }
    uint8_t *planes[3] = {r, g, b};
    int x = 0;
    for (; x + 16 <= cols; x += 16) {
        const uint8_t *p = in + 3 * x;
        __m128i v0 = _mm_loadu_si128((const __m128i *)p);
        __m128i v1 = _mm_loadu_si128((const __m128i *)(p + 16));
        __m128i v2 = _mm_loadu_si128((const __m128i *)(p + 32));
        for (int c = 0; c < 3; c++) {
            __m128i plane = _mm_or_si128(
                _mm_or_si128(_mm_shuffle_epi8(v0, m[c][0]), _mm_shuffle_epi8(v1, m[c][1])),
                _mm_shuffle_epi8(v2, m[c][2]));
            _mm_storeu_si128((__m128i *)(planes[c] + x), plane);
        }
    }
    split3_scalar(in, x, cols, r, g, b);
}
#endif

/* Split interleaved rows into planes (not transposed), mirrored when flip. */
static void
split_rows(const uint8_t *src, Py_ssize_t s_stride, int rows, int cols, int channels, int flip,
           uint8_t *planes, Py_ssize_t p_size, Py_ssize_t p_stride)
{
    for (int y = 0; y < rows; y++) {
        const uint8_t *restrict in = src + y * s_stride;
        if (channels == 3 && !flip) {
            uint8_t *r = planes + y * p_stride;
#if HAVE_AVX2_PATH
            if (have_ssse3) {
                split3_ssse3(in, cols, r, r + p_size, r + 2 * p_size);
                continue;
            }
#endif
            split3_scalar(in, 0, cols, r, r + p_size, r + 2 * p_size);
            continue;
        }
        for (int c = 0; c < channels; c++) {
            uint8_t *out = planes + c * p_size + y * p_stride;
            if (flip) {
                for (int x = 0; x < cols; x++) {
                    out[cols - 1 - x] = in[x * channels + c];
                }
            } else {
                for (int x = 0; x < cols; x++) {
                    out[x] = in[x * channels + c];
                }
            }
        }
    }
}

/* Rows split_transposed splits at a time: its scratch stays small enough to stay in cache. */
#define SPLIT_STRIP 16

/* Split `rows` interleaved rows of `cols` pixels into transposed planes: plane c, row x, column
 * y = pixel (y, x) channel c; planes `p_size` bytes apart, their rows `p_stride` apart. It goes
 * in strips of SPLIT_STRIP rows through `work`, which holds SPLIT_STRIP * cols * channels bytes
 * (a whole-image intermediate would push the caller's own data out of the cache). */
static void
split_transposed(const uint8_t *src, Py_ssize_t s_stride, int rows, int cols, int channels,
                 uint8_t *planes, Py_ssize_t p_size, Py_ssize_t p_stride, uint8_t *work)
{
    Py_ssize_t w_size = (Py_ssize_t)SPLIT_STRIP * cols;
    for (int y0 = 0; y0 < rows; y0 += SPLIT_STRIP) {
        int strip = rows - y0 < SPLIT_STRIP ? rows - y0 : SPLIT_STRIP;
        split_rows(src + y0 * s_stride, s_stride, strip, cols, channels, 0, work, w_size, cols);
        for (int c = 0; c < channels; c++) {
            transpose_plane(work + c * w_size, cols, strip, cols, planes + c * p_size + y0,
                            p_stride);
        }
    }
}

typedef struct {
    /* source crop inside the image, in pixels */
    int top, left, height, width;
    /* the span Pillow resamples inside it (its `box`): the whole crop unless given */
    float x0, y0, x1, y1;
    int flip;
    /* destination (out_h, out_w, channels) with byte strides */
    uint8_t *out;
    int out_h, out_w;
    Py_ssize_t s_row, s_col, s_chan;
} crop_t;

/* Pillow's tests for a pass, including its comparison of the box's end with the output size */
static inline int
need_horizontal(const crop_t *c)
{
    return c->out_w != c->width || c->x0 != 0 || c->x1 != c->out_w;
}

static inline int
need_vertical(const crop_t *c)
{
    return c->out_h != c->height || c->y0 != 0 || c->y1 != c->out_h;
}

/* Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many
 * pixels as the width; earlier releases always start with the horizontal pass. */
static int
vertical_first(const crop_t *c, int legacy_order)
{
    int shrink_h = c->height - c->out_h, shrink_w = c->width - c->out_w;
    return !legacy_order && shrink_h > 0 && shrink_h > 2 * shrink_w;
}

/* Resize one crop. `image` points at pixel (0, 0); `tr` holds the transposed planes of the union
 * box whose top-left pixel is (ty, tx), planes `t_size` bytes apart, rows `t_stride` apart.
 * Returns 0, or -1 when out of memory. */
static int
resize_one(const crop_t *c, const uint8_t *image, Py_ssize_t i_stride, int channels,
           const uint8_t *tr, Py_ssize_t t_size, Py_ssize_t t_stride, int ty, int tx,
           int legacy_order, const filter_t *filter)
{
    weights_t wh = {0}, wv = {0};
    int need_h = need_horizontal(c), need_v = need_vertical(c);
    int oh = c->out_h, ow = c->out_w, h = c->height, w = c->width;
    int status = -1;
    uint8_t *scratch = NULL;
    if (make_weights(w, c->x0, c->x1, ow, filter, &wh) ||
        make_weights(h, c->y0, c->y1, oh, filter, &wv)) {
        goto done;
    }
    /* the result goes straight into `out` when it is channels-first, else into planes here */
    int planar_out = c->s_col == 1;
    size_t result_bytes = planar_out ? 0 : (size_t)channels * oh * ow;
    uint8_t *result;
    Py_ssize_t r_size, r_stride;
    const uint8_t *src = image + (Py_ssize_t)c->top * i_stride + (Py_ssize_t)c->left * channels;

    if (need_h && need_v && vertical_first(c, legacy_order)) {
        /* vertical pass on the interleaved rows, then split into transposed planes (w x oh) */
        size_t plane = (size_t)w * oh, across = (size_t)ow * oh;
        size_t work_bytes = (size_t)SPLIT_STRIP * w * channels;
        scratch = arena_get(1, 2 * channels * plane + work_bytes + channels * across + result_bytes);
        if (scratch == NULL) {
            goto done;
        }
        uint8_t *vrows = scratch, *work = vrows + channels * plane, *tv = work + work_bytes;
        uint8_t *u = tv + channels * plane;
        result = planar_out ? c->out : u + channels * across;
        r_size = planar_out ? c->s_chan : (Py_ssize_t)oh * ow;
        r_stride = planar_out ? c->s_row : ow;
        for (int y = 0; y < oh; y++) {
            weigh(src, i_stride, w * channels, wv.bounds[2 * y], wv.bounds[2 * y + 1],
                  wv.coeffs + (size_t)y * wv.ksize, vrows + (size_t)y * w * channels, 1, 0, 0);
        }
        split_transposed(vrows, (Py_ssize_t)w * channels, oh, w, channels, tv, plane, oh, work);
        for (int x = 0; x < ow; x++) { /* row x of u is output column x (mirrored), per channel */
            weigh(tv, oh, oh, wh.bounds[2 * x], wh.bounds[2 * x + 1],
                  wh.coeffs + (size_t)x * wh.ksize, u + (size_t)(c->flip ? ow - 1 - x : x) * oh,
                  channels, plane, across);
        }
        for (int ch = 0; ch < channels; ch++) {
            transpose_plane(u + ch * across, oh, ow, oh, result + ch * r_size, r_stride);
        }
    } else {
        /* rows of the crop the vertical pass reads */
        int row_first = need_v ? wv.bounds[0] : 0;
        int row_last = need_v ? wv.bounds[2 * oh - 2] + wv.bounds[2 * oh - 1] : h;
        int rows = row_last - row_first;
        size_t mid_plane = (size_t)rows * ow, across = need_h ? (size_t)ow * rows : 0;
        scratch = arena_get(1, channels * (mid_plane + across) + result_bytes);
        if (scratch == NULL) {
            goto done;
        }
        uint8_t *mid = scratch, *u = mid + channels * mid_plane;
        result = planar_out ? c->out : u + channels * across;
        r_size = planar_out ? c->s_chan : (Py_ssize_t)oh * ow;
        r_stride = planar_out ? c->s_row : ow;
        /* mid: planes of rows x ow, horizontally resized (and mirrored) */
        if (need_h) {
            const uint8_t *column =
                tr + (Py_ssize_t)(c->left - tx) * t_stride + (c->top + row_first - ty);
            for (int x = 0; x < ow; x++) { /* row x of u is output column x (mirrored) */
                weigh(column, t_stride, rows, wh.bounds[2 * x], wh.bounds[2 * x + 1],
                      wh.coeffs + (size_t)x * wh.ksize, u + (size_t)(c->flip ? ow - 1 - x : x) * rows,
                      channels, t_size, across);
            }
            for (int ch = 0; ch < channels; ch++) {
                transpose_plane(u + ch * across, rows, ow, rows, mid + ch * mid_plane, ow);
            }
        } else {
            split_rows(src + (Py_ssize_t)row_first * i_stride, i_stride, rows, w, channels, c->flip,
                       mid, mid_plane, ow);
        }
        for (int y = 0; y < oh; y++) {
            uint8_t *row = result + y * r_stride;
            if (need_v) { /* output row y of every channel */
                weigh(mid, ow, ow, wv.bounds[2 * y] - row_first, wv.bounds[2 * y + 1],
                      wv.coeffs + (size_t)y * wv.ksize, row, channels, mid_plane, r_size);
                continue;
            }
            for (int ch = 0; ch < channels; ch++) {
                memcpy(row + ch * r_size, mid + ch * mid_plane + (size_t)y * ow, ow);
            }
        }
    }
    if (!planar_out) { /* interleave the planes into out */
        for (int y = 0; y < oh; y++) {
            uint8_t *dst = c->out + y * c->s_row;
            for (int ch = 0; ch < channels; ch++) {
                const uint8_t *plane = result + ch * (size_t)oh * ow + (size_t)y * ow;
                uint8_t *d = dst + ch * c->s_chan;
                for (int x = 0; x < ow; x++) {
                    d[x * c->s_col] = plane[x];
                }
            }
        }
    }
    status = 0;
done:
    free_weights(&wh);
    free_weights(&wv);
    return status;
}

static PyObject *
resize_crops(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"image", "boxes", "flips", "outs", "horizontal_first", "bilinear",
                               "spans", NULL};
    int legacy_order = 0, use_bilinear = 0;
    Py_buffer image = {0};
    PyObject *image_obj, *boxes_obj, *flips_obj, *outs_obj, *spans_obj = Py_None;
    PyObject *boxes = NULL, *flips = NULL, *outs = NULL, *spans = NULL, *result = NULL;
    Py_buffer views[MAX_CROPS];
    crop_t crops[MAX_CROPS];
    Py_ssize_t n = 0, held = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO|ppO", keywords, &image_obj, &boxes_obj,
                                     &flips_obj, &outs_obj, &legacy_order, &use_bilinear,
                                     &spans_obj)) {
        return NULL;
    }
    if (PyObject_GetBuffer(image_obj, &image, PyBUF_STRIDES) < 0) {
        return NULL;
    }
    if (image.ndim != 3 || image.itemsize != 1 || image.shape[2] < 1 ||
        image.shape[2] > MAX_CHANNELS || image.strides[2] != 1 ||
        image.strides[1] != image.shape[2] || image.strides[0] < image.shape[1] * image.shape[2]) {
        PyErr_SetString(PyExc_ValueError,
                        "image must be a uint8 (height, width, channels) array with 1-4 "
                        "interleaved channels and rows of increasing address");
        goto done;
    }
    if (image.shape[0] > MAX_SIDE || image.shape[1] > MAX_SIDE) {
        PyErr_Format(PyExc_ValueError, "image is %zd x %zd pixels; each side must be at most %d",
                     image.shape[0], image.shape[1], MAX_SIDE);
        goto done;
    }
    int height = (int)image.shape[0], width = (int)image.shape[1], channels = (int)image.shape[2];
    boxes = PySequence_Fast(boxes_obj, "boxes must be a sequence of (top, left, height, width)");
    flips = PySequence_Fast(flips_obj, "flips must be a sequence of bools");
    outs = PySequence_Fast(outs_obj, "outs must be a sequence of arrays");
    if (boxes == NULL || flips == NULL || outs == NULL) {
        goto done;
    }
    n = PySequence_Fast_GET_SIZE(boxes);
    if (spans_obj != Py_None) {
        spans = PySequence_Fast(spans_obj, "spans must be None or a sequence of (x0, y0, x1, y1)");
        if (spans == NULL) {
            goto done;
        }
    }
    if (n > MAX_CROPS || PySequence_Fast_GET_SIZE(flips) != n || PySequence_Fast_GET_SIZE(outs) != n ||
        (spans != NULL && PySequence_Fast_GET_SIZE(spans) != n)) {
        PyErr_Format(PyExc_ValueError,
                     "boxes, flips, outs (and spans) must have the same length, at most %d",
                     MAX_CROPS);
        goto done;
    }
    int u_top = height, u_left = width, u_bottom = 0, u_right = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        crop_t *c = &crops[i];
        /* PyArg_ParseTuple takes tuples only (a list would raise SystemError) */
        PyObject *box = PySequence_Tuple(PySequence_Fast_GET_ITEM(boxes, i));
        int parsed = box != NULL &&
                     PyArg_ParseTuple(box, "iiii;a box is (top, left, height, width)", &c->top,
                                      &c->left, &c->height, &c->width);
        Py_XDECREF(box);
        if (!parsed) {
            goto done;
        }
        /* in 64 bits: top + height must not wrap past INT_MAX into the image */
        if (c->top < 0 || c->left < 0 || c->height < 1 || c->width < 1 ||
            (long long)c->top + c->height > height || (long long)c->left + c->width > width) {
            PyErr_Format(PyExc_ValueError, "box (%d, %d, %d, %d) is not inside the %d x %d image",
                         c->top, c->left, c->height, c->width, height, width);
            goto done;
        }
        c->x0 = 0;
        c->y0 = 0;
        c->x1 = (float)c->width;
        c->y1 = (float)c->height;
        if (spans != NULL && PySequence_Fast_GET_ITEM(spans, i) != Py_None) {
            /* single precision, as Pillow parses its box; Pillow's checks and messages */
            PyObject *span = PySequence_Tuple(PySequence_Fast_GET_ITEM(spans, i));
            parsed = span != NULL && PyArg_ParseTuple(span, "ffff;a span is (x0, y0, x1, y1)",
                                                      &c->x0, &c->y0, &c->x1, &c->y1);
            Py_XDECREF(span);
            if (!parsed) {
                goto done;
            }
            if (!isfinite(c->x0) || !isfinite(c->y0) || !isfinite(c->x1) || !isfinite(c->y1)) {
                PyErr_SetString(PyExc_ValueError, "box values must be finite numbers");
                goto done;
            }
            if (c->x0 < 0 || c->y0 < 0) {
                PyErr_SetString(PyExc_ValueError, "box offset can't be negative");
                goto done;
            }
            if (c->x1 > c->width || c->y1 > c->height) {
                PyErr_SetString(PyExc_ValueError, "box can't exceed original image size");
                goto done;
            }
            if (c->x1 - c->x0 < 0 || c->y1 - c->y0 < 0) {
                PyErr_SetString(PyExc_ValueError, "box can't be empty");
                goto done;
            }
        }
        c->flip = PyObject_IsTrue(PySequence_Fast_GET_ITEM(flips, i));
        if (c->flip < 0) {
            goto done;
        }
        Py_buffer *v = &views[i];
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(outs, i), v, PyBUF_STRIDES | PyBUF_WRITABLE) < 0) {
            goto done;
        }
        held++;
        if (v->ndim != 3 || v->itemsize != 1 || v->shape[2] != channels || v->shape[0] < 1 ||
            v->shape[1] < 1) {
            PyErr_Format(PyExc_ValueError,
                         "out %zd must be a writable uint8 (height, width, %d) array", i, channels);
            goto done;
        }
        if (v->shape[0] > MAX_SIDE || v->shape[1] > MAX_SIDE ||
            (long long)v->shape[0] * v->shape[1] * channels > MAX_OUT_BYTES) {
            PyErr_Format(PyExc_ValueError,
                         "out %zd is %zd x %zd x %d; each side must be at most %d and the whole "
                         "at most %lld bytes", i, v->shape[0], v->shape[1], channels, MAX_SIDE,
                         MAX_OUT_BYTES);
            goto done;
        }
        c->out = v->buf;
        c->out_h = (int)v->shape[0];
        c->out_w = (int)v->shape[1];
        c->s_row = v->strides[0];
        c->s_col = v->strides[1];
        c->s_chan = v->strides[2];
        if (need_horizontal(c) && !(need_vertical(c) && vertical_first(c, legacy_order))) {
            /* crops resized horizontally first read the transposed box */
            u_top = c->top < u_top ? c->top : u_top;
            u_left = c->left < u_left ? c->left : u_left;
            u_bottom = c->top + c->height > u_bottom ? c->top + c->height : u_bottom;
            u_right = c->left + c->width > u_right ? c->left + c->width : u_right;
        }
    }
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    uint8_t *tr = NULL;
    Py_ssize_t t_stride = 0, t_size = 0;
    if (u_bottom > u_top) {
        t_stride = u_bottom - u_top;
        t_size = t_stride * (u_right - u_left);
        tr = arena_get(0, (size_t)t_size * channels + (size_t)SPLIT_STRIP * (u_right - u_left) * channels);
        if (tr == NULL) {
            failed = 1;
        } else {
            split_transposed((const uint8_t *)image.buf + u_top * image.strides[0] + u_left * channels,
                             image.strides[0], u_bottom - u_top, u_right - u_left, channels, tr,
                             t_size, t_stride, tr + t_size * channels);
        }
    }
    for (Py_ssize_t i = 0; i < n && !failed; i++) {
        failed = resize_one(&crops[i], image.buf, image.strides[0], channels, tr, t_size, t_stride,
                            u_top, u_left, legacy_order, &FILTERS[use_bilinear ? 1 : 0]) != 0;
    }
    arena_trim();
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    for (Py_ssize_t i = 0; i < held; i++) {
        PyBuffer_Release(&views[i]);
    }
    Py_XDECREF(boxes);
    Py_XDECREF(flips);
    Py_XDECREF(outs);
    Py_XDECREF(spans);
    if (image.obj != NULL) {
        PyBuffer_Release(&image);
    }
    return result;
}

/* The weighting kernels this CPU can run, best last, found once at import. */
#define MAX_KERNELS 4
static const char *kernel_names[MAX_KERNELS];
static weigh_fn kernel_functions[MAX_KERNELS];
static int kernel_count = 0;

static void
add_kernel(const char *name, weigh_fn function)
{
    kernel_names[kernel_count] = name;
    kernel_functions[kernel_count++] = function;
}

static void
find_kernels(void)
{
    add_kernel("portable", weigh_portable);
#if HAVE_AVX2_PATH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) {
        add_kernel("avx2", weigh_avx2);
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) {
            add_kernel("avx512", weigh_avx512);
            if (__builtin_cpu_supports("avx512vnni")) {
                add_kernel("avx512vnni", weigh_avx512vnni);
            }
        }
    }
#endif
}

static PyObject *
kernels(PyObject *self, PyObject *unused)
{
    PyObject *result = PyTuple_New(kernel_count);
    for (int i = 0; result != NULL && i < kernel_count; i++) {
        PyObject *name = PyUnicode_FromString(kernel_names[i]);
        if (name == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyTuple_SET_ITEM(result, i, name);
    }
    return result;
}

static PyObject *
use_kernel(PyObject *self, PyObject *arg)
{
    const char *wanted = PyUnicode_AsUTF8(arg);
    if (wanted == NULL) {
        return NULL;
    }
    for (int i = 0; i < kernel_count; i++) {
        if (strcmp(wanted, kernel_names[i]) == 0) {
            weigh = kernel_functions[i];
            Py_RETURN_NONE;
        }
    }
    PyErr_Format(PyExc_ValueError, "kernel %R is not available here", arg);
    return NULL;
}

static PyMethodDef methods[] = {
    {"kernels", kernels, METH_NOARGS,
     "kernels()\n--\n\nThe weighting kernels this CPU can run, the one chosen at import last."},
    {"use_kernel", use_kernel, METH_O,
     "use_kernel(name)\n--\n\nSwitch every later call to kernel `name` (for tests and\n"
     "measurements; not to be called while other threads resize)."},
    {"resize_crops", (PyCFunction)(void (*)(void))resize_crops, METH_VARARGS | METH_KEYWORDS,
     "resize_crops(image, boxes, flips, outs, horizontal_first=False, bilinear=False, spans=None)\n"
     "--\n\n"
     "Resize crops of a uint8 (H, W, C) image into the given (h, w, C) arrays with Pillow's\n"
     "antialiased bicubic (or bilinear) filter, bit-identically; boxes are (top, left, height, width),\n"
     "flips mirror a view left to right; spans, per crop None or Pillow's resize box\n"
     "(x0, y0, x1, y1) inside it. Raises ValueError for bad shapes or boxes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_resample",
    "Pillow-exact antialiased resizing of many crops of one image (see resize_crops).",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__resample(void)
{
    if (kernel_count == 0) { /* a module re-initialised in the same process keeps its table */
        find_kernels();
    }
    weigh = kernel_functions[kernel_count - 1];
#if HAVE_AVX2_PATH
    make_split3_masks();
#endif
    return PyModule_Create(&module);
}
