/* Decode only a rectangle of a JPEG with the system libjpeg-turbo.
 *
 * jpeg_skip_scanlines() skips the rows above the rectangle (entropy decoding only: no IDCT,
 * upsampling or colour conversion) and reading stops after its last row, so rows below cost
 * nothing; the rectangle's columns are copied out of whole decoded rows. Rows need no margin:
 * jpeg_skip_scanlines() keeps the upsampler's context rows, so the pixels equal a full decode's.
 *
 * With crop_columns=True, jpeg_crop_scanline() also limits the IDCT, upsampling and colour
 * conversion to the rectangle's columns (widened to an iMCU boundary). libjpeg upsamples the chroma
 * at the ends of a cropped scanline as if they were the image's edges, so a margin of context
 * columns either side is decoded too (where the image has them) and dropped; with it the pixels are
 * exact as well. It pays for narrow regions only: entropy decoding, which cannot skip columns,
 * dominates, and on ~400 x 350 quality-90 4:2:0 photos (libjpeg-turbo 2.1.5) cropping was ~5 %
 * faster than whole rows for regions under 60 % of the width and ~3 % slower above; the caller
 * chooses (shardstream/vision/decode.py).
 *
 * Both paths are checked against full decodes by tests/vision/test_jpegregion.py.
 *
 * Two functions: decode_region(), and decode_band_planes() (a band of whole rows as libjpeg's raw
 * Y/Cb/Cr planes, below); no global state, the GIL released around all libjpeg work, so
 * threads may call them concurrently. libjpeg's errors and corrupt-data warnings longjmp back and
 * raise ValueError with libjpeg's message; images this module declines (CMYK/YCCK, a component
 * count other than 1 or 3) raise NotImplementedError so the caller can use another decoder.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "jpeg_error.h"

#define DEFAULT_MARGIN 8
#define ROWS_PER_CALL 16

enum { DONE = 0, FAILED = 1, DECLINED = 2, OUTSIDE = 3 };

typedef struct {
    const unsigned char *data;
    unsigned long size;
    unsigned int denominator;
    unsigned long top, left, height, width, margin;
    int crop_columns;
    unsigned char *out;
    unsigned char *scratch; /* whole decoded rows when the region is narrower; caller frees */
    /* results */
    unsigned long image_height, image_width;
    char message[JMSG_LENGTH_MAX];
} region_job;

