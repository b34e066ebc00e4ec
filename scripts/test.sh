#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (CUnit unit tests
# and the MPI tests at 1, 2 and 4 processes) under ctest; then, for a plain
# run without ctest arguments, builds mpx with MPICH as well (build-mpich)
# and runs the MPICH stage: the core MPI tests, a job's kills and resumes,
# the agreed exit status, and both MPIs' programs under the other's
# launcher (MPX_MPICH_TESTS, a ctest -R regex, picks them). Not job_guard:
# MPICH's mpiexec, itself signalled, still exited 0 once after an
# interrupted job whose every rank exited 1 (docs/testing.md).
# Usage: scripts/test.sh [--sanitize address|thread] [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
san_args=()
if [ "${1:-}" = "--sanitize" ]; then
  san_args=(--sanitize "$2"); shift 2
fi
dir=$(bash scripts/build.sh "${san_args[@]}" | tail -n 1)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Open MPI's PML named: ob1, the one Debian's configuration (pml = ^ucx)
# selects anyway; otherwise every process first opens cm, whose PSM probe
# finds no hardware: 0.2 s of each of the suite's hundreds of launches.
export OMPI_MCA_pml=ob1
# Open MPI's own allocations outlive MPI_Finalize; only mpx's leaks count.
# Its components stay loaded so that their leaks can be attributed (and
# suppressed), and full unwinding reaches the frames the suppressions name.
export OMPI_MCA_mca_base_component_disable_dlclose=1
# use_tls=0: LeakSanitizer (GCC 12) crashes walking the dynamic TLS of a
# singleton Open MPI process ("Tracer caught signal 11"); not scanning TLS
# can only add reports, never hide one.
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0:use_tls=0"
export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp:report_signal_unsafe=0"
mpich_stage=0
[ ${#san_args[@]} -eq 0 ] && [ $# -eq 0 ] && mpich_stage=1
# Two tests at a time: most wait on launches, kills and SLURM; the timed
# ones are RUN_SERIAL (MPX_TEST_JOBS=1 runs all one by one).
(cd "$dir" && ctest --output-on-failure --verbose -j "${MPX_TEST_JOBS:-2}" "$@")
if [ "$mpich_stage" = 1 ]; then
  echo "== the MPICH stage (mpicc.mpich, mpiexec.mpich)"
  mdir=$(bash scripts/build.sh --mpi mpich | tail -n 1)
  cd "$mdir"
  ctest --output-on-failure --verbose -j "${MPX_TEST_JOBS:-2}" -R "${MPX_MPICH_TESTS:-^(test_errors|test_executor_np4|test_executor_caller_np2|test_broken_np2|test_thread_level_np2|test_progress_np2|test_launcher_np1|test_map_np4|test_job_np2|test_sched_np4|launcher_cross|seeds_np4|bench_tiny_np3|job_resume|test_finalize_status_np4|test_hier_np7|test_map_group_np7)$}"
fi
