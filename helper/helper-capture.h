/* SPDX-License-Identifier: MIT */
/* A started child's output and end, as both runners collect them (the confined capture in
 * helper-spawn.h, the trusted tools in helper-tool.h): stdout and stderr read until EOF and
 * the child reaped, all within one deadline. At the deadline the child's whole process group
 * is killed — both runners start it as a session leader, so whatever it forked goes too — and
 * the child is reaped. Output is bounded: past max_output bytes a stream keeps only its last
 * max_output bytes and says it was cut. Never a shell, never a pid signalled after the reap
 * (the group is killed while the unreaped leader still holds its id). */
#pragma once
#include <glib.h>
#include <sys/types.h>

/* One line of stdout as it arrives, without its newline; bytes as the child wrote them (not
 * necessarily UTF-8), a line longer than max_output comes in pieces. */
typedef void (*HelperLineFunc)(const char *line, gpointer data);

typedef struct {
  guint timeout_ms;       /* from the start of the collection until the child must have ended */
  gsize max_output;       /* bytes kept per stream (at least 1) */
  HelperLineFunc on_line; /* NULL: none */
  gpointer line_data;
} HelperCaptureOptions;

typedef struct {
  gboolean timed_out; /* it overran the deadline and was killed with its process group */
  gboolean exited;    /* it called exit: status holds the code; else signal ended it */
  int status;
  int signal;
  GString *out; /* the last max_output bytes of stdout (never NULL after a capture) */
  GString *err; /* the same of stderr (empty when it went elsewhere) */
  gboolean out_cut;
  gboolean err_cut;
} HelperCaptured;

void helper_captured_clear(HelperCaptured *c);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HelperCaptured, helper_captured_clear)

/* "exit status N", "signal N" or "killed after N s": how it ended, for messages. */
char *helper_captured_how(const HelperCaptured *c, const HelperCaptureOptions *o);

/* The child's stdout and stderr pipes: [0] the helper's read end, [1] the write end the child
 * gets; -1 where there is none. Close-on-exec: the runner names them for the child. */
typedef struct {
  int out[2];
  int err[2];
} HelperCapturePipes;

void helper_capture_pipes_close(HelperCapturePipes *p);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HelperCapturePipes, helper_capture_pipes_close)

/* Opens the stdout pipe, and the stderr pipe too with separate_err. */
gboolean helper_capture_pipes_open(HelperCapturePipes *p, gboolean separate_err, GError **error);

/* Collects the child pid (a session leader, pidfd its pidfd, both still unreaped, started
 * with pipes' write ends) and reaps it. Closes pipes; pidfd stays open. */
void helper_capture(pid_t pid, int pidfd, HelperCapturePipes *pipes, const HelperCaptureOptions *o,
                    HelperCaptured *result);
