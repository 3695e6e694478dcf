#!/usr/bin/env bash
# Collectives under `mpirun -np 2`, over shared memory and over TCP only.
set -euo pipefail
bin=$(dirname "$XMC")/tests/test_dist
command -v mpirun >/dev/null || { echo "skip: no mpirun"; exit 77; }
[ -x "$bin" ] || { echo "skip: $bin not built"; exit 77; }
mpi=(mpirun --oversubscribe -np 2)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
export OMP_NUM_THREADS=1
# Under ASan: Open MPI's runtime keeps allocations from MPI_Init until exit
# inside dlopen-ed plugins that LeakSanitizer cannot attribute, so leak
# checking is off for these multi-rank runs only; test_dist's single-process
# run (its own ctest entry) still checks our code for leaks.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
"${mpi[@]}" "$bin"
"${mpi[@]}" --mca btl tcp,self "$bin"
echo "dist_mpi: 2 ranks ok (shared memory and tcp)"
