/* A minimal .npy reader and writer (format: numpy.lib.format, versions 1.0 to 3.0). */
#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t itemsize(const char *descr) { return (size_t)(descr[2] - '0'); }

static int supported(const char *descr) {
    return !strcmp(descr, "<f4") || !strcmp(descr, "<f8") || !strcmp(descr, "<i4") || !strcmp(descr, "<i8");
}

/* Parse the header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 6, 3, 64), } */
static int parse_header(const char *h, npy_array *a, char *err, size_t errlen) {
    const char *d = strstr(h, "'descr':"), *f = strstr(h, "'fortran_order':"), *s = strstr(h, "'shape':");
    if (!d || !f || !s) { snprintf(err, errlen, "header without descr, fortran_order or shape"); return -1; }
    d = strchr(d + 8, '\'');
    if (!d || sscanf(d + 1, "%3[^']", a->descr) != 1 || !supported(a->descr)) {
        snprintf(err, errlen, "unsupported descr (only <f4, <f8, <i4, <i8)"); return -1;
    }
    if (strncmp(f + 16 + strspn(f + 16, " "), "False", 5)) {
        snprintf(err, errlen, "fortran_order arrays are not supported"); return -1;
    }
    s = strchr(s, '(');
    if (!s) { snprintf(err, errlen, "shape is not a tuple"); return -1; }
    a->ndim = 0;
    a->count = 1;
    for (s++; *s != ')';) {
        char *end;
        long n = strtol(s, &end, 10);
        if (end == s) { s++; continue; }                      /* ", " between numbers */
        if (a->ndim == NPY_MAX_DIMS) { snprintf(err, errlen, "too many dimensions"); return -1; }
        a->shape[a->ndim++] = n;
        a->count *= (size_t)n;
        s = end;
    }
    return 0;
}

int npy_read(const char *path, npy_array *out, char *err, size_t errlen) {
    unsigned char pre[12];
    char *header = NULL;
    FILE *fp = fopen(path, "rb");
    memset(out, 0, sizeof *out);
    if (!fp) { snprintf(err, errlen, "cannot open %s", path); return -1; }
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, "\x93NUMPY", 6)) {
        snprintf(err, errlen, "%s is not a .npy file", path); goto fail;
    }
    size_t len = pre[8] | (size_t)pre[9] << 8;
    if (pre[6] >= 2) {                                        /* versions 2 and 3: a 4-byte length */
        if (fread(pre + 10, 1, 2, fp) != 2) { snprintf(err, errlen, "%s: truncated header", path); goto fail; }
        len |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    header = calloc(len + 1, 1);
    if (!header || fread(header, 1, len, fp) != len) { snprintf(err, errlen, "%s: truncated header", path); goto fail; }
    if (parse_header(header, out, err, errlen)) goto fail;
    out->data = malloc(out->count * itemsize(out->descr) + 1);
    if (!out->data || fread(out->data, itemsize(out->descr), out->count, fp) != out->count) {
        snprintf(err, errlen, "%s: truncated data", path); goto fail;
    }
    free(header);
    fclose(fp);
    return 0;
fail:
    free(header);
    free(out->data);
    out->data = NULL;
    fclose(fp);
    return -1;
}

int npy_write(const char *path, const char *descr, int ndim, const long *shape, const void *data) {
    char header[256];
    size_t count = 1;
    int n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++) {
        n += snprintf(header + n, sizeof header - n, "%ld%s", shape[i], ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
        count *= (size_t)shape[i];
    }
    n += snprintf(header + n, sizeof header - n, "), }");
    while ((10 + n + 1) % 64) header[n++] = ' ';              /* data aligned to 64 bytes */
    header[n++] = '\n';
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n & 0xff), (unsigned char)(n >> 8)};
    int ok = fwrite(pre, 1, 10, fp) == 10 && fwrite(header, 1, (size_t)n, fp) == (size_t)n
             && fwrite(data, itemsize(descr), count, fp) == count;
    return fclose(fp) == 0 && ok ? 0 : -1;
}
