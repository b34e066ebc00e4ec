/*
 * executor.c -- the executor's life: collective creation (options agreed
 * from the root, the task tables compared), submit, shutdown and destroy
 * on the root, the worker loop on the other ranks, and the MPI start-up
 * helpers. The manager thread that runs the pool is in manager.c.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "executor.h"
#include "future.h"
#include "hier.h"
#include "manager.h"
#include "msg.h"
#include "registry.h"
#include "supervise.h"
#include "task.h"
#include "transport.h"
#include "util.h"
#include "worker.h"
#include "worktable.h"

/* ---- the executors this process holds ---------------------------------- */

/* Executors created on this process and not destroyed: create refuses a
 * second live one (its workers are busy in the first one's loop, so a
 * second creation would wait for them forever), and mpx_finalize() shuts
 * the live ones down before MPI is finalised. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static mpx_executor *live_head;

/* Records a new executor of this process. */
static void live_add(mpx_executor *ex) {
  pthread_mutex_lock(&live_mu);
  ex->live_next = live_head;
  live_head = ex;
  pthread_mutex_unlock(&live_mu);
}

/* Forgets an executor being destroyed (no-op when never recorded). */
static void live_remove(mpx_executor *ex) {
  pthread_mutex_lock(&live_mu);
  for (mpx_executor **p = &live_head; *p; p = &(*p)->live_next)
    if (*p == ex) {
      *p = ex->live_next;
      break;
    }
  pthread_mutex_unlock(&live_mu);
}

/* The number of this process's executors whose manager still runs. */
static int live_count(void) {
  int n = 0;
  pthread_mutex_lock(&live_mu);
  for (mpx_executor *ex = live_head; ex; ex = ex->live_next) {
    pthread_mutex_lock(&ex->sync->mu);
    n += !ex->mgr_done;
    pthread_mutex_unlock(&ex->sync->mu);
  }
  pthread_mutex_unlock(&live_mu);
  return n;
}

/* ---- options ---------------------------------------------------------- */

void mpx_executor_options_init(mpx_executor_options *o) {
  if (!o)
    return;
  o->root = 0;
  o->prefetch = (int)mpx__env_long("MPX_PREFETCH", 2);
  o->max_batch = (int)mpx__env_long("MPX_MAX_BATCH", 64);
  o->flush_interval = mpx__env_double("MPX_FLUSH_INTERVAL", 0.001);
  const char *iso = getenv("MPX_ISOLATION");
  o->isolation = MPX_ISOLATION_NONE;
  if (iso && *iso)
    o->isolation = strcmp(iso, "process") == 0 ? MPX_ISOLATION_PROCESS
                   : strcmp(iso, "none") == 0  ? MPX_ISOLATION_NONE
                                               : -1; /* check_options says */
  o->processes = (int)mpx__env_long("MPX_PROCESSES", 0);
  o->task_timeout = mpx__env_double("MPX_TASK_TIMEOUT", 0);
  o->memory_limit = mpx__env_bytes("MPX_MEMORY_LIMIT", 0);
  o->retries = (int)mpx__env_long("MPX_RETRIES", 0);
  o->retry_task_failures = 0;
  o->max_tasks_per_child = (int)mpx__env_long("MPX_MAX_TASKS_PER_CHILD", 0);
  o->initializer = NULL;
  o->initarg = NULL;
  o->initarg_len = 0;
  const char *gr = getenv("MPX_GROUP");
  o->group = MPX_GROUP_AUTO;
  if (gr && *gr) {
    char *end;
    long k = strtol(gr, &end, 10);
    o->group = strcmp(gr, "auto") == 0   ? MPX_GROUP_AUTO
               : strcmp(gr, "flat") == 0 ? MPX_GROUP_FLAT
               : strcmp(gr, "node") == 0 ? MPX_GROUP_NODE
               : (*end == '\0' && k >= 2 && k <= INT_MAX)
                   ? (int)k
                   : -3; /* check_options says */
  }
  const char *pm = getenv("MPX_PROGRESS");
  o->progress = MPX_PROGRESS_AUTO;
  if (pm && *pm)
    o->progress = strcmp(pm, "thread") == 0   ? MPX_PROGRESS_THREAD
                  : strcmp(pm, "caller") == 0 ? MPX_PROGRESS_CALLER
                  : strcmp(pm, "auto") == 0   ? MPX_PROGRESS_AUTO
                                              : -2; /* check_options says */
}

