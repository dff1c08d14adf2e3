/* SPDX-License-Identifier: MIT */
/* lcvm-spawn-probe: run through the confined spawn path by the e2e tests; reports what it was
 * given and what the kernel lets it do.
 *   status      prints its credentials, capabilities, seccomp state, fds, environment, umask,
 *               session, cwd and rlimits, then waits for EOF on stdin (so the test can inspect
 *               /proc/PID from outside and signal it)
 *   leave       leaves what a uid can leave behind: a SysV shared memory segment, message queue
 *               and semaphore set, a POSIX message queue, files in /tmp and /dev/shm; prints
 *               "left KIND ID" for each, then "end", then waits for EOF on stdin
 *   call NAME   makes one system call and prints "NAME: ok" or "NAME: errno ENAME"; a call the
 *               filter kills prints nothing (the parent sees SIGSYS)
 * Every call uses arguments that fail or do nothing harmful even without any filter and as
 * root, so a broken confinement shows up as a wrong answer, never as damage. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sched.h>
#include <mqueue.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/ptrace.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOWHERE          "/nonexistent-lcvm-probe"
#define X32_SYSCALL_BIT  0x40000000L
#define KEXEC_BAD_FLAGS  0xdead0000UL
#define KEYCTL_GET_ID    0
#define KEY_SPEC_SESSION -3
#define BPF_BAD_CMD      0xffff
#define HIGH_GARBAGE     0x100000000L

static const char *const status_keys[] = {
  "Uid:",    "Gid:",        "Groups:",  "CapInh:",          "CapPrm:", "CapEff:", "CapBnd:",
  "CapAmb:", "NoNewPrivs:", "Seccomp:", "Seccomp_filters:", "SigBlk:", "SigIgn:", NULL,
};

static void
print_status(void)
{
  FILE *f = fopen("/proc/self/status", "re");
  char line[512];
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    for (int i = 0; status_keys[i] != NULL; i++) {
      if (strncmp(line, status_keys[i], strlen(status_keys[i])) == 0)
        printf("status %s", line);
    }
  }
  if (f != NULL)
    fclose(f);
}

static void
print_fds(void)
{
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
      continue;
    char link[320], target[256] = "";
    snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(link, target, sizeof target - 1);
    target[n > 0 ? n : 0] = '\0';
    printf("fd %s %s\n", e->d_name, target);
  }
  if (d != NULL)
    closedir(d);
}

static void
print_rlimit(const char *name, int resource)
{
  struct rlimit lim;
  getrlimit(resource, &lim);
  printf("rlimit %s %llu %llu\n", name, (unsigned long long)lim.rlim_cur,
         (unsigned long long)lim.rlim_max);
}

static int
run_status(char **envp)
{
  print_status();
  print_fds();
  for (char **e = envp; *e != NULL; e++)
    printf("env %s\n", *e);
  mode_t mask = umask(0);
  printf("umask %04o\n", (unsigned)mask);
  printf("pid %d\nsid %d\n", (int)getpid(), (int)getsid(0));
  char cwd[256];
  printf("cwd %s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
  print_rlimit("memlock", RLIMIT_MEMLOCK);
  print_rlimit("core", RLIMIT_CORE);
  print_rlimit("data", RLIMIT_DATA);
  print_rlimit("fsize", RLIMIT_FSIZE);
  printf("end\n");
  fflush(stdout);
  char buf[64];
  while (read(STDIN_FILENO, buf, sizeof buf) > 0)
    ;
  return 0;
}

static void
leave_file(const char *path)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd >= 0) {
    close(fd);
    printf("left file %s\n", path);
  }
}

static int
run_leave(void)
{
  int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  int msg = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
  int sem = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
  struct mq_attr attr = { .mq_maxmsg = 1, .mq_msgsize = 16 };
  mqd_t mq = mq_open("/lcvm-probe-left", O_CREAT | O_RDWR | O_CLOEXEC, 0600, &attr);
  printf("left shm %d\nleft msg %d\nleft sem %d\nleft mqueue %s\n", shm, msg, sem,
         mq == (mqd_t)-1 ? strerrorname_np(errno) : "/lcvm-probe-left");
  leave_file("/tmp/lcvm-probe-left");
  leave_file("/dev/shm/lcvm-probe-left");
  printf("end\n");
  fflush(stdout);
  char buf[64];
  while (read(STDIN_FILENO, buf, sizeof buf) > 0)
    ;
  return 0;
}

/* Connects to the abstract UNIX socket named by $LCVM_PROBE_ABSTRACT (bound by the test). */
static long
call_abstract_connect(void)
{
  const char *name = getenv("LCVM_PROBE_ABSTRACT");
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  if (name == NULL || strlen(name) + 1 > sizeof sa.sun_path) {
    errno = EINVAL;
    return -1;
  }
  memcpy(sa.sun_path + 1, name, strlen(name));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
  long r = connect(fd, (struct sockaddr *)&sa, len);
  int saved = errno;
  close(fd);
  errno = saved;
  return r;
}

