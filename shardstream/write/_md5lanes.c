/* md5 of several buffers at once: eight independent md5 streams in the eight 32-bit lanes of
 * AVX2 registers (multi-buffer md5, as Intel's isa-l_crypto does it).
 *
 * md5 of one stream is serial: each of a block's 64 steps needs the previous one, so a core
 * hashes ~700 MB/s whatever it does. Eight streams side by side in one 256-bit register cost
 * about as much per block as one stream does, so a worker that has several shards to hash
 * (shardstream.write.md5lanes) gets several times the throughput. Each lane runs a buffer's
 * whole blocks in place, then its padded tail (one or two blocks built here); a lane whose
 * buffer ends takes the next buffer waiting (its state reset), an idle lane hashes a dummy
 * block whose result is never read. When at most SCALAR_LANES lanes are left and nothing waits,
 * they are finished one by one with the scalar compression below (cheaper than a mostly idle
 * vector). The AVX2 code is compiled with a target attribute and chosen at run time
 * (__builtin_cpu_supports), so the module builds and runs, scalar, without AVX2.
 * tests/write/test_md5lanes.py checks every path against hashlib.md5.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_AVX2_KERNEL 1
#include <immintrin.h>
#endif

#define LANES 8 /* the 32-bit lanes of an AVX2 register */
#define SCALAR_LANES 2 /* lanes left that are cheaper one by one than in a vector */

/* the 64 steps: function, registers, message word, constant, rotation (RFC 1321), index */
#define MD5_STEPS \
    STEP(F, a, b, c, d,  0, 0xd76aa478,  7,  0) \
    STEP(F, d, a, b, c,  1, 0xe8c7b756, 12,  1) \
    STEP(F, c, d, a, b,  2, 0x242070db, 17,  2) \
    STEP(F, b, c, d, a,  3, 0xc1bdceee, 22,  3) \
    STEP(F, a, b, c, d,  4, 0xf57c0faf,  7,  4) \
    STEP(F, d, a, b, c,  5, 0x4787c62a, 12,  5) \
    STEP(F, c, d, a, b,  6, 0xa8304613, 17,  6) \
    STEP(F, b, c, d, a,  7, 0xfd469501, 22,  7) \
    STEP(F, a, b, c, d,  8, 0x698098d8,  7,  8) \
    STEP(F, d, a, b, c,  9, 0x8b44f7af, 12,  9) \
    STEP(F, c, d, a, b, 10, 0xffff5bb1, 17, 10) \
    STEP(F, b, c, d, a, 11, 0x895cd7be, 22, 11) \
    STEP(F, a, b, c, d, 12, 0x6b901122,  7, 12) \
    STEP(F, d, a, b, c, 13, 0xfd987193, 12, 13) \
    STEP(F, c, d, a, b, 14, 0xa679438e, 17, 14) \
    STEP(F, b, c, d, a, 15, 0x49b40821, 22, 15) \
    STEP(G, a, b, c, d,  1, 0xf61e2562,  5, 16) \
    STEP(G, d, a, b, c,  6, 0xc040b340,  9, 17) \
    STEP(G, c, d, a, b, 11, 0x265e5a51, 14, 18) \
    STEP(G, b, c, d, a,  0, 0xe9b6c7aa, 20, 19) \
    STEP(G, a, b, c, d,  5, 0xd62f105d,  5, 20) \
    STEP(G, d, a, b, c, 10, 0x02441453,  9, 21) \
    STEP(G, c, d, a, b, 15, 0xd8a1e681, 14, 22) \
    STEP(G, b, c, d, a,  4, 0xe7d3fbc8, 20, 23) \
    STEP(G, a, b, c, d,  9, 0x21e1cde6,  5, 24) \
    STEP(G, d, a, b, c, 14, 0xc33707d6,  9, 25) \
    STEP(G, c, d, a, b,  3, 0xf4d50d87, 14, 26) \
    STEP(G, b, c, d, a,  8, 0x455a14ed, 20, 27) \
    STEP(G, a, b, c, d, 13, 0xa9e3e905,  5, 28) \
    STEP(G, d, a, b, c,  2, 0xfcefa3f8,  9, 29) \
    STEP(G, c, d, a, b,  7, 0x676f02d9, 14, 30) \
    STEP(G, b, c, d, a, 12, 0x8d2a4c8a, 20, 31) \
    STEP(H, a, b, c, d,  5, 0xfffa3942,  4, 32) \
    STEP(H, d, a, b, c,  8, 0x8771f681, 11, 33) \
    STEP(H, c, d, a, b, 11, 0x6d9d6122, 16, 34) \
    STEP(H, b, c, d, a, 14, 0xfde5380c, 23, 35) \
    STEP(H, a, b, c, d,  1, 0xa4beea44,  4, 36) \
    STEP(H, d, a, b, c,  4, 0x4bdecfa9, 11, 37) \
    STEP(H, c, d, a, b,  7, 0xf6bb4b60, 16, 38) \
    STEP(H, b, c, d, a, 10, 0xbebfbc70, 23, 39) \
    STEP(H, a, b, c, d, 13, 0x289b7ec6,  4, 40) \
    STEP(H, d, a, b, c,  0, 0xeaa127fa, 11, 41) \
    STEP(H, c, d, a, b,  3, 0xd4ef3085, 16, 42) \
    STEP(H, b, c, d, a,  6, 0x04881d05, 23, 43) \
    STEP(H, a, b, c, d,  9, 0xd9d4d039,  4, 44) \
    STEP(H, d, a, b, c, 12, 0xe6db99e5, 11, 45) \
    STEP(H, c, d, a, b, 15, 0x1fa27cf8, 16, 46) \
    STEP(H, b, c, d, a,  2, 0xc4ac5665, 23, 47) \
    STEP(I, a, b, c, d,  0, 0xf4292244,  6, 48) \
    STEP(I, d, a, b, c,  7, 0x432aff97, 10, 49) \
    STEP(I, c, d, a, b, 14, 0xab9423a7, 15, 50) \
    STEP(I, b, c, d, a,  5, 0xfc93a039, 21, 51) \
    STEP(I, a, b, c, d, 12, 0x655b59c3,  6, 52) \
    STEP(I, d, a, b, c,  3, 0x8f0ccc92, 10, 53) \
    STEP(I, c, d, a, b, 10, 0xffeff47d, 15, 54) \
    STEP(I, b, c, d, a,  1, 0x85845dd1, 21, 55) \
    STEP(I, a, b, c, d,  8, 0x6fa87e4f,  6, 56) \
    STEP(I, d, a, b, c, 15, 0xfe2ce6e0, 10, 57) \
    STEP(I, c, d, a, b,  6, 0xa3014314, 15, 58) \
    STEP(I, b, c, d, a, 13, 0x4e0811a1, 21, 59) \
    STEP(I, a, b, c, d,  4, 0xf7537e82,  6, 60) \
    STEP(I, d, a, b, c, 11, 0xbd3af235, 10, 61) \
    STEP(I, c, d, a, b,  2, 0x2ad7d2bb, 15, 62) \
    STEP(I, b, c, d, a,  9, 0xeb86d391, 21, 63)

