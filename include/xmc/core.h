/* xmc core: errors, memory accounting, arenas, random numbers, atomic output
 * files, line input (plain or gzip), logging and progress.
 *
 * Every other module builds on these. Conventions (see ../shared/STYLE.md):
 *  - functions return XMC_OK or an xmc_code and fill an optional xmc_error;
 *  - the library never exits, aborts or prints: messages go through the log
 *    sink installed by the caller (the CLI installs stderr);
 *  - objects are xmc_X_create / xmc_X_free, and free accepts NULL.
 */
#ifndef XMC_CORE_H
#define XMC_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XMC_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------- errors */

typedef enum xmc_code {
    XMC_OK = 0,
    XMC_ENOMEM,       /* allocation failed or memory budget exceeded */
    XMC_EIO,          /* open/read/write/rename failed (errno text in msg) */
    XMC_EFORMAT,      /* malformed input: path and line say where */
    XMC_EINVAL,       /* bad parameter or option value */
    XMC_ECORRUPT,     /* bad magic, version, checksum or truncated binary */
    XMC_EUNSUPPORTED, /* valid request this build or CPU cannot do */
    XMC_ESTATE,       /* call out of order (e.g. predict before train) */
    XMC_EDIST,        /* a peer process failed (MPI) */
    XMC_ECODE_COUNT
} xmc_code;

/* Where an error was first seen. `path`/`line` locate the user's input
 * (line 0 = not a line-oriented problem); `src_file`/`src_line` locate the
 * library code that raised it, for bug reports. */
typedef struct xmc_error {
    int code;
    char msg[512];
    char path[512];
    long line;
    const char *src_file;
    int src_line;
} xmc_error;

/* Record an error into `err` (may be NULL) unless one is already recorded:
 * the first error seen wins, so callers propagating it keep the origin.
 * Returns `code`, so `return XMC_ERR(...)` reads naturally. */
int xmc_error_set(xmc_error *err, int code, const char *path, long line,
                  const char *src_file, int src_line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 7, 8)))
#endif
    ;

#define XMC_ERR(err, code, path, line, ...) \
    xmc_error_set((err), (code), (path), (line), __FILE__, __LINE__, __VA_ARGS__)

void xmc_error_clear(xmc_error *err);
const char *xmc_strerror(int code);
/* "PATH:LINE: msg", "PATH: msg" or "msg" into buf; returns buf. */
const char *xmc_error_format(const xmc_error *err, char *buf, size_t n);

/* ---------------------------------------------------------------- memory */

/* All library allocations go through these, so that bytes are accounted,
 * allocation counts can be asserted (no malloc inside a train step), and
 * tests can inject failures. They return NULL on failure and never abort.
 * xmc_free accepts NULL. Alignment is 64 bytes for xmc_malloc_aligned. */
void *xmc_malloc(size_t n);
void *xmc_calloc(size_t count, size_t size);
void *xmc_realloc(void *p, size_t n);
void xmc_free(void *p);
void *xmc_malloc_aligned(size_t n); /* free with xmc_free_aligned */
void xmc_free_aligned(void *p);
char *xmc_strdup(const char *s);

size_t xmc_mem_current(void);   /* live bytes allocated through xmc_* */
size_t xmc_mem_peak(void);
uint64_t xmc_mem_alloc_count(void); /* number of successful allocations */
void xmc_mem_reset_peak(void);
/* Test hook: the n-th next allocation (1-based) fails; 0 disables. */
void xmc_mem_fail_after(uint64_t n);
/* How many of cJSON's allocations (which go through xmc_malloc) have
 * failed on this thread so far. cJSON_Add* and cJSON_Create* into a tree
 * drop what they cannot allocate without a sign, and cJSON_Print then
 * prints the rest: a writer takes this count before building a tree and
 * refuses to write when it moved. */
unsigned xmc_json_failures(void);
/* Peak resident set size of the process, from /proc (bytes; 0 if unknown). */
size_t xmc_peak_rss(void);

/* Overflow-checked size arithmetic: returns 0 on overflow. */
int xmc_mul_ok(size_t a, size_t b, size_t *out);

/* ---------------------------------------------------------------- arena */

/* Bump allocator for per-step scratch: sized once at create, reset every
 * step, so steady-state training does no malloc. Allocations are 64-byte
 * aligned. xmc_arena_alloc returns NULL when the arena is full (a sizing bug
 * of ours: callers treat it as XMC_ENOMEM with a hint). */
typedef struct xmc_arena xmc_arena;
xmc_arena *xmc_arena_create(size_t bytes);
void xmc_arena_free(xmc_arena *a);
void *xmc_arena_alloc(xmc_arena *a, size_t bytes);
void xmc_arena_reset(xmc_arena *a);
size_t xmc_arena_used(const xmc_arena *a);
size_t xmc_arena_capacity(const xmc_arena *a);
size_t xmc_arena_high_water(const xmc_arena *a);

