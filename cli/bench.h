/* Benchmark subcommands of `xmc bench`, one file each (bench_<name>.c). */
#ifndef XMC_CLI_BENCH_H
#define XMC_CLI_BENCH_H

int bench_classifier(int argc, char **argv); /* bench_classifier.c */
int bench_ffi(int argc, char **argv);        /* bench_ffi.c: `classifier --head ffi` */
int bench_ann(int argc, char **argv);        /* bench_ann.c */
int bench_encoder(int argc, char **argv);    /* bench_encoder.c */

/* Shared by the benchmarks (cmd_bench.c): sort ascending; median (sorts v). */
void bench_sort(double *v, int n);
double bench_median(double *v, int n);

#endif
