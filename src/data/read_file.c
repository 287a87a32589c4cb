/* Whole-file reads through zlib: gzip or plain, with errors that name the file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data/data_internal.h"

vka_result vka_read_file(vka_logger *lg, const char *path, unsigned char **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return vka_fail(lg, VKA_ERROR_IO, "%s: a directory where a data file should be; give the dataset's directory "
                        "(--data DIR) or its name", path);
    gzFile f = gzopen(path, "rb");
    if (!f)
        return vka_fail(lg, VKA_ERROR_IO, "%s: cannot open (%s)", path, errno ? strerror(errno) : "out of memory");
    size_t cap = 1 << 20, len = 0;
    unsigned char *buf = malloc(cap);
    vka_result rc = VKA_SUCCESS;
    for (;;) {
        if (!buf) {
            rc = vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory reading it", path);
            break;
        }
        if (len == cap) {
            unsigned char *bigger = realloc(buf, cap *= 2);
            if (!bigger) free(buf);
            buf = bigger;
            continue;
        }
        size_t want = cap - len > (1u << 30) ? (1u << 30) : cap - len;
        int got = gzread(f, buf + len, (unsigned)want);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            rc = vka_fail(lg, VKA_ERROR_FORMAT, "%s: corrupt gzip data (%s)", path, msg);
            break;
        }
        if (got == 0) {
            /* zlib reports a gzip stream cut short as Z_BUF_ERROR at the end. */
            int zerr;
            const char *msg = gzerror(f, &zerr);
            if (zerr == Z_BUF_ERROR || (zerr != Z_OK && zerr != Z_STREAM_END))
                rc = vka_fail(lg, VKA_ERROR_FORMAT, "%s: truncated or corrupt gzip stream (%s)", path, msg);
            break;
        }
        len += (size_t)got;
    }
    gzclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    *data = buf;
    *size = len;
    return VKA_SUCCESS;
}