/* ---------------------------------------------------------------- random */

/* xoshiro256** seeded by splitmix64. Streams for threads or sub-tasks come
 * from xmc_rng_seed(&r, seed, stream): the same (seed, stream) always gives
 * the same sequence, so runs are reproducible whatever the thread count. */
typedef struct xmc_rng {
    uint64_t s[4];
} xmc_rng;

void xmc_rng_seed(xmc_rng *r, uint64_t seed, uint64_t stream);
uint64_t xmc_rng_u64(xmc_rng *r);
uint32_t xmc_rng_u32(xmc_rng *r);
uint64_t xmc_rng_below(xmc_rng *r, uint64_t n); /* uniform in [0, n), n > 0 */
double xmc_rng_uniform(xmc_rng *r);             /* [0, 1) */
float xmc_rng_normal(xmc_rng *r);               /* N(0, 1) */
void xmc_rng_shuffle_i64(xmc_rng *r, int64_t *a, int64_t n);

/* ---------------------------------------------------------------- logging */

typedef enum xmc_log_level {
    XMC_LOG_DEBUG = 0,
    XMC_LOG_INFO,
    XMC_LOG_WARN,
    XMC_LOG_PROGRESS /* transient status line: a terminal overwrites it */
} xmc_log_level;

typedef void (*xmc_log_fn)(void *ctx, xmc_log_level level, const char *msg);

/* Install the sink for library messages; NULL silences the library (the
 * default). Process-wide; set it before starting work. */
void xmc_log_set_sink(xmc_log_fn fn, void *ctx);
void xmc_log(xmc_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Ready-made sink writing to stderr: progress lines overwrite each other with
 * '\r' on a terminal, and are rate-limited plain lines otherwise. */
void xmc_log_stderr(void *ctx, xmc_log_level level, const char *msg);

/* Progress of long work: rate and ETA. Reports at most every `interval` s
 * (0.2 s on a terminal is set by the stderr sink's rate limiting; the
 * library reports at most every 0.1 s). */
typedef struct xmc_progress {
    char what[64];
    char unit[16];
    int64_t total; /* 0 = unknown */
    int64_t done;
    double t_start, t_last;
} xmc_progress;

void xmc_progress_start(xmc_progress *p, const char *what, const char *unit,
                        int64_t total);
/* `extra` (may be NULL) is appended, e.g. "loss 0.0123". */
void xmc_progress_update(xmc_progress *p, int64_t done, const char *extra);
void xmc_progress_finish(xmc_progress *p, const char *extra);

double xmc_now(void); /* monotonic seconds */

/* ---------------------------------------------------------------- files */

/* Output written to "PATH.tmp.PID", then fsync + rename on commit, so an
 * interrupted run never leaves a half-written PATH. Abort (or free without
 * commit) removes the temp file. */
typedef struct xmc_outfile {
    FILE *fp;
    char *path;
    char *tmp_path;
    int failed; /* a write failed; commit reports it */
} xmc_outfile;

int xmc_outfile_open(xmc_outfile *o, const char *path, xmc_error *err);
int xmc_outfile_commit(xmc_outfile *o, xmc_error *err);
void xmc_outfile_abort(xmc_outfile *o);

/* Line reader over a plain or gzip file (zlib reads both transparently;
 * "-" is stdin). Tracks the 1-based line number for error messages. Lines
 * are returned without the trailing '\n' (and '\r'), NUL-terminated; the
 * buffer is owned by the reader and valid until the next call. */
typedef struct xmc_lines xmc_lines;

int xmc_lines_open(xmc_lines **out, const char *path, xmc_error *err);
/* Returns 1 with *line and *len set, 0 at end of file, or -1 on error (err set). */
int xmc_lines_next(xmc_lines *r, char **line, size_t *len, xmc_error *err);
long xmc_lines_lineno(const xmc_lines *r);
const char *xmc_lines_path(const xmc_lines *r);
uint64_t xmc_lines_bytes(const xmc_lines *r); /* uncompressed bytes read */
void xmc_lines_close(xmc_lines *r);

int xmc_file_exists(const char *path);
/* Reads a whole (plain or gzip) file into a NUL-terminated buffer; the caller
 * frees it with xmc_free. */
int xmc_read_file(const char *path, char **data, size_t *len, xmc_error *err);
/* mkdir -p */
int xmc_mkdir_p(const char *path, xmc_error *err);

/* CRC-32 (zlib) for checksums in binary files. */
uint32_t xmc_crc32(uint32_t crc, const void *data, size_t n);

/* ---------------------------------------------------------------- threads */

/* Number of OpenMP threads xmc uses (and OpenBLAS, which shares the pool). */
void xmc_set_threads(int n);
int xmc_get_threads(void);

#ifdef __cplusplus
}
#endif
#endif
