/*
** A download's writes to its file on a worker thread, so the loop's step only copies bytes into warm
** buffers and never waits for the page cache or the disk (on a loaded machine a 256 KiB pwrite can take a
** millisecond). The worker touches no Lua state. A few fixed buffers bound the memory: when all are
** waiting for the disk the transfer is paused until one is free.
*/
#ifndef LUFA_FILEWRITER_H
#define LUFA_FILEWRITER_H

#include <pthread.h>
#include <sys/types.h>

#define FILEWRITER_SLOTS 4
#define FILEWRITER_SLOT_SIZE ((size_t)256 << 10)

typedef struct FileWriterSlot {
  char *data;
  size_t len, cap;
  off_t off;             /* where data goes in the file */
  int state;             /* free, filling, queued or writing */
} FileWriterSlot;

typedef struct FileWriter {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  int started;           /* the worker runs; 0: never started (or could not be) */
  int closing;
  int fd;
  int err;               /* errno of a failed write; the writer then accepts nothing more */
  FileWriterSlot slot[FILEWRITER_SLOTS];
  int queue[FILEWRITER_SLOTS];  /* queued slots, oldest first */
  int nqueued;
} FileWriter;

/* Starts the worker for fd (borrowed: the caller closes it after filewriter_close). 0, or -1 when no
** worker could be started (the caller then writes inline). */
int filewriter_start(FileWriter *w, int fd);

/* Copies len bytes for offset off into a buffer for the worker. 1: taken; 0: every buffer is busy (try
** again later, nothing was taken); -1: an earlier write failed (w->err). Called from the loop only. */
int filewriter_write(FileWriter *w, const char *p, size_t len, off_t off);

/* Hands over what is buffered, waits for the worker to write it all and ends it. Returns 0 or the errno
** of the first write that failed. Safe to call on a writer never started, and more than once. */
int filewriter_close(FileWriter *w);

#endif
