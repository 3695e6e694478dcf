/* The process group for `mpirun -np P xmc train|predict` (dist.h): rank 0
 * alone prints progress; the others print warnings and their own errors.
 * After an error a rank exits without MPI_Finalize: the ranks that agreed on
 * the failure exit too, and mpirun ends any rank still inside a collective
 * (Open MPI aborts the job when a rank exits non-zero), so nothing hangs. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static int g_rank;

static void sink_nonroot(void *ctx, xmc_log_level level, const char *msg)
{
    (void)ctx;
    if (level == XMC_LOG_WARN)
        fprintf(stderr, "xmc[rank %d]: %s\n", g_rank, msg);
}

xmc_dist *cli_dist_begin(int *argc, char ***argv, int *rc)
{
    xmc_dist *d = NULL;
    xmc_error err = {0};
    *rc = 0;
    if (xmc_dist_create(argc, argv, &d, &err) != XMC_OK) {
        *rc = cli_fail(&err);
        return NULL;
    }
    g_rank = xmc_dist_rank(d);
    if (g_rank != 0)
        xmc_log_set_sink(sink_nonroot, NULL);
    return d;
}

int cli_dist_fail(xmc_dist *d, const xmc_error *err)
{
    /* XMC_EDIST on another rank repeats what rank 0 prints. */
    if (xmc_dist_rank(d) == 0)
        return cli_fail(err);
    if (err->code != XMC_EDIST) {
        char buf[1200];
        fprintf(stderr, "xmc[rank %d]: %s\n", xmc_dist_rank(d), xmc_error_format(err, buf, sizeof buf));
    }
    return 1;
}

int cli_dist_end(xmc_dist *d, int rc)
{
    if (rc && xmc_dist_active(d)) {
        fflush(NULL);
        exit(rc); /* no MPI_Finalize: peers may still wait in a collective */
    }
    xmc_dist_free(d);
    return rc;
}
