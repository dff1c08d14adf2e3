/* SPDX-License-Identifier: MIT */
/* The helper's methods: one table (helper-methods.c) says for each method of io.lium.Cvm1.Host
 * and io.lium.Cvm1.Manager what it needs, one dispatcher (helper-dispatch.c) does it. A call
 * goes
 *
 *   authorize (polkit, off the main loop) → flags → validate (main) → check (worker) →
 *   locks → begin (main) → work (main at once, a worker thread, or a Job) → finish (main) →
 *   reply, with the one audit record (helper_return_ok/_error, or the Job's)
 *
 * and no method writes its own reply. */
#pragma once
#include "helper-daemon.h"
#include "helper-job.h"

typedef enum {
  HELPER_ANSWER_AT_ONCE, /* work runs in the main thread: cheap, never blocks */
  HELPER_ANSWER_THREAD,  /* work runs in a worker thread; the reply is its result */
  HELPER_ANSWER_JOB,     /* the reply is a Job; work runs in the Job's thread */
} HelperAnswer;

typedef struct _HelperMethod HelperMethod;

/* One call in flight. data is what validate kept for the later steps (freed with destroy). */
typedef struct {
  HelperDaemon *daemon;
  GDBusMethodInvocation *inv;
  const HelperMethod *method;
  GVariant *args; /* the call's parameters */
  guint64 flags;  /* its flags argument; 0 when it has none */
  gpointer data;
  GDestroyNotify destroy;
  GStrv locks; /* held from before begin until after finish */
} HelperCall;

/* Main thread, before anything is taken: validates the arguments and keeps in call->data what
 * the work needs. FALSE with error set refuses the call. */
typedef gboolean (*HelperValidateFunc)(HelperCall *call, GError **error);
/* A worker thread, before the locks are taken (checks that scan the host). */
typedef gboolean (*HelperCheckFunc)(HelperCall *call, GError **error);
/* The lock keys the call takes, from its arguments or its data (NULL-terminated). */
typedef GStrv (*HelperLocksFunc)(HelperCall *call);
/* Main thread, once the locks are held. */
typedef gboolean (*HelperBeginFunc)(HelperCall *call, GError **error);
/* The reply (a tuple matching the out signature), or NULL with error set; data is the call's
 * (NULL where the row has no validate). */
typedef GVariant *(*HelperWorkFunc)(HelperDaemon *d, gpointer data, GError **error);
/* Main thread, after the work (ok or not), once the locks are released. */
typedef void (*HelperFinishFunc)(HelperCall *call, gboolean ok);

struct _HelperMethod {
  const char *interface;
  const char *method;
  const char *action;    /* polkit action; NULL: allowed to all ("none") */
  int flags_arg;         /* index of the flags argument (type t); -1: none */
  guint64 flags;         /* the flags it takes; others are refused */
  const char *operation; /* the locks' holder and the Job's Operation */
  HelperValidateFunc validate;
  HelperCheckFunc check;
  HelperLocksFunc locks;
  HelperBeginFunc begin;
  HelperAnswer answer;
  HelperWorkFunc work; /* AT_ONCE and THREAD */
  HelperJobFunc job;   /* JOB (data: the call's) */
  HelperFinishFunc finish;
};

/* The table, terminated by an entry with interface == NULL (helper-methods.c). */
const HelperMethod *helper_methods(void);
/* NULL when the method is not in the table (refused). */
const HelperMethod *helper_method_lookup(const char *interface, const char *method);

/* Registers io.lium.Cvm1.Host and io.lium.Cvm1.Manager on LCVM_OBJECT_PATH, every call through
 * the dispatcher. */
gboolean helper_dispatch_export(HelperDaemon *d, GError **error);

/* The flags check every method gets (also for tests). */
gboolean helper_flags_check(guint64 flags, guint64 allowed, GError **error);
