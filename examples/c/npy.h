/* A minimal .npy reader and writer: C-order, little-endian <f4, <f8, <i4 and <i8 arrays. */
#ifndef NPY_H
#define NPY_H

#include <stddef.h>

#define NPY_MAX_DIMS 8

typedef struct {
    char descr[4];               /* "<f4", "<f8", "<i4" or "<i8" */
    int ndim;
    long shape[NPY_MAX_DIMS];
    size_t count;                /* elements: the product of shape */
    void *data;                  /* count elements of descr, malloc'ed */
} npy_array;

/* Read path into *out; 0 on success, else -1 with a message in err. */
int npy_read(const char *path, npy_array *out, char *err, size_t errlen);

/* Write count elements of descr with this shape; 0 on success, else -1 (errno set). */
int npy_write(const char *path, const char *descr, int ndim, const long *shape, const void *data);

#endif
