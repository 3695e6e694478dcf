/* The process group: single-process semantics here, MPI in dist_mpi.c. With
 * one process every collective is the identity (or a copy), so the trainer
 * has one code path for P = 1 and P > 1. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int xmc_dist_launched(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK",
                                 "MPI_LOCALNRANKS", "SLURM_STEP_NUM_TASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

int xmc_dist_create(int *argc, char ***argv, xmc_dist **out, xmc_error *err)
{
    *out = NULL;
    xmc_dist *d = xmc_calloc(1, sizeof *d);
    if (!d)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory");
    d->size = 1;
    snprintf(d->describe, sizeof d->describe, "single process");
#ifdef XMC_HAVE_MPI
    if (xmc_dist_launched()) {
        int rc = xmc_mpi_init(d, argc, argv, err);
        if (rc) {
            xmc_free(d);
            return rc;
        }
    }
#else
    (void)argc;
    (void)argv;
    if (xmc_dist_launched() && getenv("OMPI_COMM_WORLD_SIZE") &&
        atoi(getenv("OMPI_COMM_WORLD_SIZE")) > 1) {
        xmc_free(d);
        return XMC_ERR(err, XMC_EUNSUPPORTED, NULL, 0,
                       "launched under MPI, but this xmc was built without MPI "
                       "(install libopenmpi-dev and rebuild)");
    }
#endif
    *out = d;
    return XMC_OK;
}

void xmc_dist_free(xmc_dist *d)
{
    if (!d)
        return;
#ifdef XMC_HAVE_MPI
    if (d->mpi)
        xmc_mpi_finalize(d);
#endif
    xmc_free(d);
}

int xmc_dist_rank(const xmc_dist *d) { return d ? d->rank : 0; }
int xmc_dist_size(const xmc_dist *d) { return d ? d->size : 1; }
int xmc_dist_active(const xmc_dist *d) { return d && d->size > 1; }
const char *xmc_dist_describe(const xmc_dist *d) { return d ? d->describe : "single process"; }
uint64_t xmc_dist_bytes_sent(const xmc_dist *d) { return d ? d->bytes_sent : 0; }

void xmc_dist_shard(int64_t n, int size, int rank, int64_t *begin, int64_t *end)
{
    int64_t q = n / size, r = n % size;
    *begin = rank * q + (rank < r ? rank : r);
    *end = *begin + q + (rank < r ? 1 : 0);
}

/* Dispatch helpers: MPI when the group is distributed, local semantics else. */
#ifdef XMC_HAVE_MPI
#define VIA_MPI(d) ((d)->mpi)
#else
#define VIA_MPI(d) 0
#endif

int xmc_dist_allgather_f32(xmc_dist *d, const float *send, int64_t count, float *recv,
                           xmc_error *err)
{
#ifdef XMC_HAVE_MPI
    if (VIA_MPI(d))
        return xmc_mpi_allgather_f32(d, send, count, recv, err);
#endif
    (void)err;
    if (recv != send)
        memmove(recv, send, (size_t)count * sizeof *recv);
    return XMC_OK;
}

int xmc_dist_allreduce_f32(xmc_dist *d, float *buf, int64_t count, xmc_error *err)
{
#ifdef XMC_HAVE_MPI
    if (VIA_MPI(d))
        return xmc_mpi_allreduce(d, buf, count, 0, err);
#endif
    (void)d, (void)buf, (void)count, (void)err;
    return XMC_OK;
}

int xmc_dist_allreduce_f64(xmc_dist *d, double *buf, int64_t count, xmc_error *err)
{
#ifdef XMC_HAVE_MPI
    if (VIA_MPI(d))
        return xmc_mpi_allreduce(d, buf, count, 1, err);
#endif
    (void)d, (void)buf, (void)count, (void)err;
    return XMC_OK;
}

int xmc_dist_iallreduce_f32(xmc_dist *d, float *buf, int64_t count, xmc_dist_req *req,
                            xmc_error *err)
{
    memset(req, 0, sizeof *req);
#ifdef XMC_HAVE_MPI
    if (VIA_MPI(d))
        return xmc_mpi_iallreduce_f32(d, buf, count, req, err);
#endif
    (void)d, (void)buf, (void)count, (void)err;
    return XMC_OK;
}

int xmc_dist_ireduce_scatter_f32(xmc_dist *d, const float *send, float *recv,
                                 const int *counts, xmc_dist_req *req, xmc_error *err)
{
    memset(req, 0, sizeof *req);
#ifdef XMC_HAVE_MPI
    if (VIA_MPI(d))
        return xmc_mpi_ireduce_scatter_f32(d, send, recv, counts, req, err);
#endif
    (void)d, (void)err;
    if (recv != send)
        memmove(recv, send, (size_t)counts[0] * sizeof *recv);
    return XMC_OK;
}

int xmc_dist_wait(xmc_dist *d, xmc_dist_req *req, xmc_error *err)
{
#ifdef XMC_HAVE_MPI
    if (VIA_MPI(d) && req->active)
        return xmc_mpi_wait(d, req, err);
#endif
    (void)d, (void)err;
    req->active = 0;
    return XMC_OK;
}

int xmc_dist_bcast(xmc_dist *d, void *buf, size_t bytes, int root, xmc_error *err)
{
#ifdef XMC_HAVE_MPI
    if (VIA_MPI(d))
        return xmc_mpi_bcast(d, buf, bytes, root, err);
#endif
    (void)d, (void)buf, (void)bytes, (void)root, (void)err;
    return XMC_OK;
}

int xmc_dist_barrier(xmc_dist *d, xmc_error *err)
{
#ifdef XMC_HAVE_MPI
    if (VIA_MPI(d))
        return xmc_mpi_barrier(d, err);
#endif
    (void)d, (void)err;
    return XMC_OK;
}

int xmc_dist_gather(xmc_dist *d, const void *send, size_t bytes, void *recv, int root,
                    xmc_error *err)
{
#ifdef XMC_HAVE_MPI
    if (VIA_MPI(d))
        return xmc_mpi_gather(d, send, bytes, recv, root, err);
#endif
    (void)d, (void)root, (void)err;
    if (recv != send)
        memmove(recv, send, bytes);
    return XMC_OK;
}

int xmc_dist_agree(xmc_dist *d, int local_code, int *failed_rank, xmc_error *err)
{
#ifdef XMC_HAVE_MPI
    if (VIA_MPI(d))
        return xmc_mpi_agree(d, local_code, failed_rank, err);
#endif
    (void)d, (void)err;
    if (failed_rank)
        *failed_rank = local_code ? 0 : -1;
    return local_code;
}

void xmc_dist_abort(xmc_dist *d, int code)
{
#ifdef XMC_HAVE_MPI
    if (d && VIA_MPI(d))
        xmc_mpi_abort(d, code);
#endif
    (void)d, (void)code;
}
