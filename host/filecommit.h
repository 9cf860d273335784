/*
** Committing a finished download (fsync, close, rename onto its destination) on a worker thread, so the
** loop's step never waits for the disk. The worker touches no Lua state; the loop learns of the end
** through an eventfd it watches, and calls done() from its own step.
*/
#ifndef LUFA_FILECOMMIT_H
#define LUFA_FILECOMMIT_H

#include <pthread.h>

#include "filewriter.h"
#include "loop.h"

typedef struct FileCommit {
  LoopWatch watch;
  Loop *loop;
  pthread_t thread;
  int running;
  int fd;                 /* owned by the commit from start until done */
  const char *tmp_path;   /* borrowed: must outlive the commit */
  const char *path;
  FileWriter *writer;     /* borrowed, may be NULL: its writes are finished first */
  int err;                /* errno of the step that failed (the temporary file is then removed); 0: done */
  void (*done)(struct FileCommit *c);
} FileCommit;

/* Starts, on a worker: the rest of writer's writes (when given), fsync(fd), close(fd), rename(tmp_path, path). 0, or -1 when no worker could be
** started (nothing was done: the caller commits inline). */
int filecommit_start(Loop *loop, FileCommit *c, FileWriter *writer, int fd, const char *tmp_path,
                     const char *path, void (*done)(FileCommit *c));

/* Waits for a running commit and forgets it without calling done() (a request freed meanwhile). */
void filecommit_abandon(FileCommit *c);

#endif