static const uint32_t md5_iv[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};

static inline uint32_t
load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
md5_blocks_scalar(uint32_t state[4], const uint8_t *p, size_t blocks)
{
#define F(b, c, d) ((d) ^ ((b) & ((c) ^ (d))))
#define G(b, c, d) ((c) ^ ((d) & ((b) ^ (c))))
#define H(b, c, d) ((b) ^ (c) ^ (d))
#define I(b, c, d) ((c) ^ ((b) | ~(d)))
#define STEP(f, a, b, c, d, g, k, s, i)              \
    a += f(b, c, d) + m[g] + (uint32_t)(k);          \
    a = (a << (s) | a >> (32 - (s))) + b;
    uint32_t m[16];
    for (; blocks > 0; blocks--, p += 64) {
        for (int i = 0; i < 16; i++) {
            m[i] = load_le32(p + 4 * i);
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        MD5_STEPS
        state[0] += a;
        state[1] += b;
        state[2] += c;
        state[3] += d;
    }
#undef STEP
#undef F
#undef G
#undef H
#undef I
}

#ifdef HAVE_AVX2_KERNEL
/* 8 rows of 8 words (one 32-byte load per lane) into 8 vectors of one word per lane */
#define TRANSPOSE8(r, out)                                                   \
    do {                                                                     \
        __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]);                      \
        __m256i t1 = _mm256_unpackhi_epi32(r[0], r[1]);                      \
        __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]);                      \
        __m256i t3 = _mm256_unpackhi_epi32(r[2], r[3]);                      \
        __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]);                      \
        __m256i t5 = _mm256_unpackhi_epi32(r[4], r[5]);                      \
        __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]);                      \
        __m256i t7 = _mm256_unpackhi_epi32(r[6], r[7]);                      \
        __m256i u0 = _mm256_unpacklo_epi64(t0, t2);                          \
        __m256i u1 = _mm256_unpackhi_epi64(t0, t2);                          \
        __m256i u2 = _mm256_unpacklo_epi64(t1, t3);                          \
        __m256i u3 = _mm256_unpackhi_epi64(t1, t3);                          \
        __m256i u4 = _mm256_unpacklo_epi64(t4, t6);                          \
        __m256i u5 = _mm256_unpackhi_epi64(t4, t6);                          \
        __m256i u6 = _mm256_unpacklo_epi64(t5, t7);                          \
        __m256i u7 = _mm256_unpackhi_epi64(t5, t7);                          \
        (out)[0] = _mm256_permute2x128_si256(u0, u4, 0x20);                  \
        (out)[1] = _mm256_permute2x128_si256(u1, u5, 0x20);                  \
        (out)[2] = _mm256_permute2x128_si256(u2, u6, 0x20);                  \
        (out)[3] = _mm256_permute2x128_si256(u3, u7, 0x20);                  \
        (out)[4] = _mm256_permute2x128_si256(u0, u4, 0x31);                  \
        (out)[5] = _mm256_permute2x128_si256(u1, u5, 0x31);                  \
        (out)[6] = _mm256_permute2x128_si256(u2, u6, 0x31);                  \
        (out)[7] = _mm256_permute2x128_si256(u3, u7, 0x31);                  \
    } while (0)

