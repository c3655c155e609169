/* Re-encode a JPEG at another quality in the DCT domain, with the system libjpeg-turbo.
 *
 * A 4:2:0 YCbCr (or grayscale) JPEG that keeps its size only needs new quantization: its
 * coefficients are read (entropy decoding only: no IDCT, chroma upsampling or colour
 * conversion), each is dequantized with the source's table and quantized again with the
 * standard tables of the wanted quality (rounding half away from zero, as libjpeg's forward
 * quantization does), and written as a baseline JPEG with the standard Huffman tables. The pixel
 * path (decode to RGB, encode again) does the same quantization after an IDCT, a colour
 * round trip, chroma resampling and an FDCT, each of which rounds; here the only rounding is the
 * requantization itself, so the result is at least as close to the source, at a fraction of the
 * work (see write/transcode.py for the measured rates and PSNR).
 *
 * requantize(data, quality, same_tables_only=False) -> bytes, or None for a JPEG it declines
 * (not 8-bit, not YCbCr 4:2:0 or grayscale, e.g. 4:4:4, CMYK, RGB-coded; with same_tables_only,
 * one whose tables are not already the target's): the caller then uses the pixel path.
 * verify(data) -> (end, colour space) only entropy-decodes every coefficient, to check a JPEG
 * whose scan data is kept as it is (write/transcode.py). libjpeg's errors and corrupt-data warnings longjmp back and raise ValueError with
 * libjpeg's message, as simplejpeg's strict mode does. No global state; the GIL is released
 * around all libjpeg work.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "jpeg_error.h"

enum { DONE = 0, FAILED = 1, DECLINED = 2 };

typedef struct {
    const unsigned char *data;
    unsigned long size;
    int quality;
    int same_tables_only; /* decline unless the source's tables are the target's */
    unsigned char *out; /* malloc'ed by jpeg_mem_dest; the caller frees it */
    unsigned long out_size;
    int color_space;
    char message[JMSG_LENGTH_MAX];
} requant_job;

static int
eligible(struct jpeg_decompress_struct *src)
{
    if (src->data_precision != 8)
        return 0;
    if (src->num_components == 1 && src->jpeg_color_space == JCS_GRAYSCALE)
        return 1;
    if (src->num_components != 3 || src->jpeg_color_space != JCS_YCbCr)
        return 0;
    return src->comp_info[0].h_samp_factor == 2 && src->comp_info[0].v_samp_factor == 2 &&
           src->comp_info[1].h_samp_factor == 1 && src->comp_info[1].v_samp_factor == 1 &&
           src->comp_info[2].h_samp_factor == 1 && src->comp_info[2].v_samp_factor == 1;
}

/* new = round(c * q_src / q_dst), half away from zero (as libjpeg's forward quantization
 * rounds), clamped to what baseline Huffman coding carries: 10 bits for AC, and DC within an
 * 8-bit image's range so that DC differences fit 11 bits.
 *
 * The division is a multiplication by ceil(2^32 / q_dst) and a shift: exact for numerators
 * below 2^32 / q_dst (here below 2^19, as |c| <= 2^11 and q_src <= 255). */
static void
requantize_component(j_decompress_ptr src, jvirt_barray_ptr array, jpeg_component_info *comp,
                     const JQUANT_TBL *from, const JQUANT_TBL *to)
{
    JDIMENSION row, col;
    int k, same = 1;
    uint64_t q_from[DCTSIZE2], half[DCTSIZE2], reciprocal[DCTSIZE2];
    int64_t low[DCTSIZE2];
    for (k = 0; k < DCTSIZE2; k++) {
        uint64_t q_to = to->quantval[k];
        q_from[k] = from->quantval[k];
        half[k] = q_to >> 1;
        reciprocal[k] = ((UINT64_C(1) << 32) + q_to - 1) / q_to;
        low[k] = k == 0 ? -1024 : -1023;
        same &= q_from[k] == q_to;
    }
    if (same)
        return; /* the coefficients stay as they are */
    for (row = 0; row < comp->height_in_blocks; row++) {
        JBLOCKARRAY rows = (*src->mem->access_virt_barray)((j_common_ptr)src, array, row, 1, TRUE);
        JBLOCKROW blocks = rows[0];
        for (col = 0; col < comp->width_in_blocks; col++) {
            JCOEF *coef = blocks[col];
            /* branch-free, so that the compiler can vectorize it */
            for (k = 0; k < DCTSIZE2; k++) {
                int64_t c = coef[k];
                int64_t sign = c >> 63; /* 0 or -1 */
                uint64_t magnitude = (uint64_t)((c ^ sign) - sign) * q_from[k] + half[k];
                int64_t out = (int64_t)((magnitude * reciprocal[k]) >> 32);
                out = (out ^ sign) - sign;
                out = out < low[k] ? low[k] : out;
                out = out > 1023 ? 1023 : out;
                coef[k] = (JCOEF)(c == 0 ? 0 : out);
            }
        }
    }
}