static int check_options(const mpx_executor_options *o, int size) {
  if (o->root < 0 || o->root >= size)
    return mpx__fail(MPX_EINVAL,
                     "root %d is not a rank of a communicator "
                     "of size %d",
                     o->root, size);
  if (o->prefetch < 1)
    return mpx__fail(MPX_EINVAL, "prefetch must be at least 1 (got %d)",
                     o->prefetch);
  if (o->max_batch < 1)
    return mpx__fail(MPX_EINVAL, "max_batch must be at least 1 (got %d)",
                     o->max_batch);
  if (!(o->flush_interval >= 0))
    return mpx__fail(MPX_EINVAL, "flush_interval must be >= 0");
  if (o->isolation != MPX_ISOLATION_NONE &&
      o->isolation != MPX_ISOLATION_PROCESS)
    return mpx__fail(MPX_EINVAL,
                     "isolation must be MPX_ISOLATION_NONE or "
                     "MPX_ISOLATION_PROCESS (MPX_ISOLATION=none|process; "
                     "got %d)",
                     o->isolation);
  if (o->progress != MPX_PROGRESS_AUTO && o->progress != MPX_PROGRESS_THREAD &&
      o->progress != MPX_PROGRESS_CALLER)
    return mpx__fail(MPX_EINVAL,
                     "progress must be MPX_PROGRESS_AUTO, MPX_PROGRESS_THREAD "
                     "or MPX_PROGRESS_CALLER (MPX_PROGRESS=auto|thread|"
                     "caller; got %d)",
                     o->progress);
  if (o->group != MPX_GROUP_AUTO && o->group != MPX_GROUP_FLAT &&
      o->group != MPX_GROUP_NODE && o->group < 2)
    return mpx__fail(MPX_EINVAL,
                     "group must be MPX_GROUP_AUTO, MPX_GROUP_FLAT, "
                     "MPX_GROUP_NODE or a group size of at least 2 ranks "
                     "(MPX_GROUP=auto|flat|node|k; got %d)",
                     o->group);
  if (o->processes < 0 || o->retries < 0 || o->max_tasks_per_child < 0)
    return mpx__fail(MPX_EINVAL, "processes, retries and max_tasks_per_child "
                                 "must be >= 0");
  if (!(o->task_timeout >= 0) || o->task_timeout > 1e9)
    return mpx__fail(MPX_EINVAL, "task_timeout must be >= 0 seconds");
  if (o->isolation != MPX_ISOLATION_PROCESS &&
      (o->task_timeout > 0 || o->memory_limit > 0 ||
       o->max_tasks_per_child > 0))
    return mpx__fail(MPX_EINVAL,
                     "task_timeout, memory_limit and max_tasks_per_child "
                     "need isolation (MPX_ISOLATION_PROCESS): a task inside "
                     "the rank cannot be stopped or limited");
  return 0;
}

/* ---- creation ---------------------------------------------------------- */

/* Agrees on an error code over comm: the most negative wins, and the ranks
 * that did not fail themselves learn which rank did. */
static int agree(MPI_Comm comm, int rc, const char *what) {
  int all = 0;
  int mrc = MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MIN, comm);
  if (mrc != MPI_SUCCESS) {
    char call[160];
    snprintf(call, sizeof call, "MPI_Allreduce while %s", what);
    return mpx__mpi_fail(mrc, call);
  }
  if (all != 0 && rc == 0)
    return mpx__fail(all, "another rank failed while %s with %s", what,
                     mpx_err_name(all));
  return all;
}

/* Agrees on the options, collectively over comm, before anything that
 * depends on them: every rank's thread level and root are checked, then
 * every rank must name the same root (a different root would leave the
 * ranks waiting in collectives rooted at different ranks); then the root's
 * options are
 * broadcast, so that a value set on the root only (flush_interval, which
 * the workers apply) holds on every rank, and checked alike everywhere.
 * Returns 0 or the same error code on every rank. */
static int agree_options(MPI_Comm comm, int size, mpx_executor_options *o) {
  int provided = 0, rc = 0;
  MPI_Query_thread(&provided);
  /* Under MPI_THREAD_SINGLE the process may run one thread only: a pool
   * of several ranks moved by its callers starts none (its MPI calls are
   * made inside the caller's mpx calls, the workers' on the thread that
   * created the pool), so it runs; a manager thread, or the thread a
   * one-rank pool runs its tasks on, would break that promise. SimGrid's
   * SMPI provides no more than this. */
  if (provided < MPI_THREAD_FUNNELED &&
      (size == 1 || o->progress == MPX_PROGRESS_THREAD))
    rc = mpx__fail(MPX_ETHREAD,
                   "MPI provides thread level %d (MPI_THREAD_SINGLE), where "
                   "%s; it needs MPI_THREAD_FUNNELED or higher (use mpx_init "
                   "or MPI_Init_thread). Under MPI_THREAD_SINGLE only a pool "
                   "of several ranks moved by its callers runs "
                   "(MPX_PROGRESS_CALLER or auto)",
                   provided,
                   size == 1 ? "a one-rank pool runs its tasks on a thread"
                             : "a manager thread would run beside the "
                               "program's");
  else if (provided < MPI_THREAD_SERIALIZED && size > 1 &&
           o->progress == MPX_PROGRESS_THREAD)
    rc = mpx__fail(MPX_ETHREAD,
                   "MPI provides MPI_THREAD_FUNNELED: a manager thread "
                   "cannot make MPI calls (progress MPX_PROGRESS_CALLER, or "
                   "MPX_PROGRESS=caller, moves the pool from the main "
                   "thread)");
  else if (o->root < 0 || o->root >= size)
    rc = mpx__fail(MPX_EINVAL,
                   "root %d is not a rank of a communicator of size %d",
                   o->root, size);
  if ((rc = agree(comm, rc, "checking the thread level and the root")) != 0)
    return rc;
  int in[2] = {o->root, -o->root}, all[2];
  int mrc = MPI_Allreduce(in, all, 2, MPI_INT, MPI_MIN, comm);
  if (mrc != MPI_SUCCESS)
    return mpx__mpi_fail(mrc, "MPI_Allreduce of the roots");
  if (all[0] != -all[1])
    return mpx__fail(MPX_EINVAL,
                     "the ranks passed different roots (from %d to %d); "
                     "every rank must pass the same opts.root",
                     all[0], -all[1]);
  /* The pointers are this rank's own; the initializer travels apart. */
  const char *init = o->initializer;
  const void *initarg = o->initarg;
  mrc = MPI_Bcast(o, (int)sizeof *o, MPI_BYTE, all[0], comm);
  if (mrc != MPI_SUCCESS)
    return mpx__mpi_fail(mrc, "MPI_Bcast of the options");
  o->initializer = init;
  o->initarg = initarg;
  return check_options(o, size);
}