/* All libjpeg work; runs without the GIL. Returns DONE, FAILED, DECLINED or OUTSIDE. */
static int
run_decode(region_job *job)
{
    struct jpeg_decompress_struct cinfo;
    ss_jpeg_error_mgr err;
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = ss_jpeg_error_exit;
    err.pub.emit_message = ss_jpeg_emit_message;
    err.message[0] = '\0';
    cinfo.mem = NULL; /* jpeg_destroy_decompress() frees nothing if creating it failed */
    if (setjmp(err.jump)) {
        /* destroying frees every pool libjpeg allocated; the scratch rows are the caller's */
        strncpy(job->message, err.message, sizeof(job->message) - 1);
        job->message[sizeof(job->message) - 1] = '\0';
        jpeg_destroy_decompress(&cinfo);
        return FAILED;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, job->data, job->size);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.num_components == 1 && cinfo.jpeg_color_space == JCS_GRAYSCALE) {
        /* grey: libjpeg-turbo converts to RGB */
    } else if (cinfo.num_components == 3 &&
               (cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_RGB)) {
        /* the usual case */
    } else {
        snprintf(job->message, sizeof(job->message),
                 "unsupported JPEG colour space %d with %d components",
                 (int)cinfo.jpeg_color_space, cinfo.num_components);
        jpeg_destroy_decompress(&cinfo);
        return DECLINED;
    }
    cinfo.out_color_space = JCS_RGB;
    cinfo.scale_num = 1;
    cinfo.scale_denom = job->denominator;
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&cinfo);
    job->image_height = cinfo.output_height;
    job->image_width = cinfo.output_width;
    if (cinfo.output_components != 3) {
        snprintf(job->message, sizeof(job->message), "libjpeg gives %d output components",
                 cinfo.output_components);
        jpeg_destroy_decompress(&cinfo);
        return DECLINED;
    }
    if (job->width == 0 || job->height == 0 || job->left + job->width > cinfo.output_width ||
        job->top + job->height > cinfo.output_height) {
        snprintf(job->message, sizeof(job->message),
                 "the region (top %lu, left %lu, %lu x %lu) is empty or outside the "
                 "%u x %u decoded image",
                 job->top, job->left, job->height, job->width, cinfo.output_height,
                 cinfo.output_width);
        jpeg_destroy_decompress(&cinfo);
        return OUTSIDE;
    }
    {
        unsigned long m = job->margin;
        unsigned long m_left = job->left < m ? job->left : m;
        unsigned long room = cinfo.output_width - (job->left + job->width);
        unsigned long m_right = room < m ? room : m;
        JDIMENSION x0 = (JDIMENSION)(job->left - m_left);
        JDIMENSION w = (JDIMENSION)(job->width + m_left + m_right);
        JSAMPROW rows[ROWS_PER_CALL];
        JSAMPROW scratch_rows[ROWS_PER_CALL];
        unsigned long y = 0, shift, i;
        size_t row_bytes = (size_t)job->width * 3;
        int direct;

        if (job->crop_columns)
            jpeg_crop_scanline(&cinfo, &x0, &w); /* x0 moves down to an iMCU boundary */
        else {
            x0 = 0; /* decode whole rows, copy out the region's columns */
            w = cinfo.output_width;
        }
        shift = (job->left - x0) * 3;
        /* the decoded rows are exactly the region's: libjpeg writes straight into out */
        direct = shift == 0 && w == job->width;
        if (!direct) {
            /* freed by the caller, on every path (a longjmp may leave this function) */
            job->scratch = malloc((size_t)w * 3 * ROWS_PER_CALL);
            if (job->scratch == NULL) {
                snprintf(job->message, sizeof(job->message), "out of memory");
                jpeg_destroy_decompress(&cinfo);
                return FAILED;
            }
            for (i = 0; i < ROWS_PER_CALL; i++)
                scratch_rows[i] = job->scratch + i * (size_t)w * 3;
        }
        if (job->top > 0 && jpeg_skip_scanlines(&cinfo, (JDIMENSION)job->top) != job->top) {
            snprintf(job->message, sizeof(job->message), "could not skip %lu rows", job->top);
            jpeg_destroy_decompress(&cinfo);
            return FAILED;
        }
        while (y < job->height) {
            unsigned long want = job->height - y;
            JDIMENSION got;
            if (want > ROWS_PER_CALL)
                want = ROWS_PER_CALL;
            for (i = 0; i < want; i++)
                rows[i] = direct ? job->out + (y + i) * row_bytes : scratch_rows[i];
            got = jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)want);
            if (got == 0) {
                snprintf(job->message, sizeof(job->message), "no data for row %lu",
                         job->top + y);
                jpeg_destroy_decompress(&cinfo);
                return FAILED;
            }
            if (!direct)
                for (i = 0; i < got; i++)
                    memcpy(job->out + (y + i) * row_bytes, scratch_rows[i] + shift, row_bytes);
            y += got;
        }
        /* a region down to the last row reads on to EOI, as a full decode does, so damage after
         * the last scan is reported; otherwise the rows below are never decoded */
        if (cinfo.output_scanline == cinfo.output_height)
            jpeg_finish_decompress(&cinfo);
    }
    jpeg_destroy_decompress(&cinfo);
    return DONE;
}

PyDoc_STRVAR(decode_region_doc,
"decode_region(data, out, top, left, height, width, denominator=1, margin=8, crop_columns=False)\n"
"--\n\n"
"Decode rows [top, top + height) and columns [left, left + width) of a JPEG decoded at\n"
"scale 1/denominator (1, 2, 4 or 8), in the stored (not EXIF-oriented) frame, to RGB.\n\n"
"data: any bytes-like object holding the JPEG. out: a writable C-contiguous buffer of exactly\n"
"height * width * 3 bytes, filled row by row (H x W x 3 uint8). crop_columns: also skip the\n"
"IDCT of the columns outside (jpeg_crop_scanline); otherwise whole rows are decoded and the\n"
"region's columns copied. margin: with crop_columns, the context columns decoded either side and\n"
"dropped (the default gives pixels identical to a full decode; 0 shows libjpeg's edge\n"
"upsampling, for tests).\n\n"
"Returns (image_height, image_width): the size of the whole decoded image at that scale.\n"
"Raises ValueError with libjpeg's message for corrupt or truncated data (warnings included) or\n"
"a region outside the image, or for coordinates or a margin outside [0, 65535] (OverflowError\n"
"past the C range), NotImplementedError for images it declines (CMYK, YCCK, ...).\n"
"The GIL is released while libjpeg works; no global state, so threads may share it.");