/* All libjpeg work; runs without the GIL. Returns DONE, FAILED or DECLINED. */
static int
run_requantize(requant_job *job)
{
    struct jpeg_decompress_struct src;
    struct jpeg_compress_struct dst;
    ss_jpeg_error_mgr err; /* one for both: either longjmps to the same place */
    jvirt_barray_ptr *arrays;
    int ci;
    src.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = ss_jpeg_error_exit;
    err.pub.emit_message = ss_jpeg_emit_message;
    err.message[0] = '\0';
    dst.err = &err.pub;
    src.mem = NULL;
    dst.mem = NULL;
    job->out = NULL;
    job->out_size = 0;
    if (setjmp(err.jump)) {
        strncpy(job->message, err.message, sizeof(job->message) - 1);
        job->message[sizeof(job->message) - 1] = '\0';
        jpeg_destroy_compress(&dst);
        jpeg_destroy_decompress(&src);
        free(job->out);
        job->out = NULL;
        return FAILED;
    }
    jpeg_create_decompress(&src);
    jpeg_create_compress(&dst);
    jpeg_mem_src(&src, job->data, job->size);
    jpeg_read_header(&src, TRUE);
    if (!eligible(&src)) {
        jpeg_destroy_compress(&dst);
        jpeg_destroy_decompress(&src);
        return DECLINED;
    }
    if (job->same_tables_only) {
        /* the target tables, from a compressor set up as it will be below */
        dst.in_color_space = src.jpeg_color_space;
        dst.input_components = src.num_components;
        jpeg_set_defaults(&dst);
        jpeg_set_quality(&dst, job->quality, TRUE);
        for (ci = 0; ci < src.num_components; ci++) {
            const JQUANT_TBL *from = src.quant_tbl_ptrs[src.comp_info[ci].quant_tbl_no];
            const JQUANT_TBL *to = dst.quant_tbl_ptrs[ci == 0 ? 0 : 1];
            if (from == NULL || to == NULL ||
                memcmp(from->quantval, to->quantval, sizeof(from->quantval)) != 0) {
                jpeg_destroy_compress(&dst);
                jpeg_destroy_decompress(&src);
                return DECLINED;
            }
        }
    }
    arrays = jpeg_read_coefficients(&src);
    jpeg_copy_critical_parameters(&src, &dst);
    jpeg_set_quality(&dst, job->quality, TRUE); /* standard tables 0 (luma) and 1 (chroma) */
    dst.optimize_coding = FALSE;
    for (ci = 0; ci < dst.num_components; ci++) {
        jpeg_component_info *comp = &src.comp_info[ci];
        const JQUANT_TBL *from = comp->quant_table;
        int table = ci == 0 ? 0 : 1;
        dst.comp_info[ci].quant_tbl_no = table;
        if (from == NULL)
            from = src.quant_tbl_ptrs[comp->quant_tbl_no];
        if (from == NULL) {
            snprintf(err.message, sizeof(err.message), "component %d has no quantization table",
                     ci);
            longjmp(err.jump, 1);
        }
        requantize_component(&src, arrays[ci], comp, from, dst.quant_tbl_ptrs[table]);
    }
    jpeg_mem_dest(&dst, &job->out, &job->out_size);
    jpeg_write_coefficients(&dst, arrays);
    jpeg_finish_compress(&dst);
    jpeg_finish_decompress(&src);
    jpeg_destroy_compress(&dst);
    jpeg_destroy_decompress(&src);
    return DONE;
}

