/* iBOT block masks drawn exactly as shardstream.vision.masking.sample_masks draws them, in C.
 *
 * sample_masks seeds a Python random.Random from the sample's numpy generator and places dinov2's
 * random rectangles with it; in a loader worker that Python loop costs as much as a tenth of the
 * whole DINO sample. This module replays the very same draws: CPython's random.Random is the
 * Mersenne Twister MT19937 seeded by init_by_array with the seed's 32-bit words (least
 * significant first), random() takes two outputs (a >> 5, b >> 6) into a 53-bit double,
 * uniform(a, b) is a + (b - a) * random(), and randint(0, n - 1) draws bit_length(n) high bits
 * of an output until they fall below n. Rounding is Python's round() (half to even, nearbyint in
 * the default rounding mode), exp and sqrt are the C library's, as Python's math module uses, and
 * the build turns off fused multiply-add so that every product and sum rounds as Python's do.
 * tests/vision/test_masking.py checks the masks against a Python replay.
 *
 * rrc_boxes() draws torchvision's random-resized-crop boxes and the flips exactly as
 * shardstream.vision.crops.rrc_box and DinoPreset.plan do, from the sample's numpy Generator
 * itself (its BitGenerator's C interface, numpy/random/bitgen.h): Generator.random() is one
 * next_double(), Generator.integers(0, n) for n - 1 < 2**32 - 1 is numpy's Lemire rejection on
 * next_uint32() (nothing drawn for n == 1), as numpy's random_bounded_uint64_fill does. The
 * generator ends in the same state; tests/vision/test_device_views.py checks boxes, flips and the
 * state against the Python draws.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>

#define MT_N 624
#define MT_M 397
#define ATTEMPTS_PER_BLOCK 10 /* masking.ATTEMPTS_PER_BLOCK */

typedef struct {
    uint32_t state[MT_N];
    int index;
} mt_t;

static void
mt_init(mt_t *mt, uint32_t seed)
{
    mt->state[0] = seed;
    for (int i = 1; i < MT_N; i++) {
        mt->state[i] = 1812433253U * (mt->state[i - 1] ^ (mt->state[i - 1] >> 30)) + (uint32_t)i;
    }
    mt->index = MT_N;
}

static void
mt_init_by_array(mt_t *mt, const uint32_t *key, int length)
{
    mt_init(mt, 19650218U);
    int i = 1, j = 0;
    for (int k = MT_N > length ? MT_N : length; k > 0; k--) {
        uint32_t previous = mt->state[i - 1] ^ (mt->state[i - 1] >> 30);
        mt->state[i] = (mt->state[i] ^ (previous * 1664525U)) + key[j] + (uint32_t)j;
        i++;
        j++;
        if (i >= MT_N) {
            mt->state[0] = mt->state[MT_N - 1];
            i = 1;
        }
        if (j >= length) {
            j = 0;
        }
    }
    for (int k = MT_N - 1; k > 0; k--) {
        uint32_t previous = mt->state[i - 1] ^ (mt->state[i - 1] >> 30);
        mt->state[i] = (mt->state[i] ^ (previous * 1566083941U)) - (uint32_t)i;
        i++;
        if (i >= MT_N) {
            mt->state[0] = mt->state[MT_N - 1];
            i = 1;
        }
    }
    mt->state[0] = 0x80000000U;
    mt->index = MT_N;
}