static PyObject *
decode_region(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"data",        "out",    "top",          "left", "height",
                               "width",       "denominator", "margin", "crop_columns", NULL};
    Py_buffer data, out;
    /* signed and overflow-checked ("n"): "k" would wrap -1 or 2**64 + 5 silently */
    Py_ssize_t top, left, height, width, margin = DEFAULT_MARGIN, denominator = 1;
    int crop_columns = 0;
    region_job job;
    int status;

    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*w*nnnn|nnp", keywords, &data, &out, &top,
                                     &left, &height, &width, &denominator, &margin,
                                     &crop_columns))
        return NULL;
    if (!PyBuffer_IsContiguous(&out, 'C')) {
        PyErr_SetString(PyExc_ValueError, "out must be a C-contiguous buffer");
        goto fail;
    }
    if (denominator != 1 && denominator != 2 && denominator != 4 && denominator != 8) {
        PyErr_Format(PyExc_ValueError, "denominator must be 1, 2, 4 or 8, got %zd", denominator);
        goto fail;
    }
    if (height < 0 || width < 0 || top < 0 || left < 0 || margin < 0 || height > 65535 ||
        width > 65535 || top > 65535 || left > 65535 || margin > 65535) {
        PyErr_SetString(PyExc_ValueError, "region coordinates must be in [0, 65535]");
        goto fail;
    }
    if ((unsigned long long)out.len != (unsigned long long)height * width * 3) {
        PyErr_Format(PyExc_ValueError, "out holds %zd bytes, the region needs %zd x %zd x 3",
                     out.len, height, width);
        goto fail;
    }
    if (data.len < 2) {
        PyErr_Format(PyExc_ValueError, "libjpeg-turbo: the data is %zd bytes long", data.len);
        goto fail;
    }
    memset(&job, 0, sizeof(job));
    job.data = (const unsigned char *)data.buf;
    job.size = (unsigned long)data.len;
    job.denominator = (unsigned int)denominator;
    job.top = (unsigned long)top;
    job.left = (unsigned long)left;
    job.height = (unsigned long)height;
    job.width = (unsigned long)width;
    job.margin = (unsigned long)margin;
    job.crop_columns = crop_columns;
    job.out = (unsigned char *)out.buf;
    Py_BEGIN_ALLOW_THREADS
    status = run_decode(&job);
    free(job.scratch);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    switch (status) {
    case DONE:
        return Py_BuildValue("(kk)", job.image_height, job.image_width);
    case DECLINED:
        PyErr_Format(PyExc_NotImplementedError, "libjpeg-turbo region decode: %s", job.message);
        return NULL;
    default:
        PyErr_Format(PyExc_ValueError, "libjpeg-turbo: %s", job.message);
        return NULL;
    }
fail:
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    return NULL;
}

/* ---- decode_band_planes(): a band of rows as libjpeg's raw YCbCr planes ---------------------
 *
 * The same band of whole rows, but as libjpeg's raw output (jpeg_read_raw_data): the IDCT's
 * planes before upsampling and colour conversion, which the caller does elsewhere (on the
 * training device). Only Y:Cb:Cr with chroma factors 1x1 and luma 1x1, 2x1 or 2x2 is taken
 * (4:4:4, 4:2:2, 4:2:0). The caller says the layout it expects (plane strides and the chroma
 * rows it wants, from the header); a JPEG whose layout differs is declined (NotImplementedError).
 * Raw output cannot skip scanlines, so the iMCU rows above the band are decoded into scratch rows
 * (the band is most of the image where this is used). */

typedef struct {
    const unsigned char *data;
    unsigned long size;
    unsigned long top, height;       /* luma rows [top, top + height) */
    unsigned long y_stride;          /* bytes per luma row shipped */
    unsigned long c_first, c_rows;   /* chroma rows [c_first, c_first + c_rows) */
    unsigned long c_stride;          /* bytes per chroma row shipped */
    unsigned long hf, vf;            /* luma factors (chroma 1x1) */
    unsigned char *out;              /* Y rows, then Cb rows, then Cr rows */
    unsigned char *scratch;          /* trash rows; caller frees */
    char message[JMSG_LENGTH_MAX];
} planes_job;

