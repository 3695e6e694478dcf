/* MPI backend of the process group. Built only when CMake finds MPI.
 *
 * The communicator is a dup of MPI_COMM_WORLD with MPI_ERRORS_RETURN, so a
 * failed call returns here and becomes XMC_EDIST instead of killing the job
 * inside a library call. Counts above INT_MAX elements are sent in pieces
 * (MPI's count arguments are int). Only the thread that created the group
 * calls MPI (MPI_THREAD_FUNNELED); OpenMP regions never do. */
#include <limits.h>
#include <mpi.h>
#include <string.h>

#include "internal.h"

_Static_assert(sizeof(MPI_Comm) <= sizeof(((xmc_dist *)0)->comm), "MPI_Comm storage");
_Static_assert(sizeof(MPI_Request) <= sizeof(((xmc_dist_req *)0)->opaque), "MPI_Request storage");

static MPI_Comm comm_of(const xmc_dist *d)
{
    MPI_Comm c;
    memcpy(&c, d->comm, sizeof c);
    return c;
}

static int check(int mrc, const char *what, xmc_error *err)
{
    if (mrc == MPI_SUCCESS)
        return XMC_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(mrc, msg, &len);
    return XMC_ERR(err, XMC_EDIST, NULL, 0, "MPI %s failed: %s", what, msg);
}

int xmc_mpi_init(xmc_dist *d, int *argc, char ***argv, xmc_error *err)
{
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int mrc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (mrc != MPI_SUCCESS)
            return XMC_ERR(err, XMC_EDIST, NULL, 0, "MPI_Init_thread failed");
        d->own_init = 1;
    }
    MPI_Comm c;
    MPI_Comm_dup(MPI_COMM_WORLD, &c);
    MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
    memcpy(d->comm, &c, sizeof c);
    MPI_Comm_rank(c, &d->rank);
    MPI_Comm_size(c, &d->size);
    d->mpi = 1;
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(lib, &len);
    char *nl = strpbrk(lib, ",\n");
    if (nl)
        *nl = '\0';
    snprintf(d->describe, sizeof d->describe, "mpi, %d ranks (%.60s)", d->size, lib);
    return XMC_OK;
}

void xmc_mpi_finalize(xmc_dist *d)
{
    MPI_Comm c = comm_of(d);
    MPI_Comm_free(&c);
    if (d->own_init) {
        int fin = 0;
        MPI_Finalized(&fin);
        if (!fin)
            MPI_Finalize();
    }
}

int xmc_mpi_allgather_f32(xmc_dist *d, const float *send, int64_t count, float *recv,
                          xmc_error *err)
{
    if (count > INT_MAX)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "allgather of %lld floats per rank exceeds MPI's int count",
                       (long long)count);
    d->bytes_sent += (uint64_t)count * sizeof(float) * (uint64_t)(d->size - 1);
    return check(MPI_Allgather(send, (int)count, MPI_FLOAT, recv, (int)count, MPI_FLOAT,
                               comm_of(d)),
                 "allgather", err);
}

int xmc_mpi_allreduce(xmc_dist *d, void *buf, int64_t count, int f64, xmc_error *err)
{
    size_t esz = f64 ? sizeof(double) : sizeof(float);
    /* Ring allreduce sends about 2 (P-1)/P of the buffer. */
    d->bytes_sent += (uint64_t)(2.0 * (double)(d->size - 1) / d->size * (double)count * (double)esz);
    for (int64_t off = 0; off < count; off += INT_MAX) {
        int n = (int)(count - off < INT_MAX ? count - off : INT_MAX);
        int rc = check(MPI_Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)off * esz, n,
                                     f64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, comm_of(d)),
                       "allreduce", err);
        if (rc)
            return rc;
    }
    return XMC_OK;
}

int xmc_mpi_iallreduce_f32(xmc_dist *d, float *buf, int64_t count, xmc_dist_req *req,
                           xmc_error *err)
{
    if (count > INT_MAX)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "iallreduce count exceeds MPI's int count");
    MPI_Request r;
    int rc = check(MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM,
                                  comm_of(d), &r),
                   "iallreduce", err);
    if (rc)
        return rc;
    d->bytes_sent += (uint64_t)(2.0 * (double)(d->size - 1) / d->size * (double)count * 4.0);
    memcpy(req->opaque, &r, sizeof r);
    req->active = 1;
    return XMC_OK;
}

int xmc_mpi_ireduce_scatter_f32(xmc_dist *d, const float *send, float *recv,
                                const int *counts, xmc_dist_req *req, xmc_error *err)
{
    MPI_Request r;
    int64_t total = 0;
    for (int i = 0; i < d->size; i++)
        total += counts[i];
    int rc = check(MPI_Ireduce_scatter(send, recv, counts, MPI_FLOAT, MPI_SUM, comm_of(d), &r),
                   "ireduce_scatter", err);
    if (rc)
        return rc;
    d->bytes_sent += (uint64_t)((double)(d->size - 1) / d->size * (double)total * 4.0);
    memcpy(req->opaque, &r, sizeof r);
    req->active = 1;
    return XMC_OK;
}

int xmc_mpi_wait(xmc_dist *d, xmc_dist_req *req, xmc_error *err)
{
    (void)d;
    MPI_Request r;
    memcpy(&r, req->opaque, sizeof r);
    req->active = 0;
    return check(MPI_Wait(&r, MPI_STATUS_IGNORE), "wait", err);
}

int xmc_mpi_bcast(xmc_dist *d, void *buf, size_t bytes, int root, xmc_error *err)
{
    if (d->rank == root)
        d->bytes_sent += bytes * (uint64_t)(d->size - 1);
    for (size_t off = 0; off < bytes; off += INT_MAX) {
        int n = (int)(bytes - off < INT_MAX ? bytes - off : INT_MAX);
        int rc = check(MPI_Bcast((char *)buf + off, n, MPI_BYTE, root, comm_of(d)), "bcast", err);
        if (rc)
            return rc;
    }
    return XMC_OK;
}

int xmc_mpi_barrier(xmc_dist *d, xmc_error *err)
{
    return check(MPI_Barrier(comm_of(d)), "barrier", err);
}

int xmc_mpi_gather(xmc_dist *d, const void *send, size_t bytes, void *recv, int root,
                   xmc_error *err)
{
    if (bytes > INT_MAX)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "gather of %zu bytes per rank exceeds MPI's int count",
                       bytes);
    if (d->rank != root)
        d->bytes_sent += bytes;
    return check(MPI_Gather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, root,
                            comm_of(d)),
                 "gather", err);
}

int xmc_mpi_agree(xmc_dist *d, int local_code, int *failed_rank, xmc_error *err)
{
    /* MAXLOC over (code, rank): the worst code and the lowest rank with it. */
    struct {
        int code, rank;
    } in = {local_code, d->rank}, out;
    int rc = check(MPI_Allreduce(&in, &out, 1, MPI_2INT, MPI_MAXLOC, comm_of(d)), "agree", err);
    if (rc)
        return rc;
    if (failed_rank)
        *failed_rank = out.code ? out.rank : -1;
    return out.code;
}

void xmc_mpi_abort(xmc_dist *d, int code)
{
    MPI_Abort(comm_of(d), code ? code : 1);
}