/* Agrees on the root's initializer, after the task tables were found
 * equal: the root names a registered task and every rank gets its id and
 * a copy of its argument (*arg, malloc'd). Returns 0 or the same code on
 * every rank. */
static int agree_initializer(MPI_Comm comm, int rank, int root,
                             const mpx_executor_options *o, mpx__pool_init *pi,
                             void **arg) {
  int rc = 0;
  long long hdr[2] = {-1, 0}; /* id, argument length */
  *arg = NULL;
  if (rank == root && o->initializer) {
    int id = mpx__registry_lookup(o->initializer);
    if (id < 0)
      rc = mpx__fail(MPX_ENOTASK,
                     "the initializer '%s' is not a registered task",
                     o->initializer);
    else if (o->initarg_len && !o->initarg)
      rc = mpx__fail(MPX_EINVAL, "initarg is NULL with initarg_len %zu",
                     o->initarg_len);
    else if (o->initarg_len > INT_MAX)
      rc = mpx__fail(MPX_E2BIG, "initarg is %zu bytes", o->initarg_len);
    hdr[0] = id;
    hdr[1] = (long long)o->initarg_len;
  }
  if ((rc = agree(comm, rc, "checking the initializer")) != 0)
    return rc;
  int mrc = MPI_Bcast(hdr, 2, MPI_LONG_LONG, root, comm);
  if (mrc != MPI_SUCCESS)
    return mpx__mpi_fail(mrc, "MPI_Bcast of the initializer");
  if (hdr[0] >= 0 && !(*arg = mpx__alloc((size_t)hdr[1])))
    rc = mpx__fail(MPX_ENOMEM,
                   "out of memory for the initializer's %lld "
                   "bytes of argument",
                   hdr[1]);
  if ((rc = agree(comm, rc, "copying the initializer's argument")) != 0) {
    free(*arg);
    *arg = NULL;
    return rc;
  }
  if (hdr[0] >= 0 && rank == root && hdr[1])
    memcpy(*arg, o->initarg, (size_t)hdr[1]);
  if (hdr[0] >= 0 && hdr[1] &&
      (mrc = MPI_Bcast(*arg, (int)hdr[1], MPI_BYTE, root, comm)) !=
          MPI_SUCCESS) {
    free(*arg);
    *arg = NULL;
    return mpx__mpi_fail(mrc, "MPI_Bcast of the initializer's argument");
  }
  pi->id = (int)hdr[0];
  pi->arg = *arg;
  pi->len = (size_t)hdr[1];
  return 0;
}

/* Finds which rank registered other tasks than the root, by gathering
 * every rank's table on the root (after the digests differed: O(ranks)
 * messages and bytes at the root, so not on the common path). Collective
 * over comm. On a mismatch every rank returns MPX_EMISMATCH with the
 * root's sentence naming the difference. Local failures (memory) are
 * agreed on before each collective step so that no rank is left waiting
 * in one; a failed MPI call returns MPX_EMPI with MPI's text. */