/* A process-creating call that unexpectedly succeeds must not run the probe twice. */
static long
reap_if_child(long r)
{
  if (r == 0)
    _exit(0);
  if (r > 0)
    waitpid((pid_t)r, NULL, 0);
  return r;
}

static void *
thread_main(void *arg)
{
  return arg;
}

static long
call_thread(void)
{
  pthread_t t;
  int r = pthread_create(&t, NULL, thread_main, NULL);
  if (r != 0) {
    errno = r;
    return -1;
  }
  return pthread_join(t, NULL);
}

static long
call_clone3(void)
{
  struct clone_args args = { .exit_signal = SIGCHLD };
  return reap_if_child(syscall(SYS_clone3, &args, sizeof args));
}

static long
call_int80_getpid(void)
{
  long r = 20; /* getpid on i386 */
  __asm__ volatile("int $0x80" : "+a"(r) : : "memory");
  return r;
}

static long
do_call(const char *name)
{
  if (strcmp(name, "kexec_load") == 0)
    return syscall(SYS_kexec_load, 0UL, 0UL, NULL, KEXEC_BAD_FLAGS);
  if (strcmp(name, "init_module") == 0)
    return syscall(SYS_init_module, NULL, 0UL, "");
  if (strcmp(name, "mount") == 0)
    return syscall(SYS_mount, "none", NOWHERE, "tmpfs", 0UL, NULL);
  if (strcmp(name, "umount2") == 0)
    return syscall(SYS_umount2, NOWHERE, 0);
  if (strcmp(name, "ptrace") == 0)
    return syscall(SYS_ptrace, PTRACE_PEEKUSER, 1, NULL, NULL);
  if (strcmp(name, "execveat") == 0)
    return syscall(SYS_execveat, -1, "", NULL, NULL, AT_EMPTY_PATH);
  if (strcmp(name, "clone-newuser") == 0)
    return reap_if_child(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0));
  if (strcmp(name, "clone3") == 0)
    return call_clone3();
  if (strcmp(name, "thread") == 0)
    return call_thread();
  if (strcmp(name, "fork") == 0)
    return reap_if_child(fork());
  if (strcmp(name, "unshare") == 0)
    return syscall(SYS_unshare, CLONE_NEWUSER);
  if (strcmp(name, "io_uring_setup") == 0)
    return syscall(SYS_io_uring_setup, 0, NULL);
  if (strcmp(name, "userfaultfd") == 0)
    return syscall(SYS_userfaultfd, O_CLOEXEC);
  if (strcmp(name, "bpf") == 0)
    return syscall(SYS_bpf, BPF_BAD_CMD, NULL, 0);
  if (strcmp(name, "perf_event_open") == 0)
    return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
  if (strcmp(name, "keyctl") == 0)
    return syscall(SYS_keyctl, KEYCTL_GET_ID, KEY_SPEC_SESSION, 0);
  if (strcmp(name, "socket-inet") == 0)
    return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (strcmp(name, "socket-packet") == 0)
    return socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (strcmp(name, "socket-packet-high-bits") == 0)
    return syscall(SYS_socket, HIGH_GARBAGE | AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (strcmp(name, "socket-netlink-route") == 0)
    return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (strcmp(name, "socket-netlink-diag") == 0)
    return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (strcmp(name, "socket-netlink-audit") == 0)
    return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
  if (strcmp(name, "socket-netlink-uevent") == 0)
    return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
  if (strcmp(name, "socket-unix") == 0)
    return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (strcmp(name, "socket-inet6") == 0)
    return socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (strcmp(name, "socket-vsock") == 0)
    return socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (strcmp(name, "socket-alg") == 0)
    return socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (strcmp(name, "abstract-connect") == 0)
    return call_abstract_connect();
  if (strcmp(name, "i386-int80") == 0)
    return call_int80_getpid();
  if (strcmp(name, "x32") == 0)
    return syscall(X32_SYSCALL_BIT | SYS_getpid);
  fprintf(stderr, "unknown call %s\n", name);
  exit(2);
}

int
main(int argc, char **argv, char **envp)
{
  if (argc == 2 && strcmp(argv[1], "status") == 0)
    return run_status(envp);
  if (argc == 2 && strcmp(argv[1], "leave") == 0)
    return run_leave();
  if (argc != 3 || strcmp(argv[1], "call") != 0) {
    fprintf(stderr, "usage: %s status | call NAME\n", argv[0]);
    return 2;
  }
  errno = 0;
  long r = do_call(argv[2]);
  if (r < 0)
    printf("%s: errno %s\n", argv[2], strerrorname_np(errno));
  else
    printf("%s: ok\n", argv[2]);
  return 0;
}