static uint32_t
mt_next(mt_t *mt)
{
    if (mt->index >= MT_N) {
        static const uint32_t twist[2] = {0U, 0x9908b0dfU};
        for (int k = 0; k < MT_N; k++) {
            uint32_t y = (mt->state[k] & 0x80000000U) | (mt->state[(k + 1) % MT_N] & 0x7fffffffU);
            mt->state[k] = mt->state[(k + MT_M) % MT_N] ^ (y >> 1) ^ twist[y & 1U];
        }
        mt->index = 0;
    }
    uint32_t y = mt->state[mt->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= y >> 18;
    return y;
}

static double
mt_random(mt_t *mt)
{
    uint32_t a = mt_next(mt) >> 5, b = mt_next(mt) >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

static double
mt_uniform(mt_t *mt, double a, double b)
{
    return a + (b - a) * mt_random(mt);
}

/* random.Random._randbelow(n) for 1 <= n < 2**32 */
static long
mt_below(mt_t *mt, uint32_t n)
{
    int shift = __builtin_clz(n); /* 32 - n.bit_length() */
    uint32_t r = mt_next(mt) >> shift;
    while (r >= n) {
        r = mt_next(mt) >> shift;
    }
    return (long)r;
}

typedef struct {
    int height, width;
    double min_patches, max_patches, log_low, log_high;
} grid_t;

/* MaskingGenerator._place_block: one rectangle adding 1..budget new patches, or 0. */
static long
place_block(mt_t *mt, const grid_t *g, uint8_t *mask, double budget)
{
    for (int attempt = 0; attempt < ATTEMPTS_PER_BLOCK; attempt++) {
        double area = mt_uniform(mt, g->min_patches, budget);
        double aspect = exp(mt_uniform(mt, g->log_low, g->log_high));
        double h_real = nearbyint(sqrt(area * aspect)), w_real = nearbyint(sqrt(area / aspect));
        if (!(w_real < g->width && h_real < g->height)) {
            continue;
        }
        long h = (long)h_real, w = (long)w_real;
        long top = mt_below(mt, (uint32_t)(g->height - h + 1));
        long left = mt_below(mt, (uint32_t)(g->width - w + 1));
        long masked = 0;
        for (long y = top; y < top + h; y++) {
            for (long x = left; x < left + w; x++) {
                masked += mask[y * g->width + x] != 0;
            }
        }
        long added = h * w - masked;
        if (0 < added && added <= budget) {
            for (long y = top; y < top + h; y++) {
                for (long x = left; x < left + w; x++) {
                    mask[y * g->width + x] = 1;
                }
            }
            return added;
        }
    }
    return 0;
}

static PyObject *
sample_masks(PyObject *self, PyObject *args)
{
    Py_buffer masks = {0};
    PyObject *seed_obj;
    int n_masks, n_tokens;
    double probability, low, high;
    grid_t g;
    if (!PyArg_ParseTuple(args, "w*iiiOdddidddd", &masks, &n_masks, &g.height, &g.width, &seed_obj,
                          &probability, &low, &high, &n_tokens, &g.min_patches, &g.max_patches,
                          &g.log_low, &g.log_high)) {
        return NULL;
    }
    /* the size in 64 bits with overflow checks: a product that wraps (to 0, say) must not pass */
    long long cells = 0, needed = 0;
    if (n_masks < 0 || g.height < 1 || g.width < 1 ||
        __builtin_mul_overflow((long long)g.height, (long long)g.width, &cells) ||
        __builtin_mul_overflow(cells, (long long)n_masks, &needed) ||
        (long long)masks.len != needed) {
        PyBuffer_Release(&masks);
        PyErr_SetString(PyExc_ValueError,
                        "masks must hold n_masks * height * width zeroed bytes of a positive grid");
        return NULL;
    }
    /* int(n_tokens * uniform(low, high)) must be a finite number Python's int() takes */
    if (n_tokens < 0 || !(0.0 <= low && low <= high && high <= 1.0) ||
        !(0.0 <= probability && probability <= 1.0)) {
        PyBuffer_Release(&masks);
        PyErr_SetString(PyExc_ValueError,
                        "need n_tokens >= 0, 0 <= low <= high <= 1 and 0 <= probability <= 1");
        return NULL;
    }
    /* the seed's 32-bit words, least significant first, as random.Random.seed takes an int */
    uint32_t key[2];
    int length = 1;
    unsigned long long seed = PyLong_AsUnsignedLongLong(seed_obj);
    if (seed == (unsigned long long)-1 && PyErr_Occurred()) {
        PyBuffer_Release(&masks);
        return NULL;
    }
    key[0] = (uint32_t)seed;
    key[1] = (uint32_t)(seed >> 32);
    if (key[1] != 0) {
        length = 2;
    }
    mt_t mt;
    mt_init_by_array(&mt, key, length);
    uint8_t *out = masks.buf;
    long nonempty = 0;
    for (int i = 0; i < n_masks; i++) {
        if (!(mt_random(&mt) < probability)) {
            continue;
        }
        long target = (long)(n_tokens * mt_uniform(&mt, low, high)); /* int() truncates */
        uint8_t *mask = out + (Py_ssize_t)i * cells;
        long count = 0;
        while (count < target) {
            double budget = (double)(target - count) < g.max_patches ? (double)(target - count)
                                                                     : g.max_patches;
            long added = place_block(&mt, &g, mask, budget);
            if (added == 0) {
                break;
            }
            count += added;
        }
        nonempty += count > 0;
    }
    PyBuffer_Release(&masks);
    return PyLong_FromLong(nonempty);
}

/* numpy/random/bitgen.h (the layout is part of numpy's C API since 1.17) */
typedef struct {
    void *state;
    uint64_t (*next_uint64)(void *st);
    uint32_t (*next_uint32)(void *st);
    double (*next_double)(void *st);
    uint64_t (*next_raw)(void *st);
} bitgen_t;

/* Generator.integers(0, n) for 1 <= n < 2**32: numpy's buffered_bounded_lemire_uint32 */
static long
np_below(bitgen_t *g, uint32_t n)
{
    uint32_t rng = n - 1;
    if (rng == 0) {
        return 0;
    }
    uint32_t rng_excl = n;
    uint64_t m = (uint64_t)g->next_uint32(g->state) * rng_excl;
    uint32_t leftover = (uint32_t)(m & 0xFFFFFFFFULL);
    if (leftover < rng_excl) {
        uint32_t threshold = (UINT32_MAX - rng) % rng_excl;
        while (leftover < threshold) {
            m = (uint64_t)g->next_uint32(g->state) * rng_excl;
            leftover = (uint32_t)(m & 0xFFFFFFFFULL);
        }
    }
    return (long)(m >> 32);
}

/* crops.rrc_box: torchvision's RandomResizedCrop.get_params with numpy draws */
static void
rrc_box(bitgen_t *g, long height, long width, double scale_lo, double scale_hi, double ratio_lo,
        double ratio_hi, double log_lo, double log_hi, int64_t *out)
{
    double area = (double)(height * width);
    double scale_span = scale_hi - scale_lo, log_span = log_hi - log_lo;
    for (int attempt = 0; attempt < 10; attempt++) {
        double target_area = area * (scale_lo + scale_span * g->next_double(g->state));
        double aspect = exp(log_lo + log_span * g->next_double(g->state));
        double w_real = nearbyint(sqrt(target_area * aspect));
        double h_real = nearbyint(sqrt(target_area / aspect));
        if (0 < w_real && w_real <= (double)width && 0 < h_real && h_real <= (double)height) {
            long h = (long)h_real, w = (long)w_real;
            out[0] = np_below(g, (uint32_t)(height - h + 1));
            out[1] = np_below(g, (uint32_t)(width - w + 1));
            out[2] = h;
            out[3] = w;
            return;
        }
    }
    double in_ratio = (double)width / (double)height;
    long h = height, w = width;
    if (in_ratio < ratio_lo) {
        h = (long)nearbyint((double)w / ratio_lo);
    } else if (in_ratio > ratio_hi) {
        w = (long)nearbyint((double)h * ratio_hi);
    }
    /* Python's // floors; these differences are never negative here */
    out[0] = (height - h) / 2;
    out[1] = (width - w) / 2;
    out[2] = h;
    out[3] = w;
}

static PyObject *
rrc_boxes(PyObject *self, PyObject *args)
{
    PyObject *capsule;
    Py_buffer scales = {0}, boxes = {0}, flips = {0};
    long height, width;
    double ratio_lo, ratio_hi, log_lo, log_hi;
    (void)self;
    if (!PyArg_ParseTuple(args, "Ollddddy*w*w*", &capsule, &height, &width, &ratio_lo, &ratio_hi,
                          &log_lo, &log_hi, &scales, &boxes, &flips)) {
        return NULL;
    }
    Py_ssize_t n = flips.len;
    bitgen_t *g = PyCapsule_GetPointer(capsule, "BitGenerator");
    if (g == NULL) {
        goto fail;
    }
    if (height < 1 || width < 1 || height >= (1L << 31) || width >= (1L << 31) ||
        scales.len != n * 2 * (Py_ssize_t)sizeof(double) ||
        boxes.len != n * 4 * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError,
                        "need 1 <= height, width < 2**31, scales of n x 2 float64, boxes of "
                        "n x 4 int64 and flips of n bytes");
        goto fail;
    }
    const double *scale = scales.buf;
    int64_t *out = boxes.buf;
    uint8_t *flip = flips.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        rrc_box(g, height, width, scale[2 * i], scale[2 * i + 1], ratio_lo, ratio_hi, log_lo,
                log_hi, out + 4 * i);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        flip[i] = g->next_double(g->state) < 0.5;
    }
    PyBuffer_Release(&scales);
    PyBuffer_Release(&boxes);
    PyBuffer_Release(&flips);
    Py_RETURN_NONE;
fail:
    PyBuffer_Release(&scales);
    PyBuffer_Release(&boxes);
    PyBuffer_Release(&flips);
    return NULL;
}