static int registry_differences(MPI_Comm comm, int root) {
  int rank, size, mrc;
  if ((mrc = MPI_Comm_rank(comm, &rank)) != MPI_SUCCESS ||
      (mrc = MPI_Comm_size(comm, &size)) != MPI_SUCCESS)
    return mpx__mpi_fail(mrc, "MPI_Comm_rank/MPI_Comm_size on the pool's "
                              "communicator");
  char *tab = NULL, *all = NULL;
  int *lens = NULL, *displs = NULL;
  char msg[512] = "";
  size_t len = 0;
  int verdict = 0, ilen = 0;
  int rc = mpx__registry_serialize(&tab, &len);
  if (rc == 0 && len > INT_MAX)
    rc = mpx__fail(MPX_E2BIG, "the task table is %zu bytes", len);
  if (rc == 0 && rank == root) {
    lens = calloc((size_t)size, sizeof *lens);
    displs = calloc((size_t)size, sizeof *displs);
    if (!lens || !displs)
      rc =
          mpx__fail(MPX_ENOMEM, "out of memory gathering %d task tables", size);
  }
  if ((rc = agree(comm, rc, "serialising the task table")) != 0)
    goto out;
  ilen = (int)len;
  if ((mrc = MPI_Gather(&ilen, 1, MPI_INT, lens, 1, MPI_INT, root, comm)) !=
      MPI_SUCCESS) {
    rc = mpx__mpi_fail(mrc, "MPI_Gather of the task table lengths");
    goto out;
  }
  if (rank == root) {
    size_t total = 0;
    for (int i = 0; i < size; i++) {
      displs[i] = (int)total;
      total += (size_t)lens[i];
    }
    if (total > INT_MAX)
      rc = mpx__fail(MPX_E2BIG, "the task tables of %d ranks are %zu bytes",
                     size, total);
    else if (!(all = malloc(total + 1)))
      rc = mpx__fail(MPX_ENOMEM, "out of memory for %zu bytes of task tables",
                     total + 1);
  }
  if ((rc = agree(comm, rc, "gathering the task tables")) != 0)
    goto out;
  if ((mrc = MPI_Gatherv(tab, ilen, MPI_CHAR, all, lens, displs, MPI_CHAR, root,
                         comm)) != MPI_SUCCESS) {
    rc = mpx__mpi_fail(mrc, "MPI_Gatherv of the task tables");
    goto out;
  }
  if (rank == root) {
    for (int i = 0; i < size && verdict == 0; i++)
      verdict = mpx__registry_compare(tab, len, root, all + displs[i],
                                      (size_t)lens[i], i, msg, sizeof msg);
  }
  if ((mrc = MPI_Bcast(&verdict, 1, MPI_INT, root, comm)) != MPI_SUCCESS ||
      (mrc = MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, root, comm)) !=
          MPI_SUCCESS) {
    rc = mpx__mpi_fail(mrc, "MPI_Bcast of the task table verdict");
    goto out;
  }
  if (verdict)
    rc = mpx__fail(verdict, "ranks registered different tasks: %s", msg);
out:
  free(tab);
  free(all);
  free(lens);
  free(displs);
  return rc;
}

/* FNV-1a, 64 bits, of len bytes, then of len itself. */
static uint64_t table_digest(const char *p, size_t len) {
  uint64_t h = 0xcbf29ce484222325u;
  for (size_t i = 0; i < len; i++)
    h = (h ^ (unsigned char)p[i]) * 0x100000001b3u;
  for (int i = 0; i < 8; i++)
    h = (h ^ ((uint64_t)len >> (8 * i) & 0xff)) * 0x100000001b3u;
  return h;
}

/* Checks that every rank registered the same tasks: one allreduce of each
 * rank's failure code and the least and greatest digest of its task table
 * (equal when every table is); only when they differ are the tables
 * gathered to name the difference (registry_differences). Collective over
 * comm; returns 0 or the same error on every rank. */
static int check_registry(MPI_Comm comm, int root) {
  char *tab = NULL;
  size_t len = 0;
  int rc = mpx__registry_serialize(&tab, &len);
  uint64_t d = rc == 0 ? table_digest(tab, len) : 0;
  free(tab);
  /* Signed order as unsigned: the sign bit flipped. */
  const uint64_t flip = (uint64_t)1 << 63;
  uint64_t in[3] = {(uint64_t)(int64_t)rc ^ flip, d, ~d}, all[3];
  int mrc = MPI_Allreduce(in, all, 3, MPI_UINT64_T, MPI_MIN, comm);
  if (mrc != MPI_SUCCESS)
    return mpx__mpi_fail(mrc, "MPI_Allreduce of the task table digests");
  int worst = (int)(int64_t)(all[0] ^ flip);
  if (worst != 0 && rc == 0)
    return mpx__fail(worst,
                     "another rank failed while serialising the task table "
                     "with %s",
                     mpx_err_name(worst));
  if (worst != 0)
    return worst;
  if (all[1] == ~all[2])
    return 0; /* least == greatest: one table everywhere */
  return registry_differences(comm, root);
}

/* A process that sees itself as the only MPI process while its launcher
 * says it started more: the program was built with another MPI than the
 * launcher's (an MPICH program under Open MPI's mpirun, say), and each
 * process would run a pool of its own, computing everything N times
 * over. Returns 0 or MPX_ELAUNCH (MPX_SINGLETON=1: one process alone is
 * meant, as for a program a command of mpx-run starts). */
static int check_launcher(void) {
  int world = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  const char *single = getenv("MPX_SINGLETON");
  if (world != 1 || (single && !strcmp(single, "1")))
    return 0;
  /* Open MPI's mpirun, MPICH's Hydra (PMI-1), SLURM's srun step (only
   * when it wired MPI up: a process a step's task starts is not part of
   * it) */
  static const struct {
    const char *name;
    int if_wired;
  } vars[] = {{"OMPI_COMM_WORLD_SIZE", 0},
              {"PMI_SIZE", 0},
              {"MPI_LOCALNRANKS", 0},
              {"SLURM_STEP_NUM_TASKS", 1}};
  int wired = getenv("PMIX_RANK") || getenv("PMI_RANK");
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    if (vars[i].if_wired && !wired)
      continue;
    const char *v = getenv(vars[i].name);
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || n <= 1)
      continue;
    char lib[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    MPI_Get_library_version(lib, &len);
    lib[strcspn(lib, "\n,")] = '\0';
    for (char *c = lib; *c; c++)
      if (*c == '\t')
        *c = ' ';
    return mpx__fail(MPX_ELAUNCH,
                     "this process sees 1 MPI process, but its launcher "
                     "started %ld (%s=%s): the program is built with another "
                     "MPI than the launcher's (this program: %s). Start it "
                     "with its own MPI's launcher (mpiexec.mpich for MPICH, "
                     "mpirun.openmpi for Open MPI), or set MPX_SINGLETON=1 "
                     "if each process is meant to run alone",
                     n, vars[i].name, v, lib);
  }
  return 0;
}

