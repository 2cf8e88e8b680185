/* RoPE in C over rope-suite's test vectors: an example of a non-Python implementation under test.
 *
 * Supports the plain specs (no scaling, one position axis), both pair conventions and partial
 * rotary, in float32 and float64; export exactly those cases:
 *
 *   rope-suite vectors export VECTORS --supports interleaved,partial --dtype float32 --dtype float64
 *   make && ./rope VECTORS OUTPUTS
 *   rope-suite vectors verify VECTORS OUTPUTS
 *
 * For each case listed in VECTORS/index.txt it reads case.txt, x.npy and positions.npy and writes
 * OUTPUTS/<case id>/output.npy. A case it does not support gets no output (verify fails it as
 * missing): the export's filters, not this program, decide what is judged.
 */
#define _POSIX_C_SOURCE 200809L
#include "npy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LINE 4096

typedef struct {
    long head_dim, rotary_dim;
    double base;
    int interleaved;              /* convention: 0 half (pairs i, i + r/2), 1 interleaved (pairs 2i, 2i + 1) */
    char features[LINE], dtype[32];
} spec;

/* case.txt: one "key value" per line. */
static int read_case(const char *path, spec *s) {
    char line[LINE], convention[32] = "";
    FILE *fp = fopen(path, "r");
    if (!fp) return -1;
    memset(s, 0, sizeof *s);
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\n")] = 0;
        char *value = strchr(line, ' ');
        if (!value) continue;
        *value++ = 0;
        if (!strcmp(line, "head_dim")) s->head_dim = atol(value);
        else if (!strcmp(line, "rotary_dim")) s->rotary_dim = atol(value);
        else if (!strcmp(line, "base")) s->base = strtod(value, NULL);
        else if (!strcmp(line, "convention")) snprintf(convention, sizeof convention, "%s", value);
        else if (!strcmp(line, "features")) snprintf(s->features, sizeof s->features, "%s", value);
        else if (!strcmp(line, "dtype")) snprintf(s->dtype, sizeof s->dtype, "%s", value);
    }
    fclose(fp);
    s->interleaved = !strcmp(convention, "interleaved");
    return 0;
}

/* Why this program cannot run the case, or NULL. */
static const char *unsupported(spec *s) {
    if (strcmp(s->dtype, "float32") && strcmp(s->dtype, "float64")) return "dtype";
    for (char *f = strtok(s->features, " "); f; f = strtok(NULL, " "))
        if (strcmp(f, "interleaved") && strcmp(f, "partial")) return "feature";
    return NULL;
}

static double get(const npy_array *a, size_t i) {
    return a->descr[2] == '4' ? (double)((const float *)a->data)[i] : ((const double *)a->data)[i];
}

static void set(npy_array *a, size_t i, double v) {
    if (a->descr[2] == '4') ((float *)a->data)[i] = (float)v;
    else ((double *)a->data)[i] = v;
}

static long position(const npy_array *p, size_t i) {
    return p->descr[2] == '4' ? (long)((const int *)p->data)[i] : (long)((const long long *)p->data)[i];
}

/* y = RoPE(x): x [batch, seq, heads, head_dim], positions [batch, seq]; angles and rotation in double. */
static void rope(const spec *s, const npy_array *x, const npy_array *pos, npy_array *y) {
    long tokens = x->shape[0] * x->shape[1], heads = x->shape[2], d = s->head_dim, half = s->rotary_dim / 2;
    for (long t = 0; t < tokens; t++) {
        for (long i = 0; i < half; i++) {
            double angle = (double)position(pos, (size_t)t) * pow(s->base, -2.0 * (double)i / (double)s->rotary_dim);
            double c = cos(angle), sn = sin(angle);
            long first = s->interleaved ? 2 * i : i, second = s->interleaved ? 2 * i + 1 : i + half;
            for (long h = 0; h < heads; h++) {
                size_t row = (size_t)((t * heads + h) * d);
                double a = get(x, row + first), b = get(x, row + second);
                set(y, row + first, a * c - b * sn);
                set(y, row + second, b * c + a * sn);
            }
        }
        for (long h = 0; h < heads; h++)
            for (long k = s->rotary_dim; k < d; k++)
                set(y, (size_t)((t * heads + h) * d + k), get(x, (size_t)((t * heads + h) * d + k)));
    }
}

/* mkdir -p */
static int make_dirs(char *path) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int bad = mkdir(path, 0755) && errno != EEXIST;
        *p = '/';
        if (bad) return -1;
    }
    return mkdir(path, 0755) && errno != EEXIST ? -1 : 0;
}

/* path = dir/id[/name]; -1 when it does not fit. */
static int join(char *path, const char *dir, const char *id, const char *name) {
    int n = snprintf(path, LINE, "%s/%s%s%s", dir, id, *name ? "/" : "", name);
    return n < 0 || n >= LINE ? -1 : 0;
}

static int run_case(const char *vectors, const char *outputs, const char *id) {
    char path[LINE], err[LINE];
    spec s;
    npy_array x, pos;
    if (join(path, vectors, id, "case.txt") || read_case(path, &s)) {
        fprintf(stderr, "rope: %s: cannot read its case.txt\n", id);
        return -1;
    }
    const char *why = unsupported(&s);
    if (why) { fprintf(stderr, "rope: skipped %s: unsupported %s\n", id, why); return 0; }
    if (join(path, vectors, id, "x.npy") || npy_read(path, &x, err, sizeof err)) {
        fprintf(stderr, "rope: %s: %s\n", id, err);
        return -1;
    }
    if (join(path, vectors, id, "positions.npy") || npy_read(path, &pos, err, sizeof err)) {
        fprintf(stderr, "rope: %s: %s\n", id, err);
        free(x.data);
        return -1;
    }
    npy_array y = x;
    y.data = malloc(x.count * (x.descr[2] - '0'));
    int status = -1;
    if (y.data && x.ndim == 4 && x.shape[3] == s.head_dim && pos.ndim == 2) {
        rope(&s, &x, &pos, &y);
        if (join(path, outputs, id, "") == 0 && make_dirs(path) == 0 && join(path, outputs, id, "output.npy") == 0)
            status = npy_write(path, y.descr, y.ndim, y.shape, y.data);
    }
    if (status) fprintf(stderr, "rope: %s: failed\n", id);
    free(x.data), free(pos.data), free(y.data);
    return status;
}

int main(int argc, char **argv) {
    char path[LINE], id[LINE];
    if (argc != 3) { fprintf(stderr, "usage: rope VECTORS OUTPUTS\n"); return 2; }
    FILE *index = join(path, argv[1], "index.txt", "") ? NULL : fopen(path, "r");
    if (!index) { fprintf(stderr, "rope: cannot open %s\n", path); return 2; }
    int failures = 0;
    while (fgets(id, sizeof id, index)) {
        id[strcspn(id, "\n")] = 0;
        if (*id) failures += run_case(argv[1], argv[2], id) != 0;
    }
    fclose(index);
    return failures ? 1 : 0;
}
