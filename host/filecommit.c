/*
** A finished download's fsync and rename, off the loop (a 50 MB file's fsync can take tens of ms).
*/
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "filecommit.h"

static void *commit_work(void *arg) {
  FileCommit *c = arg;
  int err = c->writer ? filewriter_close(c->writer) : 0;
  if (fsync(c->fd) != 0 && err == 0) err = errno;
  if (close(c->fd) != 0 && err == 0) err = errno;
  if (err == 0 && rename(c->tmp_path, c->path) != 0) err = errno;
  if (err) unlink(c->tmp_path);
  c->err = err;
  uint64_t one = 1;
  while (write(c->watch.fd, &one, sizeof one) < 0 && errno == EINTR) { /* retry */ }
  return NULL;
}

static void commit_finish(FileCommit *c) {
  pthread_join(c->thread, NULL);
  c->running = 0;
  loop_unwatch(c->loop, &c->watch);
  close(c->watch.fd);
  c->watch.fd = -1;
  c->fd = -1;
}

static void commit_ready(LoopWatch *w) {
  FileCommit *c = (FileCommit *)w;
  uint64_t n;
  if (read(w->fd, &n, sizeof n) < 0) return;  /* not written yet: a spurious wake-up */
  commit_finish(c);
  c->done(c);
}

int filecommit_start(Loop *loop, FileCommit *c, FileWriter *writer, int fd, const char *tmp_path,
                     const char *path, void (*done)(FileCommit *c)) {
  c->loop = loop;
  c->writer = writer;
  c->fd = fd;
  c->tmp_path = tmp_path;
  c->path = path;
  c->err = 0;
  c->done = done;
  c->watch.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  c->watch.ready = commit_ready;
  c->watch.passive = 0;  /* pending work: the task waits for it */
  c->watch.active = 0;
  c->watch.writable = 0;
  if (c->watch.fd < 0) return -1;
  if (loop_watch(loop, &c->watch) != 0) {
    close(c->watch.fd);
    return -1;
  }
  if (pthread_create(&c->thread, NULL, commit_work, c) != 0) {
    loop_unwatch(loop, &c->watch);
    close(c->watch.fd);
    return -1;
  }
  c->running = 1;
  return 0;
}

void filecommit_abandon(FileCommit *c) {
  if (c->running) commit_finish(c);
}