/* ---- seed_words(): the words a sample's PCG64 is seeded with ------------------------------
 *
 * numpy's SeedSequence([seed, epoch], spawn_key=(position,)).generate_state(4, np.uint64), the
 * only thing PCG64 asks of a seed sequence (shardstream.order.samplers.seeds.sample_rng), without
 * numpy's Python-level steps (~10 us a sample): the entropy words are seed, epoch, two zero words
 * (numpy pads the run entropy to the pool size when there is a spawn key) and the position's
 * 32-bit words, least significant first (one word for 0); the pool of 4 words is hashed and mixed
 * as numpy's mix_entropy does, then hashed out into 8 words taken pairwise (low word first) as
 * little-endian uint64s. tests/loader/test_sample_streams.py checks it against numpy. */

#define SS_INIT_A 0x43b0d7e5u
#define SS_MULT_A 0x931e8875u
#define SS_INIT_B 0x8b51f9ddu
#define SS_MULT_B 0x58f38dedu
#define SS_MIX_L 0xca01f9ddu
#define SS_MIX_R 0x4973f715u

static uint32_t
ss_hashmix(uint32_t value, uint32_t *hash_const)
{
    value ^= *hash_const;
    *hash_const *= SS_MULT_A;
    value *= *hash_const;
    value ^= value >> 16;
    return value;
}