#define VF(b, c, d) _mm256_xor_si256(d, _mm256_and_si256(b, _mm256_xor_si256(c, d)))
#define VG(b, c, d) _mm256_xor_si256(c, _mm256_and_si256(d, _mm256_xor_si256(b, c)))
#define VH(b, c, d) _mm256_xor_si256(_mm256_xor_si256(b, c), d)
#define VI(b, c, d) _mm256_xor_si256(_mm256_andnot_si256(b, d), _mm256_xor_si256(c, ones))
#define VSTEP(f, a, b, c, d, g, k, s, i)                                                  \
    a = _mm256_add_epi32(a, _mm256_add_epi32(m[g], _mm256_load_si256(&md5_k8[i])));       \
    a = _mm256_add_epi32(a, V##f(b, c, d));                                               \
    a = _mm256_add_epi32(b, _mm256_or_si256(_mm256_slli_epi32(a, s), _mm256_srli_epi32(a, 32 - (s))));

/* the 64 constants, each broadcast to the 8 lanes (filled at import: md5_k8_init) */
static __m256i md5_k8[64];

__attribute__((target("avx2"))) static void
md5_k8_init(void)
{
#define STEP(f, a, b, c, d, g, k, s, i) md5_k8[i] = _mm256_set1_epi32((int)(k));
    MD5_STEPS
#undef STEP
}

#define VLOAD(w) _mm256_loadu_si256((const __m256i *)state[w])
#define VSTORE(w, v) _mm256_storeu_si256((__m256i *)state[w], v)

/* the message words of block i of the vector lanes, transposed into m[16] */
#define VMESSAGE(i)                                                                   \
    do {                                                                              \
        __m256i rows[LANES];                                                          \
        for (int l = 0; l < LANES; l++) {                                             \
            rows[l] = _mm256_loadu_si256((const __m256i *)(base[l] + step[l] * (i))); \
        }                                                                             \
        TRANSPOSE8(rows, m);                                                          \
        for (int l = 0; l < LANES; l++) {                                             \
            rows[l] = _mm256_loadu_si256((const __m256i *)(base[l] + step[l] * (i) + 32));\
        }                                                                             \
        TRANSPOSE8(rows, m + 8);                                                      \
    } while (0)

/* ``blocks`` blocks of the vector lanes: lane l reads base[l] + step[l] * i for block i */
__attribute__((target("avx2"))) static void
md5_blocks_x8(uint32_t state[4][LANES], const uint8_t *const base[LANES],
              const size_t step[LANES], size_t blocks)
{
#define STEP(f, a, b, c, d, g, k, s, i) VSTEP(f, a, b, c, d, g, k, s, i)
    const __m256i ones = _mm256_set1_epi32(-1);
    __m256i a = VLOAD(0), b = VLOAD(1), c = VLOAD(2), d = VLOAD(3);
    for (size_t i = 0; i < blocks; i++) {
        __m256i m[16];
        VMESSAGE(i);
        __m256i sa = a, sb = b, sc = c, sd = d;
        MD5_STEPS
        a = _mm256_add_epi32(a, sa);
        b = _mm256_add_epi32(b, sb);
        c = _mm256_add_epi32(c, sc);
        d = _mm256_add_epi32(d, sd);
    }
    VSTORE(0, a);
    VSTORE(1, b);
    VSTORE(2, c);
    VSTORE(3, d);
#undef STEP
}

#endif

/* one buffer to hash; ``state`` ends as its digest */
typedef struct {
    const uint8_t *data;
    size_t length;
    uint32_t state[4];
} job_t;

/* md5's padding of the last ``length % 64`` bytes: 0x80, zeros, the bit length (1 or 2 blocks) */
static size_t
make_tail(uint8_t tail[128], const uint8_t *data, size_t length)
{
    size_t rest = length % 64;
    size_t blocks = rest < 56 ? 1 : 2;
    uint64_t bits = (uint64_t)length * 8;
    memset(tail, 0, 128);
    if (rest) {
        memcpy(tail, data + length - rest, rest);
    }
    tail[rest] = 0x80;
    for (int i = 0; i < 8; i++) {
        tail[blocks * 64 - 8 + i] = (uint8_t)(bits >> (8 * i));
    }
    return blocks;
}

static void
md5_one(job_t *job)
{
    uint8_t tail[128];
    memcpy(job->state, md5_iv, sizeof md5_iv);
    md5_blocks_scalar(job->state, job->data, job->length / 64);
    md5_blocks_scalar(job->state, tail, make_tail(tail, job->data, job->length));
}

#ifdef HAVE_AVX2_KERNEL
typedef struct {
    job_t *job; /* NULL: idle */
    const uint8_t *ptr; /* the segment being hashed: the buffer's whole blocks, then the tail */
    size_t blocks; /* its blocks left */
    int in_tail;
    size_t tail_blocks;
    uint8_t tail[128];
} lane_t;

static void
lane_start(lane_t *lane, job_t *job, uint32_t state[4][LANES], int l)
{
    lane->job = job;
    for (int w = 0; w < 4; w++) {
        state[w][l] = md5_iv[w];
    }
    lane->tail_blocks = make_tail(lane->tail, job->data, job->length);
    lane->ptr = job->data;
    lane->blocks = job->length / 64;
    lane->in_tail = 0;
    if (lane->blocks == 0) {
        lane->ptr = lane->tail;
        lane->blocks = lane->tail_blocks;
        lane->in_tail = 1;
    }
}

static void
md5_jobs_x8(job_t *jobs, size_t count)
{
    static const uint8_t idle_block[64];
    uint32_t state[4][LANES];
    lane_t lanes[LANES];
    size_t next = 0;
    int active = 0;
    memset(state, 0, sizeof state);
    for (int l = 0; l < LANES; l++) {
        lanes[l].job = NULL;
        if (next < count) {
            lane_start(&lanes[l], &jobs[next++], state, l);
            active++;
        }
    }
    while (active > 0) {
        if (active <= SCALAR_LANES && next == count) {
            for (int l = 0; l < LANES; l++) {
                lane_t *lane = &lanes[l];
                if (lane->job == NULL) {
                    continue;
                }
                for (int w = 0; w < 4; w++) {
                    lane->job->state[w] = state[w][l];
                }
                md5_blocks_scalar(lane->job->state, lane->ptr, lane->blocks);
                if (!lane->in_tail) {
                    md5_blocks_scalar(lane->job->state, lane->tail, lane->tail_blocks);
                }
                lane->job = NULL;
            }
            return;
        }
        const uint8_t *base[LANES];
        size_t step[LANES];
        size_t run = SIZE_MAX;
        for (int l = 0; l < LANES; l++) {
            if (lanes[l].job != NULL) {
                base[l] = lanes[l].ptr;
                step[l] = 64;
                run = lanes[l].blocks < run ? lanes[l].blocks : run;
            }
            else {
                base[l] = idle_block;
                step[l] = 0;
            }
        }
        md5_blocks_x8(state, base, step, run);
        for (int l = 0; l < LANES; l++) {
            lane_t *lane = &lanes[l];
            if (lane->job == NULL) {
                continue;
            }
            lane->ptr += 64 * run;
            lane->blocks -= run;
            if (lane->blocks > 0) {
                continue;
            }
            if (!lane->in_tail) {
                lane->ptr = lane->tail;
                lane->blocks = lane->tail_blocks;
                lane->in_tail = 1;
                continue;
            }
            for (int w = 0; w < 4; w++) {
                lane->job->state[w] = state[w][l];
            }
            lane->job = NULL;
            active--;
            if (next < count) {
                lane_start(lane, &jobs[next++], state, l);
                active++;
            }
        }
    }
}
#endif

static int
has_avx2(void)
{
#ifdef HAVE_AVX2_KERNEL
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
#else
    return 0;
#endif
}

static PyObject *
md5lanes_hexdigests(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"buffers", "vector", NULL};
    PyObject *buffers;
    int vector = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$p:hexdigests", keywords, &buffers,
                                     &vector)) {
        return NULL;
    }
    PyObject *sequence = PySequence_Fast(buffers, "buffers must be a sequence");
    if (sequence == NULL) {
        return NULL;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    Py_buffer *views = PyMem_Calloc(count ? (size_t)count : 1, sizeof(Py_buffer));
    job_t *jobs = PyMem_Calloc(count ? (size_t)count : 1, sizeof(job_t));
    PyObject *result = NULL;
    Py_ssize_t held = 0;
    if (views == NULL || jobs == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; held < count; held++) {
        PyObject *item = PySequence_Fast_GET_ITEM(sequence, held);
        if (PyObject_GetBuffer(item, &views[held], PyBUF_SIMPLE) < 0) {
            goto done;
        }
        jobs[held].data = views[held].buf;
        jobs[held].length = (size_t)views[held].len;
    }
    Py_BEGIN_ALLOW_THREADS
#ifdef HAVE_AVX2_KERNEL
    if (vector && count > SCALAR_LANES && has_avx2()) {
        md5_jobs_x8(jobs, (size_t)count);
    }
    else
#endif
    {
        for (Py_ssize_t i = 0; i < count; i++) {
            md5_one(&jobs[i]);
        }
    }
    Py_END_ALLOW_THREADS
    result = PyList_New(count);
    for (Py_ssize_t i = 0; result != NULL && i < count; i++) {
        static const char digits[] = "0123456789abcdef";
        char hex[32];
        for (int b = 0; b < 16; b++) {
            uint8_t byte = (uint8_t)(jobs[i].state[b / 4] >> (8 * (b % 4)));
            hex[2 * b] = digits[byte >> 4];
            hex[2 * b + 1] = digits[byte & 15];
        }
        PyObject *text = PyUnicode_FromStringAndSize(hex, 32);
        if (text == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, i, text);
    }
done:
    for (Py_ssize_t i = 0; i < held; i++) {
        PyBuffer_Release(&views[i]);
    }
    PyMem_Free(views);
    PyMem_Free(jobs);
    Py_DECREF(sequence);
    return result;
}

