/* SPDX-License-Identifier: MIT */
/* A released uid's leftovers (see the header). SysV objects are found in /proc/sysvipc; POSIX
 * message queues are listed in a private mount of the mqueue filesystem made by a short-lived
 * child (so it works whether or not the host mounts /dev/mqueue); files are removed with
 * lcvm_remove_tree_at below a directory fd. Only ever removes what uid owns. */
#include "helper-uid-purge.h"
#include "lcvm-fd.h"
#include "lcvm-safe-io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MQUEUE_MOUNT "/tmp"
#define DIRENT_BUF   4096

typedef enum { IPC_SHM, IPC_MSG, IPC_SEM } IpcKind;

static int
remove_ipc(IpcKind kind, int id)
{
  switch (kind) {
  case IPC_SHM:
    return shmctl(id, IPC_RMID, NULL);
  case IPC_MSG:
    return msgctl(id, IPC_RMID, NULL);
  case IPC_SEM:
    return semctl(id, 0, IPC_RMID);
  }
  return -1;
}

/* /proc/sysvipc/{shm,msg,sem}: a header naming the columns, one object per line. */
static guint
purge_sysv(IpcKind kind, const char *table, const char *id_column, uid_t uid)
{
  g_autofree char *path = g_strconcat("/proc/sysvipc/", table, NULL);
  g_autofree char *text = NULL;
  if (!g_file_get_contents(path, &text, NULL, NULL))
    return 0;
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  g_auto(GStrv) header = g_strsplit_set(lines[0], " \t", -1);
  int col_id = -1, col_uid = -1, col_cuid = -1, n = 0;
  for (guint i = 0; header[i] != NULL; i++) {
    if (header[i][0] == '\0')
      continue;
    col_id = g_str_equal(header[i], id_column) ? n : col_id;
    col_uid = g_str_equal(header[i], "uid") ? n : col_uid;
    col_cuid = g_str_equal(header[i], "cuid") ? n : col_cuid;
    n++;
  }
  guint removed = 0;
  for (guint i = 1; col_id >= 0 && col_uid >= 0 && col_cuid >= 0 && lines[i] != NULL; i++) {
    g_auto(GStrv) f = g_strsplit_set(g_strstrip(lines[i]), " \t", -1);
    g_autoptr(GPtrArray) fields = g_ptr_array_new();
    for (guint j = 0; f[j] != NULL; j++)
      if (f[j][0] != '\0')
        g_ptr_array_add(fields, f[j]);
    if ((int)fields->len <= MAX(col_id, MAX(col_uid, col_cuid)))
      continue;
    guint64 owner = g_ascii_strtoull(fields->pdata[col_uid], NULL, 10);
    guint64 creator = g_ascii_strtoull(fields->pdata[col_cuid], NULL, 10);
    if (owner != uid && creator != uid)
      continue;
    int id = (int)g_ascii_strtoll(fields->pdata[col_id], NULL, 10);
    if (remove_ipc(kind, id) == 0)
      removed++;
    else if (errno != EINVAL && errno != EIDRM)
      g_warning("cannot remove SysV %s %d of uid %u: %s", table, id, (guint)uid, g_strerror(errno));
  }
  return removed;
}

/* Child side of purge_mqueues: system calls only (the helper is multi-threaded). */
static G_GNUC_NORETURN void
mqueue_child(uid_t uid)
{
  if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
      mount("mqueue", MQUEUE_MOUNT, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    _exit(255);
  int dir = open(MQUEUE_MOUNT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  char buf[DIRENT_BUF];
  int removed = 0;
  long n;
  while (dir >= 0 && (n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
    for (long off = 0; off < n;) {
      struct dirent64 *e = (struct dirent64 *)(buf + off);
      off += e->d_reclen;
      struct stat st;
      if (e->d_name[0] != '.' && fstatat(dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          st.st_uid == uid && unlinkat(dir, e->d_name, 0) == 0)
        removed++;
    }
  }
  _exit(MIN(removed, 254));
}

static guint
purge_mqueues(uid_t uid)
{
  pid_t pid = fork();
  if (pid == 0)
    mqueue_child(uid);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) == 255) {
    g_warning("cannot look for POSIX message queues of uid %u", (guint)uid);
    return 0;
  }
  return (guint)WEXITSTATUS(status);
}

static guint
purge_files(const char *dir_path, uid_t uid)
{
  g_autoptr(GError) error = NULL;
  lcvm_autofd int fd = lcvm_open_dir_at(AT_FDCWD, dir_path, NULL);
  DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
  if (dir == NULL)
    return 0;
  lcvm_steal_fd(&fd); /* closedir closes it */
  guint removed = 0;
  for (struct dirent *e = readdir(dir); e != NULL; e = readdir(dir)) {
    struct stat st;
    if (g_str_equal(e->d_name, ".") || g_str_equal(e->d_name, "..") ||
        fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_uid != uid)
      continue;
    if (lcvm_remove_tree_at(dirfd(dir), e->d_name, &error))
      removed++;
    else
      g_warning("cannot remove %s/%s of uid %u: %s", dir_path, e->d_name, (guint)uid,
                error->message);
    g_clear_error(&error);
  }
  closedir(dir);
  return removed;
}

guint
helper_uid_purge(uid_t uid)
{
  guint n = purge_sysv(IPC_SHM, "shm", "shmid", uid) + purge_sysv(IPC_MSG, "msg", "msqid", uid) +
            purge_sysv(IPC_SEM, "sem", "semid", uid) + purge_mqueues(uid) +
            purge_files("/tmp", uid) + purge_files("/dev/shm", uid);
  if (n > 0)
    g_message("uid %u left %u IPC objects or files behind; removed", (guint)uid, n);
  return n;
}