static int
run_planes(planes_job *job)
{
    struct jpeg_decompress_struct cinfo;
    ss_jpeg_error_mgr err;
    JSAMPROW rows[3][16];
    JSAMPARRAY image[3];
    unsigned long imcu, last_imcu, c, i;
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = ss_jpeg_error_exit;
    err.pub.emit_message = ss_jpeg_emit_message;
    err.message[0] = '\0';
    cinfo.mem = NULL;
    if (setjmp(err.jump)) {
        strncpy(job->message, err.message, sizeof(job->message) - 1);
        job->message[sizeof(job->message) - 1] = '\0';
        jpeg_destroy_decompress(&cinfo);
        return FAILED;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, job->data, job->size);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.num_components != 3 || cinfo.jpeg_color_space != JCS_YCbCr ||
        cinfo.comp_info[1].h_samp_factor != 1 || cinfo.comp_info[1].v_samp_factor != 1 ||
        cinfo.comp_info[2].h_samp_factor != 1 || cinfo.comp_info[2].v_samp_factor != 1 ||
        (unsigned long)cinfo.comp_info[0].h_samp_factor != job->hf ||
        (unsigned long)cinfo.comp_info[0].v_samp_factor != job->vf) {
        snprintf(job->message, sizeof(job->message), "not the expected YCbCr sampling");
        jpeg_destroy_decompress(&cinfo);
        return DECLINED;
    }
    cinfo.raw_data_out = TRUE;
    cinfo.dct_method = JDCT_ISLOW;
    jpeg_start_decompress(&cinfo);
    if (cinfo.max_h_samp_factor != (int)job->hf || cinfo.max_v_samp_factor != (int)job->vf ||
        cinfo.comp_info[0].width_in_blocks * DCTSIZE > job->y_stride ||
        cinfo.comp_info[1].width_in_blocks * DCTSIZE > job->c_stride ||
        (cinfo.image_width + job->hf * DCTSIZE - 1) / (job->hf * DCTSIZE) * job->hf * DCTSIZE !=
            job->y_stride ||
        (cinfo.image_width + job->hf * DCTSIZE - 1) / (job->hf * DCTSIZE) * DCTSIZE !=
            job->c_stride) {
        snprintf(job->message, sizeof(job->message), "not the expected plane layout");
        jpeg_destroy_decompress(&cinfo);
        return DECLINED;
    }
    if (job->height == 0 || job->top + job->height > cinfo.output_height || job->c_rows == 0 ||
        job->c_first + job->c_rows > cinfo.comp_info[1].downsampled_height) {
        snprintf(job->message, sizeof(job->message), "the band is empty or outside the image");
        jpeg_destroy_decompress(&cinfo);
        return OUTSIDE;
    }
    job->scratch = malloc(job->y_stride);
    if (job->scratch == NULL) {
        snprintf(job->message, sizeof(job->message), "out of memory");
        jpeg_destroy_decompress(&cinfo);
        return FAILED;
    }
    for (c = 0; c < 3; c++)
        image[c] = rows[c];
    last_imcu = (job->top + job->height - 1) / (job->vf * DCTSIZE);
    if ((job->c_first + job->c_rows - 1) / DCTSIZE > last_imcu)
        last_imcu = (job->c_first + job->c_rows - 1) / DCTSIZE;
    for (imcu = 0; imcu <= last_imcu; imcu++) {
        unsigned long y0 = imcu * job->vf * DCTSIZE, c0 = imcu * DCTSIZE;
        for (i = 0; i < job->vf * DCTSIZE; i++) {
            unsigned long y = y0 + i;
            rows[0][i] = (y >= job->top && y < job->top + job->height)
                             ? job->out + (y - job->top) * job->y_stride
                             : job->scratch;
        }
        for (i = 0; i < DCTSIZE; i++) {
            unsigned long y = c0 + i;
            int inside = y >= job->c_first && y < job->c_first + job->c_rows;
            unsigned char *cb = job->out + job->height * job->y_stride;
            unsigned char *cr = cb + job->c_rows * job->c_stride;
            rows[1][i] = inside ? cb + (y - job->c_first) * job->c_stride : job->scratch;
            rows[2][i] = inside ? cr + (y - job->c_first) * job->c_stride : job->scratch;
        }
        if (jpeg_read_raw_data(&cinfo, image, (JDIMENSION)(job->vf * DCTSIZE)) == 0) {
            snprintf(job->message, sizeof(job->message), "no data for iMCU row %lu", imcu);
            jpeg_destroy_decompress(&cinfo);
            return FAILED;
        }
    }
    if (cinfo.output_scanline >= cinfo.output_height)
        jpeg_finish_decompress(&cinfo); /* read on to EOI, as a full decode does */
    jpeg_destroy_decompress(&cinfo);
    return DONE;
}

