/* libjpeg error handling shared by the C extensions that call libjpeg-turbo
 * (shardstream.vision._jpegregion, shardstream.write._jpegrequant).
 *
 * libjpeg's default handler calls exit() on a fatal error and only prints warnings. These
 * handlers keep libjpeg's message and longjmp back to the caller's setjmp, and treat warnings
 * (level -1: corrupt or truncated data that libjpeg would paper over) as errors too; trace
 * messages (level >= 0) are ignored. */
#ifndef SHARDSTREAM_JPEG_ERROR_H
#define SHARDSTREAM_JPEG_ERROR_H

#include <setjmp.h>
#include <stdio.h>

#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr pub; /* first: libjpeg sees only this part */
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} ss_jpeg_error_mgr;

static void
ss_jpeg_error_exit(j_common_ptr cinfo)
{
    ss_jpeg_error_mgr *err = (ss_jpeg_error_mgr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->jump, 1);
}

static void
ss_jpeg_emit_message(j_common_ptr cinfo, int msg_level)
{
    if (msg_level < 0) {
        ss_jpeg_error_exit(cinfo);
    }
}

#endif
