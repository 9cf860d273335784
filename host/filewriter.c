/*
** A download's file writes on a worker thread (filewriter.h).
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "filewriter.h"

enum { SLOT_UNMADE, SLOT_FREE, SLOT_FILLING, SLOT_QUEUED, SLOT_WRITING };

static int write_all(int fd, const char *p, size_t len, off_t off) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = pwrite(fd, p + done, len - done, off + (off_t)done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += (size_t)n;
  }
  return 0;
}

static void *writer_work(void *arg) {
  FileWriter *w = arg;
  /* the buffers are made (and their pages touched) here: first touches of fresh memory are slow */
  for (int i = 0; i < FILEWRITER_SLOTS; i++) {
    char *d = malloc(FILEWRITER_SLOT_SIZE);
    if (d) memset(d, 0, FILEWRITER_SLOT_SIZE);
    pthread_mutex_lock(&w->mu);
    if (d) {
      w->slot[i].data = d;
      w->slot[i].cap = FILEWRITER_SLOT_SIZE;
    }
    w->slot[i].state = SLOT_FREE;
    pthread_mutex_unlock(&w->mu);
  }
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (w->nqueued == 0 && !w->closing) pthread_cond_wait(&w->cv, &w->mu);
    if (w->nqueued == 0) break;  /* closing and nothing left */
    FileWriterSlot *s = &w->slot[w->queue[0]];
    memmove(w->queue, w->queue + 1, (size_t)--w->nqueued * sizeof w->queue[0]);
    s->state = SLOT_WRITING;
    pthread_mutex_unlock(&w->mu);
    int err = w->err ? 0 : write_all(w->fd, s->data, s->len, s->off);  /* after a failure: drop the rest */
    pthread_mutex_lock(&w->mu);
    if (err && !w->err) w->err = err;
    s->len = 0;
    s->state = SLOT_FREE;
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

int filewriter_start(FileWriter *w, int fd) {
  memset(w, 0, sizeof *w);  /* every slot SLOT_UNMADE until the worker has made it */
  w->fd = fd;
  if (pthread_mutex_init(&w->mu, NULL) != 0) return -1;
  if (pthread_cond_init(&w->cv, NULL) != 0) {
    pthread_mutex_destroy(&w->mu);
    return -1;
  }
  if (pthread_create(&w->thread, NULL, writer_work, w) != 0) {
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    return -1;
  }
  w->started = 1;
  return 0;
}

/* With the lock held: queues the slot being filled, if any. */
static void queue_filling(FileWriter *w) {
  for (int i = 0; i < FILEWRITER_SLOTS; i++) {
    if (w->slot[i].state == SLOT_FILLING) {
      w->slot[i].state = SLOT_QUEUED;
      w->queue[w->nqueued++] = i;
      pthread_cond_signal(&w->cv);
      return;
    }
  }
}

int filewriter_write(FileWriter *w, const char *p, size_t len, off_t off) {
  int rc = 1;
  pthread_mutex_lock(&w->mu);
  if (w->err) {
    rc = -1;
    goto out;
  }
  FileWriterSlot *s = NULL;
  for (int i = 0; i < FILEWRITER_SLOTS && s == NULL; i++)
    if (w->slot[i].state == SLOT_FILLING) s = &w->slot[i];
  if (s && (s->len + len > s->cap || s->off + (off_t)s->len != off)) {
    queue_filling(w);
    s = NULL;
  }
  for (int i = 0; i < FILEWRITER_SLOTS && s == NULL; i++) {
    if (w->slot[i].state != SLOT_FREE) continue;
    FileWriterSlot *f = &w->slot[i];
    size_t cap = len > FILEWRITER_SLOT_SIZE ? len : FILEWRITER_SLOT_SIZE;
    if (f->cap < cap) {
      char *d = realloc(f->data, cap);
      if (d == NULL) {
        w->err = ENOMEM;
        rc = -1;
        goto out;
      }
      f->data = d;
      f->cap = cap;
    }
    f->state = SLOT_FILLING;
    f->len = 0;
    f->off = off;
    s = f;
  }
  if (s == NULL) {
    rc = 0;
    goto out;
  }
  memcpy(s->data + s->len, p, len);
  s->len += len;
  if (s->len >= FILEWRITER_SLOT_SIZE) queue_filling(w);
out:
  pthread_mutex_unlock(&w->mu);
  return rc;
}

int filewriter_close(FileWriter *w) {
  if (!w->started) return w->err;
  pthread_mutex_lock(&w->mu);
  queue_filling(w);
  w->closing = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  w->started = 0;
  for (int i = 0; i < FILEWRITER_SLOTS; i++) {
    free(w->slot[i].data);
    w->slot[i].data = NULL;
    w->slot[i].cap = w->slot[i].len = 0;
  }
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  return w->err;
}
