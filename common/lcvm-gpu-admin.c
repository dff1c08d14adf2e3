/* SPDX-License-Identifier: MIT */
/* gpu-admin-tools argv and output. The output forms are those of the tool's source
 * (reference/gpu-and-host.md §A.2–A.4): on stdout the banner, the command line, "Topo:" and its
 * indented tree; on stderr the logging format '%(asctime)s.%(msecs)03d %(levelname)-8s
 * %(message)s' and Python tracebacks (also bare `traceback.print_tb` frames). */
#include "lcvm-gpu-admin.h"
#include "lcvm-error.h"
#include "lcvm-trust.h"
#include "lcvm-validate.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TREE_ENTRIES_MAX 20000
#define TREE_DEPTH_MAX   16

static const char *const cc_settable[] = { "on", "off", "devtools", NULL };
static const char *const ppcie_settable[] = { "on", "off", NULL };
static const char *const cc_reported[] = { "on", "off", "devtools",
                                           "invalid-devtools-only-fix-by-setting-cc-mode", NULL };

gboolean
lcvm_gpu_mode_settable(LcvmGpuKnob knob, const char *mode)
{
  const char *const *set = knob == LCVM_GPU_KNOB_CC ? cc_settable : ppcie_settable;
  return mode != NULL && g_strv_contains(set, mode);
}

const char *
lcvm_gpu_knob_name(LcvmGpuKnob knob)
{
  return knob == LCVM_GPU_KNOB_CC ? "CC" : "PPCIe";
}

/* ---- trust ---- */

static void
set_untrusted(GError **error, const char *configured, const char *why)
{
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "refusing to run gpu-admin-tools as root: %s. Whoever can change it would get "
              "root. Install it where only root can write, e.g. as root: git clone "
              "https://github.com/NVIDIA/gpu-admin-tools /opt/gpu-admin-tools && chown -R "
              "root:root /opt/gpu-admin-tools && chmod -R go-w /opt/gpu-admin-tools, and set "
              "[tools] gpu_admin_tools=/opt/gpu-admin-tools/nvidia_gpu_tools.py (now %s)",
              why, configured);
}

/* Every entry under dirfd (recursively, never following a symlink) is root-owned and not
 * group/other-writable; a symlink itself is fine only when root owns it (its target is not
 * followed, and python would follow it: so refuse symlinks outright). */
static gboolean
tree_trusted(int fd, const char *path, guint depth, guint *entries, char **why)
{
  if (depth > TREE_DEPTH_MAX) {
    *why = g_strdup_printf("%s is nested deeper than %d directories", path, TREE_DEPTH_MAX);
    return FALSE;
  }
  DIR *dir = fdopendir(fd);
  if (dir == NULL) {
    close(fd);
    *why = g_strdup_printf("%s cannot be read: %s", path, g_strerror(errno));
    return FALSE;
  }
  gboolean ok = TRUE;
  for (struct dirent *e = readdir(dir); ok && e != NULL; e = readdir(dir)) {
    if (g_str_equal(e->d_name, ".") || g_str_equal(e->d_name, ".."))
      continue;
    g_autofree char *child = g_build_filename(path, e->d_name, NULL);
    struct stat st;
    if (++*entries > TREE_ENTRIES_MAX) {
      *why = g_strdup_printf("%s holds more than %d files", path, TREE_ENTRIES_MAX);
      ok = FALSE;
    } else if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      *why = g_strdup_printf("%s: %s", child, g_strerror(errno));
      ok = FALSE;
    } else if (st.st_uid != 0) {
      *why = g_strdup_printf("%s is owned by uid %u, not root", child, (guint)st.st_uid);
      ok = FALSE;
    } else if (S_ISLNK(st.st_mode)) {
      *why = g_strdup_printf("%s is a symlink", child);
      ok = FALSE;
    } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
      *why = g_strdup_printf("%s is writable by others than root (mode %04o)", child,
                             (guint)(st.st_mode & 07777));
      ok = FALSE;
    } else if (S_ISDIR(st.st_mode)) {
      int sub = openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        *why = g_strdup_printf("%s: %s", child, g_strerror(errno));
        ok = FALSE;
      } else {
        ok = tree_trusted(sub, child, depth + 1, entries, why);
      }
    }
  }
  closedir(dir);
  return ok;
}