/* Creates the executor (see mpx_executor_create); failures set a message
 * that mpx_executor_create() prefixes with its name. */
static int executor_create(MPI_Comm comm, const mpx_executor_options *opts,
                           mpx_executor **out) {
  if (!out)
    return mpx__fail(MPX_EINVAL, "NULL output");
  *out = NULL;
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (!inited || finalized)
    return mpx__fail(MPX_EINVAL, "MPI is not initialised (call mpx_init "
                                 "or MPI_Init_thread first)");
  if (comm == MPI_COMM_NULL)
    return mpx__fail(MPX_EINVAL, "MPI_COMM_NULL");
  mpx_executor_options o;
  if (opts)
    o = *opts;
  else
    mpx_executor_options_init(&o);
  /* Before any collective: the workers of a live pool are in its loop and
   * would never join one, so this is refused here and now. */
  if (live_count() > 0)
    return mpx__fail(MPX_EBUSY, "this process already holds a live executor "
                                "(its workers serve it until it is shut "
                                "down); shut it down with wait first");
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  int rc = size == 1 ? check_launcher() : 0;
  if (rc != 0)
    return rc;
  rc = agree_options(comm, size, &o);
  if (rc != 0)
    return rc;

  MPI_Comm pc;
  int mrc = MPI_Comm_dup(comm, &pc);
  if (mrc != MPI_SUCCESS)
    return mpx__mpi_fail(mrc, "MPI_Comm_dup");
  MPI_Comm_set_errhandler(pc, MPI_ERRORS_RETURN);
  mpx__pool_init pi = {-1, NULL, 0};
  void *initarg = NULL;
  if ((rc = check_registry(pc, o.root)) != 0 ||
      (rc = agree_initializer(pc, rank, o.root, &o, &pi, &initarg)) != 0) {
    MPI_Comm_free(&pc);
    return rc;
  }
  o.initializer = NULL; /* the caller's pointers are not kept */
  o.initarg = NULL;
  mpx__plan plan;
  rc = mpx__plan_make(pc, o.root, o.group, &plan);
  if ((rc = agree(pc, rc, "planning the sub-managers")) != 0) {
    mpx__plan_free(&plan);
    MPI_Comm_free(&pc);
    free(initarg);
    return rc;
  }

  if (rank != o.root) {
    mpx__registry_hold(1);
    if (plan.nmembers > 0)
      rc = mpx__leader_loop(pc, o.root, &plan, &o);
    else
      rc = mpx__worker_loop(pc, plan.up, &o, &pi);
    mpx__registry_hold(-1);
    mpx__plan_free(&plan);
    MPI_Comm_free(&pc);
    free(initarg);
    return rc;
  }
  if (plan.ngroups == 0) /* flat: every rank a worker of the root */
    mpx__plan_free(&plan);

  mpx_executor *ex = calloc(1, sizeof *ex);
  unsigned char *cancelled = calloc((size_t)size, 1);
  if (!ex || !cancelled || mpx__sync_create(&ex->sync) != 0 ||
      mpx__worktable_init(&ex->table) != 0 ||
      mpx__credits_init_children(&ex->credits, size, o.root, o.prefetch,
                                 plan.parent, o.root) != 0) {
    if (ex && ex->sync)
      mpx__sync_unref(ex->sync);
    if (ex) {
      mpx__worktable_destroy(&ex->table);
      mpx__credits_destroy(&ex->credits);
    }
    free(ex);
    free(cancelled);
    free(initarg);
    /* The workers are already serving: release them before failing. */
    mpx_executor tmp = {
        .comm = pc, .root = o.root, .size = size, .parent = plan.parent};
    mpx__manager_release_workers(&tmp);
    mpx__msgbuf_free(&tmp.mb);
    mpx__plan_free(&plan);
    MPI_Comm_free(&pc);
    return mpx__fail(MPX_ENOMEM, "out of memory for the executor");
  }
  ex->comm = pc;
  ex->root = o.root;
  ex->size = size;
  ex->local = size == 1;
  ex->ngroups = plan.ngroups;
  ex->parent = plan.parent; /* owned now (NULL when flat) */
  ex->fan = plan.fan;
  ex->nworkers = size > 1 ? size - 1 - plan.ngroups : 1;
  for (int w = 0; w < size; w++)
    ex->nchildren += w != o.root && (!ex->parent || ex->parent[w] == o.root);
  ex->opts = o;
  ex->init = pi;
  ex->initarg = initarg;
  ex->cancelled = cancelled;
  ex->task_s = -1;
  ex->spin_s = 1e-6 * (double)mpx__env_long("MPX_MANAGER_SPIN_US", 200);
  ex->sleep_max_us = mpx__env_long("MPX_IDLE_SLEEP_US", 1000);
  ex->span = MPX__PREFETCH_SPAN * 1e-6 * (double)ex->sleep_max_us;
  ex->next_id = 1;
  ex->wake_fd = -1;
  mpx__cond_init(&ex->mgr_cv);
  mpx__registry_hold(1);
  int provided = MPI_THREAD_SINGLE;
  MPI_Query_thread(&provided);
  /* A one-rank pool's manager makes no MPI call: it keeps its thread. */
  ex->caller =
      !ex->local &&
      (o.progress == MPX_PROGRESS_CALLER ||
       (o.progress == MPX_PROGRESS_AUTO && provided < MPI_THREAD_SERIALIZED));
  ex->mgr = pthread_self();
  if (ex->caller) {
    if (mpx__manager_caller_setup(ex, provided) != 0) {
      ex->caller = 0;
      ex->shutdown = 1;
      ex->mgr_done = 1;
      mpx__manager_release_workers(ex);
      mpx_executor_destroy(&ex);
      return mpx__fail(MPX_ESYS, "cannot set the pool up for caller progress");
    }
  } else if (pthread_create(&ex->mgr, NULL, mpx__manager_main, ex) != 0) {
    /* Mark everything done so that destroy can run its normal path. */
    ex->shutdown = 1;
    ex->mgr_done = 1;
    if (!ex->local)
      mpx__manager_release_workers(ex);
    ex->mgr = pthread_self();
    mpx_executor_destroy(&ex);
    return mpx__fail(MPX_ESYS, "cannot start the manager thread");
  }
  live_add(ex);
  *out = ex;
  return 0;
}