/* Entropy-decode every coefficient of a JPEG (all libjpeg work; runs without the GIL). */
static int
run_verify(requant_job *job)
{
    struct jpeg_decompress_struct src;
    ss_jpeg_error_mgr err;
    src.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = ss_jpeg_error_exit;
    err.pub.emit_message = ss_jpeg_emit_message;
    err.message[0] = '\0';
    src.mem = NULL;
    if (setjmp(err.jump)) {
        strncpy(job->message, err.message, sizeof(job->message) - 1);
        job->message[sizeof(job->message) - 1] = '\0';
        jpeg_destroy_decompress(&src);
        return FAILED;
    }
    jpeg_create_decompress(&src);
    jpeg_mem_src(&src, job->data, job->size);
    jpeg_read_header(&src, TRUE);
    job->color_space = (int)src.jpeg_color_space;
    jpeg_read_coefficients(&src);
    jpeg_finish_decompress(&src); /* reads up to the end-of-image marker */
    job->out_size = job->size - (unsigned long)src.src->bytes_in_buffer;
    jpeg_destroy_decompress(&src);
    return DONE;
}

PyDoc_STRVAR(verify_doc,
             "verify(data) -> (end, colour_space)\n\n"
             "Entropy-decode every coefficient of a JPEG (no IDCT): ``end`` is the offset just\n"
             "past its end-of-image marker, ``colour_space`` libjpeg's J_COLOR_SPACE of it\n"
             "(3: YCbCr, 1: grayscale). Raises ValueError on corrupt data (libjpeg's warnings\n"
             "count as errors).");

static PyObject *
verify(PyObject *self, PyObject *args)
{
    Py_buffer view;
    requant_job job;
    int status;
    if (!PyArg_ParseTuple(args, "y*", &view))
        return NULL;
    memset(&job, 0, sizeof(job));
    job.data = view.buf;
    job.size = (unsigned long)view.len;
    Py_BEGIN_ALLOW_THREADS status = run_verify(&job);
    Py_END_ALLOW_THREADS PyBuffer_Release(&view);
    if (status == FAILED) {
        PyErr_SetString(PyExc_ValueError, job.message);
        return NULL;
    }
    return Py_BuildValue("(ki)", job.out_size, job.color_space);
}

PyDoc_STRVAR(requantize_doc,
             "requantize(data, quality, same_tables_only=False) -> bytes | None\n\n"
             "Re-encode a 4:2:0 YCbCr or grayscale 8-bit JPEG at ``quality`` (1-100, the\n"
             "standard tables, baseline) in the DCT domain; None for a JPEG this declines (use\n"
             "the pixel path), and with same_tables_only for one whose quantization tables are\n"
             "not already the target's (its coefficients are then kept exactly).\n"
             "Raises ValueError on corrupt data (libjpeg's warnings count as errors).");

static PyObject *
requantize(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"data", "quality", "same_tables_only", NULL};
    Py_buffer view;
    int quality, same_tables_only = 0;
    requant_job job;
    int status;
    PyObject *result;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*i|p", keywords, &view, &quality,
                                     &same_tables_only))
        return NULL;
    if (quality < 1 || quality > 100) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "quality must be in 1..100, got %d", quality);
        return NULL;
    }
    memset(&job, 0, sizeof(job));
    job.data = view.buf;
    job.size = (unsigned long)view.len;
    job.quality = quality;
    job.same_tables_only = same_tables_only;
    Py_BEGIN_ALLOW_THREADS status = run_requantize(&job);
    Py_END_ALLOW_THREADS PyBuffer_Release(&view);
    if (status == DECLINED)
        Py_RETURN_NONE;
    if (status == FAILED) {
        PyErr_SetString(PyExc_ValueError, job.message);
        return NULL;
    }
    result = PyBytes_FromStringAndSize((const char *)job.out, (Py_ssize_t)job.out_size);
    free(job.out);
    return result;
}

static PyMethodDef methods[] = {
    {"verify", verify, METH_VARARGS, verify_doc},
    {"requantize", (PyCFunction)(void (*)(void))requantize, METH_VARARGS | METH_KEYWORDS,
     requantize_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_jpegrequant",
    "Re-encode a JPEG at another quality in the DCT domain (libjpeg-turbo coefficients).",
    0,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__jpegrequant(void)
{
    return PyModule_Create(&module);
}