char *
lcvm_gpu_admin_resolve(const char *configured, GError **error)
{
  if (configured == NULL || configured[0] == '\0') {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND,
                "no gpu-admin-tools configured ([tools] gpu_admin_tools is empty): install "
                "NVIDIA gpu-admin-tools as root in /opt/gpu-admin-tools and set "
                "gpu_admin_tools=/opt/gpu-admin-tools/nvidia_gpu_tools.py");
    return NULL;
  }
  g_autoptr(GError) local = NULL;
  g_autofree char *real = lcvm_trusted_path(configured, &local);
  if (real == NULL && g_error_matches(local, LCVM_ERROR, LCVM_ERROR_NOT_FOUND)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND,
                "gpu-admin-tools is not installed: %s. Install it as root: git clone "
                "https://github.com/NVIDIA/gpu-admin-tools /opt/gpu-admin-tools (or set [tools] "
                "gpu_admin_tools to where it is)",
                local->message);
    return NULL;
  }
  if (real == NULL) {
    set_untrusted(error, configured, local->message);
    return NULL;
  }
  g_autofree char *dirname = g_path_get_dirname(real);
  int fd = open(dirname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  g_autofree char *why = NULL;
  guint entries = 0;
  if (fd < 0)
    why = g_strdup_printf("%s: %s", dirname, g_strerror(errno));
  else if (tree_trusted(fd, dirname, 0, &entries, &why))
    return g_steal_pointer(&real);
  set_untrusted(error, configured, why);
  return NULL;
}

/* ---- argv ---- */

static GStrvBuilder *
argv_start(const char *tool, const char *slot, GError **error)
{
  if (!lcvm_slot_is_canonical(slot)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "'%s' is not a canonical PCI slot (DDDD:BB:DD.F)", slot);
    return NULL;
  }
  if (tool == NULL || tool[0] != '/') {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "gpu-admin-tools must be an absolute path");
    return NULL;
  }
  GStrvBuilder *b = g_strv_builder_new();
  const char *const head[] = { LCVM_GPU_ADMIN_PYTHON, "-E", "-s", "-B", tool, NULL };
  g_strv_builder_addv(b, (const char **)head);
  g_autofree char *bdf = g_strdup_printf("--gpu-bdf=%s", slot);
  g_strv_builder_add(b, bdf);
  return b;
}

GStrv
lcvm_gpu_admin_query_argv(const char *tool, const char *slot, LcvmGpuAdminQuery queries,
                          GError **error)
{
  if ((queries & (LCVM_GPU_ADMIN_QUERY_CC | LCVM_GPU_ADMIN_QUERY_PPCIE)) == 0) {
    g_set_error_literal(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                        "a query asks for the CC mode, the PPCIe mode or both");
    return NULL;
  }
  g_autoptr(GStrvBuilder) b = argv_start(tool, slot, error);
  if (b == NULL)
    return NULL;
  if (queries & LCVM_GPU_ADMIN_QUERY_CC)
    g_strv_builder_add(b, "--query-cc-mode");
  if (queries & LCVM_GPU_ADMIN_QUERY_PPCIE)
    g_strv_builder_add(b, "--query-ppcie-mode");
  return g_strv_builder_end(b);
}

GStrv
lcvm_gpu_admin_set_argv(const char *tool, const char *slot, LcvmGpuKnob knob, const char *mode,
                        GError **error)
{
  if (!lcvm_gpu_mode_settable(knob, mode)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "'%s' is not a %s mode (one of: %s)", mode ? mode : "", lcvm_gpu_knob_name(knob),
                knob == LCVM_GPU_KNOB_CC ? "on, off, devtools" : "on, off");
    return NULL;
  }
  g_autoptr(GStrvBuilder) b = argv_start(tool, slot, error);
  if (b == NULL)
    return NULL;
  const char *name = knob == LCVM_GPU_KNOB_CC ? "cc" : "ppcie";
  g_autofree char *set = g_strdup_printf("--set-%s-mode=%s", name, mode);
  g_autofree char *reset = g_strdup_printf("--reset-after-%s-mode-switch", name);
  g_strv_builder_add(b, set);
  g_strv_builder_add(b, reset);
  return g_strv_builder_end(b);
}

/* ---- output ---- */

typedef struct {
  const char *slot;
  LcvmGpuAdminOutput *o;
  gboolean in_traceback; /* after a "Traceback" header or a frame: an exception line may follow */
  GRegex *log_line;
  GRegex *mode_is;
  GRegex *mode_set;
  GRegex *was_reset;
} Parser;

void
lcvm_gpu_admin_output_free(LcvmGpuAdminOutput *o)
{
  if (o == NULL)
    return;
  g_free(o->selected);
  g_free(o->cc);
  g_free(o->ppcie);
  g_free(o->set[0]);
  g_free(o->set[1]);
  g_ptr_array_unref(o->problems);
  g_free(o->last_stderr);
  g_free(o);
}

static void
set_unreadable(GError **error, const char *stream, guint lineno, const char *line, const char *why)
{
  g_autofree char *shown = g_strescape(line, NULL);
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "gpu-admin-tools printed a line lium-cvm cannot read (%s line %u: \"%s\")%s%s; no "
              "mode is assumed: check that [tools] gpu_admin_tools is NVIDIA's tool (v2025 "
              "releases are known)",
              stream, lineno, shown, why ? ": " : "", why ? why : "");
}