static PyObject *
md5lanes_avx2(PyObject *module, PyObject *unused)
{
    return PyBool_FromLong(has_avx2());
}

static PyMethodDef md5lanes_methods[] = {
    {"hexdigests", (PyCFunction)(void (*)(void))md5lanes_hexdigests, METH_VARARGS | METH_KEYWORDS,
     "hexdigests(buffers, *, vector=True) -> list[str]: the md5 hex digest of each buffer, "
     "hashed eight at a time in AVX2 lanes (vector=False, or without AVX2: one by one)."},
    {"avx2", md5lanes_avx2, METH_NOARGS, "avx2() -> bool: whether the lanes kernel runs here."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef md5lanes_module = {
    PyModuleDef_HEAD_INIT, "_md5lanes",
    "md5 of several buffers at once in AVX2 lanes (see _md5lanes.c).", -1, md5lanes_methods,
};

PyMODINIT_FUNC
PyInit__md5lanes(void)
{
#ifdef HAVE_AVX2_KERNEL
    if (has_avx2()) {
        md5_k8_init();
    }
#endif
    PyObject *module = PyModule_Create(&md5lanes_module);
    if (module != NULL && PyModule_AddIntConstant(module, "LANES", LANES) < 0) {
        Py_CLEAR(module);
    }
    return module;
}