/* Creates an executor over comm, collectively; every failure's message
 * names the call. */
int mpx_executor_create(MPI_Comm comm, const mpx_executor_options *opts,
                        mpx_executor **out) {
  unsigned long seq = mpx__error_seq();
  return mpx__fail_call(executor_create(comm, opts, out), "mpx_executor_create",
                        seq);
}

/* Returns the number of workers of ex, 0 for NULL. */
int mpx_executor_workers(const mpx_executor *ex) {
  return ex ? ex->nworkers : 0;
}

int mpx_executor_groups(const mpx_executor *ex) {
  return ex ? ex->ngroups : 0;
}

/* ---- submit / shutdown / destroy ---------------------------------------- */

/* Blocks on the executor's condition variable once (lock held), counted
 * among its waiters so that completions wake it. */
static void sync_wait_locked(mpx__sync *s) {
  s->nwaiters++;
  pthread_cond_wait(&s->cv, &s->mu);
  s->nwaiters--;
}

/* Joins the manager thread once, unless the caller is that thread (a
 * creation that failed to start it marks itself as the manager). */
static void join_manager(mpx_executor *ex) {
  if (ex->caller) {
    mpx__manager_caller_run(ex); /* returns once the pool has ended */
    return;
  }
  if (!ex->joined && !pthread_equal(ex->mgr, pthread_self())) {
    pthread_join(ex->mgr, NULL);
    ex->joined = 1;
  }
}

/* Queues a new future for task_id, with arg already copied (owned: freed on
 * every failure). Returns 0 or MPX_EBROKEN, MPX_ESHUTDOWN, MPX_ENOMEM. */
static int submit_owned(mpx_executor *ex, uint32_t task_id, void *arg,
                        size_t len, int retries, double limit,
                        mpx_future **fut) {
  mpx__sync *s = ex->sync;
  mpx__sim_charge(MPX__SIM_SUBMIT, 1);
  pthread_mutex_lock(&s->mu);
  int rc = 0;
  if (ex->broken)
    rc = mpx__fail(MPX_EBROKEN, "cannot submit: %s", ex->broken_msg);
  else if (ex->shutdown)
    rc = mpx__fail(MPX_ESHUTDOWN, "cannot submit '%s' after shutdown",
                   mpx__registry_name(task_id & ~MPX__TASK_CHUNK));
  uint64_t id = ex->next_id++;
  pthread_mutex_unlock(&s->mu);
  if (rc) {
    free(arg);
    return rc;
  }
  mpx_future *f;
  if ((rc = mpx__future_create_owned(s, id, task_id, arg, len, &f)) != 0)
    return rc;
  f->retries = retries < 0 ? ex->opts.retries : retries;
  f->limit_ms = limit < 0 ? -1 : (int)(limit * 1000.0 + 0.5);
  pthread_mutex_lock(&s->mu);
  if (ex->broken || ex->shutdown) {
    rc = ex->broken ? MPX_EBROKEN : MPX_ESHUTDOWN;
    pthread_mutex_unlock(&s->mu);
    mpx__future_unref(f);
    mpx__future_unref(f);
    return mpx__fail(rc, "cannot submit: the executor %s meanwhile",
                     rc == MPX_EBROKEN ? "broke" : "was shut down");
  }
  if (ex->pend_tail)
    ex->pend_tail->next = f;
  else
    ex->pend_head = f;
  ex->pend_tail = f;
  ex->npending++;
  mpx__manager_kick_locked(ex);
  pthread_mutex_unlock(&s->mu);
  *fut = f;
  if (ex->caller)
    mpx__manager_submitted(ex);
  return 0;
}

