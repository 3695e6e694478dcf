/* xmc dist: the process group for Renee's hybrid data/model parallelism.
 *
 * A thin layer over MPI (Open MPI from Debian; any MPI works) with the few
 * collectives the trainer needs, so the rest of xmc never includes mpi.h and
 * builds without MPI (then the group is always one process and every
 * collective is a copy). Large counts are split below INT_MAX elements.
 *
 * Errors: the communicator is set to MPI_ERRORS_RETURN, so a failed
 * collective becomes XMC_EDIST here; xmc_dist_agree lets all ranks stop
 * together when one fails locally (no rank left waiting in a collective).
 */
#ifndef XMC_DIST_H
#define XMC_DIST_H

#include "xmc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xmc_dist xmc_dist;

/* A pending non-blocking collective; storage is the caller's (no malloc). */
typedef struct xmc_dist_req {
    uint64_t opaque[4];
    int active;
} xmc_dist_req;

/* Join the job. Under an MPI launcher (mpirun/srun set the usual rank
 * environment variables) MPI is initialised (thread level FUNNELED: only the
 * thread that created the group calls MPI); otherwise, or in a build without
 * MPI, the group is this process alone. argc/argv may be NULL. */
int xmc_dist_create(int *argc, char ***argv, xmc_dist **out, xmc_error *err);
/* Leaves the group; finalises MPI if xmc_dist_create initialised it. */
void xmc_dist_free(xmc_dist *d);

int xmc_dist_rank(const xmc_dist *d);
int xmc_dist_size(const xmc_dist *d);
/* 1 when the group spans several processes. */
int xmc_dist_active(const xmc_dist *d);
/* "mpi (Open MPI v4.1.4)" or "single process". */
const char *xmc_dist_describe(const xmc_dist *d);

/* The contiguous shard [*begin, *end) of n items owned by `rank` of `size`:
 * the first n % size ranks get one extra item. */
void xmc_dist_shard(int64_t n, int size, int rank, int64_t *begin, int64_t *end);

/* recv (size * count floats) = concatenation of every rank's send (count). */
int xmc_dist_allgather_f32(xmc_dist *d, const float *send, int64_t count, float *recv,
                           xmc_error *err);
/* In-place element-wise sum over ranks. */
int xmc_dist_allreduce_f32(xmc_dist *d, float *buf, int64_t count, xmc_error *err);
int xmc_dist_allreduce_f64(xmc_dist *d, double *buf, int64_t count, xmc_error *err);
/* Non-blocking in-place sum; complete with xmc_dist_wait. count <= INT_MAX. */
int xmc_dist_iallreduce_f32(xmc_dist *d, float *buf, int64_t count, xmc_dist_req *req,
                            xmc_error *err);
/* Non-blocking sum of send (sum of counts floats) scattered so that rank r
 * receives counts[r] floats into recv: the input-gradient reduction of the
 * sharded classifier. counts has size() entries, each <= INT_MAX. */
int xmc_dist_ireduce_scatter_f32(xmc_dist *d, const float *send, float *recv,
                                 const int *counts, xmc_dist_req *req, xmc_error *err);
int xmc_dist_wait(xmc_dist *d, xmc_dist_req *req, xmc_error *err);
int xmc_dist_bcast(xmc_dist *d, void *buf, size_t bytes, int root, xmc_error *err);
int xmc_dist_barrier(xmc_dist *d, xmc_error *err);
/* Gather `bytes` from every rank into recv (size * bytes) on root only. */
int xmc_dist_gather(xmc_dist *d, const void *send, size_t bytes, void *recv, int root,
                    xmc_error *err);

/* Every rank passes its local status; all receive the worst (max) code and the
 * rank that reported it, so all stop together. Returns the agreed code. */
int xmc_dist_agree(xmc_dist *d, int local_code, int *failed_rank, xmc_error *err);

/* Bytes this process sent in collectives so far (for traffic accounting). */
uint64_t xmc_dist_bytes_sent(const xmc_dist *d);

/* End the whole job now (MPI_Abort) with `code`; for the CLI after it has
 * printed the error on a failing rank. No-op when not distributed. */
void xmc_dist_abort(xmc_dist *d, int code);

#ifdef __cplusplus
}
#endif
#endif