/* "GPU 0000:19:00.0 H200 …" / "NvSwitch 0000:05:00.0 …": the slot the device string names. */
static gboolean
names_slot(const char *device, const char *slot)
{
  const char *space = strchr(device, ' ');
  if (space == NULL)
    return FALSE;
  gsize len = strlen(slot);
  return strncmp(space + 1, slot, len) == 0 && (space[1 + len] == ' ' || space[1 + len] == '\0');
}

static LcvmGpuKnob
knob_of(const char *word)
{
  return g_str_equal(word, "CC") ? LCVM_GPU_KNOB_CC : LCVM_GPU_KNOB_PPCIE;
}

static gboolean
take_mode(Parser *p, const char *device, const char *knob_word, const char *value, GError **error)
{
  LcvmGpuKnob knob = knob_of(knob_word);
  const char *const *known = knob == LCVM_GPU_KNOB_CC ? cc_reported : ppcie_settable;
  if (!g_strv_contains(known, value))
    return FALSE;
  if (!names_slot(device, p->slot)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "gpu-admin-tools reported the %s mode of \"%s\", not of %s: refusing its answer",
                knob_word, device, p->slot);
    return FALSE;
  }
  char **field = knob == LCVM_GPU_KNOB_CC ? &p->o->cc : &p->o->ppcie;
  g_free(*field);
  *field = g_strdup(value);
  return TRUE;
}

/* Facts in one log message. FALSE with error set: a fact about the wrong device or with an
 * unknown value. */
static gboolean
read_message(Parser *p, const char *level, const char *msg, gboolean *unknown_value, GError **error)
{
  g_autoptr(GMatchInfo) m = NULL;
  if (strstr(msg, "[broken, cfg space working ") != NULL)
    p->o->broken = TRUE;
  if (g_str_equal(level, "ERROR") || g_str_equal(level, "CRITICAL"))
    g_ptr_array_add(p->o->problems, g_strdup(msg));
  if (g_str_has_prefix(msg, "Selected ")) {
    g_free(p->o->selected);
    p->o->selected = g_strdup(msg + strlen("Selected "));
    return TRUE;
  }
  if (g_str_has_suffix(msg, " does not support PPCIe on current FW. A FW update is required.")) {
    p->o->ppcie_fw_too_old = TRUE;
    return TRUE;
  }
  if (g_regex_match(p->mode_is, msg, 0, &m)) {
    g_autofree char *device = g_match_info_fetch(m, 1);
    g_autofree char *knob = g_match_info_fetch(m, 2);
    g_autofree char *value = g_match_info_fetch(m, 3);
    if (take_mode(p, device, knob, value, error))
      return TRUE;
    *unknown_value = error == NULL || *error == NULL;
    return FALSE;
  }
  g_clear_pointer(&m, g_match_info_unref);
  if (g_regex_match(p->mode_set, msg, 0, &m)) {
    g_autofree char *knob = g_match_info_fetch(m, 2);
    LcvmGpuKnob k = knob_of(knob);
    g_free(p->o->set[k]);
    p->o->set[k] = g_match_info_fetch(m, 3);
    return TRUE;
  }
  g_clear_pointer(&m, g_match_info_unref);
  if (g_regex_match(p->was_reset, msg, 0, &m)) {
    g_autofree char *knob = g_match_info_fetch(m, 2);
    p->o->reset[knob_of(knob)] = TRUE;
  }
  return TRUE;
}

static gboolean
stdout_line(const char *line)
{
  return line[0] == '\0' || line[0] == ' ' || g_str_has_prefix(line, "NVIDIA GPU Tools version ") ||
         (g_str_has_prefix(line, "Command line arguments: [") && g_str_has_suffix(line, "]")) ||
         g_str_equal(line, "Topo:") || g_str_equal(line, "GPUs:") || g_str_equal(line, "Other:");
}

/* An exception line: "Name" or "Name: message", Name a dotted Python identifier. */
static gboolean
exception_line(const char *line)
{
  const char *p = line;
  if (!g_ascii_isalpha(*p) && *p != '_')
    return FALSE;
  while (g_ascii_isalnum(*p) || *p == '_' || *p == '.')
    p++;
  return *p == '\0' || (p[0] == ':' && (p[1] == ' ' || p[1] == '\0'));
}

