/* dist internals: the MPI backend (dist_mpi.c, built only with MPI). */
#ifndef XMC_DIST_INTERNAL_H
#define XMC_DIST_INTERNAL_H

#include "xmc/dist.h"

struct xmc_dist {
    int rank, size;
    int mpi;          /* the group is an MPI communicator */
    int own_init;     /* we called MPI_Init, so we finalise */
    uint64_t bytes_sent;
    char describe[96];
    uint64_t comm[2]; /* MPI_Comm storage (dup of COMM_WORLD) */
};

/* Launched by an MPI launcher? (rank variables in the environment) */
int xmc_dist_launched(void);

#ifdef XMC_HAVE_MPI
int xmc_mpi_init(xmc_dist *d, int *argc, char ***argv, xmc_error *err);
void xmc_mpi_finalize(xmc_dist *d);
int xmc_mpi_allgather_f32(xmc_dist *d, const float *send, int64_t count, float *recv,
                          xmc_error *err);
int xmc_mpi_allreduce(xmc_dist *d, void *buf, int64_t count, int f64, xmc_error *err);
int xmc_mpi_iallreduce_f32(xmc_dist *d, float *buf, int64_t count, xmc_dist_req *req,
                           xmc_error *err);
int xmc_mpi_ireduce_scatter_f32(xmc_dist *d, const float *send, float *recv,
                                const int *counts, xmc_dist_req *req, xmc_error *err);
int xmc_mpi_wait(xmc_dist *d, xmc_dist_req *req, xmc_error *err);
int xmc_mpi_bcast(xmc_dist *d, void *buf, size_t bytes, int root, xmc_error *err);
int xmc_mpi_barrier(xmc_dist *d, xmc_error *err);
int xmc_mpi_gather(xmc_dist *d, const void *send, size_t bytes, void *recv, int root,
                   xmc_error *err);
int xmc_mpi_agree(xmc_dist *d, int local_code, int *failed_rank, xmc_error *err);
void xmc_mpi_abort(xmc_dist *d, int code);
#endif

#endif