PyDoc_STRVAR(decode_band_planes_doc,
"decode_band_planes(data, out, top, height, y_stride, c_first, c_rows, c_stride, hf, vf)\n"
"--\n\n"
"Decode luma rows [top, top + height) and chroma rows [c_first, c_first + c_rows) of a\n"
"Y:Cb:Cr JPEG (chroma factors 1x1, luma hf x vf, each 1 or 2) as libjpeg's raw planes: no\n"
"upsampling, no colour conversion. out: a writable C-contiguous buffer of exactly\n"
"height * y_stride + 2 * c_rows * c_stride bytes: the Y rows, then the Cb rows, then the Cr\n"
"rows; y_stride and c_stride must be the MCU-padded plane widths (MCUs per row x hf x 8, and\n"
"x 8). Returns None. Raises ValueError (corrupt data, a band outside the image),\n"
"NotImplementedError (another colour space, sampling or layout).");

static PyObject *
decode_band_planes(PyObject *self, PyObject *args)
{
    Py_buffer data, out;
    Py_ssize_t v[8];
    planes_job job;
    int status, k;

    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*nnnnnnnn", &data, &out, &v[0], &v[1], &v[2], &v[3], &v[4],
                          &v[5], &v[6], &v[7]))
        return NULL;
    for (k = 0; k < 8; k++)
        if (v[k] < 0 || v[k] > 65535) {
            PyErr_SetString(PyExc_ValueError, "band coordinates must be in [0, 65535]");
            goto fail;
        }
    if (v[6] < 1 || v[6] > 2 || v[7] < 1 || v[7] > 2) {
        PyErr_SetString(PyExc_ValueError, "hf and vf must be 1 or 2");
        goto fail;
    }
    if (!PyBuffer_IsContiguous(&out, 'C') ||
        (unsigned long long)out.len !=
            (unsigned long long)v[1] * v[2] + 2ULL * (unsigned long long)v[4] * v[5]) {
        PyErr_SetString(PyExc_ValueError, "out must be a C-contiguous buffer of the planes' size");
        goto fail;
    }
    if (v[2] < 8 || v[5] < 8) {
        PyErr_SetString(PyExc_ValueError, "plane strides must be at least 8");
        goto fail;
    }
    if (data.len < 2) {
        PyErr_Format(PyExc_ValueError, "libjpeg-turbo: the data is %zd bytes long", data.len);
        goto fail;
    }
    memset(&job, 0, sizeof(job));
    job.data = (const unsigned char *)data.buf;
    job.size = (unsigned long)data.len;
    job.top = (unsigned long)v[0];
    job.height = (unsigned long)v[1];
    job.y_stride = (unsigned long)v[2];
    job.c_first = (unsigned long)v[3];
    job.c_rows = (unsigned long)v[4];
    job.c_stride = (unsigned long)v[5];
    job.hf = (unsigned long)v[6];
    job.vf = (unsigned long)v[7];
    job.out = (unsigned char *)out.buf;
    Py_BEGIN_ALLOW_THREADS
    status = run_planes(&job);
    free(job.scratch);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    switch (status) {
    case DONE:
        Py_RETURN_NONE;
    case DECLINED:
        PyErr_Format(PyExc_NotImplementedError, "libjpeg-turbo raw planes: %s", job.message);
        return NULL;
    default:
        PyErr_Format(PyExc_ValueError, "libjpeg-turbo: %s", job.message);
        return NULL;
    }
fail:
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"decode_region", (PyCFunction)(void (*)(void))decode_region, METH_VARARGS | METH_KEYWORDS,
     decode_region_doc},
    {"decode_band_planes", (PyCFunction)decode_band_planes, METH_VARARGS,
     decode_band_planes_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_jpegregion",
    "Decode only a rectangle of a JPEG (libjpeg-turbo crop_scanline / skip_scanlines).",
    0,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__jpegregion(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "JPEG_LIB_VERSION", JPEG_LIB_VERSION) < 0 ||
        PyModule_AddIntConstant(m, "DEFAULT_MARGIN", DEFAULT_MARGIN) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