static gboolean
stderr_line(Parser *p, const char *line, gboolean *unknown_value, GError **error)
{
  g_autoptr(GMatchInfo) m = NULL;
  if (g_regex_match(p->log_line, line, 0, &m)) {
    g_autofree char *level = g_match_info_fetch(m, 1);
    g_autofree char *msg = g_match_info_fetch(m, 2);
    p->in_traceback = FALSE;
    return read_message(p, level, msg, unknown_value, error);
  }
  if (line[0] == '\0')
    return TRUE;
  if (g_str_equal(line, "Traceback (most recent call last):") ||
      g_str_has_prefix(line, "  File \"") ||
      g_str_equal(line, "During handling of the above exception, another exception occurred:") ||
      g_str_equal(line, "The above exception was the direct cause of the following exception:")) {
    p->in_traceback = TRUE;
    return TRUE;
  }
  if (p->in_traceback && g_str_has_prefix(line, "    "))
    return TRUE;
  if (p->in_traceback && exception_line(line)) {
    p->in_traceback = FALSE;
    if (strstr(line, "[broken, cfg space working ") != NULL ||
        strstr(line, "'BrokenGpu' object") != NULL)
      p->o->broken = TRUE;
    g_ptr_array_add(p->o->problems, g_strdup(line));
    return TRUE;
  }
  return FALSE;
}

static gboolean
parse_stream(Parser *p, const char *text, gboolean is_stderr, GError **error)
{
  g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    const char *line = lines[i];
    gboolean unknown_value = FALSE;
    gboolean ok = is_stderr ? stderr_line(p, line, &unknown_value, error) : stdout_line(line);
    if (error != NULL && *error != NULL)
      return FALSE;
    if (!ok) {
      set_unreadable(error, is_stderr ? "stderr" : "stdout", i + 1, line,
                     unknown_value ? "a mode lium-cvm does not know" : NULL);
      return FALSE;
    }
    if (is_stderr && line[0] != '\0') {
      g_free(p->o->last_stderr);
      p->o->last_stderr = g_strdup(line);
    }
  }
  return TRUE;
}

LcvmGpuAdminOutput *
lcvm_gpu_admin_parse(const char *slot, const char *out, const char *err, GError **error)
{
  const char *dev = "((?:GPU|NvSwitch) \\S+(?: .*?)?)";
  g_autofree char *mode_is = g_strdup_printf("^%s (CC|PPCIe) mode is (\\S+)$", dev);
  g_autofree char *mode_set = g_strdup_printf(
      "^%s (CC|PPCIe) mode set to (\\S+)\\. It will be active after .*reset\\.$", dev);
  g_autofree char *was_reset =
      g_strdup_printf("^%s was reset to apply the new (CC|PPCIe) mode\\.$", dev);
  Parser p = {
    .slot = slot,
    .log_line = g_regex_new("^\\d{4}-\\d\\d-\\d\\d,\\d\\d:\\d\\d:\\d\\d\\.\\d{3} "
                            "(DEBUG|INFO|WARNING|ERROR|CRITICAL) +(.*)$",
                            G_REGEX_OPTIMIZE, 0, NULL),
    .mode_is = g_regex_new(mode_is, G_REGEX_OPTIMIZE, 0, NULL),
    .mode_set = g_regex_new(mode_set, G_REGEX_OPTIMIZE, 0, NULL),
    .was_reset = g_regex_new(was_reset, G_REGEX_OPTIMIZE, 0, NULL),
  };
  g_autoptr(LcvmGpuAdminOutput) o = g_new0(LcvmGpuAdminOutput, 1);
  o->problems = g_ptr_array_new_with_free_func(g_free);
  p.o = o;
  /* GRegex (PCRE2's JIT) reads past the end of text that is not UTF-8 (found by fuzzing: the
   * tool's stderr with 0xfe bytes crashed the parser), and what is quoted reaches the bus. */
  g_autofree char *valid_out = g_utf8_make_valid(out, -1);
  g_autofree char *valid_err = g_utf8_make_valid(err, -1);
  gboolean ok =
      parse_stream(&p, valid_out, FALSE, error) && parse_stream(&p, valid_err, TRUE, error);
  g_regex_unref(p.log_line);
  g_regex_unref(p.mode_is);
  g_regex_unref(p.mode_set);
  g_regex_unref(p.was_reset);
  if (ok && o->selected != NULL && !o->broken && !names_slot(o->selected, slot)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "gpu-admin-tools selected \"%s\" when asked for %s: refusing its answer",
                o->selected, slot);
    ok = FALSE;
  }
  return ok ? g_steal_pointer(&o) : NULL;
}

char *
lcvm_gpu_admin_quote(const LcvmGpuAdminOutput *o)
{
  if (o->problems->len > 0) {
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    for (guint i = 0; i < o->problems->len; i++)
      g_strv_builder_add(b, o->problems->pdata[i]);
    g_auto(GStrv) v = g_strv_builder_end(b);
    g_autofree char *joined = g_strjoinv("\" / \"", v);
    return g_strdup_printf("\"%s\"", joined);
  }
  if (o->last_stderr != NULL)
    return g_strdup_printf("\"%s\"", o->last_stderr);
  return g_strdup("no output");
}