int mpx__submit_owned(mpx_executor *ex, uint32_t task_id, void *arg, size_t len,
                      int retries, double limit, mpx_future **fut) {
  return submit_owned(ex, task_id, arg, len, retries, limit, fut);
}

int mpx__executor_call(mpx_executor *ex, void (*fn)(void)) {
  int provided = MPI_THREAD_SINGLE;
  MPI_Query_thread(&provided);
  if (provided == MPI_THREAD_MULTIPLE || ex->local || ex->caller) {
    fn();
    return 0;
  }
  if (mpx__future_no_block())
    return mpx__fail(MPX_EDEADLK, "waiting for the manager thread from a "
                                  "done-callback would deadlock");
  mpx__sync *s = ex->sync;
  pthread_mutex_lock(&s->mu);
  if (ex->mgr_done) {
    /* No manager, so no MPI call from it any more: run it here. */
    pthread_mutex_unlock(&s->mu);
    fn();
    return 0;
  }
  ex->call = fn;
  atomic_store(&ex->call_pending, 1);
  mpx__manager_kick_locked(ex);
  while (ex->call && !ex->mgr_done)
    sync_wait_locked(s);
  int ran = ex->call == NULL;
  ex->call = NULL;
  atomic_store(&ex->call_pending, 0);
  pthread_mutex_unlock(&s->mu);
  if (!ran)
    fn(); /* the manager ended first, making no more MPI calls */
  return 0;
}

int mpx__executor_prefetch(const mpx_executor *ex) {
  return ex->opts.prefetch;
}

/* Submits a call of the task name with a copy of the arguments. */
int mpx_submit(mpx_executor *ex, const char *name, const void *arg, size_t len,
               mpx_future **fut) {
  if (fut)
    *fut = NULL;
  if (!ex || !name || !fut || (len && !arg))
    return mpx__fail(MPX_EINVAL, "mpx_submit: NULL executor, name or output, "
                                 "or NULL arguments with a length");
  int tid = mpx__registry_lookup(name);
  if (tid < 0)
    return mpx__fail(MPX_ENOTASK,
                     "mpx_submit: no task named '%s' is "
                     "registered",
                     name);
  /* The copy happens outside the lock: arguments may be large. */
  void *copy = mpx__alloc(len);
  if (!copy)
    return mpx__fail(MPX_ENOMEM,
                     "mpx_submit: out of memory copying %zu "
                     "bytes of arguments",
                     len);
  if (len)
    memcpy(copy, arg, len);
  unsigned long seq = mpx__error_seq();
  return mpx__fail_call(submit_owned(ex, (uint32_t)tid, copy, len, -1, -1, fut),
                        "mpx_submit", seq);
}

/* Stops accepting work, optionally cancelling and waiting. */
int mpx_executor_shutdown(mpx_executor *ex, int wait, int cancel_futures) {
  if (!ex)
    return mpx__fail(MPX_EINVAL, "mpx_executor_shutdown: NULL executor");
  if (wait && mpx__future_no_block())
    return mpx__fail(MPX_EDEADLK, "mpx_executor_shutdown: waiting from a "
                                  "done-callback would deadlock");
  mpx__cbq q = {0};
  mpx__sync *s = ex->sync;
  pthread_mutex_lock(&s->mu);
  ex->shutdown = 1;
  if (cancel_futures) {
    /* Cancelled futures stay on the FIFO; the manager drops them, and asks
     * the workers to give back the calls they hold but have not started. */
    for (mpx_future *f = ex->pend_head; f; f = f->next)
      mpx__future_cancel_locked(f, &q);
    atomic_store(&ex->cancel_req, 1);
  }
  mpx__manager_kick_locked(ex);
  pthread_mutex_unlock(&s->mu);
  mpx__cbq_free(&q);
  if (wait && ex->caller) {
    mpx__manager_caller_run(ex);
  } else if (wait) {
    pthread_mutex_lock(&s->mu);
    while (!ex->mgr_done)
      sync_wait_locked(s);
    pthread_mutex_unlock(&s->mu);
  }
  return 0;
}

void mpx__executor_idle_add(mpx_executor *ex, double seconds) {
  mpx__sync_idle_add(ex->sync, seconds);
}

double mpx_executor_idle_seconds(const mpx_executor *ex) {
  if (!ex)
    return -1;
  return 1e-9 * (double)atomic_load(&ex->sync->idle_ns);
}

int mpx_executor_calls_sent(const mpx_executor *ex, uint64_t *calls,
                            uint64_t *tasks) {
  if (!ex)
    return mpx__fail(MPX_EINVAL, "mpx_executor_calls_sent: NULL executor");
  if (calls)
    *calls = atomic_load(&ex->sync->calls_sent);
  if (tasks)
    *tasks = atomic_load(&ex->sync->call_tasks);
  return 0;
}

long mpx__executor_turn(mpx_executor *ex) {
  return ex->caller ? mpx__manager_caller_turn(ex) : -1;
}

/* Moves a pool progressed by its callers: results in (their
 * done-callbacks run), queued work out. */