static uint32_t
ss_mix(uint32_t x, uint32_t y)
{
    uint32_t result = SS_MIX_L * x - SS_MIX_R * y;
    result ^= result >> 16;
    return result;
}

static PyObject *
seed_words(PyObject *self, PyObject *args)
{
    PyObject *seed_obj, *epoch_obj, *position_obj;
    unsigned long long seed, epoch, position;
    uint32_t entropy[6], pool[4], hash_const = SS_INIT_A, state[8];
    uint64_t out[4];
    int n = 4, i, j;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyLong_Type, &seed_obj, &PyLong_Type, &epoch_obj,
                          &PyLong_Type, &position_obj))
        return NULL;
    /* OverflowError for negative values or values of 2**64 and more */
    seed = PyLong_AsUnsignedLongLong(seed_obj);
    if (seed == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    epoch = PyLong_AsUnsignedLongLong(epoch_obj);
    if (epoch == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    position = PyLong_AsUnsignedLongLong(position_obj);
    if (position == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (seed > 0xffffffffULL || epoch > 0xffffffffULL) {
        PyErr_SetString(PyExc_ValueError, "seed and epoch must be below 2**32");
        return NULL;
    }
    entropy[0] = (uint32_t)seed;
    entropy[1] = (uint32_t)epoch;
    entropy[2] = entropy[3] = 0;
    entropy[n++] = (uint32_t)(position & 0xffffffffu);
    if (position >> 32)
        entropy[n++] = (uint32_t)(position >> 32);
    for (i = 0; i < 4; i++)
        pool[i] = ss_hashmix(entropy[i], &hash_const);
    for (i = 0; i < 4; i++)
        for (j = 0; j < 4; j++)
            if (i != j)
                pool[j] = ss_mix(pool[j], ss_hashmix(pool[i], &hash_const));
    for (i = 4; i < n; i++)
        for (j = 0; j < 4; j++)
            pool[j] = ss_mix(pool[j], ss_hashmix(entropy[i], &hash_const));
    hash_const = SS_INIT_B;
    for (i = 0; i < 8; i++) {
        uint32_t value = pool[i % 4] ^ hash_const;
        hash_const *= SS_MULT_B;
        value *= hash_const;
        value ^= value >> 16;
        state[i] = value;
    }
    for (i = 0; i < 4; i++)
        out[i] = (uint64_t)state[2 * i] | ((uint64_t)state[2 * i + 1] << 32);
    return Py_BuildValue("KKKK", (unsigned long long)out[0], (unsigned long long)out[1],
                         (unsigned long long)out[2], (unsigned long long)out[3]);
}

static PyMethodDef methods[] = {
    {"sample_masks", sample_masks, METH_VARARGS,
     "sample_masks(masks, n_masks, height, width, seed, probability, low, high, n_tokens,\n"
     "             min_patches, max_patches, log_aspect_low, log_aspect_high)\n--\n\n"
     "Fill the zeroed bool buffer masks (n_masks x height x width) as\n"
     "shardstream.vision.masking.sample_masks does with random.Random(seed), seed < 2**64;\n"
     "return how many masks have a masked patch. Raises ValueError when the buffer's size is not\n"
     "n_masks * height * width (checked without overflow) or a probability or ratio is outside\n"
     "[0, 1]."},
    {"rrc_boxes", rrc_boxes, METH_VARARGS,
     "rrc_boxes(capsule, height, width, ratio_lo, ratio_hi, log_ratio_lo, log_ratio_hi, scales,\n"
     "          boxes, flips)\n--\n\n"
     "Draw len(flips) random-resized-crop boxes (scales: float64 (n, 2) area fractions (lo, hi)\n"
     "per box) into boxes (int64 (n, 4): top, left, h, w), then one flip per box (random() < 0.5)\n"
     "into flips (bool (n,)), from the BitGenerator whose capsule is given (hold its lock), as\n"
     "shardstream.vision.crops.rrc_box and rng.random(n) < 0.5 draw them. Raises ValueError for\n"
     "sizes outside [1, 2**31) or buffers of the wrong size."},
    {"seed_words", seed_words, METH_VARARGS,
     "seed_words(seed, epoch, position)\n--\n\n"
     "numpy's SeedSequence([seed, epoch], spawn_key=(position,)).generate_state(4, np.uint64)\n"
     "as a tuple of 4 ints, for seed and epoch below 2**32 and position below 2**64. Raises\n"
     "ValueError or OverflowError outside those ranges, TypeError for other than ints."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_masking",
    "iBOT block masks drawn exactly as shardstream.vision.masking.sample_masks draws them.",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__masking(void)
{
    return PyModule_Create(&module);
}