int mpx_executor_progress(mpx_executor *ex) {
  if (!ex)
    return mpx__fail(MPX_EINVAL, "mpx_executor_progress: NULL executor");
  if (!ex->caller)
    return 0; /* a manager thread moves it */
  if (mpx__future_no_block())
    return mpx__fail(MPX_EDEADLK, "mpx_executor_progress: called from a "
                                  "done-callback");
  int moved = 0;
  unsigned long seq = mpx__error_seq();
  return mpx__fail_call(mpx__manager_turn(ex, &moved), "mpx_executor_progress",
                        seq);
}

int mpx_executor_progress_mode(const mpx_executor *ex) {
  return !ex ? -1 : ex->caller ? MPX_PROGRESS_CALLER : MPX_PROGRESS_THREAD;
}

/* Shuts the pool down at once, killing running tasks with isolation. */
int mpx_executor_terminate(mpx_executor *ex) {
  if (!ex)
    return mpx__fail(MPX_EINVAL, "mpx_executor_terminate: NULL executor");
  if (mpx__future_no_block())
    return mpx__fail(MPX_EDEADLK, "mpx_executor_terminate: waiting from a "
                                  "done-callback would deadlock");
  atomic_store(&ex->terminate_req, 1);
  return mpx_executor_shutdown(ex, 1, 1);
}

/* Destroys a shut-down executor and clears *exp. */
int mpx_executor_destroy(mpx_executor **exp) {
  if (!exp || !*exp)
    return 0;
  mpx_executor *ex = *exp;
  pthread_mutex_lock(&ex->sync->mu);
  int shut = ex->shutdown;
  pthread_mutex_unlock(&ex->sync->mu);
  if (!shut)
    return mpx__fail(MPX_EBUSY, "mpx_executor_destroy: the executor is live; "
                                "call mpx_executor_shutdown first");
  if (mpx__future_no_block())
    return mpx__fail(MPX_EDEADLK, "mpx_executor_destroy: called from a "
                                  "done-callback");
  live_remove(ex);
  join_manager(ex);
  /* Futures still pending here were cancelled; drop the FIFO's refs. */
  for (mpx_future *f = ex->pend_head, *n; f; f = n) {
    n = f->next;
    mpx__future_unref(f);
  }
  mpx__send_progress(&ex->sends, 1);
  mpx__msgbuf_free(&ex->mb);
  mpx__worktable_destroy(&ex->table);
  pthread_cond_destroy(&ex->mgr_cv);
  if (ex->caller) {
    mpx__sync_set_progress(ex->sync, NULL, NULL);
    pthread_mutex_destroy(&ex->step_mu);
  }
  if (ex->comm != MPI_COMM_NULL) /* mpx_finalize() may have freed it */
    MPI_Comm_free(&ex->comm);
  mpx__credits_destroy(&ex->credits);
  free(ex->parent);
  free(ex->fan);
  free(ex->cancelled);
  free(ex->initarg);
  mpx__registry_hold(-1);
  mpx__sync_unref(ex->sync);
  free(ex);
  *exp = NULL;
  return 0;
}

/* ---- MPI start-up helpers -------------------------------------------------
 */

static int we_initialised;

/* Initialises MPI with MPI_THREAD_MULTIPLE unless it already is. */
int mpx_init(int *argc, char ***argv) {
  int inited = 0, provided = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS)
      return mpx__fail(MPX_EMPI, "mpx_init: MPI_Init_thread failed (%d)", rc);
    we_initialised = 1;
  }
  /* Any level will do: below MPI_THREAD_FUNNELED (SimGrid's SMPI gives
   * MPI_THREAD_SINGLE) only a pool moved by its callers runs, and
   * mpx_executor_create() says so. */
  return 0;
}

/* As Python joins its executors at exit: a pool never shut down is shut
 * down here (waiting, nothing cancelled), since its workers wait in their
 * loop and MPI_Finalize (or a collective) would wait for them forever. Its
 * handle stays valid for mpx_executor_destroy(); only its communicator
 * goes, while MPI is still there to free it. */
static void end_live_pools(void) {
  int finalized = 0;
  MPI_Finalized(&finalized);
  pthread_mutex_lock(&live_mu);
  for (mpx_executor *ex = live_head; ex && !finalized; ex = ex->live_next) {
    mpx_executor_shutdown(ex, 1, 0);
    join_manager(ex);
    if (ex->comm != MPI_COMM_NULL)
      MPI_Comm_free(&ex->comm);
  }
  pthread_mutex_unlock(&live_mu);
}

/* Finalises MPI if mpx_init initialised it (the live pools ended). */
static int finalize_mpi(void) {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (we_initialised && !finalized && MPI_Finalize() != MPI_SUCCESS)
    return mpx__fail(MPX_EMPI, "mpx_finalize: MPI_Finalize failed");
  return 0;
}

int mpx_finalize(void) {
  end_live_pools();
  return finalize_mpi();
}

int mpx_finalize_status(int status) {
  int init = 0, finalized = 0, agreed = status;
  end_live_pools(); /* their workers are not here to agree yet */
  MPI_Initialized(&init);
  MPI_Finalized(&finalized);
  if (init && !finalized &&
      MPI_Allreduce(&status, &agreed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) !=
          MPI_SUCCESS)
    agreed = status;
  if (finalize_mpi() != 0 && agreed == 0)
    agreed = 1;
  return agreed;
}
